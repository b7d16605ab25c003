"""minigan.utils: grids, PNGs, plots, metrics, checkpoints and progress bars, as a specification."""
import importlib
import json
import os

import numpy as np
import pytest
import safetensors.numpy
from PIL import Image

from minigan.utils import (CheckpointError, load_checkpoint, make_grid, progress, remove_stale_temporaries,
                           save_checkpoint, save_image, save_losses, save_npz, save_points, to_numpy,
                           write_metrics)

progress_module = importlib.import_module("minigan.utils.progress")  # the name is the function


class FakeTensor:
    """What the utils accept as a Tensor: anything with a ``.array`` array."""

    def __init__(self, data):
        self.array = data


# ---------------------------------------------------------------- to_numpy

def test_to_numpy_unwraps_tensors_cupy_and_torch_like_arrays():
    array = np.arange(6.0).reshape(2, 3)
    assert to_numpy(array) is array
    assert to_numpy(FakeTensor(array)) is array

    class CupyLike:  # the two things to_numpy looks for on a CuPy array
        __cuda_array_interface__ = {}

        def get(self):
            return array

    assert to_numpy(FakeTensor(CupyLike())) is array
    assert to_numpy(np.float32(2.5)).dtype == np.float32

    class TorchLike:  # torch's ``.data`` is another Tensor: to_numpy must not recurse forever
        @property
        def data(self):
            return TorchLike()

        def detach(self):
            return self

        def cpu(self):
            return self

        def numpy(self, force=False):  # force: torch's lazy ZeroTensor gradients too
            return array

    assert to_numpy(TorchLike()) is array


def test_to_numpy_is_the_one_converter_of_minigan_utils_testing_and_state_dicts():
    import torch

    import minigan as mg
    from minigan import backend, testing
    from minigan.nn.module import to_array

    assert to_numpy is backend.to_numpy and testing.to_numpy is backend.to_numpy
    x = mg.tensor([[1.0, 2.0]])
    assert to_numpy(x) is x.array and to_array(x) is x.array
    np.testing.assert_array_equal(to_numpy(torch.tensor([3.0, 4.0])), [3.0, 4.0])
    np.testing.assert_array_equal(to_array(torch.tensor([3.0, 4.0])), [3.0, 4.0])
    assert to_array(x.array) is x.array  # arrays stay on their device


# ---------------------------------------------------------------- make_grid

def _numbered_images(n, channels, height, width):
    """Image k holds 100 * k + (its pixel index), so every pixel says where it came from."""
    pixels = np.arange(channels * height * width, dtype=np.float32).reshape(channels, height, width)
    return np.stack([100 * k + pixels for k in range(n)])


def test_make_grid_places_images_row_major_with_shared_padding():
    images = _numbered_images(5, channels=2, height=3, width=4)
    grid = make_grid(images, nrow=3, padding=1, pad_value=-7.0)

    # 3 columns, 2 rows; each cell is the image plus one pixel of padding, plus one closing pixel.
    assert grid.shape == (2, 2 * (3 + 1) + 1, 3 * (4 + 1) + 1)
    corners = {0: (1, 1), 1: (1, 6), 2: (1, 11), 3: (5, 1), 4: (5, 6)}  # (top, left), by hand
    expected = np.full(grid.shape, -7.0, dtype=np.float32)
    for k, (top, left) in corners.items():
        expected[:, top:top + 3, left:left + 4] = images[k]
    np.testing.assert_array_equal(grid, expected)  # the empty 6th cell is padding too


def test_make_grid_accepts_lists_single_images_and_tensors():
    images = _numbered_images(3, channels=1, height=2, width=2)
    batch_grid = make_grid(images, nrow=2)
    np.testing.assert_array_equal(make_grid(list(images), nrow=2), batch_grid)
    np.testing.assert_array_equal(make_grid(FakeTensor(images), nrow=2), batch_grid)
    # One image (C, H, W) or (H, W) is a batch of one, padded on every side.
    np.testing.assert_array_equal(make_grid(images[0], padding=1)[:, 1:3, 1:3], images[0])
    assert make_grid(images[0, 0], padding=1).shape == (1, 4, 4)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        make_grid(np.zeros((1, 1, 1, 2, 2)))


def test_make_grid_normalize_clips_to_value_range_and_pads_in_unit_range():
    images = np.array([-2.0, -1.0, 0.0, 3.0]).reshape(1, 1, 2, 2)
    grid = make_grid(images, padding=1, pad_value=1.0, value_range=(-1, 1), normalize=True)
    np.testing.assert_allclose(grid[0, 1:3, 1:3], [[0.0, 0.0], [0.5, 1.0]])
    assert np.all(grid[0, 0] == 1.0) and np.all(grid[0, :, 0] == 1.0)
    # Without a range, the batch's own min and max map to 0 and 1.
    auto = make_grid(images, padding=0, normalize=True)
    np.testing.assert_allclose(auto.ravel(), [0.0, 0.2, 0.4, 1.0])


