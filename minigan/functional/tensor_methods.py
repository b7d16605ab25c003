"""Python operators and torch-style methods on Tensor, delegating to functional ops.

The in-place methods (``add_``, ``mul_``, ``clamp_``, ``normal_``, ``x[i] = v``, ...) compute
out of place and write the result into the tensor's own array, cast to its dtype as torch
does, and bump its version count, so that a backward that saved the old value raises. They
are not recorded in the graph: on a tensor or with an operand that requires grad (outside
``no_grad``) they raise, where torch would record them.
"""
import numpy as np

from .. import backend, creation as C
from ..autograd import _KINDS, Tensor, is_grad_enabled, no_grad
from . import activation as A, elementwise as E, linalg as L, reduce as R, shape as S


def _swap(f):
    return lambda self, other: f(E._t(other, self), self)


def _binary(f):
    return lambda self, other: f(self, other if isinstance(other, Tensor) else E._t(other, self))


operators = {
    "__add__": _binary(E.add), "__radd__": _swap(E.add),
    "__sub__": _binary(E.sub), "__rsub__": _swap(E.sub),
    "__mul__": _binary(E.mul), "__rmul__": _swap(E.mul),
    "__truediv__": _binary(E.div), "__rtruediv__": _swap(E.div),
    "__pow__": E.pow, "__rpow__": lambda self, base: E.pow(E._t(base, self), self),
    "__neg__": E.neg, "__pos__": lambda self: self, "__abs__": E.abs,
    "__matmul__": L.matmul, "__rmatmul__": lambda self, other: L.matmul(other, self),
    "__getitem__": S.getitem,
    "__eq__": E.eq, "__ne__": E.ne, "__lt__": E.lt, "__le__": E.le, "__gt__": E.gt, "__ge__": E.ge,
    "__invert__": lambda self: Tensor(~self.array),
    "__and__": lambda self, o: Tensor(self.array & (o.array if isinstance(o, Tensor) else o)),
    "__or__": lambda self, o: Tensor(self.array | (o.array if isinstance(o, Tensor) else o)),
}

methods = {
    # elementwise
    "add": E.add, "sub": E.sub, "mul": E.mul, "div": E.div, "neg": E.neg, "pow": E.pow,
    "exp": E.exp, "log": E.log, "log1p": E.log1p, "sqrt": E.sqrt, "rsqrt": E.rsqrt,
    "square": E.square, "abs": E.abs, "sign": E.sign, "sin": E.sin, "cos": E.cos,
    "clamp": E.clamp, "clip": E.clamp, "maximum": E.maximum, "minimum": E.minimum,
    "eq": E.eq, "ne": E.ne, "lt": E.lt, "le": E.le, "gt": E.gt, "ge": E.ge,
    # activations
    "relu": A.relu, "tanh": A.tanh, "sigmoid": A.sigmoid, "softmax": A.softmax,
    "log_softmax": A.log_softmax,
    # reductions
    "sum": R.sum, "mean": R.mean, "var": R.var, "std": R.std, "max": R.max, "min": R.min,
    "amax": R.amax, "amin": R.amin, "argmax": R.argmax, "argmin": R.argmin,
    "logsumexp": R.logsumexp, "norm": R.norm, "prod": R.prod,
    # shape
    "reshape": S.reshape, "view": S.reshape, "flatten": S.flatten, "unflatten": S.unflatten,
    "squeeze": S.squeeze, "unsqueeze": S.unsqueeze, "permute": S.permute,
    "transpose": S.transpose, "t": S.t, "expand": S.expand, "expand_as": S.expand_as,
    "split": S.split, "chunk": S.chunk, "flip": S.flip, "repeat": S.repeat,
    "matmul": L.matmul,
    "view_as": lambda self, other: S.reshape(self, other.shape),
    "reshape_as": lambda self, other: S.reshape(self, other.shape),
    "T": property(lambda self: S.permute(self, tuple(reversed(range(self.ndim))))),
    "mT": property(lambda self: S.transpose(self, -2, -1)),
    "all": lambda self: Tensor(self.array.all()),
    "any": lambda self: Tensor(self.array.any()),
}


# ---------------------------------------------------------------- in place

_TORCH_NAMES = {"bool": "Bool", "uint8": "Byte", "int8": "Char", "int16": "Short", "int32": "Int",
                "int64": "Long", "float16": "Half", "float32": "Float", "float64": "Double",
                "complex64": "ComplexFloat", "complex128": "ComplexDouble"}


def _kind_rank(dtype):
    """bool < integer < floating < complex (torch's order of kinds): a cast down it is refused."""
    return _KINDS.index(np.dtype(dtype).kind.replace("u", "i"))


def _refuse_recording(x, operands, op):
    """The in-place change torch would record in the graph, which minigan does not."""
    if not is_grad_enabled():
        return
    if x.requires_grad and x.is_leaf:
        raise RuntimeError(f"{op}: a leaf Variable that requires grad is being used in an in-place operation.")
    if x.requires_grad or any(isinstance(a, Tensor) and a.requires_grad for a in operands):
        raise RuntimeError(f"{op}: in-place ops are not recorded in minigan's graph, and this one would "
                           f"be (a tensor of shape {x.shape} takes part in it and requires grad); "
                           "use the out-of-place op, or run it under no_grad()")


