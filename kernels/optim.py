"""Adam's update of one parameter, fused: one pass over p, its gradient and its two moments.

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

The reference is the array path it replaces: ``Adam._update`` in
``minigan.optim.adam`` (itself checked against ``torch.optim.Adam``).

Typical shape: DCGAN's 64x64 generator and discriminator, 6.3 M float32 parameters in 24 tensors.
    reads p, g, m, v and writes p, m, v: 28 bytes a parameter, 178 MB a step, ~10 flops a parameter
    roofline on an H100 (3.35 TB/s): 0.05 ms a step, in 24 launches (the array path: ~260)
    measured: not yet (no GPU where this was written)
"""
import numpy as np
import triton
import triton.language as tl

from .bridge import cdiv, launch

BLOCK = 1024
WEIGHT_DECAY_NONE, WEIGHT_DECAY_L2, WEIGHT_DECAY_DECOUPLED = 0, 1, 2


@triton.jit
def adam_kernel(p_ptr, g_ptr, m_ptr, v_ptr, v_max_ptr, size,
                decay, weight_decay, lerp_weight, beta2, one_minus_beta2, step_size, bias_correction2_sqrt, eps,
                MAXIMIZE: tl.constexpr, WEIGHT_DECAY: tl.constexpr, LERP_FROM_END: tl.constexpr,
                AMSGRAD: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < size
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


def fusable(p, grad, *moments):
    """Whether the kernel can take this update: float32 throughout, every array contiguous, one shape."""
    arrays = [p, grad] + [a for a in moments if a is not None]
    return all(a.dtype == np.float32 and a.flags.c_contiguous and a.shape == p.shape for a in arrays)


def adam_update(p, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, *, lr, beta1, beta2, eps, weight_decay,
                decoupled, maximize, step):
    """One Adam step of ``p`` in place (and of its moments), as ``Adam._update`` computes it."""
    f32 = np.float32
    lerp_weight = f32(1 - beta1)
    from_end = not abs(lerp_weight) < 0.5
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    mode = WEIGHT_DECAY_NONE if weight_decay == 0 else (
        WEIGHT_DECAY_DECOUPLED if decoupled else WEIGHT_DECAY_L2)
    launch(adam_kernel, (cdiv(p.size, BLOCK),),
           dict(p_ptr=p, g_ptr=grad, m_ptr=exp_avg, v_ptr=exp_avg_sq,
                v_max_ptr=exp_avg_sq if max_exp_avg_sq is None else max_exp_avg_sq, size=p.size,
                decay=float(f32(1 - lr * weight_decay)), weight_decay=float(f32(weight_decay)),
                lerp_weight=float(f32(1) - lerp_weight if from_end else lerp_weight),
                beta2=float(f32(beta2)), one_minus_beta2=float(f32(1 - beta2)),
                step_size=float(f32(lr / bias_correction1)),
                bias_correction2_sqrt=float(f32(bias_correction2 ** 0.5)), eps=float(f32(eps))),
           dict(MAXIMIZE=bool(maximize), WEIGHT_DECAY=mode, LERP_FROM_END=from_end,
                AMSGRAD=max_exp_avg_sq is not None, BLOCK=BLOCK), num_warps=4)
