"""VAE-GAN against a torch twin written in plain torch.

The twin loads minigan's weights; the three networks' outputs (mu and log sigma^2,
decoded images, Dis's logits and its Dis_l features), every loss term and its
gradients into every network, and the parameters and batch-norm statistics after
whole training steps (Algorithm 1: three networks, three different losses,
RMSprop, batch norm in training mode) must agree within float32 tolerance.

The twin's step takes each network's gradient of that network's own loss, as
Algorithm 1 writes it (three torch.autograd.grad calls); minigan's step gets them
from two backward passes. The networks' updates are also checked term by term: the
encoder's gradient is that of L_prior + L_llike, not of anything with L_GAN in it,
and the discriminator's is that of L_GAN alone.
"""
import json

import numpy as np
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as TF

import minigan as mg
from minigan import optim
from minigan.models import vaegan
from minigan.testing import assert_state_match

from test_examples import CONTRACT, assert_resume_continues_the_run, run

SHAPE, LATENT = (1, 8, 8), 3
ENC = dict(widths=(4, 6), hidden=10)
DEC = dict(widths=(5, 4))
DIS = dict(widths=(3, 4, 5), hidden=7)
N = 12
GAMMA = 0.3  # far from the default, so a wrong weighting of the decoder's two terms shows


def _block(c_in, c_out, transposed=False):
    conv = (tnn.ConvTranspose2d(c_in, c_out, 5, 2, 2, output_padding=1, bias=False) if transposed
            else tnn.Conv2d(c_in, c_out, 5, 2, 2, bias=False))
    return [conv, tnn.BatchNorm2d(c_out), tnn.ReLU()]


class TorchEncoder(tnn.Module):
    def __init__(self):
        super().__init__()
        (a, b), h = ENC["widths"], ENC["hidden"]
        self.features = tnn.Sequential(*_block(1, a), *_block(a, b), tnn.Flatten(),
                                       tnn.Linear(b * 2 * 2, h, bias=False), tnn.BatchNorm1d(h), tnn.ReLU())
        self.mu, self.logvar = tnn.Linear(h, LATENT), tnn.Linear(h, LATENT)

    def forward(self, x):
        h = self.features(x)
        return self.mu(h), self.logvar(h)


class TorchDecoder(tnn.Module):
    def __init__(self):
        super().__init__()
        a, b = DEC["widths"]
        self.project = tnn.Sequential(tnn.Linear(LATENT, a * 2 * 2, bias=False), tnn.BatchNorm1d(a * 2 * 2),
                                      tnn.ReLU(), tnn.Unflatten(1, (a, 2, 2)))
        self.upsample = tnn.Sequential(*_block(a, a, True), *_block(a, b, True), tnn.Conv2d(b, 1, 5, padding=2),
                                       tnn.Tanh())

    def forward(self, z):
        return self.upsample(self.project(z))


class TorchDiscriminator(tnn.Module):
    def __init__(self):
        super().__init__()
        (a, b, c), h = DIS["widths"], DIS["hidden"]
        self.to_dis_l = tnn.Sequential(tnn.Conv2d(1, a, 5, padding=2), tnn.ReLU(), *_block(a, b),
                                       tnn.Conv2d(b, c, 5, 2, 2, bias=False))
        self.head = tnn.Sequential(tnn.BatchNorm2d(c), tnn.ReLU(), tnn.Flatten(), tnn.Linear(c * 2 * 2, h, bias=False),
                                   tnn.BatchNorm1d(h), tnn.ReLU(), tnn.Linear(h, 1))

    def forward(self, x):
        dis_l = self.to_dis_l(x)
        return self.head(dis_l).flatten(), dis_l.flatten(1)


