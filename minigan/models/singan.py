r"""SinGAN (Shaham, Dekel & Michaeli 2019, "SinGAN: Learning a Generative Model from a
Single Natural Image").

The idea: one image holds many patches, and the patches of a natural image repeat
at every scale. So learn the *distribution of its patches*, one scale at a time,
with a pyramid of small fully convolutional GANs. Scale 0 is the coarsest (shorter
side 25 pixels), scale N the finest; x_n is the real image shrunk to scale n.

    x~_0 = G_0(z_0)
    x~_n = G_n(z_n + up(x~_{n-1})) + up(x~_{n-1}),      n = 1 .. N

``up`` enlarges by 1/r (r = 0.75, the paper's factor 4/3). Each G_n adds the details
its scale is responsible for: the residual form makes it the identity plus a
correction. z_n is white noise times an amplitude sigma_n, the only randomness. At
the coarsest scale the 11x11 patch that each critic sees covers a large part of the
image, so G_0 decides the layout; at the finest it covers texture only.

**Networks** (the paper's code, ``GeneratorConcatSkip2CleanAdd`` and ``WDiscriminator``):
five 3x3 convolutions without padding, conv-BN-LeakyReLU(0.2) blocks then a conv
(tanh for G); the input is zero-padded by 5 pixels so G keeps the size. The critic is
a Markovian patch critic: the same five convs, no padding, so each of its outputs
sees an 11x11 patch; its map of scores is averaged. The width is 32 channels at
scales 0-3, doubling every 4 scales (at most 128); a scale whose width equals the
previous one's starts from that scale's weights.

**Training, scale by scale**; the coarser scales are frozen (eval mode, no gradients)
while scale n trains:

    min_{G_n} max_{D_n}  L_adv(G_n, D_n) + alpha L_rec(G_n),     alpha = 10

* L_adv is WGAN-GP with lambda = 0.1 (``minigan.models.wgan.gradient_penalty``); the
  paper's code takes the gradient's norm over the channels at each pixel and averages
  (norm - 1)^2 over the pixels (``per_pixel=True``, the default here), instead of one
  norm per image.
* L_rec = ||G_n(0 + up(x~rec_{n-1})) + up(x~rec_{n-1}) - x_n||^2 (the mean square): one
  fixed noise map z* at the coarsest scale and zero noise at the finer scales must
  give back the real image, so the noise never has to explain the whole image.
* sigma_n = 0.1 * RMSE(x_n, up(x~rec_{n-1})): each scale's noise is as large as what
  the reconstruction still misses there (sigma_0 = 1).
* Each iteration: 3 critic steps, then 3 generator steps; Adam lr 5e-4, betas
  (0.5, 0.999), the learning rate times 0.1 after 80% of the iterations of a scale
  (the paper: 2000 iterations a scale).

Deviations from the paper's code: ``up`` is bilinear (``F.interpolate``, the paper's
code bicubic) and the real pyramid is an antialiased bilinear shrink
(``minigan.data.transforms.resize``); the generator steps recompute G's output with
the weights of the step (the paper's code reuses the output of the last critic step
through all three generator steps, which newer torch refuses); the coarsest noise
is one grey map repeated over the colour channels, as in the paper's code.
"""
import math

import numpy as np

import minigan as mg
from minigan import functional as F
from minigan import nn

from ..data.transforms import resize
from .dcgan import init_weights
from .wgan import critic_loss, gradient_penalty

SCALE_FACTOR = 0.75  # r: each scale is 3/4 of the next finer one (the paper's 4/3)
MIN_SIZE = 25        # the coarsest scale's shorter side
MAX_SIZE = 250       # the finest scale's longer side, at most
LAYERS = 5           # 3x3 convs per network: an 11x11 receptive field
WIDTH = 32           # channels at scales 0-3, doubling every WIDTH_EVERY scales
WIDTH_EVERY = 4
MAX_WIDTH = 128
ALPHA = 10.0         # the reconstruction loss's weight
GP_WEIGHT = 0.1      # lambda of WGAN-GP
NOISE_AMP = 0.1      # sigma_n = NOISE_AMP * RMSE
STEPS_D = STEPS_G = 3
LR = 5e-4
BETAS = (0.5, 0.999)
DECAY_AT = 0.8       # the learning rate times GAMMA after this fraction of a scale's iterations
GAMMA = 0.1


# ---------------------------------------------------------------- the pyramid


