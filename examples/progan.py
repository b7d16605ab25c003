"""Train a progressively growing GAN (Karras et al. 2018): 4x4, then 8x8, then 16x16, each new block faded in.

    python examples/progan.py                                  # Fashion-MNIST grown to 16x16, CPU, ~11 CPU-minutes
    python examples/progan.py --resolution 32                  # to 32x32 (the issue's size; ~3x the CPU, estimated)
    python examples/progan.py --device cuda --data DIR --resolution 64 --fmap-base 2048 --fmap-max 256 \\
        --phase-steps 5000                                     # a folder of PNG/JPEG pictures, in colour, on a GPU

Writes samples.png (an 8x8 grid of the EMA generator's samples), growing.png (row
k: the same eight z through the EMA generator at the end of stage k, 4x4 at the
top, each upsampled to the final resolution), fd_curve.png (the classifier-feature
Fréchet distance of 1000 EMA samples to the test split over training, the stages
marked), losses.png, metrics.json, checkpoint.safetensors and samples.npz (x:
--num-samples images in [-1, 1]) into --out; --resume continues from the checkpoint
there. growing.npz and fd_curve.json hold the figures' data as the run makes it.

The schedule: 2 * stages - 1 phases of --phase-steps steps (4x4; then a fade and a
stable phase per new resolution, ``progan.schedule``), after which training stays
at the final resolution; --steps defaults to the end of the last phase. A run
stopped earlier saves its samples upsampled (nearest) to --resolution. Adam's
state is reset when a new resolution starts. Defaults and why they differ from
the paper (512 channels, z of 512 dims, 800k images per phase): 64 channels at
4x4 and 8x8, 32 at 16x16, z of 64 dims, batch 32 and 600 steps per phase (19k
images), and 16x16 instead of the issue's 32x32, so that the default run takes
about 11 minutes of one CPU core (docs/progan.md); --resolution 32 grows one stage more.
The EMA of G decays by 0.99 per step (the paper: 0.999): with phases of 600 steps,
0.999 would leave a new block's averaged weights 30% their untrained init at the
end of its stable phase (0.999^1200); 0.99 averages over the last ~100 steps.

metrics.json holds the scores of the project's Fashion-MNIST classifier
(``minigan.eval``) on the final samples: class coverage and the classifier-feature
FD to the test split. Samples and test images are resized to the classifier's
28x28 by the same path; during growing the samples are first upsampled (nearest)
to the final resolution. On a folder of pictures there is no classifier: no scores.
"""
import json
import os

import numpy as np

import minigan as mg
from minigan import optim
from minigan.data import load_fashion_mnist, load_image_folder
from minigan.eval import load_classifier, score_samples
from minigan.eval.scores import feature_statistics, frechet_distance
from minigan.models import progan
from minigan.utils import atomic_save, atomic_write, save_image, save_npz
from minigan.utils.experiment import (Experiment, RunSettings, check_batch_size, example_parser, nonnegative_int,
                                    positive_int, power_of_two, unit_float)

FASHION = "fashion-mnist"
FD_SAMPLES = 1000


def load(args, split):
    """Images (N, C, R, R) in [-1, 1]: Fashion-MNIST resized to R, or the pictures of a folder."""
    if args.data == FASHION:
        return load_fashion_mnist(split, size=args.resolution)[0]
    return load_image_folder(args.data, args.resolution, args.channels)


def upsample(images, resolution):
    """Nearest-neighbour upsampling of a NumPy batch to ``resolution`` (as G's fade does)."""
    factor = resolution // images.shape[-1]
    return images.repeat(factor, axis=2).repeat(factor, axis=3)


