r"""SRResNet and SRGAN (Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution
Using a Generative Adversarial Network"), x4 super-resolution.

The idea: a low-resolution image I_LR has many high-resolution images I_HR that
downsample to it. A network trained with the pixel-wise MSE predicts their *mean*,
which is smooth: it scores the best PSNR and looks blurred. SRGAN replaces the MSE
by a *perceptual loss*, a content term measured in a feature space plus a small
adversarial term that pushes the output onto the manifold of natural images:

    l_SR = l_content + 1e-3 l_gen,
    l_content = 1/(W_ij H_ij) sum (phi_ij(I_HR) - phi_ij(G(I_LR)))^2      (VGG_ij)
            or  1/(r^2 W H)    sum (I_HR - G(I_LR))^2                      (MSE)
    l_gen     = sum_n -log D(G(I_LR^n))

with phi_ij the feature map after the j-th convolution (and its ReLU) before the
i-th max pooling of VGG-19: the paper's VGG22 is ``relu2_2``, its VGG54 (SRGAN's
default) ``relu5_4``; the feature maps are rescaled by 1/12.75 "to obtain VGG losses
of a scale that is comparable to the MSE loss". D is trained as in Goodfellow's GAN
to tell I_HR from G(I_LR).

The networks (the paper's Figure 4):
  * G, ``SRResNet``: a 9x9 conv + PReLU; B residual blocks (3x3 conv, BN, PReLU,
    3x3 conv, BN, plus the block's input); a 3x3 conv + BN and a skip from before the
    blocks; two upsampling blocks (3x3 conv to 4x the channels, pixel shuffle x2,
    PReLU: Shi et al.'s sub-pixel convolution); a 9x9 conv to the image. The paper:
    B = 16 blocks of 64 channels. Defaults here: ``blocks=4, width=32`` (about a tenth
    of the work per pixel), so SRResNet and SRGAN train on a CPU in minutes; the
    paper's network is ``SRResNet(blocks=16, width=64)``. The output is linear (no
    tanh), as in the figure; pictures and scores clip it to [-1, 1]. PReLUs have one
    slope per channel.
  * D, ``Discriminator``: a 3x3 conv + LeakyReLU(0.2), then seven 3x3 conv + BN +
    LeakyReLU(0.2) blocks whose widths go 64, 128, 128, 256, 256, 512, 512 with strides
    2, 1, 2, 1, 2, 1, 2 (the width doubles when the stride is 1), a dense layer of 1024
    + LeakyReLU and a dense layer to one logit (the sigmoid sits in the loss). The
    paper's: ``ndf=64, dense=1024``; defaults here ``ndf=16, dense=256``.
  * The training recipe: SRResNet first, with the MSE alone (10^6 steps in the paper,
    Adam beta1 = 0.9, lr 1e-4); then SRGAN starts from that SRResNet (10^5 steps at
    1e-4, 10^5 at 1e-5) and alternates one D and one G step.

Images here are in minigan's range [-1, 1], the LR input included (the paper feeds
LR in [0, 1]; the scale is a constant the first layer absorbs).

The VGG-19 is ``minigan.models.features.vgg19``. No ImageNet weights can be fetched
here: ``feature_weights="random"`` (the default) gives torchvision's random
initialization, and a path to a safetensors file with torchvision's keys loads
anything else (ImageNet weights wherever someone has them, or a self-trained net).
With random weights, VGG54's content loss compares random features of a 1/16-size
map: docs/srgan.md measures what it does.
"""
import math

import numpy as np

import minigan as mg
from minigan import functional as F
from minigan import nn

from . import gan
from .features import vgg19

ADVERSARIAL_WEIGHT = 1e-3       # the paper's weight of l_gen
VGG_RESCALE = 1 / 12.75         # the paper's rescaling of the VGG feature maps
CONTENT_LAYERS = {"vgg22": "relu2_2", "vgg54": "relu5_4"}
CONTENTS = ("mse", *CONTENT_LAYERS)


# ---------------------------------------------------------------- the generator


class ResidualBlock(nn.Module):
    """conv 3x3 - BN - PReLU - conv 3x3 - BN, plus the input."""

    def __init__(self, width):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(width)
        self.act = nn.PReLU(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(width)

    def forward(self, x):
        return x + self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))