def torch_terms(E, G, D, real, eps, z_p):
    """The forward pass of Algorithm 1 and its three loss terms, in torch."""
    n = len(real)
    mu, logvar = E(real)
    z = mu + torch.exp(0.5 * logvar) * eps
    decoded = G(torch.cat([z, z_p]))
    logits, dis_l = D(torch.cat([real, decoded]))
    prior = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp())).sum(1).mean()
    llike = 0.5 * ((dis_l[:n] - dis_l[n:2 * n]) ** 2).sum(1).mean()
    gan = -(TF.logsigmoid(logits[:n]).mean() + TF.logsigmoid(-logits[n:2 * n]).mean()
            + TF.logsigmoid(-logits[2 * n:]).mean())
    return (mu, logvar, decoded, logits, dis_l), (prior, llike, gan)


def torch_train_step(E, G, D, opts, real, eps, z_p, gamma, loss_kind="minimax", margin=None, equilibrium=0.68):
    """Algorithm 1 as written: each network descends the gradient of its own loss.

    With a ``margin``, the authors' equilibrium rule on Dis's mean cross-entropy on
    real images and on all decoded ones: Dis does not step while it wins by the
    margin, and Dec's loss loses -L_GAN while Dis loses by it (neither, if both).
    Returns the three losses and (Dis updated?, Dec's GAN term used?).
    """
    (_, _, _, logits, _), (prior, llike, gan) = torch_terms(E, G, D, real, eps, z_p)
    n = len(real)
    update_dis = dec_gan = True
    if margin is not None:
        real_cost = -TF.logsigmoid(logits[:n]).mean().item()
        fake_cost = -TF.logsigmoid(-logits[n:]).mean().item()
        update_dis = min(real_cost, fake_cost) >= equilibrium - margin
        dec_gan = max(real_cost, fake_cost) <= equilibrium + margin
        if not (update_dis or dec_gan):
            update_dis = dec_gan = True
    if loss_kind == "minimax":
        fool = -gan
    else:  # -[log Dis(x~) + log Dis(x_p)]
        fool = -TF.logsigmoid(logits[n:2 * n]).mean() - TF.logsigmoid(logits[2 * n:]).mean()
    decoder_loss = gamma * llike + fool if dec_gan else gamma * llike
    own_losses = [prior + llike, decoder_loss, gan]
    for net, opt, loss in zip((E, G, D), opts, own_losses):
        grads = torch.autograd.grad(loss, list(net.parameters()), retain_graph=True)
        opt.zero_grad()
        for p, g in zip(net.parameters(), grads):
            p.grad = g
    for opt in opts[:2] + (opts[2:] if update_dis else []):  # all gradients taken at the same weights, then applied
        opt.step()
    return (prior.item(), llike.item(), gan.item()), (update_dis, dec_gan)


def _twins(seed=0):
    mg.manual_seed(seed)
    nets = (vaegan.Encoder(SHAPE, LATENT, **ENC), vaegan.Decoder(LATENT, SHAPE, **DEC),
            vaegan.Discriminator(SHAPE, **DIS))
    twins = (TorchEncoder(), TorchDecoder(), TorchDiscriminator())
    for net, twin in zip(nets, twins):
        twin.load_state_dict({k: torch.tensor(v.numpy()) for k, v in net.state_dict().items()})
    return nets, twins


def _noise(seed, n=N):
    """The eps and z_p that train_step draws after mg.manual_seed(seed), in its order."""
    mg.manual_seed(seed)
    return torch.tensor(mg.randn(n, LATENT).numpy()), torch.tensor(mg.randn(n, LATENT).numpy())


def _real(seed, n=N):
    return np.random.default_rng(seed).uniform(-1, 1, (n, *SHAPE)).astype(np.float32)


def _assert_grads_equal(grads, tgrads, what, rtol=1e-4, atol=1e-6):
    assert len(grads) == len(tgrads)
    for i, (g, tg) in enumerate(zip(grads, tgrads)):
        np.testing.assert_allclose(g.numpy(), tg.numpy(), rtol=rtol, atol=atol, err_msg=f"{what}, parameter {i}")


def test_state_dict_keys_match_torch_twin():
    nets, twins = _twins()
    for net, twin in zip(nets, twins):
        assert list(net.state_dict()) == list(twin.state_dict())


