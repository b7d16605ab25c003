r"""StyleGAN (Karras, Laine & Aila, 2019, "A Style-Based Generator Architecture for
Generative Adversarial Networks").

The idea: do not feed the latent code into the first layer. A *mapping network* f
turns z into an intermediate latent w = f(z), and the *synthesis network* g starts
from a learned constant and receives w at every layer, as a style: a learned affine
map A turns w into a per-channel scale y_s and bias y_b that adaptive instance
normalization applies after each convolution (eq. 1),

    AdaIN(x_i, y) = y_s,i (x_i - mu(x_i)) / sigma(x_i) + y_b,i.

Each AdaIN first wipes out the channel statistics the previous style set, so a
style controls its own layer only: the coarse layers (4x4, 8x8) set pose and shape,
the middle ones finer features, the fine ones colour and texture. w need not follow
the data's density as z must (z is a fixed Gaussian), so the mapping can unwarp it,
and w is more disentangled. What is random but not "style" (hair strands, fabric
grain) comes from *noise inputs*: one N(0, 1) image per layer, added per channel
with a learned scale B.

Three tricks make the point of the lectures' figures:
  * **Style mixing regularization** (sec. 3.1): for 90% of the training batches G
    runs two latents, w1 up to a random crossover layer and w2 after it, so the
    network cannot assume neighbouring styles are correlated. At test time the same
    switch gives the style-mixing grid (B's coarse, middle or fine styles on A).
  * **Truncation in W** (sec. 3.2 / App. B): w' = w_avg + psi (w - w_avg), with
    w_avg the running mean of the mapping's outputs (tracked in training with
    beta 0.995). psi < 1 trades variety for typical, cleaner samples; psi = 0 is the
    "mean face".
  * **Stochastic variation** (sec. 3.3): one w, many noise draws: only the details
    the noise controls change.

The networks (App. C and the official code, ``training/networks_stylegan.py``), for resolution R = 2^k and the
feature maps C(r) = min(channel_base / r, channel_max) (the paper: 8192 / r, max 512):

    mapping: z (z_dim) -> pixel norm -> 8 x [equalized linear (lr multiplier 0.01),
             leaky ReLU 0.2] -> w (w_dim)
    synthesis: const (C(4), 4, 4), initialized to ones ->
             4x4:   [+ noise, + bias, leaky ReLU, AdaIN(w_0)],
                    [conv 3x3, + noise, + bias, leaky ReLU, AdaIN(w_1)]
             r = 8 .. R: [upsample x2, conv 3x3, ...AdaIN(w_2j)], [conv 3x3, ...AdaIN(w_2j+1)]
             -> toRGB (1x1 conv, gain 1, linear output)
             2 log2(R) - 2 styles in all (8 at 32x32)
    D:     fromRGB (1x1) -> per resolution R .. 8: [conv 3x3, conv 3x3, 2x2 average pool]
             -> 4x4: minibatch stddev (group 4), conv 3x3, dense to C(4), dense to 1
             (the ProGAN discriminator, as the paper's)

Every weight is an equalized-learning-rate layer (``minigan.nn.EqualizedLinear``,
``EqualizedConv2d``: N(0, 1) weights scaled at runtime by the He constant, gain
sqrt(2) before a leaky ReLU, 1 for the style affines and toRGB). The style affine's
bias is 0 and its output y_s enters as 1 + y_s (the official code's ``style_mod``),
so every style starts as the identity; AdaIN's epsilon is 1e-8 (the code's
``instance_norm``); the noise scales B start at 0.

The objective (App. C; the official code's ``G_logistic_nonsaturating`` and
``D_logistic_simplegp`` with r1_gamma 10): the non-saturating logistic loss with
the R1 penalty on reals (Mescheder et al. 2018),

    L_D = E_z softplus(D(G(z))) + E_x softplus(-D(x)) + gamma/2 E_x ||grad_x D(x)||^2,
    L_G = E_z softplus(-D(G(z))),

gamma = 10, Adam with betas (0, 0.99) and eps 1e-8 for both networks, the mapping's
learning rate 100 times lower through its lr multiplier. The learning rate is
the examples' choice: 0.002 (StyleGAN2's; StyleGAN used 0.001 at low resolutions).

Named choices and deviations:
  * **lazy R1** (StyleGAN2, Karras et al. 2020, sec. 3.1): ``r1_interval`` = k adds the
    penalty, weighted k gamma/2, to D's loss every k-th step only (k = 1 is
    StyleGAN's every step). The examples default to k = 16 as StyleGAN2, which saves
    the double backward's cost on 15 steps of 16 (docs/stylegan.md has the times). StyleGAN2 takes that term as a
    separate Adam step and compensates with lr and betas to the power k/(k+1);
    here it joins D's main step, so Adam sees no extra steps and needs no change;
  * no progressive growing: both networks are built at the final resolution, as
    StyleGAN2 (the paper grew them as ProGAN did);
  * nearest-neighbour upsampling and average-pool downsampling without the paper's
    [1, 2, 1] blur filter (its App. C "bilinear" filtering), a simplification whose
    effect is not measured here;
  * truncation applies to every layer (the paper's figures use all layers; its
    released samples truncated only the first 8 layers at psi 0.7);
  * one crossover layer per batch, drawn uniformly from 1 .. num_ws - 1, as the
    official code (the paper does not say whether it is per sample or per batch);
  * D and G each draw their own latents and noise (the official code), where
    ``dcgan.train_step`` reuses one batch of fakes;
  * the generator's output is linear (no tanh, as the paper); the examples clamp the
    samples they save to the data's range [-1, 1].
"""
import math

