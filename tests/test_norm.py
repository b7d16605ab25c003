"""Normalization ops and layers against torch.

One table (``OPS``), one property: hypothesis draws the shape (batch 1, channel
1, odd and non-square sides, 1 to 3 spatial dims), which affine parameters are
given, and the op's arguments; ``minigan.testing.check_op`` compares the
forward, the first derivatives and the second derivatives (what WGAN-GP and R1
differentiate) with torch in float64. Values are normal with a drawn scale and
offset, so no variance is near zero: a norm of a constant is all rounding.

AdaIN, AdaIN style transfer, pixel norm and the minibatch standard deviation
have no torch op: their references below are the papers' formulas written in
plain torch (StyleGAN2-ADA's ``MinibatchStdLayer`` verbatim), and a numerical
``gradgradcheck`` confirms their second derivatives independently.

Then: running statistics after three training batches equal torch's, eval mode
uses them, ``state_dict`` keys match, float32 stays finite on inputs of scale
1e3, and bad input fails with the op's name and the shapes.
"""
from functools import partial

import numpy as np
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as TF
from hypothesis import strategies as st

import minigan as mg
from minigan.functional.normalization import (adain, adain_transfer, batch_norm, group_norm, instance_norm,
                                     layer_norm, minibatch_stddev, pixel_norm)
from minigan.gradcheck import gradgradcheck
from minigan.testing import Case, OpSpec, op_property_tests


# arrays: name -> float64 array, differentiated; params: arrays there are constants (running
# stats); Case.gradgrad is False where torch's own double backward fails (see ``affine``)
Op = partial(OpSpec, atol=1e-9)


# ---------------------------------------------------------------- references in plain torch


def torch_adain(x, style_scale, style_bias, eps=1e-5):
    shape = x.shape[:2] + (1,) * (x.ndim - 2)
    return TF.instance_norm(x, eps=eps) * style_scale.reshape(shape) + style_bias.reshape(shape)


def torch_adain_transfer(content, style, eps=1e-5):
    dims = tuple(range(2, style.ndim))
    var, mean = torch.var_mean(style, dims, unbiased=False, keepdim=True)
    return TF.instance_norm(content, eps=eps) * torch.sqrt(var + eps) + mean


def torch_pixel_norm(x, eps=1e-8):
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


def torch_minibatch_stddev(x, group_size=4, num_features=1):
    """StyleGAN2-ADA's MinibatchStdLayer.forward (training/networks.py), verbatim."""
    N, C, H, W = x.shape
    G = min(group_size, N) if group_size is not None else N
    F = num_features
    c = C // F
    y = x.reshape(G, -1, F, c, H, W)    # [GnFcHW] Split minibatch N into n groups of size G, and channels C into F groups of size c.
    y = y - y.mean(dim=0)               # [GnFcHW] Subtract mean over group.
    y = y.square().mean(dim=0)          # [nFcHW]  Calc variance over group.
    y = (y + 1e-8).sqrt()               # [nFcHW]  Calc stddev over group.
    y = y.mean(dim=[2, 3, 4])           # [nF]     Take average over channels and pixels.
    y = y.reshape(-1, F, 1, 1)          # [nF11]   Add missing dimensions.
    y = y.repeat(G, 1, H, W)            # [NFHW]   Replicate over group and pixels.
    return torch.cat([x, y], dim=1)     # [NCHW]   Append to input as new channels.


# ---------------------------------------------------------------- cases


