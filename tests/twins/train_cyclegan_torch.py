"""CycleGAN in plain torch: the twin of ``minigan/models/cyclegan.py`` and of the recipe of
``examples/cyclegan.py``, written after the reference implementation
(junyanz/pytorch-CycleGAN-and-pix2pix: ``ResnetGenerator``, ``ResnetBlock``, ``ImagePool``,
``CycleGANModel.optimize_parameters``, the 'linear' lr policy).

    python tests/twins/train_cyclegan_torch.py --steps 400 --out runs/cyclegan-torch-sneakers2boots

The networks have the same ``state_dict`` keys as minigan's, so either loads the
other's weights; the D is pix2pix's twin (``train_pix2pix_torch.NLayerDiscriminator``).
The recipe is the example's: the same sizes, init, Adam, lr schedule, pools of 50 and
batches (drawn from the same NumPy seed, in the same order); the random numbers of
the init and of the pools are torch's and Python's. The translations are scored by
the same functions (``minigan.eval``), so the two runs' ``metrics.json`` compare
directly. ``tests/test_cyclegan.py`` imports the generator, the pool and the step.
"""
import argparse
import json
import os
import random
import time

import numpy as np
import torch
import torch.nn as tnn
import torch.nn.functional as TF


class ResnetBlock(tnn.Module):
    def __init__(self, dim):
        super().__init__()
        self.block = tnn.Sequential(
            tnn.ReflectionPad2d(1), tnn.Conv2d(dim, dim, 3, bias=True), tnn.InstanceNorm2d(dim), tnn.ReLU(True),
            tnn.ReflectionPad2d(1), tnn.Conv2d(dim, dim, 3, bias=True), tnn.InstanceNorm2d(dim))

    def forward(self, x):
        return x + self.block(x)


class ResnetGenerator(tnn.Module):
    """The reference's ResnetGenerator with instance norm (no affine: ``use_bias`` is True) and
    reflection padding, no dropout."""

    def __init__(self, input_nc=3, output_nc=3, ngf=64, n_blocks=9):
        super().__init__()
        model = [tnn.ReflectionPad2d(3), tnn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=True),
                 tnn.InstanceNorm2d(ngf), tnn.ReLU(True)]
        n_downsampling = 2
        for i in range(n_downsampling):
            mult = 2 ** i
            model += [tnn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=True),
                      tnn.InstanceNorm2d(ngf * mult * 2), tnn.ReLU(True)]
        mult = 2 ** n_downsampling
        for i in range(n_blocks):
            model += [ResnetBlock(ngf * mult)]
        for i in range(n_downsampling):
            mult = 2 ** (n_downsampling - i)
            model += [tnn.ConvTranspose2d(ngf * mult, int(ngf * mult / 2), kernel_size=3, stride=2, padding=1,
                                          output_padding=1, bias=True),
                      tnn.InstanceNorm2d(int(ngf * mult / 2)), tnn.ReLU(True)]
        model += [tnn.ReflectionPad2d(3), tnn.Conv2d(ngf, output_nc, kernel_size=7, padding=0), tnn.Tanh()]
        self.net = tnn.Sequential(*model)

    def forward(self, x):
        return self.net(x)


class ImagePool:
    """The reference's ImagePool, with its random draws made by ``uniform()`` and
    ``randint(low, high)`` (inclusive) so a test can feed it the draws minigan's pool made."""

    def __init__(self, pool_size, uniform=random.random, randint=random.randint):
        self.pool_size, self.num_imgs, self.images = pool_size, 0, []
        self.uniform, self.randint = uniform, randint

    def query(self, images):
        if self.pool_size == 0:
            return images
        return_images = []
        for image in images:
            image = torch.unsqueeze(image.detach(), 0)
            if self.num_imgs < self.pool_size:
                self.num_imgs = self.num_imgs + 1
                self.images.append(image)
                return_images.append(image)
            else:
                p = self.uniform()
                if p > 0.5:
                    random_id = self.randint(0, self.pool_size - 1)
                    tmp = self.images[random_id].clone()
                    self.images[random_id] = image
                    return_images.append(tmp)
                else:
                    return_images.append(image)
        return torch.cat(return_images, 0)


def _gan_loss(prediction, target_is_real):
    """The reference's GANLoss('lsgan'): MSE against a tensor of ones or zeros."""
    target = torch.ones_like(prediction) if target_is_real else torch.zeros_like(prediction)
    return TF.mse_loss(prediction, target)


