"""The optimal discriminator on 1-D Gaussians, and why the JS divergence saturates while W1 does not.

    python examples/optimal_discriminator.py                      # CPU, about 25 s of one core
    python examples/optimal_discriminator.py --mu-g 1 --sigma-g 2 # another fixed p_g for part 1

Part 1: a discriminator (the MLP of minigan/models/gan.py, 1 -> 32 -> 32 -> 1) is
trained for --steps Adam steps on fresh batches of p_r = N(0, 1) and a fixed
p_g = N(--mu-g, --sigma-g^2), and drawn over the closed form
D*(x) = p_r(x) / (p_r(x) + p_g(x)) (discriminator.png). metrics.json has the largest
|D(x) - D*(x)| where the mixture (p_r + p_g) / 2 holds its central 99%, the mean
|D - D*| under the mixture, and JS(p_r || p_g) next to the value the trained D
gives, (log 4 + V(D, G)) / 2, with V's two expectations integrated on a grid
(equal to JS at D = D*, below it for any other D).

Part 2: p_g = N(theta, 1) slides away from p_r = N(0, 1), theta from 0 to
--sweep-max (divergences.png). For each theta a fresh discriminator and a fresh
WGAN-GP critic (the ReLU MLP of minigan/models/wgan.py, 1 -> 64 -> 64 -> 1,
lambda 10, Adam betas (0.5, 0.9), with the one-sided penalty: see critic_step in
minigan/models/divergences.py for why not the two-sided one in 1-D) are trained
for --sweep-steps steps from the same initial weights, and the generator's gradient
d loss / d theta is taken through each (held fixed) on 4096 samples x = theta + z.
Drawn beside the closed forms of minigan/models/divergences.py: JS (flat at log 2
once the two separate) and W1 (= theta, growing); the minimax generator's gradient
(= 2 dJS/dtheta with D*, vanishing), the non-saturating one (growing), and the WGAN
generator's (1 with the optimal critic; a penalized critic's slope is
1 + theta / (2 lambda), so its estimate of W1 is theta + theta^2 / (2 lambda)).

Writes discriminator.png, divergences.png, losses.png (part 1's D loss),
metrics.json and checkpoint.safetensors (part 1's D) into --out; --resume continues
from the checkpoint there. There are no samples: nothing here is generated.
"""
import os

import numpy as np

import minigan as mg
from minigan import optim
from minigan.models import divergences as dv
from minigan.models import gan, wgan
from minigan.utils import save_curves
from minigan.utils.experiment import (Experiment, RunSettings, example_parser, positive_float, positive_int)

MU_R, SIGMA_R = 0.0, 1.0
GRADIENT_SAMPLES = 4096


def main(argv=None):
    mg.backend.tune_cpu()  # faster CPU steps: keep freed memory, idle BLAS threads sleep
    parser = example_parser(__doc__.splitlines()[0], steps=2000, batch_size=256, lr=1e-3)
    parser.add_argument("--mu-g", type=float, default=2.0, help="mean of the fixed p_g of part 1")
    parser.add_argument("--sigma-g", type=positive_float, default=0.5, help="std of the fixed p_g of part 1")
    parser.add_argument("--sweep-max", type=positive_float, default=10.0, help="largest theta of part 2")
    parser.add_argument("--sweep-points", type=positive_int, default=21, help="thetas in part 2")
    parser.add_argument("--sweep-steps", type=positive_int, default=200,
                        help="steps of each discriminator and critic in part 2")
    parser.add_argument("--two-sided-penalty", action="store_true",
                        help="the critic's penalty (|f'| - 1)^2 of WGAN-GP instead of max(0, |f'| - 1)^2: in 1-D "
                             "it keeps a critic that starts with the wrong slope there (divergences.critic_step)")
    args = parser.parse_args(argv)
    mg.manual_seed(args.seed)

    discriminator = gan.Discriminator(1, (32, 32)).to(args.device)
    optimizer = optim.Adam(discriminator.parameters(), lr=args.lr)
    run = Experiment("optimal_discriminator", RunSettings.from_args(args), {"discriminator": discriminator},
                     {"discriminator": optimizer})
    run.maybe_resume()
    for _ in run.steps(args.steps, desc="optimal discriminator"):
        real = dv.sample(MU_R, SIGMA_R, args.batch_size, args.device)
        fake = dv.sample(args.mu_g, args.sigma_g, args.batch_size, args.device)
        run.log({"d_loss": dv.discriminator_step(discriminator, optimizer, real, fake)})

    metrics = {"two_sided_penalty": args.two_sided_penalty, "mu_g": args.mu_g, "sigma_g": args.sigma_g,
               "batch_size": args.batch_size, "lr": args.lr,
               **fit_to_optimum(discriminator, args.mu_g, args.sigma_g, args.device, run.out)}
    metrics.update(sweep(np.linspace(0, args.sweep_max, args.sweep_points), args, run.out))
    metrics = run.finish(metrics)
    print({k: v for k, v in metrics.items() if not isinstance(v, list)})
    return metrics


