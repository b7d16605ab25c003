"""SRResNet and SRGAN in plain torch: the twin of ``minigan/models/srgan.py`` (same module
tree, so the ``state_dict`` keys are minigan's), its VGG-19 content loss on the VGG-19 twin
(``tests/twins/vgg19_torch.py``), and its two training steps.

``tests/test_srgan.py`` loads minigan's weights into these and compares forward values,
gradients and the parameters after Adam.
"""
import math

import torch
import torch.nn as tnn
import torch.nn.functional as TF


class ResidualBlock(tnn.Module):
    def __init__(self, width):
        super().__init__()
        self.conv1 = tnn.Conv2d(width, width, 3, padding=1)
        self.bn1 = tnn.BatchNorm2d(width)
        self.act = tnn.PReLU(width)
        self.conv2 = tnn.Conv2d(width, width, 3, padding=1)
        self.bn2 = tnn.BatchNorm2d(width)

    def forward(self, x):
        return x + self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))


class SRResNet(tnn.Module):
    def __init__(self, channels=3, width=32, blocks=4, scale=4):
        super().__init__()
        self.head = tnn.Sequential(tnn.Conv2d(channels, width, 9, padding=4), tnn.PReLU(width))
        self.blocks = tnn.Sequential(*[ResidualBlock(width) for _ in range(blocks)])
        self.body = tnn.Sequential(tnn.Conv2d(width, width, 3, padding=1), tnn.BatchNorm2d(width))
        up = []
        for _ in range(int(math.log2(scale))):
            up += [tnn.Conv2d(width, 4 * width, 3, padding=1), tnn.PixelShuffle(2), tnn.PReLU(width)]
        self.upsample = tnn.Sequential(*up)
        self.tail = tnn.Conv2d(width, channels, 9, padding=4)

    def forward(self, x):
        h = self.head(x)
        return self.tail(self.upsample(h + self.body(self.blocks(h))))


class Discriminator(tnn.Module):
    def __init__(self, channels=3, image_size=32, ndf=16, dense=256):
        super().__init__()
        layers, width = [tnn.Conv2d(channels, ndf, 3, padding=1), tnn.LeakyReLU(0.2)], ndf
        for stride in (2, 1, 2, 1, 2, 1, 2):
            out = width * 2 if stride == 1 else width
            layers += [tnn.Conv2d(width, out, 3, stride, 1), tnn.BatchNorm2d(out), tnn.LeakyReLU(0.2)]
            width = out
        self.features = tnn.Sequential(*layers)
        side = image_size // 16
        self.classifier = tnn.Sequential(tnn.Linear(width * side * side, dense), tnn.LeakyReLU(0.2),
                                         tnn.Linear(dense, 1))

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1)).flatten()


class ContentLoss:
    def __init__(self, kind="vgg54", vgg=None, rescale=1 / 12.75):
        self.kind, self.vgg, self.rescale = kind, vgg, rescale

    def __call__(self, fake, target):
        if self.kind == "mse":
            return TF.mse_loss(fake, target)
        layer = self.vgg.last
        with torch.no_grad():
            wanted = self.vgg(target, [layer])[layer] * self.rescale
        return TF.mse_loss(self.vgg(fake, [layer])[layer] * self.rescale, wanted)


def srresnet_step(generator, opt, lr_images, hr_images):
    loss = TF.mse_loss(generator(lr_images), hr_images)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return {"mse": loss.item()}


def srgan_step(generator, discriminator, opt_g, opt_d, lr_images, hr_images, content, adversarial_weight=1e-3):
    """D on I_HR and G(I_LR).detach(); then G on content + 1e-3 (-log D(G(I_LR))) through the updated D."""
    fake = generator(lr_images)
    real_logits, fake_logits = discriminator(hr_images), discriminator(fake.detach())
    d_loss = (TF.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
              + TF.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    for p in discriminator.parameters():
        p.requires_grad_(False)
    logits = discriminator(fake)
    adversarial = TF.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    content_loss = content(fake, hr_images)
    g_loss = content_loss + adversarial_weight * adversarial
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    for p in discriminator.parameters():
        p.requires_grad_(True)
    return {"d_loss": d_loss.item(), "g_loss": g_loss.item(), "content": content_loss.item(),
            "adversarial": adversarial.item(), "mse": TF.mse_loss(fake.detach(), hr_images).item()}
