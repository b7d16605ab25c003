r"""The feature network: VGG-19 (Simonyan & Zisserman 2015), the eyes of texture
synthesis, style transfer and perceptual losses.

The idea: a deep convolutional network turns an image into a stack of feature maps,
shallow layers answering "which colours and edges are here", deeper ones "which
parts of which objects". Two statistics of those maps carry the lectures:

  * the maps themselves at a deep layer (``conv4_2``, ``relu5_4``): *content*, what
    is where (Gatys' content loss, SRGAN's perceptual loss);
  * their Gram matrices G_l = F_l F_l^T / (H W), channel-by-channel correlations
    summed over all positions, so every "where" is thrown away: *texture* or
    *style* (Gatys et al. 2015, 2016), and their per-channel mean and standard
    deviation, the diagonal part of that (AdaIN, Huang & Belongie 2017).

``VGG19`` is torchvision's ``vgg19().features`` with the same indices, so its
``state_dict`` keys are torchvision's (``features.0.weight`` ... ``features.34.bias``)
and a weights file someone already has loads unchanged. The layers, with the names
the papers use:

    index  0  2     5  7     10 12 14 16     19 21 23 25     28 30 32 34
    conv   1_1 1_2  2_1 2_2  3_1 3_2 3_3 3_4  4_1 4_2 4_3 4_4  5_1 5_2 5_3 5_4
    width  64       128      256             512             512
    ReLU after each conv (index + 1); 2x2 max pooling at 4, 9, 18, 27, 36.

No pretrained ImageNet weights can be downloaded here, so ``vgg19(weights=...)``
fills it one of three ways:

  * ``"random"``: torchvision's initialization (He normal, fan-out; zero bias).
    Random convolutional features already carry texture and style statistics
    (Ustyuzhaninov et al. 2017; He, Wang & Hopcroft 2016);
  * a path to a ``.safetensors`` file with torchvision's keys (the papers' recipe,
    wherever someone has the ImageNet weights); ``classifier.*`` keys are ignored;
  * a state dict already in memory.

Images come in minigan's range [-1, 1]; ``forward`` maps them to [0, 1] and then
normalizes by ImageNet's channel mean and standard deviation, as torchvision's
weights expect. ``pool="avg"`` replaces max pooling by average pooling, which Gatys
et al. found gives smoother synthesized textures (the weights are unchanged).
"""
import os

import numpy as np

import minigan as mg
from minigan import functional as F
from minigan import nn

# torchvision's configuration "E": widths of the 3x3 convolutions, "M" a 2x2 max pool.
VGG19_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                512, 512, 512, 512, "M", 512, 512, 512, 512, "M")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _layer_names():
    """Index of each named layer in ``features``: conv1_1 -> 0, relu1_1 -> 1, pool1 -> 4, ..."""
    names, block, conv, index = {}, 1, 1, 0
    for width in VGG19_CONFIG:
        if width == "M":
            names[f"pool{block}"] = index
            block, conv, index = block + 1, 1, index + 1
        else:
            names[f"conv{block}_{conv}"] = index
            names[f"relu{block}_{conv}"] = index + 1
            conv, index = conv + 1, index + 2
    return names


LAYERS = _layer_names()

# The layers the papers read.
GATYS_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
GATYS_CONTENT_LAYER = "relu4_2"
ADAIN_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
SRGAN_LAYER = "relu5_4"  # the paper's VGG54: the 4th conv of block 5, after its ReLU


def layer_index(name):
    """The index in ``features`` of a layer named as in the papers ('relu4_1'), or an int."""
    if isinstance(name, (int, np.integer)):
        if not 0 <= name < len(LAYERS):
            raise ValueError(f"VGG-19 has layers 0..{len(LAYERS) - 1}, got {name}")
        return int(name)
    if name not in LAYERS:
        raise ValueError(f"unknown VGG-19 layer {name!r}; the names are conv{{b}}_{{i}}, relu{{b}}_{{i}} "
                         f"and pool{{b}} as in {sorted(LAYERS, key=LAYERS.get)[:6]} ...")
    return LAYERS[name]


