"""Every op against torch: forward, first and second derivatives, in float64.

The ops are one table (``OPS``) and the property is one test: for each row,
hypothesis draws the shapes (scalars, size-1 and broadcast dims), the values
and the arguments, and ``minigan.testing.check_op`` compares

    forward      f(x)
    first        d<f(x), u>/dx                   for random u
    second       d<d<f(x), u>/dx, v>/d(x, u)     for random v (create_graph=True)

with torch's answers. A row is (name, minigan call, torch call, strategy for a
``Case``): the arrays (floating ones are differentiated, integer and boolean ones
are constants such as class indices and masks) and keyword arguments passed to
both calls. Kinks are kept away from (``avoid=``) and max/min draw distinct
values, so every derivative is defined.

The end of the file checks that bad input fails loudly: the message names the op
and the shapes.
"""
import itertools
import math
import operator

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import assume, strategies as st

import minigan as mg
import minigan.functional as F
from minigan.testing import Case, OpSpec as Op, op_property_tests
from minigan.testing import (arrays, broadcastable_shapes, check_op, dims, floats,
                             mutually_broadcastable_shapes, reductions, shapes)


def _mg(a):
    return None if a is None else mg.tensor(a, dtype=a.dtype)


def _th(a):
    return None if a is None else torch.tensor(a)


# ---------------------------------------------------------------- strategies for cases


def unary(**values):
    """One array of any shape; ``values`` go to ``arrays`` (bounds, kinks to avoid)."""
    return arrays(shapes(), **values).map(lambda x: Case((x,)))


@st.composite
def broadcast_pair(draw, a={}, b={}):
    shape_a, shape_b = draw(mutually_broadcastable_shapes(2))
    return Case((draw(arrays(shape_a, **a)), draw(arrays(shape_b, **b))))


@st.composite
def with_number(draw, x={}, c={}):
    """A tensor and a Python number, for ``x + 2.5`` and ``2.5 + x``."""
    return Case((draw(arrays(shapes(), **x)),), {"c": draw(floats(**c))})


@st.composite
def pow_number(draw):
    p = draw(st.sampled_from([0, 1, 2, 3, -1, -2, 0.5, -1.5, 2.5]))
    integer = float(p).is_integer()
    x = draw(arrays(shapes(), min_value=-3.0 if integer else 0.2, max_value=3.0,
                    avoid=(0.0,) if p < 0 else (), gap=0.2))
    return Case((x,), {"p": p})


@st.composite
def where_case(draw, number=False):
    shape_c, shape_a, shape_b = draw(mutually_broadcastable_shapes(3))
    condition = draw(arrays(shape_c, bool))
    if number:
        return Case((condition, draw(arrays(shape_a))), {"other": draw(floats())})
    return Case((condition, draw(arrays(shape_a)), draw(arrays(shape_b))))


# --- indexing

@st.composite
def basic_index(draw):
    """Ints and slices (negative steps included) on the leading dims."""
    shape = draw(shapes(min_dims=1))
    index = []
    for n in shape[:draw(st.integers(1, len(shape)))]:
        if draw(st.booleans()):
            index.append(draw(st.integers(-n, n - 1)))
        else:
            bound = st.none() | st.integers(-n - 1, n + 1)
            index.append(slice(draw(bound), draw(bound), draw(st.sampled_from([None, 1, 2, 3, -1, -2, -3]))))
    return Case((draw(arrays(shape)),), {"index": tuple(index)})


def _torch_basic_index(x, index):
    """torch slices have no negative steps: select the same positions explicitly."""
    dim = 0
    for i in index:
        if isinstance(i, slice):
            x = x.index_select(dim, torch.as_tensor(np.arange(x.shape[dim])[i].copy()))
            dim += 1
        else:
            x = x.select(dim, i)
    return x


@st.composite
def integer_array_index(draw):
    """Integer arrays, short and over small dims, so repeated indices are common."""
    shape = draw(shapes(min_dims=1, max_side=4))
    ints = lambda n, s: arrays(s, np.int64, min_value=-n, max_value=n - 1)
    form = draw(st.sampled_from(["first", "second", "pair"] if len(shape) > 1 else ["first"]))
    if form == "first":
        index = (draw(ints(shape[0], shapes(1, 2, max_side=6))),)
    elif form == "second":
        index = (slice(None), draw(ints(shape[1], shapes(1, 2, max_side=6))))
    else:
        shape_0, shape_1 = draw(mutually_broadcastable_shapes(2, min_dims=1, max_dims=2))
        index = (draw(ints(shape[0], shape_0)), draw(ints(shape[1], shape_1)))
    return Case((draw(arrays(shape)),), {"index": index})


@st.composite
def boolean_mask_index(draw):
    shape = draw(shapes(min_dims=1))
    mask = draw(arrays(shape[:draw(st.integers(1, len(shape)))], bool))
    return Case((draw(arrays(shape)),), {"index": mask})


def _torch_index(x, index):
    index = index if isinstance(index, tuple) else (index,)
    return x[tuple(torch.as_tensor(i) if isinstance(i, np.ndarray) else i for i in index)]


