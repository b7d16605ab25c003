"""2-D convolution as im2col + one matrix product: the reference, written to be read.

A convolution slides a filter W (O, C, kh, kw) over the zero-padded input x
(N, C, H, W). Copy every receptive field into a row of a matrix (*im2col*)::

    cols[(n, oh, ow), (c, i, j)] = x_pad[n, c, oh*sh + i*dh, ow*sw + j*dw]     (N*OH*OW, C*kh*kw)

and the whole layer is one matrix product with the filters, one per row of W::

    y[(n, oh, ow), o] = cols @ W.reshape(O, C*kh*kw).T                         (N*OH*OW, O)

A convolution is linear in x and in W, so its two gradients are the two other
products of the same three matrices (gy laid out as y's rows)::

    input gradient   gcols = gy @ W,   then col2im: add each row back where it was read
    weight gradient  gW    = gy.T @ cols

With groups, C and O split into that many independent convolutions. Each of the
three products is a Function whose backward is made of the other two, so second
derivatives (a gradient penalty differentiates d critic / dx with respect to W)
come out exact:

    Function          inputs   backward (to each input)
    Conv2d            x, W     Conv2dGradInput(W, gy),    Conv2dGradWeight(x, gy)
    Conv2dGradInput   W, gy    Conv2dGradWeight(ggx, gy), Conv2d(ggx, W)
    Conv2dGradWeight  x, gy    Conv2dGradInput(ggW, gy),  Conv2d(x, ggW)

A transposed convolution is the input gradient of a convolution. This file
takes the shortest path through the idea; ``minigan.functional.conv`` computes
the same products with the memory layout, threads and buffer reuse that make
them fast on a CPU (and is what ``F.conv2d`` runs). Both are tested against torch.
"""
from .. import backend
from ..autograd import Function
from .conv import batched, conv2d_geometry, conv_transpose2d_geometry
from .shape import squeeze


