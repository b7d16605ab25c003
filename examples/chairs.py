"""Learning to generate chairs (Dosovitskiy et al. 2015): an up-convolutional network from (object, view) to image.

    python examples/chairs.py                              # 12 chairs, tables and lamps at 32x32; CPU, minutes
    python examples/chairs.py --augment 4                  # + the transformation stream: zoom, shift, brightness
    python examples/chairs.py --device cuda --image-size 64 --width 512 --conv-width 256 --steps 50000

The data (``minigan.data.shapes3d``, rendered offline by a small NumPy rasterizer): 12 object
instances (6 chairs, 3 tables, 3 lamps, built from boxes and cylinders) at 24 azimuths (every
15 degrees) and 3 elevations (10, 20, 30 degrees), flat-shaded, with their silhouette masks.
Every fourth azimuth (15, 75, 135, 195, 255, 315) is held out: the network never sees an image
from these directions, of any instance, and must make them up from the views beside them.

Training (``minigan.models.chairs``): lambda * image MSE + mask MSE on the training views,
Adam. ``--augment K`` adds K randomly transformed copies of every training view (zoom
0.85-1.15, a shift of up to 6% of the image, brightness 0.75-1.25, rendered by the camera)
and the paper's third input stream, theta; held-out views are then generated with the
identity transformation. ``--transfer`` is the paper's knowledge-transfer setting: every other
instance (the bar stool, the high-back and office chairs, the café table, the floor and arc
lamps) is trained at all 24 azimuths, and the other six still never show the held-out ones;
the scores are then over those six.

metrics.json, measured on the held-out views (12 instances x 6 azimuths x 3 elevations; with
--transfer, 6 instances):

  heldout_mse            mean squared error of the generated image (values in [-1, 1])
  heldout_mask_iou       intersection over union of the generated mask (> 0.5) with the true one
  nearest_view_mse, _iou baseline: the training view of the same instance and elevation at the
                         nearest seen azimuth (15 degrees before; the one after is as near)
  neighbours_mean_mse    baseline: the mean of the two seen views 15 degrees either side
  mean_image_mse, _iou   baseline: the mean training image (and mask > 0.5)
  heldout_mse_per_instance, heldout_iou_per_instance  the held-out scores of each scored instance
  transformed_heldout_mse   with --augment: the held-out views rendered with random transformations,
                         generated with their theta (_theta_0: with theta = 0, ignoring them)
  train_mse, train_mask_iou  the same scores on the training views: how well they are fitted
  novel_elevation_mse, _iou  views at elevations 15 and 25 degrees (between the trained ones),
                         at the training azimuths

Writes samples.png (held-out views: each instance's rendered truth and generated image side
by side, at the six held-out azimuths, elevation 20), interpolation.png (rows: the class vector
mixed from one instance to another, alpha 0 -> 1), azimuth.png (three instances turned in
5-degree steps from 0 to 90 degrees; rows: truth, generated; columns at 15 and 75 degrees are
held out, and every 5- and 10-degree step is a view no training image has), losses.png,
metrics.json, checkpoint.safetensors and samples.npz (x: generated images of every instance
at every 5 degrees of azimuth and each elevation, y: the instance, with azimuth, elevation
and the generated masks) into --out; --resume continues from the checkpoint.

Defaults and why they differ from the paper (128x128, 512 units per input stream, a 256-channel
map at 8x8, batch 128, 500k+ iterations): 32x32 images, 128 units, 64 channels at 4x4
halving per uconv, batch 32 and 6000 steps: about 0.02 s of CPU time a step, 2.4 minutes in all.
Training longer fits the training views better but not the held-out ones (docs/chairs.md).
Lambda, the leaky ReLU's slope, Adam and its learning rate are the paper's (as we read it).
"""
import os

import numpy as np

import minigan as mg
from minigan import optim
from minigan.data.shapes3d import (AZIMUTHS, ELEVATIONS, HELD_OUT_AZIMUTHS, INSTANCES, load_shapes3d, render)
from minigan.models import chairs
from minigan.utils import save_image, save_npz
from minigan.utils.experiment import (Experiment, RunSettings, check_batch_size, example_parser, nonnegative_float,
                                    nonnegative_int, positive_int, power_of_two, unit_float)

