"""StyleGAN against a torch twin written in plain torch (``tests/twins/train_stylegan_torch.py``).

The twin loads minigan's weights: the mapping network (with truncation and the w_avg
update), the synthesis network with fixed noise, the discriminator, the R1 penalty
and its gradient with respect to D's weights (the double backward), and whole
training steps (R1 on some, style mixing, Adam betas (0, 0.99), the mapping's lr
multiplier) must agree: the networks in float64 to 1e-9, the steps in float64 to 1e-8
and in float32 to 1e-4. The init, style mixing and truncation are checked against
their definitions, and the example by smoke runs (Fashion-MNIST, a folder of pictures,
the CuPy stand-in), resumed runs, and its errors on bad input.
"""
import json
import os
import re

import numpy as np
import pytest
import torch

import minigan as mg
from minigan import optim
from minigan.data import FASHION_MNIST_DIR
from minigan.models import stylegan
from minigan.testing import assert_forward_backward_match, assert_params_match, assert_state_match, load_into_twin
from test_examples import CONTRACT, assert_resume_continues_the_run, params, run
import twins.train_stylegan_torch as T

torch.set_num_threads(1)
Z, RES, CH, BASE, CMAX = 6, 16, 2, 64, 8  # feature maps 8 at 4x4 and 8x8, 4 at 16x16
ADAM = dict(lr=2e-3, betas=stylegan.ADAM_BETAS, eps=1e-8)


def _randomize(module, rng, scale=0.3):
    """Non-zero noise scales, biases and constant, so that every path of the networks carries signal."""
    for name, p in module.named_parameters():
        if p.ndim == 1 or name.endswith("const"):
            p.data = mg.tensor(rng.standard_normal(p.shape).astype(p.numpy().dtype) * scale
                               + (1.0 if name.endswith("const") else 0.0))


def _generators(seed=0, dtype=None, randomize=True):
    mg.manual_seed(seed)
    G = stylegan.Generator(Z, Z, RES, CH, BASE, CMAX)
    if randomize:
        _randomize(G, np.random.default_rng(seed))
    tG = T.Generator(Z, Z, RES, CH, BASE, CMAX)
    if dtype == "float64":
        G, tG = G.double(), tG.double()
    return G, load_into_twin(G, tG)


def _discriminators(seed=0, dtype=None):
    mg.manual_seed(seed)
    D = stylegan.Discriminator(RES, CH, BASE, CMAX)
    _randomize(D, np.random.default_rng(seed + 1))
    tD = T.Discriminator(RES, CH, BASE, CMAX)
    if dtype == "float64":
        D, tD = D.double(), tD.double()
    return D, load_into_twin(D, tD)


def _noise(n, sizes, rng, dtype=np.float64):
    return [rng.standard_normal((n, 1, r, r)).astype(dtype) for r in sizes]


# ---------------------------------------------------------------- the networks


def test_state_dict_keys_match_torch_twin():
    G, tG = _generators()
    D, tD = _discriminators()
    assert sorted(G.state_dict()) == sorted(tG.state_dict())
    assert sorted(D.state_dict()) == sorted(tD.state_dict())


def test_architecture_and_init_follow_the_paper():
    mg.manual_seed(0)
    G = stylegan.Generator(z_dim=32, w_dim=32, resolution=32, channels=3, channel_base=2048, channel_max=128)
    assert G.num_ws == 8 == stylegan.num_styles(32) and G.synthesis.sizes == [4, 4, 8, 8, 16, 16, 32, 32]
    assert len(G.mapping.layers) == 8 and all(layer.lr_multiplier == 0.01 for layer in G.mapping.layers)
    # equalized lr with lr multiplier 0.01: stored weights N(0, 1 / 0.01^2), effective ones He's sqrt(2 / fan_in)
    w = G.mapping.layers[1].weight.numpy()
    assert abs(w.std() - 100) < 5 * 100 / np.sqrt(2 * w.size)
    effective = G.mapping.layers[1].scaled()[0].numpy()
    assert abs(effective.std() - np.sqrt(2 / 32)) < 5 * np.sqrt(2 / 32) / np.sqrt(2 * w.size)
    for layer in G.synthesis.layers:
        assert (layer.noise_strength.numpy() == 0).all()  # the noise scales B start at 0
        assert layer.affine.gain == 1.0 and (layer.affine.bias.numpy() == 0).all()  # styles start as identity
    assert (G.synthesis.const.numpy() == 1).all() and G.synthesis.const.shape == (1, 128, 4, 4)
    assert [layer.conv.out_channels for layer in G.synthesis.layers[1:]] == [128] * 5 + [64] * 2
    x = G(stylegan.sample_latent(4, 32))
    assert x.shape == (4, 3, 32, 32)
    assert stylegan.Discriminator(32, 3, 2048, 128)(x).shape == (4,)


