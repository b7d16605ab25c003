"""InfoGAN (Chen et al., 2016, "InfoGAN: Interpretable Representation Learning by
Information Maximizing Generative Adversarial Nets").

The idea: split the generator's input into incompressible noise z and a latent
code c, and ask that c stay readable in the sample: maximize the mutual
information I(c; G(z, c)). With no labels at all, a 10-way categorical code then
tends to pick the digit class, and continuous codes pick smooth factors such as
slant and stroke width. The game becomes

    min_{G,Q} max_D  V(D, G) - lambda L_I(G, Q),

    L_I(G, Q) = E_{c ~ p(c), x ~ G(z, c)}[log Q(c | x)] + H(c)  <=  I(c; G(z, c)),

a variational lower bound (Lemma 5.1): the intractable posterior P(c | x) is
replaced by an auxiliary distribution Q(c | x), a head on D's body, so it costs
one extra layer or two. Maximizing L_I is minimizing the negative log-likelihood
of the code under Q:

  * categorical c: Q gives logits, and -log Q(c | x) is cross_entropy(logits, c).
    The logits go to cross_entropy *once*: PyTorch-GAN applied a softmax in the
    head and then cross_entropy's own log-softmax on top, a bounded, flattened loss
    that no longer reads the code (tests/test_infogan.py catches this);
  * continuous c: Q gives a Gaussian mean mu, and with a fixed unit standard
    deviation -log Q(c | x) = (c - mu)^2 / 2 + const.

The D and G losses are the original GAN's (imported from ``gan.py``); both players'
steps add lambda L_I on their fake batch, so Q learns in D's step and G in its own.

The paper's MNIST setup (its experiment-setup appendix), followed here: c1 ~ Cat(K = 10),
c2, c3 ~ Unif(-1, 1), 62 noise variables z; lambda = 1 for both kinds
of code, the continuous ones with a fixed standard deviation of 1 (as in the
authors' code for MNIST); Adam with beta1 0.5, lr 2e-4 for D and Q, 1e-3 for G;
batch norm in G, D and Q except on D's first layer, LeakyReLU(0.1) in D and Q, ReLU in G.

Deviations from the paper, and why:
  * MLPs on 8x8 digits instead of convolutions on 28x28 MNIST: the same layer
    widths where the paper has FC layers (G: 1024 then 128 features per 2x2
    position = 512; D: 1024; Q: 128), with the convolutions replaced by FC layers
    (64 -> 256 in D), which is plenty for 64 pixels and trains in minutes on a CPU.
  * A tanh output, as the digits are scaled to [-1, 1].
  * z ~ N(0, I), the convention of DCGAN and ``gan.py`` (the authors' code draws
    z uniform in [-1, 1]; the code c is what InfoGAN is about, not z's prior).
  * No bias in a layer followed by batch norm: BN subtracts the batch mean, so
    that bias has no effect and a zero gradient, which Adam would turn into
    steps of round-off noise; BN's own shift plays its part.
"""
import minigan as mg
from minigan import nn
from minigan import functional as F

from .cgan import one_hot
from .gan import discriminator_loss, generator_loss  # noqa: F401  (re-exported: the GAN part of the game)
from .latent import sample_latent


