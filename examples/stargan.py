"""Train StarGAN (Choi et al. 2018) on Fashion-MNIST's shoes: one generator translates a shoe into every other kind.

    python examples/stargan.py                             # Sandal, Sneaker, Ankle boot; CPU, minutes
    python examples/stargan.py --lambda-rec 0              # the cycle (reconstruction) loss off
    python examples/stargan.py --domains tops              # T-shirt/top, Pullover, Dress, Coat, Shirt
    python examples/stargan.py --domains "Sneaker,Ankle boot,Bag"   # any two or more classes
    python examples/stargan.py --device cuda --width 64 --blocks 6 --d-width 64 --steps 200000   # the paper's sizes

The domains (``minigan.data.fashion_domains``): each is one Fashion-MNIST class, 32x32.
The default, the three shoes, share a layout (a shoe from the side, toe to the left),
so a translation changes a shape (add a shaft, close the straps) and keeps a pose, and
the project's classifier tells the three apart on 95-98% of real test images, so its
verdict on a translation means something. The five tops are a harder, noisier test.

Training (``minigan.models.stargan``): D is updated every step, G every --n-critic-th
step on the same batch; each image's target domain is another image's of the batch
(the batch's labels shuffled, as the reference). --steps counts D updates.

Everything in metrics.json is measured on the first --test-examples held-out test
images of the domains (1500 by default), each translated into every domain
(``minigan.eval``'s Fashion-MNIST classifier; it takes 28x28 and resizes the 32x32
translations, values in [-1, 1] as G's tanh):

  accuracy_per_domain[t]   share of the translations G(x, t) the classifier calls class t,
                           over the inputs of the *other* domains (the translations proper);
  accuracy                 their mean over t;
  accuracy_matrix[s][t]    the same share for inputs of domain s (the diagonal: G(x, own domain));
  input_accuracy_per_domain  baseline: the share of the untranslated inputs of the other
                           domains called class t (chance-like: near 0 for a good classifier);
  real_accuracy_per_domain the classifier on real test images of domain t (the ceiling);
  rec_l1                   the cycle's error |G(G(x, t), s) - x|, mean over pixels, t != s;
  identity_l1              |G(x, s) - x|, translation into the image's own domain;
  classifier_fd_per_domain classifier-feature Fréchet distance of the translations into t
                           to the real test images of t.

Writes samples.png (rows: test inputs, two of each domain; columns: the input, then its
translation into each domain, the paper's Figure 1 layout), losses.png, metrics.json,
checkpoint.safetensors and samples.npz (``input``, ``output``, ``label``: the target
domain, ``source``: the input's domain; the first --num-samples (input, target) pairs)
into --out; --resume continues from the checkpoint.

Defaults and why they differ from the paper (k = 64 filters and 6 residual blocks in G,
64 in D's first layer and 6 layers at 128x128, batch 16, 200000 iterations): G with
k = 16 and 3 blocks, D with 16 filters and 4 layers (32 -> 2, a 2x2 final map as the
paper's at 128x128), batch 16 and 2500 iterations: about 0.2 s of CPU time an iteration.
n_critic, the lambdas, Adam and its betas are the paper's.
"""
import argparse
import os

import numpy as np

import minigan as mg
from minigan import optim
from minigan.data.fashion_domains import load_fashion_domains, parse_domains
from minigan.eval import classifier_fd, load_classifier
from minigan.models import stargan
from minigan.utils import save_image, save_npz
from minigan.utils.experiment import (Experiment, RunSettings, check_batch_size, example_parser, nonnegative_float,
                                    positive_int, unit_float)

IMAGE_SIZE = 32
GRID_PER_DOMAIN = 2  # rows of samples.png per source domain


def domains(text):
    """--domains: a set (shoes, tops) or comma-separated Fashion-MNIST class names."""
    try:
        parse_domains(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error))
    return text


def evaluate(G, test, device, out_dir, n_samples):
    """Every test image into every domain: the classifier's verdicts, the cycle's error, the grid."""
    k, x, source = len(test.names), test.images, test.domains
    classifier = load_classifier("fashion-mnist", device)
    predicted_input = classifier.predict(x)
    outputs, matrix, per_domain, rec, identity, fd = [], np.zeros((k, k)), [], [], [], []
    for t in range(k):
        out = stargan.translate(G, x, np.full(len(x), t), device)
        back = stargan.translate(G, out, source, device)
        hit = classifier.predict(out) == test.classes[t]
        matrix[:, t] = [hit[source == s].mean() for s in range(k)]
        other = source != t
        per_domain.append(float(hit[other].mean()))
        rec.append(np.abs(back - x).mean(axis=(1, 2, 3))[other])
        identity.append(np.abs(out - x).mean(axis=(1, 2, 3))[~other])
        fd.append(classifier_fd(classifier, x[source == t], out[other]))
        outputs.append(out)
    metrics = {
        "domains": list(test.names), "test_examples": len(x),
        "accuracy": float(np.mean(per_domain)), "accuracy_per_domain": per_domain,
        "accuracy_matrix": matrix.tolist(),
        "input_accuracy_per_domain": [float((predicted_input[source != t] == test.classes[t]).mean())
                                      for t in range(k)],
        "real_accuracy_per_domain": [float((predicted_input[source == t] == test.classes[t]).mean())
                                     for t in range(k)],
        "rec_l1": float(np.concatenate(rec).mean()), "identity_l1": float(np.concatenate(identity).mean()),
        "classifier_fd_per_domain": fd,
    }
    metrics["input_accuracy"] = float(np.mean(metrics["input_accuracy_per_domain"]))
    metrics["real_accuracy"] = float(np.mean(metrics["real_accuracy_per_domain"]))

    rows = np.concatenate([np.flatnonzero(source == s)[:GRID_PER_DOMAIN] for s in range(k)])
    grid = np.stack([x[rows], *[o[rows] for o in outputs]], axis=1)  # (rows, 1 + k, C, H, W)
    save_image(grid.reshape(-1, *x.shape[1:]), os.path.join(out_dir, "samples.png"), nrow=k + 1, pad_value=0.5)
    pairs = np.stack(outputs, axis=1).reshape(-1, *x.shape[1:])[:n_samples]  # image-major: x_0 -> 0, 1, ...
    save_npz(os.path.join(out_dir, "samples.npz"), input=np.repeat(x, k, axis=0)[:n_samples], output=pairs,
             label=np.tile(np.arange(k), len(x))[:n_samples], source=np.repeat(source, k)[:n_samples])
    return metrics


