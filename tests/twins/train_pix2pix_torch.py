"""pix2pix in plain torch: the twin of ``minigan/models/patchgan.py``, ``minigan/nn/unet.py``
and ``minigan/models/pix2pix.py``, and of the recipe of ``examples/pix2pix.py``, written
after pytorch-CycleGAN-and-pix2pix's ``networks.py`` and ``pix2pix_model.py`` (their
layer order, so the ``state_dict`` keys are minigan's).

    python tests/twins/train_pix2pix_torch.py --steps 1000 --out runs/pix2pix-torch

The same recipe as the example: the same networks, the paper's init, Adam 2e-4 with
betas (0.5, 0.999), the same batches (drawn from the same NumPy seed, in the same
order), both test modes (eval, then the paper's: dropout on, each test batch's
statistics), and the same scores (``minigan.eval.translation``) on the test split, so the two runs'
``metrics.json`` compare directly. Only the random numbers of the init and of dropout
differ: torch's generator is not minigan's.

``tests/test_patchgan.py``, ``tests/test_unet.py`` and ``tests/test_pix2pix.py`` import
the networks and the step from here.
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn as tnn


def norm_layer(kind, channels):
    if kind == "batch":
        return tnn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if kind == "instance":
        return tnn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return tnn.Identity()


class NLayerDiscriminator(tnn.Module):
    """The networks.py PatchGAN, with ``use_bias = norm != 'batch'``."""

    def __init__(self, input_nc, ndf=64, n_layers=3, norm="batch"):
        super().__init__()
        use_bias = norm != "batch"
        kw, padw = 4, 1
        sequence = [tnn.Conv2d(input_nc, ndf, kernel_size=kw, stride=2, padding=padw), tnn.LeakyReLU(0.2, True)]
        nf_mult = 1
        for n in range(1, n_layers):
            nf_mult_prev, nf_mult = nf_mult, min(2 ** n, 8)
            sequence += [tnn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, kw, 2, padw, bias=use_bias),
                         norm_layer(norm, ndf * nf_mult), tnn.LeakyReLU(0.2, True)]
        nf_mult_prev, nf_mult = nf_mult, min(2 ** n_layers, 8)
        sequence += [tnn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, kw, 1, padw, bias=use_bias),
                     norm_layer(norm, ndf * nf_mult), tnn.LeakyReLU(0.2, True)]
        sequence += [tnn.Conv2d(ndf * nf_mult, 1, kw, 1, padw)]
        self.model = tnn.Sequential(*sequence)

    def forward(self, input):
        return self.model(input)


class PixelDiscriminator(tnn.Module):
    """The networks.py 1x1 PatchGAN, with a bias on the logit layer."""

    def __init__(self, input_nc, ndf=64, norm="batch"):
        super().__init__()
        self.model = tnn.Sequential(
            tnn.Conv2d(input_nc, ndf, 1, 1, 0), tnn.LeakyReLU(0.2, True),
            tnn.Conv2d(ndf, ndf * 2, 1, 1, 0, bias=norm != "batch"), norm_layer(norm, ndf * 2),
            tnn.LeakyReLU(0.2, True),
            tnn.Conv2d(ndf * 2, 1, 1, 1, 0))

    def forward(self, input):
        return self.model(input)


class ImageDiscriminator(tnn.Module):
    """Stride-2 4x4 convs down to 4 x 4, then a 4x4 conv without padding: one logit."""

    def __init__(self, input_nc, image_size=32, ndf=64, norm="batch"):
        super().__init__()
        sequence = [tnn.Conv2d(input_nc, ndf, 4, 2, 1), tnn.LeakyReLU(0.2, True)]
        size, nf_mult = image_size // 2, 1
        n = 1
        while size > 4:
            nf_mult_prev, nf_mult = nf_mult, min(2 ** n, 8)
            sequence += [tnn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, 4, 2, 1, bias=norm != "batch"),
                         norm_layer(norm, ndf * nf_mult), tnn.LeakyReLU(0.2, True)]
            size, n = size // 2, n + 1
        sequence += [tnn.Conv2d(ndf * nf_mult, 1, 4, 1, 0)]
        self.model = tnn.Sequential(*sequence)

    def forward(self, input):
        return self.model(input)


def patch_discriminator(input_nc, patch=70, ndf=64, norm="batch", image_size=32):
    if patch == 1:
        return PixelDiscriminator(input_nc, ndf, norm)
    if patch == "image":
        return ImageDiscriminator(input_nc, image_size, ndf, norm)
    return NLayerDiscriminator(input_nc, ndf, {16: 1, 34: 2, 70: 3}[patch], norm)


class UnetSkipConnectionBlock(tnn.Module):
    """The networks.py block, with a bias wherever no batch norm follows, and ``skip``."""

    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 norm="batch", use_dropout=False, skip=True):
        super().__init__()
        self.outermost, self.skip = outermost, skip
        use_bias = norm != "batch"
        if input_nc is None:
            input_nc = outer_nc
        downconv = tnn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1,
                              bias=use_bias or outermost or innermost)
        downrelu = tnn.LeakyReLU(0.2, True)
        uprelu = tnn.ReLU(True)
        up_nc = inner_nc * 2 if skip and not innermost else inner_nc
        if outermost:
            upconv = tnn.ConvTranspose2d(up_nc, outer_nc, kernel_size=4, stride=2, padding=1)
            model = [downconv, submodule, uprelu, upconv, tnn.Tanh()]
        elif innermost:
            upconv = tnn.ConvTranspose2d(up_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            model = [downrelu, downconv, uprelu, upconv, norm_layer(norm, outer_nc)]
        else:
            upconv = tnn.ConvTranspose2d(up_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            model = [downrelu, downconv, norm_layer(norm, inner_nc), submodule,
                     uprelu, upconv, norm_layer(norm, outer_nc)]
            if use_dropout:
                model += [tnn.Dropout(0.5)]
        self.model = tnn.Sequential(*model)

    def forward(self, x):
        if self.outermost or not self.skip:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(tnn.Module):
    """The networks.py U-Net; dropout in the three blocks after the innermost one."""

    def __init__(self, input_nc, output_nc, num_downs, ngf=64, norm="batch", use_dropout=True, skip=True):
        super().__init__()
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, norm=norm, innermost=True, skip=skip)
        for i in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, norm=norm,
                                            use_dropout=use_dropout and i < 3, skip=skip)
        for outer in (4, 2, 1):
            depth = num_downs - 5 + {4: 1, 2: 2, 1: 3}[outer]
            block = UnetSkipConnectionBlock(ngf * outer, ngf * outer * 2, submodule=block, norm=norm,
                                            use_dropout=use_dropout and depth <= 3, skip=skip)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True,
                                             norm=norm, skip=skip)

    def forward(self, input):
        return self.model(input)


def set_requires_grad(net, requires_grad):
    for p in net.parameters():
        p.requires_grad = requires_grad


def train_step(netG, netD, optimizer_G, optimizer_D, real_A, real_B, loss="l1+gan", lambda_L1=100.0):
    """The reference's ``Pix2PixModel.optimize_parameters``: D on the fake pair (detached)
    then the real pair, its loss halved; then G on the GAN loss through D and/or the L1."""
    bce = tnn.BCEWithLogitsLoss()
    fake_B = netG(real_A)
    losses = {}
    if "gan" in loss:
        set_requires_grad(netD, True)
        optimizer_D.zero_grad()
        pred_fake = netD(torch.cat((real_A, fake_B), 1).detach())
        loss_D_fake = bce(pred_fake, torch.zeros_like(pred_fake))
        pred_real = netD(torch.cat((real_A, real_B), 1))
        loss_D_real = bce(pred_real, torch.ones_like(pred_real))
        loss_D = (loss_D_fake + loss_D_real) * 0.5
        loss_D.backward()
        optimizer_D.step()
        set_requires_grad(netD, False)
        losses["d_loss"] = loss_D.item()
    optimizer_G.zero_grad()
    loss_G = 0
    if "gan" in loss:
        pred_fake = netD(torch.cat((real_A, fake_B), 1))
        loss_G_GAN = bce(pred_fake, torch.ones_like(pred_fake))
        loss_G = loss_G + loss_G_GAN
        losses["g_gan"] = loss_G_GAN.item()
    if "l1" in loss:
        loss_G_L1 = torch.nn.functional.l1_loss(fake_B, real_B) * lambda_L1
        loss_G = loss_G + loss_G_L1
        losses["g_l1"] = loss_G_L1.item()
    loss_G.backward()
    optimizer_G.step()
    if netD is not None:
        set_requires_grad(netD, True)
    losses["g_loss"] = loss_G.item()
    return losses


def init_weights(net, init_gain=0.02):
    """networks.py's ``init_weights(net, 'normal')``."""
    def init_func(m):
        classname = m.__class__.__name__
        if hasattr(m, "weight") and (classname.find("Conv") != -1 or classname.find("Linear") != -1):
            tnn.init.normal_(m.weight.data, 0.0, init_gain)
            if getattr(m, "bias", None) is not None:
                tnn.init.constant_(m.bias.data, 0.0)
        elif classname.find("BatchNorm2d") != -1:
            tnn.init.normal_(m.weight.data, 1.0, init_gain)
            tnn.init.constant_(m.bias.data, 0.0)
    net.apply(init_func)
    return net


