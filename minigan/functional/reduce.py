"""Reductions: sum, mean, var, std, max, min, logsumexp.

``sum`` and ``max`` are Functions; the rest are built from them, so their
gradients (and second derivatives) come for free. ``var`` subtracts the mean
first (two passes) instead of using E[x^2] - E[x]^2, which cancels badly.
"""
import math

import numpy as np

from .. import backend
from ..autograd import Function, Tensor
from .shape import broadcast_to, reshape


def _axes(dim, shape, op):
    """Normalize ``dim`` (None, int or tuple) to a sorted tuple of axes of ``shape``."""
    ndim = len(shape)
    if dim is None:
        return tuple(range(ndim))
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    n = ndim or 1  # a 0-d tensor accepts dim 0 and -1, as in torch
    out = []
    for d in dims:
        if not -n <= d < n:
            raise IndexError(f"{op}: dim {d} is out of range for a tensor of shape {tuple(shape)}")
        out.append(d % n)
    return tuple(sorted(set(out))) if ndim else ()


def _kept_shape(shape, axes):
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


class Sum(Function):
    reads_inputs = False

    def __init__(self, axes, keepdim):
        self.axes, self.keepdim = axes, keepdim

    def forward(self, x):
        self.in_shape = x.shape
        return backend.get_array_module(x).asarray(x.sum(axis=self.axes, keepdims=self.keepdim))

    def backward(self, gy):
        gy = reshape(gy, _kept_shape(self.in_shape, self.axes))
        return broadcast_to(gy, self.in_shape)


def sum(x, dim=None, keepdim=False):
    return Sum(_axes(dim, x.shape, "sum"), keepdim)(x)


def mean(x, dim=None, keepdim=False):
    axes = _axes(dim, x.shape, "mean")
    n = math.prod([x.shape[a] for a in axes]) if axes else 1
    return sum(x, axes, keepdim) / float(n)


def var(x, dim=None, unbiased=None, keepdim=False, correction=None):
    """Variance with Bessel's correction by default, as ``torch.var``."""
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    axes = _axes(dim, x.shape, "var")
    n = math.prod([x.shape[a] for a in axes]) if axes else 1
    centered = x - mean(x, axes, keepdim=True)
    return sum(centered * centered, axes, keepdim) / float(n - correction if n > correction else 0)


def std(x, dim=None, unbiased=None, keepdim=False, correction=None):
    """sqrt(var); where all values are equal the gradient is 0 (torch's choice), not 0/0."""
    from .elementwise import sqrt, where
    v = var(x, dim, unbiased, keepdim, correction)
    spread = v.array > 0
    return where(spread, sqrt(where(spread, v, 1.0)), 0.0)


class Max(Function):
    """Max (or min) over axes; the gradient is shared evenly among ties."""

    def __init__(self, axes, keepdim, largest=True):
        self.axes, self.keepdim, self.largest = axes, keepdim, largest

    def forward(self, x):
        if x.size == 0:
            raise RuntimeError(f"{'max' if self.largest else 'min'}: empty tensor of shape {x.shape}")
        xp = backend.get_array_module(x)
        reduce = xp.max if self.largest else xp.min
        m = reduce(x, axis=self.axes, keepdims=True)
        mask = (x == m)
        self.saved_weights = mask / mask.sum(axis=self.axes, keepdims=True)
        return xp.asarray(m if self.keepdim else m.reshape([s for i, s in enumerate(x.shape) if i not in self.axes]))

    def backward(self, gy):
        w = self.saved_weights
        return broadcast_to(reshape(gy, _kept_shape(w.shape, self.axes)), w.shape) * Tensor(w.astype(gy.dtype))


def _max_or_min(x, dim, keepdim, largest):
    name = "max" if largest else "min"
    if dim is None:
        return Max(_axes(None, x.shape, name), False, largest)(x)
    # with a dim, torch returns (values, indices) and routes the gradient to the index
    axis = _axes(dim, x.shape, name)[0] if x.ndim else None
    xp = backend.get_array_module(x.array)
    arg = (xp.argmax if largest else xp.argmin)(x.array, axis=axis, keepdims=True) if x.ndim else xp.zeros((), np.int64)
    from .shape import getitem
    index = tuple(arg if i == axis else xp.arange(s).reshape([-1 if j == i else 1 for j in range(x.ndim)])
                  for i, s in enumerate(x.shape))
    values = getitem(x, index)
    indices = Tensor(arg)
    if not keepdim and x.ndim:
        values = reshape(values, values.shape[:axis] + values.shape[axis + 1:])
        indices = Tensor(arg.reshape(values.shape))
    return MaxResult(values, indices)


class MaxResult(tuple):
    """(values, indices), with names, as ``torch.return_types.max``."""

    def __new__(cls, values, indices):
        return super().__new__(cls, (values, indices))

    values = property(lambda self: self[0])
    indices = property(lambda self: self[1])


def max(x, dim=None, keepdim=False):
    return _max_or_min(x, dim, keepdim, True)


def min(x, dim=None, keepdim=False):
    return _max_or_min(x, dim, keepdim, False)


def amax(x, dim=None, keepdim=False):
    return Max(_axes(dim, x.shape, "amax"), keepdim, True)(x)


def amin(x, dim=None, keepdim=False):
    return Max(_axes(dim, x.shape, "amin"), keepdim, False)(x)


def argmax(x, dim=None, keepdim=False):
    xp = backend.get_array_module(x.array)
    return Tensor(xp.asarray(xp.argmax(x.array, axis=dim, keepdims=keepdim)))


def argmin(x, dim=None, keepdim=False):
    xp = backend.get_array_module(x.array)
    return Tensor(xp.asarray(xp.argmin(x.array, axis=dim, keepdims=keepdim)))


def logsumexp(x, dim, keepdim=False):
    """log sum exp(x), shifted by the (constant) max so exp never overflows."""
    from .elementwise import exp, log
    axes = _axes(dim, x.shape, "logsumexp")
    xp = backend.get_array_module(x.array)
    m = xp.max(x.array, axis=axes, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)  # all -inf rows stay -inf instead of nan
    shift = Tensor(m)
    out = log(sum(exp(x - shift), axes, keepdim=True)) + shift
    return out if keepdim else reshape(out, tuple(s for i, s in enumerate(x.shape) if i not in axes))


def prod(x, dim=None, keepdim=False):
    from .elementwise import exp, log
    # for positive inputs; a general prod is not needed by any model here
    if (x.array <= 0).any():
        raise NotImplementedError("prod: only positive inputs are supported")
    return exp(sum(log(x), dim, keepdim))


def norm(x, p=2, dim=None, keepdim=False):
    from .elementwise import sqrt, abs
    if p == 2:
        return sqrt(sum(x * x, dim, keepdim))
    if p == 1:
        return sum(abs(x), dim, keepdim)
    raise NotImplementedError(f"norm: p={p} (only 1 and 2)")
