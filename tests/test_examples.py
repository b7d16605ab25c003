"""Smoke runs of the example scripts: a few steps each, on data that needs no download.

Each run must write the files of the examples contract (DESIGN.md), and a run
stopped and resumed from its checkpoint must end exactly where an
uninterrupted run ends.
"""
import importlib.util
import json
import os

import numpy as np
import pytest

from minigan.utils import load_checkpoint

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")
CONTRACT = ["samples.png", "losses.png", "metrics.json", "checkpoint.safetensors"]


def example(name):
    """Import examples/<name>.py as a module (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(name, out, *args):
    return example(name).main(["--out", str(out), "--no-progress", *map(str, args)])


def params(out, module):
    state = load_checkpoint(os.path.join(out, "checkpoint.safetensors"))
    return state["modules"][module]


@pytest.mark.parametrize("data", ["ring", "digits"])
def test_gan_example_writes_the_contract_files(tmp_path, data):
    metrics = run("gan", tmp_path, "--data", data, "--steps", 5, "--batch-size", 32)
    for f in CONTRACT + ["samples.npz"]:
        assert (tmp_path / f).stat().st_size > 0, f
    assert json.loads((tmp_path / "metrics.json").read_text())["steps"] == 5 == metrics["steps"]
    x = np.load(tmp_path / "samples.npz")["x"]
    assert x.shape == ((1000, 2) if data == "ring" else (1000, 1, 8, 8)) and x.dtype == np.float32
    assert np.isfinite(x).all()
    if data == "digits":  # the tanh output has the range of the training images
        assert x.min() >= -1 and x.max() <= 1
    else:
        assert 0 <= metrics["modes_covered"] <= 8


def test_gan_example_resumed_run_equals_uninterrupted_run(tmp_path):
    once, twice = tmp_path / "once", tmp_path / "twice"
    run("gan", once, "--steps", 12, "--batch-size", 16, "--k", 2)
    run("gan", twice, "--steps", 5, "--batch-size", 16, "--k", 2)
    run("gan", twice, "--steps", 12, "--batch-size", 16, "--k", 2, "--resume")
    for module in ["generator", "discriminator"]:
        a, b = params(once, module), params(twice, module)
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"{module}.{k}")
    history = [json.loads((d / "metrics.json").read_text())["steps"] for d in (once, twice)]
    assert history == [12, 12]