def test_forward_outputs_and_every_loss_term_match_torch_twin():
    (E, G, D), (tE, tG, tD) = _twins()
    real = _real(1)
    eps, z_p = _noise(7)
    mg.manual_seed(7)
    z, mu, logvar = vaegan.encode(E, mg.tensor(real))
    decoded = G(mg.cat([z, vaegan.sample_latent(N, LATENT)]))
    logits, dis_l = D(mg.cat([mg.tensor(real), decoded]))
    outputs = (mu, logvar, decoded, logits, dis_l)
    terms = (vaegan.prior_loss(mu, logvar), vaegan.feature_reconstruction_loss(dis_l[N:2 * N], dis_l[:N]),
             vaegan.gan_loss(logits[:N], logits[N:2 * N], logits[2 * N:])[0])
    toutputs, tterms = torch_terms(tE, tG, tD, torch.tensor(real), eps, z_p)
    assert decoded.shape == (2 * N, *SHAPE) and logits.shape == (3 * N,) and dis_l.shape == (3 * N, 5 * 2 * 2)
    for name, a, b in zip(("mu", "logvar", "decoded", "logits", "dis_l"), outputs, toutputs):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-5, err_msg=name)
    for name, term, tterm in zip(("prior", "llike", "gan"), terms, tterms):
        np.testing.assert_allclose(term.item(), tterm.item(), rtol=1e-5, err_msg=name)
    # the gradient of each term into each network, separately
    for name, term, tterm in zip(("prior", "llike", "gan"), terms, tterms):
        for net, twin in ((E, tE), (G, tG), (D, tD)):
            grads = mg.grad(term, list(net.parameters()), retain_graph=True, allow_unused=True)
            tgrads = torch.autograd.grad(tterm, list(twin.parameters()), retain_graph=True, allow_unused=True)
            for i, (g, tg) in enumerate(zip(grads, tgrads)):
                if tg is None:  # L_prior does not reach Dec or Dis
                    assert g is None or not np.any(g.numpy()), f"{name}, {type(net).__name__} parameter {i}"
                else:
                    np.testing.assert_allclose(g.numpy(), tg.numpy(), rtol=1e-4, atol=1e-6,
                                               err_msg=f"{name}, {type(net).__name__} parameter {i}")


def test_each_network_descends_its_own_loss():
    """After train_step, each parameter's .grad is what its optimizer used: compare it with
    torch's gradient of exactly the loss Algorithm 1 gives that network."""
    (E, G, D), (tE, tG, tD) = _twins(seed=3)
    opts = [optim.SGD(m.parameters(), lr=0.0) for m in (E, G, D)]  # lr 0: the weights stay where the grads were taken
    real = _real(2)
    eps, z_p = _noise(11)
    mg.manual_seed(11)
    vaegan.train_step(E, G, D, *opts, mg.tensor(real), gamma=GAMMA, margin=None)
    _, (prior, llike, gan) = torch_terms(tE, tG, tD, torch.tensor(real), eps, z_p)

    def torch_grads(loss, twin):
        return torch.autograd.grad(loss, list(twin.parameters()), retain_graph=True)

    used = {net: [p.grad for p in net.parameters()] for net in (E, G, D)}
    _assert_grads_equal(used[E], torch_grads(prior + llike, tE), "encoder <- grad(L_prior + L_llike)")
    _assert_grads_equal(used[G], torch_grads(GAMMA * llike - gan, tG), "decoder <- grad(gamma L_llike - L_GAN)")
    _assert_grads_equal(used[D], torch_grads(gan, tD), "discriminator <- grad(L_GAN)")
    # L_GAN does reach the encoder (through x~) and L_llike the discriminator: leaving
    # them out is a choice of Algorithm 1, and the comparisons above would see them
    with_gan = torch_grads(prior + llike + gan, tE)
    assert any(not np.allclose(g.numpy(), tg.numpy(), rtol=1e-3, atol=1e-5) for g, tg in zip(used[E], with_gan))
    with_llike = torch_grads(gan + llike, tD)
    assert any(not np.allclose(g.numpy(), tg.numpy(), rtol=1e-3, atol=1e-5) for g, tg in zip(used[D], with_llike))


