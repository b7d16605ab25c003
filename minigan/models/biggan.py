"""BigGAN (Brock, Donahue & Simonyan, 2019, "Large Scale GAN Training for High Fidelity
Natural Image Synthesis"), scaled down to 32x32 Fashion-MNIST.

The idea: the class-conditional GAN of SA-GAN (Zhang et al. 2019) made wide and deep,
kept stable by spectral norm in both networks, and sampled with a knob that trades
variety for fidelity. The pieces, all here:

  * class conditioning in G by conditional batch norm (``nn.ConditionalBatchNorm2d``):
    every batch norm's scale is 1 + gain(c) and its shift bias(c), two linear maps of a
    per-block condition c. c joins a *shared* class embedding (one table for all
    blocks, ``shared``) to one chunk of a *hierarchical* z: z is split into one chunk
    per block plus one for the input layer, so each resolution gets noise of its own;
  * a projection discriminator (Miyato & Koyama 2018): D(x, y) = linear(h) + <embed(y), h>,
    h the sum-pooled features of x, so the label enters as an inner product;
  * residual blocks: G's up-blocks BN-ReLU-upsample-conv3-BN-ReLU-conv3 plus an
    upsample-conv1 shortcut; D's down-blocks (ReLU-)conv3-ReLU-conv3-avgpool plus a
    conv1 shortcut (D's first block has no ReLU before its first conv);
  * spectral norm (``nn.utils``-style ``spectral_norm``) on every conv and linear of
    both networks, the gains and biases of conditional batch norm and D's class
    embedding included; not on G's shared embedding (as the authors' code);
  * the hinge loss (Lim & Ye 2017; Tran et al. 2017):
        L_D = E[relu(1 - D(x, y))] + E[relu(1 + D(G(z, y), y))],    L_G = -E[D(G(z, y), y)];
  * Adam with beta (0, 0.999); an exponential moving average of G's weights for sampling,
    with batch norm's statistics recomputed for the averaged weights ("standing statistics");
  * orthogonal regularization, R_beta(W) = beta ||W W^T (.) (1 - I)||_F^2 over G's weights
    seen as (out, in * k * k) matrices (beta 1e-4 in the paper; off by default here, as in
    the authors' released models);
  * the truncation trick: z drawn from a normal truncated to |z_i| <= psi (values outside
    are redrawn); smaller psi, samples nearer the mode: more fidelity, less variety;
  * orthogonal initialization (Saxe et al. 2014) of the weights under spectral norm, as the paper.

Two learning-rate settings, as the paper: the BigGAN one, G 5e-5 and D 2e-4 with two D
steps per G step (``D_STEPS_BIGGAN``), and SA-GAN's, G 1e-4 and D 4e-4 with one D step
(``D_STEPS_SAGAN``); the example says which is its default and why.

The networks for image_size S (16, 32 or 64) and w = ``width`` (the paper's 32x32
model, from its CIFAR-10 code: w = 256, z of 128, shared embedding of 128):

    G: z_0 -> SN-Linear -> (w, 4, 4) -> [GBlock up, c_i = (shared(y), z_i)] x log2(S/4)
          -> BN -> ReLU -> SN-Conv3 -> tanh
    D: x -> DBlock down (no first ReLU) -> DBlock down ... to 8x8 -> DBlock -> DBlock
          -> ReLU -> sum over H, W -> h (w)  ->  SN-Linear(h) + <SN-Embedding(y), h>

Deviations:
  * no bias in G's convolutions but the last: each feeds a batch norm, which subtracts the
    per-channel constant a bias adds (its gradient is zero; the authors' code keeps them);
  * G's shared class embedding starts N(0, 1) (torch's Embedding init), not orthogonal: with
    orthogonal rows each class vector has norm 1 against about 4 for a z chunk of 16, and in
    a run of 500 steps G had not learned to read the class at all (conditional accuracy 11%,
    the embedding's norms still 1.00-1.04); N(0, 1) gives it a norm of about sqrt(shared_dim);
  * for a CPU run of minutes, widths, z and the shared embedding are small (``width``, ``latent_dim``,
    ``shared_dim``); the example picks them;
  * orthogonal regularization is the paper's formula added to G's loss; the authors' code
    adds 2 beta (W W^T (.) (1 - I)) W to the gradient, half the formula's derivative
    4 beta (...) W, so the same beta is twice as strong here;
  * the example multiplies both learning rates by 4 (``--lr-scale``, G 4e-4 and D 1.6e-3 in
    SA-GAN's setting; the ratio of 1 to 4 kept): its run of 2000 steps at batch 32 is one
    epoch, and at the published rates G was still learning to read the class when it ended;
  * no self-attention block (the paper has one at 64x64 in its 128x128 model; 32x32
    models of its code put none at 32x32 by default).
"""
import math

import minigan as mg
from minigan import nn
from minigan.functional import avg_pool2d, interpolate, relu
from minigan.nn.spectral_norm import spectral_norm

from .cgan import sample_labels
from .latent import sample_latent