def train_step(netG_A, netG_B, netD_A, netD_B, optimizer_G, optimizer_D, real_A, real_B,
               fake_A_pool=None, fake_B_pool=None, lambda_A=10.0, lambda_B=10.0, lambda_idt=0.5, d_penalty=None):
    """``CycleGANModel.optimize_parameters``: G_A: A -> B is judged by D_A, G_B: B -> A by D_B
    (the reference's naming; minigan's G, F, D_Y, D_X). ``d_penalty(netD, real, fake, which)``
    ('x' or 'y'), if given, is added to each D's loss (TimbreTron's gradient penalty).
    Returns the losses."""
    fake_B = netG_A(real_A)
    rec_A = netG_B(fake_B)
    fake_A = netG_B(real_B)
    rec_B = netG_A(fake_A)

    for net in (netD_A, netD_B):
        for p in net.parameters():
            p.requires_grad_(False)
    optimizer_G.zero_grad()
    if lambda_idt > 0:
        loss_idt_A = TF.l1_loss(netG_A(real_B), real_B) * lambda_B * lambda_idt
        loss_idt_B = TF.l1_loss(netG_B(real_A), real_A) * lambda_A * lambda_idt
    else:
        loss_idt_A = loss_idt_B = 0
    loss_G_A = _gan_loss(netD_A(fake_B), True)
    loss_G_B = _gan_loss(netD_B(fake_A), True)
    loss_cycle_A = TF.l1_loss(rec_A, real_A) * lambda_A
    loss_cycle_B = TF.l1_loss(rec_B, real_B) * lambda_B
    loss_G = loss_G_A + loss_G_B + loss_cycle_A + loss_cycle_B + loss_idt_A + loss_idt_B
    loss_G.backward()
    optimizer_G.step()
    for net in (netD_A, netD_B):
        for p in net.parameters():
            p.requires_grad_(True)

    optimizer_D.zero_grad()
    losses = {}
    for name, netD, real, fake, pool in (("d_y", netD_A, real_B, fake_B, fake_B_pool),
                                         ("d_x", netD_B, real_A, fake_A, fake_A_pool)):
        fake = pool.query(fake) if pool is not None else fake
        loss_D = (_gan_loss(netD(real), True) + _gan_loss(netD(fake.detach()), False)) * 0.5
        losses[name] = loss_D.item()
        if d_penalty is not None:
            penalty = d_penalty(netD, real, fake.detach(), name[-1])
            loss_D = loss_D + penalty
            losses["d_penalty"] = losses.get("d_penalty", 0.0) + penalty.item()
        loss_D.backward()
    optimizer_D.step()
    return {**losses, "g_gan": loss_G_A.item(), "f_gan": loss_G_B.item(),
            "cycle": (loss_cycle_A / lambda_A + loss_cycle_B / lambda_B).item()}


# ---------------------------------------------------------------- the recipe of examples/cyclegan.py


def main(argv=None):
    from minigan.data import load_sneakers2boots
    from minigan.eval import classifier_fd, load_classifier
    from minigan.utils import save_image
    from train_pix2pix_torch import NLayerDiscriminator, init_weights

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--blocks", type=int, default=3)
    p.add_argument("--d-width", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=os.path.join("runs", "cyclegan-torch-sneakers2boots"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    data_rng = np.random.default_rng(args.seed)
    train = load_sneakers2boots("train")
    netG_A, netG_B = (init_weights(ResnetGenerator(1, 1, args.width, args.blocks)) for _ in range(2))
    netD_A, netD_B = (init_weights(NLayerDiscriminator(1, args.d_width, 3, "instance")) for _ in range(2))
    adam = dict(lr=2e-4, betas=(0.5, 0.999))
    optimizer_G = torch.optim.Adam([*netG_A.parameters(), *netG_B.parameters()], **adam)
    optimizer_D = torch.optim.Adam([*netD_A.parameters(), *netD_B.parameters()], **adam)
    n_epochs = args.steps - args.steps // 2  # held, then n_epochs_decay = steps // 2 decaying
    rule = lambda epoch: 1.0 - max(0, epoch + 1 - n_epochs) / float(args.steps // 2 + 1)  # noqa: E731
    schedulers = [torch.optim.lr_scheduler.LambdaLR(o, rule) for o in (optimizer_G, optimizer_D)]
    fake_A_pool, fake_B_pool = ImagePool(50), ImagePool(50)

    started = time.time()
    for step in range(args.steps):
        real_A = torch.from_numpy(train.x[data_rng.choice(len(train.x), args.batch_size, replace=False)])
        real_B = torch.from_numpy(train.y[data_rng.choice(len(train.y), args.batch_size, replace=False)])
        losses = train_step(netG_A, netG_B, netD_A, netD_B, optimizer_G, optimizer_D, real_A, real_B,
                            fake_A_pool, fake_B_pool)
        for s in schedulers:
            s.step()
        if (step + 1) % 100 == 0:
            print(f"step {step + 1}: " + " ".join(f"{k} {v:.3f}" for k, v in losses.items())
                  + f" ({time.time() - started:.0f} s)", flush=True)
    train_time = time.time() - started

    test, classifier = load_sneakers2boots("test"), load_classifier("fashion-mnist")

    def translate(net, images):
        with torch.no_grad():
            return np.concatenate([net(torch.from_numpy(images[i:i + 500])).numpy()
                                   for i in range(0, len(images), 500)]).astype(np.float32)

    metrics, rows = {}, []
    for name, gen, back, source, target, target_class in (
            ("sneaker_to_boot", netG_A, netG_B, test.x, test.y, test.y_class),
            ("boot_to_sneaker", netG_B, netG_A, test.y, test.x, test.x_class)):
        out = translate(gen, source)
        rec = translate(back, out)
        metrics[f"{name}_target_share"] = float((classifier.predict(out) == target_class).mean())
        metrics[f"{name}_cycle_l1"] = float(np.abs(rec - source).mean())
        metrics[f"{name}_classifier_fd"] = classifier_fd(classifier, target, out)
        rows.append(np.stack([source[:8], out[:8], rec[:8]]))
    metrics["target_share"] = (metrics["sneaker_to_boot_target_share"] + metrics["boot_to_sneaker_target_share"]) / 2
    metrics["cycle_l1"] = (metrics["sneaker_to_boot_cycle_l1"] + metrics["boot_to_sneaker_cycle_l1"]) / 2
    grid = np.concatenate(rows, axis=1)
    save_image(grid.reshape(-1, 1, 32, 32), os.path.join(args.out, "samples.png"), nrow=16)
    metrics = {"framework": "torch", "steps": args.steps, "batch_size": args.batch_size, "seed": args.seed,
               "width": args.width, "blocks": args.blocks, "d_width": args.d_width,
               "train_time_s": round(train_time, 1), "wall_time_s": round(time.time() - started, 1), **metrics}
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    print({k: metrics[k] for k in ("target_share", "cycle_l1", "train_time_s")})
    return metrics


if __name__ == "__main__":
    main()
