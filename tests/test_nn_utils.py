"""Spectral norm, equalized learning rate and gradient clipping against torch.

Spectral norm is checked against ``torch.nn.utils.spectral_norm`` on twins that
share weights *and* the power iteration's starting u, v (minigan's state_dict
loaded into torch's module): over several training steps the outputs, the
gradients of ``weight_orig`` and the updated u, v agree; eval mode leaves u
alone; state_dicts load both ways. Equalized layers are checked against the
same computation written in plain torch (StyleGAN2-ADA's ``FullyConnectedLayer``,
ProGAN's runtime-scaled conv): forward, gradients, second derivatives and Adam
steps. Gradient clipping is checked on a small critic's real gradients.
"""
import math

import numpy as np
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as TF

import minigan as mg
from minigan import nn
from minigan.testing import assert_close

# ---------------------------------------------------------------- spectral norm


SN_CASES = [  # (layer, args, layer kwargs, spectral_norm kwargs, input shape)
    ("Linear", (5, 3), {}, {}, (4, 5)),
    ("Linear", (6, 4), {}, dict(dim=1, eps=1e-6), (3, 6)),
    ("Conv2d", (3, 4, 3), dict(stride=2, padding=1), {}, (2, 3, 7, 6)),
    ("Conv2d", (2, 4, (3, 2)), dict(groups=2, bias=False), dict(n_power_iterations=3), (1, 2, 5, 5)),
    ("ConvTranspose2d", (4, 2, 4), dict(stride=2, padding=1), {}, (2, 4, 3, 5)),  # dim=1 by default
]
SN_IDS = ["linear", "linear_dim1", "conv", "conv_groups_3_iterations", "conv_transpose"]


def _sn_twins(name, args, kwargs, sn_kwargs):
    """A minigan layer and a torch layer under spectral norm with the same weights, u and v."""
    ours = nn.utils.spectral_norm(getattr(nn, name)(*args, **kwargs, dtype=np.float64), **sn_kwargs)
    theirs = tnn.utils.spectral_norm(getattr(tnn, name)(*args, **kwargs, dtype=torch.float64), **sn_kwargs)
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    return ours, theirs


def _assert_same_state(ours, theirs, rtol=1e-10, what=""):
    state, twin = ours.state_dict(), theirs.state_dict()
    assert list(state) == list(twin)
    for key in state:
        assert_close(state[key], twin[key], rtol=rtol, atol=1e-12, name=f"{what}{key}")


