r"""Do two images have the same patches? The check for models that learn from one image.

Texture synthesis and SinGAN are trained on a single exemplar, so there is no test
set of "other images like it" and no classifier to score them. What they promise is
local: every small patch of the output should look like some patch of the exemplar,
at every scale, while the whole is new. So we compare the *distributions of patches*:

* **Patches.** Every ``patch`` x ``patch`` window (all channels) of the images, at
  the scales of a Gaussian pyramid (each level the previous one 2x2 average-pooled,
  as long as its shorter side holds 2 patches). Each level's patch vectors are
  standardized with the reference's per-channel mean and standard deviation, so a
  dim level counts as much as a bright one.
* **The distance.** The sliced Wasserstein distance (Rabin et al. 2011; the
  multi-scale patch "SWD" of ProGAN, Karras et al. 2018, Appendix D): project both
  sets of patch vectors on random unit directions, and average over directions the
  1-D Wasserstein-1 distance between the projections (the mean absolute difference
  of their quantile functions). Unlike a Fréchet distance it needs no covariance,
  so it works with the few hundred patches of a coarse level and with sets of
  different sizes. The reported number is the mean over the pyramid's levels.
* **The yardsticks.** A number alone means nothing, so ``patch_report`` splits the
  exemplar into two halves along its longer side: the *fit* half, which the model
  should learn from when the number is to be fair, and the *held-out* half.
    - ``held_out``: the held-out half against the fit half, the floor: how far apart
      two pieces of the same texture are;
    - ``shuffled``: the held-out half with its pixels shuffled, the ceiling: the
      same colours, no structure;
    - ``output``: the outputs against the fit half.
  An output near the floor has the exemplar's patch statistics; one near the ceiling
  has its colours and nothing else.

Images are NumPy arrays in [-1, 1], (C, H, W) or (N, C, H, W); a list may mix sizes.
"""
import numpy as np

PATCH = 7
DIRECTIONS = 128
QUANTILES = 256
MAX_PATCHES = 8192


def _as_list(images, name):
    """A list of (C, H, W) float64 arrays from one image, a batch, or a list of either."""
    if isinstance(images, (list, tuple)):
        out = [image for item in images for image in _as_list(item, name)]
        if not out:
            raise ValueError(f"{name} is an empty list")
        return out
    array = np.asarray(images, dtype=np.float64)
    if array.ndim == 3:
        return [array]
    if array.ndim == 4:
        if len(array) == 0:
            raise ValueError(f"{name} is an empty batch")
        return list(array)
    raise ValueError(f"{name} must be (C, H, W) or (N, C, H, W) images, got shape {array.shape}")


