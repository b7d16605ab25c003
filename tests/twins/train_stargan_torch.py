"""StarGAN in plain torch: the twin of ``minigan/models/stargan.py`` and of the recipe of
``examples/stargan.py``, written after the reference implementation (yunjey/stargan:
``model.py``'s Generator, ResidualBlock and Discriminator; ``solver.py``'s training loop,
``gradient_penalty`` and ``classification_loss`` for single-label domains).

    python tests/twins/train_stargan_torch.py --steps 1500 --out runs/stargan-torch

The networks have the same ``state_dict`` keys as minigan's, so either loads the other's
weights. Two changes from the reference, both the model file's: instance norm tracks no
running statistics (the reference never uses them, it never switches G to eval mode),
and the penalty's gradient norm is sqrt(sum g^2 + 1e-12) as ``minigan.models.wgan``'s.
The recipe is the example's: the same domains, sizes, Adam, n_critic, batches and target
labels (drawn from the same NumPy seed, in the same order) and the same scores; torch draws
its own init and interpolation weights. ``tests/test_stargan.py`` imports the networks
and the two steps.
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn as tnn
import torch.nn.functional as TF


class ResidualBlock(tnn.Module):
    def __init__(self, dim):
        super().__init__()
        self.main = tnn.Sequential(
            tnn.Conv2d(dim, dim, 3, 1, 1, bias=False), tnn.InstanceNorm2d(dim, affine=True), tnn.ReLU(inplace=True),
            tnn.Conv2d(dim, dim, 3, 1, 1, bias=False), tnn.InstanceNorm2d(dim, affine=True))

    def forward(self, x):
        return x + self.main(x)


class Generator(tnn.Module):
    def __init__(self, c_dim, channels=1, conv_dim=64, repeat_num=6):
        super().__init__()
        layers = [tnn.Conv2d(channels + c_dim, conv_dim, 7, 1, 3, bias=False),
                  tnn.InstanceNorm2d(conv_dim, affine=True), tnn.ReLU(inplace=True)]
        curr = conv_dim
        for _ in range(2):
            layers += [tnn.Conv2d(curr, curr * 2, 4, 2, 1, bias=False), tnn.InstanceNorm2d(curr * 2, affine=True),
                       tnn.ReLU(inplace=True)]
            curr *= 2
        layers += [ResidualBlock(curr) for _ in range(repeat_num)]
        for _ in range(2):
            layers += [tnn.ConvTranspose2d(curr, curr // 2, 4, 2, 1, bias=False),
                       tnn.InstanceNorm2d(curr // 2, affine=True), tnn.ReLU(inplace=True)]
            curr //= 2
        layers += [tnn.Conv2d(curr, channels, 7, 1, 3, bias=False), tnn.Tanh()]
        self.main = tnn.Sequential(*layers)

    def forward(self, x, c):
        c = c.view(c.size(0), c.size(1), 1, 1).repeat(1, 1, x.size(2), x.size(3))
        return self.main(torch.cat([x, c], dim=1))


class Discriminator(tnn.Module):
    def __init__(self, c_dim, channels=1, image_size=32, conv_dim=64, repeat_num=4):
        super().__init__()
        layers = [tnn.Conv2d(channels, conv_dim, 4, 2, 1), tnn.LeakyReLU(0.01)]
        curr = conv_dim
        for _ in range(1, repeat_num):
            layers += [tnn.Conv2d(curr, curr * 2, 4, 2, 1), tnn.LeakyReLU(0.01)]
            curr *= 2
        self.main = tnn.Sequential(*layers)
        self.conv1 = tnn.Conv2d(curr, 1, 3, 1, 1, bias=False)
        self.conv2 = tnn.Conv2d(curr, c_dim, image_size // 2 ** repeat_num, bias=False)

    def forward(self, x):
        h = self.main(x)
        out_cls = self.conv2(h)
        return self.conv1(h), out_cls.view(out_cls.size(0), out_cls.size(1))


def label2onehot(labels, dim):
    out = torch.zeros(labels.size(0), dim, dtype=torch.get_default_dtype())
    out[np.arange(labels.size(0)), labels.long()] = 1
    return out


def gradient_penalty(y, x):
    """solver.py's: mean over images of (||dy/dx||_2 - 1)^2, with y's map summed."""
    dydx = torch.autograd.grad(outputs=y, inputs=x, grad_outputs=torch.ones_like(y), retain_graph=True,
                               create_graph=True, only_inputs=True)[0]
    dydx = dydx.view(dydx.size(0), -1)
    return torch.mean((torch.sqrt(torch.sum(dydx ** 2, dim=1) + 1e-12) - 1) ** 2)


def d_step(G, D, d_optimizer, x_real, label_org, label_trg, alpha, lambda_cls=1.0, lambda_gp=10.0):
    """solver.py's "Train the discriminator" block; ``alpha`` (N,) the penalty's interpolation weights."""
    c_trg = label2onehot(label_trg, D.conv2.out_channels).to(x_real.dtype)
    out_src, out_cls = D(x_real)
    d_loss_real = -torch.mean(out_src)
    d_loss_cls = TF.cross_entropy(out_cls, label_org)
    x_fake = G(x_real, c_trg)
    out_src, out_cls = D(x_fake.detach())
    d_loss_fake = torch.mean(out_src)
    alpha = alpha.view(-1, 1, 1, 1)
    x_hat = (alpha * x_real.data + (1 - alpha) * x_fake.data).requires_grad_(True)
    out_src, _ = D(x_hat)
    d_loss_gp = gradient_penalty(out_src, x_hat)
    d_loss = d_loss_real + d_loss_fake + lambda_cls * d_loss_cls + lambda_gp * d_loss_gp
    d_optimizer.zero_grad()
    d_loss.backward()
    d_optimizer.step()
    return {"d_loss": d_loss.item(), "d_real": d_loss_real.item(), "d_fake": d_loss_fake.item(),
            "d_cls": d_loss_cls.item(), "d_gp": lambda_gp * d_loss_gp.item()}


def g_step(G, D, g_optimizer, x_real, label_org, label_trg, lambda_cls=1.0, lambda_rec=10.0):
    """solver.py's "Train the generator" block (D's parameters get gradients there, which its
    next zero_grad clears; here D is frozen, the same update of G)."""
    c_org = label2onehot(label_org, D.conv2.out_channels).to(x_real.dtype)
    c_trg = label2onehot(label_trg, D.conv2.out_channels).to(x_real.dtype)
    for p in D.parameters():
        p.requires_grad_(False)
    x_fake = G(x_real, c_trg)
    out_src, out_cls = D(x_fake)
    g_loss_fake = -torch.mean(out_src)
    g_loss_cls = TF.cross_entropy(out_cls, label_trg)
    g_loss = g_loss_fake + lambda_cls * g_loss_cls
    losses = {"g_fake": g_loss_fake.item(), "g_cls": g_loss_cls.item()}
    if lambda_rec > 0:
        x_reconst = G(x_fake, c_org)
        g_loss_rec = torch.mean(torch.abs(x_real - x_reconst))
        g_loss = g_loss + lambda_rec * g_loss_rec
        losses["g_rec"] = g_loss_rec.item()
    g_optimizer.zero_grad()
    g_loss.backward()
    g_optimizer.step()
    for p in D.parameters():
        p.requires_grad_(True)
    return {"g_loss": g_loss.item(), **losses}


# ---------------------------------------------------------------- the recipe of examples/stargan.py


def main(argv=None):
    from minigan.data.fashion_domains import load_fashion_domains
    from minigan.eval import load_classifier

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--domains", default="shoes")
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--blocks", type=int, default=3)
    p.add_argument("--d-width", type=int, default=16)
    p.add_argument("--n-critic", type=int, default=5)
    p.add_argument("--lambda-rec", type=float, default=10.0)
    p.add_argument("--test-examples", type=int, default=1500)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=os.path.join("runs", "stargan-torch"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    train = load_fashion_domains("train", args.domains)
    k = len(train.names)
    G, D = Generator(k, 1, args.width, args.blocks), Discriminator(k, 1, 32, args.d_width, 4)
    g_opt = torch.optim.Adam(G.parameters(), 1e-4, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(D.parameters(), 1e-4, betas=(0.5, 0.999))
    started = time.time()
    for step in range(args.steps):
        idx = rng.choice(len(train.images), args.batch_size, replace=False)
        org = train.domains[idx]
        trg = org[rng.permutation(len(org))]
        x, lo, lt = torch.from_numpy(train.images[idx]), torch.from_numpy(org), torch.from_numpy(trg)
        losses = d_step(G, D, d_opt, x, lo, lt, torch.rand(len(idx)))
        if (step + 1) % args.n_critic == 0:
            losses.update(g_step(G, D, g_opt, x, lo, lt, lambda_rec=args.lambda_rec))
        if (step + 1) % 250 == 0:
            print(f"step {step + 1}: " + " ".join(f"{k} {v:.3f}" for k, v in losses.items())
                  + f" ({time.time() - started:.0f} s)", flush=True)
    test = load_fashion_domains("test", args.domains)
    n = min(args.test_examples, len(test.images))
    classifier = load_classifier("fashion-mnist")
    accuracy = []
    with torch.no_grad():
        for t in range(k):
            out = G(torch.from_numpy(test.images[:n]), label2onehot(torch.full((n,), t), k)).numpy()
            other = test.domains[:n] != t  # the translations proper, as the example's accuracy_per_domain
            accuracy.append(float((classifier.predict(out[other]) == test.classes[t]).mean()))
    metrics = {"framework": "torch", "steps": args.steps, "domains": list(test.names), "accuracy_per_domain":
               accuracy, "accuracy": float(np.mean(accuracy)), "wall_time_s": round(time.time() - started, 1)}
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    print(metrics)
    return metrics


if __name__ == "__main__":
    main()
