"""2-D convolution and transposed convolution, as im2col + one matrix product.

A convolution slides a (C/g, kh, kw) filter over the padded input. Gathering
every receptive field into a column (*im2col*) turns the whole layer into one
matrix product per group::

    cols[g, (c, i, j), (n, oh, ow)] = x_pad[n, g*C/g + c, oh*sh + i*dh, ow*sw + j*dw]
    y[g] = W[g] (O/g, K) @ cols[g] (K, N*OH*OW)          K = C/g * kh * kw

The columns are a strided *view* of the padded input (``as_strided``); the only
copy is the one the product needs. A convolution is linear in x and in W, so
its two gradients are the two other products of the same three matrices:

    dgrad  (input):  cols = W^T @ gy, then scatter the columns back (col2im)
    wgrad  (weight): gW   = gy @ cols^T

Each of the three is a ``Function`` whose backward is made of the other two
(Chainer's pattern), so second derivatives — the gradient penalties of WGAN-GP
and R1 differentiate ``d critic / d x`` with respect to the weights — are exact:

    op                      inputs     backward (gradient of its output -> inputs)
    Conv2dFunction          x, W       GradInput(W, gy),      GradWeight(x, gy)
    Conv2dGradInput         W, gy      GradWeight(ggx, gy),   Conv2dFunction(ggx, W)
    Conv2dGradWeight        x, gy      GradInput(ggW, gy),    Conv2dFunction(x, ggW)

A transposed convolution *is* the input gradient of a convolution, so
``conv_transpose2d`` is ``Conv2dGradInput`` with the roles renamed.
"""
from dataclasses import dataclass

import numpy as np

from .. import backend
from ..autograd import Function, is_grad_enabled
from .shape import reshape, squeeze, sum_to, unsqueeze


# ---------------------------------------------------------------- arguments


def _pair(value, name, op):
    """An int or a 1- or 2-sequence as (height, width), as torch accepts them."""
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    if isinstance(value, str):
        raise TypeError(f"{op}(): argument '{name}' must be an int or a tuple of ints, not str")
    value = tuple(int(v) for v in value)
    if len(value) == 1:
        return value * 2
    if len(value) != 2:
        raise RuntimeError(f"{op}: expected {name} to be a single integer value or a list of 2 "
                           f"values to match the convolution dimensions, but got {name}={list(value)}")
    return value


def _size(hw):
    return f"({hw[0]} x {hw[1]})"


def _shape(t):
    return list(t.shape)


@dataclass(frozen=True)
class Geometry:
    """How the filter moves: stride, zero padding (top, bottom, left, right), dilation, groups.

    Padding is stored per side because ``padding='same'`` with an even dilated
    kernel pads one more row/column at the bottom/right, as torch does.
    """
    stride: tuple
    pads: tuple
    dilation: tuple
    groups: int

    def out_size(self, in_hw, kernel_hw):
        top, bottom, left, right = self.pads
        return tuple((n + a + b - d * (k - 1) - 1) // s + 1
                     for n, a, b, k, s, d in zip(in_hw, (top, left), (bottom, right), kernel_hw,
                                                 self.stride, self.dilation))


def _check_common(op, input, weight, bias, stride, dilation, groups):
    if input.ndim not in (3, 4):
        raise RuntimeError(f"Expected 3D (unbatched) or 4D (batched) input to {op}, but got "
                           f"input of size: {_shape(input)}")
    if weight.ndim != 4:
        raise RuntimeError(f"{op}: expected a 4-D weight (kH, kW last), but got weight of size "
                           f"{_shape(weight)} for input of size {_shape(input)}")
    for t, name in ((input, "input"), (weight, "weight"), (bias, "bias")):
        if t is not None and np.dtype(t.dtype).kind != "f":
            raise TypeError(f"{op}: {name} must be floating point, got {t.dtype}")
    for t, name in ((weight, "weight"), (bias, "bias")):
        if t is not None and t.dtype != input.dtype:
            raise TypeError(f"{op}: input dtype {input.dtype} and {name} dtype {t.dtype} should be "
                            f"the same (input {_shape(input)}, {name} {_shape(t)}); cast one with .to(dtype)")
    if min(stride) <= 0:
        raise RuntimeError(f"{op}: non-positive stride is not supported, got stride={list(stride)}")
    if min(dilation) <= 0:
        raise RuntimeError(f"{op}: dilation should be greater than zero, but got {list(dilation)}")
    if groups <= 0:
        raise RuntimeError(f"{op}: non-positive groups is not supported, got groups={groups}")
    if weight.shape[0] % groups:
        raise RuntimeError(f"{op}: Given groups={groups}, expected weight to be divisible by {groups} "
                           f"at dimension 0, but got weight of size {_shape(weight)} instead")