INTERPOLATIONS = (("kitchen chair", "armchair"), ("high-back chair", "bar stool"), ("office chair", "café table"),
                  ("stool", "floor lamp"))
SWEEP_INSTANCES = ("kitchen chair", "armchair", "arc lamp")
TRANSFER_INSTANCES = tuple(range(1, len(INSTANCES), 2))  # --transfer: seen at all 24 azimuths


def transformations(n, rng):
    """n random (zoom, shift x, shift y, brightness) and their theta codes, zero for the identity."""
    zoom, brightness = rng.uniform(0.85, 1.15, n), rng.uniform(0.75, 1.25, n)
    shift = rng.uniform(-0.06, 0.06, (n, 2))
    theta = np.stack([zoom - 1, shift[:, 0], shift[:, 1], brightness - 1], 1).astype(np.float32)
    return zoom, shift, brightness, theta


def augmented(data, trained, copies, rng):
    """``copies`` transformed renderings of every training view: (images, masks, rows of data, theta)."""
    rows = np.repeat(np.flatnonzero(trained), copies)
    zoom, shift, brightness, theta = transformations(len(rows), rng)
    size = data.images.shape[-1]
    views = [render(INSTANCES[data.instance[r]][2], data.azimuth[r], data.elevation[r], size, z, s, b)
             for r, z, s, b in zip(rows, zoom, shift, brightness)]
    return np.stack([v[0] for v in views]), np.stack([v[1] for v in views]), rows, theta


def iou(masks, targets):
    """Mean intersection over union of masks > 0.5 with the true masks, per image."""
    a, b = masks > 0.5, targets > 0.5
    union = (a | b).sum(axis=(1, 2, 3))
    return float(np.mean(np.where(union > 0, (a & b).sum(axis=(1, 2, 3)) / np.maximum(union, 1), 1.0)))


def mse(a, b):
    return float(np.mean((a - b) ** 2))


class Scorer:
    """G's images and masks for given (instance, azimuth, elevation); the identity transformation
    unless ``theta`` is given."""

    def __init__(self, G, device):
        self.G, self.device = G, device

    def __call__(self, instance, azimuth, elevation, mix_with=None, alpha=0.0, theta=None):
        n = len(instance)
        c = chairs.class_code(np.asarray(instance, np.int64), self.G.n_classes,
                              None if mix_with is None else np.asarray(mix_with, np.int64), alpha)
        if theta is None and self.G.n_transform:
            theta = np.zeros((n, self.G.n_transform), np.float32)
        return chairs.generate(self.G, c, chairs.view_code(azimuth, elevation), theta, self.device)


