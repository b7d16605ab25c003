"""Second derivatives as a gradient penalty takes them, against torch: zeros included.

A penalty (WGAN-GP, R1) differentiates a gradient taken with ``create_graph=True``.
Through a piecewise-linear op that gradient is linear in the incoming gradient
and flat in x: torch still records it as a function of x (``relu``'s backward
reads x), so differentiating it w.r.t. x gives *zeros*, and a leaf reached only
that way gets a zero ``.grad``, which Adam then still moves by its momentum.
Through a linear op whose backward reads nothing (``pad`` with a constant, a
reshape), torch gives None. minigan must give the same in each case.

For every differentiable op (the tables of test_ops, test_pool, test_norm and
test_conv, and the ops below), ``minigan.testing.check_double_backward`` draws a
case, takes g = d<y, u>/dx with create_graph=True and compares with torch

    grad(<g, v>, (x, u), allow_unused=True)   None or a tensor, and its values
    <g, v>.backward()                          which leaves get a .grad, and its values

once with u a leaf and once with u a constant (a penalty's seed of ones). Then the
penalty itself, end to end through a leaky-ReLU critic, and empty batches.
"""
import numpy as np
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as TF
from hypothesis import assume, strategies as st

import minigan as mg
import minigan.functional as F
import test_conv
import test_norm
import test_ops
import test_pool
from minigan.functional.activation import fused_leaky_relu
from minigan.testing import (Case, OpSpec as Op, arrays, assert_close, check_double_backward, check_op, floats,
                             load_into_twin, op_property_tests, shapes)
from test_ops import broadcast_pair, unary


# ---------------------------------------------------------------- ops outside the tables


@st.composite
def hardtanh_case(draw):
    low, high = sorted(draw(st.lists(floats(-2, 2), min_size=2, max_size=2, unique=True)))
    assume(high - low > 0.1)
    return Case((draw(arrays(shapes(), avoid=(low, high), gap=1e-2)),), {"min_val": low, "max_val": high})


@st.composite
def fused_leaky_relu_case(draw):
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 4))) + draw(shapes(max_dims=2, max_side=3))
    x, b = draw(arrays(shape)), draw(arrays(shape[1:2]))
    assume(np.abs(x + b.reshape((1, -1) + (1,) * (x.ndim - 2))).min() > 1e-2)  # the kink
    return Case((x, b), {"negative_slope": draw(floats(0.0, 0.5)), "scale": draw(floats(0.5, 2.0))})


def torch_fused_leaky_relu(x, bias, negative_slope, scale):
    return TF.leaky_relu(x + bias.reshape((1, -1) + (1,) * (x.ndim - 2)), negative_slope) * scale


@st.composite
def flip_case(draw):
    shape = draw(shapes(min_dims=1))
    dims = draw(st.lists(st.integers(0, len(shape) - 1), min_size=1, unique=True))
    return Case((draw(arrays(shape)),), {"dims": tuple(dims)})


@st.composite
def repeat_case(draw):
    shape = draw(shapes(max_dims=3, max_side=3))
    sizes = tuple(draw(st.integers(1, 3)) for _ in range(len(shape) + draw(st.integers(0, 1))))
    return Case((draw(arrays(shape)),), {"sizes": sizes})


@st.composite
def norm_case(draw):
    shape = draw(shapes(min_dims=1))
    p = draw(st.sampled_from([1, 2]))
    x = draw(arrays(shape, avoid=(0.0,), gap=0.1))  # |x| and the norm at 0 have kinks
    return Case((x,), {"p": p, "dim": draw(st.sampled_from([None, -1])), "keepdim": draw(st.booleans())})


@st.composite
def untied_pair(draw):
    """Two broadcasting arrays with no ties (where torch splits the gradient of max in two)."""
    case = draw(broadcast_pair())
    a, b = case.arrays
    assume(np.abs(a - b).min(initial=1.0) > 1e-2)
    return case


@st.composite
def lerp_case(draw):
    shape = draw(shapes())
    return Case(tuple(draw(arrays(shape)) for _ in range(3)))


@st.composite
def dropout_case(draw):
    # which units are kept is random (minigan's and torch's streams differ), except at p = 0, p = 1, in eval
    p, training = draw(st.sampled_from([(0.0, True), (1.0, True), (0.5, False)]))
    return Case((draw(arrays(shapes())),), {"p": p, "training": training})


