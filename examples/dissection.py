"""GAN dissection (Bau et al. 2019) of a DCGAN on rendered scenes: find a concept's units, ablate them, insert them.

    python examples/dissection.py                        # trees; CPU, minutes
    python examples/dissection.py --concept roof         # any of sky, cloud, grass, tree, wall, roof
    python examples/dissection.py --resume               # dissect again from the trained networks in --out

The data (``minigan.data.scenes``): 32x32 colour scenes drawn by a small renderer, sky,
clouds, grass, trees, houses (wall and roof), with the concept of every pixel known.

Training (one loop, --steps iterations): a segmenter (``dissection.Segmenter``) learns
the renderer's label maps in the first --seg-steps iterations; the DCGAN (``dcgan.py``'s
G and D, the paper's DCGAN recipe) trains on the scenes in every iteration. The
segmenter, not the renderer, labels G's images afterwards, as in the paper.

Dissection of G's --layer (2: the 8x8 ReLU output), on --dissect-samples images G(z):
every unit's activation map upsampled to 32x32, thresholded at its --quantile over all
samples, its IoU with each concept. Then, on fresh samples:

  ablation   the share of --concept's pixels removed by zeroing its top k units, for k in
             1, 2, 4, ..., --units, against zeroing k units drawn at random (mean of
             --random-sets draws); and for every concept its top --units units;
  insertion  the concept's top k units forced to their mean activation on the concept,
             inside a --patch x --patch patch of the layer's grid (every position of a
             grid of patches), each patch grouped by its context, the concept most of it
             showed before: the share of the patch segmented as the concept before and
             after. The paper's claim: the effect depends on the context.

metrics.json: the segmenter's pixel accuracy on held-out rendered scenes, the concepts'
shares in real and generated images, the top units per concept with their IoU, the
number of detector units per concept (best IoU above NetDissect's 0.04), and the
ablation and insertion numbers above. Figures: samples.png (G's scenes), segmentation.png,
units.png (the top units per concept over samples), ablation.png, insertion.png,
losses.png; samples.npz holds ``x`` (G's scenes in [-1, 1]) and ``segmentation`` (their
labels by the segmenter); checkpoint.safetensors holds G, D and the segmenter.

Defaults (the paper: a ProGAN at 256x256, a segmenter trained on ADE20K): G and D of
width 32 (64 units at 8x8), batch 64, 2000 iterations: about 7 minutes of CPU time in all, 5 of
them training (docs/dissection.md).
"""
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import minigan as mg
from minigan import optim
from minigan.data.scenes import SCENE_CONCEPTS, render_scenes
from minigan.models import dissection as ds
from minigan.utils import atomic_save, make_grid, save_image, save_npz
from minigan.utils.experiment import Experiment, RunSettings, example_parser, positive_float, positive_int

IMAGE_SIZE = 32
PALETTE = np.array([[0.35, 0.55, 0.95], [1.0, 1.0, 1.0], [0.45, 0.8, 0.3], [0.05, 0.35, 0.05],
                    [0.9, 0.8, 0.5], [0.7, 0.1, 0.1]])  # a colour per concept, for label maps


def layer_grid(layer):
    """The side of G's layer ``layer`` at 32x32: 4, 8, 16 (each transposed conv doubles it)."""
    return 2 ** (layer + 1)


def quantile(text):
    value = float(text)
    if not 0 < value < 1:
        raise ValueError(text)
    return value


def colour_labels(labels):
    """Label maps (N, H, W) as images (N, 3, H, W) in [-1, 1], one colour per concept."""
    return (PALETTE[labels].transpose(0, 3, 1, 2) * 2 - 1).astype(np.float32)


def save_rows(rows, names, path):
    """Rows of images (each a list of (C, H, W) in [-1, 1]) as one grid, each row named at its left."""
    n_cols, side = len(rows[0]), rows[0][0].shape[-1]
    grid = make_grid(np.stack([image for row in rows for image in row]), nrow=n_cols, pad_value=1.0,
                     value_range=(-1, 1), normalize=True)
    grid = np.asarray(grid).transpose(1, 2, 0)
    figure = Figure(figsize=(2.2 + grid.shape[1] / 40, grid.shape[0] / 40))
    FigureCanvasAgg(figure)
    axes = figure.add_axes([2.2 / (2.2 + grid.shape[1] / 40), 0, 1 - 2.2 / (2.2 + grid.shape[1] / 40), 1])
    axes.imshow(grid, interpolation="nearest")
    axes.set_axis_off()
    for i, name in enumerate(names):
        axes.text(-4, 2 + (side + 2) * (i + 0.5), name, ha="right", va="center", fontsize=7)
    atomic_save(path, lambda f: figure.savefig(f, format="png", dpi=60))


