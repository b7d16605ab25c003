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
c2, c3 ~ Unif(-1, 1), 62 noise variables z ~ Unif(-1, 1) (as the authors' code: |z| is
then about 4.5, not N(0, I)'s 7.9, beside the one-hot code's 1); lambda = 1 for the
categorical code; Q's Gaussians for the continuous ones with a fixed standard deviation
of 1 (as in the authors' code for MNIST); Adam with beta1 0.5, lr 2e-4 for D and Q,
1e-3 for G; batch norm in G, D and Q except on D's first layer, LeakyReLU(0.1) in D
and Q, ReLU in G. For continuous codes the paper takes "a smaller lambda", so that
lambda L_I stays on the GAN objective's scale, without a value (the authors' MNIST code:
1); examples/infogan.py uses 0.1. At 1, on 8x8 digits, a continuous code tends to carry
the change from one digit to another (its sweep turns a 9 into an 8), and the
categorical code then splits that pair of digits between two of its values.

The networks are the paper's MNIST ones (Table 1 of its appendix), layer for layer: D's body is
two 4x4 stride-2 convolutions (64 and 128 channels) and FC 1024; G mirrors it with
FC 1024, FC 128 x H/4 x W/4 and two 4x4 stride-2 transposed convolutions.

Deviations from the paper, and why:
  * 8x8 digits instead of 28x28 MNIST: the stride-2 layers go 8 -> 4 -> 2 (the
    paper: 28 -> 14 -> 7), so a step costs a fraction of MNIST's and a run takes
    minutes on a CPU.
  * A tanh output, as the digits are scaled to [-1, 1].
  * No bias in a layer followed by batch norm: BN subtracts the batch mean, so
    that bias has no effect and a zero gradient, which Adam would turn into
    steps of round-off noise; BN's own shift plays its part.
"""
import minigan as mg
from minigan import nn
from minigan import functional as F

from .cgan import one_hot
from .gan import discriminator_loss, generator_loss  # noqa: F401  (re-exported: the GAN part of the game)


def _quarter(image_shape):
    """(channels, H/4, W/4): the map the two stride-2 layers grow from (G) or shrink to (D)."""
    channels, height, width = image_shape
    if height % 4 or width % 4:
        raise ValueError(f"InfoGAN: two stride-2 layers need a height and width divisible by 4, "
                         f"got image_shape {tuple(image_shape)}")
    return channels, height // 4, width // 4


class Generator(nn.Module):
    """G(z, c): noise z, a categorical code and continuous codes -> an image in [-1, 1].

    The paper's MNIST generator: FC 1024, FC 2w x H/4 x W/4, a 4x4 stride-2 transposed
    conv to w channels, one to the image's channels; batch norm and ReLU after each
    but the last, which has tanh. w = 64, as the paper's 128 and 64 channels.
    """

    def __init__(self, noise_dim=62, n_categories=10, n_continuous=2, image_shape=(1, 8, 8), hidden=1024, width=64):
        super().__init__()
        channels, h, w = _quarter(image_shape)
        self.net = nn.Sequential(
            nn.Linear(noise_dim + n_categories + n_continuous, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(),
            nn.Linear(hidden, 2 * width * h * w, bias=False), nn.BatchNorm1d(2 * width * h * w), nn.ReLU(),
            nn.Unflatten(1, (2 * width, h, w)),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh())
        self.noise_dim, self.n_categories, self.n_continuous = noise_dim, n_categories, n_continuous
        self.image_shape = tuple(image_shape)

    def forward(self, z, c_cat, c_cont):
        return self.net(mg.cat([z, one_hot(c_cat, self.n_categories), c_cont], dim=1))


class Discriminator(nn.Module):
    """A shared body with two heads: D's logit (real or fake) and Q(c | x).

    The paper's MNIST body: a 4x4 stride-2 conv to w channels, one to 2w, FC 1024,
    LeakyReLU(0.1) after each, batch norm after all but the first; D's head is one
    linear unit, Q's head FC 128 (batch norm, LeakyReLU) then the code's outputs.
    ``forward`` returns (logit (N,), categorical logits (N, K), continuous means (N, C)).
    Q's categorical output is raw logits: no softmax here, cross_entropy applies it.
    """

    def __init__(self, n_categories=10, n_continuous=2, image_shape=(1, 8, 8), hidden=1024, width=64, q_hidden=128):
        super().__init__()
        channels, h, w = _quarter(image_shape)
        self.body = nn.Sequential(  # no batch norm on the first layer, as DCGAN and the paper
            nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.1),
            nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.1),
            nn.Flatten(), nn.Linear(2 * width * h * w, hidden, bias=False), nn.BatchNorm1d(hidden), nn.LeakyReLU(0.1))
        self.d_head = nn.Linear(hidden, 1)
        self.q_head = nn.Sequential(
            nn.Linear(hidden, q_hidden, bias=False), nn.BatchNorm1d(q_hidden), nn.LeakyReLU(0.1),
            nn.Linear(q_hidden, n_categories + n_continuous))
        self.n_categories = n_categories

    def forward(self, x):
        h = self.body(x)
        q = self.q_head(h)
        return self.d_head(h).flatten(), q[:, :self.n_categories], q[:, self.n_categories:]


def sample_codes(n, noise_dim, n_categories, n_continuous, device="cpu"):
    """The prior: z ~ Unif(-1, 1), c_cat ~ uniform over K, c_cont ~ Unif(-1, 1); drawn in that order."""
    z = mg.rand(n, noise_dim, device=device) * 2 - 1
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
