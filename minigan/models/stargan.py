r"""StarGAN (Choi, Choi, Kim, Ha, Kim & Choo, 2018, "StarGAN: Unified Generative Adversarial
Networks for Multi-Domain Image-to-Image Translation").

The idea: CycleGAN needs one generator per ordered pair of domains, k(k - 1) of them for
k domains, and each sees only the images of its two. StarGAN trains *one* generator for
all of them: G takes an image x and the label c of the domain to translate it into,

    y = G(x, c),     c one-hot over the k domains, tiled to (k, H, W) and stacked onto x's channels,

and one discriminator with two heads on a shared trunk: D_src(x), a map of real/fake
scores, and D_cls(x), logits over the domains. The losses (Section 3.1, with the
WGAN-GP adversarial loss of Section 4.4):

    L_adv   = E_x[D_src(x)] - E_{x,c}[D_src(G(x, c))] - lambda_gp E_xhat[(||grad_xhat D_src(xhat)||_2 - 1)^2]
    L_cls^r = E_{x,c'}[-log D_cls(c' | x)]           D learns the domains on real images, c' x's own
    L_cls^f = E_{x,c}[-log D_cls(c | G(x, c))]       G learns to make D see the target domain c
    L_rec   = E_{x,c,c'}[ ||x - G(G(x, c), c')||_1 ]   the cycle: translate to c and back to c'

    L_D = -L_adv + lambda_cls L_cls^r                   (D ascends L_adv)
    L_G =  L_adv + lambda_cls L_cls^f + lambda_rec L_rec,     lambda_cls = 1, lambda_rec = 10, lambda_gp = 10.

D_src's map is averaged (the reference's ``torch.mean(out_src)``), and the gradient
penalty is taken on the map's sum, one interpolate per image: the building blocks are
``wgan.critic_loss``, ``wgan.generator_loss`` and ``wgan.gradient_penalty`` (whose
penalty differentiates D's input gradient again, a double backward through its convs).

The networks (Appendix, Tables 4 and 5; the reference implementation's ``model.py``):

    G   conv 7x7 s1 (k, from c+k channels), IN, ReLU
        2 x [conv 4x4 s2, IN, ReLU]               down-sampling: 2k, 4k channels
        n x residual block [conv 3x3, IN, ReLU, conv 3x3, IN] + x       the bottleneck
        2 x [transposed conv 4x4 s2, IN, ReLU]    up-sampling: 2k, k channels
        conv 7x7 s1 (c channels), tanh
        (k = 64, n = 6 in the paper; no conv of G has a bias, every IN has an affine)
    D   L x [conv 4x4 s2, LeakyReLU(0.01)]          k, 2k, ..., channels: a PatchGAN trunk
        D_src: conv 3x3 s1 p1 -> one score per position of the final map
        D_cls: conv whose kernel is the final map (S / 2^L) -> k domain logits
        (L = 6 at 128 x 128, a 2 x 2 final map; no normalization, as a gradient penalty wants)

Training (Section 4.4): Adam lr 1e-4, betas (0.5, 0.999); D is updated every iteration
and G every ``n_critic`` = 5th, on the same batch; the target labels are the batch's own
labels shuffled (the reference's ``randperm``). The reference tracks instance norm's
running statistics but never switches G to evaluation mode, so its test-time G
normalizes each image by its own statistics; here the instance norms track nothing
(``track_running_stats=False``), the same computation in both modes.
"""
import numpy as np

import minigan as mg
from minigan import nn
from minigan.functional import cross_entropy, l1_loss

from . import wgan

LAMBDA_CLS = 1.0
LAMBDA_REC = 10.0
LAMBDA_GP = 10.0
N_CRITIC = 5


# ---------------------------------------------------------------- the labels


def one_hot(labels, n_domains, device="cpu"):
    """Integer domain labels (N,) (a NumPy array, a list or an int64 Tensor) -> float32 one-hot (N, n_domains)."""
    labels = np.asarray(labels.numpy() if isinstance(labels, mg.Tensor) else labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"stargan.one_hot: expected integer labels of shape (N,), got {labels.dtype} "
                         f"of shape {labels.shape}")
    bad = labels[(labels < 0) | (labels >= n_domains)]
    if len(bad):
        raise ValueError(f"stargan.one_hot: labels must be in [0, {n_domains}), got {sorted(set(bad.tolist()))}")
    return mg.tensor(np.eye(n_domains, dtype=np.float32)[labels], device=device)


