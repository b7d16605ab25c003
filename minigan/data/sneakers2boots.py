"""sneakers2boots: CycleGAN's horse <-> zebra, offline, on Fashion-MNIST.

Two domains of one data set that share a layout (a shoe, seen from the side, toe to the
left) but differ in shape: X = sneakers (class 7), Y = ankle boots (class 9). The
training split has 6000 of each and the test split 1000 of each; the two domains hold
different garments, so no image of X has a counterpart in Y, as no horse photo comes
with the zebra photo of the same scene. A translation is judged by the project's
Fashion-MNIST classifier (does it see the target class?) and by its cycle.

Images are float32 (N, 1, size, size) in [-1, 1], 32 x 32 by default (bilinear from
28 x 28, as ``load_fashion_mnist(size=32)``).
"""
from typing import NamedTuple

import numpy as np

from .mnist import load_fashion_mnist

SNEAKER, ANKLE_BOOT = 7, 9  # Fashion-MNIST's labels (FASHION_MNIST_CLASSES)


class UnpairedDomains(NamedTuple):
    """Images of domain X and of domain Y, and the Fashion-MNIST class of each domain."""
    x: np.ndarray   # (N_x, 1, H, W) float32 in [-1, 1]
    y: np.ndarray   # (N_y, 1, H, W)
    x_class: int
    y_class: int


def load_sneakers2boots(split="train", size=32, directory=None):
    """Sneakers (X) and ankle boots (Y) of Fashion-MNIST's ``split`` ('train' or 'test'),
    in the order of the data set: ``UnpairedDomains(x, y, 7, 9)``."""
    if split not in ("train", "test"):
        raise ValueError(f"load_sneakers2boots: split must be 'train' or 'test', got {split!r}")
    images, labels = load_fashion_mnist(split, directory=directory, size=size)
    return UnpairedDomains(images[labels == SNEAKER], images[labels == ANKLE_BOOT], SNEAKER, ANKLE_BOOT)
