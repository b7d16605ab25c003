r"""What a GAN's players see on 1-D Gaussians: the optimal discriminator, the
Jensen-Shannon divergence it measures, and the Wasserstein-1 distance a critic
measures instead (the lecture's "why JS saturates").

Real data p_r = N(mu_r, sigma_r^2), generated data p_g = N(mu_g, sigma_g^2); the
generator's parameter theta is p_g's mean, x = theta + sigma_g z with z ~ N(0, 1).

**The optimal discriminator** (Goodfellow et al. 2014, Proposition 1). For a fixed
p_g, D maximizes E_r[log D(x)] + E_g[log(1 - D(x))] pointwise, and the maximum of
a log y + b log(1 - y) is at y = a / (a + b):

    D*(x) = p_r(x) / (p_r(x) + p_g(x)),    logit D*(x) = log p_r(x) - log p_g(x).

For two Gaussians the logit is a quadratic in x (a line when sigma_r = sigma_g), so
a small MLP can represent D* and, trained long enough on samples, lands on it.

**Jensen-Shannon.** With D* plugged in, V(D*, G) = -log 4 + 2 JS(p_r || p_g), where

    JS(p || q) = 1/2 KL(p || m) + 1/2 KL(q || m),   m = (p + q) / 2,

which lies in [0, log 2]. Once p_r and p_g stop overlapping JS is log 2 whatever the
distance between them, so dJS/dtheta = 0. The minimax generator's gradient is that
derivative: D* maximizes V, so by the envelope theorem d/dtheta V(D*, G) is the
partial derivative with D held fixed,

    d/dtheta E_g[log(1 - D*(x))] = E_g[d/dx log(1 - D*(x))] = 2 dJS/dtheta,

and it vanishes as the two separate (D* ~ 0 on p_g's support, log(1 - D) flat). The
non-saturating loss -E_g[log D*(x)] has the same fixed point but its gradient,
-E_g[(1 - D*(x)) d/dx logit D*(x)], does not vanish: for equal sigmas it tends to
(mu_g - mu_r) / sigma^2, growing with the distance (Arjovsky & Bottou 2017 show it is
unstable instead).

**Wasserstein-1.** In 1-D the cheapest transport moves each quantile onto the same
quantile: W1(p, q) = int_0^1 |F_p^{-1}(u) - F_q^{-1}(u)| du = int |F_p(x) - F_q(x)| dx.
For Gaussians F^{-1}(u) = mu + sigma Phi^{-1}(u), so the difference of quantile
functions is a + b Phi^{-1}(u) with a = mu_g - mu_r, b = sigma_g - sigma_r, and W1 is
the mean of a folded normal,

    W1 = E|a + b Z| = |b| sqrt(2 / pi) exp(-a^2 / (2 b^2)) + a (1 - 2 Phi(-a / |b|)),

which is |mu_g - mu_r| for equal sigmas: it grows with the distance, and a critic
trained to the Kantorovich-Rubinstein optimum (f(x) = +-x here) gives the generator
a gradient of size 1 however far apart the two are.

The integrals (JS, the generator gradients) are taken on a fine grid by the
trapezoid rule, in logs where the densities underflow; tests check them against
scipy's adaptive quadrature.
"""
import math

import numpy as np

import minigan as mg

from . import gan, wgan

GRID_POINTS = 40001
GRID_SIGMAS = 14.0  # the grid reaches this many sigmas beyond both means


# ---------------------------------------------------------------- closed forms


def gaussian_log_pdf(x, mu, sigma):
    """log N(x; mu, sigma^2)."""
    x = np.asarray(x, dtype=np.float64)
    return -0.5 * ((x - mu) / sigma) ** 2 - math.log(sigma) - 0.5 * math.log(2 * math.pi)


def optimal_discriminator_logit(x, mu_r, sigma_r, mu_g, sigma_g):
    """logit D*(x) = log p_r(x) - log p_g(x)."""
    return gaussian_log_pdf(x, mu_r, sigma_r) - gaussian_log_pdf(x, mu_g, sigma_g)


def optimal_discriminator(x, mu_r, sigma_r, mu_g, sigma_g):
    """D*(x) = p_r(x) / (p_r(x) + p_g(x)), computed as the sigmoid of its logit."""
    logit = optimal_discriminator_logit(x, mu_r, sigma_r, mu_g, sigma_g)
    return np.exp(-np.logaddexp(0.0, -logit))


def _grid(mu_r, sigma_r, mu_g, sigma_g, points=GRID_POINTS):
    reach = GRID_SIGMAS * max(sigma_r, sigma_g)
    return np.linspace(min(mu_r, mu_g) - reach, max(mu_r, mu_g) + reach, points)


