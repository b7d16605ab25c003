"""Train CycleGAN (Zhu et al. 2017) on unpaired 32x32 domains: two ResNet generators, two PatchGANs, a cycle.

    python examples/cyclegan.py                        # sneakers <-> ankle boots (Fashion-MNIST), CPU, a few minutes
    python examples/cyclegan.py --data edges2fashion   # edges <-> garments from disjoint halves, scored on test pairs
    python examples/cyclegan.py --width 64 --blocks 6 --d-width 64 --batch-size 1 --steps 20000   # the paper's sizes

The domains (--data):
  sneakers2boots  X = Fashion-MNIST's sneakers, Y = its ankle boots (the offline
                  horse <-> zebra): no image has a counterpart in the other domain.
  edges2fashion   X = Canny edge maps of one half of the training split, Y = the
                  garments of the other half, so no true pair is ever seen; the test
                  split's true pairs (all 10000, or --test-examples) then score
                  G: edges -> garments as examples/pix2pix.py is scored (the paper's
                  comparison of the two on the same task).

Writes samples.png (rows: inputs, translations, reconstructions F(G(x)); for
edges2fashion also the true targets), losses.png, metrics.json,
checkpoint.safetensors and samples.npz into --out; --resume continues from the
checkpoint there (the image pools and the learning-rate schedule included).

samples.npz holds the test translations: ``input``, ``output`` (N, 1, 32, 32 float32
in [-1, 1]) and ``label`` (N,). sneakers2boots translates every test sneaker with G
and every test boot with F (N = 2000); ``label`` is the target domain's class and
there is no ``target``. edges2fashion keeps the first --num-samples test edge maps,
their translations by G, their true garments (``target``) and their classes (``label``).

metrics.json, from the project's Fashion-MNIST classifier (``minigan.eval``):
sneakers2boots: the share of translations classified as the target class (next to
the same share for the untranslated inputs), the cycle-reconstruction L1 error per
direction, and the classifier-feature Fréchet distance of each direction's outputs
to the real test images of its target domain. edges2fashion: pix2pix's translation
scores (``minigan.eval.translation``) on the test pairs (L1 to the target, the
classifier's accuracy on the outputs against the target's label, FD between outputs
and targets, edge-energy ratio), and the cycle's L1 error.

Defaults and why they differ from the paper (k = 64 filters, 9 residual blocks at
256x256 or 6 at 128x128, 64-filter PatchGANs, batch 1, 200 epochs): width 16, 3
blocks, 32-filter PatchGANs and batches of 8 make a step about 0.45 s on one CPU
core, so the default 400 steps take about 3 minutes. The learning rate is held for
the first half of the steps and decayed linearly to 0 over the second, as the
paper's 100 + 100 epochs.
"""
import os

import numpy as np

import minigan as mg
from minigan.data import load_edges2fashion, load_sneakers2boots, load_unpaired_edges2fashion
from minigan.eval import classifier_fd, load_classifier, translation_scores
from minigan.models import cyclegan
from minigan.utils import save_image, save_npz
from minigan.utils.experiment import (Experiment, RunSettings, check_batch_size, example_parser, nonnegative_float,
                                    nonnegative_int, positive_int, unit_float)

DATA = ("sneakers2boots", "edges2fashion")
GRID = 8  # examples per direction in samples.png


def training_domains(data, seed):
    """The unpaired training images of X and of Y."""
    if data == "sneakers2boots":
        domains = load_sneakers2boots("train")
        return domains.x, domains.y
    unpaired = load_unpaired_edges2fashion(seed=seed)
    return unpaired.edges, unpaired.images


def translate(generator, images, device, batch_size=500):
    """``generator`` over ``images`` (a NumPy array) in batches, without a graph: float32 NumPy."""
    with mg.no_grad():
        return np.concatenate([generator(mg.tensor(images[i:i + batch_size], device=device)).numpy()
                               for i in range(0, len(images), batch_size)]).astype(np.float32)


