"""Pooling, resampling and padding: the ops that move pixels between grids.

Every op here is *linear in its input* once its index pattern is known (max
pooling too: the argmax is fixed by the forward pass). So each backward is the
adjoint move, and the adjoint of the adjoint is the op again:

    pad            y = P x         backward  P^T g  (crop, or scatter-add for reflect)
    avg_pool2d     y = A x         backward  A^T g  (spread each gradient over its window)
    max_pool2d     y = x[argmax]   backward  scatter g into the argmax positions
    interpolate    y = W x         backward  W^T g

Because the backward of each is a Function whose own backward is the forward
op, second derivatives (gradient penalties) come out right. Where torch's backward
reads the input (``avg_pool2d_backward(grad, self)``, max pooling, reflect and
replicate padding), the adjoint takes x as a second input of zero derivative, so
a penalty differentiating it w.r.t. x gets torch's zeros, not None.

The window ops loop over the kernel taps (k*k strided views), never over pixels;
padding and resampling gather whole rows or columns along one axis (``Take``),
and their adjoint adds the gathered gradients back (``TakeAdjoint``).

Index rules follow PyTorch exactly (its output-size formulas, its float32
``floor(dst * scale)`` for 'nearest', its half-pixel centers for 'bilinear'),
so every output reads the same input pixels as in torch.
"""
import math

import numpy as np

from .. import backend
from ..autograd import Function, Tensor
from ._args import pair as _pair, shape_str as _shape_str
from ..creation import zeros_like
from .elementwise import Where
from .reduce import mean
from .shape import broadcast_to, permute, reshape, unsqueeze

__all__ = ["pad", "avg_pool2d", "max_pool2d", "adaptive_avg_pool2d", "interpolate", "upsample",
           "pixel_shuffle", "pixel_unshuffle", "embedding"]


class Take(Function):
    """y = x[..., index, ...] along ``axis``: whole slices gathered by a 1-D integer ``index``.

    ``grad_reads_input``: the gradient is recorded as a function of x too (zero
    derivative), as torch's is for reflect and replicate padding and nll_loss.
    """

    def __init__(self, axis, index, grad_reads_input=False):
        index = index if hasattr(index, "shape") else np.asarray(index)  # NumPy or CuPy
        self.axis, self.index = axis, index.astype(np.int64, copy=False)
        self.grad_reads_input = grad_reads_input

    def forward(self, x):
        self.size = x.shape[self.axis]
        xp = backend.get_array_module(x)
        return xp.take(x, xp.asarray(self.index), axis=self.axis)

    def backward(self, gy):
        x = self.inputs[:1] if self.grad_reads_input else ()
        return TakeAdjoint(self.axis, self.index, self.size)(gy, *x)


class TakeAdjoint(Function):
    """gx[j] = sum of gy[i] over the i with index[i] == j: the scatter-add adjoint of Take.

    A second input x, if given, is only read for the graph: its derivative is zero.
    On NumPy, sorting the (short) index turns the scatter into one ``add.reduceat``
    over runs of equal indices, much faster than ``np.add.at``; CuPy has a fast
    atomic ``scatter_add``.
    """

    def __init__(self, axis, index, size):
        self.axis, self.index, self.size = axis, index, size

    def forward(self, gy, x=None):
        xp = backend.get_array_module(gy)
        shape = gy.shape[:self.axis] + (self.size,) + gy.shape[self.axis + 1:]
        gx = xp.zeros(shape, dtype=gy.dtype)
        at = (slice(None),) * self.axis
        if self.index.size == 0:
            return gx
        if xp is np:
            order = np.argsort(self.index, kind="stable")
            ordered = self.index[order]
            starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
            gx[at + (ordered[starts],)] = np.add.reduceat(np.take(gy, order, axis=self.axis), starts,
                                                           axis=self.axis)
        else:
            import cupyx
            cupyx.scatter_add(gx, at + (xp.asarray(self.index),), gy)
        return gx

    def backward(self, ggx):
        ggy = Take(self.axis, self.index)(ggx)
        return (ggy, zeros_like(self.inputs[1])) if len(self.inputs) == 2 else ggy


def _take(x, index, axis, grad_reads_input=False):
    return Take(axis, index, grad_reads_input)(x)


