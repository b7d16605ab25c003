"""minigan.nn against torch.nn: module trees, state_dict, layers, init, clipping.

Every structural test builds the same tree in both frameworks (``_tree(lib, T)``
with lib = minigan.nn or torch.nn) and compares names, keys, outputs and errors.
"""
import math
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn as tnn
from hypothesis import given, settings, strategies as st

import minigan as mg
from minigan import nn

# ---------------------------------------------------------------- twin trees


def _tree(lib, T):
    """The same module tree in minigan (lib=nn, T=mg) or torch (lib=torch.nn, T=torch):
    nested containers, a shared module, a bare Parameter, a bias-less Linear and
    persistent and non-persistent buffers."""

    class Block(lib.Module):
        def __init__(self):
            super().__init__()
            self.net = lib.Sequential(lib.Linear(4, 8), lib.LeakyReLU(0.2), lib.Linear(8, 8, bias=False))
            shared = lib.Linear(8, 8)
            self.heads = lib.ModuleList([shared, lib.Tanh(), shared])
            self.extra = lib.ModuleDict({"b": lib.Linear(8, 3), "a": lib.Identity()})
            self.scale = lib.Parameter(T.ones(3))
            self.register_buffer("shift", T.zeros(3))
            self.register_buffer("mask", T.ones(3), persistent=False)

        def forward(self, x):
            h = self.net(x)
            for layer in self.heads:
                h = layer(h)
            return self.extra["a"](self.extra["b"](h)) * self.scale + self.shift

    return lib.Sequential(Block(), lib.Sigmoid(), lib.Linear(3, 2))


def _twins():
    """A minigan tree and a torch tree with the same float64 weights."""
    m, t = _tree(nn, mg).double(), _tree(tnn, torch).double()
    rng = np.random.default_rng(0)
    for (name, p) in m.named_parameters():
        p.copy_(rng.standard_normal(p.shape))
    t.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in m.state_dict().items()})
    return m, t


def _forward_both(m, t, shape=(5, 4), seed=1):
    x = np.random.default_rng(seed).standard_normal(shape)
    return m(mg.tensor(x)).numpy(), t(torch.tensor(x)).detach().numpy()


def test_state_dict_keys_equal_torch_for_the_same_tree():
    m, t = _tree(nn, mg), _tree(tnn, torch)
    assert list(m.state_dict()) == list(t.state_dict())
    assert "0.mask" not in m.state_dict()  # non-persistent buffer
    assert "0.heads.2.weight" in m.state_dict()  # a shared module is listed under both names, as torch


def test_state_dict_values_are_detached_and_share_memory():
    m = nn.Linear(3, 2)
    sd = m.state_dict()
    assert not sd["weight"].requires_grad and sd["weight"].array is m.weight.array
    assert isinstance(sd, OrderedDict)


def test_named_parameters_buffers_modules_equal_torch():
    m, t = _tree(nn, mg), _tree(tnn, torch)
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [n for n, _ in m.named_buffers()] == [n for n, _ in t.named_buffers()]
    assert [n for n, _ in m.named_modules()] == [n for n, _ in t.named_modules()]
    assert [n for n, _ in m[0].named_children()] == [n for n, _ in t[0].named_children()]
    assert [n for n, _ in m.named_parameters(prefix="g", recurse=True)] == \
           [n for n, _ in t.named_parameters(prefix="g", recurse=True)]
    assert [n for n, _ in m[0].named_parameters(recurse=False)] == ["scale"]


def test_parameters_have_no_duplicates_when_modules_are_shared():
    m, t = _tree(nn, mg), _tree(tnn, torch)
    params = list(m.parameters())
    assert len(params) == len({id(p) for p in params}) == len(list(t.parameters()))


def test_torch_loads_a_minigan_state_dict_and_computes_the_same_forward():
    m, t = _twins()
    y, ty = _forward_both(m, t)
    np.testing.assert_allclose(y, ty, rtol=1e-12, atol=1e-12)


def test_minigan_loads_a_torch_state_dict_and_computes_the_same_forward():
    m, t = _tree(nn, mg).double(), _tree(tnn, torch).double()
    result = m.load_state_dict(t.state_dict())  # torch tensors as values
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == "<All keys matched successfully>"
    y, ty = _forward_both(m, t)
    np.testing.assert_allclose(y, ty, rtol=1e-12, atol=1e-12)


