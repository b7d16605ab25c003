"""Train a StyleGAN (Karras et al. 2019): mapping network, constant input, AdaIN styles, noise inputs.

    python examples/stylegan.py                       # Fashion-MNIST at 32x32, small widths, CPU
    python examples/stylegan.py --data DIR --resolution 64 --device cuda   # your own pictures, GPU

Writes samples.png (an 8x8 grid, psi = 1), style_mixing.png, truncation.png,
stochastic_variation.png, losses.png, metrics.json, checkpoint.safetensors and
samples.npz (x: --num-samples images, psi = 1, clamped to [-1, 1]) into --out;
--resume continues from the checkpoint there. The pictures and samples come from
the exponential moving average of G's weights (the paper's G_smoothing: half-life
of 10,000 images), ramped up as StyleGAN2-ADA's: the half-life is at most 5% of the
images seen so far, so that a short run does not average in its first, random weights.

  * style_mixing.png: three grids side by side, B's coarse (4x4, 8x8), middle and fine
    (the last resolution) styles copied onto A. In each grid the top row is source B,
    the left column source A, and cell (A, B) is A's styles with B's at those layers.
  * truncation.png: a row per z, a column per psi in 1, 0.7, 0.5, 0 (w_avg + psi (w - w_avg)).
  These two figures draw every image with the same noise, so that only the styles differ.
  * stochastic_variation.png: a row per w, six draws of the noise inputs, then the
    per-pixel standard deviation over 64 draws (black 0, white the row's largest).

--data: ``fashion-mnist`` (Debian's dataset-fashion-mnist) or a folder of PNG/JPEG
pictures (``minigan.data.load_image_folder``: colour, shorter side resized to
--resolution, center square). --resolution is a power of two >= 8.

The recipe: a "cpu" one by default, a "cuda" one with --device cuda; any flag given
replaces the recipe's value, and metrics.json records what ran. cpu: z and w of 64
dimensions, C(r) = min(512 / r, 32) feature maps (32 at 4x4 to 16x16, 16 at 32x32),
batch 32, 1000 steps; cuda: the paper's 512-dim z and w, min(8192 / r, 256) maps,
batch 32, 25,000 steps. Both: Adam 0.002 with betas (0, 0.99) (the mapping's lr 100x
lower), R1 gamma 10 every 16th step (StyleGAN2's lazy R1; --r1-interval 1 is
StyleGAN's every step), style mixing with probability 0.9, w_avg tracked with beta
0.995.

metrics.json holds, on Fashion-MNIST, the project classifier's class coverage and
classifier-feature Fréchet distance (FD) to the test split, for psi = 1, 0.7 and 0.5
(the samples are resized to the classifier's 28x28, as the real images are).
"""
import os

import numpy as np

import minigan as mg
from minigan import optim
from minigan.data import load_fashion_mnist, load_image_folder
from minigan.eval import load_classifier, score_samples
from minigan.models import stylegan
from minigan.utils import make_grid, save_image, save_npz
from minigan.utils.experiment import (Experiment, RunSettings, check_batch_size, example_parser, nonnegative_float,
                                    nonnegative_int, positive_float, positive_int, power_of_two, unit_float)

RECIPES = {
    "cpu": {"z_dim": 64, "channel_base": 512, "channel_max": 32, "batch_size": 32, "steps": 1000},
    "cuda": {"z_dim": 512, "channel_base": 8192, "channel_max": 256, "batch_size": 32, "steps": 25000},
}
EMA_HALF_LIFE = 10_000  # images (the paper's G_smoothing_kimg = 10)
EMA_RAMPUP = 0.05  # StyleGAN2-ADA's ema_rampup: the half-life is at most this share of the images seen
PSIS = (1.0, 0.7, 0.5, 0.0)


def load(data, split, size):
    """Images (N, C, size, size) in [-1, 1]: Fashion-MNIST's split, or the folder's pictures (colour)."""
    if data == "fashion-mnist":
        return load_fashion_mnist(split, size=size)[0]
    return load_image_folder(data, size, channels=3)


