r"""Pairs for x4 super-resolution: high-resolution crops of the offline colour pictures
(``minigan.data.colour``: the photos of scikit-learn and scikit-image and GIMP's
patterns, split by whole picture) and their bicubic downsampling, as SRGAN's paper
makes its LR images ("downsampling the HR images using a bicubic kernel with
downsampling factor r = 4").

The bicubic resampling is PIL's ``Image.BICUBIC`` (and torch's ``interpolate(...,
mode="bicubic", antialias=True)``): Keys' cubic kernel with a = -0.5,

    k(t) = (a + 2)|t|^3 - (a + 3)|t|^2 + 1        for |t| <= 1
           a|t|^3 - 5a|t|^2 + 8a|t| - 4a          for 1 < |t| < 2,

stretched by the scale factor when shrinking (antialiased: every LR pixel weighs the
4 x 4 block of HR pixels under it and its neighbours, 16 taps an axis, not 4), with
the weights of taps outside the image dropped and the rest renormalized. Each axis
is one (n_out, n_in) matrix, so a resize is ``W_h @ x @ W_w.T``. The results are
clipped to [-1, 1] (the cubic kernel overshoots at edges), as an 8-bit image would be.
The same function upsamples LR by 4: the bicubic baseline of the paper's tables.
"""
import numpy as np

from .colour import load_colour, random_crops

SCALE = 4


def cubic(t, a=-0.5):
    """Keys' cubic convolution kernel (a = -0.5: PIL's and torch's antialiased bicubic)."""
    t = np.abs(t)
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return np.where(t <= 1, near, np.where(t < 2, far, 0.0))


def bicubic_weights(n_in, n_out, a=-0.5):
    """The (n_out, n_in) matrix that resamples one axis bicubically, pixel centres aligned;
    the kernel stretched by n_in / n_out when shrinking."""
    scale = n_in / n_out
    stretch = max(scale, 1.0)
    centres = scale * (np.arange(n_out) + 0.5)  # output pixel i in input coordinates
    taps = np.arange(n_in) + 0.5
    weights = cubic((taps[None, :] - centres[:, None]) / stretch, a)
    return weights / weights.sum(axis=1, keepdims=True)


def bicubic_resize(images, size):
    """Resize a batch (N, C, H, W) to ``size`` (height, width) bicubically; float32, clipped to [-1, 1]."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"bicubic_resize: expected a batch (N, C, H, W), got shape {images.shape}")
    h, w = size
    rows = bicubic_weights(images.shape[2], h)
    cols = bicubic_weights(images.shape[3], w)
    out = np.einsum("ij,ncjk,lk->ncil", rows, images.astype(np.float64), cols)
    return np.clip(out, -1, 1).astype(np.float32)


def downsample(hr, scale=SCALE):
    """LR = the HR batch shrunk by ``scale`` bicubically (antialiased)."""
    n, c, h, w = np.shape(hr)
    if h % scale or w % scale:
        raise ValueError(f"downsample: the HR size {h}x{w} is not a multiple of the scale {scale}")
    return bicubic_resize(hr, (h // scale, w // scale))


def upsample(lr, scale=SCALE):
    """The bicubic baseline: LR enlarged by ``scale``."""
    n, c, h, w = np.shape(lr)
    return bicubic_resize(lr, (h * scale, w * scale))


def sr_pairs(pictures, n, size, rng, scale=SCALE):
    """(LR (n, 3, size/scale, size/scale), HR (n, 3, size, size)) from random crops of ``pictures``."""
    if size % scale:
        raise ValueError(f"sr_pairs: the crop {size} is not a multiple of the scale {scale}")
    hr = random_crops(pictures, n, size, rng)
    return downsample(hr, scale), hr


def load_superres(data=None):
    """(train pictures, test pictures, description) of ``minigan.data.colour.load_colour``."""
    train, test, _, described = load_colour(data)
    return train, test, described
