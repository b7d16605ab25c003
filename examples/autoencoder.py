"""Train an autoencoder on digits: linear (it finds PCA's subspace), bottleneck, sparse, or denoising convolutional.

    python examples/autoencoder.py                          # linear, 10 code units; principal angles to PCA
    python examples/autoencoder.py --model bottleneck       # MLP to 10 code units and back
    python examples/autoencoder.py --model sparse           # 100 sigmoid code units, KL sparsity (--penalty l1)
    python examples/autoencoder.py --model denoising        # conv autoencoder on 16x16 digits, masking noise

Writes samples.png (pairs of rows: held-out digits, then their reconstructions;
for the denoising model, triples: clean, corrupted input, output), losses.png,
metrics.json (held-out squared error per pixel; PCA's with as many components for
comparison; the principal angles between the linear autoencoder's subspace and
PCA's; the share of near-zero code units for the sparse one) and
checkpoint.safetensors. --resume continues from the checkpoint in --out.

The linear autoencoder trains on the whole training set at every step (the
default --batch-size for it) with lr 1e-2: with minibatches, the gradient noise
keeps the last code direction a few degrees off PCA's subspace (about 4 degrees
after 10000 steps of 256 images); the full-batch gradient converges to the
minimum itself, within 0.1 degree in the default 3000 steps.
"""
import os

import numpy as np

import minigan as mg
from minigan import optim
from minigan.data import load_digits
from minigan.models import autoencoder as ae
from minigan.models.pca import PCA, reconstruction_error
from minigan.utils import save_image
from minigan.utils.experiment import (Experiment, RunSettings, example_parser, check_batch_size,
                                    nonnegative_float, positive_float, positive_int, unit_float)

MODELS = ("linear", "bottleneck", "sparse", "denoising")


def build(args, data_dim):
    if args.model == "linear":
        return ae.LinearAutoencoder(data_dim, args.code_dim or 10)
    if args.model == "bottleneck":
        return ae.MLPAutoencoder(data_dim, args.code_dim or 10, hidden=(128,))
    if args.model == "sparse":
        return ae.MLPAutoencoder(data_dim, args.code_dim or 100, hidden=(), code="sigmoid")
    return ae.ConvAutoencoder(1, widths=(32, 64))


def main(argv=None):
    mg.backend.tune_cpu()  # faster CPU steps: keep freed memory, idle BLAS threads sleep
    parser = example_parser(__doc__.splitlines()[0], data=["digits"], steps=3000, batch_size=64)
    parser.set_defaults(batch_size=None)
    parser.add_argument("--lr", type=positive_float, default=None, help="Adam's step size (linear 1e-2, others 1e-3)")
    parser.add_argument("--model", choices=MODELS, default="linear")
    parser.add_argument("--code-dim", type=positive_int, default=None,
                        help="code units (linear 10, bottleneck 10, sparse 100)")
    parser.add_argument("--penalty", choices=["kl", "l1"], default="kl", help="sparsity penalty")
    parser.add_argument("--beta", type=nonnegative_float, default=None,
                        help="sparsity weight (kl: 3, as Ng's notes; l1: 0.1)")
    parser.add_argument("--noise", type=unit_float, default=0.25, help="share of pixels masked (denoising)")
    args = parser.parse_args(argv)

    mg.manual_seed(args.seed)
    data_rng = np.random.default_rng(args.seed)
    size = 16 if args.model == "denoising" else 8
    train, _ = load_digits(size=size, split="train", seed=args.seed)
    check_batch_size(parser, args.batch_size, len(train), args.data)
    test, _ = load_digits(size=size, split="test", seed=args.seed)
    shape, data_dim = train.shape[1:], int(np.prod(train.shape[1:]))
    if args.model == "linear":  # full-batch: see the docstring
        args.batch_size, args.lr = args.batch_size or len(train), args.lr or 1e-2
    args.batch_size, args.lr = args.batch_size or 64, args.lr or 1e-3
    beta = args.beta if args.beta is not None else (3.0 if args.penalty == "kl" else 0.1)

    model = build(args, data_dim).to(args.device)
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    args.out = args.out or os.path.join("runs", f"autoencoder-{args.model}-{args.data}")
    run = Experiment("autoencoder", RunSettings.from_args(args), {"autoencoder": model}, {"autoencoder": optimizer},
                     rngs={"data": data_rng})
    run.maybe_resume()

    def corrupt(x):
        return ae.masking_noise(x, args.noise)

    for _ in run.steps(args.steps, desc=f"autoencoder-{args.model}/{args.data}"):
        x = mg.tensor(train[data_rng.choice(len(train), args.batch_size, replace=False)], device=args.device)
        if args.model == "sparse":
            run.log(ae.sparse_train_step(model, optimizer, x, args.penalty, beta))
        elif args.model == "denoising":
            run.log(ae.denoising_train_step(model, optimizer, x, corrupt))
        else:
            run.log(ae.train_step(model, optimizer, x))

    model.eval()
    x_test = mg.tensor(test, device=args.device)
    metrics = {"data": args.data, "model": args.model, "image_size": size}
    with mg.no_grad():
        if args.model == "denoising":
            noisy = corrupt(x_test)
            out = model(noisy)
            metrics.update(test_mse_noisy_input=mse(noisy, x_test), test_mse_denoised=mse(out, x_test),
                           test_mse_clean_input=mse(model(x_test), x_test), masked_share=args.noise)
            rows = [x_test[:16].numpy(), noisy[:16].numpy(), out[:16].numpy()]
        else:
            out = model(x_test)
            out, code = out if isinstance(out, tuple) else (out, None)
            metrics["test_mse"] = mse(out, x_test)
            rows = [x_test[:16].numpy(), out[:16].numpy()]
            if code is not None and args.model == "sparse":
                activations = code.numpy()
                metrics.update(penalty=args.penalty, beta=beta, code_dim=activations.shape[1],
                               mean_code_activation=float(activations.mean()),
                               share_of_code_below_0_1=float((activations < 0.1).mean()))
    if args.model in ("linear", "bottleneck"):
        k = args.code_dim or 10
        pca = PCA(data_dim, k).to(args.device).fit(mg.tensor(train, device=args.device))
        metrics.update(code_dim=k, pca_test_mse=reconstruction_error(pca, x_test))
        if args.model == "linear":
            angles = np.degrees(ae.principal_angles(model.subspace(), pca.components.numpy().T))
            metrics.update(principal_angles_to_pca_deg=[round(float(a), 3) for a in angles],
                           max_principal_angle_deg=float(angles.max()))
    grid = np.stack([r.reshape((-1,) + shape) for r in rows], axis=0)  # (rows, 16, C, H, W)
    grid = np.concatenate([grid[:, :8].reshape((-1,) + shape), grid[:, 8:].reshape((-1,) + shape)])
    save_image(grid, os.path.join(run.out, "samples.png"), nrow=8)
    metrics = run.finish(metrics)
    print(metrics)
    return metrics


def mse(x_hat, x):
    """Mean squared error per pixel."""
    return float(((x_hat - x) ** 2).mean().item())


if __name__ == "__main__":
    main()