def split_exemplar(exemplar):
    """(fit, held_out): the two halves of a (C, H, W) exemplar, cut across its longer side."""
    exemplar = np.asarray(exemplar)
    if exemplar.ndim != 3:
        raise ValueError(f"the exemplar must be one (C, H, W) image, got shape {exemplar.shape}")
    h, w = exemplar.shape[1:]
    if w >= h:
        return exemplar[:, :, :w // 2], exemplar[:, :, w // 2:2 * (w // 2)]
    return exemplar[:, :h // 2], exemplar[:, h // 2:2 * (h // 2)]


def shuffle_pixels(image, seed=0):
    """The image with its pixel positions permuted: its colours, none of its structure."""
    image = np.asarray(image)
    c, h, w = image.shape
    order = np.random.default_rng(seed).permutation(h * w)
    return image.reshape(c, h * w)[:, order].reshape(c, h, w)


def _downsample(image):
    c, h, w = image.shape
    h, w = h // 2 * 2, w // 2 * 2
    return image[:, :h, :w].reshape(c, h // 2, 2, w // 2, 2).mean(axis=(2, 4))


def _pyramid(image, patch, levels):
    out = [image]
    while len(out) < levels and min(out[-1].shape[1:]) // 2 >= 2 * patch:
        out.append(_downsample(out[-1]))
    return out


def _patches(image, patch):
    """All patch x patch windows of a (C, H, W) image as rows of (C * patch^2) numbers."""
    windows = np.lib.stride_tricks.sliding_window_view(image, (patch, patch), axis=(1, 2))
    c, rows, cols = windows.shape[:3]
    return windows.transpose(1, 2, 0, 3, 4).reshape(rows * cols, c * patch * patch)


def _level_patches(images, patch, level, rng, max_patches):
    rows = [_patches(pyramid[level], patch) for pyramid in images if len(pyramid) > level]
    rows = np.concatenate(rows) if rows else np.zeros((0, 0))
    if len(rows) > max_patches:
        rows = rows[rng.choice(len(rows), max_patches, replace=False)]
    return rows


def sliced_wasserstein(a, b, directions=DIRECTIONS, quantiles=QUANTILES, seed=0):
    """Mean over random unit directions of the 1-D W1 distance between the projections
    of the rows of ``a`` and ``b`` (sets of vectors, sizes may differ)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or not len(a) or not len(b):
        raise ValueError(f"sliced_wasserstein needs two non-empty (n, d) sets of the same d, "
                         f"got {a.shape} and {b.shape}")
    rng = np.random.default_rng(seed)
    axes = rng.normal(size=(a.shape[1], directions))
    axes /= np.linalg.norm(axes, axis=0, keepdims=True)
    levels = (np.arange(quantiles) + 0.5) / quantiles
    qa = np.quantile(a @ axes, levels, axis=0)
    qb = np.quantile(b @ axes, levels, axis=0)
    return float(np.abs(qa - qb).mean())


def patch_distance(images, reference, patch=PATCH, levels=4, max_patches=MAX_PATCHES, seed=0):
    """Multi-scale patch SWD between ``images`` and ``reference`` (see the module docstring).

    Returns ``(mean, per_level)``: the mean over the pyramid levels both sides have,
    and the list of each level's distance (finest first).
    """
    images, reference = _as_list(images, "images"), _as_list(reference, "reference")
    channels = {image.shape[0] for image in images + reference}
    if len(channels) != 1:
        raise ValueError(f"images and reference must have the same number of channels, got {sorted(channels)}")
    small = min(min(image.shape[1:]) for image in images + reference)
    if small < patch:
        raise ValueError(f"an image of side {small} is smaller than the {patch}x{patch} patch")
    rng = np.random.default_rng(seed)
    ours = [_pyramid(image, patch, levels) for image in images]
    theirs = [_pyramid(image, patch, levels) for image in reference]
    depth = min(max(len(p) for p in ours), max(len(p) for p in theirs))
    per_level = []
    for level in range(depth):
        a = _level_patches(ours, patch, level, rng, max_patches)
        b = _level_patches(theirs, patch, level, rng, max_patches)
        c = b.shape[1] // (patch * patch)
        mean = b.reshape(len(b), c, -1).mean(axis=(0, 2)).repeat(patch * patch)
        std = b.reshape(len(b), c, -1).std(axis=(0, 2)).repeat(patch * patch) + 1e-8
        per_level.append(sliced_wasserstein((a - mean) / std, (b - mean) / std, seed=seed + level))
    return float(np.mean(per_level)), per_level


def patch_report(outputs, exemplar, patch=PATCH, levels=4, seed=0):
    """Patch distances of ``outputs`` and of the two yardsticks to the exemplar's fit half.

    Returns a dict: ``output``, ``held_out`` (floor), ``shuffled`` (ceiling), each the
    mean over levels, and ``output_per_level``. See the module docstring.
    """
    fit, held_out = split_exemplar(exemplar)
    kwargs = dict(patch=patch, levels=levels, seed=seed)
    output, per_level = patch_distance(outputs, fit, **kwargs)
    return {"output": output,
            "held_out": patch_distance(held_out, fit, **kwargs)[0],
            "shuffled": patch_distance(shuffle_pixels(held_out, seed), fit, **kwargs)[0],
            "output_per_level": per_level}
