"""Ops that move values around without changing them: reshape, permute,
broadcast, index, concatenate, split.

Each backward is the "adjoint" move: reshape back, permute back, sum over the
broadcast axes, scatter into zeros. Adjoints are Functions too, so second
derivatives flow through them.
"""
import functools

import numpy as np

from .. import backend
from ..autograd import Function, Tensor, result_dtype
from ._args import shape_str as _shape_str


def _dim(dim, shape, op, extra=0):
    """``dim`` as an index in [0, ndim + extra); out of range raises, naming the op and shape.

    ``extra=1`` for ops that insert a dim (unsqueeze, stack). A 0-d tensor
    accepts dim 0 and -1, as in torch.
    """
    n = max(len(shape) + extra, 1)
    if not -n <= dim < n:
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor of shape {_shape_str(shape)} "
                         f"(expected a dim in [{-n}, {n - 1}])")
    return dim % n


# ---------------------------------------------------------------- reshape


class Reshape(Function):
    reads_inputs = False
    is_view = True

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        self.in_shape = x.shape
        try:
            return x.reshape(self.shape)
        except ValueError:
            raise RuntimeError(f"reshape: shape {_shape_str(self.shape)} is invalid for input of "
                               f"shape {_shape_str(x.shape)} ({x.size} elements)") from None

    def backward(self, gy):
        return reshape(gy, self.in_shape)


def reshape(x, *shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    if tuple(shape) == x.shape:
        return x
    return Reshape(shape)(x)


def flatten(x, start_dim=0, end_dim=-1):
    if x.ndim == 0:
        return reshape(x, (1,))
    start, end = _dim(start_dim, x.shape, "flatten"), _dim(end_dim, x.shape, "flatten")
    shape = x.shape[:start] + (-1,) + x.shape[end + 1:]
    return reshape(x, shape)


def unflatten(x, dim, sizes):
    dim = _dim(dim, x.shape, "unflatten")
    return reshape(x, x.shape[:dim] + tuple(sizes) + x.shape[dim + 1:])


def squeeze(x, dim=None):
    if dim is None:
        return reshape(x, tuple(s for s in x.shape if s != 1))
    dims = {_dim(d, x.shape, "squeeze") for d in (dim if isinstance(dim, (tuple, list)) else (dim,))}
    return reshape(x, tuple(s for i, s in enumerate(x.shape) if not (i in dims and s == 1)))


def unsqueeze(x, dim):
    dim = _dim(dim, x.shape, "unsqueeze", extra=1)
    return reshape(x, x.shape[:dim] + (1,) + x.shape[dim:])


# ---------------------------------------------------------------- permute


class Permute(Function):
    reads_inputs = False
    is_view = True

    def __init__(self, dims):
        self.dims = tuple(dims)

    def forward(self, x):
        dims = tuple(_dim(d, x.shape, "permute") for d in self.dims)
        if sorted(dims) != list(range(x.ndim)):
            raise RuntimeError(f"permute: dims {self.dims} are not a permutation of the "
                               f"{x.ndim} dims of shape {_shape_str(x.shape)}")
        self.dims = dims
        return x.transpose(self.dims)

    def backward(self, gy):
        return permute(gy, tuple(np.argsort(self.dims)))


def permute(x, *dims):
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    return Permute(dims)(x)


def transpose(x, dim0, dim1):
    dim0, dim1 = _dim(dim0, x.shape, "transpose"), _dim(dim1, x.shape, "transpose")
    if x.ndim < 2:
        return x
    dims = list(range(x.ndim))
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return Permute(dims)(x)


def t(x):
    if x.ndim > 2:
        raise RuntimeError(f"t(): expects a tensor with <= 2 dims, got shape {_shape_str(x.shape)}")
    return transpose(x, 0, -1) if x.ndim == 2 else x


# ---------------------------------------------------------------- broadcast / sum_to


class BroadcastTo(Function):
    reads_inputs = False
    is_view = True

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        self.in_shape = x.shape
        xp = backend.get_array_module(x)
        try:
            return xp.broadcast_to(x, self.shape)
        except ValueError:
            raise RuntimeError(f"expand: cannot broadcast shape {_shape_str(x.shape)} "
                               f"to {_shape_str(self.shape)}") from None

    def backward(self, gy):
        return sum_to(gy, self.in_shape)


class SumTo(Function):
    """Sum over the axes that broadcasting added or stretched."""

    reads_inputs = False

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        self.in_shape = x.shape
        lead = x.ndim - len(self.shape)
        axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(self.shape)
                                          if s == 1 and x.shape[lead + i] != 1)
        y = x.sum(axis=axes, keepdims=True)
        return y.reshape(self.shape) if lead else y

    def backward(self, gy):
        return broadcast_to(gy, self.in_shape)


def broadcast_to(x, shape):
    shape = tuple(shape)
    return x if x.shape == shape else BroadcastTo(shape)(x)


def sum_to(x, shape):
    shape = tuple(shape)
    return x if x.shape == shape else SumTo(shape)(x)


def expand(x, *sizes):
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    lead = len(sizes) - x.ndim
    if lead < 0:
        raise RuntimeError(f"expand: {len(sizes)} sizes given for a tensor of shape {_shape_str(x.shape)}")
    shape = tuple(x.shape[i - lead] if s == -1 else s for i, s in enumerate(sizes))
    return broadcast_to(x, shape)


def expand_as(x, other):
    return broadcast_to(x, other.shape)


# ---------------------------------------------------------------- indexing