IMAGE_SIZES = (16, 32, 64)
D_STEPS_BIGGAN, D_STEPS_SAGAN = 2, 1
LR_BIGGAN = {"generator": 5e-5, "discriminator": 2e-4}
LR_SAGAN = {"generator": 1e-4, "discriminator": 4e-4}
BETAS = (0.0, 0.999)


def _sn_conv(cin, cout, kernel, bias=True):
    return spectral_norm(nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=bias))


def _check_size(image_size):
    if image_size not in IMAGE_SIZES:
        raise ValueError(f"BigGAN: image_size must be one of {IMAGE_SIZES}, got {image_size!r}")
    return int(math.log2(image_size))


# ---------------------------------------------------------------- the generator


class GBlock(nn.Module):
    """CBN-ReLU-upsample-conv3-CBN-ReLU-conv3, plus upsample-conv1 on the shortcut."""

    def __init__(self, in_channels, out_channels, cond_features):
        super().__init__()
        self.bn1 = nn.ConditionalBatchNorm2d(in_channels, cond_features)
        self.conv1 = _sn_conv(in_channels, out_channels, 3, bias=False)  # each conv of G feeds a batch norm
        self.bn2 = nn.ConditionalBatchNorm2d(out_channels, cond_features)
        self.conv2 = _sn_conv(out_channels, out_channels, 3, bias=False)
        self.conv_sc = _sn_conv(in_channels, out_channels, 1, bias=False)
        for bn in (self.bn1, self.bn2):
            spectral_norm(bn.gain)
            spectral_norm(bn.bias)

    def forward(self, x, cond):
        h = interpolate(relu(self.bn1(x, cond)), scale_factor=2)
        h = self.conv2(relu(self.bn2(self.conv1(h), cond)))
        return h + self.conv_sc(interpolate(x, scale_factor=2))


class Generator(nn.Module):
    """G(z, y): z (N, latent_dim) and class indices y (N,) -> images (N, channels, S, S) in [-1, 1]."""

    def __init__(self, latent_dim=64, n_classes=10, channels=1, image_size=32, width=32, shared_dim=32):
        super().__init__()
        n_blocks = _check_size(image_size) - 2
        if latent_dim % (n_blocks + 1):
            raise ValueError(f"Generator: latent_dim ({latent_dim}) must split into {n_blocks + 1} equal chunks "
                             f"(one for the input layer, one per block)")
        self.latent_dim, self.n_classes, self.channels, self.image_size = latent_dim, n_classes, channels, image_size
        self.width, self.chunk = width, latent_dim // (n_blocks + 1)
        self.shared = nn.Embedding(n_classes, shared_dim)
        self.linear = spectral_norm(nn.Linear(self.chunk, width * 4 * 4))
        self.blocks = nn.ModuleList([GBlock(width, width, shared_dim + self.chunk) for _ in range(n_blocks)])
        self.output = nn.Sequential(nn.BatchNorm2d(width), nn.ReLU(), _sn_conv(width, channels, 3), nn.Tanh())
        init_weights(self)

    def forward(self, z, y):
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"Generator: expected z of shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        zs = mg.split(z, self.chunk, dim=1)
        shared = self.shared(y)
        h = self.linear(zs[0]).reshape(z.shape[0], self.width, 4, 4)
        for block, z_i in zip(self.blocks, zs[1:]):
            h = block(h, mg.cat([shared, z_i], dim=1))
        return self.output(h)


# ---------------------------------------------------------------- the discriminator


class DBlock(nn.Module):
    """(ReLU-)conv3-ReLU-conv3(-avgpool), plus a conv1 (and avgpool) shortcut."""

    def __init__(self, in_channels, out_channels, preactivation=True, downsample=True):
        super().__init__()
        self.preactivation, self.downsample = preactivation, downsample
        self.conv1 = _sn_conv(in_channels, out_channels, 3)
        self.conv2 = _sn_conv(out_channels, out_channels, 3)
        self.learnable_sc = in_channels != out_channels or downsample
        if self.learnable_sc:
            self.conv_sc = _sn_conv(in_channels, out_channels, 1)

    def shortcut(self, x):
        if self.preactivation:  # conv, then pool (fewer operations at the same result)
            x = self.conv_sc(x) if self.learnable_sc else x
            return avg_pool2d(x, 2) if self.downsample else x
        x = avg_pool2d(x, 2) if self.downsample else x  # the first block: pool the image first
        return self.conv_sc(x) if self.learnable_sc else x

    def forward(self, x):
        h = relu(x) if self.preactivation else x
        h = self.conv2(relu(self.conv1(h)))
        if self.downsample:
            h = avg_pool2d(h, 2)
        return h + self.shortcut(x)


