r"""Neural style transfer: Gatys, Ecker & Bethge 2016 (optimize the pixels) and Huang &
Belongie 2017 (AdaIN: one forward pass through a trained decoder).

The lecture's point: a convolutional network's feature maps split an image in two.
Deep feature maps, compared position by position, hold its *content* (what is where);
statistics that throw the positions away hold its *style* (which textures and colours,
anywhere). So an image can be asked to have the content of one picture and the style
of another, and the answer keeps the content's layout while taking the style's
textures and colours.

Gatys et al. 2016 (eq. 1-7). With F^l the (N_l channels x M_l positions) feature map of
the image x at layer l, P^l the content image's, G^l = F^l F^l^T the Gram matrix and
A^l the style image's:

    L_content = 1/2 sum_ij (F^l_ij - P^l_ij)^2                 at relu4_2 ("conv4_2")
    E_l       = 1 / (4 N_l^2 M_l^2) sum_ij (G^l_ij - A^l_ij)^2
    L_style   = sum_l w_l E_l,  w_l = 1/5                       at relu1_1 ... relu5_1
    L_total   = alpha L_content + beta L_style,  alpha/beta = 1e-3 (their Fig. 3 B-D)

``minigan.models.features.gram_matrix`` divides by M_l, so E_l is a quarter of its
mean squared difference and L_style = ``gram_loss`` / 20. The pixels are optimized
(the paper uses L-BFGS; minigan.optim has no L-BFGS, so Adam), starting from the
content image (their Fig. 6 starts from noise, the content or the style image; all
three end in similar images, the content start gets there in fewer steps).

Huang & Belongie 2017 (sec. 5, 6). A fixed encoder f (VGG-19 up to relu4_1), AdaIN
(eq. 8) of the content's features to the style's,

    t = AdaIN(f(c), f(s)) = sigma(f(s)) (f(c) - mu(f(c))) / sigma(f(c)) + mu(f(s)),

and a decoder g that mirrors the encoder (nearest upsampling where it pools, 3x3
convolutions with reflection padding, no normalization), trained with

    L = L_c + lambda L_s,   L_c = || f(g(t)) - t ||_2,
    L_s = sum_i || mu(phi_i(g(t))) - mu(phi_i(s)) ||_2 + || sigma(phi_i(g(t))) - sigma(phi_i(s)) ||_2

over phi_i = relu1_1, relu2_1, relu3_1, relu4_1, lambda = 10 (the paper's Fig. 10
default and its code's ``style_weight``). Like the paper's code the norms are mean
squared errors, and sigma is the square root of the (biased) variance + 1e-5. At
test time alpha in [0, 1] trades content for style (eq. 14):
t = alpha AdaIN(f(c), f(s)) + (1 - alpha) f(c); alpha = 0 decodes the content's own
features.

The features: no ImageNet weights can be downloaded, so ``features`` is "random"
(torchvision's He-normal initialization, seeded) or a safetensors file with
torchvision's keys (``minigan.models.features.vgg19``); ``width`` narrows every layer.
"""
import numpy as np

import minigan as mg
from minigan import functional as F
from minigan import nn
from minigan.models.features import (ADAIN_LAYERS, GATYS_CONTENT_LAYER, GATYS_STYLE_LAYERS, gram_matrix, gram_loss,
                                     vgg19)

FEATURES = "random"  # the feature network's weights: "random", or a safetensors path with torchvision's keys

GATYS_ALPHA = 1.0    # content weight
GATYS_BETA = 1e3     # style weight: alpha / beta = 1e-3, the paper's Fig. 3 B-D
GATYS_INITS = ("content", "noise", "style")
ADAIN_LAMBDA = 10.0  # the style loss's weight, the paper's default
ADAIN_LAST = "relu4_1"
EPS = 1e-5


def feature_network(features=FEATURES, last="relu5_1", width=1.0, seed=0):
    """The frozen VGG-19 both methods look through: ``features`` "random" (seeded) or a
    safetensors file with torchvision's keys (full width only)."""
    return vgg19(features, last=last, width=width, seed=seed if features == "random" else None)


def _check_image(image, name):
    shape = tuple(image.shape)
    if len(shape) != 4 or shape[1] != 3:
        raise ValueError(f"{name} must be (N, 3, H, W) in [-1, 1], got shape {shape}")


