"""Batch norm in training, forward and backward: statistics per channel over the batch and the map.

    x_hat = (x - mean[c]) * rstd[c],   rstd = 1 / sqrt(var + eps)   (biased variance over N*S values)
    y     = x_hat * weight[c] + bias[c]
    gx    = weight[c] * rstd[c] * (gy - (g_bias[c] + x_hat * g_weight[c]) / (N*S))
    g_weight[c] = sum(gy * x_hat),   g_bias[c] = sum(gy)               (sums over n and the map)

``norm.py``'s rows are one sample's channel; here a channel's values are N rows
x[n, c, :], one per sample, spread through memory. A program per channel would
leave most of the GPU idle on a DCGAN layer (64 channels), so each pass is split:

    forward   1. statistics: a program per (channel, chunk of samples) reads its
                 rows tile by tile, merging each tile's mean and sum of squared
                 deviations into its running ones (Chan et al., as norm.py);
              2. apply: y over tiles of the (N*C, S) matrix. Each row first merges
                 its channel's chunks' (mean, M2) into the mean and variance (the
                 same formula, over the chunks at once: a few loads a row); the
                 one program holding channel c's row of sample 0 at the first
                 columns also stores them, and moves the running statistics.
    backward  1. sums: per (channel, chunk), sum(gy) and sum(gy * x_hat), per lane
                 then across the lanes;
              2. apply: gx over tiles of the (N*C, S) matrix, each row adding up
                 its channel's chunks' sums first (stored by one program, as forward).

Two reads and a write of the data forward, the same backward: what the array
path (``BatchNormTraining`` in ``minigan.functional.normalization``, the
reference) reads and writes in about a dozen array operations each way, which
on the GPU are as many kernel launches; here two launches forward, two back
(merging the chunks in a launch of its own, or summing them with the array
library, cost a launch more each way, on layers whose passes are a few
microseconds each).
Statistics in float32 (float64 for float64 data), as there.

Typical shape: a DCGAN generator layer, x (64, 128, 16, 16) float32 (2.1 M values, 8.4 MB).
    forward   reads x twice, writes y:         25 MB,  ~5 flops a value
    backward  reads x and gy twice, writes gx: 42 MB,  ~8 flops a value
    roofline on an H100 (3.35 TB/s): forward 0.008 ms, backward 0.013 ms (small: launches matter)
    measured: not yet (no GPU where this was written)
"""
import numpy as np
import triton
import triton.language as tl

from .bridge import cdiv, contiguous, launch, next_power_of_2, xp_of

TILE = 2048          # values per program
TARGET_PROGRAMS = 528  # about four per SM of an H100 (132): what the chunks of samples aim for
MERGED = 1024          # most chunk statistics an apply program reads (rows x chunks, a power of 2)


@triton.jit
def _channel_tile(c, n0, s0, n_stop, C, S, ROWS: tl.constexpr, BLOCK: tl.constexpr):
    """Offsets and mask of the ROWS x BLOCK tile of channel c at samples n0.., positions s0.."""
    n = n0 + tl.arange(0, ROWS)[:, None]
    s = s0 + tl.arange(0, BLOCK)[None, :]
    return (n.to(tl.int64) * C + c) * S + s, (n < n_stop) & (s < S)


@triton.jit
def batch_norm_stats_kernel(x_ptr, mean_part_ptr, m2_part_ptr, N, C, S, CHUNK,
                            STATS_FP64: tl.constexpr, ROWS: tl.constexpr, BLOCK: tl.constexpr):
    # program (c, k): channel c over samples [k CHUNK, (k + 1) CHUNK); writes that chunk's mean and M2
    c, k = tl.program_id(0), tl.program_id(1)
    stat_ty = tl.float64 if STATS_FP64 else tl.float32
    n_first = k * CHUNK
    n_stop = tl.minimum(n_first + CHUNK, N)
    mean = tl.zeros([], dtype=stat_ty)
    m2 = tl.zeros([], dtype=stat_ty)
    seen = tl.zeros([], dtype=stat_ty)
    for n0 in range(n_first, n_stop, ROWS):
        for s0 in range(0, S, BLOCK):
            offs, mask = _channel_tile(c, n0, s0, n_stop, C, S, ROWS, BLOCK)
            x = tl.load(x_ptr + offs, mask=mask, other=0).to(stat_ty)
            count = tl.cast(tl.minimum(n_stop - n0, ROWS) * tl.minimum(S - s0, BLOCK), stat_ty)
            tile_mean = tl.sum(x) / count
            d = tl.where(mask, x - tile_mean, 0)
            delta = tile_mean - mean
            total = seen + count
            mean += delta * count / total
            m2 += tl.sum(d * d) + delta * delta * seen * count / total
            seen = total
    tl.store(mean_part_ptr + k * C + c, mean)
    tl.store(m2_part_ptr + k * C + c, m2)