def evaluate(net, x, device):
    """The network's output on the points ``x`` (1-D NumPy), as float64."""
    with mg.no_grad():
        return net(mg.tensor(x.astype(np.float32)[:, None], device=device)).numpy().astype(np.float64)


def fit_to_optimum(discriminator, mu_g, sigma_g, device, out):
    """Part 1: the trained D against D*, in numbers and in discriminator.png."""
    lo = min(MU_R - 3 * SIGMA_R, mu_g - 3 * sigma_g)
    hi = max(MU_R + 3 * SIGMA_R, mu_g + 3 * sigma_g)
    x = np.linspace(lo - 1, hi + 1, 2001)
    d_star = dv.optimal_discriminator(x, MU_R, SIGMA_R, mu_g, sigma_g)
    logit = evaluate(discriminator, x, device)
    d = 1 / (1 + np.exp(-logit))
    p_r, p_g = np.exp(dv.gaussian_log_pdf(x, MU_R, SIGMA_R)), np.exp(dv.gaussian_log_pdf(x, mu_g, sigma_g))
    mixture = (p_r + p_g) / 2
    cdf = np.cumsum(mixture) / mixture.sum()
    central = (cdf > 0.005) & (cdf < 0.995)  # where the mixture holds its central 99%

    # V(D, G) = E_r log D + E_g log(1 - D) by the same grid; JS = (V + log 4) / 2 at D = D*
    log_d, log_1md = -np.logaddexp(0, -logit), -np.logaddexp(0, logit)
    value = np.trapezoid(p_r * log_d + p_g * log_1md, x)

    save_curves([{"lines": [(x, p_r / p_r.max(), "C0:", "p_r = N(0, 1), scaled"),
                             (x, p_g / p_g.max(), "C1:", f"p_g = N({mu_g:g}, {sigma_g:g}²), scaled"),
                             (x, d_star, "k--", "D*(x) = p_r / (p_r + p_g)"),
                             (x, d, "C3-", "D(x), trained")],
                   "title": "The trained discriminator lands on the optimal one", "xlabel": "x",
                   "ylim": (-0.02, 1.05)}],
                os.path.join(out, "discriminator.png"), size=(7, 4))
    return {"d_max_abs_error_central_99": float(np.abs(d - d_star)[central].max()),
            "d_mean_abs_error_under_mixture": float(np.trapezoid(mixture * np.abs(d - d_star), x)),
            "js_closed_form": dv.js_divergence(MU_R, SIGMA_R, mu_g, sigma_g),
            "js_from_trained_d": float((value + np.log(4)) / 2)}


