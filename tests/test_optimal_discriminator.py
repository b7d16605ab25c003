"""The optimal discriminator on 1-D Gaussians (minigan/models/divergences.py,
examples/optimal_discriminator.py).

The closed forms are checked against scipy's adaptive quadrature and against each
other (the minimax gradient with D* is 2 dJS/dtheta by the envelope theorem); the
trained discriminator against D*; the discriminator's and the critic's steps
against torch twins; the example against the examples contract.
"""
import json
import math

import numpy as np
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as TF
from scipy import integrate, stats

import minigan as mg
from minigan import nn, optim
from minigan.models import divergences as dv
from minigan.models import gan, wgan
from minigan.testing import assert_params_match, load_into_twin
from minigan.utils import save_curves
from test_examples import assert_resume_continues_the_run, run

PAIRS = [(0.0, 1.0, 0.0, 1.0), (0.0, 1.0, 1.0, 1.0), (0.0, 1.0, 2.0, 0.5), (-1.0, 0.7, 1.5, 2.0),
         (0.0, 1.0, 6.0, 1.0), (3.0, 2.0, -4.0, 0.3)]


def quad(f, breakpoints):
    """int f over the real line, split at ``breakpoints`` so quad does not step over a peak."""
    edges = [-np.inf, *sorted(breakpoints), np.inf]
    return sum(integrate.quad(f, lo, hi, limit=200, epsabs=1e-13, epsrel=1e-11)[0]
               for lo, hi in zip(edges[:-1], edges[1:]) if lo < hi)


# ---------------------------------------------------------------- closed forms


@pytest.mark.parametrize("mu_r,sigma_r,mu_g,sigma_g", PAIRS)
def test_js_divergence_matches_scipy_quadrature(mu_r, sigma_r, mu_g, sigma_g):
    def integrand(x):
        p, q = stats.norm.pdf(x, mu_r, sigma_r), stats.norm.pdf(x, mu_g, sigma_g)
        m = (p + q) / 2
        return 0.5 * ((p * math.log(p / m) if p > 0 else 0.0) + (q * math.log(q / m) if q > 0 else 0.0))
    expected = quad(integrand, [mu_r, mu_g])
    assert dv.js_divergence(mu_r, sigma_r, mu_g, sigma_g) == pytest.approx(expected, abs=1e-9)


def test_js_divergence_is_symmetric_zero_for_equal_and_log2_once_apart():
    assert dv.js_divergence(0.3, 1.2, 0.3, 1.2) == pytest.approx(0.0, abs=1e-12)
    assert dv.js_divergence(0, 1, 2, 0.5) == pytest.approx(dv.js_divergence(2, 0.5, 0, 1), abs=1e-12)
    assert dv.js_divergence(0, 1, 20, 1) == pytest.approx(math.log(2), abs=1e-12)
    values = [dv.js_divergence(0, 1, t, 1) for t in np.linspace(0, 10, 21)]
    assert np.all(np.diff(values) > 0) and values[-1] < math.log(2)


@pytest.mark.parametrize("mu_r,sigma_r,mu_g,sigma_g", PAIRS)
def test_wasserstein1_is_the_integral_of_the_quantile_functions_difference(mu_r, sigma_r, mu_g, sigma_g):
    def gap(u):
        return abs(stats.norm.ppf(u, mu_g, sigma_g) - stats.norm.ppf(u, mu_r, sigma_r))
    # the two quantile functions cross where mu_g + sigma_g t = mu_r + sigma_r t, t = Phi^-1(u)
    cross = [stats.norm.cdf((mu_r - mu_g) / (sigma_g - sigma_r))] if sigma_g != sigma_r else []
    edges = [0.0, *cross, 1.0]
    by_quantiles = sum(integrate.quad(gap, lo, hi, limit=200, epsabs=1e-12)[0] for lo, hi in zip(edges, edges[1:]))
    by_cdfs = quad(lambda x: abs(stats.norm.cdf(x, mu_r, sigma_r) - stats.norm.cdf(x, mu_g, sigma_g)), [mu_r, mu_g])
    w1 = dv.wasserstein1(mu_r, sigma_r, mu_g, sigma_g)
    assert w1 == pytest.approx(by_quantiles, abs=1e-8)
    assert w1 == pytest.approx(by_cdfs, abs=1e-8)
    if sigma_r == sigma_g:
        assert w1 == abs(mu_g - mu_r)