def test_load_state_dict_accepts_numpy_arrays_and_keeps_dtype_and_identity():
    m = nn.Linear(3, 2)
    weight = m.weight
    m.load_state_dict({"weight": np.ones((2, 3)), "bias": np.zeros(2)})  # float64 arrays
    assert m.weight is weight and m.weight.dtype == np.float32
    np.testing.assert_array_equal(m.weight.numpy(), np.ones((2, 3), np.float32))


def _error(fn):
    with pytest.raises(RuntimeError) as info:
        fn()
    return str(info.value)


def test_strict_loading_names_missing_and_unexpected_keys_like_torch():
    m, t = _tree(nn, mg), _tree(tnn, torch)
    sd = {k: v.numpy() for k, v in m.state_dict().items()}
    del sd["0.net.0.bias"]
    sd["0.net.5.weight"] = np.zeros(3)
    message = _error(lambda: m.load_state_dict(sd))
    torch_message = _error(lambda: t.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}))
    assert message.splitlines()[1:] == torch_message.splitlines()[1:]
    assert 'Missing key(s) in state_dict: "0.net.0.bias"' in message
    assert 'Unexpected key(s) in state_dict: "0.net.5.weight"' in message


def test_non_strict_loading_returns_the_same_keys_as_torch():
    m, t = _tree(nn, mg), _tree(tnn, torch)
    sd = {k: v.numpy() for k, v in m.state_dict().items()}
    del sd["2.weight"]
    sd["extra"] = np.zeros(1)
    result = m.load_state_dict(sd, strict=False)
    torch_result = t.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=False)
    assert result.missing_keys == torch_result.missing_keys == ["2.weight"]
    assert result.unexpected_keys == torch_result.unexpected_keys == ["extra"]


def test_shape_mismatch_is_an_error_naming_key_and_shapes_even_when_not_strict():
    m = nn.Sequential(nn.Linear(3, 2))
    before = m[0].weight.numpy().copy()
    for strict in (True, False):
        message = _error(lambda: m.load_state_dict({"0.weight": np.zeros((2, 4)), "0.bias": np.zeros(2)},
                                                   strict=strict))
        assert "size mismatch for 0.weight" in message and "(2, 4)" in message and "(2, 3)" in message
    np.testing.assert_array_equal(m[0].weight.numpy(), before)  # nothing was loaded


# ---------------------------------------------------------------- Module behaviour


def test_train_and_eval_propagate_to_every_descendant():
    m = _tree(nn, mg)
    assert all(mod.training for mod in m.modules())
    assert m.eval() is m
    assert not any(mod.training for mod in m.modules())
    m.train()
    assert all(mod.training for mod in m.modules())
    with pytest.raises(ValueError):
        m.train("yes")


def test_evaluating_sets_the_mode_inside_and_restores_each_modules_own_mode_after():
    m = _tree(nn, mg)
    mixed = [i % 2 == 0 for i, _ in enumerate(m.modules())]
    for mod, mode in zip(m.modules(), mixed):
        mod.training = mode
    with nn.evaluating(m) as inside:
        assert inside is m and not any(mod.training for mod in m.modules())
    assert [mod.training for mod in m.modules()] == mixed
    with pytest.raises(RuntimeError), nn.evaluating(m, training=True):
        assert all(mod.training for mod in m.modules())
        raise RuntimeError("a failure inside the block")
    assert [mod.training for mod in m.modules()] == mixed  # restored on the way out of an error too


def test_zero_grad_sets_to_none_or_to_zeros():
    m = nn.Linear(3, 2)
    m(mg.randn(4, 3)).sum().backward()
    m.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in m.parameters())
    m(mg.ones(1, 3)).sum().backward()  # accumulates onto the zeros
    np.testing.assert_array_equal(m.bias.grad.numpy(), [1, 1])
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_requires_grad_freezes_and_unfreezes():
    m = _tree(nn, mg)
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())
    m.requires_grad_()
    assert all(p.requires_grad for p in m.parameters())