def _tensor(x, device=None):
    return x if isinstance(x, mg.Tensor) else mg.tensor(np.asarray(x, dtype=np.float32), device=device)


# ---------------------------------------------------------------- Gatys et al. 2016


def gatys_targets(network, content, style, content_layer=GATYS_CONTENT_LAYER, style_layers=GATYS_STYLE_LAYERS):
    """(P, {layer: A}): the content image's features at ``content_layer`` and the style
    image's Gram matrices. The two images may differ in size."""
    _check_image(content, "content")
    _check_image(style, "style")
    with mg.no_grad():
        p = network(content, (content_layer,))[content_layer]
        a = {name: gram_matrix(f) for name, f in network(style, style_layers).items()}
    return p, a


def gatys_losses(network, image, content_target, style_grams, content_layer=GATYS_CONTENT_LAYER):
    """{"content": L_content, "style": L_style} of ``image`` (eq. 1 and 5 of the paper,
    with its normalization: see the module docstring)."""
    _check_image(image, "image")
    layers = tuple(style_grams) + (content_layer,)
    features = network(image, layers)
    if tuple(features[content_layer].shape) != tuple(content_target.shape):
        raise ValueError(f"image gives {content_layer} features of shape {tuple(features[content_layer].shape)}, "
                         f"the content target has {tuple(content_target.shape)}: the image and the content "
                         f"image must have the same size")
    content = 0.5 * ((features[content_layer] - content_target) ** 2).sum()
    style = gram_loss(features, style_grams) / (4 * len(style_grams))  # E_l = mse / 4, w_l = 1 / L
    return {"content": content, "style": style}


def gatys_loss(losses, alpha=GATYS_ALPHA, beta=GATYS_BETA):
    """L_total = alpha L_content + beta L_style (eq. 7)."""
    return alpha * losses["content"] + beta * losses["style"]


class Pixels(nn.Module):
    """The image being optimized, as the one parameter of a module (so that a checkpoint
    and an optimizer hold it as they hold any weights)."""

    def __init__(self, image):
        super().__init__()
        self.image = nn.Parameter(_tensor(image).detach())

    def forward(self):
        return self.image


def initial_image(content, style, init="content", rng=None):
    """The optimization's start (the paper's Fig. 6): the content image, the style image
    resized to the content's size, or white noise in [-1, 1]."""
    content = np.asarray(content, dtype=np.float32)
    if init == "content":
        return content.copy()
    if init == "style":
        from minigan.data.transforms import resize
        return np.clip(resize(np.asarray(style, np.float32), content.shape[2:]), -1, 1).astype(np.float32)
    if init == "noise":
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        return rng.uniform(-1, 1, content.shape).astype(np.float32)
    raise ValueError(f"init must be one of {GATYS_INITS}, got {init!r}")


def gatys_step(network, pixels, optimizer, content_target, style_grams, alpha=GATYS_ALPHA, beta=GATYS_BETA):
    """One optimizer step on the pixels; they are then clamped to [-1, 1]. Returns the
    losses before the step as floats."""
    optimizer.zero_grad()
    losses = gatys_losses(network, pixels(), content_target, style_grams)
    total = gatys_loss(losses, alpha, beta)
    total.backward()
    optimizer.step()
    pixels.image.data.clamp_(-1.0, 1.0)
    return {"loss": total.item(), "content": losses["content"].item(), "style": losses["style"].item()}


# ---------------------------------------------------------------- AdaIN, Huang & Belongie 2017


def adain_encoder(features=FEATURES, width=1.0, seed=0):
    """The fixed encoder f: VGG-19 up to relu4_1."""
    return feature_network(features, last=ADAIN_LAST, width=width, seed=seed)


def _channels(width):
    """VGG-19's widths of blocks 1-4 (64, 128, 256, 512) at ``width``, rounded as ``VGG19`` rounds them."""
    return [max(1, round(c * width)) for c in (64, 128, 256, 512)]


