"""Colorize grey crops (Zhang, Isola & Efros 2016): L in, ab out, classification over the ab gamut or L2.

    python examples/colorization.py                     # classification, rebalanced; 32x32 crops, CPU, a few minutes
    python examples/colorization.py --no-rebalance      # classification, plain cross-entropy
    python examples/colorization.py --loss l2           # the regression baseline
    python examples/colorization.py --data DIR          # any folder of PNG/JPEG pictures
    python examples/colorization.py --compare runs/colorization-l2 runs/colorization-classification \\
        --figure docs/colorization.png                  # grey | each run | truth, from their samples.npz

The pictures (``minigan.data.colour``): the colour photos of scikit-learn and
scikit-image, shrunk to a shorter side of 128, and GIMP's colour patterns
(``apt-get install gimp-data``). Whole pictures are held out for testing (astronaut,
coffee and flower, and every 5th pattern); the held-out crops are the same for every
run (their own seed).

Writes samples.png (rows of grey input | colorized | truth), losses.png,
metrics.json, checkpoint.safetensors and samples.npz: ``input`` the L channel as
L / 50 - 1 (N, 1, S, S), ``output`` and ``target`` RGB (N, 3, S, S), all float32 in
[-1, 1], N = --num-samples held-out crops. metrics.json holds the paper's raw
accuracy AuC (share of pixels within t of the true ab, averaged over t = 0..150)
and the mean chroma sqrt(a^2 + b^2) of the outputs and of the targets, with the
same two numbers for a grey guess (ab = 0).

Defaults: the network at width 16 (the paper's 64), 1000 steps of 32 crops, Adam
lr 1e-3 with betas (0.9, 0.99) (the paper: 3e-5 over 450k steps of 40 images at
224x224), lambda = 0.5, sigma = 5, T = 0.38 (the paper's).
"""
import json
import os

import numpy as np

import minigan as mg
from minigan import optim
from minigan.data.colour import load_colour, random_crops
from minigan.data.lab import lab_to_rgb, rgb_to_lab
from minigan.models import colorization
from minigan.utils import save_image, save_npz
from minigan.utils.experiment import (Experiment, RunSettings, example_parser, positive_float, positive_int,
                                    unit_float)

TEST_SEED = 20160328  # the held-out crops do not depend on --seed: every run is scored on the same ones
PRIOR_CROPS = 2000    # training crops the class prior is counted on


def crops_lab(pictures, n, size, rng):
    """n random crops as Lab (n, 3, size, size), float64."""
    return rgb_to_lab((random_crops(pictures, n, size, rng) + 1) / 2)


def to_rgb(lightness, ab):
    """RGB in [-1, 1] (float32) from the net's input L / 50 - 1 and ab."""
    lab = np.concatenate([(lightness + 1) * 50, ab], axis=1)
    return (lab_to_rgb(lab) * 2 - 1).astype(np.float32)


