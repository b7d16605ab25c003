"""Property-testing an op against PyTorch in a few lines.

Hypothesis draws the shapes, values and arguments; ``check_op`` runs minigan and
torch in float64 on the same inputs and compares the forward outputs, the first
derivatives and the second derivatives:

    from hypothesis import given, settings, strategies as st
    import torch
    import minigan as mg
    from minigan.testing import arrays, check_op, shapes

    @settings(deadline=None)  # the first call pays for torch's warm-up
    @given(x=arrays(shapes()), seed=st.integers(0, 2**32 - 1))
    def test_tanh_matches_torch(x, seed):
        check_op(mg.tanh, torch.tanh, x, seed=seed)

What is compared, for outputs y = f(x_1, ..., x_n) and random u, v:

    forward         y
    first           d<y, u>/dx_i                      (minigan.grad vs torch.autograd.grad)
    second          d<d<y, u>/dx, v>/d(x_i, u)        (both with create_graph=True)

The second line differentiates the backward pass itself, with respect to the inputs
and to the incoming gradient u: exactly what a gradient penalty (WGAN-GP, R1) does.
There a missing gradient counts as zeros; ``check_double_backward`` is the strict
form: which second derivatives exist (None, or a tensor of zeros) and which leaves
get a ``.grad`` must be torch's too (``tests/test_double_backward.py``).

For a family of ops, describe each once as an ``OpSpec`` (its minigan and torch
forms and a strategy drawing ``Case``s) and let ``op_property_tests`` write the
tests: a quick run of each op in the default suite, a long one marked ``slow``.

The strategies keep values well conditioned, so a disagreement means a bug and
not a rounding accident: bounded values, an optional distance from the kinks of
an op (0 for abs and relu), and distinct values where ties would make the
derivative ambiguous (max, min). This module needs the test extras (torch,
hypothesis); ``tests/test_ops.py`` uses it for every op.
"""
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from .autograd import Tensor, grad as mg_grad
from .backend import to_numpy

__all__ = ["shapes", "broadcastable_shapes", "mutually_broadcastable_shapes", "floats", "arrays",
           "reductions", "dims", "to_torch", "to_numpy", "assert_close", "check_op", "check_double_backward",
           "Case", "OpSpec",
           "check_case", "op_property_tests"]


# ---------------------------------------------------------------- strategies: shapes


