"""ProGAN against a torch twin written in plain torch (``tests/twins/progan_torch.py``),
and the closed forms of growing.

The twin loads minigan's weights. G and D at every stage with the new block faded
in by alpha in {0, 0.5, 1} agree with it in float64 (outputs, the input's gradient,
every parameter's gradient); one whole training step (the real images' fade,
WGAN-GP's double backward, the drift term, Adam (0, 0.99) on both players, the EMA
of G) leaves the same parameters in float32. A fade at alpha = 0 must compute what
the smaller networks computed; the schedule and the real images' fade have closed
forms. The example is checked by smoke runs, a resume, and its bad inputs.
"""
import json
import math

import numpy as np
import pytest
import torch

import minigan as mg
from minigan import optim
from minigan.data import DataNotFoundError
from minigan.functional import avg_pool2d, interpolate
from minigan.models import progan
from minigan.testing import assert_params_match, load_into_twin
from test_examples import CONTRACT, assert_resume_continues_the_run, run
from twins import progan_torch as twin

torch.set_num_threads(1)
LATENT, CHANNELS, RES, BASE, MAX = 8, 1, 16, 32, 8   # widths 8, 8, 4 at 4x4, 8x8, 16x16
ALPHAS = [0.0, 0.5, 1.0]


def _twins(seed=0, channels=CHANNELS):
    mg.manual_seed(seed)
    G = progan.Generator(LATENT, channels, RES, BASE, MAX)
    D = progan.Discriminator(channels, RES, BASE, MAX)
    tG = load_into_twin(G, twin.Generator(LATENT, channels, RES, BASE, MAX))
    tD = load_into_twin(D, twin.Discriminator(channels, RES, BASE, MAX))
    return G, D, tG, tD


def _assert_forward_backward_match(net, tnet, x, stage, alpha, rtol=1e-9, atol=1e-12):
    """Run both at (stage, alpha) on the array x, backpropagate one random weighting of the
    outputs: outputs, the input's gradient and every parameter's gradient agree, and a
    parameter has a gradient in one exactly where it has one in the other (a stage not
    reached has none). Returns minigan's output."""
    xm, xt = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, tout = net(xm, stage, alpha), tnet(xt, stage, alpha)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=rtol, atol=atol, err_msg="output")
    weight = np.random.default_rng(stage).standard_normal(out.shape)
    (out * mg.tensor(weight)).sum().backward()
    (tout * torch.tensor(weight)).sum().backward()
    np.testing.assert_allclose(xm.grad.numpy(), xt.grad.numpy(), rtol=rtol, atol=atol, err_msg="input's gradient")
    theirs = dict(tnet.named_parameters())
    for name, p in net.named_parameters():
        assert (p.grad is None) == (theirs[name].grad is None), name
        if p.grad is not None:
            np.testing.assert_allclose(p.grad.numpy(), theirs[name].grad.numpy(), rtol=rtol, atol=atol, err_msg=name)
    return out


# ---------------------------------------------------------------- the networks


def test_state_dict_keys_match_torch_twin_and_widths_follow_nf():
    G, D, tG, tD = _twins()
    assert list(G.state_dict()) == list(tG.state_dict())
    assert list(D.state_dict()) == list(tD.state_dict())
    assert [progan.channels_at(s, 8192, 512) for s in range(9)] == [512] * 4 + [256, 128, 64, 32, 16]  # the paper's
    assert [G.to_rgb[s].in_channels for s in range(3)] == [8, 8, 4]


def test_equalized_gains_he_everywhere_one_on_the_outputs():
    G, D, _, _ = _twins()
    special = {"G": {"blocks.0.dense": math.sqrt(2) / 4, **{f"to_rgb.{s}": 1.0 for s in range(3)}},
               "D": {"blocks.0.out": 1.0}}
    for which, net in (("G", G), ("D", D)):
        layers = [(n, m) for n, m in net.named_modules()
                  if isinstance(m, (mg.nn.EqualizedConv2d, mg.nn.EqualizedLinear))]
        assert len(layers) == (2 + 2 * 2 + 3 if which == "G" else 3 + 3 + 2 * 2)  # input, blocks, RGB
        for name, m in layers:
            gain = special[which].get(name, math.sqrt(2))
            fan_in = m.weight.numpy()[0].size
            assert m.gain == pytest.approx(gain), name
            assert m.weight_gain == pytest.approx(gain / math.sqrt(fan_in)), name  # c = gain / sqrt(fan_in)