def _conv(name, mg_op, torch_op, cases):
    """test_conv's cases, as rows of the table: arrays x, w (and b) and the keyword arguments."""
    def case(drawn):
        conv_case, seed = drawn
        return Case(tuple(conv_case.arrays(seed)), conv_case.kwargs)
    return Op(name, lambda x, w, b=None, **kw: mg_op(x, w, b, **kw),
              lambda x, w, b=None, **kw: torch_op(x, w, b, **kw),
              st.tuples(cases, st.integers(0, 2 ** 32 - 1)).map(case), rtol=1e-9, atol=1e-11)


OTHER_OPS = [
    Op("hardtanh", F.hardtanh, TF.hardtanh, hardtanh_case()),
    Op("sign", F.sign, torch.sign, unary()),
    Op("x_times_sign", lambda x: x * F.sign(x), lambda x: x * torch.sign(x), unary(avoid=(0.0,), gap=1e-2)),
    Op("silu", F.silu, TF.silu, unary()),
    Op("logsigmoid", F.logsigmoid, TF.logsigmoid, unary()),
    Op("fused_leaky_relu", fused_leaky_relu, torch_fused_leaky_relu, fused_leaky_relu_case()),
    Op("sin", F.sin, torch.sin, unary()),
    Op("cos", F.cos, torch.cos, unary()),
    Op("log1p", F.log1p, torch.log1p, unary(min_value=-0.9, max_value=3.0)),
    Op("rsqrt", F.rsqrt, torch.rsqrt, unary(min_value=0.1, max_value=5.0)),
    Op("square", F.square, torch.square, unary()),
    Op("lerp", F.lerp, torch.lerp, lerp_case()),
    Op("maximum", F.maximum, torch.maximum, untied_pair()),
    Op("minimum", F.minimum, torch.minimum, untied_pair()),
    Op("flip", F.flip, torch.flip, flip_case()),
    Op("repeat", lambda x, sizes: x.repeat(sizes), lambda x, sizes: x.repeat(sizes), repeat_case()),
    Op("norm", F.norm, lambda x, p, dim, keepdim: torch.norm(x, p, dim, keepdim), norm_case()),
    Op("dropout", F.dropout, TF.dropout, dropout_case()),
    *[_conv(name, *row) for name, row in test_conv.OPS.items()],
]

OPS = test_ops.OPS + test_pool.OPS + test_norm.OPS + OTHER_OPS

test_second_derivatives_and_grads_match_torch_zeros_included, test_many_more_second_derivatives_match_torch = \
    op_property_tests(OPS, examples=8, slow_examples=100, check=check_double_backward)


# ---------------------------------------------------------------- the penalty, end to end


def _leaky_relu_critics():
    """A leaky-ReLU MLP critic (WGAN-GP's toy critic with DCGAN's activation) and its torch twin."""
    mg.manual_seed(0)
    critic = mg.nn.Sequential(mg.nn.Linear(2, 16), mg.nn.LeakyReLU(0.2), mg.nn.Linear(16, 16),
                              mg.nn.LeakyReLU(0.2), mg.nn.Linear(16, 1))
    twin = tnn.Sequential(tnn.Linear(2, 16), tnn.LeakyReLU(0.2), tnn.Linear(16, 16), tnn.LeakyReLU(0.2),
                          tnn.Linear(16, 1))
    return critic.double(), load_into_twin(critic, twin).double()  # float64: Adam divides by tiny grads


def _torch_penalty(critic, real, fake, eps):
    xhat = (eps[:, None] * real + (1 - eps[:, None]) * fake).requires_grad_(True)
    grads, = torch.autograd.grad(critic(xhat).sum(), xhat, create_graph=True)
    return 10.0 * ((grads.norm(dim=1) - 1) ** 2).mean()


