r"""Progressive growing of GANs (Karras, Aila, Laine & Lehtinen, 2018, "Progressive
Growing of GANs for Improved Quality, Stability, and Variation").

The idea: do not ask a GAN to learn a large image at once. Train G and D at 4x4,
then add a block to both that doubles the resolution (8x8, 16x16, ...), so each
stage learns only the detail its octave adds while the coarse structure, learnt
first, stays. Most iterations run at low resolution, where they are cheap.

A new block is *faded in* (Figure 2 of the paper). During a fade, with alpha rising
linearly from 0 to 1,

    G:  out = (1 - alpha) * upsample(toRGB_old(h)) + alpha * toRGB_new(block(h))
    D:  h   = (1 - alpha) * fromRGB_old(avgpool(x)) + alpha * block(fromRGB_new(x))

so at alpha = 0 the grown networks compute what the smaller ones did. The real
images D sees are cross-faded the same way (the official code's ``process_reals``,
a step reimplementations often miss): x_real = (1 - alpha) * upsample(avgpool(x))
+ alpha * x, so early in a fade the real images have no more detail than G can
make. Each stage has two phases of equal length: the fade, then a stable phase at
alpha = 1 (the paper: 800k images each; here a number of steps, see ``schedule``).

The objective is WGAN-GP (``wgan.py``) with a drift term that keeps the critic's
scores near 0 (the paper, Appendix A.1):

    L_D = E_g[D(x~)] - E_r[D(x)] + lambda E_xhat[(||grad D(xhat)||_2 - 1)^2] + eps_drift E_r[D(x)^2]
    L_G = -E_g[D(G(z))],           lambda = 10, eps_drift = 0.001.

Three further pieces of the paper, all here:
  * equalized learning rate (sec. 4.1, ``nn.EqualizedConv2d`` / ``nn.EqualizedLinear``):
    weights drawn N(0, 1) and scaled at runtime by He's constant sqrt(2 / fan_in);
    the toRGB layers and D's last layer with gain 1 (linear outputs);
  * pixelwise feature normalization in G (sec. 4.2, ``F.pixel_norm``, eps 1e-8) after
    every 3x3 conv, and on z itself, instead of batch norm;
  * minibatch standard deviation (sec. 3, ``F.minibatch_stddev``, groups of 4) as an
    extra feature map before D's last 3x3 conv: D can see that a batch lacks variety.

Networks (Table 2 of the paper), with nf(s) = min(fmap_base / 2^s, fmap_max)
channels at resolution 2^(s+1), LeakyReLU 0.2 after every layer but the outputs:

    G: pixel_norm(z) -> dense to nf(1) x 4 x 4 -> conv 3x3            (4x4)
       [nearest x2 -> conv 3x3 -> conv 3x3] per stage, pixel norm after each conv
       toRGB: conv 1x1 (gain 1) at the current stage, linear output
    D: fromRGB: conv 1x1 at the current stage
       [conv 3x3 -> conv 3x3 -> avgpool 2x2] per stage
       minibatch stddev -> conv 3x3 -> dense nf(1) -> dense 1 (gain 1)   (4x4)

Training (Appendix A.1): Adam lr 1e-3, betas (0, 0.99), eps 1e-8, one D step per
G step, the optimizers' state reset when a new resolution starts, and an
exponential moving average of G's weights (decay 0.999) used for every sample.

Deviations and choices:
  * small widths, for a CPU: the paper has fmap_base 8192, fmap_max 512 (512 channels up to
    64x64) and a 512-dim z (= nf(1)); the defaults here are 256 and 64 (64 channels
    at 4x4 and 8x8, 32 at 16x16, 16 at 32x32) and z of 64 dims (nf(1), as the paper);
  * the dense input layer has gain sqrt(2) / 4, as the official code (``G_paper``),
    where the paper's Table 2 draws a 4x4 conv on a 1x1 input (either way a linear
    map from z to nf(1) x 4 x 4);
  * one batch size for every stage (the paper: 16 at its resolutions above 128x128,
    larger below) and the schedule in steps, not in images shown;
  * the Adam state is reset once per new resolution, at the start of its fade;
    the official code resets it again when the fade ends;
  * ``examples/progan.py`` averages G with decay 0.99, not 0.999 (its phases are
    600 steps, not tens of thousands; it says why);
  * no minibatch repeats (the official code reuses each real batch for 4 steps),
    no learning-rate ramp, no label conditioning;
  * G's output is not clamped in training (linear, as the paper's); the samples a
    script saves are clipped to the data's range [-1, 1], as the official code
    does when it writes images.
"""
import math