def test_wasserstein1_agrees_with_scipy_on_samples():
    rng = np.random.default_rng(0)
    a, b = rng.normal(-1.0, 0.7, 200_000), rng.normal(1.5, 2.0, 200_000)
    assert dv.wasserstein1(-1.0, 0.7, 1.5, 2.0) == pytest.approx(stats.wasserstein_distance(a, b), abs=0.02)


def test_optimal_discriminator_is_the_pointwise_maximizer_of_the_value():
    x = np.linspace(-3, 5, 41)
    p, q = stats.norm.pdf(x, 0, 1), stats.norm.pdf(x, 2, 0.5)
    d_star = dv.optimal_discriminator(x, 0, 1, 2, 0.5)
    np.testing.assert_allclose(d_star, p / (p + q), rtol=1e-12)
    inside = (d_star > 1e-2) & (d_star < 1 - 1e-2)  # where a step of 1e-3 stays in (0, 1)
    p, q, d_star = p[inside], q[inside], d_star[inside]
    value = lambda d: p * np.log(d) + q * np.log1p(-d)  # noqa: E731  V's integrand at x
    for shift in (-1e-3, 1e-3):
        assert np.all(value(d_star + shift) < value(d_star))


@pytest.mark.parametrize("mu_r,sigma_r,mu_g,sigma_g", PAIRS[1:])
def test_minimax_gradient_against_d_star_is_twice_djs_dtheta(mu_r, sigma_r, mu_g, sigma_g):
    """Envelope theorem: D* maximizes V, so d/dtheta V(D*_theta, G_theta) = dV/dtheta at D* fixed,
    and V(D*, G) = -log 4 + 2 JS."""
    h = 1e-4
    djs = (dv.js_divergence(mu_r, sigma_r, mu_g + h, sigma_g)
           - dv.js_divergence(mu_r, sigma_r, mu_g - h, sigma_g)) / (2 * h)
    assert dv.gan_generator_gradient(mu_r, sigma_r, mu_g, sigma_g, "minimax") == pytest.approx(2 * djs, abs=1e-7)


@pytest.mark.parametrize("kind", ["minimax", "non_saturating"])
def test_generator_gradients_against_d_star_match_scipy_quadrature(kind):
    mu_r, sigma_r, mu_g, sigma_g = -1.0, 0.7, 1.5, 2.0

    def integrand(x):
        d = dv.optimal_discriminator(x, mu_r, sigma_r, mu_g, sigma_g)
        slope = -(x - mu_r) / sigma_r ** 2 + (x - mu_g) / sigma_g ** 2
        return -stats.norm.pdf(x, mu_g, sigma_g) * (d if kind == "minimax" else 1 - d) * slope
    expected = quad(integrand, [mu_r, mu_g])
    assert dv.gan_generator_gradient(mu_r, sigma_r, mu_g, sigma_g, kind) == pytest.approx(expected, abs=1e-9)


def test_far_apart_the_minimax_gradient_vanishes_and_the_non_saturating_one_does_not():
    assert abs(dv.gan_generator_gradient(0, 1, 12, 1, "minimax")) < 1e-7
    # -E_g[(1 - D*) logit'] -> (mu_g - mu_r) / sigma^2 once D* ~ 0 on p_g's support
    assert dv.gan_generator_gradient(0, 1, 12, 1, "non_saturating") == pytest.approx(12.0, rel=1e-6)


# ---------------------------------------------------------------- gradients through a network


def linear_net(slope, intercept):
    net = nn.Linear(1, 1).double()
    net.weight.data = mg.tensor(np.array([[slope]]))
    net.bias.data = mg.tensor(np.array([intercept]))
    return lambda x: net(x).flatten()


