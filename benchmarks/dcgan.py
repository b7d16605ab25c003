"""DCGAN (Radford et al., 2016) twice, in minigan and in torch, for timing the same work.

The networks of pytorch/examples ``dcgan/main.py`` for 64x64 images, and the
32x32 variant with one stride-2 layer fewer; the conv layers carry no bias (a
batch norm follows), the last layer of G is tanh, D returns a logit:

    G: z (100, 1x1) -> ConvT 4x4 s1 p0 -> 4x4 -> [ConvT 4x4 s2 p1 -> 2x] ... -> 3 x 64 x 64
       batch norm + ReLU after every layer but the last
    D: 3 x 64 x 64 -> [Conv 4x4 s2 p1 -> /2] ... -> 4x4 -> Conv 4x4 s1 p0 -> 1 logit
       LeakyReLU(0.2) after every layer but the last, batch norm on all but the first and last

One training step is the example's: G makes one batch of fakes; D descends
BCE(D(real), 1) + BCE(D(fake.detach()), 0); G descends the non-saturating
BCE(D(fake), 1); Adam with lr 2e-4, betas (0.5, 0.999) for both.
"""
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

import minigan as mg
from minigan import nn as mnn
from minigan import functional as F
from minigan.optim import Adam

LATENT = 100
WIDTH = 64  # ngf = ndf
CHANNELS = 3


@dataclass(frozen=True)
class ConvLayer:
    """One conv layer of DCGAN: in/out channels, 4x4 kernel, stride, padding, input size."""
    name: str
    transposed: bool
    cin: int
    cout: int
    stride: int
    padding: int
    in_size: int

    @property
    def out_size(self):
        n, s, p = self.in_size, self.stride, self.padding
        return (n - 1) * s - 2 * p + 4 if self.transposed else (n + 2 * p - 4) // s + 1

    def flops(self):
        """Multiply-adds x 2 of the forward; the two backward products cost the same each."""
        pixels = self.in_size ** 2 if self.transposed else self.out_size ** 2
        return 2 * pixels * self.cin * self.cout * 16


def layers(image_size, width=WIDTH):
    """The conv layers of G and D for ``image_size`` (32 or 64), G's first; ``width`` = ngf = ndf."""
    n = int(np.log2(image_size)) - 2  # stride-2 layers per network: 4 for 64x64
    widths = [width * 2 ** i for i in range(n)]  # 64, 128, 256, 512
    g = [ConvLayer("G1", True, LATENT, widths[-1], 1, 0, 1)]
    size = 4
    for i in range(n - 1, 0, -1):
        g.append(ConvLayer(f"G{len(g) + 1}", True, widths[i], widths[i - 1], 2, 1, size))
        size *= 2
    g.append(ConvLayer(f"G{len(g) + 1}", True, widths[0], CHANNELS, 2, 1, size))
    d, size, cin = [], image_size, CHANNELS
    for w in widths:
        d.append(ConvLayer(f"D{len(d) + 1}", False, cin, w, 2, 1, size))
        cin, size = w, size // 2
    d.append(ConvLayer(f"D{len(d) + 1}", False, cin, 1, 1, 0, size))
    return g + d


def _networks(nn, image_size, width):
    """G and D as ``nn.Sequential``; ``nn`` is ``minigan.nn`` or ``torch.nn`` (same names)."""
    g, d = [], []
    for layer in layers(image_size, width):
        conv = (nn.ConvTranspose2d if layer.transposed else nn.Conv2d)(
            layer.cin, layer.cout, 4, layer.stride, layer.padding, bias=False)
        if layer.transposed and layer.cout == CHANNELS:  # G's last layer: the image in [-1, 1]
            g += [conv, nn.Tanh()]
        elif layer.transposed:
            g += [conv, nn.BatchNorm2d(layer.cout), nn.ReLU()]
        elif layer.cout == 1:  # D's last layer gives the logit
            d += [conv]
        elif layer.cin == CHANNELS:  # D's first layer: no batch norm on the image
            d += [conv, nn.LeakyReLU(0.2)]
        else:
            d += [conv, nn.BatchNorm2d(layer.cout), nn.LeakyReLU(0.2)]
    return nn.Sequential(*g), nn.Sequential(*d)


class Twins:
    """The same DCGAN in minigan and torch: same weights, same batches, same steps, on ``device``.

    ``width`` (ngf = ndf, 64 in the paper) narrows every layer: at 2 channels and one
    image, a step's arithmetic is next to nothing and what is timed is each framework's
    own work per op (its Python, dispatch and graph bookkeeping).
    """

    def __init__(self, image_size=64, batch_size=64, seed=0, device="cpu", width=WIDTH):
        mg.manual_seed(seed)
        self.device = device
        self.mg_g, self.mg_d = _networks(mnn, image_size, width)
        self.th_g, self.th_d = _networks(torch.nn, image_size, width)
        for mine, theirs in ((self.mg_g, self.th_g), (self.mg_d, self.th_d)):
            theirs.load_state_dict({k: torch.from_numpy(np.array(v.numpy()))
                                    for k, v in mine.state_dict().items()})
            mine.to(device)
            theirs.to(device)
        rng = np.random.default_rng(seed)
        self.real = rng.uniform(-1, 1, (batch_size, CHANNELS, image_size, image_size)).astype(np.float32)
        self.z = rng.standard_normal((batch_size, LATENT, 1, 1)).astype(np.float32)
        self.mg_batch = mg.tensor(self.real, device=device), mg.tensor(self.z, device=device)
        self.th_batch = torch.from_numpy(self.real).to(device), torch.from_numpy(self.z).to(device)
        adam = dict(lr=2e-4, betas=(0.5, 0.999))
        self.mg_opt = Adam(self.mg_g.parameters(), **adam), Adam(self.mg_d.parameters(), **adam)
        self.th_opt = (torch.optim.Adam(self.th_g.parameters(), **adam),
                       torch.optim.Adam(self.th_d.parameters(), **adam))

    def minigan_step(self):
        return _train_step(self.mg_g, self.mg_d, *self.mg_opt, *self.mg_batch,
                           F.binary_cross_entropy_with_logits, partial(mg.ones, device=self.device),
                           partial(mg.zeros, device=self.device))

    def torch_step(self):
        return _train_step(self.th_g, self.th_d, *self.th_opt, *self.th_batch,
                           torch.nn.functional.binary_cross_entropy_with_logits,
                           partial(torch.ones, device=self.device), partial(torch.zeros, device=self.device))


def _train_step(generator, discriminator, opt_g, opt_d, real, z, bce, ones, zeros):
    """One DCGAN step, written once for both frameworks (their names agree)."""
    n = real.shape[0]
    fake = generator(z)

    d_loss = (bce(discriminator(real).reshape(n), ones(n))
              + bce(discriminator(fake.detach()).reshape(n), zeros(n)))
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()

    discriminator.requires_grad_(False)  # G's step differentiates through D, not into it
    g_loss = bce(discriminator(fake).reshape(n), ones(n))
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    discriminator.requires_grad_(True)
    return d_loss.item(), g_loss.item()