# ---------------------------------------------------------------- save_image

def test_save_image_maps_value_range_to_rounded_clipped_bytes(tmp_path):
    values = np.array([-1.0, -0.5, 0.0, 0.5, 1.0, 2.0, -3.0], dtype=np.float32)
    # (x + 1) / 2 * 255, rounded half up, clipped: worked out by hand.
    expected = [0, 64, 128, 191, 255, 255, 0]
    path = tmp_path / "gray.png"
    save_image(values.reshape(1, 1, 1, 7), path, padding=0)
    decoded = Image.open(path)
    assert decoded.mode == "L"
    np.testing.assert_array_equal(np.asarray(decoded), [expected])


def test_save_image_writes_rgb_grid_with_black_padding(tmp_path):
    images = np.zeros((2, 3, 2, 2), dtype=np.float32)
    images[1, 0] = 1.0  # second image: red (channel 0 at the top of the range)
    path = tmp_path / "sub" / "rgb.png"  # the directory is created
    save_image(images, path, nrow=2, value_range=(0, 1), padding=1)
    pixels = np.asarray(Image.open(path))
    assert pixels.shape == (4, 7, 3)
    np.testing.assert_array_equal(pixels[1, 4], [255, 0, 0])
    np.testing.assert_array_equal(pixels[1, 1], [0, 0, 0])
    np.testing.assert_array_equal(pixels[0], 0)
    with pytest.raises(ValueError, match="2 channels"):
        save_image(np.zeros((1, 2, 2, 2)), tmp_path / "bad.png")


# ---------------------------------------------------------------- plots

def _is_png(path):
    with Image.open(path) as picture:
        return picture.format == "PNG" and picture.size[0] > 0


def test_save_points_and_save_losses_write_pngs(tmp_path):
    points = np.random.default_rng(0).normal(size=(200, 2))
    save_points(FakeTensor(points), tmp_path / "points.png", reference=np.eye(2), limits=(-4, 4))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        save_points(np.zeros((5, 3)), tmp_path / "bad.png")

    history = {"generator": list(np.linspace(2, 1, 300)), "critic": [FakeTensor(np.float32(0.5))] * 60}
    save_losses(history, tmp_path / "losses.png", title="run")
    save_losses(history, tmp_path / "raw.png", smooth=1)
    assert all(_is_png(tmp_path / name) for name in ("points.png", "losses.png", "raw.png"))


# ---------------------------------------------------------------- metrics

def test_write_metrics_converts_numpy_to_plain_sorted_json(tmp_path):
    path = tmp_path / "metrics.json"
    write_metrics(path, {"steps": np.int64(3), "fid": np.float32(0.5), "ok": np.bool_(True),
                         "per_class": np.array([1, 2]), "loss": float("nan"),
                         "modes": {10: np.float64(0.25)}, "shape": (2, 3)})
    text = path.read_text()
    assert text.endswith("\n")
    loaded = json.loads(text)
    assert loaded == {"fid": 0.5, "loss": None, "modes": {"10": 0.25}, "ok": True,
                      "per_class": [1, 2], "shape": [2, 3], "steps": 3}
    assert type(loaded["steps"]) is int
    assert list(loaded) == sorted(loaded)  # written with sorted keys


# ---------------------------------------------------------------- checkpoints

def _training_state():
    rng = np.random.Generator(np.random.PCG64(12345))
    return {
        "step": 1200,
        "model": {"generator": {"0": {"weight": FakeTensor(np.ones((3, 2), np.float32))}}},
        "optimizers": {"g": {"state": {0: {"step": np.int64(7),
                                           "exp_avg": np.full(4, 0.5, np.float64)}},
                             "param_groups": [{"lr": 2e-4, "betas": (0.5, 0.999), "params": [0]}]}},
        "rng": rng.bit_generator.state,  # holds 128-bit ints
        "big": 2 ** 127 + 1,
        "negative_big": -(2 ** 90),
        "scalar_array": np.array(3.5),  # 0-d
        "counts": np.arange(6, dtype=np.int64).reshape(2, 3),
        "mask": np.array([True, False]),
        "empty": np.zeros((0, 3), np.float32),
        "name": "dcgan",
        "nothing": None,
        "flags": [True, False, [1.5, "x", None, [np.float32(0.25)]]],
        "nan": float("nan"),
        "ratios": {1.5: "float key", (1, 2): "tuple key", True: "bool key"},
    }


