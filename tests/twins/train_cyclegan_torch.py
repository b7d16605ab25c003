"""CycleGAN in plain torch: the twin of ``minigan/models/cyclegan.py``, written after the
reference implementation (junyanz/pytorch-CycleGAN-and-pix2pix: ``ResnetGenerator``,
``ResnetBlock``, ``ImagePool``, ``CycleGANModel.optimize_parameters``).

The networks have the same ``state_dict`` keys as minigan's, so either loads the
other's weights. ``tests/test_cyclegan.py`` imports the generator, the pool and the
step from here.
"""
import random

import torch
import torch.nn as tnn
import torch.nn.functional as TF


class ResnetBlock(tnn.Module):
    def __init__(self, dim):
        super().__init__()
        self.block = tnn.Sequential(
            tnn.ReflectionPad2d(1), tnn.Conv2d(dim, dim, 3, bias=True), tnn.InstanceNorm2d(dim), tnn.ReLU(True),
            tnn.ReflectionPad2d(1), tnn.Conv2d(dim, dim, 3, bias=True), tnn.InstanceNorm2d(dim))

    def forward(self, x):
        return x + self.block(x)


class ResnetGenerator(tnn.Module):
    """The reference's ResnetGenerator with instance norm (no affine: ``use_bias`` is True) and
    reflection padding, no dropout."""

    def __init__(self, input_nc=3, output_nc=3, ngf=64, n_blocks=9):
        super().__init__()
        model = [tnn.ReflectionPad2d(3), tnn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=True),
                 tnn.InstanceNorm2d(ngf), tnn.ReLU(True)]
        n_downsampling = 2
        for i in range(n_downsampling):
            mult = 2 ** i
            model += [tnn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=True),
                      tnn.InstanceNorm2d(ngf * mult * 2), tnn.ReLU(True)]
        mult = 2 ** n_downsampling
        for i in range(n_blocks):
            model += [ResnetBlock(ngf * mult)]
        for i in range(n_downsampling):
            mult = 2 ** (n_downsampling - i)
            model += [tnn.ConvTranspose2d(ngf * mult, int(ngf * mult / 2), kernel_size=3, stride=2, padding=1,
                                          output_padding=1, bias=True),
                      tnn.InstanceNorm2d(int(ngf * mult / 2)), tnn.ReLU(True)]
        model += [tnn.ReflectionPad2d(3), tnn.Conv2d(ngf, output_nc, kernel_size=7, padding=0), tnn.Tanh()]
        self.net = tnn.Sequential(*model)

    def forward(self, x):
        return self.net(x)


class ImagePool:
    """The reference's ImagePool, with its random draws made by ``uniform()`` and
    ``randint(low, high)`` (inclusive) so a test can feed it the draws minigan's pool made."""

    def __init__(self, pool_size, uniform=random.random, randint=random.randint):
        self.pool_size, self.num_imgs, self.images = pool_size, 0, []
        self.uniform, self.randint = uniform, randint

    def query(self, images):
        if self.pool_size == 0:
            return images
        return_images = []
        for image in images:
            image = torch.unsqueeze(image.detach(), 0)
            if self.num_imgs < self.pool_size:
                self.num_imgs = self.num_imgs + 1
                self.images.append(image)
                return_images.append(image)
            else:
                p = self.uniform()
                if p > 0.5:
                    random_id = self.randint(0, self.pool_size - 1)
                    tmp = self.images[random_id].clone()
                    self.images[random_id] = image
                    return_images.append(tmp)
                else:
                    return_images.append(image)
        return torch.cat(return_images, 0)


def _gan_loss(prediction, target_is_real):
    """The reference's GANLoss('lsgan'): MSE against a tensor of ones or zeros."""
    target = torch.ones_like(prediction) if target_is_real else torch.zeros_like(prediction)
    return TF.mse_loss(prediction, target)


def train_step(netG_A, netG_B, netD_A, netD_B, optimizer_G, optimizer_D, real_A, real_B,
               fake_A_pool=None, fake_B_pool=None, lambda_A=10.0, lambda_B=10.0, lambda_idt=0.5):
    """``CycleGANModel.optimize_parameters``: G_A: A -> B is judged by D_A, G_B: B -> A by D_B
    (the reference's naming; minigan's G, F, D_Y, D_X). Returns the losses."""
    fake_B = netG_A(real_A)
    rec_A = netG_B(fake_B)
    fake_A = netG_B(real_B)
    rec_B = netG_A(fake_A)

    for net in (netD_A, netD_B):
        for p in net.parameters():
            p.requires_grad_(False)
    optimizer_G.zero_grad()
    if lambda_idt > 0:
        loss_idt_A = TF.l1_loss(netG_A(real_B), real_B) * lambda_B * lambda_idt
        loss_idt_B = TF.l1_loss(netG_B(real_A), real_A) * lambda_A * lambda_idt
    else:
        loss_idt_A = loss_idt_B = 0
    loss_G_A = _gan_loss(netD_A(fake_B), True)
    loss_G_B = _gan_loss(netD_B(fake_A), True)
    loss_cycle_A = TF.l1_loss(rec_A, real_A) * lambda_A
    loss_cycle_B = TF.l1_loss(rec_B, real_B) * lambda_B
    loss_G = loss_G_A + loss_G_B + loss_cycle_A + loss_cycle_B + loss_idt_A + loss_idt_B
    loss_G.backward()
    optimizer_G.step()
    for net in (netD_A, netD_B):
        for p in net.parameters():
            p.requires_grad_(True)

    optimizer_D.zero_grad()
    losses = {}
    for name, netD, real, fake, pool in (("d_y", netD_A, real_B, fake_B, fake_B_pool),
                                         ("d_x", netD_B, real_A, fake_A, fake_A_pool)):
        fake = pool.query(fake) if pool is not None else fake
        loss_D = (_gan_loss(netD(real), True) + _gan_loss(netD(fake.detach()), False)) * 0.5
        loss_D.backward()
        losses[name] = loss_D.item()
    optimizer_D.step()
    return {**losses, "g_gan": loss_G_A.item(), "f_gan": loss_G_B.item(),
            "cycle": (loss_cycle_A / lambda_A + loss_cycle_B / lambda_B).item()}
