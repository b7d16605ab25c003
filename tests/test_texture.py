"""Texture synthesis: Gatys' Gram matching and the texture encoder against plain-torch twins,
Efros & Leung's sampling by its properties, the example by a smoke run."""
import json
import os

import numpy as np
import pytest
import torch

import minigan as mg
from minigan import optim
from minigan.models import feature_training, texture
from minigan.models.features import vgg19
from test_examples import CONTRACT, assert_resume_continues_the_run, example, run
from twins import texture_torch as twin
from twins.vgg19_torch import VGG19, gram


def _torch_state(module):
    return {k: torch.tensor(v.numpy()) for k, v in module.state_dict().items()}


def _close(a, b, atol, what):
    scale = np.abs(b).max() + 1e-30
    np.testing.assert_allclose(np.asarray(a) / scale, np.asarray(b) / scale, atol=atol, err_msg=what)


# ---------------------------------------------------------------- Gatys


@pytest.mark.parametrize("normalized", [True, False])
def test_gatys_loss_gradient_and_adam_step_match_torch(normalized):
    rng = np.random.default_rng(0)
    network = vgg19("random", last="relu4_1", pool="avg", width=0.25, seed=3)
    theirs = VGG19("relu4_1", "avg", 0.25)
    theirs.load_state_dict(_torch_state(network))
    exemplars = rng.uniform(-1, 1, (2, 3, 40, 32)).astype(np.float32)
    layers = texture.TEXTURE_LAYERS

    targets = texture.gram_targets(network, exemplars, layers)
    with torch.no_grad():
        features = theirs(torch.tensor(exemplars), layers)
        torch_targets = {k: gram(features[k]) for k in layers}
    for k in layers:
        _close(targets[k].numpy(), torch_targets[k].numpy(), 1e-5, f"Gram target {k}")

    canvas = texture.Canvas(2, 32, 32, rng=1)
    pixels = torch.tensor(canvas.image.numpy().copy(), requires_grad=True)
    loss = texture.texture_loss(network, canvas(), targets, normalized)
    loss.backward()
    torch_loss = twin.texture_loss(theirs, pixels, torch_targets, normalized)
    torch_loss.backward()
    np.testing.assert_allclose(loss.item(), torch_loss.item(), rtol=1e-4)
    _close(canvas.image.grad.numpy(), pixels.grad.numpy(), 1e-5, "gradient on the pixels")

    # one projected Adam step, large enough that some pixels leave [-1, 1] and are clamped
    canvas.image.grad = None
    pixels.grad = None
    before = pixels.detach().numpy().copy()
    ours_opt, torch_opt = optim.Adam(canvas.parameters(), lr=0.05), torch.optim.Adam([pixels], lr=0.05)
    step_loss = texture.gatys_step(network, canvas, ours_opt, targets, normalized)
    twin.gatys_step(theirs, pixels, torch_opt, torch_targets, normalized)
    after = pixels.detach().numpy()
    assert (np.abs(after) == 1).any() and np.abs(after).max() <= 1
    assert np.abs(after - before).max() > 0.01
    np.testing.assert_allclose(step_loss, torch_loss.item(), rtol=1e-4)
    # Adam's first step is lr g / (|g| + eps): where |g| is near eps, float32 rounding of g shows
    np.testing.assert_allclose(canvas.image.numpy(), after, atol=1e-4)


def test_gram_loss_is_zero_at_the_exemplar_and_synthesis_lowers_it():
    rng = np.random.default_rng(1)
    network = vgg19("random", last="relu2_1", pool="avg", width=0.25, seed=0)
    exemplar = rng.uniform(-1, 1, (3, 16, 16)).astype(np.float32)
    targets = texture.gram_targets(network, exemplar, ("relu1_1", "relu2_1"))
    assert texture.texture_loss(network, mg.tensor(exemplar[None]), targets).item() == pytest.approx(0, abs=1e-10)
    losses = []
    texture.synthesize_gatys(network, exemplar, size=16, steps=30, lr=0.05, layers=("relu1_1", "relu2_1"),
                             callback=lambda step, loss: losses.append(loss))
    assert losses[-1] < 0.2 * losses[0]


# ---------------------------------------------------------------- Efros & Leung


def test_efros_leung_copies_every_pixel_from_the_exemplar():
    exemplar = np.random.default_rng(2).uniform(-1, 1, (3, 20, 20)).astype(np.float32)  # all pixels distinct
    out = texture.efros_leung(exemplar, 12, window=5, seed=0)
    assert out.shape == (3, 12, 12) and out.dtype == np.float32
    palette = {tuple(p) for p in exemplar.reshape(3, -1).T}
    assert all(tuple(p) in palette for p in out.reshape(3, -1).T)


def test_efros_leung_reproduces_a_periodic_exemplar():
    tile = np.random.default_rng(3).uniform(-1, 1, (3, 4, 5)).astype(np.float32)
    exemplar = np.tile(tile, (1, 6, 5))  # period 4 down, 5 across
    out = texture.efros_leung(exemplar, (17, 19), window=7, seed=4)
    np.testing.assert_array_equal(out[:, 4:], out[:, :-4])
    np.testing.assert_array_equal(out[:, :, 5:], out[:, :, :-5])
    # and it is a translate of the tile
    shifts = [(i, j) for i in range(4) for j in range(5)
              if np.array_equal(np.roll(tile, (-i, -j), axis=(1, 2)), out[:, :4, :5])]
    assert len(shifts) == 1