# --- shapes

@st.composite
def reshape_case(draw):
    shape = draw(shapes())
    n = math.prod(shape)
    new = [1] * draw(st.integers(0 if n == 1 else 1, 4))
    p, rest = 2, n
    while rest > 1:  # hand each prime factor of n to a random dim
        while rest % p == 0:
            new[draw(st.integers(0, len(new) - 1))] *= p
            rest //= p
        p += 1
    if new and draw(st.booleans()):
        new[draw(st.integers(0, len(new) - 1))] = -1
    return Case((draw(arrays(shape)),), {"shape": tuple(new)})


@st.composite
def permute_case(draw):
    shape = draw(shapes(min_dims=1))
    order = draw(st.permutations(range(len(shape))))
    order = tuple(d - len(shape) if draw(st.booleans()) else d for d in order)
    return Case((draw(arrays(shape)),), {"dims": order})


@st.composite
def transpose_case(draw):
    shape = draw(shapes())
    n = max(len(shape), 1)
    dim0, dim1 = draw(st.integers(-n, n - 1)), draw(st.integers(-n, n - 1))
    return Case((draw(arrays(shape)),), {"dim0": dim0, "dim1": dim1})


@st.composite
def flatten_case(draw):
    shape = draw(shapes())
    n = max(len(shape), 1)
    start = draw(st.integers(0, n - 1))
    end = draw(st.integers(start, n - 1))
    start, end = (start - n if draw(st.booleans()) else start), (end - n if draw(st.booleans()) else end)
    return Case((draw(arrays(shape)),), {"start_dim": start, "end_dim": end})


@st.composite
def squeeze_case(draw):
    shape = draw(shapes(max_side=2))  # many size-1 dims
    return Case((draw(arrays(shape)),), {"dim": draw(dims(len(shape), allow_none=True))})


@st.composite
def unsqueeze_case(draw):
    shape = draw(shapes(max_dims=3))
    return Case((draw(arrays(shape)),), {"dim": draw(st.integers(-len(shape) - 1, len(shape)))})


@st.composite
def expand_case(draw):
    shape = draw(shapes(max_dims=3, max_side=3))
    lead = draw(st.lists(st.integers(1, 3), max_size=2))
    sizes = [draw(st.integers(1, 3)) if s == 1 else s for s in shape]
    sizes = [-1 if draw(st.booleans()) else s for s in sizes]  # -1 keeps a dim
    x_shape = draw(st.sampled_from([shape, tuple(1 for _ in shape)]))
    return Case((draw(arrays(x_shape)),), {"sizes": tuple(lead + sizes)})


@st.composite
def cat_case(draw, stack=False):
    shape = draw(shapes(min_dims=0 if stack else 1, max_dims=3))
    k = draw(st.integers(1, 3))
    if stack:
        dim = draw(st.integers(-len(shape) - 1, len(shape)))
        return Case(tuple(draw(arrays(shape)) for _ in range(k)), {"dim": dim})
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    xs = []
    for _ in range(k):
        s = list(shape)
        s[dim] = draw(st.integers(1, 3))
        xs.append(draw(arrays(tuple(s))))
    return Case(tuple(xs), {"dim": dim})


@st.composite
def split_case(draw, chunk=False):
    shape = draw(shapes(min_dims=1))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    n = shape[dim]
    if chunk:
        return Case((draw(arrays(shape)),), {"chunks": draw(st.integers(1, n + 1)), "dim": dim})
    if draw(st.booleans()):
        sections = draw(st.integers(1, n + 1))
    else:
        cuts = sorted(draw(st.lists(st.integers(0, n), max_size=3)))
        sections = [b - a for a, b in zip([0] + cuts, cuts + [n])]
    return Case((draw(arrays(shape)),), {"sections": sections, "dim": dim})


# --- reductions

@st.composite
def reduce_case(draw, unique=False, allow_none=True, allow_tuple=True):
    shape = draw(shapes())
    x = draw(arrays(shape, unique=unique))
    return Case((x,), {"dim": draw(dims(len(shape), allow_none=allow_none, allow_tuple=allow_tuple)),
                       "keepdim": draw(st.booleans())})


@st.composite
def var_case(draw, spread=0.0):
    """Also asks for ``spread`` between the values of each reduced slice: std has no
    derivative at zero spread (torch gives 0 there, then nan for the second)."""
    case = draw(reduce_case())
    x, dim = case.arrays[0], case.params["dim"]
    axes = tuple(range(x.ndim)) if dim is None else tuple(d % max(x.ndim, 1) for d in np.atleast_1d(dim))
    n = math.prod(x.shape[a] for a in axes) if x.ndim else 1
    assume(n >= 2 and np.ptp(x, axis=axes).min() >= spread)
    correction = draw(st.sampled_from([{"unbiased": True}, {"unbiased": False},
                                       {"correction": 0}, {"correction": 1}]))
    return Case(case.arrays, {**case.params, **correction})