def _write(x, values, op):
    """Write ``values`` into ``x``'s array, cast to its dtype as torch does, and count the change."""
    if _kind_rank(values.dtype) > _kind_rank(x.dtype):
        raise RuntimeError(f"{op}: result type {_TORCH_NAMES.get(np.dtype(values.dtype).name, values.dtype)} "
                           f"can't be cast to the desired output type {_TORCH_NAMES.get(x.dtype.name, x.dtype)}")
    if tuple(values.shape) != x.shape:
        raise RuntimeError(f"{op}: output with shape {list(x.shape)} doesn't match the broadcast shape "
                           f"{list(values.shape)}")
    try:
        x.array[...] = values
    except ValueError:  # NumPy's read-only arrays: expand()'s broadcast views
        raise RuntimeError(f"{op}: unsupported operation: more than one element of the written-to tensor refers to "
                           "a single memory location. Please clone() the tensor before performing the "
                           "operation.") from None
    x._version += 1
    return x


def _in_place(fn, name):
    def method(self, *args, **kwargs):
        _refuse_recording(self, args, name)
        with no_grad():
            return _write(self, fn(self, *args, **kwargs).array, name)
    method.__name__ = name
    method.__doc__ = f"In place: ``x.{name}(...)`` writes ``x.{name[:-1]}(...)`` into ``x``."
    return method


def _setitem(self, index, value):
    _refuse_recording(self, (value,), "__setitem__")
    value = value.array if isinstance(value, Tensor) else value
    self.array[S._unwrap_index(index)] = backend.to_device(value, self.device) if hasattr(value, "shape") else value
    self._version += 1


def _fill_with_samples(x, sample, a, b, generator):
    """Fill ``x`` in place with samples from the seeded generator of its device."""
    _refuse_recording(x, (), sample + "_")
    gen = generator if generator is not None else backend.generator(x.device)
    if x.device == "cpu":
        values = getattr(gen, sample)(a, b, size=x.shape)
    else:  # CuPy's RandomState draws in the target dtype directly
        values = getattr(gen, sample)(a, b, size=x.shape, dtype=x.dtype)
    return x.copy_(values)


def normal_(self, mean=0.0, std=1.0, *, generator=None):
    """Fill in place with samples of N(mean, std^2)."""
    return _fill_with_samples(self, "normal", mean, std, generator)


def uniform_(self, from_=0.0, to=1.0, *, generator=None):
    """Fill in place with samples of U(from_, to)."""
    return _fill_with_samples(self, "uniform", from_, to, generator)


in_place = {
    name + "_": _in_place(fn, name + "_") for name, fn in {
        "add": lambda x, other, alpha=1: E.add(x, other * alpha if alpha != 1 else other),
        "sub": lambda x, other, alpha=1: E.sub(x, other * alpha if alpha != 1 else other),
        "mul": E.mul, "div": E.div, "pow": E.pow, "neg": E.neg, "abs": E.abs,
        "exp": E.exp, "log": E.log, "sqrt": E.sqrt, "clamp": E.clamp, "clip": E.clamp,
        "lerp": E.lerp, "relu": A.relu, "sigmoid": A.sigmoid, "tanh": A.tanh,
    }.items()
}
in_place.update({"__setitem__": _setitem, "normal_": normal_, "uniform_": uniform_})


def _augmented(name, op):
    """``x += y`` as torch: in place (``x.add_(y)``), unless torch would record that in the graph;
    then ``x = x + y``, a new node, and the name is rebound (other references keep the old value)."""
    def method(self, other):
        if is_grad_enabled() and (self.requires_grad or getattr(other, "requires_grad", False)):
            if self.requires_grad and self.is_leaf:
                _refuse_recording(self, (other,), name)
            return op(self, other)
        return in_place[name](self, other)
    return method


in_place.update({f"__i{op}__": _augmented(f"{op}_" if op != "truediv" else "div_", operators[f"__{op}__"])
                 for op in ("add", "sub", "mul", "truediv")})


# ---------------------------------------------------------------- new tensors like this one


def _new(fn):
    def method(self, *size, dtype=None, device=None, requires_grad=False):
        return fn(*size, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad)
    method.__name__ = "new_" + fn.__name__
    return method


new = {
    "new_zeros": _new(C.zeros), "new_ones": _new(C.ones), "new_empty": _new(C.empty),
    "new_full": lambda self, size, fill_value, dtype=None, device=None, requires_grad=False: C.full(
        size, fill_value, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad),
    "new_tensor": lambda self, data, dtype=None, device=None, requires_grad=False: C.tensor(
        data, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad),
}

for name, fn in {**operators, **methods, **in_place, **new}.items():
    setattr(Tensor, name, fn)
Tensor.__hash__ = lambda self: id(self)  # __eq__ is elementwise, so hash by identity