def pyramid_sizes(height, width, min_size=MIN_SIZE, max_size=MAX_SIZE, scale_factor=SCALE_FACTOR):
    """The (height, width) of every scale, coarsest first, and the factor r between scales.

    As the paper's code (``adjust_scales2image``): the image is first shrunk so that its
    longer side is at most ``max_size``; with s its shorter side, there are
    N = ceil(log(min_size / s) / log(scale_factor)) scales above the finest, and the
    factor is adjusted to r = (min_size / s)^(1/N) >= scale_factor so that the coarsest
    shorter side is exactly ``min_size``. Scale n is the finest times r^(N - n), rounded.
    """
    if not 0 < scale_factor < 1:
        raise ValueError(f"pyramid_sizes: scale_factor must be in (0, 1), got {scale_factor}")
    shrink = min(max_size / max(height, width), 1.0)
    h, w = round(height * shrink), round(width * shrink)
    if min(h, w) < min_size:
        raise ValueError(f"the image is too small for SinGAN's pyramid: {height}x{width} pixels"
                         + (f" ({h}x{w} after shrinking its longer side to {max_size})" if shrink < 1 else "")
                         + f"; its shorter side must be at least the coarsest size {min_size}")
    n = math.ceil(math.log(min_size / min(h, w)) / math.log(scale_factor) - 1e-9)
    r = (min_size / min(h, w)) ** (1 / n) if n else 1.0
    return [(round(h * r ** (n - k)), round(w * r ** (n - k))) for k in range(n + 1)], r