@pytest.mark.parametrize("loss_kind", ["minimax", "non_saturating"])
def test_training_steps_match_torch_twin(loss_kind):
    """Every network updated every step (the equilibrium rule off)."""
    (E, G, D), (tE, tG, tD) = _twins(seed=4)
    opts = [optim.RMSprop(m.parameters(), lr=3e-4) for m in (E, G, D)]
    topts = [torch.optim.RMSprop(m.parameters(), lr=3e-4) for m in (tE, tG, tD)]
    for step in range(2):
        real = _real(10 + step)
        eps, z_p = _noise(100 + step)
        mg.manual_seed(100 + step)
        losses = vaegan.train_step(E, G, D, *opts, mg.tensor(real), gamma=GAMMA, loss_kind=loss_kind, margin=None)
        tlosses, _ = torch_train_step(tE, tG, tD, topts, torch.tensor(real), eps, z_p, GAMMA, loss_kind)
        assert losses["dis_skipped"] == losses["dec_gan_skipped"] == 0
        for name, t in zip(("prior", "llike", "gan"), tlosses):
            np.testing.assert_allclose(losses[name], t, rtol=1e-4, err_msg=f"step {step}, {name}")
        for net, twin in zip((E, G, D), (tE, tG, tD)):  # parameters and batch-norm running statistics
            assert_state_match(net, twin, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- the equilibrium rule


@pytest.mark.parametrize("real_cost, fake_cost, updates", [
    (0.69, 0.69, (True, True)),    # balanced: play on
    (0.34, 1.02, (True, True)),    # within the margin on both sides
    (0.32, 0.69, (False, True)),   # Dis wins on real images
    (0.69, 0.20, (False, True)),   # ... or on decoded ones
    (1.04, 0.69, (True, False)),   # Dis loses on real images
    (0.69, 1.50, (True, False)),   # ... or on decoded ones
    (0.20, 1.50, (True, True)),    # wins on one, loses on the other: neither is skipped
])
def test_equilibrium_rule_follows_the_authors_thresholds(real_cost, fake_cost, updates):
    """equilibrium 0.68, margin 0.35: Dis steps unless a cost < 0.33, Dec's GAN term unless one > 1.03."""
    assert vaegan.equilibrium_updates(real_cost, fake_cost, equilibrium=0.68, margin=0.35) == updates
    assert (vaegan.EQUILIBRIUM, vaegan.MARGIN) == (0.68, 0.35)


@pytest.mark.parametrize("loss_kind", ["minimax", "non_saturating"])
def test_training_steps_with_equilibrium_rule_match_torch_twin(loss_kind):
    """A narrow margin and a large learning rate, so that within a few steps the rule
    skips Dis's update and Dec's GAN term; decisions and parameters agree with the twin."""
    (E, G, D), (tE, tG, tD) = _twins(seed=6)
    lr, margin = 3e-3, 0.15
    opts = [optim.RMSprop(m.parameters(), lr=lr) for m in (E, G, D)]
    topts = [torch.optim.RMSprop(m.parameters(), lr=lr) for m in (tE, tG, tD)]
    decisions = []
    for step in range(6):
        real = _real(30 + step)
        eps, z_p = _noise(300 + step)
        mg.manual_seed(300 + step)
        losses = vaegan.train_step(E, G, D, *opts, mg.tensor(real), gamma=GAMMA, loss_kind=loss_kind, margin=margin)
        tlosses, (update_dis, dec_gan) = torch_train_step(tE, tG, tD, topts, torch.tensor(real), eps, z_p, GAMMA,
                                                          loss_kind, margin=margin)
        assert (losses["dis_skipped"], losses["dec_gan_skipped"]) == (float(not update_dis), float(not dec_gan)), step
        decisions.append((update_dis, dec_gan))
        for name, t in zip(("prior", "llike", "gan"), tlosses):
            np.testing.assert_allclose(losses[name], t, rtol=1e-4, err_msg=f"step {step}, {name}")
        for net, twin in zip((E, G, D), (tE, tG, tD)):
            assert_state_match(net, twin, rtol=1e-4, atol=1e-5)
    assert (False, True) in decisions and (True, False) in decisions  # both kinds of skip were exercised


def _optimizer_arrays(opt):
    return [v.numpy().copy() for s in opt.state_dict()["state"].values() for v in s.values() if hasattr(v, "numpy")]


def test_skipped_dis_update_leaves_dis_and_its_optimizer_unchanged():
    (E, G, D), (tE, tG, tD) = _twins(seed=7)
    opts = [optim.RMSprop(m.parameters(), lr=3e-4) for m in (E, G, D)]
    mg.manual_seed(400)
    vaegan.train_step(E, G, D, *opts, mg.tensor(_real(40)), gamma=GAMMA, margin=None)  # RMSprop state is not zero
    before = {net: [p.numpy().copy() for p in net.parameters()] for net in (E, G, D)}
    state_before = _optimizer_arrays(opts[2])
    assert state_before and any(np.any(a) for a in state_before)
    mg.manual_seed(401)
    # costs near log 2 are far below equilibrium - margin = 4: Dis "wins", and does not step
    losses = vaegan.train_step(E, G, D, *opts, mg.tensor(_real(41)), gamma=GAMMA, margin=1.0, equilibrium=5.0)
    assert (losses["dis_skipped"], losses["dec_gan_skipped"]) == (1.0, 0.0)
    for a, p in zip(before[D], D.parameters()):
        np.testing.assert_array_equal(p.numpy(), a)
    for a, b in zip(state_before, _optimizer_arrays(opts[2])):
        np.testing.assert_array_equal(b, a)
    assert opts[2].state_dict()["state"] and all(  # the step count too
        s.get("step") == 1 for s in opts[2].state_dict()["state"].values() if "step" in s)
    for net in (E, G):  # the others did step
        assert any(not np.array_equal(a, p.numpy()) for a, p in zip(before[net], net.parameters()))


@pytest.mark.parametrize("loss_kind", ["minimax", "non_saturating"])
def test_skipped_gan_term_gives_dec_the_gradient_of_gamma_llike_alone(loss_kind):
    (E, G, D), (tE, tG, tD) = _twins(seed=8)
    opts = [optim.SGD(m.parameters(), lr=0.0) for m in (E, G, D)]  # lr 0: the weights stay where the grads were taken
    real = _real(50)
    eps, z_p = _noise(500)
    mg.manual_seed(500)
    # costs near log 2 are far above equilibrium + margin = -4: Dis "loses", Dec gets no GAN term
    losses = vaegan.train_step(E, G, D, *opts, mg.tensor(real), gamma=GAMMA, loss_kind=loss_kind,
                               margin=1.0, equilibrium=-5.0)
    assert (losses["dis_skipped"], losses["dec_gan_skipped"]) == (0.0, 1.0)
    _, (prior, llike, gan) = torch_terms(tE, tG, tD, torch.tensor(real), eps, z_p)

    def torch_grads(loss, twin):
        return torch.autograd.grad(loss, list(twin.parameters()), retain_graph=True)

    _assert_grads_equal([p.grad for p in G.parameters()], torch_grads(GAMMA * llike, tG),
                        "decoder <- grad(gamma L_llike)")
    _assert_grads_equal([p.grad for p in E.parameters()], torch_grads(prior + llike, tE), "encoder, unchanged")
    _assert_grads_equal([p.grad for p in D.parameters()], torch_grads(gan, tD), "discriminator, unchanged")


def test_negative_margin_is_rejected_by_name():
    (E, G, D), _ = _twins()
    opts = [optim.SGD(m.parameters(), lr=0.0) for m in (E, G, D)]
    with pytest.raises(ValueError, match="margin.*-0.1"):
        vaegan.train_step(E, G, D, *opts, mg.tensor(_real(0)), margin=-0.1)


def test_pixel_vae_step_matches_torch_twin():
    (E, G, _), (tE, tG, _) = _twins(seed=5)
    opt = optim.RMSprop(list(E.parameters()) + list(G.parameters()), lr=3e-4)
    topt = torch.optim.RMSprop(list(tE.parameters()) + list(tG.parameters()), lr=3e-4)
    real = _real(20)
    eps, _ = _noise(200)
    mg.manual_seed(200)
    losses = vaegan.pixel_vae_train_step(E, G, opt, mg.tensor(real))
    x = torch.tensor(real)
    mu, logvar = tE(x)
    recon = tG(mu + torch.exp(0.5 * logvar) * eps)
    prior = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp())).sum(1).mean()
    pixel = 0.5 * ((x - recon) ** 2).sum((1, 2, 3)).mean()
    topt.zero_grad()
    (prior + pixel).backward()
    topt.step()
    np.testing.assert_allclose([losses["prior"], losses["pixel"]], [prior.item(), pixel.item()], rtol=1e-5)
    for net, twin in ((E, tE), (G, tG)):
        assert_state_match(net, twin, rtol=1e-4, atol=1e-5)


