"""Losses, with torch.nn.functional's names, arguments and reductions.

The GAN losses of the lectures are all here in disguise: the discriminator's
log D(x) + log(1 - D(G(z))) is ``binary_cross_entropy``; on logits it is
``binary_cross_entropy_with_logits``, computed as softplus(x) - x y so that a
logit of +-1e4 gives a finite loss and gradient.
"""
import math

import numpy as np

from .. import backend
from ..autograd import Function, Tensor
from .activation import Softplus, log_softmax, sigmoid
from .elementwise import abs, clamp, exp, log, log1p, where
from .pool import Take
from .reduce import mean, sum
from .shape import permute, reshape

_REDUCTIONS = ("none", "mean", "sum")


def _reduce(loss, reduction, op, extra=()):
    if reduction == "none":
        return loss
    if reduction == "mean":
        return mean(loss)
    if reduction == "sum":
        return sum(loss)
    raise ValueError(f"{op}: unknown reduction {reduction!r}; expected one of {_REDUCTIONS + tuple(extra)}")


def _check_reduction(reduction, op, extra=()):
    if reduction not in _REDUCTIONS + tuple(extra):
        raise ValueError(f"{op}: unknown reduction {reduction!r}; expected one of {_REDUCTIONS + tuple(extra)}")


def _check_same_shape(input, target, op):
    if input.shape != target.shape:
        raise ValueError(f"{op}: target shape {target.shape} differs from input shape {input.shape}")


def _as_tensor(x, like):
    if isinstance(x, Tensor):
        return x
    return Tensor(backend.xp_for(like.device).asarray(x, dtype=like.dtype))


def mse_loss(input, target, reduction="mean"):
    _check_reduction(reduction, "mse_loss")
    target = _as_tensor(target, input)
    _check_same_shape(input, target, "mse_loss")
    diff = input - target
    return _reduce(diff * diff, reduction, "mse_loss")


def l1_loss(input, target, reduction="mean"):
    _check_reduction(reduction, "l1_loss")
    target = _as_tensor(target, input)
    _check_same_shape(input, target, "l1_loss")
    return _reduce(abs(input - target), reduction, "l1_loss")


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """-[y log x + (1 - y) log(1 - x)], each log clamped at -100 as in torch."""
    _check_reduction(reduction, "binary_cross_entropy")
    target = _as_tensor(target, input)
    _check_same_shape(input, target, "binary_cross_entropy")
    x = input.array
    if ((x < 0) | (x > 1)).any():
        raise ValueError("binary_cross_entropy: input values must lie in [0, 1]; "
                         "for logits use binary_cross_entropy_with_logits")
    if target.dtype == input.dtype:
        loss = BCE()(input, target)
    else:  # a target of another dtype: op by op (each op checks the dtypes)
        loss = -(target * clamp(log(input), min=-100.0) + (1.0 - target) * clamp(log(1.0 - input), min=-100.0))
    if weight is not None:
        loss = loss * _as_tensor(weight, input)
    return _reduce(loss, reduction, "binary_cross_entropy")


