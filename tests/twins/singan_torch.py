"""SinGAN's networks and one iteration of ``train_single_scale`` in plain torch, after the
paper's code (tamarott/SinGAN, ``SinGAN/models.py``, ``SinGAN/training.py`` and
``calc_gradient_penalty`` in ``SinGAN/functions.py``): the twin of
``minigan/models/singan.py``, with its layer names, so the ``state_dict`` keys are minigan's.

The random draws (the iteration's noise map, each critic step's input from the coarser
scales, each penalty's interpolation weight) are arguments, so a test hands both
sides the same numbers. ``tests/test_singan.py`` uses it.
"""
import torch
import torch.nn as tnn
import torch.nn.functional as tF


class ConvBlock(tnn.Sequential):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.add_module("conv", tnn.Conv2d(in_channels, out_channels, 3))
        self.add_module("norm", tnn.BatchNorm2d(out_channels))
        self.add_module("act", tnn.LeakyReLU(0.2))


class FiveConvs(tnn.Module):
    def __init__(self, in_channels, out_channels, width, layers=5):
        super().__init__()
        self.head = ConvBlock(in_channels, width)
        self.body = tnn.Sequential(*[ConvBlock(width, width) for _ in range(layers - 2)])
        self.tail = tnn.Conv2d(width, out_channels, 3)
        self.pad = layers


class Generator(FiveConvs):
    """``GeneratorConcatSkip2CleanAdd``: the input zero-padded (the code's ``m_noise``/``m_image``), tanh, + prev."""

    def __init__(self, channels=3, width=32, layers=5):
        super().__init__(channels, channels, width, layers)

    def forward(self, z, prev):
        x = tF.pad(z + prev, (self.pad,) * 4)
        return torch.tanh(self.tail(self.body(self.head(x)))) + prev


class Critic(FiveConvs):
    """``WDiscriminator``: a map of scores, one per 11x11 patch."""

    def __init__(self, channels=3, width=32, layers=5):
        super().__init__(channels, 1, width, layers)

    def forward(self, x):
        return self.tail(self.body(self.head(x)))


def calc_gradient_penalty(netD, real_data, fake_data, LAMBDA, alpha):
    """The paper's code, with its one interpolation weight ``alpha`` given."""
    alpha = alpha.reshape(1, 1).expand(real_data.size()) if alpha.numel() == 1 else alpha.reshape(-1, 1, 1, 1)
    interpolates = (alpha * real_data + ((1 - alpha) * fake_data)).detach().requires_grad_(True)
    disc_interpolates = netD(interpolates)
    gradients = torch.autograd.grad(outputs=disc_interpolates, inputs=interpolates,
                                    grad_outputs=torch.ones(disc_interpolates.size(), dtype=real_data.dtype),
                                    create_graph=True, retain_graph=True, only_inputs=True)[0]
    return ((gradients.norm(2, dim=1) - 1) ** 2).mean() * LAMBDA


def train_iteration(netG, netD, optimizerG, optimizerD, real, noise, prevs, alphas, z_rec, rec_prev, alpha=10.0,
                    lambda_grad=0.1):
    """One epoch of ``train_single_scale``: len(prevs) critic steps (prev drawn anew in each), then
    three generator steps, each recomputing G's output (the code reuses the last critic step's)."""
    for prev, eps in zip(prevs, alphas):
        netD.zero_grad()
        errD_real = -netD(real).mean()
        fake = netG(noise.detach(), prev)
        errD_fake = netD(fake.detach()).mean()
        gradient_penalty = calc_gradient_penalty(netD, real, fake, lambda_grad, eps)
        errD = errD_real + errD_fake + gradient_penalty
        errD.backward()
        optimizerD.step()
    for _ in range(3):
        netG.zero_grad()
        errG = -netD(netG(noise.detach(), prev)).mean()
        rec_loss = alpha * tF.mse_loss(netG(z_rec, rec_prev), real)
        (errG + rec_loss).backward()
        optimizerG.step()
    return {"d_loss": errD.item(), "gp": gradient_penalty.item(), "g_adv": errG.item(), "g_rec": rec_loss.item()}
