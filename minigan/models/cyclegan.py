"""CycleGAN (Zhu, Park, Isola & Efros, 2017, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks").

The idea: translate images from a domain X to a domain Y without a single (x, y) pair.
Two generators, G: X -> Y and F: Y -> X, each play a GAN game against a discriminator
of its target domain (D_Y judges G(x), D_X judges F(y)). The games alone would let G
map every x to any plausible y; the *cycle* ties each translation to its input:
F(G(x)) should give x back, and G(F(y)) y (Section 3.2):

    L(G, F, D_X, D_Y) = L_GAN(G, D_Y) + L_GAN(F, D_X) + lambda L_cyc(G, F)
    L_cyc = E_x ||F(G(x)) - x||_1 + E_y ||G(F(y)) - y||_1,          lambda = 10

with least-squares GAN losses (Mao et al. 2017; Section 4, "Training details"): D
descends (D(y) - 1)^2 + D(G(x))^2, halved (the paper: it slows D's learning relative
to G's), G descends (D(G(x)) - 1)^2. The identity loss of Section 5.2,

    L_identity = E_y ||G(y) - y||_1 + E_x ||F(x) - x||_1,   weighted 0.5 lambda,

asks each generator to leave an image already in its target domain alone (it keeps
the colours of paintings <-> photos; the reference implementation's default).

The networks (Appendix 7.2), with reflection padding and instance norm throughout:

    generator  c7s1-k, d2k, d4k, R4k x n, u2k, uk, c7s1-3 + tanh
               (c7s1-k: 7x7 conv stride 1 with k filters; dk: 3x3 conv stride 2;
                Rk: residual block of two 3x3 convs; uk: 3x3 transposed conv stride 1/2)
    D          the 70x70 PatchGAN of pix2pix (``patchgan.NLayerDiscriminator``)

The paper has k = 64 and n = 6 blocks at 128x128, 9 at 256x256; at 32x32 on a CPU the
defaults are smaller (``width``, ``n_blocks``), the paper's sizes are arguments away.

Training (Section 4): Adam lr 2e-4, betas (0.5, 0.999); the lr held for the first
half of training and decayed linearly to 0 over the second (``LinearDecay``); D is
updated on a history of 50 generated images (``ImagePool``, Shrivastava et al. 2017),
not only the latest ones, which damps oscillation. Weights from N(0, 0.02), biases 0
(DCGAN's ``init_weights``).

One step, in the reference implementation's order: G and F descend their loss
(D frozen), then D_X and D_Y descend theirs on the fakes made before G's update,
drawn through the pools.
"""
import numpy as np

import minigan as mg
from minigan import nn, optim
from minigan.functional import l1_loss, mse_loss

from .dcgan import init_weights
from .patchgan import NLayerDiscriminator


# ---------------------------------------------------------------- the generator


