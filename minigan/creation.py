"""Making tensors: ``tensor``, ``zeros``, ``randn`` and friends, as in torch.

Floating tensors default to float32; integer data to int64, as torch does.
"""
import numpy as np

from . import backend
from .autograd import Tensor, _check_numeric


def _dtype(dtype, default=np.float32):
    return np.dtype(default if dtype is None else dtype)


def _sizes(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return tuple(size[0])
    return tuple(size)


def tensor(data, dtype=None, device="cpu", requires_grad=False):
    """A new leaf tensor holding a copy of ``data`` (nested lists, arrays or a Tensor)."""
    if isinstance(data, Tensor):
        data = data.array
    xp = backend.xp_for(device)
    if hasattr(data, "shape"):
        _check_numeric(data, from_array=True)
        array = xp.array(backend.to_device(data, device))
    else:
        array = xp.array(data)
        _check_numeric(array, from_array=False)
    if dtype is not None:
        array = array.astype(dtype)
    elif array.dtype == np.float64 and not hasattr(data, "dtype"):
        array = array.astype(np.float32)  # Python floats -> torch's default dtype
    elif array.dtype.kind in "iu" and not hasattr(data, "dtype"):
        array = array.astype(np.int64)
    return Tensor(array, requires_grad=requires_grad)


def as_tensor(data, dtype=None, device="cpu"):
    """Wrap without copying when ``data`` is already an array of the right kind."""
    if isinstance(data, Tensor):
        return data.to(device, dtype)
    if hasattr(data, "shape") and (dtype is None or np.dtype(dtype) == data.dtype) \
            and backend.device_of(data) == backend.normalize_device(device):
        return Tensor(data)
    return tensor(data, dtype, device)


def from_numpy(array):
    return Tensor(array)


def zeros(*size, dtype=None, device="cpu", requires_grad=False):
    return Tensor(backend.xp_for(device).zeros(_sizes(size), dtype=_dtype(dtype)), requires_grad)


def ones(*size, dtype=None, device="cpu", requires_grad=False):
    return Tensor(backend.xp_for(device).ones(_sizes(size), dtype=_dtype(dtype)), requires_grad)


def full(size, fill_value, dtype=None, device="cpu", requires_grad=False):
    if dtype is None and isinstance(fill_value, (bool, int)):
        dtype = np.bool_ if isinstance(fill_value, bool) else np.int64
    return Tensor(backend.xp_for(device).full(tuple(size), fill_value, dtype=_dtype(dtype)), requires_grad)


def empty(*size, dtype=None, device="cpu", requires_grad=False):
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, device="cpu"):
    if end is None:
        start, end = 0, start
    default = np.int64 if all(isinstance(v, int) for v in (start, end, step)) else np.float32
    return Tensor(backend.xp_for(device).arange(start, end, step, dtype=_dtype(dtype, default)))


def linspace(start, end, steps, dtype=None, device="cpu"):
    return Tensor(backend.xp_for(device).linspace(start, end, steps, dtype=_dtype(dtype)))


def eye(n, m=None, dtype=None, device="cpu"):
    return Tensor(backend.xp_for(device).eye(n, m, dtype=_dtype(dtype)))


def randn(*size, dtype=None, device="cpu", requires_grad=False):
    """Standard normal samples from the seeded generator of ``device``."""
    gen = backend.generator(device)
    data = gen.standard_normal(_sizes(size))
    return Tensor(data.astype(_dtype(dtype)), requires_grad)


def rand(*size, dtype=None, device="cpu", requires_grad=False):
    """Uniform samples in [0, 1)."""
    gen = backend.generator(device)
    data = gen.random(_sizes(size)) if backend.normalize_device(device) == "cpu" else gen.random_sample(_sizes(size))
    return Tensor(data.astype(_dtype(dtype)), requires_grad)


def randint(low, high=None, size=(), dtype=None, device="cpu"):
    if high is None:
        low, high = 0, low
    gen = backend.generator(device)
    if backend.normalize_device(device) == "cpu":
        data = gen.integers(low, high, size=tuple(size))
    else:
        data = gen.randint(low, high, size=tuple(size))
    return Tensor(data.astype(_dtype(dtype, np.int64)))


def randperm(n, device="cpu"):
    gen = backend.generator(device)
    return Tensor(gen.permutation(n).astype(np.int64))


def normal(mean, std, size, device="cpu"):
    return randn(*size, device=device) * std + mean


def _like(fn):
    def like(input, dtype=None, device=None, requires_grad=False):
        return fn(*input.shape, dtype=dtype or input.dtype, device=device or input.device,
                  requires_grad=requires_grad)
    like.__name__ = fn.__name__ + "_like"
    like.__doc__ = f"``{fn.__name__}`` with the shape, dtype and device of ``input``."
    return like


zeros_like = _like(zeros)
ones_like = _like(ones)
randn_like = _like(randn)
rand_like = _like(rand)
empty_like = _like(empty)


def full_like(input, fill_value, dtype=None, device=None, requires_grad=False):
    return full(input.shape, fill_value, dtype=dtype or input.dtype, device=device or input.device,
                requires_grad=requires_grad)
