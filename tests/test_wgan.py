"""WGAN and WGAN-GP against a torch twin written in plain torch, and closed forms.

The twin loads minigan's weights; forward outputs, gradients, the gradient
penalty (through ``torch.autograd.grad(create_graph=True)``) and its gradient
with respect to the critic's weights (the double backward), and the parameters
after whole training steps (n_critic critic steps with clipping or the penalty,
then a generator step) must agree within float32 tolerance.
"""
import json
import os

import numpy as np
import pytest
import torch
import torch.nn as tnn

import minigan as mg
from minigan.testing import assert_params_match, load_into_twin
from minigan import nn, optim
from minigan.models import wgan
from minigan.utils import load_checkpoint

from test_examples import CONTRACT, assert_resume_continues_the_run, run
from twins.train_dcgan_torch import Discriminator as TorchDCGANCritic
from twins.train_dcgan_torch import Generator as TorchDCGANGenerator


class TorchGenerator(tnn.Module):
    def __init__(self, latent_dim, data_dim, hidden, depth):
        super().__init__()
        layers, width = [], latent_dim
        for _ in range(depth):
            layers += [tnn.Linear(width, hidden), tnn.ReLU()]
            width = hidden
        layers.append(tnn.Linear(width, data_dim))
        self.net = tnn.Sequential(*layers)

    def forward(self, z):
        return self.net(z)


class TorchCritic(tnn.Module):
    def __init__(self, data_dim, hidden, depth):
        super().__init__()
        layers, width = [], data_dim
        for _ in range(depth):
            layers += [tnn.Linear(width, hidden), tnn.ReLU()]
            width = hidden
        layers.append(tnn.Linear(width, 1))
        self.net = tnn.Sequential(*layers)

    def forward(self, x):
        return self.net(x.flatten(1)).flatten()


def torch_gradient_penalty(D, real, fake, eps, weight):
    """lambda E[(||grad f(xhat)||_2 - 1)^2], written out in torch."""
    eps = eps.reshape(-1, *[1] * (real.dim() - 1))
    xhat = (eps * real + (1 - eps) * fake).detach().requires_grad_(True)
    grads, = torch.autograd.grad(D(xhat).sum(), xhat, create_graph=True)
    return weight * ((grads.flatten(1).norm(dim=1) - 1) ** 2).mean()


def torch_train_step(G, D, opt_g, opt_c, reals, noise, penalty, clip, gp_weight):
    """Algorithm 1 of either paper in torch, with the noise (z, eps per critic step; z for G) given."""
    for real, (z, eps) in zip(reals, noise[:-1]):
        with torch.no_grad():
            fake = G(z)
        loss = D(fake).mean() - D(real).mean()
        if penalty == "gp":
            loss = loss + torch_gradient_penalty(D, real, fake, eps, gp_weight)
        opt_c.zero_grad()
        loss.backward()
        opt_c.step()
        if penalty == "clip":
            for p in D.parameters():
                p.data.clamp_(-clip, clip)
    g_loss = -D(G(noise[-1][0])).mean()
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    return loss.item(), g_loss.item()


def _twins(latent_dim=2, data_dim=2, hidden=16, depth=3, seed=0):
    mg.manual_seed(seed)
    G, D = wgan.Generator(latent_dim, data_dim, hidden, depth), wgan.Critic(data_dim, hidden, depth)
    tG, tD = TorchGenerator(latent_dim, data_dim, hidden, depth), TorchCritic(data_dim, hidden, depth)
    load_into_twin(G, tG)
    load_into_twin(D, tD)
    return G, D, tG, tD




def _assert_grads_equal(module, twin, rtol=1e-4, atol=1e-6):
    theirs = dict(twin.named_parameters())
    for name, p in module.named_parameters():
        # a penalty does not depend on the biases (ReLU masks are piecewise constant): either
        # framework may leave their gradient None or give zeros
        ours = np.zeros(p.shape) if p.grad is None else p.grad.numpy()
        ref = np.zeros(p.shape) if theirs[name].grad is None else theirs[name].grad.numpy()
        np.testing.assert_allclose(ours, ref, rtol=rtol, atol=atol, err_msg=name)