def grid(columns, path, rows=range(8)):
    """Save the crops ``rows`` side by side: one column per array of ``columns`` (1 or 3 channels)."""
    cells = [np.repeat(c[list(rows)], 3 // c.shape[1], axis=1) for c in columns]
    tiles = np.stack(cells, axis=1).reshape(-1, *cells[0].shape[1:])
    tiles = tiles.repeat(2, axis=2).repeat(2, axis=3)  # 32x32 crops shown at 64x64
    save_image(tiles, path, nrow=len(columns), pad_value=1.0)


def compare(runs, figure, rows):
    """The figure of docs/colorization.md: grey | each run's output | truth, and its numbers."""
    samples = [np.load(os.path.join(run, "samples.npz")) for run in runs]
    if any(not np.array_equal(s["input"], samples[0]["input"]) for s in samples):
        raise SystemExit("--compare: the runs were scored on different held-out crops (another --crop or --data?)")
    grid([samples[0]["input"]] + [s["output"] for s in samples] + [samples[0]["target"]], figure, rows)
    for run in runs:
        with open(os.path.join(run, "metrics.json")) as f:
            m = json.load(f)
        for kind, part in [("all", m)] + list(m["by_kind"].items()):
            print(f"{run}, {kind} ({part['crops']} crops): auc {part['auc']:.3f} (grey {part['grey_auc']:.3f}), "
                  f"chroma {part['chroma']:.1f} (targets {part['target_chroma']:.1f})")


def main(argv=None):
    mg.backend.tune_cpu()  # faster CPU steps: keep freed memory, idle BLAS threads sleep
    parser = example_parser(__doc__.splitlines()[0], steps=1000, batch_size=32, lr=1e-3)
    parser.add_argument("--data", default=None, metavar="DIR",
                        help="a folder of PNG/JPEG pictures (default: the bundled photos and GIMP's patterns)")
    parser.add_argument("--loss", choices=["classification", "l2"], default="classification")
    parser.add_argument("--no-rebalance", action="store_true", help="classification without class rebalancing")
    parser.add_argument("--lam", type=unit_float, default=colorization.LAMBDA,
                        help="the uniform share lambda of the rebalancing")
    parser.add_argument("--temperature", type=positive_float, default=colorization.TEMPERATURE,
                        help="the annealed mean's T")
    parser.add_argument("--width", type=positive_int, default=16, help="channels of the first block (the paper: 64)")
    parser.add_argument("--crop", type=positive_int, default=32, help="crop side, divisible by 4")
    parser.add_argument("--compare", nargs="+", metavar="RUN", help="make --figure from these runs' samples.npz")
    parser.add_argument("--figure", default=os.path.join("docs", "colorization.png"))
    parser.add_argument("--rows", type=int, nargs="+", default=list(range(8)), help="the crops --figure shows")
    args = parser.parse_args(argv)
    if args.compare:
        return compare(args.compare, args.figure, args.rows)
    if args.crop % 4:
        parser.error(f"--crop {args.crop}: the net halves the size twice; expected a multiple of 4")
    rebalance = args.loss == "classification" and not args.no_rebalance
    name = args.loss + ("-norebalance" if args.loss == "classification" and not rebalance else "")
    args.out = args.out or os.path.join("runs", f"colorization-{name}")

    mg.manual_seed(args.seed)
    data_rng = np.random.default_rng(args.seed)
    train, test, test_kinds, described = load_colour(args.data)
    centres = colorization.ab_bins() if args.loss == "classification" else None
    weights = None
    if rebalance:
        prior = colorization.empirical_prior(crops_lab(train, PRIOR_CROPS, args.crop, args.seed)[:, 1:], centres)
        weights = colorization.rebalancing_weights(prior, centres, args.lam)

    net = colorization.ColorizationNet(len(centres) if centres is not None else 2, args.width).to(args.device)
    opt = optim.Adam(net.parameters(), lr=args.lr, betas=(0.9, 0.99))
    run = Experiment("colorization", RunSettings.from_args(args), {"net": net}, {"net": opt}, rngs={"data": data_rng})
    run.maybe_resume()

    for _ in run.steps(args.steps, desc=f"colorization/{name}"):
        lab = crops_lab(train, args.batch_size, args.crop, data_rng).astype(np.float32)
        lightness = mg.tensor(colorization.lightness_input(lab), device=args.device)
        ab = mg.tensor(lab[:, 1:], device=args.device)
        run.log({"loss": colorization.train_step(net, opt, lightness, ab, centres, weights)})

    net.eval()  # batch norm with the statistics averaged in training
    crops, picture = random_crops(test, args.num_samples, args.crop, TEST_SEED, return_index=True)
    lab = rgb_to_lab((crops + 1) / 2)
    lightness = colorization.lightness_input(lab)
    with mg.no_grad():
        ab = np.concatenate([colorization.colorize(net, mg.tensor(lightness[i:i + 250], device=args.device), centres,
                                                   args.temperature).numpy() for i in range(0, len(lab), 250)])
    output = to_rgb(lightness, ab)
    target = to_rgb(lightness, lab[:, 1:])
    grid([lightness, output, target], os.path.join(run.out, "samples.png"))
    save_npz(os.path.join(run.out, "samples.npz"), input=lightness, output=output, target=target)
    true_ab, kinds = lab[:, 1:], np.array(test_kinds)[picture]
    metrics = run.finish({
        "data": described, "loss": args.loss, "rebalance": rebalance, "bins": None if centres is None else len(centres),
        "temperature": args.temperature, "width": args.width, "crop": args.crop, "batch_size": args.batch_size,
        **colorization.scores(ab, true_ab, kinds)})
    print({k: metrics[k] for k in ("steps", "wall_time_s", "auc", "chroma", "target_chroma", "grey_auc")})
    return metrics


if __name__ == "__main__":
    main()
