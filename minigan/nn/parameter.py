"""``Parameter``: the Tensor a Module learns.

A Parameter is an ordinary leaf Tensor with ``requires_grad=True`` by default.
Its only extra meaning is to a Module: assigning one as an attribute registers
it, so it shows up in ``parameters()`` and ``state_dict()``.
"""
import numpy as np

from ..autograd import Tensor


class Parameter(Tensor):
    """A leaf tensor that a Module registers when assigned as an attribute.

    ``Parameter(t)`` for a Tensor ``t`` shares ``t``'s array; for a NumPy or
    CuPy array it takes that array (no copy), as ``torch.nn.Parameter`` does.
    """

    def __init__(self, data=None, requires_grad=True):
        if data is None:  # torch's Parameter() is an empty float tensor
            data = np.empty((0,), dtype=np.float32)
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()
