"""The VAE against a torch twin written in plain torch.

The twin loads minigan's weights; with the same eps in the reparameterization,
the ELBO, its gradients, and the parameters after Adam steps on -ELBO agree
within float32 tolerance. The ELBO's parts are checked against their
definitions: the Bernoulli log-likelihood and the closed-form Gaussian KL.
"""
import numpy as np
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as TF

import minigan as mg
from minigan.testing import assert_params_match, load_into_twin
from minigan import optim
from minigan.models import vae


class TorchEncoder(tnn.Module):
    def __init__(self, data_dim, latent_dim, hidden):
        super().__init__()
        self.hidden = tnn.Sequential(tnn.Linear(data_dim, hidden), tnn.Tanh())
        self.mu = tnn.Linear(hidden, latent_dim)
        self.logvar = tnn.Linear(hidden, latent_dim)

    def forward(self, x):
        h = self.hidden(x.flatten(1))
        return self.mu(h), self.logvar(h)


class TorchVAE(tnn.Module):
    def __init__(self, data_dim, latent_dim, hidden):
        super().__init__()
        self.encoder = TorchEncoder(data_dim, latent_dim, hidden)
        self.decoder = tnn.Module()
        self.decoder.net = tnn.Sequential(tnn.Linear(latent_dim, hidden), tnn.Tanh(), tnn.Linear(hidden, data_dim))

    def neg_elbo(self, x, eps):
        """-ELBO per image with the given eps: BCE(decoder(mu + sigma eps), x) + KL(q || N(0, I))."""
        mu, logvar = self.encoder(x)
        z = mu + torch.exp(0.5 * logvar) * eps
        logits = self.decoder.net(z)
        target = (x.flatten(1) + 1) / 2
        reconstruction = TF.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(1)
        kl = -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(1)
        return reconstruction + kl


def _twins(data_dim=12, latent_dim=3, hidden=16, seed=0, init_std=0.3):
    # a larger init than the paper's 0.01, so that the test exercises nonlinear tanh units
    mg.manual_seed(seed)
    model = vae.VAE(data_dim, latent_dim, hidden, init_std=init_std)
    twin = TorchVAE(data_dim, latent_dim, hidden)
    load_into_twin(model, twin)
    return model, twin


def _binary_images(n=8, seed=1):
    rng = np.random.default_rng(seed)
    return np.where(rng.random((n, 1, 3, 4)) < 0.4, 1.0, -1.0).astype(np.float32)




def test_state_dict_keys_match_torch_twin():
    model, twin = _twins()
    assert list(model.state_dict()) == list(twin.state_dict())


def test_paper_initialization():
    model = vae.VAE(64, 10)
    weights = np.concatenate([p.numpy().ravel() for n, p in model.named_parameters() if n.endswith("weight")])
    assert abs(weights.std() - 0.01) < 1e-3
    assert all((p.numpy() == 0).all() for n, p in model.named_parameters() if n.endswith("bias"))


def test_elbo_and_gradients_match_torch_twin():
    model, twin = _twins()
    x = _binary_images()
    mg.manual_seed(7)
    eps = mg.randn(8, 3).numpy()  # the eps reparameterize will draw
    mg.manual_seed(7)
    elbo = vae.elbo(model, mg.tensor(x))
    neg_elbo = twin.neg_elbo(torch.tensor(x), torch.tensor(eps))
    np.testing.assert_allclose(elbo.numpy(), -neg_elbo.detach().numpy(), rtol=1e-5, atol=1e-5)
    (-elbo).mean().backward()
    neg_elbo.mean().backward()
    assert_params_match(model, twin, rtol=1e-4, atol=1e-6, grads=True)


def test_training_steps_match_torch_twin():
    model, twin = _twins(seed=3)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    topt = torch.optim.Adam(twin.parameters(), lr=1e-3)
    for step in range(3):
        x = _binary_images(seed=10 + step)
        mg.manual_seed(100 + step)
        eps = mg.randn(8, 3).numpy()
        mg.manual_seed(100 + step)
        losses = vae.train_step(model, opt, mg.tensor(x))
        loss = twin.neg_elbo(torch.tensor(x), torch.tensor(eps)).mean()
        topt.zero_grad()
        loss.backward()
        topt.step()
        np.testing.assert_allclose(losses["neg_elbo"], loss.item(), rtol=1e-5)
        assert_params_match(model, twin)


def test_elbo_parts_are_the_bernoulli_likelihood_and_gaussian_kl():
    rng = np.random.default_rng(0)
    logits, mu, logvar = (rng.standard_normal(s).astype(np.float64) for s in [(4, 6), (4, 2), (4, 2)])
    x = np.where(rng.random((4, 6)) < 0.5, 1.0, -1.0)
    log_px, kl = vae.elbo_terms(*(mg.tensor(a) for a in (logits, x, mu, logvar)))
    p = 1 / (1 + np.exp(-logits))
    b = (x + 1) / 2
    np.testing.assert_allclose(log_px.numpy(), (b * np.log(p) + (1 - b) * np.log(1 - p)).sum(1), rtol=1e-10)
    q = torch.distributions.Normal(torch.tensor(mu), torch.tensor(np.exp(0.5 * logvar)))
    prior = torch.distributions.Normal(torch.zeros(4, 2, dtype=torch.float64), 1.0)
    np.testing.assert_allclose(kl.numpy(), torch.distributions.kl_divergence(q, prior).sum(1).numpy(), rtol=1e-10)


def test_reparameterization_gradient_flows_through_mu_and_sigma():
    # z = mu + exp(logvar / 2) eps: dz/dmu = 1, dz/dlogvar = eps exp(logvar / 2) / 2
    mu, logvar = mg.zeros(5, 2, requires_grad=True), mg.full((5, 2), 0.4, requires_grad=True)
    mg.manual_seed(3)
    eps = mg.randn(5, 2).numpy()
    mg.manual_seed(3)
    vae.reparameterize(mu, logvar).sum().backward()
    np.testing.assert_allclose(mu.grad.numpy(), np.ones((5, 2)))
    np.testing.assert_allclose(logvar.grad.numpy(), eps * np.exp(0.2) / 2, rtol=1e-6)


def test_untrained_decoder_gives_every_pixel_probability_one_half():
    # zero-init biases and tiny weights: log p(x|z) ~ D log(1/2) and KL ~ 0
    model = vae.VAE(64, 10, init_std=1e-6)
    x = np.where(np.random.default_rng(0).random((4, 64)) < 0.5, 1.0, -1.0).astype(np.float32)
    np.testing.assert_allclose(vae.elbo(model, mg.tensor(x)).numpy(), -64 * np.log(2), rtol=1e-5)


@pytest.mark.parametrize("steps", [2, 5])
def test_interpolation_ends_at_the_two_codes(steps):
    a, b = mg.tensor([1.0, -2.0, 0.5]), mg.tensor([0.0, 4.0, 1.5])
    line = vae.interpolate(a, b, steps).numpy()
    assert line.shape == (steps, 3)
    np.testing.assert_allclose(line[0], a.numpy())
    np.testing.assert_allclose(line[-1], b.numpy(), rtol=1e-6)


def test_attribute_vector_is_the_difference_of_mean_codes():
    with_, without = mg.tensor([[1.0, 2.0], [3.0, 4.0]]), mg.tensor([[0.0, 0.0], [0.0, 2.0], [0.0, 1.0]])
    np.testing.assert_allclose(vae.attribute_vector(with_, without).numpy(), [2.0, 2.0])
