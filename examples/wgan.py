"""Train a WGAN (weight clipping) or WGAN-GP (gradient penalty) on the 25-Gaussian grid, the ring, or digits.

    python examples/wgan.py                         # WGAN-GP on the 5x5 grid of Gaussians: 25/25 modes, CPU, minutes
    python examples/wgan.py --paper                 # the same run with Algorithm 1's values: no mode covered
    python examples/wgan.py --penalty clip          # the original WGAN: weight clipping, RMSprop
    python examples/wgan.py --data ring             # the ring of 8 Gaussians of examples/gan.py
    python examples/wgan.py --data digits           # DCGAN networks on digits at 16x16
    python examples/wgan.py --device cuda           # on a GPU (needs CuPy)

Two recipes for the gradient penalty. On the 2-D toys the default is the toy recipe:
lambda 1, Adam lr 1e-3 decayed linearly to 0, betas (0.5, 0.9), 6000 generator steps;
it covers every mode of the grid. --paper takes Gulrajani et al.'s Algorithm 1 values,
chosen for images (and the default on digits): lambda 10, Adam lr 1e-4, betas (0, 0.9),
a constant learning rate; after the same 6000 steps they cover no mode of the grid.
Both of their misfits are of scale:
  * lambda. The penalty (||grad f|| - 1)^2 is the same at any scale of the data, while
    the Wasserstein term E_r f - E_g f grows with it: lambda on data s times larger
    trains as lambda / s on the original. The authors' toy code used lambda 0.1 on this
    grid shrunk 2.83 times, which is lambda 0.28 here. At lambda 10 the penalty holds
    the critic's slope near 1 everywhere (a mismatch W buys a slope of only
    1 + W / (2 lambda): the linear critic of tests/test_wgan.py), so every sample is
    pushed about as hard wherever it lies; the samples spread over the grid's square
    (and past it) instead of gathering on its 25 modes.
  * the step. Adam 1e-4 without momentum moves the generator little in minutes; the
    authors ran their toy for 100,000 generator steps.
Any flag given (--gp-weight, --lr, --beta1, --lr-decay / --no-lr-decay) overrides the
recipe's value; metrics.json records the values used.

Writes samples.png, losses.png (critic loss, the Wasserstein estimate E_r f - E_g f,
the penalty, the generator loss), metrics.json, checkpoint.safetensors and
samples.npz into --out; --resume continues from the checkpoint there.
"""
import argparse
import os

import numpy as np

import minigan as mg
from minigan import optim
from minigan.data import grid, grid_modes, load_digits, mode_metrics, ring, ring_modes
from minigan.eval import load_classifier, score_samples
from minigan.models import wgan
from minigan.utils import save_image, save_npz, save_points
from minigan.utils.experiment import (Experiment, RunSettings, example_parser, check_batch_size,
                                    nonnegative_float, positive_float, positive_int, unit_float)

# the toy mixtures, as minigan.data draws them: (sampler, mode centers, std)
TOY = {"grid": (grid, grid_modes(), 0.05), "ring": (ring, ring_modes(), 0.02)}

# WGAN-GP's two recipes (see the docstring): Algorithm 1 of Gulrajani et al., and the one that
# covers the 2-D toys in minutes; the toys get the second unless --paper is given
RECIPES = {
    "paper": {"gp_weight": wgan.GP_WEIGHT, "lr": 1e-4, "beta1": 0.0, "lr_decay": False},
    "toy": {"gp_weight": 1.0, "lr": 1e-3, "beta1": 0.5, "lr_decay": True},
}
# WGAN's weight clipping has one recipe, Algorithm 1 of Arjovsky et al. (RMSprop, no momentum)
CLIP_RECIPE = {"lr": 5e-5, "lr_decay": False}


