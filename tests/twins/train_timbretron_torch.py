"""TimbreTron's CycleGAN in plain torch: the twin of ``minigan/models/timbretron.py`` and of the
recipe of ``examples/timbretron.py``.

    python tests/twins/train_timbretron_torch.py --steps 1200 --out runs/timbretron-torch

The generator and the pool are CycleGAN's twins (``train_cyclegan_torch``), the step is that
twin's ``train_step`` with a gradient penalty written here in torch
(``torch.autograd.grad(create_graph=True)``), and the full-spectrogram discriminator has
the same ``state_dict`` keys as minigan's. The recipe is the example's: the same data (the
same melodies, from ``minigan.data.timbre``), sizes, init, Adam, lr schedule, pools, crops
and batches (drawn from the same NumPy seed, in the same order); the random numbers of the
init, the pools and the penalty's interpolation are torch's and Python's. The translations
are scored by the same functions, so the two runs' ``metrics.json`` compare directly.
``tests/test_timbretron.py`` imports the discriminator, the penalty and the step.
"""
import argparse
import json
import os
import random
import time

import numpy as np
import torch
import torch.nn as tnn

try:  # imported by the tests (package twins) or run as a script from tests/twins
    from .train_cyclegan_torch import ImagePool, ResnetGenerator
    from .train_cyclegan_torch import train_step as cyclegan_train_step
    from .train_pix2pix_torch import init_weights
except ImportError:
    from train_cyclegan_torch import ImagePool, ResnetGenerator
    from train_cyclegan_torch import train_step as cyclegan_train_step
    from train_pix2pix_torch import init_weights


