"""SinGAN against the paper's code in plain torch (``tests/twins/singan_torch.py``): each
scale's G and D (forward and gradients with the same weights), the gradient penalty of
a patch critic (double backward through the 3x3 convs and batch norm), one full
iteration at a scale (3 critic steps with the penalty, 3 generator steps with the
reconstruction loss, Adam); the pyramid's sizes and the noise amplitude against their
closed forms; the example's smoke run, resume and bad input.
"""
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as tF

import minigan as mg
from minigan import optim
from minigan.models import singan, wgan
from minigan.testing import assert_params_match, assert_state_match, load_into_twin
from test_examples import example, run
from twins import singan_torch as twin

torch.set_num_threads(1)
WIDTH = 4
ADAM = dict(lr=singan.LR, betas=singan.BETAS)


def _pair(kind, width=WIDTH, seed=0):
    mg.manual_seed(seed)
    ours = (singan.ScaleGenerator if kind == "G" else singan.ScaleCritic)(3, width)
    theirs = (twin.Generator if kind == "G" else twin.Critic)(3, width)
    with mg.no_grad():  # batch norm's scale and shift away from (1, 0), so a wrong one shows
        for name, p in ours.named_parameters():
            if "norm" in name:
                p.copy_(mg.tensor(np.random.default_rng(seed).uniform(0.5, 1.5, p.shape).astype(np.float32)))
    return ours.double(), load_into_twin(ours, theirs).double()


@pytest.mark.parametrize("kind", ["G", "D"])
def test_each_scales_networks_match_torch_forward_and_gradients(kind):
    ours, theirs = _pair(kind)
    rng = np.random.default_rng(1)
    x, prev = rng.standard_normal((2, 3, 13, 17)), rng.uniform(-1, 1, (2, 3, 13, 17))
    if kind == "G":
        out, tout = ours(mg.tensor(x), mg.tensor(prev)), theirs(torch.tensor(x), torch.tensor(prev))
        assert out.shape == (2, 3, 13, 17)  # G keeps the size: the input is padded by 5
    else:
        out, tout = ours(mg.tensor(x)), theirs(torch.tensor(x))
        assert out.shape == (2, 1, 3, 7)  # one score per 11x11 patch
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-9, atol=1e-12)
    weights = rng.standard_normal(out.shape)
    (out * mg.tensor(weights)).sum().backward()
    (tout * torch.tensor(weights)).sum().backward()
    assert_params_match(ours, theirs, rtol=1e-8, atol=1e-11, grads=True)
    assert_state_match(ours, theirs, rtol=1e-9, atol=1e-12)  # running statistics


def test_receptive_field_of_the_critic_is_11x11():
    D = singan.ScaleCritic(3, WIDTH).eval()
    x = mg.zeros(1, 3, 21, 21, requires_grad=True)
    D(x)[0, 0, 5, 5].backward()
    rows, cols = np.nonzero(np.abs(x.grad.numpy()).sum(axis=(0, 1)))
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (5, 15, 5, 15)


@pytest.mark.parametrize("per_pixel", [True, False])
def test_gradient_penalty_of_a_patch_critic_matches_torch_double_backward(per_pixel):
    D, tD = _pair("D")
    rng = np.random.default_rng(2)
    real, fake, eps = rng.uniform(-1, 1, (1, 3, 15, 18)), rng.uniform(-1, 1, (1, 3, 15, 18)), rng.uniform(size=1)
    gp = wgan.gradient_penalty(D, mg.tensor(real), mg.tensor(fake), 0.1, eps=mg.tensor(eps), per_pixel=per_pixel)
    if per_pixel:  # the paper's code
        tgp = twin.calc_gradient_penalty(tD, torch.tensor(real), torch.tensor(fake), 0.1, torch.tensor(eps))
    else:  # one norm per image
        xhat = (eps[0] * torch.tensor(real) + (1 - eps[0]) * torch.tensor(fake)).requires_grad_()
        g, = torch.autograd.grad(tD(xhat).sum(), xhat, create_graph=True)
        tgp = 0.1 * ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()
    np.testing.assert_allclose(gp.item(), tgp.item(), rtol=1e-8)
    gp.backward()
    tgp.backward()  # the 1e-12 under minigan's square root moves the smallest per-pixel norms by ~1e-6
    theirs = dict(tD.named_parameters())
    for name, p in D.named_parameters():  # the last bias does not move the input gradient: no .grad in either
        assert (p.grad is None) == (theirs[name].grad is None) == (name == "tail.bias"), name
        if p.grad is not None:
            np.testing.assert_allclose(p.grad.numpy(), theirs[name].grad.numpy(), rtol=1e-5, atol=1e-9, err_msg=name)


