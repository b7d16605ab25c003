r"""Texture synthesis from one exemplar: the parametric way (Gatys, Ecker & Bethge 2015,
"Texture Synthesis Using Convolutional Neural Networks") and the non-parametric way
(Efros & Leung 1999, "Texture Synthesis by Non-parametric Sampling").

A texture is a stationary image: every place looks like every other, statistically.
To make more of it from one example there are two classic answers.

**Efros & Leung: copy, one pixel at a time.** Model the texture as a Markov random
field: a pixel's value depends only on its neighbourhood. Given a partly grown
output, an unfilled pixel on the border of the filled region has a window of known
neighbours. Find the windows of the exemplar that match it best and copy the centre
pixel of one of them, chosen at random:

    d(w, w') = sum_k  G_k m_k ||w_k - w'_k||^2 / sum_k G_k m_k
               (m_k = 1 where neighbour k is known, G a Gaussian of sigma = window / 6.4,
                so near neighbours count more);
    candidates = { w' : d(w, w') <= (1 + eps) min_w'' d(w, w'') },  eps = 0.1;
    the pixel := the centre of a uniformly chosen candidate.

The output grows from a 3x3 seed cut at random from the exemplar, in layers: the
unfilled pixels with the most filled neighbours first. The paper's further rule is
kept: a pixel whose best match is worse than ``max_error`` (0.3, on pixels in [0, 1])
waits for a later layer, and when no pixel of a layer passes, the threshold grows by
10%. Every output pixel is a copy of an exemplar pixel; nothing is learned, and a
window larger than the texture's elements is what makes the copy coherent.

**Gatys et al.: match statistics of deep features.** Describe the texture by the Gram
matrices of a convolutional network's feature maps, G^l = F^l F^l^T / M_l (channel
correlations averaged over the M_l positions of layer l, all of "where" thrown away),
and find an image with the same statistics by gradient descent on its pixels,
starting from white noise:

    L(x) = sum_l w_l || G^l(x) - G^l(exemplar) ||^2 / N_l^2.

``texture_loss(..., normalized=False)`` is ``minigan.models.features.gram_loss``: each
layer's mean squared Gram difference, w_l = 1. Gatys' E_l = sum (G - A)^2 /
(4 N_l^2 M_l^2) with unnormalized Grams and w_l = 1/5 is that loss divided by 20: the
same minimizer, and Adam does not see a constant factor at all. The default,
``normalized=True``, sets w_l = 1 / mean(A_l^2), each layer weighted by the size of
its target, so that each counts by its relative error (below, "Deviations").

The paper's values: VGG-19 trained on ImageNet, max pooling replaced by average
pooling, the layers conv1_1, pool1, pool2, pool3, pool4 (the ReLU outputs relu1_1 ...
relu5_1 in later papers, which ``GATYS_STYLE_LAYERS`` names), L-BFGS on the pixels,
256x256 exemplars.

Deviations here, and why:
  * no ImageNet weights exist offline: the feature network is a narrow VGG-19
    (``width`` 1/4 by default), with random weights or weights the project trains
    itself (``minigan.models.feature_training``); docs/texture.md compares them
    (random won on 4 of 6 textures), and at this scale neither reproduces the
    exemplars' structure (bricks, veins), only their colours and grain;
  * the layers relu1_1 ... relu4_1 (``TEXTURE_LAYERS``): on the 64-pixel images a CPU
    affords, relu5_1 is a 4x4 map, 16 positions for a Gram matrix;
  * Adam (lr 0.05, 1000 steps) instead of L-BFGS, which ``minigan.optim`` does not
    have; after each step the pixels are clamped to the image range [-1, 1] (a
    projected gradient step; L-BFGS in the paper ran unconstrained);
  * the per-layer weights w_l = 1 / mean(A_l^2): the feature networks here were not
    trained with ImageNet's scale of activations, and the trained one's deep Grams are
    ~1000 times larger than its relu1_1 Grams; with the paper's equal weights, 500
    Adam steps on brick left relu1_1's Gram 49 times its target's size away (relative
    squared error) while relu4_1's was at 0.001, and the output was colour noise;
    weighted, every layer's relative error fell below 0.05.

Images are (C, H, W) or (N, C, H, W) float32 arrays in [-1, 1], C = 3.
"""
import numpy as np

import minigan as mg
from minigan import functional as F
from minigan import nn, optim

from .features import ADAIN_LAYERS, GATYS_STYLE_LAYERS, gram_loss, gram_matrix  # noqa: F401

