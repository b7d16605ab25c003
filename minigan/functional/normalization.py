"""Normalization layers: batch, instance, layer and group norm, and the GAN-specific
ones (AdaIN, pixel norm, minibatch standard deviation).

Every norm is the same three steps over a different set of axes:

    mean  = E[x]                        over the axes
    var   = E[(x - mean)^2]             two passes: subtract the mean first
    y     = (x - mean) / sqrt(var + eps) * weight + bias

    batch_norm     axes N, H, W       per channel (running stats for eval)
    instance_norm  axes H, W          per sample and channel
    layer_norm     the last dims      per sample
    group_norm     C/G channels, H, W per sample and group of channels

They are written with Tensor ops (mean, sqrt, ...), so their first *and* second
derivatives come from the autograd engine: a gradient penalty through a critic
with layer or instance norm needs d^2 y / dx^2, which a hand-written backward
would have to provide separately. The variance is biased (divide by n), as in
torch; the running variance is updated with the unbiased one (n / (n - 1)).
"""
import math

import numpy as np

from .. import backend, dispatch
from ..autograd import Function, Tensor, is_grad_enabled, no_grad
from ._args import shape_str as _shape_str
from .elementwise import sqrt
from .reduce import mean, sum
from .shape import cat, reshape, repeat

__all__ = ["batch_norm", "instance_norm", "layer_norm", "group_norm", "adain", "adain_transfer",
           "pixel_norm", "minibatch_stddev"]


def _moments(x, axes):
    """Mean and biased variance over ``axes`` (kept), in two passes."""
    mu = mean(x, axes, keepdim=True)
    centered = x - mu
    return mu, centered, mean(centered * centered, axes, keepdim=True)


def _per_channel(t, ndim):
    """A (C,) tensor shaped (1, C, 1, ...) to broadcast over an (N, C, ...) input."""
    return reshape(t, (1, -1) + (1,) * (ndim - 2))


def _check_channels(t, name, c, input, op):
    if t is not None and tuple(t.shape) != (c,):
        raise RuntimeError(f"{op}: {name} of shape {_shape_str(t.shape)} does not match the "
                           f"{c} channels of input of shape {_shape_str(input.shape)}")


def _affine(y, weight, bias, shape):
    if weight is not None:
        y = y * reshape(weight, shape)
    if bias is not None:
        y = y + reshape(bias, shape)
    return y


def _accumulator(dtype):
    """The dtype sums over the batch are taken in: float16 in float32, others in their own."""
    return np.float32 if np.dtype(dtype).itemsize < 4 else dtype


def _empty_batch(x, weight, bias):
    """torch's answer for an input with no values (N = 0): a copy of it, times weight[0] plus
    bias[0], so that weight and bias still receive their (zero) gradients. No statistics are
    taken."""
    y = x.clone()
    if weight is not None:
        y = y * weight[0]
    if bias is not None:
        y = y + bias[0]
    return y


def _update_running(stat, new, momentum):
    """stat <- (1 - momentum) stat + momentum new, in place and off the graph."""
    if stat is None:
        return
    xp = backend.get_array_module(stat.array)
    new = xp.asarray(new).astype(stat.dtype, copy=False).reshape(stat.shape)
    stat.copy_(stat.array * stat.dtype.type(1 - momentum) + new * stat.dtype.type(momentum))


# ---------------------------------------------------------------- batch norm


