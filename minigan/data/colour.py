"""Colour pictures for colorization, all installed with the packages: the photographs that
ship with scikit-learn (``china``, ``flower``) and scikit-image (``astronaut``, ``chelsea``,
``coffee``, ``rocket``), and the colour texture patterns of GIMP (Debian's ``gimp-data``,
``/usr/share/gimp/2.0/patterns``), read by the small .pat reader below. ``--data DIR``
reads any folder of PNG, JPEG (or .pat) files instead.

The train/test split is by whole picture: the test crops come from pictures that no
training crop saw. Pictures are kept as float32 (3, H, W) arrays in [-1, 1]; the photos
are shrunk so that their shorter side is ``PHOTO_SIDE`` pixels, so a 32x32 crop holds a
part of an object rather than a patch of one colour. ``random_crops`` cuts batches
(N, 3, S, S); a picture smaller than the crop is tiled (GIMP's patterns are seamless).
"""
import os
import struct

import numpy as np

from .mnist import DataNotFoundError
from .transforms import rescale, resize

GIMP_PATTERNS = "/usr/share/gimp/2.0/patterns"
SKLEARN_PHOTOS = ("china", "flower")
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
TEST_PHOTOS = ("astronaut", "coffee", "flower")  # held out whole: half the photos, from both packages
TEST_EVERY = 5  # and every 5th pattern (or file of --data DIR), by sorted name
PHOTO_SIDE = 128
EXTENSIONS = (".png", ".jpg", ".jpeg", ".pat")


# ---------------------------------------------------------------- GIMP's .pat files


def read_pat(path):
    """One GIMP pattern: (pixels uint8 (H, W, C), name).

    The format (GIMP's devel-docs/pat.txt): a header of five big-endian uint32
    (header_size, version = 1, width, height, bytes per pixel: 1 grey, 2 grey + alpha,
    3 RGB, 4 RGBA), the magic b"GPAT", the pattern's name in UTF-8 ending in a zero byte
    (header_size counts all of it), then width * height * bytes-per-pixel raw bytes, row
    by row."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24 or data[20:24] != b"GPAT":
        raise ValueError(f"read_pat: {path} is not a GIMP pattern (no 'GPAT' magic at byte 20)")
    header_size, version, width, height, depth = struct.unpack(">5I", data[:20])
    if version != 1 or depth not in (1, 2, 3, 4):
        raise ValueError(f"read_pat: {path}: version {version}, {depth} bytes per pixel; expected version 1, "
                         "1 to 4 bytes per pixel")
    size = width * height * depth
    if len(data) < header_size + size:
        raise ValueError(f"read_pat: {path} is truncated: {len(data)} bytes, the header announces "
                         f"{header_size} + {width}x{height}x{depth}")
    name = data[24:header_size].split(b"\0")[0].decode("utf-8", "replace")
    pixels = np.frombuffer(data, np.uint8, size, header_size).reshape(height, width, depth)
    return pixels, name


def _to_rgb(pixels):
    """uint8 (H, W, C) with C = 3 or 4 -> float32 (3, H, W) in [-1, 1]; alpha composited on white."""
    rgb = pixels[..., :3].astype(np.float32)
    if pixels.shape[2] == 4:
        alpha = pixels[..., 3:].astype(np.float32) / 255
        rgb = alpha * rgb + (1 - alpha) * 255
    return rescale(rgb.transpose(2, 0, 1), (0, 255))


def _read(path):
    """A picture file -> uint8 (H, W, C)."""
    if path.lower().endswith(".pat"):
        return read_pat(path)[0]
    from PIL import Image
    with Image.open(path) as image:
        return np.asarray(image.convert("RGBA" if "A" in image.getbands() else "RGB"))


def load_folder(folder, recursive=True):
    """{relative path: (3, H, W) float32 in [-1, 1]} of the colour pictures under ``folder``
    (PNG, JPEG, GIMP .pat); greyscale files are skipped (they hold no colour to learn)."""
    if not os.path.isdir(folder):
        raise DataNotFoundError(f"load_folder: {folder!r} is not a folder")
    found = {}
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        if not recursive:
            dirs.clear()
        for name in sorted(files):
            path = os.path.join(root, name)
            if name.lower().endswith(EXTENSIONS):
                pixels = _read(path)
                if pixels.ndim == 3 and pixels.shape[2] in (3, 4):
                    found[os.path.relpath(path, folder)] = _to_rgb(pixels)
    if not found:
        raise DataNotFoundError(f"load_folder: no colour PNG, JPEG or .pat pictures under {folder!r}")
    return found


def load_gimp_patterns(folder=GIMP_PATTERNS):
    """GIMP's colour patterns, {subfolder/name.pat: (3, H, W)}; a clear error when not installed."""
    if not os.path.isdir(folder):
        raise DataNotFoundError(f"GIMP's patterns are not in {folder}: install them with "
                                "`sudo apt-get install gimp-data` (Debian, Ubuntu), or pass --data DIR "
                                "with a folder of PNG or JPEG pictures")
    return load_folder(folder)


