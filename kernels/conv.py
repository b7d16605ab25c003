"""conv2d as an implicit GEMM, and its input gradient (dgrad) and weight gradient (wgrad).

A convolution is one matrix product per group (``minigan.functional.conv``
builds it with im2col): rows are output pixels (n, oh, ow), columns output
channels, and the inner dimension K runs over the taps (c, i, j) of the filter:

    forward  y[(n,oh,ow), o]  = sum_(c,i,j)  x[n, c, oh*sh - ph + i*dh, ow*sw - pw + j*dw] * W[o, c, i, j]
    dgrad    gx[(n,h,w), c]   = sum_(o,i,j)  gy[n, o, (h + ph - i*dh) / sh, ...] * W[o, c, i, j]
    wgrad    gW[o, (c,i,j)]   = sum_(n,oh,ow) gy[n, o, oh, ow] * x[n, c, oh*sh - ph + i*dh, ...]

*Implicit*: no im2col matrix is ever stored. Each program owns a BLOCK_M x
BLOCK_N tile of the result and walks K in steps of BLOCK_K, computing for each
step the addresses of the receptive-field values it needs (zero where they
fall in the padding) and loading them straight into shared memory for ``tl.dot``.

The K loop runs tap by tap, BLOCK_K channels at a time: step t is filter tap
(i, j) = divmod(t // steps, kw) over channels (t % steps) * BLOCK_K + [0, BLOCK_K).
Only those scalars are divided; per row, a tap moves the receptive field by
(i*dh, j*dw) and decides whether the row is in the padding; per value, all that
is left is an add and an and. (Dividing each k = (c, i, j) of a tile instead
cost ~1,400 instructions per thread per K step of a 3x3 layer on sm_90; this
loop is ~225.) The launchers hand the
kernels the channel axis innermost in memory (the activations as NHWC, the
filters with C, or for dgrad O, last; a copy when it is not, which
``minigan.kernels.layout`` transposes at a copy's traffic), so each row's BLOCK_K
channels are one contiguous run that loads as 16-byte pieces.

Strided dgrad is decomposed by *stride phase* instead of inserting zeros: the
output rows h with the same (h + ph) mod sh see the same taps i (those with
i*dh = h + ph mod sh), so for each of the sh*sw phases the launcher finds that
arithmetic progression of taps on the host and runs one dense GEMM over
the phase's pixels and taps only; no multiply by an inserted zero. A phase that
no tap reaches gets gx = 0 (its GEMM has K = 0). Phases with as many pixels and
taps as each other share a launch, as planes of its grid that differ only in
where they start (a 4x4 stride-2 layer on an even map: one launch, not four).
``conv_transpose2d`` is this dgrad with a bias (its forward is conv2d's input
gradient), and its backward is the other two kernels, as in
``minigan.functional.conv``.

wgrad's K runs over output pixels, in blocks of IMGS images x ROWS rows x COLS
columns (powers of 2 whose product is BLOCK_K: a row first, then more rows, then
more images, so a 4x4 map still fills a step). Where each of a block's pixels
lies from the block's corner, in gy and in x at a tap, is the same for every
block: computed once, before the loop. A step computes the corner (scalars; the
map's sizes are compile-time constants, one compile per resolution), adds it, and
masks the pixels whose receptive field falls in the padding. (Splitting each
pixel index into (n, oh, ow) per value instead cost 861 instructions per thread
per K step of a 4x4 stride-2 layer's 64 x 64 tile on sm_90; this loop is 251 there,
and 295 for the 128 x 128 tile, which does four times the products.) Both
operands keep the pixels innermost, as the tensor cores need K to be for TF32:
gy's blocks are contiguous runs (16-byte copies), x's are gathered 4 bytes at a
time, since a tap shifts them off 16-byte alignment (and a stride spreads them).

wgrad reduces over all N*OH*OW pixels, and its result is small (O x C*kh*kw):
few tiles, a long K. The pixels are split into SPLIT chunks (one program each)
whose partial products land in a float32 buffer summed afterwards (split-K),
so a small layer still fills the GPU, and the sum is deterministic (no atomics).

Accumulation is float32 (float64 for float64 data). float32 products use TF32
tensor cores on the GPU, as torch's cuDNN convolutions do by default
(``MINIGAN_TF32=0`` for full float32); the interpreter computes in float32.

The reference is the NumPy op each replaces: ``Conv2dFunction``,
``Conv2dGradInput`` and ``Conv2dGradWeight`` in ``minigan.functional.conv``.

Typical shape: a 3x3 layer, x (16, 256, 32, 32) -> y (16, 256, 32, 32), stride 1, padding 1, float32.
    forward  reads x 16.8 MB + W 2.4 MB, writes y 16.8 MB:   36 MB, 19.3 GFLOP (2 N OH OW O C 9)
    dgrad    reads gy + W, writes gx:                          36 MB, 19.3 GFLOP
    wgrad    reads x + gy, writes gW (+ split-K partials):     36 MB, 19.3 GFLOP
    roofline on an H100 (~400 TFLOP/s dense TF32): ~0.05 ms each; compute-bound
    compiled for sm_90 (`python -m benchmarks.sass`; x (64, 256, 16, 16), 3x3; Triton 3.6 and 3.9 alike):
        forward and dgrad: 128 x 128 x 32 tiles, 8 warps, 96 KB of shared memory, ~120 registers;
        their K loop is ~225 instructions per thread per step: 4 HGMMA (per warpgroup) and
        8 16-byte async copies. wgrad (128 x 128 x 32 tiles, 8 warps): 188-214 per step (3.6-3.9),
        and 188-295 for a 4x4 stride-2 layer (x (64, 128, 32, 32)); 16 of them 4-byte gathers of x
    measured: not yet (no GPU where this was written): `python -m benchmarks.kernels` prints them
"""
import functools
import math
import os

