"""Train BigGAN (Brock, Donahue & Simonyan 2019), scaled down: class-conditional, spectral norm, hinge loss.

    python examples/biggan.py                          # Fashion-MNIST at 32x32, 10 classes, CPU
    python examples/biggan.py --setting biggan         # the paper's 2 D steps, G 5e-5 / D 2e-4 (times --lr-scale)
    python examples/biggan.py --lr-scale 1             # SA-GAN's published rates, G 1e-4 / D 4e-4
    python examples/biggan.py --data DIR --resolution 64 --device cuda   # DIR/<class>/*.png, one subfolder per class

Writes samples.png (row k: class k; column j: the same z for every class),
truncation.png (the truncation trade-off, below), losses.png, metrics.json,
checkpoint.safetensors and samples.npz (x: --num-samples images, an equal number
per class, untruncated z; y: their classes) into --out; --resume continues from
the checkpoint there.

Samples come from the exponential moving average of G's weights (decay
--ema-decay, from step --ema-start on; before it the average just copies G), with
batch norm's statistics recomputed for the averaged weights ("standing
statistics", as the paper's code). metrics.json holds the project classifier's
conditional accuracy (the share of samples drawn for class y it labels y), class
coverage and the classifier-feature Fréchet distance (FD) to the test split, for
the averaged G and (under "no_ema") for the trained G itself.

The truncation trade-off (truncation.png, metrics.json's "truncation"): for each
--truncation psi, z is drawn from N(0, I) truncated to |z_i| <= psi, and the
samples are scored. Smaller psi moves the samples to the modes: fidelity
(conditional accuracy) should rise while variety (FD, the distance between two
samples of one class) gets worse. The figure plots accuracy against FD and against
the within-class distance, one point per psi, above one row of samples per psi.

Learning rates: the default is SA-GAN's setting (G 1e-4, D 4e-4, one D step per G
step), which the paper lists next to its own (G 5e-5, D 2e-4, two D steps):
``--setting biggan``. A step of the paper's setting costs about 1.5 times the CPU
time of SA-GAN's (two D steps), and its halved learning rates move G half as far
per step, so a run of minutes uses SA-GAN's. --lr-scale multiplies both rates of
the setting; its default, 4 (G 4e-4, D 1.6e-3), keeps the paper's ratio of 1 to 4
between G and D: at the published rates 2000 steps of batch 32 (one epoch) end with
G still learning to read the class (conditional accuracy 56% against 86.5% with x4;
docs/biggan.md has the table of variants, benchmarks/biggan_accuracy.py runs it).

metrics.json also holds the accuracy per class and its ceiling: the classifier's
accuracy on the real test images, overall (real_accuracy) and per class
(real_accuracy_per_class); the classifier itself mistakes many shirts for tops,
pullovers and coats, so a generated class is best read against its real one.

--data DIR: BigGAN needs labels, so DIR must hold one subfolder of pictures per
class (two or more; the subfolders' sorted names are the classes 0, 1, ...), each
read with ``minigan.data.load_image_folder`` (colour, resized and center-cropped to
--resolution). The project's classifier knows only Fashion-MNIST, so such a run
writes no accuracy or FD, and truncation.png shows the sample rows only.
"""
import os
import time

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import minigan as mg
from minigan import optim
from minigan.data import load_fashion_mnist, load_image_folder
from minigan.data.image_folder import image_files
from minigan.eval import (class_coverage, conditional_accuracy, feature_statistics, frechet_distance, load_classifier,
                          within_class_distance)
from minigan.models import biggan
from minigan.utils import atomic_save, make_grid, save_image, save_npz
from minigan.utils.experiment import (Experiment, RunSettings, check_batch_size, example_parser,
                                      nonnegative_float, nonnegative_int, positive_float, positive_int, unit_float)

TRUNCATION = (2.0, 1.5, 1.0, 0.75, 0.5, 0.25)
SCORES = ("accuracy", "accuracy_per_class", "classes_hit", "class_entropy", "classifier_fd", "within_class_distance")


def load_class_folders(folder, resolution):
    """DIR/<class>/... -> images (N, 3, R, R) in [-1, 1], labels (N,), class names."""
    image_files(folder)  # a clear error for a missing folder or one without pictures
    names = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    classes = []
    for name in names:
        try:
            classes.append((name, load_image_folder(os.path.join(folder, name), resolution, channels=3)))
        except FileNotFoundError:
            continue  # a subfolder without pictures is no class
    if len(classes) < 2:
        raise SystemExit(f"--data {folder!r}: BigGAN is class-conditional and takes the classes from "
                         f"subfolders: expected two or more subfolders with pictures, found "
                         f"{[name for name, _ in classes] or 'none'}")
    images = np.concatenate([x for _, x in classes])
    labels = np.concatenate([np.full(len(x), k, dtype=np.int64) for k, (_, x) in enumerate(classes)])
    return images, labels, [name for name, _ in classes]


