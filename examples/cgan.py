"""Train a conditional GAN (Mirza & Osindero 2014) on digits: one generator, any digit on demand.

    python examples/cgan.py                     # scikit-learn's 8x8 digits, CPU, a few minutes
    python examples/cgan.py --device cuda       # on a GPU (needs CuPy)

Writes samples.png (one row per label), losses.png, metrics.json,
checkpoint.safetensors and samples.npz (x and the labels y they were drawn for)
into --out; --resume continues from the checkpoint there. metrics.json holds the
evaluation classifier's accuracy on the samples against their labels.
"""
import os

import numpy as np

import minigan as mg
from minigan import optim
from minigan.data import load_digits
from minigan.eval import load_classifier, score_samples, within_class_distance
from minigan.models import cgan
from minigan.utils import save_image, save_npz
from minigan.utils.experiment import (Experiment, RunSettings, check_batch_size, example_parser, positive_int,
                                    unit_float)

N_CLASSES = 10


def main(argv=None):
    mg.backend.tune_cpu()  # faster CPU steps: keep freed memory, idle BLAS threads sleep
    parser = example_parser(__doc__.splitlines()[0], data=["digits"], steps=4000, batch_size=100,
                            nearest_neighbours=True)
    parser.add_argument("--latent-dim", type=positive_int, default=100)
    parser.add_argument("--g-dropout", type=unit_float, default=0.0, help="dropout in G (the paper: 0.5)")
    parser.add_argument("--d-dropout", type=unit_float, default=0.0, help="dropout in D (the paper: 0.5)")
    args = parser.parse_args(argv)

    mg.manual_seed(args.seed)
    data_rng = np.random.default_rng(args.seed)
    images, labels = load_digits(split="train", seed=args.seed)
    check_batch_size(parser, args.batch_size, len(images), args.data)
    shape = images.shape[1:]

    generator = cgan.Generator(args.latent_dim, N_CLASSES, shape, dropout=args.g_dropout).to(args.device)
    discriminator = cgan.Discriminator(N_CLASSES, shape, dropout=args.d_dropout).to(args.device)
    opt_g = optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))

    run = Experiment("cgan", RunSettings.from_args(args), {"generator": generator, "discriminator": discriminator},
                     {"generator": opt_g, "discriminator": opt_d}, rngs={"data": data_rng})
    run.maybe_resume()

    for _ in run.steps(args.steps, desc=f"cgan/{args.data}"):
        idx = data_rng.choice(len(images), args.batch_size, replace=False)
        real = mg.tensor(images[idx], device=args.device)
        y = mg.tensor(labels[idx], device=args.device)
        run.log(cgan.train_step(generator, discriminator, opt_g, opt_d, real, y))

    # an equal number of samples per label, for samples.npz and the metrics
    generator.eval()
    n = -(-args.num_samples // N_CLASSES) * N_CLASSES
    y = np.repeat(np.arange(N_CLASSES), n // N_CLASSES)
    with mg.no_grad():
        z = cgan.sample_latent(n, args.latent_dim, args.device)
        samples = generator(z, mg.tensor(y, device=args.device)).numpy().astype(np.float32)
    test, test_labels = load_digits(split="test", seed=args.seed)
    classifier = load_classifier("digits")
    metrics = {**score_samples(classifier, samples, labels=y, real=test),
               **run.check_memorization(samples, images, test, classifier)}
    # diversity within each label, next to the same for held-out digits (near 0: z is ignored)
    metrics["within_class_distance_samples"] = within_class_distance(samples, y)
    metrics["within_class_distance_test_digits"] = within_class_distance(test, test_labels)

    # the picture: row k holds label k, column j the same noise z_j for every row
    with mg.no_grad():
        z = cgan.sample_latent(N_CLASSES, args.latent_dim, args.device)
        z = mg.tensor(np.tile(z.numpy(), (N_CLASSES, 1)), device=args.device)
        grid = generator(z, mg.tensor(np.repeat(np.arange(N_CLASSES), N_CLASSES), device=args.device))
    save_image(grid.numpy(), os.path.join(run.out, "samples.png"), nrow=N_CLASSES, value_range=(-1, 1))
    save_npz(os.path.join(run.out, "samples.npz"), x=samples, y=y)
    metrics = run.finish({"data": args.data, **metrics})
    print({k: v for k, v in metrics.items() if k in ("steps", "wall_time_s", "accuracy", "classes_hit",
                                                      "classifier_fd", "within_class_distance_samples",
                                                      "within_class_distance_test_digits")})
    return metrics


if __name__ == "__main__":
    main()