# --- linear algebra

@st.composite
def matmul_case(draw):
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    batch_a, batch_b = draw(mutually_broadcastable_shapes(2, max_dims=2, max_side=3))
    a = (k,) if draw(st.booleans()) else batch_a + (n, k)
    b = (k,) if draw(st.booleans()) else batch_b + (k, m)
    return Case((draw(arrays(a)), draw(arrays(b))))


@st.composite
def linear_case(draw):
    batch = draw(shapes(max_dims=2, max_side=3))
    n_in, n_out = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    xs = (draw(arrays(batch + (n_in,))), draw(arrays((n_out, n_in))))
    return Case(xs + ((draw(arrays((n_out,))),) if draw(st.booleans()) else ()))


# --- elementwise with arguments

@st.composite
def clamp_case(draw):
    low, high = sorted(draw(st.lists(floats(-2, 2), min_size=2, max_size=2, unique=True)))
    assume(high - low > 0.1)
    bounds = draw(st.sampled_from([{"min": low}, {"max": high}, {"min": low, "max": high}]))
    return Case((draw(arrays(shapes(), avoid=(low, high), gap=1e-2)),), bounds)


@st.composite
def leaky_relu_case(draw):
    return Case((draw(arrays(shapes(), avoid=(0.0,), gap=1e-2)),), {"negative_slope": draw(floats(-0.5, 2.0))})


@st.composite
def softplus_case(draw):
    beta, threshold = draw(floats(0.5, 3.0)), draw(floats(0.5, 20.0))
    x = draw(arrays(shapes(), avoid=(threshold / beta,), gap=1e-2))  # where the linear piece starts
    return Case((x,), {"beta": beta, "threshold": threshold})


@st.composite
def softmax_case(draw):
    shape = draw(shapes())
    return Case((draw(arrays(shape)),), {"dim": draw(dims(len(shape), allow_tuple=False))})


# --- losses

@st.composite
def pair_loss(draw, a={}, gap=0.0):
    """input and target of one shape; with ``gap``, |input - target| >= gap (l1's kink)."""
    shape = draw(shapes())
    x = draw(arrays(shape, **a))
    if gap:
        target = x - draw(arrays(shape, avoid=(0.0,), gap=gap))
    else:
        target = draw(arrays(shape, **a))
    return Case((x, target), {"reduction": draw(reductions())})


@st.composite
def bce_case(draw, logits=False):
    shape = draw(shapes())
    if logits:  # saturated logits must give a finite loss and gradient
        x = draw(arrays(shape, elements=floats(-5, 5) | st.sampled_from([-1e4, 1e4])))
    else:
        x = draw(arrays(shape, min_value=0.02, max_value=0.98))
    params = {"reduction": draw(reductions())}
    if draw(st.booleans()):
        params["weight"] = draw(arrays(broadcastable_shapes(shape), min_value=0.1, max_value=2.0))
    if logits and draw(st.booleans()):
        params["pos_weight"] = draw(arrays(broadcastable_shapes(shape), min_value=0.1, max_value=3.0))
    return Case((x, draw(arrays(shape, min_value=0.0, max_value=1.0))), params)


@st.composite
def class_index_case(draw, smoothing=True):
    """(N, C, d1, ...) scores or one (C,) sample; class indices, some ignored."""
    n_classes = draw(st.integers(2, 5))
    batch = draw(st.sampled_from([None, 1, 2, 3]))
    spatial = draw(shapes(max_dims=2, max_side=3)) if batch is not None else ()
    x_shape = (n_classes,) if batch is None else (batch, n_classes) + spatial
    t_shape = () if batch is None else (batch,) + spatial
    ignore_index = draw(st.sampled_from([-100, draw(st.integers(0, n_classes - 1))]))
    target = draw(arrays(t_shape, np.int64, min_value=0, max_value=n_classes - 1))
    target = np.where(draw(arrays(t_shape, bool)), ignore_index, target)
    params = {"ignore_index": ignore_index, "reduction": draw(reductions())}
    assume((target != ignore_index).any() or params["reduction"] != "mean")  # else 0 / 0
    if draw(st.booleans()):
        params["weight"] = draw(arrays((n_classes,), min_value=0.1, max_value=2.0))
    if smoothing and draw(st.booleans()):
        params["label_smoothing"] = draw(floats(0.0, 1.0))
    return Case((draw(arrays(x_shape)), target), params)


@st.composite
def class_probability_case(draw):
    n_classes = draw(st.integers(2, 5))
    batch = draw(st.sampled_from([None, 1, 2, 3]))
    spatial = draw(shapes(max_dims=2, max_side=3)) if batch is not None else ()
    shape = (n_classes,) if batch is None else (batch, n_classes) + spatial
    params = {"reduction": draw(reductions())}
    if draw(st.booleans()):
        params["weight"] = draw(arrays((n_classes,), min_value=0.1, max_value=2.0))
    if draw(st.booleans()):
        params["label_smoothing"] = draw(floats(0.0, 1.0))
    return Case((draw(arrays(shape)), draw(arrays(shape, min_value=0.0, max_value=1.0))), params)


