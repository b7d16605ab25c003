"""2-D convolution and transposed convolution, as im2col + one matrix product, laid out for speed.

The idea, step by step and nothing else, is ``conv_reference.py`` (read it
first); this file computes the same products the way a CPU runs them fast, and
is what ``F.conv2d`` and ``F.conv_transpose2d`` use.

A convolution slides a (C/g, kh, kw) filter over the padded input. Gathering
every receptive field into a row (*im2col*) turns the whole layer into one
matrix product per group::

    cols[g, (n, oh, ow), (i, j, c)] = x_pad[n, g*C/g + c, oh*sh + i*dh, ow*sw + j*dw]
    y[g] = cols[g] (N*OH*OW, K) @ W[g] (K, O/g)          K = kh * kw * C/g

The rows are a strided *view* of the padded input (``as_strided``); the only
copy is the one the product needs. A convolution is linear in x and in W, so
its two gradients are the two other products of the same three matrices:

    dgrad  (input):  cols = gy @ W^T, then scatter the rows back (col2im)
    wgrad  (weight): gW   = cols^T @ gy

Each of the three is a ``Function`` whose backward is made of the other two
(Chainer's pattern), so second derivatives — the gradient penalties of WGAN-GP
and R1 differentiate ``d critic / d x`` with respect to the weights — are exact:

    op                      inputs     backward (gradient of its output -> inputs)
    Conv2dFunction          x, W       GradInput(W, gy),      GradWeight(x, gy)
    Conv2dGradInput         W, gy      GradWeight(ggx, gy),   Conv2dFunction(ggx, W)
    Conv2dGradWeight        x, gy      GradInput(ggW, gy),    Conv2dFunction(x, ggW)

A transposed convolution *is* the input gradient of a convolution, so
``conv_transpose2d`` is ``Conv2dGradInput`` with the roles renamed.

What makes it fast (each helper below says why): channels-last rows, so NumPy
copies and adds along runs of consecutive floats; the copies split over the
batch between threads; one BLAS call per group, its longer side as rows; and
the forward's im2col of x kept for the weight gradient. On the GPU each
Function's forward is a Triton kernel instead (minigan/dispatch.py decides).
"""
from dataclasses import dataclass

import numpy as np

from .. import backend
from ..autograd import Function, is_grad_enabled
from ..dispatch import KernelForward
from ._args import pair as _pair
from .shape import reshape, squeeze, sum_to, unsqueeze


# ---------------------------------------------------------------- arguments


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


def batched(input):
    """Add the batch dim torch allows to be left out: (C, H, W) -> (1, C, H, W)."""
    return (unsqueeze(input, 0), True) if input.ndim == 3 else (input, False)


# ---------------------------------------------------------------- array kernels
#
# The products take matrices with one row per pixel (n, oh, ow) and one column
# per channel, or per tap and channel (i, j, c) for the receptive fields: the
# layout is channels-last inside, (N, C, H, W) outside. With K = kh*kw*C/groups
# and one product per group:
#
#     forward  y    (N*OH*OW, O)  = cols (N*OH*OW, K) @ W (K, O)
#     dgrad    cols (N*OH*OW, K)  = gy   (N*OH*OW, O) @ W^T (O, K),  then col2im
#     wgrad    gW   (K, O)        = cols^T            @ gy (N*OH*OW, O)
#
# NumPy copies and adds fast along runs of consecutive floats, and slowly
# across them: channels-last, the copies below move runs of C (and kw*C)
# floats. The products stay one BLAS call each.


def _channels_last(xp, x, pads=(0, 0, 0, 0)):
    """(N, C, H, W) -> (N, H + top + bottom, W + left + right, C), zero-padded.

    Free when ``x`` is already channels-last in memory and needs no padding, as
    the outputs of these convolutions are (see ``_from_rows``).
    """
    if not any(pads):
        return xp.ascontiguousarray(x.transpose(0, 2, 3, 1))
    n, c, h, w = x.shape
    top, bottom, left, right = pads
    out = xp.zeros((n, h + top + bottom, w + left + right, c), dtype=x.dtype)
    inside, x_last = out[:, top:top + h, left:left + w], x.transpose(0, 2, 3, 1)
    backend.over_batch(n, lambda a, b: xp.copyto(inside[a:b], x_last[a:b]), xp)
    return out


