"""minigan Functions whose forward and backward run the kernels: what minigan.functional dispatches to.

Second derivatives (the gradient penalties of WGAN-GP and R1) must stay exact
through a kernel, so each backward is itself differentiable:

    BiasLeakyReLU      x, b  ->  y           backward: BiasLeakyReLUGrad(gy, x, b), and its sum for b
    BiasLeakyReLUGrad  gy, x, b -> gx        backward: BiasLeakyReLUGrad(ggx, x, b) for gy (the op is
                                             linear in gy), zeros for x and b (its slope mask is
                                             constant in them: zero curvature a.e.), as torch's
    Normalize          x, scale, shift -> y  backward: the fused kernel when no graph is recorded;
                                             while one is (create_graph=True), the same closed form
                                             in Tensor ops, which the engine differentiates again
    BatchNorm          the same, with statistics per channel over the batch (kernels/batch_norm.py)

The norm's backward is a function of x through the statistics, so its own
derivative is not a kernel of its own: like ``BatchNormTraining`` it rebuilds the
closed form from x with Tensor ops when a graph is being recorded. The
convolutions need nothing here: their three Functions (``minigan.functional.conv``)
already differentiate into each other, and minigan.dispatch runs each one's
forward on its kernel.
"""
from minigan.autograd import Function, Tensor, is_grad_enabled
from minigan.creation import zeros_like

from . import batch_norm, bias_act, norm


# ---------------------------------------------------------------- bias + leaky ReLU


class BiasLeakyReLU(Function):
    """y = gain * leaky_relu(x + b): inputs x, or x and b (C,) added along dim 1."""

    def __init__(self, negative_slope, gain):
        self.slope, self.gain = negative_slope, gain

    def forward(self, x, bias=None):
        return bias_act.bias_leaky_relu(x, bias, self.slope, self.gain)

    def backward(self, gy):
        gx = BiasLeakyReLUGrad(self.slope, self.gain)(gy, *self.inputs)
        if len(self.inputs) == 1:
            return gx
        gb = gx.sum((0,) + tuple(range(2, gx.ndim))) if self.needs_input_grad[1] else None
        return gx, gb


class BiasLeakyReLUGrad(Function):
    """gx = gain * gy * slope(x + b): linear in gy, of zero derivative in x and b."""

    def __init__(self, negative_slope, gain):
        self.slope, self.gain = negative_slope, gain

    def forward(self, gy, x, bias=None):
        return bias_act.bias_leaky_relu_grad(gy, x, bias, self.slope, self.gain)

    def backward(self, ggx):
        ggy = BiasLeakyReLUGrad(self.slope, self.gain)(ggx, *self.inputs[1:])
        return (ggy,) + tuple(zeros_like(t) for t in self.inputs[1:])


# ---------------------------------------------------------------- instance norm, AdaIN, batch norm