def test_bad_resolutions_and_inputs_are_refused():
    for bad in (24, 4, 0, 33.0, True):
        with pytest.raises(ValueError, match="power of two"):
            stylegan.Generator(resolution=bad)
    G, _ = _generators(randomize=False)
    with pytest.raises(ValueError, match=r"\(N, 6\)"):
        G(mg.zeros(2, 5))
    with pytest.raises(ValueError, match=r"\(N, 6, 6\)"):
        G.synthesis(mg.zeros(2, 5, 6))
    D, _ = _discriminators()
    with pytest.raises(ValueError, match=r"\(N, 2, 16, 16\)"):
        D(mg.zeros(4, 2, 8, 8))


def test_mapping_matches_torch_twin_with_truncation_and_w_avg():
    G, tG = _generators(dtype="float64")
    z = np.random.default_rng(1).standard_normal((5, Z))
    assert_forward_backward_match(G.mapping, tG.mapping, z)
    for _ in range(2):  # the tracked mean: beta w_avg + (1 - beta) mean(w)
        G.mapping(mg.tensor(z), update_w_avg=True)
        tG.mapping(torch.tensor(z), update_w_avg=True)
    assert_state_match(G.mapping, tG.mapping, rtol=1e-12, atol=1e-14)
    w_avg = G.mapping.w_avg.numpy()
    assert np.abs(w_avg).max() > 0
    for psi in (0.7, 0.0, -0.5):
        w = G.mapping(mg.tensor(z), psi).numpy()
        np.testing.assert_allclose(w, tG.mapping(torch.tensor(z), psi).detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(G.mapping(mg.tensor(z), 0.0).numpy(), np.tile(w_avg, (5, 1)), atol=1e-15)


def test_synthesis_with_fixed_noise_matches_torch_twin():
    G, tG = _generators(dtype="float64")
    rng = np.random.default_rng(2)
    ws, noise = rng.standard_normal((4, G.num_ws, Z)), _noise(4, G.synthesis.sizes, rng)
    wm, wt = mg.tensor(ws, requires_grad=True), torch.tensor(ws, requires_grad=True)
    out = G.synthesis(wm, [mg.tensor(n) for n in noise])
    tout = tG.synthesis(wt, [torch.tensor(n) for n in noise])
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-9, atol=1e-12)
    weight = rng.standard_normal(out.shape)
    (out * mg.tensor(weight)).sum().backward()
    (tout * torch.tensor(weight)).sum().backward()
    np.testing.assert_allclose(wm.grad.numpy(), wt.grad.numpy(), rtol=1e-9, atol=1e-12)
    assert_params_match(G.synthesis, tG.synthesis, rtol=1e-9, atol=1e-12, grads=True)
    # the noise matters: another draw changes the image, only where the scales B are non-zero
    other = G.synthesis(mg.tensor(ws), [mg.tensor(n) for n in _noise(4, G.synthesis.sizes, rng)]).numpy()
    assert np.abs(other - out.numpy()).max() > 1e-3


def test_noise_does_nothing_while_its_scales_are_zero():
    G, _ = _generators(randomize=False)
    ws = stylegan.sample_latent(3, Z)
    a, b = G.synthesis(ws).numpy(), G.synthesis(ws).numpy()  # two draws of the noise
    np.testing.assert_array_equal(a, b)


def test_discriminator_matches_torch_twin():
    D, tD = _discriminators(dtype="float64")
    assert_forward_backward_match(D, tD, np.random.default_rng(3).uniform(-1, 1, (8, CH, RES, RES)))


def test_r1_penalty_and_its_weight_gradients_match_torch_double_backward():
    D, tD = _discriminators(dtype="float64")
    x = np.random.default_rng(4).uniform(-1, 1, (8, CH, RES, RES))
    real = mg.tensor(x).requires_grad_()
    r1 = stylegan.r1_penalty(D(real), real)
    treal = torch.tensor(x, requires_grad=True)
    grads, = torch.autograd.grad(tD(treal).sum(), treal, create_graph=True)
    tr1 = grads.square().sum((1, 2, 3)).mean()
    np.testing.assert_allclose(r1.item(), tr1.item(), rtol=1e-9)
    assert r1.item() > 1e-5  # real gradients, not zeros (float64)
    r1.backward()
    tr1.backward()
    theirs = dict(tD.named_parameters())
    for name, p in D.named_parameters():
        # R1 hardly depends on the biases (the leaky ReLUs are piecewise linear; out.bias not at all): either
        # framework may leave a gradient None; the weights' gradients must be real
        ours = np.zeros(p.shape) if p.grad is None else p.grad.numpy()
        ref = np.zeros(p.shape) if theirs[name].grad is None else theirs[name].grad.numpy()
        assert np.abs(ref).max() > 0 or name.endswith("bias"), name
        np.testing.assert_allclose(ours, ref, rtol=1e-8, atol=1e-12, err_msg=name)