def tile_labels(c, height, width):
    """c (N, k) -> (N, k, height, width): each image's label vector repeated at every pixel,
    the extra input channels of G (the reference's ``c.view(N, k, 1, 1).repeat(1, 1, H, W)``)."""
    if c.ndim != 2:
        raise ValueError(f"stargan.tile_labels: expected labels (N, k), got shape {tuple(c.shape)}")
    return c.reshape(*c.shape, 1, 1).expand(*c.shape, height, width)


# ---------------------------------------------------------------- the networks


class ResidualBlock(nn.Module):
    """x + [conv 3x3, IN, ReLU, conv 3x3, IN](x), without conv biases (IN's affine shifts)."""

    def __init__(self, channels):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.InstanceNorm2d(channels, affine=True), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.InstanceNorm2d(channels, affine=True))

    def forward(self, x):
        return x + self.main(x)


class Generator(nn.Module):
    """G(x, c): images (N, channels, S, S) in [-1, 1] and one-hot target domains (N, n_domains)
    -> translations (N, channels, S, S) in [-1, 1]; S must be a multiple of 4."""

    def __init__(self, n_domains, channels=1, width=64, n_blocks=6):
        super().__init__()
        if n_domains < 2:
            raise ValueError(f"stargan.Generator: needs at least 2 domains, got {n_domains}")
        self.n_domains, self.channels = n_domains, channels
        layers = [nn.Conv2d(channels + n_domains, width, 7, 1, 3, bias=False), nn.InstanceNorm2d(width, affine=True),
                  nn.ReLU()]
        dim = width
        for _ in range(2):  # down-sampling
            layers += [nn.Conv2d(dim, dim * 2, 4, 2, 1, bias=False), nn.InstanceNorm2d(dim * 2, affine=True), nn.ReLU()]
            dim *= 2
        layers += [ResidualBlock(dim) for _ in range(n_blocks)]  # bottleneck
        for _ in range(2):  # up-sampling
            layers += [nn.ConvTranspose2d(dim, dim // 2, 4, 2, 1, bias=False),
                       nn.InstanceNorm2d(dim // 2, affine=True), nn.ReLU()]
            dim //= 2
        layers += [nn.Conv2d(dim, channels, 7, 1, 3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x, c):
        if x.ndim != 4 or x.shape[1] != self.channels or x.shape[2] % 4 or x.shape[3] % 4:
            raise ValueError(f"stargan.Generator: expected images (N, {self.channels}, H, W) with H and W "
                             f"multiples of 4, got {tuple(x.shape)}")
        if tuple(c.shape) != (x.shape[0], self.n_domains):
            raise ValueError(f"stargan.Generator: expected one-hot target domains ({x.shape[0]}, {self.n_domains}) "
                             f"for {x.shape[0]} images, got {tuple(c.shape)}")
        return self.main(mg.cat([x, tile_labels(c, x.shape[2], x.shape[3])], 1))


class Discriminator(nn.Module):
    """D(x) -> (D_src (N, 1, S', S') real/fake scores, D_cls (N, n_domains) domain logits),
    for images (N, channels, image_size, image_size); S' = image_size / 2^n_layers."""

    def __init__(self, n_domains, channels=1, image_size=32, width=64, n_layers=4):
        super().__init__()
        final = image_size // 2 ** n_layers
        if final < 1 or final * 2 ** n_layers != image_size:
            raise ValueError(f"stargan.Discriminator: image_size {image_size} is not a multiple of 2^n_layers "
                             f"= {2 ** n_layers} (each of the {n_layers} layers halves it)")
        self.n_domains, self.channels, self.image_size = n_domains, channels, image_size
        layers, dim = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.01)], width
        for _ in range(1, n_layers):
            layers += [nn.Conv2d(dim, dim * 2, 4, 2, 1), nn.LeakyReLU(0.01)]
            dim *= 2
        self.main = nn.Sequential(*layers)
        self.conv1 = nn.Conv2d(dim, 1, 3, 1, 1, bias=False)        # D_src
        self.conv2 = nn.Conv2d(dim, n_domains, final, bias=False)  # D_cls: its kernel covers the final map

    def forward(self, x):
        if x.ndim != 4 or tuple(x.shape[1:]) != (self.channels, self.image_size, self.image_size):
            raise ValueError(f"stargan.Discriminator: expected images (N, {self.channels}, {self.image_size}, "
                             f"{self.image_size}), got {tuple(x.shape)}")
        h = self.main(x)
        return self.conv1(h), self.conv2(h).reshape(x.shape[0], self.n_domains)


# ---------------------------------------------------------------- the losses


def classification_loss(logits, labels):
    """-log D_cls(c | x): softmax cross-entropy of the domain logits against integer labels
    (the reference's choice for single-label domains, as RaFD's expressions)."""
    return cross_entropy(logits, labels)


def reconstruction_loss(reconstructed, real):
    """||x - G(G(x, c), c')||_1, a mean over pixels."""
    return l1_loss(reconstructed, real)


# ---------------------------------------------------------------- the training steps


def _labels(labels, device):
    return labels if isinstance(labels, mg.Tensor) else mg.tensor(np.asarray(labels, np.int64), device=device)


def discriminator_step(G, D, opt_d, x, label_org, label_trg, lambda_cls=LAMBDA_CLS, lambda_gp=LAMBDA_GP, eps=None):
    """One update of D: -E D_src(x) + E D_src(G(x, c)) + lambda_cls L_cls^r + lambda_gp GP.

    ``label_org`` are x's domains, ``label_trg`` the targets (integer arrays (N,));
    ``eps`` (N,) the interpolation weights of the penalty (drawn U[0, 1] when None).
    Returns the losses as floats."""
    label_org, label_trg = _labels(label_org, x.device), _labels(label_trg, x.device)
    src_real, cls_real = D(x)
    d_cls = classification_loss(cls_real, label_org)
    with mg.no_grad():  # D's step needs no graph through G
        fake = G(x, one_hot(label_trg, G.n_domains, x.device).to(x.dtype))
    src_fake, _ = D(fake)
    d_adv = wgan.critic_loss(src_real, src_fake)  # E D_src(fake) - E D_src(real), means over the maps
    gp = wgan.gradient_penalty(lambda h: D(h)[0], x, fake, lambda_gp, eps=eps)
    d_loss = d_adv + lambda_cls * d_cls + gp
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    return {"d_loss": d_loss.item(), "d_real": -src_real.mean().item(), "d_fake": src_fake.mean().item(),
            "d_cls": d_cls.item(), "d_gp": gp.item()}


def generator_step(G, D, opt_g, x, label_org, label_trg, lambda_cls=LAMBDA_CLS, lambda_rec=LAMBDA_REC):
    """One update of G: -E D_src(G(x, c)) + lambda_cls L_cls^f + lambda_rec ||x - G(G(x, c), c')||_1.
    ``lambda_rec = 0`` leaves the cycle out (no second pass through G). D is not updated.
    Returns the losses as floats."""
    label_org, label_trg = _labels(label_org, x.device), _labels(label_trg, x.device)
    fake = G(x, one_hot(label_trg, G.n_domains, x.device).to(x.dtype))
    D.requires_grad_(False)  # G's step differentiates through D, not into it
    try:
        src_fake, cls_fake = D(fake)
        g_adv = wgan.generator_loss(src_fake)
        g_cls = classification_loss(cls_fake, label_trg)
        g_loss = g_adv + lambda_cls * g_cls
        losses = {"g_fake": g_adv.item(), "g_cls": g_cls.item()}
        if lambda_rec > 0:
            g_rec = reconstruction_loss(G(fake, one_hot(label_org, G.n_domains, x.device).to(x.dtype)), x)
            g_loss = g_loss + lambda_rec * g_rec
            losses["g_rec"] = g_rec.item()
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
    finally:
        D.requires_grad_(True)
    return {"g_loss": g_loss.item(), **losses}


def target_labels(label_org, rng):
    """The targets of a batch: its own labels in a random order (the reference's ``randperm``),
    so the targets follow the data's domain frequencies; some images keep their own domain."""
    return np.asarray(label_org)[rng.permutation(len(label_org))]


# ---------------------------------------------------------------- test time


def translate(G, images, targets, device="cpu", batch_size=500):
    """G(x, c) for NumPy ``images`` (N, C, H, W) and integer ``targets`` (N,): float32 NumPy, no graph."""
    targets = np.asarray(targets)
    if len(targets) != len(images):
        raise ValueError(f"stargan.translate: {len(images)} images but {len(targets)} target domains")
    with mg.no_grad():
        out = [G(mg.tensor(images[i:i + batch_size], device=device),
                 one_hot(targets[i:i + batch_size], G.n_domains, device)).numpy()
               for i in range(0, len(images), batch_size)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, *images.shape[1:]), np.float32)