def test_penalty_alone_gives_the_first_bias_a_zero_grad_and_adam_moves_it_as_torch_does():
    from minigan.models.wgan import gradient_penalty
    critic, twin = _leaky_relu_critics()
    opt = mg.optim.Adam(critic.parameters(), lr=1e-2, betas=(0.5, 0.9))
    t_opt = torch.optim.Adam(twin.parameters(), lr=1e-2, betas=(0.5, 0.9))
    rng = np.random.default_rng(0)
    real, fake = (rng.standard_normal((8, 2)) for _ in range(2))
    eps = rng.random(8)

    # a critic step first, so that every parameter has momentum
    (critic(mg.tensor(fake)).mean() - critic(mg.tensor(real)).mean()).backward()
    (twin(torch.tensor(fake)).mean() - twin(torch.tensor(real)).mean()).backward()
    opt.step(), t_opt.step()
    opt.zero_grad(), t_opt.zero_grad()

    # then the penalty alone: the first bias moves only the leaky ReLUs' kinks, so its gradient is 0
    gradient_penalty(critic, mg.tensor(real), mg.tensor(fake), weight=10.0, eps=mg.tensor(eps)).backward()
    _torch_penalty(twin, torch.tensor(real), torch.tensor(fake), torch.tensor(eps)).backward()
    bias, t_bias = critic[0].bias, twin[0].bias
    assert t_bias.grad is not None and not t_bias.grad.any()
    assert bias.grad is not None and not bias.grad.numpy().any()
    for (name, p), (_, tp) in zip(critic.named_parameters(), twin.named_parameters()):
        assert (p.grad is None) == (tp.grad is None), name
        assert_close(p.grad, tp.grad, rtol=1e-9, atol=1e-12, name=f"{name}.grad")

    before = bias.numpy().copy()
    opt.step(), t_opt.step()
    assert not np.array_equal(bias.numpy(), before)  # Adam's momentum still moves it
    for (name, p), (_, tp) in zip(critic.named_parameters(), twin.named_parameters()):
        assert_close(p, tp, rtol=1e-9, atol=1e-12, name=name)


@pytest.mark.parametrize("op", ["leaky_relu", "relu", "pad_reflect", "pad_replicate", "avg_pool2d",
                                "max_pool2d", "hardtanh", "abs"])
def test_grad_of_a_penalty_through_a_piecewise_linear_op_is_zeros_not_an_error(op):
    # the penalty's form: grad_outputs are the ones, and only x requires grad
    call = {"leaky_relu": lambda F, x: F.leaky_relu(x, 0.2), "relu": lambda F, x: F.relu(x),
            "pad_reflect": lambda F, x: F.pad(x, (1, 1, 1, 1), mode="reflect"),
            "pad_replicate": lambda F, x: F.pad(x, (1, 1, 1, 1), mode="replicate"),
            "avg_pool2d": lambda F, x: F.avg_pool2d(x, 2), "max_pool2d": lambda F, x: F.max_pool2d(x, 2),
            "hardtanh": lambda F, x: F.hardtanh(x), "abs": lambda F, x: x.abs()}[op]
    data = np.random.default_rng(1).standard_normal((1, 2, 4, 4))
    x, tx = mg.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    y, ty = call(F, x), call(TF, tx)
    (g,) = mg.grad(y, x, mg.ones_like(y), create_graph=True)
    (tg,) = torch.autograd.grad(ty, tx, torch.ones_like(ty), create_graph=True)
    (gg,) = mg.grad((g * g).sum(), x)
    (tgg,) = torch.autograd.grad((tg * tg).sum(), tx)
    assert_close(gg, tgg)
    np.testing.assert_array_equal(gg.numpy(), 0.0)


@pytest.mark.parametrize("op", ["pad_constant", "pad_circular", "interpolate_nearest", "interpolate_bilinear",
                                "pixel_shuffle", "reshape"])
def test_grad_of_a_penalty_through_a_linear_op_that_reads_no_input_is_refused_as_in_torch(op):
    # their backward is the adjoint move alone: the gradient of <g, g> depends on nothing that requires grad
    call = {"pad_constant": lambda F, x: F.pad(x, (1, 1, 1, 1)),
            "pad_circular": lambda F, x: F.pad(x, (1, 1, 1, 1), mode="circular"),
            "interpolate_nearest": lambda F, x: F.interpolate(x, scale_factor=2),
            "interpolate_bilinear": lambda F, x: F.interpolate(x, scale_factor=1.5, mode="bilinear"),
            "pixel_shuffle": lambda F, x: F.pixel_shuffle(x, 2), "reshape": lambda F, x: x.reshape(1, -1)}[op]
    data = np.random.default_rng(1).standard_normal((1, 4, 4, 4))
    for module, tensor, grad in ((F, mg.tensor, mg.grad), (TF, torch.tensor, torch.autograd.grad)):
        x = tensor(data, requires_grad=True)
        y = call(module, x)
        (g,) = grad(y, x, tensor(np.ones(y.shape)), create_graph=True)
        with pytest.raises(RuntimeError, match="does not require grad"):
            grad((g * g).sum(), x)