import numpy as np
import triton
import triton.language as tl

from . import layout
from .bridge import cdiv, contiguous, launch, next_power_of_2, nonnegative_strides, xp_of

TARGET_PROGRAMS = 264  # about two waves on an H100's 132 SMs: what split-K aims for
WAVE = 132             # programs in one wave (an H100's SMs): the least count of big tiles worth using


@triton.jit
def conv2d_forward_kernel(x_ptr, w_ptr, bias_ptr, y_ptr,
                          N, H, W, OH, OW, CG, OG,
                          sxn, sxc, sxh, sxw, swo, swc, swh, sww, syn, syc, syh, syw,
                          KH, KW, SH, SW, PH, PW, DH, DW,
                          HAS_BIAS: tl.constexpr, ACC_FP64: tl.constexpr, PRECISION: tl.constexpr,
                          BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    pid_m, pid_n, g = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    acc_ty = tl.float64 if ACC_FP64 else tl.float32
    # rows: output pixels (n, oh, ow); columns: the output channels of group g
    pix = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    pix_ok = pix < N * OH * OW
    n, ohw = pix // (OH * OW), pix % (OH * OW)
    oh, ow = ohw // OW, ohw % OW
    o = g * OG + pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    o_ok = o < (g + 1) * OG
    x_rows = x_ptr + n.to(tl.int64) * sxn + g * CG * sxc
    top, left = oh * SH - PH, ow * SW - PW
    kk = tl.arange(0, BLOCK_K)
    steps = tl.cdiv(CG, BLOCK_K)  # blocks of input channels per filter tap
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=acc_ty)
    for t in range(0, KH * KW * steps):
        # step t: filter tap (i, j), input channels c of the group; only scalars are divided
        tap = t // steps
        c = (t - tap * steps) * BLOCK_K + kk
        i = tap // KW
        j = tap - i * KW
        ih, iw = top + i * DH, left + j * DW
        row_ok = pix_ok & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)  # outside is the zero padding
        c_ok = c < CG
        a = tl.load(x_rows[:, None] + (ih * sxh + iw * sxw)[:, None] + (c * sxc)[None, :],
                    mask=row_ok[:, None] & c_ok[None, :], other=0)
        b = tl.load(w_ptr + (c * swc + i * swh + j * sww)[:, None] + (o * swo)[None, :],
                    mask=c_ok[:, None] & o_ok[None, :], other=0)
        acc = tl.dot(a, b, acc, input_precision=PRECISION, out_dtype=acc_ty)
    if HAS_BIAS:
        acc += tl.load(bias_ptr + o, mask=o_ok, other=0).to(acc_ty)[None, :]
    y_rows = n.to(tl.int64) * syn + oh * syh + ow * syw
    tl.store(y_ptr + y_rows[:, None] + (o * syc)[None, :], acc.to(y_ptr.dtype.element_ty),
             mask=pix_ok[:, None] & o_ok[None, :])


