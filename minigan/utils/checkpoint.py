"""Checkpoints: a nested training state in one safetensors file, never a pickle.

A state is a tree of dicts, lists and tuples whose leaves are arrays (NumPy,
CuPy, or a minigan Tensor), numbers, strings, bools and None, e.g.::

    {"step": 1200,
     "model": {"generator.0.weight": G_weight, ...},
     "optimizers": {"g": {"state": {0: {"step": 3, "exp_avg": m}}, "param_groups": [...]}},
     "rng": mg.backend.get_rng_state()}

Each array is stored as a safetensors tensor named by its path joined with '.'
(``optimizers.g.state.0.exp_avg``). Everything else is one JSON document in the
file's metadata: the tree with every array replaced by its name. Containers are
tagged (``{"dict": [[key, value], ...]}``, ``{"list": [...]}``, ``{"tuple": [...]}``)
so that integer dict keys and tuples come back as they went in; Python's JSON
keeps integers of any size exactly (the 128-bit PCG64 RNG state survives).

The metadata also holds a CRC-32 of each tensor's bytes (``"crc32": {name: value}``);
loading checks them and names the file and the tensor whose bytes changed.
Checkpoints written before the checksums existed load unchecked.

Loading returns the same tree with NumPy arrays (dtype and shape preserved, 0-d
included); NumPy scalars come back as NumPy scalars of the same dtype.
"""
import json
import os
import zlib

import numpy as np
import safetensors.numpy
from safetensors import safe_open

from .common import atomic_write, to_numpy

_METADATA_KEY = "minigan"
_FORMAT = "minigan-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint file that exists but cannot be read as one."""


def save_checkpoint(path, state):
    """Write ``state`` to ``path`` (a ``.safetensors`` file), atomically."""
    arrays = {}
    tree = _encode(state, (), arrays)
    checksums = {name: _crc32(array) for name, array in arrays.items()}
    metadata = {_METADATA_KEY: json.dumps({"format": _FORMAT, "tree": tree, "crc32": checksums})}
    try:
        data = safetensors.numpy.save(arrays, metadata=metadata)
    except Exception as error:  # e.g. a dtype safetensors cannot store
        raise TypeError(f"save_checkpoint({os.fspath(path)!r}): {error}") from error
    atomic_write(path, data)


def load_checkpoint(path):
    """Read a state written by ``save_checkpoint``; arrays come back as NumPy arrays."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint at {path!r}")
    try:
        with safe_open(path, framework="numpy") as f:
            metadata = f.metadata() or {}
            arrays = {name: f.get_tensor(name) for name in f.keys()}
    except OSError:
        raise
    except Exception as error:  # safetensors' own error type for a truncated or foreign file
        raise CheckpointError(f"{path!r} is not a readable safetensors file "
                              f"(truncated or corrupt?): {error}") from error
    if _METADATA_KEY not in metadata:
        raise CheckpointError(f"{path!r} is a safetensors file but not a minigan checkpoint "
                              f"(no {_METADATA_KEY!r} entry in its metadata)")
    try:
        header = json.loads(metadata[_METADATA_KEY])
        if header.get("format") != _FORMAT:
            raise ValueError(f"unknown format {header.get('format')!r}, expected {_FORMAT!r}")
        checksums = header.get("crc32", {})  # absent in checkpoints older than the checksums
        tree = _decode(header["tree"], arrays)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise CheckpointError(f"{path!r}: malformed checkpoint metadata: {error}") from error
    for name, expected in checksums.items():
        if name not in arrays:
            raise CheckpointError(f"{path!r}: tensor {name!r} has a checksum but is missing from the file")
        if _crc32(arrays[name]) != expected:
            raise CheckpointError(f"{path!r}: tensor {name!r} is corrupt: its bytes do not match the "
                                  "checksum stored when the checkpoint was written")
    return tree


def _crc32(array):
    """CRC-32 of an array's bytes as safetensors stores them (C order, little-endian)."""
    array = np.ascontiguousarray(array)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    return zlib.crc32(memoryview(array).cast("B")) if array.size else 0


# ---------------------------------------------------------------- the tree <-> JSON

def _encode(node, path, arrays):
    """JSON for ``node``; arrays under it are moved into ``arrays`` by dotted path."""
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, np.generic):
        if node.dtype.kind not in "biuf":
            raise TypeError(f"save_checkpoint: cannot store NumPy scalar of dtype {node.dtype} "
                            f"at {_dotted(path)!r}")
        return {"numpy": node.dtype.name, "value": node.item()}
    if isinstance(node, dict):
        return {"dict": [[_encode_key(key, path), _encode(value, path + (key,), arrays)]
                         for key, value in node.items()]}
    if isinstance(node, (list, tuple)):
        items = [_encode(value, path + (i,), arrays) for i, value in enumerate(node)]
        return {"tuple" if isinstance(node, tuple) else "list": items}
    if hasattr(node, "shape") or hasattr(node, "array") or hasattr(node, "data"):  # ndarray, CuPy array, Tensor
        name = _dotted(path) or "state"
        if name in arrays:
            raise ValueError(f"save_checkpoint: two arrays would be stored as {name!r}; "
                             "rename a key so that dotted paths are unique")
        array = to_numpy(node)
        if array.dtype.kind not in "biufc":
            raise TypeError(f"save_checkpoint: array {name!r} has dtype {array.dtype}; "
                            "only numeric and bool arrays can be stored")
        arrays[name] = array
        return {"array": name}
    raise TypeError(f"save_checkpoint: cannot store {type(node).__name__} at {_dotted(path)!r}")


def _encode_key(key, path):
    # Keys are leaves: an array key would need a tensor name of its own.
    found = {}
    encoded = _encode(key, path, found)
    if found:
        raise TypeError(f"save_checkpoint: an array cannot be a dict key (at {_dotted(path)!r})")
    return encoded


def _decode(node, arrays):
    if not isinstance(node, dict):  # a plain JSON leaf: every container is tagged
        return node
    if "dict" in node:
        return {_decode(key, arrays): _decode(value, arrays) for key, value in node["dict"]}
    if "list" in node:
        return [_decode(value, arrays) for value in node["list"]]
    if "tuple" in node:
        return tuple(_decode(value, arrays) for value in node["tuple"])
    if "array" in node:
        return arrays[node["array"]]
    if "numpy" in node:
        return np.dtype(node["numpy"]).type(node["value"])
    raise ValueError(f"unknown node {node!r}")


def _dotted(path):
    return ".".join(str(part) for part in path)
