"""WGAN-GP on the 25-Gaussian grid in plain torch: the recipe of ``examples/wgan.py`` with the
networks of ``minigan/models/wgan.py``, used to choose the grid recipe ``docs/wgan.md`` reports.

    python tests/twins/train_wgan_torch.py --gp-weight 1 --lr 1e-3 --beta1 0.5 --lr-decay --steps 8000

Prints the modes covered and the share of samples within 3 sigma of a mode
(``minigan.data.mode_metrics``, as the example scores them) every 1000 generator steps.
Same data (the grid drawn from the same NumPy seed), same networks (ReLU MLPs), same step
(n_critic critic steps with the gradient penalty on interpolates, then a generator step),
same optimizer; the random numbers of init, z and eps are torch's.
"""
import argparse
import time

import numpy as np
import torch
import torch.nn as tnn

from minigan.data import grid, grid_modes, mode_metrics


def mlp(n_in, n_out, hidden, depth):
    layers, width = [], n_in
    for _ in range(depth):
        layers += [tnn.Linear(width, hidden), tnn.ReLU()]
        width = hidden
    return tnn.Sequential(*layers, tnn.Linear(width, n_out))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=8000)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--n-critic", type=int, default=5)
    p.add_argument("--gp-weight", type=float, default=10.0)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--beta1", type=float, default=0.0)
    p.add_argument("--lr-decay", action="store_true", help="linear to 0 over --steps")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    G, C = mlp(2, 2, args.hidden, args.depth), mlp(2, 1, args.hidden, args.depth)
    opts = [torch.optim.Adam(m.parameters(), lr=args.lr, betas=(args.beta1, 0.9)) for m in (G, C)]
    n, modes, start = args.batch_size, grid_modes(), time.time()
    for step in range(args.steps):
        if args.lr_decay:
            for o in opts:
                o.param_groups[0]["lr"] = args.lr * (1 - step / args.steps)
        for _ in range(args.n_critic):
            real = torch.tensor(grid(n, rng))
            with torch.no_grad():
                fake = G(torch.randn(n, 2))
            eps = torch.rand(n, 1)
            xhat = (eps * real + (1 - eps) * fake).requires_grad_()
            g, = torch.autograd.grad(C(xhat).sum(), xhat, create_graph=True)
            penalty = args.gp_weight * (((g ** 2).sum(1) + 1e-12).sqrt() - 1).pow(2).mean()
            loss = C(fake).mean() - C(real).mean() + penalty
            opts[1].zero_grad()
            loss.backward()
            opts[1].step()
        g_loss = -C(G(torch.randn(n, 2))).mean()
        opts[0].zero_grad()
        g_loss.backward()
        opts[0].step()
        if (step + 1) % 1000 == 0 or step + 1 == args.steps:
            with torch.no_grad():
                m = mode_metrics(G(torch.randn(1000, 2)).numpy(), modes, 0.05)
            print(f"step {step + 1}: {m['modes_covered']}/25 modes, {100 * m['high_quality_share']:.0f}% within "
                  f"3 sigma ({time.time() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
