"""Colorization in plain torch: the twin of ``minigan/models/colorization.py`` and of the
recipe of ``examples/colorization.py``.

    python tests/twins/train_colorization_torch.py --loss classification --steps 1000 \\
        --out runs/colorization-torch-classification

The same network (``state_dict`` keys equal to minigan's), the soft encoding, the
rebalancing weights, the annealed mean and the training step, each written again in
torch from the paper's formulas (torch.cdist and topk for the nearest cells, a
scatter for the encoding). The ab cells themselves come from minigan (``ab_bins``),
as do the pictures and the Lab conversion (checked against scikit-image in the
tests), so the two runs see the same crops. ``tests/test_colorization.py`` imports
the pieces from here.
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn as tnn
import torch.nn.functional as TF


def _block(cin, cout, convs, stride=1, dilation=1):
    layers = []
    for i in range(convs):
        layers += [tnn.Conv2d(cin if i == 0 else cout, cout, 3, stride if i == convs - 1 else 1, dilation, dilation),
                   tnn.ReLU()]
    return tnn.Sequential(*layers, tnn.BatchNorm2d(cout))


class ColorizationNet(tnn.Module):
    def __init__(self, out_channels, width=16):
        super().__init__()
        w = width
        self.features = tnn.Sequential(
            _block(1, w, 2, stride=2), _block(w, 2 * w, 2, stride=2), _block(2 * w, 4 * w, 2),
            _block(4 * w, 4 * w, 2, dilation=2),
            tnn.Sequential(tnn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1), tnn.ReLU(), tnn.Conv2d(2 * w, 2 * w, 3, 1, 1),
                           tnn.ReLU(), tnn.BatchNorm2d(2 * w)))
        self.head = tnn.Conv2d(2 * w, out_channels, 1)

    def forward(self, lightness):
        return self.head(self.features(lightness))


def soft_encode(ab, centres, k=5, sigma=5.0):
    """(N, Q, H, W): Gaussian weights on the k nearest centres, normalized."""
    n, _, h, w = ab.shape
    pixels = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    d, index = torch.cdist(pixels, centres).topk(k, dim=1, largest=False)
    weights = torch.softmax(-d ** 2 / (2 * sigma ** 2), dim=1)
    z = torch.zeros(len(pixels), len(centres), dtype=ab.dtype).scatter_(1, index, weights)
    return z.reshape(n, h, w, -1).permute(0, 3, 1, 2)


def rebalancing_weights(prior, centres, lam=0.5, sigma=5.0):
    smoothed = torch.exp(-torch.cdist(centres, centres) ** 2 / (2 * sigma ** 2)) @ prior
    smoothed = smoothed / smoothed.sum()
    w = 1 / ((1 - lam) * smoothed + lam / len(prior))
    return w / (smoothed * w).sum()


def annealed_mean(logits, centres, temperature=0.38):
    return torch.einsum("nqhw,qc->nchw", torch.softmax(logits / temperature, dim=1), centres)


def train_step(net, optimizer, lightness, ab, centres=None, class_weights=None):
    out = net(lightness)
    target = TF.avg_pool2d(ab, 2)
    if centres is None:
        loss = TF.mse_loss(out, target / 110.0)
    else:
        z = soft_encode(target, centres).to(out.dtype)
        per_pixel = -(z * torch.log_softmax(out, dim=1)).sum(1)
        if class_weights is not None:
            per_pixel = per_pixel * class_weights[z.argmax(1)]
        loss = per_pixel.mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def colorize(net, lightness, centres=None, temperature=0.38):
    out = net(lightness)
    ab = out * 110.0 if centres is None else annealed_mean(out, centres, temperature)
    return TF.interpolate(ab, scale_factor=2, mode="bilinear", align_corners=False)


# ---------------------------------------------------------------- the recipe of examples/colorization.py


def main(argv=None):
    from minigan.data.colour import load_colour, random_crops
    from minigan.data.lab import rgb_to_lab
    from minigan.models.colorization import ab_bins, empirical_prior, scores

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--loss", choices=["classification", "l2"], default="classification")
    p.add_argument("--no-rebalance", action="store_true")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--crop", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-samples", type=int, default=1000)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    out = args.out or os.path.join("runs", f"colorization-torch-{args.loss}")
    os.makedirs(out, exist_ok=True)

    def crops(pictures, n, rng):
        return rgb_to_lab((random_crops(pictures, n, args.crop, rng) + 1) / 2)

    torch.manual_seed(args.seed)
    data_rng = np.random.default_rng(args.seed)
    train, test, test_kinds, _ = load_colour()
    centres = weights = None
    if args.loss == "classification":
        centres = torch.tensor(ab_bins(), dtype=torch.float32)
        if not args.no_rebalance:
            prior = empirical_prior(crops(train, 2000, args.seed)[:, 1:], ab_bins())
            weights = rebalancing_weights(torch.tensor(prior, dtype=torch.float64), centres.double()).float()
    net = ColorizationNet(2 if centres is None else len(centres), args.width)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.99))
    started = time.time()
    for step in range(args.steps):
        lab = torch.tensor(crops(train, args.batch_size, data_rng), dtype=torch.float32)
        loss = train_step(net, opt, lab[:, :1] / 50 - 1, lab[:, 1:], centres, weights)
        if (step + 1) % 250 == 0:
            print(f"step {step + 1}: loss {loss:.4f} ({time.time() - started:.0f} s)", flush=True)
    net.eval()
    rgb, picture = random_crops(test, args.num_samples, args.crop, 20160328, return_index=True)
    lab = rgb_to_lab((rgb + 1) / 2)
    with torch.no_grad():
        ab = colorize(net, torch.tensor(lab[:, :1] / 50 - 1, dtype=torch.float32), centres).numpy()
    metrics = {"framework": "torch", "loss": args.loss, "rebalance": weights is not None, "steps": args.steps,
               "seed": args.seed, "wall_time_s": round(time.time() - started, 1),
               **scores(ab, lab[:, 1:], np.array(test_kinds)[picture])}
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    print({k: v for k, v in metrics.items() if k != "by_kind"}, metrics["by_kind"])
    return metrics


if __name__ == "__main__":
    main()
