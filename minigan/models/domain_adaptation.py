r"""Unsupervised domain adaptation: DANN (Ganin et al. 2016, "Domain-Adversarial Training
of Neural Networks") and ADDA (Tzeng et al. 2017, "Adversarial Discriminative Domain
Adaptation"), with the two yardsticks, source-only and the target-trained oracle.

The setting: labelled images from a source domain (x_s, y_s), unlabelled images from a
target domain x_t, and the task is to classify the target. A classifier trained on the
source alone drops in accuracy on the target because its features tell the domains apart.
Both methods borrow the GAN's game to make the features domain-invariant: a domain
classifier (the "discriminator") tries to say which domain a feature came from, and the
feature extractor (the "generator") learns to fool it.

**DANN.** One feature extractor G_f, a label classifier G_y and a domain classifier G_d,
trained together on

    E(theta_f, theta_y, theta_d) = L_y(G_y(G_f(x_s)), y_s) - lambda L_d(G_d(G_f(x)), d),

minimised over theta_f and theta_y and maximised over theta_d. The saddle point is
found by plain SGD thanks to the **gradient reversal layer** R_lambda between G_f and
G_d: the identity going forward, -lambda times the gradient going back. G_d then
descends L_d (it learns the domains) while G_f receives -lambda dL_d/df, ascending L_d
(it unlearns them), in the same backward pass. ``GradientReversal`` below is that layer,
a minigan autograd Function. The paper's schedules (section 5.2.2), both used here:
lambda_p = 2 / (1 + exp(-gamma p)) - 1 with gamma = 10 (0 at the start, when the
features are noise, towards 1), and the annealed learning rate
mu_p = mu_0 / (1 + alpha p)^beta with mu_0 = 0.01, alpha = 10, beta = 0.75, for SGD with
momentum 0.9; p goes from 0 to 1 over training.

**ADDA.** Two stages, untied weights. (1) Pretrain a source encoder M_s and classifier C
on the labelled source. (2) Initialise a target encoder M_t from M_s and play a GAN on
encodings: a discriminator D tells M_s(x_s) ("real") from M_t(x_t) ("fake"),

    min_D   -E[log D(M_s(x_s))] - E[log(1 - D(M_t(x_t)))]
    min_M_t -E[log D(M_t(x_t))]                       (the GAN loss with inverted labels)

with M_s and C fixed. The target is classified by C(M_t(x_t)). The losses are the GAN's
(``gan.discriminator_loss`` and the non-saturating ``gan.generator_loss``). The paper's
digit recipe: LeNet encoders, a 500-500 ReLU discriminator, Adam with lr 2e-4 and
beta1 0.5 for the adversarial stage.

The networks are Ganin et al.'s MNIST architecture at 16 x 16: two 5 x 5 convolutions
(32 and 48 channels, padded) each followed by ReLU and 2 x 2 max-pooling give 48 x 4 x 4
= 768 features; the label classifier is 100-100-10 and DANN's domain classifier 100-1;
ADDA's discriminator 500-500-1. ``width`` scales the channels and hidden units.
"""
import math

import numpy as np

import minigan as mg
from minigan import functional as F
from minigan import nn
from minigan.autograd import Function

from . import gan

METHODS = ("source-only", "dann", "adda", "oracle")
GRL_GAMMA = 10.0
LR_SCHEDULE = dict(lr0=0.01, alpha=10.0, beta=0.75)  # DANN's annealing (section 5.2.2)
ADDA_ADAM = dict(lr=2e-4, betas=(0.5, 0.999))


# ---------------------------------------------------------------- the gradient reversal layer


class GradientReversal(Function):
    """R_lambda(x) = x going forward; dR/dx = -lambda I going back (Ganin et al., eq. 11-12)."""
    reads_inputs = False  # the backward reads no value, only lambda

    def __init__(self, lambd):
        self.lambd = float(lambd)

    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        return gy * (-self.lambd)


def grad_reverse(x, lambd=1.0):
    """The gradient reversal layer: x forward, -lambda * gradient backward."""
    if not math.isfinite(lambd) or lambd < 0:
        raise ValueError(f"grad_reverse: lambd must be a finite number >= 0, got {lambd}")
    return GradientReversal(lambd)(x)


def grl_lambda(p, gamma=GRL_GAMMA):
    """DANN's adaptation factor lambda_p = 2 / (1 + exp(-gamma p)) - 1, p in [0, 1] the training progress."""
    _check_progress(p)
    return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0


def annealed_lr(p, lr0=LR_SCHEDULE["lr0"], alpha=LR_SCHEDULE["alpha"], beta=LR_SCHEDULE["beta"]):
    """DANN's learning rate mu_p = mu_0 / (1 + alpha p)^beta."""
    _check_progress(p)
    return lr0 / (1.0 + alpha * p) ** beta


def _check_progress(p):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"training progress p must be in [0, 1], got {p}")


def set_lr(optimizer, lr):
    for group in optimizer.param_groups:
        group["lr"] = lr


# ---------------------------------------------------------------- the networks


def _width(width):
    if not width > 0:
        raise ValueError(f"domain_adaptation: width must be > 0, got {width}")
    return lambda n: max(1, int(round(n * width)))