@st.composite
def values(draw, shape):
    """Normal values with a drawn scale and offset (never a constant array)."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    scale, offset = draw(st.floats(0.3, 3.0)), draw(st.floats(-2.0, 2.0))
    return rng.standard_normal(shape) * scale + offset


@st.composite
def nc_shape(draw, spatial=(0, 3), min_values=2):
    """(N, C, *spatial), at least ``min_values`` values per channel over N and the spatial dims."""
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    rest = tuple(draw(st.integers(1, 5)) for _ in range(draw(st.integers(*spatial))))
    if n * int(np.prod(rest)) < min_values:
        n = min_values
    return (n, c) + rest


@st.composite
def affine(draw, arrays, shape, bias_alone=True):
    """Adds weight and/or bias to ``arrays``; returns whether torch can take second derivatives
    (torch 2.x's double backward of its norms fails on a bias without a weight, and
    group_norm's first backward too: ``bias_alone=False`` leaves that case out)."""
    which = draw(st.sampled_from(["", "weight", "weight+bias"] + ["bias"] * bias_alone))
    if "weight" in which:
        arrays["weight"] = draw(values(shape))
    if "bias" in which:
        arrays["bias"] = draw(values(shape))
    return which != "bias"


@st.composite
def batch_norm_case(draw):
    shape = draw(nc_shape())
    c = shape[1]
    arrays = {"input": draw(values(shape))}
    gradgrad = draw(affine(arrays, (c,)))
    params = {"training": draw(st.booleans()), "eps": draw(st.sampled_from([1e-5, 1e-3])),
              "running_mean": None, "running_var": None}
    if not params["training"] or draw(st.booleans()):
        rng = np.random.default_rng(draw(st.integers(0, 100)))
        params["running_mean"] = rng.standard_normal(c)
        params["running_var"] = rng.uniform(0.2, 3.0, c)
        params["momentum"] = draw(st.floats(0.0, 1.0))
    return Case(arrays, params, gradgrad)


@st.composite
def instance_norm_case(draw):
    shape = draw(nc_shape(spatial=(1, 3)))
    if int(np.prod(shape[2:])) < 2:
        shape = shape[:2] + (2,) + shape[3:]
    c = shape[1]
    arrays = {"input": draw(values(shape))}
    gradgrad = draw(affine(arrays, (c,)))
    params = {"use_input_stats": draw(st.booleans())}
    if not params["use_input_stats"] or draw(st.booleans()):
        rng = np.random.default_rng(draw(st.integers(0, 100)))
        params["running_mean"] = rng.standard_normal(c)
        params["running_var"] = rng.uniform(0.2, 3.0, c)
    return Case(arrays, params, gradgrad)


@st.composite
def layer_norm_case(draw):
    shape = tuple(draw(st.integers(1, 5)) for _ in range(draw(st.integers(1, 4))))
    k = draw(st.integers(1, len(shape)))
    if int(np.prod(shape[-k:])) < 2:
        shape = shape[:-1] + (2,)
    normalized = shape[len(shape) - k:]
    arrays = {"input": draw(values(shape))}
    gradgrad = draw(affine(arrays, normalized))
    return Case(arrays, {"normalized_shape": normalized}, gradgrad)


@st.composite
def group_norm_case(draw):
    groups, per_group = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    shape = (draw(st.integers(1, 3)), groups * per_group) + tuple(
        draw(st.integers(1, 4)) for _ in range(draw(st.integers(0, 2))))
    if per_group * int(np.prod(shape[2:])) < 2:
        shape = shape + (2,)
    arrays = {"input": draw(values(shape))}
    gradgrad = draw(affine(arrays, (shape[1],), bias_alone=False))
    return Case(arrays, {"num_groups": groups}, gradgrad)


@st.composite
def adain_case(draw):
    shape = draw(nc_shape(spatial=(1, 3)))
    if int(np.prod(shape[2:])) < 2:
        shape = shape + (2,)
    return Case({"x": draw(values(shape)), "style_scale": draw(values(shape[:2])),
                 "style_bias": draw(values(shape[:2]))})


@st.composite
def adain_transfer_case(draw):
    content = draw(nc_shape(spatial=(2, 2)))
    if int(np.prod(content[2:])) < 2:
        content = content[:2] + (2, content[3])
    style = content[:2] + (draw(st.integers(2, 5)), draw(st.integers(1, 5)))
    return Case({"content": draw(values(content)), "style": draw(values(style))},
                {"eps": draw(st.sampled_from([1e-5, 1e-2]))})


@st.composite
def pixel_norm_case(draw):
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 6))) + tuple(
        draw(st.integers(1, 4)) for _ in range(draw(st.integers(0, 2))))
    return Case({"x": draw(values(shape))})


