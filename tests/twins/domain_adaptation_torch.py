"""DANN and ADDA in plain torch: the networks (same state_dict keys as
``minigan/models/domain_adaptation.py``), the gradient reversal layer as a
``torch.autograd.Function``, and the training steps, for tests/test_domain_adaptation.py.

    python tests/twins/domain_adaptation_torch.py --method dann --steps 1500   # one run, torch's numbers

runs the example's recipe (same data, batch 32 per domain, width 0.5, SGD with the annealed
learning rate, lambda schedule; ADDA: Adam 2e-4, beta1 0.5) and prints the target test accuracy.
"""
import argparse
import math

import numpy as np
import torch
import torch.nn as tnn
import torch.nn.functional as TF

try:
    from . import train_dcgan_torch
except ImportError:  # run as a script
    import train_dcgan_torch


class GradReverse(torch.autograd.Function):
    """The usual torch form of Ganin et al.'s layer: identity forward, -lambda * grad backward."""

    @staticmethod
    def forward(ctx, x, lambd):
        ctx.lambd = lambd
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad.neg() * ctx.lambd, None


def grad_reverse(x, lambd=1.0):
    return GradReverse.apply(x, lambd)


def _w(width):
    return lambda n: max(1, int(round(n * width)))


def feature_extractor(width=1.0):
    w = _w(width)
    return tnn.Sequential(tnn.Conv2d(1, w(32), 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2),
                          tnn.Conv2d(w(32), w(48), 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten())


def mlp(sizes):
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers += ([tnn.ReLU()] if i else []) + [tnn.Linear(a, b)]
    return tnn.Sequential(*layers)


def label_classifier(width=1.0, image_size=16):
    w = _w(width)
    return mlp([w(48) * (image_size // 4) ** 2, w(100), w(100), 10])


def domain_classifier(width=1.0, image_size=16):
    w = _w(width)
    return mlp([w(48) * (image_size // 4) ** 2, w(100), 1])


def adda_discriminator(width=1.0, image_size=16):
    w = _w(width)
    return mlp([w(48) * (image_size // 4) ** 2, w(500), w(500), 1])


def classifier_step(features, classifier, optimizer, x, y):
    loss = TF.cross_entropy(classifier(features(x)), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {"class_loss": loss.item()}


def dann_step(features, classifier, domain, optimizer, xs, ys, xt, lambd):
    f = features(torch.cat([xs, xt]))
    n = len(xs)
    class_loss = TF.cross_entropy(classifier(f[:n]), ys)
    d_logits = domain(grad_reverse(f, lambd)).flatten()
    d_labels = torch.cat([torch.zeros(n), torch.ones(len(xt))]).to(d_logits.dtype)
    domain_loss = TF.binary_cross_entropy_with_logits(d_logits, d_labels)
    optimizer.zero_grad()
    (class_loss + domain_loss).backward()
    optimizer.step()
    return {"class_loss": class_loss.item(), "domain_loss": domain_loss.item()}


def adda_step(source_encoder, target_encoder, discriminator, opt_target, opt_d, xs, xt):
    """ADDA's adversarial step: DCGAN's GAN step (D on real and detached fakes, then the
    non-saturating, label-inverted loss) with M_s(x_s) as the real batch and M_t as the generator."""
    with torch.no_grad():
        source_codes = source_encoder(xs)
    d_loss, target_loss = train_dcgan_torch.train_step(target_encoder, discriminator, opt_target, opt_d,
                                                       source_codes, xt)
    return {"d_loss": d_loss, "target_loss": target_loss}


def lambda_p(p):
    return 2 / (1 + math.exp(-10 * p)) - 1


def annealed_lr(p, lr0=0.01):
    return lr0 / (1 + 10 * p) ** 0.75


def main(argv=None):
    from minigan.data.digit_domains import load_mnist_5k, load_target_digits
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=["source-only", "dann", "adda", "oracle"], default="dann")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    source, source_labels = load_mnist_5k()
    target, target_labels = load_target_digits("train")
    test, test_labels = load_target_digits("test")
    features, classifier, domain = (feature_extractor(args.width), label_classifier(args.width),
                                    domain_classifier(args.width))
    params = list(features.parameters()) + list(classifier.parameters())
    params += list(domain.parameters()) if args.method == "dann" else []
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)

    def draw(images, labels=None):
        idx = rng.choice(len(images), args.batch_size, replace=False)
        x = torch.tensor(images[idx])
        return x if labels is None else (x, torch.tensor(labels[idx]))

    for step in range(args.steps):
        p = step / args.steps
        for g in opt.param_groups:
            g["lr"] = annealed_lr(p)
        if args.method == "dann":
            xs, ys = draw(source, source_labels)
            dann_step(features, classifier, domain, opt, xs, ys, draw(target), lambda_p(p))
        elif args.method == "oracle":
            classifier_step(features, classifier, opt, *draw(target, target_labels))
        else:
            classifier_step(features, classifier, opt, *draw(source, source_labels))
    encoder = features
    if args.method == "adda":
        encoder, disc = feature_extractor(args.width), adda_discriminator(args.width)
        encoder.load_state_dict(features.state_dict())
        opt_t = torch.optim.Adam(encoder.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))
        for step in range(args.steps):
            adda_step(features, encoder, disc, opt_t, opt_d, draw(source), draw(target))
    with torch.no_grad():
        accuracy = (classifier(encoder(torch.tensor(test))).argmax(1).numpy() == test_labels).mean()
    print(f"{args.method}, seed {args.seed}: target test accuracy {accuracy:.3f}")
    return accuracy


if __name__ == "__main__":
    main()