@pytest.mark.parametrize("resolution", [4, 8, 32])
def test_output_shapes_at_every_stage(resolution):
    mg.manual_seed(0)
    G, D = progan.Generator(LATENT, 3, resolution, BASE, MAX), progan.Discriminator(3, resolution, BASE, MAX)
    assert G.stages == D.stages == int(math.log2(resolution)) - 1
    z = mg.randn(4, LATENT)
    for stage in range(G.stages):
        x = G(z, stage, 0.5)
        assert x.shape == (4, 3, 4 * 2 ** stage, 4 * 2 ** stage)
        assert D(x, stage, 0.5).shape == (4,)
    assert G(z).shape[-1] == resolution  # the last stage by default


@pytest.mark.parametrize("bad", [0, 2, 3, 12, 48, 16.0, True])
def test_resolution_must_be_a_power_of_two(bad):
    with pytest.raises(ValueError, match="power of two"):
        progan.Generator(resolution=bad)
    with pytest.raises(ValueError, match="power of two"):
        progan.Discriminator(resolution=bad)


def test_bad_stage_alpha_and_shapes_name_what_was_wrong():
    G, D, _, _ = _twins()
    with pytest.raises(ValueError, match="stage must be in"):
        G(mg.randn(4, LATENT), 3)
    with pytest.raises(ValueError, match="alpha must be in"):
        G(mg.randn(4, LATENT), 1, 1.5)
    with pytest.raises(ValueError, match="expected z"):
        G(mg.randn(4, LATENT + 1), 1)
    with pytest.raises(ValueError, match=r"\(N, 1, 8, 8\) at stage 1"):
        D(mg.randn(4, 1, 16, 16), 1)


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("stage", [1, 2])
def test_generator_fade_matches_torch_twin_float64(stage, alpha):
    G, _, tG, _ = _twins()
    G, tG = G.double(), tG.double()
    z = np.random.default_rng(stage).standard_normal((5, LATENT))
    out = _assert_forward_backward_match(G, tG, z, stage, alpha)
    assert out.shape == (5, 1, 4 * 2 ** stage, 4 * 2 ** stage)


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("stage", [1, 2])
def test_discriminator_fade_matches_torch_twin_float64(stage, alpha):
    _, D, _, tD = _twins()
    D, tD = D.double(), tD.double()
    size = 4 * 2 ** stage
    x = np.random.default_rng(stage).standard_normal((8, 1, size, size))  # two groups of 4
    _assert_forward_backward_match(D, tD, x, stage, alpha)


def test_stage_zero_matches_torch_twin_float64():
    G, D, tG, tD = _twins()
    z = np.random.default_rng(0).standard_normal((4, LATENT))
    _assert_forward_backward_match(G.double(), tG.double(), z, 0, 1.0)
    x = np.random.default_rng(1).standard_normal((4, 1, 4, 4))
    _assert_forward_backward_match(D.double(), tD.double(), x, 0, 1.0)


@pytest.mark.parametrize("stage", [1, 2])
def test_a_fade_at_alpha_zero_computes_the_smaller_networks(stage):
    # the point of fading in: growing does not change what G and D compute
    G, D, _, _ = _twins()
    z = mg.randn(4, LATENT)
    grown, small = G(z, stage, 0.0).numpy(), G(z, stage - 1, 1.0)
    np.testing.assert_allclose(grown, interpolate(small, scale_factor=2).numpy(), rtol=1e-6, atol=1e-6)
    x = mg.randn(8, 1, 4 * 2 ** stage, 4 * 2 ** stage)
    np.testing.assert_allclose(D(x, stage, 0.0).numpy(), D(avg_pool2d(x, 2), stage - 1, 1.0).numpy(),
                               rtol=1e-5, atol=1e-6)


def test_generator_normalizes_every_pixels_features():
    G, _, _, _ = _twins()
    feats = G.blocks[1](G.blocks[0](mg.randn(3, LATENT) * 50)).numpy()  # the scale of z does not matter
    np.testing.assert_allclose((feats ** 2).mean(axis=1), 1.0, rtol=1e-4)


# ---------------------------------------------------------------- growing: schedule and real images


