"""Train a VAE-GAN (Larsen et al. 2016): a VAE whose reconstructions are compared in a discriminator's features.

    python examples/vaegan.py                           # digits at 16x16, CPU, about 7 CPU-minutes
    python examples/vaegan.py --model pixel-vae         # the same encoder and decoder as a plain VAE
    python examples/vaegan.py --data fashion-mnist      # 28x28 Fashion-MNIST (IDX files installed)
    python examples/vaegan.py --device cuda             # on a GPU (needs CuPy)

``--model pixel-vae`` trains the same encoder and decoder on the pixel-wise
Gaussian likelihood (L_prior + 1/2 ||x - x~||^2), for the paper's comparison:
the same steps, batch size and optimizer, no discriminator.

Writes samples.png (decoded prior samples z ~ N(0, I), batch norm on each
batch's statistics as in training; see below), reconstructions.png
(pairs of rows: held-out images, then their reconstructions Dec(mu(x))),
losses.png, metrics.json, checkpoint.safetensors and samples.npz (prior samples
in [-1, 1]) into --out; --resume continues from the checkpoint there.
The authors' equilibrium rule is on by default (``--margin``, ``--equilibrium``;
``--no-equilibrium`` turns it off): metrics.json counts the steps in which it
skipped Dis's update (``dis_skipped``) and Dec's GAN term (``dec_gan_skipped``).
metrics.json holds the evaluation classifier's scores of the prior samples
(classifier-feature Fréchet distance to the held-out images, classes hit), the
same distance for the reconstructions, the pixel error of the reconstructions,
and, as a floor, the distance between as many training images and the held-out ones;
and a sharpness score (the mean absolute difference of neighbouring pixels) of
samples, reconstructions and held-out images.
``classifier_fd_samples_running_stats`` scores the same prior codes decoded in
eval mode (batch norm's running averages), which on digits is about twice as far.
"""
import os

import numpy as np

import minigan as mg
from minigan import optim
from minigan.data import load_digits, load_fashion_mnist
from minigan.eval import classifier_fd, load_classifier, score_samples
from minigan.models import vaegan
from minigan.utils import save_image, save_npz
from minigan.utils.experiment import (Experiment, RunSettings, example_parser, check_batch_size,
                                    nonnegative_float, positive_int)

SHOWN = 16  # held-out images per row of reconstructions.png


def load(data, seed):
    """(train, test) images in [-1, 1]: digits resized to 16x16, or Fashion-MNIST at 28x28."""
    if data == "digits":
        return load_digits(size=16, split="train", seed=seed)[0], load_digits(size=16, split="test", seed=seed)[0]
    return load_fashion_mnist(split="train")[0], load_fashion_mnist(split="test")[0]