def save_fd_curve(points, stage_starts, path):
    """FD against step, a dotted line where each resolution's fade starts."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    figure = Figure(figsize=(6, 3.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot([p["step"] for p in points], [p["fd"] for p in points], marker="o", markersize=3)
    for step, resolution in stage_starts:
        axes.axvline(step, color="grey", linestyle=":", linewidth=1)
        axes.annotate(f"{resolution}x{resolution}", (step, 1), xycoords=("data", "axes fraction"),
                      xytext=(3, -12), textcoords="offset points", fontsize=8, color="grey")
    axes.set_xlabel("step")
    axes.set_ylabel("classifier-feature FD to the test split")
    axes.set_yscale("log")
    axes.grid(alpha=0.3)
    atomic_save(path, lambda f: figure.savefig(f, format="png", dpi=100, bbox_inches="tight"))


def main(argv=None):
    mg.backend.tune_cpu()  # faster CPU steps: keep freed memory, idle BLAS threads sleep
    parser = example_parser(__doc__.splitlines()[0], batch_size=32, lr=progan.ADAM["lr"])
    parser.set_defaults(steps=None)  # the end of the last phase
    parser.add_argument("--data", default=FASHION,
                        help=f"{FASHION}, or a folder of PNG/JPEG pictures (resized and center-cropped)")
    parser.add_argument("--resolution", type=power_of_two(4), default=16, help="the final resolution, grown from 4x4")
    parser.add_argument("--channels", type=int, choices=(1, 3), default=None,
                        help="image channels of a folder of pictures (default 3; Fashion-MNIST has 1)")
    parser.add_argument("--latent-dim", type=positive_int, default=64)
    parser.add_argument("--fmap-base", type=positive_int, default=256,
                        help="channels nf(s) = min(fmap_base / 2^s, fmap_max) (the paper: 8192)")
    parser.add_argument("--fmap-max", type=positive_int, default=64, help="(the paper: 512)")
    parser.add_argument("--phase-steps", type=positive_int, default=600,
                        help="steps of each fade and each stable phase (the paper: 800k images)")
    parser.add_argument("--ema-decay", type=unit_float, default=0.99,
                        help=f"decay of the EMA of G's weights (the paper: {progan.EMA_DECAY}, for phases of tens "
                             "of thousands of steps; at 0.999 a block added 600 steps ago is still 55%% its init)")
    parser.add_argument("--eval-every", type=nonnegative_int, default=250,
                        help="steps between points of the FD curve (0: only at the end of each stage)")
    args = parser.parse_args(argv)
    if args.data != FASHION and not os.path.isdir(args.data):
        parser.error(f"--data {args.data!r}: expected {FASHION} or a folder of pictures")
    if args.data == FASHION and args.channels not in (None, 1):
        parser.error(f"--channels {args.channels}: {FASHION} has 1 channel")
    args.channels = args.channels or (1 if args.data == FASHION else 3)
    stages = progan.num_stages(args.resolution)
    args.steps = args.steps or (2 * stages - 1) * args.phase_steps
    if args.batch_size % progan.GROUP_SIZE and args.batch_size > progan.GROUP_SIZE:
        parser.error(f"--batch-size {args.batch_size}: the minibatch stddev takes groups of "
                     f"{progan.GROUP_SIZE}, so the batch must be a multiple of {progan.GROUP_SIZE}")

    def schedule(step):
        return progan.schedule(step, args.phase_steps, stages)

    mg.manual_seed(args.seed)
    data_rng = np.random.default_rng(args.seed)
    images = load(args, "train")
    check_batch_size(parser, args.batch_size, len(images), args.data)

    sizes = dict(fmap_base=args.fmap_base, fmap_max=args.fmap_max)
    generator = progan.Generator(args.latent_dim, args.channels, args.resolution, **sizes).to(args.device)
    discriminator = progan.Discriminator(args.channels, args.resolution, **sizes).to(args.device)
    g_ema = progan.Generator(args.latent_dim, args.channels, args.resolution, **sizes).to(args.device)
    g_ema.load_state_dict(generator.state_dict())
    adam = {**progan.ADAM, "lr": args.lr}
    opt_g, opt_d = optim.Adam(generator.parameters(), **adam), optim.Adam(discriminator.parameters(), **adam)

    if args.data == FASHION:  # before the resume: building the classifier draws from minigan's generator
        classifier = load_classifier(FASHION)
        test = load(args, "test")
        real_stats = feature_statistics(classifier.embed(test))

    name = FASHION if args.data == FASHION else os.path.basename(os.path.normpath(args.data))
    settings = RunSettings.from_args(args)
    settings.data = name
    run = Experiment("progan", settings, {"generator": generator, "discriminator": discriminator,
                                          "generator_ema": g_ema},
                     {"generator": opt_g, "discriminator": opt_d}, rngs={"data": data_rng})
    run.maybe_resume()
    ema = optim.EMA(g_ema, args.ema_decay)  # averages `generator` into g_ema (after a resume: from the saved one)

    # the figures' data, kept in files as the run makes it (a resume drops what lies past its checkpoint)
    fixed = np.random.default_rng(args.seed + 1).standard_normal((FD_SAMPLES, args.latent_dim)).astype(np.float32)
    growing_path, curve_path = os.path.join(run.out, "growing.npz"), os.path.join(run.out, "fd_curve.json")
    growing, curve = {}, []
    if run.step and os.path.exists(growing_path):
        with np.load(growing_path) as stored:
            growing = {k: v for k, v in stored.items() if int(k) <= 4 * 2 ** schedule(run.step - 1)[0]}
    if run.step and os.path.exists(curve_path):
        with open(curve_path) as f:
            curve = [p for p in json.load(f) if p["step"] <= run.step]

    def generate(z, stage, alpha):
        """EMA samples (NumPy, clipped to [-1, 1]) at the stage's resolution."""
        with mg.no_grad():
            return np.concatenate([np.clip(g_ema(mg.tensor(z[i:i + 500], device=args.device), stage, alpha).numpy(),
                                           -1, 1) for i in range(0, len(z), 500)]).astype(np.float32)

    for step in run.steps(args.steps, desc=f"progan/{name}"):
        stage, alpha = schedule(step)
        if step > 0 and schedule(step - 1)[0] != stage:
            progan.reset_optimizer(opt_g)  # a new resolution: Adam starts afresh (the paper)
            progan.reset_optimizer(opt_d)
        real = mg.tensor(images[data_rng.choice(len(images), args.batch_size, replace=False)], device=args.device)
        run.log(progan.train_step(generator, discriminator, opt_g, opt_d, real, stage, alpha, ema))
        ema.copy_to()

        done = step + 1
        stage_ends = done == args.steps or schedule(done)[0] != stage
        if stage_ends:
            growing[f"{4 * 2 ** stage}"] = generate(fixed[:8], stage, alpha)
            save_npz(growing_path, **growing)
        if args.data == FASHION and (stage_ends or (args.eval_every and done % args.eval_every == 0)):
            samples = upsample(generate(fixed[:FD_SAMPLES], stage, alpha), args.resolution)
            fd = frechet_distance(*real_stats, *feature_statistics(classifier.embed(samples)))
            curve.append({"step": done, "resolution": 4 * 2 ** stage, "alpha": round(alpha, 4), "fd": fd,
                          "wall_time_s": round(run.elapsed(), 1)})
            atomic_write(curve_path, json.dumps(curve, indent=1).encode())

    stage, alpha = schedule(args.steps - 1)
    z = progan.sample_latent(args.num_samples, args.latent_dim).numpy()
    samples = upsample(generate(z, stage, alpha), args.resolution)
    save_image(samples[:64], os.path.join(run.out, "samples.png"), nrow=8)
    rows = [upsample(growing[k], args.resolution) for k in sorted(growing, key=int)]
    save_image(np.concatenate(rows), os.path.join(run.out, "growing.png"), nrow=8)
    save_npz(os.path.join(run.out, "samples.npz"), x=samples)
    metrics = {"data": args.data, "resolution": args.resolution, "final_stage_resolution": 4 * 2 ** stage,
               "alpha": alpha, "phase_steps": args.phase_steps, "batch_size": args.batch_size, **sizes}
    if args.data == FASHION:
        metrics.update(score_samples(classifier, samples, real=test))
        metrics["fd_curve"] = curve
        starts = [((2 * k - 1) * args.phase_steps, 4 * 2 ** k) for k in range(1, stages)
                  if (2 * k - 1) * args.phase_steps < args.steps]
        save_fd_curve(curve, starts, os.path.join(run.out, "fd_curve.png"))
    metrics = run.finish(metrics)
    print({k: v for k, v in metrics.items() if k in ("steps", "wall_time_s", "classes_hit", "class_entropy",
                                                      "classifier_fd")})
    return metrics


if __name__ == "__main__":
    main()