@triton.jit
def conv2d_input_grad_kernel(gy_ptr, w_ptr, bias_ptr, gx_ptr,
                             N, OH, OW, CG, OG,
                             sgn, sgc, sgh, sgw, swo, swc, swh, sww, sxn, sxc, sxh, sxw,
                             H0, W0, TH, TW, SH, SW, OH0, OW0, I0, J0, TSH, TSW, TKH, TKW, DOH, DOW,
                             PW, PHASES, H0D, OH0D, I0D, W0D, OW0D, J0D,
                             HAS_BIAS: tl.constexpr, ACC_FP64: tl.constexpr, PRECISION: tl.constexpr,
                             BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    # one stride phase: pixels h = H0 + th*SH (th < TH), taps i = I0 + ti*TSH (ti < TKH),
    # and the output row each pair reads, oh = OH0 + th - ti*DOH (exact: no division here).
    # The grid's third axis is (group, phase): the PHASES phases of one launch (PW of them
    # across) differ only in where they start, H0 + ph*H0D and so on
    pid_m, pid_n, pid_z = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    g, phase = pid_z // PHASES, pid_z % PHASES
    ph, pw = phase // PW, phase % PW
    H0, OH0, I0 = H0 + ph * H0D, OH0 + ph * OH0D, I0 + ph * I0D
    W0, OW0, J0 = W0 + pw * W0D, OW0 + pw * OW0D, J0 + pw * J0D
    acc_ty = tl.float64 if ACC_FP64 else tl.float32
    pix = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    pix_ok = pix < N * TH * TW
    n, t = pix // (TH * TW), pix % (TH * TW)
    th, tw = t // TW, t % TW
    c_in_group = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)  # W's dim 1; the input channel is g CG + that
    c = g * CG + c_in_group
    c_ok = c_in_group < CG
    gy_rows = gy_ptr + n.to(tl.int64) * sgn + g * OG * sgc
    w_cols = w_ptr + g * OG * swo + c_in_group * swc
    kk = tl.arange(0, BLOCK_K)
    steps = tl.cdiv(OG, BLOCK_K)  # blocks of output channels per tap of the phase
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=acc_ty)
    for s in range(0, TKH * TKW * steps):
        # step s: the phase's tap (ti, tj), output channels o of the group
        tap = s // steps
        o = (s - tap * steps) * BLOCK_K + kk
        ti = tap // TKW
        tj = tap - ti * TKW
        oh, ow = OH0 + th - ti * DOH, OW0 + tw - tj * DOW
        row_ok = pix_ok & (oh >= 0) & (oh < OH) & (ow >= 0) & (ow < OW)
        o_ok = o < OG
        a = tl.load(gy_rows[:, None] + (oh * sgh + ow * sgw)[:, None] + (o * sgc)[None, :],
                    mask=row_ok[:, None] & o_ok[None, :], other=0)
        i, j = I0 + ti * TSH, J0 + tj * TSW
        b = tl.load(w_cols[None, :] + (o * swo + i * swh + j * sww)[:, None],
                    mask=o_ok[:, None] & c_ok[None, :], other=0)
        acc = tl.dot(a, b, acc, input_precision=PRECISION, out_dtype=acc_ty)
    if HAS_BIAS:
        acc += tl.load(bias_ptr + c, mask=c_ok, other=0).to(acc_ty)[None, :]
    x_rows = n.to(tl.int64) * sxn + (H0 + th * SH) * sxh + (W0 + tw * SW) * sxw
    tl.store(gx_ptr + x_rows[:, None] + (c * sxc)[None, :], acc.to(gx_ptr.dtype.element_ty),
             mask=pix_ok[:, None] & c_ok[None, :])