TEXTURE_LAYERS = ADAIN_LAYERS  # relu1_1 .. relu4_1; the paper's also has relu5_1
GATYS_LR = 0.05
EL_WINDOW = 11       # the paper shows 5 to 21; 11 holds a brick's mortar line at 64 px
EL_EPS = 0.1         # the paper's ErrThreshold
EL_MAX_ERROR = 0.3   # the paper's MaxErrThreshold, on pixels in [0, 1]
EL_SEED_SIZE = 3


def _batch(images, name):
    array = np.asarray(images, dtype=np.float32)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[1] != 3:
        raise ValueError(f"{name} must be (3, H, W) or (N, 3, H, W) images in [-1, 1], got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return array


# ---------------------------------------------------------------- Gatys et al. 2015


def gram_targets(network, exemplars, layers=TEXTURE_LAYERS, device="cpu"):
    """{layer: (N, C, C) Gram matrices} of the exemplars' features, the fixed targets."""
    exemplars = _batch(exemplars, "exemplars")
    with mg.no_grad():
        features = network(mg.tensor(exemplars, device=device), tuple(layers))
        return {name: gram_matrix(features[name]).detach() for name in layers}


def texture_loss(network, images, targets, normalized=True):
    """Gatys' texture loss of ``images`` (a Tensor, N images) against ``targets``
    (``gram_targets`` of N exemplars, or of one, which then serves every image).

    ``normalized``: each layer's term divided by the mean square of its target Gram
    matrix, so every layer counts by its *relative* error (see the module docstring);
    False gives ``features.gram_loss``, the paper's weighting up to a constant."""
    features = network(images, tuple(targets))
    if not normalized:
        return gram_loss(features, targets)
    loss = 0.0
    for name, target in targets.items():
        loss = loss + F.mse_loss(gram_matrix(features[name]), target) / float((target.numpy() ** 2).mean() + 1e-12)
    return loss


class Canvas(nn.Module):
    """The images being synthesized, the only parameters: (N, 3, H, W), initialized
    as white noise, uniform in [-1, 1] (the paper: white noise)."""

    def __init__(self, n, height, width, rng=None):
        super().__init__()
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self.image = nn.Parameter(mg.tensor(rng.uniform(-1, 1, (n, 3, height, width)).astype(np.float32)))

    def forward(self):
        return self.image


def gatys_step(network, canvas, optimizer, targets, normalized=True):
    """One step on the pixels: the texture loss, its gradient, the optimizer's update,
    then the pixels clamped to [-1, 1]. Returns the loss before the step (a float)."""
    optimizer.zero_grad()
    loss = texture_loss(network, canvas(), targets, normalized)
    loss.backward()
    optimizer.step()
    with mg.no_grad():
        canvas.image.clamp_(-1.0, 1.0)
    return float(loss.item())


def synthesize_gatys(network, exemplars, size=64, steps=1000, lr=GATYS_LR, layers=TEXTURE_LAYERS, seed=0,
                     device="cpu", normalized=True, callback=None):
    """Texture synthesis by Gram matching: one ``size`` x ``size`` output per exemplar
    (N exemplars of one shape at a time), Adam on the pixels for ``steps`` steps.
    Returns (N, 3, size, size) float32 in [-1, 1]; ``callback(step, loss)`` sees each step."""
    exemplars = _batch(exemplars, "exemplars")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    targets = gram_targets(network, exemplars, layers, device)
    canvas = Canvas(len(exemplars), size, size, seed).to(device)
    optimizer = optim.Adam(canvas.parameters(), lr=lr)
    for step in range(steps):
        loss = gatys_step(network, canvas, optimizer, targets, normalized)
        if callback is not None:
            callback(step, loss)
    return canvas.image.detach().numpy()


# ---------------------------------------------------------------- Efros & Leung 1999


def gaussian_window(window):
    """The paper's weights over a window: a 2-D Gaussian of sigma = window / 6.4, (window^2,)."""
    r = np.arange(window) - window // 2
    g = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * (window / 6.4) ** 2))
    return (g / g.sum()).ravel()


def _windows(image, window):
    """All window x window windows fully inside a (C, H, W) image: (P, window^2, C)."""
    views = np.lib.stride_tricks.sliding_window_view(image, (window, window), axis=(1, 2))
    c, rows, cols = views.shape[:3]
    return views.transpose(1, 2, 3, 4, 0).reshape(rows * cols, window * window, c)


