"""The kernel switch: whether an op runs its Triton kernel or its NumPy/CuPy code."""
import os

import numpy as np

from .devices import device_of


def kernels_enabled(*arrays):
    """Whether the Triton kernels should run for ``arrays`` (the op's inputs; None is skipped).

    On CuPy arrays they are on unless ``MINIGAN_KERNELS=0``; on NumPy arrays they
    run only under Triton's interpreter (``TRITON_INTERPRET=1 MINIGAN_KERNELS=1``).
    They take float16, float32 or float64, one dtype for all; anything else runs
    the NumPy/CuPy op.
    """
    flag = os.environ.get("MINIGAN_KERNELS")
    if flag == "0":
        return False
    arrays = [a for a in arrays if a is not None]
    if device_of(arrays[0]) == "cpu" and (flag != "1" or os.environ.get("TRITON_INTERPRET") != "1"):
        return False  # the usual answer on the CPU: no need to look at the dtypes
    dtypes = {np.dtype(a.dtype) for a in arrays}
    return len(dtypes) == 1 and dtypes.pop() in (np.float16, np.float32, np.float64)
