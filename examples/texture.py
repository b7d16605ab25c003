"""Texture synthesis from one exemplar: Gatys et al. 2015 (Gram matching) and Efros & Leung 1999 (copying).

    python examples/texture.py                                    # both methods, six exemplars, CPU, a few minutes
    python examples/texture.py --method gatys --features trained  # Gram matching on the project's trained VGG-19
    python examples/texture.py --method gatys --width 1           # ... on a random VGG-19 of full width
    python examples/texture.py --method gatys --layer-weights paper   # the paper's equal layer weights
    python examples/texture.py --method efros-leung --window 15   # the non-parametric baseline, a larger window
    python examples/texture.py --exemplars brick Stone/pink_marble --size 96

The exemplars: scikit-image's greyscale textures ``brick``, ``grass``, ``gravel``
(512x512, shrunk to 128x128, the grey repeated to 3 channels) and GIMP's colour
patterns (``/usr/share/gimp/2.0/patterns``, named as ``Stone/pink_marble``; shorter
side resized to 128, centre 128x128). The three default patterns are in the test
split of ``minigan.data.colour``, so the trained feature network never saw them, and
neither did it see scikit-image's textures.

Each method synthesizes from the exemplar's *fit half* (``minigan.eval.patches.
split_exemplar``: 128x64), so that the exemplar's other half measures how far two
pieces of one texture are. metrics.json holds, per exemplar and method,
``patch_report``: the multi-scale patch sliced Wasserstein distance of the output to
the fit half, next to the held-out half's (the floor) and the shuffled pixels' (the
ceiling); ``mean_relative`` averages (output - floor) / (ceiling - floor) over the
exemplars: 0 is as good as another piece of the texture, 1 as bad as its colours.

Gatys: --steps Adam steps on the pixels of all exemplars' outputs at once (a batch),
lr --lr, layers relu1_1..relu4_1 of a VGG-19 with average pooling, each layer's term
weighted by its target's size (--layer-weights): ``--features random`` (the default:
torchvision's init, ``--width`` of VGG-19's channels, seeded by --seed) or
``trained`` (the project's own weights, ``minigan.models.feature_training``). Why
random is the default: with the default settings it came closer to the exemplars'
patch statistics than the trained network on 4 of the 6 exemplars for seed 0
(pink marble tied; ice, where both fail, lost) and on 5 of 6 for seed 1 (docs/texture.md).
A random VGG-19 at full width (--width 1) did better still, at three times the CPU.
Efros & Leung: ``--window``, eps 0.1, seeded by --seed; it runs after the Gatys steps
(it has no steps; a resumed run redoes it identically).
--batch-size is accepted with the shared command line and unused.

Writes samples.png (a row per exemplar: a 64x64 piece of the fit half | Gatys |
Efros & Leung), losses.png (Gatys' loss), metrics.json, checkpoint.safetensors (the
pixels and Adam's state) and samples.npz (``exemplar``: the fit halves; ``gatys``,
``efros_leung``: the outputs; ``names``). One output per exemplar: samples.npz holds
as many images as exemplars, not the contract's 1000 samples of a generative model.
"""
import os

import numpy as np

import minigan as mg
from minigan import optim
from minigan.data.colour import GIMP_PATTERNS, read_pat
from minigan.data.transforms import center_crop, rescale, resize
from minigan.eval.patches import patch_report, split_exemplar
from minigan.models import texture
from minigan.models.feature_training import trained_vgg19
from minigan.models.features import vgg19
from minigan.utils import save_image, save_npz
from minigan.utils.experiment import Experiment, RunSettings, example_parser, positive_float, positive_int

SKIMAGE_TEXTURES = ("brick", "grass", "gravel")
DEFAULT_EXEMPLARS = SKIMAGE_TEXTURES + ("Stone/pink_marble", "Water/ice", "Wood/walnut")
METHODS = ("gatys", "efros-leung")


def load_exemplar(name, side=128):
    """(3, side, side) float32 in [-1, 1]: a scikit-image texture or a GIMP pattern."""
    if name in SKIMAGE_TEXTURES:
        from skimage import data
        grey = rescale(getattr(data, name)().astype(np.float32), (0, 255))
        image = np.repeat(grey[None], 3, axis=0)
    else:
        path = os.path.join(GIMP_PATTERNS, name + ".pat")
        if not os.path.isfile(path):
            raise ValueError(f"unknown exemplar {name!r}: expected one of {', '.join(SKIMAGE_TEXTURES)} or a GIMP "
                             f"pattern such as Stone/pink_marble (a .pat file under {GIMP_PATTERNS})")
        pixels = read_pat(path)[0]
        if pixels.shape[2] < 3:
            pixels = np.repeat(pixels[..., :1], 3, axis=2)
        image = rescale(pixels[..., :3].astype(np.float32).transpose(2, 0, 1), (0, 255))
    scale = side / min(image.shape[1:])
    size = (max(side, round(image.shape[1] * scale)), max(side, round(image.shape[2] * scale)))
    return np.clip(center_crop(resize(image[None], size), side)[0], -1, 1).astype(np.float32)


def feature_network(kind, width, pool, last="relu4_1", seed=0):
    if kind == "trained":
        return trained_vgg19(last=last, pool=pool)
    return vgg19("random", last=last, pool=pool, width=width, seed=seed)


