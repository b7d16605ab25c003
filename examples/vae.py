"""Train a VAE (Kingma & Welling 2014) on binarized digits: samples, interpolation, a stroke-thickness vector.

    python examples/vae.py                      # scikit-learn's 8x8 digits, CPU, about a minute
    python examples/vae.py --latent-dim 2       # a 2-D latent space
    python examples/vae.py --device cuda        # on a GPU (needs CuPy)

The decoder is Bernoulli, as in the paper's MNIST experiments, so the digits are
binarized: every training batch is drawn afresh with pixel ~ Bern((value + 1) / 2)
("dynamic binarization"), and the held-out digits are binarized once, with a
fixed seed. The test ELBO is then a lower bound on log p(x) of those held-out
binary images, in nats per image (averaged over 10 draws of z); metrics.json also
has the importance-weighted estimate of log p(x) with K = 100 samples of q(z|x)
(Burda et al. 2016), which is tighter.

Writes samples.png (decoder means for z ~ N(0, I)), interpolation.png (rows:
straight lines between the codes of two held-out digits), attribute.png (rows:
held-out digits with alpha * the thickness vector added to their code, alpha
from -2 to 2; the middle column is the plain reconstruction), losses.png,
metrics.json, checkpoint.safetensors and samples.npz (decoder means in [-1, 1]).
--resume continues from the checkpoint in --out.
"""
import os

import numpy as np

import minigan as mg
from minigan import optim
from minigan.data import load_digits
from minigan.eval import load_classifier, score_samples
from minigan.models import vae as vae_model
from minigan.utils import save_image, save_npz
from minigan.utils.experiment import Experiment, RunSettings, check_batch_size, example_parser, positive_int

ALPHAS = (-2.0, -1.0, 0.0, 1.0, 2.0)


def binarize(x, rng):
    """pixel ~ Bern((x + 1) / 2), written back in {-1, 1}."""
    return np.where(rng.random(x.shape) < (x + 1) / 2, 1.0, -1.0).astype(np.float32)


