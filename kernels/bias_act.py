"""Bias + leaky ReLU, fused: StyleGAN2's ``fused_leaky_relu``, forward and backward.

    y  = gain * lrelu(x + b)          lrelu(v) = v if v > 0 else slope * v
    gx = gain * gy * (1 if x + b > 0 else slope),      gb = sum of gx over all dims but 1

One read and one write per element, where the unfused ops take three passes
(add the bias, the activation, the gain). A program takes a tile of x seen as
the (N*C, H*W) matrix, so a row's bias is loaded once and no value's channel is
computed by division (a 64-bit division per value took 376 instructions per
thread on sm_90, with calls to the division routine; now 136, no calls).
``b`` has one value per channel (dim 1), ``gain`` is StyleGAN2's sqrt(2) that keeps the activations' variance
(plain ``leaky_relu`` is bias=None, gain=1). The slope and the gain are
compile-time constants: a model uses one or two pairs, and a constant takes the
data's dtype, so float64 data sees the exact float64 slope.

The reference is the NumPy op it replaces: ``leaky_relu(x + b, slope) * gain``
(``minigan.functional.activation``).

Typical shape: a StyleGAN2 synthesis layer, x (16, 512, 64, 64) float32 (33.6 M values).
    forward   reads x and b, writes y:          268 MB,  0.10 GFLOP (add, compare, scale)
    backward  reads gy, x and b, writes gx:     403 MB,  0.10 GFLOP
    roofline on an H100 (3.35 TB/s): forward 0.08 ms, backward 0.12 ms
    compiled for sm_90 (`python -m benchmarks.sass`): 1 x 1024 tiles, 4 warps, 16-byte loads and stores
    measured: not yet (no GPU where this was written): `python -m benchmarks.kernels` prints them
"""
import triton
import triton.language as tl

from .bridge import cdiv, contiguous, launch, next_power_of_2, xp_of

BLOCK = 1024  # values per program: a ROWS x COLS tile of the (N*C, H*W) matrix


@triton.jit
def _x_plus_bias(x_ptr, bias_ptr, rows, channels, inner,
                 HAS_BIAS: tl.constexpr, ROWS: tl.constexpr, COLS: tl.constexpr):
    """This program's tile of x seen as the (rows, inner) matrix, plus the bias: (x + b, offsets, mask).

    Row r = (n, c) has bias[r % C]: one load per row, not a division per value."""
    col_blocks = tl.cdiv(inner, COLS)
    pid = tl.program_id(0)
    row = (pid // col_blocks) * ROWS + tl.arange(0, ROWS)
    col = (pid % col_blocks) * COLS + tl.arange(0, COLS)
    offs = row.to(tl.int64)[:, None] * inner + col[None, :]
    mask = (row < rows)[:, None] & (col < inner)[None, :]
    v = tl.load(x_ptr + offs, mask=mask)
    if HAS_BIAS:
        v += tl.load(bias_ptr + row % channels, mask=row < rows)[:, None]
    return v, offs, mask


@triton.jit
def bias_leaky_relu_kernel(x_ptr, bias_ptr, y_ptr, rows, channels, inner,
                           HAS_BIAS: tl.constexpr, SLOPE: tl.constexpr, GAIN: tl.constexpr,
                           ROWS: tl.constexpr, COLS: tl.constexpr):
    v, offs, mask = _x_plus_bias(x_ptr, bias_ptr, rows, channels, inner, HAS_BIAS, ROWS, COLS)
    y = tl.where(v > 0, v, v * SLOPE)
    if GAIN != 1.0:
        y = y * GAIN
    tl.store(y_ptr + offs, y, mask=mask)


@triton.jit
def bias_leaky_relu_grad_kernel(gy_ptr, x_ptr, bias_ptr, gx_ptr, rows, channels, inner,
                                HAS_BIAS: tl.constexpr, SLOPE: tl.constexpr, GAIN: tl.constexpr,
                                ROWS: tl.constexpr, COLS: tl.constexpr):
    # the slope of the piece that x + b falls on, times the incoming gradient
    v, offs, mask = _x_plus_bias(x_ptr, bias_ptr, rows, channels, inner, HAS_BIAS, ROWS, COLS)
    g = tl.load(gy_ptr + offs, mask=mask)
    if GAIN != 1.0:
        g = g * GAIN
    tl.store(gx_ptr + offs, tl.where(v > 0, g, g * SLOPE), mask=mask)


def _layout(x, bias):
    """(rows, channels, inner, ROWS, COLS): x as a (rows, inner) matrix, one bias per row
    (rows = N*C, inner = H*W), or one row without a bias; and the tile that covers it."""
    if bias is None or x.size == 0:
        rows, channels, inner = 1, 1, max(x.size, 1)
    else:
        rows, channels = x.shape[0] * x.shape[1], x.shape[1]
        inner = max(x.size // rows, 1)
    cols = min(next_power_of_2(inner), BLOCK)
    return rows, channels, inner, BLOCK // cols, cols


def _launch(kernel, arrays, x, bias, negative_slope, gain):
    rows, channels, inner, tile_rows, cols = _layout(x, bias)
    launch(kernel, (cdiv(rows, tile_rows) * cdiv(inner, cols),),
           dict(arrays, rows=rows, channels=channels, inner=inner),
           dict(HAS_BIAS=bias is not None, SLOPE=float(negative_slope), GAIN=float(gain),
                ROWS=tile_rows, COLS=cols))


def bias_leaky_relu(x, bias, negative_slope, gain):
    """gain * leaky_relu(x + bias) on arrays; ``bias`` (C,) or None."""
    xp = xp_of(x)
    x = contiguous(x)
    y = xp.empty_like(x)
    _launch(bias_leaky_relu_kernel, dict(x_ptr=x, bias_ptr=x if bias is None else bias, y_ptr=y),
            x, bias, negative_slope, gain)
    return y


def bias_leaky_relu_grad(gy, x, bias, negative_slope, gain):
    """The input gradient of ``bias_leaky_relu`` at x for the incoming gradient gy."""
    xp = xp_of(x)
    x, gy = contiguous(x), contiguous(gy)
    gx = xp.empty_like(gy)
    _launch(bias_leaky_relu_grad_kernel,
            dict(gy_ptr=gy, x_ptr=x, bias_ptr=x if bias is None else bias, gx_ptr=gx), x, bias, negative_slope, gain)
    return gx