def shapes(min_dims=0, max_dims=4, min_side=1, max_side=5):
    """Array shapes, from scalars ``()`` up to ``max_dims`` dims; small sides include 1."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


@st.composite
def broadcastable_shapes(draw, shape, min_dims=0, max_dims=None):
    """Shapes that broadcast *to* ``shape``: leading dims dropped, some sides set to 1.

    The shape of a bias, a loss weight, or the input of ``expand`` to ``shape``.
    """
    shape = tuple(shape)
    max_dims = len(shape) if max_dims is None else min(max_dims, len(shape))
    ndim = draw(st.integers(min(min_dims, max_dims), max_dims))
    tail = shape[len(shape) - ndim:]
    return tuple(draw(st.sampled_from(sorted({1, s}))) for s in tail)


@st.composite
def mutually_broadcastable_shapes(draw, num_shapes=2, min_dims=0, max_dims=4, min_side=1, max_side=5):
    """A tuple of ``num_shapes`` shapes that broadcast together (as the operands of ``a + b``).

    Each operand may miss leading dims or have size 1 where the others do not.
    """
    drawn = draw(hnp.mutually_broadcastable_shapes(num_shapes=num_shapes, min_dims=min_dims,
                                                   max_dims=max_dims, min_side=min_side, max_side=max_side))
    return drawn.input_shapes


# ---------------------------------------------------------------- strategies: values


def floats(min_value=-3.0, max_value=3.0, avoid=(), gap=1e-3):
    """Finite float64 numbers in [min_value, max_value], at least ``gap`` away from each value in ``avoid``."""
    values = st.floats(min_value, max_value, allow_nan=False, allow_infinity=False, allow_subnormal=False)
    avoid = tuple(avoid)
    if avoid:
        values = values.filter(lambda v: all(abs(v - k) >= gap for k in avoid))
    return values


def arrays(shape, dtype=np.float64, elements=None, *, min_value=-3.0, max_value=3.0, avoid=(), gap=1e-3,
           unique=False):
    """NumPy arrays of ``shape`` (a tuple or a strategy of tuples) with well-conditioned values.

    ``elements`` overrides the value strategy; otherwise values are bounded floats
    (see ``floats``), ``gap`` away from the kinks in ``avoid``. ``unique=True``
    makes all values distinct, so max/min have no ties.
    """
    if elements is None:
        if np.dtype(dtype).kind == "f":
            elements = floats(min_value, max_value, avoid, gap)
        elif np.dtype(dtype).kind == "b":
            elements = st.booleans()
        else:
            elements = st.integers(int(min_value), int(max_value))
    return hnp.arrays(dtype, shape, elements=elements, unique=unique)


def reductions(extra=()):
    """The ``reduction=`` argument of a loss: 'none', 'mean', 'sum' (plus ``extra``, e.g. 'batchmean')."""
    return st.sampled_from(("none", "mean", "sum") + tuple(extra))


@st.composite
def dims(draw, ndim, allow_none=False, allow_tuple=True, min_size=1):
    """A valid ``dim`` argument for a tensor with ``ndim`` dims: an int (maybe negative),
    a tuple of distinct dims, or None (with ``allow_none``).

    A 0-d tensor accepts dim 0 and -1, as in torch.
    """
    if allow_none and draw(st.booleans()):
        return None
    n = max(ndim, 1)
    if ndim == 0 or not allow_tuple or draw(st.booleans()):
        return draw(st.integers(-n, n - 1))
    chosen = draw(st.lists(st.integers(0, n - 1), min_size=min(min_size, n), max_size=n, unique=True))
    return tuple(d - n if draw(st.booleans()) else d for d in chosen)


# ---------------------------------------------------------------- comparing with torch


def to_torch(x, requires_grad=False):
    """A copy of ``x`` (minigan Tensor, array or number) as a torch tensor of the same dtype."""
    t = torch.tensor(np.array(to_numpy(x)))
    return t.requires_grad_(requires_grad) if requires_grad else t


def assert_close(actual, expected, rtol=1e-7, atol=1e-10, name="value", check_dtype=True):
    """Assert that a minigan result (Tensor or array) equals a torch one: shape, dtype, values.

    ``None`` on either side stands for zeros (an input the output does not use).
    """
    if actual is None and expected is None:
        return
    a = None if actual is None else to_numpy(actual)
    e = None if expected is None else to_numpy(expected)
    a = np.zeros_like(e) if a is None else a
    e = np.zeros_like(a) if e is None else e
    if a.shape != e.shape:
        raise AssertionError(f"{name}: minigan shape {a.shape} != torch shape {e.shape}")
    if check_dtype and a.dtype != e.dtype:
        raise AssertionError(f"{name}: minigan dtype {a.dtype} != torch dtype {e.dtype}")
    np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=f"{name} (minigan vs torch)")


def _tuple(y):
    return tuple(y) if isinstance(y, (tuple, list)) else (y,)


def _wants_grad(y):
    return y.requires_grad if isinstance(y, (Tensor, torch.Tensor)) else False


def check_op(mg_fn, torch_fn, *arrays, grad=True, gradgrad=True, rtol=1e-7, atol=1e-10,
             requires_grad=None, grad_outputs=None, seed=0, name=None):
    """Run ``mg_fn`` and ``torch_fn`` on the same ``arrays`` and compare everything.

    ``arrays`` are NumPy arrays or numbers; floating ones become float64 leaves
    that require grad (``requires_grad``, one bool per array, overrides which),
    integer and boolean ones constants (class indices, masks). Each fn takes the
    tensors and returns a tensor or a tuple of them (integer outputs, such as the
    indices of ``max``, are compared but not differentiated).

    Compares the outputs; with ``grad`` the vector-Jacobian products for random
    ``grad_outputs`` (normal values from ``seed`` unless given); with ``gradgrad``
    the gradient of <first derivatives, random v> with respect to the inputs and
    grad_outputs. An input an output does not use has gradient zero on both sides.
    Returns minigan's outputs.
    """
    name = name or getattr(mg_fn, "__name__", "op")
    arrays = [np.asarray(a) for a in arrays]
    if requires_grad is None:
        requires_grad = [a.dtype.kind == "f" for a in arrays]
    xs = [Tensor(a.copy(), requires_grad=bool(r)) for a, r in zip(arrays, requires_grad)]
    txs = [torch.tensor(a.copy(), requires_grad=bool(r)) for a, r in zip(arrays, requires_grad)]

    ys, tys = _tuple(mg_fn(*xs)), _tuple(torch_fn(*txs))
    if len(ys) != len(tys):
        raise AssertionError(f"{name}: minigan returned {len(ys)} outputs, torch {len(tys)}")
    for k, (y, ty) in enumerate(zip(ys, tys)):
        assert_close(y, ty, rtol, atol, f"{name}: output {k}")

    wrt = [i for i, r in enumerate(requires_grad) if r]
    if not grad or not wrt:
        return ys[0] if len(ys) == 1 else ys
    rng = np.random.default_rng(seed)
    outs = [k for k, ty in enumerate(tys) if ty.dtype.is_floating_point]
    if grad_outputs is None:
        grad_outputs = [rng.standard_normal(tys[k].shape) for k in outs]
    us = [Tensor(np.array(u, dtype=np.float64), requires_grad=True) for u in grad_outputs]
    tus = [torch.tensor(np.array(u, dtype=np.float64), requires_grad=True) for u in grad_outputs]

    # outputs that do not depend on any input carry no gradient on either side
    mg_pairs = [(ys[k], u) for k, u in zip(outs, us) if _wants_grad(ys[k])]
    t_pairs = [(tys[k], u) for k, u in zip(outs, tus) if _wants_grad(tys[k])]
    gs = _mg_vjp(mg_pairs, [xs[i] for i in wrt], gradgrad)
    tgs = _torch_vjp(t_pairs, [txs[i] for i in wrt], gradgrad)
    for i, g, tg in zip(wrt, gs, tgs):
        assert_close(g, tg, rtol, atol, f"{name}: first derivative w.r.t. input {i}")

    if not gradgrad:
        return ys[0] if len(ys) == 1 else ys
    vs = [rng.standard_normal(np.shape(arrays[i])) for i in wrt]
    second = [xs[i] for i in wrt] + us
    t_second = [txs[i] for i in wrt] + tus
    ggs = _mg_vjp(_pairs(gs, vs, Tensor), second, False)
    tggs = _torch_vjp(_pairs(tgs, vs, torch.tensor), t_second, False)
    labels = [f"input {i}" for i in wrt] + [f"grad_output {k}" for k in outs]
    for label, gg, tgg in zip(labels, ggs, tggs):
        assert_close(gg, tgg, rtol, atol, f"{name}: second derivative w.r.t. {label}")
    return ys[0] if len(ys) == 1 else ys


def _pairs(gs, vs, wrap):
    return [(g, wrap(v)) for g, v in zip(gs, vs) if g is not None and _wants_grad(g)]


def _mg_vjp(pairs, inputs, create_graph):
    if not pairs:
        return [None] * len(inputs)
    return list(mg_grad([y for y, _ in pairs], inputs, [u for _, u in pairs],
                        retain_graph=True, create_graph=create_graph, allow_unused=True))


def _torch_vjp(pairs, inputs, create_graph):
    if not pairs:
        return [None] * len(inputs)
    return list(torch.autograd.grad([y for y, _ in pairs], inputs, [u for _, u in pairs],
                                    retain_graph=True, create_graph=create_graph, allow_unused=True))


def check_double_backward(mg_fn, torch_fn, *arrays, gradgrad=True, rtol=1e-7, atol=1e-10, seed=0,
                          name=None):
    """Differentiate the backward pass of ``mg_fn`` as a gradient penalty does, and compare with
    torch which gradients exist as well as their values.

    For outputs y = f(x_1, ..., x_n), random u and v, with create_graph=True:

        g_i = d<y, u>/dx_i          s = sum_i <g_i, v_i>

    then ``grad(s, (x, u), allow_unused=True)`` and, after ``s.backward()``, every
    leaf's ``.grad``. Unlike ``check_op``, None is not zeros here: where torch
    returns zeros (relu's second derivative: its backward reads x) minigan must
    too, and a leaf gets a ``.grad`` exactly when torch's does. Where s depends on
    no leaf, both refuse to differentiate it; that counts as None for every leaf
    (torch sometimes records a graph that leads nowhere: batch norm in eval mode).
    Runs twice: u a leaf, and u a constant (the ones a penalty seeds its gradient with).
    """
    name = name or getattr(mg_fn, "__name__", "op")
    arrays = [np.asarray(a) for a in arrays]
    wrt = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    if not gradgrad or not wrt:
        return
    for u_is_leaf in (True, False):
        rng = np.random.default_rng(seed)
        xs = [Tensor(a.copy(), requires_grad=i in wrt) for i, a in enumerate(arrays)]
        txs = [torch.tensor(a.copy(), requires_grad=i in wrt) for i, a in enumerate(arrays)]
        ys, tys = _tuple(mg_fn(*xs)), _tuple(torch_fn(*txs))
        outs = [k for k, ty in enumerate(tys) if _wants_grad(ty)]
        if [k for k, y in enumerate(ys) if _wants_grad(y)] != outs:
            raise AssertionError(f"{name}: outputs that require grad differ from torch's {outs}")
        if not outs:
            return
        u_values = [rng.standard_normal(tys[k].shape) for k in outs]
        us = [Tensor(u.copy(), requires_grad=u_is_leaf) for u in u_values]
        tus = [torch.tensor(u.copy(), requires_grad=u_is_leaf) for u in u_values]
        where = f"{name} (u {'a leaf' if u_is_leaf else 'a constant'})"

        gs = mg_grad([ys[k] for k in outs], [xs[i] for i in wrt], us, create_graph=True, allow_unused=True)
        tgs = torch.autograd.grad([tys[k] for k in outs], [txs[i] for i in wrt], tus, create_graph=True,
                                  allow_unused=True)
        for i, g, tg in zip(wrt, gs, tgs):
            _assert_same_gradient(g, tg, rtol, atol, f"{where}: first derivative w.r.t. input {i}")

        vs = [rng.standard_normal(arrays[i].shape) for i in wrt]
        leaves = [xs[i] for i in wrt] + (us if u_is_leaf else [])
        t_leaves = [txs[i] for i in wrt] + (tus if u_is_leaf else [])
        labels = [f"input {i}" for i in wrt] + [f"grad_output {k}" for k in outs]
        s = _dot([g for g in gs if g is not None], [v for g, v in zip(gs, vs) if g is not None], Tensor)
        ts = _dot([g for g in tgs if g is not None], [v for g, v in zip(tgs, vs) if g is not None], torch.tensor)
        ggs = mg_grad(s, leaves, retain_graph=True, allow_unused=True) if _wants_grad(s) else [None] * len(leaves)
        tggs = (torch.autograd.grad(ts, t_leaves, retain_graph=True, allow_unused=True) if _wants_grad(ts)
                else [None] * len(leaves))
        for label, gg, tgg in zip(labels, ggs, tggs):
            _assert_same_gradient(gg, tgg, rtol, atol, f"{where}: second derivative w.r.t. {label}")
        if _wants_grad(s):
            s.backward()
        if _wants_grad(ts):
            ts.backward()
        for label, x, tx in zip(labels, leaves, t_leaves):
            _assert_same_gradient(x.grad, tx.grad, rtol, atol, f"{where}: .grad of {label} after backward")


def _dot(gs, vs, wrap):
    """sum_i <g_i, v_i> as one scalar tensor (None for no terms)."""
    s = None
    for g, v in zip(gs, vs):
        term = (g * wrap(v)).sum()
        s = term if s is None else s + term
    return s


def _assert_same_gradient(g, tg, rtol, atol, name):
    """Both None, or both tensors (zeros included) of equal values."""
    if (g is None) != (tg is None):
        raise AssertionError(f"{name}: minigan gives {'None' if g is None else 'a tensor'}, "
                             f"torch {'None' if tg is None else 'a tensor'}")
    assert_close(g, tg, rtol, atol, name)


# ---------------------------------------------------------------- a family of ops, written once


class Case(NamedTuple):
    """One drawn example of an op.

    ``arrays`` are differentiated: a tuple of positional arguments, or a dict of
    keyword arguments. ``params`` are the other keyword arguments; NumPy arrays
    among them (running statistics, say) are passed as constants, a fresh copy
    for each call since an op may update them in place. ``gradgrad=False`` skips
    the second derivative for this case only.
    """
    arrays: object
    params: dict = {}
    gradgrad: bool = True


@dataclass(frozen=True)
class OpSpec:
    """An op to property-test: ``mg(*arrays, **params)`` against ``torch(...)`` on ``case``s."""
    name: str
    mg: Callable
    torch: Callable
    case: st.SearchStrategy
    rtol: float = 1e-7
    atol: float = 1e-10
    gradgrad: bool = True


def check_case(op, data, check=check_op):
    """Draw a ``Case`` and a seed from hypothesis' ``data``; compare ``op`` with torch by ``check``
    (``check_op``, or ``check_double_backward``)."""
    case = data.draw(op.case, label="case")
    seed = data.draw(st.integers(0, 2 ** 32 - 1), label="seed")
    keywords = isinstance(case.arrays, dict)
    names = list(case.arrays) if keywords else []
    values = list(case.arrays.values()) if keywords else list(case.arrays)

    def bind(fn, wrap):
        def call(*xs):
            params = {k: wrap(v.copy()) if isinstance(v, np.ndarray) else v for k, v in case.params.items()}
            return fn(**dict(zip(names, xs)), **params) if keywords else fn(*xs, **params)
        return call

    check(bind(op.mg, Tensor), bind(op.torch, torch.tensor), *values, rtol=op.rtol, atol=op.atol,
          seed=seed, name=op.name, gradgrad=op.gradgrad and case.gradgrad)


def op_property_tests(ops, examples=25, slow_examples=300, check=check_op):
    """Two pytest tests over ``ops``: ``examples`` cases per op, and ``slow_examples``
    marked ``slow``, each case compared with torch by ``check``. Assign them to
    ``test_*`` names in a test module::

        test_matches_torch, test_matches_torch_on_many_more = op_property_tests(OPS)
    """
    import pytest
    params = [pytest.param(op, id=op.name) for op in ops]
    health = [HealthCheck.too_slow, HealthCheck.filter_too_much]

    def make(n):
        @pytest.mark.filterwarnings("ignore::UserWarning")  # e.g. torch's advice on kl_div's 'mean'
        @pytest.mark.parametrize("op", params)
        @settings(max_examples=n, deadline=None, suppress_health_check=health)
        @given(data=st.data())
        def test(op, data):
            check_case(op, data, check)
        return test

    return make(examples), pytest.mark.slow(make(slow_examples))


# ---------------------------------------------------------------- models and their torch twins


def load_into_twin(module, twin):
    """Load a minigan module's weights and buffers into its torch twin (the state_dict keys
    are torch's); returns the twin."""
    twin.load_state_dict({k: torch.tensor(np.asarray(v.numpy())) for k, v in module.state_dict().items()})
    return twin


def assert_params_match(module, twin, rtol=1e-5, atol=1e-6, grads=False):
    """Every parameter of ``module`` (or its ``.grad`` with ``grads=True``) equals its twin's, by name."""
    theirs = dict(twin.named_parameters())
    for name, p in module.named_parameters():
        mine, ref = (p.grad, theirs[name].grad) if grads else (p, theirs[name])
        np.testing.assert_allclose(mine.numpy(), ref.detach().numpy(), rtol=rtol, atol=atol, err_msg=name)


def assert_state_match(module, twin, rtol=1e-5, atol=1e-6):
    """Every entry of ``module``'s state_dict equals its twin's, by key: parameters and
    buffers (running statistics, batches tracked)."""
    theirs = twin.state_dict()
    for name, value in module.state_dict().items():
        np.testing.assert_allclose(to_numpy(value), to_numpy(theirs[name]), rtol=rtol, atol=atol, err_msg=name)


def assert_normal_init(module, std=0.02):
    """The DCGAN / pix2pix init over ``module``'s parameters: every bias 0, every norm's
    scale (1-D) ~ N(1, std) and every conv or linear weight ~ N(0, std), within the
    sampling error of n draws (the mean within 5 std / sqrt(n), the std within
    5 std / sqrt(2n))."""
    for name, p in module.named_parameters():
        w = p.numpy().astype(np.float64).ravel()
        if name.endswith("bias"):
            assert (w == 0).all(), name
            continue
        mean, n = (1.0 if p.ndim == 1 else 0.0), len(w)
        assert abs(w.mean() - mean) < 5 * std / np.sqrt(n), name
        assert abs(w.std() - std) < 5 * std / np.sqrt(2 * n), name


def assert_forward_backward_match(module, twin, x, rtol=1e-9, atol=1e-12, seed=0):
    """Run ``module`` and its torch ``twin`` (same weights) on the array ``x``, then
    backpropagate the same random weighting of the outputs through both: the outputs,
    the input's gradient, every parameter's gradient and the state after (batch norm's
    running statistics) must agree. Returns minigan's output."""
    xm, xt = Tensor(np.array(x), requires_grad=True), torch.tensor(np.array(x), requires_grad=True)
    out, tout = module(xm), twin(xt)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=rtol, atol=atol, err_msg="output")
    weight = np.random.default_rng(seed).standard_normal(out.shape).astype(out.numpy().dtype)
    (out * Tensor(weight)).sum().backward()
    (tout * torch.tensor(weight)).sum().backward()
    np.testing.assert_allclose(xm.grad.numpy(), xt.grad.numpy(), rtol=rtol, atol=atol, err_msg="input's gradient")
    assert_params_match(module, twin, rtol=rtol, atol=atol, grads=True)
    assert_state_match(module, twin, rtol=rtol, atol=atol)
    return out
