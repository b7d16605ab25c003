"""Train InfoGAN (Chen et al. 2016) on digits: a categorical code that finds the digit class without labels.

    python examples/infogan.py                  # the paper's MNIST networks on scikit-learn's 8x8 digits, CPU, minutes
    python examples/infogan.py --device cuda    # on a GPU (needs CuPy)

Writes samples.png (row k: categorical code k; column j: the same noise z_j),
code_continuous_1.png and _2.png (row k: code k; columns: one continuous code
from -2 to 2, as in the paper's Figure 2), losses.png, metrics.json,
checkpoint.safetensors and samples.npz (x, and y: the categorical code of each
sample) into --out; --resume continues from the checkpoint there.

metrics.json holds the code's *purity*: the evaluation classifier labels 100+
samples per code value; for each value, the share of its most frequent class;
averaged over the values. The labels are never seen in training.
"""
import os

import numpy as np

import minigan as mg
from minigan import optim
from minigan.data import load_digits
from minigan.eval import load_classifier, score_samples
from minigan.models import infogan
from minigan.utils import save_image, save_npz
from minigan.utils.experiment import (Experiment, RunSettings, example_parser, check_batch_size,
                                    nonnegative_float, nonnegative_int, positive_int)


def main(argv=None):
    mg.backend.tune_cpu()  # faster CPU steps: keep freed memory, idle BLAS threads sleep
    parser = example_parser(__doc__.splitlines()[0], data=["digits"], steps=2000, batch_size=100,
                            nearest_neighbours=True)
    parser.add_argument("--noise-dim", type=positive_int, default=62)
    parser.add_argument("--categories", type=positive_int, default=10)
    parser.add_argument("--continuous", type=nonnegative_int, default=2)
    parser.add_argument("--lambda-cat", type=nonnegative_float, default=1.0,
                        help="lambda of the categorical code (the paper: 1)")
    parser.add_argument("--lambda-cont", type=nonnegative_float, default=0.1,
                        help="lambda of the continuous codes (the paper: 'smaller' than the categorical code's; "
                             "at 1 they take over the change between some pairs of digits)")
    args = parser.parse_args(argv)

    mg.manual_seed(args.seed)
    data_rng = np.random.default_rng(args.seed)
    images, _ = load_digits(split="train", seed=args.seed)  # the labels are not used
    check_batch_size(parser, args.batch_size, len(images), args.data)
    shape = images.shape[1:]
    K, C = args.categories, args.continuous

    generator = infogan.Generator(args.noise_dim, K, C, shape).to(args.device)
    discriminator = infogan.Discriminator(K, C, shape).to(args.device)
    opt_g = optim.Adam(generator.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_d = optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))

    run = Experiment("infogan", RunSettings.from_args(args), {"generator": generator, "discriminator": discriminator},
                     {"generator": opt_g, "discriminator": opt_d}, rngs={"data": data_rng})
    run.maybe_resume()

    for _ in run.steps(args.steps, desc=f"infogan/{args.data}"):
        real = mg.tensor(images[data_rng.choice(len(images), args.batch_size, replace=False)], device=args.device)
        run.log(infogan.train_step(generator, discriminator, opt_g, opt_d, real, args.lambda_cat, args.lambda_cont))

    generator.eval()

    def generate(z, c_cat, c_cont):
        with mg.no_grad():
            return generator(mg.tensor(z, device=args.device), mg.tensor(c_cat, device=args.device),
                             mg.tensor(c_cont, device=args.device)).numpy().astype(np.float32)

    # samples.npz and the purity: an equal number of samples per code value
    n = -(-args.num_samples // K) * K
    z, _, c_cont = (t.numpy() for t in infogan.sample_codes(n, args.noise_dim, K, C, args.device))
    codes = np.repeat(np.arange(K), n // K)
    samples = generate(z, codes, c_cont)
    classifier = load_classifier("digits")
    test, _ = load_digits(split="test", seed=args.seed)
    metrics = {**code_purity(classifier.predict(samples), codes, K), **score_samples(classifier, samples, real=test),
               **run.check_memorization(samples, images, test, classifier)}

    # the grids: one picture for the categorical code, one for each continuous code
    z = infogan.sample_codes(K, args.noise_dim, K, C, args.device)[0].numpy()
    save_image(generate(np.tile(z, (K, 1)), np.repeat(np.arange(K), K), np.zeros((K * K, C), np.float32)),
               os.path.join(run.out, "samples.png"), nrow=K)
    sweep = np.linspace(-2, 2, 10, dtype=np.float32)  # beyond the prior's [-1, 1], as the paper shows
    for j in range(C):
        c = np.zeros((K * len(sweep), C), np.float32)
        c[:, j] = np.tile(sweep, K)
        save_image(generate(np.repeat(z[:1], len(c), 0), np.repeat(np.arange(K), len(sweep)), c),
                   os.path.join(run.out, f"code_continuous_{j + 1}.png"), nrow=len(sweep))
    save_npz(os.path.join(run.out, "samples.npz"), x=samples, y=codes)
    metrics = run.finish({"data": args.data, "lambda_cat": args.lambda_cat, "lambda_cont": args.lambda_cont,
                          **metrics})
    print({k: v for k, v in metrics.items() if k in ("steps", "wall_time_s", "purity", "code_to_class",
                                                      "classes_hit", "classifier_fd")})
    return metrics


def code_purity(predicted, codes, n_codes, n_classes=10):
    """For each code value, the share of its samples in their most frequent predicted
    class (the majority class), averaged over code values; with the majority class of
    each value and how many distinct classes the values pick."""
    counts = np.zeros((n_codes, n_classes), np.int64)
    np.add.at(counts, (codes, predicted), 1)
    majority = counts.argmax(axis=1)
    share = counts.max(axis=1) / np.maximum(counts.sum(axis=1), 1)
    return {"purity": float(share.mean()), "purity_per_code": share.tolist(),
            "code_to_class": majority.tolist(), "distinct_classes": int(len(set(majority.tolist())))}


if __name__ == "__main__":
    main()