def efros_leung(exemplar, size=48, window=EL_WINDOW, eps=EL_EPS, max_error=EL_MAX_ERROR, seed=0):
    """Grow a ``size`` x ``size`` (or (height, width)) texture from one (C, H, W) exemplar,
    pixel by pixel (see the module docstring). Deterministic for a given ``seed``.

    Vectorized per pixel: the distances of one neighbourhood to all P exemplar windows
    are two matrix-vector products, sum_k g_k m_k (|E_pk|^2 - 2 E_pk . t_k + |t_k|^2),
    so a 48x48 output from a 64x64 exemplar takes seconds."""
    original = np.asarray(exemplar, dtype=np.float32)
    exemplar = original.astype(np.float64)
    if exemplar.ndim != 3 or not np.isfinite(exemplar).all():
        raise ValueError(f"the exemplar must be one finite (C, H, W) image, got shape {exemplar.shape}")
    height, width = (size, size) if np.isscalar(size) else tuple(size)
    if window < 3 or window % 2 == 0:
        raise ValueError(f"window must be an odd number >= 3, got {window}")
    if min(exemplar.shape[1:]) < window:
        raise ValueError(f"the exemplar ({exemplar.shape[1]}x{exemplar.shape[2]}) is smaller than the "
                         f"{window}x{window} window")
    if height < EL_SEED_SIZE or width < EL_SEED_SIZE:
        raise ValueError(f"the output must be at least {EL_SEED_SIZE}x{EL_SEED_SIZE}, got {height}x{width}")
    if eps < 0 or max_error <= 0:
        raise ValueError(f"eps must be >= 0 and max_error > 0, got {eps} and {max_error}")
    rng = np.random.default_rng(seed)
    c, half = exemplar.shape[0], window // 2
    unit = (exemplar + 1) / 2                                   # the paper's errors are on [0, 1] pixels
    windows = _windows(unit, window)                            # (P, K, C)
    flat = windows.reshape(len(windows), -1)                    # (P, K C)
    squares = (windows ** 2).sum(axis=2)                        # (P, K)
    cols_e = exemplar.shape[2] - window + 1                     # window p is centred on (p // cols_e, p % cols_e) + half
    gauss = gaussian_window(window)

    # The canvas, padded by half a window of never-known pixels.
    canvas = np.zeros((height + 2 * half, width + 2 * half, c))
    known = np.zeros(canvas.shape[:2], dtype=bool)
    s = EL_SEED_SIZE
    top, left = rng.integers(exemplar.shape[1] - s + 1), rng.integers(exemplar.shape[2] - s + 1)
    r0, c0 = half + (height - s) // 2, half + (width - s) // 2
    canvas[r0:r0 + s, c0:c0 + s] = unit[:, top:top + s, left:left + s].transpose(1, 2, 0)
    known[r0:r0 + s, c0:c0 + s] = True
    source = np.zeros(canvas.shape[:2] + (2,), dtype=np.int64)  # where each pixel was copied from
    source[r0:r0 + s, c0:c0 + s] = np.stack(np.meshgrid(np.arange(top, top + s), np.arange(left, left + s),
                                                        indexing="ij"), axis=-1)
    inside = np.zeros_like(known)
    inside[half:half + height, half:half + width] = True
    threshold = max_error

    while not known[inside].all():
        # unfilled pixels next to filled ones, most filled neighbours first (ties in random order)
        padded = np.pad(known, 1)
        count = sum(padded[1 + dr:1 + dr + known.shape[0], 1 + dc:1 + dc + known.shape[1]]
                    for dr in (-1, 0, 1) for dc in (-1, 0, 1) if dr or dc)
        rows, cols = np.nonzero(inside & ~known & (count > 0))
        order = rng.permutation(len(rows))
        order = order[np.argsort(-count[rows[order], cols[order]], kind="stable")]
        progress = False
        for r, q in zip(rows[order], cols[order]):
            mask = known[r - half:r + half + 1, q - half:q + half + 1].ravel() * gauss        # (K,)
            template = canvas[r - half:r + half + 1, q - half:q + half + 1].reshape(-1, c)  # (K, C)
            distance = (squares @ mask - 2 * flat @ (mask[:, None] * template).ravel()
                        + mask @ (template ** 2).sum(axis=1)) / (mask.sum() * c)
            distance = np.maximum(distance, 0.0)  # rounding can dip below zero at an exact match
            best = distance.min()
            if best > threshold:
                continue
            candidates = np.flatnonzero(distance <= best * (1 + eps) + 1e-9)
            p = rng.choice(candidates)
            source[r, q] = (p // cols_e + half, p % cols_e + half)
            canvas[r, q] = unit[:, source[r, q, 0], source[r, q, 1]]
            known[r, q] = True
            progress = True
        if not progress:
            threshold *= 1.1
    rows, cols = np.moveaxis(source[half:half + height, half:half + width], -1, 0)
    return original[:, rows, cols]  # the copies themselves, bit for bit