def _unwrap_index(index):
    """Tensors inside an index become their arrays (they index, not differentiate)."""
    if isinstance(index, tuple):
        return tuple(_unwrap_index(i) for i in index)
    if isinstance(index, Tensor):
        return index.array
    if isinstance(index, list):
        return np.asarray(index)
    return index


class GetItem(Function):
    reads_inputs = False
    is_view = True

    def __init__(self, index):
        self.index = index

    def forward(self, x):
        self.in_shape = x.shape
        try:
            return x[self.index]
        except IndexError as e:
            raise IndexError(f"index {self.index!r} into tensor of shape {_shape_str(x.shape)}: {e}") from None

    def backward(self, gy):
        return GetItemGrad(self.index, self.in_shape)(gy)


class GetItemGrad(Function):
    """Scatter-add ``gy`` into zeros of the input's shape (repeated indices add up)."""

    reads_inputs = False

    def __init__(self, index, shape):
        self.index, self.shape = index, shape

    def forward(self, gy):
        xp = backend.get_array_module(gy)
        gx = xp.zeros(self.shape, dtype=gy.dtype)
        if xp is np:
            np.add.at(gx, self.index, gy)
        else:
            import cupyx
            cupyx.scatter_add(gx, self.index, gy)
        return gx

    def backward(self, ggx):
        return GetItem(self.index)(ggx)


def getitem(x, index):
    return GetItem(_unwrap_index(index))(x)


# ---------------------------------------------------------------- cat / stack / split


class Cat(Function):
    reads_inputs = False

    def __init__(self, dim):
        self.dim = dim

    def forward(self, *xs):
        xp = backend.get_array_module(*xs, op="cat")
        ndim = xs[0].ndim
        if ndim == 0 or any(x.ndim != ndim for x in xs):
            raise RuntimeError(f"cat: tensors must have the same number (at least 1) of dims, got shapes "
                               f"{[_shape_str(x.shape) for x in xs]}")
        self.dim = _dim(self.dim, xs[0].shape, "cat")
        if len({x.dtype for x in xs}) > 1:
            raise TypeError(f"cat: tensors have different dtypes {[str(x.dtype) for x in xs]}")
        try:
            y = xp.concatenate(xs, axis=self.dim)
        except ValueError:
            raise RuntimeError(f"cat: sizes must match except in dim {self.dim}, got shapes "
                               f"{[_shape_str(x.shape) for x in xs]}") from None
        self.sizes = [x.shape[self.dim] for x in xs]
        return y

    def backward(self, gy):
        return split(gy, self.sizes, self.dim)


def cat(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("cat: expected a non-empty list of tensors")
    if len(tensors) == 1:
        return tensors[0]
    # torch's promotion over all of them (an empty array stands for each dtype met so far)
    dtype = functools.reduce(lambda a, b: np.empty((0,), result_dtype(a, b)), tensors).dtype
    return Cat(dim)(*(t if t.dtype == dtype else t.to(dtype=dtype) for t in tensors))


def stack(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack: expected a non-empty list of tensors")
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        raise RuntimeError(f"stack: all tensors must have the same shape, got {sorted(shapes)}")
    dim = _dim(dim, tensors[0].shape, "stack", extra=1)
    return cat([unsqueeze(t, dim) for t in tensors], dim)


class Split(Function):
    reads_inputs = False
    is_view = True

    def __init__(self, sizes, dim):
        self.sizes, self.dim = list(sizes), dim

    def forward(self, x):
        self.dim = _dim(self.dim, x.shape, "split")
        if sum(self.sizes) != x.shape[self.dim]:
            raise RuntimeError(f"split: sizes {self.sizes} do not add up to {x.shape[self.dim]} "
                               f"(dim {self.dim} of shape {_shape_str(x.shape)})")
        bounds = np.cumsum(self.sizes)[:-1].tolist()
        xp = backend.get_array_module(x)
        return tuple(xp.split(x, bounds, axis=self.dim))

    def backward(self, *gys):
        return cat(list(gys), self.dim)


def split(x, split_size_or_sections, dim=0):
    """Like ``torch.split``: an int is a chunk size, a list gives each size."""
    n = x.shape[_dim(dim, x.shape, "split")]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0:
            raise RuntimeError(f"split: split size must be positive, got {step}")
        sizes = [min(step, n - i) for i in range(0, n, step)] or [0]
    else:
        sizes = list(split_size_or_sections)
    out = Split(sizes, dim)(x)
    return out if isinstance(out, tuple) else (out,)


def chunk(x, chunks, dim=0):
    n = x.shape[_dim(dim, x.shape, "chunk")]
    return split(x, -(-n // chunks), dim)


class Flip(Function):
    reads_inputs = False

    def __init__(self, dims):
        self.dims = tuple(dims)

    def forward(self, x):
        return backend.get_array_module(x).flip(x, axis=self.dims)

    def backward(self, gy):
        return Flip(self.dims)(gy)


def flip(x, dims):
    return Flip(dims if isinstance(dims, (tuple, list)) else (dims,))(x)


def repeat(x, *sizes):
    """Tile like ``torch.Tensor.repeat``: broadcast to a new axis per dim, then merge."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    x = reshape(x, (1,) * (len(sizes) - x.ndim) + x.shape)
    inter = []
    for r, s in zip(sizes, x.shape):
        inter += [r, s]
    y = broadcast_to(reshape(x, tuple(v for s in x.shape for v in (1, s))), inter)
    return reshape(y, tuple(r * s for r, s in zip(sizes, x.shape)))