def test_style_mixing_takes_w1_before_the_crossover_and_w2_after():
    G, _ = _generators()
    w1, w2 = mg.tensor(np.ones((2, Z), np.float32)), mg.tensor(np.full((2, Z), 2, np.float32))
    for cutoff in range(1, G.num_ws):
        ws = G.mix(w1, w2, cutoff).numpy()
        assert ws.shape == (2, G.num_ws, Z)
        assert (ws[:, :cutoff] == 1).all() and (ws[:, cutoff:] == 2).all()
    # train_step's draws: mixed batches in about mixing_prob of the steps, crossovers uniform in 1 .. num_ws - 1
    mg.manual_seed(5)
    cutoffs = np.array([stylegan.draw_latents(G, 1, 0.9)[2] for _ in range(2000)])
    assert abs((cutoffs < G.num_ws).mean() - 0.9) < 0.03
    assert set(cutoffs) == set(range(1, G.num_ws + 1))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_training_steps_match_torch_twin(dtype):
    """Three steps, R1 at steps 0 and 2. In float64 to 1e-8; in float32 the tolerance is Adam's:
    a parameter whose gradient is near zero (the biases before an instance norm hardly matter)
    moves by lr * g / |g|, whose sign float32 rounding can flip, so only the losses and the
    parameters of real gradients are held to float32 tolerance."""
    G, tG = _generators(dtype=dtype)
    D, tD = _discriminators(dtype=dtype)
    opt_g, opt_d = optim.Adam(G.parameters(), **ADAM), optim.Adam(D.parameters(), **ADAM)
    topt_g, topt_d = torch.optim.Adam(tG.parameters(), **ADAM), torch.optim.Adam(tD.parameters(), **ADAM)
    rng, cutoffs = np.random.default_rng(6), []
    tol = dict(rtol=1e-8, atol=1e-10) if dtype == "float64" else dict(rtol=1e-4, atol=1e-5)
    for step in range(3):
        real = rng.uniform(-1, 1, (8, CH, RES, RES)).astype(dtype)
        mg.manual_seed(100 + step)  # the inputs train_step will draw, drawn first from the same seed
        inputs = [stylegan.draw_latents(G, 8, 0.9) for _ in range(2)]
        inputs = [(torch.tensor(z1.numpy()), torch.tensor(z2.numpy()), cutoff, [torch.tensor(n.numpy()) for n in noise])
                  for z1, z2, cutoff, noise in inputs]
        cutoffs += [cutoff for _, _, cutoff, _ in inputs]
        mg.manual_seed(100 + step)
        losses = stylegan.train_step(G, D, opt_g, opt_d, mg.tensor(real), step, r1_interval=2)
        d_loss, g_loss = T.train_step(tG, tD, topt_g, topt_d, torch.tensor(real), *inputs, step % 2 == 0,
                                      r1_interval=2)
        assert ("r1" in losses) == (step % 2 == 0)
        np.testing.assert_allclose(losses["d_loss"] + 10 * losses.get("r1", 0), d_loss, rtol=tol["rtol"])
        np.testing.assert_allclose(losses["g_loss"], g_loss, rtol=tol["rtol"])
        for net, twin in ((G, tG), (D, tD)):
            theirs = twin.state_dict()
            for name, value in net.state_dict().items():  # w_avg included
                if dtype == "float32" and re.fullmatch(r"synthesis\.layers\.\d+\.bias", name):
                    continue  # the near-zero gradients of the docstring
                np.testing.assert_allclose(value.numpy(), theirs[name].numpy(), **tol, err_msg=name)
    assert min(cutoffs) < G.num_ws and np.abs(G.mapping.w_avg.numpy()).max() > 0  # mixed passes, a moved w_avg
    assert all(p.requires_grad for p in D.parameters())  # D is trainable again after G's step


# ---------------------------------------------------------------- examples/stylegan.py

TINY = ("--batch-size", 8, "--z-dim", 4, "--channel-base", 32, "--channel-max", 4, "--resolution", 8)
FIGURES = ["style_mixing.png", "truncation.png", "stochastic_variation.png"]


