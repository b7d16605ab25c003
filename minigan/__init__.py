"""minigan: a small deep-learning framework for learning generative image models.

    import minigan as mg
    x = mg.randn(4, 3, requires_grad=True)
    (x.tanh() ** 2).sum().backward()

Importing minigan changes nothing in the process. A CPU training run goes faster
after ``mg.backend.tune_cpu()`` (process-wide allocator and OpenBLAS settings),
which the examples and benchmarks call when they start.
"""
import numpy as np

from . import backend, cuda, functional, nn, optim
from .autograd import Function, Tensor, enable_grad, grad, is_grad_enabled, no_grad, set_grad_enabled
from .backend import cuda_available, device, manual_seed
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