@st.composite
def kl_div_case(draw):
    shape = draw(shapes(min_dims=1))
    log_target = draw(st.booleans())
    target = draw(arrays(shape) if log_target else arrays(shape, min_value=0.05, max_value=1.0))
    return Case((draw(arrays(shape, max_value=0.0)), target),
                {"reduction": draw(reductions(extra=("batchmean",))), "log_target": log_target})


@st.composite
def gaussian_kl_case(draw):
    shape = draw(shapes(min_dims=1))
    return Case((draw(arrays(shape)), draw(arrays(shape, min_value=-2.0, max_value=2.0))),
                {"reduction": draw(reductions())})


def torch_gaussian_kl(mu, logvar, reduction):
    """The VAE's closed form, KL(N(mu, e^logvar) || N(0, I)) per sample, in plain torch."""
    per_dim = -0.5 * (1 + logvar - mu ** 2 - logvar.exp())
    per_sample = per_dim.sum(dim=tuple(range(1, mu.ndim))) if mu.ndim > 1 else per_dim
    return {"none": per_sample, "mean": per_sample.mean(), "sum": per_sample.sum()}[reduction]


# ---------------------------------------------------------------- the table

NUMBER_OPS = [  # tensor (op) number and number (op) tensor: __radd__ and friends
    ("add", operator.add, {}), ("sub", operator.sub, {}), ("mul", operator.mul, {}),
    ("truediv", operator.truediv, {"avoid": (0.0,), "gap": 0.3}),
]


def _index(x, index):
    return x[index]


