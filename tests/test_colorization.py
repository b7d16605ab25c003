"""Colorization (Zhang, Isola & Efros 2016) against its references.

The Lab conversions against scikit-image's; the gamut's ab cells against every 8-bit
sRGB colour converted by scikit-image; the .pat reader against a file written from
GIMP's documented header; the soft encoding, the rebalancing, the annealed mean, the
network and whole training steps against the torch twin
(``tests/twins/train_colorization_torch.py``); the AuC against its definition; the
example by smoke runs.
"""
import json
import struct
import warnings

import numpy as np
import pytest
import torch
from skimage import color

import minigan as mg
from minigan import optim
from minigan.data import colour
from minigan.data.lab import in_gamut, lab_to_rgb, rgb_to_lab
from minigan.data.mnist import DataNotFoundError
from minigan.models import colorization
from minigan.testing import assert_params_match, assert_state_match
from test_examples import CONTRACT, assert_resume_continues_the_run, run
from twins import train_colorization_torch as twin

torch.set_num_threads(1)
CENTRES = colorization.ab_bins()
WIDTH = 4
ADAM = dict(lr=1e-3, betas=(0.9, 0.99))


def channels_last(x):
    return np.moveaxis(x, 1, -1)


def random_lab(rng, n, low_ab=-120, high_ab=120):
    return np.stack([rng.uniform(0, 100, n), rng.uniform(low_ab, high_ab, n), rng.uniform(low_ab, high_ab, n)], 1)


# ---------------------------------------------------------------- Lab <-> RGB


