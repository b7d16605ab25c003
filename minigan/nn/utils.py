"""Gradient clipping, flat parameter vectors and spectral norm, as ``torch.nn.utils``."""
import math

import numpy as np

from .. import backend
from .. import functional as F
from ..autograd import Tensor, no_grad
from .spectral_norm import remove_spectral_norm, spectral_norm  # noqa: F401  (torch.nn.utils' path)


def _with_grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p for p in parameters if p.grad is not None]


def _scale_grads(params, factor):
    """Multiply every gradient by ``factor``.

    The arrays are replaced, not scaled in place: a ``.grad`` made by the engine
    may be one Tensor shared by two leaves (so each is scaled once, by Tensor
    identity) or a read-only broadcast view.
    """
    seen = set()
    for p in params:
        if id(p.grad) not in seen:
            seen.add(id(p.grad))
            p.grad.array = p.grad.array * factor


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Rescale gradients so that their joint norm is at most ``max_norm``; returns the norm before.

    The joint norm is the ``norm_type``-norm of all gradients concatenated into one
    vector (``inf``: the largest magnitude). When it exceeds ``max_norm`` every
    gradient is multiplied by max_norm / (norm + 1e-6), as torch does.
    ``foreach`` is accepted for compatibility.
    """
    params = _with_grads(parameters)
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not params:
        return Tensor(np.asarray(0.0, dtype=np.float32))
    first = params[0].grad.array
    xp = backend.get_array_module(first)
    norms = [backend.to_device(_norm(p.grad.array, norm_type), backend.device_of(first)) for p in params]
    total = _norm(xp.stack([n.astype(first.dtype) for n in norms]), norm_type).astype(first.dtype)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, "
                           "so it cannot be clipped. To disable this error and scale the gradients by the "
                           "non-finite norm anyway, set `error_if_nonfinite=False`")
    coef = xp.minimum(max_norm / (total + 1e-6), 1.0)  # a 0-d array in the gradients' dtype
    if not bool(coef == 1.0):  # a factor of exactly 1 would change nothing
        _scale_grads(params, coef)
    return Tensor(total)


def _norm(array, norm_type):
    """The ``norm_type``-norm of ``array`` seen as one vector, in its own dtype (a 0-d array)."""
    xp = backend.get_array_module(array)
    flat = array.reshape(-1)
    if norm_type == math.inf:
        value = xp.abs(flat).max() if flat.size else xp.zeros((), flat.dtype)
    elif norm_type == -math.inf:
        value = xp.abs(flat).min()
    elif norm_type == 2.0:
        value = xp.sqrt(xp.sum(flat * flat))
    elif norm_type == 1.0:
        value = xp.sum(xp.abs(flat))
    elif norm_type == 0.0:
        value = xp.asarray(xp.count_nonzero(flat), dtype=flat.dtype)
    else:
        value = xp.sum(xp.abs(flat) ** norm_type) ** (1.0 / norm_type)
    return xp.asarray(value, dtype=array.dtype)


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient element into [-clip_value, clip_value]."""
    clip_value = float(clip_value)
    seen = set()
    for p in _with_grads(parameters):
        if id(p.grad) not in seen:
            seen.add(id(p.grad))
            xp = backend.get_array_module(p.grad.array)
            p.grad.array = xp.clip(p.grad.array, -clip_value, clip_value)


def parameters_to_vector(parameters):
    """All parameters flattened and concatenated into one 1-D Tensor (differentiable)."""
    return F.cat([F.reshape(p, (-1,)) for p in parameters])


def vector_to_parameters(vec, parameters):
    """Copy consecutive slices of the 1-D ``vec`` into ``parameters`` (in place, no graph)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected vec to be a Tensor, but got {type(vec).__name__}")
    if vec.ndim != 1:
        raise ValueError(f"expected a 1-D vector, got shape {vec.shape}")
    offset = 0
    with no_grad():
        for p in parameters:
            n = p.numel()
            if offset + n > vec.shape[0]:
                raise ValueError(f"vector of length {vec.shape[0]} is too short for the parameters")
            p.copy_(vec.array[offset:offset + n].reshape(p.shape))
            offset += n
    if offset != vec.shape[0]:
        raise ValueError(f"vector of length {vec.shape[0]} is longer than the parameters ({offset} elements)")
