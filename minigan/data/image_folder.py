"""Any folder of pictures as a training set: ``--data DIR`` of the image GANs.

Every PNG or JPEG under the folder (subfolders included, in sorted order) is decoded,
resized so that its shorter side is ``resolution`` pixels (bilinear, antialiased, as
``torchvision.transforms.Resize``), cut to the centered ``resolution`` x ``resolution``
square (``CenterCrop``) and scaled to [-1, 1]. Pictures of any size, greyscale or colour
(alpha composited on white), mix freely: ``channels=3`` repeats a grey picture's one
channel, ``channels=1`` turns colour into luma (ITU-R 601, as Pillow's ``convert("L")``).

Decoding a few thousand JPEGs takes longer than a training step, so the result is cached
as ``$MINIGAN_DATA/image_folder/<key>.npz`` (default ``~/.cache/minigan``), written
atomically; the key covers the folder's path, each file's name, size and modification
time, the resolution and the channels, so a changed folder is decoded again. A cache that
cannot be written is skipped, not an error.
"""
import hashlib
import os

import numpy as np

from ..utils.common import atomic_save
from .mnist import DataNotFoundError, cache_dir
from .transforms import center_crop, rescale, resize

EXTENSIONS = (".png", ".jpg", ".jpeg")


def image_files(folder):
    """The PNG and JPEG files under ``folder``, sorted, as paths."""
    if not os.path.isdir(folder):
        raise DataNotFoundError(f"--data {folder!r}: not a folder")
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        found += [os.path.join(root, name) for name in sorted(files) if name.lower().endswith(EXTENSIONS)]
    if not found:
        raise DataNotFoundError(f"--data {folder!r}: no PNG or JPEG pictures in it or its subfolders")
    return found


def _decode(path, channels):
    """One file -> float32 (channels, H, W) in [0, 255]."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as image:
            if "A" in image.getbands() or image.mode == "P":  # transparency: composite on white
                rgba = image.convert("RGBA")
                image = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                image.alpha_composite(rgba)
            pixels = np.asarray(image.convert("L" if channels == 1 else "RGB"), dtype=np.float32)
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"--data: cannot read {path}: {error}") from None
    return pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)


def _square(pixels, resolution):
    """(C, H, W) -> (C, R, R): shorter side to R, then the centered square."""
    batch = resize(pixels[None], resolution) if min(pixels.shape[1:]) != resolution else pixels[None]
    return center_crop(batch, resolution)[0]


def _cache_key(files, resolution, channels):
    digest = hashlib.sha256(f"{resolution}:{channels}".encode())
    for path in files:
        info = os.stat(path)
        digest.update(f"\0{os.path.abspath(path)}\0{info.st_size}\0{info.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]


def load_image_folder(folder, resolution, channels=3, cache=True):
    """The pictures under ``folder`` as float32 (N, channels, resolution, resolution) in
    [-1, 1], in sorted file order (see the module's docstring)."""
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or resolution < 1:
        raise ValueError(f"load_image_folder: resolution must be a positive int, got {resolution!r}")
    if channels not in (1, 3):
        raise ValueError(f"load_image_folder: channels must be 1 or 3, got {channels!r}")
    files = image_files(folder)
    path = os.path.join(cache_dir("image_folder"), _cache_key(files, resolution, channels) + ".npz")
    if cache and os.path.exists(path):
        try:
            with np.load(path) as stored:
                return stored["images"]
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache is decoded again and replaced
    images = np.stack([_square(_decode(f, channels), resolution) for f in files])
    images = rescale(np.clip(images, 0, 255), (0, 255)).astype(np.float32)
    if cache:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            atomic_save(path, lambda f: np.savez_compressed(f, images=images))
        except OSError:
            pass  # a read-only cache costs time, not the run
    return images