def test_decoder_output_is_an_image_in_the_data_range():
    mg.manual_seed(0)
    x = vaegan.Decoder(16, (1, 16, 16))(mg.randn(5, 16) * 10).numpy()
    assert x.shape == (5, 1, 16, 16) and x.min() >= -1 and x.max() <= 1


def test_unknown_loss_kind_is_rejected_by_name():
    (E, G, D), _ = _twins()
    opts = [optim.SGD(m.parameters(), lr=0.0) for m in (E, G, D)]
    with pytest.raises(ValueError, match="loss_kind.*'wasserstein'"):
        vaegan.train_step(E, G, D, *opts, mg.tensor(_real(0)), loss_kind="wasserstein")


def test_image_sizes_the_stages_cannot_halve_are_rejected_by_name():
    with pytest.raises(ValueError, match=r"Encoder.*\(1, 10, 10\)"):
        vaegan.Encoder((1, 10, 10))
    with pytest.raises(ValueError, match="Discriminator"):
        vaegan.Discriminator((1, 16, 12))


# ---------------------------------------------------------------- the example, smoke runs


def test_vaegan_example_writes_the_contract_files(tmp_path):
    metrics = run("vaegan", tmp_path, "--steps", 2, "--batch-size", 8)
    for f in CONTRACT + ["samples.npz", "reconstructions.png"]:
        assert (tmp_path / f).stat().st_size > 0, f
    assert json.loads((tmp_path / "metrics.json").read_text())["steps"] == 2 == metrics["steps"]
    x = np.load(tmp_path / "samples.npz")["x"]
    assert x.shape == (1000, 1, 16, 16) and x.dtype == np.float32 and x.min() >= -1 and x.max() <= 1
    assert metrics["classifier_fd"] > metrics["classifier_fd_train_images"] >= 0
    assert 0 < metrics["reconstruction_mse"] < 4 and 1 <= metrics["classes_hit"] <= 10
    assert metrics["equilibrium_rule"] == {"equilibrium": vaegan.EQUILIBRIUM, "margin": vaegan.MARGIN}
    assert 0 <= metrics["dis_skipped"] + metrics["dec_gan_skipped"] <= 2


def test_vaegan_example_without_the_equilibrium_rule_skips_nothing(tmp_path):
    metrics = run("vaegan", tmp_path, "--steps", 2, "--batch-size", 8, "--no-equilibrium")
    assert metrics["equilibrium_rule"] is None and metrics["dis_skipped"] == metrics["dec_gan_skipped"] == 0


def test_vaegan_example_resumed_run_equals_uninterrupted_run(tmp_path):
    args = ("--batch-size", 8, "--checkpoint-every", 2)
    once, twice = assert_resume_continues_the_run("vaegan", tmp_path, 4, 2, args, ["encoder", "decoder", "discriminator"])
    counts = [json.loads((d / "metrics.json").read_text()) for d in (once, twice)]
    assert [(m["dis_skipped"], m["dec_gan_skipped"]) for m in counts] == [(counts[0]["dis_skipped"],
                                                                          counts[0]["dec_gan_skipped"])] * 2