def feature_extractor(width=1.0, image_size=16):
    """G_f (DANN) or an encoder M (ADDA): conv5-ReLU-maxpool twice, flattened:
    (N, 1, S, S) -> (N, 48 (S/4)^2) at width 1."""
    if image_size % 4:
        raise ValueError(f"domain_adaptation.feature_extractor: image_size must be a multiple of 4, got {image_size}")
    w = _width(width)
    return nn.Sequential(nn.Conv2d(1, w(32), 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(w(32), w(48), 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())


def feature_size(width=1.0, image_size=16):
    return _width(width)(48) * (image_size // 4) ** 2


def label_classifier(width=1.0, image_size=16, classes=10):
    """G_y (DANN) or C (ADDA): features -> 100 -> 100 -> class logits, ReLU between."""
    w = _width(width)
    return nn.mlp([feature_size(width, image_size), w(100), w(100), classes], nn.ReLU)


def domain_classifier(width=1.0, image_size=16):
    """DANN's G_d: features -> 100 -> 1 logit (target = 1, source = 0)."""
    return nn.mlp([feature_size(width, image_size), _width(width)(100), 1], nn.ReLU)


def adda_discriminator(width=1.0, image_size=16):
    """ADDA's D: encodings -> 500 -> 500 -> 1 logit (source = real = 1)."""
    w = _width(width)
    return nn.mlp([feature_size(width, image_size), w(500), w(500), 1], nn.ReLU)


# ---------------------------------------------------------------- the training steps


def classifier_step(features, classifier, optimizer, x, y):
    """One supervised step, cross entropy on (x, y): source-only, the oracle and ADDA's
    pretraining. Returns {"class_loss", "class_accuracy"}."""
    logits = classifier(features(x))
    loss = F.cross_entropy(logits, y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {"class_loss": loss.item(), "class_accuracy": _accuracy(logits, y)}


def dann_step(features, classifier, domain, optimizer, xs, ys, xt, lambd):
    """One DANN step on a labelled source batch (xs, ys) and an unlabelled target batch xt.

    Both batches go through G_f together; G_y sees the source part, G_d all of it through
    R_lambda. The loss L_y + L_d is descended by every parameter: through the reversal,
    G_f's share of it is L_y - lambda L_d. L_d is the mean binary cross entropy over the
    2N domain labels. Returns the losses and the domain classifier's accuracy."""
    f = features(mg.cat([xs, xt], 0))
    n = xs.shape[0]
    logits = classifier(f[:n])
    class_loss = F.cross_entropy(logits, ys)
    d_logits = domain(grad_reverse(f, lambd)).flatten()
    d_labels = mg.cat([mg.zeros(n, device=xs.device), mg.ones(xt.shape[0], device=xs.device)]).to(d_logits.dtype)
    domain_loss = F.binary_cross_entropy_with_logits(d_logits, d_labels)
    optimizer.zero_grad()
    (class_loss + domain_loss).backward()
    optimizer.step()
    d_correct = (d_logits.numpy() > 0) == (d_labels.numpy() > 0.5)
    return {"class_loss": class_loss.item(), "domain_loss": domain_loss.item(),
            "class_accuracy": _accuracy(logits, ys), "domain_accuracy": float(np.mean(d_correct)), "lambda": lambd}


def adda_step(source_encoder, target_encoder, discriminator, opt_target, opt_d, xs, xt):
    """One adversarial step of ADDA: D on M_s(x_s) (real) against M_t(x_t) (fake, detached),
    then M_t through the updated D with inverted labels. M_s is never updated (and takes no
    gradient). Returns {"d_loss", "target_loss", "d_accuracy"}."""
    with mg.no_grad():
        source_codes = source_encoder(xs)
    target_codes = target_encoder(xt)
    real_logits, fake_logits = discriminator(source_codes), discriminator(target_codes.detach())
    d_loss = gan.discriminator_loss(real_logits, fake_logits)
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    d_correct = np.concatenate([real_logits.numpy() > 0, fake_logits.numpy() <= 0])
    discriminator.requires_grad_(False)  # M_t's step differentiates through D, not into it
    try:
        target_loss = gan.generator_loss(discriminator(target_codes), "non_saturating")
        opt_target.zero_grad()
        target_loss.backward()
        opt_target.step()
    finally:
        discriminator.requires_grad_(True)
    return {"d_loss": d_loss.item(), "target_loss": target_loss.item(), "d_accuracy": float(np.mean(d_correct))}


def _accuracy(logits, y):
    return float(np.mean(logits.numpy().argmax(1) == y.numpy()))


# ---------------------------------------------------------------- evaluation


def embed(features, images, batch_size=500, device="cpu"):
    """The features of ``images`` (NumPy (N, 1, S, S)) as a float32 NumPy array, no gradients."""
    with mg.no_grad():
        out = [features(mg.tensor(images[i:i + batch_size], device=device)).numpy()
               for i in range(0, len(images), batch_size)]
    return np.concatenate(out).astype(np.float32)


def accuracy(features, classifier, images, labels, batch_size=500, device="cpu"):
    """The fraction of ``images`` that ``classifier(features(x))`` labels correctly."""
    if len(images) != len(labels):
        raise ValueError(f"accuracy: {len(images)} images but {len(labels)} labels")
    with mg.no_grad():
        predicted = np.concatenate([
            classifier(features(mg.tensor(images[i:i + batch_size], device=device))).numpy().argmax(1)
            for i in range(0, len(images), batch_size)])
    return float(np.mean(predicted == np.asarray(labels)))
