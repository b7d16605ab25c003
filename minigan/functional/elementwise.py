"""Elementwise arithmetic and math with NumPy broadcasting.

For a broadcast binary op the gradient of each operand is summed back to that
operand's shape (``sum_to``): a bias of shape (C,) added to (N, C) receives the
sum over N. Every backward is written with Tensor ops, so it can be
differentiated again.
"""
import numpy as np

from .. import backend
from ..autograd import Cast, Copy, Function, Tensor, ToDevice  # noqa: F401 (the engine's own, re-exported)
from ..autograd import _constant, result_dtype
from ..creation import zeros_like
from .shape import sum_to


def _kind(dtype):
    return np.dtype(dtype).kind


def _as_dtype(x, dtype):
    if not hasattr(x, "shape") or isinstance(x, np.generic) or x.dtype == dtype:
        return x  # a number becomes an array of the tensor's (promoted) dtype in Function
    return x.to(dtype=dtype) if isinstance(x, Tensor) else x.astype(dtype)


class Binary(Function):
    """Shared by the broadcasting binary ops: torch's type promotion, then the shape check.

    Operands of different dtypes are cast to torch's result dtype first (autograd's
    ``result_dtype``), with differentiable casts, so each gradient comes back in its
    operand's dtype.
    """

    def __call__(self, a, b):
        if getattr(a, "dtype", None) != getattr(b, "dtype", None):
            dtype = result_dtype(a, b)
            a, b = _as_dtype(a, dtype), _as_dtype(b, dtype)
        return super().__call__(a, b)

    def forward(self, a, b):
        name = type(self).__name__.lower()
        try:
            np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise RuntimeError(f"{name}: shapes {tuple(a.shape)} and {tuple(b.shape)} "
                               "cannot be broadcast together") from None
        return self.compute(a, b)


class Add(Binary):
    reads_inputs = False

    def compute(self, a, b):
        return a + b

    def backward(self, gy):
        a, b = self.inputs
        return sum_to(gy, a.shape), sum_to(gy, b.shape)


class Sub(Binary):
    reads_inputs = False

    def compute(self, a, b):
        return a - b

    def backward(self, gy):
        a, b = self.inputs
        return sum_to(gy, a.shape), sum_to(-gy, b.shape)