def test_schedule_has_equal_phases_and_a_linear_alpha():
    # 3 stages: 4x4 stable, 8x8 fade, 8x8 stable, 16x16 fade, 16x16 stable; 10 steps each
    got = [progan.schedule(step, 10, 3) for step in range(50)]
    assert got[:10] == [(0, 1.0)] * 10
    assert got[10:20] == [(1, i / 10) for i in range(10)]
    assert got[20:30] == [(1, 1.0)] * 10
    assert got[30:40] == [(2, i / 10) for i in range(10)]
    assert got[40:] == [(2, 1.0)] * 10
    assert progan.schedule(1234, 10, 3) == (2, 1.0)  # then it stays at the final resolution
    assert progan.schedule(5, 1, 1) == (0, 1.0)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_real_images_are_pooled_and_faded_as_the_twins(alpha):
    x = np.random.default_rng(0).standard_normal((3, 2, 16, 16)).astype(np.float32)
    for stage in (0, 1, 2):
        ours = progan.real_images(mg.tensor(x), stage, alpha).numpy()
        np.testing.assert_allclose(ours, twin.process_reals(torch.tensor(x), stage, alpha).numpy(), atol=1e-6)
    # the closed form at 8x8: each 2x2 cell's mean, lerped towards the 8x8 image
    fine = x.reshape(3, 2, 8, 2, 8, 2).mean(axis=(3, 5))
    coarse = np.repeat(np.repeat(fine.reshape(3, 2, 4, 2, 4, 2).mean(axis=(3, 5)), 2, 2), 2, 3)
    np.testing.assert_allclose(progan.real_images(mg.tensor(x), 1, alpha).numpy(),
                               coarse + alpha * (fine - coarse), atol=1e-6)


# ---------------------------------------------------------------- one training step


def _noise(seed, n):
    """The noise train_step draws after mg.manual_seed(seed): z for D, the penalty's eps, z for G."""
    mg.manual_seed(seed)
    z_d, eps, z_g = mg.randn(n, LATENT), mg.rand(n), mg.randn(n, LATENT)
    return [torch.tensor(t.numpy()) for t in (z_d, eps, z_g)]


@pytest.mark.parametrize("stage, alpha", [(1, 0.5), (2, 1.0), (2, 0.25)])
def test_training_step_matches_torch_twin(stage, alpha):
    G, D, tG, tD = _twins(seed=3)
    opt_g, opt_d = optim.Adam(G.parameters(), **progan.ADAM), optim.Adam(D.parameters(), **progan.ADAM)
    t_opt_g = torch.optim.Adam(tG.parameters(), lr=1e-3, betas=(0.0, 0.99), eps=1e-8)
    t_opt_d = torch.optim.Adam(tD.parameters(), lr=1e-3, betas=(0.0, 0.99), eps=1e-8)
    ema = optim.EMA(G, progan.EMA_DECAY)
    t_ema = {k: v.detach().clone() for k, v in tG.named_parameters()}
    real = np.random.default_rng(4).uniform(-1, 1, (8, 1, 16, 16)).astype(np.float32)
    for seed in (10, 11):  # two steps: Adam's second step uses the first's moments
        noise = _noise(seed, 8)
        mg.manual_seed(seed)
        losses = progan.train_step(G, D, opt_g, opt_d, mg.tensor(real), stage, alpha, ema)
        d_loss, g_loss = twin.train_step(tG, tD, t_opt_g, t_opt_d, torch.tensor(real), stage, alpha, *noise)
        with torch.no_grad():
            for k, p in tG.named_parameters():
                t_ema[k].mul_(progan.EMA_DECAY).add_((1 - progan.EMA_DECAY) * p)
        np.testing.assert_allclose([losses["d_loss"], losses["g_loss"]], [d_loss, g_loss], rtol=1e-4, atol=1e-5)
        assert losses["penalty"] > 1e-3  # the double backward's gradients are not zeros
    assert_params_match(G, tG, rtol=1e-4, atol=1e-5)
    assert_params_match(D, tD, rtol=1e-4, atol=1e-5)
    for k, v in ema.shadow.items():
        np.testing.assert_allclose(v.numpy(), t_ema[k].numpy(), rtol=1e-4, atol=1e-5, err_msg=k)
    # the stages not yet reached did not move
    untouched = [f"to_rgb.{s}" for s in range(stage + 1, 3)] + [f"blocks.{s}" for s in range(stage + 1, 3)]
    for name, p in G.named_parameters():
        if any(name.startswith(u + ".") for u in untouched):
            assert p.grad is None, name