def _model(scales, seed=0):
    """A SinGAN of ``scales`` scales on a small random image, its pyramid, in float64."""
    sizes = singan.pyramid_sizes(30, 36, max_size=36, scale_factor=0.85)[0][:scales]  # 25x30, 27x33, 30x36
    mg.manual_seed(seed)
    image = np.random.default_rng(seed).uniform(-1, 1, (3, *sizes[-1])).astype(np.float32)
    model = singan.SinGAN(sizes, width=WIDTH).double()
    return model, [r.astype(np.float64) for r in singan.real_pyramid(image, sizes)]


@pytest.mark.parametrize("scale", [0, 1])
def test_one_training_iteration_matches_the_papers_code_in_torch(scale, monkeypatch):
    model, reals = _model(2)
    for k in range(scale + 1):
        model.start_scale(k, reals[k])
    model.noise_amps.copy_(mg.tensor(np.array([1.0, 0.3])))  # a sigma_1 that is not 1
    G, D = model.generators[scale], model.critics[scale]
    tG = load_into_twin(G, twin.Generator(3, WIDTH)).double()
    tD = load_into_twin(D, twin.Critic(3, WIDTH)).double()
    size = model.sizes[scale]
    rng = np.random.default_rng(3)
    z = rng.standard_normal((1, 3, *size)) * model.noise_amps.numpy()[scale]
    prevs = [rng.uniform(-1, 1, (1, 3, *size)) * (scale > 0) for _ in range(3)]
    eps = [rng.uniform(size=1) for _ in range(3)]
    draws = {"prev": iter(prevs), "eps": iter(eps)}
    monkeypatch.setattr(model, "noise", lambda k, s, n=1: mg.tensor(z))
    monkeypatch.setattr(model, "random_input", lambda k, n=1: mg.tensor(next(draws["prev"])))
    monkeypatch.setattr(singan, "gradient_penalty", lambda *a, **kw: wgan.gradient_penalty(
        *a, eps=mg.tensor(next(draws["eps"])), **kw))
    rec_prev = model.reconstruction_input(scale).numpy()
    z_rec = model.z_star.numpy() if scale == 0 else np.zeros_like(rec_prev)
    opt_g, opt_d = optim.Adam(G.parameters(), **ADAM), optim.Adam(D.parameters(), **ADAM)
    topt_g, topt_d = torch.optim.Adam(tG.parameters(), **ADAM), torch.optim.Adam(tD.parameters(), **ADAM)
    real = reals[scale]
    for _ in range(2):
        draws.update(prev=iter(prevs), eps=iter(eps))
        ours = singan.train_iteration(model, scale, mg.tensor(real), opt_g, opt_d)
        theirs = twin.train_iteration(tG, tD, topt_g, topt_d, torch.tensor(real), torch.tensor(z),
                                      [torch.tensor(p) for p in prevs], [torch.tensor(e) for e in eps],
                                      torch.tensor(z_rec), torch.tensor(rec_prev))
        for k in theirs:
            np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-7, atol=1e-10, err_msg=k)
    assert ours["gp"] > 0 and ours["g_rec"] > 0
    for ours, theirs in ((G, tG), (D, tD)):
        expected = theirs.state_dict()
        for name, value in ours.state_dict().items():
            # a conv bias before batch norm has an exact gradient of 0; the computed one is rounding noise,
            # which Adam divides by its own root mean square: steps of either sign, ~1e-6 in all, and
            # batch norm's running mean (the conv's output mean, bias included) follows it
            if name.endswith("conv.bias"):
                continue
            atol = 1e-5 if name.endswith("running_mean") else 1e-10
            np.testing.assert_allclose(value.numpy(), expected[name].numpy(), rtol=1e-7, atol=atol, err_msg=name)