@pytest.mark.parametrize("name, args, kwargs, sn_kwargs, shape", SN_CASES, ids=SN_IDS)
def test_spectral_norm_keys_and_shapes_equal_torchs(name, args, kwargs, sn_kwargs, shape):
    ours = nn.utils.spectral_norm(getattr(nn, name)(*args, **kwargs), **sn_kwargs)
    theirs = tnn.utils.spectral_norm(getattr(tnn, name)(*args, **kwargs), **sn_kwargs)
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
           {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert all(b.dtype == np.float32 for b in ours.buffers())
    u = ours.weight_u.numpy()
    assert abs(np.linalg.norm(u) - 1) < 1e-6  # u and v start normalized


@pytest.mark.parametrize("name, args, kwargs, sn_kwargs, shape", SN_CASES, ids=SN_IDS)
def test_spectral_norm_training_steps_match_torch(name, args, kwargs, sn_kwargs, shape):
    ours, theirs = _sn_twins(name, args, kwargs, sn_kwargs)
    opt, topt = mg.optim.SGD(ours.parameters(), lr=0.2), torch.optim.SGD(theirs.parameters(), lr=0.2)
    rng = np.random.default_rng(0)
    for step in range(3):  # SGD steps in between: each power iteration sees a new W
        x = rng.standard_normal(shape)
        xm, xt = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        y, yt = ours(xm), theirs(xt)
        assert_close(y, yt, rtol=1e-10, atol=1e-12, name=f"step {step} output")
        u = rng.standard_normal(y.shape)
        (y * mg.tensor(u)).sum().backward()
        (yt * torch.tensor(u)).sum().backward()
        assert_close(xm.grad, xt.grad, rtol=1e-9, atol=1e-12, name=f"step {step} input gradient")
        for key, p in theirs.named_parameters():
            assert_close(getattr(ours, key).grad, p.grad, rtol=1e-9, atol=1e-12, name=f"step {step} {key}.grad")
        _assert_same_state(ours, theirs, what=f"step {step} ")  # u and v advanced alike
        opt.step(), topt.step()
        opt.zero_grad(), topt.zero_grad()


def test_spectral_norm_eval_mode_uses_u_without_updating_it():
    ours, theirs = _sn_twins("Conv2d", (3, 4, 3), {}, {})
    ours.eval(), theirs.eval()
    u, v = ours.weight_u.numpy().copy(), ours.weight_v.numpy().copy()
    x = np.random.default_rng(1).standard_normal((2, 3, 5, 5))
    for _ in range(2):
        assert_close(ours(mg.tensor(x)), theirs(torch.tensor(x)), rtol=1e-10, atol=1e-12, name="eval output")
    np.testing.assert_array_equal(ours.weight_u.numpy(), u)
    np.testing.assert_array_equal(ours.weight_v.numpy(), v)
    ours.train()
    ours(mg.tensor(x))
    assert not np.array_equal(ours.weight_u.numpy(), u)


def test_spectral_norm_state_dict_round_trips_with_torch():
    ours, theirs = _sn_twins("Linear", (5, 3), {}, {})
    rng = np.random.default_rng(2)
    theirs(torch.tensor(rng.standard_normal((4, 5))))  # torch's u moves on ...
    ours.load_state_dict(theirs.state_dict())         # ... and minigan takes it up
    _assert_same_state(ours, theirs)
    ours(mg.tensor(rng.standard_normal((4, 5))))      # now minigan's u moves on ...
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    ours.eval(), theirs.eval()                        # ... and torch computes the same W / sigma
    x = rng.standard_normal((4, 5))
    assert_close(ours(mg.tensor(x)), theirs(torch.tensor(x)), rtol=1e-10, atol=1e-12, name="output after loading")


def test_persistent_u_makes_one_iteration_per_step_converge_to_the_largest_singular_value():
    mg.manual_seed(0)
    layer = nn.utils.spectral_norm(nn.Linear(8, 6, dtype=np.float64))
    w = layer.weight_orig.numpy()
    for _ in range(60):  # the weight does not change: u carries the iteration across forwards
        layer(mg.zeros(1, 8, dtype=mg.float64))
    assert np.linalg.norm(layer.weight.numpy(), 2) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(layer.weight.numpy(), w / np.linalg.norm(w, 2), atol=1e-6)


def test_spectral_norm_two_forwards_before_backward_match_torch():
    """A critic step scores real and fake data, then backpropagates once: each forward's
    sigma keeps its own u and v although the second forward updates the buffers."""
    ours, theirs = _sn_twins("Conv2d", (2, 3, 3), dict(stride=2), {})
    rng = np.random.default_rng(3)
    real, fake = rng.standard_normal((2, 2, 6, 6)), rng.standard_normal((2, 2, 6, 6))
    (ours(mg.tensor(real)).mean() - ours(mg.tensor(fake)).mean()).backward()
    (theirs(torch.tensor(real)).mean() - theirs(torch.tensor(fake)).mean()).backward()
    assert_close(ours.weight_orig.grad, theirs.weight_orig.grad, rtol=1e-9, atol=1e-12, name="weight_orig.grad")
    _assert_same_state(ours, theirs)


def test_gradient_penalty_through_spectral_norm_matches_torch():
    """R1 / WGAN-GP on a spectrally normalized critic differentiates W / sigma(W) twice."""
    ours, theirs = _sn_twins("Conv2d", (2, 3, 3), dict(padding=1), {})
    x = np.random.default_rng(4).standard_normal((2, 2, 5, 4))

    def penalty(lib, layer, x):
        F, grad = (mg.functional, mg.grad) if lib is mg else (TF, torch.autograd.grad)
        score = F.leaky_relu(layer(x), 0.2).sum()
        (g,) = grad(score, x, create_graph=True)
        return ((g * g).sum() - 1.0) ** 2

    penalty(mg, ours, mg.tensor(x, requires_grad=True)).backward()
    penalty(torch, theirs, torch.tensor(x, requires_grad=True)).backward()
    for key, p in theirs.named_parameters():
        assert_close(getattr(ours, key).grad, p.grad, rtol=1e-8, atol=1e-11, name=f"d penalty / d {key}")


def test_remove_spectral_norm_leaves_the_normalized_weight_as_torch():
    ours, theirs = _sn_twins("ConvTranspose2d", (3, 2, 3), {}, {})
    x = np.random.default_rng(5).standard_normal((1, 3, 4, 4))
    ours(mg.tensor(x)), theirs(torch.tensor(x))
    nn.utils.remove_spectral_norm(ours), tnn.utils.remove_spectral_norm(theirs)
    assert isinstance(ours.weight, nn.Parameter) and not ours._forward_pre_hooks
    _assert_same_state(ours, theirs)
    assert_close(ours(mg.tensor(x)), theirs(torch.tensor(x)), rtol=1e-10, atol=1e-12, name="output after removal")
    with pytest.raises(ValueError, match="spectral_norm of 'weight' not found in ConvTranspose2d"):
        nn.utils.remove_spectral_norm(ours)


def test_spectral_norm_refuses_a_second_hook_and_a_missing_parameter():
    layer = nn.utils.spectral_norm(nn.Linear(3, 2))
    with pytest.raises(RuntimeError, match="Cannot register two spectral_norm hooks on the same parameter weight"):
        nn.utils.spectral_norm(layer)
    with pytest.raises(ValueError, match=r"spectral_norm: Linear has no parameter 'kernel'"):
        nn.utils.spectral_norm(nn.Linear(3, 2), name="kernel")


def test_spectral_norm_keeps_float32():
    layer = nn.utils.spectral_norm(nn.Conv2d(3, 4, 3))
    y = layer(mg.randn(2, 3, 5, 5))
    y.sum().backward()
    assert y.dtype == layer.weight_orig.grad.dtype == layer.weight_u.dtype == np.float32


# ---------------------------------------------------------------- equalized learning rate


class TorchEqualizedLinear(tnn.Module):
    """StyleGAN2-ADA's FullyConnectedLayer (training/networks.py, activation='linear'), with ProGAN's gain."""

    def __init__(self, in_features, out_features, bias=True, gain=math.sqrt(2), lr_multiplier=1, bias_init=0):
        super().__init__()
        self.weight = tnn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = tnn.Parameter(torch.full([out_features], np.float32(bias_init))) if bias else None
        self.weight_gain = gain * lr_multiplier / np.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x):
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is None:
            return x.matmul(w.t())
        b = b.to(x.dtype)
        if self.bias_gain != 1:
            b = b * self.bias_gain
        return torch.addmm(b.unsqueeze(0), x, w.t())