def main(argv=None):
    mg.backend.tune_cpu()  # faster CPU steps: keep freed memory, idle BLAS threads sleep
    parser = example_parser(__doc__.splitlines()[0], data=["digits", "fashion-mnist"], steps=1200, batch_size=64,
                            lr=3e-4, nearest_neighbours=True)
    parser.add_argument("--model", choices=["vaegan", "pixel-vae"], default="vaegan")
    parser.add_argument("--gamma", type=nonnegative_float, default=vaegan.GAMMA,
                        help="weight of the feature reconstruction against L_GAN in the decoder's update")
    parser.add_argument("--loss-kind", choices=["minimax", "non_saturating"], default="minimax",
                        help="the decoder's GAN term: Algorithm 1's -L_GAN, or the non-saturating one")
    parser.add_argument("--margin", type=nonnegative_float, default=vaegan.MARGIN,
                        help="equilibrium rule: skip Dis's update when it wins by this margin, Dec's GAN term "
                             "when it loses by it")
    parser.add_argument("--equilibrium", type=nonnegative_float, default=vaegan.EQUILIBRIUM,
                        help="Dis's cost (cross-entropy) at which the game counts as balanced")
    parser.add_argument("--no-equilibrium", action="store_true", help="update every network every step")
    parser.add_argument("--latent-dim", type=positive_int, default=16)
    args = parser.parse_args(argv)
    margin = None if args.no_equilibrium else args.margin

    mg.manual_seed(args.seed)
    data_rng = np.random.default_rng(args.seed)
    train, test = load(args.data, args.seed)
    check_batch_size(parser, args.batch_size, len(train), args.data)
    shape = train.shape[1:]

    encoder = vaegan.Encoder(shape, args.latent_dim).to(args.device)
    decoder = vaegan.Decoder(args.latent_dim, shape).to(args.device)
    modules = {"encoder": encoder, "decoder": decoder}
    if args.model == "vaegan":
        discriminator = vaegan.Discriminator(shape).to(args.device)
        modules["discriminator"] = discriminator
        optimizers = {k: optim.RMSprop(m.parameters(), lr=args.lr) for k, m in modules.items()}
    else:
        optimizers = {"vae": optim.RMSprop(list(encoder.parameters()) + list(decoder.parameters()), lr=args.lr)}
    run = Experiment(args.model, RunSettings.from_args(args), modules, optimizers, rngs={"data": data_rng})
    run.maybe_resume()

    for _ in run.steps(args.steps, desc=f"{args.model}/{args.data}"):
        real = mg.tensor(train[data_rng.choice(len(train), args.batch_size, replace=False)], device=args.device)
        if args.model == "vaegan":
            run.log(vaegan.train_step(encoder, decoder, discriminator, optimizers["encoder"], optimizers["decoder"],
                                      optimizers["discriminator"], real, gamma=args.gamma, loss_kind=args.loss_kind,
                                      margin=margin, equilibrium=args.equilibrium))
        else:
            run.log(vaegan.pixel_vae_train_step(encoder, decoder, optimizers["vae"], real))

    n = args.num_samples
    for m in modules.values():
        m.eval()
    with mg.no_grad():
        z = vaegan.sample_latent(n, args.latent_dim, args.device).numpy()
        samples_running_stats = batched(decoder, z, args.device)
        codes = batched(lambda x: encoder(x)[0], test, args.device)  # Dec(mu(x)): the mean code
        recons = batched(decoder, codes, args.device)
        # The prior samples themselves are decoded as in training, batch norm on the
        # statistics of each batch of codes (as pytorch/examples' DCGAN samples its
        # generator): the running averages were gathered on batches half of posterior
        # codes z ~ q(z|x), which sit off the prior's centre, and decode prior codes
        # worse (both are scored). Last, as it moves the running averages.
        decoder.train()
        samples = batched(decoder, z, args.device, args.batch_size)
    save_image(samples[:64], os.path.join(run.out, "samples.png"), nrow=8)
    save_npz(os.path.join(run.out, "samples.npz"), x=samples)
    pairs = np.stack([test[:2 * SHOWN].reshape((2, SHOWN) + shape), recons[:2 * SHOWN].reshape((2, SHOWN) + shape)], 1)
    save_image(pairs.reshape((-1,) + shape), os.path.join(run.out, "reconstructions.png"), nrow=SHOWN)

    classifier = load_classifier(args.data)
    reference = train[np.random.default_rng(args.seed + 1).choice(len(train), min(n, len(train)), replace=False)]
    scores = {**score_samples(classifier, samples, real=test),
              **run.check_memorization(samples, train, test, classifier)}
    metrics = run.finish({
        "data": args.data, "model": args.model, "gamma": args.gamma if args.model == "vaegan" else None,
        "loss_kind": args.loss_kind if args.model == "vaegan" else None,
        "equilibrium_rule": ({"equilibrium": args.equilibrium, "margin": margin}
                             if args.model == "vaegan" and margin is not None else None),
        # the rule's skips over the whole run (the history survives --resume)
        **({k: int(sum(run.history.get(k, []))) for k in ("dis_skipped", "dec_gan_skipped")}
           if args.model == "vaegan" else {}),
        "latent_dim": args.latent_dim, "image_shape": list(shape),
        "classifier_fd": scores.pop("classifier_fd"), **scores,
        "classifier_fd_samples_running_stats": classifier_fd(classifier, test, samples_running_stats),
        "classifier_fd_reconstructions": classifier_fd(classifier, test, recons),
        "classifier_fd_train_images": classifier_fd(classifier, test, reference),
        "reconstruction_mse": float(((recons - test) ** 2).mean()),
        "sharpness_samples": sharpness(samples), "sharpness_reconstructions": sharpness(recons),
        "sharpness_test_images": sharpness(test),
        "test_images": len(test),
    })
    print({k: v for k, v in metrics.items() if k in ("steps", "wall_time_s", "classifier_fd", "classes_hit",
                                                      "dis_skipped", "dec_gan_skipped",
                                                      "classifier_fd_samples_running_stats",
                                                      "class_entropy", "classifier_fd_reconstructions",
                                                      "classifier_fd_train_images", "reconstruction_mse",
                                                      "sharpness_samples", "sharpness_reconstructions",
                                                      "sharpness_test_images")})
    return metrics


def sharpness(images):
    """Mean absolute difference between neighbouring pixels (both directions): blur lowers it."""
    return float((np.abs(np.diff(images, axis=-1)).mean() + np.abs(np.diff(images, axis=-2)).mean()) / 2)


def batched(network, inputs, device, batch_size=500):
    """``network`` on a NumPy array in batches of about ``batch_size`` (no graph): float32 NumPy out."""
    chunks = np.array_split(inputs, -(-len(inputs) // batch_size))  # equal sizes: no batch of one for batch norm
    return np.concatenate([network(mg.tensor(c, device=device)).numpy() for c in chunks]).astype(np.float32)


if __name__ == "__main__":
    main()
