"""The VAE of ``examples/vae.py`` trained in plain torch with the same recipe, for the
side-by-side test ELBO in ``docs/vae.md``.

    python tests/twins/train_vae_torch.py [--steps 10000] [--seed 0]

Same data (scikit-learn's digits, the same seeded split, dynamic binarization
drawn from the same NumPy generator, the held-out digits binarized once with the
same seed), same model (500 tanh units, latent 10, Bernoulli decoder, weights
N(0, 0.01^2), zero biases), same optimizer (Adam, lr 1e-3) and batch (100). Only
the reparameterization noise comes from torch's generator, so the two runs agree
in distribution, not bit for bit. Prints the test ELBO (mean of 10 draws of z)
and the importance-weighted log p(x) with K = 100, in nats per image.
"""
import argparse
import json
import math
import time

import numpy as np
import torch
import torch.nn as tnn
import torch.nn.functional as TF

from minigan.data import load_digits


def binarize(x, rng):
    """pixel ~ Bern((x + 1) / 2) in {-1, 1}, drawn exactly as examples/vae.py draws it."""
    return np.where(rng.random(x.shape) < (x + 1) / 2, 1.0, -1.0).astype(np.float32)


class VAE(tnn.Module):
    def __init__(self, data_dim, latent_dim=10, hidden=500, init_std=0.01):
        super().__init__()
        self.enc = tnn.Sequential(tnn.Linear(data_dim, hidden), tnn.Tanh())
        self.mu, self.logvar = tnn.Linear(hidden, latent_dim), tnn.Linear(hidden, latent_dim)
        self.dec = tnn.Sequential(tnn.Linear(latent_dim, hidden), tnn.Tanh(), tnn.Linear(hidden, data_dim))
        for name, p in self.named_parameters():
            if name.endswith("weight"):
                tnn.init.normal_(p, 0.0, init_std)
            else:
                tnn.init.zeros_(p)

    def encode(self, x):
        h = self.enc(x.flatten(1))
        return self.mu(h), self.logvar(h)

    def log_px_given_z(self, z, x):
        target = (x.flatten(1) + 1) / 2
        return -TF.binary_cross_entropy_with_logits(self.dec(z), target, reduction="none").sum(1)

    def elbo(self, x):
        mu, logvar = self.encode(x)
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
        kl = -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(1)
        return self.log_px_given_z(z, x) - kl


def iw_log_px(vae, x, k=100):
    """log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x), z_k ~ q(z|x), per image."""
    mu, logvar = vae.encode(x)
    log_w = []
    for _ in range(k):
        eps = torch.randn_like(mu)
        z = mu + (0.5 * logvar).exp() * eps
        log_pz = -0.5 * (z ** 2 + math.log(2 * math.pi)).sum(1)
        log_qz = -0.5 * (eps ** 2 + logvar + math.log(2 * math.pi)).sum(1)
        log_w.append(vae.log_px_given_z(z, x) + log_pz - log_qz)
    return torch.logsumexp(torch.stack(log_w), 0) - math.log(k)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=10000)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data_rng = np.random.default_rng(args.seed)
    train, _ = load_digits(split="train", seed=args.seed)
    test, _ = load_digits(split="test", seed=args.seed)
    test_binary = torch.tensor(binarize(test, np.random.default_rng(args.seed + 1)))

    vae = VAE(int(np.prod(train.shape[1:])))
    opt = torch.optim.Adam(vae.parameters(), lr=1e-3)
    start = time.time()
    for _ in range(args.steps):
        batch = train[data_rng.choice(len(train), args.batch_size, replace=False)]
        loss = -vae.elbo(torch.tensor(binarize(batch, data_rng))).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        elbo = torch.stack([vae.elbo(test_binary) for _ in range(10)]).mean(0)
        log_px = iw_log_px(vae, test_binary)
    result = {"framework": "torch " + torch.__version__, "steps": args.steps, "seed": args.seed,
              "test_elbo_nats": float(elbo.mean()), "test_log_px_iw100_nats": float(log_px.mean()),
              "wall_time_s": round(time.time() - start, 1)}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