def generate(generator, z, y, device):
    with mg.no_grad():
        return np.concatenate([generator(mg.tensor(z[i:i + 500], device=device),
                                         mg.tensor(y[i:i + 500], device=device)).numpy()
                               for i in range(0, len(z), 500)]).astype(np.float32)


def scores(classifier, samples, y, real_statistics):
    """Conditional accuracy, class coverage and FD (where a classifier knows the data), and the
    within-class distance."""
    found = {"within_class_distance": within_class_distance(samples, y)}
    if classifier is not None:
        n_classes = classifier.config["n_classes"]
        predicted = classifier.predict(samples)
        found.update(conditional_accuracy(predicted, y, n_classes), **class_coverage(predicted, n_classes))
        found["classifier_fd"] = frechet_distance(*real_statistics, *feature_statistics(classifier.embed(samples)))
    return {k: found[k] for k in SCORES if k in found}


def save_truncation_figure(path, sweep, rows, n_classes):
    """The trade-off curves (when the classifier scored the samples; each point labelled with psi and
    the classes hit) above one row of samples per psi."""
    scored = "accuracy" in sweep[0]
    figure = Figure(figsize=(8, 8.5 if scored else 5))
    FigureCanvasAgg(figure)
    grid = make_grid(rows, nrow=n_classes, padding=1, value_range=(-1, 1), normalize=True)  # (C, H, W) in [0, 1]
    if scored:
        acc = [100 * s["accuracy"] for s in sweep]
        for i, (key, label) in enumerate((("classifier_fd", "classifier-feature FD to the test split (lower: closer)"),
                                          ("within_class_distance", "mean distance of two samples of a class"))):
            axes = figure.add_subplot(2, 2, i + 1)
            x = [s[key] for s in sweep]
            axes.plot(x, acc, "o-")
            for xi, ai, s in zip(x, acc, sweep):  # each point: psi and the classes the samples hit
                axes.annotate(f"ψ={s['psi']:g} ({s['classes_hit']}/{n_classes})", (xi, ai),
                              textcoords="offset points", xytext=(4, 4), fontsize=7)
            axes.set_xlabel(label, fontsize=8)
            axes.set_ylabel("conditional accuracy (%)")
            axes.grid(alpha=0.3)
        axes = figure.add_subplot(2, 1, 2)
    else:
        axes = figure.add_subplot()
    axes.imshow(grid.transpose(1, 2, 0).squeeze(), cmap="gray", vmin=0, vmax=1)
    step = grid.shape[1] / len(sweep)
    axes.set_yticks([step * (i + 0.5) for i in range(len(sweep))], [f"ψ={s['psi']:g}" for s in sweep])
    axes.set_xticks([])
    axes.set_title("one row per truncation ψ, one column per class", fontsize=9)
    figure.tight_layout()
    atomic_save(path, lambda f: figure.savefig(f, format="png", dpi=72, bbox_inches="tight"))


