"""Instance norm and AdaIN, forward and backward: one kernel family over the rows (sample, channel).

Both normalize each row x = x[n, c, :] (the S spatial values of one sample's
channel) and then scale and shift it; they differ only in where the scale and
shift come from:

    x_hat = (x - mean) * rstd,   rstd = 1 / sqrt(var + eps)       (biased variance)
    y     = x_hat * scale[n, c] + shift[n, c]

    instance_norm   scale, shift = weight[c], bias[c]   (strides (0, 1); absent = 1, 0)
    adain           scale, shift = y_s[n, c], y_b[n, c] (the style, per sample and channel)

The statistics are kept in float32 (float64 for float64 data). A row that fits
in one block (S <= ONE_TILE_MAX) is read once: mean, then the variance of the
centered values in registers (two passes over registers, not memory), then y.
A longer row is read twice: first its statistics tile by tile, each tile's mean
and sum of squared deviations merged into the running ones (Chan et al.'s
parallel form of Welford's update, which never subtracts two large sums), then y.
Short rows share a program, ROWS of them to a tile of TILE values (an 8x8 map:
32 rows of 64), so a StyleGAN layer at 4x4 or 8x8 keeps its threads busy.

The backward is the closed form (g = gy * scale):

    gx = rstd * (g - mean(g) - x_hat * mean(g * x_hat))
    g_scale[n, c] = sum(gy * x_hat),  g_shift[n, c] = sum(gy)

The kernel writes gx and the two per-row sums; instance norm sums them over n.

The reference is the NumPy op each replaces: ``instance_norm`` and ``adain`` in
``minigan.functional.normalization`` (mean, centered variance, then the affine).

Typical shape: a StyleGAN / CycleGAN feature map, x (16, 256, 64, 64) float32 (16.8 M values).
    forward   reads x once (S = 4096 fits one tile), writes y:  134 MB, 0.08 GFLOP
    backward  reads x and gy once, writes gx:                   201 MB, 0.13 GFLOP
    roofline on an H100 (3.35 TB/s): forward 0.04 ms, backward 0.06 ms
    measured: not yet (no GPU where this was written): `python -m benchmarks.kernels` prints them
"""
import numpy as np
import triton
import triton.language as tl

from .bridge import cdiv, contiguous, launch, next_power_of_2, nonnegative_strides, xp_of

ONE_TILE_MAX = 8192  # the longest row kept in registers whole
TILE = 2048          # the tile of a longer row; the values a program of short rows holds


@triton.jit
def _rows_of(NC, C, ROWS: tl.constexpr):
    """This program's rows (n, c) of the (N*C, S) matrix: their index, whether real, n and c."""
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    return rows, rows < NC, rows // C, rows % C


