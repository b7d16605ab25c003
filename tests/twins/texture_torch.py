"""Gatys' texture synthesis and the texture encoder's training step, in plain torch.

On the VGG-19 twin (``tests/twins/vgg19_torch.py``): Gram matrices / (H W), the per-layer
mean squared Gram difference, and Adam on the pixels clamped to [-1, 1]; and the crop
classifier (global average of the last layer + a linear head) with its cross-entropy step.
The tests load minigan's weights into these.
"""
import torch

from .vgg19_torch import VGG19, gram


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
        self.vgg = VGG19(last, "max", width)
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
