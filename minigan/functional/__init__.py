"""Differentiable ops, named as in ``torch.nn.functional`` (and ``torch``)."""
from .activation import (hardtanh, leaky_relu, log_softmax, logsigmoid, prelu, relu, sigmoid,
                         silu, softmax, softplus, tanh)
from .conv import conv2d, conv_transpose2d
from .dropout import dropout, dropout2d
from .elementwise import (abs, add, clamp, clip, cos, div, eq, exp, ge, gt, le, lerp, log, log1p,
                          lt, maximum, minimum, mul, ne, neg, pow, rsqrt, sign, sin, sqrt, square,
                          sub, where)
from .linalg import linear, matmul
from .loss import (binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy,
                   gaussian_kl, kl_div, l1_loss, mse_loss, nll_loss)
from .normalization import (adain, adain_transfer, batch_norm, group_norm, instance_norm,
                            layer_norm, minibatch_stddev, pixel_norm)
from .pool import (adaptive_avg_pool2d, avg_pool2d, embedding, interpolate, max_pool2d, pad,
                   pixel_shuffle, pixel_unshuffle, upsample)
from .reduce import (amax, amin, argmax, argmin, logsumexp, max, mean, min, norm, std, sum, var)
from .shape import (broadcast_to, cat, chunk, expand, flatten, flip, permute, repeat, reshape,
                    split, squeeze, stack, sum_to, transpose, unflatten, unsqueeze)

from . import tensor_methods  # noqa: F401  (attaches operators and methods to Tensor)
