"""GAN dissection in plain torch: the twin of ``minigan/models/dissection.py`` and of the
recipe of ``examples/dissection.py``.

    python tests/twins/dissection_torch.py --out runs/dissection-torch

The segmenter (``state_dict`` keys equal to minigan's), G, D and the DCGAN step (from
``train_dcgan_torch.py``), and the dissection written again with torch's own tools: a
forward hook on G's ReLU, ``interpolate`` (bilinear), ``torch.quantile`` for t_u, IoU from
boolean masks, ablation and insertion as a hook that assigns into a copy of the layer's output.
``tests/test_dissection.py`` imports these; ``main`` runs the example's recipe (the same
scenes, the same batches from the same NumPy seed; torch's own init and z), the dissection
and the ablation of the concept's top units against random ones, for the results page.
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn as tnn
import torch.nn.functional as TF

try:
    from .train_dcgan_torch import Discriminator, Generator, init_weights, train_step
except ImportError:  # run as a script
    from train_dcgan_torch import Discriminator, Generator, init_weights, train_step


class Segmenter(tnn.Module):
    def __init__(self, n_concepts, channels=3, width=32):
        super().__init__()
        layers, cin = [], channels
        for d in (1, 2, 4):
            layers += [tnn.Conv2d(cin, width, 3, 1, d, dilation=d, bias=False), tnn.BatchNorm2d(width), tnn.ReLU()]
            cin = width
        layers.append(tnn.Conv2d(width, n_concepts, 1))
        self.net = tnn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def segmenter_step(S, opt, images, labels):
    loss = TF.cross_entropy(S(images), labels)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


def segment(S, images):
    S.eval()
    with torch.no_grad():
        return S(torch.as_tensor(images)).argmax(1).numpy()


def relu(G, layer):
    return [m for m in G.net if isinstance(m, tnn.ReLU)][layer - 1]


def generate(G, z, layer):
    seen = []
    handle = relu(G, layer).register_forward_hook(lambda m, a, out: seen.append(out.detach().clone()))
    G.eval()
    with torch.no_grad():
        images = G(torch.as_tensor(z))
    handle.remove()
    return images.numpy(), seen[0].numpy()


def dissect(activations, labels, n_concepts, quantile=0.99):
    """t_u by torch.quantile over the upsampled maps; IoU and the mean activation on each concept."""
    a = TF.interpolate(torch.as_tensor(activations, dtype=torch.float64), size=labels.shape[-2:], mode="bilinear",
                       align_corners=False)
    labels = torch.as_tensor(labels)
    threshold = torch.stack([torch.quantile(a[:, u].flatten(), quantile) for u in range(a.shape[1])])
    on = a > threshold.view(1, -1, 1, 1)
    iou = torch.zeros(a.shape[1], n_concepts, dtype=torch.float64)
    mean_on = torch.zeros_like(iou)
    for c in range(n_concepts):
        s = (labels == c).unsqueeze(1)
        iou[:, c] = (on & s).sum((0, 2, 3)) / (on | s).sum((0, 2, 3)).clamp(min=1)
        mean_on[:, c] = (a * s).sum((0, 2, 3)) / s.sum().clamp(min=1)
    return {"threshold": threshold.numpy(), "iou": iou.numpy(), "mean_on": mean_on.numpy()}


class Intervention:
    """r[:, units, rows, cols] = values (per unit), in a forward hook on G's layer."""

    def __init__(self, G, layer, units, values=0.0, patch=(slice(None), slice(None))):
        self.module, self.units, self.patch = relu(G, layer), list(units), patch
        self.values = torch.as_tensor(np.broadcast_to(values, (len(self.units),)).copy(), dtype=torch.float32)

    def hook(self, module, args, r):
        r = r.clone()
        for u, v in zip(self.units, self.values):
            r[:, u][(slice(None),) + tuple(self.patch)] = v
        return r

    def __enter__(self):
        self.handle = self.module.register_forward_hook(self.hook)

    def __exit__(self, *exc):
        self.handle.remove()


# ---------------------------------------------------------------- the recipe of examples/dissection.py


def main(argv=None):
    from minigan.data.scenes import SCENE_CONCEPTS, render_scenes

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--train-scenes", type=int, default=20000)
    p.add_argument("--seg-steps", type=int, default=400)
    p.add_argument("--seg-width", type=int, default=16)
    p.add_argument("--concept", default="tree")
    p.add_argument("--units", type=int, default=8)
    p.add_argument("--out", default="runs/dissection-torch")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)
    data_rng = np.random.default_rng(args.seed)
    scenes, labels = render_scenes(args.train_scenes, seed=[args.seed, 0])
    G, D, S = Generator(100, 3, 32, args.width), Discriminator(3, 32, args.width), Segmenter(6, 3, args.seg_width)
    G.apply(init_weights)
    D.apply(init_weights)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_s = torch.optim.Adam(S.parameters(), lr=3e-3)
    started = time.process_time()
    for step in range(args.steps):
        if step < args.seg_steps:
            idx = data_rng.choice(len(scenes), 32, replace=False)
            segmenter_step(S, opt_s, torch.from_numpy(scenes[idx]), torch.from_numpy(labels[idx]))
        idx = data_rng.choice(len(scenes), args.batch_size, replace=False)
        train_step(G, D, opt_g, opt_d, torch.from_numpy(scenes[idx]), torch.randn(args.batch_size, 100))
    train_cpu = time.process_time() - started

    test, test_labels = render_scenes(1000, seed=[args.seed, 1])
    rng = np.random.default_rng([args.seed, 2])
    concept = SCENE_CONCEPTS.index(args.concept)
    images, r = generate(G, rng.standard_normal((1000, 100)).astype(np.float32), 2)
    result = dissect(r, segment(S, images), 6)
    z = rng.standard_normal((500, 100)).astype(np.float32)

    def concept_pixels(units):
        with Intervention(G, 2, units):
            return (segment(S, generate(G, z, 2)[0]) == concept).sum()

    before = (segment(S, generate(G, z, 2)[0]) == concept).sum()
    top = np.argsort(-result["iou"][:, concept], kind="stable")[:args.units]
    random = [1 - concept_pixels(rng.choice(r.shape[1], args.units, replace=False)) / before for _ in range(10)]
    metrics = {"framework": "torch", "steps": args.steps, "seed": args.seed, "train_cpu_s": round(train_cpu, 1),
               "segmenter_pixel_accuracy": float((segment(S, test) == test_labels).mean()),
               "top_units": top.tolist(), "top_iou": result["iou"][top, concept].tolist(),
               "top_units_removed": float(1 - concept_pixels(top) / before),
               "random_units_removed": float(np.mean(random))}
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    print(metrics)
    return metrics


if __name__ == "__main__":
    main()