def build(args):
    """Generator and critic for the data: the toy MLPs for 2-D points, DCGAN's networks for images."""
    if args.data in TOY:
        generator = wgan.Generator(args.latent_dim or 2, 2, args.hidden, args.depth)
        critic = wgan.Critic(2, args.hidden, args.depth)
        return generator, critic
    from minigan.models import dcgan  # only the image runs need the convolutional networks
    norm = None if args.norm == "none" else args.norm
    if args.penalty == "gp" and norm == "batch":
        raise SystemExit("wgan: --norm batch cannot be used with --penalty gp: the penalty is per sample, "
                         "batch norm couples the samples of a batch (use layer or none)")
    generator = dcgan.Generator(latent_dim=args.latent_dim or 100, channels=1, image_size=args.image_size,
                                width=args.width)
    critic = dcgan.Discriminator(channels=1, image_size=args.image_size, width=args.width, norm=norm)
    return generator, critic  # both constructors apply the DCGAN init


def recipe(args):
    """The recipe's name, and its values filled into every flag the command line left unset."""
    if args.penalty == "clip":
        name, values = "clip", CLIP_RECIPE
    else:
        name = "paper" if args.paper or args.data == "digits" else "toy"
        values = RECIPES[name]
    for key, value in values.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return name


def optimizers(args, generator, critic):
    """RMSprop for WGAN (Arjovsky et al.: momentum destabilized the clipped critic); Adam with
    beta2 0.9 for WGAN-GP; both players at one learning rate."""
    if args.penalty == "clip":
        return optim.RMSprop(generator.parameters(), lr=args.lr), optim.RMSprop(critic.parameters(), lr=args.lr)
    betas = (args.beta1, 0.9)
    return (optim.Adam(generator.parameters(), lr=args.lr, betas=betas),
            optim.Adam(critic.parameters(), lr=args.lr, betas=betas))


