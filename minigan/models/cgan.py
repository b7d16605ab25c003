"""Conditional GAN (Mirza & Osindero, 2014, "Conditional Generative Adversarial Nets").

The idea: give both players the same extra information y (here the class label).
The generator draws G(z | y), the discriminator judges pairs D(x | y), and the
GAN game of Goodfellow et al. becomes

    min_G max_D  V(D, G) = E_{x,y}[log D(x | y)] + E_{z,y}[log(1 - D(G(z | y) | y))].

A sample of the wrong class is now "fake" even when it is a good digit, so G must
obey its label: at the optimum p_g(x | y) = p_data(x | y) for every y. The losses
are the original GAN's (binary cross-entropy on D's logits, the non-saturating
generator loss) and are imported from ``gan.py``.

How y enters: the paper's principle, "y is fed into both the discriminator and
generator as an additional input layer": y is one-hot and joined to the input of
each network, [z, y] in G and [x, y] in D, and both are MLPs (G: 256 and 512
LeakyReLU(0.2) units, tanh output; D: 512 and 512 LeakyReLU(0.2) units, one logit).

Deviations from the paper, and why:
  * The paper's MNIST model sends z and y through their own hidden layers (200
    and 1000 ReLU units in G, 240 and 50 maxout units in D) and joins them later,
    with z uniform in the unit hypercube. Trained on digits in plain torch (seed 0,
    Adam as below; tests/twins/train_cgan_torch.py --layout paper), that model
    obeyed its label but collapsed within each label: G ignored z. y's 1000-unit
    branch swamps z's 200 units, and z in [0, 1]^100 varies little after the first
    layer. Joining y to the inputs and drawing z ~ N(0, I), as here, keeps z in
    use within a label (--layout inputs; the runs are in docs/cgan.md).
  * 8x8 digits scaled to [-1, 1] and a tanh output (the paper: 28x28 MNIST,
    sigmoid), so samples have the range of the training data.
  * LeakyReLU(0.2) units instead of ReLU and maxout, and no dropout (the paper: 0.5
    in both networks; ``dropout=`` puts it back).
  * Adam (lr 2e-4, beta1 0.5, from DCGAN) instead of SGD with a hand-tuned
    momentum and learning-rate decay schedule.
"""
import minigan as mg
from minigan import nn

from .gan import discriminator_loss, generator_loss
from .latent import sample_latent


def one_hot(labels, n_classes):
    """Class indices (N,) -> one-hot float rows (N, n_classes)."""
    return mg.eye(n_classes, device=labels.device)[labels]


def _numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


class Generator(nn.Module):
    """G(z | y): noise (latent_dim) and a label -> an image (N, *image_shape) in [-1, 1]."""

    def __init__(self, latent_dim=100, n_classes=10, image_shape=(1, 8, 8), hidden=(256, 512), dropout=0.0):
        super().__init__()
        self.net = nn.mlp((latent_dim + n_classes, *hidden, _numel(image_shape)), lambda: nn.LeakyReLU(0.2), dropout)
        self.latent_dim, self.n_classes, self.image_shape = latent_dim, n_classes, tuple(image_shape)

    def forward(self, z, labels):
        h = mg.cat([z, one_hot(labels, self.n_classes)], dim=1)
        return self.net(h).tanh().reshape(z.shape[0], *self.image_shape)


class Discriminator(nn.Module):
    """D(x | y): an image and a label -> one logit per pair (D = sigmoid(logit))."""

    def __init__(self, n_classes=10, image_shape=(1, 8, 8), hidden=(512, 512), dropout=0.0):
        super().__init__()
        self.net = nn.mlp((_numel(image_shape) + n_classes, *hidden, 1), lambda: nn.LeakyReLU(0.2), dropout)
        self.n_classes = n_classes

    def forward(self, x, labels):
        h = mg.cat([x.flatten(1), one_hot(labels, self.n_classes)], dim=1)
        return self.net(h).flatten()


def sample_labels(n, n_classes, device="cpu"):
    """y ~ uniform over the classes (the class balance of digits)."""
    return mg.randint(0, n_classes, (n,), device=device)


# ---------------------------------------------------------------- one training step


def train_step(generator, discriminator, opt_g, opt_d, real, labels):
    """One discriminator step on (real, its labels) against G's samples for random
    labels, then one generator step on fresh noise and labels (the losses of
    ``gan.py``, conditioned). Noise is drawn z then y, for D and then for G.
    Returns the losses as floats."""
    n, device = real.shape[0], real.device
    z, fake_labels = sample_latent(n, generator.latent_dim, device), sample_labels(n, generator.n_classes, device)
    with mg.no_grad():  # D's step does not need G's graph
        fake = generator(z, fake_labels)
    d_loss = discriminator_loss(discriminator(real, labels), discriminator(fake, fake_labels))
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()

    z, fake_labels = sample_latent(n, generator.latent_dim, device), sample_labels(n, generator.n_classes, device)
    discriminator.requires_grad_(False)  # G's step differentiates through D, not into it
    g_loss = generator_loss(discriminator(generator(z, fake_labels), fake_labels))
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    discriminator.requires_grad_(True)
    return {"d_loss": d_loss.item(), "g_loss": g_loss.item()}
