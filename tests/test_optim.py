"""minigan.optim against torch.optim: the same parameters, the same gradients, the same
trajectory — step by step, for every option. torch runs its single-tensor path
(foreach=False), which is what minigan's updates follow.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import minigan as mg
from minigan import nn, optim
from minigan.optim import lr_scheduler

SHAPES = ((3, 4), (5,), (2, 1, 3))
TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=1e-6, atol=1e-6)}


def _initial(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for shape in SHAPES]


def _gradients(steps, seed=1):
    """A fixed sequence of gradients: noisy, of varying scale, sometimes sign-flipping."""
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(shape) * rng.uniform(0.1, 2.0) for shape in SHAPES] for _ in range(steps)]


class Twin:
    """A minigan optimizer and a torch optimizer over equal parameters.

    The last minigan/torch parameter never gets a gradient: both must skip it.
    """

    def __init__(self, name, kwargs, dtype=np.float64, initial=None):
        initial = _initial() if initial is None else initial
        self.dtype = dtype
        self.params = [nn.Parameter(mg.tensor(v, dtype=dtype)) for v in initial] + [nn.Parameter(mg.ones(2, dtype=dtype))]
        self.tparams = [torch.tensor(v, dtype=_torch_dtype(dtype), requires_grad=True) for v in initial] + \
                       [torch.ones(2, dtype=_torch_dtype(dtype), requires_grad=True)]
        self.opt = getattr(optim, name)(self.params, **kwargs)
        self.topt = getattr(torch.optim, name)(self.tparams, foreach=False, **kwargs)

    def step(self, grads):
        for p, tp, g in zip(self.params, self.tparams, grads):
            p.grad = mg.tensor(g, dtype=self.dtype)
            tp.grad = torch.tensor(g, dtype=_torch_dtype(self.dtype))
        self.opt.step()
        self.topt.step()

    def assert_equal(self, where=""):
        for i, (p, tp) in enumerate(zip(self.params, self.tparams)):
            np.testing.assert_allclose(p.numpy(), tp.detach().numpy(), **TOL[self.dtype],
                                       err_msg=f"parameter {i} {where}")


def _torch_dtype(dtype):
    return torch.float64 if dtype == np.float64 else torch.float32


def _assert_same_trajectory(name, kwargs, dtype=np.float64, steps=10):
    twin = Twin(name, kwargs, dtype)
    for i, grads in enumerate(_gradients(steps)):
        twin.step(grads)
        twin.assert_equal(f"after step {i + 1} of {name}({kwargs})")
    assert twin.params[-1].numpy().tolist() == [1.0, 1.0]  # no grad: untouched
    assert twin.params[-1] not in twin.opt.state or not twin.opt.state[twin.params[-1]]
    return twin


# ---------------------------------------------------------------- each optimizer, each option

CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.5, maximize=True)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.01, betas=(0.5, 0.999))),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True, maximize=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, betas=(0.0, 0.99), weight_decay=0.5, amsgrad=True)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, centered=True, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.001, alpha=0.9, momentum=0.5, centered=True, maximize=True)),
]


@pytest.mark.parametrize("name,kwargs", CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_parameters_equal_torchs_after_each_of_ten_steps(name, kwargs, dtype):
    _assert_same_trajectory(name, kwargs, dtype)


@settings(max_examples=15, deadline=None)
@given(lr=st.floats(1e-4, 0.5), momentum=st.floats(0.0, 0.99), dampening=st.floats(0.0, 0.9),
       weight_decay=st.floats(0.0, 0.1), nesterov=st.booleans(), maximize=st.booleans())
def test_sgd_equals_torch_for_drawn_hyperparameters(lr, momentum, dampening, weight_decay, nesterov, maximize):
    if nesterov:
        momentum, dampening = max(momentum, 0.1), 0.0
    _assert_same_trajectory("SGD", dict(lr=lr, momentum=momentum, dampening=dampening,
                                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize))


@settings(max_examples=15, deadline=None)
@given(name=st.sampled_from(["Adam", "AdamW"]), lr=st.floats(1e-4, 0.1), beta1=st.floats(0.0, 0.99),
       beta2=st.floats(0.5, 0.9999), eps=st.floats(1e-10, 1e-3), weight_decay=st.floats(0.0, 0.5),
       amsgrad=st.booleans(), maximize=st.booleans())
def test_adam_and_adamw_equal_torch_for_drawn_hyperparameters(name, lr, beta1, beta2, eps, weight_decay,
                                                              amsgrad, maximize):
    _assert_same_trajectory(name, dict(lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay,
                                       amsgrad=amsgrad, maximize=maximize))


@settings(max_examples=15, deadline=None)
@given(lr=st.floats(1e-4, 0.1), alpha=st.floats(0.5, 0.999), eps=st.floats(1e-10, 1e-3),
       weight_decay=st.floats(0.0, 0.1), momentum=st.floats(0.0, 0.95), centered=st.booleans())
def test_rmsprop_equals_torch_for_drawn_hyperparameters(lr, alpha, eps, weight_decay, momentum, centered):
    _assert_same_trajectory("RMSprop", dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                            momentum=momentum, centered=centered))


@pytest.mark.parametrize("name,kwargs", [("SGD", dict(lr=0.05, momentum=0.9)), ("Adam", dict(lr=0.05)),
                                         ("RMSprop", dict(lr=0.01, centered=True))])
def test_minimizing_a_quadratic_follows_torchs_path(name, kwargs):
    """Gradients from a loss computed in each framework: any difference would compound."""
    rng = np.random.default_rng(0)
    A, b, x0 = rng.standard_normal((6, 4)), rng.standard_normal(6), rng.standard_normal(4)
    x, tx = nn.Parameter(mg.tensor(x0)), torch.tensor(x0, requires_grad=True)
    opt, topt = getattr(optim, name)([x], **kwargs), getattr(torch.optim, name)([tx], foreach=False, **kwargs)
    for _ in range(10):
        opt.zero_grad(), topt.zero_grad()
        r = mg.tensor(A) @ x - mg.tensor(b)
        (r * r).sum().backward()
        tr = torch.tensor(A) @ tx - torch.tensor(b)
        (tr * tr).sum().backward()
        opt.step(), topt.step()
        np.testing.assert_allclose(x.numpy(), tx.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_param_groups_use_their_own_options_like_torch():
    ps = [nn.Parameter(mg.tensor(v)) for v in _initial()]
    tps = [torch.tensor(v, requires_grad=True) for v in _initial()]
    opt = optim.SGD([{"params": ps[:2]}, {"params": ps[2:], "lr": 0.5, "momentum": 0.9}], lr=0.1)
    topt = torch.optim.SGD([{"params": tps[:2]}, {"params": tps[2:], "lr": 0.5, "momentum": 0.9}], lr=0.1,
                           foreach=False)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[1]["momentum"] == 0.9
    for grads in _gradients(3):
        for p, tp, g in zip(ps, tps, grads):
            p.grad, tp.grad = mg.tensor(g), torch.tensor(g)
        opt.step(), topt.step()
    for p, tp in zip(ps, tps):
        np.testing.assert_allclose(p.numpy(), tp.detach().numpy(), rtol=1e-12)


def test_add_param_group_and_its_errors():
    a, b = nn.Parameter(mg.zeros(2)), nn.Parameter(mg.zeros(3))
    opt = optim.Adam([a], lr=0.1)
    opt.add_param_group({"params": b, "lr": 0.01})
    assert opt.param_groups[1]["lr"] == 0.01 and opt.param_groups[1]["betas"] == (0.9, 0.999)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(TypeError, match="ordered collections"):
        opt.add_param_group({"params": {nn.Parameter(mg.zeros(1))}})
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([])
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([a * 2.0])


def test_named_parameters_are_accepted_and_names_kept():
    m = nn.Linear(2, 2)
    opt = optim.SGD(m.named_parameters(), lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["weight", "bias"]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["weight", "bias"]


@pytest.mark.parametrize("name,kwargs", [
    ("SGD", dict(lr=-1)), ("SGD", dict(momentum=-0.5)), ("SGD", dict(weight_decay=-1)),
    ("SGD", dict(nesterov=True)), ("SGD", dict(momentum=0.9, dampening=0.1, nesterov=True)),
    ("Adam", dict(lr=-1)), ("Adam", dict(eps=-1.0)), ("Adam", dict(betas=(1.0, 0.999))),
    ("Adam", dict(betas=(0.9, -0.1))), ("Adam", dict(weight_decay=-0.1)), ("AdamW", dict(lr=-0.5)),
    ("RMSprop", dict(lr=-1)), ("RMSprop", dict(alpha=-0.1)), ("RMSprop", dict(momentum=-1.0)),
    ("RMSprop", dict(eps=-1.0)), ("RMSprop", dict(weight_decay=-1.0)),
])
def test_invalid_arguments_raise_torchs_message(name, kwargs):
    with pytest.raises(ValueError) as theirs:
        getattr(torch.optim, name)([torch.zeros(1, requires_grad=True)], **kwargs)
    with pytest.raises(ValueError) as ours:
        getattr(optim, name)([nn.Parameter(mg.zeros(1))], **kwargs)
    assert str(ours.value) == str(theirs.value)


def test_defaults_equal_torchs():
    for name in ("SGD", "Adam", "AdamW", "RMSprop"):
        ours = getattr(optim, name)([nn.Parameter(mg.zeros(1))]).defaults
        theirs = getattr(torch.optim, name)([torch.zeros(1, requires_grad=True)]).defaults
        assert {k: v for k, v in theirs.items() if k in ours} == ours, name


def test_zero_grad_and_closure():
    p = nn.Parameter(mg.tensor([1.0, 2.0]))
    opt = optim.SGD([p], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == pytest.approx(5.0)
    np.testing.assert_allclose(p.numpy(), [0.8, 1.6], rtol=1e-6)
    opt.zero_grad(set_to_none=False)
    assert p.grad.numpy().tolist() == [0.0, 0.0]
    opt.zero_grad()
    assert p.grad is None


def test_state_key_names_are_torchs():
    for name, kwargs in [("SGD", dict(momentum=0.9)), ("Adam", dict(amsgrad=True)),
                         ("RMSprop", dict(momentum=0.9, centered=True))]:
        twin = Twin(name, kwargs)
        twin.step(_gradients(1)[0])
        ours = twin.opt.state_dict()["state"]
        theirs = twin.topt.state_dict()["state"]
        assert ours.keys() == theirs.keys()
        assert all(set(ours[i]) == set(theirs[i]) for i in ours), name
        our_group, their_group = twin.opt.state_dict()["param_groups"][0], twin.topt.state_dict()["param_groups"][0]
        assert set(our_group) <= set(their_group)  # torch adds foreach, fused, ...
        assert all(our_group[k] == their_group[k] for k in our_group), name


# ---------------------------------------------------------------- state_dict round trips


def _as_numpy(state_dict):
    """What a checkpoint gives back: every Tensor as a NumPy array."""
    def convert(v):
        if isinstance(v, dict):
            return {k: convert(x) for k, x in v.items()}
        if isinstance(v, list):
            return [convert(x) for x in v]
        return v.numpy().copy() if isinstance(v, mg.Tensor) else v
    return convert(state_dict)


@pytest.mark.parametrize("name,kwargs", [("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
                                         ("Adam", dict(lr=0.01, amsgrad=True)),
                                         ("AdamW", dict(lr=0.01)),
                                         ("RMSprop", dict(momentum=0.5, centered=True))])
@pytest.mark.parametrize("through_numpy", [False, True])
def test_resuming_from_state_dict_continues_exactly_like_an_uninterrupted_run(name, kwargs, through_numpy):
    grads = _gradients(10)
    uninterrupted = Twin(name, kwargs)
    for g in grads:
        uninterrupted.step(g)

    first = Twin(name, kwargs)
    for g in grads[:5]:
        first.step(g)
    saved = first.opt.state_dict()
    if through_numpy:
        saved = _as_numpy(saved)
    lr = first.opt.param_groups[0]["lr"]
    first.opt.param_groups[0]["lr"] = 123.0  # later changes to the old optimizer do not leak
    resumed = Twin(name, kwargs, initial=[p.numpy().copy() for p in first.params[:-1]])
    resumed.opt.param_groups[0]["lr"] = 0.0  # the saved options replace the new optimizer's
    resumed.opt.load_state_dict(saved)
    assert resumed.opt.param_groups[0]["lr"] == lr
    for g in grads[5:]:
        for p, gi in zip(resumed.params, g):
            p.grad = mg.tensor(gi)
        resumed.opt.step()
    for p, q in zip(resumed.params, uninterrupted.params):
        np.testing.assert_array_equal(p.numpy(), q.numpy())


@pytest.mark.parametrize("name,kwargs", [("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(lr=0.01)),
                                         ("RMSprop", dict(momentum=0.5, centered=True))])
def test_torch_and_minigan_load_each_others_optimizer_state(name, kwargs):
    """The state_dict format is torch's: a torch optimizer resumes from minigan's state
    (step is an int there, a tensor in torch) and minigan from torch's."""
    grads = _gradients(8)
    twin = Twin(name, kwargs)
    for g in grads[:4]:
        twin.step(g)
    ours, theirs = twin.opt.state_dict(), twin.topt.state_dict()

    to_torch = {"state": {i: {k: torch.tensor(v.numpy()) if isinstance(v, mg.Tensor) else v for k, v in s.items()}
                          for i, s in ours["state"].items()},
                "param_groups": ours["param_groups"]}
    swapped = Twin(name, kwargs, initial=[p.numpy().copy() for p in twin.params[:-1]])
    swapped.topt.load_state_dict(to_torch)
    swapped.opt.load_state_dict(theirs)  # torch tensors, step as a 0-d float tensor
    for g in grads[4:]:
        twin.step(g)
        swapped.step(g)
    for a, b in zip(swapped.params + swapped.tparams, twin.params + twin.tparams):
        np.testing.assert_allclose(a.detach().numpy() if torch.is_tensor(a) else a.numpy(),
                                   b.detach().numpy() if torch.is_tensor(b) else b.numpy(), rtol=1e-10)


