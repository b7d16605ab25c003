"""metrics.json: the numbers a run reports, in a file any JSON reader can open."""
import json
import math

import numpy as np

from .common import atomic_write, to_numpy


def write_metrics(path, metrics):
    """Write ``metrics`` (a dict) to ``path`` as pretty-printed JSON with sorted keys, atomically.

    NumPy scalars and arrays (and Tensors) become Python numbers and lists, tuples
    become lists, dict keys become strings. NaN and infinities, which strict JSON
    cannot hold, are written as null.
    """
    text = json.dumps(_plain(metrics), indent=2, sort_keys=True, allow_nan=False)
    atomic_write(path, (text + "\n").encode("utf-8"))


def _plain(value):
    """``value`` as plain JSON types."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return None if isinstance(value, float) and not math.isfinite(value) else value
    if isinstance(value, np.generic) or hasattr(value, "shape") or hasattr(value, "array") or hasattr(value, "data"):
        return _plain(to_numpy(value).tolist())  # tolist: NumPy scalars -> Python numbers
    raise TypeError(f"write_metrics: cannot write {type(value).__name__} {value!r} as JSON")
