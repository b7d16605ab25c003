"""scikit-learn's handwritten digits: 1797 images of 8 x 8 pixels, shipped with
the package (no download), the lectures' smallest real image data set."""
import numpy as np

from .transforms import resize


def load_digits(size=8, split="all", test_fraction=0.2, seed=0):
    """Digits as float32 images in [-1, 1] of shape (N, 1, size, size), and int64 labels.

    ``size`` other than 8 resizes bilinearly (16 or 32 for convolutional models;
    ``transforms.resize``, the same numbers as PIL's BILINEAR).
    ``split`` is 'all', 'train' or 'test' (a fixed, seeded split).
    """
    from sklearn.datasets import load_digits as sklearn_digits
    bunch = sklearn_digits()
    images = bunch.images.astype(np.float32) / 16.0 * 2.0 - 1.0  # pixel values 0..16
    labels = bunch.target.astype(np.int64)
    images = images[:, None]
    if size != 8:
        images = np.clip(resize(images, size), -1.0, 1.0)
    if split != "all":
        if split not in ("train", "test"):
            raise ValueError(f"load_digits: split must be 'all', 'train' or 'test', got {split!r}")
        order = np.random.default_rng(seed).permutation(len(images))
        n_test = int(round(test_fraction * len(images)))
        keep = order[:n_test] if split == "test" else order[n_test:]
        images, labels = images[keep], labels[keep]
    return images, labels