def cycle_error(G, F, x, device):
    """Translations G(x), reconstructions F(G(x)), and the mean L1 error of the cycle."""
    out = translate(G, x, device)
    back = translate(F, out, device)
    return out, back, float(np.abs(back - x).mean())


def evaluate_sneakers2boots(G, F, device, out_dir):
    """Both directions on the whole test split: target-class shares, cycle errors, FDs."""
    test = load_sneakers2boots("test")
    classifier = load_classifier("fashion-mnist", device)
    metrics, parts, rows = {}, [], []
    for name, gen, back, source, target, target_class in (("sneaker_to_boot", G, F, test.x, test.y, test.y_class),
                                                          ("boot_to_sneaker", F, G, test.y, test.x, test.x_class)):
        out, rec, err = cycle_error(gen, back, source, device)
        metrics[f"{name}_target_share"] = float((classifier.predict(out) == target_class).mean())
        metrics[f"{name}_input_target_share"] = float((classifier.predict(source) == target_class).mean())
        metrics[f"{name}_cycle_l1"] = err
        metrics[f"{name}_classifier_fd"] = classifier_fd(classifier, target, out)
        parts.append((source, out, np.full(len(source), target_class, np.int64)))
        rows.append(np.stack([source[:GRID], out[:GRID], rec[:GRID]]))
    metrics["target_share"] = float(np.mean([metrics["sneaker_to_boot_target_share"],
                                             metrics["boot_to_sneaker_target_share"]]))
    metrics["cycle_l1"] = float(np.mean([metrics["sneaker_to_boot_cycle_l1"], metrics["boot_to_sneaker_cycle_l1"]]))
    grid = np.concatenate(rows, axis=1)  # (3 rows, 2 * GRID, C, H, W): inputs, translations, reconstructions
    save_image(grid.reshape(-1, *grid.shape[2:]), os.path.join(out_dir, "samples.png"), nrow=2 * GRID)
    source, out, label = (np.concatenate(p) for p in zip(*parts))
    save_npz(os.path.join(out_dir, "samples.npz"), input=source, output=out, label=label)
    return metrics


def evaluate_edges2fashion(G, F, device, out_dir, n_samples, n_test):
    """G on the test edge maps (the first ``n_test``, all 10000 by default), scored against
    their true garments as pix2pix is; samples.npz keeps the first ``n_samples``."""
    test = load_edges2fashion("test", limit=n_test)
    out, rec, err = cycle_error(G, F, test.edges, device)
    metrics = {**translation_scores(load_classifier("fashion-mnist", device), out, test.images, test.labels),
               "cycle_l1": err}
    k = 2 * GRID
    grid = np.concatenate([test.edges[:k], out[:k], test.images[:k], rec[:k]])  # rows: input, G(x), truth, F(G(x))
    save_image(grid, os.path.join(out_dir, "samples.png"), nrow=k)
    save_npz(os.path.join(out_dir, "samples.npz"), input=test.edges[:n_samples], output=out[:n_samples],
             target=test.images[:n_samples], label=test.labels[:n_samples])
    return metrics