def main(argv=None):
    cpu_start = time.process_time()
    mg.backend.tune_cpu()  # faster CPU steps: keep freed memory, idle BLAS threads sleep
    parser = example_parser(__doc__.splitlines()[0], steps=2000, batch_size=32)
    parser.add_argument("--data", default="fashion-mnist", metavar="fashion-mnist|DIR",
                        help="Fashion-MNIST, or a folder with one subfolder of pictures per class")
    parser.add_argument("--resolution", type=int, choices=biggan.IMAGE_SIZES, default=32)
    parser.add_argument("--setting", choices=["sagan", "biggan"], default="sagan",
                        help="sagan: G 1e-4, D 4e-4, 1 D step; biggan: G 5e-5, D 2e-4, 2 D steps (both times --lr-scale)")
    parser.add_argument("--lr-scale", type=positive_float, default=4.0,
                        help="multiplies both learning rates of the setting (default 4: G 4e-4, D 1.6e-3 with sagan)")
    parser.add_argument("--width", type=positive_int, default=16, help="channels of every block (the paper: 256)")
    parser.add_argument("--latent-dim", type=positive_int, default=64, help="z, split into one chunk per block + 1")
    parser.add_argument("--shared-dim", type=positive_int, default=32, help="the shared class embedding")
    parser.add_argument("--ortho-beta", type=nonnegative_float, default=0.0,
                        help="orthogonal regularization of G (the paper: 1e-4)")
    parser.add_argument("--ema-decay", type=unit_float, default=0.995, help="the paper: 0.9999")
    parser.add_argument("--ema-start", type=nonnegative_int, default=1000,
                        help="the EMA copies G before this step (the paper: 20000)")
    parser.add_argument("--truncation", type=positive_float, nargs="+", default=list(TRUNCATION),
                        help="the psi of the truncation sweep")
    args = parser.parse_args(argv)
    fashion = args.data == "fashion-mnist"
    if fashion and args.resolution != 32:
        parser.error("--resolution: Fashion-MNIST runs at 32x32 (the project classifier's input, resized)")
    args.out = args.out or os.path.join("runs", "biggan-" + (args.data if fashion else
                                                             os.path.basename(os.path.normpath(args.data))))

    mg.manual_seed(args.seed)
    data_rng = np.random.default_rng(args.seed)
    if fashion:
        images, labels = load_fashion_mnist("train", size=32)
        n_classes, classifier = 10, load_classifier("fashion-mnist")
        # the test split at 32x32, resized to the classifier's 28x28 as the samples are
        test_images, test_labels = load_fashion_mnist("test", size=32)
        real_statistics = feature_statistics(classifier.embed(test_images))
        # the ceiling of conditional accuracy: how often the classifier names the class of a real test image
        ceiling = conditional_accuracy(classifier.predict(test_images), test_labels, n_classes)
    else:
        images, labels, _ = load_class_folders(args.data, args.resolution)
        real_statistics, n_classes, classifier, ceiling = None, int(labels.max()) + 1, None, None
    check_batch_size(parser, args.batch_size, len(images), args.data)
    d_steps = biggan.D_STEPS_SAGAN if args.setting == "sagan" else biggan.D_STEPS_BIGGAN
    lr = {net: rate * args.lr_scale
          for net, rate in (biggan.LR_SAGAN if args.setting == "sagan" else biggan.LR_BIGGAN).items()}

    shape = dict(latent_dim=args.latent_dim, n_classes=n_classes, channels=images.shape[1],
                 image_size=args.resolution, width=args.width, shared_dim=args.shared_dim)
    try:
        generator = biggan.Generator(**shape).to(args.device)
    except ValueError as error:
        parser.error(str(error))
    discriminator = biggan.Discriminator(n_classes, images.shape[1], args.resolution, args.width).to(args.device)
    opt_g = optim.Adam(generator.parameters(), lr=lr["generator"], betas=biggan.BETAS)
    opt_d = optim.Adam(discriminator.parameters(), lr=lr["discriminator"], betas=biggan.BETAS)
    ema = optim.EMA(generator, args.ema_decay)

    run = Experiment("biggan", RunSettings.from_args(args),
                     {"generator": generator, "discriminator": discriminator, "generator_ema": ema},
                     {"generator": opt_g, "discriminator": opt_d}, rngs={"data": data_rng})
    run.maybe_resume()

    for step in run.steps(args.steps, desc=f"biggan/{os.path.basename(args.out)}"):
        batches = []
        for _ in range(d_steps):
            idx = data_rng.choice(len(images), args.batch_size, replace=False)
            batches.append((mg.tensor(images[idx], device=args.device), mg.tensor(labels[idx], device=args.device)))
        run.log(biggan.train_step(generator, discriminator, opt_g, opt_d, batches, args.ortho_beta))
        ema.decay = args.ema_decay if step >= args.ema_start else 0.0
        ema.update()

    # samples: an equal number per class, from G's averaged weights and from G itself
    g_ema = biggan.Generator(**shape).to(args.device)
    biggan.standing_statistics(ema.copy_to(g_ema), batch_size=args.batch_size)
    generator.eval()
    n = -(-args.num_samples // n_classes) * n_classes
    y = np.repeat(np.arange(n_classes), n // n_classes)
    z = biggan.sample_latent(n, args.latent_dim).numpy()
    samples = generate(g_ema, z, y, args.device)
    metrics = {**scores(classifier, samples, y, real_statistics),
               "no_ema": scores(classifier, generate(generator, z, y, args.device), y, real_statistics)}

    sweep, rows = [], []
    for psi in args.truncation:
        z = biggan.truncated_latent(n, args.latent_dim, psi).numpy()
        found = generate(g_ema, z, y, args.device)
        sweep.append({"psi": psi, **scores(classifier, found, y, real_statistics)})
        rows.append(found[np.arange(n_classes) * (n // n_classes)])  # the first sample of each class
    metrics["truncation"] = sweep
    if ceiling is not None:
        metrics.update(real_accuracy=ceiling["accuracy"], real_accuracy_per_class=ceiling["accuracy_per_class"])
    save_truncation_figure(os.path.join(run.out, "truncation.png"), sweep, np.concatenate(rows), n_classes)

    # the picture: row k holds class k, column j the same z_j for every row
    z = np.tile(biggan.sample_latent(n_classes, args.latent_dim).numpy(), (n_classes, 1))
    grid = generate(g_ema, z, np.repeat(np.arange(n_classes), n_classes), args.device)
    save_image(grid, os.path.join(run.out, "samples.png"), nrow=n_classes)
    save_npz(os.path.join(run.out, "samples.npz"), x=samples, y=y)
    metrics = run.finish({"data": args.data, "setting": args.setting, "d_steps": d_steps, "lr": lr,
                          "cpu_time_s": round(time.process_time() - cpu_start, 1),
                          "width": args.width, "batch_size": args.batch_size, "ortho_beta": args.ortho_beta,
                          **metrics})
    print({k: v for k, v in metrics.items() if k in ("steps", "wall_time_s", "cpu_time_s", *SCORES)})
    return metrics


if __name__ == "__main__":
    main()
