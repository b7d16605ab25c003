r"""pix2pix (Isola, Zhu, Zhou & Efros 2017, "Image-to-Image Translation with Conditional
Adversarial Networks").

The idea: many image tasks translate one picture into another of the same scene
(edges to photo, map to aerial view, day to night). A conditional GAN learns the
translation *and* the loss: D sees the input x together with an output y, real
(the true pair) or fake (x, G(x)), and learns what a plausible translation of x
looks like. An L1 term keeps G near the truth at low frequencies; the GAN term
punishes the blur L1 alone settles for (the mean of the plausible outputs):

    L_cGAN(G, D) = E_{x,y}[log D(x, y)] + E_x[log(1 - D(x, G(x)))]
    L_L1(G)      = E_{x,y}[ |y - G(x)|_1 ]
    G* = arg min_G max_D  L_cGAN(G, D) + lambda L_L1(G),      lambda = 100.

G has no noise input z: the paper found it ignored, and its only noise is dropout,
kept on at test time (below). Section 3 and 4's choices, all defaults here:
  * G: the U-Net (``minigan.nn.UNet``); ``generator_kind="encoder-decoder"`` removes
    the skips (the paper's Table 2 and Figure 5 comparison);
  * D: the conditional PatchGAN on (x, y) concatenated along the channels
    (``patchgan.py``); ``patch`` picks its receptive field (1, 16, 34, 70, "image");
  * G's adversarial loss is the non-saturating -log D(x, G(x)); D's loss is halved
    "to slow down the rate at which D learns relative to G";
  * Adam, lr 2e-4, betas (0.5, 0.999); batch norm; weights from N(0, 0.02);
  * ``loss``: "l1+gan" (the paper's), "l1" (no D at all) or "gan" (the cGAN alone),
    the paper's Table 1 ablation.

**Test time.** The paper runs G at test time as in training: dropout on (its
noise) and batch norm with the statistics of the test batch ("we apply dropout at
test time, and we apply batch normalization using the statistics of the test batch
at test time rather than aggregated statistics of the training batch"; with
batch size 1, batch norm is instance norm). ``translate(..., test_mode="train")``
does that, leaving the running statistics as they were; ``test_mode="eval"`` is
the usual evaluation mode (no dropout, running statistics), deterministic.
``examples/pix2pix.py`` uses "eval" by default and reports both: on edges2fashion
after 1000 steps, "eval" gave the lower L1 and the higher accuracy for every loss and
D tried (docs/pix2pix.md).
"""
import math

import numpy as np

import minigan as mg
from minigan import functional as F
from minigan import nn

from . import gan
from .dcgan import init_weights
from .patchgan import patch_discriminator

LAMBDA_L1 = 100.0
LOSSES = ("l1", "gan", "l1+gan")
GENERATORS = ("unet", "encoder-decoder")
TEST_MODES = ("train", "eval")


# ---------------------------------------------------------------- the networks


def generator(kind="unet", in_channels=1, out_channels=1, image_size=32, ngf=64, norm="batch", dropout=0.5):
    """G: a U-Net (``kind="unet"``) or the same network without skips ("encoder-decoder"),
    from (N, in_channels, S, S) to (N, out_channels, S, S), down to 1 x 1 in log2(S) steps."""
    if kind not in GENERATORS:
        raise ValueError(f"pix2pix.generator: kind must be one of {GENERATORS}, got {kind!r}")
    num_downs = math.log2(image_size)
    if num_downs != int(num_downs):
        raise ValueError(f"pix2pix.generator: image_size must be a power of two, got {image_size}")
    net = nn.UNet(in_channels, out_channels, int(num_downs), ngf, norm, dropout, skip=kind == "unet")
    return init_weights(net)


def discriminator(patch=70, in_channels=1, out_channels=1, ndf=64, norm="batch", image_size=32):
    """The conditional D: a PatchGAN on the input and an output stacked along the channels."""
    return patch_discriminator(in_channels + out_channels, patch, ndf, norm, image_size)


def pair(x, y):
    """D's input: the condition x and a (real or generated) y, concatenated along the channels."""
    return mg.cat([x, y], 1)


# ---------------------------------------------------------------- the losses


def discriminator_loss(real_logits, fake_logits):
    """D's loss, halved: 0.5 * (-log D(x, y) - log(1 - D(x, G(x)))), averaged over D's patches."""
    return 0.5 * gan.discriminator_loss(real_logits, fake_logits)


def generator_loss(fake, target, fake_logits=None, loss="l1+gan", lambda_l1=LAMBDA_L1):
    """G's loss: -log D(x, G(x)) and/or lambda * |y - G(x)|_1, as ``loss`` says. Returns the
    total and its parts as a dict of Tensors ("g_gan", "g_l1" where they apply)."""
    if loss not in LOSSES:
        raise ValueError(f"pix2pix: loss must be one of {LOSSES}, got {loss!r}")
    parts = {}
    if "gan" in loss:
        parts["g_gan"] = gan.generator_loss(fake_logits, "non_saturating")
    if "l1" in loss:
        parts["g_l1"] = lambda_l1 * F.l1_loss(fake, target)
    return sum(parts.values()), parts


# ---------------------------------------------------------------- one training step


def train_step(generator, discriminator, opt_g, opt_d, x, y, loss="l1+gan", lambda_l1=LAMBDA_L1):
    """One D step on the real pair (x, y) and the fake (x, G(x)) (detached), then one G
    step through the updated D (the reference's ``optimize_parameters``). With
    ``loss="l1"`` there is no D: ``discriminator`` and ``opt_d`` may be None.
    Returns the losses as floats."""
    if loss not in LOSSES:
        raise ValueError(f"pix2pix: loss must be one of {LOSSES}, got {loss!r}")
    fake = generator(x)
    losses = {}
    if "gan" in loss:
        fake_logits = discriminator(pair(x, fake.detach()))  # the fake pair first, as the reference: batch
        d_loss = discriminator_loss(discriminator(pair(x, y)), fake_logits)  # norm's running statistics see it first
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        losses["d_loss"] = d_loss.item()
        discriminator.requires_grad_(False)  # G's step differentiates through D, not into it
    try:
        g_loss, parts = generator_loss(fake, y, discriminator(pair(x, fake)) if "gan" in loss else None,
                                       loss, lambda_l1)
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
    finally:
        if "gan" in loss:
            discriminator.requires_grad_(True)
    return {**losses, "g_loss": g_loss.item(), **{k: v.item() for k, v in parts.items()}}


# ---------------------------------------------------------------- test time


def translate(generator, inputs, test_mode="train", batch_size=64, device="cpu"):
    """G's outputs for ``inputs`` (a NumPy array (N, C, H, W)) as a float32 NumPy array.

    ``test_mode="train"``: the paper's test time, dropout on and batch norm on each
    batch's own statistics (batches of ``batch_size``); the running statistics are
    restored afterwards, so translating leaves G as it was. "eval": no dropout,
    the running statistics. G's own mode is restored either way."""
    if test_mode not in TEST_MODES:
        raise ValueError(f"pix2pix.translate: test_mode must be one of {TEST_MODES}, got {test_mode!r}")
    buffers = {name: b.array.copy() for name, b in generator.named_buffers()}
    try:
        with nn.evaluating(generator, training=test_mode == "train"), mg.no_grad():
            out = [generator(mg.tensor(inputs[i:i + batch_size], device=device)).numpy()
                   for i in range(0, len(inputs), batch_size)]
    finally:
        for name, b in generator.named_buffers():
            b.array[...] = buffers[name]
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, *inputs.shape[1:]), np.float32)
