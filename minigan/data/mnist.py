"""MNIST and Fashion-MNIST: 70 000 grayscale 28 x 28 images in 10 classes, from IDX files.

Nothing is fetched unless asked. The files are looked for, in order, in

1. ``directory`` when given (then only there);
2. Debian's package directory: ``apt-get install dataset-fashion-mnist`` puts
   Fashion-MNIST under ``/usr/share/datasets/fashion-mnist``;
3. minigan's cache, ``$MINIGAN_DATA/<name>`` (default ``~/.cache/minigan/<name>``),
   where ``download_idx_dataset(name)`` writes, checking each file's MD5 against the
   checksums the data sets publish (the same ones torchvision checks).

The four standard files (``train-images-idx3-ubyte`` etc.) may be gzipped or not.
Debian recompressed its copies, so their .gz checksums differ from the published
ones; local files are therefore not checksummed, only checked by the IDX reader.
"""
import hashlib
import os
import tempfile
import urllib.request

import numpy as np

from .idx import read_idx
from .transforms import rescale, resize

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
MNIST_CLASSES = tuple(str(d) for d in range(10))

FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}

# Published MD5 sums of the gzipped files; several mirrors, tried in order.
SOURCES = {
    "fashion-mnist": {
        "mirrors": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"],
        "md5": {"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
                "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
                "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"},
        "debian": "/usr/share/datasets/fashion-mnist",
        "classes": FASHION_MNIST_CLASSES,
    },
    "mnist": {
        "mirrors": ["https://ossci-datasets.s3.amazonaws.com/mnist/",
                    "http://yann.lecun.com/exdb/mnist/"],
        "md5": {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
                "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
                "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"},
        "debian": None,
        "classes": MNIST_CLASSES,
    },
}
FASHION_MNIST_DIR = SOURCES["fashion-mnist"]["debian"]


class DataNotFoundError(FileNotFoundError):
    """The files of a data set are not where they were looked for."""


def cache_dir(name):
    """Where ``download_idx_dataset`` puts data set ``name``: ``$MINIGAN_DATA/<name>``."""
    root = os.environ.get("MINIGAN_DATA", os.path.join("~", ".cache", "minigan"))
    return os.path.join(os.path.expanduser(root), name)


def search_dirs(name, directory=None):
    """The directories ``load_idx_dataset`` looks in, in order."""
    if directory is not None:
        return [os.fspath(directory)]
    debian = SOURCES[name]["debian"]
    return ([debian] if debian else []) + [cache_dir(name)]


def _find(directory, stem):
    # 'train-images-idx3-ubyte', its .gz, and the 'train-images.idx3-ubyte' spelling of some archives
    for candidate in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    return None


def _source(name):
    if name not in SOURCES:
        raise ValueError(f"unknown IDX data set {name!r}; known: {sorted(SOURCES)}")
    return SOURCES[name]


def _not_found(name, looked):
    places = "\n".join(f"  {d}" + ("" if os.path.isdir(d) else "  (no such directory)") for d in looked)
    how = [f"  download it (needs a network; writes to {cache_dir(name)}): pass download=True, "
           f"or call minigan.data.download_idx_dataset({name!r}),",
           "  or pass directory= the folder holding the four IDX files "
           "(train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-...)."]
    if name == "fashion-mnist":
        how.insert(0, "  on Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist,")
    return DataNotFoundError(f"{name}: the IDX files were not found. Looked in:\n{places}\nTo get them:\n"
                             + "\n".join(how))


def load_idx_dataset(name, split="train", directory=None, download=False):
    """Raw images (N, 28, 28) uint8 and labels (N,) int64 of 'mnist' or 'fashion-mnist'.

    ``split`` is 'train' (60 000), 'test' (10 000) or 'all' (train then test).
    """
    _source(name)
    if split == "all":
        parts = [load_idx_dataset(name, s, directory, download) for s in ("train", "test")]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    if split not in FILES:
        raise ValueError(f"{name}: split must be 'train', 'test' or 'all', got {split!r}")
    looked = search_dirs(name, directory)
    for d in looked:
        paths = [_find(d, stem) for stem in FILES[split]]
        if all(paths):
            break
    else:
        if not download:
            raise _not_found(name, looked)
        d = download_idx_dataset(name, directory)
        paths = [_find(d, stem) for stem in FILES[split]]
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{name}: {paths[0]} holds shape {images.shape} and {paths[1]} holds {labels.shape}; "
                         "expected (N, H, W) images and N labels")
    return images, labels.astype(np.int64)


def _load(name, split, directory, size, download, limit=None):
    images, labels = load_idx_dataset(name, split, directory, download)
    images, labels = images[:limit], labels[:limit]  # before resizing: the resize is the slow part
    images = rescale(images[:, None], (0, 255))
    if size != images.shape[-1]:
        images = np.clip(resize(images, size), -1.0, 1.0)
    return images, labels


def load_fashion_mnist(split="train", directory=None, size=28, download=False, limit=None):
    """Fashion-MNIST (Xiao et al. 2017) as float32 images in [-1, 1] of shape (N, 1, size, size),
    and int64 labels (names in ``FASHION_MNIST_CLASSES``).

    ``size`` other than 28 resizes bilinearly (32 for DCGAN-style networks).
    ``limit``: only the split's first ``limit`` images. See the module docstring for
    where the files are looked for.
    """
    return _load("fashion-mnist", split, directory, size, download, limit)


def load_mnist(split="train", directory=None, size=28, download=False):
    """MNIST (LeCun et al. 1998), as ``load_fashion_mnist``."""
    return _load("mnist", split, directory, size, download)


# ---------------------------------------------------------------- download


def _md5(path):
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_idx_dataset(name, directory=None, timeout=60):
    """Fetch the four gzipped files of ``name`` into ``directory`` (default ``cache_dir(name)``),
    each checked against its published MD5; returns the directory.

    A file already there with the right checksum is kept. Nothing in the tests or the
    default examples calls this.
    """
    source = _source(name)
    directory = os.fspath(directory) if directory is not None else cache_dir(name)
    os.makedirs(directory, exist_ok=True)
    for filename, md5 in source["md5"].items():
        target = os.path.join(directory, filename)
        if os.path.isfile(target) and _md5(target) == md5:
            continue
        errors = []
        for mirror in source["mirrors"]:
            fd, tmp = tempfile.mkstemp(dir=directory, suffix=".part")
            os.close(fd)
            try:
                with urllib.request.urlopen(mirror + filename, timeout=timeout) as response, open(tmp, "wb") as f:
                    for chunk in iter(lambda: response.read(1 << 20), b""):
                        f.write(chunk)
                got = _md5(tmp)
                if got != md5:
                    raise ValueError(f"MD5 {got}, expected {md5}")
                os.replace(tmp, target)
                break
            except Exception as error:  # network errors, HTTP errors, a bad checksum: try the next mirror
                errors.append(f"  {mirror + filename}: {error}")
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        else:
            raise RuntimeError(f"download_idx_dataset({name!r}): could not fetch {filename}:\n" + "\n".join(errors))
    return directory
