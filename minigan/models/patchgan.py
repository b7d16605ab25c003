r"""PatchGAN: a discriminator that judges each patch of an image, not the whole image
(Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial Networks",
Section 3.2.2; also CycleGAN's discriminator).

The idea: an L1 loss already gets the low frequencies of a translation right and
blurs the high ones. So D only has to model high-frequency structure, and for that
it is enough to look at local patches: a fully convolutional D outputs a *map* of
logits, each one saying "real" or "fake" about the N x N patch of the input it
sees (its receptive field), and the GAN loss averages over the map. Such a D
assumes pixels farther apart than a patch are independent, a Markov random field;
it has fewer parameters than a whole-image D and runs on any image size.

``NLayerDiscriminator`` is the paper's code (``networks.py`` of
pytorch-CycleGAN-and-pix2pix), with its parameter names, so its weights load here:

    Conv 4x4 s2 (ndf)            -> LeakyReLU 0.2          no norm on the first layer
    [Conv 4x4 s2 -> norm -> LeakyReLU 0.2] x (n_layers - 1)   channels ndf * min(2^i, 8)
    Conv 4x4 s1 -> norm -> LeakyReLU 0.2
    Conv 4x4 s1 (1)                                         the logit map, no sigmoid

all with padding 1. Its receptive field, walking back from one logit through k = 4
convolutions (a stride-1 layer widens the field by 3, a stride-2 layer maps r to
2r + 2), is

    r(n) = 9 * 2^n - 2:     n = 1, 2, 3, 4  ->  16, 34, 70, 142 pixels,

so the paper's 70 x 70 PatchGAN has n_layers = 3. ``PixelDiscriminator`` is its
1 x 1 "PixelGAN" (1x1 convolutions only: it judges each pixel's colour alone), and
``ImageDiscriminator`` ends in a 4x4 convolution without padding on a 4 x 4 map, one
logit for the whole image (the paper's 286 x 286 "ImageGAN" at 256 x 256).

``patch_discriminator(patch=...)`` builds the one with a given field, at 32 x 32:

    patch    network                          logit map at 32x32   receptive field
    1        PixelDiscriminator               32 x 32              1
    16       NLayerDiscriminator(n_layers=1)  14 x 14              16
    34       NLayerDiscriminator(n_layers=2)  6 x 6                34
    70       NLayerDiscriminator(n_layers=3)  2 x 2                70
    image    ImageDiscriminator (3 stride-2)  1 x 1                46 (the whole image)

At 32 x 32 the paper's 70 x 70 field exceeds the image: each of the four logits sees
all of it, and they differ only in where the zero padding falls, so 70 and "image"
are close relatives here; 16 and 34 are the true patch discriminators of this size.
``receptive_field(module)`` computes the field from the layers themselves.

Named choices:
  * norm "batch" (pix2pix), "instance" (CycleGAN: no affine, no running statistics)
    or None; a conv followed by batch norm has no bias (the norm's shift replaces
    it); with instance norm or none the convs keep theirs (the reference drops the
    bias also with no norm at all, which only loses a parameter);
  * ``PixelDiscriminator`` keeps a bias on its logit layer (the reference drops it
    with batch norm, though no norm follows that layer);
  * init: the paper's N(0, 0.02) for the convs, N(1, 0.02) for batch norm's scale.
"""
import math

from minigan import nn

from .dcgan import init_weights

PATCHES = (1, 16, 34, 70, "image")
N_LAYERS = {16: 1, 34: 2, 70: 3}  # patch -> stride-2 layers of NLayerDiscriminator


def _conv_norm_act(cin, cout, kernel, stride, padding, norm):
    return [nn.Conv2d(cin, cout, kernel, stride, padding, bias=norm != "batch"), nn.norm_layer(norm, cout),
            nn.LeakyReLU(0.2)]


class _PatchDiscriminator(nn.Module):
    """What the three discriminators share: the input check and the logit map."""

    def forward(self, input):
        if input.ndim != 4 or input.shape[1] != self.in_channels:
            raise ValueError(f"{type(self).__name__}: expected images (N, {self.in_channels}, H, W), "
                             f"got shape {tuple(input.shape)}")
        return self.model(input)


