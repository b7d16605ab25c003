"""StyleGAN in plain torch: the twin of ``minigan/models/stylegan.py``, written from the
paper and the official code (Karras et al. 2019, App. C; ``training/networks_stylegan.py``),
not from minigan's.

The same networks with ``state_dict`` keys equal to minigan's, so either loads the
other's weights: the equalized-lr layers (N(0, 1) / lr_mul weights scaled at runtime
by gain * lr_mul / sqrt(fan_in), biases by lr_mul), the 8-layer mapping from
pixel-normed z with the tracked w_avg, the learned 4x4 constant, per-layer noise
with per-channel scales, bias, leaky ReLU 0.2 and AdaIN (x - mean) / sqrt(var + 1e-8)
* (1 + y_s) + y_b, the ProGAN discriminator with minibatch stddev (group 4), and one
training step: the logistic D loss with R1 (gamma/2 ||grad_x D(x)||^2 through
``torch.autograd.grad(create_graph=True)``), then the non-saturating G loss. The
random inputs of each pass (z1, z2, the crossover layer, the noise images) are
arguments, so ``tests/test_stylegan.py`` hands both frameworks the same ones.
"""
import math

import torch
import torch.nn as tnn
import torch.nn.functional as TF


class EqualizedLinear(tnn.Module):
    def __init__(self, in_features, out_features, gain=math.sqrt(2), lr_multiplier=1.0):
        super().__init__()
        self.weight = tnn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = tnn.Parameter(torch.zeros(out_features))
        self.weight_gain, self.lr_multiplier = gain * lr_multiplier / math.sqrt(in_features), lr_multiplier

    def forward(self, x):
        return TF.linear(x, self.weight * self.weight_gain, self.bias * self.lr_multiplier)