def test_rgb_to_lab_is_scikit_images():
    rng = np.random.default_rng(0)
    rgb = rng.uniform(0, 1, (5, 3, 7, 9))
    rgb[0, :, 0, :8] = np.array(np.meshgrid([0, 1], [0, 1], [0, 1])).reshape(3, 8)  # the cube's corners
    rgb[1, :, 0, :3] = [[0.04045, 0.0404, 0.0405]] * 3  # either side of the gamma curve's knee
    np.testing.assert_allclose(rgb_to_lab(rgb), np.moveaxis(color.rgb2lab(channels_last(rgb)), -1, 1),
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(rgb_to_lab(channels_last(rgb), axis=-1), color.rgb2lab(channels_last(rgb)),
                               rtol=1e-10, atol=1e-10)


def test_lab_to_rgb_is_scikit_images_in_and_out_of_gamut():
    lab = random_lab(np.random.default_rng(1), 3000)[:, :, None, None]  # many out of gamut, some with Z < 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-image warns about the negative Z values it clips
        expected = np.moveaxis(color.lab2rgb(channels_last(lab)), -1, 1)
    np.testing.assert_allclose(lab_to_rgb(lab), expected, rtol=1e-10, atol=1e-10)


def test_lab_round_trip_returns_the_colour():
    rgb = np.random.default_rng(2).uniform(0, 1, (4, 3, 5, 5))
    np.testing.assert_allclose(lab_to_rgb(rgb_to_lab(rgb)), rgb, atol=1e-10)


def test_in_gamut_is_whether_scikit_image_returns_the_colour_unchanged():
    lab = random_lab(np.random.default_rng(3), 4000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        back = color.rgb2lab(color.lab2rgb(lab))  # clipping moves an out-of-gamut colour
    kept = np.abs(back - lab).max(1) < 1e-6
    inside = in_gamut(lab, axis=1)
    assert 100 < inside.sum() < 3900  # both kinds are tested
    np.testing.assert_array_equal(inside, kept)


def test_lab_refuses_arrays_without_three_channels():
    with pytest.raises(ValueError, match=r"rgb_to_lab: expected 3 channels on axis 1, got shape \(2, 4, 5, 5\)"):
        rgb_to_lab(np.zeros((2, 4, 5, 5)))


# ---------------------------------------------------------------- the gamut's ab cells


def test_ab_bins_are_the_cells_that_hold_an_srgb_colour():
    """Every 8-bit sRGB colour (scikit-image's conversion) lies in a kept cell, and every kept
    cell holds one of the colours on the faces of the RGB cube sampled at 300 per edge."""
    kept = {tuple(c) for c in np.round(CENTRES / 10).astype(int)}
    v = np.arange(0, 256, 3) / 255
    cube = np.stack(np.meshgrid(v, v, v, indexing="ij"), -1).reshape(-1, 3)
    face = np.stack(np.meshgrid(np.linspace(0, 1, 301), np.linspace(0, 1, 301), indexing="ij"), -1).reshape(-1, 2)
    faces = [np.insert(face, axis, side, axis=1) for axis in range(3) for side in (0.0, 1.0)]
    seen = set()
    for rgb in [cube] + faces:
        ab = color.rgb2lab(rgb[:, None])[:, 0, 1:]
        seen |= {tuple(c) for c in np.round(ab / 10).astype(int)}
    assert seen == kept
    assert len(CENTRES) == 262  # not the paper's 313: docs/colorization.md
    assert (CENTRES % 10 == 0).all() and len({tuple(c) for c in CENTRES}) == len(CENTRES)


# ---------------------------------------------------------------- GIMP's .pat files and the crops


def write_pat(path, pixels, name="test pattern"):
    """A .pat file as GIMP's devel-docs/pat.txt describes it."""
    h, w, depth = pixels.shape
    encoded = name.encode() + b"\0"
    header = struct.pack(">5I", 24 + len(encoded), 1, w, h, depth) + b"GPAT" + encoded
    path.write_bytes(header + pixels.astype(np.uint8).tobytes())


@pytest.mark.parametrize("depth", [1, 3, 4])
def test_read_pat_returns_the_pixels_and_name_written(tmp_path, depth):
    pixels = np.random.default_rng(depth).integers(0, 256, (5, 7, depth)).astype(np.uint8)
    write_pat(tmp_path / "p.pat", pixels, "Wood #3")
    read, name = colour.read_pat(tmp_path / "p.pat")
    np.testing.assert_array_equal(read, pixels)
    assert name == "Wood #3"


def test_read_pat_refuses_other_files(tmp_path):
    (tmp_path / "x.pat").write_bytes(b"\x00" * 40)
    with pytest.raises(ValueError, match="not a GIMP pattern"):
        colour.read_pat(tmp_path / "x.pat")
    write_pat(tmp_path / "short.pat", np.zeros((4, 4, 3)))
    (tmp_path / "short.pat").write_bytes((tmp_path / "short.pat").read_bytes()[:-5])
    with pytest.raises(ValueError, match="truncated"):
        colour.read_pat(tmp_path / "short.pat")


def test_a_folder_loads_colour_pictures_with_alpha_on_white(tmp_path):
    from PIL import Image
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 0] = 255
    rgba[..., 3] = 0
    rgba[0, 0, 3] = 255  # one opaque red pixel; the rest transparent, so white
    write_pat(tmp_path / "a.pat", rgba)
    write_pat(tmp_path / "grey.pat", np.zeros((4, 4, 1)))  # no colour: skipped
    Image.fromarray(np.full((6, 5, 3), 51, np.uint8)).save(tmp_path / "b.png")
    pictures = colour.load_folder(tmp_path)
    assert sorted(pictures) == ["a.pat", "b.png"]
    np.testing.assert_allclose(pictures["a.pat"][:, 0, 0], [1, -1, -1])
    np.testing.assert_allclose(pictures["a.pat"][:, 1:, :], 1)
    np.testing.assert_allclose(pictures["b.png"], 51 / 255 * 2 - 1, atol=1e-6)


def test_missing_gimp_patterns_name_the_package_to_install(tmp_path):
    with pytest.raises(DataNotFoundError, match="apt-get install gimp-data"):
        colour.load_gimp_patterns(str(tmp_path / "absent"))


def test_crops_are_windows_of_the_pictures_tiled_when_small():
    rng = np.random.default_rng(0)
    big, small = rng.uniform(-1, 1, (3, 40, 50)), rng.uniform(-1, 1, (3, 5, 7))
    crops = colour.random_crops([big, small], 60, 16, np.random.default_rng(1))
    assert crops.shape == (60, 3, 16, 16) and crops.dtype == np.float32
    tiled = np.tile(small, (1, 6, 6))
    for crop in crops:
        windows = [p[:, i:i + 16, j:j + 16] for p in (big, tiled)
                   for i in range(p.shape[1] - 15) for j in range(p.shape[2] - 15)]
        assert any(np.allclose(crop, w) for w in windows)


def test_test_pictures_are_whole_pictures_no_training_crop_saw():
    pictures = {f"p{i:02d}": np.full((3, 4, 4), i) for i in range(12)}
    train, test = colour.split_pictures(pictures, ["p03"])
    values = lambda ps: {int(p[0, 0, 0]) for p in ps}  # noqa: E731
    assert values(train).isdisjoint(values(test)) and len(train) + len(test) == 12
    assert values(test) == {3, 0, 6, 11}  # the named one and every 5th of the rest (p00, p06, p11)
    train, test = colour.split_pictures(pictures, ["p03", "p07"], every=None)
    assert values(test) == {3, 7} and len(train) == 10


# ---------------------------------------------------------------- soft encoding, rebalancing, annealed mean


def test_soft_encoding_matches_torch_twin_and_its_definition():
    ab = np.random.default_rng(4).uniform(-100, 100, (3, 2, 4, 5))
    z = colorization.soft_encode(ab, CENTRES)
    expected = twin.soft_encode(torch.tensor(ab), torch.tensor(CENTRES)).numpy()
    np.testing.assert_allclose(z, expected, rtol=1e-5, atol=1e-7)
    assert ((z > 0).sum(1) == 5).all()
    np.testing.assert_allclose(z.sum(1), 1, rtol=1e-6)
    nearest = np.argmin(((ab.transpose(0, 2, 3, 1)[..., None, :] - CENTRES) ** 2).sum(-1), -1)
    np.testing.assert_array_equal(z.argmax(1), nearest)


def test_rebalancing_weights_match_torch_twin_and_have_expectation_one():
    rng = np.random.default_rng(5)
    prior = rng.dirichlet(np.full(len(CENTRES), 0.1))
    w = colorization.rebalancing_weights(prior, CENTRES, lam=0.5)
    np.testing.assert_allclose(w, twin.rebalancing_weights(torch.tensor(prior), torch.tensor(CENTRES)).numpy(),
                               rtol=1e-10)
    d2 = ((CENTRES[:, None] - CENTRES[None]) ** 2).sum(-1)
    smoothed = np.exp(-d2 / 50) @ prior
    smoothed /= smoothed.sum()
    np.testing.assert_allclose(smoothed @ w, 1.0)  # E_p~[w] = 1
    assert np.all(np.diff(w[np.argsort(smoothed)]) <= 1e-12)  # rarer colour, larger weight
    np.testing.assert_allclose(colorization.rebalancing_weights(prior, CENTRES, lam=1.0), 1.0)  # all uniform


def test_nearest_bin_by_the_grid_is_the_nearest_centre_by_search():
    ab = np.random.default_rng(12).uniform(-140, 140, (3000, 2))  # in and out of the gamut
    d2 = ((ab[:, None] - CENTRES[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(colorization.nearest_bin(ab, CENTRES), d2.argmin(1))


def test_empirical_prior_counts_the_nearest_cells():
    ab = np.zeros((1, 2, 2, 2))
    ab[0, 0] = [[3, 3], [21, 3]]  # three pixels nearest (0, 0), one nearest (20, 0)
    p = colorization.empirical_prior(ab, CENTRES)
    expected = {(0, 0): 0.75, (20, 0): 0.25}
    for c, share in zip(map(tuple, CENTRES.astype(int)), p):
        assert share == expected.get(c, 0.0)


@pytest.mark.parametrize("temperature", [1.0, 0.38, 0.05])
def test_annealed_mean_and_its_gradient_match_torch_twin(temperature):
    rng = np.random.default_rng(6)
    logits = rng.standard_normal((2, len(CENTRES), 3, 4))  # float64: at small T float32 loses the gradient
    g = rng.standard_normal((2, 2, 3, 4))
    x, tx = mg.tensor(logits, requires_grad=True), torch.tensor(logits, requires_grad=True)
    ab = colorization.annealed_mean(x, CENTRES, temperature)
    tab = twin.annealed_mean(tx, torch.tensor(CENTRES), temperature)
    assert ab.dtype == np.float64
    np.testing.assert_allclose(ab.numpy(), tab.detach().numpy(), rtol=1e-10, atol=1e-10)
    (ab * mg.tensor(g)).sum().backward()
    (tab * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-9)


def test_annealed_mean_goes_from_the_mean_to_the_mode():
    logits = np.random.default_rng(7).standard_normal((1, len(CENTRES), 1, 1)) * 3
    p = np.exp(logits[0, :, 0, 0]) / np.exp(logits[0, :, 0, 0]).sum()
    mean = colorization.annealed_mean(mg.tensor(logits), CENTRES, 1.0).numpy()[0, :, 0, 0]
    mode = colorization.annealed_mean(mg.tensor(logits), CENTRES, 0.01).numpy()[0, :, 0, 0]
    np.testing.assert_allclose(mean, p @ CENTRES, rtol=1e-5)
    np.testing.assert_allclose(mode, CENTRES[p.argmax()], atol=1e-3)


# ---------------------------------------------------------------- the network and its training step


def _twins(out_channels, seed=0):
    mg.manual_seed(seed)
    net = colorization.ColorizationNet(out_channels, WIDTH)
    tnet = twin.ColorizationNet(out_channels, WIDTH)
    tnet.load_state_dict({k: torch.tensor(np.array(v.numpy())) for k, v in net.state_dict().items()})
    return net, tnet


def _batch(seed, n=4, size=16):
    lab = rgb_to_lab(np.random.default_rng(seed).uniform(0, 1, (n, 3, size, size))).astype(np.float32)
    return colorization.lightness_input(lab), lab[:, 1:]


def test_network_matches_torch_twin_with_dilated_middle_and_half_resolution_logits():
    net, tnet = _twins(len(CENTRES))
    assert list(net.state_dict()) == list(tnet.state_dict())
    assert [m.dilation for m in net.modules() if isinstance(m, mg.nn.Conv2d)].count((2, 2)) == 2
    lightness, _ = _batch(0)
    out, tout = net(mg.tensor(lightness)), tnet(torch.tensor(lightness))
    assert out.shape == (4, len(CENTRES), 8, 8)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match=r"divisible by 4, got \(4, 1, 10, 10\)"):
        net(mg.zeros(4, 1, 10, 10))


@pytest.mark.parametrize("loss", ["classification", "rebalanced", "l2"])
def test_training_steps_match_torch_twin(loss):
    net, tnet = _twins(2 if loss == "l2" else len(CENTRES))
    centres = None if loss == "l2" else CENTRES
    weights = None
    if loss == "rebalanced":
        weights = colorization.rebalancing_weights(np.random.default_rng(8).dirichlet(np.ones(len(CENTRES))), CENTRES)
    opt, topt = optim.Adam(net.parameters(), **ADAM), torch.optim.Adam(tnet.parameters(), **ADAM)
    tc = None if centres is None else torch.tensor(centres, dtype=torch.float32)
    tw = None if weights is None else torch.tensor(weights, dtype=torch.float32)
    for step in range(2):
        lightness, ab = _batch(10 + step)
        mine = colorization.train_step(net, opt, mg.tensor(lightness), mg.tensor(ab), centres, weights)
        theirs = twin.train_step(tnet, topt, torch.tensor(lightness), torch.tensor(ab), tc, tw)
        np.testing.assert_allclose(mine, theirs, rtol=1e-5)
        assert_params_match(net, tnet, rtol=1e-3, atol=2e-5, grads=True)  # gradients up to ~1
        # Adam moves a weight whose gradient is near 0 by up to lr: float32 noise there shows
        assert_state_match(net, tnet, rtol=1e-4, atol=ADAM["lr"] / 10)
    net.eval()
    tnet.eval()
    lightness, _ = _batch(20)
    with mg.no_grad(), torch.no_grad():
        ab = colorization.colorize(net, mg.tensor(lightness), centres).numpy()
        tab = twin.colorize(tnet, torch.tensor(lightness), tc).numpy()
    assert ab.shape == (4, 2, 16, 16)
    np.testing.assert_allclose(ab, tab, rtol=1e-3, atol=1e-3)


def test_classification_loss_gradient_matches_torch_twin():
    net, tnet = _twins(len(CENTRES))
    lightness, ab = _batch(30)
    z = colorization.soft_encode(ab.reshape(4, 2, 8, 2, 8, 2).mean((3, 5)), CENTRES)
    v = np.random.default_rng(9).uniform(0.2, 5, (4, 8, 8)).astype(np.float32)
    loss = colorization.classification_loss(net(mg.tensor(lightness)), mg.tensor(z), mg.tensor(v))
    tz = torch.tensor(z)
    tloss = (-(tz * torch.log_softmax(tnet(torch.tensor(lightness)), 1)).sum(1) * torch.tensor(v)).mean()
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-5)
    loss.backward()
    tloss.backward()
    assert_params_match(net, tnet, rtol=1e-3, atol=1e-5, grads=True)


# ---------------------------------------------------------------- the measures


def test_auc_is_the_share_within_each_threshold_averaged():
    rng = np.random.default_rng(11)
    target = rng.uniform(-80, 80, (3, 2, 5, 5))
    predicted = target + rng.normal(0, 40, target.shape)
    error = np.sqrt(((predicted - target) ** 2).sum(1))
    expected = np.mean([(error <= t).mean() for t in range(151)])
    assert colorization.ab_error_auc(predicted, target) == pytest.approx(expected, abs=1e-12)
    assert colorization.ab_error_auc(target, target) == 1.0
    shifted = target.copy()
    shifted[:, 0] += 30.5  # every error 30.5: within t for t = 31..150, 120 of 151
    assert colorization.ab_error_auc(shifted, target) == pytest.approx(120 / 151)
    ab = np.zeros((1, 2, 1, 2))
    ab[0, :, 0, 0], ab[0, :, 0, 1] = (3, 4), (-6, 8)
    assert colorization.mean_chroma(ab) == pytest.approx(7.5)


# ---------------------------------------------------------------- examples/colorization.py


@pytest.mark.parametrize("flags", [("--loss", "classification"), ("--loss", "l2")])
def test_colorization_example_writes_the_contract_files(tmp_path, flags):
    metrics = run("colorization", tmp_path, "--steps", 2, "--batch-size", 8, "--width", 4, *flags)
    for f in CONTRACT + ["samples.npz"]:
        assert (tmp_path / f).stat().st_size > 0, f
    assert json.loads((tmp_path / "metrics.json").read_text())["steps"] == 2 == metrics["steps"]
    samples = np.load(tmp_path / "samples.npz")
    assert samples["input"].shape == (1000, 1, 32, 32)
    assert samples["output"].shape == samples["target"].shape == (1000, 3, 32, 32)
    for k in ("input", "output", "target"):
        assert samples[k].dtype == np.float32 and samples[k].min() >= -1 and samples[k].max() <= 1, k
    # the output keeps the input's lightness: its L is the input's (up to the gamut's clipping)
    lab = rgb_to_lab((samples["output"][:50].astype(np.float64) + 1) / 2)
    assert np.median(np.abs(lab[:, 0] - (samples["input"][:50, 0] + 1) * 50)) < 1.0
    assert 0 < metrics["auc"] <= 1 and 0 < metrics["grey_auc"] < 1 and metrics["target_chroma"] > 5
    assert metrics["bins"] == (262 if flags[1] == "classification" else None)
    kinds = metrics["by_kind"]
    assert sorted(kinds) == ["pattern", "photo"] and kinds["photo"]["crops"] + kinds["pattern"]["crops"] == 1000


def test_colorization_example_reads_a_folder_of_pictures(tmp_path):
    from PIL import Image
    folder = tmp_path / "pictures"
    folder.mkdir()
    rng = np.random.default_rng(14)
    for i in range(6):  # 5 for training, 1 held out
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    metrics = run("colorization", tmp_path / "run", "--data", folder, "--steps", 1, "--batch-size", 4,
                  "--width", 4, "--loss", "l2")
    assert metrics["data"] == str(folder) and list(metrics["by_kind"]) == ["picture"]
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("no pictures here")
    with pytest.raises(DataNotFoundError, match="no colour PNG, JPEG or .pat pictures"):
        run("colorization", tmp_path / "empty", "--data", tmp_path / "notes", "--steps", 1)


def test_colorization_example_resumed_run_equals_uninterrupted_run(tmp_path):
    args = ("--batch-size", 8, "--width", 4, "--checkpoint-every", 2)
    once, twice = assert_resume_continues_the_run("colorization", tmp_path, 4, 2, args, ["net"])
    np.testing.assert_array_equal(*(np.load(d / "samples.npz")["output"] for d in (once, twice)))


def test_colorization_compare_writes_the_figure(tmp_path, capsys):
    rng = np.random.default_rng(13)
    lightness = rng.uniform(-1, 1, (10, 1, 32, 32)).astype(np.float32)
    scores = {"crops": 10, "auc": 0.8, "grey_auc": 0.7, "chroma": 20.0, "target_chroma": 30.0}
    for loss in ("l2", "classification"):
        (tmp_path / loss).mkdir()
        np.savez(tmp_path / loss / "samples.npz", input=lightness, output=rng.uniform(-1, 1, (10, 3, 32, 32)),
                 target=rng.uniform(-1, 1, (10, 3, 32, 32)))
        (tmp_path / loss / "metrics.json").write_text(json.dumps({**scores, "by_kind": {"photo": scores}}))
    figure = tmp_path / "figure.png"
    run("colorization", tmp_path / "unused", "--compare", tmp_path / "l2", tmp_path / "classification",
        "--figure", figure)
    from PIL import Image
    width, height = Image.open(figure).size
    assert (width, height) == (4 * 66 + 2, 8 * 66 + 2)  # grey | l2 | classification | truth, 8 rows of 64 + 2
    assert capsys.readouterr().out.count("auc 0.800 (grey 0.700), chroma 20.0 (targets 30.0)") == 4
    assert not (tmp_path / "unused").exists()


@pytest.mark.slow
def test_rebalanced_classification_is_more_colourful_than_l2_on_held_out_photos(tmp_path):
    """The paper's claim on the default runs (seed 0, docs/colorization.md): on the held-out
    photos the rebalanced classifier's mean chroma is above L2's and below the targets'."""
    l2 = run("colorization", tmp_path / "l2", "--loss", "l2")["by_kind"]["photo"]
    classification = run("colorization", tmp_path / "classification")["by_kind"]["photo"]
    assert l2["chroma"] < classification["chroma"] < classification["target_chroma"]
    assert classification["auc"] > classification["grey_auc"]


def test_colorization_example_runs_on_cuda(fake_cuda, tmp_path):
    """--device cuda on the CuPy stand-in: every array the step and the decoding touch is on the device."""
    metrics = run("colorization", tmp_path, "--device", "cuda", "--steps", 2, "--batch-size", 4, "--width", 4)
    for f in CONTRACT + ["samples.npz"]:
        assert (tmp_path / f).stat().st_size > 0, f
    assert metrics["device"] == "cuda" and np.isfinite(metrics["auc"])
