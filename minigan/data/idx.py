"""The IDX file format of MNIST and Fashion-MNIST: a tiny header, then raw big-endian numbers.

    bytes 0-1   zero
    byte  2     the element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                0x0D float32, 0x0E float64
    byte  3     the number of dimensions d
    then        d sizes, each a big-endian uint32
    then        the elements, row-major, big-endian

Files are often gzipped (``train-images-idx3-ubyte.gz``); ``read_idx`` looks at the
first two bytes (gzip's 1f 8b) rather than trusting the name.
"""
import gzip
import io
import os
import zlib

import numpy as np

from ..utils.common import atomic_write

IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODES = {np.dtype(t).newbyteorder("="): code for code, t in IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


class IDXError(ValueError):
    """A file that is not a well-formed IDX file."""


def read_idx(path):
    """The array stored in the IDX file ``path`` (gzipped or not), in native byte order."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise IDXError(f"{path!r}: a gzip file that cannot be decompressed "
                           f"(truncated download?): {error}") from error
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise IDXError(f"{path!r} is not an IDX file: its magic number is {raw[:4].hex() or 'empty'}, "
                       f"expected 0000 then a type code in "
                       f"{sorted(hex(c) for c in IDX_DTYPES)} then the number of dimensions")
    dtype, ndim = np.dtype(IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXError(f"{path!r}: truncated IDX header ({len(raw)} bytes, {ndim} dimensions need {header})")
    shape = tuple(int(n) for n in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise IDXError(f"{path!r}: header says shape {shape} of {dtype.newbyteorder('=')} "
                       f"({expected} bytes in all), but the file holds {len(raw)} bytes")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def write_idx(path, array):
    """Write ``array`` as an IDX file (gzipped when ``path`` ends in .gz), atomically."""
    array = np.asarray(array)
    code = _CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(f"write_idx: IDX cannot store dtype {array.dtype}; "
                        f"use one of {sorted(str(np.dtype(t).newbyteorder('=')) for t in IDX_DTYPES.values())}")
    if array.ndim > 255:
        raise ValueError(f"write_idx: IDX stores at most 255 dimensions, got {array.ndim}")
    buffer = io.BytesIO()
    buffer.write(bytes([0, 0, code, array.ndim]))
    buffer.write(np.asarray(array.shape, dtype=">u4").tobytes())
    buffer.write(np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes())
    data = buffer.getvalue()
    if os.fspath(path).endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    atomic_write(path, data)
