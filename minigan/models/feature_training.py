r"""A VGG-19 front the project trains itself, for texture synthesis without ImageNet.

Gatys' texture synthesis matches Gram matrices of an ImageNet-trained VGG-19. No such
weights can be fetched here. Random weights (``vgg19(weights="random")``) are one
substitute; this module trains the other: the front of VGG-19, on the colour pictures
that ship offline
(``minigan.data.colour``: the training split of the scikit-learn / scikit-image photos
and GIMP's patterns).

**The task: which picture is this crop from?** Each training picture is a class;
a batch is random 32x32 crops (random flips too) labelled with their picture's index.
The network is VGG-19 up to relu4_1, narrowed (``width`` 1/4: 16 ... 128 channels),
then a global average over positions and one linear layer to the classes:

    logits = W mean_{positions} relu4_1(crop) + b,   loss = cross-entropy.

Why this task rather than an autoencoder: telling textures apart from crops at
random places is what Gram matching needs, features whose *position-free* statistics
differ from texture to texture (the global average is the first moment of the
feature map, the Gram matrix's diagonal-ish relative). An autoencoder is rewarded
for keeping every pixel, whatever its statistics, and ImageNet's classifier itself
is a classifier. The pooling is max in training, as in VGG; synthesis may swap it
for average pooling with the same weights, as Gatys did.

The recipe (``RECIPE``): Adam lr 1e-3, batch 32, 2000 steps, He init (torchvision's),
crops of 32 pixels. ``python -m minigan.models.feature_training`` retrains and writes
``weights/vgg19_texture.safetensors`` (torchvision's keys, ``features.*`` only; 0.9 MB),
which ships in the package; ``trained_vgg19()`` loads it. It tells 92.8% of fresh
crops apart among 43 pictures (chance 2.3%) after 276 s on a CPU.

The outcome (docs/texture.md): for Gatys' synthesis at 64x64 these features did *not*
beat random ones of the same width: random weights came closer to the exemplars'
patch statistics on 4 of 6 textures. ``examples/texture.py`` defaults to random.
"""
import argparse
import os
import time

import numpy as np

import minigan as mg
from minigan import functional as F
from minigan import nn, optim

from .features import VGG19, vgg19

WEIGHTS = os.path.join(os.path.dirname(__file__), "weights", "vgg19_texture.safetensors")
RECIPE = {"width": 0.25, "last": "relu4_1", "crop": 32, "batch_size": 32, "steps": 2000, "lr": 1e-3}


class CropClassifier(nn.Module):
    """VGG-19's front (``features``, torchvision's keys) + global average + a linear head."""

    def __init__(self, n_classes, width=RECIPE["width"], last=RECIPE["last"], pool="max"):
        super().__init__()
        self.vgg = VGG19(last=last, pool=pool, width=width)
        self.last = last
        channels = [m for m in self.vgg.features if isinstance(m, nn.Conv2d)][-1].out_channels
        self.head = nn.Linear(channels, n_classes)

    def forward(self, images):
        features = self.vgg(images, self.last)[self.last]
        return self.head(features.mean(dim=(2, 3)))


def train_step(classifier, optimizer, images, labels):
    """One step of cross-entropy on (images, labels); returns the loss (a float)."""
    optimizer.zero_grad()
    loss = F.cross_entropy(classifier(images), labels)
    loss.backward()
    optimizer.step()
    return float(loss.item())


def crop_batch(pictures, n, size, rng):
    """(images, labels): ``n`` random crops of the pictures, each flipped at random, and
    the index of its picture."""
    from ..data.colour import random_crops
    images, labels = random_crops(pictures, n, size, rng, return_index=True)
    flip = rng.random(n) < 0.5
    images[flip] = images[flip, :, :, ::-1]
    return np.ascontiguousarray(images), labels.astype(np.int64)


def train_encoder(steps=RECIPE["steps"], batch_size=RECIPE["batch_size"], crop=RECIPE["crop"], lr=RECIPE["lr"],
                  width=RECIPE["width"], last=RECIPE["last"], seed=0, pictures=None, log=print):
    """Train a ``CropClassifier`` on the training split of minigan.data.colour (or on
    ``pictures``, a list of (3, H, W) arrays); returns it and its metrics: the loss and
    accuracy on 512 fresh crops of the same pictures (other places, other flips)."""
    if pictures is None:
        from ..data.colour import load_colour
        pictures = load_colour()[0]
    mg.manual_seed(seed)
    rng = np.random.default_rng(seed)
    classifier = CropClassifier(len(pictures), width, last)
    optimizer = optim.Adam(classifier.parameters(), lr=lr)
    start, losses = time.time(), []
    for step in range(steps):
        images, labels = crop_batch(pictures, batch_size, crop, rng)
        losses.append(train_step(classifier, optimizer, mg.tensor(images), mg.tensor(labels)))
        if log and (step + 1) % 200 == 0:
            log(f"step {step + 1}/{steps}: loss {np.mean(losses[-200:]):.3f} ({time.time() - start:.0f} s)")
    classifier.eval()
    images, labels = crop_batch(pictures, 512, crop, np.random.default_rng(seed + 1))
    with mg.no_grad():
        logits = classifier(mg.tensor(images))
        loss = float(F.cross_entropy(logits, mg.tensor(labels)).item())
    accuracy = float((logits.numpy().argmax(axis=1) == labels).mean())
    return classifier, {"classes": len(pictures), "steps": steps, "final_train_loss": float(np.mean(losses[-100:])),
                        "heldout_crop_loss": loss, "heldout_crop_accuracy": accuracy,
                        "chance": 1 / len(pictures), "wall_time_s": round(time.time() - start, 1)}


def save_encoder(classifier, path=WEIGHTS, metrics=None):
    """Write the VGG part's weights (``features.*``, torchvision's keys) to ``path``, atomically."""
    from safetensors.numpy import save
    from ..utils.common import atomic_write
    state = {k: np.ascontiguousarray(v.numpy()) for k, v in classifier.vgg.state_dict().items()}
    meta = {"width": str(classifier.vgg.width), "last": classifier.last,
            **{k: str(v) for k, v in (metrics or {}).items()}}
    atomic_write(path, save(state, metadata=meta))
    return path


def trained_vgg19(last=RECIPE["last"], pool="avg", path=WEIGHTS):
    """The VGG-19 front trained by ``train_encoder`` (width and depth from the file),
    frozen, in eval mode; ``pool="avg"`` by default, as Gatys used for synthesis."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no trained VGG-19 weights at {path!r}; write them with "
                                "`python -m minigan.models.feature_training`")
    from safetensors import safe_open
    from safetensors.numpy import load_file
    with safe_open(path, "np") as f:
        meta = f.metadata() or {}
    width, deepest = float(meta.get("width", RECIPE["width"])), meta.get("last", RECIPE["last"])
    from .features import layer_index
    if layer_index(last) > layer_index(deepest):
        raise ValueError(f"the trained VGG-19 ends at {deepest}; {last!r} is deeper")
    return vgg19(load_file(path), last=last, pool=pool, width=width)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=RECIPE["steps"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=WEIGHTS)
    args = parser.parse_args(argv)
    classifier, metrics = train_encoder(steps=args.steps, seed=args.seed)
    print(metrics)
    print("wrote", save_encoder(classifier, args.out, metrics))


if __name__ == "__main__":
    main()