class BCE(Function):
    """-[y log x + (1 - y) log(1 - x)] per element, each log clamped at -100, as torch.

    The gradient for x is torch's: (x - y) / max(x (1 - x), 1e-12), finite at x = 0 and 1
    (where the clamped logs alone would give 0/0); for y it is log(1 - x) - log(x), not
    clamped (torch's -logit(x)). Both are Tensor ops, so that they are differentiable again.
    """

    EPS = 1e-12

    def forward(self, x, y):
        xp = backend.get_array_module(x)
        with np.errstate(divide="ignore"):
            log_x = xp.maximum(xp.log(x), x.dtype.type(-100))
            log_1mx = xp.maximum(xp.log1p(-x), x.dtype.type(-100))
        return (y - y.dtype.type(1)) * log_1mx - y * log_x

    def backward(self, gy):
        x, y = self.inputs
        gx = gy * (x - y) / clamp((1.0 - x) * x, min=self.EPS) if self.needs_input_grad[0] else None
        gt = None
        if self.needs_input_grad[1]:
            with np.errstate(divide="ignore"):  # torch's -logit(x): infinite at x = 0 and 1
                gt = gy * (log1p(-x) - log(x))
        return gx, gt


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """BCE on logits x: (1 - y) x + (1 + (p - 1) y) softplus(-x), with p = pos_weight.

    softplus is computed exactly (no threshold) by log(1 + e^-|x|) + max(-x, 0),
    which never overflows.
    """
    _check_reduction(reduction, "binary_cross_entropy_with_logits")
    target = _as_tensor(target, input)
    _check_same_shape(input, target, "binary_cross_entropy_with_logits")
    if pos_weight is None and target.dtype == input.dtype:  # the common case, as one node
        loss = BCEWithLogits()(input, target)
    else:  # a pos_weight, or a target of another dtype: op by op (each op checks the dtypes)
        softplus_neg = Softplus(1.0, math.inf)(-input)  # -log sigmoid(x)
        p = 1.0 if pos_weight is None else _as_tensor(pos_weight, input)
        loss = (1.0 - target) * input + (1.0 + (p - 1.0) * target) * softplus_neg
    if weight is not None:
        loss = loss * _as_tensor(weight, input)
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


class BCEWithLogits(Function):
    """(1 - y) x + softplus(-x) per element, the loss of logit x against target y, as one node.

    Its gradients are sigmoid(x) - y for x (torch's formula) and -x for y, written as
    Tensor ops so that they are differentiable again. (The same loss built from its
    pieces is seven nodes forward and as many back: one each per GAN loss per step.)
    """

    def forward(self, x, y):
        xp = backend.get_array_module(x)
        return (y.dtype.type(1) - y) * x + xp.logaddexp(0, -x)  # softplus(-x) = log(1 + e^-x), exactly

    def backward(self, gy):
        x, y = self.inputs
        gx = gy * (sigmoid(x) - y) if self.needs_input_grad[0] else None
        return gx, (gy * -x if self.needs_input_grad[1] else None)