def test_reset_optimizer_makes_the_next_step_a_first_step():
    G, D, _, _ = _twins()
    fresh_g, fresh_d = progan.Generator(LATENT, 1, RES, BASE, MAX), progan.Discriminator(1, RES, BASE, MAX)
    opt = optim.Adam(list(G.parameters()) + list(D.parameters()), **progan.ADAM)
    real = mg.tensor(np.random.default_rng(0).uniform(-1, 1, (8, 1, 16, 16)).astype(np.float32))
    mg.manual_seed(1)
    progan.train_step(G, D, opt, opt, real, 1, 1.0)
    progan.reset_optimizer(opt)
    fresh_g.load_state_dict(G.state_dict())
    fresh_d.load_state_dict(D.state_dict())
    new = optim.Adam(list(fresh_g.parameters()) + list(fresh_d.parameters()), **progan.ADAM)
    for (g, d, o) in ((G, D, opt), (fresh_g, fresh_d, new)):
        mg.manual_seed(2)
        progan.train_step(g, d, o, o, real, 2, 0.5)
    for a, b in zip(G.parameters(), fresh_g.parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


# ---------------------------------------------------------------- examples/progan.py

SMALL = ("--batch-size", 8, "--fmap-base", 16, "--fmap-max", 8, "--latent-dim", 8, "--eval-every", 0)


def test_progan_example_writes_the_contract_files(tmp_path):
    metrics = run("progan", tmp_path, "--steps", 5, "--phase-steps", 1, *SMALL)
    for f in CONTRACT + ["samples.npz", "growing.png", "fd_curve.png"]:
        assert (tmp_path / f).stat().st_size > 0, f
    assert json.loads((tmp_path / "metrics.json").read_text())["steps"] == 5 == metrics["steps"]
    assert 1 <= metrics["classes_hit"] <= 10 and metrics["classifier_fd"] > 0
    assert [(p["step"], p["resolution"]) for p in metrics["fd_curve"]] == [(1, 4), (3, 8), (5, 16)]  # stage ends
    x = np.load(tmp_path / "samples.npz")["x"]
    assert x.shape == (1000, 1, 16, 16) and x.dtype == np.float32
    assert x.min() >= -1 and x.max() <= 1  # the range of the training images


@pytest.mark.parametrize("bad", ["12", "2", "x"])
def test_progan_example_refuses_a_resolution_not_a_power_of_two(tmp_path, bad, capsys):
    with pytest.raises(SystemExit) as error:
        run("progan", tmp_path, "--resolution", bad)
    assert error.value.code == 2 and "--resolution" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before anything is written


@pytest.fixture
def pictures(tmp_path):
    """Eight small PNGs, colour and greyscale, of two sizes (the loader makes them one)."""
    from PIL import Image
    folder = tmp_path / "pictures"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        size = (20, 14) if i % 2 else (9, 9)
        pixels = rng.integers(0, 256, (size[1], size[0], 3) if i % 3 else size[::-1], dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")
    return folder


def test_progan_example_trains_on_a_folder_of_pictures(tmp_path, pictures):
    out = tmp_path / "run"
    metrics = run("progan", out, "--data", pictures, "--resolution", 8, "--steps", 3, "--phase-steps", 1, *SMALL)
    x = np.load(out / "samples.npz")["x"]
    assert x.shape == (1000, 3, 8, 8) and metrics["data"] == str(pictures)
    assert sorted(map(int, np.load(out / "growing.npz"))) == [4, 8]  # a row of samples per stage
    assert "classifier_fd" not in metrics  # no classifier knows a folder of pictures


def test_progan_example_resumed_run_equals_uninterrupted_run(tmp_path, pictures):
    # 2 steps per phase: the stop at step 5 falls inside the 8x8 stable phase; the resumed run
    # resets Adam at 16x16 and stays there after step 9 (on pictures: Fashion-MNIST takes longer to load)
    args = ("--data", pictures, *SMALL, "--phase-steps", 2, "--checkpoint-every", 5)
    once, twice = assert_resume_continues_the_run("progan", tmp_path, 12, 5, args,
                                                  ["generator", "discriminator", "generator_ema"])
    for name in ("samples.npz", "growing.npz"):
        a, b = (np.load(d / name) for d in (once, twice))
        assert sorted(a) == sorted(b)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"{name}: {k}")


def test_progan_example_names_a_bad_data_folder(tmp_path, capsys):
    with pytest.raises(SystemExit) as error:
        run("progan", tmp_path / "run", "--data", tmp_path / "missing")
    assert error.value.code == 2 and "expected fashion-mnist or a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="no PNG or JPEG pictures"):
        run("progan", tmp_path / "run", "--data", tmp_path / "empty")


def test_progan_example_runs_on_cuda_arrays(fake_cuda, tmp_path, pictures):
    # CuPy replaced by the project's stand-in, which refuses what CuPy refuses
    metrics = run("progan", tmp_path / "run", "--device", "cuda", "--data", pictures, "--resolution", 8,
                  "--steps", 4, "--phase-steps", 1, *SMALL)
    assert metrics["device"] == "cuda" and metrics["steps"] == 4
    x = np.load(tmp_path / "run" / "samples.npz")["x"]
    assert x.shape == (1000, 3, 8, 8) and np.isfinite(x).all()


def test_progan_example_refuses_a_batch_the_stddev_groups_cannot_split(tmp_path, capsys):
    with pytest.raises(SystemExit) as error:
        run("progan", tmp_path, "--batch-size", 10)
    assert error.value.code == 2 and "multiple of 4" in capsys.readouterr().err
