r"""The U-Net (Ronneberger, Fischer & Brox 2015), as pix2pix's generator (Isola et al. 2017).

An encoder halves the image again and again down to a 1 x 1 bottleneck, a decoder
doubles it back; in an image-to-image task the input and the output share their
structure (an edge in the sketch is an edge in the photo), and forcing all of it
through the bottleneck loses it. The U-Net adds *skip connections*: the decoder
layer at each resolution also receives the encoder's feature map of that
resolution, concatenated along the channels, so the low-level detail can bypass
the bottleneck. Without them (``skip=False``) it is the plain encoder-decoder the
pix2pix paper compares against (its Table 2 and Figure 5).

Built as pix2pix's code builds it (``UnetSkipConnectionBlock`` in its networks.py,
whose parameter names these keep), one block per resolution, each wrapping the
next:

    block(x) = cat([x, up(inner(down(x)))])     up and down: 4x4 convolutions, stride 2

    down: LeakyReLU 0.2 -> Conv 4x4 s2 -> norm        (the outermost: the conv alone; the innermost: no norm)
    up:   ReLU -> ConvTranspose 4x4 s2 -> norm [-> Dropout 0.5]
          (the outermost: ReLU -> ConvTranspose -> tanh, the image in [-1, 1])

With ``num_downs`` blocks a 2^num_downs image reaches 1 x 1 (5 at 32 x 32, 8 at
the paper's 256 x 256). Channels: ngf, 2 ngf, 4 ngf, then 8 ngf for every deeper
block. Dropout 0.5 sits in the three decoder blocks right after the innermost one,
which at 256 x 256 are the reference's three "CD512" blocks; it is pix2pix's only
source of noise (no z: the paper found G learned to ignore it).

Named choices: a conv followed by batch norm has no bias (the norm's shift plays
its part); every other conv keeps its bias (the reference drops it also on the
outermost and innermost down-convolutions, which no norm follows).
"""
from ..functional import cat
from .activation import LeakyReLU, ReLU, Tanh
from .containers import Sequential
from .conv import Conv2d, ConvTranspose2d
from .dropout import Dropout
from .module import Module
from .normalization import NORMS_2D, norm_layer

DROPOUT_BLOCKS = 3  # the decoder blocks after the innermost one that drop out (the paper's CD512 x 3)


class UnetSkipConnectionBlock(Module):
    """One resolution of the U-Net: (N, outer_nc or input_nc, H, W) -> (N, 2 outer_nc, H, W)
    with the skip (input and output concatenated), (N, outer_nc, H, W) without it or
    at the outermost block. ``submodule`` is the block of the next resolution down."""

    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 norm="batch", dropout=0.0, skip=True):
        super().__init__()
        if norm not in NORMS_2D:
            raise ValueError(f"UnetSkipConnectionBlock: norm must be one of {NORMS_2D}, got {norm!r}")
        input_nc = outer_nc if input_nc is None else input_nc
        bias = norm != "batch"
        # the decoder's input: the inner block's output, with its skip doubling the channels
        up_in = inner_nc if innermost or not skip else 2 * inner_nc
        if outermost:
            model = [Conv2d(input_nc, inner_nc, 4, 2, 1), submodule,
                     ReLU(), ConvTranspose2d(up_in, outer_nc, 4, 2, 1), Tanh()]
        elif innermost:
            model = [LeakyReLU(0.2), Conv2d(input_nc, inner_nc, 4, 2, 1),
                     ReLU(), ConvTranspose2d(up_in, outer_nc, 4, 2, 1, bias=bias), norm_layer(norm, outer_nc)]
        else:
            model = [LeakyReLU(0.2), Conv2d(input_nc, inner_nc, 4, 2, 1, bias=bias), norm_layer(norm, inner_nc),
                     submodule,
                     ReLU(), ConvTranspose2d(up_in, outer_nc, 4, 2, 1, bias=bias), norm_layer(norm, outer_nc)]
            if dropout:
                model.append(Dropout(dropout))
        self.model = Sequential(*model)
        self.outermost, self.skip = outermost, skip

    def forward(self, x):
        if self.outermost or not self.skip:
            return self.model(x)
        return cat([x, self.model(x)], 1)


class UNet(Module):
    """pix2pix's generator: images (N, in_channels, S, S) -> (N, out_channels, S, S) in
    [-1, 1], with S = 2^num_downs (or a multiple of it). ``skip=False``: the
    encoder-decoder without skip connections, for the paper's comparison."""

    def __init__(self, in_channels, out_channels, num_downs=5, ngf=64, norm="batch", dropout=0.5, skip=True):
        super().__init__()
        if num_downs < 4:
            raise ValueError(f"UNet: num_downs must be >= 4 (ngf, 2 ngf, 4 ngf, 8 ngf), got {num_downs}")
        # (outer, inner) channels of every block, from the innermost out; the outermost comes last
        widths = [(8 * ngf, 8 * ngf)] * (num_downs - 4) + [(4 * ngf, 8 * ngf), (2 * ngf, 4 * ngf), (ngf, 2 * ngf)]
        block = None
        for depth, (outer, inner) in enumerate(widths):
            block = UnetSkipConnectionBlock(outer, inner, submodule=block, innermost=depth == 0, norm=norm,
                                            dropout=dropout if 1 <= depth <= DROPOUT_BLOCKS else 0.0, skip=skip)
        self.model = UnetSkipConnectionBlock(out_channels, ngf, in_channels, submodule=block, outermost=True,
                                             norm=norm, skip=skip)
        self.in_channels, self.num_downs = in_channels, num_downs

    def forward(self, x):
        side = 2 ** self.num_downs
        if x.ndim != 4 or x.shape[1] != self.in_channels or x.shape[2] % side or x.shape[3] % side:
            raise ValueError(f"UNet: expected images (N, {self.in_channels}, H, W) with H and W multiples of "
                             f"2^num_downs = {side}, got shape {tuple(x.shape)}")
        return self.model(x)