import minigan as mg
from minigan import nn
from minigan.functional.activation import fused_leaky_relu
from minigan.nn import functional as F

from .latent import sample_latent

R1_GAMMA = 10.0
MIXING_PROB = 0.9
W_AVG_BETA = 0.995
ADAM_BETAS = (0.0, 0.99)
LEAK = 0.2


def num_styles(resolution):
    """Styles (synthesis layers) at ``resolution``: two per resolution from 4x4 up."""
    return 2 * int(math.log2(resolution)) - 2


def check_resolution(resolution):
    """``resolution`` must be a power of two, at least 8 (4x4 alone has no upsampling to learn)."""
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 8 \
            or resolution & (resolution - 1):
        raise ValueError(f"StyleGAN: resolution must be a power of two >= 8, got {resolution!r}")
    return resolution


def _channels(resolution, channel_base, channel_max):
    return min(channel_base // resolution, channel_max)


# ---------------------------------------------------------------- the mapping network f: z -> w


class MappingNetwork(nn.Module):
    """f: z (N, z_dim) -> w (N, w_dim). Holds w_avg, the tracked mean of w for truncation."""

    def __init__(self, z_dim=512, w_dim=512, num_layers=8, lr_multiplier=0.01, w_avg_beta=W_AVG_BETA):
        super().__init__()
        dims = [z_dim] + [w_dim] * num_layers
        self.layers = nn.ModuleList([nn.EqualizedLinear(i, o, lr_multiplier=lr_multiplier)
                                     for i, o in zip(dims, dims[1:])])
        self.register_buffer("w_avg", mg.zeros(w_dim))
        self.z_dim, self.w_dim, self.w_avg_beta = z_dim, w_dim, w_avg_beta

    def forward(self, z, psi=1.0, update_w_avg=False):
        """w = f(z); ``update_w_avg`` moves w_avg towards this batch's mean (training);
        ``psi`` < 1 truncates: w_avg + psi (w - w_avg)."""
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"MappingNetwork: expected z of shape (N, {self.z_dim}), got {tuple(z.shape)}")
        w = F.pixel_norm(z)
        for layer in self.layers:
            w = F.leaky_relu(layer(w), LEAK)
        if update_w_avg:
            with mg.no_grad():  # w_avg <- beta w_avg + (1 - beta) mean(w)
                self.w_avg.copy_(self.w_avg * self.w_avg_beta + w.detach().mean(0) * (1 - self.w_avg_beta))
        if psi != 1:
            w = self.w_avg + psi * (w - self.w_avg)
        return w


# ---------------------------------------------------------------- the synthesis network g: w -> image


class StyleLayer(nn.Module):
    """[upsample, conv 3x3,] + B * noise, + bias, leaky ReLU, AdaIN with the style A(w).

    Without a conv it is the first layer, on the learned constant."""

    def __init__(self, in_channels, out_channels, w_dim, conv=True, up=False):
        super().__init__()
        self.conv = nn.EqualizedConv2d(in_channels, out_channels, 3, padding=1, bias=False) if conv else None
        self.noise_strength = nn.Parameter(mg.zeros(out_channels))  # B, per channel, from 0
        self.bias = nn.Parameter(mg.zeros(out_channels))
        self.affine = nn.EqualizedLinear(w_dim, 2 * out_channels, gain=1.0)  # A: w -> (y_s - 1, y_b)
        self.out_channels, self.up = out_channels, up

    def forward(self, x, w, noise):
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        if self.conv is not None:
            x = self.conv(x)
        x = x + self.noise_strength.reshape(1, -1, 1, 1) * noise
        x = fused_leaky_relu(x, self.bias, LEAK, scale=1.0)
        style = self.affine(w)
        c = self.out_channels
        return F.adain(x, 1 + style[:, :c], style[:, c:], eps=1e-8)


