"""Dropout: zero each element with probability p, scale the rest by 1/(1-p)
so the expected activation is unchanged (inverted dropout, as torch)."""
from .. import backend
from ..autograd import Tensor


def _mask(x, shape, p):
    gen = backend.generator(x.device)
    keep = (gen.random(shape) >= p) if x.device == "cpu" else (gen.random_sample(shape) >= p)
    return Tensor((keep / (1.0 - p)).astype(x.dtype))


def _check_p(p, op):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: probability p must be in [0, 1], got {p}")


def dropout(input, p=0.5, training=True, inplace=False):
    _check_p(p, "dropout")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    return input * _mask(input, input.shape, p)


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Drop whole channels of (N, C, H, W) or (C, H, W) feature maps."""
    _check_p(p, "dropout2d")
    if input.ndim not in (3, 4):
        raise ValueError(f"dropout2d: expected a 3-D or 4-D input, got shape {input.shape}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    shape = input.shape[:-2] + (1, 1)
    return input * _mask(input, shape, p)