class BatchNormTraining(Function):
    """Training-mode batch norm as one node: inputs x, then weight and bias where given.

        x_hat = (x - mean) / sigma,   sigma = sqrt(var + eps),   y = x_hat * weight + bias

    with the batch's statistics per channel over ``axes``. Its backward is the
    closed form of Ioffe & Szegedy (2015, sec. 3)::

        g_bias   = sum(gy)
        g_weight = sum(gy * x_hat)
        gx       = weight / sigma * (gy - (g_bias + x_hat * g_weight) / n)

    Five passes over the data, where the engine takes some fifteen through the
    composite of ``_moments``; on the CPU each pass is split over the batch
    between threads (``backend.over_batch``). Its second derivative comes from
    differentiating that expression: when a graph is being recorded
    (``create_graph=True``) it is written in Tensor ops, with x_hat and sigma
    rebuilt from x, since the arrays saved by ``forward`` are constants to the
    engine and would miss how they move with x.
    """

    def __init__(self, axes, eps, has_weight, has_bias):
        self.axes, self.eps, self.has_weight, self.has_bias = axes, eps, has_weight, has_bias

    def forward(self, x, *affine):
        for t in affine:
            if t.dtype != x.dtype:  # the products would silently upcast
                raise TypeError(f"batch_norm: input dtype {x.dtype} and weight/bias dtype {t.dtype} "
                                f"differ (input {_shape_str(x.shape)}); cast one with .to(dtype)")
        xp = backend.get_array_module(x)
        n, count, axes = x.shape[0], x.size // x.shape[1], self.axes
        acc = _accumulator(x.dtype)
        # every pass runs on slices of the batch, one per CPU thread (backend.over_batch)
        total = backend.batch_sum(n, lambda a, b: x[a:b].sum(axis=axes, keepdims=True, dtype=acc), xp, x.size)
        self.batch_mean = (total / count).astype(x.dtype)
        x_hat = xp.empty_like(x)

        def center(a, b):  # x - mean, and the partial sum of its squares
            xp.subtract(x[a:b], self.batch_mean, out=x_hat[a:b])
            return (x_hat[a:b] * x_hat[a:b]).sum(axis=axes, keepdims=True, dtype=acc)

        self.batch_var = (backend.batch_sum(n, center, xp, x.size) / count).astype(x.dtype)
        inv_sigma = 1 / xp.sqrt(self.batch_var + self.eps)
        self.saved_x_hat, self.saved_inv_sigma = x_hat, inv_sigma
        shape = inv_sigma.shape
        weight = affine[0].reshape(shape) if self.has_weight else None
        bias = affine[-1].reshape(shape) if self.has_bias else None
        y = xp.empty_like(x)

        def normalize(a, b):
            x_hat[a:b] *= inv_sigma
            if weight is not None:
                xp.multiply(x_hat[a:b], weight, out=y[a:b])
            else:
                y[a:b] = x_hat[a:b]
            if bias is not None:
                y[a:b] += bias

        backend.over_batch(n, normalize, xp, x.size)
        return y

    def backward(self, gy):
        x = self.inputs[0]
        if not is_grad_enabled():  # no graph to record: the same formulas on the arrays
            return self._backward_arrays(gy.array)
        # recording a graph: x_hat and 1/sigma as functions of x
        _, centered, var = _moments(x, self.axes)
        inv_sigma = 1.0 / sqrt(var + self.eps)
        x_hat = centered * inv_sigma
        n = x.numel() // x.shape[1]
        g_bias = sum(gy, self.axes, keepdim=True)
        g_weight = sum(gy * x_hat, self.axes, keepdim=True)
        need = self.needs_input_grad
        grads = [None]
        if need[0]:
            scale = inv_sigma * reshape(self.inputs[1], inv_sigma.shape) if self.has_weight else inv_sigma
            grads[0] = scale * (gy - (g_bias + x_hat * g_weight) / float(n))
        channels = (x.shape[1],)
        if self.has_weight:
            grads.append(reshape(g_weight, channels) if need[1] else None)
        if self.has_bias:
            grads.append(reshape(g_bias, channels) if need[-1] else None)
        return tuple(grads)

    def _backward_arrays(self, gy):
        """The backward above in five threaded passes over the arrays, for a
        backward pass that records no graph (the usual one)."""
        x_hat, inv_sigma, axes = self.saved_x_hat, self.saved_inv_sigma, self.axes
        xp = backend.get_array_module(gy)
        n, count = gy.shape[0], gy.size // gy.shape[1]
        acc = _accumulator(gy.dtype)

        def sums(a, b):  # the partial sums of gy and gy * x_hat over a slice of the batch
            g = gy[a:b]
            return xp.stack([g.sum(axis=axes, keepdims=True, dtype=acc),
                             (g * x_hat[a:b]).sum(axis=axes, keepdims=True, dtype=acc)])

        g_bias, g_weight = backend.batch_sum(n, sums, xp, gy.size).astype(gy.dtype)
        need = self.needs_input_grad
        grads = [None]
        if need[0]:
            scale = inv_sigma * self.inputs[1].array.reshape(inv_sigma.shape) if self.has_weight else inv_sigma
            per_x_hat, per_one = g_weight / count, g_bias / count
            gx = xp.empty_like(gy)

            def input_grad(a, b):  # scale * (gy - (g_bias + x_hat * g_weight) / n)
                xp.multiply(x_hat[a:b], per_x_hat, out=gx[a:b])
                gx[a:b] += per_one
                xp.subtract(gy[a:b], gx[a:b], out=gx[a:b])
                gx[a:b] *= scale

            backend.over_batch(n, input_grad, xp, gy.size)
            grads[0] = Tensor(gx)
        channels = (gy.shape[1],)
        if self.has_weight:
            grads.append(Tensor(g_weight.reshape(channels)) if need[1] else None)
        if self.has_bias:
            grads.append(Tensor(g_bias.reshape(channels)) if need[-1] else None)
        return tuple(grads)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Normalize each channel over the batch and the spatial dims, as ``torch.nn.functional.batch_norm``.

    In training the batch's statistics are used and, when given, ``running_mean``
    and ``running_var`` are moved towards them in place (with the unbiased
    variance); in evaluation the running statistics are used instead.
    """
    x = input
    if training and x.ndim and x.shape[0] * math.prod(x.shape[2:]) == 1:  # torch's check, first
        raise ValueError(f"batch_norm: Expected more than 1 value per channel when training, "
                         f"got input size {_shape_str(x.shape)}")
    if x.numel() == 0:  # nothing to normalize; the running statistics stay as they are
        return _empty_batch(x, weight, bias)
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected an input of shape (N, C, ...), got {_shape_str(x.shape)}")
    c = x.shape[1]
    for name, t in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                    ("running_var", running_var)):
        _check_channels(t, name, c, x, "batch_norm")
    shape = (1, c) + (1,) * (x.ndim - 2)
    if training:
        n = x.numel() // c
        affine = [t for t in (weight, bias) if t is not None]
        fused = dispatch.kernel("batch_norm", x.array, *(t.array for t in affine))
        if fused is not None:
            y, batch_mean, batch_var, updated = fused(x, weight, bias, eps, running_mean, running_var, momentum)
        else:
            node = BatchNormTraining((0,) + tuple(range(2, x.ndim)), eps, weight is not None, bias is not None)
            y, batch_mean, batch_var, updated = node(x, *affine), node.batch_mean, node.batch_var, False
        if not updated:
            with no_grad():
                _update_running(running_mean, batch_mean, momentum)
                _update_running(running_var, batch_var * (n / (n - 1)), momentum)
        return y
    if running_mean is None or running_var is None:
        raise RuntimeError("batch_norm: running_mean and running_var must be given in evaluation "
                           "mode (training=False)")
    y = (x - reshape(running_mean, shape)) / sqrt(reshape(running_var, shape) + eps)
    return _affine(y, weight, bias, shape)


# ---------------------------------------------------------------- instance norm


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5):
    """Normalize each sample's channel over its spatial dims, as ``torch.nn.functional.instance_norm``.

    Works for any number of spatial dims (N, C, L), (N, C, H, W), (N, C, D, H, W).
    Running statistics, when given, move towards the batch average of the
    per-instance statistics; ``use_input_stats=False`` normalizes with them instead.
    """
    x = input
    if x.ndim < 3 or (use_input_stats and math.prod(x.shape[2:]) == 1):
        raise ValueError(f"instance_norm: Expected more than 1 spatial element when training, got "
                         f"input size {_shape_str(x.shape)}")
    c = x.shape[1]
    for name, t in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                    ("running_var", running_var)):
        _check_channels(t, name, c, x, "instance_norm")
    shape = (1, c) + (1,) * (x.ndim - 2)
    if x.numel() == 0:
        if use_input_stats and x.shape[0] == 0 and running_mean is not None:
            # torch's running statistics move to the mean over no instances: NaN
            nan = backend.get_array_module(x.array).full(c, np.nan)
            with no_grad():
                _update_running(running_mean, nan, momentum)
                _update_running(running_var, nan, momentum)
        return _empty_batch(x, weight, bias)
    affine = [t.array for t in (weight, bias) if t is not None]
    fused = dispatch.kernel("instance_norm", x.array, *affine) if use_input_stats else None
    if fused is not None:
        y, mu, var = fused(x, weight, bias, eps)
        n = math.prod(x.shape[2:])
        with no_grad():
            _update_running(running_mean, mu.mean(axis=0), momentum)
            _update_running(running_var, (var * (n / (n - 1))).mean(axis=0), momentum)
        return y
    if use_input_stats:
        axes = tuple(range(2, x.ndim))
        mu, centered, var = _moments(x, axes)
        y = centered / sqrt(var + eps)
        n = math.prod(x.shape[2:])
        with no_grad():
            _update_running(running_mean, mu.array.mean(axis=0), momentum)
            _update_running(running_var, (var.array * (n / (n - 1))).mean(axis=0), momentum)
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError("instance_norm: running_mean and running_var must be given when "
                               "use_input_stats=False")
        y = (x - reshape(running_mean, shape)) / sqrt(reshape(running_var, shape) + eps)
    return _affine(y, weight, bias, shape)


# ---------------------------------------------------------------- layer norm / group norm


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalize over the last ``len(normalized_shape)`` dims, as ``torch.nn.functional.layer_norm``.

    ``weight`` and ``bias`` have shape ``normalized_shape`` (elementwise affine).
    """
    x = input
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or x.ndim < k or tuple(x.shape[-k:]) != shape:
        raise RuntimeError(f"layer_norm: normalized_shape={list(shape)} expects an input of shape "
                           f"(*, {', '.join(map(str, shape))}), got {_shape_str(x.shape)}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != shape:
            raise RuntimeError(f"layer_norm: {name} of shape {_shape_str(t.shape)} does not match "
                               f"normalized_shape {_shape_str(shape)}")
    _, centered, var = _moments(x, tuple(range(x.ndim - k, x.ndim)))
    return _affine(centered / sqrt(var + eps), weight, bias, shape)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalize each sample over groups of C/G channels (and all spatial dims), as
    ``torch.nn.functional.group_norm``; G=1 is layer norm over (C, H, W), G=C instance norm.
    """
    x = input
    if x.ndim < 2:
        raise RuntimeError(f"group_norm: expected an input of shape (N, C, ...), got {_shape_str(x.shape)}")
    n, c = x.shape[:2]
    if num_groups <= 0 or c % num_groups:
        raise RuntimeError(f"group_norm: Expected number of channels in input to be divisible by "
                           f"num_groups, but got input of shape {_shape_str(x.shape)} and "
                           f"num_groups={num_groups}")
    if n * c // num_groups * math.prod(x.shape[2:]) == 1:  # torch's check, verbatim
        raise ValueError(f"group_norm: Expected more than 1 value per channel when training, got "
                         f"input size {_shape_str(x.shape)} with num_groups={num_groups}")
    for name, t in (("weight", weight), ("bias", bias)):
        _check_channels(t, name, c, x, "group_norm")
    grouped = reshape(x, (n, num_groups, c // num_groups * math.prod(x.shape[2:])))
    _, centered, var = _moments(grouped, (2,))
    y = reshape(centered / sqrt(var + eps), x.shape)
    return _affine(y, weight, bias, (1, c) + (1,) * (x.ndim - 2))


# ---------------------------------------------------------------- GAN norms


def _check_spatial(x, op, name):
    """Normalizing one value gives 0 whatever it was (as instance_norm, torch refuses)."""
    if math.prod(x.shape[2:]) <= 1:
        raise ValueError(f"{op}: Expected more than 1 spatial element in {name} to normalize, got "
                         f"{name} of shape {_shape_str(x.shape)}")


def adain(x, style_scale, style_bias, eps=1e-5):
    """Adaptive instance normalization, StyleGAN's form (Karras et al. 2019, eq. 1):

        AdaIN(x_i, y) = y_s,i * (x_i - mu(x_i)) / sigma(x_i) + y_b,i

    with sigma = sqrt(var + eps) over the spatial dims of each sample's channel i,
    and the style y = (y_s, y_b) given per sample and channel: shapes (N, C).
    """
    if x.ndim < 3:
        raise ValueError(f"adain: expected x of shape (N, C, ...) with spatial dims, got "
                         f"{_shape_str(x.shape)}")
    n, c = x.shape[:2]
    for name, t in (("style_scale", style_scale), ("style_bias", style_bias)):
        if tuple(t.shape) != (n, c):
            raise RuntimeError(f"adain: {name} must have shape (N, C) = {_shape_str((n, c))} for x of "
                               f"shape {_shape_str(x.shape)}, got {_shape_str(t.shape)}")
    _check_spatial(x, "adain", "x")
    fused = dispatch.kernel("adain", x.array, style_scale.array, style_bias.array)
    if fused is not None:
        return fused(x, style_scale, style_bias, eps)
    shape = (n, c) + (1,) * (x.ndim - 2)
    _, centered, var = _moments(x, tuple(range(2, x.ndim)))
    return centered / sqrt(var + eps) * reshape(style_scale, shape) + reshape(style_bias, shape)


def adain_transfer(content, style, eps=1e-5):
    """Style transfer by AdaIN (Huang & Belongie 2017, eq. 8):

        AdaIN(x, y) = sigma(y) (x - mu(x)) / sigma(x) + mu(y)

    mu and sigma per sample and channel over the spatial dims, sigma = sqrt(var + eps)
    with the biased variance. ``style`` may have other spatial sizes than ``content``.
    """
    if content.ndim < 3 or style.ndim != content.ndim or style.shape[:2] != content.shape[:2]:
        raise RuntimeError(f"adain_transfer: content and style must both be (N, C, ...) with the same N "
                           f"and C, got {_shape_str(content.shape)} and {_shape_str(style.shape)}")
    _check_spatial(content, "adain_transfer", "content")
    axes = tuple(range(2, content.ndim))
    _, centered, var = _moments(content, axes)
    style_mean, _, style_var = _moments(style, axes)
    return centered / sqrt(var + eps) * sqrt(style_var + eps) + style_mean


def pixel_norm(x, eps=1e-8, dim=1):
    """Pixelwise feature vector normalization (ProGAN, Karras et al. 2018, eq. in sec. 4.2):

        b_xy = a_xy / sqrt(mean_j (a_xy^j)^2 + eps)

    each pixel's feature vector (over channels, ``dim``) scaled to unit RMS.
    """
    return x / sqrt(mean(x * x, dim, keepdim=True) + eps)


def minibatch_stddev(x, group_size=4, num_features=1, eps=1e-8):
    """Minibatch standard deviation (ProGAN sec. 3; StyleGAN2's ``MinibatchStdLayer``).

    The batch is split into groups of G = min(group_size, N) samples (sample i in
    group i mod N/G) and the channels into ``num_features`` parts. For each group
    and part: the standard deviation over the group of every feature and pixel,
    sqrt(var + eps) with the biased variance, averaged over the part's channels
    and pixels. That number is appended as an extra constant channel to every
    sample of the group, so the critic can see a lack of variety in a batch.
    Output: (N, C + num_features, H, W).
    """
    if x.ndim != 4:
        raise ValueError(f"minibatch_stddev: expected x of shape (N, C, H, W), got {_shape_str(x.shape)}")
    n, c, h, w = x.shape
    g = min(group_size, n) if group_size is not None else n
    f = num_features
    if n % g or c % f:
        raise RuntimeError(f"minibatch_stddev: batch size {n} must be divisible by the group size {g} "
                           f"and channels {c} by num_features {f}; got x of shape {_shape_str(x.shape)}")
    y = reshape(x, (g, -1, f, c // f, h, w))          # [G n F c H W]
    y = y - mean(y, 0, keepdim=True)                   # subtract the mean over the group
    y = sqrt(mean(y * y, 0) + eps)                     # [n F c H W] stddev over the group
    y = mean(y, (2, 3, 4))                             # [n F] average over channels and pixels
    y = repeat(reshape(y, (-1, f, 1, 1)), g, 1, h, w)  # [N F H W] back to every sample and pixel
    return cat([x, y], 1)