def test_efros_leung_is_deterministic_for_a_seed_and_varies_with_it():
    exemplar = np.random.default_rng(5).uniform(-1, 1, (3, 16, 16)).astype(np.float32)
    a = texture.efros_leung(exemplar, 10, window=5, seed=7)
    np.testing.assert_array_equal(a, texture.efros_leung(exemplar, 10, window=5, seed=7))
    assert not np.array_equal(a, texture.efros_leung(exemplar, 10, window=5, seed=8))


def test_efros_leung_gaussian_window_is_the_papers():
    g = texture.gaussian_window(11).reshape(11, 11)
    sigma = 11 / 6.4
    assert g.sum() == pytest.approx(1)
    assert g[5, 5] / g[5, 6] == pytest.approx(np.exp(1 / (2 * sigma ** 2)))
    assert g[5, 5] / g[6, 6] == pytest.approx(np.exp(2 / (2 * sigma ** 2)))


@pytest.mark.parametrize("kwargs, message", [
    ({"window": 4}, "odd"), ({"window": 25}, "smaller than"), ({"size": 2}, "at least"),
    ({"eps": -1}, "eps"), ({"exemplar": np.full((3, 16, 16), np.nan)}, "finite"),
    ({"exemplar": np.zeros((16, 16))}, "(C, H, W)")])
def test_efros_leung_refuses_bad_input(kwargs, message):
    args = {"exemplar": np.zeros((3, 16, 16), np.float32), "size": 8, **kwargs}
    with pytest.raises(ValueError, match=message):
        texture.efros_leung(args.pop("exemplar"), **args)


def test_gatys_refuses_bad_exemplars():
    network = vgg19("random", last="relu1_1", width=0.25)
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        texture.gram_targets(network, np.zeros((1, 16, 16), np.float32), ("relu1_1",))
    with pytest.raises(ValueError, match="NaN"):
        texture.gram_targets(network, np.full((3, 8, 8), np.inf, np.float32), ("relu1_1",))


# ---------------------------------------------------------------- the texture encoder


def test_encoder_training_step_matches_torch():
    mg.manual_seed(0)
    ours = feature_training.CropClassifier(5, width=0.125, last="relu3_1")
    theirs = twin.CropClassifier(5, width=0.125, last="relu3_1")
    theirs.load_state_dict(_torch_state(ours))
    pictures = [np.random.default_rng(i).uniform(-1, 1, (3, 24, 30)).astype(np.float32) for i in range(5)]
    images, labels = feature_training.crop_batch(pictures, 6, 16, np.random.default_rng(0))
    assert labels.min() >= 0 and labels.max() < 5
    ours_opt = optim.Adam(ours.parameters(), lr=1e-3)
    torch_opt = torch.optim.Adam(theirs.parameters(), lr=1e-3)
    for _ in range(2):
        loss = feature_training.train_step(ours, ours_opt, mg.tensor(images), mg.tensor(labels))
        torch_loss = twin.train_step(theirs, torch_opt, torch.tensor(images), torch.tensor(labels))
        np.testing.assert_allclose(loss, torch_loss, rtol=1e-5)
    expected = theirs.state_dict()
    for k, v in ours.state_dict().items():
        np.testing.assert_allclose(v.numpy(), expected[k].numpy(), atol=2e-6, err_msg=k)


def test_the_shipped_encoder_loads_is_small_and_learned_its_task():
    from safetensors import safe_open
    path = feature_training.WEIGHTS
    assert os.path.getsize(path) < 1_000_000
    network = feature_training.trained_vgg19()
    out = network(mg.tensor(np.zeros((1, 3, 32, 32), np.float32)), texture.TEXTURE_LAYERS)
    assert [out[k].shape[1] for k in texture.TEXTURE_LAYERS] == [16, 32, 64, 128]
    with safe_open(path, "np") as f:
        meta = f.metadata()
    assert float(meta["heldout_crop_accuracy"]) > 10 * float(meta["chance"])
    with pytest.raises(ValueError, match="deeper"):
        feature_training.trained_vgg19(last="relu5_1")


# ---------------------------------------------------------------- the example

TINY = ["--steps", 4, "--size", 16, "--exemplar-size", 32, "--window", 5, "--exemplars", "brick",
        "Stone/pink_marble", "--checkpoint-every", 2]


def test_example_writes_the_contract_files_and_patch_statistics(tmp_path):
    metrics = run("texture", tmp_path, *TINY)
    for name in CONTRACT + ["samples.npz"]:
        assert (tmp_path / name).exists(), name
    saved = json.loads((tmp_path / "metrics.json").read_text())
    for method in ("gatys", "efros_leung"):
        report = saved["patches"][method]["per_exemplar"]["brick"]
        assert all(np.isfinite(report[k]) for k in ("output", "held_out", "shuffled", "relative"))
    assert saved["patches"]["gatys"]["mean_output"] == pytest.approx(
        np.mean([r["output"] for r in saved["patches"]["gatys"]["per_exemplar"].values()]))
    samples = np.load(tmp_path / "samples.npz")
    assert samples["gatys"].shape == samples["efros_leung"].shape == (2, 3, 16, 16)
    assert samples["exemplar"].shape == (2, 3, 32, 16)
    assert metrics["steps"] == 4


def test_example_resume_continues_the_gatys_run(tmp_path):
    assert_resume_continues_the_run("texture", tmp_path, 4, 2, TINY[2:] + ["--method", "gatys"], ["canvas"])


@pytest.mark.parametrize("args, message", [
    (["--exemplars", "marble"], "unknown exemplar"), (["--window", "4"], "odd"),
    (["--width", "2"], "width"), (["--method", "knn"], "invalid choice")])
def test_example_refuses_bad_input(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit):
        example("texture").main(["--out", str(tmp_path), *args])
    assert message in capsys.readouterr().err
