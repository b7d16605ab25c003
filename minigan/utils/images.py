"""Pictures of samples: image grids as arrays and PNGs, and scatter plots of 2-D points."""
import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from .common import atomic_save, to_numpy


def make_grid(images, nrow=8, padding=2, pad_value=0.0, value_range=None, normalize=False):
    """Tile a batch of images (N, C, H, W) into one image (C, H', W'), like torchvision.

    Images fill rows of ``nrow`` left to right; every image has ``padding`` pixels of
    ``pad_value`` on each side, shared between neighbours, so the grid is
    ``rows * (H + padding) + padding`` high. With ``normalize`` the images are first
    clipped to ``value_range`` (default: the batch's min and max) and mapped to [0, 1];
    ``pad_value`` is then in those [0, 1] units.

    Unlike torchvision, one-channel images stay one channel, and a batch of one image
    is padded like any other.
    """
    batch = _as_batch(images)
    if nrow < 1:
        raise ValueError(f"make_grid: nrow must be at least 1, got {nrow}")
    if normalize:
        batch = _to_unit_range(batch, value_range)
    n, channels, height, width = batch.shape
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    cell_h, cell_w = height + padding, width + padding
    grid = np.full((channels, rows * cell_h + padding, cols * cell_w + padding), pad_value,
                   dtype=batch.dtype)
    for k, image in enumerate(batch):
        row, col = divmod(k, cols)
        top, left = row * cell_h + padding, col * cell_w + padding
        grid[:, top:top + height, left:left + width] = image
    return grid


def save_image(images, path, nrow=8, value_range=(-1, 1), padding=2, pad_value=0.0):
    """Write a grid of ``images`` (N, C, H, W) with C = 1, 3 or 4 to a PNG at ``path``.

    ``value_range`` (lo, hi) is mapped to pixel values 0..255 and anything outside it
    is clipped; the default fits a generator with a tanh output. ``None`` uses the
    batch's min and max. ``pad_value`` is in [0, 1] (0 = black, 1 = white).
    """
    grid = make_grid(images, nrow, padding, pad_value, value_range, normalize=True)
    pixels = np.clip(grid * 255 + 0.5, 0, 255).astype(np.uint8)  # round half up, as torchvision
    channels = pixels.shape[0]
    if channels == 1:
        picture = Image.fromarray(pixels[0])  # 8-bit grayscale
    elif channels in (3, 4):
        picture = Image.fromarray(np.ascontiguousarray(pixels.transpose(1, 2, 0)))  # RGB(A)
    else:
        raise ValueError(f"save_image: images have {channels} channels; expected 1, 3 or 4")
    atomic_save(path, lambda f: picture.save(f, format="PNG"))


def save_points(points, path, reference=None, title=None, limits=None):
    """Scatter plot of 2-D samples (N, 2) to ``path``, e.g. a GAN's toy distribution.

    ``reference`` points (e.g. the centers of a mixture's modes) are drawn on top as
    red crosses. ``limits=(lo, hi)`` fixes both axes, so frames from different
    training steps can be compared.
    """
    points = _as_points(points, "points")
    figure = Figure(figsize=(5, 5))
    FigureCanvasAgg(figure)  # Agg without pyplot: no global backend switch, no figure leak
    axes = figure.add_subplot()
    axes.scatter(points[:, 0], points[:, 1], s=4, alpha=0.5, label="samples")
    if reference is not None:
        reference = _as_points(reference, "reference")
        axes.scatter(reference[:, 0], reference[:, 1], s=60, marker="x", color="red",
                     label="reference", zorder=3)
        axes.legend(loc="upper right")
    if limits is not None:
        axes.set_xlim(*limits)
        axes.set_ylim(*limits)
    axes.set_aspect("equal")
    if title:
        axes.set_title(title)
    atomic_save(path, lambda f: figure.savefig(f, format="png", dpi=100, bbox_inches="tight"))


def _as_batch(images):
    """(N, C, H, W) from a batch, a list of (C, H, W) images, one (C, H, W) or one (H, W)."""
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError("make_grid: got an empty list of images")
        batch = np.concatenate([_as_batch(image) for image in images])
    else:
        batch = to_numpy(images)
        if batch.ndim in (2, 3):  # one image: (H, W) or (C, H, W)
            batch = batch.reshape((1,) * (4 - batch.ndim) + batch.shape)
    if batch.ndim != 4 or batch.shape[0] == 0:
        raise ValueError(f"make_grid: expected images of shape (N, C, H, W) with N >= 1, "
                         f"got {batch.shape}")
    return batch


def _to_unit_range(batch, value_range):
    batch = batch.astype(np.result_type(batch.dtype, np.float32))
    lo, hi = value_range if value_range is not None else (batch.min(), batch.max())
    return (np.clip(batch, lo, hi) - lo) / max(hi - lo, 1e-5)  # 1e-5: a constant batch is not 0/0


def _as_points(points, name):
    points = to_numpy(points)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"save_points: {name} must have shape (N, 2), got {points.shape}")
    return points
