"""Smoke runs of the example scripts: a few steps each, on data that needs no download.

Each run must write the files of the examples contract (docs/DESIGN.md), and a run
stopped and resumed from its checkpoint must end exactly where an
uninterrupted run ends.
"""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import minigan
from minigan.data import FASHION_MNIST_DIR, load_edges2fashion
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


def assert_resume_continues_the_run(name, tmp_path, steps, stop, args, modules):
    """Train ``steps`` at once, and ``stop`` steps then --resume to ``steps``: every saved tensor
    of ``modules`` (parameters and buffers) must be equal bit for bit. Returns both run folders."""
    once, twice = tmp_path / "once", tmp_path / "twice"
    run(name, once, "--steps", steps, *args)
    run(name, twice, "--steps", stop, *args)
    run(name, twice, "--steps", steps, *args, "--resume")
    assert_same_saved_tensors(once, twice, modules)
    return once, twice


def assert_same_saved_tensors(once, twice, modules):
    """Every tensor the two runs' checkpoints hold for ``modules`` is equal bit for bit."""
    for module in modules:
        a, b = params(once, module), params(twice, module)
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"{module}.{k}")


def assert_resumed_after_a_crash_equals_uninterrupted_run(name, tmp_path, monkeypatch, model, args, modules,
                                                         crash_at=4):
    """Train with ``args`` at once; then again, but with ``model.train_step`` raising at call
    ``crash_at`` (the run dies after its last checkpoint), and --resume: every saved tensor of
    ``modules`` must be equal bit for bit. A crash, not a shorter run, because the lr schedule
    is a function of --steps. Returns both run folders."""
    once, twice = tmp_path / "once", tmp_path / "twice"
    run(name, once, *args)
    step, calls = model.train_step, []

    def dies(*a, **k):
        calls.append(1)
        if len(calls) == crash_at:
            raise KeyboardInterrupt
        return step(*a, **k)
    monkeypatch.setattr(model, "train_step", dies)
    with pytest.raises(KeyboardInterrupt):
        run(name, twice, *args)
    monkeypatch.setattr(model, "train_step", step)
    run(name, twice, *args, "--resume")
    assert_same_saved_tensors(once, twice, modules)
    return once, twice