def test_to_keeps_parameter_identity_and_casts_in_place():
    m = _tree(nn, mg)
    params, buffers = list(m.parameters()), list(m.buffers())
    assert m.to("cpu") is m
    assert all(a is b for a, b in zip(params, m.parameters()))
    m.to(mg.float64)
    assert all(a is b for a, b in zip(params, m.parameters()))
    assert all(p.dtype == np.float64 for p in m.parameters()) and all(b.dtype == np.float64 for b in buffers)
    m.float()
    assert all(p.dtype == np.float32 for p in params)


def test_apply_visits_children_before_parents_like_torch():
    seen, torch_seen = [], []
    _tree(nn, mg).apply(lambda mod: seen.append(type(mod).__name__))
    _tree(tnn, torch).apply(lambda mod: torch_seen.append(type(mod).__name__))
    assert seen == torch_seen


def test_assigning_a_plain_tensor_to_a_parameter_slot_is_a_type_error():
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError):
        m.weight = mg.zeros(2, 2)
    m.bias = None  # None keeps the slot declared
    assert "bias" not in m.state_dict() and m.bias is None
    m.bias = nn.Parameter(mg.zeros(2))
    assert "bias" in m.state_dict()


def test_attribute_errors_and_deletion():
    m = nn.Linear(2, 2)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        m.nope
    del m.bias
    assert "bias" not in dict(m.named_parameters())


def test_forward_hooks_run_and_can_be_removed():
    m = nn.Linear(2, 2)
    handle = m.register_forward_hook(lambda mod, args, out: out * 0.0)
    assert not m(mg.ones(1, 2)).numpy().any()
    handle.remove()
    assert m(mg.ones(1, 2)).numpy().any()


def test_parameter_shares_a_tensors_array_and_takes_an_array():
    t = mg.randn(3)
    p = nn.Parameter(t)
    assert p.array is t.array and p.requires_grad and p.is_leaf
    a = np.zeros(2, np.float32)
    assert nn.Parameter(a).array is a
    assert not nn.Parameter(a, requires_grad=False).requires_grad
    assert repr(p).startswith("Parameter containing:")


def test_repr_equals_torchs():
    def build(lib):
        return lib.Sequential(lib.Linear(4, 8), lib.LeakyReLU(0.2), lib.Dropout(0.1), lib.Flatten(),
                              lib.Unflatten(1, (2, 4)), lib.Softmax(dim=1), lib.Softplus(beta=2.0),
                              lib.ModuleList([lib.Linear(2, 2), lib.Linear(2, 2), lib.ReLU()]),
                              lib.ModuleDict({"x": lib.Tanh()}), lib.MSELoss(), lib.Linear(2, 2, bias=False))
    assert repr(build(nn)) == repr(build(tnn))


# ---------------------------------------------------------------- containers


def test_sequential_indexing_slicing_append_and_delete_like_torch():
    def build(lib):
        return lib.Sequential(lib.Linear(2, 3), lib.ReLU(), lib.Linear(3, 1))
    m, t = build(nn), build(tnn)
    assert isinstance(m[0], nn.Linear) and m[-1] is m[2] and len(m) == 3
    assert [type(x).__name__ for x in m] == [type(x).__name__ for x in t]
    s = m[1:]
    assert isinstance(s, nn.Sequential) and s[0] is m[1]
    assert list(s._modules) == list(t[1:]._modules)
    m.append(nn.Tanh()), t.append(tnn.Tanh())
    del m[0], t[0]
    assert list(m.state_dict()) == list(t.state_dict())
    with pytest.raises(IndexError):
        m[5]
    named = nn.Sequential(OrderedDict(enc=nn.Linear(2, 2), act=nn.ReLU()))
    assert list(named.state_dict()) == ["enc.weight", "enc.bias"]


def test_module_list_and_dict_register_their_modules():
    ml = nn.ModuleList([nn.Linear(2, 2)])
    ml.append(nn.Linear(2, 3))
    ml += [nn.Linear(3, 1)]
    ml.insert(0, nn.Identity())
    assert len(ml) == 4 and isinstance(ml[0], nn.Identity) and isinstance(ml[1:], nn.ModuleList)
    assert list(ml.state_dict()) == ["1.weight", "1.bias", "2.weight", "2.bias", "3.weight", "3.bias"]
    md = nn.ModuleDict({"g": nn.Linear(2, 2)})
    md["d"] = nn.Linear(2, 1)
    assert list(md) == ["g", "d"] and "d" in md and len(md) == 2
    assert list(md.state_dict()) == ["g.weight", "g.bias", "d.weight", "d.bias"]
    md.pop("g")
    assert list(md.keys()) == ["d"]


