"""Normalization layers, as in torch.nn: BatchNorm1d/2d, InstanceNorm2d, LayerNorm, GroupNorm;
and ConditionalBatchNorm2d (torch has none), whose scale and shift come from a condition vector.

Names, defaults and ``state_dict`` keys are torch's, so a torch twin loads the
same weights and running statistics:

    weight, bias                 (C,)   the affine scale and shift (ones and zeros)
    running_mean, running_var    (C,)   buffers (zeros and ones)
    num_batches_tracked          ()     int64 buffer: batches seen in training

Batch norm uses the batch's statistics in training and the running ones in
``eval()``: a DCGAN generator sampled in eval mode uses the statistics it
averaged during training. ``momentum=None`` makes the running statistics a
plain cumulative average over the batches seen (momentum 1/num_batches_tracked).
"""
import numpy as np

from .. import backend
from ..autograd import Tensor
from ..functional.normalization import batch_norm, group_norm, instance_norm, layer_norm
from .linear import Identity, Linear
from .module import Module
from .parameter import Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d", "InstanceNorm2d", "LayerNorm", "GroupNorm", "ConditionalBatchNorm2d",
           "NORMS_2D", "norm_layer"]


def _filled(shape, value, device, dtype):
    xp = backend.xp_for(device)
    return Tensor(xp.full(shape, value, dtype=np.dtype(dtype or np.float32)))


class _NormBase(Module):
    """Affine parameters and running statistics, shared by batch and instance norm."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 device=None, dtype=None):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(_filled((num_features,), 1.0, device, dtype))
            self.bias = Parameter(_filled((num_features,), 0.0, device, dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", _filled((num_features,), 0.0, device, dtype))
            self.register_buffer("running_var", _filled((num_features,), 1.0, device, dtype))
            self.register_buffer("num_batches_tracked",
                                 Tensor(backend.xp_for(device).zeros((), dtype=np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1.0)
            self.num_batches_tracked.zero_()

    def reset_parameters(self):
        self.reset_running_stats()
        if self.affine:
            self.weight.fill_(1.0)
            self.bias.zero_()

    def _check_input_dim(self, input):
        raise NotImplementedError

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    def forward(self, input):
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.copy_(self.num_batches_tracked.array + 1)
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked.item())
        # eval mode without running statistics normalizes with the batch's own
        use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        track = not self.training or self.track_running_stats
        return batch_norm(input, self.running_mean if track else None, self.running_var if track else None,
                          self.weight, self.bias, use_batch_stats, factor, self.eps)


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) inputs: statistics per channel over N (and L)."""

    def _check_input_dim(self, input):
        if input.ndim not in (2, 3):
            raise ValueError(f"BatchNorm1d: expected 2D or 3D input (got {input.ndim}D input of shape "
                             f"{tuple(input.shape)})")


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) inputs: statistics per channel over N, H and W (Ioffe & Szegedy 2015)."""

    def _check_input_dim(self, input):
        if input.ndim != 4:
            raise ValueError(f"BatchNorm2d: expected 4D input (got {input.ndim}D input of shape "
                             f"{tuple(input.shape)})")


class InstanceNorm2d(_NormBase):
    """Instance norm over (N, C, H, W) or (C, H, W): statistics per sample and channel over H, W.

    As in torch, no affine parameters and no running statistics by default: each
    image is normalized by its own statistics in training and in eval
    (Ulyanov et al. 2016; pix2pix and CycleGAN generators).
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False,
                 device=None, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)

    def forward(self, input):
        if input.ndim not in (3, 4):
            raise ValueError(f"InstanceNorm2d: expected 3D or 4D input (got {input.ndim}D input of shape "
                             f"{tuple(input.shape)})")
        unbatched = input.ndim == 3
        x = input.unsqueeze(0) if unbatched else input
        if self.affine and x.shape[1] != self.num_features:
            raise ValueError(f"InstanceNorm2d: expected input's size at dim 1 to match num_features "
                             f"({self.num_features}), but got input of shape {tuple(input.shape)}")
        y = instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                          self.training or not self.track_running_stats,
                          0.0 if self.momentum is None else self.momentum, self.eps)
        return y.squeeze(0) if unbatched else y