def main(argv=None):
    mg.backend.tune_cpu()  # faster CPU steps: keep freed memory, idle BLAS threads sleep
    parser = example_parser(__doc__.splitlines()[0], data=["digits"], steps=10000, batch_size=100, lr=1e-3,
                            nearest_neighbours=True)
    parser.add_argument("--latent-dim", type=positive_int, default=10)
    parser.add_argument("--hidden", type=positive_int, default=500)
    args = parser.parse_args(argv)

    mg.manual_seed(args.seed)
    data_rng = np.random.default_rng(args.seed)
    train, train_labels = load_digits(split="train", seed=args.seed)
    check_batch_size(parser, args.batch_size, len(train), args.data)
    test, test_labels = load_digits(split="test", seed=args.seed)
    test_binary = binarize(test, np.random.default_rng(args.seed + 1))  # fixed, apart from data_rng
    shape, data_dim = train.shape[1:], int(np.prod(train.shape[1:]))

    vae = vae_model.VAE(data_dim, args.latent_dim, args.hidden).to(args.device)
    optimizer = optim.Adam(vae.parameters(), lr=args.lr)
    run = Experiment("vae", RunSettings.from_args(args), {"vae": vae}, {"vae": optimizer}, rngs={"data": data_rng})
    run.maybe_resume()

    for _ in run.steps(args.steps, desc=f"vae/{args.data}"):
        batch = train[data_rng.choice(len(train), args.batch_size, replace=False)]
        run.log(vae_model.train_step(vae, optimizer, mg.tensor(binarize(batch, data_rng), device=args.device)))

    vae.eval()
    with mg.no_grad():
        x_test = mg.tensor(test_binary, device=args.device)
        test_elbo = np.mean([vae_model.elbo(vae, x_test).numpy() for _ in range(10)], axis=0)
        test_log_px = importance_weighted_log_px(vae, x_test, k=100)
        train_elbo = vae_model.elbo(vae, mg.tensor(binarize(train, np.random.default_rng(args.seed + 2)),
                                                   device=args.device)).numpy()

        z = vae_model.sample_latent(args.num_samples, args.latent_dim, args.device)
        samples = vae.decode_mean(z, shape).numpy().astype(np.float32)
        save_image(samples[:64], os.path.join(run.out, "samples.png"), nrow=8)
        save_npz(os.path.join(run.out, "samples.npz"), x=samples)

        codes_test, _ = vae.encoder(x_test)
        lines = [vae_model.interpolate(codes_test[2 * i], codes_test[2 * i + 1], 10) for i in range(8)]
        save_image(vae.decode_mean(mg.cat(lines), shape).numpy(), os.path.join(run.out, "interpolation.png"),
                   nrow=10)

        thickness = thickness_vector(vae, train, train_labels, args.device)
        rows = codes_test[:8]
        edited = mg.stack([rows + alpha * thickness for alpha in ALPHAS], dim=1).reshape(-1, args.latent_dim)
        edited_images = vae.decode_mean(edited, shape).numpy().reshape((8, len(ALPHAS)) + tuple(shape))
        save_image(edited_images.reshape((-1,) + shape), os.path.join(run.out, "attribute.png"), nrow=len(ALPHAS))

    classifier = load_classifier("digits")
    kept = [classifier.predict(edited_images[:, i]) == classifier.predict(edited_images[:, 2]) for i in (1, 3)]
    metrics = run.finish({
        "data": args.data, "latent_dim": args.latent_dim, "hidden": args.hidden,
        "test_elbo_nats": float(test_elbo.mean()),
        "test_log_px_iw100_nats": float(test_log_px.mean()),
        "train_elbo_nats": float(train_elbo.mean()),
        "test_images": len(test), "pixels": data_dim,
        "thickness_vector_ink_change": float(ink(edited_images[:, 3]).mean() - ink(edited_images[:, 1]).mean()),
        "thickness_vector_keeps_class": float(np.mean(kept)),
        **score_samples(classifier, samples, real=test),
        **run.check_memorization(samples, train, test, classifier),
    })
    print(metrics)
    return metrics


def ink(images):
    """Stroke thickness as the share of ink: mean pixel intensity in [0, 1], per image."""
    return ((images + 1) / 2).reshape(len(images), -1).mean(1)


def thickness_vector(vae, images, labels, device):
    """The attribute vector of thick strokes: within each digit class, the mean code
    of its most-inked quarter minus that of its least-inked quarter, averaged over
    classes (so the vector carries thickness, not a change of class)."""
    vectors = []
    for c in np.unique(labels):
        members = images[labels == c]
        order = np.argsort(ink(members))
        quarter = max(1, len(members) // 4)
        codes, _ = vae.encoder(mg.tensor(members[order], device=device))
        vectors.append(vae_model.attribute_vector(codes[-quarter:], codes[:quarter]))
    return mg.stack(vectors).mean(0)


def importance_weighted_log_px(vae, x, k=100):
    """log p(x) ~ log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x), z_k ~ q(z|x), per image (nats).
    A lower bound too, that tightens towards log p(x) as K grows (ELBO = the K = 1 case)."""
    mu, logvar = vae.encoder(x)
    mu, logvar = mu.numpy().astype(np.float64), logvar.numpy().astype(np.float64)
    log_w = []
    for _ in range(k):
        eps = mg.randn(*mu.shape, device=x.device).numpy().astype(np.float64)
        z = mu + np.exp(0.5 * logvar) * eps
        log_px_given_z = vae_model.log_likelihood(vae.decoder(mg.tensor(z.astype(np.float32), device=x.device)), x)
        log_pz = -0.5 * (z ** 2 + np.log(2 * np.pi)).sum(1)
        log_qz = -0.5 * (eps ** 2 + logvar + np.log(2 * np.pi)).sum(1)
        log_w.append(log_px_given_z.numpy().astype(np.float64) + log_pz - log_qz)
    log_w = np.stack(log_w)
    top = log_w.max(0)
    return top + np.log(np.exp(log_w - top).mean(0))


if __name__ == "__main__":
    main()
