"""Python operators and torch-style methods on Tensor, delegating to functional ops."""
from ..autograd import Tensor
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

for name, fn in {**operators, **methods}.items():
    setattr(Tensor, name, fn)
Tensor.__hash__ = lambda self: id(self)  # __eq__ is elementwise, so hash by identity
