"""Adam's update, fused: one pass over p, its gradient and its two moments, for many parameters at once.

``minigan.optim.Adam`` on arrays is torch's single-tensor algorithm written as
array operations, in place with one temporary per line:

    g <- -g                           if maximize
    p <- p * (1 - lr * wd)            decoupled weight decay (AdamW), or
    g <- g + wd * p                   the L2 penalty
    m <- lerp(m, g, 1 - beta1)        (torch's two formulas for a weight below or above 1/2)
    v <- v * beta2 + (1 - beta2) * g * g
    v_max <- max(v_max, v)            if amsgrad
    p <- p - step_size * m / (sqrt(v or v_max) / sqrt(1 - beta2^t) + eps)

That is about a dozen array operations per parameter and step: on the GPU a
dozen kernel launches, each a pass over memory, so a GAN's two optimizers cost
hundreds of launches a step. This kernel does the same arithmetic in the same
order, each value once: it reads p, g, m, v (and v_max) and writes p, m, v (and
v_max). The scalars (step size, bias correction) are computed on the host as the
array path computes them, and arrive as float32, the parameters' dtype; the
kernel takes float32 parameters only (others take the array path, whose scalars
follow the parameters' dtype).

A GAN step updates a few dozen parameters, most of them small, and one launch
each is a few dozen launches of host time. ``adam_update_many`` updates all the
float32 parameters of an optimizer's group in one launch: its programs are the
blocks of every parameter in turn, and a table copied over from the host gives
each block its parameter's addresses (the gradients are new arrays each step),
its size and where its blocks start; which parameter each block belongs to
depends only on the sizes, and is kept on the device.

The reference is the array path it replaces: ``Adam._update`` in
``minigan.optim.adam`` (itself checked against ``torch.optim.Adam``).

Typical shape: DCGAN's 64x64 generator and discriminator, 6.3 M float32 parameters in 24 tensors.
    reads p, g, m, v and writes p, m, v: 28 bytes a parameter, 178 MB a step, ~10 flops a parameter
    roofline on an H100 (3.35 TB/s): 0.05 ms a step, in 2 launches, one per optimizer (the array
    path: ~260; one launch per parameter: 24)
    measured: not yet (no GPU where this was written)
"""
import numpy as np
import triton
import triton.language as tl

from .bridge import _address, cdiv, launch, xp_of

BLOCK = 1024
WEIGHT_DECAY_NONE, WEIGHT_DECAY_L2, WEIGHT_DECAY_DECOUPLED = 0, 1, 2
ROW = tl.constexpr(7)  # adam_many_kernel's table: p, g, m, v, v_max addresses, size, first block


@triton.jit
def _adam(p_ptr, g_ptr, m_ptr, v_ptr, v_max_ptr, offs, mask,
          decay, weight_decay, lerp_weight, beta2, one_minus_beta2, step_size, bias_correction2_sqrt, eps,
          MAXIMIZE: tl.constexpr, WEIGHT_DECAY: tl.constexpr, LERP_FROM_END: tl.constexpr,
          AMSGRAD: tl.constexpr):
    # the update of the values at offs (mask: which exist; None for a full block)
    p = tl.load(p_ptr + offs, mask=mask)
    g = tl.load(g_ptr + offs, mask=mask)
    m = tl.load(m_ptr + offs, mask=mask)
    v = tl.load(v_ptr + offs, mask=mask)
    if MAXIMIZE:
        g = -g
    if WEIGHT_DECAY == 2:  # AdamW: p * (1 - lr * wd), the factor computed on the host
        p = p * decay
    if WEIGHT_DECAY == 1:
        g = g + weight_decay * p
    if LERP_FROM_END:  # weight >= 1/2: end - (end - start) * (1 - weight), lerp_weight being 1 - weight
        m = g - (g - m) * lerp_weight
    else:
        m = m + (g - m) * lerp_weight
    v = v * beta2 + one_minus_beta2 * g * g
    if AMSGRAD:
        v_max = tl.maximum(tl.load(v_max_ptr + offs, mask=mask), v)
        tl.store(v_max_ptr + offs, v_max, mask=mask)
        denom = tl.sqrt(v_max)
    else:
        denom = tl.sqrt(v)
    denom = denom / bias_correction2_sqrt + eps
    p = p + (-step_size * m) / denom
    tl.store(p_ptr + offs, p, mask=mask)
    tl.store(m_ptr + offs, m, mask=mask)
    tl.store(v_ptr + offs, v, mask=mask)


