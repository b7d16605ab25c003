"""Activations: relu, leaky_relu, hardtanh, tanh, sigmoid, softplus, softmax, log_softmax.

The piecewise-linear ones multiply the incoming gradient by the slope of each
piece, a mask read off x. Their gradient is a Function of its own (``ReLUGrad``,
as Chainer's ``_LeakyReLUGrad``) with inputs gy *and* x: linear in gy, and of
zero derivative in x (the second derivative is zero almost everywhere). So a
gradient penalty differentiating it w.r.t. x gets zeros, as from torch, whose
``threshold_backward(grad, self)`` reads x too, not a gradient cut from x.
tanh and sigmoid reuse their output: tanh' = 1 - y^2, sigmoid' = y (1 - y).
"""
import math

from .. import backend, dispatch
from ..autograd import Function, Tensor, is_grad_enabled
from ..creation import zeros_like
from .elementwise import Where
from .reduce import logsumexp, sum


def _batched(x):
    """x with at least one axis, for splitting over its first (``backend.over_batch``)."""
    return x.reshape(1) if x.ndim == 0 else x


def _stable_sigmoid(xp, x):
    # exp(-|x|) never overflows; pick the form that does not divide inf by inf
    e = xp.exp(-abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


class ReLU(Function):
    def forward(self, x):
        xp, shape, x = backend.get_array_module(x), x.shape, _batched(x)
        y = xp.empty_like(x)
        backend.over_batch(len(x), lambda a, b: xp.maximum(x[a:b], x.dtype.type(0), out=y[a:b]),
                           xp, x.size)
        return y.reshape(shape)

    def backward(self, gy):
        return _gradient(ReLUGrad(), gy, self.inputs[0])


def _gradient(grad_fn, gy, x):
    """gx = grad_fn(gy, x), a node of the graph when one is being recorded (create_graph=True:
    its derivative in x is zero, as torch's). In a first-order backward nothing is recorded, so
    the arrays are computed directly, without the bookkeeping of a Function call."""
    if is_grad_enabled():
        return grad_fn(gy, x)
    return Tensor(grad_fn.forward(gy.array, x.array))


class ReLUGrad(Function):
    """gx = gy where x > 0, else 0: linear in gy, zero derivative in x."""

    def forward(self, gy, x):
        xp, g, x = backend.get_array_module(x), _batched(gy), _batched(x)
        gx = xp.empty_like(g)
        backend.over_batch(len(x), lambda a, b: xp.multiply(g[a:b], x[a:b] > 0, out=gx[a:b]), xp, x.size)
        return gx.reshape(gy.shape)

    def backward(self, ggx):
        x = self.inputs[1]
        return ReLUGrad()(ggx, x), zeros_like(x)


class LeakyReLU(Function):
    def __init__(self, negative_slope):
        self.slope = negative_slope

    def forward(self, x):
        # max(x, a x) for a <= 1 (min for a > 1): two passes, where a select needs three
        xp, shape, x = backend.get_array_module(x), x.shape, _batched(x)
        slope, pick = x.dtype.type(self.slope), (xp.maximum if self.slope <= 1 else xp.minimum)
        y = xp.empty_like(x)

        def work(a, b):  # on slices of the batch, one per CPU thread
            xp.multiply(x[a:b], slope, out=y[a:b])
            pick(x[a:b], y[a:b], out=y[a:b])

        backend.over_batch(len(x), work, xp, x.size)
        return y.reshape(shape)

    def backward(self, gy):
        return _gradient(LeakyReLUGrad(self.slope), gy, self.inputs[0])


class LeakyReLUGrad(Function):
    """gx = gy where x > 0, else a gy: linear in gy, zero derivative in x."""

    def __init__(self, negative_slope):
        self.slope = negative_slope

    def forward(self, gy, x):
        xp, g, x = backend.get_array_module(x), _batched(gy), _batched(x)
        slope = x.dtype.type(self.slope)
        gx = xp.empty_like(g)

        def work(a, b):  # a gy, then gy itself where x > 0
            xp.multiply(g[a:b], slope, out=gx[a:b])
            xp.copyto(gx[a:b], g[a:b], where=x[a:b] > 0)

        backend.over_batch(len(x), work, xp, x.size)
        return gx.reshape(gy.shape)

    def backward(self, ggx):
        x = self.inputs[1]
        return LeakyReLUGrad(self.slope)(ggx, x), zeros_like(x)


class Hardtanh(Function):
    """clamp(x, min_val, max_val), whose gradient passes strictly inside the bounds (torch's
    hardtanh_backward; clamp's passes at the bounds too)."""

    def __init__(self, min_val, max_val):
        self.min_val, self.max_val = min_val, max_val

    def forward(self, x):
        xp = backend.get_array_module(x)
        return xp.clip(x, x.dtype.type(self.min_val), x.dtype.type(self.max_val))

    def backward(self, gy):
        return _gradient(HardtanhGrad(self.min_val, self.max_val), gy, self.inputs[0])


class HardtanhGrad(Function):
    """gx = gy where min_val < x < max_val, else 0: linear in gy, zero derivative in x."""

    def __init__(self, min_val, max_val):
        self.min_val, self.max_val = min_val, max_val

    def forward(self, gy, x):
        inside = (x > self.min_val) & (x < self.max_val)
        return gy * inside.astype(gy.dtype)

    def backward(self, ggx):
        x = self.inputs[1]
        return HardtanhGrad(self.min_val, self.max_val)(ggx, x), zeros_like(x)


class Tanh(Function):
    reads_inputs = False

    keeps_outputs = True

    def forward(self, x):
        return backend.get_array_module(x).tanh(x)

    def backward(self, gy):
        y = self.output()
        return gy * (1.0 - y * y)


class Sigmoid(Function):
    reads_inputs = False

    keeps_outputs = True

    def forward(self, x):
        return _stable_sigmoid(backend.get_array_module(x), x).astype(x.dtype)

    def backward(self, gy):
        y = self.output()
        return gy * y * (1.0 - y)


class Softplus(Function):
    """log(1 + exp(beta x)) / beta, linear above ``threshold`` (torch's rule)."""

    def __init__(self, beta=1.0, threshold=20.0):
        self.beta, self.threshold = beta, threshold

    def forward(self, x):
        xp = backend.get_array_module(x)
        bx = x * x.dtype.type(self.beta)
        soft = xp.logaddexp(0, bx) / x.dtype.type(self.beta)
        self.saved_linear = bx > self.threshold
        return xp.where(self.saved_linear, x, soft).astype(x.dtype)

    def backward(self, gy):
        x = self.inputs[0]
        slope = sigmoid(x * self.beta)  # d softplus / dx, itself differentiable
        one = Tensor(backend.get_array_module(x.array).ones((), dtype=x.dtype))
        return gy * Where(self.saved_linear)(one, slope)


def relu(input, inplace=False):
    return ReLU()(input)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    fused = dispatch.kernel("leaky_relu", input.array)
    if fused is not None:
        return fused(negative_slope, 1.0)(input)
    return LeakyReLU(negative_slope)(input)


def fused_leaky_relu(input, bias=None, negative_slope=0.2, scale=2 ** 0.5):
    """StyleGAN2's bias + leaky ReLU + gain: scale * leaky_relu(input + bias, negative_slope).

    ``bias`` has one value per channel (dim 1). The gain sqrt(2) keeps the
    activations' second moment through the leaky ReLU (Karras et al. 2020, the
    equalized learning rate's companion). Where kernels run it is one Triton pass
    over the data (kernels/bias_act.py); this composite is its reference.
    """
    if bias is not None and (input.ndim < 2 or tuple(bias.shape) != (input.shape[1],)):
        raise RuntimeError(f"fused_leaky_relu: bias of shape {tuple(bias.shape)} must have one value per "
                           f"channel (dim 1) of input of shape {tuple(input.shape)}")
    fused = dispatch.kernel("fused_leaky_relu", input.array, None if bias is None else bias.array)
    if fused is not None:
        return fused(negative_slope, scale)(input, *([] if bias is None else [bias]))
    if bias is not None:
        from .shape import reshape
        input = input + reshape(bias, (1, -1) + (1,) * (input.ndim - 2))
    return LeakyReLU(negative_slope)(input) * scale


def tanh(input):
    return Tanh()(input)


def sigmoid(input):
    return Sigmoid()(input)


def softplus(input, beta=1.0, threshold=20.0):
    return Softplus(beta, threshold)(input)


def logsigmoid(input):
    """log sigmoid(x) = -softplus(-x), exact for any x (no threshold)."""
    return -Softplus(1.0, math.inf)(-input)


def _softmax_dim(dim, shape, op):
    ndim = len(shape)
    if dim is None:  # torch's legacy rule for an implicit dim
        dim = 0 if ndim in (0, 1, 3) else 1
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor of shape {tuple(shape)}")
    return dim


def log_softmax(input, dim=None):
    """x - logsumexp(x): the stable way to take log(softmax(x))."""
    dim = _softmax_dim(dim, input.shape, "log_softmax")
    return input - logsumexp(input, dim, keepdim=True)


def softmax(input, dim=None):
    """exp(x - max) / sum exp(x - max); the shift is a constant, so the gradient is exact."""
    from .elementwise import exp
    dim = _softmax_dim(dim, input.shape, "softmax")
    xp = backend.get_array_module(input.array)
    shifted = input - Tensor(xp.max(input.array, axis=dim, keepdims=True))
    e = exp(shifted)
    return e / sum(e, dim, keepdim=True)


def silu(input):
    return input * sigmoid(input)


def hardtanh(input, min_val=-1.0, max_val=1.0):
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val {min_val} must not be greater than max_val {max_val}")
    return Hardtanh(min_val, max_val)(input)


__all__ = ["relu", "leaky_relu", "fused_leaky_relu", "tanh", "sigmoid", "softplus", "logsigmoid",
           "log_softmax", "softmax", "silu", "hardtanh"]


def prelu(input, weight):
    """max(0, x) + a min(0, x) with a learned slope a: one per channel (dim 1), or one shared.

    Written as a select between x and a x, so the gradient reaches both x and a
    (and the second derivative d^2 y / dx da is the same mask).
    """
    from .shape import reshape
    if weight.numel() != 1:
        channels = input.shape[1] if input.ndim >= 2 else 1
        if channels != weight.numel():
            raise RuntimeError(f"prelu: weight of shape {tuple(weight.shape)} has {weight.numel()} "
                               f"parameters but input of shape {tuple(input.shape)} has {channels} channels")
        weight = reshape(weight, (1, -1) + (1,) * (input.ndim - 2))
    elif weight.ndim:
        weight = reshape(weight, ())
    return Where(input.array > 0)(input, weight * input)


__all__ += ["prelu"]