def im2col(xp, x, geo, kernel_hw, out_hw):
    """Every receptive field of x (N, C, H, W) as a row: (groups, N*OH*OW, C/groups*kh*kw)."""
    n, c = x.shape[:2]
    (kh, kw), (oh, ow) = kernel_hw, out_hw
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    top, bottom, left, right = geo.pads
    x = xp.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    cols = xp.empty((n, oh, ow, c, kh, kw), dtype=x.dtype)
    for i in range(kh):  # tap (i, j) reads every output pixel's input, stride apart
        for j in range(kw):
            window = x[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
            cols[:, :, :, :, i, j] = window.transpose(0, 2, 3, 1)
    return cols.reshape(n * oh * ow, geo.groups, -1).transpose(1, 0, 2)


def col2im(xp, cols, geo, x_shape, kernel_hw, out_hw):
    """The adjoint of ``im2col``: add each entry of the rows back to the input pixel it was read from."""
    n, c, h, w = x_shape
    (kh, kw), (oh, ow) = kernel_hw, out_hw
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    top, bottom, left, right = geo.pads
    cols = cols.transpose(1, 0, 2).reshape(n, oh, ow, c, kh, kw)
    x = xp.zeros((n, c, h + top + bottom, w + left + right), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            window = x[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
            window += cols[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return x[:, :, top:top + h, left:left + w]  # what was read from the padding goes nowhere


def _rows(y, groups):
    """(N, O, OH, OW) -> (groups, N*OH*OW, O/groups): one row per output pixel."""
    n, o = y.shape[:2]
    return y.transpose(0, 2, 3, 1).reshape(-1, groups, o // groups).transpose(1, 0, 2)


def _from_rows(rows, n, out_hw):
    """(groups, N*OH*OW, O/groups) -> (N, O, OH, OW)."""
    g, _, og = rows.shape
    return rows.transpose(1, 0, 2).reshape(n, *out_hw, g * og).transpose(0, 3, 1, 2)


def _filters(w, groups):
    """W (O, C/groups, kh, kw) -> (groups, O/groups, C/groups*kh*kw): one filter per row."""
    return w.reshape(groups, w.shape[0] // groups, -1)


def _add_bias(y, b):
    return y if b is None else y + b.reshape(1, -1, 1, 1)


class Conv2d(Function):
    """y = conv(x, W) (+ b): cols @ W^T, per group."""

    def __init__(self, geo, out_hw):
        self.geo, self.out_hw = geo, tuple(out_hw)

    def forward(self, x, w, b=None):
        xp = backend.get_array_module(x, w)
        cols = im2col(xp, x, self.geo, w.shape[2:], self.out_hw)
        y = cols @ _filters(w, self.geo.groups).transpose(0, 2, 1)
        return _add_bias(_from_rows(y, x.shape[0], self.out_hw), b)

    def backward(self, gy):
        x, w = self.inputs[:2]
        need = self.needs_input_grad
        gx = Conv2dGradInput(self.geo, x.shape)(w, gy) if need[0] else None
        gw = Conv2dGradWeight(self.geo, w.shape)(x, gy) if need[1] else None
        gb = [gy.sum((0, 2, 3)) if need[2] else None] if len(self.inputs) == 3 else []
        return (gx, gw, *gb)


class Conv2dGradInput(Function):
    """gx = col2im(gy @ W) (+ b), for an input of shape ``x_shape``: conv_transpose2d with a bias."""

    def __init__(self, geo, x_shape):
        self.geo, self.x_shape = geo, tuple(x_shape)

    def forward(self, w, gy, b=None):
        xp = backend.get_array_module(w, gy)
        gcols = _rows(gy, self.geo.groups) @ _filters(w, self.geo.groups)
        return _add_bias(col2im(xp, gcols, self.geo, self.x_shape, w.shape[2:], gy.shape[2:]), b)

    def backward(self, ggx):
        w, gy = self.inputs[:2]
        need = self.needs_input_grad
        gw = Conv2dGradWeight(self.geo, w.shape)(ggx, gy) if need[0] else None
        ggy = Conv2d(self.geo, gy.shape[2:])(ggx, w) if need[1] else None
        gb = [ggx.sum((0, 2, 3)) if need[2] else None] if len(self.inputs) == 3 else []
        return (gw, ggy, *gb)


class Conv2dGradWeight(Function):
    """gW = gy^T @ cols, per group, for a weight of shape ``w_shape``."""

    def __init__(self, geo, w_shape):
        self.geo, self.w_shape = geo, tuple(w_shape)

    def forward(self, x, gy):
        xp = backend.get_array_module(x, gy)
        cols = im2col(xp, x, self.geo, self.w_shape[2:], gy.shape[2:])
        gw = _rows(gy, self.geo.groups).transpose(0, 2, 1) @ cols
        return gw.reshape(self.w_shape)

    def backward(self, ggw):
        x, gy = self.inputs
        need = self.needs_input_grad
        gx = Conv2dGradInput(self.geo, x.shape)(ggw, gy) if need[0] else None
        ggy = Conv2d(self.geo, gy.shape[2:])(x, ggw) if need[1] else None
        return gx, ggy


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """``minigan.functional.conv2d`` (torch's arguments and checks), computed by the reference."""
    geo, out_hw = conv2d_geometry(input, weight, bias, stride, padding, dilation, groups)
    input, unbatched = batched(input)
    y = Conv2d(geo, out_hw)(input, weight, *([] if bias is None else [bias]))
    return squeeze(y, 0) if unbatched else y


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """``minigan.functional.conv_transpose2d``, computed by the reference."""
    geo, out_chw = conv_transpose2d_geometry(input, weight, bias, stride, padding, output_padding, groups,
                                             dilation)
    input, unbatched = batched(input)
    y = Conv2dGradInput(geo, (input.shape[0],) + out_chw)(weight, input, *([] if bias is None else [bias]))
    return squeeze(y, 0) if unbatched else y