# ---------------------------------------------------------------- the toy networks


def test_toy_networks_are_the_papers_relu_mlps():
    G, D = wgan.Generator(), wgan.Critic()
    shapes = [tuple(p.shape) for p in G.parameters()]
    assert shapes == [(512, 2), (512,), (512, 512), (512,), (512, 512), (512,), (2, 512), (2,)]
    assert [tuple(p.shape) for p in D.parameters()][-2:] == [(1, 512), (1,)]
    assert sum(isinstance(m, nn.ReLU) for m in D.modules()) == 3
    assert not any(isinstance(m, (nn.Sigmoid, nn.Tanh)) for m in D.modules())  # a critic, not a classifier


def test_state_dict_keys_match_torch_twin():
    G, D, tG, tD = _twins()
    assert list(G.state_dict()) == list(tG.state_dict())
    assert list(D.state_dict()) == list(tD.state_dict())


def test_forward_and_gradients_match_torch_twin():
    G, D, tG, tD = _twins()
    rng = np.random.default_rng(1)
    z, real = rng.standard_normal((7, 2)).astype(np.float32), rng.standard_normal((7, 2)).astype(np.float32)
    x, tx = G(mg.tensor(z)), tG(torch.tensor(z))
    np.testing.assert_allclose(x.numpy(), tx.detach().numpy(), rtol=1e-5, atol=1e-6)
    loss = wgan.critic_loss(D(mg.tensor(real)), D(x))
    tl = tD(tx).mean() - tD(torch.tensor(real)).mean()
    np.testing.assert_allclose(loss.item(), tl.item(), rtol=1e-5, atol=1e-7)
    loss.backward()
    tl.backward()
    _assert_grads_equal(G, tG)
    _assert_grads_equal(D, tD)


# ---------------------------------------------------------------- the gradient penalty


def test_gradient_penalty_and_its_weight_gradients_match_torch_double_backward():
    _, D, _, tD = _twins(data_dim=3, hidden=12)
    rng = np.random.default_rng(3)
    real, fake = (rng.standard_normal((9, 3)).astype(np.float32) for _ in range(2))
    eps = rng.random(9).astype(np.float32)
    gp = wgan.gradient_penalty(D, mg.tensor(real), mg.tensor(fake), weight=10.0, eps=mg.tensor(eps))
    tgp = torch_gradient_penalty(tD, torch.tensor(real), torch.tensor(fake), torch.tensor(eps), 10.0)
    np.testing.assert_allclose(gp.item(), tgp.item(), rtol=1e-5)
    assert gp.item() > 1e-3  # the check below compares real gradients, not zeros
    gp.backward()
    tgp.backward()
    _assert_grads_equal(D, tD)


def test_penalty_of_a_linear_critic_is_lambda_times_norm_minus_one_squared():
    # f(x) = w.x + b has gradient w everywhere, so the penalty is lambda (||w|| - 1)^2 exactly
    mg.manual_seed(4)
    critic = nn.Sequential(nn.Flatten(), nn.Linear(2 * 3 * 3, 1), nn.Flatten(0))
    w = critic[1].weight.numpy().astype(np.float64)
    real, fake = mg.randn(6, 2, 3, 3), mg.randn(6, 2, 3, 3)
    gp = wgan.gradient_penalty(critic, real, fake, weight=7.0)
    np.testing.assert_allclose(gp.item(), 7.0 * (np.linalg.norm(w) - 1) ** 2, rtol=1e-5)
    gp.backward()  # d/dw lambda (||w|| - 1)^2 = 2 lambda (||w|| - 1) w / ||w||
    expected = 2 * 7.0 * (np.linalg.norm(w) - 1) * w / np.linalg.norm(w)
    np.testing.assert_allclose(critic[1].weight.grad.numpy(), expected, rtol=1e-4, atol=1e-6)


