"""Train SinGAN (Shaham, Dekel & Michaeli 2019) on one photograph: a pyramid of patch GANs, coarse to fine.

    python examples/singan.py                         # china.jpg, finest 64x96, 5 scales, CPU, minutes
    python examples/singan.py --image chelsea         # another photo: china, flower (scikit-learn) or
                                                      # astronaut, chelsea, coffee, rocket (scikit-image)
    python examples/singan.py --image my_photo.jpg    # any PNG or JPEG file
    python examples/singan.py --fit-half              # train on the left half only (a fair patch score)
    python examples/singan.py --max-size 250 --width 32 --steps 2000 --device cuda   # the paper's settings

--steps is the number of iterations at each scale (the paper: 2000); each iteration is
3 critic steps and 3 generator steps. The image is first shrunk so its longer side is at
most --max-size (the paper: 250); the coarsest scale's shorter side is --min-size (25),
and the factor between scales is about --scale-factor (0.75; adjusted so the sizes
fit, see ``minigan.models.singan.pyramid_sizes``). The networks have --width channels
at scales 0-3, doubling every --width-every scales (the paper: 32, every 4).

Defaults and why they differ from the paper: --max-size 96 (64x96 for china.jpg,
5 scales), --width 16 (32 at scale 4), --steps 250: on a shared CPU core the finest
scale costs about 1 s an iteration at these settings, and the paper's (250 pixels,
width 32, 2000 iterations) would take days in NumPy.

Writes into --out:
  samples.png         the training image (top left) and random samples
  aspect.png          samples from coarsest noise maps of other shapes: wider, taller, larger
  super_resolution.png  bilinear enlargement (left) against the finest G re-applied --sr-times
                      times (right), for the training image and a sample
  injection.png       row n: the real image shrunk to scale n - 1 injected, scales n..N generate
                      (row 0 is a plain sample); the left column shows what was injected
  reconstruction.png  the training image and its reconstruction from z*
  samples.npz         x: --num-samples random samples (N, 3, H, W) in [-1, 1]
  metrics.json, losses.png, checkpoint.safetensors (every scale; --resume continues)

metrics.json holds the pyramid (sizes, factor, widths, noise amplitudes), the
reconstruction's RMSE, and the patch statistics of the samples
(``minigan.eval.patches.patch_report``): the samples' patch distance to the
exemplar's fit half against the floor (the held-out half) and the ceiling (shuffled
pixels), and ``relative`` = (output - floor) / (ceiling - floor) (None where the floor is
not below the ceiling: the two halves of the exemplar have different patches). Without
--fit-half SinGAN saw the whole image, held-out half included, so the output's
number is flattered.
"""
import os

import numpy as np

import minigan as mg
from minigan import optim
from minigan.data.transforms import rescale, resize
from minigan.eval.patches import patch_report, split_exemplar
from minigan.models import singan
from minigan.utils import save_image, save_npz
from minigan.utils.experiment import (Experiment, RunSettings, example_parser, nonnegative_float, positive_float,
                                      positive_int)

SKLEARN_IMAGES = ("china", "flower")
SKIMAGE_IMAGES = ("astronaut", "chelsea", "coffee", "rocket")
CHUNK = 50  # samples generated at a time


def load_image(name):
    """(3, H, W) float32 in [-1, 1]: a bundled photograph by name, or a PNG / JPEG file."""
    if name in SKLEARN_IMAGES:
        from sklearn.datasets import load_sample_image
        pixels = load_sample_image(f"{name}.jpg")
    elif name in SKIMAGE_IMAGES:
        from skimage import data
        pixels = getattr(data, name)()
    elif os.path.isfile(name):
        from PIL import Image
        with Image.open(name) as picture:
            pixels = np.asarray(picture.convert("RGB"))
    else:
        raise ValueError(f"--image {name!r}: not a file, and not one of the bundled photographs "
                         f"{', '.join(SKLEARN_IMAGES + SKIMAGE_IMAGES)}")
    return rescale(pixels[..., :3].astype(np.float32).transpose(2, 0, 1), (0, 255))


def exemplar_at(image, max_size):
    """The image shrunk so its longer side is at most ``max_size`` (the finest scale's size)."""
    shrink = min(max_size / max(image.shape[1:]), 1.0)
    size = (round(image.shape[1] * shrink), round(image.shape[2] * shrink))
    return np.clip(resize(image[None], size)[0], -1, 1).astype(np.float32)


