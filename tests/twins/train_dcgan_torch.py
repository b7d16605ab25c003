"""DCGAN in plain torch: the twin of ``minigan/models/dcgan.py`` and of the recipe of
``examples/dcgan.py``, to check that minigan trains the model as well as torch does.

    python tests/twins/train_dcgan_torch.py --data fashion-mnist --steps 2000 --width 32 \\
        --out runs/dcgan-torch-fashion-mnist

The same recipe as the example: the same networks (``state_dict`` keys equal to
minigan's, so either loads the other's weights), the paper's init, Adam 2e-4 with
betas (0.5, 0.999), the same batches (drawn from the same NumPy seed, in the same
order), one batch of fakes for both players' steps, samples drawn with G in eval
mode. Only the random numbers of the init and of z differ: torch's generator is not
minigan's. The samples are scored by the same scorer (``minigan.eval``), so the two
runs' ``metrics.json`` compare directly. ``tests/test_dcgan.py`` imports the
networks and the step from here.
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn as tnn
import torch.nn.functional as TF

SIZES = {16: 2, 32: 3, 64: 4}  # stride-2 layers per network


def _norm(kind, channels):
    return {"batch": lambda: tnn.BatchNorm2d(channels), "layer": lambda: tnn.GroupNorm(1, channels),
            "instance": lambda: tnn.InstanceNorm2d(channels, affine=True)}[kind]()


class Generator(tnn.Module):
    def __init__(self, latent_dim=100, channels=1, image_size=32, width=64):
        super().__init__()
        widths = [width * 2 ** i for i in range(SIZES[image_size])][::-1]
        layers = [tnn.ConvTranspose2d(latent_dim, widths[0], 4, 1, 0, bias=False), tnn.BatchNorm2d(widths[0]),
                  tnn.ReLU()]
        for cin, cout in zip(widths, widths[1:]):
            layers += [tnn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), tnn.BatchNorm2d(cout), tnn.ReLU()]
        layers += [tnn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), tnn.Tanh()]
        self.net = tnn.Sequential(*layers)
        self.latent_dim = latent_dim

    def forward(self, z):
        return self.net(z.reshape(z.shape[0], -1, 1, 1))


class Discriminator(tnn.Module):
    def __init__(self, channels=1, image_size=32, width=64, norm="batch"):
        super().__init__()
        widths = [width * 2 ** i for i in range(SIZES[image_size])]
        layers = [tnn.Conv2d(channels, widths[0], 4, 2, 1), tnn.LeakyReLU(0.2)]
        for cin, cout in zip(widths, widths[1:]):
            if norm is None:
                layers += [tnn.Conv2d(cin, cout, 4, 2, 1), tnn.LeakyReLU(0.2)]
            else:
                layers += [tnn.Conv2d(cin, cout, 4, 2, 1, bias=False), _norm(norm, cout), tnn.LeakyReLU(0.2)]
        layers.append(tnn.Conv2d(widths[-1], 1, 4, 1, 0))
        self.net = tnn.Sequential(*layers)

    def forward(self, x):
        return self.net(x).flatten()


def init_weights(m):
    """pytorch/examples dcgan's weights_init: conv N(0, 0.02), batch norm scale N(1, 0.02), biases 0."""
    if isinstance(m, (tnn.Conv2d, tnn.ConvTranspose2d)):
        tnn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, tnn.BatchNorm2d):
        tnn.init.normal_(m.weight, 1.0, 0.02)
    else:
        return
    if m.bias is not None:
        tnn.init.zeros_(m.bias)


def train_step(G, D, opt_g, opt_d, real, z):
    """D on the real batch and G(z) detached, then G's non-saturating loss on the same G(z)."""
    fake = G(z)
    lr, lf = D(real), D(fake.detach())
    d_loss = TF.binary_cross_entropy_with_logits(lr, torch.ones_like(lr)) + \
        TF.binary_cross_entropy_with_logits(lf, torch.zeros_like(lf))
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    for p in D.parameters():
        p.requires_grad_(False)
    lg = D(fake)
    g_loss = TF.binary_cross_entropy_with_logits(lg, torch.ones_like(lg))
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    for p in D.parameters():
        p.requires_grad_(True)
    return d_loss.item(), g_loss.item()


# ---------------------------------------------------------------- the recipe of examples/dcgan.py


def main(argv=None):
    from minigan.data import load_digits, load_fashion_mnist
    from minigan.eval import load_classifier, score_samples
    from minigan.utils import save_image

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", choices=["digits", "fashion-mnist"], default="digits")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--latent-dim", type=int, default=100)
    p.add_argument("--num-samples", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = args.out or os.path.join("runs", f"dcgan-torch-{args.data}")
    os.makedirs(out, exist_ok=True)

    torch.manual_seed(args.seed)
    data_rng = np.random.default_rng(args.seed)
    if args.data == "digits":
        images, _ = load_digits(size=32, split="train", seed=args.seed)
        real_test = load_digits(size=32, split="test", seed=args.seed)[0]
    else:
        images, _ = load_fashion_mnist("train", size=32)
        real_test = load_fashion_mnist("test", size=32)[0]
    G = Generator(args.latent_dim, 1, 32, args.width)
    D = Discriminator(1, 32, args.width)
    G.apply(init_weights)
    D.apply(init_weights)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))

    started = time.time()
    for step in range(args.steps):
        idx = data_rng.choice(len(images), args.batch_size, replace=False)
        z = torch.randn(args.batch_size, args.latent_dim)
        d_loss, g_loss = train_step(G, D, opt_g, opt_d, torch.from_numpy(images[idx]), z)
        if (step + 1) % 250 == 0:
            print(f"step {step + 1}: d_loss {d_loss:.3f} g_loss {g_loss:.3f} ({time.time() - started:.0f} s)",
                  flush=True)
    train_time = time.time() - started

    G.eval()
    with torch.no_grad():
        samples = G(torch.randn(args.num_samples, args.latent_dim)).numpy().astype(np.float32)
    np.savez_compressed(os.path.join(out, "samples.npz"), x=samples)
    save_image(samples[:64], os.path.join(out, "samples.png"), nrow=8, value_range=(-1, 1))
    metrics = score_samples(load_classifier(args.data), samples, real=real_test)
    metrics = {"framework": "torch", "data": args.data, "steps": args.steps, "batch_size": args.batch_size,
               "width": args.width, "seed": args.seed, "train_time_s": round(train_time, 1),
               "wall_time_s": round(time.time() - started, 1), **metrics}
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    print({k: metrics[k] for k in ("classifier_fd", "classes_hit", "class_entropy", "train_time_s")})
    return metrics


if __name__ == "__main__":
    main()