def main(argv=None):
    mg.backend.tune_cpu()  # faster CPU steps: keep freed memory, idle BLAS threads sleep
    parser = example_parser(__doc__.splitlines()[0], steps=2500, batch_size=16, lr=1e-4)
    parser.add_argument("--domains", type=domains, default="shoes",
                        help="shoes, tops, or comma-separated Fashion-MNIST class names")
    parser.add_argument("--width", type=positive_int, default=16, help="G's first layer's filters (the paper: 64)")
    parser.add_argument("--blocks", type=positive_int, default=3, help="G's residual blocks (the paper: 6)")
    parser.add_argument("--d-width", type=positive_int, default=16, help="D's first layer's filters (the paper: 64)")
    parser.add_argument("--d-layers", type=positive_int, default=4,
                        help="D's stride-2 layers: 4 leaves a 2x2 map at 32x32 (the paper: 6 at 128x128)")
    parser.add_argument("--n-critic", type=positive_int, default=stargan.N_CRITIC, help="D updates per G update")
    parser.add_argument("--lambda-cls", type=nonnegative_float, default=stargan.LAMBDA_CLS)
    parser.add_argument("--lambda-rec", type=nonnegative_float, default=stargan.LAMBDA_REC,
                        help="the reconstruction (cycle) loss's weight; 0 leaves it out")
    parser.add_argument("--lambda-gp", type=nonnegative_float, default=stargan.LAMBDA_GP)
    parser.add_argument("--beta1", type=unit_float, default=0.5)
    parser.add_argument("--test-examples", type=positive_int, default=1500,
                        help="held-out test images translated into every domain and scored")
    args = parser.parse_args(argv)
    if 2 ** args.d_layers > IMAGE_SIZE:
        parser.error(f"--d-layers {args.d_layers} halves {IMAGE_SIZE}x{IMAGE_SIZE} images to nothing (at most 5)")
    names, _ = parse_domains(args.domains)
    args.data = args.domains if args.domains in ("shoes", "tops") else "-".join(n.split("/")[0] for n in names)

    mg.manual_seed(args.seed)
    data_rng = np.random.default_rng(args.seed)
    train = load_fashion_domains("train", args.domains, IMAGE_SIZE)
    test = load_fashion_domains("test", args.domains, IMAGE_SIZE, limit=args.test_examples)
    if len(test.images) * len(names) < args.num_samples:
        parser.error(f"--test-examples {len(test.images)} x {len(names)} domains give fewer translations than "
                     f"--num-samples {args.num_samples}")
    check_batch_size(parser, args.batch_size, len(train.images), args.data)
    k = len(names)

    G = stargan.Generator(k, 1, args.width, args.blocks).to(args.device)
    D = stargan.Discriminator(k, 1, IMAGE_SIZE, args.d_width, args.d_layers).to(args.device)
    adam = dict(lr=args.lr, betas=(args.beta1, 0.999))
    opt_g, opt_d = optim.Adam(G.parameters(), **adam), optim.Adam(D.parameters(), **adam)
    run = Experiment("stargan", RunSettings.from_args(args), {"G": G, "D": D}, {"G": opt_g, "D": opt_d},
                     rngs={"data": data_rng})
    run.maybe_resume()
    d_losses = []

    for step in run.steps(args.steps, desc=f"stargan/{args.data}"):
        idx = data_rng.choice(len(train.images), args.batch_size, replace=False)
        x, label_org = mg.tensor(train.images[idx], device=args.device), train.domains[idx]
        label_trg = stargan.target_labels(label_org, data_rng)
        d_losses.append(stargan.discriminator_step(G, D, opt_d, x, label_org, label_trg, args.lambda_cls,
                                                   args.lambda_gp))
        if (step + 1) % args.n_critic == 0:  # one point per G update: D's losses averaged since the last
            losses = {key: np.mean([d[key] for d in d_losses]) for key in d_losses[0]}
            run.log({**losses, **stargan.generator_step(G, D, opt_g, x, label_org, label_trg, args.lambda_cls,
                                                        args.lambda_rec)})
            d_losses = []

    metrics = evaluate(G, test, args.device, run.out, args.num_samples)
    metrics = run.finish({"image_size": IMAGE_SIZE, "width": args.width, "blocks": args.blocks,
                          "d_width": args.d_width, "d_layers": args.d_layers, "batch_size": args.batch_size,
                          "n_critic": args.n_critic, "lambda_cls": args.lambda_cls, "lambda_rec": args.lambda_rec,
                          "lambda_gp": args.lambda_gp, **metrics})
    print({key: metrics[key] for key in ("steps", "wall_time_s", "accuracy", "accuracy_per_domain", "input_accuracy",
                                         "real_accuracy", "rec_l1", "identity_l1")})
    return metrics


if __name__ == "__main__":
    main()
