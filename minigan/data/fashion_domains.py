"""Fashion-MNIST classes as the domains of a multi-domain translation (StarGAN's RaFD
expressions, offline).

A domain is one Fashion-MNIST class; a translation to domain c should make the project's
classifier see class c. Two named sets:

  shoes  Sandal, Sneaker, Ankle boot: one layout (a shoe from the side, toe to the left),
         three shapes; the classifier tells them apart on 95-98% of real test images.
  tops   T-shirt/top, Pullover, Dress, Coat, Shirt: one layout (a garment from the front),
         five shapes, and the classes the classifier confuses most (Shirt with T-shirt,
         Pullover and Coat), so its verdict on a translation is noisier.

or any two or more class names, comma-separated (``"Sneaker,Ankle boot"``; case-insensitive,
"T-shirt" for "T-shirt/top"). Images are float32 (N, 1, size, size) in [-1, 1], 32 x 32 by
default (bilinear from 28 x 28, as ``load_fashion_mnist(size=32)``).
"""
from typing import NamedTuple

import numpy as np

from .mnist import FASHION_MNIST_CLASSES, load_idx_dataset
from .transforms import rescale, resize

DOMAIN_SETS = {"shoes": ("Sandal", "Sneaker", "Ankle boot"),
               "tops": ("T-shirt/top", "Pullover", "Dress", "Coat", "Shirt")}
_ALIASES = {"t-shirt": "T-shirt/top", "tshirt": "T-shirt/top", "top": "T-shirt/top"}


class FashionDomains(NamedTuple):
    """Images of the chosen classes, their domain index (position in ``names``), the
    domains' names and their Fashion-MNIST labels."""
    images: np.ndarray   # (N, 1, size, size) float32 in [-1, 1]
    domains: np.ndarray  # (N,) int64 in [0, len(names))
    names: tuple         # the domains' class names, in domain order
    classes: tuple       # their Fashion-MNIST labels (indices into FASHION_MNIST_CLASSES)


def parse_domains(spec):
    """A set's name ("shoes", "tops"), a comma-separated string or a sequence of class names
    -> (names, Fashion-MNIST labels). Unknown names, duplicates and fewer than two domains
    are refused with a ValueError naming what was wrong."""
    if isinstance(spec, str):
        if spec.strip().lower() in DOMAIN_SETS:
            spec = DOMAIN_SETS[spec.strip().lower()]
        else:
            spec = spec.split(",")
    lookup = {name.lower(): name for name in FASHION_MNIST_CLASSES}
    names = []
    for raw in spec:
        key = str(raw).strip().lower()
        name = lookup.get(key) or _ALIASES.get(key)
        if name is None:
            raise ValueError(f"unknown domain {str(raw).strip()!r}: expected one of the sets {sorted(DOMAIN_SETS)} "
                             f"or Fashion-MNIST class names {list(FASHION_MNIST_CLASSES)}, comma-separated")
        if name in names:
            raise ValueError(f"domain {name!r} is given twice in {list(spec)}")
        names.append(name)
    if len(names) < 2:
        raise ValueError(f"a translation needs at least two domains, got {names}")
    return tuple(names), tuple(FASHION_MNIST_CLASSES.index(n) for n in names)


def load_fashion_domains(split="train", domains="shoes", size=32, directory=None, limit=None):
    """The images of ``split`` ('train' or 'test') whose class is one of ``domains``, in the data
    set's order; ``limit`` keeps the first ``limit`` of them. See ``parse_domains``."""
    if split not in ("train", "test"):
        raise ValueError(f"load_fashion_domains: split must be 'train' or 'test', got {split!r}")
    names, classes = parse_domains(domains)
    images, labels = load_idx_dataset("fashion-mnist", split, directory)
    keep = np.isin(labels, classes)
    images, labels = images[keep][:limit], labels[keep][:limit]  # before resizing, the slow part
    images = rescale(images[:, None], (0, 255))  # as load_fashion_mnist: [-1, 1], bilinear to size
    if size != images.shape[-1]:
        images = np.clip(resize(images, size), -1.0, 1.0)
    index = np.full(len(FASHION_MNIST_CLASSES), -1, np.int64)
    index[list(classes)] = np.arange(len(classes))
    return FashionDomains(images, index[labels], names, classes)
