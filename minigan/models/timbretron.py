"""TimbreTron (Huang, Li, Anil, Bao, Oore & Grosse, ICLR 2019, "TimbreTron: A
WaveNet(CycleGAN(CQT(Audio))) Pipeline for Musical Timbre Transfer").

The idea: change the instrument that plays a piece of music (its timbre) and keep what is
played (pitch, rhythm, loudness), with no pair of recordings of the same piece by both
instruments. TimbreTron treats it as unpaired image-to-image translation:

    audio --CQT--> log-magnitude "image" --CycleGAN--> image of the other timbre --> audio

The representation carries the idea. On a constant-Q spectrogram (``minigan.data.cqt``)
the frequency axis is logarithmic, so a note one semitone up is the same picture moved
up one bin: a convolution's weight sharing turns into pitch equivariance, and a
generator that learned to re-colour the harmonics of one note does it for every note.
The paper goes back to audio with a conditional WaveNet; here the inverse is Griffin–Lim
on the CQT (no WaveNet: that network is far beyond a CPU), so the numbers below are
measured on the spectrograms, and the audio is a listening aid.

The objective is CycleGAN's (``minigan/models/cyclegan.py``): two generators G: X -> Y
and F: Y -> X, least-squares GAN losses against D_Y and D_X, the cycle and identity terms,

    L = L_GAN(G, D_Y) + L_GAN(F, D_X) + lambda_cyc L_cyc + lambda_idt L_identity

with the same ResNet generator and training step. What TimbreTron changes in CycleGAN for
spectrograms (the paper's section on its CycleGAN and its appendix; where a value is not
named here it is CycleGAN's), each in this file:

  * Full-spectrogram discriminator: timbre is the balance between harmonics that lie far
    apart on the frequency axis (the 4th harmonic is 24 bins above the fundamental), and
    the CQT is not translation-invariant in frequency (low and high bins differ in
    resolution), so D should see the whole frequency axis at once rather than 70 x 70
    patches. Here the last layer of ``FullSpectrogramDiscriminator`` spans every bin
    and D scores each stretch of time.
  * Gradient penalty on D (Gulrajani et al. 2017, ``wgan.gradient_penalty``), added to
    D's least-squares loss to keep its gradients tame.
  * Identity loss: G should leave a clip already in the target timbre alone; it keeps
    the generators from moving notes early in training (the paper keeps it, with
    lambda_idt relative to lambda_cyc as in CycleGAN).
  * The time axis: the networks are fully convolutional, trained on random crops in
    time (``random_time_crop``) and applied to whole clips at test time, so a clip of any
    length (a multiple of 4 frames) can be translated.

Hyperparameters: CycleGAN's, Adam lr 2e-4, betas (0.5, 0.999), lambda_cyc = 10,
lambda_idt = 0.5 (relative), image pool of 50, linear lr decay over the second half;
gradient penalty weight 10 (WGAN-GP's lambda). The paper trains on crops of real
recordings (piano, flute, violin, harpsichord) with full-size networks on GPUs; here two
synthetic instruments (``minigan.data.timbre``) on 2-second clips, 1-second crops and
small networks, on a CPU.
"""
import numpy as np

from minigan import nn

from . import cyclegan
from .dcgan import init_weights
from .patchgan import _conv_norm_act, _PatchDiscriminator
from .wgan import gradient_penalty

GP_WEIGHT = 10.0


# ---------------------------------------------------------------- the networks


def generator(width=16, n_blocks=3):
    """CycleGAN's ResNet generator on one-channel CQT images (N, 1, n_bins, T), bins and frames
    multiples of 4; fully convolutional, so T at test time need not be T at training time."""
    return cyclegan.ResnetGenerator(1, 1, width, n_blocks)


class FullSpectrogramDiscriminator(_PatchDiscriminator):
    """CQT images (N, 1, n_bins, T) -> least-squares scores (N, 1, 1, T / 2^n_layers): the
    PatchGAN's stride-2 layers, then one convolution whose kernel covers all the
    n_bins / 2^n_layers rows left, 3 columns wide, so every score sees the whole
    frequency axis of a stretch of time."""

    def __init__(self, n_bins=48, ndf=32, n_layers=3):
        super().__init__()
        if n_bins % 2 ** n_layers:
            raise ValueError(f"FullSpectrogramDiscriminator: n_bins {n_bins} must be a multiple of "
                             f"2^n_layers = {2 ** n_layers}")
        layers, width = [nn.Conv2d(1, ndf, 4, 2, 1), nn.LeakyReLU(0.2)], ndf  # no norm on the first layer
        for n in range(1, n_layers):
            layers += _conv_norm_act(width, ndf * min(2 ** n, 8), 4, 2, 1, "instance")
            width = ndf * min(2 ** n, 8)
        layers.append(nn.Conv2d(width, 1, (n_bins // 2 ** n_layers, 3), 1, (0, 1)))
        self.model = nn.Sequential(*layers)
        self.in_channels, self.n_bins = 1, n_bins
        init_weights(self)

    def forward(self, input):
        if input.ndim == 4 and input.shape[2] != self.n_bins:
            raise ValueError(f"FullSpectrogramDiscriminator: expected {self.n_bins} frequency bins, "
                             f"got images of shape {tuple(input.shape)}")
        return super().forward(input)


# ---------------------------------------------------------------- the time axis


def random_time_crop(images, frames, rng):
    """A random stretch of ``frames`` frames of each image (N, C, n_bins, T), one offset per image."""
    if frames > images.shape[-1]:
        raise ValueError(f"random_time_crop: {frames} frames asked of images {images.shape[-1]} frames long")
    starts = rng.integers(0, images.shape[-1] - frames + 1, len(images))
    return np.stack([image[..., s:s + frames] for image, s in zip(images, starts)])


# ---------------------------------------------------------------- one training step


def train_step(G, F, D_X, D_Y, opt_g, opt_d, real_x, real_y, pool_x=None, pool_y=None,
               lambda_cycle=10.0, lambda_identity=0.5, gp_weight=GP_WEIGHT):
    """CycleGAN's step (``cyclegan.train_step``: G and F, then D_X and D_Y on pooled fakes)
    with the gradient penalty ``gp_weight`` * E[(||grad D(xhat)|| - 1)^2] added to each D's
    loss (0: none). Returns the losses as floats."""
    penalty = None
    if gp_weight > 0:
        def penalty(D, real, fake):
            return gradient_penalty(D, real, fake, weight=gp_weight)
    return cyclegan.train_step(G, F, D_X, D_Y, opt_g, opt_d, real_x, real_y, pool_x, pool_y,
                               lambda_cycle=lambda_cycle, lambda_identity=lambda_identity, d_penalty=penalty)