# ================================================================ pad


class ConstantPad(Function):
    """Pad with a constant; a negative amount crops. ``pads`` is ((before, after), ...) per dim.

    Its adjoint is the same op with every amount negated and value 0: padding by p
    then cropping by p gives back the input.
    """

    def __init__(self, pads, value=0.0):
        self.pads, self.value = tuple(pads), value

    def forward(self, x):
        xp = backend.get_array_module(x)
        crop = tuple(slice(max(-a, 0), x.shape[d] - max(-b, 0)) for d, (a, b) in enumerate(self.pads))
        x = x[crop]
        widths = [(max(a, 0), max(b, 0)) for a, b in self.pads]
        if not any(a or b for a, b in widths):
            return x.copy()
        return xp.pad(x, widths, mode="constant", constant_values=x.dtype.type(self.value))

    def backward(self, gy):
        return ConstantPad([(-a, -b) for a, b in self.pads], 0.0)(gy)


def _pad_index(mode, size, before, after):
    """Which input position each output position reads along one dim (torch's formulas)."""
    out = np.arange(size + before + after)
    start_in, start_out = max(0, -before), max(0, before)
    if mode == "circular":  # wraps around what is left after cropping any negative side
        return start_in + (out - start_out) % (size - start_in - max(0, -after))
    if mode == "reflect":
        src = np.where(out < before, 2 * before - out,
                       np.where(out < size + before, out, 2 * (size + before - 1) - out))
    else:  # replicate
        src = np.clip(out, before, size + before - 1)
    return src - start_out + start_in


def pad(input, pad, mode="constant", value=None):
    """Pad (or, with negative amounts, crop) the last dims, as ``torch.nn.functional.pad``.

    ``pad`` lists (left, right) amounts starting from the last dim: (1, 2) pads the
    last dim, (1, 1, 2, 0) the last two. Modes: 'constant' (with ``value``),
    'reflect' (mirror without repeating the edge), 'replicate' (repeat the edge),
    'circular' (wrap around).
    """
    pad = tuple(int(p) for p in pad)
    x = input
    if len(pad) % 2:
        raise RuntimeError(f"pad: padding length must be divisible by 2, got {len(pad)} ({pad})")
    n = len(pad) // 2
    if n > x.ndim:
        raise RuntimeError(f"pad: padding length should be at most twice the input dims, got padding "
                           f"{pad} for input of shape {_shape_str(x.shape)}")
    pairs = [(pad[2 * i], pad[2 * i + 1]) for i in range(n)]  # last dim first
    for i, (a, b) in enumerate(pairs):
        d = x.ndim - 1 - i
        if x.shape[d] + a + b < 0 or (mode != "constant" and x.shape[d] + a + b <= 0):
            raise RuntimeError(f"pad: padding {(a, b)} at dim {d} of input of shape {_shape_str(x.shape)} "
                               f"gives a negative or empty size {x.shape[d] + a + b}")
    if mode == "constant":
        pads = [(0, 0)] * (x.ndim - n) + pairs[::-1]
        return ConstantPad(pads, 0.0 if value is None else value)(x)

    if mode not in ("reflect", "replicate", "circular"):
        raise NotImplementedError(f"pad: unknown mode {mode!r}; expected 'constant', 'reflect', "
                                  "'replicate' or 'circular'")
    if value is not None:
        raise ValueError(f"pad: padding mode {mode!r} does not take a value, got value={value}")
    if x.ndim not in (n + 1, n + 2) or n > 3:
        raise NotImplementedError(f"pad: {mode} padding of {n} dim(s) (padding {pad}) needs a "
                                  f"{n + 1}-D or {n + 2}-D input, got shape {_shape_str(x.shape)}")
    for i, (a, b) in enumerate(pairs):
        d = x.ndim - 1 - i
        size = x.shape[d]
        if mode == "reflect" and (a >= size or b >= size):
            raise RuntimeError(f"pad: reflect padding {(a, b)} must be less than the input size at "
                               f"dim {d}, got input of shape {_shape_str(x.shape)}")
        if mode == "circular" and (a > size or b > size):
            raise RuntimeError(f"pad: circular padding {(a, b)} wraps around more than once at dim "
                               f"{d} of input of shape {_shape_str(x.shape)}")
    # torch's reflection and replication pads are one op whose backward reads x, even when it pads
    # nothing; its circular pad is slicing, whose backward reads nothing
    reads_x = mode != "circular"
    padded = [(i, a, b) for i, (a, b) in enumerate(pairs) if a or b]
    if reads_x and not padded:
        padded = [(0, 0, 0)]
    for i, a, b in padded:
        d = x.ndim - 1 - i
        x = _take(x, _pad_index(mode, x.shape[d], a, b), d, grad_reads_input=reads_x)
    return x


