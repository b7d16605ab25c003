"""Two helpers every writer in ``minigan.utils`` shares: arrays out, bytes in safely."""
import contextlib
import io
import os
import re
import secrets

from ..backend import to_numpy  # noqa: F401  (arrays out: minigan.utils.to_numpy)


def ensure_parent(path):
    """Create the directory ``path`` will be written into; returns ``path`` as a str."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return path


_TMP_SUFFIX = ".tmp"
_TMP_NAME = re.compile(r"^.+\.[0-9a-f]{8}\.tmp$")  # what atomic_write names its temporaries


def atomic_write(path, data):
    """Write ``data`` (bytes) to ``path`` so that a reader sees the old file or the new one.

    The bytes go to a temporary file in the same directory (``os.replace`` is only
    atomic within one file system), are flushed to disk, and only then renamed over
    ``path``. A crash at any point leaves ``path`` as it was.
    """
    path = ensure_parent(path)
    tmp = f"{path}.{secrets.token_hex(4)}{_TMP_SUFFIX}"  # opened with "x": honours the umask, unlike mkstemp
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


def atomic_save(path, write):
    """Write a file atomically through ``write(file)``, which writes into a binary
    file object (``np.savez_compressed``, ``Image.save``, ``Figure.savefig``...).

    The bytes are gathered in memory and handed to ``atomic_write``: a failure while
    writing leaves the previous file at ``path`` as it was, and no temporary behind.
    """
    buffer = io.BytesIO()
    write(buffer)
    atomic_write(path, buffer.getvalue())


def save_npz(path, **arrays):
    """``np.savez_compressed(path, **arrays)``, atomically (see ``atomic_write``)."""
    import numpy as np
    atomic_save(path, lambda f: np.savez_compressed(f, **arrays))


def remove_stale_temporaries(directory):
    """Delete the temporaries ``atomic_write`` leaves when a process is killed while
    writing (``NAME.<8 hex digits>.tmp``) in ``directory``; returns their paths."""
    removed = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(directory):
            if _TMP_NAME.match(entry.name) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(entry.path)
    return removed
