"""DCGAN (Radford, Metz & Chintala, 2015, "Unsupervised Representation Learning with
Deep Convolutional Generative Adversarial Networks").

The idea: the GAN game of Goodfellow et al. is unchanged (the losses are imported
from ``gan.py``: binary cross-entropy on D's logits, the non-saturating generator
loss), but both players become all-convolutional networks, and a handful of
architecture rules make that game train stably on images:

    min_G max_D  E_x[log D(x)] + E_z[log(1 - D(G(z)))],   G ascends E_z[log D(G(z))].

The paper's guidelines (Section 3), all followed here:
  * no pooling: D downsamples with strided convolutions, G upsamples with
    transposed (fractionally-strided) convolutions, so each network learns its own
    spatial resampling;
  * no fully connected hidden layers: z is reshaped to a 1x1 map that a 4x4
    transposed conv turns into a 4x4 one; D's last conv maps 4x4 to one logit;
  * batch norm in both networks, except on G's output layer and D's input layer
    (on those it made samples oscillate and training unstable);
  * ReLU in G with a tanh output (images in [-1, 1]); LeakyReLU with slope 0.2 in D.

Its hyperparameters (Section 4), the defaults here: weights from N(0, 0.02) (and
batch norm's scale from N(1, 0.02), as in pytorch/examples); Adam with lr 2e-4 and
beta1 0.5 (beta1 0.9 oscillated); minibatches of 128; z of 100 dimensions, here
drawn from N(0, I) (the paper: uniform).

The networks, for image_size S in {16, 32, 64} and w = ``width`` (the paper's 64x64
model has w = 128 and 1024 channels at 4x4; pytorch/examples uses w = 64):

    G: z -> ConvT 4x4 -> (2^(n-1) w, 4, 4) -> [ConvT 4x4 s2 -> half the channels, twice the size]
          ... -> (w, S/2, S/2) -> ConvT 4x4 s2 -> (channels, S, S) -> tanh
    D: the mirror image: Conv 4x4 s2 from (channels, S, S) to (w, S/2, S/2), doubling
          the channels at each halving down to 4x4, then Conv 4x4 -> 1 logit

with n = log2(S) - 2 stride-2 layers per network (2 at 16, 3 at 32, 4 at 64).

Named choices and deviations:
  * no bias in a conv followed by a normalization: batch and instance norm subtract
    the mean the bias would add (it gets a zero gradient), and the norm's own shift
    plays its part; the other convs (D's first and last, G's last) keep theirs;
  * ``Discriminator(norm=...)`` also builds the critics of the WGAN-GP lecture, where
    batch norm is wrong (the penalty is per sample, batch norm mixes samples):
    "layer" normalizes each sample over (C, H, W) with a per-channel affine, which is
    ``GroupNorm(1, C)``; "instance" is ``InstanceNorm2d(C, affine=True)``; None has none;
  * one batch of fakes serves both players' steps, as in pytorch/examples (D sees
    it detached): it saves a generator forward pass per step.
"""
from minigan import nn

from .gan import discriminator_loss, generator_loss
from .latent import sample_latent

IMAGE_SIZES = (16, 32, 64)
NORMS = ("batch", "layer", "instance", None)


def _widths(image_size, width):
    """Channels of the hidden layers from the largest resolution to 4x4: w, 2w, 4w, ..."""
    if image_size not in IMAGE_SIZES:
        raise ValueError(f"DCGAN: image_size must be one of {IMAGE_SIZES}, got {image_size!r}")
    n = {16: 2, 32: 3, 64: 4}[image_size]
    return [width * 2 ** i for i in range(n)]


def _norm(kind, channels):
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":  # each sample over (C, H, W), per-channel scale and shift
        return nn.GroupNorm(1, channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    raise ValueError(f"Discriminator: norm must be one of {NORMS}, got {kind!r}")


class Generator(nn.Module):
    """G: z (N, latent_dim) or (N, latent_dim, 1, 1) -> images (N, channels, S, S) in [-1, 1]."""

    def __init__(self, latent_dim=100, channels=1, image_size=32, width=64):
        super().__init__()
        widths = _widths(image_size, width)[::-1]  # 4x4 first
        layers = [nn.ConvTranspose2d(latent_dim, widths[0], 4, 1, 0, bias=False),
                  nn.BatchNorm2d(widths[0]), nn.ReLU()]
        for cin, cout in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Tanh()]  # no batch norm on the output
        self.net = nn.Sequential(*layers)
        self.latent_dim, self.channels, self.image_size = latent_dim, channels, image_size
        init_weights(self)

    def forward(self, z):
        if z.ndim == 2:
            z = z.reshape(z.shape[0], z.shape[1], 1, 1)
        if z.ndim != 4 or tuple(z.shape[1:]) != (self.latent_dim, 1, 1):
            raise ValueError(f"Generator: expected z of shape (N, {self.latent_dim}) or (N, {self.latent_dim}, 1, 1), "
                             f"got {tuple(z.shape)}")
        return self.net(z)


class Discriminator(nn.Module):
    """D: images (N, channels, S, S) -> one logit per image (N,); D(x) = sigmoid(logit)."""

    def __init__(self, channels=1, image_size=32, width=64, norm="batch"):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"Discriminator: norm must be one of {NORMS}, got {norm!r}")
        widths = _widths(image_size, width)
        layers = [nn.Conv2d(channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2)]  # no norm on the input layer
        for cin, cout in zip(widths, widths[1:]):
            if norm is None:
                layers += [nn.Conv2d(cin, cout, 4, 2, 1), nn.LeakyReLU(0.2)]
            else:
                layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), _norm(norm, cout), nn.LeakyReLU(0.2)]
        layers.append(nn.Conv2d(widths[-1], 1, 4, 1, 0))  # 4x4 -> 1x1: the logit
        self.net = nn.Sequential(*layers)
        self.channels, self.image_size, self.norm = channels, image_size, norm
        init_weights(self)

    def forward(self, x):
        expected = (self.channels, self.image_size, self.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"Discriminator: expected images of shape (N, {', '.join(map(str, expected))}), "
                             f"got {tuple(x.shape)}")
        return self.net(x).flatten()


def init_weights(module):
    """The paper's init over a module tree: conv weights ~ N(0, 0.02), batch norm's
    scale ~ N(1, 0.02) (as pytorch/examples), every bias 0. Returns ``module``."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
        else:
            continue
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    return module


# ---------------------------------------------------------------- one training step


def train_step(generator, discriminator, opt_g, opt_d, real):
    """One discriminator step and one generator step on one batch of fakes.

    D descends -(log D(x) + log(1 - D(G(z)))) on ``real`` and the fakes (detached);
    then G descends the non-saturating -log D(G(z)) on the same fakes, through the
    updated D. D sees the real and the fake batch in separate forward passes, so
    its batch norm normalizes each with its own statistics (as the paper's code).
    Returns the losses as floats."""
    z = sample_latent(real.shape[0], generator.latent_dim, real.device)
    fake = generator(z)
    d_loss = discriminator_loss(discriminator(real), discriminator(fake.detach()))
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()

    discriminator.requires_grad_(False)  # G's step differentiates through D, not into it
    g_loss = generator_loss(discriminator(fake))
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    discriminator.requires_grad_(True)
    return {"d_loss": d_loss.item(), "g_loss": g_loss.item()}