class TorchEqualizedConv2d(tnn.Module):
    """ProGAN's conv with use_wscale: the weight times gain / sqrt(fan_in) on every call."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, gain=math.sqrt(2),
                 lr_multiplier=1, bias_init=0):
        super().__init__()
        self.weight = tnn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = tnn.Parameter(torch.full([out_channels], float(bias_init)))
        self.scale = gain * lr_multiplier / math.sqrt(in_channels * kernel_size ** 2)
        self.lr_multiplier, self.stride, self.padding = lr_multiplier, stride, padding

    def forward(self, x):
        return TF.conv2d(x, self.weight * self.scale, self.bias * self.lr_multiplier, self.stride, self.padding)


EQ_CASES = [  # (minigan layer, torch twin, args, kwargs, input shape)
    ("EqualizedLinear", TorchEqualizedLinear, (6, 4), {}, (3, 6)),
    ("EqualizedLinear", TorchEqualizedLinear, (6, 4), dict(gain=1.0, lr_multiplier=0.01, bias_init=0.5), (3, 6)),
    ("EqualizedLinear", TorchEqualizedLinear, (5, 2), dict(bias=False), (4, 5)),
    ("EqualizedConv2d", TorchEqualizedConv2d, (3, 4, 3), dict(stride=2, padding=1), (2, 3, 6, 5)),
    ("EqualizedConv2d", TorchEqualizedConv2d, (2, 3, 1), dict(lr_multiplier=0.1, bias_init=1.0), (1, 2, 3, 3)),
]
EQ_IDS = ["linear", "mapping_layer_lr_mul", "linear_no_bias", "conv", "conv_lr_mul"]


def _eq_twins(name, twin, args, kwargs):
    ours = getattr(nn, name)(*args, **kwargs, dtype=np.float64)
    theirs = twin(*args, **kwargs).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    return ours, theirs


@pytest.mark.parametrize("name, twin, args, kwargs, shape", EQ_CASES, ids=EQ_IDS)
def test_equalized_layer_forward_gradients_and_adam_steps_match_torch(name, twin, args, kwargs, shape):
    ours, theirs = _eq_twins(name, twin, args, kwargs)
    opt = mg.optim.Adam(ours.parameters(), lr=0.01, betas=(0.0, 0.99))  # StyleGAN's betas
    topt = torch.optim.Adam(theirs.parameters(), lr=0.01, betas=(0.0, 0.99))
    rng = np.random.default_rng(0)
    for step in range(3):
        x = rng.standard_normal(shape)
        xm, xt = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        y, yt = ours(xm), theirs(xt)
        assert_close(y, yt, rtol=1e-10, atol=1e-12, name=f"step {step} output")
        # a loss with an R1-style term, so the step differentiates the layer twice
        (g,) = mg.grad((y * y).sum(), xm, create_graph=True)
        (tg,) = torch.autograd.grad((yt * yt).sum(), xt, create_graph=True)
        assert_close(g, tg, rtol=1e-10, atol=1e-12, name=f"step {step} input gradient")
        (y.sum() + (g * g).sum()).backward()
        (yt.sum() + (tg * tg).sum()).backward()
        for key, p in theirs.named_parameters():
            assert_close(getattr(ours, key).grad, p.grad, rtol=1e-9, atol=1e-12, name=f"step {step} {key}.grad")
        opt.step(), topt.step()
        opt.zero_grad(), topt.zero_grad()
        for key, p in theirs.named_parameters():
            assert_close(getattr(ours, key), p, rtol=1e-10, atol=1e-12, name=f"step {step} {key} after Adam")


@pytest.mark.parametrize("lr_multiplier", [1.0, 0.01])
def test_equalized_init_is_unit_normal_scaled_to_he_at_runtime(lr_multiplier):
    mg.manual_seed(0)
    layer = nn.EqualizedConv2d(64, 32, 3, lr_multiplier=lr_multiplier, bias_init=0.25)
    w = layer.weight.numpy()
    assert abs(w.std() * lr_multiplier - 1) < 0.02 and abs(w.mean() * lr_multiplier) < 0.02
    np.testing.assert_array_equal(layer.bias.numpy(), np.float32(0.25))
    effective, _ = layer.scaled()
    he = math.sqrt(2 / (64 * 3 * 3))  # He et al.: std sqrt(2 / fan_in) for a ReLU network
    assert abs(effective.numpy().std() / he - 1) < 0.02


@pytest.mark.parametrize("lr_multiplier", [1.0, 0.01])
def test_equalized_layers_take_the_same_relative_adam_step_whatever_their_fan_in(lr_multiplier):
    """Karras et al. 2018, sec. 4.1: Adam moves every stored weight by about lr, so with the
    He constant applied at runtime each effective weight moves by lr (times lr_mul) relative
    to its scale in every layer. Plain He-initialized layers do not: the step is lr / c there."""
    mg.manual_seed(1)
    lr, relative = 1e-3, {}
    for fan_in in (16, 1024):
        for kind in ("equalized", "he"):
            if kind == "equalized":
                layer = nn.EqualizedLinear(fan_in, 64, bias=False, lr_multiplier=lr_multiplier)
                effective = lambda: layer.scaled()[0]
            else:  # the same effective weights, stored scaled: an ordinary He-initialized Linear
                layer = nn.Linear(fan_in, 64, bias=False)
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                effective = lambda: layer.weight
            before = effective().numpy().copy()
            opt = mg.optim.Adam(layer.parameters(), lr=lr)
            layer(mg.randn(32, fan_in)).square().mean().backward()
            opt.step()
            relative[kind, fan_in] = np.abs(effective().numpy() - before).mean() / before.std()
    for fan_in in (16, 1024):
        assert relative["equalized", fan_in] == pytest.approx(lr * lr_multiplier, rel=0.05)
    assert relative["he", 1024] > 5 * relative["he", 16]  # without equalization: 8x faster


def test_equalized_conv_rejects_groups_not_dividing_channels():
    with pytest.raises(ValueError, match=r"EqualizedConv2d: in_channels \(3\) and out_channels \(4\) .*groups \(2\)"):
        nn.EqualizedConv2d(3, 4, 3, groups=2)


# ---------------------------------------------------------------- gradient clipping


def _critic(lib):
    return lib.Sequential(lib.Conv2d(2, 4, 3, stride=2), lib.LeakyReLU(0.2), lib.Flatten(), lib.Linear(64, 1))


def _critic_twins_with_grads(scale=1.0):
    torch.manual_seed(0)
    ours, theirs = _critic(nn), _critic(tnn)
    ours.load_state_dict(theirs.state_dict())
    x = (np.random.default_rng(6).standard_normal((3, 2, 9, 9)) * scale).astype(np.float32)
    ours(mg.tensor(x)).square().mean().backward()
    theirs(torch.tensor(x)).square().mean().backward()
    return ours, theirs


@pytest.mark.parametrize("max_norm, norm_type", [(0.1, 2.0), (0.05, math.inf), (0.3, 1.0), (1e6, 2.0)])
def test_clip_grad_norm_of_a_critics_float32_gradients_matches_torch(max_norm, norm_type):
    ours, theirs = _critic_twins_with_grads(scale=5.0)
    total = nn.utils.clip_grad_norm_(ours.parameters(), max_norm, norm_type)
    torch_total = tnn.utils.clip_grad_norm_(theirs.parameters(), max_norm, norm_type, foreach=False)
    assert_close(total, torch_total, rtol=1e-5, name="total norm")
    for (key, p), tp in zip(ours.named_parameters(), theirs.parameters()):
        # float32 backward passes round differently: compare at the gradient's own scale
        assert_close(p.grad, tp.grad, rtol=1e-5, atol=1e-5 * tp.grad.abs().max().item(), name=f"clipped {key}.grad")
    clipped = [p.grad.numpy().ravel() for p in ours.parameters()]
    assert np.linalg.norm(np.concatenate(clipped), ord=norm_type) <= max_norm * (1 + 1e-5) or max_norm > 1e5


@pytest.mark.filterwarnings("ignore:invalid value encountered in multiply")  # inf * 0, as torch computes
def test_clip_grad_norm_of_non_finite_gradients_behaves_as_torch():
    for error in (True, False):
        ours, theirs = _critic_twins_with_grads()
        ours[0].weight.grad.array[0, 0, 0, 0] = np.inf
        theirs[0].weight.grad[0, 0, 0, 0] = torch.inf
        if error:
            with pytest.raises(RuntimeError, match="non-finite"):
                tnn.utils.clip_grad_norm_(theirs.parameters(), 1.0, error_if_nonfinite=True)
            with pytest.raises(RuntimeError, match="non-finite"):
                nn.utils.clip_grad_norm_(ours.parameters(), 1.0, error_if_nonfinite=True)
            continue
        total = nn.utils.clip_grad_norm_(ours.parameters(), 1.0)
        torch_total = tnn.utils.clip_grad_norm_(theirs.parameters(), 1.0, foreach=False)
        assert np.isinf(total.item()) and np.isinf(torch_total.item())
        for p, tp in zip(ours.parameters(), theirs.parameters()):  # inf * 0 = nan, the rest 0
            np.testing.assert_array_equal(p.grad.numpy(), tp.grad.numpy())
