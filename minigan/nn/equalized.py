"""Equalized learning rate (Karras et al., 2018, "Progressive Growing of GANs", sec. 4.1).

He initialization scales a weight *once*, at init: w ~ N(0, c^2) with the He
constant c = gain / sqrt(fan_in). ProGAN draws w ~ N(0, 1) instead and applies c
at *runtime*, on every forward:

    y = x (c w)^T + b,      c = gain / sqrt(fan_in)      (gain = sqrt(2): c = sqrt(2 / fan_in))

The function computed is the same; the training dynamics are not. Adam (and
RMSprop) divide each step by a running estimate of the gradient's scale, so a
parameter moves by about lr per step whatever its size. With He init a layer of
large fan_in has small weights that lr moves relatively fast; with the scale
moved into the forward pass every stored weight has unit size, so each takes
the same *relative* step: the learning speed is equal across layers.

StyleGAN's mapping network slows its 8 layers down by ``lr_multiplier`` = 0.01
(Karras et al., 2019, App. C): the weight is stored as N(0, 1 / lr_mul^2) and
scaled by c * lr_mul, the bias scaled by lr_mul, so the effective parameters
start the same while each Adam step moves them lr_mul times less. The code
follows StyleGAN2-ADA's ``FullyConnectedLayer`` and ``Conv2dLayer``
(training/networks.py): the stored bias starts at ``bias_init``.
"""
import math

import numpy as np

from .. import backend
from ..autograd import Tensor
from ..functional._args import pair
from ..functional.conv import conv2d
from ..functional.linalg import linear
from .module import Module
from .parameter import Parameter


class _Equalized(Module):
    """The shared part: N(0, 1 / lr_mul^2) weight, constant bias, runtime gains."""

    def __init__(self, weight_shape, fan_in, bias, gain, lr_multiplier, bias_init, device, dtype):
        super().__init__()
        xp, dtype = backend.xp_for(device), np.dtype(dtype or np.float32)
        values = backend.generator(device).standard_normal(weight_shape) / lr_multiplier
        self.weight = Parameter(Tensor(xp.asarray(values, dtype=dtype)))
        if bias:
            self.bias = Parameter(Tensor(xp.full((weight_shape[0],), bias_init, dtype=dtype)))
        else:
            self.register_parameter("bias", None)
        self.gain, self.lr_multiplier, self.bias_init = gain, lr_multiplier, bias_init
        self.weight_gain = gain * lr_multiplier / math.sqrt(fan_in)  # the He constant c, times lr_mul
        self.bias_gain = lr_multiplier

    def scaled(self):
        """The effective weight and bias: c lr_mul w and lr_mul b."""
        bias = self.bias
        if bias is not None and self.bias_gain != 1:
            bias = bias * self.bias_gain
        return self.weight * self.weight_gain, bias


class EqualizedLinear(_Equalized):
    """``Linear`` with the He constant applied at runtime: y = x (c w)^T + lr_mul b.

    c = gain * lr_multiplier / sqrt(in_features). ``gain=1`` with an activation
    gain applied after the nonlinearity is StyleGAN2's convention; ``sqrt(2)``
    folds the ReLU gain in, as ProGAN.
    """

    def __init__(self, in_features, out_features, bias=True, gain=math.sqrt(2), lr_multiplier=1.0,
                 bias_init=0.0, device=None, dtype=None):
        super().__init__((out_features, in_features), in_features, bias, gain, lr_multiplier, bias_init,
                         device, dtype)
        self.in_features, self.out_features = in_features, out_features

    def forward(self, input):
        return linear(input, *self.scaled())

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, gain={self.gain:g}, lr_multiplier={self.lr_multiplier:g}")


class EqualizedConv2d(_Equalized):
    """``Conv2d`` with the He constant applied at runtime, c = gain * lr_multiplier / sqrt(C_in/groups * kh * kw)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, gain=math.sqrt(2), lr_multiplier=1.0, bias_init=0.0, device=None, dtype=None):
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"EqualizedConv2d: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must be divisible by groups ({groups})")
        kh, kw = pair(kernel_size, "kernel_size", "EqualizedConv2d")
        super().__init__((out_channels, in_channels // groups, kh, kw), in_channels // groups * kh * kw,
                         bias, gain, lr_multiplier, bias_init, device, dtype)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, (kh, kw)
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups

    def forward(self, input):
        weight, bias = self.scaled()
        return conv2d(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, gain={self.gain:g}, "
                f"lr_multiplier={self.lr_multiplier:g}")