@triton.jit
def _merged_stats(mean_part_ptr, m2_part_ptr, c, ok, N, C, S, SPLIT, CHUNK,
                  STATS_FP64: tl.constexpr, SPLIT_POW2: tl.constexpr):
    """Mean and variance of the channels c (ok: which rows exist), merged from their chunks'
    (mean, M2) (Chan et al., all chunks at once, in chunk order)."""
    stat_ty = tl.float64 if STATS_FP64 else tl.float32
    k = tl.arange(0, SPLIT_POW2)[None, :]
    mask = ok[:, None] & (k < SPLIT)
    count = tl.where(mask, tl.minimum(N - k * CHUNK, CHUNK) * S, 0).to(stat_ty)
    means = tl.load(mean_part_ptr + k * C + c[:, None], mask=mask, other=0)
    m2s = tl.load(m2_part_ptr + k * C + c[:, None], mask=mask, other=0)
    total = tl.cast(N * S, stat_ty)
    mean = tl.sum(count * means, 1) / total
    deviation = means - mean[:, None]
    return mean, tl.sum(m2s + count * deviation * deviation, 1) / total


@triton.jit
def _rows_tile(rows, S, ROWS: tl.constexpr, COLS: tl.constexpr):
    """This program's tile of the (rows, S) matrix x[n, c, :]: its row indices, offsets and mask."""
    col_blocks = tl.cdiv(S, COLS)
    pid = tl.program_id(0)
    row = (pid // col_blocks) * ROWS + tl.arange(0, ROWS)
    col = (pid % col_blocks) * COLS + tl.arange(0, COLS)
    return row, row.to(tl.int64)[:, None] * S + col[None, :], (row < rows)[:, None] & (col < S)[None, :]


@triton.jit
def _channel_scale(w_ptr, mean_ptr, var_ptr, c, ok, EPS: tl.constexpr, HAS_WEIGHT: tl.constexpr):
    """Per row of channel c: its mean, rstd, and weight * rstd (columns, to broadcast over a tile)."""
    mean = tl.load(mean_ptr + c, mask=ok, other=0)
    rstd = 1 / tl.sqrt(tl.load(var_ptr + c, mask=ok, other=1) + EPS)
    scale = rstd
    if HAS_WEIGHT:
        scale = rstd * tl.load(w_ptr + c, mask=ok, other=0).to(rstd.dtype)
    return mean[:, None], rstd[:, None], scale[:, None]


@triton.jit
def batch_norm_apply_kernel(x_ptr, w_ptr, b_ptr, mean_part_ptr, m2_part_ptr, mean_ptr, var_ptr,
                            running_mean_ptr, running_var_ptr, y_ptr, N, C, S, SPLIT, CHUNK,
                            keep, momentum, unbiased,
                            EPS: tl.constexpr, HAS_WEIGHT: tl.constexpr, HAS_BIAS: tl.constexpr,
                            STATS_FP64: tl.constexpr, RUNNING: tl.constexpr, SPLIT_POW2: tl.constexpr,
                            ROWS: tl.constexpr, COLS: tl.constexpr):
    # each row's channel statistics merged from the chunks' (a few loads a row), then y; the
    # programs holding sample 0's rows at the first columns also store the statistics, and
    # with RUNNING move the running ones towards them in place (the variance's unbiased form)
    row, offs, mask = _rows_tile(N * C, S, ROWS, COLS)
    c = row % C
    ok = row < N * C
    mean, var = _merged_stats(mean_part_ptr, m2_part_ptr, c, ok, N, C, S, SPLIT, CHUNK, STATS_FP64, SPLIT_POW2)
    if tl.program_id(0) % tl.cdiv(S, COLS) == 0:  # the first columns: rows c < C store channel c's
        first = row < C
        tl.store(mean_ptr + c, mean, mask=first)
        tl.store(var_ptr + c, var, mask=first)
        if RUNNING:  # stat <- stat * (1 - momentum) + new * momentum, as the array path computes it
            old_mean = tl.load(running_mean_ptr + c, mask=first)
            old_var = tl.load(running_var_ptr + c, mask=first)
            tl.store(running_mean_ptr + c, old_mean * keep + mean * momentum, mask=first)
            tl.store(running_var_ptr + c, old_var * keep + var * unbiased * momentum, mask=first)
    scale = 1 / tl.sqrt(var + EPS)
    if HAS_WEIGHT:
        scale = scale * tl.load(w_ptr + c, mask=ok, other=0).to(scale.dtype)
    x = tl.load(x_ptr + offs, mask=mask, other=0).to(mean.dtype)
    y = (x - mean[:, None]) * scale[:, None]
    if HAS_BIAS:
        y += tl.load(b_ptr + c, mask=ok, other=0).to(mean.dtype)[:, None]
    tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def batch_norm_grad_sums_kernel(x_ptr, gy_ptr, mean_ptr, var_ptr, part_ptr, N, C, S, CHUNK, SPLIT,
                                EPS: tl.constexpr, ROWS: tl.constexpr, BLOCK: tl.constexpr):
    # program (c, k): sum(gy) and sum(gy * x_hat) of channel c over its chunk of samples,
    # into part[0, k, c] and part[1, k, c]
    c, k = tl.program_id(0), tl.program_id(1)
    mean = tl.load(mean_ptr + c)
    rstd = 1 / tl.sqrt(tl.load(var_ptr + c) + EPS)
    n_first = k * CHUNK
    n_stop = tl.minimum(n_first + CHUNK, N)
    lanes_gy = tl.zeros([ROWS, BLOCK], dtype=mean.dtype)
    lanes_gy_xhat = tl.zeros([ROWS, BLOCK], dtype=mean.dtype)
    for n0 in range(n_first, n_stop, ROWS):
        for s0 in range(0, S, BLOCK):
            offs, mask = _channel_tile(c, n0, s0, n_stop, C, S, ROWS, BLOCK)
            x = tl.load(x_ptr + offs, mask=mask, other=0).to(mean.dtype)
            g = tl.load(gy_ptr + offs, mask=mask, other=0).to(mean.dtype)
            lanes_gy += g
            lanes_gy_xhat += g * tl.where(mask, (x - mean) * rstd, 0)
    tl.store(part_ptr + k * C + c, tl.sum(lanes_gy))
    tl.store(part_ptr + (SPLIT + k) * C + c, tl.sum(lanes_gy_xhat))


@triton.jit
def batch_norm_grad_apply_kernel(x_ptr, gy_ptr, w_ptr, mean_ptr, var_ptr, part_ptr, g_bias_ptr, g_weight_ptr,
                                 gx_ptr, N, C, S, SPLIT,
                                 EPS: tl.constexpr, HAS_WEIGHT: tl.constexpr, SPLIT_POW2: tl.constexpr,
                                 ROWS: tl.constexpr, COLS: tl.constexpr):
    # each row's channel sums added up from the chunks' (in chunk order), then gx; the programs
    # holding sample 0's rows at the first columns also store the sums (the affine's gradients)
    row, offs, mask = _rows_tile(N * C, S, ROWS, COLS)
    c = row % C
    ok = row < N * C
    k = tl.arange(0, SPLIT_POW2)[None, :]
    chunks = ok[:, None] & (k < SPLIT)
    g_bias = tl.sum(tl.load(part_ptr + k * C + c[:, None], mask=chunks, other=0), 1)
    g_weight = tl.sum(tl.load(part_ptr + (SPLIT + k) * C + c[:, None], mask=chunks, other=0), 1)
    if tl.program_id(0) % tl.cdiv(S, COLS) == 0:  # the first columns: rows c < C store channel c's
        tl.store(g_bias_ptr + c, g_bias, mask=row < C)
        tl.store(g_weight_ptr + c, g_weight, mask=row < C)
    mean, rstd, scale = _channel_scale(w_ptr, mean_ptr, var_ptr, c, ok, EPS, HAS_WEIGHT)
    count = tl.cast(N * S, mean.dtype)
    x = tl.load(x_ptr + offs, mask=mask, other=0).to(mean.dtype)
    gy = tl.load(gy_ptr + offs, mask=mask, other=0).to(mean.dtype)
    gx = (gy - ((x - mean) * rstd * (g_weight / count)[:, None] + (g_bias / count)[:, None])) * scale
    tl.store(gx_ptr + offs, gx.to(gx_ptr.dtype.element_ty), mask=mask)


# ---------------------------------------------------------------- launchers


def _layout(x):
    """n, c, S, the statistics' dtype, and the chunking of the samples: (split, chunk)."""
    n, c = x.shape[:2]
    s = x.size // (n * c)
    stats = np.float64 if x.dtype == np.float64 else np.float32
    # the apply kernels read every chunk's statistics for each of their rows: at most MERGED
    # values a program (more would not fit in registers on few channels with short rows)
    split = max(1, min(n, TARGET_PROGRAMS // c, MERGED // _tiles(s)[0]))
    chunk = cdiv(n, split)
    return n, c, s, stats, cdiv(n, chunk), chunk


def _apply_warps(x):
    """Warps of an apply program: 4 for TILE values, 8 in float64 (twice the registers a value)."""
    return 8 if x.dtype == np.float64 else 4


def _tiles(s):
    """(rows, block) of a tile of TILE values: whole short rows, or TILE-long pieces of one row."""
    block = min(next_power_of_2(s), TILE)
    return TILE // block, block


def batch_norm_forward(x, weight, bias, eps, running=None):
    """y, mean, var for the channels of x (N, C, ...); weight and bias (C,) or None.

    mean and var are (C,) in the statistics' dtype (float32, float64 for float64 x).
    ``running``, if given, is (running_mean, running_var, momentum): two contiguous
    (C,) arrays in the statistics' dtype, updated in place (see ``fuses_running``).
    """
    xp = xp_of(x)
    x = contiguous(x)
    weight, bias = (None if p is None else contiguous(p) for p in (weight, bias))
    n, c, s, stats, split, chunk = _layout(x)
    rows, block = _tiles(s)
    means, m2s = xp.empty((split, c), stats), xp.empty((split, c), stats)
    launch(batch_norm_stats_kernel, (c, split),
           dict(x_ptr=x, mean_part_ptr=means, m2_part_ptr=m2s, N=n, C=c, S=s, CHUNK=chunk),
           dict(STATS_FP64=stats is np.float64, ROWS=rows, BLOCK=block), num_warps=4)
    mean, var = xp.empty(c, stats), xp.empty(c, stats)
    running_mean, running_var, momentum = running or (mean, var, 0.0)
    y = xp.empty_like(x)
    launch(batch_norm_apply_kernel, (cdiv(n * c, rows) * cdiv(s, block),),
           dict(x_ptr=x, w_ptr=x if weight is None else weight, b_ptr=x if bias is None else bias,
                mean_part_ptr=means, m2_part_ptr=m2s, mean_ptr=mean, var_ptr=var,
                running_mean_ptr=running_mean, running_var_ptr=running_var, y_ptr=y,
                N=n, C=c, S=s, SPLIT=split, CHUNK=chunk, keep=float(1 - momentum), momentum=float(momentum),
                unbiased=float(n * s / max(n * s - 1, 1))),
           dict(EPS=float(eps), HAS_WEIGHT=weight is not None, HAS_BIAS=bias is not None,
                STATS_FP64=stats is np.float64, RUNNING=running is not None, SPLIT_POW2=next_power_of_2(split),
                ROWS=rows, COLS=block), num_warps=_apply_warps(x))
    return y, mean, var


def fuses_running(x, running_mean, running_var):
    """Whether the forward can update these running statistics itself: (C,) contiguous arrays in
    its statistics' dtype (float32, float64 for float64 x); else the caller updates them."""
    stats = np.float64 if x.dtype == np.float64 else np.float32
    return all(a is not None and a.dtype == stats and a.shape == (x.shape[1],) and a.flags.c_contiguous
               for a in (running_mean, running_var))


def batch_norm_backward(x, gy, weight, mean, var, eps):
    """gx, g_weight = sum(gy * x_hat) and g_bias = sum(gy) ((C,), in the statistics' dtype)."""
    xp = xp_of(x)
    x, gy = contiguous(x), contiguous(gy)
    weight = None if weight is None else contiguous(weight)
    n, c, s, stats, split, chunk = _layout(x)
    rows, block = _tiles(s)
    part = xp.empty((2, split, c), stats)
    launch(batch_norm_grad_sums_kernel, (c, split),
           dict(x_ptr=x, gy_ptr=gy, mean_ptr=mean, var_ptr=var, part_ptr=part,
                N=n, C=c, S=s, CHUNK=chunk, SPLIT=split),
           dict(EPS=float(eps), ROWS=rows, BLOCK=block), num_warps=4)
    g_bias, g_weight = xp.empty(c, stats), xp.empty(c, stats)
    gx = xp.empty_like(x)
    launch(batch_norm_grad_apply_kernel, (cdiv(n * c, rows) * cdiv(s, block),),
           dict(x_ptr=x, gy_ptr=gy, w_ptr=x if weight is None else weight, mean_ptr=mean, var_ptr=var,
                part_ptr=part, g_bias_ptr=g_bias, g_weight_ptr=g_weight, gx_ptr=gx, N=n, C=c, S=s, SPLIT=split),
           dict(EPS=float(eps), HAS_WEIGHT=weight is not None, SPLIT_POW2=next_power_of_2(split),
                ROWS=rows, COLS=block), num_warps=_apply_warps(x))
    return gx, g_weight, g_bias
