"""PCA by eigendecomposition of the covariance: eigenfaces and reconstructions with more and more components.

    python examples/pca.py                      # the 100 faces of scikit-image's lfw_subset
    python examples/pca.py --data digits        # scikit-learn's 8x8 digits
    python examples/pca.py --steps 20           # walk through the first 20 components only

PCA has no gradient steps: the fit is one eigendecomposition. A "step" here adds
one principal component, and the losses plotted are the reconstruction errors
(mean squared error per pixel) of training and held-out images with that many
components. --batch-size is accepted with the shared command line and unused:
the covariance is computed from all training images at once.

Writes samples.png (held-out images reconstructed from 1, 2, 5, 10, 20, 40 and
all walked components, next to the original), eigenfaces.png (the mean and the
first components), losses.png, metrics.json, checkpoint.safetensors, and
samples.npz (draws from the Gaussian the PCA fits: x = mean + V_k z,
z ~ N(0, diag(lambda)), clipped to the data range [-1, 1]).
"""
import os

import numpy as np

import minigan as mg
from minigan.data import load_digits, load_lfw_subset
from minigan.models import pca as pca_model
from minigan.utils import save_image, save_npz
from minigan.utils.experiment import Experiment, RunSettings, example_parser

SHOWN_K = (1, 2, 5, 10, 20, 40)


def load_data(name, seed, test_fraction=0.2):
    """Training and held-out images (N, 1, H, W) in [-1, 1]."""
    if name == "digits":
        return load_digits(split="train", seed=seed)[0], load_digits(split="test", seed=seed)[0]
    faces, _ = load_lfw_subset()
    order = np.random.default_rng(seed).permutation(len(faces))
    n_test = int(round(test_fraction * len(faces)))
    return faces[order[n_test:]], faces[order[:n_test]]


def main(argv=None):
    mg.backend.tune_cpu()  # faster CPU steps: keep freed memory, idle BLAS threads sleep
    parser = example_parser(__doc__.splitlines()[0], data=["lfw", "digits"], steps=100, batch_size=64)
    args = parser.parse_args(argv)

    mg.manual_seed(args.seed)
    train, test = load_data(args.data, args.seed)
    shape, data_dim = train.shape[1:], int(np.prod(train.shape[1:]))
    rank = min(len(train) - 1, data_dim)  # the centred data has at most this many nonzero eigenvalues
    steps = min(args.steps, rank)

    pca = pca_model.PCA(data_dim, rank).to(args.device)
    run = Experiment("pca", RunSettings.from_args(args), {"pca": pca}, {})
    x_train, x_test = mg.tensor(train, device=args.device), mg.tensor(test, device=args.device)
    pca.fit(x_train)  # the whole training; deterministic, so a resumed run redoes it identically
    run.maybe_resume()

    for step in run.steps(steps, desc=f"pca/{args.data}"):
        k = step + 1
        run.log({"train_mse": pca_model.reconstruction_error(pca, x_train, k),
                 "test_mse": pca_model.reconstruction_error(pca, x_test, k)})

    ratio = pca.explained_variance_ratio()
    cumulative = np.cumsum(ratio)
    shown = [k for k in SHOWN_K if k < steps] + [steps]

    # reconstructions: one held-out image per row, k = shown..., then the original
    rows = x_test[:8]
    with mg.no_grad():
        columns = [pca(rows, k).numpy() for k in shown] + [rows.numpy()]
    grid = np.stack(columns, axis=1).reshape((-1,) + shape)
    save_image(grid, os.path.join(run.out, "samples.png"), nrow=len(columns))
    # eigenfaces: the mean, then the components, each scaled to fill [-1, 1]
    components = pca.components.numpy()[:15]
    components = components / np.abs(components).max(axis=1, keepdims=True)
    eigenfaces = np.concatenate([pca.mean.numpy()[None], components]).reshape((-1,) + shape)
    save_image(eigenfaces, os.path.join(run.out, "eigenfaces.png"), nrow=8)

    # the Gaussian PCA fits, restricted to the walked components
    with mg.no_grad():
        z = mg.randn(args.num_samples, steps, device=args.device) * \
            mg.tensor(np.sqrt(pca.explained_variance.numpy()[:steps]), device=args.device)
        samples = np.clip(pca.decode(z).numpy(), -1, 1).reshape((-1,) + shape).astype(np.float32)
    save_npz(os.path.join(run.out, "samples.npz"), x=samples)

    metrics = run.finish({
        "data": args.data, "train_images": len(train), "test_images": len(test), "data_dim": data_dim,
        "components_walked": steps,
        "explained_variance_ratio_top10": [round(float(r), 5) for r in ratio[:10]],
        "components_for_90pct_variance": int(np.searchsorted(cumulative, 0.90) + 1),
        "components_for_95pct_variance": int(np.searchsorted(cumulative, 0.95) + 1),
        "train_mse_by_k": {str(k): run.history["train_mse"][k - 1] for k in shown},
        "test_mse_by_k": {str(k): run.history["test_mse"][k - 1] for k in shown},
    })
    print(metrics)
    return metrics


if __name__ == "__main__":
    main()