def test_load_state_dict_checks_group_sizes():
    a, b = nn.Parameter(mg.zeros(2)), nn.Parameter(mg.zeros(2))
    saved = optim.SGD([a, b]).state_dict()
    with pytest.raises(ValueError, match="doesn't match the size"):
        optim.SGD([a]).load_state_dict(saved)
    with pytest.raises(ValueError, match="number of parameter groups"):
        optim.SGD([{"params": [a]}, {"params": [b]}]).load_state_dict(saved)


def test_loaded_state_follows_the_parameters_dtype():
    p = nn.Parameter(mg.zeros(3))  # float32
    opt = optim.Adam([p])
    opt.load_state_dict({"state": {0: {"step": torch.tensor(3.0), "exp_avg": np.ones(3),
                                        "exp_avg_sq": torch.ones(3, dtype=torch.float64)}},
                         "param_groups": [dict(optim.Adam([nn.Parameter(mg.zeros(1))]).param_groups[0], params=[0])]})
    state = opt.state[p]
    assert state["step"] == 3 and isinstance(state["step"], int)
    assert state["exp_avg"].dtype == np.float32 and state["exp_avg_sq"].dtype == np.float32


# ---------------------------------------------------------------- learning-rate schedules

SCHEDULES = [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("ExponentialLR", dict(gamma=0.9)),
    ("LinearLR", dict()),
    ("LinearLR", dict(start_factor=0.1, end_factor=0.9, total_iters=7)),
    ("CosineAnnealingLR", dict(T_max=6)),
    ("CosineAnnealingLR", dict(T_max=5, eta_min=0.001)),
    ("LambdaLR", dict(lr_lambda=lambda epoch: 0.95 ** epoch / (1 + epoch % 3))),
]