def test_interpolates_use_one_eps_per_sample():
    mg.manual_seed(5)
    real, fake = mg.zeros(2000, 3, 2, 2), mg.ones(2000, 3, 2, 2)
    xhat = wgan.interpolates(real, fake).numpy()  # = 1 - eps, broadcast over the sample
    per_sample = xhat.reshape(2000, -1)
    np.testing.assert_array_equal(per_sample, np.repeat(per_sample[:, :1], 12, axis=1))
    eps = 1 - per_sample[:, 0]
    assert eps.min() >= 0 and eps.max() <= 1 and len(np.unique(eps)) > 1900
    assert abs(eps.mean() - 0.5) < 0.03 and abs(eps.var() - 1 / 12) < 0.01  # U[0, 1]


def test_interpolates_reject_mismatched_batches_and_eps():
    with pytest.raises(ValueError, match="interpolates.*one shape"):
        wgan.interpolates(mg.zeros(4, 2), mg.zeros(3, 2))
    with pytest.raises(ValueError, match="one value per sample"):
        wgan.interpolates(mg.zeros(4, 2), mg.zeros(4, 2), eps=mg.zeros(4, 2))


# ---------------------------------------------------------------- weight clipping


def test_clip_weights_clamps_every_critic_parameter():
    _, D, _, _ = _twins(hidden=64)
    for p in D.parameters():
        p.array[...] *= 50  # push many weights outside [-c, c]
    before = [p.numpy().copy() for p in D.parameters()]
    wgan.clip_weights(D, 0.01)
    for b, p in zip(before, D.parameters()):
        np.testing.assert_array_equal(p.numpy(), np.clip(b, -0.01, 0.01))


def test_training_with_clipping_keeps_every_critic_weight_in_range():
    G, D, _, _ = _twins(hidden=32)
    opt_g, opt_c = optim.RMSprop(G.parameters(), lr=0.05), optim.RMSprop(D.parameters(), lr=0.05)
    rng = np.random.default_rng(6)
    for _ in range(3):
        wgan.train_step(G, D, opt_g, opt_c, lambda: mg.tensor(rng.standard_normal((16, 2)).astype(np.float32)),
                        penalty="clip", clip=0.02)
        for p in D.parameters():
            assert np.abs(p.numpy()).max() <= 0.02
    assert any(np.abs(p.numpy()).max() == np.float32(0.02) for p in D.parameters())  # the clip was active


# ---------------------------------------------------------------- whole training steps