class EqualizedConv2d(tnn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, gain=math.sqrt(2), bias=True):
        super().__init__()
        self.weight = tnn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = tnn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = gain / math.sqrt(in_channels * kernel_size ** 2)

    def forward(self, x):
        return TF.conv2d(x, self.weight * self.weight_gain, self.bias, padding=self.weight.shape[-1] // 2)


class MappingNetwork(tnn.Module):
    def __init__(self, z_dim, w_dim, num_layers=8, lr_multiplier=0.01, w_avg_beta=0.995):
        super().__init__()
        dims = [z_dim] + [w_dim] * num_layers
        self.layers = tnn.ModuleList([EqualizedLinear(i, o, lr_multiplier=lr_multiplier)
                                      for i, o in zip(dims, dims[1:])])
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.w_avg_beta = w_avg_beta

    def forward(self, z, psi=1.0, update_w_avg=False):
        w = z * torch.rsqrt((z ** 2).mean(1, keepdim=True) + 1e-8)
        for layer in self.layers:
            w = TF.leaky_relu(layer(w), 0.2)
        if update_w_avg:
            self.w_avg.copy_(w.detach().mean(0).lerp(self.w_avg, self.w_avg_beta))
        if psi != 1:
            w = self.w_avg.lerp(w, psi)
        return w


class StyleLayer(tnn.Module):
    def __init__(self, in_channels, out_channels, w_dim, conv=True, up=False):
        super().__init__()
        self.conv = EqualizedConv2d(in_channels, out_channels, 3, bias=False) if conv else None
        self.noise_strength = tnn.Parameter(torch.zeros(out_channels))
        self.bias = tnn.Parameter(torch.zeros(out_channels))
        self.affine = EqualizedLinear(w_dim, 2 * out_channels, gain=1.0)
        self.up = up

    def forward(self, x, w, noise):
        if self.up:
            x = TF.interpolate(x, scale_factor=2, mode="nearest")
        if self.conv is not None:
            x = self.conv(x)
        x = x + noise * self.noise_strength[None, :, None, None]
        x = TF.leaky_relu(x + self.bias[None, :, None, None], 0.2)
        x = x - x.mean((2, 3), keepdim=True)
        x = x * torch.rsqrt((x ** 2).mean((2, 3), keepdim=True) + 1e-8)
        scale, shift = self.affine(w).chunk(2, dim=1)
        return x * (scale[:, :, None, None] + 1) + shift[:, :, None, None]


class SynthesisNetwork(tnn.Module):
    def __init__(self, w_dim, resolution, channels, channel_base, channel_max):
        super().__init__()
        ch = lambda r: min(channel_base // r, channel_max)  # noqa: E731
        self.const = tnn.Parameter(torch.ones(1, ch(4), 4, 4))
        layers = [StyleLayer(ch(4), ch(4), w_dim, conv=False), StyleLayer(ch(4), ch(4), w_dim)]
        r = 8
        while r <= resolution:
            layers += [StyleLayer(ch(r // 2), ch(r), w_dim, up=True), StyleLayer(ch(r), ch(r), w_dim)]
            r *= 2
        self.layers = tnn.ModuleList(layers)
        self.to_rgb = EqualizedConv2d(ch(resolution), channels, 1, gain=1.0)

    def forward(self, ws, noise):
        x = self.const.expand(ws.shape[0], -1, -1, -1)
        for i, layer in enumerate(self.layers):
            x = layer(x, ws[:, i], noise[i])
        return self.to_rgb(x)


class Generator(tnn.Module):
    def __init__(self, z_dim, w_dim, resolution, channels, channel_base, channel_max, mapping_layers=8):
        super().__init__()
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers)
        self.synthesis = SynthesisNetwork(w_dim, resolution, channels, channel_base, channel_max)
        self.num_ws = len(self.synthesis.layers)

    def forward(self, z1, z2, cutoff, noise, update_w_avg=False):
        """f(z1) styles the layers before ``cutoff``, f(z2) the rest."""
        w1 = self.mapping(z1, update_w_avg=update_w_avg)[:, None].repeat(1, self.num_ws, 1)
        if cutoff < self.num_ws:
            w1[:, cutoff:] = self.mapping(z2)[:, None]
        return self.synthesis(w1, noise)


def minibatch_stddev(x, group_size=4):
    """The official code's MinibatchStdLayer with one feature: sample i in group i mod N/G."""
    n, c, h, w = x.shape
    g = min(group_size, n)
    y = x.reshape(g, -1, c, h, w)
    y = (y - y.mean(0)).square().mean(0).add(1e-8).sqrt()  # (N/G, C, H, W) stddev over the group
    y = y.mean((1, 2, 3)).reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
    return torch.cat([x, y], 1)


class Discriminator(tnn.Module):
    def __init__(self, resolution, channels, channel_base, channel_max):
        super().__init__()
        ch = lambda r: min(channel_base // r, channel_max)  # noqa: E731
        self.from_rgb = EqualizedConv2d(channels, ch(resolution), 1)
        blocks, r = [], resolution
        while r > 4:
            blocks.append(tnn.ModuleList([EqualizedConv2d(ch(r), ch(r), 3), EqualizedConv2d(ch(r), ch(r // 2), 3)]))
            r //= 2
        self.blocks = tnn.ModuleList(blocks)
        self.conv = EqualizedConv2d(ch(4) + 1, ch(4), 3)
        self.fc = EqualizedLinear(ch(4) * 16, ch(4))
        self.out = EqualizedLinear(ch(4), 1, gain=1.0)

    def forward(self, x):
        x = TF.leaky_relu(self.from_rgb(x), 0.2)
        for conv0, conv1 in self.blocks:
            x = TF.avg_pool2d(TF.leaky_relu(conv1(TF.leaky_relu(conv0(x), 0.2)), 0.2), 2)
        x = TF.leaky_relu(self.conv(minibatch_stddev(x)), 0.2)
        return self.out(TF.leaky_relu(self.fc(x.flatten(1)), 0.2)).flatten()


def train_step(G, D, opt_g, opt_d, real, d_inputs, g_inputs, with_r1, gamma=10.0, r1_interval=16):
    """D: softplus(D(G(z))) + softplus(-D(x)) [+ r1_interval gamma/2 R1]; then G: softplus(-D(G(z))).
    ``d_inputs`` and ``g_inputs`` are (z1, z2, cutoff, noise) of each pass."""
    with torch.no_grad():
        fake = G(*d_inputs)
    real = real.detach().requires_grad_(with_r1)
    real_logits = D(real)
    d_loss = TF.softplus(D(fake)).mean() + TF.softplus(-real_logits).mean()
    if with_r1:
        grads, = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
        d_loss = d_loss + grads.square().sum((1, 2, 3)).mean() * (gamma / 2 * r1_interval)
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()

    D.requires_grad_(False)
    g_loss = TF.softplus(-D(G(*g_inputs, update_w_avg=True))).mean()
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    D.requires_grad_(True)
    return d_loss.item(), g_loss.item()