def js_divergence(mu_r, sigma_r, mu_g, sigma_g, points=GRID_POINTS):
    """JS(p_r || p_g) in nats, by the trapezoid rule on a grid covering both densities."""
    x = _grid(mu_r, sigma_r, mu_g, sigma_g, points)
    log_p, log_q = gaussian_log_pdf(x, mu_r, sigma_r), gaussian_log_pdf(x, mu_g, sigma_g)
    log_m = np.logaddexp(log_p, log_q) - math.log(2)
    integrand = 0.5 * (np.exp(log_p) * (log_p - log_m) + np.exp(log_q) * (log_q - log_m))
    return float(np.trapezoid(integrand, x))


def gan_generator_gradient(mu_r, sigma_r, mu_g, sigma_g, kind="minimax", points=GRID_POINTS):
    """d/dtheta of the generator's loss against D* held fixed, x = theta + sigma_g z:

    minimax:        d/dtheta E_g[log(1 - D*(x))] = -E_g[D*(x) logit'(x)]
    non_saturating: d/dtheta -E_g[log D*(x)]     = -E_g[(1 - D*(x)) logit'(x)]

    with logit'(x) = -(x - mu_r) / sigma_r^2 + (x - mu_g) / sigma_g^2.
    """
    x = _grid(mu_r, sigma_r, mu_g, sigma_g, points)
    d = optimal_discriminator(x, mu_r, sigma_r, mu_g, sigma_g)
    slope = -(x - mu_r) / sigma_r ** 2 + (x - mu_g) / sigma_g ** 2
    if kind == "minimax":
        weight = d
    elif kind == "non_saturating":
        weight = 1 - d
    else:
        raise ValueError(f"gan_generator_gradient: kind must be 'minimax' or 'non_saturating', got {kind!r}")
    return float(np.trapezoid(-np.exp(gaussian_log_pdf(x, mu_g, sigma_g)) * weight * slope, x))


def normal_cdf(x):
    """Phi(x), the standard normal's distribution function."""
    return 0.5 * math.erfc(-x / math.sqrt(2))


def wasserstein1(mu_r, sigma_r, mu_g, sigma_g):
    """W1(N(mu_r, sigma_r^2), N(mu_g, sigma_g^2)) = E|a + b Z|, a = mu_g - mu_r, b = sigma_g - sigma_r."""
    a, b = mu_g - mu_r, abs(sigma_g - sigma_r)
    if b == 0:
        return abs(a)
    return b * math.sqrt(2 / math.pi) * math.exp(-a * a / (2 * b * b)) + a * (1 - 2 * normal_cdf(-a / b))


# ---------------------------------------------------------------- the networks, trained on samples


def discriminator_step(discriminator, optimizer, real, fake):
    """One step of D towards D*: descend -(E_r[log D] + E_g[log(1 - D)]) on a batch of each."""
    loss = gan.discriminator_loss(discriminator(real), discriminator(fake))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def critic_step(critic, optimizer, real, fake, gp_weight=wgan.GP_WEIGHT, one_sided=True):
    """One WGAN-GP critic step: descend E_g f - E_r f + lambda E[max(0, |f'(xhat)| - 1)^2]
    (``one_sided=False``: lambda E[(|f'(xhat)| - 1)^2], the paper's two-sided penalty).
    Returns the Wasserstein estimate E_r f - E_g f before the step.

    Why one-sided by default: in 1-D the critic's slope is a number, and turning a
    critic that rises from p_r to p_g into one that falls takes the slope through 0,
    where the two-sided penalty costs lambda. For a linear critic f = s x the loss
    s (mu_g - mu_r) + lambda (|s| - 1)^2 has a local minimum at s = 1 - (mu_g - mu_r) / (2 lambda)
    > 0, the wrong sign, for mu_g - mu_r < 2 lambda: a critic that starts there stays
    there. (In more dimensions the gradient can turn round without shrinking.)
    """
    real_scores, fake_scores = critic(real), critic(fake)
    penalty = wgan.gradient_penalty(critic, real, fake, gp_weight, one_sided=one_sided)
    loss = wgan.critic_loss(real_scores, fake_scores) + penalty
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return wgan.wasserstein_estimate(real_scores, fake_scores).item()


def generator_gradient(net, theta, sigma, z, kind):
    """d(generator loss)/dtheta through a trained ``net`` (held fixed), on the samples
    x = theta + sigma z of the noise ``z`` (N, 1):

    minimax, non_saturating: the GAN generator's losses on the discriminator's logits;
    wasserstein:             -E_g[f(x)], the WGAN generator's loss on the critic's scores.
    """
    theta = mg.tensor(float(theta), dtype=z.dtype, device=z.device).requires_grad_()
    out = net(theta + sigma * z)
    loss = wgan.generator_loss(out) if kind == "wasserstein" else gan.generator_loss(out, kind)
    grad, = mg.grad(loss, theta)
    return grad.item()


def sample(mu, sigma, n, device="cpu"):
    """n samples (n, 1) of N(mu, sigma^2), from minigan's generator."""
    return mu + sigma * mg.randn(n, 1, device=device)