def _scheduler_twins(name, kwargs):
    p, tp = nn.Parameter(mg.zeros(1)), torch.zeros(1, requires_grad=True)
    q, tq = nn.Parameter(mg.zeros(1)), torch.zeros(1, requires_grad=True)
    opt = optim.SGD([{"params": [p]}, {"params": [q], "lr": 0.03}], lr=0.1)
    topt = torch.optim.SGD([{"params": [tp]}, {"params": [tq], "lr": 0.03}], lr=0.1)
    return (getattr(lr_scheduler, name)(opt, **kwargs), getattr(torch.optim.lr_scheduler, name)(topt, **kwargs),
            opt, topt)


@pytest.mark.parametrize("name,kwargs", SCHEDULES)
def test_schedulers_produce_torchs_learning_rates(name, kwargs):
    sched, tsched, opt, topt = _scheduler_twins(name, kwargs)
    assert sched.get_last_lr() == tsched.get_last_lr()
    for epoch in range(25):
        opt.step(), topt.step()
        sched.step(), tsched.step()
        assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-14, abs=1e-18), epoch
        assert [g["lr"] for g in opt.param_groups] == sched.get_last_lr()


@pytest.mark.parametrize("name,kwargs", SCHEDULES[:-1])
def test_scheduler_state_dict_resumes_the_schedule(name, kwargs):
    sched, tsched, opt, topt = _scheduler_twins(name, kwargs)
    for _ in range(7):
        opt.step(), topt.step()
        sched.step(), tsched.step()
    saved, saved_opt = sched.state_dict(), opt.state_dict()
    _, _, opt2, _ = _scheduler_twins(name, kwargs)
    resumed = getattr(lr_scheduler, name)(opt2, **kwargs)
    opt2.load_state_dict(saved_opt)
    resumed.load_state_dict(saved)
    for _ in range(10):
        opt2.step(), topt.step()
        resumed.step(), tsched.step()
        assert resumed.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-14, abs=1e-18)