# ================================================================ average pooling


def _pool_out(size, k, s, p, d, ceil_mode):
    """PyTorch's ``pooling_output_shape``: the number of windows along one dim."""
    span = size + 2 * p - d * (k - 1) - 1
    out = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1  # the last window must start inside the input or its left padding
    return out


def _pool_args(input, kernel_size, stride, padding, dilation, ceil_mode, op):
    if input.ndim not in (3, 4):
        raise RuntimeError(f"{op}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape "
                           f"{_shape_str(input.shape)}")
    k = _pair(kernel_size, "kernel_size", op)
    s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) \
        else _pair(stride, "stride", op)
    p, d = _pair(padding, "padding", op), _pair(dilation, "dilation", op)
    if min(k) <= 0 or min(s) <= 0 or min(d) <= 0 or min(p) < 0:
        raise RuntimeError(f"{op}: kernel_size {k}, stride {s} and dilation {d} must be positive and "
                           f"padding {p} non-negative")
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise RuntimeError(f"{op}: pad should be at most half of kernel size, got padding {p} and "
                           f"kernel_size {k}")
    H, W = input.shape[-2:]
    out = tuple(_pool_out(n, k[i], s[i], p[i], d[i], ceil_mode) for i, n in enumerate((H, W)))
    if min(out) < 1:
        raise RuntimeError(f"{op}: input of shape {_shape_str(input.shape)} is too small for "
                           f"kernel_size {k}, stride {s}, padding {p}, dilation {d}: output size {out}")
    return k, s, p, d, out


class _Windows:
    """The geometry of a pooling: where each of the k*k taps reads in the padded input."""

    def __init__(self, in_hw, k, s, p, d, out):
        self.in_hw, self.k, self.s, self.p, self.d, self.out = in_hw, k, s, p, d, out
        # padded extent: the input plus padding, or further if a ceil_mode window overhangs
        self.padded = tuple(max(n + 2 * p[i], (out[i] - 1) * s[i] + d[i] * (k[i] - 1) + 1)
                            for i, n in enumerate(in_hw))

    def taps(self):
        (kh, kw), (sh, sw), (dh, dw), (oh, ow) = self.k, self.s, self.d, self.out
        for i in range(kh):
            for j in range(kw):
                yield i, j, (Ellipsis, slice(i * dh, i * dh + sh * (oh - 1) + 1, sh),
                             slice(j * dw, j * dw + sw * (ow - 1) + 1, sw))

    def pad_into(self, x, fill):
        xp = backend.get_array_module(x)
        (H, W), (ph, pw) = self.in_hw, self.p
        buf = xp.full(x.shape[:-2] + self.padded, fill, dtype=x.dtype)
        buf[..., ph:ph + H, pw:pw + W] = x
        return buf

    def tiles(self):
        """True when windows tile the input (stride == kernel, no padding): pool by reshaping."""
        (H, W), (kh, kw), (oh, ow) = self.in_hw, self.k, self.out
        return (self.s == self.k and self.p == (0, 0) and self.d == (1, 1)
                and oh * kh <= H and ow * kw <= W)


def _avg_inverse_divisor(win, count_include_pad, divisor_override, dtype, xp):
    """1 / (the number each window sum is divided by), per output position: torch's rule."""
    if divisor_override:
        return xp.full(win.out, 1.0 / divisor_override, dtype=dtype)
    sizes = []
    for n, k, s, p, o in zip(win.in_hw, win.k, win.s, win.p, win.out):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, n + p)
        full = end - start  # the window clipped to the padded input
        inside = np.minimum(end, n) - np.maximum(start, 0)  # the window clipped to the input
        sizes.append((full, np.maximum(inside, 0)))
    (fh, ih), (fw, iw) = sizes
    empty = np.outer(ih, iw) == 0  # a window entirely in the padding gives 0, as in torch
    count = np.outer(fh, fw) if count_include_pad else np.outer(ih, iw)
    inv = np.where(empty, 0.0, 1.0 / np.maximum(count, 1))
    return xp.asarray(inv.astype(dtype))