# ---------------------------------------------------------------- layers against torch


def _layer_pair(name, *args, **kwargs):
    return getattr(nn, name)(*args, **kwargs), getattr(tnn, name)(*args, **kwargs)


@pytest.mark.parametrize("name,args,kwargs", [
    ("ReLU", (), {}), ("LeakyReLU", (), {}), ("LeakyReLU", (0.2,), {}), ("Tanh", (), {}),
    ("Sigmoid", (), {}), ("Softplus", (), {"beta": 2.0, "threshold": 5.0}), ("Softmax", (1,), {}),
    ("LogSoftmax", (), {"dim": -1}), ("SiLU", (), {}), ("LogSigmoid", (), {}), ("Hardtanh", (-0.5, 0.5), {}),
    ("Identity", (), {}), ("Flatten", (), {}), ("Flatten", (0, 1), {}), ("Unflatten", (1, (2, 3)), {}),
])
def test_activation_and_shape_modules_equal_torch(name, args, kwargs):
    m, t = _layer_pair(name, *args, **kwargs)
    x = np.random.default_rng(0).standard_normal((4, 6, 2)) * 3
    np.testing.assert_allclose(m(mg.tensor(x)).numpy(), t(torch.tensor(x)).numpy(), rtol=1e-12, atol=1e-12)
    assert repr(m) == repr(t)


def test_linear_forward_and_backward_equal_torch():
    m, t = nn.Linear(5, 3).double(), tnn.Linear(5, 3).double()
    m.load_state_dict(t.state_dict())
    x = np.random.default_rng(0).standard_normal((7, 5))
    tx = torch.tensor(x, requires_grad=True)
    y = m(mg.tensor(x))
    y.sum().backward()
    t(tx).sum().backward()
    np.testing.assert_allclose(y.numpy(), t(tx).detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(m.weight.grad.numpy(), t.weight.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(m.bias.grad.numpy(), t.bias.grad.numpy(), rtol=1e-12)


def _loss_inputs(name):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4))
    if name == "BCELoss":
        return 1 / (1 + np.exp(-x)), rng.uniform(size=(6, 4))
    if name in ("CrossEntropyLoss", "NLLLoss"):
        logits = x if name == "CrossEntropyLoss" else x - np.log(np.exp(x).sum(1, keepdims=True))
        return logits, rng.integers(0, 4, size=6)
    return x, rng.uniform(size=(6, 4))