class Discriminator(nn.Module):
    """D(x, y): images (N, channels, S, S) and class indices (N,) -> one score per pair (N,)."""

    def __init__(self, n_classes=10, channels=1, image_size=32, width=32):
        super().__init__()
        n_down = _check_size(image_size) - 3  # down to 8x8, then two blocks at 8x8 (the paper's 32x32 D)
        plan = [(channels, width, False, True)] + [(width, width, True, True)] * (n_down - 1) \
            + [(width, width, True, False)] * 2
        self.blocks = nn.Sequential(*[DBlock(cin, cout, pre, down) for cin, cout, pre, down in plan])
        self.linear = spectral_norm(nn.Linear(width, 1))
        self.embed = spectral_norm(nn.Embedding(n_classes, width))
        self.n_classes, self.channels, self.image_size = n_classes, channels, image_size
        init_weights(self)

    def forward(self, x, y):
        expected = (self.channels, self.image_size, self.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"Discriminator: expected images of shape (N, {', '.join(map(str, expected))}), "
                             f"got {tuple(x.shape)}")
        h = relu(self.blocks(x)).sum(dim=(2, 3))
        return self.linear(h).flatten() + (self.embed(y) * h).sum(dim=1)


def init_weights(module):
    """Orthogonal init of every conv, linear and embedding weight under spectral norm, zero
    biases (the paper's init; spectral norm divides the scale away, the directions remain).
    G's shared embedding keeps torch's N(0, 1) (see the module docstring). Returns ``module``."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)) and "weight_orig" in m._parameters:
            nn.init.orthogonal_(m.weight_orig)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
    return module


# ---------------------------------------------------------------- losses and sampling


def discriminator_loss(real_scores, fake_scores):
    """The hinge loss of D: mean relu(1 - D(x, y)) + mean relu(1 + D(G(z), y))."""
    return relu(1 - real_scores).mean() + relu(1 + fake_scores).mean()


def generator_loss(fake_scores):
    """G's hinge loss: -mean D(G(z), y)."""
    return -fake_scores.mean()


def orthogonal_regularization(generator, beta):
    """beta * sum_W ||W W^T (.) (1 - I)||_F^2 over G's weights of two or more dims (each as a
    (out, in * k * k) matrix; under spectral norm the learned ``weight_orig``), not the shared
    embedding: the filters are pushed towards being orthogonal, their norms left free."""
    total = 0
    for name, p in generator.named_parameters():
        if p.ndim < 2 or name.startswith("shared."):
            continue
        w = p.reshape(p.shape[0], -1)
        gram = w @ w.transpose(0, 1)
        total = total + ((gram * (1 - mg.eye(w.shape[0], device=w.device))) ** 2).sum()
    return beta * total


def truncated_latent(n, latent_dim, psi, device="cpu"):
    """z ~ N(0, I) truncated to |z_i| <= psi: every value outside is drawn again until none
    is left (the paper's truncation trick; psi = inf is the untruncated prior)."""
    z = sample_latent(n, latent_dim, device)
    while True:
        outside = z.abs() > psi
        if not outside.any().item():
            return z
        z = mg.where(outside, sample_latent(n, latent_dim, device), z)


def standing_statistics(generator, batches=16, batch_size=64):
    """Recompute G's batch-norm running statistics as the plain average over ``batches``
    batches of its own samples (BigGAN's "standing statistics"): the averaged weights of an
    EMA never produced the statistics the training copy tracked. Leaves G in eval mode."""
    norms = [m for m in generator.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    generator.train()
    device = next(generator.parameters()).device
    with mg.no_grad():
        for _ in range(batches):
            generator(sample_latent(batch_size, generator.latent_dim, device),
                      sample_labels(batch_size, generator.n_classes, device))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    return generator.eval()


# ---------------------------------------------------------------- one training step


def train_step(generator, discriminator, opt_g, opt_d, batches, ortho_beta=0.0):
    """``len(batches)`` discriminator steps, one per (real, labels) pair of ``batches``,
    then one generator step; the hinge losses. In each D step, z then y are drawn and
    G's samples (made without a graph) are judged for those labels; the G step draws z
    then y again, with the batch size of the last real batch. ``ortho_beta`` > 0 adds
    the orthogonal regularization to G's loss. Returns the last D loss and G's loss."""
    device = batches[0][0].device
    for real, labels in batches:
        n = real.shape[0]
        z, fake_labels = sample_latent(n, generator.latent_dim, device), sample_labels(n, generator.n_classes, device)
        with mg.no_grad():
            fake = generator(z, fake_labels)
        d_loss = discriminator_loss(discriminator(real, labels), discriminator(fake, fake_labels))
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()

    z, fake_labels = sample_latent(n, generator.latent_dim, device), sample_labels(n, generator.n_classes, device)
    discriminator.requires_grad_(False)  # G's step differentiates through D, not into it
    g_loss = generator_loss(discriminator(generator(z, fake_labels), fake_labels))
    loss = g_loss + orthogonal_regularization(generator, ortho_beta) if ortho_beta else g_loss
    opt_g.zero_grad()
    loss.backward()
    opt_g.step()
    discriminator.requires_grad_(True)
    return {"d_loss": d_loss.item(), "g_loss": g_loss.item()}
