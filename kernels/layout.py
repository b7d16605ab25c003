"""Moving an axis innermost in memory: the NCHW -> NHWC copy the convolutions read from.

The conv kernels read their K dimension (channels) as contiguous runs, so their
launchers hand them activations as NHWC memory and filters with C (or O) last
(``minigan.kernels.conv._inner``). That is a transpose of a contiguous array seen as
(outer, C, S) into (outer, S, C): for activations outer = N and S = H*W.

A transpose read and written one value per thread in the order of either array
touches the other one with a stride: each warp's 32 values land in 32 different
32-byte sectors. Here a program takes a BLOCK_C x BLOCK_S tile: it reads it along
S, where the input is contiguous, and writes it along C, where the output is; the
compiler moves the tile between the two thread layouts through shared memory.
Both sides are then coalesced 16-byte accesses, a copy's traffic and no more.

The reference is what it replaces: ``xp.ascontiguousarray(a.transpose(0, 2, 1))``.

Typical shape: an activation x (64, 256, 32, 32) float32 (67 MB).
    reads x once and writes it once: 134 MB, no flops
    roofline on an H100 (3.35 TB/s): 0.04 ms
    measured: not yet (no GPU where this was written): `python -m benchmarks.kernels` prints it
"""
import triton
import triton.language as tl

from .bridge import cdiv, launch, next_power_of_2, xp_of

TILE = 2048      # values per program
MAX_OUTER = 65535  # the grid's third axis (one program row per outer index) goes this far


@triton.jit
def move_axis_last_kernel(x_ptr, y_ptr, C, S, BLOCK_C: tl.constexpr, BLOCK_S: tl.constexpr):
    # x (outer, C, S) -> y (outer, S, C), both contiguous; this program: one outer index,
    # channels c, positions s
    pid_s, pid_c, outer = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
    s = pid_s * BLOCK_S + tl.arange(0, BLOCK_S)
    mask = (c < C)[:, None] & (s < S)[None, :]
    start = outer.to(tl.int64) * C * S
    tile = tl.load(x_ptr + start + c[:, None] * S + s[None, :], mask=mask)  # along s: x's contiguous axis
    tl.store(y_ptr + start + c[:, None] + s[None, :] * C, tile, mask=mask)  # along c: y's


def move_axis_last(x):
    """(outer, C, S) C-contiguous -> the same values as a C-contiguous (outer, S, C) array."""
    outer, c, s = x.shape
    if outer > MAX_OUTER or not x.flags.c_contiguous or min(x.strides) < 0:
        return xp_of(x).ascontiguousarray(x.transpose(0, 2, 1))
    y = xp_of(x).empty((outer, s, c), x.dtype)
    block_c = min(max(next_power_of_2(c), 4), 64)
    block_s = TILE // block_c
    launch(move_axis_last_kernel, (cdiv(s, block_s), cdiv(c, block_c), outer), dict(x_ptr=x, y_ptr=y, C=c, S=s),
           dict(BLOCK_C=block_c, BLOCK_S=block_s), num_warps=4)
    return y