@st.composite
def minibatch_stddev_case(draw):
    group_size = draw(st.integers(1, 5))
    groups = draw(st.integers(1, 2))
    n = min(group_size, draw(st.integers(1, 5))) * groups
    g = min(group_size, n)
    if n % g:
        n = g * groups
    f = draw(st.integers(1, 2))
    shape = (n, f * draw(st.integers(1, 2)), draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    return Case({"x": draw(values(shape))}, {"group_size": group_size, "num_features": f})


OPS = [
    Op("batch_norm", batch_norm, TF.batch_norm, batch_norm_case(), rtol=1e-6),
    Op("instance_norm", instance_norm, TF.instance_norm, instance_norm_case(), rtol=1e-6),
    Op("layer_norm", layer_norm, TF.layer_norm, layer_norm_case(), rtol=1e-6),
    Op("group_norm", group_norm, TF.group_norm, group_norm_case(), rtol=1e-6),
    Op("adain", adain, torch_adain, adain_case(), rtol=1e-6),
    Op("adain_transfer", adain_transfer, torch_adain_transfer, adain_transfer_case(), rtol=1e-6),
    Op("pixel_norm", pixel_norm, torch_pixel_norm, pixel_norm_case()),
    Op("minibatch_stddev", minibatch_stddev, torch_minibatch_stddev, minibatch_stddev_case()),
]


test_op_matches_torch_forward_grad_and_second_derivative, test_op_matches_torch_on_many_more_examples = \
    op_property_tests(OPS, examples=15)


# ---------------------------------------------------------------- ops torch lacks: numerical check


GAN_NORMS = [
    ("adain", lambda x, s, b: adain(x, s, b), [(2, 2, 2, 2), (2, 2), (2, 2)]),
    ("adain_transfer", lambda c, s: adain_transfer(c, s), [(1, 2, 3, 2), (1, 2, 2, 2)]),
    ("pixel_norm", lambda x: pixel_norm(x), [(2, 3, 2, 1)]),
    ("minibatch_stddev", lambda x: minibatch_stddev(x, group_size=2), [(4, 2, 1, 2)]),
]


@pytest.mark.parametrize("fn, shapes", [pytest.param(f, s, id=n) for n, f, s in GAN_NORMS])
def test_gan_norm_second_derivatives_pass_numerical_gradgradcheck(fn, shapes):
    rng = np.random.default_rng(0)
    inputs = [mg.tensor(rng.standard_normal(s) + 0.5, dtype=mg.float64, requires_grad=True) for s in shapes]
    assert gradgradcheck(fn, inputs, atol=1e-5, rtol=1e-4)


BIAS_ONLY = [  # where torch's double backward fails (group_norm: its first backward too)
    ("batch_norm", lambda x, b: batch_norm(x, None, None, None, b, training=True), (3, 2, 2), (2,)),
    ("instance_norm", lambda x, b: instance_norm(x, bias=b), (2, 2, 3), (2,)),
    ("layer_norm", lambda x, b: layer_norm(x, (3,), None, b), (2, 2, 3), (3,)),
    ("group_norm", lambda x, b: group_norm(x, 2, None, b), (2, 4, 3), (4,)),
]


@pytest.mark.parametrize("fn, x_shape, b_shape", [pytest.param(*row[1:], id=row[0]) for row in BIAS_ONLY])
def test_norm_with_bias_and_no_weight_passes_numerical_gradcheck_and_gradgradcheck(fn, x_shape, b_shape):
    rng = np.random.default_rng(1)
    x = mg.tensor(rng.standard_normal(x_shape) * 2 + 1, requires_grad=True)
    b = mg.tensor(rng.standard_normal(b_shape), requires_grad=True)
    assert mg.gradcheck(fn, [x, b], atol=1e-6, rtol=1e-5)
    assert gradgradcheck(fn, [x, b], atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------- layers: running statistics


def _torch_twin(module, twin):
    """Copy ``module``'s state into the torch module ``twin`` and check the keys match."""
    state = module.state_dict()
    assert list(state) == list(twin.state_dict())
    twin.load_state_dict({k: torch.tensor(v.numpy()) for k, v in state.items()})
    return twin


LAYERS = [
    ("BatchNorm1d", lambda m: m.nn.BatchNorm1d(3), (4, 3)),
    ("BatchNorm1d_3d", lambda m: m.nn.BatchNorm1d(3, momentum=None), (2, 3, 5)),
    ("BatchNorm2d", lambda m: m.nn.BatchNorm2d(3, momentum=0.3), (2, 3, 4, 5)),
    ("BatchNorm2d_no_affine", lambda m: m.nn.BatchNorm2d(3, affine=False, eps=1e-3), (3, 3, 2, 2)),
    ("BatchNorm2d_momentum_none", lambda m: m.nn.BatchNorm2d(3, momentum=None), (2, 3, 3, 3)),
    ("BatchNorm2d_no_running_stats", lambda m: m.nn.BatchNorm2d(3, track_running_stats=False), (2, 3, 3, 3)),
    ("InstanceNorm2d", lambda m: m.nn.InstanceNorm2d(3), (2, 3, 4, 5)),
    ("InstanceNorm2d_unbatched", lambda m: m.nn.InstanceNorm2d(3, affine=True), (3, 4, 5)),
    ("InstanceNorm2d_running", lambda m: m.nn.InstanceNorm2d(3, affine=True, track_running_stats=True),
     (2, 3, 4, 5)),
    ("LayerNorm", lambda m: m.nn.LayerNorm((4, 5)), (2, 3, 4, 5)),
    ("LayerNorm_no_bias", lambda m: m.nn.LayerNorm(5, bias=False), (2, 3, 5)),
    ("GroupNorm", lambda m: m.nn.GroupNorm(2, 4), (2, 4, 3, 3)),
]


class _Namespace:
    def __init__(self, nn):
        self.nn = nn


@pytest.fixture(scope="module")
def mg_nn():
    from minigan.nn import normalization as norm
    return _Namespace(norm)


@pytest.mark.parametrize("make, shape", [pytest.param(f, s, id=n) for n, f, s in LAYERS])
def test_layer_after_three_training_batches_matches_torch_then_eval_uses_running_stats(mg_nn, make, shape):
    rng = np.random.default_rng(0)
    layer = make(mg_nn)
    for p in layer.parameters():  # not the identity affine, so it is exercised
        p.copy_(rng.standard_normal(p.shape))
    twin = _torch_twin(layer, make(_Namespace(tnn)).double())
    layer.double()
    for step in range(3):
        x = rng.standard_normal(shape) * (step + 1) + step
        xm, xt = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        y, yt = layer(xm), twin(xt)
        np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-9, atol=1e-12)
        u = rng.standard_normal(y.shape)
        y.backward(mg.tensor(u))
        yt.backward(torch.tensor(u))
        np.testing.assert_allclose(xm.grad.numpy(), xt.grad.numpy(), rtol=1e-8, atol=1e-10)
        for (name, p), tp in zip(layer.named_parameters(), twin.parameters()):
            np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-8, atol=1e-10, err_msg=name)
    for (name, b), tb in zip(layer.named_buffers(), twin.buffers()):
        np.testing.assert_allclose(b.numpy(), tb.numpy(), rtol=1e-12, err_msg=name)
    layer.eval()
    twin.eval()
    x = rng.standard_normal(shape) * 5 - 2
    np.testing.assert_allclose(layer(mg.tensor(x)).numpy(), twin(torch.tensor(x)).detach().numpy(),
                               rtol=1e-9, atol=1e-12)


