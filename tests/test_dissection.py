"""GAN dissection against its torch twin (``tests/twins/dissection_torch.py``) and closed forms.

The segmenter's forward, gradients and one Adam step; the colour DCGAN's training step on
rendered scenes; the dissection (t_u, IoU, the mean activation on a concept) against
torch.quantile and boolean masks, and against constructed cases with a known IoU; the
intervention hooks (ablation, insertion) against the twin's in-place edit, and that they
change the chosen units in the chosen patch only. The renderer's label maps against its
colours and its geometry. Bad inputs, and the example by a smoke run.
"""
import json

import numpy as np
import pytest
import torch

import minigan as mg
from minigan import optim
from minigan.data.scenes import CLOUD, GRASS, SCENE_CONCEPTS, SKY, TREE, render_scenes
from minigan.models import dissection as ds
from minigan.testing import assert_forward_backward_match, assert_state_match, load_into_twin
from test_examples import CONTRACT, assert_resume_continues_the_run, run
from twins import dissection_torch as twin

torch.set_num_threads(1)
LATENT, WIDTH = 16, 4


# ---------------------------------------------------------------- the renderer


def test_scenes_are_seeded_images_in_range_with_integer_label_maps():
    x, y = render_scenes(40, seed=3)
    assert x.shape == (40, 3, 32, 32) and x.dtype == np.float32 and -1 <= x.min() and x.max() <= 1
    assert y.shape == (40, 32, 32) and y.dtype == np.int64 and set(np.unique(y)) <= set(range(6))
    x2, y2 = render_scenes(40, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(render_scenes(40, seed=4)[0], x)
    assert render_scenes(2, seed=0, size=64)[0].shape == (2, 3, 64, 64)
    assert (np.bincount(y.ravel(), minlength=6) > 0).all()  # every concept is drawn


def test_label_maps_agree_with_the_colours_drawn():
    """Each concept has its own colours: sky is blue, clouds near white, grass a bright green
    (green above 0.49 of 1), trees darker than any grass (green below 0.47)."""
    x, y = render_scenes(200, seed=1)
    rgb = (x.transpose(0, 2, 3, 1) + 1) / 2
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    sky, cloud, grass, tree = (y == SKY), (y == CLOUD), (y == GRASS), (y == TREE)
    assert (b[sky] > r[sky] + 0.1).all() and (b[sky] >= g[sky]).all()
    assert (rgb[cloud].min(-1) > 0.85).all()
    assert (g[grass] > 0.48).all() and (g[grass] > r[grass]).all() and (g[grass] > b[grass]).all()
    assert (g[tree] < 0.47).all()


def test_sky_lies_above_the_ground_in_every_column():
    _, y = render_scenes(100, seed=2)
    sky_or_cloud, grass = np.isin(y, [SKY, CLOUD]), y == GRASS
    rows = np.arange(32)[None, :, None]
    lowest_sky = np.where(sky_or_cloud, rows, -1).max(1)
    highest_grass = np.where(grass, rows, 99).min(1)
    assert (lowest_sky < highest_grass).all()


# ---------------------------------------------------------------- the networks against torch


def test_segmenter_forward_and_gradients_match_torch_twin():
    mg.manual_seed(0)
    S = ds.Segmenter(6, 3, width=5).double()
    tS = load_into_twin(S, twin.Segmenter(6, 3, width=5)).double()
    x = np.random.default_rng(0).uniform(-1, 1, (3, 3, 12, 12))
    out = assert_forward_backward_match(S, tS, x)
    assert out.shape == (3, 6, 12, 12)


def test_segmenter_step_matches_torch_twin():
    mg.manual_seed(1)
    S = ds.Segmenter(6, 3, width=4).double()
    tS = load_into_twin(S, twin.Segmenter(6, 3, width=4)).double()
    opt, topt = optim.Adam(S.parameters(), lr=1e-3), torch.optim.Adam(tS.parameters(), lr=1e-3)
    x, y = render_scenes(6, seed=5, size=16)
    for _ in range(2):
        loss = ds.segmenter_step(S, opt, mg.tensor(x.astype(np.float64)), mg.tensor(y))["seg_loss"]
        tloss = twin.segmenter_step(tS, topt, torch.tensor(x, dtype=torch.float64), torch.tensor(y))
        np.testing.assert_allclose(loss, tloss, rtol=1e-9)
        assert_state_match(S, tS, rtol=1e-8, atol=1e-10)


def test_gan_step_on_scenes_matches_torch_twin():
    """The colour DCGAN the dissection trains: D's and G's step, states after Adam."""
    mg.manual_seed(2)
    G, D = ds.Generator(LATENT, 3, 32, WIDTH), ds.Discriminator(3, 32, WIDTH)
    tG = load_into_twin(G, twin.Generator(LATENT, 3, 32, WIDTH))
    tD = load_into_twin(D, twin.Discriminator(3, 32, WIDTH))
    adam = dict(lr=2e-4, betas=(0.5, 0.999))
    opt_g, opt_d = optim.Adam(G.parameters(), **adam), optim.Adam(D.parameters(), **adam)
    topt_g, topt_d = torch.optim.Adam(tG.parameters(), **adam), torch.optim.Adam(tD.parameters(), **adam)
    real = render_scenes(8, seed=6)[0]
    mg.manual_seed(100)  # the noise gan_step will draw, drawn first from the same seed
    z = torch.tensor(mg.randn(8, LATENT).numpy())
    mg.manual_seed(100)
    losses = ds.gan_step(G, D, opt_g, opt_d, mg.tensor(real))
    d_loss, g_loss = twin.train_step(tG, tD, topt_g, topt_d, torch.tensor(real), z)
    np.testing.assert_allclose([losses["d_loss"], losses["g_loss"]], [d_loss, g_loss], rtol=1e-5)
    assert_state_match(G, tG)
    assert_state_match(D, tD)


# ---------------------------------------------------------------- dissection


def _random_case(seed=0, n=6, units=5, h=4, size=16):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, units, h, h)).astype(np.float32), rng.integers(0, 4, (n, size, size))