@pytest.mark.parametrize("name", ["MSELoss", "L1Loss", "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss",
                                  "NLLLoss"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_loss_modules_equal_torch(name, reduction, weighted):
    x, y = _loss_inputs(name)
    kwargs = {"reduction": reduction}
    if weighted and name not in ("MSELoss", "L1Loss"):
        w = np.linspace(0.5, 2.0, 4)
        kwargs_m, kwargs_t = dict(kwargs, weight=mg.tensor(w, dtype=mg.float64)), dict(kwargs, weight=torch.tensor(w))
    else:
        kwargs_m = kwargs_t = kwargs
    m, t = getattr(nn, name)(**kwargs_m), getattr(tnn, name)(**kwargs_t)
    out = m(mg.tensor(x, dtype=mg.float64), mg.tensor(y))
    np.testing.assert_allclose(out.numpy(), t(torch.tensor(x), torch.tensor(y)).numpy(), rtol=1e-10)
    assert list(m.state_dict()) == list(t.state_dict())  # weight is a buffer in both


def test_loss_modules_accept_torchs_constructor_arguments():
    assert nn.CrossEntropyLoss(ignore_index=0, label_smoothing=0.1).label_smoothing == 0.1
    assert nn.BCEWithLogitsLoss(pos_weight=mg.ones(3)).pos_weight is not None
    with pytest.warns(UserWarning):
        assert nn.MSELoss(size_average=False).reduction == tnn.MSELoss(size_average=False).reduction == "sum"


def test_dropout_is_identity_in_eval_and_drops_p_scaled_by_one_over_keep_in_train():
    p = 0.3
    drop = nn.Dropout(p)
    x = mg.ones(200_000)
    y = drop(x).numpy()
    assert abs((y == 0).mean() - p) < 0.01
    np.testing.assert_allclose(y[y != 0], 1 / (1 - p), rtol=1e-6)
    drop.eval()
    assert drop(x) is x or np.array_equal(drop(x).numpy(), x.numpy())
    with pytest.raises(ValueError):
        nn.Dropout(1.5)


@pytest.mark.parametrize("shape", [(400, 50, 3, 2), (20000, 3, 2)])  # batched and unbatched (C, H, W)
def test_dropout2d_drops_whole_channels_with_probability_p_and_scales_the_rest(shape):
    p = 0.25
    mg.manual_seed(0)
    drop = nn.Dropout2d(p)
    x = mg.tensor(np.random.default_rng(0).uniform(1, 2, shape), requires_grad=True)
    y = drop(x)
    kept = y.numpy() / x.numpy() * (1 - p)  # 1 where kept, 0 where dropped
    per_channel = kept.reshape(shape[:-2] + (-1,))
    np.testing.assert_allclose(per_channel, per_channel[..., :1].repeat(per_channel.shape[-1], -1))
    assert set(np.unique(np.round(per_channel, 12))) <= {0.0, 1.0}
    channels = per_channel[..., 0].size
    assert abs((per_channel[..., 0] == 0).mean() - p) < 5 * math.sqrt(p * (1 - p) / channels)
    (g,) = mg.grad((y * 3.0).sum(), x)  # the gradient is the same mask
    np.testing.assert_allclose(g.numpy(), 3.0 * y.numpy() / x.numpy())
    drop.eval()
    np.testing.assert_array_equal(drop(x).numpy(), x.numpy())
    assert repr(drop) == repr(tnn.Dropout2d(p))
    with pytest.raises(ValueError):
        tnn.Dropout2d(-0.1)
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout2d(-0.1)


@pytest.mark.parametrize("negative_slope", [0.01, 0.2, 1.0, 1.5, -0.3])
def test_leaky_relu_module_matches_torch_to_second_order(negative_slope):
    """Forward, gradient and a gradient penalty's second derivative through LeakyReLU."""
    m, t = nn.LeakyReLU(negative_slope), tnn.LeakyReLU(negative_slope)
    assert repr(m) == repr(t)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 5))
    x[np.abs(x) < 1e-3] = 0.5  # away from the kink
    w = rng.standard_normal((3, 4, 5))
    xm, xt = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    wm, wt = mg.tensor(w, requires_grad=True), torch.tensor(w, requires_grad=True)
    y, yt = m(xm * wm), t(xt * wt)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-12)
    (g,) = mg.grad((y * y).sum(), xm, create_graph=True)
    (gt,) = torch.autograd.grad((yt * yt).sum(), xt, create_graph=True)
    np.testing.assert_allclose(g.numpy(), gt.detach().numpy(), rtol=1e-12)
    (g * g).sum().backward()
    (gt * gt).sum().backward()
    np.testing.assert_allclose(wm.grad.numpy(), wt.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(xm.grad.numpy(), xt.grad.numpy(), rtol=1e-12)


# ---------------------------------------------------------------- initialisation


def test_linear_init_is_uniform_within_torchs_bound():
    mg.manual_seed(0)
    fan_in = 400
    m = nn.Linear(fan_in, 300)
    bound = 1 / math.sqrt(fan_in)
    w, b = m.weight.numpy(), m.bias.numpy()
    assert np.abs(w).max() <= bound * (1 + 1e-6) and np.abs(b).max() <= bound * (1 + 1e-6)
    assert np.abs(w).max() > 0.99 * bound  # the whole range is used
    torch.manual_seed(0)
    t = tnn.Linear(fan_in, 300)
    assert abs(w.std() - t.weight.detach().numpy().std()) < 0.02 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound
    assert abs(w.mean()) < 0.01 * bound


def test_init_is_reproducible_under_manual_seed():
    mg.manual_seed(123)
    a = nn.Linear(8, 8).weight.numpy().copy()
    mg.manual_seed(123)
    np.testing.assert_array_equal(nn.Linear(8, 8).weight.numpy(), a)


_GAIN_CASES = [("linear", None), ("conv2d", None), ("conv_transpose2d", None), ("sigmoid", None),
               ("tanh", None), ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", 1),
               ("selu", None)]


@pytest.mark.parametrize("nonlinearity,param", _GAIN_CASES)
def test_calculate_gain_equals_torch(nonlinearity, param):
    assert nn.init.calculate_gain(nonlinearity, param) == tnn.init.calculate_gain(nonlinearity, param)


@pytest.mark.parametrize("nonlinearity,param", [("gelu", None), ("leaky_relu", True), ("leaky_relu", "0.2")])
def test_calculate_gain_rejects_what_torch_rejects(nonlinearity, param):
    with pytest.raises(ValueError):
        tnn.init.calculate_gain(nonlinearity, param)
    with pytest.raises(ValueError):
        nn.init.calculate_gain(nonlinearity, param)


@pytest.mark.parametrize("shape", [(5, 3), (64, 32, 3, 3), (8, 4, 5), (2, 3, 4, 5, 6)])
def test_fan_in_and_fan_out_equal_torch(shape):
    assert nn.init._calculate_fan_in_and_fan_out(mg.zeros(*shape)) == \
        tnn.init._calculate_fan_in_and_fan_out(torch.zeros(shape))


def test_fan_needs_two_dims():
    with pytest.raises(ValueError):
        nn.init._calculate_fan_in_and_fan_out(mg.zeros(3))


_INIT_CASES = [
    ("kaiming_uniform_", {}), ("kaiming_uniform_", {"a": math.sqrt(5)}),
    ("kaiming_uniform_", {"mode": "fan_out", "nonlinearity": "relu"}),
    ("kaiming_normal_", {}), ("kaiming_normal_", {"a": 0.2, "mode": "fan_out"}),
    ("kaiming_normal_", {"nonlinearity": "relu"}),
    ("xavier_uniform_", {}), ("xavier_uniform_", {"gain": 5 / 3}), ("xavier_normal_", {"gain": 2.0}),
    ("uniform_", {"a": -2.0, "b": 3.0}), ("normal_", {"mean": 1.0, "std": 0.5}),
]


@pytest.mark.parametrize("name,kwargs", _INIT_CASES)
def test_init_distributions_match_torchs(name, kwargs):
    """Same shape (a conv weight), same formula: the ranges and moments agree with torch's draw."""
    shape = (128, 64, 3, 3)
    mg.manual_seed(0)
    torch.manual_seed(0)
    w = mg.zeros(*shape)
    assert getattr(nn.init, name)(w, **kwargs) is w
    ours, theirs = w.numpy(), getattr(tnn.init, name)(torch.zeros(shape), **kwargs).numpy()
    assert abs(ours.std() - theirs.std()) < 0.01 * theirs.std()
    assert abs(ours.mean() - theirs.mean()) < 0.01 * theirs.std()
    if "uniform" in name:
        assert abs(ours.max() - theirs.max()) < 1e-3 * theirs.std()
        assert abs(ours.min() - theirs.min()) < 1e-3 * theirs.std()


def test_kaiming_uniform_bound_is_torchs_formula():
    w = nn.init.kaiming_uniform_(mg.zeros(300, 200), a=0.1, mode="fan_out", nonlinearity="leaky_relu")
    bound = math.sqrt(3.0) * tnn.init.calculate_gain("leaky_relu", 0.1) / math.sqrt(300)
    assert np.abs(w.numpy()).max() <= bound * (1 + 1e-6)
    assert np.abs(w.numpy()).max() > 0.999 * bound


def test_constant_zeros_ones_fill_in_place_without_a_graph():
    p = nn.Parameter(mg.randn(3, 2))
    data = p.array
    for fn, value in ((nn.init.zeros_, 0.0), (nn.init.ones_, 1.0), (lambda t: nn.init.constant_(t, 2.5), 2.5)):
        assert fn(p) is p
        assert p.array is data and p.is_leaf and np.all(p.numpy() == value)


def test_kaiming_on_an_empty_tensor_warns_and_does_nothing():
    with pytest.warns(UserWarning):
        nn.init.kaiming_uniform_(mg.zeros(0, 3))


# ---------------------------------------------------------------- gradient clipping


def _grads_pair(seed, shapes=((3, 4), (4,), (2, 2, 2))):
    rng = np.random.default_rng(seed)
    ours, theirs = [], []
    for shape in shapes:
        g = rng.standard_normal(shape) * rng.uniform(0.1, 3)
        p, tp = nn.Parameter(mg.zeros(*shape, dtype=mg.float64)), torch.zeros(shape, dtype=torch.float64,
                                                                              requires_grad=True)
        p.grad, tp.grad = mg.tensor(g), torch.tensor(g)
        ours.append(p), theirs.append(tp)
    return ours, theirs


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 1000), max_norm=st.floats(0.01, 20.0),
       norm_type=st.sampled_from([2.0, 1.0, math.inf, 3.0, 0.5]))