@pytest.mark.parametrize("kind", ["minimax", "non_saturating"])
def test_generator_gradient_through_the_exact_d_star_matches_the_closed_form(kind):
    """For equal sigmas logit D* is linear in x, so a Linear(1, 1) holds it exactly; the
    autograd gradient on deterministic normal quantiles z_i is the closed form's integral."""
    theta = 1.5
    slope, intercept = -theta, theta ** 2 / 2  # log N(x; 0, 1) - log N(x; theta, 1)
    z = mg.tensor(stats.norm.ppf((np.arange(200_000) + 0.5) / 200_000)[:, None])
    found = dv.generator_gradient(linear_net(slope, intercept), theta, 1.0, z, kind)
    assert found == pytest.approx(dv.gan_generator_gradient(0, 1, theta, 1, kind), rel=1e-4)


def test_generator_gradient_through_the_optimal_critic_is_one():
    z = mg.tensor(np.random.default_rng(0).standard_normal((100, 1)))
    assert dv.generator_gradient(linear_net(-1.0, 0.3), 4.0, 1.0, z, "wasserstein") == pytest.approx(1.0, abs=1e-12)


def test_trained_discriminator_lands_on_d_star():
    mg.manual_seed(0)
    d = gan.Discriminator(1, (32, 32))
    opt = optim.Adam(d.parameters(), lr=1e-3)
    for _ in range(1000):
        dv.discriminator_step(d, opt, dv.sample(0, 1, 256), dv.sample(2, 0.5, 256))
    x = np.linspace(-2, 3, 101)  # where p_r + p_g holds its mass
    with mg.no_grad():
        found = mg.sigmoid(d(mg.tensor(x[:, None].astype(np.float32)))).numpy()
    np.testing.assert_allclose(found, dv.optimal_discriminator(x, 0, 1, 2, 0.5), atol=0.06)


@pytest.mark.parametrize("one_sided", [True, False])
def test_one_dimensional_critic_with_the_wrong_slope(one_sided):
    """A linear critic f = s x rising from p_r to p_g (s = 1): the one-sided penalty lets the
    step turn it round, the two-sided one holds it near s = 1 - theta / (2 lambda) > 0."""
    mg.manual_seed(0)
    critic = nn.Linear(1, 1)
    critic.weight.data = mg.tensor([[1.0]])
    opt = optim.Adam(critic.parameters(), lr=1e-2)
    for _ in range(400):
        dv.critic_step(lambda x: critic(x).flatten(), opt, dv.sample(0, 1, 256), dv.sample(4, 1, 256),
                       one_sided=one_sided)
    s = critic.weight.item()
    if one_sided:
        assert s == pytest.approx(-(1 + 4 / (2 * wgan.GP_WEIGHT)), abs=0.05)
    else:
        assert s == pytest.approx(1 - 4 / (2 * wgan.GP_WEIGHT), abs=0.05)


# ---------------------------------------------------------------- torch twins


def torch_mlp(widths, activation):
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [tnn.Linear(a, b), activation()]
    return tnn.Sequential(*layers[:-1])


class TorchNet(tnn.Module):
    def __init__(self, widths, activation):
        super().__init__()
        self.net = torch_mlp(widths, activation)

    def forward(self, x):
        return self.net(x).flatten()


