"""Matrix products: ``matmul`` (with batch broadcasting) and ``linear``."""
from .. import backend
from ..autograd import Function
from .shape import reshape, sum_to, transpose


class MatMul(Function):
    """a @ b for tensors with >= 2 dims; leading (batch) dims broadcast."""

    reads_inputs = ((1,), (0,))

    def forward(self, a, b):
        if a.shape[-1] != b.shape[-2]:
            raise RuntimeError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be "
                               f"multiplied ({a.shape[-1]} != {b.shape[-2]})")
        if a.dtype != b.dtype:
            raise TypeError(f"matmul: dtypes differ ({a.dtype} and {b.dtype})")
        return backend.get_array_module(a, b).matmul(a, b)

    def backward(self, gy):
        a, b = self.inputs
        ga = sum_to(matmul(gy, transpose(b, -1, -2)), a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(matmul(transpose(a, -1, -2), gy), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


def matmul(a, b):
    """``torch.matmul`` semantics: 1-D operands are promoted and the added dim removed."""
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError(f"matmul: both arguments need at least 1 dim, got shapes {a.shape} and {b.shape}")
    squeeze_a, squeeze_b = a.ndim == 1, b.ndim == 1
    if squeeze_a:
        a = reshape(a, (1, a.shape[0]))
    if squeeze_b:
        b = reshape(b, (b.shape[0], 1))
    y = MatMul()(a, b)
    if squeeze_a:
        y = reshape(y, y.shape[:-2] + y.shape[-1:])
    if squeeze_b:
        y = reshape(y, y.shape[:-1])
    return y


def linear(input, weight, bias=None):
    """y = x W^T + b, with W of shape (out_features, in_features)."""
    if input.shape[-1:] != weight.shape[-1:]:
        raise RuntimeError(f"linear: input of shape {input.shape} does not match weight of "
                           f"shape {weight.shape} (in_features {weight.shape[-1]})")
    y = matmul(input, transpose(weight, 0, 1) if weight.ndim == 2 else weight)
    return y + bias if bias is not None else y
