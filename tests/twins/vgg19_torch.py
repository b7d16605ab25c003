"""VGG-19's convolutional stack in plain torch, the twin of ``minigan.models.features``.

torchvision's ``vgg19().features``: the same layer indices and keys (``features.N.weight``),
every width times ``width`` (at least one channel), max or average pooling, cut after the layer
``last``. ``forward(images, names)`` takes images in [-1, 1], applies ImageNet's normalization
(float32 constants, as torchvision's transforms hold them, cast to the images' dtype) and returns
the named layers' outputs. The configuration and the layer names are read from minigan:
``tests/test_features.py`` checks them against torchvision's indices.
"""
import torch

from minigan.models.features import IMAGENET_MEAN, IMAGENET_STD, LAYERS, VGG19_CONFIG


class VGG19(torch.nn.Module):
    def __init__(self, last="pool5", pool="max", width=1.0):
        super().__init__()
        layers, channels = [], 3
        for w in VGG19_CONFIG:
            if w == "M":
                layers.append(torch.nn.MaxPool2d(2, 2) if pool == "max" else torch.nn.AvgPool2d(2, 2))
            else:
                out = max(1, round(w * width))
                layers += [torch.nn.Conv2d(channels, out, 3, padding=1), torch.nn.ReLU()]
                channels = out
        self.last = last
        self.features = torch.nn.Sequential(*layers[:LAYERS[last] + 1])
        self.channels = [m for m in self.features if isinstance(m, torch.nn.Conv2d)][-1].out_channels

    def forward(self, images, names):
        mean = torch.tensor(IMAGENET_MEAN).to(images.dtype).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).to(images.dtype).view(1, 3, 1, 1)
        x = ((images + 1) / 2 - mean) / std
        wanted, out = {LAYERS[n]: n for n in names}, {}
        for index, module in enumerate(self.features):
            x = module(x)
            if index in wanted:
                out[wanted[index]] = x
            if index == max(wanted):
                break
        return out


def gram(features):
    """The Gram matrix of (N, C, H, W) features over positions, divided by H W."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (h * w)