class VGG19(nn.Module):
    """VGG-19's convolutional part, cut after layer ``last`` (a name or index).

    ``width`` < 1 narrows every layer by that factor (64 -> 16 at 0.25): 1/width^2 of
    the work, for random or self-trained weights on a CPU; a weights file needs 1.

    ``forward(x, layers)`` returns a dict from each requested layer name to its
    feature map; the network stops at the deepest layer asked for.
    """

    def __init__(self, last="relu5_4", pool="max", width=1.0):
        super().__init__()
        if pool not in ("max", "avg"):
            raise ValueError(f"pool must be 'max' or 'avg', got {pool!r}")
        if not 0 < width <= 1:
            raise ValueError(f"width must be in (0, 1], got {width}")
        self.last = layer_index(last)
        self.pool, self.width = pool, width
        layers, in_channels = [], 3
        for width in VGG19_CONFIG:
            if len(layers) > self.last:
                break
            if width == "M":
                layers.append(nn.MaxPool2d(2, 2) if pool == "max" else nn.AvgPool2d(2, 2))
            else:
                channels = max(1, round(width * self.width))
                layers += [nn.Conv2d(in_channels, channels, 3, padding=1), nn.ReLU()]
                in_channels = channels
        self.features = nn.Sequential(*layers[:self.last + 1])
        self.register_buffer("mean", mg.tensor(np.array(IMAGENET_MEAN, np.float32).reshape(1, 3, 1, 1)),
                             persistent=False)
        self.register_buffer("std", mg.tensor(np.array(IMAGENET_STD, np.float32).reshape(1, 3, 1, 1)),
                             persistent=False)
        self.reset_parameters()

    def reset_parameters(self):
        """torchvision's initialization: He normal with fan-out for the convolutions, zero bias."""
        for module in self.features:
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def normalize(self, images):
        """[-1, 1] images -> ImageNet-normalized [0, 1] images, the input torchvision's weights expect."""
        return ((images + 1) * 0.5 - self.mean) / self.std

    def forward(self, images, layers=GATYS_STYLE_LAYERS):
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"VGG19 expects (N, 3, H, W) images in [-1, 1], got shape {tuple(images.shape)}")
        if isinstance(layers, (str, int)):
            layers = (layers,)
        wanted = {layer_index(name): name for name in layers}
        deepest = max(wanted)
        if deepest > self.last:
            raise ValueError(f"layer {wanted[deepest]!r} is deeper than this network's last layer "
                             f"(index {self.last}); build it with a deeper last=")
        out, x = {}, self.normalize(images)
        for index, module in enumerate(self.features):
            x = module(x)
            if index in wanted:
                out[wanted[index]] = x
            if index == deepest:
                break
        return out


def vgg19(weights="random", last="relu5_4", pool="max", width=1.0, seed=None):
    """A VGG-19 feature network in eval mode with frozen weights (see the module docstring).

    ``weights``: "random", a path to a safetensors file with torchvision's keys, or a
    state dict. ``seed`` makes the random weights reproducible.
    """
    if seed is not None:
        mg.manual_seed(seed)
    network = VGG19(last=last, pool=pool, width=width)
    if isinstance(weights, str) and weights == "random":
        pass
    elif isinstance(weights, (str, os.PathLike)):
        if width != 1:
            raise ValueError(f"a VGG-19 weights file has the full widths; width={width} cannot load it")
        load_vgg19_weights(network, weights)
    elif hasattr(weights, "keys"):
        _load_features(network, weights, "the state dict")
    else:
        raise TypeError(f"weights must be 'random', a safetensors path or a state dict, got {type(weights).__name__}")
    network.eval().requires_grad_(False)
    return network


def load_vgg19_weights(network, path):
    """Load torchvision-keyed VGG-19 weights from a safetensors file into ``network``."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no VGG-19 weights file at {path!r} (a .safetensors file with torchvision's "
                                f"keys, e.g. features.0.weight)")
    from safetensors.numpy import load_file
    _load_features(network, load_file(path), repr(path))
    return network


def _load_features(network, state, source):
    """Copy the ``features.*`` entries the (possibly cut) network has; everything else is ignored."""
    own = network.state_dict()
    missing = [key for key in own if key not in state]
    if missing:
        raise ValueError(f"{source} lacks {len(missing)} VGG-19 entries this network needs, "
                         f"e.g. {missing[0]!r}; is it torchvision's vgg19 state dict?")
    network.load_state_dict({key: state[key] for key in own})


def gram_matrix(features):
    r"""The Gram matrix of each feature map, normalized by the number of positions.

    ``features`` (N, C, H, W) -> (N, C, C) with G[c, d] = sum_p F[c, p] F[d, p] / (H W):
    how strongly channels c and d fire together, wherever that is. (Gatys et al.
    divide their loss by 4 C^2 (H W)^2 instead; the two differ by constants per layer.)
    """
    if features.ndim != 4:
        raise ValueError(f"gram_matrix expects (N, C, H, W) feature maps, got shape {tuple(features.shape)}")
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (h * w)


def gram_loss(features, targets):
    """Sum over layers of the mean squared difference of Gram matrices (Gatys' style loss)."""
    loss = 0.0
    for name, target in targets.items():
        loss = loss + F.mse_loss(gram_matrix(features[name]), target)
    return loss