def evaluate(generate, data, trained, size):
    """The scores on the views not trained on against the three baselines, and the same on the
    training views (``trained``: a bool per view of ``data``)."""
    test, train = ~trained, trained
    images, masks = generate(data.instance[test], data.azimuth[test], data.elevation[test])
    fit_images, fit_masks = generate(data.instance[train], data.azimuth[train], data.elevation[train])
    # the seen views 15 degrees before and after each held-out one (same instance and elevation)
    index = {(i, a, e): k for k, (i, a, e) in enumerate(zip(data.instance, data.azimuth, data.elevation))}
    rows = np.flatnonzero(test)
    before = [index[(data.instance[k], (data.azimuth[k] - 15) % 360, data.elevation[k])] for k in rows]
    after = [index[(data.instance[k], (data.azimuth[k] + 15) % 360, data.elevation[k])] for k in rows]
    assert trained[before].all() and trained[after].all()
    truth, truth_masks = data.images[test], data.masks[test]
    mean_image, mean_mask = data.images[train].mean(0), data.masks[train].mean(0)
    metrics = {
        "heldout_views": int(test.sum()), "train_views": int(train.sum()),
        "heldout_mse": mse(images, truth), "heldout_mask_iou": iou(masks, truth_masks),
        "nearest_view_mse": mse(data.images[before], truth), "nearest_view_iou": iou(data.masks[before], truth_masks),
        "neighbours_mean_mse": mse((data.images[before] + data.images[after]) / 2, truth),
        "mean_image_mse": mse(np.broadcast_to(mean_image, truth.shape), truth),
        "mean_image_iou": iou(np.broadcast_to(mean_mask, truth_masks.shape), truth_masks),
        "train_mse": mse(fit_images, data.images[train]), "train_mask_iou": iou(fit_masks, data.masks[train]),
    }
    scored = data.instance[test]
    metrics["heldout_mse_per_instance"] = {data.names[i]: mse(images[scored == i], truth[scored == i])
                                           for i in np.unique(scored)}
    metrics["heldout_iou_per_instance"] = {data.names[i]: iou(masks[scored == i], truth_masks[scored == i])
                                           for i in np.unique(scored)}
    if generate.G.n_transform:  # does G follow theta? held-out views under random transformations
        zoom, shift, brightness, theta = transformations(len(rows), np.random.default_rng(0))
        truth = np.stack([render(INSTANCES[data.instance[k]][2], data.azimuth[k], data.elevation[k], size, z, s, b)[0]
                          for k, z, s, b in zip(rows, zoom, shift, brightness)])
        args = data.instance[test], data.azimuth[test], data.elevation[test]
        metrics["transformed_heldout_mse"] = mse(generate(*args, theta=theta)[0], truth)
        metrics["transformed_heldout_mse_theta_0"] = mse(generate(*args)[0], truth)
    novel = load_shapes3d(size, azimuths=[a for a in AZIMUTHS if a not in HELD_OUT_AZIMUTHS], elevations=(15, 25))
    images, masks = generate(novel.instance, novel.azimuth, novel.elevation)
    metrics["novel_elevation_mse"] = mse(images, novel.images)
    metrics["novel_elevation_iou"] = iou(masks, novel.masks)
    return metrics