class AvgPool2d(Function):
    """y = A x: the sum over each window times 1/divisor."""

    def __init__(self, win, inv):
        self.win, self.inv = win, inv

    def forward(self, x):
        win = self.win
        if win.tiles():
            (kh, kw), (oh, ow) = win.k, win.out
            x = x[..., :oh * kh, :ow * kw]
            y = x.reshape(x.shape[:-2] + (oh, kh, ow, kw)).sum(axis=(-3, -1))
        else:
            buf = win.pad_into(x, 0)
            y = 0
            for _, _, view in win.taps():
                y = y + buf[view]
        return (y * self.inv).astype(x.dtype, copy=False)

    def backward(self, gy):
        return AvgPool2dGrad(self.win, self.inv)(gy, self.inputs[0])


class AvgPool2dGrad(Function):
    """gx = A^T g: each output's gradient, divided, spread back over its window (x: only for the graph)."""

    def __init__(self, win, inv):
        self.win, self.inv = win, inv

    def forward(self, gy, x):
        win = self.win
        xp = backend.get_array_module(gy)
        g = gy * self.inv
        (H, W), (kh, kw), (oh, ow) = win.in_hw, win.k, win.out
        if win.tiles():
            spread = xp.broadcast_to(g[..., :, None, :, None], g.shape[:-2] + (oh, kh, ow, kw))
            gx = xp.zeros(g.shape[:-2] + (H, W), dtype=g.dtype)
            gx[..., :oh * kh, :ow * kw] = spread.reshape(g.shape[:-2] + (oh * kh, ow * kw))
            return gx
        buf = xp.zeros(g.shape[:-2] + win.padded, dtype=g.dtype)
        for _, _, view in win.taps():
            buf[view] += g
        (ph, pw) = win.p
        return xp.ascontiguousarray(buf[..., ph:ph + H, pw:pw + W])

    def backward(self, ggx):
        return AvgPool2d(self.win, self.inv)(ggx), zeros_like(self.inputs[1])


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Average over k x k windows, as ``torch.nn.functional.avg_pool2d``.

    Zero padding counts in the divisor when ``count_include_pad``; ``ceil_mode``
    adds a last, partial window; ``divisor_override`` replaces the divisor.
    """
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError("avg_pool2d: divisor_override must be non-zero")
    k, s, p, d, out = _pool_args(input, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d")
    win = _Windows(input.shape[-2:], k, s, p, d, out)
    xp = backend.get_array_module(input.array)
    inv = _avg_inverse_divisor(win, count_include_pad, divisor_override, input.dtype, xp)
    return AvgPool2d(win, inv)(input)


def adaptive_avg_pool2d(input, output_size):
    """Average pooling to a given output size, as ``torch.nn.functional.adaptive_avg_pool2d``.

    Output cell i averages input rows floor(i H / out) to ceil((i+1) H / out). When
    the output size divides the input this is avg_pool2d with kernel = stride = H / out;
    otherwise the windows overlap unevenly and the pooling is y = P_h x P_w^T with
    small averaging matrices.
    """
    if input.ndim not in (3, 4):
        raise RuntimeError(f"adaptive_avg_pool2d: expected a 3-D or 4-D input, got shape "
                           f"{_shape_str(input.shape)}")
    H, W = input.shape[-2:]
    if H == 0 or W == 0:
        raise RuntimeError(f"adaptive_avg_pool2d: expected input with non-zero height and width, got "
                           f"shape {_shape_str(input.shape)}")
    size = output_size if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    oh, ow = (H if size[0] is None else int(size[0])), (W if size[1] is None else int(size[1]))
    if oh <= 0 or ow <= 0:
        raise RuntimeError(f"adaptive_avg_pool2d: output_size must be positive, got {output_size}")
    if (oh, ow) == (1, 1):  # torch's global pooling is the mean (its gradient reads no x)
        return mean(input, (-2, -1), keepdim=True)
    if H % oh == 0 and W % ow == 0:
        return avg_pool2d(input, (H // oh, W // ow))
    xp = backend.get_array_module(input.array)

    def averaging(n, o):
        m = np.zeros((o, n))
        for i in range(o):  # a loop over output cells of one axis, not over pixels
            a, b = (i * n) // o, -((-(i + 1) * n) // o)
            m[i, a:b] = 1.0 / (b - a)
        return xp.asarray(m.astype(input.dtype))

    return Averaging(averaging(H, oh), averaging(W, ow))(input)


class Averaging(Function):
    """y = P_h x P_w^T: row and column averaging matrices on the last two dims."""

    def __init__(self, p_h, p_w):
        self.p_h, self.p_w = p_h, p_w

    def forward(self, x):
        return self.p_h @ x @ self.p_w.T

    def backward(self, gy):
        return AveragingAdjoint(self.p_h, self.p_w)(gy, self.inputs[0])


class AveragingAdjoint(Function):
    """gx = P_h^T g P_w (x only for the graph, as torch's adaptive_avg_pool2d_backward reads it)."""

    def __init__(self, p_h, p_w):
        self.p_h, self.p_w = p_h, p_w

    def forward(self, gy, x):
        return self.p_h.T @ gy @ self.p_w

    def backward(self, ggx):
        return Averaging(self.p_h, self.p_w)(ggx), zeros_like(self.inputs[1])


# ================================================================ max pooling


class WindowGather(Function):
    """y = each window's value at its chosen tap (``tap``: which of the k*k taps, -1 for none)."""

    def __init__(self, win, tap):
        self.win, self.tap = win, tap

    def forward(self, x):
        xp = backend.get_array_module(x)
        buf = self.win.pad_into(x, 0)
        y = xp.zeros(x.shape[:-2] + self.win.out, dtype=x.dtype)
        for t, (_, _, view) in enumerate(self.win.taps()):
            y = xp.where(self.tap == t, buf[view], y)
        return y

    def backward(self, gy):
        return WindowScatter(self.win, self.tap)(gy, self.inputs[0])


class WindowScatter(Function):
    """gx: each output's gradient added at its window's chosen tap (the adjoint of WindowGather;
    x only for the graph)."""

    def __init__(self, win, tap):
        self.win, self.tap = win, tap

    def forward(self, gy, x):
        xp = backend.get_array_module(gy)
        buf = xp.zeros(gy.shape[:-2] + self.win.padded, dtype=gy.dtype)
        for t, (_, _, view) in enumerate(self.win.taps()):
            buf[view] += xp.where(self.tap == t, gy, 0)
        (H, W), (ph, pw) = self.win.in_hw, self.win.p
        return xp.ascontiguousarray(buf[..., ph:ph + H, pw:pw + W])

    def backward(self, ggx):
        return WindowGather(self.win, self.tap)(ggx), zeros_like(self.inputs[1])


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max over k x k windows, as ``torch.nn.functional.max_pool2d``.

    The gradient goes to the argmax of each window (the first one among ties, as
    torch). ``return_indices`` also returns each argmax as a flat index into its
    H*W plane. Once the argmax is known the output is a gather of the input
    (``WindowGather``), so its backward is a scatter-add and that backward's
    backward the same gather.
    """
    x = input
    k, s, p, d, out = _pool_args(x, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d")
    win = _Windows(x.shape[-2:], k, s, p, d, out)
    xp = backend.get_array_module(x.array)
    # which taps of each window land inside the input (padding never wins, as in torch)
    inside = [[(0 <= start) & (start < n) for start in
               (np.arange(o) * s[a] - p[a] + i * d[a] for i in range(k[a]))]
              for a, (o, n) in enumerate(zip(out, win.in_hw))]
    buf = win.pad_into(x.array, 0)
    best = xp.zeros(x.shape[:-2] + out, dtype=x.dtype)  # replaced at each window's first valid tap
    tap = xp.full(x.shape[:-2] + out, -1, dtype=np.int64)
    for t, (i, j, view) in enumerate(win.taps()):
        # torch's scan: the first valid tap, then any strictly larger value (or a NaN)
        candidate = buf[view]
        better = (candidate > best) | (tap < 0)
        if x.dtype.kind == "f":
            better |= xp.isnan(candidate)
        better &= xp.asarray(np.outer(inside[0][i], inside[1][j]))
        best = xp.where(better, candidate, best)
        tap = xp.where(better, t, tap)
    y = WindowGather(win, tap)(x)
    empty = tap < 0  # a window wholly in the padding (ceil_mode, dilation) is -inf, as in torch
    if empty.any():
        y = Where(empty)(Tensor(xp.asarray(-np.inf, dtype=x.dtype)), y)
    if not return_indices:
        return y
    kw = k[1]
    rows = xp.arange(out[0]).reshape(-1, 1) * s[0] - p[0] + (tap // kw) * d[0]
    cols = xp.arange(out[1]) * s[1] - p[1] + (tap % kw) * d[1]
    return y, Tensor((rows * win.in_hw[1] + cols).astype(np.int64))


# ================================================================ interpolate


def _nearest_index(n_in, n_out, scale, exact, shortcuts):
    """torch's source index for 'nearest' (floor rule, in float32) or 'nearest-exact'.

    torch's CPU kernel for 2-D 'nearest' copies when out == in and halves the index
    when out == 2 in, whatever the scale factor; its 1-D and 3-D kernels do not.
    """
    if shortcuts and n_out == n_in:
        return np.arange(n_out)
    if shortcuts and n_out == 2 * n_in:
        return np.arange(n_out) >> 1
    s = np.float32(1.0 / scale) if scale else np.float32(n_in) / np.float32(n_out)
    dst = np.arange(n_out).astype(np.float32)
    if exact:
        dst = dst + np.float32(0.5)
    return np.minimum(np.floor(dst * s).astype(np.int64), n_in - 1)


def _linear_index(n_in, n_out, scale, align_corners, dtype):
    """torch's two source indices and weights per output position for linear interpolation.

    align_corners=True maps the corner pixels' centers onto each other
    (src = dst (n_in - 1) / (n_out - 1)); False maps the pixel edges
    (src = (dst + 0.5) / scale - 0.5, clamped at 0), so pixel centers sit at half-integers.
    """
    if n_out == n_in:
        i = np.arange(n_out)
        return i, i, np.ones(n_out), np.zeros(n_out)
    t = np.float32 if np.dtype(dtype) != np.float64 else np.float64  # torch's opmath type
    if align_corners:
        ratio = t(n_in - 1) / t(n_out - 1) if n_out > 1 else t(0)
        src = ratio * np.arange(n_out).astype(t)
    else:
        ratio = t(1.0 / scale) if scale else t(n_in) / t(n_out)
        src = ratio * (np.arange(n_out).astype(t) + t(0.5)) - t(0.5)
        src = np.maximum(src, t(0))
    i0 = np.minimum(np.floor(src.astype(np.float32)).astype(np.int64), n_in - 1)
    lam1 = np.clip(src - i0.astype(t), 0, 1)
    i1 = i0 + (i0 < n_in - 1)
    return i0, i1, 1 - lam1, lam1


def _repeat_each(x, axis, r):
    """Repeat every entry r times along ``axis`` by broadcasting (nearest upsampling by r)."""
    shape = x.shape
    y = broadcast_to(unsqueeze(x, axis + 1), shape[:axis + 1] + (r,) + shape[axis + 1:])
    return reshape(y, shape[:axis] + (shape[axis] * r,) + shape[axis + 1:])


_LINEAR_MODES = {"linear": 1, "bilinear": 2, "trilinear": 3}


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resample the spatial dims, as ``torch.nn.functional.interpolate``.

    Modes 'nearest' (torch's floor rule: src = floor(dst * in/out)), 'nearest-exact'
    (pixel centers: src = floor((dst + 0.5) * in/out)), and 'linear' / 'bilinear' /
    'trilinear' for 3-D / 4-D / 5-D inputs. Linear modes interpolate one axis at a
    time: y = (1 - lambda) x[i0] + lambda x[i1].
    """
    x = input
    dim = x.ndim - 2
    if dim < 1 or dim > 3:
        raise ValueError(f"interpolate: expected a 3-D, 4-D or 5-D input (N, C, ...), got shape "
                         f"{_shape_str(x.shape)}")
    if mode not in ("nearest", "nearest-exact") and mode not in _LINEAR_MODES:
        raise NotImplementedError(f"interpolate: mode {mode!r} is not supported; expected 'nearest', "
                                  "'nearest-exact', 'linear', 'bilinear' or 'trilinear'")
    if mode in _LINEAR_MODES:
        if _LINEAR_MODES[mode] != dim:
            raise NotImplementedError(f"interpolate: got {x.ndim}D input of shape {_shape_str(x.shape)}, "
                                      f"but {mode} mode needs {_LINEAR_MODES[mode] + 2}D input")
        align_corners = bool(align_corners)
    elif align_corners is not None:
        raise ValueError("interpolate: align_corners option can only be set with the interpolating "
                         "modes: linear | bilinear | trilinear")
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported")
    if size is not None and scale_factor is not None:
        raise ValueError("interpolate: only one of size or scale_factor should be defined")
    in_sizes = x.shape[2:]
    if size is not None:
        if recompute_scale_factor:
            raise ValueError("interpolate: recompute_scale_factor is not meaningful with an explicit size")
        sizes = tuple(size) if isinstance(size, (tuple, list)) else (size,) * dim
        if len(sizes) != dim:
            raise ValueError(f"interpolate: input with spatial size {in_sizes} and size {size} must "
                             "have the same number of spatial dims")
        sizes, scales = tuple(int(s) for s in sizes), (None,) * dim
    elif scale_factor is not None:
        scales = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * dim
        if len(scales) != dim:
            raise ValueError(f"interpolate: input with spatial size {in_sizes} and scale_factor "
                             f"{scale_factor} must have the same number of spatial dims")
        scales = tuple(float(s) for s in scales)
        sizes = tuple(int(math.floor(n * s)) for n, s in zip(in_sizes, scales))
        if recompute_scale_factor:
            scales = (None,) * dim
    else:
        raise ValueError("interpolate: either size or scale_factor should be defined")
    if min(sizes) <= 0 or min(in_sizes) <= 0:
        raise ValueError(f"interpolate: input of spatial size {in_sizes} and output size {sizes} "
                         "must be positive")

    xp = backend.get_array_module(x.array)
    for i, (n_in, n_out, scale) in enumerate(zip(in_sizes, sizes, scales)):
        axis = 2 + i
        if mode in _LINEAR_MODES:
            if n_out == n_in:
                continue
            i0, i1, w0, w1 = _linear_index(n_in, n_out, scale, align_corners, x.dtype)
            shape = (n_out,) + (1,) * (x.ndim - axis - 1)
            w0 = Tensor(xp.asarray(w0.astype(x.dtype).reshape(shape)))
            w1 = Tensor(xp.asarray(w1.astype(x.dtype).reshape(shape)))
            x = _take(x, i0, axis) * w0 + _take(x, i1, axis) * w1
        else:
            index = _nearest_index(n_in, n_out, scale, mode == "nearest-exact",
                                   shortcuts=mode == "nearest" and dim == 2)
            if np.array_equal(index, np.arange(n_in)):
                continue
            r = n_out // n_in
            if n_out == r * n_in and np.array_equal(index, np.arange(n_out) // r):
                x = _repeat_each(x, axis, r)  # the common integer upsampling, by broadcasting
            else:
                x = _take(x, index, axis)
    return x


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    return interpolate(input, size, scale_factor, mode, align_corners)


# ================================================================ pixel shuffle


def pixel_shuffle(input, upscale_factor):
    """(*, C r^2, H, W) -> (*, C, H r, W r): sub-pixel convolution's rearrangement (Shi et al.)."""
    r = int(upscale_factor)
    if input.ndim < 3:
        raise RuntimeError(f"pixel_shuffle: expected an input with at least 3 dims, got shape "
                           f"{_shape_str(input.shape)}")
    *lead, c, h, w = input.shape
    if r <= 0:
        raise RuntimeError(f"pixel_shuffle: expected a positive upscale_factor, got {r} "
                           f"(input of shape {_shape_str(input.shape)})")
    if c % (r * r):
        raise RuntimeError(f"pixel_shuffle: the channel dim of input of shape {_shape_str(input.shape)} "
                           f"must be divisible by upscale_factor^2 = {r * r}")
    b = len(lead)
    y = reshape(input, tuple(lead) + (c // (r * r), r, r, h, w))
    y = permute(y, tuple(range(b)) + (b, b + 3, b + 1, b + 4, b + 2))
    return reshape(y, tuple(lead) + (c // (r * r), h * r, w * r))


def pixel_unshuffle(input, downscale_factor):
    """(*, C, H r, W r) -> (*, C r^2, H, W): the inverse of pixel_shuffle."""
    r = int(downscale_factor)
    if input.ndim < 3:
        raise RuntimeError(f"pixel_unshuffle: expected an input with at least 3 dims, got shape "
                           f"{_shape_str(input.shape)}")
    *lead, c, h, w = input.shape
    if r <= 0:
        raise RuntimeError(f"pixel_unshuffle: expected a positive downscale_factor, got {r} "
                           f"(input of shape {_shape_str(input.shape)})")
    if h % r or w % r:
        raise RuntimeError(f"pixel_unshuffle: height and width of input of shape "
                           f"{_shape_str(input.shape)} must be divisible by downscale_factor {r}")
    b = len(lead)
    y = reshape(input, tuple(lead) + (c, h // r, r, w // r, r))
    y = permute(y, tuple(range(b)) + (b, b + 2, b + 4, b + 1, b + 3))
    return reshape(y, tuple(lead) + (c * r * r, h // r, w // r))


# ================================================================ embedding


class Embedding(Function):
    """y = weight[indices]; the gradient scatter-adds rows, skipping ``padding_idx``."""

    def __init__(self, indices, padding_idx, scale_grad_by_freq):
        self.indices, self.padding_idx, self.scale = indices, padding_idx, scale_grad_by_freq

    def forward(self, weight):
        return weight[self.indices]

    def backward(self, gy):
        xp = backend.get_array_module(gy.array)
        idx, (rows, dim) = self.indices, self.inputs[0].shape
        mask = None
        if self.padding_idx is not None:
            mask = (idx != self.padding_idx)
        if self.scale:  # divide each gradient by how often its index occurs in the batch
            counts = xp.bincount(idx.reshape(-1), minlength=rows)
            factor = 1.0 / counts[idx]
            mask = factor if mask is None else factor * mask
        if mask is not None:
            gy = gy * Tensor(mask.astype(gy.dtype)[..., None])
        return TakeAdjoint(0, idx.reshape(-1), rows)(reshape(gy, (-1, dim)))


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
              sparse=False):
    """Rows of ``weight`` picked by the integer ``input``, as ``torch.nn.functional.embedding``.

    Row ``padding_idx`` receives no gradient. ``max_norm`` renormalizes the rows used
    to at most that norm, in place, as torch does.
    """
    if sparse:
        raise NotImplementedError("embedding: sparse gradients are not supported")
    idx = input.array if isinstance(input, Tensor) else input
    xp = backend.get_array_module(weight.array)
    idx = xp.asarray(idx)
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"embedding: expected integer indices, got {idx.dtype} of shape "
                           f"{_shape_str(idx.shape)}")
    if weight.ndim != 2:
        raise RuntimeError(f"embedding: weight must be 2-D, got shape {_shape_str(weight.shape)}")
    rows = weight.shape[0]
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= rows):
        raise IndexError(f"embedding: index out of range for weight of shape {_shape_str(weight.shape)}: "
                         f"indices span [{int(idx.min())}, {int(idx.max())}]")
    if padding_idx is not None:
        if not -rows <= padding_idx < rows:
            raise ValueError(f"embedding: padding_idx {padding_idx} must be within num_embeddings {rows}")
        padding_idx = padding_idx % rows
    if max_norm is not None:
        used = xp.unique(idx)
        w = weight.array
        norms = (xp.abs(w[used]) ** norm_type).sum(axis=1) ** (1.0 / norm_type)
        factor = xp.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0).astype(w.dtype)
        w[used] *= factor[:, None]
        weight._version += 1
    return Embedding(idx.astype(np.int64), padding_idx, scale_grad_by_freq)(weight)