def pad_to(images, height, width, value=1.0):
    """Images of different sizes on canvases of one size (top left), so one grid holds them."""
    out = np.full((len(images), images[0].shape[0], height, width), value, np.float32)
    for k, image in enumerate(images):
        h, w = min(height, image.shape[1]), min(width, image.shape[2])
        out[k, :, :h, :w] = image[:, :h, :w]
    return out


def generate(model, n, **kwargs):
    """``n`` samples as a float32 array, made CHUNK at a time."""
    return np.concatenate([model.generate(min(CHUNK, n - i), **kwargs).numpy() for i in range(0, n, CHUNK)])


def relative(report):
    """Where the samples lie between the floor (0) and the ceiling (1) of the patch distance; None
    where the yardsticks do not bracket (the exemplar's halves differ as much as shuffled pixels)."""
    span = report["shuffled"] - report["held_out"]
    return (report["output"] - report["held_out"]) / span if span > 0 else None


def main(argv=None):
    mg.backend.tune_cpu()  # faster CPU steps: keep freed memory, idle BLAS threads sleep
    parser = example_parser(__doc__.splitlines()[0], steps=250, batch_size=1, lr=singan.LR)
    parser.add_argument("--image", default="china",
                        help=f"a bundled photograph ({', '.join(SKLEARN_IMAGES + SKIMAGE_IMAGES)}) or a file")
    parser.add_argument("--max-size", type=positive_int, default=96, help="finest longer side (the paper: 250)")
    parser.add_argument("--min-size", type=positive_int, default=singan.MIN_SIZE, help="coarsest shorter side")
    parser.add_argument("--scale-factor", type=positive_float, default=singan.SCALE_FACTOR)
    parser.add_argument("--width", type=positive_int, default=16, help="channels at scales 0-3 (the paper: 32)")
    parser.add_argument("--width-every", type=positive_int, default=singan.WIDTH_EVERY,
                        help="the width doubles every this many scales")
    parser.add_argument("--alpha", type=nonnegative_float, default=singan.ALPHA, help="reconstruction weight")
    parser.add_argument("--gp-weight", type=nonnegative_float, default=singan.GP_WEIGHT)
    parser.add_argument("--gp-norm", choices=("pixel", "image"), default="pixel",
                        help="gradient norm per pixel over the channels (the paper's code) or per image")
    parser.add_argument("--noise-amp", type=nonnegative_float, default=singan.NOISE_AMP,
                        help="sigma_n = this times the reconstruction's RMSE at scale n")
    parser.add_argument("--fit-half", action="store_true",
                        help="train on the exemplar's fit half only (minigan.eval.patches.split_exemplar)")
    parser.add_argument("--sr-times", type=positive_int, default=3, help="super-resolution steps of 1/r each")
    args = parser.parse_args(argv)
    if args.batch_size != 1:
        parser.error("--batch-size: SinGAN trains on its one image, batch size 1")
    if not 0 < args.scale_factor < 1:
        parser.error(f"--scale-factor {args.scale_factor}: expected a number in (0, 1)")

    try:
        exemplar = exemplar_at(load_image(args.image), args.max_size)
        train_image = split_exemplar(exemplar)[0] if args.fit_half else exemplar
        sizes, factor = singan.pyramid_sizes(*train_image.shape[1:], args.min_size, args.max_size, args.scale_factor)
    except ValueError as error:
        parser.error(str(error))
    reals = singan.real_pyramid(train_image, sizes)

    mg.manual_seed(args.seed)
    model = singan.SinGAN(sizes, width=args.width, width_every=args.width_every).to(args.device)
    optimizers = {}
    for k in range(len(sizes)):
        optimizers[f"g{k}"] = optim.Adam(model.generators[k].parameters(), lr=args.lr, betas=singan.BETAS)
        optimizers[f"d{k}"] = optim.Adam(model.critics[k].parameters(), lr=args.lr, betas=singan.BETAS)
    print(f"SinGAN on {args.image}{' (fit half)' if args.fit_half else ''}: {len(sizes)} scales, "
          f"{' -> '.join(f'{h}x{w}' for h, w in sizes)}, factor {factor:.3f}, widths {model.widths}")

    data = "-".join([os.path.splitext(os.path.basename(args.image))[0]] + (["half"] if args.fit_half else []))
    settings = RunSettings.from_args(args)
    settings.data = data
    run = Experiment("singan", settings, {"singan": model}, optimizers)
    run.maybe_resume(scheduled_lr=True)

    scale, real = None, None
    for step in run.steps(args.steps * len(sizes), desc="singan"):
        n, i = divmod(step, args.steps)
        if n != scale:  # a new scale, or the first iteration after --resume
            if i == 0:
                model.start_scale(n, reals[n], noise_factor=args.noise_amp)
            else:
                model.freeze_below(n)
            scale, real = n, mg.tensor(reals[n], device=args.device)
        for opt in (optimizers[f"g{n}"], optimizers[f"d{n}"]):
            for group in opt.param_groups:
                group["lr"] = singan.learning_rate(i, args.steps, args.lr)
        losses = singan.train_iteration(model, n, real, optimizers[f"g{n}"], optimizers[f"d{n}"], args.alpha,
                                        args.gp_weight, per_pixel=args.gp_norm == "pixel")
        run.log({**losses, "scale": n})

    # ------------------------------------------------------------ pictures from the trained pyramid
    model.freeze_below(len(sizes))  # every scale in eval mode
    mg.manual_seed(args.seed + 1)
    finest = reals[-1][0]
    out = run.out
    samples = generate(model, args.num_samples)
    save_npz(os.path.join(out, "samples.npz"), x=samples.astype(np.float32))
    save_image(np.concatenate([finest[None], samples[:15]]), os.path.join(out, "samples.png"), nrow=4,
               pad_value=1.0)

    h0, w0 = sizes[0]
    shapes = [(h0, w0), (h0, 2 * w0), (round(1.6 * h0), w0), (2 * h0, 2 * w0)]
    shaped = [model.generate(1, coarsest=s).numpy()[0] for s in shapes for _ in range(2)]
    height, width = max(x.shape[1] for x in shaped), max(x.shape[2] for x in shaped)
    save_image(pad_to(shaped, height, width), os.path.join(out, "aspect.png"), nrow=2, pad_value=1.0)

    sample = samples[:1]
    pairs = []
    for start in (reals[-1], sample):
        start = mg.tensor(start, device=args.device)
        enlarged = model.super_resolve(start, args.sr_times)
        pairs += [singan.upsample(start, enlarged.shape[2:]).numpy()[0], enlarged.numpy()[0]]
    save_image(np.stack(pairs), os.path.join(out, "super_resolution.png"), nrow=2, pad_value=1.0)

    rows = []
    for n in range(len(sizes)):
        injected = mg.tensor(reals[n - 1], device=args.device) if n else None
        shown = singan.upsample(injected, sizes[-1]).numpy()[0] if n else np.ones_like(finest)
        rows += [shown, *model.generate(4, start=n, start_image=injected).numpy()]
    save_image(np.stack(rows), os.path.join(out, "injection.png"), nrow=5, pad_value=1.0)

    reconstruction = model.reconstruct().numpy()
    save_image(np.concatenate([reals[-1], reconstruction]), os.path.join(out, "reconstruction.png"), nrow=2,
               pad_value=1.0)

    report = patch_report(list(samples[:16]), exemplar, seed=args.seed)
    report["relative"] = relative(report)
    fit_size = split_exemplar(exemplar)[0].shape[1:]
    metrics = run.finish({
        "image": args.image, "fit_half": args.fit_half, "sizes": [list(s) for s in sizes],
        "scale_factor": factor, "widths": model.widths, "steps_per_scale": args.steps,
        "noise_amps": [float(a) for a in model.noise_amps.numpy()],
        "reconstruction_rmse": singan.rmse(reconstruction, reals[-1]),
        "alpha": args.alpha, "gp_weight": args.gp_weight, "gp_norm": args.gp_norm,
        "patch": {**report, "exemplar_size": list(exemplar.shape[1:]), "fit_half_size": list(fit_size),
                  "samples_scored": 16, "trained_on": "fit half" if args.fit_half else "whole image"},
    })
    print({k: metrics[k] for k in ("steps", "wall_time_s", "reconstruction_rmse")},
          {k: v for k, v in report.items() if k != "output_per_level"})
    return metrics


if __name__ == "__main__":
    main()
