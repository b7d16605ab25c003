"""The conditional GAN against a torch twin written in plain torch.

The twin loads minigan's weights; forward outputs, gradients, and the
parameters after whole training steps (a conditioned D step and G step, Adam on
both players) must agree within float32 tolerance. Training steps are compared
with dropout 0 (the two frameworks draw different dropout masks); forward passes
with the default dropout are compared in eval mode, where dropout is the identity.
"""
import numpy as np
import torch
import torch.nn as tnn
import torch.nn.functional as TF

import minigan as mg
from minigan.testing import assert_params_match, load_into_twin
from minigan import optim
from minigan.models import cgan


def torch_mlp(sizes, dropout):
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        layers.append(tnn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers += [tnn.LeakyReLU(0.2), tnn.Dropout(dropout)]
    return tnn.Sequential(*layers)


class TorchGenerator(tnn.Module):
    def __init__(self, latent_dim, n_classes, image_shape, hidden, dropout):
        super().__init__()
        self.net = torch_mlp((latent_dim + n_classes, *hidden, int(np.prod(image_shape))), dropout)
        self.n_classes, self.image_shape = n_classes, image_shape

    def forward(self, z, y):
        h = torch.cat([z, TF.one_hot(y, self.n_classes).float()], 1)
        return torch.tanh(self.net(h)).reshape(z.shape[0], *self.image_shape)


class TorchDiscriminator(tnn.Module):
    def __init__(self, n_classes, image_shape, hidden, dropout):
        super().__init__()
        self.net = torch_mlp((int(np.prod(image_shape)) + n_classes, *hidden, 1), dropout)
        self.n_classes = n_classes

    def forward(self, x, y):
        return self.net(torch.cat([x.flatten(1), TF.one_hot(y, self.n_classes).float()], 1)).flatten()


def torch_train_step(G, D, opt_g, opt_d, real, labels, noise):
    """The cGAN step in torch, with the noise and fake labels given."""
    (z, y), (z2, y2) = noise
    with torch.no_grad():
        fake = G(z, y)
    lr, lf = D(real, labels), D(fake, y)
    d_loss = TF.binary_cross_entropy_with_logits(lr, torch.ones_like(lr)) + \
        TF.binary_cross_entropy_with_logits(lf, torch.zeros_like(lf))
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    g_loss = -torch.log(torch.sigmoid(D(G(z2, y2), y2))).mean()  # -E[log D(G(z|y)|y)]
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    return d_loss.item(), g_loss.item()


SIZES = dict(latent_dim=6, n_classes=4, image_shape=(1, 3, 3))
G_WIDTHS = dict(hidden=(8, 12))
D_WIDTHS = dict(hidden=(10, 9))


def _twins(dropout=0.0, seed=0):
    mg.manual_seed(seed)
    G = cgan.Generator(**SIZES, **G_WIDTHS, dropout=dropout)
    D = cgan.Discriminator(SIZES["n_classes"], SIZES["image_shape"], **D_WIDTHS, dropout=dropout)
    tG = TorchGenerator(**SIZES, **G_WIDTHS, dropout=dropout)
    tD = TorchDiscriminator(SIZES["n_classes"], SIZES["image_shape"], **D_WIDTHS, dropout=dropout)
    load_into_twin(G, tG)
    load_into_twin(D, tD)
    return G, D, tG, tD




def test_state_dict_keys_match_torch_twin():
    G, D, tG, tD = _twins(dropout=0.5)
    assert list(G.state_dict()) == list(tG.state_dict())
    assert list(D.state_dict()) == list(tD.state_dict())


def test_forward_and_gradients_match_torch_twin():
    G, D, tG, tD = _twins(dropout=0.5)
    for module in (G, D, tG, tD):
        module.eval()
    rng = np.random.default_rng(1)
    z = rng.random((7, 6)).astype(np.float32)
    y = rng.integers(0, 4, 7)
    x = G(mg.tensor(z), mg.tensor(y))
    tx = tG(torch.tensor(z), torch.tensor(y))
    assert x.shape == (7, 1, 3, 3)
    np.testing.assert_allclose(x.numpy(), tx.detach().numpy(), rtol=1e-5, atol=1e-6)
    y2 = (y + 1) % 4  # the same images under the wrong labels
    loss = cgan.discriminator_loss(D(x, mg.tensor(y)), D(x, mg.tensor(y2)))
    tl = TF.binary_cross_entropy_with_logits(tD(tx, torch.tensor(y)), torch.ones(7)) + \
        TF.binary_cross_entropy_with_logits(tD(tx, torch.tensor(y2)), torch.zeros(7))
    np.testing.assert_allclose(loss.item(), tl.item(), rtol=1e-5)
    loss.backward()
    tl.backward()
    assert_params_match(G, tG, rtol=1e-4, grads=True)
    assert_params_match(D, tD, rtol=1e-4, grads=True)


def test_training_steps_match_torch_twin():
    G, D, tG, tD = _twins()
    opt_g = optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    topt_g = torch.optim.Adam(tG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    topt_d = torch.optim.Adam(tD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    rng = np.random.default_rng(2)
    for step in range(3):
        real = rng.uniform(-1, 1, (8, 1, 3, 3)).astype(np.float32)
        labels = rng.integers(0, 4, 8)
        # the noise and fake labels train_step will draw, drawn first from the same seed
        mg.manual_seed(100 + step)
        noise = [(torch.tensor(cgan.sample_latent(8, 6).numpy()), torch.tensor(cgan.sample_labels(8, 4).numpy()))
                 for _ in range(2)]
        mg.manual_seed(100 + step)
        losses = cgan.train_step(G, D, opt_g, opt_d, mg.tensor(real), mg.tensor(labels))
        d_loss, g_loss = torch_train_step(tG, tD, topt_g, topt_d, torch.tensor(real), torch.tensor(labels), noise)
        np.testing.assert_allclose(losses["d_loss"], d_loss, rtol=1e-5)
        np.testing.assert_allclose(losses["g_loss"], g_loss, rtol=1e-5)
        assert_params_match(G, tG)
        assert_params_match(D, tD)


def test_generator_output_depends_on_the_label():
    G, _, _, _ = _twins()
    z = mg.randn(1, 6).expand(4, 6)
    x = G(z, mg.arange(4)).numpy()
    assert not np.allclose(x[0], x[1])


def test_generator_output_depends_on_the_noise():
    G, _, _, _ = _twins()
    x = G(mg.randn(4, 6), mg.zeros(4, dtype="int64")).numpy()
    assert not np.allclose(x[0], x[1])


def test_labels_enter_both_networks_as_one_hot_inputs():
    G, D, _, _ = _twins()
    assert G.net[0].weight.shape == (8, SIZES["latent_dim"] + SIZES["n_classes"])
    assert D.net[0].weight.shape == (10, 9 + SIZES["n_classes"])