def _rows(xp, y, groups):
    """(N, O, H, W) -> (groups, N*H*W, O/groups): one row per pixel.

    Free for a channels-last array; otherwise a channel-major copy (runs of H*W
    floats: NumPy transposes ~10x slower than it copies) read through a
    transposed view, which BLAS takes as it is.
    """
    n, o, h, w = y.shape
    if y.transpose(0, 2, 3, 1).flags.c_contiguous:
        return y.transpose(0, 2, 3, 1).reshape(n * h * w, groups, o // groups).transpose(1, 0, 2)
    by_channel = xp.ascontiguousarray(y.transpose(1, 0, 2, 3)).reshape(groups, o // groups, n * h * w)
    return by_channel.transpose(0, 2, 1)


def _from_rows(y, n, out_hw):
    """(groups, N*OH*OW, O/groups) -> (N, O, OH, OW).

    With one group this is a view: the output stays channels-last in memory
    (as a torch tensor in ``channels_last`` format). NumPy's elementwise ops and
    reductions keep an input's memory order, so batch norm and the activation
    after a convolution keep it too, and the next layer's ``_channels_last`` is
    then free instead of a transposing copy (NumPy transposes ~10x slower than
    it copies).
    """
    g, _, og = y.shape
    y = y.reshape(g, n, *out_hw, og).transpose(1, 0, 4, 2, 3)  # (N, g, O/g, OH, OW)
    return y.reshape(n, g * og, *out_hw)


def _weight_matrix(w, groups):
    """Weight (O, C/groups, kh, kw) -> (groups, kh*kw*C/groups, O/groups), rows in im2col's order.

    A transposed view of (groups, O/groups, K): each filter's copy stays within
    its own kh*kw*C/groups floats, where moving O innermost would cross them all.
    """
    o, cg, kh, kw = w.shape
    filters = w.reshape(groups, o // groups, cg, kh, kw).transpose(0, 1, 3, 4, 2)
    return filters.reshape(groups, o // groups, kh * kw * cg).transpose(0, 2, 1)


def _weight_from_matrix(xp, m, w_shape):
    """The inverse of ``_weight_matrix``."""
    o, cg, kh, kw = w_shape
    m = m.reshape(m.shape[0], kh, kw, cg, o // m.shape[0]).transpose(0, 4, 3, 1, 2)
    return xp.ascontiguousarray(m).reshape(w_shape)


def _im2col(xp, x, geo, kernel_hw, out_hw):
    """Every receptive field as a row: shape (groups, N * OH * OW, kh * kw * C/groups)."""
    x = _channels_last(xp, x, geo.pads)
    n, c, g = x.shape[0], x.shape[3], geo.groups
    (kh, kw), (oh, ow) = kernel_hw, out_hw
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    s_n, s_h, s_w, s_c = x.strides
    windows = xp.lib.stride_tricks.as_strided(
        x, (g, n, oh, ow, kh, kw, c // g),
        (s_c * (c // g), s_n, s_h * sh, s_w * sw, s_h * dh, s_w * dw, s_c))
    cols = xp.empty(windows.shape, dtype=x.dtype)
    backend.over_batch(n, lambda a, b: xp.copyto(cols[:, a:b], windows[:, a:b]), xp)  # the one copy
    return cols.reshape(g, n * oh * ow, kh * kw * (c // g))


def _col2im_channels_last(c, out_hw):
    """Whether col2im should add in channels-last memory.

    NumPy adds fastest along the innermost run of consecutive floats: C long
    channels-last, OW long channels-first. With 3 channels (the image end of G
    and D) channels-first is several times faster.
    """
    return c >= out_hw[1]


def _tap_reach(tap, dilation, stride, pad, out_len, in_len):
    """Where one kernel tap's reads land in the unpadded input along one axis.

    Output position o reads input tap * dilation + o * stride - pad. Returns the
    range of output positions whose read is inside the input (a slice of the
    rows), and the input slice they land on; (None, None) when none is.
    """
    first = max(0, -(-(pad - tap * dilation) // stride))  # ceil
    last = min(out_len, (in_len - 1 + pad - tap * dilation) // stride + 1)
    if last <= first:
        return None, None
    start = tap * dilation + first * stride - pad
    return slice(first, last), slice(start, start + stride * (last - first - 1) + 1, stride)


def _col2im(xp, cols, geo, x_shape, kernel_hw, out_hw):
    """The adjoint of ``_im2col``: add each entry of the rows back where it was read.

    One strided slice per kernel tap (kh * kw of them), each covering every
    pixel, sample and channel at once. Reads of the zero padding have nowhere to
    go: each tap adds only the rows whose read was inside the input. ``cols`` is
    (groups, N*OH*OW, K); stored transposed (tap-major) when the adds run
    channels-first.
    """
    n, c, h, w = x_shape
    g = geo.groups
    (kh, kw), (oh, ow) = kernel_hw, out_hw
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    top, _, left, _ = geo.pads
    if _col2im_channels_last(c, out_hw):
        gx = xp.zeros((n, h, w, c), dtype=cols.dtype)
    else:  # the same (N, H, W, C) axes over (N, C, H, W) memory
        gx = xp.zeros((n, c, h, w), dtype=cols.dtype).transpose(0, 2, 3, 1)
    taps = cols.reshape(g, n, oh, ow, kh, kw, c // g).transpose(1, 2, 3, 4, 5, 0, 6)
    gx_g = gx.reshape(n, h, w, g, c // g)
    rows = [_tap_reach(i, dh, sh, top, oh, h) for i in range(kh)]
    columns = [_tap_reach(j, dw, sw, left, ow, w) for j in range(kw)]

    def add_taps(a, b):  # samples a..b
        for i, (out_rows, in_rows) in enumerate(rows):
            for j, (out_cols, in_cols) in enumerate(columns):
                if out_rows is not None and out_cols is not None:
                    gx_g[a:b, in_rows, in_cols] += taps[a:b, out_rows, out_cols, i, j]

    backend.over_batch(n, add_taps, xp)
    return gx.transpose(0, 3, 1, 2)


def _bias_grad(gy):
    """Sum over batch and pixels: (N, O, H, W) -> (O,)."""
    return reshape(sum_to(gy, (1, gy.shape[1], 1, 1)), (gy.shape[1],))


def _matmul(xp, a, b, transposed=None):
    """a[g] @ b[g] for every group g: one BLAS call per group.

    ``transposed=True`` computes the product as (b^T a^T)^T, so that its memory
    holds the transpose. By default the longer side of the result becomes its
    rows: OpenBLAS splits a product between threads by rows, and one with few
    rows and a long inner dimension (a weight gradient) runs up to 5x slower.
    On NumPy each group is its own 2-D product (``np.matmul`` on stacked
    matrices runs about 2x slower); CuPy batches them itself.
    """
    if transposed is None:
        transposed = a.shape[1] < b.shape[2]
    if transposed:
        return _matmul(xp, b.transpose(0, 2, 1), a.transpose(0, 2, 1), False).transpose(0, 2, 1)
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


class Conv2dFunction(KernelForward):
    """y = conv(x, W) (+ b): inputs (x, W) or (x, W, b), output size ``out_hw``.

    ``out_hw`` is the usual formula, except in the backward of a transposed
    convolution whose output_padding left rows that no tap reaches.
    """

    reads_inputs = ((1,), (0,), ())  # x, W, b: d/dx reads W, d/dW reads x

    kernel_op = "conv2d"  # where the kernels run, they run this forward (minigan/dispatch.py)
    keep_cols, saved_cols = False, None

    def __init__(self, geo, out_hw, keep_cols=False):
        self.geo, self.out_hw, self.keep_cols = geo, tuple(out_hw), keep_cols

    def __call__(self, x, w, *bias):
        # im2col(x) is kept for the weight gradient when one can be asked for, or the caller
        # asked for it (a transposed convolution's backward shares it: see Conv2dGradInput)
        self.keep_cols = self.keep_cols or (is_grad_enabled() and getattr(w, "requires_grad", False))
        return super().__call__(x, w, *bias)

    def forward(self, x, w, b=None):
        _same_dtype("conv2d", x, w, b)
        xp = backend.get_array_module(x, w)
        cols = _im2col(xp, x, self.geo, w.shape[2:], self.out_hw)
        y = _matmul(xp, cols, _weight_matrix(w, self.geo.groups))
        self.saved_cols = cols if self.keep_cols else None
        return _add_channel_bias(_from_rows(y, x.shape[0], self.out_hw), b)

    def backward(self, gy):
        x, w = self.inputs[:2]
        need = self.needs_input_grad
        gx = Conv2dGradInput(self.geo, x.shape)(w, gy) if need[0] else None
        gw = Conv2dGradWeight(self.geo, w.shape, self.saved_cols)(x, gy) if need[1] else None
        if len(self.inputs) == 2:
            return gx, gw
        return gx, gw, (_bias_grad(gy) if need[2] else None)


class Conv2dGradInput(KernelForward):
    """gx = dgrad(W, gy) (+ b): the input gradient of a convolution whose input had
    shape ``x_shape``; with a bias, this is ``conv_transpose2d``'s forward."""

    reads_inputs = ((1,), (0,), ())

    kernel_op = "conv2d_input_grad"

    def __init__(self, geo, x_shape):
        self.geo, self.x_shape = geo, tuple(x_shape)

    def forward(self, w, gy, b=None):
        _same_dtype("conv2d input gradient", w, gy, b)
        xp = backend.get_array_module(w, gy)
        g, kernel_hw, out_hw = self.geo.groups, w.shape[2:], gy.shape[2:]
        tap_major = not _col2im_channels_last(self.x_shape[1], out_hw)
        cols = _matmul(xp, _rows(xp, gy, g), _weight_matrix(w, g).transpose(0, 2, 1), tap_major)
        gx = _col2im(xp, cols, self.geo, self.x_shape, kernel_hw, out_hw)
        return _add_channel_bias(gx, b)

    def backward(self, ggx):
        w, gy = self.inputs[:2]
        need = self.needs_input_grad
        # both gradients read im2col(ggx): the convolution makes it once and hands it on
        conv = Conv2dFunction(self.geo, gy.shape[2:], keep_cols=need[0])
        ggy = conv(ggx, w) if need[1] else None
        gw = Conv2dGradWeight(self.geo, w.shape, conv.saved_cols)(ggx, gy) if need[0] else None
        if len(self.inputs) == 2:
            return gw, ggy
        return gw, ggy, (_bias_grad(ggx) if need[2] else None)


class Conv2dGradWeight(KernelForward):
    """gW = wgrad(x, gy): the weight gradient of a convolution with weight shape
    ``w_shape``. ``cols``: the forward's im2col of x where it kept it, saving a copy."""

    reads_inputs = ((1,), (0,))

    kernel_op = "conv2d_weight_grad"

    def __init__(self, geo, w_shape, cols=None):
        self.geo, self.w_shape, self.cols = geo, tuple(w_shape), cols

    def forward(self, x, gy):
        _same_dtype("conv2d weight gradient", x, gy)
        xp = backend.get_array_module(x, gy)
        g = self.geo.groups
        cols = self.cols if self.cols is not None else _im2col(
            xp, x, self.geo, self.w_shape[2:], gy.shape[2:])
        self.cols = None  # used once: a recorded graph does not keep it (the backward below needs none)
        gw = _matmul(xp, cols.transpose(0, 2, 1), _rows(xp, gy, g))  # (g, K, O/g)
        return _weight_from_matrix(xp, gw, self.w_shape)

    def backward(self, ggw):
        x, gy = self.inputs
        need = self.needs_input_grad
        gx = Conv2dGradInput(self.geo, x.shape)(ggw, gy) if need[0] else None
        ggy = Conv2dFunction(self.geo, gy.shape[2:])(x, ggw) if need[1] else None
        return gx, ggy


# ---------------------------------------------------------------- public ops


def conv2d_geometry(input, weight, bias, stride, padding, dilation, groups):
    """conv2d's arguments checked as torch checks them: the Geometry and the output's (OH, OW)."""
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

    geo = Geometry(stride, pads, dilation, int(groups))
    return geo, geo.out_size(input.shape[-2:], weight.shape[2:])


def conv_transpose2d_geometry(input, weight, bias, stride, padding, output_padding, groups, dilation):
    """conv_transpose2d's arguments checked as torch checks them: the Geometry (of the
    convolution it is the input gradient of) and the output's (C_out, H_out, W_out)."""
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

    return Geometry(stride, (ph, ph, pw, pw), dilation, int(groups)), (out_channels,) + out_hw


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation), as ``torch.nn.functional.conv2d``.

    input (N, C, H, W) or (C, H, W); weight (O, C/groups, kH, kW); bias (O,).
    ``padding`` is an int, a (pH, pW) pair, ``'valid'`` (no padding) or
    ``'same'`` (output size = input size; stride 1 only).
    """
    geo, out_hw = conv2d_geometry(input, weight, bias, stride, padding, dilation, groups)
    input, unbatched = batched(input)
    y = Conv2dFunction(geo, out_hw)(input, weight, *([] if bias is None else [bias]))
    return squeeze(y, 0) if unbatched else y


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """2-D transposed convolution, as ``torch.nn.functional.conv_transpose2d``.

    input (N, C_in, H, W) or (C_in, H, W); weight (C_in, C_out/groups, kH, kW).
    It is the gradient of ``conv2d`` with respect to its input, so each input
    pixel stamps a copy of the filter scaled by its value, ``stride`` apart:

        H_out = (H - 1) * stride - 2 * padding + dilation * (kH - 1) + output_padding + 1
    """
    geo, out_chw = conv_transpose2d_geometry(input, weight, bias, stride, padding, output_padding, groups,
                                             dilation)
    input, unbatched = batched(input)
    y = Conv2dGradInput(geo, (input.shape[0],) + out_chw)(weight, input, *([] if bias is None else [bias]))
    return squeeze(y, 0) if unbatched else y
