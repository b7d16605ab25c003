r"""Wasserstein GAN (Arjovsky, Chintala & Bottou, 2017, "Wasserstein GAN") and its
gradient penalty (Gulrajani et al., 2017, "Improved Training of Wasserstein GANs").

The idea: measure how far the generator's distribution P_g is from the data's P_r
by the Wasserstein-1 (earth mover's) distance, the cheapest way to move the mass
of one onto the other,

    W(P_r, P_g) = inf_{gamma in Pi(P_r, P_g)}  E_{(x, y) ~ gamma} ||x - y||,

where Pi is the set of joint distributions (transport plans) with marginals P_r and
P_g. The infimum over plans is intractable, but the Kantorovich-Rubinstein duality
turns it into a supremum over 1-Lipschitz functions,

    W(P_r, P_g) = sup_{||f||_L <= 1}  E_{x ~ P_r}[f(x)] - E_{x ~ P_g}[f(x)],

and a neural network f, the *critic*, can search that set. The critic outputs an
unbounded score, not a probability: there is no sigmoid. The critic ascends
E_r f - E_g f (it descends ``critic_loss``), and the generator descends -E_g f,
the only term that depends on it (``generator_loss``).

Why not Jensen-Shannon: when P_r and P_g live on low-dimensional manifolds that do
not overlap (images; early in training), JS(P_r || P_g) = log 2 whatever the
distance between them, so the GAN discriminator saturates and its gradient tells
the generator nothing. W instead grows smoothly with the distance (for two point
masses at 0 and theta, W = |theta| while JS jumps from 0 to log 2), and a critic
trained to optimality still has useful gradients. The critic can therefore be
trained well (n_critic = 5 steps per generator step), and its value E_r f - E_g f
estimates W up to the Lipschitz constant: a loss curve that means something.

The duality needs ||f||_L <= 1 (any constant K gives K W), and the two papers
enforce it differently:

  * WGAN, **weight clipping** (``penalty="clip"``): after every critic update clamp
    every critic parameter to [-c, c], c = 0.01. The set of such networks is
    compact, so f is K-Lipschitz for some K. Hyperparameters (Algorithm 1):
    RMSprop lr 5e-5, n_critic 5, batch 64. Clipping biases the critic toward
    very simple functions and makes training sensitive to c (too large: slow to
    reach optimality; too small: vanishing gradients).
  * WGAN-GP, **gradient penalty** (``penalty="gp"``): an optimal critic has gradient
    norm 1 almost everywhere on lines between coupled points of P_r and P_g, so
    penalize the deviation on random interpolates,

        L_critic = E_g[f(x~)] - E_r[f(x)] + lambda E_xhat[(||grad_xhat f(xhat)||_2 - 1)^2],
        xhat = eps x + (1 - eps) x~,   eps ~ U[0, 1], one eps per sample.

    Hyperparameters (Algorithm 1): lambda 10, n_critic 5, Adam lr 1e-4,
    betas (0, 0.9), batch 64. The penalty is a function of the critic's input
    gradient, so its gradient with respect to the critic's weights needs a double
    backward (``mg.grad(..., create_graph=True)``). No batch norm in the critic:
    it makes each sample's score depend on the rest of the batch, and the penalty
    is defined per sample (use layer norm or none).

Networks: ``Generator`` and ``Critic`` here are the ReLU MLPs of Gulrajani et al.'s
toy experiments (3 hidden layers of 512 units, 2-D noise, 2-D data); for images the
examples use the DCGAN networks of ``dcgan.py`` (the critic with ``norm=None`` or
``"layer"`` for the gradient penalty).

Deviations: none in the objectives and updates. The toy code of Gulrajani et al.
used lambda 0.1 and Adam betas (0.5, 0.9) for its 2-D runs; here the paper's
Algorithm 1 values are the defaults of these functions and the examples name any
change. On the 25-Gaussian grid the paper's values cover none of the modes, and a
smaller lambda with a larger, decaying learning rate covers them all
(docs/wgan.md has the runs). The WGAN reference code also trains the
critic 100 times per generator step for the first 25 generator steps and every
500th; that schedule is not in Algorithm 1 and is not done here.

The gradient norm is computed as sqrt(sum g^2 + 1e-12): where a ReLU critic is flat
(g = 0) the derivative of a plain sqrt is infinite and the step would be NaN.
"""
import minigan as mg
from minigan import nn

from .latent import sample_latent

CLIP = 0.01       # c, WGAN
GP_WEIGHT = 10.0  # lambda, WGAN-GP
N_CRITIC = 5


class Generator(nn.Module):
    """G: z (latent_dim) -> a point (data_dim); ReLU MLP of the WGAN-GP toy experiments."""

    def __init__(self, latent_dim=2, data_dim=2, hidden=512, depth=3):
        super().__init__()
        self.net = nn.mlp((latent_dim, *[hidden] * depth, data_dim), nn.ReLU)
        self.latent_dim = latent_dim

    def forward(self, z):
        return self.net(z)


class Critic(nn.Module):
    """f: a point (data_dim) -> one unbounded score per sample (no sigmoid)."""

    def __init__(self, data_dim=2, hidden=512, depth=3):
        super().__init__()
        self.net = nn.mlp((data_dim, *[hidden] * depth, 1), nn.ReLU)

    def forward(self, x):
        return self.net(x.flatten(1)).flatten()


# ---------------------------------------------------------------- losses


