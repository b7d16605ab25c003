"""Two helpers every writer in ``minigan.utils`` shares: arrays out, bytes in safely."""
import contextlib
import os
import secrets

import numpy as np


def to_numpy(x):
    """A NumPy array from a NumPy/CuPy array, a minigan Tensor, or anything array-like.

    A Tensor is duck-typed as an object with a ``.data`` array, so this module
    never imports the autograd engine.
    """
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, np.generic):  # NumPy scalars have a ``.data`` memoryview: not a Tensor
        return np.asarray(x)
    if hasattr(x, "__cuda_array_interface__") and hasattr(x, "get"):  # CuPy: copy to the host
        return x.get()
    data = getattr(x, "data", None)
    if data is not None and not isinstance(data, type(x)):
        return to_numpy(data)
    if data is not None and hasattr(x, "detach"):  # torch: ``.data`` is another Tensor
        return x.detach().cpu().numpy()
    return np.asarray(x)


def ensure_parent(path):
    """Create the directory ``path`` will be written into; returns ``path`` as a str."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return path


def atomic_write(path, data):
    """Write ``data`` (bytes) to ``path`` so that a reader sees the old file or the new one.

    The bytes go to a temporary file in the same directory (``os.replace`` is only
    atomic within one file system), are flushed to disk, and only then renamed over
    ``path``. A crash at any point leaves ``path`` as it was.
    """
    path = ensure_parent(path)
    tmp = f"{path}.{secrets.token_hex(4)}.tmp"  # opened with "x": honours the umask, unlike mkstemp
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(os.path.dirname(os.path.abspath(path)))


def _fsync_directory(directory):
    # The rename itself is durable only once the directory entry is on disk (POSIX);
    # Windows cannot open a directory, and there the rename is all we can do.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