def test_clip_grad_norm_returns_torchs_norm_and_leaves_torchs_grads(seed, max_norm, norm_type):
    ours, theirs = _grads_pair(seed)
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type)
    torch_total = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type, foreach=False)
    np.testing.assert_allclose(total.item(), torch_total.item(), rtol=1e-12)
    for p, tp in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-12)


def test_clip_grad_norm_on_engine_made_grads_scales_each_once():
    """Grads that backward made may be shared between leaves or read-only views: each
    parameter's gradient is still scaled exactly once."""
    a, b, c = (nn.Parameter(mg.ones(3, dtype=mg.float64)) for _ in range(3))
    ta, tb, tc = (torch.ones(3, dtype=torch.float64, requires_grad=True) for _ in range(3))
    (a + b).sum().backward()
    c.sum().backward()
    (ta + tb).sum().backward()
    tc.sum().backward()
    total = nn.utils.clip_grad_norm_([a, b, c], 1.0)
    torch.nn.utils.clip_grad_norm_([ta, tb, tc], 1.0)
    assert total.item() == pytest.approx(3.0)
    for p, tp in ((a, ta), (b, tb), (c, tc)):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-12)


def test_clip_grad_norm_without_grads_returns_zero():
    assert nn.utils.clip_grad_norm_([nn.Parameter(mg.zeros(2))], 1.0).item() == 0.0


