"""edges2fashion: pix2pix's edges2shoes task, offline, on Fashion-MNIST.

pix2pix (Isola et al. 2017) learns to paint a photo from its edge map; its
edges2shoes pairs come from running an edge detector over product photos. Here the
photos are Fashion-MNIST's garments at 32 x 32 (``load_fashion_mnist(size=32)``),
and the edge map of each is scikit-image's Canny detector at a fixed scale:

    input  = canny(image, sigma=1.0) as an image: +1 on an edge, -1 elsewhere
    target = the image, in [-1, 1]

Both are float32 arrays (N, 1, 32, 32) in [-1, 1]; the edges are white lines on
black, the polarity of the garments themselves. Canny runs on the image mapped to
[0, 1] with scikit-image's default hysteresis thresholds (0.1 and 0.2 of the
range, on the gradient magnitude after Gaussian smoothing with ``sigma``).

Train on the training split (60 000 pairs); score on the test split (10 000).

**Unpaired** (for CycleGAN): ``load_unpaired_edges2fashion`` cuts the training split
in two halves by a seeded permutation and takes the edges of one half and the images
of the other, so no edge map ever comes with its own image.

Cost: Canny takes about 0.2 ms per 32 x 32 image on one CPU core, 12 s for the
training split. The edge maps are therefore cached, as a compressed .npz under
``$MINIGAN_DATA/edges2fashion`` (default ``~/.cache/minigan/edges2fashion``), written
atomically; the cache records a CRC-32 of the images it was computed from and is
recomputed when they differ. A cache that cannot be written is skipped, not an error.
"""
import os
import zlib
from typing import NamedTuple

import numpy as np

from ..utils.common import atomic_save
from .mnist import cache_dir, load_fashion_mnist

SIGMA = 1.0       # Canny's Gaussian scale in pixels at 32 x 32: outlines, not the fabric's texture
IMAGE_SIZE = 32


class Edges2Fashion(NamedTuple):
    """Paired data: ``edges[i]`` is the edge map of ``images[i]``, of class ``labels[i]``."""
    edges: np.ndarray    # (N, 1, H, W) float32, +1 on an edge, -1 elsewhere: the translation's input
    images: np.ndarray   # (N, 1, H, W) float32 in [-1, 1]: its target
    labels: np.ndarray   # (N,) int64, Fashion-MNIST's classes


class UnpairedEdges2Fashion(NamedTuple):
    """Unpaired data: edge maps of some garments, images of other garments."""
    edges: np.ndarray         # (N_a, 1, H, W) edge maps of one half of the training split
    edge_labels: np.ndarray   # (N_a,) the classes of the garments those edges came from
    images: np.ndarray        # (N_b, 1, H, W) images of the other half
    image_labels: np.ndarray  # (N_b,)


def canny_edges(images, sigma=SIGMA):
    """The Canny edge map of each image: (N, 1, H, W) in [-1, 1] -> float32 (N, 1, H, W),
    +1 on an edge pixel and -1 elsewhere."""
    from skimage.feature import canny
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"canny_edges: expected grayscale images (N, 1, H, W), got shape {images.shape}")
    unit = (images[:, 0].astype(np.float64) + 1.0) / 2.0  # Canny's default thresholds are for [0, 1]
    edges = np.stack([canny(image, sigma=sigma) for image in unit]) if len(unit) else np.zeros(unit.shape, bool)
    return np.where(edges, 1.0, -1.0).astype(np.float32)[:, None]


def _fingerprint(images):
    return np.uint32(zlib.crc32(np.ascontiguousarray(images).tobytes()))


def _cached_edges(images, path, sigma):
    """Edges of ``images`` from the .npz at ``path`` when it was made from the same
    images with the same sigma; otherwise computed, and written there (atomically)."""
    crc = _fingerprint(images)
    if path is not None and os.path.isfile(path):
        try:
            with np.load(path) as held:
                if held["crc32"] == crc and held["sigma"] == sigma and held["edges"].shape == images.shape:
                    return np.where(held["edges"], 1.0, -1.0).astype(np.float32)
        except (OSError, ValueError, KeyError, zlib.error):
            pass  # a damaged cache is recomputed and replaced
    edges = canny_edges(images, sigma)
    if path is not None:
        try:
            atomic_save(path, lambda f: np.savez_compressed(f, edges=edges > 0, crc32=crc, sigma=np.float64(sigma)))
        except OSError:
            pass  # a read-only cache directory costs time, not the run
    return edges


def edges_cache_path(split, size=IMAGE_SIZE, sigma=SIGMA):
    """Where the edge maps of ``split`` are cached (under ``$MINIGAN_DATA``)."""
    return os.path.join(cache_dir("edges2fashion"), f"{split}-{size}px-sigma{sigma:g}.npz")


def load_edges2fashion(split="train", size=IMAGE_SIZE, sigma=SIGMA, directory=None, cache=True, limit=None):
    """Paired edges2fashion of ``split`` ('train' or 'test'): ``Edges2Fashion(edges, images, labels)``.

    ``directory``: where Fashion-MNIST's IDX files are (default: the usual search,
    see ``minigan.data.mnist``). ``cache=False`` computes the edges without reading or
    writing the cache. ``limit``: only the split's first ``limit`` examples, their
    edges computed for them alone (the cache holds whole splits).
    """
    if split not in ("train", "test"):
        raise ValueError(f"load_edges2fashion: split must be 'train' or 'test', got {split!r}")
    images, labels = load_fashion_mnist(split, directory=directory, size=size, limit=limit)
    cache = cache and limit is None
    path = edges_cache_path(split, size, sigma) if cache else None
    return Edges2Fashion(_cached_edges(images, path, sigma), images, labels)


def unpaired_halves(n, seed=0):
    """Indices of the two disjoint halves of ``n`` training examples (a seeded
    permutation): edges come from the first, images from the second."""
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[:n // 2]), np.sort(order[n // 2:])


def load_unpaired_edges2fashion(size=IMAGE_SIZE, sigma=SIGMA, seed=0, directory=None, cache=True):
    """Unpaired edges2fashion for CycleGAN: ``UnpairedEdges2Fashion(edges, edge_labels,
    images, image_labels)``, edge maps of one half of the training split and images of
    the other half, so no true pair is ever seen. Score on ``load_edges2fashion('test')``.
    """
    paired = load_edges2fashion("train", size, sigma, directory, cache)
    a, b = unpaired_halves(len(paired.images), seed)
    return UnpairedEdges2Fashion(paired.edges[a], paired.labels[a], paired.images[b], paired.labels[b])