@pytest.mark.parametrize("quantile", [0.99, 0.9])
def test_dissect_matches_torch_quantile_and_masks(quantile):
    activations, labels = _random_case()
    mine, theirs = ds.dissect(activations, labels, 4, quantile), twin.dissect(activations, labels, 4, quantile)
    for key in ("threshold", "iou", "mean_on"):
        np.testing.assert_allclose(mine[key], theirs[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_dissect_upsamples_bilinearly_as_torch():
    activations = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    expected = torch.nn.functional.interpolate(torch.tensor(activations), size=(32, 32), mode="bilinear",
                                               align_corners=False).numpy()
    np.testing.assert_allclose(ds.upsample(activations, 32), expected, rtol=1e-5, atol=1e-6)


def test_iou_of_constructed_units_has_its_closed_form():
    """10 images of 10x10: concept 1 on exactly 10 pixels (1% of them). Unit 0 is highest on all
    of them (IoU 1); unit 1 on 5 of them and 5 pixels elsewhere (IoU 5/15); unit 2 highest
    elsewhere (IoU 0). Maps at the labels' size: bilinear upsampling to the same size is the
    identity."""
    rng = np.random.default_rng(3)
    labels = np.zeros((10, 10, 10), np.int64)
    concept = np.zeros(1000, bool)
    concept[rng.choice(1000, 10, replace=False)] = True
    labels.ravel()[concept] = 1
    other = rng.choice(np.flatnonzero(~concept), 10, replace=False)
    ramp = rng.permutation(1000) / 1e4  # distinct values below 0.1
    units = np.tile(ramp, (3, 1))
    units[0, concept] += 1
    units[1, np.flatnonzero(concept)[:5]] += 1
    units[1, other[:5]] += 1
    units[2, other] += 1
    activations = units.reshape(3, 10, 10, 10).transpose(1, 0, 2, 3).astype(np.float32)
    result = ds.dissect(activations, labels, 2)
    np.testing.assert_allclose(result["iou"][:, 1], [1, 5 / 15, 0], atol=1e-12)
    np.testing.assert_allclose(result["iou"][0, 0], 0, atol=1e-12)
    # the mean activation on the concept: the ramp's values there, plus 1 on unit 0's
    np.testing.assert_allclose(result["mean_on"][0, 1], 1 + ramp[concept].mean(), rtol=1e-6)
    # t_u is the 0.99 quantile: 1% of each unit's positions lie above it
    on = units > result["threshold"][:, None]
    np.testing.assert_array_equal(on.sum(1), [10, 10, 10])
    np.testing.assert_array_equal(ds.top_units(result["iou"], 1, 2), [0, 1])


# ---------------------------------------------------------------- intervention


def _generator(seed=0):
    mg.manual_seed(seed)
    G = ds.Generator(LATENT, 3, 32, WIDTH)
    for m in G.modules():  # batch norm with statistics of its own, so eval mode is not the identity
        if hasattr(m, "running_mean"):
            m.running_mean.array[:] = np.random.default_rng(seed).uniform(-0.1, 0.1, m.running_mean.shape)
    return G, load_into_twin(G, twin.Generator(LATENT, 3, 32, WIDTH))


def test_generate_returns_the_layers_activations_as_torch():
    G, tG = _generator()
    z = np.random.default_rng(0).standard_normal((4, LATENT)).astype(np.float32)
    for layer, side in ((1, 4), (2, 8), (3, 16)):
        images, r = ds.generate(G, z, layer)
        timages, tr = twin.generate(tG, z, layer)
        assert r.shape == (4, WIDTH * 2 ** (3 - layer), side, side)
        np.testing.assert_allclose(r, tr, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(images, timages, rtol=1e-5, atol=1e-6)
    assert G.training  # generate restores the mode


def test_insertion_changes_only_the_chosen_units_inside_the_patch():
    G, tG = _generator(1)
    z = np.random.default_rng(1).standard_normal((3, LATENT)).astype(np.float32)
    units, values, patch = [1, 4], [2.5, 7.0], (slice(2, 5), slice(0, 3))
    _, r = ds.generate(G, z, 2)
    with ds.intervene(G, 2, units, values, patch):
        images, r_after = ds.generate(G, z, 2)
    expected = r.copy()
    for u, v in zip(units, values):
        expected[:, u, 2:5, 0:3] = v
    np.testing.assert_array_equal(r_after, expected)
    with twin.Intervention(tG, 2, units, values, patch):
        timages, _ = twin.generate(tG, z, 2)
    np.testing.assert_allclose(images, timages, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ds.generate(G, z, 2)[1], r)  # the hook is gone after the block


def test_ablation_zeroes_the_units_everywhere_and_all_units_leave_one_image():
    G, tG = _generator(2)
    z = np.random.default_rng(2).standard_normal((3, LATENT)).astype(np.float32)
    _, r = ds.generate(G, z, 2)
    with ds.intervene(G, 2, [0, 3]):
        images, r_after = ds.generate(G, z, 2)
    expected = r.copy()
    expected[:, [0, 3]] = 0
    np.testing.assert_array_equal(r_after, expected)
    with twin.Intervention(tG, 2, [0, 3]):
        np.testing.assert_allclose(images, twin.generate(tG, z, 2)[0], rtol=1e-5, atol=1e-6)
    with ds.intervene(G, 2, np.arange(r.shape[1])):  # nothing of z is left past the layer
        images, _ = ds.generate(G, z, 2)
    np.testing.assert_allclose(images, np.broadcast_to(images[:1], images.shape), atol=1e-7)


# ---------------------------------------------------------------- bad inputs


def test_bad_inputs_name_what_was_wrong():
    G, _ = _generator()
    with pytest.raises(ValueError, match=r"layer must be in 1\.\.3"):
        ds.layer_module(G, 4)
    with pytest.raises(ValueError, match="same N"):
        ds.dissect(np.zeros((2, 3, 4, 4)), np.zeros((3, 8, 8), np.int64), 2)
    with pytest.raises(ValueError, match=r"quantile must be in \(0, 1\)"):
        ds.dissect(np.zeros((2, 3, 4, 4)), np.zeros((2, 8, 8), np.int64), 2, quantile=1.0)
    with pytest.raises(ValueError, match=r"units must be in \[0, 8\), got \[8\]"):
        with ds.intervene(G, 2, [8]):
            ds.generate(G, np.zeros((1, LATENT), np.float32), 2)
    with pytest.raises(ValueError, match="Segmenter: expected images"):
        ds.Segmenter(6)(mg.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="n must be an integer"):
        render_scenes(-1)
    with pytest.raises(ValueError, match="size must be an integer >= 8"):
        render_scenes(1, size=4)


@pytest.mark.parametrize("flags, message", [(("--layer", 4), "G has 3 ReLU layers"),
                                            (("--patch", 9), "larger than layer 2's 8x8 grid"),
                                            (("--units", 65), "layer 2 has only 64 units"),
                                            (("--quantile", 1.5), "invalid quantile value"),
                                            (("--seg-batch-size", 300, "--train-scenes", 200),
                                             "--seg-batch-size 300 is larger than --train-scenes 200")])
def test_example_refuses_bad_flags_with_a_usage_error(capsys, flags, message):
    with pytest.raises(SystemExit):
        run("dissection", "unused", *flags)
    assert message in capsys.readouterr().err


# ---------------------------------------------------------------- the example


TINY = ("--batch-size", 8, "--width", 4, "--seg-width", 4, "--seg-batch-size", 8, "--seg-steps", 2,
        "--train-scenes", 200, "--dissect-samples", 100, "--eval-samples", 20, "--insert-samples", 10,
        "--random-sets", 2, "--units", 2, "--test-scenes", 50)


def test_example_writes_the_contract_files_and_the_figures(tmp_path):
    metrics = run("dissection", tmp_path, "--steps", 3, *TINY)
    for f in CONTRACT + ["samples.npz", "segmentation.png", "units.png", "ablation.png", "insertion.png"]:
        assert (tmp_path / f).stat().st_size > 0, f
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["steps"] == 3 and saved["units"] == 8 and saved["layer_shape"] == [8, 8, 8]
    assert set(saved["top_units"]) == set(SCENE_CONCEPTS) and len(saved["top_units"]["tree"]) == 2
    assert set(saved["ablation"]) == {"1", "2"} and set(saved["insertion"]) == {"1", "2"}
    assert 0 <= saved["segmenter_pixel_accuracy"] <= 1
    samples = np.load(tmp_path / "samples.npz")
    assert samples["x"].shape == (1000, 3, 32, 32) and samples["x"].dtype == np.float32
    assert np.abs(samples["x"]).max() <= 1 and samples["segmentation"].shape == (1000, 32, 32)
    assert metrics["segmenter_pixel_accuracy"] == saved["segmenter_pixel_accuracy"]


def test_example_resumes_where_it_stopped(tmp_path):
    assert_resume_continues_the_run("dissection", tmp_path, 4, 2, TINY + ("--checkpoint-every", 1),
                                    ["G", "D", "segmenter"])


def test_example_runs_on_cuda(fake_cuda, tmp_path):
    """--device cuda (CuPy, here ``tests/fake_cupy.py``): the hooks, the segmenter's labels and the
    dissection keep device and host arrays apart."""
    metrics = run("dissection", tmp_path, "--device", "cuda", "--steps", 2, *TINY)
    assert metrics["device"] == "cuda" and set(metrics["ablation"]) == {"1", "2"}
