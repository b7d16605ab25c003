"""The original GAN (Goodfellow et al., 2014, "Generative Adversarial Nets").

The idea: a generator G maps noise z ~ p(z) to samples, a discriminator D
outputs the probability that its input is real. They play the minimax game

    min_G max_D  V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))].

For a fixed G the best discriminator is D*(x) = p_data(x) / (p_data(x) + p_g(x)),
and then V = -log 4 + 2 JSD(p_data || p_g): the generator minimizes the
Jensen-Shannon divergence, whose minimum is reached at p_g = p_data.

Training follows Algorithm 1 of the paper: for every generator step, take k
discriminator steps, each on a minibatch of m real samples and m generated ones.

Early in training D rejects G's samples with confidence, and log(1 - D(G(z)))
saturates: its gradient vanishes. The paper's remedy, used by default here, is
the *non-saturating* generator loss: maximize log D(G(z)) instead (same fixed
point, strong gradients early). ``generator_loss(..., kind="minimax")`` gives
the original objective for comparison.

D outputs a logit l, D(x) = sigmoid(l), so every log above is computed
stably from logits: log D = -softplus(-l), log(1 - D) = -softplus(l).

Deviations from the paper: LeakyReLU(0.2) hidden units in both networks (the
paper used ReLU/sigmoid in G and maxout with dropout in D; LeakyReLU is the
simpler modern choice that trains reliably on the toy data), and Adam
(lr 2e-4, beta1 0.5, from DCGAN) instead of SGD with momentum.
"""
import minigan as mg
from minigan import nn
from minigan import functional as F

from .latent import sample_latent


class Generator(nn.Module):
    """G: z (latent_dim) -> sample (data_dim); MLP with LeakyReLU hidden layers."""

    def __init__(self, latent_dim, data_dim, hidden=(128, 128), output="linear"):
        super().__init__()
        if output not in ("linear", "tanh"):
            raise ValueError(f"Generator: output must be 'linear' or 'tanh', got {output!r}")
        self.net = nn.mlp((latent_dim, *hidden, data_dim), lambda: nn.LeakyReLU(0.2))
        if output == "tanh":  # images scaled to [-1, 1]
            self.net.append(nn.Tanh())
        self.latent_dim = latent_dim

    def forward(self, z):
        return self.net(z)


class Discriminator(nn.Module):
    """D: sample (data_dim) -> one logit per sample (D(x) = sigmoid(logit))."""

    def __init__(self, data_dim, hidden=(128, 128)):
        super().__init__()
        self.net = nn.mlp((data_dim, *hidden, 1), lambda: nn.LeakyReLU(0.2))

    def forward(self, x):
        return self.net(x.flatten(1)).flatten()


# ---------------------------------------------------------------- losses


def discriminator_loss(real_logits, fake_logits):
    """-(E[log D(x)] + E[log(1 - D(G(z)))]): D ascends V by descending this."""
    real = F.binary_cross_entropy_with_logits(real_logits, mg.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, mg.zeros_like(fake_logits))
    return real + fake


def generator_loss(fake_logits, kind="non_saturating"):
    """The generator's loss on D's logits for its samples.

    minimax:        E[log(1 - D(G(z)))]   = -E[softplus(l)]
    non_saturating: -E[log D(G(z))]       =  E[softplus(-l)]
    """
    if kind == "minimax":
        return -F.binary_cross_entropy_with_logits(fake_logits, mg.zeros_like(fake_logits))
    if kind == "non_saturating":
        return F.binary_cross_entropy_with_logits(fake_logits, mg.ones_like(fake_logits))
    raise ValueError(f"generator_loss: kind must be 'minimax' or 'non_saturating', got {kind!r}")


# ---------------------------------------------------------------- one step of Algorithm 1


def train_step(generator, discriminator, opt_g, opt_d, real_batches, loss_kind="non_saturating"):
    """One iteration of Algorithm 1: a discriminator step per real batch (k of
    them), then one generator step. Returns the last losses as floats."""
    device = real_batches[0].device
    for real in real_batches:
        z = sample_latent(real.shape[0], generator.latent_dim, device)
        with mg.no_grad():  # D's step does not need G's graph
            fake = generator(z)
        d_loss = discriminator_loss(discriminator(real), discriminator(fake))
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()

    z = sample_latent(real_batches[-1].shape[0], generator.latent_dim, device)
    discriminator.requires_grad_(False)  # G's step differentiates through D, not into it
    g_loss = generator_loss(discriminator(generator(z)), loss_kind)
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    discriminator.requires_grad_(True)
    return {"d_loss": d_loss.item(), "g_loss": g_loss.item()}
