r"""Learning to generate chairs (Dosovitskiy, Springenberg & Brox, 2015, "Learning to Generate
Chairs with Convolutional Neural Networks"; the journal version adds tables and cars).

The idea: turn a classification network upside down. Instead of image -> label, train an
"up-convolutional" network from a high-level description to an image:

    (c, v, theta)  ->  (image, segmentation mask)

    c       the object instance, one-hot (the paper's "class": one of 809 chair models)
    v       the view: (sin az, cos az, sin el, cos el) of the azimuth and elevation
    theta   transformation parameters of the augmentation (zoom, shift, brightness here)

It is trained by plain supervised regression on rendered views, no adversary and no latent
code. The objective (Section 3), summed over the training views i:

    min_W  sum_i  lambda ||u_RGB(h(c_i, v_i, theta_i)) - T_theta_i(x_i s_i)||^2
                + ||u_segm(h(c_i, v_i, theta_i)) - T_theta_i s_i||^2

x_i s_i is the segmented-out image (the background blanked), s_i its mask, T_theta the
augmentation, h the fully connected part, u_RGB and u_segm the two up-convolutional streams;
lambda = 10 (as we read the paper), trading the image term against the mask term. Here both
squared errors are means over pixels (the sums divided by a constant).

The network (Figure 2, at 128x128): each input through its own two fully connected layers
(FC-1, FC-2: 512 units each), the three concatenated, FC-3 and FC-4 (1024), FC-5 reshaped to
a 256 x 8 x 8 map, then "uconv" layers up to the image, with a separate stream for the mask.
A uconv is unpooling (each value to the top-left corner of a 2x2 block of zeros) followed by a
5x5 convolution; that pair is exactly a 5x5 transposed convolution with stride 2 (padding 2,
output padding 1, the kernel flipped), which is what is used here (``tests/test_chairs.py``
checks the equivalence against torch). Leaky ReLUs (negative slope 0.3) after every layer but
the two outputs, which are linear. The paper trains with Adam (lr 5e-4, betas (0.9, 0.999)).
The widths, lambda, the slope and Adam's values are the journal version's as we read it.

At 32x32 (``minigan.data.shapes3d``) the same layout starts from a 4 x 4 map and uses three
uconvs; the widths are the example's flags.

What it shows: views and instances become directions of the input that the network can walk.
Generated held-out azimuths (views no training image showed), a class vector mixed between
two instances (a chair turning into another), and a sweep over azimuth all come out of the
same network.
"""
import numpy as np

import minigan as mg
from minigan import nn
from minigan.functional import mse_loss

LAMBDA = 10.0         # the image term's weight against the mask's
NEGATIVE_SLOPE = 0.3  # the leaky ReLUs'
N_VIEW = 4            # (sin az, cos az, sin el, cos el)


# ---------------------------------------------------------------- the inputs


def view_code(azimuth, elevation):
    """Angles in degrees (N,) -> the paper's view input (N, 4): (sin az, cos az, sin el, cos el),
    continuous across 0 = 360 degrees, so a held-out azimuth lies between trained ones."""
    az, el = np.deg2rad(np.asarray(azimuth, np.float64)), np.deg2rad(np.asarray(elevation, np.float64))
    if az.shape != el.shape or az.ndim != 1:
        raise ValueError(f"chairs.view_code: expected azimuths and elevations of the same shape (N,), "
                         f"got {az.shape} and {el.shape}")
    return np.stack([np.sin(az), np.cos(az), np.sin(el), np.cos(el)], 1).astype(np.float32)


def class_code(instances, n_classes, mix_with=None, alpha=0.0):
    """One-hot class vectors (N, n_classes) of the integer ``instances``; with ``mix_with``,
    (1 - alpha) one_hot(instances) + alpha one_hot(mix_with): the paper's interpolation
    between two models (alpha a number or (N,))."""
    instances = np.asarray(instances)
    if instances.ndim != 1 or instances.dtype.kind not in "iu" or ((instances < 0) | (instances >= n_classes)).any():
        raise ValueError(f"chairs.class_code: expected integer instances (N,) in [0, {n_classes}), "
                         f"got {instances.dtype} {instances.shape}: {instances.tolist()[:8]}")
    code = np.eye(n_classes, dtype=np.float32)[instances]
    if mix_with is None:
        return code
    alpha = np.broadcast_to(np.asarray(alpha, np.float32), (len(instances),))[:, None]
    return (1 - alpha) * code + alpha * class_code(mix_with, n_classes)


# ---------------------------------------------------------------- the network


def uconv(in_channels, out_channels):
    """Unpooling (x2, each value to a 2x2 block's top-left corner) + 5x5 convolution, as the
    one transposed convolution it equals."""
    return nn.ConvTranspose2d(in_channels, out_channels, 5, stride=2, padding=2, output_padding=1)


def _stream(n_in, width):
    """FC-1, FC-2 of one input, each followed by a leaky ReLU."""
    return nn.Sequential(nn.Linear(n_in, width), nn.LeakyReLU(NEGATIVE_SLOPE),
                         nn.Linear(width, width), nn.LeakyReLU(NEGATIVE_SLOPE))


def _up(channels, out_channels):
    """uconvs through ``channels`` (each doubling the map) and a last one to ``out_channels``, linear."""
    layers = []
    for a, b in zip(channels, channels[1:]):
        layers += [uconv(a, b), nn.LeakyReLU(NEGATIVE_SLOPE)]
    return nn.Sequential(*layers, uconv(channels[-1], out_channels))