class SRResNet(nn.Module):
    """G: (N, channels, h, w) -> (N, channels, scale h, scale w); see the module docstring."""

    def __init__(self, channels=3, width=32, blocks=4, scale=4):
        super().__init__()
        steps = math.log2(scale)
        if scale < 2 or steps != int(steps):
            raise ValueError(f"SRResNet: scale must be a power of two >= 2 (one pixel shuffle x2 each), got {scale}")
        if blocks < 0 or width < 1 or channels < 1:
            raise ValueError(f"SRResNet: expected blocks >= 0, width >= 1, channels >= 1; got blocks={blocks}, "
                             f"width={width}, channels={channels}")
        self.channels, self.scale = channels, scale
        self.head = nn.Sequential(nn.Conv2d(channels, width, 9, padding=4), nn.PReLU(width))
        self.blocks = nn.Sequential(*[ResidualBlock(width) for _ in range(blocks)])
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width))
        upsample = []
        for _ in range(int(steps)):
            upsample += [nn.Conv2d(width, 4 * width, 3, padding=1), nn.PixelShuffle(2), nn.PReLU(width)]
        self.upsample = nn.Sequential(*upsample)
        self.tail = nn.Conv2d(width, channels, 9, padding=4)

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"SRResNet expects low-resolution images (N, {self.channels}, h, w), "
                             f"got shape {tuple(x.shape)}")
        h = self.head(x)
        return self.tail(self.upsample(h + self.body(self.blocks(h))))


# ---------------------------------------------------------------- the discriminator


D_STRIDES = (2, 1, 2, 1, 2, 1, 2)  # the blocks after the first conv; the width doubles before each stride 1


class Discriminator(nn.Module):
    """D: (N, channels, S, S) -> (N,) logits; S a multiple of 16 (four stride-2 convs)."""

    def __init__(self, channels=3, image_size=32, ndf=16, dense=256):
        super().__init__()
        if image_size % 16 or image_size < 16:
            raise ValueError(f"Discriminator: image_size must be a multiple of 16 (four stride-2 convs), "
                             f"got {image_size}")
        self.channels, self.image_size = channels, image_size
        layers, width = [nn.Conv2d(channels, ndf, 3, padding=1), nn.LeakyReLU(0.2)], ndf
        for stride in D_STRIDES:
            out = width * 2 if stride == 1 else width
            layers += [nn.Conv2d(width, out, 3, stride, 1), nn.BatchNorm2d(out), nn.LeakyReLU(0.2)]
            width = out
        self.features = nn.Sequential(*layers)
        side = image_size // 16
        self.classifier = nn.Sequential(nn.Linear(width * side * side, dense), nn.LeakyReLU(0.2), nn.Linear(dense, 1))

    def forward(self, x):
        if x.ndim != 4 or tuple(x.shape[1:]) != (self.channels, self.image_size, self.image_size):
            raise ValueError(f"Discriminator expects (N, {self.channels}, {self.image_size}, {self.image_size}) "
                             f"images, got shape {tuple(x.shape)}")
        return self.classifier(self.features(x).flatten(1)).flatten()


# ---------------------------------------------------------------- the losses


class ContentLoss:
    """l_content: "mse" in pixels, or "vgg22" / "vgg54": the MSE of VGG-19 feature maps
    (``relu2_2`` / ``relu5_4``) rescaled by ``rescale``. ``weights``: "random" or a
    safetensors path with torchvision's keys (``features.vgg19``); ``vgg_width`` narrows
    a random VGG (1 for a weights file). The VGG is frozen and in eval mode."""

    def __init__(self, kind="vgg54", weights="random", vgg_width=1.0, rescale=VGG_RESCALE, seed=None):
        if kind not in CONTENTS:
            raise ValueError(f"srgan: content loss must be one of {CONTENTS}, got {kind!r}")
        self.kind, self.rescale = kind, rescale
        self.layer = CONTENT_LAYERS.get(kind)
        self.vgg = None if kind == "mse" else vgg19(weights, last=self.layer, width=vgg_width, seed=seed)

    def to(self, device):
        if self.vgg is not None:
            self.vgg.to(device)
        return self

    def features(self, images):
        return self.vgg(images, self.layer)[self.layer] * self.rescale

    def __call__(self, fake, target):
        if self.vgg is None:
            return F.mse_loss(fake, target)
        with mg.no_grad():
            wanted = self.features(target)
        return F.mse_loss(self.features(fake), wanted)