class ResnetBlock(nn.Module):
    """Rk: x + [reflect-pad 1, conv 3x3, instance norm, ReLU, reflect-pad 1, conv 3x3, instance norm](x)."""

    def __init__(self, channels):
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels), nn.ReLU(),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels))

    def forward(self, x):
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """c7s1-k, d2k, d4k, n x R4k, u2k, uk, c7s1-out + tanh: images (N, in_channels, S, S) in
    [-1, 1] -> (N, out_channels, S, S) in [-1, 1]; S must be a multiple of 4.

    Every conv keeps its bias, as the reference implementation's (instance norm
    without an affine would otherwise leave no shift anywhere)."""

    def __init__(self, in_channels=3, out_channels=3, width=64, n_blocks=9):
        super().__init__()
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, width, 7), nn.InstanceNorm2d(width), nn.ReLU()]
        for mult in (1, 2):  # d2k, d4k: halve the size, double the channels
            layers += [nn.Conv2d(width * mult, width * mult * 2, 3, stride=2, padding=1),
                       nn.InstanceNorm2d(width * mult * 2), nn.ReLU()]
        layers += [ResnetBlock(width * 4) for _ in range(n_blocks)]
        for mult in (4, 2):  # u2k, uk: double the size, halve the channels
            layers += [nn.ConvTranspose2d(width * mult, width * mult // 2, 3, stride=2, padding=1, output_padding=1),
                       nn.InstanceNorm2d(width * mult // 2), nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.in_channels, self.out_channels = in_channels, out_channels
        init_weights(self)


    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels or x.shape[2] % 4 or x.shape[3] % 4:
            raise ValueError(f"ResnetGenerator: expected images (N, {self.in_channels}, H, W) with H and W "
                             f"multiples of 4 (two stride-2 halvings), got {tuple(x.shape)}")
        return self.net(x)


def discriminator(channels, width=64, n_layers=3):
    """D_X or D_Y: the 70x70 PatchGAN (``n_layers`` = 3) with instance norm, a map of
    least-squares scores (no sigmoid)."""
    return NLayerDiscriminator(channels, ndf=width, n_layers=n_layers, norm="instance")


# ---------------------------------------------------------------- the history of fakes


class ImagePool(nn.Module):
    """A buffer of up to ``pool_size`` generated images that D trains on (Shrivastava et
    al. 2017), as the reference implementation's ``ImagePool.query``. For each image of
    a batch, in order:

      * while the pool is not full, the image is stored and returned itself;
      * once full, with probability 1/2 the image is returned itself; otherwise a stored
        image chosen uniformly is returned and the new image takes its place.

    The pool is a module whose buffers (the images and how many are stored) go into
    state_dict, so a checkpoint resumes it; ``rng`` (a NumPy Generator) draws the coin
    flips and slots. ``pool_size = 0`` returns every batch unchanged. The returned
    images are detached: D's loss does not reach the generators through the pool."""

    def __init__(self, pool_size, image_shape, rng=None):
        super().__init__()
        if pool_size < 0:
            raise ValueError(f"ImagePool: pool_size must be >= 0, got {pool_size}")
        self.pool_size, self.image_shape = pool_size, tuple(image_shape)
        self.rng = rng if rng is not None else np.random.default_rng()
        self.register_buffer("images", mg.zeros(pool_size, *self.image_shape))
        self.register_buffer("stored", mg.zeros((), dtype=np.int64))

    def forward(self, images):
        if tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(f"ImagePool: expected images (N, {', '.join(map(str, self.image_shape))}), "
                             f"got {tuple(images.shape)}")
        if self.pool_size == 0:
            return images.detach()
        out = images.array.copy()
        pool, stored = self.images.array, int(self.stored.item())
        for i in range(len(out)):
            if stored < self.pool_size:
                pool[stored] = out[i]
                stored += 1
            elif self.rng.uniform(0, 1) > 0.5:
                slot = self.rng.integers(0, self.pool_size)
                old = pool[slot].copy()
                pool[slot] = out[i]
                out[i] = old
        self.stored.array[...] = stored
        return mg.Tensor(out)

    def extra_repr(self):
        return f"pool_size={self.pool_size}, image_shape={self.image_shape}"


# ---------------------------------------------------------------- the losses


def discriminator_loss(real_scores, fake_scores):
    """LSGAN for D, halved: ((D(real) - 1)^2 + D(fake)^2) / 2, each a mean over patches."""
    return 0.5 * (mse_loss(real_scores, mg.ones_like(real_scores)) + mse_loss(fake_scores, mg.zeros_like(fake_scores)))


def generator_loss(fake_scores):
    """LSGAN for G: (D(G(x)) - 1)^2, a mean over patches: fool D into calling the fakes real."""
    return mse_loss(fake_scores, mg.ones_like(fake_scores))


def cycle_loss(reconstructed, real):
    """||F(G(x)) - x||_1, a mean over pixels."""
    return l1_loss(reconstructed, real)


def identity_loss(translated_own, real):
    """||G(y) - y||_1: a generator given an image of its target domain should return it."""
    return l1_loss(translated_own, real)


# ---------------------------------------------------------------- the learning rate


class LinearDecay:
    """The lr factor of the reference implementation's 'linear' policy, for ``LambdaLR``:
    1 for the first ``hold`` steps, then down by 1 / (decay + 1) a step, so the last of
    ``hold + decay`` steps trains at lr / (decay + 1) and the line reaches 0 one step later:

        factor(step) = 1 - max(0, step + 1 - hold) / (decay + 1)

    A callable object (not a lambda), so ``LambdaLR.state_dict`` keeps it."""

    def __init__(self, hold, decay):
        self.hold, self.decay = hold, decay

    def __call__(self, step):
        return 1.0 - max(0, step + 1 - self.hold) / float(self.decay + 1)


def optimizers(G, F, D_X, D_Y, steps, decay, lr=2e-4, beta1=0.5):
    """The paper's training schedule: one Adam (lr, betas (beta1, 0.999)) over both generators,
    one over both discriminators, and for each a ``LambdaLR`` holding the lr for
    ``steps - decay`` steps and decaying it linearly over the last ``decay`` (``LinearDecay``).
    Returns (opt_g, opt_d, [the two schedulers])."""
    adam = dict(lr=lr, betas=(beta1, 0.999))
    opt_g = optim.Adam([*G.parameters(), *F.parameters()], **adam)
    opt_d = optim.Adam([*D_X.parameters(), *D_Y.parameters()], **adam)
    return opt_g, opt_d, [optim.lr_scheduler.LambdaLR(o, LinearDecay(steps - decay, decay)) for o in (opt_g, opt_d)]


# ---------------------------------------------------------------- one training step


def train_step(G, F, D_X, D_Y, opt_g, opt_d, real_x, real_y, pool_x=None, pool_y=None,
               lambda_cycle=10.0, lambda_identity=0.5, d_penalty=None):
    """One step of both generators (one optimizer ``opt_g`` over G and F), then of both
    discriminators (``opt_d`` over D_X and D_Y). ``pool_x`` holds fakes of X (made by F)
    for D_X, ``pool_y`` fakes of Y for D_Y; None trains D on the latest fakes only.
    ``lambda_identity`` is relative to ``lambda_cycle`` (the identity weight is their
    product); 0 skips the identity terms. ``d_penalty(D, real, fake)``, if given, is added
    to each D's loss (TimbreTron's gradient penalty), on the same fakes D is trained on.
    Returns the losses as floats."""
    fake_y, fake_x = G(real_x), F(real_y)
    rec_x, rec_y = F(fake_y), G(fake_x)

    D_X.requires_grad_(False)  # the generators' step differentiates through D, not into it
    D_Y.requires_grad_(False)
    gan_g, gan_f = generator_loss(D_Y(fake_y)), generator_loss(D_X(fake_x))
    cyc = cycle_loss(rec_x, real_x) + cycle_loss(rec_y, real_y)
    g_loss = gan_g + gan_f + lambda_cycle * cyc
    losses = {"g_gan": gan_g.item(), "f_gan": gan_f.item(), "cycle": cyc.item()}
    if lambda_identity > 0:
        idt = identity_loss(G(real_y), real_y) + identity_loss(F(real_x), real_x)
        g_loss = g_loss + lambda_cycle * lambda_identity * idt
        losses["identity"] = idt.item()
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    D_X.requires_grad_(True)
    D_Y.requires_grad_(True)

    fake_x = pool_x(fake_x) if pool_x is not None else fake_x.detach()
    fake_y = pool_y(fake_y) if pool_y is not None else fake_y.detach()
    d_x_loss = discriminator_loss(D_X(real_x), D_X(fake_x))
    d_y_loss = discriminator_loss(D_Y(real_y), D_Y(fake_y))
    d_loss = d_x_loss + d_y_loss
    if d_penalty is not None:
        penalty = d_penalty(D_X, real_x, fake_x) + d_penalty(D_Y, real_y, fake_y)
        d_loss = d_loss + penalty
        losses["d_penalty"] = penalty.item()
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    return {"d_x": d_x_loss.item(), "d_y": d_y_loss.item(), **losses}
