"""Style transfer in plain torch: Gatys et al. 2016's losses and pixel step, and AdaIN's
(Huang & Belongie 2017) decoder and training step, as the paper's code writes them
(naoto0804/pytorch-AdaIN: net.py's ``decoder``, ``calc_mean_std``, ``Net.forward``),
with the normalizations of ``minigan.models.style_transfer``. Images in [-1, 1]."""
import torch
from torch import nn

from .vgg19_torch import gram

EPS = 1e-5


def gatys_losses(model, image, content, style, content_layer="relu4_2",
                 style_layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")):
    """Eq. 1 and 5 written out: 1/2 sum (F - P)^2 and sum_l 1/L * 1/(4 N^2 M^2) sum (G - A)^2,
    the Gram matrices G, A here unnormalized."""
    with torch.no_grad():
        p = model(content, (content_layer,))[content_layer]
        targets = model(style, style_layers)
    f = model(image, style_layers + (content_layer,))
    content_loss = 0.5 * ((f[content_layer] - p) ** 2).sum()
    style_loss = 0
    for name in style_layers:
        _, n, h, w = f[name].shape
        m = h * w
        g, a = gram(f[name]) * m, gram(targets[name]) * m
        style_loss = style_loss + ((g - a) ** 2).sum() / (4 * n ** 2 * m ** 2) / len(style_layers)
    return content_loss, style_loss


def gatys_step(model, pixels, optimizer, content, style, alpha, beta):
    optimizer.zero_grad()
    c, s = gatys_losses(model, pixels, content, style)
    loss = alpha * c + beta * s
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        pixels.clamp_(-1, 1)
    return {"loss": loss.item(), "content": c.item(), "style": s.item()}


# ---------------------------------------------------------------- AdaIN


class Decoder(nn.Module):
    """net.py's ``decoder`` at ``width`` (512 -> 256 -> 128 -> 64 -> 3)."""

    def __init__(self, width=1.0):
        super().__init__()
        c1, c2, c3, c4 = (max(1, round(c * width)) for c in (64, 128, 256, 512))

        def conv(i, o, relu=True):
            return [nn.ReflectionPad2d((1, 1, 1, 1)), nn.Conv2d(i, o, (3, 3))] + ([nn.ReLU()] if relu else [])

        up = [nn.Upsample(scale_factor=2, mode="nearest")]
        self.layers = nn.Sequential(*conv(c4, c3), *up, *conv(c3, c3), *conv(c3, c3), *conv(c3, c3), *conv(c3, c2),
                                    *up, *conv(c2, c2), *conv(c2, c1), *up, *conv(c1, c1), *conv(c1, 3, relu=False))

    def forward(self, t):
        return self.layers(t)


def calc_mean_std(feat, eps=EPS):
    """As the paper's code, but with the biased variance (minigan's and eq. 8's sigma)."""
    n, c = feat.shape[:2]
    var = feat.reshape(n, c, -1).var(dim=2, unbiased=False) + eps
    return feat.reshape(n, c, -1).mean(dim=2), var.sqrt()


def adain(content_feat, style_feat):
    size = content_feat.size()
    style_mean, style_std = calc_mean_std(style_feat)
    content_mean, content_std = calc_mean_std(content_feat)
    normalized = (content_feat - content_mean[..., None, None].expand(size)) / content_std[..., None, None].expand(size)
    return normalized * style_std[..., None, None].expand(size) + style_mean[..., None, None].expand(size)


ADAIN_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


def adain_losses(encoder, decoder, content, style, lam=10.0, alpha=1.0):
    """Net.forward: loss_c = MSE(f(g(t)), t), loss_s = sum_i MSE of means + MSE of stds."""
    with torch.no_grad():
        style_feats = encoder(style, ADAIN_LAYERS)
        content_feat = encoder(content, ("relu4_1",))["relu4_1"]
        t = adain(content_feat, style_feats["relu4_1"])
        t = alpha * t + (1 - alpha) * content_feat
    g_t_feats = encoder(decoder(t), ADAIN_LAYERS)
    mse = nn.MSELoss()
    loss_c = mse(g_t_feats["relu4_1"], t)
    loss_s = 0
    for name in ADAIN_LAYERS:
        m, s = calc_mean_std(g_t_feats[name])
        tm, ts = calc_mean_std(style_feats[name])
        loss_s = loss_s + mse(m, tm) + mse(s, ts)
    return loss_c + lam * loss_s, loss_c, loss_s


def adain_train_step(encoder, decoder, optimizer, content, style, lam=10.0):
    optimizer.zero_grad()
    loss, c, s = adain_losses(encoder, decoder, content, style, lam)
    loss.backward()
    optimizer.step()
    return {"loss": loss.item(), "content": c.item(), "style": s.item()}
