"""What every example script shares: the command line of the examples contract,
the loss history, checkpoints with everything needed to resume, and the files
written at the end (``losses.png``, ``metrics.json``, ``checkpoint.safetensors``).

A model file never imports this; the scripts in ``examples/`` do.
"""
import argparse
import os
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from .checkpoint import load_checkpoint, save_checkpoint
from .common import remove_stale_temporaries, to_numpy
from .metrics import write_metrics
from .plots import save_losses
from .progress import progress


class RunExists(FileExistsError):
    """``--out`` already holds a run, and neither --resume nor --overwrite was given."""


class TrainingDiverged(RuntimeError):
    """A loss, a parameter or an optimizer's state stopped being finite: the run stops
    and the last checkpoint written (with finite values) is kept."""


def _number(kind, test, what):
    """An argparse ``type=``: ``kind`` of the string, refused with a usage error unless ``test`` holds."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}")
        if not test(value):
            raise argparse.ArgumentTypeError(f"{text!r}: expected {what}")
        return value
    parse.__name__ = what  # argparse names the type in some errors
    return parse


positive_int = _number(int, lambda v: v > 0, "an integer > 0")
nonnegative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _number(float, lambda v: v > 0 and np.isfinite(v), "a finite number > 0")
nonnegative_float = _number(float, lambda v: v >= 0 and np.isfinite(v), "a finite number >= 0")
unit_float = _number(float, lambda v: 0 <= v < 1, "a number in [0, 1)")
seed = _number(int, lambda v: 0 <= v < 2 ** 32, "an integer in [0, 2**32)")


def power_of_two(minimum):
    """An argparse ``type=`` for a resolution: a power of two, at least ``minimum``."""
    examples = ", ".join(str(minimum * 2 ** i) for i in range(4))
    return _number(int, lambda v: v >= minimum and not v & (v - 1),
                   f"a power of two, at least {minimum} ({examples}, ...)")


MIN_SAMPLES = 1000  # samples.npz holds at least this many (docs/DESIGN.md, "Examples contract")
num_samples = _number(int, lambda v: v >= MIN_SAMPLES, f"an integer >= {MIN_SAMPLES} (the examples contract's N)")


def device(text):
    """An argparse ``type=`` for --device: cpu, cuda or cuda:N."""
    name, _, index = text.partition(":")
    if text in ("cpu", "cuda") or (name == "cuda" and index.isdigit()):
        return text
    raise argparse.ArgumentTypeError(f"{text!r}: expected cpu, cuda or cuda:N")


def check_batch_size(parser, batch_size, size, data):
    """A usage error (before anything is written) when a batch drawn without replacement
    cannot come from a data set of ``size`` examples."""
    if batch_size is not None and batch_size > size:
        parser.error(f"--batch-size {batch_size} is larger than the {size} training examples of --data {data}")


def example_parser(description, data=None, default_data=None, steps=1000, batch_size=64, lr=None,
                   nearest_neighbours=False):
    """The flags every example takes (docs/DESIGN.md, "Examples contract"), and
    --nearest-neighbours where ``nearest_neighbours``: the example generates images and
    passes them to ``Experiment.check_memorization``."""
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--device", type=device, default="cpu", help="cpu (NumPy), cuda or cuda:N (CuPy)")
    p.add_argument("--steps", type=positive_int, default=steps, help="training iterations")
    p.add_argument("--batch-size", type=positive_int, default=batch_size)
    p.add_argument("--seed", type=seed, default=0, help="in [0, 2**32)")
    p.add_argument("--out", default=None, help="output directory (default runs/<script>-<data>)")
    if data:
        p.add_argument("--data", choices=list(data), default=default_data or data[0])
    else:
        p.set_defaults(data=None)
    if lr is not None:
        p.add_argument("--lr", type=positive_float, default=lr)
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoint.safetensors if it exists; the learning rate the "
                        "command line gives replaces the checkpoint's, and a line says so")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh even if OUT already holds a run, replacing its files")
    p.add_argument("--checkpoint-every", type=positive_int, default=500, help="steps between checkpoints")
    p.add_argument("--num-samples", type=num_samples, default=MIN_SAMPLES,
                   help=f"samples saved to samples.npz (at least {MIN_SAMPLES})")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    if nearest_neighbours:
        p.add_argument("--nearest-neighbours", action="store_true",
                       help="the memorization check (minigan.eval.memorization): each sample's nearest training "
                            "images in pixel and classifier-feature space (nearest.png, nearest_distances.png), "
                            "their distances against held-out images' (metrics.json's 'memorization')")
    return p


@dataclass
class RunSettings:
    """What a run takes from the examples contract's flags."""
    out: str | None = None      # where the run writes; None: runs/<name>-<data>
    data: str | None = None     # the data set's name (None where the example has no choice)
    device: str = "cpu"
    seed: int = 0               # recorded in metrics.json (the script seeds its generators)
    resume: bool = False        # continue from OUT/checkpoint.safetensors if it exists
    overwrite: bool = False     # start afresh even where OUT already holds a run
    checkpoint_every: int = 500
    progress: bool = True       # show a progress bar
    nearest_neighbours: bool = False  # run the memorization check at the end

    @classmethod
    def from_args(cls, args):
        """The settings from the flags ``example_parser`` parsed."""
        return cls(out=args.out, data=args.data, device=args.device, seed=args.seed, resume=args.resume,
                   overwrite=getattr(args, "overwrite", False), checkpoint_every=args.checkpoint_every,
                   progress=not args.no_progress, nearest_neighbours=getattr(args, "nearest_neighbours", False))