class Decoder(nn.Module):
    """g: the encoder mirrored, as the paper's code writes it (``decoder`` in net.py):

        relu4_1 (512) -> conv 256, up x2 -> conv 256 x3, conv 128, up x2 -> conv 128, conv 64, up x2
        -> conv 64, conv 3

    every conv 3x3 after a reflection pad of 1 and followed by a ReLU, except the last,
    whose output is the image (no tanh, as in the paper). ``width`` as the encoder's.
    """

    def __init__(self, width=1.0):
        super().__init__()
        c1, c2, c3, c4 = _channels(width)
        plan = [(c4, c3), "up", (c3, c3), (c3, c3), (c3, c3), (c3, c2), "up", (c2, c2), (c2, c1), "up", (c1, c1),
                (c1, 3)]
        layers = []
        for i, step in enumerate(plan):
            if step == "up":
                layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
                continue
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(*step, 3)]
            if i < len(plan) - 1:
                layers.append(nn.ReLU())
        self.layers = nn.Sequential(*layers)
        self.in_channels = c4

    def forward(self, t):
        if t.ndim != 4 or t.shape[1] != self.in_channels:
            raise ValueError(f"the decoder takes relu4_1 features (N, {self.in_channels}, H, W), got shape "
                             f"{tuple(t.shape)}")
        return self.layers(t)


def mean_std(features, eps=EPS):
    """Per sample and channel: the mean and sqrt(biased variance + eps) over positions, (N, C) each."""
    mean = features.mean((2, 3))
    var = ((features - mean.reshape(*mean.shape, 1, 1)) ** 2).mean((2, 3))
    return mean, (var + eps).sqrt()


def check_alpha(alpha):
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha is the content-style trade-off and must lie in [0, 1], got {alpha}")
    return alpha


def adain_target(content_features, style_features, alpha=1.0):
    """t = alpha AdaIN(f(c), f(s)) + (1 - alpha) f(c) (eq. 8 and 14)."""
    alpha = check_alpha(alpha)
    if content_features.shape[:2] != style_features.shape[:2]:
        raise ValueError(f"content and style features must have the same batch size and channels, got "
                         f"{tuple(content_features.shape)} and {tuple(style_features.shape)}: pass as many style "
                         f"images as content images")
    t = F.adain_transfer(content_features, style_features, eps=EPS)
    return t if alpha == 1.0 else alpha * t + (1 - alpha) * content_features


def stylize(encoder, decoder, content, style, alpha=1.0):
    """g(t): the content images in the style images' style, one forward pass."""
    _check_image(content, "content")
    _check_image(style, "style")
    alpha = check_alpha(alpha)
    with mg.no_grad():
        fc = encoder(content, ADAIN_LAST)[ADAIN_LAST]
        fs = encoder(style, ADAIN_LAST)[ADAIN_LAST]
        return decoder(adain_target(fc, fs, alpha))


def adain_losses(encoder, decoder, content, style, lam=ADAIN_LAMBDA, alpha=1.0):
    """{"loss": L_c + lambda L_s, "content": L_c, "style": L_s} for a batch of content and
    style images (same batch size; sizes may differ)."""
    _check_image(content, "content")
    _check_image(style, "style")
    with mg.no_grad():
        fc = encoder(content, ADAIN_LAST)[ADAIN_LAST]
        style_features = encoder(style, ADAIN_LAYERS)
        t = adain_target(fc, style_features[ADAIN_LAST], alpha)
    out = encoder(decoder(t), ADAIN_LAYERS)
    content_loss = F.mse_loss(out[ADAIN_LAST], t)
    style_loss = statistics_loss(out, style_features)
    return {"loss": content_loss + lam * style_loss, "content": content_loss, "style": style_loss}


def statistics_loss(features, targets):
    """L_s: the mean squared differences of the per-channel means and standard deviations,
    summed over the layers of ``targets``."""
    loss = 0.0
    for name, target in targets.items():
        mean, std = mean_std(features[name])
        target_mean, target_std = mean_std(target)
        loss = loss + F.mse_loss(mean, target_mean) + F.mse_loss(std, target_std)
    return loss


def adain_train_step(encoder, decoder, optimizer, content, style, lam=ADAIN_LAMBDA):
    """One Adam step of the decoder; returns the losses before it as floats."""
    optimizer.zero_grad()
    losses = adain_losses(encoder, decoder, content, style, lam)
    losses["loss"].backward()
    optimizer.step()
    return {k: v.item() for k, v in losses.items()}