class Normalize(Function):
    """y = (x - mean) / sqrt(var + eps) * scale + shift, statistics per sample and channel.

    Inputs: x, then scale and shift where given: (C,) for instance norm's affine,
    (N, C) for AdaIN's style (``per_sample``).
    """

    def __init__(self, eps, per_sample, has_scale, has_shift):
        self.eps, self.per_sample = eps, per_sample
        self.has_scale, self.has_shift = has_scale, has_shift

    def forward(self, x, *affine):
        scale = affine[0] if self.has_scale else None
        shift = affine[-1] if self.has_shift else None
        y, self.saved_mean, self.saved_var = norm.norm_forward(x, scale, shift, self.eps)
        return y

    def axes(self, x):
        """The axes the statistics are taken over."""
        return tuple(range(2, x.ndim))

    def backward_kernel(self, x, gy, scale):
        """gx and the sums for scale and shift, as arrays: the fused backward."""
        return norm.norm_backward(x, gy, scale, self.saved_mean, self.saved_var, self.eps)

    def backward(self, gy):
        x = self.inputs[0]
        scale = self.inputs[1] if self.has_scale else None
        if is_grad_enabled():  # recording a graph: the closed form as functions of x
            gx, g_scale, g_shift = self._closed_form(x, gy, scale)
        else:
            gx, g_scale, g_shift = self.backward_kernel(x.array, gy.array, None if scale is None else scale.array)
            gx = Tensor(gx)
            g_scale, g_shift = Tensor(g_scale.astype(x.dtype, copy=False)), Tensor(g_shift.astype(x.dtype, copy=False))
        if not self.per_sample and 0 not in self.axes(x):  # instance norm's weight and bias: shared by the batch
            g_scale, g_shift = g_scale.sum(0), g_shift.sum(0)
        need = self.needs_input_grad
        grads = [gx if need[0] else None]
        if self.has_scale:
            grads.append(g_scale if need[1] else None)
        if self.has_shift:
            grads.append(g_shift if need[-1] else None)
        return tuple(grads) if len(grads) > 1 else grads[0]

    def _closed_form(self, x, gy, scale):
        """gx = rstd (g - mean(g) - x_hat mean(g x_hat)), g = gy * scale; the sums over the axes."""
        axes = self.axes(x)
        centered = x - x.mean(axes, keepdim=True)
        rstd = ((centered * centered).mean(axes, keepdim=True) + self.eps).rsqrt()
        x_hat = centered * rstd
        g = gy
        if scale is not None:
            g = gy * scale.reshape(tuple(scale.shape) + (1,) * (x.ndim - 2) if self.per_sample
                                   else (1, -1) + (1,) * (x.ndim - 2))
        gx = rstd * (g - g.mean(axes, keepdim=True) - x_hat * (g * x_hat).mean(axes, keepdim=True))
        return gx, (gy * x_hat).sum(axes), gy.sum(axes)


class BatchNorm(Normalize):
    """Batch norm in training: statistics per channel over the batch and the map
    (kernels/batch_norm.py). ``running`` (running_mean, running_var, momentum) are
    moved in the forward's launches where the kernel can (``updated_running``)."""

    def __init__(self, eps, has_scale, has_shift, running=None):
        super().__init__(eps, False, has_scale, has_shift)
        self.running, self.updated_running = running, False

    def forward(self, x, *affine):
        running = None
        if self.running is not None:
            stats = [None if t is None else t.array for t in self.running[:2]]
            if batch_norm.fuses_running(x, *stats):
                running = (*stats, self.running[2])
        y, self.saved_mean, self.saved_var = batch_norm.batch_norm_forward(
            x, affine[0] if self.has_scale else None, affine[-1] if self.has_shift else None, self.eps, running)
        if running is not None:
            for t in self.running[:2]:
                t._version += 1
            self.updated_running = True
        return y

    def axes(self, x):
        return (0,) + tuple(range(2, x.ndim))

    def backward_kernel(self, x, gy, scale):
        return batch_norm.batch_norm_backward(x, gy, scale, self.saved_mean, self.saved_var, self.eps)


def instance_norm(x, weight, bias, eps):
    """Instance norm of Tensor x with an optional (C,) affine: y, and the statistics as (N, C) arrays."""
    node = Normalize(eps, False, weight is not None, bias is not None)
    y = node(x, *[t for t in (weight, bias) if t is not None])
    return y, node.saved_mean, node.saved_var


def adain(x, style_scale, style_bias, eps):
    """StyleGAN's AdaIN of Tensor x with the style (N, C) scale and bias, in one kernel."""
    return Normalize(eps, True, True, True)(x, style_scale, style_bias)


def batch_norm_training(x, weight, bias, eps, running_mean=None, running_var=None, momentum=0.1):
    """Training-mode batch norm of Tensor x in two launches each way: y, the batch's mean and
    biased variance as (C,) arrays of x's dtype, and whether the running statistics were
    moved already (in the same launches)."""
    node = BatchNorm(eps, weight is not None, bias is not None, (running_mean, running_var, momentum))
    y = node(x, *[t for t in (weight, bias) if t is not None])
    mean, var = (a.astype(x.dtype, copy=False) for a in (node.saved_mean, node.saved_var))
    return y, mean, var, node.updated_running