def relative(report):
    """Where the output lies between the floor (0) and the ceiling (1)."""
    return (report["output"] - report["held_out"]) / (report["shuffled"] - report["held_out"])


def main(argv=None):
    mg.backend.tune_cpu()  # faster CPU steps: keep freed memory, idle BLAS threads sleep
    parser = example_parser(__doc__.splitlines()[0], steps=1000, batch_size=1, lr=texture.GATYS_LR)
    parser.add_argument("--method", choices=METHODS + ("both",), default="both")
    parser.add_argument("--exemplars", nargs="+", default=list(DEFAULT_EXEMPLARS),
                        help="scikit-image textures (brick, grass, gravel) and GIMP patterns (Stone/pink_marble)")
    parser.add_argument("--exemplar-size", type=positive_int, default=128, help="exemplars are cut to this square")
    parser.add_argument("--size", type=positive_int, default=64, help="side of the synthesized textures")
    parser.add_argument("--features", choices=("random", "trained"), default="random",
                        help="Gatys' feature network: the project's trained VGG-19 front or random weights")
    parser.add_argument("--width", type=positive_float, default=0.25,
                        help="VGG-19's width factor for --features random (the trained one is 0.25)")
    parser.add_argument("--pool", choices=("avg", "max"), default="avg", help="VGG-19's pooling (Gatys: avg)")
    parser.add_argument("--layer-weights", choices=("normalized", "paper"), default="normalized",
                        help="Gatys' per-layer weights: 1 / mean(target Gram^2) or the paper's equal ones")
    parser.add_argument("--window", type=positive_int, default=texture.EL_WINDOW,
                        help="Efros & Leung's window (odd)")
    args = parser.parse_args(argv)
    if args.width > 1:
        parser.error(f"--width {args.width}: VGG-19's width factor is in (0, 1]")
    if args.window % 2 == 0 or args.window < 3:
        parser.error(f"--window {args.window}: expected an odd number >= 3")
    if args.size < 8 or args.exemplar_size < 16:
        parser.error("--size must be at least 8 and --exemplar-size at least 16")
    if args.window > args.exemplar_size // 2:
        parser.error(f"--window {args.window} does not fit in the exemplar's fit half ({args.exemplar_size // 2} px)")
    try:
        exemplars = np.stack([load_exemplar(name, args.exemplar_size) for name in args.exemplars])
    except ValueError as error:
        parser.error(str(error))
    fits = np.stack([split_exemplar(e)[0] for e in exemplars])
    methods = METHODS if args.method == "both" else (args.method,)

    mg.manual_seed(args.seed)
    canvas = texture.Canvas(len(fits), args.size, args.size, np.random.default_rng(args.seed)).to(args.device)
    optimizer = optim.Adam(canvas.parameters(), lr=args.lr)
    run = Experiment("texture", RunSettings.from_args(args), {"canvas": canvas}, {"canvas": optimizer})
    run.maybe_resume()
    outputs = {}
    if "gatys" in methods:
        network = feature_network(args.features, args.width, args.pool, seed=args.seed).to(args.device)
        targets = texture.gram_targets(network, fits, device=args.device)
        for _ in run.steps(args.steps, desc=f"texture/gatys/{args.features}"):
            run.log({"gram_loss": texture.gatys_step(network, canvas, optimizer, targets,
                                                          args.layer_weights == "normalized")})
        outputs["gatys"] = canvas.image.detach().numpy()
    if "efros-leung" in methods:
        outputs["efros_leung"] = np.stack([texture.efros_leung(f, args.size, args.window, seed=args.seed + i)
                                           for i, f in enumerate(fits)])

    piece = min(args.size, fits.shape[2], fits.shape[3])
    cells = [fits[:, :, :piece, :piece]] + [resize(o, (piece, piece)) if args.size != piece else o
                                            for o in outputs.values()]
    save_image(np.stack(cells, axis=1).reshape(-1, *cells[0].shape[1:]), os.path.join(run.out, "samples.png"),
               nrow=len(cells), pad_value=1.0)
    save_npz(os.path.join(run.out, "samples.npz"), exemplar=fits, names=np.array(args.exemplars),
             **{k: v.astype(np.float32) for k, v in outputs.items()})

    scores = {}
    for method, images in outputs.items():
        reports = {name: patch_report(image, exemplar) for name, image, exemplar in
                   zip(args.exemplars, images, exemplars)}
        for report in reports.values():
            report["relative"] = relative(report)
        scores[method] = {"per_exemplar": reports,
                          "mean_output": float(np.mean([r["output"] for r in reports.values()])),
                          "mean_relative": float(np.mean([r["relative"] for r in reports.values()]))}
    settings = {"method": args.method, "exemplars": args.exemplars, "exemplar_size": args.exemplar_size,
                "size": args.size, "features": args.features, "pool": args.pool, "window": args.window,
                "lr": args.lr, "layer_weights": args.layer_weights, "layers": list(texture.TEXTURE_LAYERS),
                "width": args.width if args.features == "random" else 0.25}
    if "gatys" in methods:
        settings["final_gram_loss"] = run.history["gram_loss"][-1] if run.history else None
    metrics = run.finish({**settings, "patches": scores})
    print({m: (round(s["mean_output"], 4), round(s["mean_relative"], 3)) for m, s in scores.items()})
    return metrics


if __name__ == "__main__":
    main()
