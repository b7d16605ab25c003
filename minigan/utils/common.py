"""Two helpers every writer in ``minigan.utils`` shares: arrays out, bytes in safely."""
import contextlib
import os
import secrets

from ..backend import to_numpy  # noqa: F401  (arrays out: minigan.utils.to_numpy)


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
