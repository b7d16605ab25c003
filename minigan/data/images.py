"""scikit-image's bundled pictures: photos and textures for single-image models (SinGAN,
style transfer, texture synthesis) and a small set of faces. They ship inside the
scikit-image wheel, so nothing is downloaded (``pip install scikit-image``).

Every loader returns float32 arrays of shape (N, C, H, W) in [-1, 1], as the other
loaders do.
"""
import numpy as np

from .transforms import rescale, resize

PHOTOS = ("astronaut", "coffee", "chelsea")  # RGB photos
TEXTURES = ("brick", "grass", "gravel")  # grayscale 512 x 512 textures
IMAGES = PHOTOS + TEXTURES


def _skimage_data():
    try:
        from skimage import data
    except ImportError as error:
        raise ImportError("minigan.data: the photos, textures and lfw_subset come with scikit-image: "
                          "pip install scikit-image (or pip install minigan[examples])") from error
    return data


def _finish(images, size, channels, name):
    """(N, C, H, W) in [-1, 1] -> the requested channels and size."""
    if channels is not None and channels != images.shape[1]:
        if channels == 1 and images.shape[1] == 3:
            # luma as in ITU-R 601-2 (what PIL's convert("L") computes)
            images = np.tensordot(np.array([0.299, 0.587, 0.114], dtype=np.float32), images, axes=([0], [1]))[:, None]
        elif channels == 3 and images.shape[1] == 1:
            images = np.repeat(images, 3, axis=1)
        else:
            raise ValueError(f"{name}: cannot turn {images.shape[1]} channels into {channels}")
    if size is not None:
        images = np.clip(resize(images, size), -1.0, 1.0)
    return np.ascontiguousarray(images, dtype=np.float32)


def load_image(name, size=None, channels=None):
    """One picture as an array (1, C, H, W) in [-1, 1].

    ``name``: a photo ('astronaut' 512x512, 'coffee' 400x600, 'chelsea' 300x451, all RGB)
    or a texture ('brick', 'grass', 'gravel', grayscale 512x512).
    ``size``: None (as stored), an int (the shorter side, aspect ratio kept) or (H, W).
    ``channels``: None (as stored), 1 (grayscale) or 3 (RGB; gray repeated).
    """
    if name not in IMAGES:
        raise ValueError(f"load_image: unknown image {name!r}; choose one of {IMAGES}")
    image = getattr(_skimage_data(), name)()  # uint8, (H, W) or (H, W, 3)
    image = image[None, None] if image.ndim == 2 else image.transpose(2, 0, 1)[None]
    return _finish(rescale(image, (0, 255)), size, channels, f"load_image({name!r})")


def load_lfw_subset(size=None, include_non_faces=False):
    """Faces from Labeled Faces in the Wild, as scikit-image bundles them: 100 grayscale
    25 x 25 face crops, and 100 non-face crops of the same size.

    Returns images (N, 1, H, W) in [-1, 1] and int64 labels (1 face, 0 not a face):
    the 100 faces, followed by the 100 non-faces when ``include_non_faces``.
    """
    images = _skimage_data().lfw_subset()  # (200, 25, 25) float64 in [0, 1]; faces first
    labels = np.repeat(np.array([1, 0], dtype=np.int64), 100)
    if not include_non_faces:
        images, labels = images[:100], labels[:100]
    return _finish(rescale(images[:, None], (0.0, 1.0)), size, None, "load_lfw_subset"), labels