@pytest.fixture
def picture_folder(tmp_path):
    """Twelve pictures of mixed sizes and modes: grey, colour, with alpha, a JPEG."""
    from PIL import Image
    folder, rng = tmp_path / "pictures", np.random.default_rng(7)
    (folder / "sub").mkdir(parents=True)
    for i in range(12):
        size = (10 + i, 14 + 2 * i)
        mode = ["L", "RGB", "RGBA"][i % 3]
        pixels = rng.integers(0, 256, (size[1], size[0], len(mode)), dtype=np.uint8).squeeze()
        Image.fromarray(pixels, mode).save(folder / ("sub" if i % 2 else "") / f"{i}.{'jpg' if i == 4 else 'png'}")
    return folder


def test_stylegan_example_on_a_picture_folder_writes_the_contract_files(tmp_path, picture_folder):
    metrics = run("stylegan", tmp_path / "out", "--data", picture_folder, "--steps", 2, *TINY)
    for f in CONTRACT + FIGURES + ["samples.npz"]:
        assert (tmp_path / "out" / f).stat().st_size > 0, f
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["steps"] == 2 == metrics["steps"]
    x = np.load(tmp_path / "out" / "samples.npz")["x"]
    assert x.shape == (1000, 3, 8, 8) and x.dtype == np.float32 and x.min() >= -1 and x.max() <= 1


@pytest.mark.slow  # loading and resizing Fashion-MNIST's 70,000 images: about 40 s on a loaded machine
@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DIR), reason=f"Fashion-MNIST not installed in {FASHION_MNIST_DIR}")
def test_stylegan_example_on_fashion_mnist_scores_the_samples(tmp_path):
    metrics = run("stylegan", tmp_path, "--steps", 2, *TINY[:-2], "--resolution", 16)
    assert 1 <= metrics["classes_hit"] <= 10 and metrics["classifier_fd"] > 0
    assert set(metrics["truncation"]) == {"1.0", "0.7", "0.5"}
    assert np.load(tmp_path / "samples.npz")["x"].shape == (1000, 1, 16, 16)


def test_stylegan_example_resumed_run_equals_uninterrupted_run(tmp_path, picture_folder):
    args = ("--data", picture_folder, *TINY, "--checkpoint-every", 2, "--r1-interval", 2)
    once, twice = assert_resume_continues_the_run("stylegan", tmp_path, 5, 3, args, ["generator", "discriminator"])
    _assert_same_ema(once, twice)
    np.testing.assert_array_equal(*(np.load(d / "samples.npz")["x"] for d in (once, twice)))


def _assert_same_ema(once, twice):
    """The moving average of G's weights (and its copied w_avg) in both runs' checkpoints, bit for bit."""
    a, b = params(once, "ema"), params(twice, "ema")
    assert int(a["num_updates"]) == int(b["num_updates"]) > 0
    for table in ("shadow", "shadow_buffers"):
        assert a[table].keys() == b[table].keys()
        for k in a[table]:
            np.testing.assert_array_equal(a[table][k], b[table][k], err_msg=f"ema.{table}.{k}")


@pytest.mark.parametrize("bad, message", [(("--resolution", "24"), "power of two"),
                                          (("--resolution", "4"), "power of two"),
                                          (("--data", "/nonexistent/folder"), "folder of pictures"),
                                          (("--batch-size", "6"), "multiple of 4")])
def test_stylegan_example_refuses_bad_arguments(tmp_path, capsys, bad, message):
    with pytest.raises(SystemExit):
        run("stylegan", tmp_path, *bad)
    assert message in capsys.readouterr().err


def test_stylegan_example_refuses_a_folder_without_pictures(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no pictures here")
    with pytest.raises(Exception, match="no PNG or JPEG"):
        run("stylegan", tmp_path / "out", "--data", tmp_path / "empty", *TINY)


def test_stylegan_example_on_cuda_continues_a_resumed_run(fake_cuda, tmp_path, picture_folder):
    """The GPU recipe's code path on the CuPy stand-in (tests/fake_cupy.py; no GPU needed): the
    "cuda" recipe with tiny widths, stopped and resumed, ends where an uninterrupted run ends."""
    args = ("--data", picture_folder, "--device", "cuda", *TINY, "--checkpoint-every", 2, "--r1-interval", 2)
    once, twice = assert_resume_continues_the_run("stylegan", tmp_path, 4, 2, args, ["generator", "discriminator"])
    _assert_same_ema(once, twice)
    metrics = json.loads((once / "metrics.json").read_text())
    assert metrics["device"] == "cuda" and metrics["recipe"] == "cuda" and metrics["z_dim"] == 4