class Generator(nn.Module):
    """(c (N, n_classes), v (N, 4), theta (N, n_transform) or None) -> (image (N, 3, S, S), mask (N, 1, S, S)).

    ``width``: units of each input's FC-1 and FC-2 (the paper: 512); FC-3 and FC-4 have twice
    as many. ``channels``: the image stream's channels, first the map FC-5 makes at 4x4, then
    one entry per uconv but the last (the paper starts from 256 channels at 8x8); the mask stream
    has half of each after the first. S = 4 * 2^len(channels). ``n_transform = 0`` leaves out the
    theta stream."""

    def __init__(self, n_classes, n_transform=0, width=512, channels=(256, 128, 64), out_channels=3):
        super().__init__()
        if n_classes < 1 or width < 1 or not channels or min(channels) < 2:
            raise ValueError(f"chairs.Generator: needs n_classes >= 1, width >= 1 and channels >= 2, got "
                             f"n_classes={n_classes}, width={width}, channels={tuple(channels)}")
        self.n_classes, self.n_transform, self.channels = n_classes, n_transform, tuple(channels)
        self.image_size = 4 * 2 ** len(channels)
        self.class_stream = _stream(n_classes, width)
        self.view_stream = _stream(N_VIEW, width)
        self.transform_stream = _stream(n_transform, width) if n_transform else None
        joint = width * (3 if n_transform else 2)
        self.fc = nn.Sequential(  # FC-3, FC-4, FC-5
            nn.Linear(joint, 2 * width), nn.LeakyReLU(NEGATIVE_SLOPE),
            nn.Linear(2 * width, 2 * width), nn.LeakyReLU(NEGATIVE_SLOPE),
            nn.Linear(2 * width, channels[0] * 16), nn.LeakyReLU(NEGATIVE_SLOPE))
        self.image_stream = _up(self.channels, out_channels)                            # u_RGB
        self.mask_stream = _up((channels[0], *(max(c // 2, 1) for c in channels[1:])), 1)  # u_segm

    def forward(self, c, v, theta=None):
        n = c.shape[0]
        if c.ndim != 2 or c.shape[1] != self.n_classes:
            raise ValueError(f"chairs.Generator: expected class vectors (N, {self.n_classes}), got {tuple(c.shape)}")
        if tuple(v.shape) != (n, N_VIEW):
            raise ValueError(f"chairs.Generator: expected views ({n}, {N_VIEW}) (sin/cos of azimuth and "
                             f"elevation), got {tuple(v.shape)}")
        streams = [self.class_stream(c), self.view_stream(v)]
        if self.n_transform:
            if theta is None or tuple(theta.shape) != (n, self.n_transform):
                got = None if theta is None else tuple(theta.shape)
                raise ValueError(f"chairs.Generator: expected transformation parameters ({n}, {self.n_transform}), "
                                 f"got {got}")
            streams.append(self.transform_stream(theta))
        elif theta is not None:
            raise ValueError("chairs.Generator: built with n_transform=0, so it takes no transformation parameters")
        h = self.fc(mg.cat(streams, 1)).reshape(n, self.channels[0], 4, 4)
        return self.image_stream(h), self.mask_stream(h)


# ---------------------------------------------------------------- the loss


def image_loss(image, target):
    """||u_RGB - x s||^2 as a mean over pixels and channels: the target is the segmented-out view."""
    return mse_loss(image, target)


def mask_loss(mask, target):
    """||u_segm - s||^2 as a mean over pixels: the paper's squared-error segmentation loss."""
    return mse_loss(mask, target)


def generator_loss(image, mask, target_image, target_mask, lam=LAMBDA):
    """lambda * image loss + mask loss; returns (total, image term, mask term)."""
    rgb, segm = image_loss(image, target_image), mask_loss(mask, target_mask)
    return lam * rgb + segm, rgb, segm


# ---------------------------------------------------------------- one training step


def train_step(G, optimizer, c, v, theta, target_image, target_mask, lam=LAMBDA):
    """One Adam step on a batch of views (all Tensors; ``theta`` None without the theta stream).
    Returns the losses as floats."""
    image, mask = G(c, v, theta)
    loss, rgb, segm = generator_loss(image, mask, target_image, target_mask, lam)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {"loss": loss.item(), "image_mse": rgb.item(), "mask_mse": segm.item()}


# ---------------------------------------------------------------- test time


def generate(G, c, v, theta=None, device="cpu", batch_size=256):
    """G on NumPy inputs, no graph: (images (N, 3, S, S), masks (N, 1, S, S)) as float32 NumPy."""
    if len(c) != len(v) or (theta is not None and len(theta) != len(c)):
        raise ValueError(f"chairs.generate: {len(c)} class vectors, {len(v)} views"
                         + ("" if theta is None else f" and {len(theta)} transformations") + ": expected as many")
    images, masks = [], []
    with mg.no_grad():
        for i in range(0, len(c), batch_size):
            part = slice(i, i + batch_size)
            image, mask = G(mg.tensor(c[part], device=device), mg.tensor(v[part], device=device),
                            None if theta is None else mg.tensor(theta[part], device=device))
            images.append(image.numpy())
            masks.append(mask.numpy())
    return np.concatenate(images).astype(np.float32), np.concatenate(masks).astype(np.float32)
