"""InfoGAN against a torch twin written in plain torch.

The twin loads minigan's weights; forward outputs (D's logit and both Q outputs),
gradients of every loss term (the GAN losses and the mutual-information term
through the Q head), and the parameters and batch-norm statistics after whole
training steps must agree within float32 tolerance. The information term's
categorical part is cross_entropy on raw logits, once: the double softmax of
PyTorch-GAN's InfoGAN is tested against.
"""
import numpy as np
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as TF

import minigan as mg
from minigan import nn, optim
from minigan.models import infogan
from minigan.testing import assert_state_match

NOISE, K, C, SHAPE = 5, 4, 2, (1, 4, 4)
HIDDEN, WIDTH, Q_HIDDEN = 12, 3, 6  # the paper's 1024, 64 and 128, shrunk


class TorchGenerator(tnn.Module):
    """The paper's MNIST generator: FC, FC to a 2w-channel map at a quarter of the size, two 4x4 stride-2 upconvs."""

    def __init__(self):
        super().__init__()
        h, w = SHAPE[1] // 4, SHAPE[2] // 4
        self.net = tnn.Sequential(
            tnn.Linear(NOISE + K + C, HIDDEN, bias=False), tnn.BatchNorm1d(HIDDEN), tnn.ReLU(),
            tnn.Linear(HIDDEN, 2 * WIDTH * h * w, bias=False), tnn.BatchNorm1d(2 * WIDTH * h * w), tnn.ReLU(),
            tnn.Unflatten(1, (2 * WIDTH, h, w)),
            tnn.ConvTranspose2d(2 * WIDTH, WIDTH, 4, 2, 1, bias=False), tnn.BatchNorm2d(WIDTH), tnn.ReLU(),
            tnn.ConvTranspose2d(WIDTH, SHAPE[0], 4, 2, 1), tnn.Tanh())

    def forward(self, z, c_cat, c_cont):
        return self.net(torch.cat([z, TF.one_hot(c_cat, K).float(), c_cont], 1))


class TorchDiscriminator(tnn.Module):
    """The paper's MNIST D and Q: two 4x4 stride-2 convs and FC shared, then D's logit and Q's FC head."""

    def __init__(self):
        super().__init__()
        h, w = SHAPE[1] // 4, SHAPE[2] // 4
        self.body = tnn.Sequential(
            tnn.Conv2d(SHAPE[0], WIDTH, 4, 2, 1), tnn.LeakyReLU(0.1),
            tnn.Conv2d(WIDTH, 2 * WIDTH, 4, 2, 1, bias=False), tnn.BatchNorm2d(2 * WIDTH), tnn.LeakyReLU(0.1),
            tnn.Flatten(), tnn.Linear(2 * WIDTH * h * w, HIDDEN, bias=False), tnn.BatchNorm1d(HIDDEN),
            tnn.LeakyReLU(0.1))
        self.d_head = tnn.Linear(HIDDEN, 1)
        self.q_head = tnn.Sequential(tnn.Linear(HIDDEN, Q_HIDDEN, bias=False), tnn.BatchNorm1d(Q_HIDDEN),
                                     tnn.LeakyReLU(0.1), tnn.Linear(Q_HIDDEN, K + C))

    def forward(self, x):
        h = self.body(x)
        q = self.q_head(h)
        return self.d_head(h).flatten(), q[:, :K], q[:, K:]


def torch_info_loss(cat_logits, cont_mean, c_cat, c_cont):
    """-log Q(c | x): categorical NLL from log_softmax of the logits, unit-variance Gaussian NLL."""
    cat = -TF.log_softmax(cat_logits, 1).gather(1, c_cat[:, None]).mean()
    cont = 0.5 * ((c_cont - cont_mean) ** 2).sum(1).mean()
    return cat + cont


def torch_train_step(G, D, opt_g, opt_d, real, noise):
    (z, c, u), (z2, c2, u2) = noise
    with torch.no_grad():
        fake = G(z, c, u)
    lr, _, _ = D(real)
    lf, cat, mu = D(fake)
    d_loss = TF.binary_cross_entropy_with_logits(lr, torch.ones_like(lr)) + \
        TF.binary_cross_entropy_with_logits(lf, torch.zeros_like(lf)) + torch_info_loss(cat, mu, c, u)
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    lf, cat, mu = D(G(z2, c2, u2))
    g_loss = -torch.log(torch.sigmoid(lf)).mean() + torch_info_loss(cat, mu, c2, u2)
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    return d_loss.item(), g_loss.item()


def _twins(seed=0):
    mg.manual_seed(seed)
    G = infogan.Generator(NOISE, K, C, SHAPE, HIDDEN, WIDTH)
    D = infogan.Discriminator(K, C, SHAPE, HIDDEN, WIDTH, Q_HIDDEN)
    tG, tD = TorchGenerator(), TorchDiscriminator()
    tG.load_state_dict({k: torch.tensor(v.numpy()) for k, v in G.state_dict().items()})
    tD.load_state_dict({k: torch.tensor(v.numpy()) for k, v in D.state_dict().items()})
    return G, D, tG, tD


def _codes(rng, n=8):
    return (rng.standard_normal((n, NOISE)).astype(np.float32), rng.integers(0, K, n),
            rng.uniform(-1, 1, (n, C)).astype(np.float32))


def test_state_dict_keys_match_torch_twin():
    G, D, tG, tD = _twins()
    assert list(G.state_dict()) == list(tG.state_dict())
    assert list(D.state_dict()) == list(tD.state_dict())