def highlight(image, on):
    """The paper's unit picture: the image where the unit is on, dimmed elsewhere."""
    return np.where(on[None], image, (image + 1) * 0.25 - 1)


def segmenter_metrics(segmenter, device, seed, n):
    """Pixel accuracy and per-concept IoU of the segmenter on held-out rendered scenes."""
    images, labels = render_scenes(n, seed=[seed, 1], size=IMAGE_SIZE)
    predicted = ds.segment(segmenter, images, device)
    iou = {name: float(((predicted == c) & (labels == c)).sum() / max(((predicted == c) | (labels == c)).sum(), 1))
           for c, name in enumerate(SCENE_CONCEPTS)}
    return {"segmenter_pixel_accuracy": float((predicted == labels).mean()), "segmenter_iou": iou}, \
        (images[:8], labels[:8], predicted[:8])


def ablation_numbers(G, segmenter, z, args, result, concept, rng):
    """The concept's share removed by its top k units and by k random units, k = 1, 2, 4, ..., --units."""
    units = result["threshold"].shape[0]
    out = {}
    k = 1
    while True:
        k = min(k, args.units)
        top = ds.ablation_effect(G, segmenter, z, args.layer, ds.top_units(result["iou"], concept, k), concept,
                                 args.device)
        random = [ds.ablation_effect(G, segmenter, z, args.layer, rng.choice(units, k, replace=False), concept,
                                     args.device)["removed"] for _ in range(args.random_sets)]
        out[str(k)] = {"top_units_removed": top["removed"], "random_units_removed": float(np.mean(random)),
                       "random_units_removed_max": float(np.max(random)), "pixels_before": top["pixels_before"]}
        if k == args.units:
            return out
        k *= 2


def insertion_numbers(G, segmenter, z, args, result, concept):
    """Per k: the concept's share of a patch before and after insertion, by the patch's context."""
    grid = layer_grid(args.layer)
    starts = range(0, grid - args.patch + 1, args.patch)
    out, k = {}, 1
    while True:
        k = min(k, args.units)
        units = ds.top_units(result["iou"], concept, k)
        values = result["mean_on"][units, concept]
        effects = [ds.insertion_effect(G, segmenter, z, args.layer, units, values, concept,
                                       (slice(r, r + args.patch), slice(c, c + args.patch)), args.device)
                   for r in starts for c in starts]
        context = np.concatenate([e["context"] for e in effects])
        before = np.concatenate([e["before"] for e in effects])
        after = np.concatenate([e["after"] for e in effects])
        out[str(k)] = {SCENE_CONCEPTS[c]: {"patches": int((context == c).sum()),
                                           "before": float(before[context == c].mean()),
                                           "after": float(after[context == c].mean())}
                       for c in range(len(SCENE_CONCEPTS)) if (context == c).sum() >= 10}
        if k == args.units:
            return out
        k *= 2