def test_linear_lr_rejects_torchs_invalid_factors():
    p = nn.Parameter(mg.zeros(1))
    for kwargs in (dict(start_factor=0), dict(start_factor=1.5), dict(end_factor=-0.1)):
        with pytest.raises(ValueError):
            lr_scheduler.LinearLR(optim.SGD([p]), **kwargs)


# ---------------------------------------------------------------- EMA of weights


class _WithBuffer(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.register_buffer("count", mg.zeros(1))


def test_ema_update_is_decay_times_average_plus_rest_times_weights():
    model, decay = _WithBuffer(), 0.9
    ema = optim.EMA(model, decay=decay)
    expected = {k: v.numpy().copy() for k, v in model.named_parameters()}
    rng = np.random.default_rng(0)
    for step in range(4):
        for p in model.parameters():
            p.copy_(rng.standard_normal(p.shape))
        model.count.copy_(np.array([step + 1.0]))
        ema.update()
        for name, p in model.named_parameters():
            expected[name] = decay * expected[name] + (1 - decay) * p.numpy()
            np.testing.assert_allclose(ema.shadow[name].numpy(), expected[name], rtol=1e-6)
    assert ema.num_updates == 4
    assert ema.shadow_buffers["count"].numpy().tolist() == [4.0]  # buffers are copied, not averaged

    target = _WithBuffer()
    ema.copy_to(target)
    for name, p in target.named_parameters():
        np.testing.assert_array_equal(p.numpy(), ema.shadow[name].numpy())
    assert target.count.numpy().tolist() == [4.0]


def test_ema_store_copy_restore_swaps_weights_for_sampling():
    model = _WithBuffer()
    ema = optim.EMA(model, decay=0.5)
    trained = [p.numpy().copy() for p in model.parameters()]
    for p in model.parameters():
        p.copy_(p.numpy() + 1.0)
    ema.update()
    current = [p.numpy().copy() for p in model.parameters()]
    ema.store()
    ema.copy_to()
    np.testing.assert_allclose(model.fc.bias.numpy(), trained[1] + 0.5, rtol=1e-6)
    ema.restore()
    for p, c in zip(model.parameters(), current):
        np.testing.assert_array_equal(p.numpy(), c)


def test_ema_state_dict_round_trip():
    model = _WithBuffer()
    ema = optim.EMA(model, decay=0.99)
    for p in model.parameters():
        p.copy_(p.numpy() * 2)
    ema.update()
    saved = _as_numpy(ema.state_dict())
    other = optim.EMA(_WithBuffer(), decay=0.5)
    other.load_state_dict(saved)
    assert other.decay == 0.99 and other.num_updates == 1
    for name in ema.shadow:
        np.testing.assert_array_equal(other.shadow[name].numpy(), ema.shadow[name].numpy())


def test_ema_rejects_invalid_decay():
    with pytest.raises(ValueError):
        optim.EMA(nn.Linear(2, 2), decay=1.5)