def calibrate_rescale(content, images, references):
    """The rescaling of ``content``'s feature maps that makes its VGG loss of ``images``
    against ``references`` equal to their pixel MSE: the paper's aim for its 1/12.75
    ("VGG losses of a scale that is comparable to the MSE loss"), which was measured on
    ImageNet's VGG-19 and means nothing for random or other weights. The example
    calibrates on bicubic upsampling against the HR crops."""
    if content.vgg is None:
        raise ValueError("calibrate_rescale: the 'mse' content loss has no feature maps to rescale")
    with mg.no_grad():
        pixel = F.mse_loss(images, references).item()
        features = [content.vgg(x, content.layer)[content.layer] for x in (images, references)]
        feature = F.mse_loss(*features).item()
    if not feature > 0:
        raise ValueError(f"calibrate_rescale: the {content.kind} features of the images and the references are equal")
    return math.sqrt(pixel / feature)


def discriminator_loss(real_logits, fake_logits):
    """-log D(I_HR) - log(1 - D(G(I_LR))), averaged over the batch."""
    return gan.discriminator_loss(real_logits, fake_logits)


def generator_loss(fake, target, content, fake_logits, adversarial_weight=ADVERSARIAL_WEIGHT):
    """l_SR = l_content + 1e-3 l_gen with l_gen = -log D(G(I_LR)) (the batch's mean).
    Returns the total and its parts ("content", "adversarial") as Tensors."""
    parts = {"content": content(fake, target), "adversarial": gan.generator_loss(fake_logits, "non_saturating")}
    return parts["content"] + adversarial_weight * parts["adversarial"], parts


# ---------------------------------------------------------------- training steps


def srresnet_step(generator, opt, lr_images, hr_images):
    """One step of SRResNet's training: the pixel MSE. Returns {"mse": float}."""
    loss = F.mse_loss(generator(lr_images), hr_images)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return {"mse": loss.item()}


def srgan_step(generator, discriminator, opt_g, opt_d, lr_images, hr_images, content,
               adversarial_weight=ADVERSARIAL_WEIGHT):
    """One SRGAN iteration: a D step on I_HR and G(I_LR) (detached), then a G step on
    l_content + 1e-3 l_gen through the updated D. Returns the losses as floats, with
    the pixel MSE of G(I_LR) before the step."""
    fake = generator(lr_images)
    d_loss = discriminator_loss(discriminator(hr_images), discriminator(fake.detach()))
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    discriminator.requires_grad_(False)  # G's step differentiates through D, not into it
    try:
        g_loss, parts = generator_loss(fake, hr_images, content, discriminator(fake), adversarial_weight)
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
    finally:
        discriminator.requires_grad_(True)
    with mg.no_grad():
        mse = F.mse_loss(fake.detach(), hr_images).item()
    return {"d_loss": d_loss.item(), "g_loss": g_loss.item(), **{k: v.item() for k, v in parts.items()}, "mse": mse}


# ---------------------------------------------------------------- test time


def super_resolve(generator, lr_images, batch_size=64, device="cpu"):
    """G's outputs (eval mode: BN's running statistics) for ``lr_images``, a NumPy array
    (N, C, h, w), as float32 (N, C, scale h, scale w) clipped to [-1, 1]. G's mode is restored."""
    lr_images = np.asarray(lr_images)
    if lr_images.ndim != 4:
        raise ValueError(f"super_resolve: expected low-resolution images (N, C, h, w), got shape {lr_images.shape}")
    dtype = np.dtype(generator.tail.weight.dtype)  # the network's own (float32, or float64 in tests)
    with nn.evaluating(generator), mg.no_grad():
        out = [generator(mg.tensor(lr_images[i:i + batch_size].astype(dtype), device=device)).numpy()
               for i in range(0, len(lr_images), batch_size)]
    n, c, h, w = lr_images.shape
    s = generator.scale
    return np.clip(np.concatenate(out), -1, 1).astype(np.float32) if out else np.zeros((0, c, h * s, w * s), np.float32)