def _check_bias(op, bias, channels, weight):
    if bias is not None and tuple(bias.shape) != (channels,):
        raise RuntimeError(f"{op}: Given weight of size {_shape(weight)}, expected bias to be "
                           f"1-dimensional with {channels} elements, but got bias of size "
                           f"{_shape(bias)} instead")


def _same_pads(kernel_hw, dilation):
    """torch's 'same': total d*(k-1) per dim, the odd one out at the bottom/right."""
    pads = []
    for k, d in zip(kernel_hw, dilation):
        total = d * (k - 1)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


def _batched(input):
    """Add the batch dim torch allows to be left out: (C, H, W) -> (1, C, H, W)."""
    return (unsqueeze(input, 0), True) if input.ndim == 3 else (input, False)


# ---------------------------------------------------------------- array kernels


def _pad_zeros(xp, x, pads):
    top, bottom, left, right = pads
    if not any(pads):
        return x
    n, c, h, w = x.shape
    out = xp.zeros((n, c, h + top + bottom, w + left + right), dtype=x.dtype)
    out[:, :, top:top + h, left:left + w] = x
    return out


def _im2col(xp, x, geo, kernel_hw, out_hw):
    """Every receptive field as a column: shape (groups, C/groups * kh * kw, N * OH * OW)."""
    x = _pad_zeros(xp, x, geo.pads)
    (n, c), (kh, kw), (oh, ow) = x.shape[:2], kernel_hw, out_hw
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    s_n, s_c, s_h, s_w = x.strides
    windows = xp.lib.stride_tricks.as_strided(
        x, (c, kh, kw, n, oh, ow), (s_c, s_h * dh, s_w * dw, s_n, s_h * sh, s_w * sw))
    return windows.reshape(geo.groups, c // geo.groups * kh * kw, n * oh * ow)  # the one copy


def _col2im(xp, cols, geo, x_shape, kernel_hw, out_hw):
    """The adjoint of ``_im2col``: add each column entry back where it was read.

    One strided slice per kernel tap (kh * kw of them), each covering every
    pixel, sample and channel at once.
    """
    n, c, h, w = x_shape
    (kh, kw), (oh, ow) = kernel_hw, out_hw
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    top, bottom, left, right = geo.pads
    cols = cols.reshape(c, kh, kw, n, oh, ow)
    gx = xp.zeros((n, c, h + top + bottom, w + left + right), dtype=cols.dtype)
    gx_cn = gx.transpose(1, 0, 2, 3)  # a view in the columns' (C, N) order
    for i in range(kh):
        for j in range(kw):
            gx_cn[:, :, i * dh: i * dh + sh * (oh - 1) + 1: sh,
                  j * dw: j * dw + sw * (ow - 1) + 1: sw] += cols[:, i, j]
    if any(geo.pads):
        gx = xp.ascontiguousarray(gx[:, :, top:top + h, left:left + w])
    return gx


def _to_groups(y, groups):
    """(N, O, OH, OW) -> (groups, O/groups, N*OH*OW), the layout of the products."""
    n, o, oh, ow = y.shape
    return y.reshape(n, groups, o // groups, oh * ow).transpose(1, 2, 0, 3).reshape(
        groups, o // groups, n * oh * ow)


def _from_groups(xp, y, n, out_hw):
    """(groups, O/groups, N*OH*OW) -> (N, O, OH, OW)."""
    y = y.reshape(-1, n, *out_hw).transpose(1, 0, 2, 3)
    return xp.ascontiguousarray(y)


def _bias_grad(gy):
    """Sum over batch and pixels: (N, O, H, W) -> (O,)."""
    return reshape(sum_to(gy, (1, gy.shape[1], 1, 1)), (gy.shape[1],))


def _grouped_matmul(xp, a, b):
    """a[g] @ b[g] for every group: one matrix product per group.

    On NumPy each group is its own 2-D product: ``np.matmul`` on stacked
    matrices runs about 2x slower than one BLAS call per matrix, and the
    transposed operands (W^T, cols^T) stay views. CuPy batches them itself.
    """
    if xp is not np:
        return xp.matmul(a, b)
    out = np.empty((a.shape[0], a.shape[1], b.shape[2]), dtype=np.result_type(a, b))
    for g in range(a.shape[0]):
        np.matmul(a[g], b[g], out=out[g])
    return out


def _same_dtype(op, *arrays):
    """The products would silently upcast float32 to float64: refuse, as the binary ops do."""
    dtypes = {a.dtype for a in arrays if a is not None}
    if len(dtypes) > 1:
        raise TypeError(f"{op}: dtypes differ ({', '.join(sorted(map(str, dtypes)))}) for shapes "
                        f"{[tuple(a.shape) for a in arrays if a is not None]}; cast one with .to(dtype)")


def _add_channel_bias(y, b):
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y


# ---------------------------------------------------------------- the three Functions


class Conv2dFunction(Function):
    """y = conv(x, W) (+ b): inputs (x, W) or (x, W, b).

    ``out_hw`` fixes the output size when it is dictated from outside (the
    backward of a transposed convolution whose output_padding left rows that no
    tap reaches); by default it is the usual formula.
    """

    keep_cols = False  # set per call: keep im2col(x) for the weight gradient

    def __init__(self, geo, out_hw=None):
        self.geo, self.out_hw = geo, out_hw

    def __call__(self, x, w, *bias):
        # the columns are kept for the weight gradient only when one can be asked for
        self.keep_cols = is_grad_enabled() and getattr(w, "requires_grad", False)
        return super().__call__(x, w, *bias)

    def forward(self, x, w, b=None):
        _same_dtype("conv2d", x, w, b)
        xp = backend.get_array_module(x, w)
        kernel_hw = w.shape[2:]
        out_hw = self.out_hw or self.geo.out_size(x.shape[2:], kernel_hw)
        cols = _im2col(xp, x, self.geo, kernel_hw, out_hw)
        g = self.geo.groups
        y = _grouped_matmul(xp, w.reshape(g, w.shape[0] // g, -1), cols)
        self.saved_cols = cols if self.keep_cols else None
        return _add_channel_bias(_from_groups(xp, y, x.shape[0], out_hw), b)

    def backward(self, gy):
        x, w = self.inputs[:2]
        need = self.needs_input_grad
        gx = Conv2dGradInput(self.geo, x.shape)(w, gy) if need[0] else None
        gw = Conv2dGradWeight(self.geo, w.shape, self.saved_cols)(x, gy) if need[1] else None
        if len(self.inputs) == 2:
            return gx, gw
        return gx, gw, (_bias_grad(gy) if need[2] else None)


class Conv2dGradInput(Function):
    """gx = dgrad(W, gy) (+ b): the input gradient of a convolution whose input had
    shape ``x_shape``; with a bias, this is ``conv_transpose2d``'s forward."""

    def __init__(self, geo, x_shape):
        self.geo, self.x_shape = geo, tuple(x_shape)

    def forward(self, w, gy, b=None):
        _same_dtype("conv2d input gradient", w, gy, b)
        xp = backend.get_array_module(w, gy)
        g = self.geo.groups
        w_t = w.reshape(g, w.shape[0] // g, -1).transpose(0, 2, 1)  # (g, K, O/g)
        cols = _grouped_matmul(xp, w_t, _to_groups(gy, g))
        gx = _col2im(xp, cols, self.geo, self.x_shape, w.shape[2:], gy.shape[2:])
        return _add_channel_bias(gx, b)

    def backward(self, ggx):
        w, gy = self.inputs[:2]
        need = self.needs_input_grad
        gw = Conv2dGradWeight(self.geo, w.shape)(ggx, gy) if need[0] else None
        ggy = Conv2dFunction(self.geo, gy.shape[2:])(ggx, w) if need[1] else None
        if len(self.inputs) == 2:
            return gw, ggy
        return gw, ggy, (_bias_grad(ggx) if need[2] else None)


class Conv2dGradWeight(Function):
    """gW = wgrad(x, gy): the weight gradient of a convolution with weight shape
    ``w_shape``. ``cols`` may hand over the forward's im2col of x, saving a copy."""

    def __init__(self, geo, w_shape, cols=None):
        self.geo, self.w_shape, self.cols = geo, tuple(w_shape), cols

    def forward(self, x, gy):
        _same_dtype("conv2d weight gradient", x, gy)
        xp = backend.get_array_module(x, gy)
        g = self.geo.groups
        cols = self.cols if self.cols is not None else _im2col(
            xp, x, self.geo, self.w_shape[2:], gy.shape[2:])
        self.cols = None  # the backward below recomputes what it needs
        gw = _grouped_matmul(xp, _to_groups(gy, g), cols.transpose(0, 2, 1))  # (g, O/g, K)
        return gw.reshape(self.w_shape)

    def backward(self, ggw):
        x, gy = self.inputs
        need = self.needs_input_grad
        gx = Conv2dGradInput(self.geo, x.shape)(ggw, gy) if need[0] else None
        ggy = Conv2dFunction(self.geo, gy.shape[2:])(x, ggw) if need[1] else None
        return gx, ggy


# ---------------------------------------------------------------- public ops


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation), as ``torch.nn.functional.conv2d``.

    input (N, C, H, W) or (C, H, W); weight (O, C/groups, kH, kW); bias (O,).
    ``padding`` is an int, a (pH, pW) pair, ``'valid'`` (no padding) or
    ``'same'`` (output size = input size; stride 1 only).
    """
    op = "conv2d"
    stride, dilation = _pair(stride, "stride", op), _pair(dilation, "dilation", op)
    _check_common(op, input, weight, bias, stride, dilation, groups)
    if isinstance(padding, str):
        if padding == "valid":
            pads = (0, 0, 0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise RuntimeError(f"{op}: padding='same' is not supported for strided "
                                   f"convolutions, got stride={list(stride)}")
            pads = _same_pads(weight.shape[2:], dilation)
        else:
            raise RuntimeError(f"{op}: Invalid padding string: {padding!r}, expected 'same' or 'valid'")
    else:
        ph, pw = _pair(padding, "padding", op)
        if min(ph, pw) < 0:
            raise RuntimeError(f"{op}: negative padding is not supported, got padding={[ph, pw]}")
        pads = (ph, ph, pw, pw)
    channels = input.shape[-3]
    if channels != weight.shape[1] * groups:
        raise RuntimeError(f"{op}: Given groups={groups}, weight of size {_shape(weight)}, expected "
                           f"input{_shape(input)} to have {weight.shape[1] * groups} channels, "
                           f"but got {channels} channels instead")
    _check_bias(op, bias, weight.shape[0], weight)
    padded = (input.shape[-2] + pads[0] + pads[1], input.shape[-1] + pads[2] + pads[3])
    kernel = tuple(d * (k - 1) + 1 for k, d in zip(weight.shape[2:], dilation))
    if padded[0] < kernel[0] or padded[1] < kernel[1]:
        raise RuntimeError(f"{op}: Calculated padded input size per channel: {_size(padded)}. "
                           f"Kernel size: {_size(kernel)}. Kernel size can't be greater than actual "
                           f"input size (input {_shape(input)}, weight {_shape(weight)})")

    input, unbatched = _batched(input)
    geo = Geometry(stride, pads, dilation, int(groups))
    y = Conv2dFunction(geo)(input, weight, *([] if bias is None else [bias]))
    return squeeze(y, 0) if unbatched else y


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """2-D transposed convolution, as ``torch.nn.functional.conv_transpose2d``.

    input (N, C_in, H, W) or (C_in, H, W); weight (C_in, C_out/groups, kH, kW).
    It is the gradient of ``conv2d`` with respect to its input, so each input
    pixel stamps a copy of the filter scaled by its value, ``stride`` apart:

        H_out = (H - 1) * stride - 2 * padding + dilation * (kH - 1) + output_padding + 1
    """
    op = "conv_transpose2d"
    stride, dilation = _pair(stride, "stride", op), _pair(dilation, "dilation", op)
    (ph, pw), out_pad = _pair(padding, "padding", op), _pair(output_padding, "output_padding", op)
    _check_common(op, input, weight, bias, stride, dilation, groups)
    if min(ph, pw) < 0:
        raise RuntimeError(f"{op}: negative padding is not supported, got padding={[ph, pw]}")
    if min(out_pad) < 0:
        raise RuntimeError(f"{op}: negative output_padding is not supported, got {list(out_pad)}")
    if any(p >= s and p >= d for p, s, d in zip(out_pad, stride, dilation)):
        raise RuntimeError(
            f"{op}: output padding must be smaller than either stride or dilation, but got "
            f"output_padding_height: {out_pad[0]} output_padding_width: {out_pad[1]} "
            f"stride_height: {stride[0]} stride_width: {stride[1]} "
            f"dilation_height: {dilation[0]} dilation_width: {dilation[1]}")
    channels = input.shape[-3]
    if channels != weight.shape[0]:
        raise RuntimeError(f"{op}: Given transposed=1, weight of size {_shape(weight)}, expected "
                           f"input{_shape(input)} to have {weight.shape[0]} channels, "
                           f"but got {channels} channels instead")
    out_channels = weight.shape[1] * groups
    _check_bias(op, bias, out_channels, weight)
    in_hw = input.shape[-2:]
    out_hw = tuple((n - 1) * s - 2 * p + d * (k - 1) + o + 1 for n, s, p, d, k, o in
                   zip(in_hw, stride, (ph, pw), dilation, weight.shape[2:], out_pad))
    if min(out_hw) < 1:
        raise RuntimeError(f"{op}: Given input size per channel: {_size(in_hw)}. Calculated output "
                           f"size per channel: {_size(out_hw)}. Output size is too small "
                           f"(weight {_shape(weight)}, padding {[ph, pw]})")

    input, unbatched = _batched(input)
    geo = Geometry(stride, (ph, ph, pw, pw), dilation, int(groups))
    x_shape = (input.shape[0], out_channels) + out_hw
    y = Conv2dGradInput(geo, x_shape)(weight, input, *([] if bias is None else [bias]))
    return squeeze(y, 0) if unbatched else y
