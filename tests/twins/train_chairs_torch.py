"""The chairs generator in plain torch: the twin of ``minigan/models/chairs.py`` and of the recipe
of ``examples/chairs.py`` (Dosovitskiy, Springenberg & Brox 2015, Figure 2: an FC stream per
input, FC-3 to FC-5, then "unpooling + 5x5 convolution" layers to the image and, separately,
to the mask; squared errors, lambda = 10 on the image; Adam).

    python tests/twins/train_chairs_torch.py --steps 6000 --out runs/chairs-torch

The network has the same ``state_dict`` keys as minigan's, so either loads the other's weights.
The recipe is the example's: the same rendered views (``minigan.data.shapes3d``), the same
batches (drawn from the same NumPy seed, in the same order), sizes, loss and Adam; torch draws
its own initial weights. It reports the example's held-out scores. ``tests/test_chairs.py``
imports the network and the training step.
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn as tnn
import torch.nn.functional as TF


def stream(n_in, width):
    return tnn.Sequential(tnn.Linear(n_in, width), tnn.LeakyReLU(0.3), tnn.Linear(width, width), tnn.LeakyReLU(0.3))


def up(channels, out_channels):
    layers = []
    for a, b in zip(channels, channels[1:]):
        layers += [tnn.ConvTranspose2d(a, b, 5, 2, 2, output_padding=1), tnn.LeakyReLU(0.3)]
    return tnn.Sequential(*layers, tnn.ConvTranspose2d(channels[-1], out_channels, 5, 2, 2, output_padding=1))


class Generator(tnn.Module):
    def __init__(self, n_classes, n_transform=0, width=512, channels=(256, 128, 64), out_channels=3):
        super().__init__()
        self.channels = channels
        self.class_stream, self.view_stream = stream(n_classes, width), stream(4, width)
        self.transform_stream = stream(n_transform, width) if n_transform else None
        self.fc = tnn.Sequential(tnn.Linear(width * (3 if n_transform else 2), 2 * width), tnn.LeakyReLU(0.3),
                                 tnn.Linear(2 * width, 2 * width), tnn.LeakyReLU(0.3),
                                 tnn.Linear(2 * width, channels[0] * 16), tnn.LeakyReLU(0.3))
        self.image_stream = up(channels, out_channels)
        self.mask_stream = up((channels[0], *(max(c // 2, 1) for c in channels[1:])), 1)

    def forward(self, c, v, theta=None):
        streams = [self.class_stream(c), self.view_stream(v)]
        if self.transform_stream is not None:
            streams.append(self.transform_stream(theta))
        h = self.fc(torch.cat(streams, 1)).view(c.size(0), self.channels[0], 4, 4)
        return self.image_stream(h), self.mask_stream(h)


def train_step(G, optimizer, c, v, theta, image, mask, lam=10.0):
    out_image, out_mask = G(c, v, theta)
    rgb, segm = TF.mse_loss(out_image, image), TF.mse_loss(out_mask, mask)
    loss = lam * rgb + segm
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {"loss": loss.item(), "image_mse": rgb.item(), "mask_mse": segm.item()}


def views(azimuth, elevation):
    az, el = np.deg2rad(azimuth), np.deg2rad(elevation)
    return np.stack([np.sin(az), np.cos(az), np.sin(el), np.cos(el)], 1).astype(np.float32)


def main(argv=None):
    from minigan.data.shapes3d import load_shapes3d

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--conv-width", type=int, default=64)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=os.path.join("runs", "chairs-torch"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    data = load_shapes3d(32)
    n = len(data.names)
    rows = np.flatnonzero(data.train)
    classes, v = np.eye(n, dtype=np.float32)[data.instance], views(data.azimuth, data.elevation)
    G = Generator(n, 0, args.width, (args.conv_width, args.conv_width // 2, args.conv_width // 4))
    opt = torch.optim.Adam(G.parameters(), args.lr, betas=(0.9, 0.999))
    started = time.process_time()
    for step in range(args.steps):
        idx = rows[rng.choice(len(rows), args.batch_size, replace=False)]
        losses = train_step(G, opt, *(torch.from_numpy(a[idx]) for a in (classes, v)), None,
                            torch.from_numpy(data.images[idx]), torch.from_numpy(data.masks[idx]))
        if (step + 1) % 500 == 0:
            print(f"step {step + 1}: " + " ".join(f"{k} {x:.4f}" for k, x in losses.items()), flush=True)
    test = ~data.train
    with torch.no_grad():
        image, mask = G(torch.from_numpy(classes[test]), torch.from_numpy(v[test]))
    image, mask, truth = image.numpy(), mask.numpy() > 0.5, data.masks[test] > 0.5
    iou = ((mask & truth).sum(axis=(1, 2, 3)) / (mask | truth).sum(axis=(1, 2, 3))).mean()
    metrics = {"framework": "torch", "steps": args.steps,
               "heldout_mse": float(((image - data.images[test]) ** 2).mean()), "heldout_mask_iou": float(iou),
               "cpu_time_s": round(time.process_time() - started, 1)}
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    print(metrics)
    return metrics


if __name__ == "__main__":
    main()