class Mul(Binary):
    reads_inputs = ((1,), (0,))  # d/da reads b, d/db reads a

    def compute(self, a, b):
        return a * b

    def backward(self, gy):
        a, b = self.inputs
        ga = sum_to(gy * b, a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(gy * a, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Div(Binary):
    reads_inputs = ((1,), (0, 1))

    def compute(self, a, b):
        if _kind(a.dtype) != "f" and _kind(b.dtype) != "f":
            a, b = a.astype(np.float32), b.astype(np.float32)  # true division of integers, as torch does
        return a / b

    def backward(self, gy):
        a, b = self.inputs
        ga = sum_to(gy / b, a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(-gy * a / (b * b), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Pow(Binary):
    """a ** b for a tensor exponent; the constant exponent case is PowScalar."""

    def compute(self, a, b):
        return a ** b

    def backward(self, gy):
        a, b = self.inputs
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = sum_to(gy * b * a ** (b - 1), a.shape)
        if self.needs_input_grad[1]:
            y = self.output()
            # d(a^b)/db = a^b log a; taken as 0 where a == 0 (as torch does)
            gb = sum_to(gy * where(a == 0, 0.0, y * log(where(a == 0, 1.0, a))), b.shape)
        return ga, gb

    keeps_outputs = True


class PowScalar(Function):
    def __init__(self, exponent):
        self.exponent = exponent

    def forward(self, x):
        return x ** self.exponent

    def backward(self, gy):
        (x,) = self.inputs
        p = self.exponent
        if p == 0:  # x^0 is constant: a zero gradient that depends on nothing, as torch's
            return zeros_like(x)
        return gy * (p * x ** (p - 1))  # p = 1 too: x^0 keeps x in the graph (zero curvature)


class Neg(Function):
    reads_inputs = False

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class Exp(Function):
    reads_inputs = False

    keeps_outputs = True

    def forward(self, x):
        return backend.get_array_module(x).exp(x)

    def backward(self, gy):
        return gy * self.output()


class Log(Function):
    def forward(self, x):
        return backend.get_array_module(x).log(x)

    def backward(self, gy):
        return gy / self.inputs[0]


class Log1p(Function):
    def forward(self, x):
        return backend.get_array_module(x).log1p(x)

    def backward(self, gy):
        return gy / (self.inputs[0] + 1.0)


class Sqrt(Function):
    reads_inputs = False

    keeps_outputs = True

    def forward(self, x):
        return backend.get_array_module(x).sqrt(x)

    def backward(self, gy):
        return gy / (2.0 * self.output())


class Sin(Function):
    def forward(self, x):
        return backend.get_array_module(x).sin(x)

    def backward(self, gy):
        return gy * cos(self.inputs[0])


class Cos(Function):
    def forward(self, x):
        return backend.get_array_module(x).cos(x)

    def backward(self, gy):
        return -gy * sin(self.inputs[0])


class Abs(Function):
    def forward(self, x):
        return backend.get_array_module(x).abs(x)

    def backward(self, gy):
        return gy * sign(self.inputs[0])  # 0 at the kink, as torch


class Sign(Function):
    """-1, 0 or 1; differentiable with derivative zero (so |x|'' is zeros, as in torch)."""

    reads_inputs = False

    def forward(self, x):
        return backend.get_array_module(x).sign(x)

    def backward(self, gy):
        return zeros_like(gy)


class Clamp(Function):
    """Gradient passes where min <= x <= max (torch's convention at the bounds)."""

    def __init__(self, min=None, max=None):
        if min is None and max is None:
            raise RuntimeError("clamp: at least one of min and max must be given")
        self.min, self.max = min, max

    def forward(self, x):
        xp = backend.get_array_module(x)
        y = x
        if self.min is not None:
            y = xp.maximum(y, xp.asarray(self.min, dtype=x.dtype))
        if self.max is not None:
            y = xp.minimum(y, xp.asarray(self.max, dtype=x.dtype))
        return y

    def backward(self, gy):
        x = self.inputs[0].array
        mask = np.ones((), dtype=bool) if backend.device_of(x) == "cpu" else True
        if self.min is not None:
            mask = mask & (x >= self.min)
        if self.max is not None:
            mask = mask & (x <= self.max)
        return gy * Tensor(mask.astype(x.dtype))


class Where(Function):
    """where(cond, a, b): the condition is a constant; a and b receive masked gradients."""

    def __init__(self, condition):
        self.condition = condition

    def forward(self, a, b):
        xp = backend.get_array_module(self.condition, a, b, op="where")
        if _kind(a.dtype) == "f" and _kind(b.dtype) == "f" and a.dtype != b.dtype:
            raise TypeError(f"where: dtypes differ ({a.dtype} and {b.dtype})")
        try:
            return xp.where(self.condition, a, b)
        except ValueError:
            raise RuntimeError(f"where: shapes {tuple(self.condition.shape)}, {tuple(a.shape)} and "
                               f"{tuple(b.shape)} cannot be broadcast together") from None

    def backward(self, gy):
        a, b = self.inputs
        zero = Tensor(backend.get_array_module(gy.array).zeros((), dtype=gy.dtype))
        ga = sum_to(Where(self.condition)(gy, zero), a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(Where(self.condition)(zero, gy), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


# ---------------------------------------------------------------- functional names


def _t(x, like=None):
    """Wrap an array or number as a constant Tensor on ``like``'s device and dtype."""
    if isinstance(x, Tensor):
        return x
    if like is not None and not hasattr(x, "shape"):
        return Tensor(_constant(x, like))
    return Tensor(x)


def add(a, b):
    return Add()(a, b)


def sub(a, b):
    return Sub()(a, b)


def mul(a, b):
    return Mul()(a, b)


def div(a, b):
    return Div()(a, b)


def neg(x):
    return Neg()(x)


def pow(x, exponent):
    if isinstance(exponent, Tensor):
        return Pow()(_t(x, exponent), exponent)
    return PowScalar(exponent)(x)


def exp(x):
    return Exp()(x)


def log(x):
    return Log()(x)


def log1p(x):
    return Log1p()(x)


def sqrt(x):
    return Sqrt()(x)


def rsqrt(x):
    return 1.0 / sqrt(x)


def square(x):
    return x * x


def sin(x):
    return Sin()(x)


def cos(x):
    return Cos()(x)


def abs(x):
    return Abs()(x)


def sign(x):
    return Sign()(x)


def clamp(x, min=None, max=None):
    return Clamp(min, max)(x)


clip = clamp


def where(condition, input, other):
    """Pick ``input`` where ``condition`` holds, else ``other`` (numbers allowed).

    The result has torch's promoted dtype of ``input`` and ``other`` (``result_dtype``), so
    ``where(c, float32, float64)`` is float64 and ``where(c, int64, 0.5)`` float32.
    """
    cond = condition.array if isinstance(condition, Tensor) else condition
    like = input if isinstance(input, Tensor) else other if isinstance(other, Tensor) else None
    dtype = result_dtype(input, other)
    return Where(cond)(_as_dtype(_t(input, like), dtype), _as_dtype(_t(other, like), dtype))


def maximum(a, b):
    return where(a.array >= (b.array if isinstance(b, Tensor) else b), a, b)


def minimum(a, b):
    return where(a.array <= (b.array if isinstance(b, Tensor) else b), a, b)


def lerp(start, end, weight):
    return start + weight * (end - start)


# Comparisons give boolean tensors that carry no gradient.
def _compare(op):
    def compare(a, b):
        xa = a.array if isinstance(a, Tensor) else a
        xb = b.array if isinstance(b, Tensor) else b
        backend.get_array_module(xa, xb, op=op.__name__)
        return Tensor(op(xa, xb))
    compare.__name__ = op.__name__
    return compare


eq = _compare(np.equal)
ne = _compare(np.not_equal)
lt = _compare(np.less)
le = _compare(np.less_equal)
gt = _compare(np.greater)
ge = _compare(np.greater_equal)