@triton.jit
def adam_kernel(p_ptr, g_ptr, m_ptr, v_ptr, v_max_ptr, size,
                decay, weight_decay, lerp_weight, beta2, one_minus_beta2, step_size, bias_correction2_sqrt, eps,
                MAXIMIZE: tl.constexpr, WEIGHT_DECAY: tl.constexpr, LERP_FROM_END: tl.constexpr,
                AMSGRAD: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    _adam(p_ptr, g_ptr, m_ptr, v_ptr, v_max_ptr, offs, offs < size,
          decay, weight_decay, lerp_weight, beta2, one_minus_beta2, step_size, bias_correction2_sqrt, eps,
          MAXIMIZE, WEIGHT_DECAY, LERP_FROM_END, AMSGRAD)


@triton.jit
def adam_many_kernel(table_ptr, owner_ptr,
                     decay, weight_decay, lerp_weight, beta2, one_minus_beta2, step_size, bias_correction2_sqrt,
                     eps, MAXIMIZE: tl.constexpr, WEIGHT_DECAY: tl.constexpr, LERP_FROM_END: tl.constexpr,
                     AMSGRAD: tl.constexpr, BLOCK: tl.constexpr):
    # block b of all the tensors' blocks: it belongs to tensor owner[b], whose row of the table
    # holds the addresses of p, g, m, v, v_max (16-byte aligned), its size and its first block
    b = tl.program_id(0)
    row = table_ptr + tl.load(owner_ptr + b).to(tl.int64) * ROW
    p_ptr = tl.multiple_of(tl.load(row).to(tl.pointer_type(tl.float32)), 16)
    g_ptr = tl.multiple_of(tl.load(row + 1).to(tl.pointer_type(tl.float32)), 16)
    m_ptr = tl.multiple_of(tl.load(row + 2).to(tl.pointer_type(tl.float32)), 16)
    v_ptr = tl.multiple_of(tl.load(row + 3).to(tl.pointer_type(tl.float32)), 16)
    v_max_ptr = tl.multiple_of(tl.load(row + 4).to(tl.pointer_type(tl.float32)), 16)
    size = tl.load(row + 5)
    start = (b - tl.load(row + 6)) * BLOCK
    offs = start + tl.arange(0, BLOCK)
    if start + BLOCK <= size:  # a full block: no mask, so the accesses can be 16 bytes wide
        _adam(p_ptr, g_ptr, m_ptr, v_ptr, v_max_ptr, offs, None,
              decay, weight_decay, lerp_weight, beta2, one_minus_beta2, step_size, bias_correction2_sqrt, eps,
              MAXIMIZE, WEIGHT_DECAY, LERP_FROM_END, AMSGRAD)
    else:
        _adam(p_ptr, g_ptr, m_ptr, v_ptr, v_max_ptr, offs, offs < size,
              decay, weight_decay, lerp_weight, beta2, one_minus_beta2, step_size, bias_correction2_sqrt, eps,
              MAXIMIZE, WEIGHT_DECAY, LERP_FROM_END, AMSGRAD)


def fusable(p, grad, *moments):
    """Whether the kernel can take this update: float32 throughout, every array contiguous, one shape."""
    arrays = [p, grad] + [a for a in moments if a is not None]
    return all(a.dtype == np.float32 and a.flags.c_contiguous and a.shape == p.shape for a in arrays)


def _scalars(lr, beta1, beta2, eps, weight_decay, decoupled, maximize, step, amsgrad):
    """The kernels' run-time scalars and compile-time flags for one step, as the array path computes them."""
    f32 = np.float32
    lerp_weight = f32(1 - beta1)
    from_end = not abs(lerp_weight) < 0.5
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    mode = WEIGHT_DECAY_NONE if weight_decay == 0 else (
        WEIGHT_DECAY_DECOUPLED if decoupled else WEIGHT_DECAY_L2)
    scalars = dict(decay=float(f32(1 - lr * weight_decay)), weight_decay=float(f32(weight_decay)),
                   lerp_weight=float(f32(1) - lerp_weight if from_end else lerp_weight),
                   beta2=float(f32(beta2)), one_minus_beta2=float(f32(1 - beta2)),
                   step_size=float(f32(lr / bias_correction1)),
                   bias_correction2_sqrt=float(f32(bias_correction2 ** 0.5)), eps=float(f32(eps)))
    flags = dict(MAXIMIZE=bool(maximize), WEIGHT_DECAY=mode, LERP_FROM_END=from_end, AMSGRAD=amsgrad, BLOCK=BLOCK)
    return scalars, flags


def adam_update(p, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, *, lr, beta1, beta2, eps, weight_decay,
                decoupled, maximize, step):
    """One Adam step of ``p`` in place (and of its moments), as ``Adam._update`` computes it."""
    scalars, flags = _scalars(lr, beta1, beta2, eps, weight_decay, decoupled, maximize, step,
                              max_exp_avg_sq is not None)
    launch(adam_kernel, (cdiv(p.size, BLOCK),),
           dict(p_ptr=p, g_ptr=grad, m_ptr=exp_avg, v_ptr=exp_avg_sq,
                v_max_ptr=exp_avg_sq if max_exp_avg_sq is None else max_exp_avg_sq, size=p.size, **scalars),
           flags, num_warps=4)


def aligned(*arrays):
    """Whether every array starts on a 16-byte boundary (what ``adam_update_many`` tells the compiler)."""
    return all(_address(a) % 16 == 0 for a in arrays if a is not None)


_owners = {}  # (array module, sizes) -> owner array: the tensor each block belongs to


def adam_update_many(tensors, *, lr, beta1, beta2, eps, weight_decay, decoupled, maximize, step):
    """One Adam step of every (p, grad, exp_avg, exp_avg_sq, max_exp_avg_sq) in ``tensors``, in one launch.

    All at the same ``step``, each ``fusable`` and ``aligned``; max_exp_avg_sq is None for all or none.
    The table of addresses is made on the host and copied over (one small copy), since the
    gradients are new arrays every step; which tensor each block belongs to depends only on
    the sizes, and is kept.
    """
    if not tensors:
        return
    xp = xp_of(tensors[0][0])
    amsgrad = tensors[0][4] is not None
    sizes = tuple(t[0].size for t in tensors)
    blocks = [cdiv(size, BLOCK) for size in sizes]
    if (xp, sizes) not in _owners:
        _owners[xp, sizes] = xp.asarray(np.repeat(np.arange(len(sizes), dtype=np.int32), blocks))
    firsts = np.cumsum([0] + blocks[:-1])
    table = np.array([[_address(a) for a in (p, g, m, v, m if v_max is None else v_max)] + [p.size, first]
                      for (p, g, m, v, v_max), first in zip(tensors, firsts)], dtype=np.int64)
    scalars, flags = _scalars(lr, beta1, beta2, eps, weight_decay, decoupled, maximize, step, amsgrad)
    launch(adam_many_kernel, (sum(blocks),), dict(table_ptr=xp.asarray(table), owner_ptr=_owners[xp, sizes],
                                                  **scalars), flags, num_warps=4)
