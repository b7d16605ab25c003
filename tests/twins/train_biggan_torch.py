"""BigGAN in plain torch: the twin of ``minigan/models/biggan.py`` (and of
``minigan.nn.ConditionalBatchNorm2d``), written from the paper and the authors' code
(ajbrock/BigGAN-PyTorch: ``layers.ccbn``, ``GBlock``, ``DBlock``, the projection D) with
torch's own layers and ``torch.nn.utils.spectral_norm``.

The ``state_dict`` keys equal minigan's, so either loads the other's weights (spectral
norm's u and v included); ``tests/test_biggan.py`` compares the forward passes, every
gradient and whole training steps. The noise is an argument here: the tests draw it
from minigan's generator in the order ``biggan.train_step`` does.
"""
import torch
import torch.nn as tnn
import torch.nn.functional as TF
from torch.nn.utils import spectral_norm


class ConditionalBatchNorm2d(tnn.Module):
    """(1 + gain(c)) * BN(x) + bias(c), BN without an affine of its own."""

    def __init__(self, num_features, cond_features):
        super().__init__()
        self.bn = tnn.BatchNorm2d(num_features, affine=False)
        self.gain = tnn.Linear(cond_features, num_features, bias=False)
        self.bias = tnn.Linear(cond_features, num_features, bias=False)

    def forward(self, x, c):
        return (1 + self.gain(c))[:, :, None, None] * self.bn(x) + self.bias(c)[:, :, None, None]


def _sn_conv(cin, cout, kernel, bias=True):
    return spectral_norm(tnn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=bias))


class GBlock(tnn.Module):
    def __init__(self, cin, cout, cond):
        super().__init__()
        self.bn1, self.bn2 = ConditionalBatchNorm2d(cin, cond), ConditionalBatchNorm2d(cout, cond)
        for bn in (self.bn1, self.bn2):
            spectral_norm(bn.gain)
            spectral_norm(bn.bias)
        self.conv1 = _sn_conv(cin, cout, 3, bias=False)
        self.conv2 = _sn_conv(cout, cout, 3, bias=False)
        self.conv_sc = _sn_conv(cin, cout, 1, bias=False)

    def forward(self, x, c):
        h = TF.interpolate(TF.relu(self.bn1(x, c)), scale_factor=2)
        h = self.conv2(TF.relu(self.bn2(self.conv1(h), c)))
        return h + self.conv_sc(TF.interpolate(x, scale_factor=2))


class Generator(tnn.Module):
    def __init__(self, latent_dim, n_classes, channels, image_size, width, shared_dim):
        super().__init__()
        n_blocks = image_size.bit_length() - 3  # log2(S) - 2
        self.chunk, self.width = latent_dim // (n_blocks + 1), width
        self.shared = tnn.Embedding(n_classes, shared_dim)
        self.linear = spectral_norm(tnn.Linear(self.chunk, width * 16))
        self.blocks = tnn.ModuleList([GBlock(width, width, shared_dim + self.chunk) for _ in range(n_blocks)])
        self.output = tnn.Sequential(tnn.BatchNorm2d(width), tnn.ReLU(), _sn_conv(width, channels, 3), tnn.Tanh())

    def forward(self, z, y):
        zs = torch.split(z, self.chunk, dim=1)
        shared = self.shared(y)
        h = self.linear(zs[0]).view(z.shape[0], self.width, 4, 4)
        for block, z_i in zip(self.blocks, zs[1:]):
            h = block(h, torch.cat([shared, z_i], 1))
        return self.output(h)


class DBlock(tnn.Module):
    def __init__(self, cin, cout, preactivation, downsample):
        super().__init__()
        self.preactivation, self.downsample = preactivation, downsample
        self.conv1, self.conv2 = _sn_conv(cin, cout, 3), _sn_conv(cout, cout, 3)
        self.learnable_sc = cin != cout or downsample
        if self.learnable_sc:
            self.conv_sc = _sn_conv(cin, cout, 1)

    def shortcut(self, x):
        if self.preactivation:
            if self.learnable_sc:
                x = self.conv_sc(x)
            return TF.avg_pool2d(x, 2) if self.downsample else x
        if self.downsample:
            x = TF.avg_pool2d(x, 2)
        return self.conv_sc(x) if self.learnable_sc else x

    def forward(self, x):
        h = TF.relu(x) if self.preactivation else x
        h = self.conv2(TF.relu(self.conv1(h)))
        if self.downsample:
            h = TF.avg_pool2d(h, 2)
        return h + self.shortcut(x)


class Discriminator(tnn.Module):
    def __init__(self, n_classes, channels, image_size, width):
        super().__init__()
        n_down = image_size.bit_length() - 4  # log2(S) - 3
        plan = [(channels, width, False, True)] + [(width, width, True, True)] * (n_down - 1) \
            + [(width, width, True, False)] * 2
        self.blocks = tnn.Sequential(*[DBlock(*p) for p in plan])
        self.linear = spectral_norm(tnn.Linear(width, 1))
        self.embed = spectral_norm(tnn.Embedding(n_classes, width))

    def forward(self, x, y):
        h = torch.sum(TF.relu(self.blocks(x)), [2, 3])
        return self.linear(h).flatten() + torch.sum(self.embed(y) * h, 1)


def orthogonal_regularization(G, beta):
    """beta * sum ||W W^T (.) (1 - I)||_F^2 over G's weights of 2+ dims but the shared embedding."""
    total = 0
    for name, p in G.named_parameters():
        if p.ndim < 2 or name.startswith("shared."):
            continue
        w = p.view(p.shape[0], -1)
        total = total + ((w @ w.t()) * (1 - torch.eye(w.shape[0], dtype=w.dtype))).pow(2).sum()
    return beta * total


def train_step(G, D, opt_g, opt_d, batches, noise, ortho_beta=0.0):
    """One D step per (real, labels) of ``batches`` with the (z, y) of ``noise`` in turn, then one
    G step with the last (z, y): the hinge losses. Returns (last D loss, G loss)."""
    for (real, labels), (z, y) in zip(batches, noise):
        with torch.no_grad():
            fake = G(z, y)
        d_loss = TF.relu(1 - D(real, labels)).mean() + TF.relu(1 + D(fake, y)).mean()
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
    z, y = noise[len(batches)]
    for p in D.parameters():
        p.requires_grad_(False)
    g_loss = -D(G(z, y), y).mean()
    loss = g_loss + orthogonal_regularization(G, ortho_beta) if ortho_beta else g_loss
    opt_g.zero_grad()
    loss.backward()
    opt_g.step()
    for p in D.parameters():
        p.requires_grad_(True)
    return d_loss.item(), g_loss.item()
