"""Conditional GAN (Mirza & Osindero, 2014, "Conditional Generative Adversarial Nets").

The idea: give both players the same extra information y (here the class label).
The generator draws G(z | y), the discriminator judges pairs D(x | y), and the
GAN game of Goodfellow et al. becomes

    min_G max_D  V(D, G) = E_{x,y}[log D(x | y)] + E_{z,y}[log(1 - D(G(z | y) | y))].

A sample of the wrong class is now "fake" even when it is a good digit, so G must
obey its label: at the optimum p_g(x | y) = p_data(x | y) for every y. The losses
are the original GAN's (binary cross-entropy on D's logits, the non-saturating
generator loss) and are imported from ``gan.py``.

How y enters, as in the paper's MNIST model (Section 4.1): y is one-hot; in G, z
and y each go through their own hidden layer (200 and 1000 units) and the two are
joined in a hidden layer of 1200 units; in D, x and y go through their own layers
(240 and 50 units) and are joined in a layer of 240 units before the output.
z is 100-dimensional, uniform in the unit hypercube.

Deviations from the paper, and why:
  * 8x8 digits scaled to [-1, 1] and a tanh output (the paper: 28x28 MNIST,
    sigmoid), so samples have the range of the training data.
  * LeakyReLU(0.2) units in D instead of maxout: minigan has no maxout layer, and
    LeakyReLU is what ``gan.py`` uses.
  * No dropout (the paper: 0.5 in both networks; ``dropout=`` puts it back).
    Measured with Adam on digits, seed 0: D dropout 0.5 reached 88.6% conditional
    accuracy after 5000 steps, no dropout 95.1% after 2000; G dropout 0.5 90.0%.
  * Adam (lr 2e-4, beta1 0.5, from DCGAN) instead of SGD with a hand-tuned
    momentum and learning-rate decay schedule.

Known limitation, seen in every variant tried (BN in G or D, LeakyReLU in G,
Gaussian z, wider D, narrower G): on digits this MLP cGAN obeys its label but
collapses within a label: G nearly ignores z (the mean distance between two
samples of one label is ~0.1-0.3, against 4.4 for real digits of one class).
Part of the cause is visible at initialization: with z ~ U[0, 1]^100 and the
default init, two samples of one label are already only 0.13 apart (InfoGAN's
generator, with batch norm, starts at 3.3), and training does not widen that.
"""
import minigan as mg
from minigan import nn

from .gan import discriminator_loss, generator_loss


def one_hot(labels, n_classes):
    """Class indices (N,) -> one-hot float rows (N, n_classes)."""
    return mg.eye(n_classes, device=labels.device)[labels]


class Generator(nn.Module):
    """G(z | y): noise (latent_dim) and a label -> an image (N, *image_shape) in [-1, 1]."""

    def __init__(self, latent_dim=100, n_classes=10, image_shape=(1, 8, 8), z_hidden=200, y_hidden=1000,
                 hidden=1200, dropout=0.0):
        super().__init__()
        data_dim = 1
        for s in image_shape:
            data_dim *= s
        self.z_branch = nn.Sequential(nn.Linear(latent_dim, z_hidden), nn.ReLU(), nn.Dropout(dropout))
        self.y_branch = nn.Sequential(nn.Linear(n_classes, y_hidden), nn.ReLU(), nn.Dropout(dropout))
        self.joint = nn.Sequential(nn.Linear(z_hidden + y_hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
                                   nn.Linear(hidden, data_dim), nn.Tanh())
        self.latent_dim, self.n_classes, self.image_shape = latent_dim, n_classes, tuple(image_shape)

    def forward(self, z, labels):
        h = mg.cat([self.z_branch(z), self.y_branch(one_hot(labels, self.n_classes))], dim=1)
        return self.joint(h).reshape(z.shape[0], *self.image_shape)


class Discriminator(nn.Module):
    """D(x | y): an image and a label -> one logit per pair (D = sigmoid(logit))."""

    def __init__(self, n_classes=10, image_shape=(1, 8, 8), x_hidden=240, y_hidden=50, hidden=240,
                 dropout=0.0):
        super().__init__()
        data_dim = 1
        for s in image_shape:
            data_dim *= s
        self.x_branch = nn.Sequential(nn.Linear(data_dim, x_hidden), nn.LeakyReLU(0.2), nn.Dropout(dropout))
        self.y_branch = nn.Sequential(nn.Linear(n_classes, y_hidden), nn.LeakyReLU(0.2), nn.Dropout(dropout))
        self.joint = nn.Sequential(nn.Linear(x_hidden + y_hidden, hidden), nn.LeakyReLU(0.2), nn.Dropout(dropout),
                                   nn.Linear(hidden, 1))
        self.n_classes = n_classes

    def forward(self, x, labels):
        h = mg.cat([self.x_branch(x.flatten(1)), self.y_branch(one_hot(labels, self.n_classes))], dim=1)
        return self.joint(h).flatten()


def sample_latent(n, latent_dim, device="cpu"):
    """z ~ U[0, 1]^latent_dim, the paper's noise prior."""
    return mg.rand(n, latent_dim, device=device)


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