def figures(generate, data, out, n_samples):
    """samples.png, interpolation.png, azimuth.png and samples.npz."""
    names, size = list(data.names), data.images.shape[-1]
    # held-out views at elevation 20: truth, generated, for each of the six azimuths
    held = [np.flatnonzero((data.instance == i) & (data.elevation == 20) & ~data.train) for i in range(len(names))]
    held = np.concatenate(held)
    generated, _ = generate(data.instance[held], data.azimuth[held], data.elevation[held])
    pairs = np.stack([data.images[held], generated], 1).reshape(len(names), -1, 3, size, size)
    save_image(np.clip(pairs.reshape(-1, 3, size, size), -1, 1), os.path.join(out, "samples.png"),
               nrow=2 * len(HELD_OUT_AZIMUTHS), pad_value=0.3)
    # class vectors mixed between two instances, at azimuth 30 (seen), elevation 20
    alpha = np.linspace(0, 1, 8)
    rows = [generate(np.full(8, names.index(a)), np.full(8, 30.0), np.full(8, 20.0), np.full(8, names.index(b)),
                     alpha)[0] for a, b in INTERPOLATIONS]
    save_image(np.clip(np.concatenate(rows), -1, 1), os.path.join(out, "interpolation.png"), nrow=8)
    # an azimuth sweep in 5-degree steps: truth above, generated below
    sweep = np.arange(0, 95, 5.0)
    rows = []
    for name in SWEEP_INSTANCES:
        mesh = INSTANCES[names.index(name)][2]
        rows += [np.stack([render(mesh, a, 20, size)[0] for a in sweep]),
                 generate(np.full(len(sweep), names.index(name)), sweep, np.full(len(sweep), 20.0))[0]]
    save_image(np.clip(np.concatenate(rows), -1, 1), os.path.join(out, "azimuth.png"), nrow=len(sweep),
               pad_value=0.3)
    # every instance at every 5 degrees of azimuth, each elevation: at least 1000 images
    fine = np.arange(0, 360, 5.0)
    repeats = -(-n_samples // (len(names) * len(fine) * len(ELEVATIONS)))
    grid = [(i, a, e) for _ in range(repeats) for e in ELEVATIONS for a in fine for i in range(len(names))]
    instance, azimuth, elevation = (np.array(c)[:n_samples] for c in zip(*grid))
    x, masks = generate(instance.astype(np.int64), azimuth, elevation)
    save_npz(os.path.join(out, "samples.npz"), x=np.clip(x, -1, 1), y=instance.astype(np.int64), azimuth=azimuth,
             elevation=elevation, mask=masks)


def main(argv=None):
    mg.backend.tune_cpu()  # faster CPU steps: keep freed memory, idle BLAS threads sleep
    parser = example_parser(__doc__.splitlines()[0], data=["shapes3d"], steps=6000, batch_size=32, lr=5e-4)
    parser.add_argument("--image-size", type=power_of_two(16), default=32, help="16, 32 or 64")
    parser.add_argument("--width", type=positive_int, default=128,
                        help="units of each input stream's FC-1 and FC-2; FC-3 and FC-4 have twice (the paper: 512)")
    parser.add_argument("--conv-width", type=power_of_two(4), default=64,
                        help="channels of the 4x4 map FC-5 makes, halved by every uconv (the paper: 256 at 8x8)")
    parser.add_argument("--lambda", dest="lam", type=nonnegative_float, default=chairs.LAMBDA,
                        help="the image term's weight against the mask term's")
    parser.add_argument("--augment", type=nonnegative_int, default=0,
                        help="randomly transformed copies of each training view; > 0 adds the theta stream")
    parser.add_argument("--transfer", action="store_true",
                        help="train every other instance at every azimuth; score the other six on their held-out views")
    parser.add_argument("--beta1", type=unit_float, default=0.9)
    args = parser.parse_args(argv)
    if args.image_size > 128:
        parser.error(f"--image-size {args.image_size}: at most 128 (each image is rendered on the CPU)")
    n_uconv = int(np.log2(args.image_size // 4))
    channels = tuple(max(args.conv_width >> k, 2) for k in range(n_uconv))

    mg.manual_seed(args.seed)
    data_rng = np.random.default_rng(args.seed)
    data = load_shapes3d(args.image_size)
    # --transfer: every other instance is trained at every azimuth, the rest still miss the held-out ones
    trained = data.train | (np.isin(data.instance, TRANSFER_INSTANCES) if args.transfer else False)
    rows, theta = np.flatnonzero(trained), None
    images, masks = data.images[rows], data.masks[rows]
    if args.augment:
        extra_images, extra_masks, extra_rows, extra_theta = augmented(data, trained, args.augment,
                                                                       np.random.default_rng(args.seed + 1))
        images, masks = np.concatenate([images, extra_images]), np.concatenate([masks, extra_masks])
        theta = np.concatenate([np.zeros((len(rows), 4), np.float32), extra_theta])
        rows = np.concatenate([rows, extra_rows])
    check_batch_size(parser, args.batch_size, len(rows), args.data)
    classes = chairs.class_code(data.instance[rows], len(data.names))
    views = chairs.view_code(data.azimuth[rows], data.elevation[rows])

    G = chairs.Generator(len(data.names), 4 if args.augment else 0, args.width, channels).to(args.device)
    opt = optim.Adam(G.parameters(), lr=args.lr, betas=(args.beta1, 0.999))
    run = Experiment("chairs", RunSettings.from_args(args), {"G": G}, {"G": opt}, rngs={"data": data_rng})
    run.maybe_resume()
    tensor = lambda a: mg.tensor(a, device=args.device)  # noqa: E731

    for _ in run.steps(args.steps, desc="chairs"):
        idx = data_rng.choice(len(rows), args.batch_size, replace=False)
        run.log(chairs.train_step(G, opt, tensor(classes[idx]), tensor(views[idx]),
                                  None if theta is None else tensor(theta[idx]), tensor(images[idx]),
                                  tensor(masks[idx]), args.lam))

    generate = Scorer(G, args.device)
    metrics = evaluate(generate, data, trained, args.image_size)
    figures(generate, data, run.out, args.num_samples)
    metrics = run.finish({"image_size": args.image_size, "width": args.width, "channels": list(channels),
                          "batch_size": args.batch_size, "lambda": args.lam, "augment": args.augment,
                          "transfer": args.transfer, "instances": list(data.names),
                          "held_out_azimuths": list(HELD_OUT_AZIMUTHS), **metrics})
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()
           if k.endswith(("mse", "iou")) or k in ("steps", "wall_time_s")})
    return metrics


if __name__ == "__main__":
    main()