class SynthesisNetwork(nn.Module):
    """g: styles ws (N, num_ws, w_dim) and noise images -> images (N, channels, R, R)."""

    def __init__(self, w_dim=512, resolution=32, channels=3, channel_base=8192, channel_max=512):
        super().__init__()
        check_resolution(resolution)
        res = [2 ** k for k in range(2, int(math.log2(resolution)) + 1)]  # 4, 8, ..., R
        ch = {r: _channels(r, channel_base, channel_max) for r in res}
        self.const = nn.Parameter(mg.ones(1, ch[4], 4, 4))
        layers = [StyleLayer(ch[4], ch[4], w_dim, conv=False), StyleLayer(ch[4], ch[4], w_dim)]
        for r in res[1:]:
            layers += [StyleLayer(ch[r // 2], ch[r], w_dim, up=True), StyleLayer(ch[r], ch[r], w_dim)]
        self.layers = nn.ModuleList(layers)
        self.to_rgb = nn.EqualizedConv2d(ch[resolution], channels, 1, gain=1.0)
        self.sizes = [r for r in res for _ in range(2)]  # each layer's output size
        self.num_ws, self.w_dim, self.resolution, self.channels = len(layers), w_dim, resolution, channels

    def draw_noise(self, n, device="cpu"):
        """One N(0, 1) image (n, 1, r, r) per layer."""
        return [mg.randn(n, 1, r, r, device=device) for r in self.sizes]

    def forward(self, ws, noise=None):
        """``ws``: (N, num_ws, w_dim), one w per layer, or (N, w_dim) for the same w at every
        layer; ``noise``: a list of one (N, 1, r, r) image per layer, drawn afresh if None."""
        if ws.ndim == 2:
            ws = ws.reshape(ws.shape[0], 1, self.w_dim).expand(ws.shape[0], self.num_ws, self.w_dim)
        if ws.ndim != 3 or tuple(ws.shape[1:]) != (self.num_ws, self.w_dim):
            raise ValueError(f"SynthesisNetwork: expected ws of shape (N, {self.num_ws}, {self.w_dim}) or "
                             f"(N, {self.w_dim}), got {tuple(ws.shape)}")
        n = ws.shape[0]
        if noise is None:
            noise = self.draw_noise(n, ws.device)
        if len(noise) != self.num_ws:
            raise ValueError(f"SynthesisNetwork: expected {self.num_ws} noise images, got {len(noise)}")
        x = self.const.expand(n, *self.const.shape[1:])
        for i, (layer, noise_i) in enumerate(zip(self.layers, noise)):
            x = layer(x, ws[:, i], noise_i)
        return self.to_rgb(x)


class Generator(nn.Module):
    """G = g(f(z)): z (N, z_dim) -> images (N, channels, R, R), linear output (about [-1, 1])."""

    def __init__(self, z_dim=512, w_dim=512, resolution=32, channels=3, channel_base=8192, channel_max=512,
                 mapping_layers=8, lr_multiplier=0.01, w_avg_beta=W_AVG_BETA):
        super().__init__()
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers, lr_multiplier, w_avg_beta)
        self.synthesis = SynthesisNetwork(w_dim, resolution, channels, channel_base, channel_max)
        self.z_dim, self.w_dim, self.resolution, self.channels = z_dim, w_dim, resolution, channels
        self.num_ws = self.synthesis.num_ws

    def forward(self, z, psi=1.0, noise=None):
        return self.synthesis(self.mapping(z, psi), noise)

    def mix(self, w1, w2, cutoff):
        """Styles (N, num_ws, w_dim): w1 (N, w_dim) for the layers before ``cutoff``, w2 from it on."""
        n = w1.shape[0]
        return mg.cat([w1.reshape(n, 1, self.w_dim).expand(n, cutoff, self.w_dim),
                       w2.reshape(n, 1, self.w_dim).expand(n, self.num_ws - cutoff, self.w_dim)], 1)


# ---------------------------------------------------------------- the discriminator


class Discriminator(nn.Module):
    """D: images (N, channels, R, R) -> one logit per image (N,); ProGAN's, equalized lr."""

    def __init__(self, resolution=32, channels=3, channel_base=8192, channel_max=512, mbstd_group_size=4):
        super().__init__()
        check_resolution(resolution)
        res = [2 ** k for k in range(int(math.log2(resolution)), 2, -1)]  # R, R/2, ..., 8
        ch = lambda r: _channels(r, channel_base, channel_max)  # noqa: E731
        self.from_rgb = nn.EqualizedConv2d(channels, ch(resolution), 1)
        self.blocks = nn.ModuleList([nn.ModuleList([nn.EqualizedConv2d(ch(r), ch(r), 3, padding=1),
                                                    nn.EqualizedConv2d(ch(r), ch(r // 2), 3, padding=1)])
                                     for r in res])
        self.conv = nn.EqualizedConv2d(ch(4) + 1, ch(4), 3, padding=1)  # after the stddev channel
        self.fc = nn.EqualizedLinear(ch(4) * 16, ch(4))
        self.out = nn.EqualizedLinear(ch(4), 1, gain=1.0)
        self.resolution, self.channels, self.mbstd_group_size = resolution, channels, mbstd_group_size

    def forward(self, x):
        expected = (self.channels, self.resolution, self.resolution)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"Discriminator: expected images of shape (N, {', '.join(map(str, expected))}), "
                             f"got {tuple(x.shape)}")
        x = F.leaky_relu(self.from_rgb(x), LEAK)
        for conv0, conv1 in self.blocks:
            x = F.leaky_relu(conv0(x), LEAK)
            x = F.avg_pool2d(F.leaky_relu(conv1(x), LEAK), 2)
        x = F.minibatch_stddev(x, self.mbstd_group_size)
        x = F.leaky_relu(self.conv(x), LEAK)
        x = F.leaky_relu(self.fc(x.flatten(1)), LEAK)
        return self.out(x).flatten()


# ---------------------------------------------------------------- losses


def discriminator_loss(real_logits, fake_logits):
    """E softplus(D(G(z))) + E softplus(-D(x)): -log(1 - sigmoid) on fakes, -log sigmoid on reals."""
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()


def generator_loss(fake_logits):
    """The non-saturating E softplus(-D(G(z))) = -E log sigmoid(D(G(z)))."""
    return F.softplus(-fake_logits).mean()


def r1_penalty(real_logits, real):
    """E_x ||grad_x D(x)||^2 on the reals ``real`` (requiring grad) that gave ``real_logits``,
    differentiable in D's weights (without gamma/2). The gradient is that of the batch's
    summed logits, as the official code's: the stddev channel couples a group's samples."""
    grads, = mg.grad(real_logits.sum(), real, create_graph=True)
    return (grads * grads).sum((1, 2, 3)).mean()


# ---------------------------------------------------------------- one training step


def draw_latents(generator, n, mixing_prob=MIXING_PROB, device="cpu"):
    """The random inputs of one G pass in training: z1, z2, the crossover layer (num_ws when
    this batch is not mixed) and the noise images, drawn in this order, in G's dtype."""
    dtype = generator.synthesis.const.dtype
    z1, z2 = sample_latent(n, generator.z_dim, device), sample_latent(n, generator.z_dim, device)
    u = mg.rand(2).numpy()
    cutoff = 1 + int(u[1] * (generator.num_ws - 1)) if u[0] < mixing_prob else generator.num_ws
    noise = generator.synthesis.draw_noise(n, device)
    return z1.to(dtype=dtype), z2.to(dtype=dtype), cutoff, [x.to(dtype=dtype) for x in noise]


def generate_mixed(generator, latents, update_w_avg=False):
    """Images from ``draw_latents``' inputs: f(z1) styles the layers before the crossover, f(z2) the rest."""
    z1, z2, cutoff, noise = latents
    w1 = generator.mapping(z1, update_w_avg=update_w_avg)
    ws = generator.mix(w1, generator.mapping(z2), cutoff) if cutoff < generator.num_ws else w1
    return generator.synthesis(ws, noise)


def train_step(generator, discriminator, opt_g, opt_d, real, step=0, r1_gamma=R1_GAMMA, r1_interval=16,
               mixing_prob=MIXING_PROB):
    """One D step, then one G step, each on fakes from its own latents, mixed with
    probability ``mixing_prob``. D's loss gains r1_interval * gamma/2 * R1 when ``step``
    is a multiple of ``r1_interval`` (0 turns R1 off). The G pass of G's step updates
    w_avg. Returns the losses as floats (r1 on the steps that computed it)."""
    n, device = real.shape[0], real.device
    latents = draw_latents(generator, n, mixing_prob, device)
    with mg.no_grad():  # D's step needs no graph through G
        fake = generate_mixed(generator, latents)
    with_r1 = bool(r1_interval) and step % r1_interval == 0
    real = real.detach().requires_grad_(with_r1)
    real_logits = discriminator(real)
    d_loss = discriminator_loss(real_logits, discriminator(fake))
    logs = {"d_loss": d_loss.item()}
    if with_r1:
        r1 = r1_penalty(real_logits, real)
        d_loss = d_loss + r1 * (r1_gamma / 2 * r1_interval)
        logs["r1"] = r1.item()
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()

    latents = draw_latents(generator, n, mixing_prob, device)
    discriminator.requires_grad_(False)  # G's step differentiates through D, not into it
    g_loss = generator_loss(discriminator(generate_mixed(generator, latents, update_w_avg=True)))
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    discriminator.requires_grad_(True)
    logs["g_loss"] = g_loss.item()
    return logs
