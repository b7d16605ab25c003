"""ProGAN in plain torch: the twin of ``minigan/models/progan.py``, written from the paper
and the official code (``networks.py`` G_paper / D_paper, ``loss.py`` D_wgangp_acgan,
``train.py`` process_reals), not from minigan's file.

Equalized layers scale an N(0, 1) weight by gain / sqrt(fan_in) on every forward;
pixel norm, minibatch stddev (StyleGAN2's grouping: sample i in group i mod N/G)
and the fades are written out with torch ops. ``state_dict`` keys equal minigan's,
so either loads the other's weights. ``tests/test_progan.py`` imports the networks
and the training step from here, and hands the step the noise minigan drew.
"""
import math

import torch
import torch.nn as tnn
import torch.nn.functional as TF

SLOPE = 0.2


class EqLinear(tnn.Module):
    def __init__(self, cin, cout, gain=math.sqrt(2)):
        super().__init__()
        self.weight = tnn.Parameter(torch.randn(cout, cin))
        self.bias = tnn.Parameter(torch.zeros(cout))
        self.scale = gain / math.sqrt(cin)

    def forward(self, x):
        return TF.linear(x, self.weight * self.scale, self.bias)


class EqConv(tnn.Module):
    def __init__(self, cin, cout, k, gain=math.sqrt(2)):
        super().__init__()
        self.weight = tnn.Parameter(torch.randn(cout, cin, k, k))
        self.bias = tnn.Parameter(torch.zeros(cout))
        self.scale, self.padding = gain / math.sqrt(cin * k * k), k // 2

    def forward(self, x):
        return TF.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


def pixel_norm(x, eps=1e-8):
    return x * torch.rsqrt((x ** 2).mean(dim=1, keepdim=True) + eps)


def minibatch_stddev(x, group_size=4, eps=1e-8):
    n, c, h, w = x.shape
    g = min(group_size, n)
    y = x.reshape(g, -1, c, h, w)
    y = (y - y.mean(0)).pow(2).mean(0).add(eps).sqrt()   # (n/g, c, h, w)
    y = y.mean(dim=(1, 2, 3)).reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
    return torch.cat([x, y], 1)


def lrelu(x):
    return TF.leaky_relu(x, SLOPE)


def up(x):
    return TF.interpolate(x, scale_factor=2, mode="nearest")


class GInput(tnn.Module):
    def __init__(self, latent_dim, c):
        super().__init__()
        self.dense = EqLinear(latent_dim, c * 16, gain=math.sqrt(2) / 4)
        self.conv = EqConv(c, c, 3)
        self.c = c

    def forward(self, z):
        x = pixel_norm(lrelu(self.dense(pixel_norm(z)).view(-1, self.c, 4, 4)))
        return pixel_norm(lrelu(self.conv(x)))


class GBlock(tnn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1, self.conv2 = EqConv(cin, cout, 3), EqConv(cout, cout, 3)

    def forward(self, x):
        x = pixel_norm(lrelu(self.conv1(up(x))))
        return pixel_norm(lrelu(self.conv2(x)))


def widths(stages, fmap_base, fmap_max):
    return [min(fmap_base // 2 ** (s + 1), fmap_max) for s in range(stages)]


class Generator(tnn.Module):
    def __init__(self, latent_dim, channels, resolution, fmap_base, fmap_max):
        super().__init__()
        stages = int(math.log2(resolution)) - 1
        nf = widths(stages, fmap_base, fmap_max)
        self.blocks = tnn.ModuleList([GInput(latent_dim, nf[0])] + [GBlock(nf[s - 1], nf[s]) for s in range(1, stages)])
        self.to_rgb = tnn.ModuleList([EqConv(c, channels, 1, gain=1.0) for c in nf])

    def forward(self, z, stage, alpha):
        x = self.blocks[0](z)
        for s in range(1, stage):
            x = self.blocks[s](x)
        if stage == 0:
            return self.to_rgb[0](x)
        old = up(self.to_rgb[stage - 1](x))
        new = self.to_rgb[stage](self.blocks[stage](x))
        return old + alpha * (new - old) if alpha < 1 else new


class DBlock(tnn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1, self.conv2 = EqConv(cin, cin, 3), EqConv(cin, cout, 3)

    def forward(self, x):
        return TF.avg_pool2d(lrelu(self.conv2(lrelu(self.conv1(x)))), 2)


class DOutput(tnn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = EqConv(c + 1, c, 3)
        self.dense = EqLinear(c * 16, c)
        self.out = EqLinear(c, 1, gain=1.0)

    def forward(self, x):
        x = lrelu(self.conv(minibatch_stddev(x)))
        return self.out(lrelu(self.dense(x.flatten(1)))).flatten()


class Discriminator(tnn.Module):
    def __init__(self, channels, resolution, fmap_base, fmap_max):
        super().__init__()
        stages = int(math.log2(resolution)) - 1
        nf = widths(stages, fmap_base, fmap_max)
        self.from_rgb = tnn.ModuleList([EqConv(channels, c, 1) for c in nf])
        self.blocks = tnn.ModuleList([DOutput(nf[0])] + [DBlock(nf[s], nf[s - 1]) for s in range(1, stages)])

    def forward(self, x, stage, alpha):
        h = lrelu(self.from_rgb[stage](x))
        if stage > 0:
            h = self.blocks[stage](h)
            if alpha < 1:
                old = lrelu(self.from_rgb[stage - 1](TF.avg_pool2d(x, 2)))
                h = old + alpha * (h - old)
            for s in reversed(range(1, stage)):
                h = self.blocks[s](h)
        return self.blocks[0](h)


def process_reals(x, stage, alpha):
    """Down to 4 * 2^stage by 2x2 means, then lerp(upsampled coarser copy, x, alpha)."""
    while x.shape[-1] > 4 * 2 ** stage:
        x = TF.avg_pool2d(x, 2)
    if alpha < 1:
        coarse = x.reshape(*x.shape[:2], x.shape[2] // 2, 2, x.shape[3] // 2, 2).mean(dim=(3, 5))
        coarse = coarse.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
        x = coarse + alpha * (x - coarse)
    return x


def train_step(G, D, opt_g, opt_d, real, stage, alpha, z_d, eps, z_g, gp_weight=10.0, drift=0.001):
    """D: WGAN-GP + drift on fakes of z_d, the penalty on interpolates mixed by eps; then G on z_g."""
    real = process_reals(real, stage, alpha)
    with torch.no_grad():
        fake = G(z_d, stage, alpha)
    real_scores, fake_scores = D(real, stage, alpha), D(fake, stage, alpha)
    mix = eps.reshape(-1, 1, 1, 1)
    xhat = (mix * real + (1 - mix) * fake).detach().requires_grad_(True)
    grads, = torch.autograd.grad(D(xhat, stage, alpha).sum(), xhat, create_graph=True)
    gp = gp_weight * ((grads.flatten(1).norm(dim=1) - 1) ** 2).mean()
    d_loss = fake_scores.mean() - real_scores.mean() + gp + drift * (real_scores ** 2).mean()
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()

    D.requires_grad_(False)
    g_loss = -D(G(z_g, stage, alpha), stage, alpha).mean()
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    D.requires_grad_(True)
    return d_loss.item(), g_loss.item()