class Generator(nn.Module):
    """G(z, c): noise z, a categorical code and continuous codes -> an image in [-1, 1]."""

    def __init__(self, noise_dim=62, n_categories=10, n_continuous=2, image_shape=(1, 8, 8), hidden=(1024, 512)):
        super().__init__()
        data_dim = 1
        for s in image_shape:
            data_dim *= s
        layers, width = [], noise_dim + n_categories + n_continuous
        for h in hidden:
            layers += [nn.Linear(width, h, bias=False), nn.BatchNorm1d(h), nn.ReLU()]
            width = h
        layers += [nn.Linear(width, data_dim), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.noise_dim, self.n_categories, self.n_continuous = noise_dim, n_categories, n_continuous
        self.image_shape = tuple(image_shape)

    def forward(self, z, c_cat, c_cont):
        h = mg.cat([z, one_hot(c_cat, self.n_categories), c_cont], dim=1)
        return self.net(h).reshape(z.shape[0], *self.image_shape)


class Discriminator(nn.Module):
    """A shared body with two heads: D's logit (real or fake) and Q(c | x).

    ``forward`` returns (logit (N,), categorical logits (N, K), continuous means (N, C)).
    Q's categorical output is raw logits: no softmax here, cross_entropy applies it.
    """

    def __init__(self, n_categories=10, n_continuous=2, image_shape=(1, 8, 8), hidden=(256, 1024), q_hidden=128):
        super().__init__()
        data_dim = 1
        for s in image_shape:
            data_dim *= s
        layers, width = [], data_dim
        for i, h in enumerate(hidden):  # no batch norm on the first layer, as DCGAN and the paper
            layers += [nn.Linear(width, h, bias=False), nn.BatchNorm1d(h)] if i else [nn.Linear(width, h)]
            layers.append(nn.LeakyReLU(0.1))
            width = h
        self.body = nn.Sequential(*layers)
        self.d_head = nn.Linear(width, 1)
        self.q_head = nn.Sequential(nn.Linear(width, q_hidden, bias=False), nn.BatchNorm1d(q_hidden), nn.LeakyReLU(0.1),
                                    nn.Linear(q_hidden, n_categories + n_continuous))
        self.n_categories = n_categories

    def forward(self, x):
        h = self.body(x.flatten(1))
        q = self.q_head(h)
        return self.d_head(h).flatten(), q[:, :self.n_categories], q[:, self.n_categories:]


def sample_codes(n, noise_dim, n_categories, n_continuous, device="cpu"):
    """The prior: z ~ N(0, I), c_cat ~ uniform over K, c_cont ~ Unif(-1, 1); drawn in that order."""
    z = sample_latent(n, noise_dim, device)
    c_cat = mg.randint(0, n_categories, (n,), device=device)
    c_cont = mg.rand(n, n_continuous, device=device) * 2 - 1
    return z, c_cat, c_cont


# ---------------------------------------------------------------- the information term


def information_loss(cat_logits, cont_mean, c_cat, c_cont, lambda_cat=1.0, lambda_cont=1.0):
    """-L_I + H(c): the negative log-likelihood of the codes under Q, batch mean.

    categorical: cross_entropy on Q's raw logits (one softmax, inside cross_entropy);
    continuous:  sum_j (c_j - mu_j)^2 / 2, a unit-variance Gaussian without its constant.
    """
    cat_nll = F.cross_entropy(cat_logits, c_cat)
    cont_nll = ((c_cont - cont_mean) ** 2).sum(dim=1).mean() * 0.5
    return lambda_cat * cat_nll + lambda_cont * cont_nll, cat_nll, cont_nll


# ---------------------------------------------------------------- one training step


def train_step(generator, discriminator, opt_g, opt_d, real, lambda_cat=1.0, lambda_cont=1.0):
    """D and Q descend the GAN loss plus lambda times the information loss on G's
    samples; then G descends its non-saturating loss plus the same information
    loss on fresh samples. ``opt_d`` holds D's body and both heads. Returns the
    losses as floats; ``info_cat`` is G's step's cross-entropy, so log K - info_cat
    is the lower bound on I(c_cat; G(z, c))."""
    n, device = real.shape[0], real.device
    dims = (generator.noise_dim, generator.n_categories, generator.n_continuous)

    z, c_cat, c_cont = sample_codes(n, *dims, device=device)
    with mg.no_grad():  # D and Q's step does not need G's graph
        fake = generator(z, c_cat, c_cont)
    real_logits, _, _ = discriminator(real)
    fake_logits, cat_logits, cont_mean = discriminator(fake)
    info_d, _, _ = information_loss(cat_logits, cont_mean, c_cat, c_cont, lambda_cat, lambda_cont)
    d_loss = discriminator_loss(real_logits, fake_logits) + info_d
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()

    z, c_cat, c_cont = sample_codes(n, *dims, device=device)
    discriminator.requires_grad_(False)  # G's step differentiates through D and Q, not into them
    fake_logits, cat_logits, cont_mean = discriminator(generator(z, c_cat, c_cont))
    info_g, cat_nll, cont_nll = information_loss(cat_logits, cont_mean, c_cat, c_cont, lambda_cat, lambda_cont)
    g_loss = generator_loss(fake_logits) + info_g
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    discriminator.requires_grad_(True)
    return {"d_loss": d_loss.item(), "g_loss": g_loss.item(), "info_cat": cat_nll.item(),
            "info_cont": cont_nll.item()}