def test_coarser_scales_are_frozen_and_a_scale_starts_from_the_previous_weights():
    model, reals = _model(2)
    model.start_scale(0, reals[0])
    before = {k: v.numpy().copy() for k, v in model.generators[0].state_dict().items()}
    model.start_scale(1, reals[1])
    assert not model.generators[0].training and not any(p.requires_grad for p in model.generators[0].parameters())
    assert model.generators[1].training and all(p.requires_grad for p in model.generators[1].parameters())
    for k, v in model.generators[1].state_dict().items():  # same width: G_1 starts as G_0
        np.testing.assert_array_equal(v.numpy(), before[k], err_msg=k)
    opt = optim.Adam(model.generators[1].parameters(), **ADAM)  # the copy went into the same parameters
    assert all(p is q for p, q in zip(opt.param_groups[0]["params"], model.generators[1].parameters()))
    singan.train_iteration(model, 1, mg.tensor(reals[1]), opt, optim.Adam(model.critics[1].parameters(), **ADAM))
    for k, v in model.generators[0].state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k], err_msg=k)


def test_the_pyramids_sizes_follow_the_papers_closed_form():
    # china.jpg, 427x640: longer side to 250 -> 167x250; N = ceil(log(25/167) / log(3/4)) = ceil(6.60) = 7
    sizes, r = singan.pyramid_sizes(427, 640)
    assert len(sizes) == 8 and sizes[-1] == (167, 250) and sizes[0] == (25, 37)
    assert r == pytest.approx((25 / 167) ** (1 / 7)) and r == pytest.approx(0.7624, abs=1e-4)
    for (h, w), k in zip(sizes, range(7, -1, -1)):
        assert (h, w) == (round(167 * r ** k), round(250 * r ** k))
    for height, width in [(25, 25), (26, 80), (100, 100), (250, 188), (40, 300), (1000, 300)]:
        sizes, r = singan.pyramid_sizes(height, width)
        shrink = min(250 / max(height, width), 1)
        short = min(round(height * shrink), round(width * shrink))
        n = len(sizes) - 1
        assert min(sizes[0]) == 25 and sizes[-1] == (round(height * shrink), round(width * shrink))
        assert r >= 0.75
        if n >= 2:  # the fewest scales: one fewer would need a factor below 0.75
            assert (25 / short) ** (1 / (n - 1)) < 0.75
        if n == 0:
            assert short == 25
        assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in zip(sizes, sizes[1:]))
    assert singan.widths(9) == [32] * 4 + [64] * 4 + [128]  # doubling every 4 scales, at most 128
    assert singan.widths(12, 16, 2) == [16, 16, 32, 32, 64, 64, 128, 128, 128, 128, 128, 128]


def test_the_noise_amplitude_is_a_tenth_of_the_reconstructions_rmse():
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((1, 3, 5, 6)), rng.standard_normal((1, 3, 5, 6))
    assert singan.noise_amplitude(a, b) == pytest.approx(0.1 * math.sqrt(((a - b) ** 2).mean()))
    model, reals = _model(3)
    model.start_scale(0, reals[0])
    assert model.noise_amps.numpy()[0] == 1.0
    model.start_scale(1, reals[1])
    model.start_scale(2, reals[2])
    # sigma_2 from the reconstruction through scales 0 and 1, upsampled by torch's bilinear
    with torch.no_grad():
        G0, G1 = (load_into_twin(model.generators[k], twin.Generator(3, WIDTH)).double().eval() for k in (0, 1))
        x = G0(torch.tensor(model.z_star.numpy()), torch.zeros(1, 3, *model.sizes[0], dtype=torch.float64))
        up = tF.interpolate(x, size=model.sizes[1], mode="bilinear", align_corners=False)
        x = G1(torch.zeros_like(up), up)
        up = tF.interpolate(x, size=model.sizes[2], mode="bilinear", align_corners=False).numpy()
    assert model.noise_amps.numpy()[2] == pytest.approx(0.1 * np.sqrt(((reals[2] - up) ** 2).mean()), rel=1e-9)