def figures(G, segmenter, args, result, concept, samples, activations, seg_examples):
    """samples.png, segmentation.png, units.png (``activations``: the layer's, of the dissected
    ``samples``), ablation.png and insertion.png into --out."""
    out, layer = args.out_dir, args.layer
    save_image(samples[:64], os.path.join(out, "samples.png"), nrow=8)
    # segmentation.png: rendered scenes, their labels, the segmenter's; G's scenes and the segmenter's labels
    images, labels, predicted = seg_examples
    generated = samples[:8]
    save_image(np.concatenate([images, colour_labels(labels), colour_labels(predicted), generated,
                               colour_labels(ds.segment(segmenter, generated, args.device))]),
               os.path.join(out, "segmentation.png"), nrow=8, pad_value=1.0)

    # units.png: each concept's top units, on the dissected samples where they are on the most (the paper's
    # figures show a unit's top-activating images), the image dimmed where the unit is below t_u
    rows, names = [], []
    for c, name in enumerate(SCENE_CONCEPTS):
        for u in ds.top_units(result["iou"], c, 2):
            on = ds.upsample(activations[:, u:u + 1], IMAGE_SIZE)[:, 0] > result["threshold"][u]
            rows.append([highlight(samples[i], on[i]) for i in np.argsort(-on.sum((1, 2)), kind="stable")[:6]])
            names.append(f"{name}: unit {u}, IoU {result['iou'][u, c]:.2f}")
    save_rows(rows, names, os.path.join(out, "units.png"))

    # ablation.png: samples, the concept's top units ablated, as many random units ablated
    rng = np.random.default_rng([args.seed, 3])
    z = rng.standard_normal((8, G.latent_dim)).astype(np.float32)
    before, _ = ds.generate(G, z, layer, args.device)
    with ds.intervene(G, layer, ds.top_units(result["iou"], concept, args.units)):
        ablated, _ = ds.generate(G, z, layer, args.device)
    random_units = np.random.default_rng(args.seed).choice(result["iou"].shape[0], args.units, replace=False)
    with ds.intervene(G, layer, random_units):
        random, _ = ds.generate(G, z, layer, args.device)
    name, k = SCENE_CONCEPTS[concept], args.units
    save_rows([list(before), list(ablated), list(random)],
              ["G(z)", f"top {k} {name} units ablated", f"{k} random units ablated"], os.path.join(out, "ablation.png"))

    # insertion.png: a patch low on the left (mostly grass) and one high on the right (mostly sky), with
    # a quarter of the units and with all --units of them
    grid = layer_grid(layer)
    low = (slice(grid - args.patch, grid), slice(0, args.patch))
    high = (slice(0, args.patch), slice(grid - args.patch, grid))
    rows, names = [list(before)], ["G(z)"]
    for k in sorted({max(1, args.units // 4), args.units}):
        units = ds.top_units(result["iou"], concept, k)
        for patch, where in ((low, "low left"), (high, "high right")):
            with ds.intervene(G, layer, units, result["mean_on"][units, concept], patch):
                rows.append(list(ds.generate(G, z, layer, args.device)[0]))
            names.append(f"{k} {name} units inserted, {where}")
    save_rows(rows, names, os.path.join(out, "insertion.png"))


def main(argv=None):
    mg.backend.tune_cpu()  # faster CPU steps: keep freed memory, idle BLAS threads sleep
    parser = example_parser(__doc__.splitlines()[0], steps=2000, batch_size=64, lr=2e-4)
    parser.add_argument("--width", type=positive_int, default=32, help="G's and D's width (DCGAN's w)")
    parser.add_argument("--latent-dim", type=positive_int, default=100)
    parser.add_argument("--train-scenes", type=positive_int, default=20000, help="rendered training scenes")
    parser.add_argument("--test-scenes", type=positive_int, default=1000,
                        help="held-out rendered scenes the segmenter is scored on")
    parser.add_argument("--seg-steps", type=positive_int, default=400, help="segmenter iterations (the first ones)")
    parser.add_argument("--seg-width", type=positive_int, default=16)
    parser.add_argument("--seg-batch-size", type=positive_int, default=32)
    parser.add_argument("--seg-lr", type=positive_float, default=3e-3)
    parser.add_argument("--layer", type=positive_int, default=2, help="G's ReLU dissected: 1 (4x4), 2 (8x8), 3 (16x16)")
    parser.add_argument("--concept", choices=SCENE_CONCEPTS, default="tree", help="the concept ablated and inserted")
    parser.add_argument("--units", type=positive_int, default=8, help="the most units ablated / inserted")
    parser.add_argument("--quantile", type=quantile, default=ds.QUANTILE, help="t_u's quantile, in (0, 1)")
    parser.add_argument("--dissect-samples", type=positive_int, default=1000, help="samples G(z) dissected")
    parser.add_argument("--eval-samples", type=positive_int, default=500, help="samples ablated")
    parser.add_argument("--insert-samples", type=positive_int, default=200, help="samples per insertion patch")
    parser.add_argument("--patch", type=positive_int, default=2, help="insertion patch side, in the layer's cells")
    parser.add_argument("--random-sets", type=positive_int, default=10, help="random unit sets ablated")
    args = parser.parse_args(argv)
    args.data = "scenes"
    if args.layer > 3:
        parser.error(f"--layer {args.layer}: G has 3 ReLU layers at {IMAGE_SIZE}x{IMAGE_SIZE} "
                     "(1: 4x4, 2: 8x8, 3: 16x16)")
    grid = layer_grid(args.layer)
    if args.patch > grid:
        parser.error(f"--patch {args.patch} is larger than layer {args.layer}'s {grid}x{grid} grid")
    if args.units > args.width * 2 ** (3 - args.layer):
        parser.error(f"--units {args.units}: layer {args.layer} has only {args.width * 2 ** (3 - args.layer)} units")
    if args.seg_steps > args.steps:
        parser.error(f"--seg-steps {args.seg_steps} is more than --steps {args.steps} (one loop trains both)")
    for flag, size in (("--batch-size", args.batch_size), ("--seg-batch-size", args.seg_batch_size)):
        if size > args.train_scenes:  # batches are drawn without replacement
            parser.error(f"{flag} {size} is larger than --train-scenes {args.train_scenes}")

    mg.manual_seed(args.seed)
    data_rng = np.random.default_rng(args.seed)
    scenes, labels = render_scenes(args.train_scenes, seed=[args.seed, 0], size=IMAGE_SIZE)
    G = ds.Generator(args.latent_dim, 3, IMAGE_SIZE, args.width).to(args.device)
    D = ds.Discriminator(3, IMAGE_SIZE, args.width).to(args.device)
    segmenter = ds.Segmenter(len(SCENE_CONCEPTS), 3, args.seg_width).to(args.device)
    adam = dict(lr=args.lr, betas=(0.5, 0.999))  # DCGAN's
    opt_g, opt_d = optim.Adam(G.parameters(), **adam), optim.Adam(D.parameters(), **adam)
    opt_s = optim.Adam(segmenter.parameters(), lr=args.seg_lr)
    run = Experiment("dissection", RunSettings.from_args(args), {"G": G, "D": D, "segmenter": segmenter},
                     {"G": opt_g, "D": opt_d, "segmenter": opt_s}, rngs={"data": data_rng})
    run.maybe_resume()
    args.out_dir = run.out

    for step in run.steps(args.steps, desc="dissection/scenes"):
        losses = {}
        if step < args.seg_steps:
            idx = data_rng.choice(len(scenes), args.seg_batch_size, replace=False)
            losses.update(ds.segmenter_step(segmenter, opt_s, mg.tensor(scenes[idx], device=args.device),
                                            mg.tensor(labels[idx], device=args.device)))
        idx = data_rng.choice(len(scenes), args.batch_size, replace=False)
        losses.update(ds.gan_step(G, D, opt_g, opt_d, mg.tensor(scenes[idx], device=args.device)))
        run.log(losses)

    # dissection: fresh random numbers of their own, so a resumed run dissects the same samples
    rng = np.random.default_rng([args.seed, 2])
    latent = lambda n: rng.standard_normal((n, args.latent_dim)).astype(np.float32)  # noqa: E731
    concept = SCENE_CONCEPTS.index(args.concept)
    metrics, seg_examples = segmenter_metrics(segmenter, args.device, args.seed, args.test_scenes)
    samples, r = ds.generate(G, latent(max(args.dissect_samples, args.num_samples)), args.layer, args.device)
    seg = ds.segment(segmenter, samples, args.device)
    n = args.dissect_samples
    result = ds.dissect(r[:n], seg[:n], len(SCENE_CONCEPTS), args.quantile)
    best = result["iou"].argmax(1)
    detectors = (result["iou"].max(1) > ds.IOU_DETECTOR)
    metrics.update({
        "concepts": list(SCENE_CONCEPTS), "layer": args.layer, "units": int(r.shape[1]),
        "layer_shape": list(r.shape[1:]), "quantile": args.quantile, "dissect_samples": n,
        "concept_share_real": dict(zip(SCENE_CONCEPTS, np.bincount(labels.ravel(), minlength=6) / labels.size)),
        "concept_share_generated": dict(zip(SCENE_CONCEPTS, np.bincount(seg[:n].ravel(), minlength=6) / seg[:n].size)),
        "top_units": {name: [{"unit": int(u), "iou": float(result["iou"][u, c])}
                             for u in ds.top_units(result["iou"], c, args.units)]
                      for c, name in enumerate(SCENE_CONCEPTS)},
        "detector_units": {name: int((detectors & (best == c)).sum()) for c, name in enumerate(SCENE_CONCEPTS)},
    })
    z = latent(args.eval_samples)
    metrics["ablation"] = ablation_numbers(G, segmenter, z, args, result, concept, rng)
    metrics["ablation_per_concept"] = {
        name: {"top_units_removed": ds.ablation_effect(G, segmenter, z, args.layer,
                                                       ds.top_units(result["iou"], c, args.units), c,
                                                       args.device)["removed"],
               "random_units_removed": float(np.mean([
                   ds.ablation_effect(G, segmenter, z, args.layer, rng.choice(r.shape[1], args.units, replace=False),
                                      c, args.device)["removed"] for _ in range(3)]))}
        for c, name in enumerate(SCENE_CONCEPTS)}
    metrics["insertion"] = insertion_numbers(G, segmenter, latent(args.insert_samples), args, result, concept)

    figures(G, segmenter, args, result, concept, samples[:n], r[:n], seg_examples)
    save_npz(os.path.join(run.out, "samples.npz"), x=samples[:args.num_samples],
             segmentation=seg[:args.num_samples])
    metrics = run.finish({"image_size": IMAGE_SIZE, "width": args.width, "batch_size": args.batch_size,
                          "seg_steps": args.seg_steps, "seg_width": args.seg_width, "concept": args.concept,
                          "train_scenes": args.train_scenes, **metrics})
    k = str(args.units)
    print({"steps": metrics["steps"], "wall_time_s": metrics["wall_time_s"],
           "segmenter_pixel_accuracy": round(metrics["segmenter_pixel_accuracy"], 4),
           "top_units": [u["unit"] for u in metrics["top_units"][args.concept]],
           "ablation": metrics["ablation"][k], "insertion": metrics["insertion"][k]})
    return metrics


if __name__ == "__main__":
    main()