def wasserstein_estimate(real_scores, fake_scores):
    """E_r[f(x)] - E_g[f(x~)]: the critic's estimate of W(P_r, P_g) (times its Lipschitz constant)."""
    return real_scores.mean() - fake_scores.mean()


def critic_loss(real_scores, fake_scores):
    """-(E_r f - E_g f): the critic ascends the Wasserstein estimate by descending this."""
    return fake_scores.mean() - real_scores.mean()


def generator_loss(fake_scores):
    """-E_g[f(G(z))]: the one term of -W's estimate that depends on G."""
    return -fake_scores.mean()


def interpolates(real, fake, eps=None):
    """xhat = eps x + (1 - eps) x~ with one eps ~ U[0, 1] per sample, broadcast over its features."""
    if real.shape != fake.shape:
        raise ValueError(f"interpolates: real {real.shape} and fake {fake.shape} batches must have one shape")
    if eps is None:
        eps = mg.rand(real.shape[0], device=real.device)
    if eps.shape != (real.shape[0],):
        raise ValueError(f"interpolates: eps must hold one value per sample, shape ({real.shape[0]},), "
                         f"got {eps.shape}")
    eps = eps.reshape(real.shape[0], *([1] * (real.ndim - 1)))
    return eps * real + (1 - eps) * fake


def gradient_penalty(critic, real, fake, weight=GP_WEIGHT, eps=None, one_sided=False, per_pixel=False):
    """lambda * E_xhat[(||grad_xhat f(xhat)||_2 - 1)^2] on random interpolates of real and fake.

    ``one_sided=True`` penalizes only norms above 1, lambda * E[max(0, ||grad|| - 1)^2]
    (the variant Gulrajani et al. mention in Section 4; Petzka et al. 2018's WGAN-LP).
    A critic whose output is a map of scores (a patch critic) is differentiated through
    the sum of its map. ``per_pixel=True`` takes the norm over the channels at each pixel
    and averages the squared gaps over pixels and samples, as SinGAN's code does, instead
    of one norm per sample.
    The gradient is taken with ``create_graph=True`` so that the penalty itself can
    be differentiated with respect to the critic's weights (double backward).
    """
    xhat = interpolates(real.detach(), fake.detach(), eps).detach().requires_grad_()
    scores = critic(xhat)
    # each score depends on its own sample only, so d(sum of scores)/d xhat_i = grad f(xhat_i)
    grads, = mg.grad(scores.sum(), xhat, create_graph=True)
    # the 1e-12 keeps d sqrt(s)/ds finite where a ReLU critic is flat (s = 0); it moves the norm by <= 1e-6
    squares = (grads ** 2).sum(dim=1) if per_pixel else (grads.flatten(1) ** 2).sum(dim=1)
    norms = (squares + 1e-12).sqrt()
    gaps = (norms - 1).clamp(min=0) if one_sided else norms - 1
    return weight * (gaps ** 2).mean()


def clip_weights(critic, c=CLIP):
    """Clamp every critic parameter to [-c, c] in place (WGAN's Lipschitz constraint)."""
    for p in critic.parameters():
        p.data.clamp_(-c, c)  # through .data, as the paper's code: not a change autograd should see


# ---------------------------------------------------------------- one step of Algorithm 1


def train_step(generator, critic, opt_g, opt_c, sample_real, penalty="gp", n_critic=N_CRITIC,
               clip=CLIP, gp_weight=GP_WEIGHT):
    """One generator iteration of Algorithm 1 (either paper): ``n_critic`` critic steps,
    each on a fresh real minibatch ``sample_real()`` and as many generated samples,
    then one generator step.

    penalty="clip": critic loss E_g f - E_r f, then clip_weights(critic, clip).
    penalty="gp":   critic loss E_g f - E_r f + gradient_penalty(critic, real, fake, gp_weight).
    Noise is drawn z then eps for each critic step, then z for the generator.
    Returns the last critic step's losses and the generator loss as floats.
    """
    if penalty not in ("clip", "gp"):
        raise ValueError(f"train_step: penalty must be 'clip' or 'gp', got {penalty!r}")
    if n_critic < 1:
        raise ValueError(f"train_step: n_critic must be at least 1, got {n_critic}")
    for _ in range(n_critic):
        real = sample_real()
        z = sample_latent(real.shape[0], generator.latent_dim, real.device)
        with mg.no_grad():  # the critic's step does not need G's graph
            fake = generator(z)
        real_scores, fake_scores = critic(real), critic(fake)
        loss = critic_loss(real_scores, fake_scores)
        logs = {"wasserstein": wasserstein_estimate(real_scores, fake_scores).item()}
        if penalty == "gp":
            gp = gradient_penalty(critic, real, fake, gp_weight)
            loss = loss + gp
            logs["penalty"] = gp.item()
        opt_c.zero_grad()
        loss.backward()
        opt_c.step()
        if penalty == "clip":
            clip_weights(critic, clip)
        logs["critic_loss"] = loss.item()

    z = sample_latent(real.shape[0], generator.latent_dim, real.device)
    critic.requires_grad_(False)  # G's step differentiates through f, not into it
    g_loss = generator_loss(critic(generator(z)))
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    critic.requires_grad_(True)
    return {"critic_loss": logs["critic_loss"], "wasserstein": logs["wasserstein"],
            **({"penalty": logs["penalty"]} if penalty == "gp" else {}), "g_loss": g_loss.item()}
