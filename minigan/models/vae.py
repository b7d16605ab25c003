r"""The variational autoencoder (Kingma & Welling, 2014, "Auto-Encoding Variational Bayes").

The idea: a latent-variable model p(x) = integral p(x|z) p(z) dz with prior
p(z) = N(0, I) and a decoder network p(x|z), trained by maximizing a lower
bound on log p(x). An encoder network q(z|x) = N(mu(x), diag sigma^2(x))
approximates the posterior, and for every x

    log p(x) >= ELBO(x) = E_{q(z|x)}[log p(x|z)] - KL(q(z|x) || p(z))
                          \__ reconstruction __/   \____ regularizer ____/

with equality when q(z|x) is the true posterior. The KL of two Gaussians has
a closed form, KL = -1/2 sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2); the
reconstruction term is estimated with one sample of z per x (L = 1 in the
paper). To differentiate through that sample, it is *reparameterized*:

    z = mu(x) + sigma(x) * eps,     eps ~ N(0, I),

so the randomness sits in eps and the gradient flows through mu and sigma.

The decoder here is Bernoulli, p(x|z) = prod_i Bern(x_i; sigmoid(logit_i)),
as in the paper's MNIST experiments: log p(x|z) = -BCE(logits, x). Pixels in
[-1, 1] are read as x_i = (pixel + 1) / 2, so a binarized image ({-1, 1})
has a proper likelihood and the ELBO is a bound on log p(x) in nats.

Generation: decode z ~ N(0, I). The latent space is smooth enough that a
straight line between two codes decodes to a gradual morph (interpolation),
and that the mean code of images *with* an attribute minus the mean code of
those *without* it is an attribute vector: adding it to any code adds the
attribute (the lecture's "smile vector", White 2016).

The paper's MNIST model, followed here: one hidden layer of 500 tanh units
in both encoder and decoder, weights initialized from N(0, 0.01^2), minibatches
of M = 100, one sample of eps per image (L = 1).
Deviations: Adam (lr 1e-3) instead of Adagrad, which minigan.optim does not
have (Adam is what later VAE work uses); and biases start at zero (the paper
does not say).
"""
import minigan as mg
from minigan import nn
from minigan import functional as F

from .latent import sample_latent  # noqa: F401  (the prior p(z); examples sample from vae.sample_latent)


class Encoder(nn.Module):
    """q(z|x): image -> (mu, log sigma^2), each (N, latent_dim)."""

    def __init__(self, data_dim, latent_dim, hidden=500):
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(data_dim, hidden), nn.Tanh())
        self.mu = nn.Linear(hidden, latent_dim)
        self.logvar = nn.Linear(hidden, latent_dim)

    def forward(self, x):
        h = self.hidden(x.flatten(1))
        return self.mu(h), self.logvar(h)


class Decoder(nn.Module):
    """p(x|z): code -> the Bernoulli logits of every pixel, flat (N, data_dim)."""

    def __init__(self, latent_dim, data_dim, hidden=500):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_dim, hidden), nn.Tanh(), nn.Linear(hidden, data_dim))

    def forward(self, z):
        return self.net(z)


class VAE(nn.Module):
    def __init__(self, data_dim, latent_dim=10, hidden=500, init_std=0.01):
        super().__init__()
        self.encoder = Encoder(data_dim, latent_dim, hidden)
        self.decoder = Decoder(latent_dim, data_dim, hidden)
        self.latent_dim = latent_dim
        for name, p in self.named_parameters():  # the paper's N(0, 0.01^2) initialization
            if name.endswith("weight"):
                nn.init.normal_(p, 0.0, init_std)
            else:
                nn.init.zeros_(p)

    def forward(self, x):
        """Encode, sample z by the reparameterization trick, decode: (logits, mu, logvar)."""
        mu, logvar = self.encoder(x)
        return self.decoder(reparameterize(mu, logvar)), mu, logvar

    def decode_mean(self, z, shape):
        """The decoder's mean image E[x|z] = sigmoid(logits), back in the data range [-1, 1]."""
        return (self.decoder(z).sigmoid() * 2.0 - 1.0).reshape((len(z),) + tuple(shape))


def reparameterize(mu, logvar):
    """z = mu + sigma * eps with eps ~ N(0, I): a sample of q(z|x) that gradients flow through."""
    eps = mg.randn(*mu.shape, device=mu.device)
    return mu + (0.5 * logvar).exp() * eps


# ---------------------------------------------------------------- the ELBO


def log_likelihood(logits, x):
    """log p(x|z) per image under the Bernoulli decoder with these logits, in nats."""
    target = (x.flatten(1) + 1.0) * 0.5  # pixels in [-1, 1] -> Bernoulli targets in [0, 1]
    return -F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(1)


def elbo_terms(logits, x, mu, logvar):
    """Per image: the reconstruction term log p(x|z) and KL(q(z|x) || p(z)), in nats."""
    return log_likelihood(logits, x), F.gaussian_kl(mu, logvar, reduction="none")


def elbo(vae, x):
    """ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z)) per image (one z sample each), in nats."""
    logits, mu, logvar = vae(x)
    log_px_given_z, kl = elbo_terms(logits, x, mu, logvar)
    return log_px_given_z - kl


def train_step(vae, optimizer, x):
    """One step of gradient ascent on the mean ELBO of a minibatch (descent on -ELBO)."""
    logits, mu, logvar = vae(x)
    log_px_given_z, kl = elbo_terms(logits, x, mu, logvar)
    loss = (kl - log_px_given_z).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {"neg_elbo": loss.item(), "reconstruction": -log_px_given_z.mean().item(), "kl": kl.mean().item()}


# ---------------------------------------------------------------- walking the latent space


def interpolate(z_from, z_to, steps):
    """Codes on the straight line from ``z_from`` to ``z_to`` (each (latent_dim,)): (steps, latent_dim)."""
    t = mg.linspace(0.0, 1.0, steps, device=z_from.device).reshape(steps, 1)
    return z_from.reshape(1, -1) * (1.0 - t) + z_to.reshape(1, -1) * t


def attribute_vector(codes_with, codes_without):
    """The mean code of images with an attribute minus that of images without it (the "smile vector")."""
    return codes_with.mean(0) - codes_without.mean(0)