OPS = [
    # arithmetic, broadcasting
    Op("add", operator.add, operator.add, broadcast_pair()),
    Op("sub", operator.sub, operator.sub, broadcast_pair()),
    Op("mul", operator.mul, operator.mul, broadcast_pair()),
    Op("truediv", operator.truediv, operator.truediv, broadcast_pair(b={"avoid": (0.0,), "gap": 0.3})),
    # exponent 0 avoided: torch zeroes the base's gradient there, so its d2/(da db) is 0, not 1
    Op("pow_tensor_exponent", operator.pow, operator.pow,
       broadcast_pair(a={"min_value": 0.3, "max_value": 2.0},
                      b={"min_value": -2.0, "max_value": 2.0, "avoid": (0.0,)})),
    Op("pow_number_exponent", lambda x, p: x ** p, lambda x, p: x ** p, pow_number()),
    Op("rpow_number_base", lambda x, c: c ** x, lambda x, c: c ** x, with_number(c={"min_value": 0.2})),
    Op("neg", operator.neg, operator.neg, unary()),
    *[Op(f"{name}_number", (lambda op: lambda x, c: op(x, c))(op), (lambda op: lambda x, c: op(x, c))(op),
         with_number(c=values)) for name, op, values in NUMBER_OPS],
    *[Op(f"r{name}_number", (lambda op: lambda x, c: op(c, x))(op), (lambda op: lambda x, c: op(c, x))(op),
         with_number(x=values)) for name, op, values in NUMBER_OPS],
    Op("where", mg.where, torch.where, where_case()),
    Op("where_number", lambda c, x, other: mg.where(c, x, other),
       lambda c, x, other: torch.where(c, x, other), where_case(number=True)),
    # indexing: gradients scatter (and add up over repeated indices)
    Op("getitem_basic", _index, _torch_basic_index, basic_index()),
    Op("getitem_integer_arrays", _index, _torch_index, integer_array_index()),
    Op("getitem_boolean_mask", _index, _torch_index, boolean_mask_index()),
    # shape
    Op("reshape", lambda x, shape: x.reshape(shape), lambda x, shape: x.reshape(shape), reshape_case()),
    Op("view", lambda x, shape: x.view(shape), lambda x, shape: x.view(shape), reshape_case()),
    Op("permute", lambda x, dims: x.permute(dims), lambda x, dims: x.permute(dims), permute_case()),
    Op("transpose", mg.transpose, torch.transpose, transpose_case()),
    Op("flatten", mg.flatten, torch.flatten, flatten_case()),
    Op("squeeze", lambda x, dim: x.squeeze(dim), lambda x, dim: x.squeeze() if dim is None else x.squeeze(dim),
       squeeze_case()),
    Op("unsqueeze", mg.unsqueeze, torch.unsqueeze, unsqueeze_case()),
    Op("expand", lambda x, sizes: x.expand(sizes), lambda x, sizes: x.expand(sizes), expand_case()),
    Op("cat", lambda *xs, dim: mg.cat(xs, dim), lambda *xs, dim: torch.cat(xs, dim), cat_case()),
    Op("stack", lambda *xs, dim: mg.stack(xs, dim), lambda *xs, dim: torch.stack(xs, dim), cat_case(stack=True)),
    Op("split", lambda x, sections, dim: mg.split(x, sections, dim),
       lambda x, sections, dim: torch.split(x, sections, dim), split_case()),
    Op("chunk", mg.chunk, torch.chunk, split_case(chunk=True)),
    # reductions
    Op("sum", lambda x, dim, keepdim: x.sum(dim, keepdim), lambda x, dim, keepdim: x.sum(dim, keepdim),
       reduce_case()),
    Op("mean", lambda x, dim, keepdim: x.mean(dim, keepdim), lambda x, dim, keepdim: x.mean(dim, keepdim),
       reduce_case()),
    Op("var", lambda x, **kw: x.var(**kw), lambda x, **kw: x.var(**kw), var_case()),
    Op("std", lambda x, **kw: x.std(**kw), lambda x, **kw: x.std(**kw), var_case(spread=0.1)),
    Op("max_all", lambda x: mg.max(x), torch.max, unary(unique=True)),
    Op("min_all", lambda x: mg.min(x), torch.min, unary(unique=True)),
    Op("max_dim", mg.max, torch.max, reduce_case(unique=True, allow_none=False, allow_tuple=False)),
    Op("min_dim", mg.min, torch.min, reduce_case(unique=True, allow_none=False, allow_tuple=False)),
    Op("amax", F.amax, lambda x, dim, keepdim: torch.amax(x, () if dim is None else dim, keepdim),
       reduce_case(unique=True)),
    Op("amin", F.amin, lambda x, dim, keepdim: torch.amin(x, () if dim is None else dim, keepdim),
       reduce_case(unique=True)),
    Op("logsumexp", mg.logsumexp, torch.logsumexp, reduce_case(allow_none=False)),
    # linear algebra
    Op("matmul", operator.matmul, operator.matmul, matmul_case()),
    Op("linear", F.linear, TF.linear, linear_case()),
    # elementwise math and activations
    Op("exp", mg.exp, torch.exp, unary()),
    Op("log", mg.log, torch.log, unary(min_value=0.1, max_value=5.0)),
    Op("sqrt", mg.sqrt, torch.sqrt, unary(min_value=0.1, max_value=5.0)),
    Op("abs", mg.abs, torch.abs, unary(avoid=(0.0,), gap=1e-2)),
    Op("clamp", lambda x, **bounds: x.clamp(**bounds), lambda x, **bounds: x.clamp(**bounds), clamp_case()),
    Op("relu", F.relu, TF.relu, unary(avoid=(0.0,), gap=1e-2)),
    Op("leaky_relu", F.leaky_relu, TF.leaky_relu, leaky_relu_case()),
    Op("tanh", F.tanh, torch.tanh, unary()),
    Op("sigmoid", F.sigmoid, torch.sigmoid, unary()),
    Op("softplus", F.softplus, TF.softplus, softplus_case()),
    Op("softmax", F.softmax, TF.softmax, softmax_case()),
    Op("log_softmax", F.log_softmax, TF.log_softmax, softmax_case()),
    # losses
    Op("mse_loss", F.mse_loss, TF.mse_loss, pair_loss()),
    Op("l1_loss", F.l1_loss, TF.l1_loss, pair_loss(gap=1e-2)),
    Op("binary_cross_entropy", lambda x, t, weight=None, **kw: F.binary_cross_entropy(x, t, _mg(weight), **kw),
       lambda x, t, weight=None, **kw: TF.binary_cross_entropy(x, t, _th(weight), **kw), bce_case(),
       atol=1e-8),  # 1/x^2 terms near x = 0.02 cancel in the second derivative
    Op("binary_cross_entropy_with_logits",
       lambda x, t, weight=None, pos_weight=None, **kw: F.binary_cross_entropy_with_logits(
           x, t, _mg(weight), pos_weight=_mg(pos_weight), **kw),
       lambda x, t, weight=None, pos_weight=None, **kw: TF.binary_cross_entropy_with_logits(
           x, t, _th(weight), pos_weight=_th(pos_weight), **kw), bce_case(logits=True)),
    Op("cross_entropy_class_indices",
       lambda x, t, weight=None, **kw: F.cross_entropy(x, t, _mg(weight), **kw),
       lambda x, t, weight=None, **kw: TF.cross_entropy(x, t, _th(weight), **kw), class_index_case()),
    Op("cross_entropy_class_probabilities",
       lambda x, t, weight=None, **kw: F.cross_entropy(x, t, _mg(weight), **kw),
       lambda x, t, weight=None, **kw: TF.cross_entropy(x, t, _th(weight), **kw), class_probability_case()),
    Op("nll_loss", lambda x, t, weight=None, **kw: F.nll_loss(x, t, _mg(weight), **kw),
       lambda x, t, weight=None, **kw: TF.nll_loss(x, t, _th(weight), **kw), class_index_case(smoothing=False)),
    Op("kl_div", F.kl_div, TF.kl_div, kl_div_case()),
    Op("gaussian_kl", F.gaussian_kl, torch_gaussian_kl, gaussian_kl_case()),
]


test_op_matches_torch_forward_grad_and_second_derivative, test_op_matches_torch_on_many_more_examples = \
    op_property_tests(OPS, examples=25)