import minigan as mg
from minigan import nn
from minigan.functional import avg_pool2d, interpolate, leaky_relu, lerp, minibatch_stddev, pixel_norm

from .latent import sample_latent
from .wgan import critic_loss, generator_loss, gradient_penalty, wasserstein_estimate

GP_WEIGHT = 10.0      # lambda
DRIFT = 0.001         # eps_drift
ADAM = {"lr": 1e-3, "betas": (0.0, 0.99), "eps": 1e-8}
EMA_DECAY = 0.999
SLOPE = 0.2           # LeakyReLU
GROUP_SIZE = 4        # minibatch stddev


def num_stages(resolution):
    """Stages 4x4, 8x8, ..., resolution: log2(resolution) - 1 of them. ValueError unless
    ``resolution`` is a power of two, at least 4."""
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 4 or \
            resolution & (resolution - 1):
        raise ValueError(f"ProGAN: resolution must be a power of two, at least 4, got {resolution!r}")
    return int(math.log2(resolution)) - 1


def channels_at(stage, fmap_base=256, fmap_max=64):
    """nf(s) of the paper's code: channels of the blocks at resolution 4 * 2^stage."""
    return min(fmap_base // 2 ** (stage + 1), fmap_max)


def schedule(step, phase_steps, stages):
    """(stage, alpha) at 0-based ``step`` when growing through ``stages`` in phases of
    ``phase_steps`` steps: 4x4 stable, then for each new resolution a fade (alpha rising
    linearly from 0 at its first step towards 1) and a stable phase (alpha = 1). After
    the 2 * stages - 1 phases, training stays at the final resolution."""
    phase = min(step // phase_steps, 2 * stages - 2)
    stage = (phase + 1) // 2
    if phase % 2 == 1:  # a fade
        return stage, (step - phase * phase_steps) / phase_steps
    return stage, 1.0


def real_images(images, stage, alpha):
    """The real batch as D sees it at ``stage``: average-pooled down to 4 * 2^stage
    pixels and, during a fade (alpha < 1), cross-faded with its own 2x coarser copy,
    lerp(upsample(avgpool(x)), x, alpha), as G's output is."""
    factor = images.shape[-1] // (4 * 2 ** stage)
    if factor > 1:
        images = avg_pool2d(images, factor)
    if alpha < 1:
        coarse = interpolate(avg_pool2d(images, 2), scale_factor=2, mode="nearest")
        images = lerp(coarse, images, alpha)
    return images


class GeneratorInput(nn.Module):
    """The 4x4 stage of G: pixel_norm(z) -> dense -> (nf, 4, 4) -> conv 3x3, each layer
    followed by LeakyReLU and pixel norm."""

    def __init__(self, latent_dim, channels):
        super().__init__()
        self.dense = nn.EqualizedLinear(latent_dim, channels * 16, gain=math.sqrt(2) / 4)
        self.conv = nn.EqualizedConv2d(channels, channels, 3, padding=1)
        self.channels = channels

    def forward(self, z):
        x = self.dense(pixel_norm(z)).reshape(z.shape[0], self.channels, 4, 4)
        x = pixel_norm(leaky_relu(x, SLOPE))
        return pixel_norm(leaky_relu(self.conv(x), SLOPE))


class GeneratorBlock(nn.Module):
    """One new stage of G: nearest-neighbour x2, then two 3x3 convs, each followed by
    LeakyReLU and pixel norm."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv1 = nn.EqualizedConv2d(in_channels, out_channels, 3, padding=1)
        self.conv2 = nn.EqualizedConv2d(out_channels, out_channels, 3, padding=1)

    def forward(self, x):
        x = interpolate(x, scale_factor=2, mode="nearest")
        x = pixel_norm(leaky_relu(self.conv1(x), SLOPE))
        return pixel_norm(leaky_relu(self.conv2(x), SLOPE))


class Generator(nn.Module):
    """G: z (N, latent_dim) -> images (N, channels, 4 * 2^stage, same), a linear output.

    ``blocks[s]`` and ``to_rgb[s]`` make stage s; ``forward(z, stage, alpha)`` runs
    stages 0..stage, fading the last one in by ``alpha``. All stages exist from the
    start (their parameters in one optimizer); a stage not yet reached is unused.
    """

    def __init__(self, latent_dim=64, channels=1, resolution=16, fmap_base=256, fmap_max=64):
        super().__init__()
        self.stages = num_stages(resolution)
        widths = [channels_at(s, fmap_base, fmap_max) for s in range(self.stages)]
        self.blocks = nn.ModuleList([GeneratorInput(latent_dim, widths[0])] +
                                    [GeneratorBlock(widths[s - 1], widths[s]) for s in range(1, self.stages)])
        self.to_rgb = nn.ModuleList([nn.EqualizedConv2d(w, channels, 1, gain=1.0) for w in widths])
        self.latent_dim, self.channels, self.resolution = latent_dim, channels, resolution

    def forward(self, z, stage=None, alpha=1.0):
        stage = self.stages - 1 if stage is None else stage
        _check_stage(stage, alpha, self.stages)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"Generator: expected z of shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        x = self.blocks[0](z)
        for s in range(1, stage + 1):
            if s == stage and alpha < 1:
                skip = interpolate(self.to_rgb[s - 1](x), scale_factor=2, mode="nearest")
            x = self.blocks[s](x)
        out = self.to_rgb[stage](x)
        if stage > 0 and alpha < 1:
            out = lerp(skip, out, alpha)
        return out


class DiscriminatorBlock(nn.Module):
    """One stage of D: two 3x3 convs with LeakyReLU, then 2x2 average pooling."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv1 = nn.EqualizedConv2d(in_channels, in_channels, 3, padding=1)
        self.conv2 = nn.EqualizedConv2d(in_channels, out_channels, 3, padding=1)

    def forward(self, x):
        x = leaky_relu(self.conv1(x), SLOPE)
        return avg_pool2d(leaky_relu(self.conv2(x), SLOPE), 2)


class DiscriminatorOutput(nn.Module):
    """The 4x4 stage of D: minibatch stddev -> conv 3x3 -> dense -> dense to one score (gain 1)."""

    def __init__(self, channels, group_size=GROUP_SIZE):
        super().__init__()
        self.conv = nn.EqualizedConv2d(channels + 1, channels, 3, padding=1)
        self.dense = nn.EqualizedLinear(channels * 16, channels)
        self.out = nn.EqualizedLinear(channels, 1, gain=1.0)
        self.group_size = group_size

    def forward(self, x):
        x = minibatch_stddev(x, self.group_size)
        x = leaky_relu(self.conv(x), SLOPE)
        x = leaky_relu(self.dense(x.flatten(1)), SLOPE)
        return self.out(x).flatten()


class Discriminator(nn.Module):
    """D: images (N, channels, 4 * 2^stage, same) -> one unbounded score per image (N,).

    ``from_rgb[s]`` and ``blocks[s]`` make stage s (``blocks[0]`` is the 4x4 output);
    ``forward(x, stage, alpha)`` enters at ``stage`` and fades it in by ``alpha``.
    """

    def __init__(self, channels=1, resolution=16, fmap_base=256, fmap_max=64, group_size=GROUP_SIZE):
        super().__init__()
        self.stages = num_stages(resolution)
        widths = [channels_at(s, fmap_base, fmap_max) for s in range(self.stages)]
        self.from_rgb = nn.ModuleList([nn.EqualizedConv2d(channels, w, 1) for w in widths])
        self.blocks = nn.ModuleList([DiscriminatorOutput(widths[0], group_size)] +
                                    [DiscriminatorBlock(widths[s], widths[s - 1]) for s in range(1, self.stages)])
        self.channels, self.resolution = channels, resolution

    def forward(self, x, stage=None, alpha=1.0):
        stage = self.stages - 1 if stage is None else stage
        _check_stage(stage, alpha, self.stages)
        size = 4 * 2 ** stage
        if x.ndim != 4 or tuple(x.shape[1:]) != (self.channels, size, size):
            raise ValueError(f"Discriminator: expected images of shape (N, {self.channels}, {size}, {size}) "
                             f"at stage {stage}, got {tuple(x.shape)}")
        h = leaky_relu(self.from_rgb[stage](x), SLOPE)
        if stage > 0:
            h = self.blocks[stage](h)
            if alpha < 1:
                skip = leaky_relu(self.from_rgb[stage - 1](avg_pool2d(x, 2)), SLOPE)
                h = lerp(skip, h, alpha)
            for s in range(stage - 1, 0, -1):
                h = self.blocks[s](h)
        return self.blocks[0](h)


def _check_stage(stage, alpha, stages):
    if not 0 <= stage < stages:
        raise ValueError(f"ProGAN: stage must be in [0, {stages}), got {stage!r}")
    if not 0 <= alpha <= 1:
        raise ValueError(f"ProGAN: alpha must be in [0, 1], got {alpha!r}")


# ---------------------------------------------------------------- one training step


def reset_optimizer(optimizer):
    """Forget Adam's moments and step counts (the paper does so at each new resolution)."""
    optimizer.state.clear()


def train_step(generator, discriminator, opt_g, opt_d, real, stage, alpha, ema=None, gp_weight=GP_WEIGHT,
               drift=DRIFT):
    """One D step and one G step at ``stage``, fading by ``alpha``.

    ``real``: a batch at any resolution at or above the stage's, brought to the stage
    by ``real_images``. D descends E_g D - E_r D + gradient penalty + drift E_r D^2 on
    fakes of a fresh z (no graph through G); G then descends -E_g D on fakes of
    another z, through the updated D. ``ema`` (an ``optim.EMA`` of G) is updated
    after G's step. Noise is drawn z, the penalty's eps, then z for G.
    Returns the losses as floats."""
    def critic(x):  # D at this stage and alpha, a function of the images only (for the penalty)
        return discriminator(x, stage, alpha)

    real = real_images(real, stage, alpha)
    z = sample_latent(real.shape[0], generator.latent_dim, real.device)
    with mg.no_grad():
        fake = generator(z, stage, alpha)
    real_scores, fake_scores = critic(real), critic(fake)
    gp = gradient_penalty(critic, real, fake, gp_weight)
    drift_term = drift * (real_scores ** 2).mean()
    d_loss = critic_loss(real_scores, fake_scores) + gp + drift_term
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()

    z = sample_latent(real.shape[0], generator.latent_dim, real.device)
    discriminator.requires_grad_(False)  # G's step differentiates through D, not into it
    g_loss = generator_loss(critic(generator(z, stage, alpha)))
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    discriminator.requires_grad_(True)
    if ema is not None:
        ema.update(generator)
    return {"d_loss": d_loss.item(), "g_loss": g_loss.item(), "penalty": gp.item(),
            "wasserstein": wasserstein_estimate(real_scores, fake_scores).item()}