@triton.jit
def conv2d_weight_grad_kernel(x_ptr, gy_ptr, part_ptr,
                              N, C, O, CG, OG, SPLIT, CHUNK, C_BLOCKS,
                              KW, SH, SW, PH, PW, DH, DW,
                              H: tl.constexpr, W: tl.constexpr, OH: tl.constexpr, OW: tl.constexpr,
                              IMGS: tl.constexpr, ROWS: tl.constexpr, COLS: tl.constexpr,
                              ACC_FP64: tl.constexpr, PRECISION: tl.constexpr,
                              BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    # rows: output channels o; columns: input channels c at one filter tap (i, j);
    # K: this program's chunk of pixel blocks, each IMGS images x ROWS rows x COLS columns
    # of output pixels. x and gy are contiguous NCHW, their sizes compile-time constants.
    pid_m, pid_n, pid_z = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    g, split = pid_z // SPLIT, pid_z % SPLIT
    tap = pid_n // C_BLOCKS
    i = tap // KW
    j = tap - i * KW
    acc_ty = tl.float64 if ACC_FP64 else tl.float32
    o = g * OG + pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    o_ok = o < (g + 1) * OG
    c_in_group = (pid_n - tap * C_BLOCKS) * BLOCK_N + tl.arange(0, BLOCK_N)
    c_ok = c_in_group < CG
    gy_rows = gy_ptr + o.to(tl.int64) * (OH * OW)
    x_cols = x_ptr + (g * CG + c_in_group).to(tl.int64) * (H * W)
    # where a block's pixels lie from its corner (n0, oh0, ow0): the same for every block
    k = tl.arange(0, IMGS * ROWS * COLS)
    img, r, col = k // (ROWS * COLS), k // COLS % ROWS, k % COLS
    gy_offs = img * (O * OH * OW) + r * OW + col
    x_down, x_right = r * SH, col * SW  # rows and columns down/right of the block's receptive corner
    x_offs = img * (C * H * W) + x_down * W + x_right
    BLOCKS_DOWN: tl.constexpr = (OH + ROWS - 1) // ROWS
    BLOCKS_ACROSS: tl.constexpr = (OW + COLS - 1) // COLS
    start = split * CHUNK
    stop = tl.minimum(start + CHUNK, tl.cdiv(N, IMGS) * (BLOCKS_DOWN * BLOCKS_ACROSS))
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=acc_ty)
    for s in range(start, stop):
        # block s: its corner pixel, and that pixel's receptive-field corner at tap (i, j); scalars
        per_image = s % (BLOCKS_DOWN * BLOCKS_ACROSS)
        n0 = (s // (BLOCKS_DOWN * BLOCKS_ACROSS)) * IMGS
        oh0 = per_image // BLOCKS_ACROSS * ROWS
        ow0 = per_image % BLOCKS_ACROSS * COLS
        ih0, iw0 = oh0 * SH - PH + i * DH, ow0 * SW - PW + j * DW
        p_ok = img < N - n0
        if OH % ROWS != 0:  # the last blocks overhang the map
            p_ok &= r < OH - oh0
        if OW % COLS != 0:
            p_ok &= col < OW - ow0
        a = tl.load(gy_rows[:, None] + (n0.to(tl.int64) * (O * OH * OW) + oh0 * OW + ow0 + gy_offs)[None, :],
                    mask=o_ok[:, None] & p_ok[None, :], other=0)
        x_ok = p_ok & (x_down >= -ih0) & (x_down < H - ih0) & (x_right >= -iw0) & (x_right < W - iw0)
        b = tl.load(x_cols[None, :] + (n0.to(tl.int64) * (C * H * W) + ih0 * W + iw0 + x_offs)[:, None],
                    mask=x_ok[:, None] & c_ok[None, :], other=0)
        acc = tl.dot(a, b, acc, input_precision=PRECISION, out_dtype=acc_ty)
    # partial sums of chunk `split` go to part[split, o, c, i, j], part of shape (SPLIT, groups * OG, CG, KH, KW)
    taps = tl.num_programs(1) // C_BLOCKS
    row = split.to(tl.int64) * (tl.num_programs(2) // SPLIT) * OG + o
    out = part_ptr + row[:, None] * (CG * taps) + (c_in_group * taps + tap)[None, :]
    tl.store(out, acc, mask=o_ok[:, None] & c_ok[None, :])


# ---------------------------------------------------------------- launchers


def _precision(dtype):
    if dtype == np.float32 and os.environ.get("MINIGAN_TF32", "1") != "0":
        return "tf32"
    return "ieee"


def _block(size, lo=16, hi=64):
    return min(max(next_power_of_2(size), lo), hi)


def _blocks(dtype, m, n, k, groups=1, wave=None):
    """(BLOCK_M, BLOCK_N, BLOCK_K, warps) for an m x n result with inner dimension k.

    float32/float16: 128 x 128 x 32 tiles with 8 warps (two warpgroups of tensor-core
    instructions) where the problem has at least a wave of them (an H100 has 132 SMs),
    else 64 x 64 x 32 with 4. A bigger tile does more products per address computed
    and per byte read. float64: 32 x 32 x 16 (twice the bytes per value, no TF32 units).
    Every side is narrowed to a small problem's size, and kept >= 16 for tl.dot.
    """
    if dtype == np.float64:
        return _block(m, 16, 32), _block(n, 16, 32), _block(k, 16, 16), 4
    if cdiv(m, 128) * cdiv(n, 128) * groups >= (WAVE if wave is None else wave) and n > 64:
        return 128, 128, _block(k, 16, 32), 8
    return _block(m, 16, 64), _block(n, 16, 64), _block(k, 16, 32), 4


def _inner(a, axis):
    """``a`` with ``axis`` innermost in memory (stride 1), the same values and shape.

    A copy unless it already is: the kernels read their K dimension (channels)
    along it, which they then do in coalesced 16-byte pieces; that is worth one
    pass over the operand (activations NCHW -> NHWC, filters with C or O last).
    A contiguous ``a`` is seen as (outer, a.shape[axis], inner) and transposed by
    ``minigan.kernels.layout`` at a copy's traffic; another layout takes the array library's copy.
    """
    if a.size == 0 or a.shape[axis] == 1 or a.strides[axis] == a.itemsize:
        return a
    order, back = _axis_last_order(a.ndim, axis)
    if a.flags.c_contiguous and min(a.strides) >= 0:
        outer = math.prod(a.shape[:axis])
        moved = layout.move_axis_last(a.reshape(outer, a.shape[axis], a.size // (outer * a.shape[axis])))
        return moved.reshape([a.shape[d] for d in order]).transpose(back)
    return xp_of(a).ascontiguousarray(a.transpose(order)).transpose(back)


@functools.lru_cache(maxsize=None)
def _axis_last_order(ndim, axis):
    """The axes with ``axis`` moved last, and the permutation that moves it back."""
    order = tuple(d for d in range(ndim) if d != axis) + (axis,)
    return order, tuple(order.index(d) for d in range(ndim))


def _acc_dtype(dtype):
    return np.float64 if dtype == np.float64 else np.float32


def conv2d_forward(x, w, bias, geo, out_hw):
    """y = conv2d(x, W) + b on arrays: x (N, C, H, W), W (O, C/groups, kh, kw), any strides."""
    xp = xp_of(x)
    x, w = _inner(nonnegative_strides(x), 1), _inner(nonnegative_strides(w), 1)  # K = input channels
    grid, scalars, constexprs, warps = _forward_plan(x.shape, x.strides, w.shape, w.strides, x.dtype, geo,
                                                     tuple(out_hw), bias is not None, _precision(x.dtype), WAVE)
    y = xp.empty((x.shape[0], w.shape[0]) + tuple(out_hw), x.dtype)
    launch(conv2d_forward_kernel, grid,
           dict(x_ptr=x, w_ptr=w, bias_ptr=w if bias is None else bias, y_ptr=y, **scalars),
           constexprs, num_warps=warps)
    return y


@functools.lru_cache(maxsize=4096)
def _forward_plan(x_shape, x_strides, w_shape, w_strides, dtype, geo, out_hw, has_bias, precision, wave):
    """(grid, run-time scalars, compile-time arguments, warps) of a forward launch: they depend on
    the layouts alone, so they are worked out once per layer and kept (y is contiguous NCHW)."""
    n, _, h, wd = x_shape
    o, cg, kh, kw = w_shape
    g = geo.groups
    og = o // g
    oh, ow = out_hw
    item = dtype.itemsize
    bm, bn, bk, warps = _blocks(dtype, n * oh * ow, og, cg, g, wave)
    scalars = dict(N=n, H=h, W=wd, OH=oh, OW=ow, CG=cg, OG=og,
                   **_named("sx", _elements(x_strides, item)), **_named("sw", _elements(w_strides, item), "ochw"),
                   **_named("sy", (o * oh * ow, oh * ow, ow, 1)),
                   KH=kh, KW=kw, SH=geo.stride[0], SW=geo.stride[1], PH=geo.pads[0], PW=geo.pads[2],
                   DH=geo.dilation[0], DW=geo.dilation[1])
    constexprs = dict(HAS_BIAS=has_bias, ACC_FP64=dtype == np.float64, PRECISION=precision,
                      BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk)
    return (cdiv(n * oh * ow, bm), cdiv(og, bn), g), scalars, constexprs, warps


def _elements(strides, itemsize):
    """Strides in elements (NumPy and CuPy give bytes)."""
    return [s // itemsize for s in strides]


def _named(prefix, strides, axes="nchw"):
    return {prefix + a: s for a, s in zip(axes, strides)}


def _phases(size, stride, pad, dilation, kernel):
    """For each stride phase r of one dim: (first pixel, pixel count, first tap, tap step,
    tap count, output index of the first pixel at the first tap, output step per tap)."""
    step = stride // math.gcd(stride, dilation)
    phases = []
    for r in range(stride):
        first = (r - pad) % stride  # the first pixel h >= 0 with (h + pad) mod stride = r
        count = cdiv(size - first, stride) if first < size else 0
        taps = [i for i in range(kernel) if (i * dilation - r) % stride == 0]
        i0 = taps[0] if taps else 0
        phases.append((first, count, i0, step, len(taps),
                       (first + pad - i0 * dilation) // stride, step * dilation // stride))
    return phases


def conv2d_input_grad(w, gy, bias, geo, x_shape):
    """gx = dgrad(W, gy) (+ b): the input gradient of a convolution of an input of shape ``x_shape``."""
    xp = xp_of(gy)
    w, gy = _inner(nonnegative_strides(w), 0), _inner(nonnegative_strides(gy), 1)  # K = output channels
    gx = xp.empty(tuple(x_shape), gy.dtype)
    pointers = dict(gy_ptr=gy, w_ptr=w, bias_ptr=w if bias is None else bias, gx_ptr=gx)
    for grid, scalars, constexprs, warps in _input_grad_plan(w.shape, w.strides, gy.shape, gy.strides, gy.dtype,
                                                             geo, tuple(x_shape), bias is not None,
                                                             _precision(gy.dtype), WAVE):
        launch(conv2d_input_grad_kernel, grid, dict(pointers, **scalars), constexprs, num_warps=warps)
    return gx


@functools.lru_cache(maxsize=4096)
def _input_grad_plan(w_shape, w_strides, gy_shape, gy_strides, dtype, geo, x_shape, has_bias, precision, wave):
    """The launches of a dgrad, each (grid, run-time scalars, compile-time arguments, warps):
    they depend on the layouts alone, so they are worked out once per layer and kept."""
    n, c, h, wd = x_shape
    o, cg, kh, kw = w_shape
    g = geo.groups
    og = o // g
    oh, ow = gy_shape[2:]
    item = dtype.itemsize
    sh, sw = geo.stride
    dh, dw = geo.dilation
    common = dict(N=n, OH=oh, OW=ow, CG=cg, OG=og,
                  **_named("sg", _elements(gy_strides, item)), **_named("sw", _elements(w_strides, item), "ochw"),
                  **_named("sx", (c * h * wd, h * wd, wd, 1)))
    launches = []
    for rows in _launch_groups(_phases(h, sh, geo.pads[0], dh, kh)):
        for cols in _launch_groups(_phases(wd, sw, geo.pads[2], dw, kw)):
            (h0, th, i0, tsh, tkh, oh0, doh), (w0, tw, j0, tsw, tkw, ow0, dow) = rows[0], cols[0]
            # tiles sized per phase: 128 x 128 ones for the stride-2 kernel take 150 (Triton 3.9) to
            # 219 (3.6) registers a thread on sm_90, one program per SM; 64 x 64 ones, ~100
            bm, bn, bk, warps = _blocks(dtype, n * th * tw, cg, og, g, wave)
            scalars = dict(common, H0=h0, W0=w0, TH=th, TW=tw, SH=sh, SW=sw, OH0=oh0, OW0=ow0,
                           I0=i0, J0=j0, TSH=tsh, TSW=tsw, TKH=tkh, TKW=tkw, DOH=doh, DOW=dow,
                           PW=len(cols), PHASES=len(rows) * len(cols), **_phase_steps(rows, "H0", "OH0", "I0"),
                           **_phase_steps(cols, "W0", "OW0", "J0"))
            constexprs = dict(HAS_BIAS=has_bias, ACC_FP64=dtype == np.float64, PRECISION=precision,
                              BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk)
            launches.append(((cdiv(n * th * tw, bm), cdiv(cg, bn), g * len(rows) * len(cols)),
                             scalars, constexprs, warps))
    return tuple(launches)


def _launch_groups(phases):
    """The stride phases of one dim, grouped into launches: two phases whose pixel and tap
    counts agree (stride 2, an even map, an even kernel: DCGAN's layers) share one, as two
    planes of the grid; any others take one each."""
    def shape(phase):  # what the phases of a launch share: pixels, tap step, taps, output step per tap
        _, pixels, _, tap_step, taps, _, out_step = phase
        return pixels, tap_step, taps, out_step

    if len(phases) == 2 and shape(phases[0]) == shape(phases[1]):
        return [phases]
    return [[phase] for phase in phases]


def _phase_steps(group, first, out, tap):
    """How the second phase of a launch starts from the first (its ``first``, ``out`` and ``tap``
    offsets), as the kernel's ``...D`` arguments; 0 for a launch of one phase."""
    (h0, _, i0, _, _, oh0, _), (h1, _, i1, _, _, oh1, _) = group[0], group[-1]
    return {first + "D": h1 - h0, out + "D": oh1 - oh0, tap + "D": i1 - i0}


def _weight_grad_blocks(dtype, og, cg):
    """(BLOCK_M, BLOCK_N, BLOCK_K, warps) for wgrad's og x cg result per tap.

    Its long K (every pixel) is split over programs anyway (split-K), so the tile
    needs no wave of its own: 128 rows and/or columns wherever the channels fill
    them (8 warps when both do), which halves the index work per product against
    64 x 64 (sm_90, 4x4 stride 2: ~1.96 issue slots per tensor-core cycle at 64 x 64,
    ~1.15 at 128 x 128; see ``python -m benchmarks.sass``).
    """
    if dtype == np.float64:
        return _blocks(dtype, og, cg, 16)
    bm, bn = (128 if size >= 128 else _block(size, 16, 64) for size in (og, cg))
    return bm, bn, 32, 8 if bm == bn == 128 else 4


def _pixel_block(n, oh, ow, size):
    """(images, rows, columns) of wgrad's K step: ``size`` output pixels, powers of 2, a row's
    columns first, then rows, then images, so that a small map still fills a step."""
    cols = min(next_power_of_2(ow), size)
    rows = min(next_power_of_2(oh), size // cols)
    return size // (cols * rows), rows, cols


def conv2d_weight_grad(x, gy, geo, w_shape):
    """gW = wgrad(x, gy): the weight gradient of a convolution with weights of shape ``w_shape``."""
    xp = xp_of(x)
    x, gy = contiguous(x), contiguous(gy)
    n, c, h, wd = x.shape
    o, cg, kh, kw = w_shape
    g = geo.groups
    og = o // g
    oh, ow = gy.shape[2:]
    if n * oh * ow == 0:
        return xp.zeros(w_shape, x.dtype)
    bm, bn, bk, warps = _weight_grad_blocks(x.dtype, og, cg)
    imgs, rows, cols = _pixel_block(n, oh, ow, bk)
    steps = cdiv(n, imgs) * cdiv(oh, rows) * cdiv(ow, cols)
    c_blocks = cdiv(cg, bn)
    tiles = cdiv(og, bm) * c_blocks * kh * kw * g
    split = max(1, min(TARGET_PROGRAMS // tiles, cdiv(steps, 8)))  # each chunk >= 8 K steps
    chunk = cdiv(steps, split)
    split = cdiv(steps, chunk)
    part = xp.empty((split, o, cg * kh * kw), _acc_dtype(x.dtype))
    launch(conv2d_weight_grad_kernel, (cdiv(og, bm), c_blocks * kh * kw, g * split),
           dict(x_ptr=x, gy_ptr=gy, part_ptr=part, N=n, C=c, O=o, CG=cg, OG=og,
                SPLIT=split, CHUNK=chunk, C_BLOCKS=c_blocks,
                KW=kw, SH=geo.stride[0], SW=geo.stride[1], PH=geo.pads[0], PW=geo.pads[2],
                DH=geo.dilation[0], DW=geo.dilation[1]),
           dict(H=h, W=wd, OH=oh, OW=ow, IMGS=imgs, ROWS=rows, COLS=cols, ACC_FP64=x.dtype == np.float64,
                PRECISION=_precision(x.dtype), BLOCK_M=bm, BLOCK_N=bn), num_warps=warps)
    gw = part[0] if split == 1 else part.sum(axis=0)
    return gw.reshape(w_shape).astype(x.dtype, copy=False)