def test_batch_norm_eval_uses_the_running_stats_not_the_batch():
    x = mg.tensor(np.arange(6.0).reshape(3, 2), dtype=mg.float64)
    mean, var = mg.tensor(np.array([1.0, -1.0])), mg.tensor(np.array([4.0, 0.25]))
    y = batch_norm(x, mean, var, training=False, eps=0.0)
    np.testing.assert_allclose(y.numpy(), (x.numpy() - [1.0, -1.0]) / [2.0, 0.5])


def test_instance_norm_2d_has_no_parameters_and_no_running_stats_by_default(mg_nn):
    layer = mg_nn.nn.InstanceNorm2d(4)
    assert list(layer.parameters()) == [] and layer.state_dict() == {}
    assert list(tnn.InstanceNorm2d(4).state_dict()) == []


# ---------------------------------------------------------------- float32 at scale 1e3


NORM_CALLS = [
    ("batch_norm", lambda x: batch_norm(x, None, None, training=True)),
    ("instance_norm", lambda x: instance_norm(x)),
    ("layer_norm", lambda x: layer_norm(x, x.shape[1:])),
    ("group_norm", lambda x: group_norm(x, 2)),
    ("adain", lambda x: adain(x, x[:, :, 0, 0] * 1e-3, x[:, :, 1, 1] * 1e-3)),
    ("adain_transfer", lambda x: adain_transfer(x, x * 0.5 + 3.0)),
    ("pixel_norm", lambda x: pixel_norm(x)),
    ("minibatch_stddev", lambda x: minibatch_stddev(x) * 1e-3),
]