class Experiment:
    """One training run: its modules, optimizers, random state and loss history.

    ``settings`` is a ``RunSettings``. ``rngs`` maps names to NumPy Generators the
    script draws data with; their state goes into the checkpoint with minigan's own
    generators (the CPU's, and the GPU's on ``--device cuda``), so a resumed run
    draws exactly the batches and noise an uninterrupted one would.
    """

    def __init__(self, name, settings, modules, optimizers, rngs=None):
        self.settings = settings
        self.out = settings.out or os.path.join("runs", f"{name}-{settings.data}" if settings.data else name)
        self._refuse_to_replace_a_run()
        os.makedirs(self.out, exist_ok=True)
        _check_writable(self.out)
        remove_stale_temporaries(self.out)  # left by a run killed while writing an output
        self.modules, self.optimizers, self.rngs = modules, optimizers, rngs or {}
        self.history = {}
        self.step = 0
        self.started = time.time()
        self.elapsed_before = 0.0

    def _refuse_to_replace_a_run(self):
        """A fresh run into an OUT that holds one (a checkpoint or metrics.json) would
        replace it: refused, before anything is written, unless --resume or --overwrite."""
        if self.settings.resume or self.settings.overwrite:
            return
        found = [f for f in ("checkpoint.safetensors", "metrics.json") if os.path.exists(os.path.join(self.out, f))]
        if found:
            raise RunExists(f"{self.out!r} already holds a run ({', '.join(found)}); pass --resume to continue "
                            "it, --overwrite to replace it, or another --out")

    @property
    def checkpoint_path(self):
        return os.path.join(self.out, "checkpoint.safetensors")

    def log(self, losses):
        """Append this step's losses to the history; a non-finite one stops the run
        (``TrainingDiverged``) before anything is recorded or saved."""
        values = {k: float(v) for k, v in losses.items()}
        bad = [k for k, v in values.items() if not np.isfinite(v)]
        if bad:
            raise TrainingDiverged(
                f"training diverged at step {self.step + 1}: loss "
                + ", ".join(f"{k!r} is {values[k]}" for k in bad)
                + f"; stopped, {self._kept()} (try a smaller learning rate)")
        for k, v in values.items():
            self.history.setdefault(k, []).append(v)

    def _kept(self):
        if os.path.exists(self.checkpoint_path):
            return f"the last checkpoint {self.checkpoint_path} is kept as it was"
        return "no checkpoint was written"

    def steps(self, total, desc=None):
        """The training loop's step numbers, from where a resumed run stopped to
        ``total``, with a progress bar showing the latest losses. A checkpoint is
        written every ``--checkpoint-every`` steps and when training ends, before
        anything else draws random numbers, so that resuming continues the run."""
        bar = progress(range(self.step, total), desc=desc or self.out, disable=not self.settings.progress)
        for step in bar:
            yield step
            self.step = step + 1
            if self.step % 50 == 0 and self.history:
                bar.set_postfix(**{k: f"{v[-1]:.3f}" for k, v in self.history.items()})
            if self.step % self.settings.checkpoint_every == 0 or self.step == total:
                self.save()

    # --- checkpoints

    def state(self):
        from .. import backend
        return {
            "step": self.step,
            "elapsed": self.elapsed(),
            "modules": {k: m.state_dict() for k, m in self.modules.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "rng": {"minigan": backend.get_rng_state(),
                    **({"minigan_cuda": backend.get_rng_state("cuda")} if self._on_cuda() else {}),
                    **{k: g.bit_generator.state for k, g in self.rngs.items()}},
            "history": {k: np.asarray(v, dtype=np.float64) for k, v in self.history.items()},
        }

    def _on_cuda(self):
        return str(self.settings.device).startswith("cuda")

    def save(self):
        """Write the checkpoint, unless a parameter or an optimizer's state holds a NaN
        or an infinity: then ``TrainingDiverged``, and the last good checkpoint stays."""
        state = self.state()
        bad = _non_finite(state["modules"], ("modules",)) + _non_finite(state["optimizers"], ("optimizers",))
        if bad:
            shown = ", ".join(repr(name) for name in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            raise TrainingDiverged(f"training diverged by step {self.step}: NaN or infinite values in "
                                   f"{shown}; checkpoint not saved, {self._kept()}")
        save_checkpoint(self.checkpoint_path, state)

    def maybe_resume(self, scheduled_lr=False):
        """Load OUT/checkpoint.safetensors when --resume is given; returns the step to start from.

        The optimizers' learning rates (the command line's) replace the checkpoint's, with a line
        saying so, unless ``scheduled_lr``: the script sets them itself every step."""
        if not self.settings.resume or not os.path.exists(self.checkpoint_path):
            return 0
        from .. import backend
        from ..autograd import Tensor
        state = load_checkpoint(self.checkpoint_path)
        given = {k: [g["lr"] for g in o.param_groups] for k, o in self.optimizers.items()}
        try:
            for k, m in self.modules.items():
                m.load_state_dict(state["modules"][k])
            for k, o in self.optimizers.items():
                saved, options = state["optimizers"][k], _options(o.state_dict())
                if _options(saved) != options:  # another optimizer: Adam's betas where RMSprop wants alpha
                    raise ValueError(f"{k}'s optimizer options are {sorted(_options(saved))}, "
                                     f"this run's are {sorted(options)}")
                o.load_state_dict(_tensors(saved, Tensor))
        except (KeyError, ValueError, RuntimeError) as error:
            raise SystemExit(self._mismatch(state, error)) from error
        for k, o in ({} if scheduled_lr else self.optimizers).items():  # the command line's lr wins
            for g, lr in zip(o.param_groups, given[k]):
                if g["lr"] != lr:
                    print(f"{self.out}: {k}'s learning rate is now {lr:g} (the checkpoint's was {g['lr']:g})")
                    g["lr"] = lr
        backend.set_rng_state(state["rng"]["minigan"])
        if "minigan_cuda" in state["rng"]:
            backend.set_rng_state(state["rng"]["minigan_cuda"], "cuda")
        for k, g in self.rngs.items():
            g.bit_generator.state = state["rng"][k]
        self.history = {k: list(np.asarray(v).tolist()) for k, v in state["history"].items()}
        self.step = int(state["step"])
        self.elapsed_before = float(state.get("elapsed", 0.0))
        return self.step

    def _mismatch(self, state, error):
        """What a checkpoint of another model or optimizer holds, next to what this run expects."""
        def describe(modules, optimizers):
            return (f"modules {sorted(modules)} with {sum(len(m) for m in modules.values())} tensors, "
                    f"optimizers {sorted(optimizers)}")
        expected = describe({k: m.state_dict() for k, m in self.modules.items()},
                            {k: o.state_dict() for k, o in self.optimizers.items()})
        held = describe(state.get("modules", {}), state.get("optimizers", {}))
        return (f"{self.checkpoint_path} is a checkpoint of another model or optimizer (other flags?): "
                f"it holds {held}; this run expects {expected} ({type(error).__name__}: {error})")

    def elapsed(self):
        return self.elapsed_before + time.time() - self.started

    # --- the end of a run

    def check_memorization(self, samples, train, held_out, classifier=None):
        """With --nearest-neighbours, ``minigan.eval.check_memorization`` of the samples against
        the training and held-out images (same shape and range as the samples), pictures into
        OUT; returns ``{"memorization": its numbers}`` for metrics.json, or {} without the flag."""
        if not self.settings.nearest_neighbours:
            return {}
        from ..eval.memorization import check_memorization
        return {"memorization": check_memorization(samples, train, held_out, classifier, out=self.out)}

    def finish(self, metrics):
        """Write losses.png and metrics.json (the checkpoint was written when
        training ended, by ``steps``)."""
        save_losses(self.history, os.path.join(self.out, "losses.png"))
        metrics = {"steps": self.step, "wall_time_s": round(self.elapsed(), 1),
                   "device": self.settings.device, "seed": self.settings.seed, **metrics}
        write_metrics(os.path.join(self.out, "metrics.json"), metrics)
        if not os.path.exists(self.checkpoint_path):
            self.save()
        return metrics


def _non_finite(node, path=()):
    """The dotted names of the floating-point arrays (or Tensors) under ``node`` that
    hold a NaN or an infinity."""
    if isinstance(node, dict):
        return [name for k, v in node.items() for name in _non_finite(v, path + (str(k),))]
    if isinstance(node, (list, tuple)):
        return [name for i, v in enumerate(node) for name in _non_finite(v, path + (str(i),))]
    if hasattr(node, "shape") or hasattr(node, "array") or hasattr(node, "data"):
        array = to_numpy(node)
        if array.dtype.kind in "fc" and not np.isfinite(array).all():
            return [".".join(path)]
    return []


def _options(optimizer_state):
    """The option names of an optimizer's state dict (its param groups' keys)."""
    return {k for g in optimizer_state.get("param_groups", []) for k in g if k != "params"}


def _check_writable(folder):
    """Stop before training when ``folder`` cannot take files."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise SystemExit(f"--out {folder} is not writable: {error}") from error


def _tensors(node, Tensor):
    """Arrays in a loaded optimizer state back to Tensors (numbers stay numbers)."""
    if isinstance(node, dict):
        return {k: _tensors(v, Tensor) for k, v in node.items()}
    if isinstance(node, list):
        return [_tensors(v, Tensor) for v in node]
    if isinstance(node, np.ndarray):
        return Tensor(node)
    return node