def load_photos():
    """The colour photographs bundled with scikit-learn and scikit-image, {name: (3, H, W)},
    shrunk to a shorter side of ``PHOTO_SIDE``."""
    from sklearn.datasets import load_sample_image
    from skimage import data
    photos = {name: load_sample_image(f"{name}.jpg") for name in SKLEARN_PHOTOS}
    photos.update({name: getattr(data, name)() for name in SKIMAGE_PHOTOS})
    return {name: _shrink(_to_rgb(p)) for name, p in photos.items()}


def _shrink(image):
    scale = PHOTO_SIDE / min(image.shape[1:])
    size = (round(image.shape[1] * scale), round(image.shape[2] * scale))
    return np.clip(resize(image[None], size)[0], -1.0, 1.0)


def split_pictures(pictures, test_names=(), every=TEST_EVERY):
    """(train, test) lists of pictures, each in sorted order of the names: those named in
    ``test_names`` go to test, and (unless ``every`` is None) every ``every``-th of the rest."""
    names = sorted(pictures)
    rest = [n for n in names if n not in test_names]
    test = set(test_names) & set(names) | set(rest[::every] if every else ())
    return [pictures[n] for n in names if n not in test], [pictures[n] for n in names if n in test]


def load_colour(data=None):
    """(train pictures, test pictures, the kind of each test picture, description) for
    ``--data``: None for the photos ("photo") and GIMP's patterns ("pattern"), or a
    folder ("picture")."""
    if data is None:
        train, test = split_pictures(load_photos(), TEST_PHOTOS, every=None)
        patterns_train, patterns_test = split_pictures(load_gimp_patterns())
        kinds = ["photo"] * len(test) + ["pattern"] * len(patterns_test)
        return train + patterns_train, test + patterns_test, kinds, "photos and GIMP patterns"
    train, test = split_pictures(load_folder(data))
    if not train:
        raise DataNotFoundError(f"load_colour: {data!r} holds {len(test)} colour pictures; the split needs "
                                f"at least 2 (every {TEST_EVERY}th is held out for testing)")
    return train, test, ["picture"] * len(test), data


# ---------------------------------------------------------------- crops


def random_crops(pictures, n, size, rng, return_index=False):
    """(n, 3, size, size) float32 crops: each picks a picture uniformly, then a place in it
    uniformly; a picture smaller than ``size`` is tiled (indices wrap around). With
    ``return_index`` also the index of each crop's picture."""
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    crops = np.empty((n, 3, size, size), dtype=np.float32)
    index = rng.integers(len(pictures), size=n)
    for i, k in enumerate(index):
        picture = pictures[k]
        rows, cols = (_window(extent, size, rng) for extent in picture.shape[1:])
        crops[i] = picture[:, rows[:, None], cols[None, :]]
    return (crops, index) if return_index else crops


def _window(extent, size, rng):
    if extent >= size:
        start = rng.integers(extent - size + 1)
        return np.arange(start, start + size)
    return (rng.integers(extent) + np.arange(size)) % extent
