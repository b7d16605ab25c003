"""The conditional GAN on digits in plain torch, in two layouts, for the comparison in
``docs/cgan.md``:

    python tests/twins/train_cgan_torch.py --layout inputs --steps 4000   # minigan's model
    python tests/twins/train_cgan_torch.py --layout paper --steps 2000    # the paper's MNIST layout

``inputs``: the one-hot label joins each network's input, z ~ N(0, I) (minigan's cgan.py).
``paper``: z and y through their own hidden layers (200 and 1000 ReLU units in G, 240 and 50
in D) joined in 1200 (G) and 240 (D) units, z ~ U[0, 1]^100. Both: LeakyReLU(0.2) in D, tanh
output, Adam 2e-4 beta1 0.5, batch 100, the non-saturating G loss. Prints the project
classifier's conditional accuracy and FD, and the mean distance between two samples of one
label (near 0 when G ignores its noise) next to the same for held-out digits.
"""
import argparse

import numpy as np
import torch
import torch.nn as tnn
import torch.nn.functional as TF

from minigan.data import load_digits
from minigan.eval import load_classifier, score_samples, within_class_distance


def leaky_mlp(sizes):
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers += [tnn.Linear(a, b)] + ([tnn.LeakyReLU(0.2)] if i < len(sizes) - 2 else [])
    return tnn.Sequential(*layers)


class Generator(tnn.Module):
    def __init__(self, layout):
        super().__init__()
        self.layout = layout
        if layout == "inputs":
            self.net = leaky_mlp((110, 256, 512, 64))
        else:
            self.z = tnn.Sequential(tnn.Linear(100, 200), tnn.ReLU())
            self.y = tnn.Sequential(tnn.Linear(10, 1000), tnn.ReLU())
            self.net = tnn.Sequential(tnn.Linear(1200, 1200), tnn.ReLU(), tnn.Linear(1200, 64))

    def forward(self, z, y):
        y = TF.one_hot(y, 10).float()
        h = torch.cat([z, y], 1) if self.layout == "inputs" else torch.cat([self.z(z), self.y(y)], 1)
        return torch.tanh(self.net(h))


class Discriminator(tnn.Module):
    def __init__(self, layout):
        super().__init__()
        self.layout = layout
        if layout == "inputs":
            self.net = leaky_mlp((74, 512, 512, 1))
        else:
            self.x = tnn.Sequential(tnn.Linear(64, 240), tnn.LeakyReLU(0.2))
            self.y = tnn.Sequential(tnn.Linear(10, 50), tnn.LeakyReLU(0.2))
            self.net = leaky_mlp((290, 240, 1))

    def forward(self, x, y):
        y = TF.one_hot(y, 10).float()
        h = torch.cat([x, y], 1) if self.layout == "inputs" else torch.cat([self.x(x), self.y(y)], 1)
        return self.net(h).flatten()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layout", choices=["inputs", "paper"], default="inputs")
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    images, labels = load_digits(split="train", seed=0)
    test, test_labels = load_digits(split="test", seed=0)
    noise = (lambda n: torch.randn(n, 100)) if args.layout == "inputs" else (lambda n: torch.rand(n, 100))
    G, D = Generator(args.layout), Discriminator(args.layout)
    opt_g, opt_d = (torch.optim.Adam(m.parameters(), lr=2e-4, betas=(0.5, 0.999)) for m in (G, D))
    for _ in range(args.steps):
        idx = rng.choice(len(images), 100, replace=False)
        real, y = torch.tensor(images[idx]).flatten(1), torch.tensor(labels[idx])
        fake_y = torch.randint(0, 10, (100,))
        with torch.no_grad():
            fake = G(noise(100), fake_y)
        lr, lf = D(real, y), D(fake, fake_y)
        d_loss = TF.softplus(-lr).mean() + TF.softplus(lf).mean()
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        fake_y = torch.randint(0, 10, (100,))
        g_loss = TF.softplus(-D(G(noise(100), fake_y), fake_y)).mean()
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
    y = np.repeat(np.arange(10), 100)
    with torch.no_grad():
        samples = G(noise(1000), torch.tensor(y)).reshape(1000, 1, 8, 8).numpy()
    m = score_samples(load_classifier("digits"), samples, labels=y, real=test)
    m["within_class_distance_samples"] = within_class_distance(samples, y)
    m["within_class_distance_test_digits"] = within_class_distance(test, test_labels)
    print({k: round(m[k], 3) for k in ("accuracy", "classifier_fd", "within_class_distance_samples",
                                       "within_class_distance_test_digits")})


if __name__ == "__main__":
    main()