class NLayerDiscriminator(_PatchDiscriminator):
    """The PatchGAN: images (N, in_channels, H, W) -> a map of logits (N, 1, H', W'),
    one per patch of ``9 * 2**n_layers - 2`` pixels. For pix2pix, ``in_channels`` is
    the input's and the output's channels together (D sees the pair)."""

    def __init__(self, in_channels, ndf=64, n_layers=3, norm="batch"):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"NLayerDiscriminator: n_layers must be >= 1, got {n_layers}")
        if norm not in nn.NORMS_2D:
            raise ValueError(f"NLayerDiscriminator: norm must be one of {nn.NORMS_2D}, got {norm!r}")
        layers, width = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2)], ndf  # no norm on the first layer
        for n in range(1, n_layers):
            layers += _conv_norm_act(width, ndf * min(2 ** n, 8), 4, 2, 1, norm)
            width = ndf * min(2 ** n, 8)
        last = ndf * min(2 ** n_layers, 8)
        layers += _conv_norm_act(width, last, 4, 1, 1, norm)
        layers.append(nn.Conv2d(last, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)
        self.in_channels, self.n_layers, self.norm = in_channels, n_layers, norm
        init_weights(self)


class PixelDiscriminator(_PatchDiscriminator):
    """The 1 x 1 PatchGAN ("PixelGAN"): three 1x1 convolutions, a logit per pixel."""

    def __init__(self, in_channels, ndf=64, norm="batch"):
        super().__init__()
        if norm not in nn.NORMS_2D:
            raise ValueError(f"PixelDiscriminator: norm must be one of {nn.NORMS_2D}, got {norm!r}")
        self.model = nn.Sequential(nn.Conv2d(in_channels, ndf, 1), nn.LeakyReLU(0.2),
                                   *_conv_norm_act(ndf, 2 * ndf, 1, 1, 0, norm),
                                   nn.Conv2d(2 * ndf, 1, 1))
        self.in_channels, self.norm = in_channels, norm
        init_weights(self)


class ImageDiscriminator(_PatchDiscriminator):
    """One logit per image: stride-2 4x4 convolutions down to a 4 x 4 map, then a 4x4
    convolution without padding to (N, 1, 1, 1). ``image_size`` a power of two >= 8."""

    def __init__(self, in_channels, image_size=32, ndf=64, norm="batch"):
        super().__init__()
        n = math.log2(image_size) - 2 if image_size >= 8 else 0
        if n != int(n) or n < 1:
            raise ValueError(f"ImageDiscriminator: image_size must be a power of two >= 8, got {image_size}")
        if norm not in nn.NORMS_2D:
            raise ValueError(f"ImageDiscriminator: norm must be one of {nn.NORMS_2D}, got {norm!r}")
        layers, width = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2)], ndf
        for i in range(1, int(n)):
            layers += _conv_norm_act(width, ndf * min(2 ** i, 8), 4, 2, 1, norm)
            width = ndf * min(2 ** i, 8)
        layers.append(nn.Conv2d(width, 1, 4, 1, 0))  # 4x4 -> 1x1: the image's logit
        self.model = nn.Sequential(*layers)
        self.in_channels, self.image_size, self.norm = in_channels, image_size, norm
        init_weights(self)


def patch_discriminator(in_channels, patch=70, ndf=64, norm="batch", image_size=32):
    """The discriminator whose logits each see ``patch`` x ``patch`` pixels: 1 (PixelGAN),
    16, 34, 70 (NLayerDiscriminator with 1, 2, 3 stride-2 layers) or "image"."""
    if patch == 1:
        return PixelDiscriminator(in_channels, ndf, norm)
    if patch in N_LAYERS:
        return NLayerDiscriminator(in_channels, ndf, N_LAYERS[patch], norm)
    if patch == "image":
        return ImageDiscriminator(in_channels, image_size, ndf, norm)
    raise ValueError(f"patch_discriminator: patch must be one of {PATCHES}, got {patch!r}")


def receptive_field(module):
    """The receptive field in input pixels of one output of ``module``'s convolutions, in
    order: walking forward, a k x k conv with stride s adds (k - 1) * jump pixels, where
    jump is the product of the strides before it (dilation 1)."""
    field, jump = 1, 1
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            k, s = m.kernel_size[0], m.stride[0]
            field += (k - 1) * jump
            jump *= s
    return field
