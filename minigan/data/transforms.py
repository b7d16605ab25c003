"""Image transforms on whole batches: NumPy (or CuPy) arrays of shape (N, C, H, W).

Each transform is a plain function of the batch. The random ones take ``rng``, a
``numpy.random.Generator`` (or an int seed), and draw one choice per image from
it, so a run that seeds its generator sees the same augmentations again. The
DataLoader hands its own seeded generator to a ``transform(batch, rng)``::

    def augment(x, rng):
        return random_horizontal_flip(random_crop(x, 32, rng, padding=2, fill=-1.0), rng)

    loader = DataLoader(images, labels, transform=augment, seed=0)

``resize`` is bilinear and, when shrinking, antialiased: every output pixel
averages the input pixels under a triangle filter stretched to the scale factor
(the filter PIL's BILINEAR and ``torch.nn.functional.interpolate(...,
mode="bilinear", antialias=True)`` use). Without the stretch, shrinking by 4
would read 2 of every 4 pixels and alias. Each axis is one small matrix, so a
resize is two matrix products: ``out = W_h @ x @ W_w.T``.
"""
import numpy as np

from .. import backend
from ..functional._args import pair


def _xp(x):
    return backend.get_array_module(x, op="transforms")


def _check_batch(x, name):
    if x.ndim != 4:
        raise ValueError(f"{name}: expected a batch of shape (N, C, H, W), got shape {tuple(x.shape)}")


def _generator(rng):
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


# ---------------------------------------------------------------- resizing


def resize_weights(n_in, n_out, antialias=True):
    """The (n_out, n_in) matrix that resamples one axis bilinearly (pixel centers aligned,
    ``align_corners=False``).

    Output pixel i sits at input coordinate c = (i + 0.5) * n_in / n_out. Input pixel j
    (center j + 0.5) gets weight max(0, 1 - |j + 0.5 - c| / s), normalized over the row,
    with s = 1 (linear interpolation between the two nearest pixels) or, when
    ``antialias`` and shrinking, s = n_in / n_out (a triangle as wide as the footprint).
    """
    scale = n_in / n_out
    support = scale if antialias and scale > 1 else 1.0
    weights = np.zeros((n_out, n_in), dtype=np.float64)
    for i in range(n_out):
        center = scale * (i + 0.5)
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), n_in)
        taps = np.arange(lo, hi)
        w = np.maximum(0.0, 1.0 - np.abs(taps + 0.5 - center) / support)
        weights[i, lo:hi] = w / w.sum()
    return weights


def resize(x, size, antialias=True):
    """Resize a batch (N, C, H, W) bilinearly to ``size``.

    ``size`` is (height, width), or an int: the new length of the shorter side, the
    aspect ratio kept (as ``torchvision.transforms.Resize``). Integer batches (uint8)
    come back as float32; float batches keep their dtype.
    """
    _check_batch(x, "resize")
    xp = _xp(x)
    h, w = x.shape[-2:]
    if isinstance(size, (int, np.integer)):
        short = min(h, w)
        long = int(size * max(h, w) / short)  # truncated, as torchvision does
        size = (int(size), long) if h <= w else (long, int(size))
    out_h, out_w = pair(size, "size", "resize")
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
    x = x.astype(dtype, copy=False)
    if (out_h, out_w) == (h, w):
        return x.copy()
    rows = xp.asarray(resize_weights(h, out_h, antialias), dtype=dtype)
    cols = xp.asarray(resize_weights(w, out_w, antialias), dtype=dtype)
    return xp.ascontiguousarray(rows @ x @ cols.T)


# ---------------------------------------------------------------- crops and flips


def center_crop(x, size):
    """The central ``size`` (int or (height, width)) window of every image."""
    _check_batch(x, "center_crop")
    h, w = pair(size, "size", "center_crop")
    H, W = x.shape[-2:]
    if h > H or w > W:
        raise ValueError(f"center_crop: crop {h}x{w} is larger than the images ({H}x{W})")
    top, left = (H - h) // 2, (W - w) // 2  # torchvision rounds the same way for odd margins
    return x[..., top:top + h, left:left + w].copy()


def pad(x, padding, fill=0.0, padding_mode="constant"):
    """Pad height and width by ``padding`` pixels on each side (mode as in ``numpy.pad``:
    'constant' with ``fill``, 'edge', 'reflect')."""
    _check_batch(x, "pad")
    if padding == 0:
        return x
    xp = _xp(x)
    widths = ((0, 0), (0, 0), (padding, padding), (padding, padding))
    if padding_mode == "constant":
        return xp.pad(x, widths, mode="constant", constant_values=fill)
    if padding_mode not in ("edge", "reflect"):
        raise ValueError(f"pad: padding_mode must be 'constant', 'edge' or 'reflect', got {padding_mode!r}")
    return xp.pad(x, widths, mode=padding_mode)


def random_crop(x, size, rng, padding=0, fill=0.0, padding_mode="constant"):
    """A ``size`` window at an independent uniform position in each image (after padding
    each side by ``padding``): the small random shifts of data augmentation."""
    _check_batch(x, "random_crop")
    rng = _generator(rng)
    x = pad(x, padding, fill, padding_mode)
    h, w = pair(size, "size", "random_crop")
    H, W = x.shape[-2:]
    if h > H or w > W:
        raise ValueError(f"random_crop: crop {h}x{w} is larger than the (padded) images ({H}x{W})")
    tops = rng.integers(0, H - h + 1, size=len(x))
    lefts = rng.integers(0, W - w + 1, size=len(x))
    return _xp(x).stack([image[:, t:t + h, l:l + w] for image, t, l in zip(x, tops, lefts)])


def hflip(x):
    """Mirror every image left to right."""
    _check_batch(x, "hflip")
    return x[..., ::-1].copy()


def random_horizontal_flip(x, rng, p=0.5):
    """Mirror each image independently with probability ``p``."""
    _check_batch(x, "random_horizontal_flip")
    flip = _xp(x).asarray(_generator(rng).random(len(x)) < p)
    return _xp(x).where(flip[:, None, None, None], x[..., ::-1], x)


# ---------------------------------------------------------------- value range


def rescale(x, value_range=(0, 255)):
    """Map values from ``value_range`` linearly onto [-1, 1] (float32), the range every
    loader returns and a tanh generator produces."""
    low, high = value_range
    if high <= low:
        raise ValueError(f"rescale: value_range must be (low, high) with low < high, got {value_range!r}")
    x = x.astype(np.float32) if x.dtype.kind != "f" else x
    return ((x - low) * (2.0 / (high - low)) - 1.0).astype(np.float32)
