"""Train the evaluation classifier and write its weights file.

    python -m minigan.eval.train_classifier --data digits \\
        --out minigan/eval/weights/digits.safetensors              # ~10 s on a CPU
    python -m minigan.eval.train_classifier --data fashion-mnist \\
        --out minigan/eval/weights/fashion-mnist.safetensors       # a few minutes on a CPU
    python -m minigan.eval.train_classifier --data timbre \\
        --out minigan/eval/weights/timbre.safetensors              # flute or reed, from CQT images

Plain supervised learning: cross-entropy, Adam (lr 1e-3), a fixed number of epochs
on the training split; the test split is touched once, at the end, to report the
accuracy that goes into the weights file.

On a small or shared CPU, ``OPENBLAS_NUM_THREADS=1`` can be several times faster:
these matrices are too small for BLAS threads to pay for their synchronisation.
"""
import argparse
import time

import numpy as np

from .. import backend, optim
from .. import functional as F
from ..data import DataLoader, load_digits, load_fashion_mnist, load_mnist
from ..data.timbre import load_timbre_clips
from ..data.transforms import resize
from ..utils.progress import progress
from .classifier import Classifier, save_classifier, weights_path

# data set -> (loader of a split, network shape, training schedule)
RECIPES = {
    "digits": {"load": lambda split: load_digits(split=split),
               "net": {"image_size": 8, "widths": (32, 64)}, "epochs": 30, "batch_size": 64},
    "fashion-mnist": {"load": lambda split: load_fashion_mnist(split=split),
                      "net": {"image_size": 28, "widths": (32, 64, 64)}, "epochs": 8, "batch_size": 128},
    "mnist": {"load": lambda split: load_mnist(split=split),
              "net": {"image_size": 28, "widths": (32, 64, 64)}, "epochs": 4, "batch_size": 128},
    # CQT images (1, 48, 64) of both instruments playing the same melodies, labels flute 0, reed 1;
    # squeezed to 48 x 48 in time as the classifier's predict resizes them. The melodies'
    # seeds (1000, 1001) are not those of examples/timbretron.py's data.
    "timbre": {"load": lambda split: _timbre_split(600, seed=1000 if split == "train" else 1001),
               "net": {"image_size": 48, "widths": (16, 32, 32)}, "epochs": 10, "batch_size": 64},
}


def _timbre_split(n, seed):
    clips = load_timbre_clips(n, seed=seed)
    images = resize(np.concatenate([clips.flute, clips.reed]), (48, 48))
    return images, np.repeat(np.arange(2, dtype=np.int64), n)


def accuracy(classifier, images, labels):
    """Share of ``images`` classified as their ``labels``."""
    return float((classifier.predict(images) == labels).mean())


def train_classifier(data="digits", epochs=None, batch_size=None, lr=1e-3, seed=0, device="cpu", log=print):
    """Train a ``Classifier`` on ``data``'s training split; returns it (eval mode) and its metrics."""
    if data not in RECIPES:
        raise ValueError(f"train_classifier: unknown data {data!r}; choose one of {sorted(RECIPES)}")
    recipe = RECIPES[data]
    epochs, batch_size = epochs or recipe["epochs"], batch_size or recipe["batch_size"]
    train_x, train_y = recipe["load"]("train")
    test_x, test_y = recipe["load"]("test")

    backend.manual_seed(seed)
    classifier = Classifier(in_channels=train_x.shape[1], n_classes=int(train_y.max()) + 1,
                            **recipe["net"]).to(device)
    optimizer = optim.Adam(classifier.parameters(), lr=lr)
    loader = DataLoader(train_x, train_y, batch_size=batch_size, shuffle=True, drop_last=True,
                        seed=seed, device=device)
    start = time.time()
    for epoch in range(epochs):
        classifier.train()
        losses = []
        for x, y in progress(loader, desc=f"{data} epoch {epoch + 1}/{epochs}"):
            loss = F.cross_entropy(classifier(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        log(f"epoch {epoch + 1}/{epochs}: train loss {np.mean(losses):.4f} ({time.time() - start:.0f} s)")
    classifier.eval()
    metrics = {"test_accuracy": accuracy(classifier, test_x, test_y),
               "train_accuracy": accuracy(classifier, train_x, train_y),
               "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed,
               "train_seconds": round(time.time() - start, 1), "device": device,
               "n_train": len(train_x), "n_test": len(test_x)}
    log(f"{data}: test accuracy {metrics['test_accuracy']:.4f}, train accuracy {metrics['train_accuracy']:.4f}")
    return classifier, metrics


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=sorted(RECIPES), default="digits")
    parser.add_argument("--out", default=None, help="weights file (default: the package's weights/<data>.safetensors)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    classifier, metrics = train_classifier(args.data, args.epochs, args.batch_size, args.lr, args.seed, args.device)
    out = args.out or weights_path(args.data)
    save_classifier(out, classifier.to("cpu"), args.data, metrics)
    print(f"wrote {out}")
    return metrics


if __name__ == "__main__":
    main()
