"""minigan: a small deep-learning framework for learning generative image models.

    import minigan as mg
    x = mg.randn(4, 3, requires_grad=True)
    (x.tanh() ** 2).sum().backward()
"""
import os as _os
import sys as _sys

if "numpy" not in _sys.modules:  # OpenBLAS reads it once, when NumPy loads it
    # After each product OpenBLAS's idle threads spin for 2^28 cycles (~0.1 s) before they sleep;
    # on the CPU every product is followed by NumPy copies and adds that need those cores. 2^4:
    # sleep at once (waking them for the next product costs microseconds). See backend.py.
    _os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import numpy as np  # noqa: E402

from . import backend, functional, nn, optim
from .autograd import Function, Tensor, enable_grad, grad, is_grad_enabled, no_grad, set_grad_enabled
from .backend import cuda_available, manual_seed
from .gradcheck import gradcheck, gradgradcheck
from .creation import (arange, as_tensor, empty, empty_like, eye, from_numpy, full, full_like,
                       linspace, normal, ones, ones_like, rand, rand_like, randint, randn,
                       randn_like, randperm, tensor, zeros, zeros_like)
from .functional import (abs, cat, chunk, clamp, exp, flatten, log, matmul, max, maximum, mean, min,
                         minimum, permute, reshape, sigmoid, split, sqrt, squeeze, stack, std, sum,
                         tanh, transpose, unsqueeze, var, where, logsumexp, sin, cos)

float16, float32, float64 = np.float16, np.float32, np.float64
int32, int64, bool_ = np.int32, np.int64, np.bool_
float, double, long = np.float32, np.float64, np.int64

__version__ = "0.1.0"