def test_forward_and_gradients_of_every_loss_term_match_torch_twin():
    G, D, tG, tD = _twins()
    z, c, u = _codes(np.random.default_rng(1))
    real = np.random.default_rng(3).uniform(-1, 1, (8, *SHAPE)).astype(np.float32)
    x = G(mg.tensor(z), mg.tensor(c), mg.tensor(u))
    tx = tG(torch.tensor(z), torch.tensor(c), torch.tensor(u))
    np.testing.assert_allclose(x.numpy(), tx.detach().numpy(), rtol=1e-5, atol=1e-6)
    (lr, _, _), (lf, cat, mu) = D(mg.tensor(real)), D(x)
    (tlr, _, _), (tlf, tcat, tmu) = tD(torch.tensor(real)), tD(tx)
    for a, b in ((lr, tlr), (lf, tlf), (cat, tcat), (mu, tmu)):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-5)
    info, cat_nll, cont_nll = infogan.information_loss(cat, mu, mg.tensor(c), mg.tensor(u))
    terms = [infogan.discriminator_loss(lr, lf), infogan.generator_loss(lf), cat_nll, cont_nll]
    tterms = [TF.binary_cross_entropy_with_logits(tlr, torch.ones(8)) +
              TF.binary_cross_entropy_with_logits(tlf, torch.zeros(8)),
              -TF.logsigmoid(tlf).mean(),
              -TF.log_softmax(tcat, 1).gather(1, torch.tensor(c)[:, None]).mean(),
              0.5 * ((torch.tensor(u) - tmu) ** 2).sum(1).mean()]
    for i, (term, tterm) in enumerate(zip(terms, tterms)):  # each term's gradients, separately
        params = list(G.parameters()) + list(D.parameters())
        tparams = list(tG.parameters()) + list(tD.parameters())
        grads = mg.grad(term, params, retain_graph=True, allow_unused=True)
        tgrads = torch.autograd.grad(tterm, tparams, retain_graph=True, allow_unused=True)
        np.testing.assert_allclose(term.item(), tterm.item(), rtol=1e-5, err_msg=f"term {i}")
        for g, tg in zip(grads, tgrads):
            if tg is None:
                assert g is None or np.all(g.numpy() == 0)
            else:
                np.testing.assert_allclose(g.numpy(), tg.numpy(), rtol=1e-4, atol=1e-6, err_msg=f"term {i}")
    np.testing.assert_allclose(info.item(), (tterms[2] + tterms[3]).item(), rtol=1e-5)


def test_training_steps_with_the_information_term_match_torch_twin():
    G, D, tG, tD = _twins(seed=4)
    opt_g = optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_d = optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    topt_g = torch.optim.Adam(tG.parameters(), lr=1e-3, betas=(0.5, 0.999))
    topt_d = torch.optim.Adam(tD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    rng = np.random.default_rng(2)
    for step in range(3):
        # A batch of 32: a first-layer unit of D in one LeakyReLU regime for the whole
        # batch gets an exactly zero bias gradient (the batch norm after it removes
        # the batch mean), and Adam's first step would turn round-off into +-lr.
        real = rng.uniform(-1, 1, (32, *SHAPE)).astype(np.float32)
        # the codes train_step will draw, drawn first from the same seed
        mg.manual_seed(100 + step)
        noise = [tuple(torch.tensor(t.numpy()) for t in infogan.sample_codes(32, NOISE, K, C)) for _ in range(2)]
        mg.manual_seed(100 + step)
        losses = infogan.train_step(G, D, opt_g, opt_d, mg.tensor(real))
        d_loss, g_loss = torch_train_step(tG, tD, topt_g, topt_d, torch.tensor(real), noise)
        np.testing.assert_allclose(losses["d_loss"], d_loss, rtol=1e-5)
        np.testing.assert_allclose(losses["g_loss"], g_loss, rtol=1e-5)
        assert_state_match(G, tG)  # parameters and batch-norm running statistics
        assert_state_match(D, tD)


def test_categorical_information_loss_is_cross_entropy_on_raw_logits_once():
    # Q sure of the right code: -log Q(c|x) -> 0. A second softmax would squash the
    # logits into [0, 1] first and leave the loss >= log(1 + (K-1)/e), about 0.76 for K = 4.
    c = np.array([0, 1, 2, 3, 1])
    logits = mg.tensor(20.0 * np.eye(K, dtype=np.float32)[c])
    _, cat_nll, _ = infogan.information_loss(logits, mg.zeros(5, C), mg.tensor(c), mg.zeros(5, C))
    assert cat_nll.item() < 1e-6
    doubled = TF.cross_entropy(torch.softmax(torch.tensor(logits.numpy()), 1), torch.tensor(c)).item()
    assert doubled > np.log(1 + (K - 1) / np.e) - 1e-6


def test_q_head_outputs_logits_not_probabilities():
    _, D, _, _ = _twins()
    assert not any(isinstance(m, (nn.Softmax, nn.LogSoftmax)) for m in D.modules())
    assert isinstance(D.q_head[-1], nn.Linear)


def test_codes_follow_the_papers_prior():
    mg.manual_seed(0)
    z, c, u = (t.numpy() for t in infogan.sample_codes(5000, 62, 10, 2))
    assert z.shape == (5000, 62) and z.min() >= -1 and z.max() <= 1 and abs(z.std() - 1 / np.sqrt(3)) < 0.01
    assert c.shape == (5000,) and set(np.unique(c)) == set(range(10))
    assert u.shape == (5000, 2) and u.min() >= -1 and u.max() <= 1 and abs(u.mean()) < 0.03


def test_networks_refuse_images_two_stride_2_layers_cannot_halve_twice():
    with pytest.raises(ValueError, match="divisible by 4"):
        infogan.Generator(NOISE, K, C, (1, 6, 6))
    with pytest.raises(ValueError, match="divisible by 4"):
        infogan.Discriminator(K, C, (1, 8, 10))