# ---------------------------------------------------------------- the recipe of examples/pix2pix.py


def main(argv=None):
    from minigan.data import load_edges2fashion
    from minigan.eval import load_classifier, translation_scores
    from minigan.utils import save_image

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--generator", choices=["unet", "encoder-decoder"], default="unet")
    p.add_argument("--patch", default="70")
    p.add_argument("--loss", choices=["l1", "gan", "l1+gan"], default="l1+gan")
    p.add_argument("--ngf", type=int, default=16)
    p.add_argument("--ndf", type=int, default=16)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=os.path.join("runs", "pix2pix-torch"))
    args = p.parse_args(argv)
    patch = args.patch if args.patch == "image" else int(args.patch)
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)

    torch.manual_seed(args.seed)
    data_rng = np.random.default_rng(args.seed)
    train = load_edges2fashion("train")
    netG = init_weights(UnetGenerator(1, 1, 5, args.ngf, skip=args.generator == "unet"))
    netD = init_weights(patch_discriminator(2, patch, args.ndf)) if "gan" in args.loss else None
    adam = dict(lr=2e-4, betas=(0.5, 0.999))
    optimizer_G = torch.optim.Adam(netG.parameters(), **adam)
    optimizer_D = torch.optim.Adam(netD.parameters(), **adam) if netD is not None else None

    started = time.time()
    for step in range(args.steps):
        idx = data_rng.choice(len(train.images), args.batch_size, replace=False)
        losses = train_step(netG, netD, optimizer_G, optimizer_D, torch.from_numpy(train.edges[idx]),
                            torch.from_numpy(train.images[idx]), args.loss)
        if (step + 1) % 250 == 0:
            print(f"step {step + 1}: " + " ".join(f"{k} {v:.3f}" for k, v in losses.items())
                  + f" ({time.time() - started:.0f} s)", flush=True)
    train_time = time.time() - started

    test = load_edges2fashion("test")
    classifier = load_classifier("fashion-mnist")

    def translate():
        with torch.no_grad():
            return np.concatenate([netG(torch.from_numpy(test.edges[i:i + args.batch_size])).numpy()
                                   for i in range(0, len(test.edges), args.batch_size)]).astype(np.float32)
    netG.eval()  # the example's default: no dropout, running statistics; first, before train mode moves them
    outputs = translate()
    metrics = translation_scores(classifier, outputs, test.images, test.labels)
    netG.train()  # the paper's test time: dropout and the test batch's statistics
    metrics["test_mode_train"] = translation_scores(classifier, translate(), test.images, test.labels)
    grid = np.stack([test.edges[:16], outputs[:16], test.images[:16]], 1).reshape(-1, 1, 32, 32)
    save_image(grid, os.path.join(args.out, "samples.png"), nrow=6, pad_value=0.5)
    metrics = {"framework": "torch", "steps": args.steps, "batch_size": args.batch_size, "seed": args.seed,
               "generator": args.generator, "loss": args.loss, "patch": patch, "ngf": args.ngf, "ndf": args.ndf,
               "train_time_s": round(train_time, 1), "wall_time_s": round(time.time() - started, 1), **metrics}
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    print({k: metrics[k] for k in ("l1", "accuracy", "classifier_fd", "edge_energy_ratio", "train_time_s")})
    return metrics


if __name__ == "__main__":
    main()