def test_sampling_shapes_injection_and_super_resolution():
    model, reals = _model(3)
    for k in range(3):
        model.start_scale(k, reals[k])
    model.freeze_below(3)
    assert model.generate(2).shape == (2, 3, *model.sizes[-1])
    wide = model.generate(1, coarsest=(model.sizes[0][0], 2 * model.sizes[0][1]))
    assert wide.shape[2] == model.sizes[-1][0] and abs(wide.shape[3] - 2 * model.sizes[-1][1]) <= 2
    injected = model.generate(3, start=2, start_image=mg.tensor(reals[1]))
    assert injected.shape == (3, 3, *model.sizes[-1])
    big = model.super_resolve(mg.tensor(reals[-1]), times=2)
    # r = 27 / 30 = 0.9 here: 30x36 -> 33x40 -> 37x44
    assert model.sizes[-2:] == [(27, 33), (30, 36)] and big.shape == (1, 3, 37, 44)
    with pytest.raises(ValueError, match="start_image"):
        model.generate(1, start=1)


def test_example_writes_its_pictures_and_the_patch_report(tmp_path):
    metrics = run("singan", tmp_path, "--steps", 2, "--max-size", 40, "--width", 4)
    for f in ["samples.png", "losses.png", "metrics.json", "checkpoint.safetensors", "samples.npz", "aspect.png",
              "super_resolution.png", "injection.png", "reconstruction.png"]:
        assert (tmp_path / f).stat().st_size > 0, f
    assert metrics["sizes"] == [[25, 37], [27, 40]] and metrics["steps"] == 4
    x = np.load(tmp_path / "samples.npz")["x"]
    assert x.shape == (1000, 3, 27, 40) and x.dtype == np.float32 and np.abs(x).max() <= 2
    patch = json.loads((tmp_path / "metrics.json").read_text())["patch"]
    assert {"output", "held_out", "shuffled", "relative"} <= set(patch) and patch["trained_on"] == "whole image"


def test_resumed_run_continues_a_killed_run(tmp_path, monkeypatch):
    args = ("--steps", 3, "--max-size", 40, "--width", 4, "--checkpoint-every", 1)
    run("singan", tmp_path / "once", *args)
    module = example("singan")
    calls = {"n": 0}
    step = singan.train_iteration

    def dies_at_the_fifth(*a, **kw):  # in the middle of scale 1
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return step(*a, **kw)
    monkeypatch.setattr(singan, "train_iteration", dies_at_the_fifth)
    with pytest.raises(KeyboardInterrupt):
        module.main(["--out", str(tmp_path / "twice"), "--no-progress", *map(str, args)])
    monkeypatch.setattr(singan, "train_iteration", step)
    run("singan", tmp_path / "twice", *args, "--resume")
    from test_examples import params
    a, b = params(tmp_path / "once", "singan"), params(tmp_path / "twice", "singan")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_bad_input_names_what_was_wrong(tmp_path, capsys):
    with pytest.raises(ValueError, match="too small.*at least the coarsest size 25"):
        singan.pyramid_sizes(20, 300)
    with pytest.raises(ValueError, match="250x8 after shrinking"):
        singan.pyramid_sizes(1000, 30)
    with pytest.raises(SystemExit):
        run("singan", tmp_path / "a", "--image", "no_such_picture")
    assert "no_such_picture" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run("singan", tmp_path / "b", "--max-size", 30, "--min-size", 25, "--image", "china")  # 20x30
    assert "too small" in capsys.readouterr().err
    small = tmp_path / "small.png"
    from PIL import Image
    Image.fromarray(np.zeros((20, 64, 3), np.uint8)).save(small)
    with pytest.raises(SystemExit):
        run("singan", tmp_path / "c", "--image", small)
    assert "20x64" in capsys.readouterr().err