def sweep(thetas, args, out):
    """Part 2: the divergences and the generator's gradients as p_g = N(theta, 1) slides away."""
    d_init = gan.Discriminator(1, (32, 32)).to(args.device).state_dict()
    c_init = wgan.Critic(1, 64, 2).to(args.device).state_dict()
    z = mg.randn(GRADIENT_SAMPLES, 1, device=args.device)
    found = {k: [] for k in ("minimax", "non_saturating", "wasserstein", "wasserstein_estimate")}
    for theta in thetas.tolist():  # Python floats: a NumPy scalar would be a host array beside CuPy ones
        discriminator, critic = gan.Discriminator(1, (32, 32)).to(args.device), wgan.Critic(1, 64, 2).to(args.device)
        discriminator.load_state_dict(d_init)
        critic.load_state_dict(c_init)
        opt_d = optim.Adam(discriminator.parameters(), lr=args.lr)
        opt_c = optim.Adam(critic.parameters(), lr=args.lr, betas=(0.5, 0.9))
        for _ in range(args.sweep_steps):
            real = dv.sample(MU_R, SIGMA_R, args.batch_size, args.device)
            fake = dv.sample(theta, 1.0, args.batch_size, args.device)
            dv.discriminator_step(discriminator, opt_d, real, fake)
            dv.critic_step(critic, opt_c, real, fake, one_sided=not args.two_sided_penalty)
        for kind in ("minimax", "non_saturating"):
            found[kind].append(dv.generator_gradient(discriminator, theta, 1.0, z, kind))
        found["wasserstein"].append(dv.generator_gradient(critic, theta, 1.0, z, "wasserstein"))
        with mg.no_grad():
            real, fake = dv.sample(MU_R, SIGMA_R, GRADIENT_SAMPLES, args.device), theta + z
            found["wasserstein_estimate"].append(wgan.wasserstein_estimate(critic(real), critic(fake)).item())

    closed = {"js": [dv.js_divergence(MU_R, SIGMA_R, t, 1.0) for t in thetas],
              "w1": [dv.wasserstein1(MU_R, SIGMA_R, t, 1.0) for t in thetas],
              "minimax": [dv.gan_generator_gradient(MU_R, SIGMA_R, t, 1.0, "minimax") for t in thetas],
              "non_saturating": [dv.gan_generator_gradient(MU_R, SIGMA_R, t, 1.0, "non_saturating")
                                 for t in thetas]}
    plot_sweep(thetas, closed, found, os.path.join(out, "divergences.png"))
    return {"sweep_theta": thetas.tolist(), "sweep_js": closed["js"], "sweep_w1": closed["w1"],
            "sweep_minimax_grad_d_star": closed["minimax"],
            "sweep_non_saturating_grad_d_star": closed["non_saturating"],
            "sweep_minimax_grad_trained_d": found["minimax"],
            "sweep_non_saturating_grad_trained_d": found["non_saturating"],
            "sweep_wgan_grad_trained_critic": found["wasserstein"],
            "sweep_w1_critic_estimate": found["wasserstein_estimate"]}


def plot_sweep(thetas, closed, found, path):
    """divergences.png: JS, W1 and the generator's gradients (on a log scale, theta > 0) against theta."""
    floor = 1e-8  # |gradients| below it are drawn on it (the log scale has no zero)

    def size(values):
        return np.maximum(np.abs(values[1:]), floor)
    gradients = []
    for key, label, color in (("minimax", "minimax GAN", "C3"), ("non_saturating", "non-saturating GAN", "C0")):
        gradients += [(thetas[1:], size(closed[key]), f"{color}-", f"{label}, D*"),
                      (thetas[1:], size(found[key]), f"{color}o", f"{label}, trained D")]
    gradients += [(thetas[1:], np.ones(len(thetas) - 1), "C2-", "WGAN, optimal critic (dW1/dtheta)"),
                  (thetas[1:], size(found["wasserstein"]), "C2o", "WGAN, trained critic")]
    xlabel = "theta (p_g = N(theta, 1), p_r = N(0, 1))"
    save_curves([
        {"lines": [(thetas, closed["js"], "k-", "JS(p_r || p_g)"),
                   (thetas, np.full(len(thetas), np.log(2)), "k:", "log 2")],
         "title": "Jensen-Shannon: saturates", "xlabel": xlabel},
        {"lines": [(thetas, closed["w1"], "k-", "W1 = |theta|"),
                   (thetas, thetas + thetas ** 2 / (2 * wgan.GP_WEIGHT), "C2--",
                    "theta (1 + theta / (2 lambda)): the penalized optimum"),
                   (thetas, found["wasserstein_estimate"], "C2o", "trained critic's E_r f - E_g f")],
         "title": "Wasserstein-1: keeps growing", "xlabel": xlabel},
        {"lines": gradients, "log_y": True, "ylim": (floor / 2, 1e2),
         "title": "|d generator loss / d theta| (theta > 0)", "xlabel": xlabel},
    ], path)


if __name__ == "__main__":
    main()