def main(argv=None):
    mg.backend.tune_cpu()  # faster CPU steps: keep freed memory, idle BLAS threads sleep
    parser = example_parser(__doc__.splitlines()[0], data=DATA, steps=400, batch_size=8, lr=2e-4)
    parser.add_argument("--width", type=positive_int, default=16,
                        help="filters of the generators' first layer, k of c7s1-k (the paper: 64)")
    parser.add_argument("--blocks", type=positive_int, default=3,
                        help="residual blocks per generator (the paper: 6 at 128x128, 9 at 256x256)")
    parser.add_argument("--d-width", type=positive_int, default=32, help="filters of the PatchGANs' first layer "
                                                                       "(the paper: 64)")
    parser.add_argument("--d-layers", type=positive_int, default=3,
                        help="stride-2 layers of the PatchGANs: 3 is the 70x70 PatchGAN, 2 a 34x34 one")
    parser.add_argument("--lambda-cycle", type=nonnegative_float, default=10.0)
    parser.add_argument("--lambda-identity", type=nonnegative_float, default=0.5,
                        help="the identity loss's weight, relative to --lambda-cycle")
    parser.add_argument("--pool-size", type=nonnegative_int, default=50, help="fakes D draws from (0: none)")
    parser.add_argument("--decay-steps", type=nonnegative_int, default=None,
                        help="steps at the end over which the lr decays linearly to 0 (default: half of --steps)")
    parser.add_argument("--beta1", type=unit_float, default=0.5)
    parser.add_argument("--test-examples", type=positive_int, default=None,
                        help="edges2fashion: score on the first N test pairs only (default: all 10000)")
    args = parser.parse_args(argv)
    if args.test_examples is not None and args.test_examples < args.num_samples:
        parser.error(f"--test-examples {args.test_examples} is fewer than --num-samples {args.num_samples}")
    decay = args.steps // 2 if args.decay_steps is None else min(args.decay_steps, args.steps)

    mg.manual_seed(args.seed)
    data_rng, pool_rng = np.random.default_rng(args.seed), np.random.default_rng(args.seed + 1)
    x_train, y_train = training_domains(args.data, args.seed)
    check_batch_size(parser, args.batch_size, min(len(x_train), len(y_train)), args.data)
    cx, cy, size = x_train.shape[1], y_train.shape[1], x_train.shape[-1]

    G = cyclegan.ResnetGenerator(cx, cy, args.width, args.blocks).to(args.device)
    F = cyclegan.ResnetGenerator(cy, cx, args.width, args.blocks).to(args.device)
    D_X = cyclegan.discriminator(cx, args.d_width, args.d_layers).to(args.device)
    D_Y = cyclegan.discriminator(cy, args.d_width, args.d_layers).to(args.device)
    pool_x = cyclegan.ImagePool(args.pool_size, (cx, size, size), pool_rng).to(args.device)
    pool_y = cyclegan.ImagePool(args.pool_size, (cy, size, size), pool_rng).to(args.device)
    opt_g, opt_d, schedules = cyclegan.optimizers(G, F, D_X, D_Y, args.steps, decay, args.lr, args.beta1)

    run = Experiment("cyclegan", RunSettings.from_args(args),
                     {"G": G, "F": F, "D_X": D_X, "D_Y": D_Y, "pool_x": pool_x, "pool_y": pool_y},
                     {"generators": opt_g, "discriminators": opt_d}, rngs={"data": data_rng, "pool": pool_rng})
    if run.maybe_resume(scheduled_lr=True):  # the lr of the step reached, from the command line's --lr
        for s in schedules:
            s.last_epoch = run.step - 1
            s.step()

    for _ in run.steps(args.steps, desc=f"cyclegan/{args.data}"):
        x = mg.tensor(x_train[data_rng.choice(len(x_train), args.batch_size, replace=False)], device=args.device)
        y = mg.tensor(y_train[data_rng.choice(len(y_train), args.batch_size, replace=False)], device=args.device)
        run.log(cyclegan.train_step(G, F, D_X, D_Y, opt_g, opt_d, x, y, pool_x, pool_y,
                                    lambda_cycle=args.lambda_cycle, lambda_identity=args.lambda_identity))
        for s in schedules:
            s.step()

    G.eval(), F.eval()
    if args.data == "sneakers2boots":
        metrics = evaluate_sneakers2boots(G, F, args.device, run.out)
    else:
        metrics = evaluate_edges2fashion(G, F, args.device, run.out, args.num_samples, args.test_examples)
    metrics = run.finish({"data": args.data, "width": args.width, "blocks": args.blocks, "d_width": args.d_width,
                          "d_layers": args.d_layers, "batch_size": args.batch_size, "pool_size": args.pool_size,
                          "lambda_cycle": args.lambda_cycle, "lambda_identity": args.lambda_identity, **metrics})
    print({k: v for k, v in metrics.items() if k in ("steps", "wall_time_s", "target_share", "cycle_l1", "l1",
                                                      "accuracy", "classifier_fd")})
    return metrics


if __name__ == "__main__":
    main()
