"""The original GAN against a torch twin written in plain torch.

The twin loads minigan's weights; forward outputs, gradients, and the
parameters after whole training steps (Algorithm 1 with k discriminator steps,
Adam on both players) must agree within float32 tolerance.
"""
import numpy as np
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as TF

import minigan as mg
from minigan.testing import assert_params_match, load_into_twin
from minigan import optim
from minigan.models import gan


class TorchGenerator(tnn.Module):
    def __init__(self, latent_dim, data_dim, hidden, tanh):
        super().__init__()
        layers, width = [], latent_dim
        for h in hidden:
            layers += [tnn.Linear(width, h), tnn.LeakyReLU(0.2)]
            width = h
        layers.append(tnn.Linear(width, data_dim))
        if tanh:
            layers.append(tnn.Tanh())
        self.net = tnn.Sequential(*layers)

    def forward(self, z):
        return self.net(z)


class TorchDiscriminator(tnn.Module):
    def __init__(self, data_dim, hidden):
        super().__init__()
        layers, width = [], data_dim
        for h in hidden:
            layers += [tnn.Linear(width, h), tnn.LeakyReLU(0.2)]
            width = h
        layers.append(tnn.Linear(width, 1))
        self.net = tnn.Sequential(*layers)

    def forward(self, x):
        return self.net(x.flatten(1)).flatten()


def torch_train_step(G, D, opt_g, opt_d, reals, zs, kind):
    """Algorithm 1 as written in the paper, in torch, with the noise given."""
    for real, z in zip(reals, zs[:-1]):
        with torch.no_grad():
            fake = G(z)
        lr, lf = D(real), D(fake)
        d_loss = TF.binary_cross_entropy_with_logits(lr, torch.ones_like(lr)) + \
            TF.binary_cross_entropy_with_logits(lf, torch.zeros_like(lf))
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
    logits = D(G(zs[-1]))
    if kind == "minimax":  # E[log(1 - D(G(z)))]
        g_loss = torch.log1p(-torch.sigmoid(logits)).mean()
    else:  # -E[log D(G(z))]
        g_loss = -torch.log(torch.sigmoid(logits)).mean()
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    return d_loss.item(), g_loss.item()


def _twins(latent_dim=3, data_dim=5, hidden=(16, 8), tanh=False, seed=0):
    mg.manual_seed(seed)
    G = gan.Generator(latent_dim, data_dim, hidden, output="tanh" if tanh else "linear")
    D = gan.Discriminator(data_dim, hidden)
    tG, tD = TorchGenerator(latent_dim, data_dim, hidden, tanh), TorchDiscriminator(data_dim, hidden)
    load_into_twin(G, tG)
    load_into_twin(D, tD)
    return G, D, tG, tD




def test_state_dict_keys_match_torch_twin():
    G, D, tG, tD = _twins()
    assert list(G.state_dict()) == list(tG.state_dict())
    assert list(D.state_dict()) == list(tD.state_dict())


def test_forward_and_gradients_match_torch_twin():
    G, D, tG, tD = _twins(tanh=True)
    z = np.random.default_rng(1).standard_normal((7, 3)).astype(np.float32)
    x = G(mg.tensor(z))
    tx = tG(torch.tensor(z))
    np.testing.assert_allclose(x.numpy(), tx.detach().numpy(), rtol=1e-5, atol=1e-6)
    loss = gan.discriminator_loss(D(x), D(x * 0.5))
    tl = TF.binary_cross_entropy_with_logits(tD(tx), torch.ones(7)) + \
        TF.binary_cross_entropy_with_logits(tD(tx * 0.5), torch.zeros(7))
    np.testing.assert_allclose(loss.item(), tl.item(), rtol=1e-5)
    loss.backward()
    tl.backward()
    assert_params_match(G, tG, rtol=1e-4, grads=True)
    assert_params_match(D, tD, rtol=1e-4, grads=True)


@pytest.mark.parametrize("kind", ["non_saturating", "minimax"])
@pytest.mark.parametrize("k", [1, 3])
def test_training_steps_match_torch_twin(kind, k):
    G, D, tG, tD = _twins(seed=k)
    opt_g = optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    topt_g = torch.optim.Adam(tG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    topt_d = torch.optim.Adam(tD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    rng = np.random.default_rng(2)
    for step in range(3):
        reals = [rng.standard_normal((8, 5)).astype(np.float32) for _ in range(k)]
        # the noise train_step will draw, drawn first from the same seed
        mg.manual_seed(100 + step)
        zs = [mg.randn(8, 3).numpy() for _ in range(k + 1)]
        mg.manual_seed(100 + step)
        losses = gan.train_step(G, D, opt_g, opt_d, [mg.tensor(r) for r in reals], kind)
        d_loss, g_loss = torch_train_step(tG, tD, topt_g, topt_d, [torch.tensor(r) for r in reals],
                                          [torch.tensor(z) for z in zs], kind)
        np.testing.assert_allclose(losses["d_loss"], d_loss, rtol=1e-5)
        np.testing.assert_allclose(losses["g_loss"], g_loss, rtol=1e-5)
        assert_params_match(G, tG)
        assert_params_match(D, tD)


def test_generator_step_leaves_discriminator_untouched():
    G, D, _, _ = _twins()
    opt_g = optim.Adam(G.parameters(), lr=1e-2)
    opt_d = optim.SGD(D.parameters(), lr=0.0)  # D's step changes nothing either
    before = {k: v.numpy().copy() for k, v in D.state_dict().items()}
    gan.train_step(G, D, opt_g, opt_d, [mg.randn(4, 5)])
    for k, v in D.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])
    assert all(p.requires_grad for p in D.parameters())


def test_unknown_generator_loss_is_a_clear_error():
    with pytest.raises(ValueError, match="generator_loss.*'hinge'"):
        gan.generator_loss(mg.zeros(3), kind="hinge")


def test_optimal_discriminator_value_is_minus_log_four():
    # at p_g = p_data the best D outputs 1/2 everywhere and V(D*, G) = -log 4
    half = mg.zeros(10)  # logit 0 -> D = 1/2
    v = -gan.discriminator_loss(half, half).item()
    np.testing.assert_allclose(v, -np.log(4.0), rtol=1e-6)
