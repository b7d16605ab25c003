"""Train a DCGAN (Radford, Metz & Chintala 2015) on 32x32 images: all-convolutional G and D with batch norm.

    python examples/dcgan.py                          # scikit-learn's digits resized to 32x32, CPU, ~3 min of one core
    python examples/dcgan.py --data fashion-mnist     # Fashion-MNIST, 28x28 resized to 32x32
    python examples/dcgan.py --device cuda --width 64 --batch-size 128 --steps 10000   # the paper's sizes, GPU
    python examples/dcgan.py --data fashion-mnist --image-size 16     # at 16x16, as ProGAN's default

Writes samples.png (an 8x8 grid), interpolation.png (each row walks a straight
line from one z to another, the paper's Section 6.1: the images should change
smoothly, not jump), losses.png, metrics.json, checkpoint.safetensors and
samples.npz (x: --num-samples images, at least 1000) into --out; --resume
continues from the checkpoint there.

Defaults and why they differ from the paper (batch 128, width 128 at 64x64):
width 32 (G's last hidden layer and D's first have 32 channels, 128 at 4x4) and
batch 64, so the default run takes about 3 minutes of one CPU core (about 0.18 s
per step); ``--width 64 --batch-size 128`` is the paper's recipe at 32x32.

metrics.json holds the scores of the project's evaluation classifier for the
data (``minigan.eval``): class coverage and the classifier-feature Fréchet
distance (FD) to the test split. The classifiers take the data's own size (8x8
digits, 28x28 Fashion-MNIST), so the classifier resizes the 32x32 samples
(bilinear, antialiased); the real test images are loaded at 32x32 and resized the
same way, so real and generated images reach the classifier by the same path.
"""
import os

import numpy as np

import minigan as mg
from minigan import optim
from minigan.data import load_digits, load_fashion_mnist
from minigan.eval import load_classifier, score_samples
from minigan.models import dcgan
from minigan.utils import save_image, save_npz
from minigan.utils.experiment import (Experiment, RunSettings, check_batch_size, example_parser, positive_int,
                                    unit_float)



def load(data, split, seed, size=32):
    """Images (N, 1, size, size) in [-1, 1] of the train or test split."""
    if data == "digits":
        return load_digits(size=size, split=split, seed=seed)[0]
    return load_fashion_mnist(split, size=size)[0]


def main(argv=None):
    mg.backend.tune_cpu()  # faster CPU steps: keep freed memory, idle BLAS threads sleep
    parser = example_parser(__doc__.splitlines()[0], data=["digits", "fashion-mnist"], steps=1000, batch_size=64,
                            lr=2e-4, nearest_neighbours=True)
    parser.add_argument("--latent-dim", type=positive_int, default=100)
    parser.add_argument("--width", type=positive_int, default=32,
                        help="channels of D's first and G's last hidden layer (the paper: 128 at 64x64)")
    parser.add_argument("--beta1", type=unit_float, default=0.5)
    parser.add_argument("--image-size", type=int, choices=dcgan.IMAGE_SIZES, default=32,
                        help="resolution the data is resized to (16: to compare with ProGAN's default)")
    args = parser.parse_args(argv)

    mg.manual_seed(args.seed)
    data_rng = np.random.default_rng(args.seed)
    images = load(args.data, "train", args.seed, args.image_size)
    check_batch_size(parser, args.batch_size, len(images), args.data)

    generator = dcgan.Generator(args.latent_dim, 1, args.image_size, args.width).to(args.device)
    discriminator = dcgan.Discriminator(1, args.image_size, args.width).to(args.device)
    opt_g = optim.Adam(generator.parameters(), lr=args.lr, betas=(args.beta1, 0.999))
    opt_d = optim.Adam(discriminator.parameters(), lr=args.lr, betas=(args.beta1, 0.999))

    run = Experiment("dcgan", RunSettings.from_args(args), {"generator": generator, "discriminator": discriminator},
                     {"generator": opt_g, "discriminator": opt_d}, rngs={"data": data_rng})
    run.maybe_resume()

    for _ in run.steps(args.steps, desc=f"dcgan/{args.data}"):
        real = mg.tensor(images[data_rng.choice(len(images), args.batch_size, replace=False)], device=args.device)
        run.log(dcgan.train_step(generator, discriminator, opt_g, opt_d, real))

    generator.eval()  # batch norm with the statistics averaged in training

    def generate(z):
        with mg.no_grad():
            return np.concatenate([generator(mg.tensor(z[i:i + 500], device=args.device)).numpy()
                                   for i in range(0, len(z), 500)]).astype(np.float32)

    samples = generate(dcgan.sample_latent(args.num_samples, args.latent_dim).numpy())
    classifier, test = load_classifier(args.data), load(args.data, "test", args.seed, args.image_size)
    metrics = {**score_samples(classifier, samples, real=test),
               **run.check_memorization(samples, images, test, classifier)}

    save_image(samples[:64], os.path.join(run.out, "samples.png"), nrow=8)
    ends = dcgan.sample_latent(16, args.latent_dim).numpy()
    t = np.linspace(0, 1, 10, dtype=np.float32)[None, :, None]
    line = (1 - t) * ends[:8, None] + t * ends[8:, None]  # (8 rows, 10 steps, latent_dim)
    save_image(generate(line.reshape(-1, args.latent_dim)), os.path.join(run.out, "interpolation.png"), nrow=10)
    save_npz(os.path.join(run.out, "samples.npz"), x=samples)
    metrics = run.finish({"data": args.data, "width": args.width, "batch_size": args.batch_size, **metrics})
    print({k: v for k, v in metrics.items() if k in ("steps", "wall_time_s", "classes_hit", "class_entropy",
                                                      "classifier_fd")})
    return metrics


if __name__ == "__main__":
    main()