def test_clip_grad_value_equals_torch():
    ours, theirs = _grads_pair(3)
    nn.utils.clip_grad_value_(ours, 0.5)
    torch.nn.utils.clip_grad_value_(theirs, 0.5)
    for p, tp in zip(ours, theirs):
        np.testing.assert_array_equal(p.grad.numpy(), tp.grad.numpy())


def test_parameters_to_vector_and_back_equal_torch():
    m, t = _twins()
    vec = nn.utils.parameters_to_vector(m.parameters())
    np.testing.assert_array_equal(vec.numpy(), torch.nn.utils.parameters_to_vector(t.parameters()).detach().numpy())
    nn.utils.vector_to_parameters(vec * 2.0, m.parameters())
    np.testing.assert_array_equal(nn.utils.parameters_to_vector(m.parameters()).numpy(), vec.numpy() * 2)


def test_nn_functional_is_minigan_functional():
    import minigan.nn.functional as F
    assert nn.functional is mg.functional and F is mg.functional


def test_mlp_is_the_hand_written_sequential_of_torch():
    mg.manual_seed(0)
    net = nn.mlp((3, 5, 4, 2), lambda: nn.LeakyReLU(0.2), dropout=0.0)
    twin = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.LeakyReLU(0.2), torch.nn.Dropout(0.0),
                               torch.nn.Linear(5, 4), torch.nn.LeakyReLU(0.2), torch.nn.Dropout(0.0),
                               torch.nn.Linear(4, 2))
    assert list(net.state_dict()) == list(twin.state_dict())
    twin.load_state_dict({k: torch.tensor(v.numpy()) for k, v in net.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((6, 3)).astype(np.float32)
    np.testing.assert_allclose(net(mg.tensor(x)).numpy(), twin(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    assert [type(m).__name__ for m in nn.mlp((2, 1), nn.ReLU)] == ["Linear"]  # one layer: no activation


def test_to_an_unknown_device_string_names_it():
    for move in (lambda: nn.Linear(2, 2).to("tpu"), lambda: mg.tensor([1.0]).to("tpu")):
        with pytest.raises(ValueError, match="unknown device or dtype 'tpu'"):
            move()
    assert nn.Linear(2, 2).to("float64").weight.dtype == np.float64