def _assert_same(loaded, expected, where="state"):
    """Equal values and equal types all the way down (a tuple is not a list, 1 is not '1')."""
    if isinstance(expected, FakeTensor):
        expected = expected.array
    if isinstance(expected, np.ndarray):
        assert isinstance(loaded, np.ndarray), where
        assert (loaded.dtype, loaded.shape) == (expected.dtype, expected.shape), where
        np.testing.assert_array_equal(loaded, expected, err_msg=where)
        return
    assert type(loaded) is type(expected), f"{where}: {type(loaded)} != {type(expected)}"
    if isinstance(expected, dict):
        assert list(loaded) == list(expected), where
        for key in expected:
            _assert_same(loaded[key], expected[key], f"{where}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        assert len(loaded) == len(expected), where
        for i, (a, b) in enumerate(zip(loaded, expected)):
            _assert_same(a, b, f"{where}[{i}]")
    elif isinstance(expected, float) and np.isnan(expected):
        assert np.isnan(loaded), where
    else:
        assert loaded == expected, where


def test_checkpoint_round_trips_nested_state_exactly(tmp_path):
    path = tmp_path / "checkpoint.safetensors"
    state = _training_state()
    save_checkpoint(path, state)
    loaded = load_checkpoint(path)
    _assert_same(loaded, state)
    assert loaded["counts"].flags.writeable  # optimizers update their state in place

    # The restored RNG state continues the same stream.
    original, restored = (np.random.Generator(np.random.PCG64()) for _ in range(2))
    original.bit_generator.state, restored.bit_generator.state = state["rng"], loaded["rng"]
    np.testing.assert_array_equal(original.random(5), restored.random(5))


def test_checkpoint_is_plain_safetensors_with_dotted_names(tmp_path):
    path = tmp_path / "checkpoint.safetensors"
    save_checkpoint(path, _training_state())
    arrays = safetensors.numpy.load_file(path)  # a pickle-free format any safetensors reader opens
    assert {"model.generator.0.weight", "optimizers.g.state.0.exp_avg", "scalar_array",
            "counts", "mask", "empty"} == set(arrays)


def test_checkpoint_refuses_ambiguous_names_and_unstorable_leaves(tmp_path):
    with pytest.raises(ValueError, match="'a.b'"):
        save_checkpoint(tmp_path / "c", {"a.b": np.zeros(1), "a": {"b": np.zeros(1)}})
    with pytest.raises(TypeError, match="model.fn"):
        save_checkpoint(tmp_path / "c", {"model": {"fn": print}})
    with pytest.raises(TypeError, match="labels"):
        save_checkpoint(tmp_path / "c", {"labels": np.array(["cat", "dog"])})
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_checkpoint_write_that_fails_leaves_old_file_and_no_temp(tmp_path, monkeypatch, failing):
    path = tmp_path / "checkpoint.safetensors"
    save_checkpoint(path, {"step": 1, "w": np.zeros(3)})
    before = path.read_bytes()

    def crash(*args):
        raise OSError(f"simulated crash in os.{failing}")

    monkeypatch.setattr(os, failing, crash)
    with pytest.raises(OSError, match="simulated crash"):
        save_checkpoint(path, {"step": 2, "w": np.ones(3)})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == [path.name]
    assert load_checkpoint(path)["step"] == 1


_OUTPUTS = {
    "samples.npz": lambda path, v: save_npz(path, x=np.full((40, 3), v, dtype=np.float32)),
    "metrics.json": lambda path, v: write_metrics(path, {"value": v}),
    "samples.png": lambda path, v: save_image(np.full((4, 1, 8, 8), v / 10), path),
    "points.png": lambda path, v: save_points(np.full((10, 2), float(v)), path),
    "losses.png": lambda path, v: save_losses({"loss": [float(v)] * 5}, path),
}


@pytest.mark.parametrize("name", sorted(_OUTPUTS))
@pytest.mark.parametrize("failing", ["write", "replace"])
def test_every_output_write_that_fails_midway_leaves_old_file_and_no_temp(tmp_path, monkeypatch, name, failing):
    import builtins
    import io

    path = tmp_path / name
    _OUTPUTS[name](path, 1)
    before = path.read_bytes()
    if failing == "replace":
        def crash(*args):
            raise OSError("simulated crash in os.replace")
        monkeypatch.setattr(os, "replace", crash)
    else:  # the temporary is opened, half written, then the disk is full
        real_open = builtins.open

        class HalfWritten(io.FileIO):
            def write(self, data):
                super().write(bytes(data)[: len(data) // 2])
                raise OSError("simulated crash: no space left on device")

        def fake_open(file, mode="r", *args, **kwargs):
            if str(file).endswith(".tmp") and "b" in mode:
                return HalfWritten(file, mode.replace("b", ""))
            return real_open(file, mode, *args, **kwargs)
        monkeypatch.setattr(builtins, "open", fake_open)
    with pytest.raises(OSError, match="simulated crash"):
        _OUTPUTS[name](path, 2)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == [name]


def test_stale_temporaries_of_a_killed_write_are_removed_and_nothing_else(tmp_path):
    from minigan.utils.experiment import Experiment, RunSettings

    stale = ["samples.npz.0a1b2c3d.tmp", "checkpoint.safetensors.deadbeef.tmp"]
    kept = ["notes.tmp", "samples.npz", "data.12345678.tmp.bak"]
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"x")
    assert sorted(remove_stale_temporaries(tmp_path)) == sorted(str(tmp_path / n) for n in stale)
    assert sorted(os.listdir(tmp_path)) == sorted(kept)
    (tmp_path / stale[0]).write_bytes(b"x")
    Experiment("toy", RunSettings(out=str(tmp_path), progress=False), {}, {})  # a run cleans up on start
    assert sorted(os.listdir(tmp_path)) == sorted(kept)


def test_a_checkpoint_with_flipped_tensor_bytes_is_refused_naming_file_and_tensor(tmp_path):
    import struct

    path = tmp_path / "checkpoint.safetensors"
    save_checkpoint(path, {"step": 3, "model": {"w": np.arange(6, dtype=np.float32), "b": np.ones(2)}})
    whole = bytearray(path.read_bytes())
    header_len = struct.unpack("<Q", whole[:8])[0]
    header = json.loads(whole[8:8 + header_len])
    start, _ = header["model.w"]["data_offsets"]
    whole[8 + header_len + start + 5] ^= 0x10  # one bit of w[1], the header intact
    path.write_bytes(bytes(whole))
    with pytest.raises(CheckpointError, match=r"checkpoint.safetensors.*'model.w' is corrupt"):
        load_checkpoint(path)


def test_a_checkpoint_without_checksums_still_loads(tmp_path):
    path = tmp_path / "old.safetensors"
    save_checkpoint(path, _training_state())
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        arrays = {k: f.get_tensor(k) for k in f.keys()}
        meta = json.loads(f.metadata()["minigan"])
    del meta["crc32"]  # as written before the checksums existed
    safetensors.numpy.save_file(arrays, str(path), metadata={"minigan": json.dumps(meta)})
    state = load_checkpoint(path)
    assert state["step"] == _training_state()["step"]


def test_loading_a_missing_truncated_or_foreign_file_names_the_path(tmp_path):
    path = tmp_path / "checkpoint.safetensors"
    with pytest.raises(FileNotFoundError, match="checkpoint.safetensors"):
        load_checkpoint(path)

    save_checkpoint(path, _training_state())
    whole = path.read_bytes()
    for broken in (whole[: len(whole) // 2], whole[:5], b"not a checkpoint at all"):
        path.write_bytes(broken)
        with pytest.raises(CheckpointError, match="checkpoint.safetensors"):
            load_checkpoint(path)

    safetensors.numpy.save_file({"w": np.zeros(2)}, str(path))  # valid, but not ours
    with pytest.raises(CheckpointError, match="not a minigan checkpoint"):
        load_checkpoint(path)


# ---------------------------------------------------------------- progress

def test_progress_iterates_like_its_input_and_takes_postfix(capsys):
    bar = progress(3, desc="train")
    seen = []
    for step in bar:
        bar.set_postfix(loss=0.5)
        seen.append(step)
    assert seen == [0, 1, 2]
    assert "train" in capsys.readouterr().err  # drawn on stderr, not stdout
    assert list(progress(["a", "b"], disable=True)) == ["a", "b"]


def test_progress_falls_back_to_a_plain_loop_without_tqdm(monkeypatch, capsys):
    monkeypatch.setattr(progress_module, "tqdm", None)
    with progress(range(2, 4), desc="train") as bar:
        bar.set_postfix(loss=1.0)
        bar.update()
        assert list(bar) == [2, 3] and len(bar) == 2
    assert capsys.readouterr().err == ""


def test_progress_is_silenced_by_environment(monkeypatch, capsys):
    monkeypatch.setenv("MINIGAN_PROGRESS", "0")
    assert list(progress(2, desc="quiet")) == [0, 1]
    assert "quiet" not in capsys.readouterr().err


# ---------------------------------------------------------------- experiment

def _experiment(out, **settings):
    import minigan as mg
    from minigan import nn, optim
    from minigan.utils.experiment import Experiment, RunSettings

    mg.manual_seed(0)
    model = nn.Linear(2, 1)
    opt = optim.Adam(model.parameters(), lr=0.1)
    run = Experiment("toy", RunSettings(out=str(out), seed=3, checkpoint_every=2, progress=False, **settings),
                     {"model": model}, {"model": opt})
    return run, model, opt


def _train(run, model, opt, steps):
    import minigan as mg

    run.maybe_resume()
    for _ in run.steps(steps):
        loss = (model(mg.randn(4, 2)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        run.log({"loss": loss.item()})
    return run.finish({})


def test_experiment_takes_explicit_settings_and_a_resumed_run_ends_where_one_run_ends(tmp_path):
    metrics = _train(*_experiment(tmp_path / "once"), 5)
    assert metrics["steps"] == 5 and metrics["seed"] == 3 and metrics["device"] == "cpu"
    for f in ["losses.png", "metrics.json", "checkpoint.safetensors"]:
        assert (tmp_path / "once" / f).stat().st_size > 0, f

    _train(*_experiment(tmp_path / "twice"), 3)
    _train(*_experiment(tmp_path / "twice", resume=True), 5)
    once, twice = (load_checkpoint(str(tmp_path / d / "checkpoint.safetensors")) for d in ("once", "twice"))
    for k in once["modules"]["model"]:
        np.testing.assert_array_equal(once["modules"]["model"][k], twice["modules"]["model"][k], err_msg=k)
    np.testing.assert_array_equal(once["history"]["loss"], twice["history"]["loss"])


def test_experiment_writes_into_runs_name_data_by_default(tmp_path, monkeypatch):
    from minigan.utils.experiment import Experiment, RunSettings

    monkeypatch.chdir(tmp_path)
    assert Experiment("gan", RunSettings(data="ring"), {}, {}).out == os.path.join("runs", "gan-ring")
    assert Experiment("toy", RunSettings(), {}, {}).out == os.path.join("runs", "toy")


def test_a_non_finite_loss_stops_the_run_naming_step_and_loss_and_keeps_the_checkpoint(tmp_path):
    from minigan.utils.experiment import TrainingDiverged

    run, model, opt = _experiment(tmp_path)
    _train(run, model, opt, 4)
    before = (tmp_path / "checkpoint.safetensors").read_bytes()
    run, model, opt = _experiment(tmp_path, resume=True)
    run.maybe_resume()
    with pytest.raises(TrainingDiverged, match=r"step 6: loss 'g_loss' is inf"):
        for step in run.steps(10):
            run.log({"d_loss": 0.5, "g_loss": 0.5 if step < 5 else float("inf")})
    assert (tmp_path / "checkpoint.safetensors").read_bytes() == before
    assert run.history["g_loss"] == [0.5]  # step 5 recorded; the non-finite value of step 6 is not


@pytest.mark.parametrize("where", ["parameter", "optimizer"])
def test_a_checkpoint_with_non_finite_parameters_or_optimizer_state_is_not_written(tmp_path, where):
    from minigan.utils.experiment import TrainingDiverged

    run, model, opt = _experiment(tmp_path)
    _train(run, model, opt, 2)
    before = (tmp_path / "checkpoint.safetensors").read_bytes()
    if where == "parameter":
        model.weight.array[...] = np.nan
        match = r"modules.model.weight"
    else:
        state = next(iter(opt.state.values()))
        key = next(k for k, v in state.items() if hasattr(v, "shape") or hasattr(v, "data"))
        to_numpy(state[key])[...] = np.inf
        match = r"optimizers.model.state.*" + key
    with pytest.raises(TrainingDiverged, match=match):
        run.save()
    assert (tmp_path / "checkpoint.safetensors").read_bytes() == before


def test_an_experiment_refuses_an_out_holding_a_run_before_writing_anything(tmp_path):
    from minigan.utils.experiment import Experiment, RunExists, RunSettings

    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text("{}")
    (out / "samples.npz.0a1b2c3d.tmp").write_bytes(b"x")
    with pytest.raises(RunExists, match=r"metrics.json.*--resume.*--overwrite"):
        Experiment("toy", RunSettings(out=str(out), progress=False), {}, {})
    assert sorted(os.listdir(out)) == ["metrics.json", "samples.npz.0a1b2c3d.tmp"]
    for flag in ("resume", "overwrite"):
        Experiment("toy", RunSettings(out=str(out), progress=False, **{flag: True}), {}, {})