def main(argv=None):
    mg.backend.tune_cpu()  # faster CPU steps: keep freed memory, idle BLAS threads sleep
    parser = example_parser(__doc__.splitlines()[0], data=["grid", "ring", "digits"], steps=None,
                            batch_size=None, nearest_neighbours=True)
    parser.add_argument("--paper", action="store_true",
                        help="gp: Algorithm 1's values (lambda 10, Adam 1e-4, betas (0, 0.9), constant lr), "
                             "chosen for images and the default on digits, instead of the toy recipe (lambda 1, "
                             "Adam 1e-3 decayed to 0, betas (0.5, 0.9)). On the grid they cover no mode: at this "
                             "scale lambda 10 holds the critic's slope near 1 everywhere, so it pushes samples "
                             "equally hard wherever they lie (the authors' toy used lambda 0.1 on a grid 2.83x "
                             "smaller), and lr 1e-4 moves G little in minutes. Steps default to 6000 on the toys, "
                             "2000 on digits")
    parser.add_argument("--penalty", choices=["gp", "clip"], default="gp",
                        help="gp: gradient penalty (WGAN-GP); clip: weight clipping (WGAN)")
    parser.add_argument("--n-critic", type=positive_int, default=wgan.N_CRITIC, help="critic steps per generator step")
    parser.add_argument("--gp-weight", type=nonnegative_float, default=None,
                        help="lambda of the gradient penalty (default: the recipe's, 1 toy, 10 paper)")
    parser.add_argument("--clip", type=positive_float, default=wgan.CLIP,
                        help="c: critic weights are clipped to [-c, c]")
    parser.add_argument("--lr", type=positive_float, default=None,
                        help="learning rate of both players (default: 5e-5 clip; gp: 1e-3 toy, 1e-4 paper)")
    parser.add_argument("--beta1", type=unit_float, default=None,
                        help="gp: Adam's beta1 (default: 0.5 toy, as the authors' toy code; 0 paper)")
    parser.add_argument("--lr-decay", action=argparse.BooleanOptionalAction, default=None,
                        help="decay both learning rates linearly to 0 over --steps, as the authors' image code "
                             "(default: on for the toy recipe, off for paper and clip)")
    parser.add_argument("--latent-dim", type=positive_int, default=None, help="default 2 for points, 100 for images")
    parser.add_argument("--hidden", type=positive_int, default=128,
                        help="toy MLPs: width (the paper's toy: 512; 128 keeps a CPU run to minutes)")
    parser.add_argument("--depth", type=positive_int, default=3, help="toy MLPs: hidden layers")
    parser.add_argument("--image-size", type=int, choices=[16, 32], default=16, help="digits: resized to this")
    parser.add_argument("--width", type=positive_int, default=32, help="digits: DCGAN base width")
    parser.add_argument("--norm", choices=["none", "layer", "instance", "batch"], default=None,
                        help="digits: the critic's normalization (default: layer for gp, batch for clip)")
    args = parser.parse_args(argv)
    if args.nearest_neighbours and args.data != "digits":
        parser.error("--nearest-neighbours compares images: it needs --data digits")
    recipe_name = recipe(args)
    if args.steps is None:
        args.steps = 2000 if args.data == "digits" else 6000
    if args.norm is None:
        args.norm = "layer" if args.penalty == "gp" else "batch"
    if args.batch_size is None:  # the papers' 64 for images; points are cheap, and larger batches steady the critic
        args.batch_size = 64 if args.data == "digits" else 256

    mg.manual_seed(args.seed)
    data_rng = np.random.default_rng(args.seed)
    train = None
    if args.data == "digits":
        train, _ = load_digits(size=args.image_size, split="train", seed=args.seed)
        check_batch_size(parser, args.batch_size, len(train), args.data)
    generator, critic = build(args)
    generator, critic = generator.to(args.device), critic.to(args.device)
    opt_g, opt_c = optimizers(args, generator, critic)

    base_lrs = [[g["lr"] for g in o.param_groups] for o in (opt_g, opt_c)]  # before a resume loads decayed ones
    name = "wgan" if args.penalty == "clip" else "wgan-gp"
    run = Experiment(name, RunSettings.from_args(args), {"generator": generator, "critic": critic},
                     {"generator": opt_g, "critic": opt_c}, rngs={"data": data_rng})
    run.maybe_resume(scheduled_lr=args.lr_decay)  # a decayed lr comes from base_lrs, the command line's

    def sample_real():
        if train is None:
            x = TOY[args.data][0](args.batch_size, data_rng)
        else:
            x = train[data_rng.choice(len(train), args.batch_size, replace=False)]
        return mg.tensor(x, device=args.device)

    for step in run.steps(args.steps, desc=f"{name}/{args.data}"):
        if args.lr_decay:  # a function of the step alone, so a resumed run decays exactly as an uninterrupted one
            for o, lrs in zip((opt_g, opt_c), base_lrs):
                for g, lr in zip(o.param_groups, lrs):
                    g["lr"] = lr * (1 - step / args.steps)
        run.log(wgan.train_step(generator, critic, opt_g, opt_c, sample_real, penalty=args.penalty,
                                n_critic=args.n_critic, clip=args.clip, gp_weight=args.gp_weight))

    # samples for the pictures, samples.npz and the metrics
    generator.eval()
    with mg.no_grad():
        z = wgan.sample_latent(args.num_samples, generator.latent_dim, args.device)
        samples = generator(z).numpy().astype(np.float32)
    label = "WGAN" if args.penalty == "clip" else "WGAN-GP"
    if train is None:
        _, modes, std = TOY[args.data]
        metrics = mode_metrics(samples, modes, std)
        save_points(samples, os.path.join(run.out, "samples.png"), reference=modes,
                    title=f"{label} on the {args.data}: {metrics['modes_covered']}/{len(modes)} modes, "
                          f"{100 * metrics['high_quality_share']:.0f}% within 3 sigma")
    else:
        test, _ = load_digits(size=args.image_size, split="test", seed=args.seed)
        classifier = load_classifier("digits")
        metrics = {**score_samples(classifier, samples, real=test),
                   **run.check_memorization(samples, train, test, classifier)}
        save_image(samples[:64], os.path.join(run.out, "samples.png"), nrow=8, value_range=(-1, 1))
    save_npz(os.path.join(run.out, "samples.npz"), x=samples)
    metrics = run.finish({"data": args.data, "penalty": args.penalty, "recipe": recipe_name, "n_critic": args.n_critic,
                          **({"gp_weight": args.gp_weight, "beta1": args.beta1} if args.penalty == "gp" else {}),
                          "lr": args.lr, "lr_decay": args.lr_decay, "batch_size": args.batch_size,
                          "final_wasserstein_estimate": float(np.mean(run.history.get("wasserstein", [np.nan])[-50:])),
                          **metrics})
    print({k: v for k, v in metrics.items() if k not in ("samples_per_mode", "class_histogram")})
    return metrics


if __name__ == "__main__":
    main()
