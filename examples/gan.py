"""Train the original GAN (Goodfellow et al. 2014) on a ring of 8 Gaussians or on digits.

    python examples/gan.py                      # ring of 8 Gaussians, CPU, a few minutes
    python examples/gan.py --data digits        # scikit-learn's 8x8 digits
    python examples/gan.py --loss minimax       # the saturating objective, for comparison
    python examples/gan.py --device cuda        # on a GPU (needs CuPy)

Writes samples.png, losses.png, metrics.json, checkpoint.safetensors and
samples.npz into --out; --resume continues from the checkpoint there.
"""
import os

import numpy as np

import minigan as mg
from minigan import optim
from minigan.data import load_digits, mode_metrics, ring, ring_modes
from minigan.eval import load_classifier, nearest_neighbours, score_samples
from minigan.models import gan
from minigan.utils import save_image, save_npz, save_points
from minigan.utils.experiment import Experiment, RunSettings, check_batch_size, example_parser, positive_int

RING_STD = 0.02


def load_data(name, seed):
    """The data as a fixed array (digits) or a sampler (ring), plus its shape."""
    if name == "ring":
        return None, (2,)
    images, _ = load_digits(split="train", seed=seed)
    return images.reshape(len(images), -1), images.shape[1:]


def main(argv=None):
    mg.backend.tune_cpu()  # faster CPU steps: keep freed memory, idle BLAS threads sleep
    parser = example_parser(__doc__.splitlines()[0], data=["ring", "digits"], steps=6000, batch_size=256,
                            nearest_neighbours=True)
    parser.add_argument("--k", type=positive_int, default=1, help="discriminator steps per generator step")
    parser.add_argument("--loss", choices=["non_saturating", "minimax"], default="non_saturating")
    parser.add_argument("--latent-dim", type=positive_int, default=None)
    parser.add_argument("--hidden", type=positive_int, default=None, help="width of the hidden layers")
    args = parser.parse_args(argv)
    if args.nearest_neighbours and args.data == "ring":
        parser.error("--nearest-neighbours compares images: it needs --data digits")

    mg.manual_seed(args.seed)
    data_rng = np.random.default_rng(args.seed)
    train, shape = load_data(args.data, args.seed)
    if train is not None:
        check_batch_size(parser, args.batch_size, len(train), args.data)
    data_dim = int(np.prod(shape))
    latent_dim = args.latent_dim or (2 if args.data == "ring" else 32)
    hidden = args.hidden or (128 if args.data == "ring" else 256)

    generator = gan.Generator(latent_dim, data_dim, (hidden, hidden),
                              output="linear" if args.data == "ring" else "tanh").to(args.device)
    discriminator = gan.Discriminator(data_dim, (hidden, hidden)).to(args.device)
    opt_g = optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))

    run = Experiment("gan", RunSettings.from_args(args), {"generator": generator, "discriminator": discriminator},
                     {"generator": opt_g, "discriminator": opt_d}, rngs={"data": data_rng})
    run.maybe_resume()

    def real_batch():
        if train is None:
            x = ring(args.batch_size, data_rng, std=RING_STD)
        else:
            x = train[data_rng.choice(len(train), args.batch_size, replace=False)]
        return mg.tensor(x, device=args.device)

    for _ in run.steps(args.steps, desc=f"gan/{args.data}"):
        run.log(gan.train_step(generator, discriminator, opt_g, opt_d,
                               [real_batch() for _ in range(args.k)], args.loss))

    # samples for the pictures, samples.npz and the metrics
    generator.eval()
    with mg.no_grad():
        z = gan.sample_latent(args.num_samples, latent_dim, args.device)
        samples = generator(z).numpy().astype(np.float32)
    if train is None:
        metrics = mode_metrics(samples, ring_modes(), RING_STD)
        save_points(samples, os.path.join(run.out, "samples.png"), reference=ring_modes(),
                    title=f"GAN on the ring: {metrics['modes_covered']}/8 modes, "
                          f"{100 * metrics['high_quality_share']:.0f}% within 3 sigma")
    else:
        samples = samples.reshape((-1,) + shape)
        metrics = digit_metrics(samples, train.reshape((-1,) + shape), args.seed, run)
        save_image(samples[:64], os.path.join(run.out, "samples.png"), nrow=8, value_range=(-1, 1))
    save_npz(os.path.join(run.out, "samples.npz"), x=samples)
    metrics = run.finish({"data": args.data, "loss": args.loss, "k": args.k, **metrics})
    print({k: v for k, v in metrics.items() if k != "samples_per_mode"})
    return metrics


def digit_metrics(samples, train, seed, run):
    """The evaluation classifier's view of the samples (classes hit, the entropy of
    the predicted classes, the classifier-feature Fréchet distance to held-out
    digits), and the mean distance from each sample to its nearest training image
    next to the same for held-out digits: close values mean samples sit on the data.
    With --nearest-neighbours, the whole memorization check too."""
    test, _ = load_digits(split="test", seed=seed)
    classifier = load_classifier("digits")
    scores = score_samples(classifier, samples, real=test)
    return {**scores, "nn_distance_samples": float(nearest_neighbours(samples, train)[0].mean()),
            "nn_distance_test_digits": float(nearest_neighbours(test, train)[0].mean()),
            **run.check_memorization(samples, train, test, classifier)}


if __name__ == "__main__":
    main()