def test_discriminator_steps_match_torch_twin():
    mg.manual_seed(3)
    d = gan.Discriminator(1, (32, 32))
    twin = load_into_twin(d, TorchNet((1, 32, 32, 1), lambda: tnn.LeakyReLU(0.2)))
    opt, topt = optim.Adam(d.parameters(), lr=1e-3), torch.optim.Adam(twin.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    for _ in range(3):
        real = rng.normal(0, 1, (64, 1)).astype(np.float32)
        fake = rng.normal(2, 0.5, (64, 1)).astype(np.float32)
        loss = dv.discriminator_step(d, opt, mg.tensor(real), mg.tensor(fake))
        lr, lf = twin(torch.tensor(real)), twin(torch.tensor(fake))
        tloss = -(torch.log(torch.sigmoid(lr)).mean() + torch.log(1 - torch.sigmoid(lf)).mean())
        topt.zero_grad()
        tloss.backward()
        topt.step()
        assert loss == pytest.approx(tloss.item(), rel=1e-5)
        assert_params_match(d, twin, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("one_sided", [True, False])
def test_critic_steps_match_torch_twin(one_sided):
    mg.manual_seed(4)
    critic = wgan.Critic(1, 16, 2)
    twin = load_into_twin(critic, TorchNet((1, 16, 16, 1), tnn.ReLU))
    opt = optim.Adam(critic.parameters(), lr=1e-3, betas=(0.5, 0.9))
    topt = torch.optim.Adam(twin.parameters(), lr=1e-3, betas=(0.5, 0.9))
    rng = np.random.default_rng(1)
    for step in range(3):
        real = rng.normal(0, 1, (32, 1)).astype(np.float32)
        fake = rng.normal(3, 1, (32, 1)).astype(np.float32)
        mg.manual_seed(50 + step)
        eps = torch.tensor(mg.rand(32).numpy())  # the eps critic_step draws
        mg.manual_seed(50 + step)
        estimate = dv.critic_step(critic, opt, mg.tensor(real), mg.tensor(fake), one_sided=one_sided)

        tr, tf = torch.tensor(real), torch.tensor(fake)
        xhat = (eps[:, None] * tr + (1 - eps[:, None]) * tf).requires_grad_()
        g, = torch.autograd.grad(twin(xhat).sum(), xhat, create_graph=True)
        gap = torch.sqrt((g ** 2).sum(1) + 1e-12) - 1
        gap = TF.relu(gap) if one_sided else gap
        loss = twin(tf).mean() - twin(tr).mean() + wgan.GP_WEIGHT * (gap ** 2).mean()
        t_estimate = (twin(tr).mean() - twin(tf).mean()).item()
        topt.zero_grad()
        loss.backward()
        topt.step()
        assert estimate == pytest.approx(t_estimate, rel=1e-5, abs=1e-6)
        assert_params_match(critic, twin, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------- the example

TINY = ["--steps", 6, "--batch-size", 32, "--sweep-points", 3, "--sweep-max", 6, "--sweep-steps", 3]


def test_example_writes_its_files_and_the_closed_forms(tmp_path):
    metrics = run("optimal_discriminator", tmp_path, *TINY)
    for f in ("discriminator.png", "divergences.png", "losses.png", "metrics.json", "checkpoint.safetensors"):
        assert (tmp_path / f).stat().st_size > 0, f
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["steps"] == 6 == metrics["steps"]
    assert saved["sweep_theta"] == [0.0, 3.0, 6.0]
    assert saved["sweep_w1"] == [0.0, 3.0, 6.0]
    assert saved["js_closed_form"] == pytest.approx(dv.js_divergence(0, 1, 2, 0.5))
    for key in ("sweep_minimax_grad_trained_d", "sweep_wgan_grad_trained_critic", "sweep_w1_critic_estimate"):
        assert len(saved[key]) == 3 and all(np.isfinite(saved[key])), key


def test_example_resumed_run_equals_uninterrupted_run(tmp_path):
    once, twice = assert_resume_continues_the_run("optimal_discriminator", tmp_path, 6, 4, TINY[2:],
                                                  ["discriminator"])
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (once, twice))
    assert a["sweep_w1_critic_estimate"] == b["sweep_w1_critic_estimate"]


def test_save_curves_draws_one_panel_per_entry(tmp_path):
    from PIL import Image
    x = np.linspace(0, 1, 5)
    panel = {"lines": [(x, x ** 2, "k-", "x^2"), (x, x + 0.1, "C2o", "x")], "title": "t", "xlabel": "x"}
    save_curves([panel], tmp_path / "one.png")
    save_curves([panel, {**panel, "log_y": True, "ylim": (1e-3, 10)}], tmp_path / "two.png")
    one, two = Image.open(tmp_path / "one.png"), Image.open(tmp_path / "two.png")
    assert two.size[0] > 1.8 * one.size[0] and abs(two.size[1] - one.size[1]) < 10


def test_example_runs_on_cuda_as_on_the_cpu(fake_cuda, tmp_path):
    """With --device cuda (the stand-in CuPy of tests/fake_cupy.py) the example runs and writes
    what it writes on the CPU."""
    metrics = run("optimal_discriminator", tmp_path, *TINY, "--device", "cuda")
    assert metrics["device"] == "cuda"
    assert all(np.isfinite(metrics[k]).all() for k in metrics if k.startswith("sweep_"))
    assert (tmp_path / "divergences.png").stat().st_size > 0