class LayerNorm(Module):
    """Normalize over the last dims ``normalized_shape`` with an elementwise affine (Ba et al. 2016)."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, device=None,
                 dtype=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps, self.elementwise_affine = shape, eps, elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(_filled(shape, 1.0, device, dtype))
        else:
            self.register_parameter("weight", None)
        if elementwise_affine and bias:
            self.bias = Parameter(_filled(shape, 0.0, device, dtype))
        else:
            self.register_parameter("bias", None)

    def reset_parameters(self):
        if self.weight is not None:
            self.weight.fill_(1.0)
        if self.bias is not None:
            self.bias.zero_()

    def forward(self, input):
        return layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class GroupNorm(Module):
    """Normalize groups of channels per sample, with a per-channel affine (Wu & He 2018)."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None, dtype=None):
        super().__init__()
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups})")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        if affine:
            self.weight = Parameter(_filled((num_channels,), 1.0, device, dtype))
            self.bias = Parameter(_filled((num_channels,), 0.0, device, dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self):
        if self.affine:
            self.weight.fill_(1.0)
            self.bias.zero_()

    def forward(self, input):
        return group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class ConditionalBatchNorm2d(Module):
    """Batch norm whose per-channel scale and shift are linear functions of a condition
    vector c (N, cond_features), one pair per sample (de Vries et al. 2017; BigGAN's
    class-conditional batch norm, Brock et al. 2019)::

        y = (1 + gain(c)) * BN(x) + bias(c),    gain, bias: Linear(cond_features, C, bias=False)

    The "1 +" starts the scale near one, as an unconditional batch norm's. ``bn`` is a
    ``BatchNorm2d(affine=False)`` (its running statistics are used in ``eval()``), so the
    state_dict keys are ``gain.weight``, ``bias.weight`` and ``bn.running_mean``, ... .
    """

    def __init__(self, num_features, cond_features, eps=1e-5, momentum=0.1, device=None, dtype=None):
        super().__init__()
        self.num_features, self.cond_features = num_features, cond_features
        self.bn = BatchNorm2d(num_features, eps, momentum, affine=False, device=device, dtype=dtype)
        self.gain = Linear(cond_features, num_features, bias=False, device=device, dtype=dtype)
        self.bias = Linear(cond_features, num_features, bias=False, device=device, dtype=dtype)

    def forward(self, input, cond):
        if cond.ndim != 2 or cond.shape != (input.shape[0], self.cond_features):
            raise ValueError(f"ConditionalBatchNorm2d: expected a condition of shape ({input.shape[0]}, "
                             f"{self.cond_features}) for input of shape {tuple(input.shape)}, got "
                             f"{tuple(cond.shape)}")
        n, c = input.shape[0], self.num_features
        gain, bias = self.gain(cond).reshape(n, c, 1, 1), self.bias(cond).reshape(n, c, 1, 1)
        return (1 + gain) * self.bn(input) + bias

    def extra_repr(self):
        return f"{self.num_features}, cond_features={self.cond_features}"


NORMS_2D = ("batch", "instance", None)


def norm_layer(kind, channels):
    """The normalization after a conv of the image-to-image networks (pix2pix's
    ``get_norm_layer``): "batch" is ``BatchNorm2d(channels)`` (pix2pix), "instance" is
    ``InstanceNorm2d(channels)``, no affine and no running statistics (CycleGAN), and
    None is none (``Identity``, no parameters)."""
    if kind == "batch":
        return BatchNorm2d(channels)
    if kind == "instance":
        return InstanceNorm2d(channels)
    if kind is None:
        return Identity()
    raise ValueError(f"norm_layer: kind must be one of {NORMS_2D}, got {kind!r}")