def widths(num_scales, width=WIDTH, every=WIDTH_EVERY, max_width=MAX_WIDTH):
    """The channels of each scale's networks: ``width`` doubling every ``every`` scales."""
    return [min(width * 2 ** (n // every), max_width) for n in range(num_scales)]


def real_pyramid(image, sizes):
    """The exemplar (C, H, W) in [-1, 1] shrunk to every size: a list of (1, C, h, w) float32 arrays."""
    image = np.asarray(image, np.float32)[None]
    return [np.clip(resize(image, size), -1, 1).astype(np.float32) for size in sizes]


def upsample(x, size):
    """up(x): bilinear resampling of a batch to ``size`` (the step from one scale to the next)."""
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


def rmse(a, b):
    """The root mean square difference of two arrays (the noise amplitude's measure)."""
    return float(np.sqrt(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)))


def noise_amplitude(real, reconstruction, factor=NOISE_AMP):
    """sigma_n = factor * RMSE(x_n, up(x~rec_{n-1})): the noise of a scale is as large as
    what the coarser scales' reconstruction still misses there."""
    return factor * rmse(real, reconstruction)


# ---------------------------------------------------------------- the networks of one scale


class ConvBlock(nn.Sequential):
    """conv 3x3 (no padding) - batch norm - LeakyReLU(0.2)."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.add_module("conv", nn.Conv2d(in_channels, out_channels, 3))
        self.add_module("norm", nn.BatchNorm2d(out_channels))
        self.add_module("act", nn.LeakyReLU(0.2))


class _FiveConvs(nn.Module):
    """head block, LAYERS - 2 body blocks, a tail conv to ``out_channels``: each output
    pixel sees a (2 * layers + 1)-pixel square of the input."""

    def __init__(self, in_channels, out_channels, width, layers):
        super().__init__()
        if layers < 2:
            raise ValueError(f"SinGAN's networks need at least 2 layers, got {layers}")
        self.head = ConvBlock(in_channels, width)
        self.body = nn.Sequential(*[ConvBlock(width, width) for _ in range(layers - 2)])
        self.tail = nn.Conv2d(width, out_channels, 3)
        self.pad = layers  # (3 - 1) / 2 pixels lost per conv
        init_weights(self)

    def features(self, x):
        return self.tail(self.body(self.head(x)))


class ScaleGenerator(_FiveConvs):
    """G_n(z, prev) = tanh(convs(pad(z + prev))) + prev, the same size as ``prev``."""

    def __init__(self, channels=3, width=WIDTH, layers=LAYERS):
        super().__init__(channels, channels, width, layers)

    def forward(self, z, prev):
        x = F.pad(z + prev, (self.pad,) * 4)
        return self.features(x).tanh() + prev


class ScaleCritic(_FiveConvs):
    """D_n: a map of scores, one per 11x11 patch of the image ((H - 10) x (W - 10))."""

    def __init__(self, channels=3, width=WIDTH, layers=LAYERS):
        super().__init__(channels, 1, width, layers)

    def forward(self, x):
        return self.features(x)


# ---------------------------------------------------------------- the pyramid of GANs


class SinGAN(nn.Module):
    """The generators and critics of every scale, with each scale's noise amplitude and
    the fixed reconstruction noise z* (buffers, so that a checkpoint holds them)."""

    def __init__(self, sizes, channels=3, width=WIDTH, layers=LAYERS, width_every=WIDTH_EVERY):
        super().__init__()
        self.sizes = [tuple(int(v) for v in s) for s in sizes]
        self.channels = channels
        self.widths = widths(len(sizes), width, width_every)
        self.generators = nn.ModuleList([ScaleGenerator(channels, w, layers) for w in self.widths])
        self.critics = nn.ModuleList([ScaleCritic(channels, w, layers) for w in self.widths])
        self.register_buffer("noise_amps", mg.ones(len(sizes)))
        self.register_buffer("z_star", mg.zeros(1, channels, *self.sizes[0]))
        self._rec_cache = {}

    @property
    def _like(self):
        """New tensors' device and dtype: the model's (float64 after ``.double()``)."""
        return {"device": self.noise_amps.device, "dtype": self.noise_amps.dtype}

    @property
    def num_scales(self):
        return len(self.sizes)

    def noise(self, scale, size, n=1):
        """sigma_scale times N(0, 1) noise of shape (n, C, *size); grey (one map repeated
        over the channels) at the coarsest scale, as in the paper's code."""
        if scale == 0:
            z = mg.randn(n, 1, *size, **self._like).expand(n, self.channels, *size)
        else:
            z = mg.randn(n, self.channels, *size, **self._like)
        return z * float(self.noise_amps.numpy()[scale])

    def sizes_for(self, coarsest):
        """Every scale's size for a coarsest noise map of another (height, width): the
        same factors between scales, so a wider coarsest map gives a wider image."""
        h0, w0 = self.sizes[0]
        return [(max(1, round(coarsest[0] * h / h0)), max(1, round(coarsest[1] * w / w0))) for h, w in self.sizes]

    def generate(self, n=1, start=0, start_image=None, stop=None, coarsest=None):
        """Samples from the pyramid (no gradients, networks as they are): scales ``start``
        to ``stop`` (default the finest) each add noise and their correction.

        ``start > 0`` injects ``start_image`` (a (N or 1, C, h, w) Tensor at scale
        start - 1, e.g. the real image shrunk there) instead of generating the coarser
        scales. ``coarsest``: another (height, width) for the coarsest noise map (other
        aspect ratios and sizes). Returns a Tensor (n, C, H, W)."""
        stop = self.num_scales - 1 if stop is None else stop
        sizes = self.sizes_for(coarsest) if coarsest is not None else self.sizes
        if start > 0 and start_image is None:
            raise ValueError("SinGAN.generate: start > 0 needs start_image, the image at scale start - 1")
        with mg.no_grad():
            x = None
            if start > 0:
                x = start_image.expand(n, *start_image.shape[1:]) if start_image.shape[0] == 1 else start_image
            for k in range(start, stop + 1):
                prev = upsample(x, sizes[k]) if x is not None else mg.zeros(n, self.channels, *sizes[k],
                                                                             **self._like)
                x = self.generators[k](self.noise(k, sizes[k], n), prev)
        return x

    def super_resolve(self, image, times=1, factor=None):
        """Re-apply the finest generator to an upsampled image, ``times`` times, each by 1/r
        (``factor`` = r, default the pyramid's): the paper's super-resolution."""
        r = factor or (self.sizes[-2][0] / self.sizes[-1][0] if self.num_scales > 1 else SCALE_FACTOR)
        g, last = self.generators[-1], self.num_scales - 1
        with mg.no_grad():
            x = image
            for _ in range(times):
                size = (round(x.shape[2] / r), round(x.shape[3] / r))
                prev = upsample(x, size)
                x = g(self.noise(last, size, x.shape[0]), prev)
        return x

    def reconstruct(self, stop=None):
        """x~rec at scale ``stop`` (default the finest): z* at the coarsest scale, zero noise
        above, through the networks as they are (no gradients)."""
        stop = self.num_scales - 1 if stop is None else stop
        with mg.no_grad():
            x = None
            for k in range(stop + 1):
                prev = mg.zeros(1, self.channels, *self.sizes[k], **self._like) if x is None \
                    else upsample(x, self.sizes[k])
                z = self.z_star * float(self.noise_amps.numpy()[0]) if k == 0 else mg.zeros_like(prev)
                x = self.generators[k](z, prev)
        return x

    def random_input(self, scale, n=1):
        """up(x~_{scale - 1}) for a fresh draw of the frozen coarser scales (zeros at scale 0)."""
        if scale == 0:
            return mg.zeros(n, self.channels, *self.sizes[0], **self._like)
        return upsample(self.generate(n, stop=scale - 1), self.sizes[scale])

    def reconstruction_input(self, scale):
        """up(x~rec_{scale - 1}) (zeros at scale 0), the input of the reconstruction loss;
        cached, since the coarser scales are frozen while ``scale`` trains."""
        if scale not in self._rec_cache:
            if scale == 0:
                self._rec_cache[scale] = mg.zeros(1, self.channels, *self.sizes[0], **self._like)
            else:
                self._rec_cache[scale] = upsample(self.reconstruct(scale - 1), self.sizes[scale])
        return self._rec_cache[scale]

    # ------------------------------------------------------------ starting a scale

    def freeze_below(self, scale):
        """Scales below ``scale`` in eval mode without gradients; ``scale`` and above trainable."""
        for k in range(self.num_scales):
            for net in (self.generators[k], self.critics[k]):
                net.train(k >= scale)
                net.requires_grad_(k >= scale)
        self._rec_cache = {}

    def start_scale(self, scale, real, noise_factor=NOISE_AMP):
        """What happens once, before scale ``scale``'s first iteration: freeze the coarser
        scales; at scale 0 draw z* (sigma_0 = 1); above, start from the previous scale's
        weights where the widths agree and set sigma_n from the reconstruction's error."""
        self.freeze_below(scale)
        amps = self.noise_amps.numpy().copy()
        if scale == 0:
            self.z_star.copy_(mg.randn(1, 1, *self.sizes[0], **self._like).expand(
                1, self.channels, *self.sizes[0]))
            amps[0] = 1.0
        else:
            if self.widths[scale] == self.widths[scale - 1]:
                self.generators[scale].load_state_dict(self.generators[scale - 1].state_dict())
                self.critics[scale].load_state_dict(self.critics[scale - 1].state_dict())
            amps[scale] = noise_amplitude(_array(real), self.reconstruction_input(scale).numpy(), noise_factor)
        self.noise_amps.copy_(mg.tensor(amps, **self._like))


def _array(x):
    return x.numpy() if isinstance(x, mg.Tensor) else np.asarray(x)


# ---------------------------------------------------------------- one iteration at one scale


def learning_rate(iteration, iterations, lr=LR, decay_at=DECAY_AT, gamma=GAMMA):
    """The paper's schedule: ``lr`` for the first ``decay_at`` of a scale's iterations, then ``gamma * lr``."""
    return lr * (gamma if iteration >= decay_at * iterations else 1.0)


def train_iteration(model, scale, real, opt_g, opt_d, alpha=ALPHA, gp_weight=GP_WEIGHT, per_pixel=True,
                    steps_d=STEPS_D, steps_g=STEPS_G):
    """One iteration at ``scale`` (the coarser scales frozen): ``steps_d`` critic steps,
    then ``steps_g`` generator steps, as the paper's ``train_single_scale``.

    One noise map z_n is drawn for the iteration; each critic step draws a fresh
    up(x~_{n-1}) from the coarser scales. The critic descends
    mean D(fake) - mean D(real) + lambda GP, fake = G_n(z, prev); the generator descends
    -mean D(G_n(z, prev)) + alpha * MSE(G_n(z_rec, rec_prev), x_n) with the last critic
    step's prev, z_rec = sigma_0 z* at scale 0 and 0 above, rec_prev = up(x~rec_{n-1}).
    ``per_pixel``: the penalty's gradient norm per pixel (the paper's code) or per image.
    Returns the last steps' losses as floats."""
    G, D = model.generators[scale], model.critics[scale]
    size = model.sizes[scale]
    z = model.noise(scale, size)
    rec_prev = model.reconstruction_input(scale)
    z_rec = model.z_star * float(model.noise_amps.numpy()[0]) if scale == 0 else mg.zeros_like(rec_prev)
    for _ in range(steps_d):
        prev = model.random_input(scale)
        with mg.no_grad():
            fake = G(z, prev)
        real_scores, fake_scores = D(real), D(fake)
        gp = gradient_penalty(D, real, fake, weight=gp_weight, per_pixel=per_pixel)
        d_loss = critic_loss(real_scores, fake_scores) + gp
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
    D.requires_grad_(False)  # G's steps differentiate through D, not into it
    try:
        for _ in range(steps_g):
            g_adv = -D(G(z, prev)).mean()
            g_rec = alpha * F.mse_loss(G(z_rec, rec_prev), real)
            opt_g.zero_grad()
            (g_adv + g_rec).backward()
            opt_g.step()
    finally:
        D.requires_grad_(True)
    return {"d_loss": d_loss.item(), "gp": gp.item(), "wasserstein": -(d_loss - gp).item(),
            "g_adv": g_adv.item(), "g_rec": g_rec.item()}