# ---------------------------------------------------------------- empty batches


def _w(n, seed=0):
    return np.random.default_rng(seed).standard_normal(n)


EMPTY_BATCHES = {  # name: (minigan call, torch call, arrays); batch N = 0 unless the name says
    "batch_norm_training": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                            lambda x, w, b: TF.batch_norm(x, None, None, w, b, training=True),
                            [np.zeros((0, 3, 4, 4)), _w(3), _w(3, 1)]),
    "batch_norm_training_2d": (lambda x: F.batch_norm(x, None, None, training=True),
                               lambda x: TF.batch_norm(x, None, None, training=True), [np.zeros((0, 3))]),
    "batch_norm_training_1d_empty": (lambda x: F.batch_norm(x, None, None, training=True),
                                     lambda x: TF.batch_norm(x, None, None, training=True), [np.zeros((0,))]),
    "batch_norm_no_channels": (lambda x: F.batch_norm(x, None, None, training=True),
                               lambda x: TF.batch_norm(x, None, None, training=True), [np.zeros((2, 0))]),
    "batch_norm_eval": (lambda x, w, b: F.batch_norm(x, mg.zeros(3, dtype=mg.float64),
                                                     mg.ones(3, dtype=mg.float64), w, b),
                        lambda x, w, b: TF.batch_norm(x, torch.zeros(3, dtype=torch.float64),
                                                      torch.ones(3, dtype=torch.float64), w, b),
                        [np.zeros((0, 3)), _w(3), _w(3, 1)]),
    "instance_norm": (lambda x: F.instance_norm(x), lambda x: TF.instance_norm(x), [np.zeros((0, 3, 4, 4))]),
    "instance_norm_empty_images": (lambda x, w, b: F.instance_norm(x, weight=w, bias=b),
                                   lambda x, w, b: TF.instance_norm(x, weight=w, bias=b),
                                   [np.zeros((2, 3, 0)), _w(3), _w(3, 1)]),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (5,), w, b), lambda x, w, b: TF.layer_norm(x, (5,), w, b),
                   [np.zeros((0, 5)), _w(5), _w(5, 1)]),
    "group_norm": (lambda x, w, b: F.group_norm(x, 2, w, b), lambda x, w, b: TF.group_norm(x, 2, w, b),
                   [np.zeros((0, 4, 3, 3)), _w(4), _w(4, 1)]),
    "group_norm_2d": (lambda x: F.group_norm(x, 2), lambda x: TF.group_norm(x, 2), [np.zeros((0, 4))]),
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
               lambda x, w, b: TF.conv2d(x, w, b, stride=2, padding=1),
               [np.zeros((0, 3, 5, 5)), _w((4, 3, 3, 3)), _w(4)]),
    "conv_transpose2d": (lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2),
                         lambda x, w, b: TF.conv_transpose2d(x, w, b, stride=2),
                         [np.zeros((0, 3, 5, 5)), _w((3, 4, 3, 3)), _w(4)]),
    "linear": (F.linear, TF.linear, [np.zeros((0, 3)), _w((2, 3)), _w(2)]),
    **{f"{loss}_{reduction}": ((lambda f, r: lambda x, t: f(x, t, reduction=r))(getattr(F, loss), reduction),
                               (lambda f, r: lambda x, t: f(x, t, reduction=r))(getattr(TF, loss), reduction),
                               [np.zeros((0, 3)), np.zeros((0, 3))])
       for loss in ("mse_loss", "l1_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
                    "cross_entropy", "kl_div")
       for reduction in ("mean", "sum", "none")},
    **{f"{loss}_class_indices_{reduction}": (
        (lambda f, r: lambda x, t: f(x, t, reduction=r))(getattr(F, loss), reduction),
        (lambda f, r: lambda x, t: f(x, t, reduction=r))(getattr(TF, loss), reduction),
        [np.zeros((0, 3, 2, 2)), np.zeros((0, 2, 2), dtype=np.int64)])
       for loss in ("cross_entropy", "nll_loss") for reduction in ("mean", "sum", "none")},
}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's note on 0 / 0 in the 'mean' of nothing
@pytest.mark.filterwarnings("ignore::UserWarning")  # torch's advice on kl_div's 'mean'
@pytest.mark.parametrize("name", EMPTY_BATCHES)
def test_empty_batch_gives_torchs_output_and_gradients(name):
    mg_fn, torch_fn, arrays = EMPTY_BATCHES[name]
    check_op(mg_fn, torch_fn, *arrays, name=name, gradgrad=False)
    # and the gradients are tensors where torch's are (zeros for weights and biases), not None
    xs = [mg.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    txs = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    y, ty = mg_fn(*xs), torch_fn(*txs)
    gs = mg.grad(y, [x for x in xs if x.requires_grad], mg.ones_like(y), allow_unused=True)
    tgs = torch.autograd.grad(ty, [x for x in txs if x.requires_grad], torch.ones_like(ty), allow_unused=True)
    assert [g is None for g in gs] == [g is None for g in tgs]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("shape", [(0, 3, 4, 4), (2, 3, 0)])
def test_running_statistics_after_an_empty_batch_are_torchs(shape):
    # batch norm leaves them; instance norm averages the statistics of no instances (NaN) when N = 0
    for mg_norm, torch_norm in ((F.batch_norm, TF.batch_norm), (F.instance_norm, TF.instance_norm)):
        mine = [mg.zeros(3, dtype=mg.float64), mg.ones(3, dtype=mg.float64)]
        theirs = [torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)]
        mg_norm(mg.zeros(*shape, dtype=mg.float64), *mine, momentum=0.5)
        torch_norm(torch.zeros(*shape, dtype=torch.float64), *theirs, momentum=0.5)
        for stat, t_stat in zip(mine, theirs):
            assert_close(stat, t_stat, name=mg_norm.__name__)


