"""BigGAN's conditional accuracy under a few training variants: examples/biggan.py run once per
variant (Fashion-MNIST 32x32, seed 0), then one table.

    python -m benchmarks.biggan_accuracy                     # every variant, the example's steps
    python -m benchmarks.biggan_accuracy --only lr4 lr8      # some of them
    python -m benchmarks.biggan_accuracy --steps 20          # a quick check that each one runs
    python -m benchmarks.biggan_accuracy --table             # only the table of the runs already in --out

Each variant writes into --out/<name> (its metrics.json, pictures and checkpoint); a variant
whose metrics.json is there already is not run again unless --rerun. The table: steps, the
project classifier's conditional accuracy for G's averaged weights (EMA, standing statistics)
and for the trained G, the classes hit, the classifier-feature FD to the test split and the mean distance of two
samples of one class (variety; both EMA G),
the accuracy on shirts (the class the classifier itself gets worst on real images), and the
CPU seconds of the run (training and scoring; ``time.process_time`` of the process, which
does not count the waits of a shared machine). The last row is the ceiling: the classifier on
the real test images.
"""
import argparse
import importlib.util
import json
import os

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "biggan.py")
SHIRT = 6  # Fashion-MNIST's class 6

# name -> (what differs from the example's defaults, its arguments). Steps of the paper's setting
# cost about 1.5 times SA-GAN's (two D steps), so it gets 2/3 of the steps: the same CPU time.
VARIANTS = {
    "lr1": ("SA-GAN's learning rates as published (G 1e-4, D 4e-4)", ["--lr-scale", "1"]),
    "lr2": ("learning rates x2", ["--lr-scale", "2"]),
    "lr4": ("learning rates x4 (the default)", []),
    "lr8": ("learning rates x8", ["--lr-scale", "8"]),
    "biggan-lr4": ("the paper's setting (2 D steps), x4, 2/3 of the steps",
                   ["--setting", "biggan", "--steps-fraction", "0.6667"]),
    "ema-0.999": ("EMA decay 0.999 from step 500", ["--ema-decay", "0.999", "--ema-start", "500"]),
    "shared-64": ("shared class embedding of 64", ["--shared-dim", "64"]),
}


def example():
    spec = importlib.util.spec_from_file_location("example_biggan", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def arguments(extra, steps):
    """The variant's arguments with --steps-fraction turned into --steps."""
    extra = list(extra)
    if "--steps-fraction" in extra:
        i = extra.index("--steps-fraction")
        steps = max(1, round(steps * float(extra[i + 1])))
        del extra[i:i + 2]
    return ["--steps", str(steps), *extra]


def row(name, metrics):
    no_ema = metrics["no_ema"]
    return (f"| {name} | {metrics['steps']} | {100 * metrics['accuracy']:.1f}% | {100 * no_ema['accuracy']:.1f}% "
            f"| {metrics['classes_hit']}/10 | {metrics['classifier_fd']:.1f} | {metrics['within_class_distance']:.1f} "
            f"| {100 * metrics['accuracy_per_class'][SHIRT]:.0f}% | {metrics.get('cpu_time_s', float('nan')):.0f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.biggan_accuracy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--steps", type=int, default=2000, help="steps of SA-GAN's setting (the example's default)")
    parser.add_argument("--out", default=os.path.join("runs", "biggan-accuracy"))
    parser.add_argument("--rerun", action="store_true", help="run a variant again even where its metrics are there")
    parser.add_argument("--table", action="store_true", help="run nothing, print the table of the runs in --out")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps: expected a positive number of steps, got {args.steps}")

    found = {}
    for name in args.only:
        out = os.path.join(args.out, name)
        path = os.path.join(out, "metrics.json")
        if not args.table and (args.rerun or not os.path.exists(path)):
            example().main(["--out", out, "--no-progress", *arguments(VARIANTS[name][1], args.steps)])
        if os.path.exists(path):
            with open(path) as f:
                found[name] = json.load(f)

    print("| variant | steps | accuracy (EMA G) | accuracy (trained G) | classes | FD | within-class distance "
          "| shirts | CPU s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, metrics in found.items():
        print(row(name, metrics))
    ceiling = next((m for m in found.values() if "real_accuracy" in m), None)
    if ceiling:
        print(f"| real test images (the ceiling) | | {100 * ceiling['real_accuracy']:.1f}% | | 10/10 | | | "
              f"{100 * ceiling['real_accuracy_per_class'][SHIRT]:.0f}% | |")
    for name in found:
        print(f"{name}: {VARIANTS[name][0]}; python examples/biggan.py "
              f"{' '.join(arguments(VARIANTS[name][1], args.steps))}")
    return found


if __name__ == "__main__":
    main()
