"""Convolution layers: ``Conv2d`` and ``ConvTranspose2d``, as in torch.nn.

Parameters, their names and shapes, the initialization and the ``state_dict``
keys are torch's, so a torch twin loads the same weights:

    Conv2d.weight           (out_channels, in_channels / groups, kH, kW)
    ConvTranspose2d.weight  (in_channels, out_channels / groups, kH, kW)
    bias                    (out_channels,)

Both are initialized as torch does: ``kaiming_uniform_(a=sqrt(5))``, which works
out to U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the weight, and the same bound for
the bias, with fan_in = weight.shape[1] * kH * kW.
"""
import math

import numpy as np

from .. import backend
from ..autograd import Tensor
from ..functional._args import pair
from ..functional.conv import conv2d, conv_transpose2d
from ..functional.pool import pad
from .module import Module
from .parameter import Parameter

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _uniform(shape, bound, device, dtype):
    """U(-bound, bound) from minigan's seeded generator of ``device``."""
    rng = backend.generator(device)
    values = rng.uniform(-bound, bound, size=shape)
    return Tensor(backend.xp_for(device).asarray(values, dtype=dtype))


class _ConvNd(Module):
    """What Conv2d and ConvTranspose2d share: argument checks, parameters, init."""

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                 bias, padding_mode, weight_shape, device, dtype):
        super().__init__()
        name = type(self).__name__
        if groups <= 0:
            raise ValueError(f"{name}: groups must be a positive integer, got {groups}")
        if in_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) must be divisible by groups ({groups})")
        if out_channels % groups:
            raise ValueError(f"{name}: out_channels ({out_channels}) must be divisible by groups ({groups})")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {list(_PADDING_MODES)}, "
                             f"but got padding_mode={padding_mode!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = pair(kernel_size, "kernel_size", name), pair(stride, "stride", name)
        self.dilation = pair(dilation, "dilation", name)
        self.padding = padding if isinstance(padding, str) else pair(padding, "padding", name)
        self.groups, self.padding_mode = groups, padding_mode
        self._device, self._dtype = backend.normalize_device(device), np.dtype(dtype or np.float32)
        self.weight = Parameter(Tensor(backend.xp_for(self._device).empty(weight_shape, dtype=self._dtype)))
        self.bias = Parameter(Tensor(backend.xp_for(self._device).empty(
            (out_channels,), dtype=self._dtype))) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        """torch's init: kaiming_uniform_(weight, a=sqrt(5)), bias ~ U(+-1/sqrt(fan_in))."""
        shape = self.weight.shape
        fan_in = shape[1] * shape[2] * shape[3]
        gain = math.sqrt(2.0 / (1 + 5))  # leaky_relu gain with a = sqrt(5)
        bound = math.sqrt(3.0) * gain / math.sqrt(fan_in)  # = 1 / sqrt(fan_in)
        device = self.weight.device
        self.weight.copy_(_uniform(shape, bound, device, self.weight.dtype))
        if self.bias is not None:
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            self.bias.copy_(_uniform(self.bias.shape, bound, device, self.bias.dtype))

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding not in ((0, 0), "valid"):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if getattr(self, "output_padding", (0, 0)) != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv2d(_ConvNd):
    """2-D convolution over (N, C_in, H, W) or (C_in, H, W) inputs.

    ``padding_mode`` other than 'zeros' pads the input first ('reflect',
    'replicate', 'circular'; 'same' puts the odd pixel at the bottom/right) and
    then convolves without padding, as torch does.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        k = pair(kernel_size, "kernel_size", "Conv2d")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Conv2d: Invalid padding string {padding!r}, should be one of "
                                 "['valid', 'same']")
            if padding == "same" and pair(stride, "stride", "Conv2d") != (1, 1):
                raise ValueError("Conv2d: padding='same' is not supported for strided convolutions")
        super().__init__(in_channels, out_channels, k, stride, padding, dilation, groups, bias,
                         padding_mode, (out_channels, in_channels // groups) + k, device, dtype)
        # F.pad's order: (left, right, top, bottom)
        if padding == "same":
            pads = []
            for d, kk in zip(reversed(self.dilation), reversed(k)):
                total = d * (kk - 1)
                pads += [total // 2, total - total // 2]
            self._reversed_padding_repeated_twice = tuple(pads)
        elif padding == "valid":
            self._reversed_padding_repeated_twice = (0, 0, 0, 0)
        else:
            ph, pw = self.padding
            self._reversed_padding_repeated_twice = (pw, pw, ph, ph)

    def forward(self, input):
        if self.padding_mode != "zeros":
            input = pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return conv2d(input, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        return conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class ConvTranspose2d(_ConvNd):
    """2-D transposed convolution: the gradient of ``Conv2d`` with respect to its input.

    ``forward(input, output_size=None)``: a stride > 1 maps several input sizes
    to one output size; ``output_size`` picks which (as ``output_padding``).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                 groups=1, bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        if padding_mode != "zeros":
            raise ValueError(f"ConvTranspose2d: only 'zeros' padding mode is supported, "
                             f"got padding_mode={padding_mode!r}")
        if isinstance(padding, str):
            raise ValueError(f"ConvTranspose2d: padding must be an int or a tuple, got {padding!r}")
        k = pair(kernel_size, "kernel_size", "ConvTranspose2d")
        super().__init__(in_channels, out_channels, k, stride, padding, dilation, groups, bias,
                         padding_mode, (in_channels, out_channels // groups) + k, device, dtype)
        self.output_padding = pair(output_padding, "output_padding", "ConvTranspose2d")

    def _output_padding(self, input, output_size):
        """The output_padding that makes the output ``output_size`` (torch's rule)."""
        if output_size is None:
            return self.output_padding
        output_size = tuple(int(s) for s in output_size)
        if len(output_size) not in (2, input.ndim):
            raise ValueError(f"ConvTranspose2d: for {input.ndim}-D input, output_size must have 2 or "
                             f"{input.ndim} elements, got {output_size}")
        output_size = output_size[-2:]
        padding = []
        for d, size in enumerate(output_size):
            smallest = ((input.shape[d - 2] - 1) * self.stride[d] - 2 * self.padding[d]
                        + self.dilation[d] * (self.kernel_size[d] - 1) + 1)
            if not smallest <= size < smallest + self.stride[d]:
                raise ValueError(f"ConvTranspose2d: requested an output size of {output_size}, but "
                                 f"valid sizes for input of shape {input.shape} range from "
                                 f"{smallest} to {smallest + self.stride[d] - 1} in dim {d}")
            padding.append(size - smallest)
        return tuple(padding)

    def forward(self, input, output_size=None):
        return conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                self._output_padding(input, output_size), self.groups, self.dilation)