def test_batchnorm_module_counts_an_empty_batch_and_keeps_its_statistics_as_torch():
    module, twin = mg.nn.BatchNorm2d(3), tnn.BatchNorm2d(3)
    module(mg.zeros(0, 3, 4, 4)).sum().backward()
    twin(torch.zeros(0, 3, 4, 4)).sum().backward()
    for key, value in twin.state_dict().items():
        assert_close(module.state_dict()[key], value, name=key)
    assert_close(module.weight.grad, twin.weight.grad, name="weight.grad")


REFUSED = {  # torch refuses these; so does minigan, with the same kind of error
    "batch_norm_one_value_per_channel": (lambda F, t: F.batch_norm(t(1, 3), None, None, training=True),
                                         ValueError),
    "batch_norm_one_value_empty_channels": (lambda F, t: F.batch_norm(t(1, 0), None, None, training=True),
                                            ValueError),
    "instance_norm_one_pixel": (lambda F, t: F.instance_norm(t(2, 3, 1, 1)), ValueError),
    "group_norm_indivisible_channels_on_an_empty_batch": (lambda F, t: F.group_norm(t(0, 3), 2), RuntimeError),
    "layer_norm_wrong_shape_on_an_empty_batch": (lambda F, t: F.layer_norm(t(0, 4), (5,)), RuntimeError),
}


@pytest.mark.parametrize("name", REFUSED)
def test_what_torch_refuses_on_empty_or_tiny_batches_minigan_refuses(name):
    call, error = REFUSED[name]
    with pytest.raises(error):
        call(TF, lambda *s: torch.zeros(*s, dtype=torch.float64))
    with pytest.raises(error):
        call(F, lambda *s: mg.zeros(*s, dtype=mg.float64))


def test_instance_norm_with_affine_on_an_empty_batch_returns_what_batch_norm_does():
    """torch 2.13 fails here with an IndexError from inside (its weight.repeat(0)[0]); minigan answers
    as torch's batch_norm and its own instance_norm without affine do: empty output, zero gradients."""
    w = mg.tensor(_w(3), requires_grad=True)
    with pytest.raises(IndexError):
        TF.instance_norm(torch.zeros(0, 3, 4, 4, dtype=torch.float64), weight=torch.tensor(_w(3)))
    y = F.instance_norm(mg.zeros(0, 3, 4, 4, dtype=mg.float64), weight=w)
    assert y.shape == (0, 3, 4, 4)
    y.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), np.zeros(3))