def style_mixing_grid(generate_ws, generator, w_a, w_b, noise):
    """Three grids (coarse, middle, fine) of A rows x B columns, side by side, as one image;
    every image drawn with the same ``noise``, so that only the styles differ."""
    sizes = np.array(generator.synthesis.sizes)
    top = generator.resolution
    levels = [sizes <= 8, (sizes > 8) & (sizes < top), sizes == top]
    blank = np.ones((1, generator.channels, top, top), np.float32)  # white corner
    a, b = (generate_ws(w[:, None].repeat(generator.num_ws, 1), noise) for w in (w_a, w_b))
    grids = []
    for from_b in levels:
        if not from_b.any():  # no middle layers at 8x8 and 16x16
            continue
        cells = [np.concatenate([blank, b])]
        for i in range(len(w_a)):
            ws = np.where(from_b[None, :, None], w_b[:, None], w_a[i][None, None])  # (nB, num_ws, w_dim)
            cells.append(np.concatenate([a[i:i + 1], generate_ws(ws, noise)]))
        grids.append(make_grid(np.concatenate(cells), nrow=len(w_b) + 1, normalize=True, value_range=(-1, 1)))
    gap = np.ones((grids[0].shape[0], grids[0].shape[1], 3 * top // 8), np.float32)
    return np.concatenate([x for g in grids for x in (g, gap)][:-1], axis=2) * 2 - 1


def main(argv=None):
    mg.backend.tune_cpu()  # faster CPU steps: keep freed memory, idle BLAS threads sleep
    parser = example_parser(__doc__.splitlines()[0], steps=None, batch_size=None, lr=0.002)
    parser.add_argument("--data", default="fashion-mnist",
                        help="fashion-mnist, or a folder of PNG/JPEG pictures (trained in colour)")
    parser.add_argument("--resolution", type=power_of_two(8), default=32, help="a power of two >= 8")
    parser.add_argument("--z-dim", type=positive_int, default=None, help="z's and w's dimensions (paper: 512)")
    parser.add_argument("--mapping-layers", type=positive_int, default=8)
    parser.add_argument("--channel-base", type=positive_int, default=None,
                        help="feature maps at resolution r: min(base / r, max) (paper: 8192, 512)")
    parser.add_argument("--channel-max", type=positive_int, default=None)
    parser.add_argument("--r1-gamma", type=nonnegative_float, default=stylegan.R1_GAMMA)
    parser.add_argument("--r1-interval", type=nonnegative_int, default=16,
                        help="R1 every this many steps, weighted by it (1: StyleGAN's every step; 0: off)")
    parser.add_argument("--mixing-prob", type=unit_float, default=stylegan.MIXING_PROB)
    parser.add_argument("--ema-half-life", type=positive_float, default=EMA_HALF_LIFE,
                        help="images after which an old weight counts half in G's moving average")
    parser.add_argument("--ema-rampup", type=nonnegative_float, default=EMA_RAMPUP,
                        help="the half-life is at most this share of the images seen so far (0: no ramp-up)")
    args = parser.parse_args(argv)
    recipe = "cuda" if args.device.startswith("cuda") else "cpu"
    for key, value in RECIPES[recipe].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.data != "fashion-mnist" and not os.path.isdir(args.data):
        parser.error(f"--data {args.data!r}: expected fashion-mnist or a folder of pictures")
    if args.batch_size % 4:
        parser.error(f"--batch-size {args.batch_size}: must be a multiple of 4 (D's minibatch stddev groups)")

    mg.manual_seed(args.seed)
    data_rng = np.random.default_rng(args.seed)
    images = load(args.data, "train", args.resolution)
    check_batch_size(parser, args.batch_size, len(images), args.data)
    channels = images.shape[1]

    net = dict(resolution=args.resolution, channels=channels, channel_base=args.channel_base,
               channel_max=args.channel_max)
    generator = stylegan.Generator(args.z_dim, args.z_dim, mapping_layers=args.mapping_layers, **net).to(args.device)
    discriminator = stylegan.Discriminator(**net).to(args.device)
    opt_g = optim.Adam(generator.parameters(), lr=args.lr, betas=stylegan.ADAM_BETAS, eps=1e-8)
    opt_d = optim.Adam(discriminator.parameters(), lr=args.lr, betas=stylegan.ADAM_BETAS, eps=1e-8)
    ema = optim.EMA(generator)

    settings = RunSettings.from_args(args)
    settings.data = "fashion-mnist" if args.data == "fashion-mnist" else os.path.basename(os.path.abspath(args.data))
    run = Experiment("stylegan", settings, {"generator": generator, "discriminator": discriminator, "ema": ema},
                     {"generator": opt_g, "discriminator": opt_d}, rngs={"data": data_rng})
    run.maybe_resume()

    r1 = run.history.get("r1", [float("nan")])[-1]  # step 0 computes it; a resumed run starts from the last
    for step in run.steps(args.steps, desc=f"stylegan/{settings.data}"):
        real = mg.tensor(images[data_rng.choice(len(images), args.batch_size, replace=False)], device=args.device)
        losses = stylegan.train_step(generator, discriminator, opt_g, opt_d, real, step, args.r1_gamma,
                                     args.r1_interval, args.mixing_prob)
        half_life = args.ema_half_life
        if args.ema_rampup:  # images seen before this step, as StyleGAN2-ADA's cur_nimg
            half_life = min(half_life, args.ema_rampup * step * args.batch_size)
        ema.decay = 0.5 ** (args.batch_size / max(half_life, 1e-8))  # a function of the step, so resumable
        ema.update()
        r1 = losses.pop("r1", r1)  # computed every --r1-interval steps: the latest value, logged every step
        run.log({**losses, **({"r1": r1} if args.r1_interval else {})})

    # everything below samples the moving average of G's weights, drawing from one seed
    ema.copy_to(generator)
    generator.eval()
    mg.manual_seed(args.seed + 1)

    def generate_ws(ws, noise=None):
        """Images of styles (N, num_ws, w_dim); ``noise``: one (1, 1, r, r) image per layer shared by all
        N, or None for fresh noise per image."""
        with mg.no_grad():
            return np.concatenate([generator.synthesis(mg.tensor(ws[i:i + 250], device=args.device), noise).numpy()
                                   for i in range(0, len(ws), 250)]).astype(np.float32)

    def mapping(z, psi=1.0):
        with mg.no_grad():
            return generator.mapping(mg.tensor(z, device=args.device), psi).numpy()

    def broadcast(w):  # (N, w_dim) -> (N, num_ws, w_dim)
        return np.repeat(w[:, None], generator.num_ws, 1)

    z = stylegan.sample_latent(args.num_samples, args.z_dim).numpy()
    samples = {psi: np.clip(generate_ws(broadcast(mapping(z, psi))), -1, 1) for psi in PSIS[:-1]}
    metrics = {}
    if args.data == "fashion-mnist":
        classifier, test = load_classifier(args.data), load(args.data, "test", args.resolution)
        scores = {psi: score_samples(classifier, x, real=test) for psi, x in samples.items()}
        metrics = {**scores[1.0], "truncation": {str(psi): {k: s[k] for k in ("classes_hit", "classifier_fd")}
                                                 for psi, s in scores.items()}}
    save_image(samples[1.0][:64], os.path.join(run.out, "samples.png"), nrow=8)
    save_npz(os.path.join(run.out, "samples.npz"), x=samples[1.0])

    w = mapping(stylegan.sample_latent(10, args.z_dim).numpy())
    noise = generator.synthesis.draw_noise(1, args.device)  # one draw for the mixing grid and the sweep
    save_image(style_mixing_grid(generate_ws, generator, w[:5], w[5:], noise)[None],
               os.path.join(run.out, "style_mixing.png"), nrow=1, padding=0)
    rows = mapping(stylegan.sample_latent(8, args.z_dim).numpy())
    w_avg = generator.mapping.w_avg.numpy()
    sweep = np.stack([w_avg + psi * (rows - w_avg) for psi in PSIS], 1).reshape(-1, rows.shape[1])
    save_image(generate_ws(broadcast(sweep), noise), os.path.join(run.out, "truncation.png"), nrow=len(PSIS))
    variation = []
    for w_row in mapping(stylegan.sample_latent(4, args.z_dim).numpy()):
        draws = generate_ws(broadcast(np.repeat(w_row[None], 64, 0)))
        std = draws.std(0, keepdims=True)
        variation += [draws[:6], std / max(std.max(), 1e-12) * 2 - 1]
    save_image(np.concatenate(variation), os.path.join(run.out, "stochastic_variation.png"), nrow=7)

    metrics = run.finish({"data": settings.data, "resolution": args.resolution, "recipe": recipe,
                          "z_dim": args.z_dim, "channel_base": args.channel_base, "channel_max": args.channel_max,
                          "batch_size": args.batch_size, "lr": args.lr, "r1_gamma": args.r1_gamma,
                          "r1_interval": args.r1_interval, "mixing_prob": args.mixing_prob,
                          "ema_decay": ema.decay, **metrics})
    print({k: v for k, v in metrics.items() if k in ("steps", "wall_time_s", "classes_hit", "class_entropy",
                                                      "classifier_fd", "truncation")})
    return metrics


if __name__ == "__main__":
    main()