def _class_last(input):
    """(N, C, d1, ...) -> (N*d1*..., C): classes on the last axis."""
    if input.ndim == 1:
        return reshape(input, (1, input.shape[0]))
    if input.ndim == 2:
        return input
    dims = (0,) + tuple(range(2, input.ndim)) + (1,)
    return reshape(permute(input, dims), (-1, input.shape[1]))


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """-log p[target], averaged with the class weights of the targets (torch's rule)."""
    _check_reduction(reduction, "nll_loss")
    xp = backend.get_array_module(input.array)
    t = target.array if isinstance(target, Tensor) else xp.asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"nll_loss: target must hold class indices (integers), got dtype {t.dtype}")
    expected = (input.shape[0],) + input.shape[2:] if input.ndim > 1 else ()
    if tuple(t.shape) != expected:
        raise ValueError(f"nll_loss: target shape {tuple(t.shape)} does not match input shape "
                         f"{input.shape} (expected {expected})")
    C = input.shape[1] if input.ndim > 1 else input.shape[0]
    flat_t = t.reshape(-1)
    keep = flat_t != ignore_index
    if ((flat_t[keep] < 0) | (flat_t[keep] >= C)).any():
        raise IndexError(f"nll_loss: target values must lie in [0, {C}), got "
                         f"{int(flat_t[keep].min())}..{int(flat_t[keep].max())}")
    safe_t = xp.where(keep, flat_t, 0)
    # each row's target score; the gradient reads the scores, as torch's nll_loss_backward(grad,
    # self, ...) does, so a penalty's second derivative w.r.t. them is zeros, not None
    picked = xp.arange(flat_t.size) * C + safe_t
    logp = Take(0, picked, grad_reads_input=True)(reshape(_class_last(input), (-1,)))
    w = keep.astype(input.dtype)
    if weight is not None:
        w = w * _as_tensor(weight, input).array[safe_t]
    w = Tensor(w)
    loss = -logp * w
    if reduction == "none":
        return reshape(loss, tuple(t.shape))
    if reduction == "sum":
        return sum(loss)
    return sum(loss) / sum(w)


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Softmax cross entropy on logits; ``target`` holds class indices or class probabilities."""
    _check_reduction(reduction, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    class_dim = 1 if input.ndim > 1 else 0
    logp = log_softmax(input, class_dim)
    C = input.shape[class_dim]
    target_t = target if isinstance(target, Tensor) else Tensor(target)
    if target_t.dtype.kind == "f":  # class probabilities
        _check_same_shape(input, target_t, "cross_entropy")
        if label_smoothing:
            target_t = target_t * (1.0 - label_smoothing) + label_smoothing / C
        terms = logp * target_t
        if weight is not None:
            w = reshape(_as_tensor(weight, input), (C,) + (1,) * (input.ndim - class_dim - 1))
            terms = terms * w
        loss = -sum(terms, class_dim)
        if reduction == "mean":
            return sum(loss) / float(loss.array.size)  # NaN for an empty batch, as torch
        return _reduce(loss, reduction, "cross_entropy")
    nll = nll_loss(logp, target_t, weight, ignore_index, reduction)
    if not label_smoothing:
        return nll
    # smoothing: mix in the loss against the uniform distribution over classes
    xp = backend.get_array_module(input.array)
    t = target_t.array
    keep = Tensor((t != ignore_index).astype(input.dtype))
    terms = logp
    if weight is not None:
        terms = terms * reshape(_as_tensor(weight, input), (C,) + (1,) * (input.ndim - class_dim - 1))
    smooth = -sum(terms, class_dim) * keep
    if reduction == "none":
        total = smooth
    elif reduction == "sum":
        total = sum(smooth)
    else:
        if weight is not None:
            w = _as_tensor(weight, input).array[xp.where(t != ignore_index, t, 0)] * keep.array
            total = sum(smooth) / float(w.sum())
        else:
            total = sum(smooth) / float(keep.array.sum())
    return (1.0 - label_smoothing) * nll + (label_smoothing / C) * total


def kl_div(input, target, reduction="mean", log_target=False):
    """KL(target || q) pointwise, with ``input`` = log q, as ``torch.nn.functional.kl_div``.

    ``reduction='batchmean'`` divides the sum by the batch size: the true KL.
    """
    _check_reduction(reduction, "kl_div", extra=("batchmean",))
    target = _as_tensor(target, input)
    if log_target:
        loss = exp(target) * (target - input)
    else:
        xp = backend.get_array_module(target.array)
        positive = target.array > 0
        safe = where(Tensor(positive), target, 1.0)
        # target log target is 0 where target == 0 (the limit), as torch's xlogy
        loss = where(Tensor(positive), target * log(safe), 0.0) - target * input
    if reduction == "batchmean":
        return sum(loss) / float(input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction, "kl_div")


def gaussian_kl(mu, logvar, reduction="mean"):
    """KL(N(mu, exp(logvar)) || N(0, I)) = -1/2 sum(1 + logvar - mu^2 - exp(logvar)).

    The closed form in the VAE's ELBO. Summed over every dim but the first
    (one value per sample); ``reduction`` then averages or sums over samples.
    """
    _check_reduction(reduction, "gaussian_kl")
    if mu.shape != logvar.shape:
        raise ValueError(f"gaussian_kl: mu shape {mu.shape} differs from logvar shape {logvar.shape}")
    per_dim = -0.5 * (1.0 + logvar - mu * mu - exp(logvar))
    per_sample = sum(per_dim, tuple(range(1, mu.ndim))) if mu.ndim > 1 else per_dim
    return _reduce(per_sample, reduction, "gaussian_kl")