@pytest.mark.parametrize("call", [c for _, c in NORM_CALLS], ids=[n for n, _ in NORM_CALLS])
def test_float32_training_step_on_inputs_of_scale_1e3_is_finite_and_accurate(call):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((4, 4, 6, 6)) * 1e3 + 1e3).astype(np.float32)
    x32 = mg.tensor(x, requires_grad=True)
    y32 = call(x32)
    assert y32.dtype == np.float32
    y64 = call(mg.tensor(x.astype(np.float64)))
    np.testing.assert_allclose(y32.numpy(), y64.numpy(), rtol=1e-3, atol=1e-3 * np.abs(y64.numpy()).max())
    # a critic-like step with a gradient penalty: first and second derivatives stay finite
    (g,) = mg.grad((y32 * y32).sum(), x32, create_graph=True)
    ((g * g).sum() + y32.mean()).backward()
    assert np.isfinite(g.numpy()).all() and np.isfinite(x32.grad.numpy()).all()


def test_float32_critic_training_steps_on_inputs_of_scale_1e3_stay_finite_and_match_float64():
    """conv -> instance norm -> leaky ReLU -> conv, a WGAN-GP critic step with Adam, three times:
    in float32 every loss, gradient and weight stays finite and follows the float64 run."""

    def critic(dtype):
        mg.manual_seed(0)
        return mg.nn.Sequential(mg.nn.Conv2d(3, 8, 3, padding=1), mg.nn.InstanceNorm2d(8, affine=True),
                                mg.nn.LeakyReLU(0.2), mg.nn.Conv2d(8, 1, 4, stride=2)).to(dtype)

    runs = {}
    for dtype in (np.float32, np.float64):
        net = critic(dtype)
        opt = mg.optim.Adam(net.parameters(), lr=1e-3, betas=(0.0, 0.9))
        rng = np.random.default_rng(0)
        for step in range(3):
            x = mg.tensor((rng.standard_normal((2, 3, 8, 8)) * 1e3 + 1e3).astype(dtype), requires_grad=True)
            score = net(x).mean()
            (g,) = mg.grad(score, x, create_graph=True)
            loss = score + 10.0 * ((g * g).sum().sqrt() - 1.0) ** 2
            opt.zero_grad()
            loss.backward()
            grads = [p.grad.numpy().copy() for p in net.parameters()]
            opt.step()
        runs[dtype] = loss.item(), grads, [p.numpy() for p in net.parameters()]
    loss32, grads32, params32 = runs[np.float32]
    loss64, grads64, params64 = runs[np.float64]
    assert np.isfinite(loss32) and loss32 == pytest.approx(loss64, rel=1e-3)
    for g32, g64, p32, p64 in zip(grads32, grads64, params32, params64):
        assert g32.dtype == p32.dtype == np.float32
        assert np.isfinite(g32).all() and np.isfinite(p32).all()
        # the first conv's bias gets zero gradient (instance norm removes it): only rounding there
        np.testing.assert_allclose(g32, g64, rtol=1e-2, atol=1e-6 * max(np.abs(g).max() for g in grads64))
        np.testing.assert_allclose(p32, p64, rtol=1e-4, atol=1e-5)


@pytest.mark.gpu
def test_norms_on_cupy_match_numpy_and_update_running_stats_on_the_gpu():
    x = np.random.default_rng(0).standard_normal((4, 4, 5, 3))
    for name, call in NORM_CALLS:
        cpu, gpu = mg.tensor(x, requires_grad=True), mg.tensor(x, device="cuda", requires_grad=True)
        y_cpu, y_gpu = call(cpu), call(gpu)
        np.testing.assert_allclose(y_gpu.numpy(), y_cpu.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)
        (g_cpu,) = mg.grad((y_cpu ** 2).sum(), cpu)
        (g_gpu,) = mg.grad((y_gpu ** 2).sum(), gpu)
        np.testing.assert_allclose(g_gpu.numpy(), g_cpu.numpy(), rtol=1e-8, atol=1e-10, err_msg=name)
    stats = [mg.zeros(4, dtype=mg.float64, device=d) for d in ("cpu", "cuda")]
    for device, mean in zip(("cpu", "cuda"), stats):
        batch_norm(mg.tensor(x, device=device), mean, None, training=True)
    np.testing.assert_allclose(stats[1].numpy(), stats[0].numpy(), rtol=1e-12)


# ---------------------------------------------------------------- bad input fails loudly


def _t(*shape):
    return mg.tensor(np.random.default_rng(0).standard_normal(shape))