class FullSpectrogramDiscriminator(tnn.Module):
    """PatchGAN stride-2 layers (instance norm from the second), then a conv spanning every bin left."""

    def __init__(self, n_bins=48, ndf=32, n_layers=3):
        super().__init__()
        sequence, width = [tnn.Conv2d(1, ndf, 4, 2, 1), tnn.LeakyReLU(0.2, True)], ndf
        for n in range(1, n_layers):
            sequence += [tnn.Conv2d(width, ndf * min(2 ** n, 8), 4, 2, 1), tnn.InstanceNorm2d(ndf * min(2 ** n, 8)),
                         tnn.LeakyReLU(0.2, True)]
            width = ndf * min(2 ** n, 8)
        sequence += [tnn.Conv2d(width, 1, (n_bins // 2 ** n_layers, 3), 1, (0, 1))]
        self.model = tnn.Sequential(*sequence)

    def forward(self, x):
        return self.model(x)


def gradient_penalty(netD, real, fake, weight=10.0, eps=None):
    """WGAN-GP's weight * E[(||grad D(xhat)||_2 - 1)^2], xhat = eps real + (1 - eps) fake."""
    if eps is None:
        eps = torch.rand(real.shape[0], 1, 1, 1, dtype=real.dtype)
    xhat = (eps.reshape(-1, 1, 1, 1) * real + (1 - eps.reshape(-1, 1, 1, 1)) * fake).detach().requires_grad_(True)
    grads, = torch.autograd.grad(netD(xhat).sum(), xhat, create_graph=True)
    norms = (grads.flatten(1).pow(2).sum(1) + 1e-12).sqrt()
    return weight * ((norms - 1) ** 2).mean()


def train_step(G, F, D_X, D_Y, optimizer_G, optimizer_D, real_x, real_y, pool_x=None, pool_y=None,
               lambda_cycle=10.0, lambda_identity=0.5, gp_weight=10.0, eps=None):
    """CycleGAN's step with the penalty on each D; ``eps`` = {'x': ..., 'y': ...} fixes the
    interpolation weights (to match minigan's draws), None draws them. minigan's naming."""
    def penalty(netD, real, fake, which):
        return gradient_penalty(netD, real, fake, gp_weight, None if eps is None else eps[which])
    return cyclegan_train_step(G, F, D_Y, D_X, optimizer_G, optimizer_D, real_x, real_y, pool_x, pool_y,
                               lambda_cycle, lambda_cycle, lambda_identity, penalty if gp_weight > 0 else None)


# ---------------------------------------------------------------- the recipe of examples/timbretron.py


def main(argv=None):
    from minigan.data import timbre
    from minigan.eval import load_classifier
    from minigan.eval.timbre import pitch_preserved
    from minigan.models.timbretron import random_time_crop

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1200)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--blocks", type=int, default=3)
    p.add_argument("--d-width", type=int, default=16)
    p.add_argument("--crop", type=int, default=32)
    p.add_argument("--lambda-cycle", type=float, default=10.0)
    p.add_argument("--gp-weight", type=float, default=10.0)
    p.add_argument("--train-clips", type=int, default=500)
    p.add_argument("--test-clips", type=int, default=500)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=os.path.join("runs", "timbretron-torch"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    data_rng = np.random.default_rng(args.seed)
    x_train = timbre.load_timbre_clips(args.train_clips, seed=[args.seed, 1]).flute
    y_train = timbre.load_timbre_clips(args.train_clips, seed=[args.seed, 2]).reed
    G, F = (init_weights(ResnetGenerator(1, 1, args.width, args.blocks)) for _ in range(2))
    D_X, D_Y = (init_weights(FullSpectrogramDiscriminator(48, args.d_width)) for _ in range(2))
    adam = dict(lr=2e-4, betas=(0.5, 0.999))
    optimizer_G = torch.optim.Adam([*G.parameters(), *F.parameters()], **adam)
    optimizer_D = torch.optim.Adam([*D_X.parameters(), *D_Y.parameters()], **adam)
    hold = args.steps - args.steps // 2
    rule = lambda step: 1.0 - max(0, step + 1 - hold) / float(args.steps // 2 + 1)  # noqa: E731
    schedulers = [torch.optim.lr_scheduler.LambdaLR(o, rule) for o in (optimizer_G, optimizer_D)]
    pool_x, pool_y = ImagePool(50), ImagePool(50)

    started = time.time()
    for step in range(args.steps):
        x = random_time_crop(x_train[data_rng.choice(len(x_train), args.batch_size, replace=False)], args.crop,
                             data_rng)
        y = random_time_crop(y_train[data_rng.choice(len(y_train), args.batch_size, replace=False)], args.crop,
                             data_rng)
        losses = train_step(G, F, D_X, D_Y, optimizer_G, optimizer_D, torch.from_numpy(x), torch.from_numpy(y),
                            pool_x, pool_y, lambda_cycle=args.lambda_cycle, gp_weight=args.gp_weight)
        for s in schedulers:
            s.step()
        if (step + 1) % 100 == 0:
            print(f"step {step + 1}: " + " ".join(f"{k} {v:.3f}" for k, v in losses.items())
                  + f" ({time.time() - started:.0f} s)", flush=True)
    train_time = time.time() - started

    test = timbre.load_timbre_clips(args.test_clips, seed=[args.seed, 3])
    classifier = load_classifier("timbre")
    metrics = {}
    for name, net, source, target, target_class in (("flute_to_reed", G, test.flute, test.reed, 1),
                                                    ("reed_to_flute", F, test.reed, test.flute, 0)):
        with torch.no_grad():
            out = np.concatenate([net(torch.from_numpy(source[i:i + 100])).numpy()
                                  for i in range(0, len(source), 100)])
        metrics[f"{name}_target_share"] = float((classifier.predict(out) == target_class).mean())
        metrics[f"{name}_pitch_preserved"] = pitch_preserved(out, test.melodies)
        metrics[f"{name}_l1_to_target"] = float(np.abs(out - target).mean())
    for key in ("target_share", "pitch_preserved", "l1_to_target"):
        metrics[key] = (metrics[f"flute_to_reed_{key}"] + metrics[f"reed_to_flute_{key}"]) / 2
    metrics = {"framework": "torch", "steps": args.steps, "batch_size": args.batch_size, "seed": args.seed,
               "lambda_cycle": args.lambda_cycle, "gp_weight": args.gp_weight,
               "train_time_s": round(train_time, 1), **metrics}
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    print({k: metrics[k] for k in ("target_share", "pitch_preserved", "l1_to_target", "train_time_s")})
    return metrics


if __name__ == "__main__":
    main()