@triton.jit
def norm_forward_kernel(x_ptr, scale_ptr, shift_ptr, y_ptr, mean_ptr, var_ptr,
                        NC, C, S, scale_sn, scale_sc, shift_sn, shift_sc,
                        EPS: tl.constexpr, HAS_SCALE: tl.constexpr, HAS_SHIFT: tl.constexpr,
                        STATS_FP64: tl.constexpr, ONE_TILE: tl.constexpr,
                        ROWS: tl.constexpr, BLOCK: tl.constexpr):
    rows, row_ok, n, c = _rows_of(NC, C, ROWS)
    starts = (rows.to(tl.int64) * S)[:, None]  # rows are contiguous: row (n, c) starts at (n C + c) S
    stat_ty = tl.float64 if STATS_FP64 else tl.float32
    offs = tl.arange(0, BLOCK)[None, :]
    if ONE_TILE:  # whole rows in registers: read them once
        mask = row_ok[:, None] & (offs < S)
        x = tl.load(x_ptr + starts + offs, mask=mask, other=0).to(stat_ty)
        mean = tl.sum(x, 1) / S
        centered = tl.where(mask, x - mean[:, None], 0)
        var = tl.sum(centered * centered, 1) / S
    else:  # tile by tile, merging (count, mean, M2) as Chan et al.
        mean = tl.zeros([ROWS], dtype=stat_ty)
        m2 = tl.zeros([ROWS], dtype=stat_ty)
        for t in range(0, S, BLOCK):
            mask = row_ok[:, None] & (t + offs < S)
            x = tl.load(x_ptr + starts + t + offs, mask=mask, other=0).to(stat_ty)
            count = tl.cast(tl.minimum(S - t, BLOCK), stat_ty)
            tile_mean = tl.sum(x, 1) / count
            d = tl.where(mask, x - tile_mean[:, None], 0)
            delta = tile_mean - mean
            seen = tl.cast(t, stat_ty)
            mean += delta * count / (seen + count)
            m2 += tl.sum(d * d, 1) + delta * delta * seen * count / (seen + count)
        var = m2 / S
    rstd = 1 / tl.sqrt(var + EPS)
    scale = rstd
    if HAS_SCALE:
        scale = rstd * tl.load(scale_ptr + n * scale_sn + c * scale_sc, mask=row_ok, other=0).to(stat_ty)
    shift = tl.zeros([ROWS, 1], dtype=stat_ty)
    if HAS_SHIFT:
        shift = tl.load(shift_ptr + n * shift_sn + c * shift_sc, mask=row_ok, other=0).to(stat_ty)[:, None]
    tl.store(mean_ptr + rows, mean, mask=row_ok)
    tl.store(var_ptr + rows, var, mask=row_ok)
    if ONE_TILE:
        y = centered * scale[:, None]
        if HAS_SHIFT:
            y += shift
        tl.store(y_ptr + starts + offs, y.to(y_ptr.dtype.element_ty), mask=mask)
    else:
        for t in range(0, S, BLOCK):
            mask = row_ok[:, None] & (t + offs < S)
            x = tl.load(x_ptr + starts + t + offs, mask=mask, other=0).to(stat_ty)
            y = (x - mean[:, None]) * scale[:, None]
            if HAS_SHIFT:
                y += shift
            tl.store(y_ptr + starts + t + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def norm_backward_kernel(x_ptr, gy_ptr, scale_ptr, mean_ptr, var_ptr, gx_ptr, gscale_ptr, gshift_ptr,
                         NC, C, S, scale_sn, scale_sc,
                         EPS: tl.constexpr, HAS_SCALE: tl.constexpr,
                         STATS_FP64: tl.constexpr, ONE_TILE: tl.constexpr,
                         ROWS: tl.constexpr, BLOCK: tl.constexpr):
    rows, row_ok, n, c = _rows_of(NC, C, ROWS)
    starts = (rows.to(tl.int64) * S)[:, None]
    stat_ty = tl.float64 if STATS_FP64 else tl.float32
    mean = tl.load(mean_ptr + rows, mask=row_ok, other=0)[:, None]
    rstd = 1 / tl.sqrt(tl.load(var_ptr + rows, mask=row_ok, other=1)[:, None] + EPS)
    offs = tl.arange(0, BLOCK)[None, :]
    if ONE_TILE:
        mask = row_ok[:, None] & (offs < S)
        x = tl.load(x_ptr + starts + offs, mask=mask, other=0).to(stat_ty)
        x_hat = tl.where(mask, (x - mean) * rstd, 0)
        gy = tl.load(gy_ptr + starts + offs, mask=mask, other=0).to(stat_ty)
        sum_gy = tl.sum(gy, 1)
        sum_gy_xhat = tl.sum(gy * x_hat, 1)
    else:  # sums per lane, tile by tile, then across the lanes once
        lanes_gy = tl.zeros([ROWS, BLOCK], dtype=stat_ty)
        lanes_gy_xhat = tl.zeros([ROWS, BLOCK], dtype=stat_ty)
        for t in range(0, S, BLOCK):
            mask = row_ok[:, None] & (t + offs < S)
            x = tl.load(x_ptr + starts + t + offs, mask=mask, other=0).to(stat_ty)
            g = tl.load(gy_ptr + starts + t + offs, mask=mask, other=0).to(stat_ty)
            lanes_gy += g
            lanes_gy_xhat += g * tl.where(mask, (x - mean) * rstd, 0)
        sum_gy = tl.sum(lanes_gy, 1)
        sum_gy_xhat = tl.sum(lanes_gy_xhat, 1)
    tl.store(gshift_ptr + rows, sum_gy, mask=row_ok)
    tl.store(gscale_ptr + rows, sum_gy_xhat, mask=row_ok)
    factor = rstd
    if HAS_SCALE:
        factor = rstd * tl.load(scale_ptr + n * scale_sn + c * scale_sc, mask=row_ok, other=0).to(stat_ty)[:, None]
    mean_gy = (sum_gy / S)[:, None]
    mean_gy_xhat = (sum_gy_xhat / S)[:, None]
    if ONE_TILE:
        gx = factor * (gy - mean_gy - x_hat * mean_gy_xhat)
        tl.store(gx_ptr + starts + offs, gx.to(gx_ptr.dtype.element_ty), mask=mask)
    else:
        for t in range(0, S, BLOCK):
            mask = row_ok[:, None] & (t + offs < S)
            x = tl.load(x_ptr + starts + t + offs, mask=mask, other=0).to(stat_ty)
            g = tl.load(gy_ptr + starts + t + offs, mask=mask, other=0).to(stat_ty)
            gx = factor * (g - mean_gy - (x - mean) * rstd * mean_gy_xhat)
            tl.store(gx_ptr + starts + t + offs, gx.to(gx_ptr.dtype.element_ty), mask=mask)


def _strides(param):
    """Element strides (per sample, per channel) of a (C,) or (N, C) scale/shift; (0, 0) if absent."""
    if param is None:
        return 0, 0
    if param.ndim == 1:
        return 0, param.strides[0] // param.itemsize
    return tuple(s // param.itemsize for s in param.strides)


def _config(x):
    """n, c, S, one tile?, rows per program, block, statistics dtype, warps."""
    n, c = x.shape[:2]
    s = x.size // max(n * c, 1)
    one_tile = s <= ONE_TILE_MAX
    block = next_power_of_2(s) if one_tile else TILE
    rows = max(1, TILE // block)  # short rows (a 4x4 or 8x8 map) share a program: TILE values a program
    stats = np.float64 if x.dtype == np.float64 else np.float32
    warps = 4 if rows * block * x.itemsize <= 8192 else 8  # (float64 tiles take twice the registers)
    return n, c, s, one_tile, rows, block, stats, warps


def norm_forward(x, scale, shift, eps):
    """y, mean, var for rows x[n, c, ...]; scale/shift (C,) or (N, C) or None.

    mean and var are (N, C) arrays in the statistics' dtype (float32, float64 for float64 x).
    """
    xp = xp_of(x)
    x = contiguous(x)
    scale, shift = (None if p is None else nonnegative_strides(p) for p in (scale, shift))
    n, c, s, one_tile, rows, block, stats, warps = _config(x)
    y = xp.empty_like(x)
    mean, var = xp.empty((n, c), stats), xp.empty((n, c), stats)
    (ssn, ssc), (bsn, bsc) = _strides(scale), _strides(shift)
    launch(norm_forward_kernel, (cdiv(n * c, rows),),
           dict(x_ptr=x, scale_ptr=x if scale is None else scale, shift_ptr=x if shift is None else shift,
                y_ptr=y, mean_ptr=mean, var_ptr=var, NC=n * c, C=c, S=s,
                scale_sn=ssn, scale_sc=ssc, shift_sn=bsn, shift_sc=bsc),
           dict(EPS=float(eps), HAS_SCALE=scale is not None, HAS_SHIFT=shift is not None,
                STATS_FP64=stats is np.float64, ONE_TILE=one_tile, ROWS=rows, BLOCK=block), num_warps=warps)
    return y, mean, var


def norm_backward(x, gy, scale, mean, var, eps):
    """gx, sum(gy * x_hat) and sum(gy) per row ((N, C), in the statistics' dtype)."""
    xp = xp_of(x)
    x, gy = contiguous(x), contiguous(gy)
    scale = None if scale is None else nonnegative_strides(scale)
    n, c, s, one_tile, rows, block, stats, warps = _config(x)
    gx = xp.empty_like(x)
    gscale, gshift = xp.empty((n, c), stats), xp.empty((n, c), stats)
    ssn, ssc = _strides(scale)
    launch(norm_backward_kernel, (cdiv(n * c, rows),),
           dict(x_ptr=x, gy_ptr=gy, scale_ptr=x if scale is None else scale, mean_ptr=mean,
                var_ptr=var, gx_ptr=gx, gscale_ptr=gscale, gshift_ptr=gshift, NC=n * c, C=c, S=s,
                scale_sn=ssn, scale_sc=ssc),
           dict(EPS=float(eps), HAS_SCALE=scale is not None, STATS_FP64=stats is np.float64,
                ONE_TILE=one_tile, ROWS=rows, BLOCK=block), num_warps=warps)
    return gx, gscale, gshift