BAD_INPUT = [
    ("batch_norm_one_value_per_channel", lambda: batch_norm(_t(1, 3), None, None, training=True),
     ValueError, r"batch_norm: Expected more than 1 value per channel when training, got input size "
                 r"\(1, 3\)"),
    ("batch_norm_one_value_per_channel_4d", lambda: batch_norm(_t(1, 3, 1, 1), None, None, training=True),
     ValueError, r"batch_norm: Expected more than 1 value per channel .*\(1, 3, 1, 1\)"),
    ("batch_norm_eval_without_running_stats", lambda: batch_norm(_t(2, 3), None, None), RuntimeError,
     r"batch_norm: running_mean and running_var must be given"),
    ("batch_norm_weight_shape", lambda: batch_norm(_t(2, 3), None, None, _t(4), training=True), RuntimeError,
     r"batch_norm: weight of shape \(4,\) .*\(2, 3\)"),
    ("instance_norm_one_spatial_value", lambda: instance_norm(_t(2, 3, 1, 1)), ValueError,
     r"instance_norm: Expected more than 1 spatial element when training, got input size \(2, 3, 1, 1\)"),
    ("group_norm_groups_not_dividing_channels", lambda: group_norm(_t(2, 3, 4), 2), RuntimeError,
     r"group_norm: .*divisible by num_groups.*\(2, 3, 4\).*num_groups=2"),
    ("group_norm_one_value", lambda: group_norm(_t(1, 2, 1, 1), 2), ValueError,
     r"group_norm: Expected more than 1 value per channel .*\(1, 2, 1, 1\)"),
    ("layer_norm_shape_mismatch", lambda: layer_norm(_t(2, 3), (4,)), RuntimeError,
     r"layer_norm: normalized_shape=\[4\] .*\(\*, 4\).*\(2, 3\)"),
    ("adain_style_shape", lambda: adain(_t(2, 3, 4, 4), _t(2, 4), _t(2, 3)), RuntimeError,
     r"adain: style_scale must have shape \(N, C\) = \(2, 3\) .*\(2, 3, 4, 4\).*\(2, 4\)"),
    ("adain_one_spatial_value", lambda: adain(_t(2, 3, 1, 1), _t(2, 3), _t(2, 3)), ValueError,
     r"adain: Expected more than 1 spatial element in x .*\(2, 3, 1, 1\)"),
    ("adain_transfer_one_spatial_value", lambda: adain_transfer(_t(2, 3, 1, 1), _t(2, 3, 4, 4)), ValueError,
     r"adain_transfer: Expected more than 1 spatial element in content .*\(2, 3, 1, 1\)"),
    ("adain_transfer_channels", lambda: adain_transfer(_t(2, 3, 4, 4), _t(2, 2, 4, 4)), RuntimeError,
     r"adain_transfer: .*\(2, 3, 4, 4\) and \(2, 2, 4, 4\)"),
    ("minibatch_stddev_batch_not_divisible", lambda: minibatch_stddev(_t(6, 2, 2, 2), group_size=4),
     RuntimeError, r"minibatch_stddev: batch size 6 .*group size 4.*\(6, 2, 2, 2\)"),
]


@pytest.mark.parametrize("call, error, message", [pytest.param(*row[1:], id=row[0]) for row in BAD_INPUT])
def test_bad_input_raises_naming_the_op_and_shapes(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_group_norm_layer_rejects_groups_not_dividing_channels(mg_nn):
    message = r"GroupNorm: num_channels \(6\) must be divisible by num_groups \(4\)"
    with pytest.raises(ValueError, match=message):
        mg_nn.nn.GroupNorm(4, 6)


@pytest.mark.parametrize("weighted", [True, False])
def test_batch_norm_split_over_cpu_threads_matches_torch_on_a_large_batch(weighted):
    # 2^17 values: above the size where the passes run on slices of the batch in threads
    rng = np.random.default_rng(3)
    x = rng.standard_normal((8, 16, 32, 32)) * 3 + 1
    w, b, gy = rng.standard_normal(16), rng.standard_normal(16), rng.standard_normal(x.shape)
    mx, tx = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    affine = [(mg.tensor(w, requires_grad=True), torch.tensor(w, requires_grad=True)),
              (mg.tensor(b, requires_grad=True), torch.tensor(b, requires_grad=True))] if weighted else []
    mine = batch_norm(mx, None, None, *[m for m, _ in affine], training=True)
    theirs = TF.batch_norm(tx, None, None, *[t for _, t in affine], training=True)
    np.testing.assert_allclose(mine.numpy(), theirs.detach().numpy(), rtol=1e-10, atol=1e-10)
    mine.backward(mg.tensor(gy))
    theirs.backward(torch.tensor(gy))
    for m, t in [(mx, tx)] + affine:
        np.testing.assert_allclose(m.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-9)