# ---------------------------------------------------------------- specific properties


def test_integer_index_repeats_add_up_in_the_gradient():
    x = mg.tensor(np.arange(4.0), dtype=mg.float64, requires_grad=True)
    x[np.array([1, 1, 3, 1])].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 3.0, 0.0, 1.0])


@pytest.mark.parametrize("pos_weight", [None, 2.0])
def test_bce_with_logits_of_plus_minus_1e4_is_finite_and_equals_torch(pos_weight):
    logits = np.array([-1e4, 1e4, -1e4, 1e4])
    target = np.array([0.0, 0.0, 1.0, 1.0])
    pw = None if pos_weight is None else np.full(4, pos_weight)
    loss = check_op(lambda x, t: F.binary_cross_entropy_with_logits(x, t, pos_weight=_mg(pw), reduction="none"),
                    lambda x, t: TF.binary_cross_entropy_with_logits(x, t, pos_weight=_th(pw), reduction="none"),
                    logits, target, name="bce_with_logits")
    assert np.isfinite(loss.numpy()).all()
    x = mg.tensor(logits, requires_grad=True)
    (g,) = mg.grad(F.binary_cross_entropy_with_logits(x, mg.tensor(target)), x)
    assert np.isfinite(g.numpy()).all()


def test_std_of_equal_values_has_zero_gradient_like_torch():
    x = mg.tensor(np.full((2, 3), 0.5), requires_grad=True)
    tx = torch.full((2, 3), 0.5, dtype=torch.float64, requires_grad=True)
    x.std(dim=1).sum().backward()
    tx.std(dim=1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
    np.testing.assert_array_equal(x.grad.numpy(), 0.0)


class _CubeWithConstantBackward(mg.Function):
    """x^3 whose backward is right in value but made from x's raw array (no graph to x)."""

    def forward(self, x):
        return x ** 3

    def backward(self, gy):
        return gy * mg.Tensor(3.0 * self.inputs[0].array ** 2)


def test_check_op_itself_catches_a_wrong_second_derivative():
    x = np.linspace(-1.0, 1.0, 5)
    check_op(lambda x: _CubeWithConstantBackward()(x), lambda x: x ** 3, x, gradgrad=False)
    with pytest.raises(AssertionError, match="second derivative w.r.t. input 0"):
        check_op(lambda x: _CubeWithConstantBackward()(x), lambda x: x ** 3, x)


# ---------------------------------------------------------------- bad input fails loudly


def _t(*shape, dtype=np.float64):
    return mg.tensor(np.ones(shape), dtype=dtype)


BAD_INPUT = [
    ("add_mismatched_shapes", lambda: _t(2, 3) + _t(4), RuntimeError, r"add: shapes \(2, 3\) and \(4,\)"),
    ("matmul_mismatched_shapes", lambda: _t(2, 3) @ _t(4, 5), RuntimeError,
     r"matmul: shapes \(2, 3\) and \(4, 5\)"),
    ("mse_loss_mismatched_shapes", lambda: F.mse_loss(_t(2, 3), _t(3)), ValueError,
     r"mse_loss: .*\(3,\).*\(2, 3\)"),
    ("cat_mismatched_shapes", lambda: mg.cat([_t(2, 3), _t(2, 4)], 0), RuntimeError, r"cat: .*\(2, 3\).*\(2, 4\)"),
    ("mse_loss_unknown_reduction", lambda: F.mse_loss(_t(2), _t(2), reduction="avg"), ValueError,
     r"mse_loss: unknown reduction 'avg'"),
    ("sum_dim_out_of_range", lambda: _t(2, 3).sum(dim=2), IndexError, r"sum: dim 2 .*\(2, 3\)"),
    ("softmax_dim_out_of_range", lambda: F.softmax(_t(2, 3), dim=-3), IndexError, r"softmax: dim -3 .*\(2, 3\)"),
    ("max_dim_out_of_range", lambda: _t(2, 3).max(dim=5), IndexError, r"max: dim 5 .*\(2, 3\)"),
    ("cat_dim_out_of_range", lambda: mg.cat([_t(2, 3), _t(2, 3)], 2), IndexError, r"cat: dim 2 .*\(2, 3\)"),
    ("unsqueeze_dim_out_of_range", lambda: _t(2, 3).unsqueeze(3), IndexError, r"unsqueeze: dim 3 .*\(2, 3\)"),
    ("transpose_dim_out_of_range", lambda: _t(2, 3).transpose(0, 2), IndexError,
     r"transpose: dim 2 .*\(2, 3\)"),
    ("permute_dim_out_of_range", lambda: _t(2, 3).permute(0, 3), IndexError, r"permute: dim 3 .*\(2, 3\)"),
    ("split_dim_out_of_range", lambda: _t(2, 3).split(1, dim=-3), IndexError, r"split: dim -3 .*\(2, 3\)"),
    ("invalid_reshape", lambda: _t(2, 3).reshape(4, 2), RuntimeError,
     r"reshape: shape \(4, 2\) is invalid for input of shape \(2, 3\)"),
]


@pytest.mark.parametrize("call, error, message", [pytest.param(*row[1:], id=row[0]) for row in BAD_INPUT])
def test_bad_input_raises_naming_the_op_and_shapes(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("name, slope", [("relu", None), ("leaky_relu", 0.2), ("leaky_relu", 3.0)])
def test_activations_split_over_cpu_threads_match_torch_on_a_large_batch(name, slope):
    # 2^17 values: above the size where the passes run on slices of the batch in threads
    rng = np.random.default_rng(4)
    x, gy = rng.standard_normal((8, 16, 32, 32)), rng.standard_normal((8, 16, 32, 32))
    x[0, 0, 0, :4] = 0.0  # the kink: both give the left piece's slope there
    args = () if slope is None else (slope,)
    mx, tx = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    mine, theirs = getattr(mg.nn.functional, name)(mx, *args), getattr(torch.nn.functional, name)(tx, *args)
    np.testing.assert_array_equal(mine.numpy(), theirs.detach().numpy())
    mine.backward(mg.tensor(gy))
    theirs.backward(torch.tensor(gy))
    np.testing.assert_array_equal(mx.grad.numpy(), tx.grad.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_cross_entropy_at_0_and_1_matches_torch(dtype, reduction):
    """Probabilities of exactly 0 and 1 (a saturated sigmoid) and next to them: torch's
    clamped values, its finite gradient for the input and its -logit(x) for the target."""
    tiny = np.finfo(dtype).tiny
    x = np.array([0, 1, 0, 1, tiny, 1 - np.finfo(dtype).epsneg, tiny, 0.3], dtype=dtype)
    y = np.array([0, 1, 1, 0, 1, 1, 0, 0.7], dtype=dtype)
    w = np.linspace(0.5, 2, x.size).astype(dtype)
    for weight in (None, w):
        a, t = mg.tensor(x, requires_grad=True), mg.tensor(y, requires_grad=True)
        loss = F.binary_cross_entropy(a, t, weight=None if weight is None else mg.tensor(weight), reduction=reduction)
        ga, gt = mg.grad(loss, [a, t], mg.ones_like(loss))
        ta, tt = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
        tloss = TF.binary_cross_entropy(ta, tt, weight=None if weight is None else torch.tensor(weight),
                                        reduction=reduction)
        tga, tgt = torch.autograd.grad(tloss, [ta, tt], torch.ones_like(tloss))
        assert loss.dtype == dtype and ga.dtype == dtype
        np.testing.assert_allclose(loss.array, tloss.detach().numpy(), rtol=1e-6)
        np.testing.assert_allclose(ga.array, tga.numpy(), rtol=1e-6)
        np.testing.assert_allclose(gt.array, tgt.numpy(), rtol=1e-6)
        assert np.isfinite(ga.array).all()


def test_bce_of_a_saturated_sigmoid_leaves_adam_finite():
    """A logit of 40 makes sigmoid exactly 1 in float32: one Adam step stays finite (as in torch)."""
    mg.manual_seed(0)
    net = mg.nn.Linear(3, 1)
    with mg.no_grad():
        net.weight.array[...] = 20.0
    opt = mg.optim.Adam(net.parameters(), lr=1e-3)
    p = mg.sigmoid(net(mg.ones((4, 3))))
    assert (p.array == 1).all()
    loss = mg.nn.BCELoss()(p, mg.zeros((4, 1)))
    assert np.isfinite(loss.item())
    loss.backward()
    opt.step()
    assert all(np.isfinite(q.array).all() for q in net.parameters())


PROMOTION_DTYPES = ["bool", "uint8", "int8", "int32", "int64", "float16", "float32", "float64"]


@pytest.mark.parametrize("op", ["add", "sub", "mul", "truediv", "pow"])
@pytest.mark.parametrize("shapes", [((3,), (3,)), ((3,), ()), ((), (3,)), ((), ())])
def test_binary_ops_follow_torchs_type_promotion(op, shapes):
    """Every pair of dtypes, as tensors with dimensions and 0-d: torch's result dtype and values."""
    checked = 0
    for x, y in itertools.product(PROMOTION_DTYPES, PROMOTION_DTYPES):
        a = (np.arange(1, 4) if shapes[0] else np.array(3)).astype(x)
        b = np.full(shapes[1], 2).astype(y)
        f = getattr(operator, op)
        try:
            expected = f(torch.tensor(a), torch.tensor(b))
        except RuntimeError:  # e.g. bool - bool, which torch refuses
            continue
        got = f(mg.tensor(a), mg.tensor(b))
        assert str(got.dtype) == str(expected.dtype).replace("torch.", ""), (op, x, shapes[0], y, shapes[1])
        np.testing.assert_allclose(got.array.astype(np.float64), expected.double().numpy(), rtol=1e-3)
        checked += 1
    assert checked >= 40


@pytest.mark.parametrize("dtype", PROMOTION_DTYPES)
@pytest.mark.parametrize("number", [True, 3, 0.5])
def test_a_python_number_does_not_upcast_a_tensor(dtype, number):
    """Except where its kind is above the tensor's (torch: bool + 3 is int64, int64 * 0.5 float32)."""
    a = np.ones(3, dtype=dtype)
    for f in (operator.add, operator.mul, lambda t, s: s * t, lambda t, s: s - t, operator.truediv):
        try:
            expected = f(torch.tensor(a), number)
        except RuntimeError:
            continue
        got = f(mg.tensor(a), number)
        assert str(got.dtype) == str(expected.dtype).replace("torch.", "")
        np.testing.assert_allclose(got.array.astype(np.float64), expected.double().numpy(), rtol=1e-3)


def test_mixed_float_dtypes_give_each_operand_its_own_gradient_dtype():
    """float32 * float64 is float64 (torch's promotion); each gradient comes back in its operand's dtype."""
    a32 = np.array([1.5, -2.0], dtype=np.float32)
    b64 = np.array([0.25, 3.0])
    a, b = mg.tensor(a32, requires_grad=True), mg.tensor(b64, requires_grad=True)
    ta, tb = torch.tensor(a32, requires_grad=True), torch.tensor(b64, requires_grad=True)
    y, ty = (a * b + a / b).sum(), (ta * tb + ta / tb).sum()
    assert y.dtype == np.float64
    ga, gb = mg.grad(y, [a, b])
    tga, tgb = torch.autograd.grad(ty, [ta, tb])
    assert ga.dtype == np.float32 and gb.dtype == np.float64
    np.testing.assert_allclose(ga.array, tga.numpy(), rtol=1e-6)
    np.testing.assert_allclose(gb.array, tgb.numpy(), rtol=1e-6)
    # an integer tensor times a float32 one is float32, as in torch (NumPy alone gives float64)
    assert (mg.tensor([1, 2]) * mg.tensor([0.5, 0.5])).dtype == np.float32


PROMOTING_OPS = {
    "where": lambda m, a, b: m.where(m.tensor([True, False, True]), a, b),
    "maximum": lambda m, a, b: m.maximum(a, b),
    "minimum": lambda m, a, b: m.minimum(a, b),
    "cat": lambda m, a, b: m.cat([a, b]),
}


@pytest.mark.parametrize("op", PROMOTING_OPS)
def test_where_maximum_minimum_and_cat_follow_torchs_type_promotion(op):
    """Every pair of dtypes torch accepts: torch's result dtype and values."""
    f, checked = PROMOTING_OPS[op], 0
    for x, y in itertools.product(PROMOTION_DTYPES, PROMOTION_DTYPES):
        a, b = np.array([1, 0, 3]).astype(x), np.array([2, 2, 0]).astype(y)
        try:
            expected = f(torch, torch.tensor(a), torch.tensor(b))
        except RuntimeError:
            continue
        got = f(mg, mg.tensor(a), mg.tensor(b))
        assert str(got.dtype) == str(expected.dtype).replace("torch.", ""), (op, x, y)
        np.testing.assert_array_equal(got.array.astype(np.float64), expected.double().numpy())
        checked += 1
    assert checked >= 40


@pytest.mark.parametrize("op", PROMOTING_OPS)
def test_promoting_ops_give_each_operand_its_own_gradient_dtype(op):
    a32, b64 = np.array([1.5, -2.0, 3.0], dtype=np.float32), np.array([0.25, 3.0, -1.0])
    a, b = mg.tensor(a32, requires_grad=True), mg.tensor(b64, requires_grad=True)
    ta, tb = torch.tensor(a32, requires_grad=True), torch.tensor(b64, requires_grad=True)
    weights = np.arange(1.0, 7.0)[:3 if op != "cat" else 6]
    ga, gb = mg.grad((PROMOTING_OPS[op](mg, a, b) * mg.tensor(weights)).sum(), [a, b])
    tga, tgb = torch.autograd.grad((PROMOTING_OPS[op](torch, ta, tb) * torch.tensor(weights)).sum(), [ta, tb])
    assert (ga.dtype, gb.dtype) == (np.float32, np.float64)
    np.testing.assert_array_equal(ga.array, tga.numpy())
    np.testing.assert_array_equal(gb.array, tgb.numpy())


@pytest.mark.parametrize("number", [0.5, 2, True])
@pytest.mark.parametrize("dtype", ["int64", "float32", "float64", "bool"])
def test_where_with_a_number_takes_torchs_dtype(dtype, number):
    a = np.array([1, 0, 1]).astype(dtype)
    for args in ((a, number), (number, a)):
        expected = torch.where(torch.tensor([True, False, False]), *(torch.tensor(v) if isinstance(v, np.ndarray)
                                                                     else v for v in args))
        got = mg.where(mg.tensor([True, False, False]), *(mg.tensor(v) if isinstance(v, np.ndarray) else v
                                                          for v in args))
        assert str(got.dtype) == str(expected.dtype).replace("torch.", ""), (dtype, number)
        np.testing.assert_array_equal(got.array.astype(np.float64), expected.double().numpy())
