"""Bias + leaky ReLU, fused: StyleGAN2's ``fused_leaky_relu``, forward and backward.

    y  = gain * lrelu(x + b)          lrelu(v) = v if v > 0 else slope * v
    gx = gain * gy * (1 if x + b > 0 else slope),      gb = sum of gx over all dims but 1

One read and one write per element, where the unfused ops take three passes
(add the bias, the activation, the gain). ``b`` has one value per channel
(dim 1), ``gain`` is StyleGAN2's sqrt(2) that keeps the activations' variance
(plain ``leaky_relu`` is bias=None, gain=1). The slope and the gain are
compile-time constants: a model uses one or two pairs, and a constant takes the
data's dtype, so float64 data sees the exact float64 slope.

The reference is the NumPy op it replaces: ``leaky_relu(x + b, slope) * gain``
(``minigan.functional.activation``).

Typical shape: a StyleGAN2 synthesis layer, x (16, 512, 64, 64) float32 (33.6 M values).
    forward   reads x and b, writes y:          268 MB,  0.10 GFLOP (add, compare, scale)
    backward  reads gy, x and b, writes gx:     403 MB,  0.10 GFLOP
    roofline on an H100 (3.35 TB/s): forward 0.08 ms, backward 0.12 ms
    measured: not yet (no GPU where this was written): `python -m kernels.benchmark` prints them
"""
import triton
import triton.language as tl

from .bridge import cdiv, contiguous, launch, xp_of

BLOCK = 1024


@triton.jit
def bias_leaky_relu_kernel(x_ptr, bias_ptr, y_ptr, numel, channels, inner,
                           HAS_BIAS: tl.constexpr, SLOPE: tl.constexpr, GAIN: tl.constexpr,
                           BLOCK: tl.constexpr):
    # each program takes BLOCK consecutive values; the channel of value i is (i // inner) % channels
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < numel
    v = tl.load(x_ptr + offs, mask=mask)
    if HAS_BIAS:
        v += tl.load(bias_ptr + (offs // inner) % channels, mask=mask)
    y = tl.where(v > 0, v, v * SLOPE)
    if GAIN != 1.0:
        y = y * GAIN
    tl.store(y_ptr + offs, y, mask=mask)


@triton.jit
def bias_leaky_relu_grad_kernel(gy_ptr, x_ptr, bias_ptr, gx_ptr, numel, channels, inner,
                                HAS_BIAS: tl.constexpr, SLOPE: tl.constexpr, GAIN: tl.constexpr,
                                BLOCK: tl.constexpr):
    # the slope of the piece that x + b falls on, times the incoming gradient
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < numel
    v = tl.load(x_ptr + offs, mask=mask)
    if HAS_BIAS:
        v += tl.load(bias_ptr + (offs // inner) % channels, mask=mask)
    g = tl.load(gy_ptr + offs, mask=mask)
    if GAIN != 1.0:
        g = g * GAIN
    tl.store(gx_ptr + offs, tl.where(v > 0, g, g * SLOPE), mask=mask)


def _layout(x, bias):
    channels = x.shape[1] if bias is not None else 1
    inner = x.size // (x.shape[0] * channels) if bias is not None and x.size else 1
    return channels, max(inner, 1)


def bias_leaky_relu(x, bias, negative_slope, gain):
    """gain * leaky_relu(x + bias) on arrays; ``bias`` (C,) or None."""
    xp = xp_of(x)
    x = contiguous(x)
    y = xp.empty_like(x)
    channels, inner = _layout(x, bias)
    launch(bias_leaky_relu_kernel, (cdiv(x.size, BLOCK),),
           dict(x_ptr=x, bias_ptr=x if bias is None else bias, y_ptr=y, numel=x.size,
                channels=channels, inner=inner),
           dict(HAS_BIAS=bias is not None, SLOPE=float(negative_slope), GAIN=float(gain), BLOCK=BLOCK))
    return y


def bias_leaky_relu_grad(gy, x, bias, negative_slope, gain):
    """The input gradient of ``bias_leaky_relu`` at x for the incoming gradient gy."""
    xp = xp_of(x)
    x, gy = contiguous(x), contiguous(gy)
    gx = xp.empty_like(gy)
    channels, inner = _layout(x, bias)
    launch(bias_leaky_relu_grad_kernel, (cdiv(x.size, BLOCK),),
           dict(gy_ptr=gy, x_ptr=x, bias_ptr=x if bias is None else bias, gx_ptr=gx, numel=x.size,
                channels=channels, inner=inner),
           dict(HAS_BIAS=bias is not None, SLOPE=float(negative_slope), GAIN=float(gain), BLOCK=BLOCK))
    return gx
