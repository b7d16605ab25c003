"""Gatys' texture synthesis and the texture encoder's training step, in plain torch.

A VGG-19 front with torchvision's layer indices and keys (``features.N.weight``),
narrowed by a width factor, the ImageNet normalization of [-1, 1] images, Gram
matrices / (H W), the per-layer mean squared Gram difference, and Adam on the pixels
clamped to [-1, 1]; and the crop classifier (global average of the last layer + a
linear head) with its cross-entropy step. The tests load minigan's weights into these.
"""
import torch

# the configuration, the normalization and the layer names (checked against torchvision's in tests/test_features.py)
from minigan.models.features import IMAGENET_MEAN as MEAN
from minigan.models.features import IMAGENET_STD as STD
from minigan.models.features import LAYERS
from minigan.models.features import VGG19_CONFIG as CONFIG


class VGGFront(torch.nn.Module):
    def __init__(self, last="relu4_1", pool="avg", width=0.25):
        super().__init__()
        layers, channels = [], 3
        for w in CONFIG:
            if w == "M":
                layers.append(torch.nn.MaxPool2d(2, 2) if pool == "max" else torch.nn.AvgPool2d(2, 2))
            else:
                out = max(1, round(w * width))
                layers += [torch.nn.Conv2d(channels, out, 3, padding=1), torch.nn.ReLU()]
                channels = out
        self.features = torch.nn.Sequential(*layers[:LAYERS[last] + 1])
        self.channels = [m for m in self.features if isinstance(m, torch.nn.Conv2d)][-1].out_channels

    def forward(self, images, names):
        x = ((images + 1) / 2 - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
        wanted, out = {LAYERS[n]: n for n in names}, {}
        for index, module in enumerate(self.features):
            x = module(x)
            if index in wanted:
                out[wanted[index]] = x
        return out


def gram(features):
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (h * w)


def texture_loss(network, images, targets, normalized=True):
    """Sum over layers of the mean squared Gram difference, each divided by the mean square
    of its target where ``normalized``."""
    features = network(images, list(targets))
    return sum(torch.nn.functional.mse_loss(gram(features[k]), t) / ((t ** 2).mean() + 1e-12 if normalized else 1)
               for k, t in targets.items())


def gatys_step(network, pixels, optimizer, targets, normalized=True):
    optimizer.zero_grad()
    loss = texture_loss(network, pixels, targets, normalized)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        pixels.clamp_(-1, 1)
    return loss.item()


class CropClassifier(torch.nn.Module):
    def __init__(self, n_classes, width=0.25, last="relu4_1"):
        super().__init__()
        self.vgg = VGGFront(last, "max", width)
        self.last = last
        self.head = torch.nn.Linear(self.vgg.channels, n_classes)

    def forward(self, images):
        return self.head(self.vgg(images, [self.last])[self.last].mean(dim=(2, 3)))


def train_step(classifier, optimizer, images, labels):
    optimizer.zero_grad()
    loss = torch.nn.functional.cross_entropy(classifier(images), labels)
    loss.backward()
    optimizer.step()
    return loss.item()