@pytest.mark.parametrize("penalty", ["clip", "gp"])
def test_training_steps_match_torch_twin(penalty):
    G, D, tG, tD = _twins(seed=1)
    if penalty == "clip":
        opt_g, opt_c = optim.RMSprop(G.parameters(), lr=5e-3), optim.RMSprop(D.parameters(), lr=5e-3)
        topt_g, topt_c = torch.optim.RMSprop(tG.parameters(), lr=5e-3), torch.optim.RMSprop(tD.parameters(), lr=5e-3)
    else:
        opt_g = optim.Adam(G.parameters(), lr=1e-3, betas=(0.0, 0.9))
        opt_c = optim.Adam(D.parameters(), lr=1e-3, betas=(0.0, 0.9))
        topt_g = torch.optim.Adam(tG.parameters(), lr=1e-3, betas=(0.0, 0.9))
        topt_c = torch.optim.Adam(tD.parameters(), lr=1e-3, betas=(0.0, 0.9))
    clip, n_critic, n = 0.1, 5, 8
    rng = np.random.default_rng(2)
    for step in range(3):
        reals = [rng.standard_normal((n, 2)).astype(np.float32) * 2 for _ in range(n_critic)]
        # the noise train_step will draw (z then eps per critic step, then z for G), drawn first
        mg.manual_seed(100 + step)
        noise = [(mg.randn(n, 2).numpy(), mg.rand(n).numpy() if penalty == "gp" else None)
                 for _ in range(n_critic)] + [(mg.randn(n, 2).numpy(), None)]
        mg.manual_seed(100 + step)
        batches = iter(reals)
        losses = wgan.train_step(G, D, opt_g, opt_c, lambda: mg.tensor(next(batches)), penalty=penalty,
                                 n_critic=n_critic, clip=clip, gp_weight=10.0)
        c_loss, g_loss = torch_train_step(
            tG, tD, topt_g, topt_c, [torch.tensor(r) for r in reals],
            [(torch.tensor(z), None if e is None else torch.tensor(e)) for z, e in noise], penalty, clip, 10.0)
        np.testing.assert_allclose(losses["critic_loss"], c_loss, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(losses["g_loss"], g_loss, rtol=1e-4, atol=1e-6)
        assert_params_match(G, tG)
        assert_params_match(D, tD)
    assert ("penalty" in losses) == (penalty == "gp")


@pytest.mark.parametrize("norm", [None, "layer"])
def test_gradient_penalty_step_with_dcgan_networks_matches_torch_twin(norm):
    from minigan.models import dcgan
    mg.manual_seed(3)
    sizes = dict(image_size=16, width=4)
    G, D = dcgan.Generator(latent_dim=8, channels=1, **sizes), dcgan.Discriminator(channels=1, norm=norm, **sizes)
    tG, tD = TorchDCGANGenerator(latent_dim=8, channels=1, **sizes), TorchDCGANCritic(channels=1, norm=norm, **sizes)
    load_into_twin(G, tG)
    load_into_twin(D, tD)
    opt_g = optim.Adam(G.parameters(), lr=1e-3, betas=(0.0, 0.9))
    opt_c = optim.Adam(D.parameters(), lr=1e-3, betas=(0.0, 0.9))
    topt_g = torch.optim.Adam(tG.parameters(), lr=1e-3, betas=(0.0, 0.9))
    topt_c = torch.optim.Adam(tD.parameters(), lr=1e-3, betas=(0.0, 0.9))
    reals = [np.random.default_rng(s).uniform(-1, 1, (4, 1, 16, 16)).astype(np.float32) for s in range(2)]
    mg.manual_seed(10)
    noise = [(mg.randn(4, 8).numpy(), mg.rand(4).numpy()) for _ in range(2)] + [(mg.randn(4, 8).numpy(), None)]
    mg.manual_seed(10)
    batches = iter(reals)
    losses = wgan.train_step(G, D, opt_g, opt_c, lambda: mg.tensor(next(batches)), penalty="gp", n_critic=2)
    c_loss, g_loss = torch_train_step(
        tG, tD, topt_g, topt_c, [torch.tensor(r) for r in reals],
        [(torch.tensor(z), None if e is None else torch.tensor(e)) for z, e in noise], "gp", None, 10.0)
    np.testing.assert_allclose(losses["critic_loss"], c_loss, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(losses["g_loss"], g_loss, rtol=1e-4, atol=1e-5)
    assert_params_match(G, tG, rtol=1e-4, atol=1e-5)
    assert_params_match(D, tD, rtol=1e-4, atol=1e-5)


def test_logged_penalty_and_wasserstein_estimate_match_torch():
    G, D, tG, tD = _twins(seed=2)
    opt_g, opt_c = optim.SGD(G.parameters(), lr=0.0), optim.SGD(D.parameters(), lr=0.0)  # nothing moves
    real = np.random.default_rng(7).standard_normal((10, 2)).astype(np.float32)
    mg.manual_seed(8)
    z, eps = mg.randn(10, 2).numpy(), mg.rand(10).numpy()
    mg.manual_seed(8)
    losses = wgan.train_step(G, D, opt_g, opt_c, lambda: mg.tensor(real), penalty="gp", n_critic=1)
    with torch.no_grad():
        tr, tf = tD(torch.tensor(real)), tD(tG(torch.tensor(z)))
    tgp = torch_gradient_penalty(tD, torch.tensor(real), tG(torch.tensor(z)).detach(), torch.tensor(eps), 10.0)
    np.testing.assert_allclose(losses["wasserstein"], (tr.mean() - tf.mean()).item(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(losses["penalty"], tgp.item(), rtol=1e-5)
    np.testing.assert_allclose(losses["critic_loss"], -losses["wasserstein"] + losses["penalty"], rtol=1e-5)


def test_generator_step_leaves_critic_untouched():
    G, D, _, _ = _twins()
    opt_g, opt_c = optim.Adam(G.parameters(), lr=1e-2), optim.SGD(D.parameters(), lr=0.0)
    before = {k: v.numpy().copy() for k, v in D.state_dict().items()}
    wgan.train_step(G, D, opt_g, opt_c, lambda: mg.randn(4, 2), penalty="gp", n_critic=2)
    for k, v in D.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])
    assert all(p.requires_grad for p in D.parameters())


def test_bad_penalty_and_n_critic_are_clear_errors():
    G, D, _, _ = _twins()
    opt = optim.SGD(D.parameters(), lr=0.0)
    with pytest.raises(ValueError, match="penalty.*'hinge'"):
        wgan.train_step(G, D, opt, opt, lambda: mg.randn(4, 2), penalty="hinge")
    with pytest.raises(ValueError, match="n_critic.*0"):
        wgan.train_step(G, D, opt, opt, lambda: mg.randn(4, 2), n_critic=0)


def test_linear_critic_with_gradient_penalty_reaches_its_closed_form_optimum():
    # P_g is P_r shifted by theta, so W1 = |theta|. A linear critic f(x) = w.x + b then
    # maximizes -w.theta - lambda (||w|| - 1)^2: w* = -(1 + |theta| / (2 lambda)) theta / |theta|,
    # and its estimate E_r f - E_g f = |theta| + |theta|^2 / (2 lambda) (the penalty is soft)
    mg.manual_seed(9)
    critic = nn.Sequential(nn.Linear(2, 1), nn.Flatten(0))
    opt = optim.SGD(critic.parameters(), lr=0.02)  # plain descent settles on the optimum; Adam circles it
    theta, lam = np.array([1.2, 0.9], np.float32), 10.0
    real = mg.tensor(np.random.default_rng(9).standard_normal((64, 2)).astype(np.float32))
    fake = real + mg.tensor(theta)
    for _ in range(400):
        loss = wgan.critic_loss(critic(real), critic(fake)) + wgan.gradient_penalty(critic, real, fake, lam)
        opt.zero_grad()
        loss.backward()
        opt.step()
    norm = np.linalg.norm(theta)
    np.testing.assert_allclose(critic[0].weight.numpy()[0], -(1 + norm / (2 * lam)) * theta / norm, atol=2e-3)
    with mg.no_grad():
        estimate = wgan.wasserstein_estimate(critic(real), critic(fake)).item()
    np.testing.assert_allclose(estimate, norm + norm ** 2 / (2 * lam), rtol=2e-3)


# ---------------------------------------------------------------- examples/wgan.py


@pytest.mark.parametrize("penalty", ["gp", "clip"])
def test_example_on_the_grid_writes_the_contract_files(tmp_path, penalty):
    metrics = run("wgan", tmp_path, "--penalty", penalty, "--steps", 3, "--batch-size", 16, "--hidden", 16,
                  "--n-critic", 2)
    for f in CONTRACT + ["samples.npz"]:
        assert (tmp_path / f).stat().st_size > 0, f
    assert json.loads((tmp_path / "metrics.json").read_text())["steps"] == 3 == metrics["steps"]
    x = np.load(tmp_path / "samples.npz")["x"]
    assert x.shape == (1000, 2) and x.dtype == np.float32 and np.isfinite(x).all()
    assert metrics["modes_total"] == 25 and 0 <= metrics["modes_covered"] <= 25
    assert metrics["penalty"] == penalty and np.isfinite(metrics["final_wasserstein_estimate"])


def test_example_resumed_run_equals_uninterrupted_run(tmp_path):
    # a constant learning rate: the toy recipe's decay runs to 0 over --steps, so a run cut short
    # by a smaller --steps is another schedule, not an interrupted run
    args = ("--batch-size", 16, "--hidden", 16, "--n-critic", 2, "--checkpoint-every", 3, "--no-lr-decay")
    once, twice = assert_resume_continues_the_run("wgan", tmp_path, 7, 4, args, ["generator", "critic"])
    once_metrics, twice_metrics = (json.loads((d / "metrics.json").read_text()) for d in (once, twice))
    assert once_metrics["samples_per_mode"] == twice_metrics["samples_per_mode"]


@pytest.mark.parametrize("penalty", ["gp", "clip"])
def test_example_on_digits_writes_the_contract_files(tmp_path, penalty):
    metrics = run("wgan", tmp_path, "--data", "digits", "--penalty", penalty, "--steps", 2, "--batch-size", 8,
                  "--width", 4, "--n-critic", 2)
    for f in CONTRACT + ["samples.npz"]:
        assert (tmp_path / f).stat().st_size > 0, f
    x = np.load(tmp_path / "samples.npz")["x"]
    assert x.shape == (1000, 1, 16, 16) and x.dtype == np.float32
    assert x.min() >= -1 and x.max() <= 1  # tanh output: the range of the training images
    assert metrics["steps"] == 2 and 0 <= metrics["classes_hit"] <= 10 and np.isfinite(metrics["classifier_fd"])
    assert metrics["recipe"] == ("paper" if penalty == "gp" else "clip")  # Algorithm 1's values on images


def test_example_runs_the_toy_recipe_on_points_and_algorithm_1_on_request(tmp_path):
    small = ("--steps", 1, "--batch-size", 8, "--hidden", 8, "--n-critic", 1)
    recipe = ("recipe", "gp_weight", "lr", "beta1", "lr_decay")
    toy = run("wgan", tmp_path / "toy", *small)
    assert [toy[k] for k in recipe] == ["toy", 1.0, 1e-3, 0.5, True]
    paper = run("wgan", tmp_path / "paper", *small, "--paper")
    assert [paper[k] for k in recipe] == ["paper", 10.0, 1e-4, 0.0, False]
    mixed = run("wgan", tmp_path / "mixed", *small, "--paper", "--gp-weight", 3, "--lr-decay")  # flags win
    assert [mixed[k] for k in recipe] == ["paper", 3.0, 1e-4, 0.0, True]
    clip = run("wgan", tmp_path / "clip", *small, "--penalty", "clip")
    assert (clip["recipe"], clip["lr"], clip["lr_decay"]) == ("clip", 5e-5, False)


def test_example_refuses_batch_norm_in_a_gradient_penalty_critic(tmp_path):
    with pytest.raises(SystemExit, match="batch norm"):
        run("wgan", tmp_path, "--data", "digits", "--norm", "batch", "--steps", 1)


def test_example_lr_decay_is_linear_to_zero_over_the_run(tmp_path):
    run("wgan", tmp_path, "--steps", 4, "--batch-size", 8, "--hidden", 8, "--n-critic", 1, "--lr", 1e-3,
        "--lr-decay")
    state = load_checkpoint(os.path.join(tmp_path, "checkpoint.safetensors"))
    for name in ("generator", "critic"):
        # the last of 4 steps ran at lr (1 - 3/4)
        np.testing.assert_allclose(state["optimizers"][name]["param_groups"][0]["lr"], 1e-3 * (1 - 3 / 4))