def test_an_example_runs_as_a_script_from_any_directory(tmp_path):
    """``python /path/to/examples/gan.py`` from another folder: the script finds the installed
    minigan (here: the one these tests import) without editing sys.path, and writes into
    runs/<name>-<data> below the folder it was started from."""
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(minigan.__file__)))}
    script = os.path.abspath(os.path.join(EXAMPLES, "gan.py"))
    done = subprocess.run([sys.executable, script, "--steps", "3", "--batch-size", "16", "--no-progress"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "runs" / "gan-ring"
    for f in CONTRACT + ["samples.npz"]:
        assert (out / f).stat().st_size > 0, f
    assert json.loads((out / "metrics.json").read_text())["steps"] == 3


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
    once, twice = assert_resume_continues_the_run("gan", tmp_path, 12, 5, ("--batch-size", 16, "--k", 2),
                                                  ["generator", "discriminator"])
    history = [json.loads((d / "metrics.json").read_text())["steps"] for d in (once, twice)]
    assert history == [12, 12]


@pytest.mark.parametrize("data", ["lfw", "digits"])
def test_pca_example_writes_the_contract_files(tmp_path, data):
    metrics = run("pca", tmp_path, "--data", data, "--steps", 6)
    for f in CONTRACT + ["samples.npz", "eigenfaces.png"]:
        assert (tmp_path / f).stat().st_size > 0, f
    assert metrics["steps"] == 6 == metrics["components_walked"]
    x = np.load(tmp_path / "samples.npz")["x"]
    assert x.shape == ((1000, 1, 25, 25) if data == "lfw" else (1000, 1, 8, 8)) and x.dtype == np.float32
    assert x.min() >= -1 and x.max() <= 1
    errors = list(metrics["train_mse_by_k"].values())
    assert errors == sorted(errors, reverse=True)  # more components, smaller error


def test_pca_example_resumed_run_equals_uninterrupted_run(tmp_path):
    once, twice = assert_resume_continues_the_run("pca", tmp_path, 8, 4, ("--checkpoint-every", 3), ["pca"])
    ha, hb = (load_checkpoint(os.path.join(d, "checkpoint.safetensors"))["history"] for d in (once, twice))
    for k in ha:
        np.testing.assert_array_equal(ha[k], hb[k], err_msg=k)


def test_vae_example_writes_the_contract_files(tmp_path):
    metrics = run("vae", tmp_path, "--steps", 5, "--batch-size", 32, "--hidden", 32)
    for f in CONTRACT + ["samples.npz", "interpolation.png", "attribute.png"]:
        assert (tmp_path / f).stat().st_size > 0, f
    x = np.load(tmp_path / "samples.npz")["x"]
    assert x.shape == (1000, 1, 8, 8) and x.dtype == np.float32
    assert x.min() >= -1 and x.max() <= 1
    # both are lower bounds on log p(x) of 64 binary pixels; the K = 100 one is the tighter
    assert -64 * np.log(2) * 1.5 < metrics["test_elbo_nats"] <= metrics["test_log_px_iw100_nats"] + 1e-3 < 0


def test_vae_example_resumed_run_equals_uninterrupted_run(tmp_path):
    args = ("--batch-size", 16, "--hidden", 32, "--checkpoint-every", 3)
    once, twice = assert_resume_continues_the_run("vae", tmp_path, 8, 4, args, ["vae"])
    once_metrics, twice_metrics = (json.loads((d / "metrics.json").read_text()) for d in (once, twice))
    assert once_metrics["test_elbo_nats"] == twice_metrics["test_elbo_nats"]


def test_cgan_example_writes_the_contract_files(tmp_path):
    metrics = run("cgan", tmp_path, "--steps", 3, "--batch-size", 16)
    for f in CONTRACT + ["samples.npz"]:
        assert (tmp_path / f).stat().st_size > 0, f
    assert metrics["steps"] == 3 and 0 <= metrics["accuracy"] <= 1
    samples = np.load(tmp_path / "samples.npz")
    x, y = samples["x"], samples["y"]
    assert x.shape == (1000, 1, 8, 8) and x.dtype == np.float32 and x.min() >= -1 and x.max() <= 1
    assert y.shape == (1000,) and np.bincount(y).tolist() == [100] * 10  # every label equally often


def test_cgan_example_resumed_run_equals_uninterrupted_run(tmp_path):
    assert_resume_continues_the_run("cgan", tmp_path, 6, 3, ("--batch-size", 16), ["generator", "discriminator"])


@pytest.mark.parametrize("model", ["linear", "bottleneck", "sparse", "denoising"])
def test_autoencoder_example_writes_the_contract_files(tmp_path, model):
    metrics = run("autoencoder", tmp_path, "--model", model, "--steps", 5, "--batch-size", 16)
    for f in CONTRACT:
        assert (tmp_path / f).stat().st_size > 0, f
    assert metrics["steps"] == 5 and metrics["model"] == model
    if model == "linear":
        angles = metrics["principal_angles_to_pca_deg"]
        assert len(angles) == 10 and all(0 <= a <= 90 for a in angles)
    if model == "denoising":
        assert metrics["test_mse_noisy_input"] > 0


def test_autoencoder_example_resumed_run_equals_uninterrupted_run(tmp_path):
    args = ("--model", "denoising", "--batch-size", 8, "--checkpoint-every", 3)
    assert_resume_continues_the_run("autoencoder", tmp_path, 7, 4, args, ["autoencoder"])


def test_infogan_example_writes_the_contract_files(tmp_path):
    metrics = run("infogan", tmp_path, "--steps", 3, "--batch-size", 16)
    for f in CONTRACT + ["samples.npz", "code_continuous_1.png", "code_continuous_2.png"]:
        assert (tmp_path / f).stat().st_size > 0, f
    assert metrics["steps"] == 3 and 0.1 <= metrics["purity"] <= 1 and len(metrics["code_to_class"]) == 10
    samples = np.load(tmp_path / "samples.npz")
    x, y = samples["x"], samples["y"]
    assert x.shape == (1000, 1, 8, 8) and x.dtype == np.float32 and x.min() >= -1 and x.max() <= 1
    assert np.bincount(y).tolist() == [100] * 10  # every categorical code equally often


def test_infogan_example_resumed_run_equals_uninterrupted_run(tmp_path):
    assert_resume_continues_the_run("infogan", tmp_path, 6, 3, ("--batch-size", 16), ["generator", "discriminator"])


# the run diverges on purpose: NumPy's overflow warnings on the way are expected
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                            "ignore:invalid value encountered:RuntimeWarning")
def test_a_diverging_example_stops_with_a_clear_error_and_keeps_the_good_checkpoint(tmp_path):
    """``--lr 1e6``: the first non-finite loss stops the run (non-zero exit, the step and
    the loss named) and the checkpoint of the earlier good run is not replaced."""
    from minigan.utils.experiment import TrainingDiverged

    run("wgan", tmp_path, "--steps", 2, "--batch-size", 32)
    before = (tmp_path / "checkpoint.safetensors").read_bytes()
    with pytest.raises(TrainingDiverged, match=r"training diverged at step \d+: loss '\w+' is nan"):
        run("wgan", tmp_path, "--steps", 30, "--batch-size", 32, "--lr", 1e6, "--checkpoint-every", 1,
            "--overwrite")
    assert (tmp_path / "checkpoint.safetensors").read_bytes() == before
    assert load_checkpoint(tmp_path / "checkpoint.safetensors")["step"] == 2


def test_a_second_run_into_the_same_out_is_refused_unless_resume_or_overwrite(tmp_path):
    from minigan.utils.experiment import RunExists

    run("gan", tmp_path, "--steps", 4, "--batch-size", 16)
    files = {f: (tmp_path / f).read_bytes() for f in os.listdir(tmp_path)}
    with pytest.raises(RunExists, match=r"already holds a run .*--resume.*--overwrite"):
        run("gan", tmp_path, "--steps", 2, "--batch-size", 16)
    assert {f: (tmp_path / f).read_bytes() for f in os.listdir(tmp_path)} == files
    assert run("gan", tmp_path, "--steps", 6, "--batch-size", 16, "--resume")["steps"] == 6
    assert run("gan", tmp_path, "--steps", 2, "--batch-size", 16, "--overwrite")["steps"] == 2
    assert load_checkpoint(tmp_path / "checkpoint.safetensors")["step"] == 2


BAD_FLAGS = [
    ("vae", ["--lr", "0"]),
    ("gan", ["--latent-dim", "0"]),
    ("gan", ["--steps", "-5"]),
    ("gan", ["--checkpoint-every", "0"]),
    ("gan", ["--k", "0"]),
    ("gan", ["--seed", "-1"]),
    ("gan", ["--seed", str(2 ** 32)]),
    ("gan", ["--batch-size", "0"]),
    ("gan", ["--data", "digits", "--batch-size", "100000"]),
    ("gan", ["--num-samples", "10"]),
    ("gan", ["--device", "tpu"]),
    ("gan", ["--steps", "ten"]),
    ("wgan", ["--penalty", "clip", "--clip", "-0.01"]),
    ("wgan", ["--lr", "-1"]),
    ("wgan", ["--n-critic", "0"]),
    ("wgan", ["--beta1", "1"]),
    ("autoencoder", ["--lr", "0"]),
    ("autoencoder", ["--code-dim", "0"]),
    ("autoencoder", ["--batch-size", "100000"]),
    ("cgan", ["--d-dropout", "1.5"]),
    ("dcgan", ["--width", "0"]),
    ("infogan", ["--categories", "0"]),
    ("vaegan", ["--latent-dim", "-3"]),
    ("chairs", ["--image-size", "48"]),
    ("chairs", ["--augment", "-1"]),
    ("timbretron", ["--crop", "30"]),
    ("timbretron", ["--crop", "72"]),
    ("timbretron", ["--gp-weight", "-1"]),
    ("timbretron", ["--test-clips", "1"]),
]


@pytest.mark.parametrize("name, flags", BAD_FLAGS, ids=[f"{n}:{' '.join(f)}" for n, f in BAD_FLAGS])
def test_a_bad_flag_is_a_usage_error_that_creates_nothing(tmp_path, capsys, name, flags):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as stop:
        run(name, out, *flags)
    assert stop.value.code == 2
    assert "error:" in capsys.readouterr().err
    assert not out.exists()


def test_a_batch_larger_than_the_data_set_names_both(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run("gan", tmp_path / "run", "--data", "digits", "--batch-size", 100000)
    err = capsys.readouterr().err
    assert "--batch-size 100000" in err and "digits" in err


def test_resume_with_another_lr_applies_it_and_says_so(tmp_path, capsys):
    args = ("--batch-size", 16, "--hidden", 32)
    run("vae", tmp_path, "--steps", 2, *args)
    capsys.readouterr()
    run("vae", tmp_path, "--steps", 3, *args, "--resume", "--lr", 0.5)
    assert "learning rate is now 0.5 (the checkpoint's was 0.001)" in capsys.readouterr().out
    state = load_checkpoint(os.path.join(tmp_path, "checkpoint.safetensors"))
    assert state["optimizers"]["vae"]["param_groups"][0]["lr"] == 0.5


@pytest.mark.parametrize("first, second", [(("wgan", ()), ("wgan", ("--penalty", "clip"))),
                                           (("wgan", ()), ("gan", ()))])
def test_resume_from_another_models_checkpoint_says_what_it_holds(tmp_path, first, second):
    run(first[0], tmp_path, "--steps", 2, "--batch-size", 16, *first[1])
    with pytest.raises(SystemExit) as stop:
        run(second[0], tmp_path, "--steps", 3, "--batch-size", 16, "--resume", *second[1])
    message = str(stop.value.code)
    assert "checkpoint of another model or optimizer" in message and "it holds modules" in message
    assert "this run expects" in message


def test_an_unwritable_out_stops_before_training(tmp_path, monkeypatch):
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)  # root ignores a read-only mode
    with pytest.raises(SystemExit) as stop:
        run("gan", tmp_path, "--steps", 2, "--batch-size", 16)
    assert "is not writable" in str(stop.value.code)
    assert not (tmp_path / "checkpoint.safetensors").exists()


def test_num_samples_is_the_number_written(tmp_path):
    run("gan", tmp_path, "--steps", 1, "--batch-size", 16, "--num-samples", 1500)
    assert np.load(tmp_path / "samples.npz")["x"].shape == (1500, 2)


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DIR), reason=f"Fashion-MNIST not installed in {FASHION_MNIST_DIR}")
@pytest.mark.parametrize("loss,patch,generator", [("l1+gan", "70", "unet"), ("l1", "70", "encoder-decoder")])
def test_pix2pix_example_writes_the_contract_files(tmp_path, loss, patch, generator):
    metrics = run("pix2pix", tmp_path, "--steps", 3, "--batch-size", 8, "--ngf", 4, "--ndf", 4, "--loss", loss,
                  "--patch", patch, "--generator", generator, "--train-examples", 64, "--test-examples", 1000)
    for f in CONTRACT + ["samples.npz"]:
        assert (tmp_path / f).stat().st_size > 0, f
    samples = np.load(tmp_path / "samples.npz")
    test = load_edges2fashion("test", limit=1000)
    for key in ("input", "output", "target"):
        assert samples[key].shape == (1000, 1, 32, 32) and samples[key].dtype == np.float32
        assert samples[key].min() >= -1 and samples[key].max() <= 1
    np.testing.assert_array_equal(samples["target"], test.images)  # the held-out truth, with its edges and labels
    np.testing.assert_array_equal(samples["input"], test.edges)
    np.testing.assert_array_equal(samples["label"], test.labels)
    assert metrics["steps"] == 3 and metrics["test_examples"] == 1000 and 0 <= metrics["accuracy"] <= 1
    assert metrics["l1"] == pytest.approx(np.abs(samples["output"] - samples["target"]).mean(), rel=1e-5)
    assert metrics["test_mode"] == "eval" and 0 <= metrics["test_mode_train"]["accuracy"] <= 1
    assert ("discriminator" in load_checkpoint(tmp_path / "checkpoint.safetensors")["modules"]) == (loss != "l1")


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DIR), reason=f"Fashion-MNIST not installed in {FASHION_MNIST_DIR}")
def test_pix2pix_example_resumed_run_equals_uninterrupted_run(tmp_path):
    args = ("--batch-size", 8, "--ngf", 4, "--ndf", 4, "--train-examples", 64, "--test-examples", 1000,
            "--checkpoint-every", 2, "--loss", "gan", "--patch", "image")
    assert_resume_continues_the_run("pix2pix", tmp_path, 5, 2, args, ["generator", "discriminator"])
