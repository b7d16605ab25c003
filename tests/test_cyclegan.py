"""CycleGAN against a torch twin written after the reference implementation
(``tests/twins/train_cyclegan_torch.py``).

The ResNet generator's forward output and gradients, and whole training steps (pool
off and on, with the same random draws) agree with torch (the steps in float64). The image pool is checked against its specification by statistics (the
swap probability, the uniform slot, the fill order), the losses against their closed
forms, the learning-rate policy against torch's LambdaLR with the reference's rule,
and the example by smoke runs.
"""
import json
import os

import numpy as np
import pytest
import torch

import minigan as mg
from minigan import nn, optim
from minigan.data import load_sneakers2boots
from minigan.data.mnist import FASHION_MNIST_DIR
from minigan.eval import load_classifier
from minigan.models import cyclegan
from minigan.testing import assert_normal_init, assert_params_match, assert_state_match, load_into_twin
from test_examples import CONTRACT, assert_resumed_after_a_crash_equals_uninterrupted_run, params, run
from twins.train_cyclegan_torch import ImagePool as TorchImagePool
from twins.train_cyclegan_torch import ResnetGenerator as TorchResnetGenerator
from twins.train_cyclegan_torch import train_step as torch_train_step
from twins.train_pix2pix_torch import NLayerDiscriminator as TorchNLayerDiscriminator

torch.set_num_threads(1)


def _generator_twins(in_channels=1, out_channels=1, width=4, n_blocks=2, seed=0):
    mg.manual_seed(seed)
    G = cyclegan.ResnetGenerator(in_channels, out_channels, width, n_blocks)
    return G, load_into_twin(G, TorchResnetGenerator(in_channels, out_channels, width, n_blocks))


# ---------------------------------------------------------------- the generator


def test_generator_state_dict_keys_match_torch_twin():
    G, tG = _generator_twins(3, 3, 8, 3)
    assert list(G.state_dict()) == list(tG.state_dict())


@pytest.mark.parametrize("in_channels,out_channels,size", [(1, 1, 32), (3, 3, 16), (1, 3, 20)])
def test_generator_forward_and_gradients_match_torch_twin(in_channels, out_channels, size):
    """In float64: the convs' biases before an instance norm have a zero gradient, which float32
    gives as rounding noise of either sign."""
    G, tG = _generator_twins(in_channels, out_channels)
    G, tG = G.double(), tG.double()
    x = np.random.default_rng(1).uniform(-1, 1, (3, in_channels, size, size))
    w = np.random.default_rng(2).standard_normal((3, out_channels, size, size))
    xm, xt = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, ty = G(xm), tG(xt)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    (y * mg.tensor(w)).sum().backward()
    (ty * torch.tensor(w)).sum().backward()
    assert_params_match(G, tG, rtol=1e-8, atol=1e-10, grads=True)
    np.testing.assert_allclose(xm.grad.numpy(), xt.grad.numpy(), rtol=1e-8, atol=1e-10)


def test_generator_is_the_papers_c7s1_d_d_resblocks_u_u_c7s1_tanh():
    G = cyclegan.ResnetGenerator(3, 3, width=64, n_blocks=9)
    layers = list(G.net)
    convs = [m for m in layers if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    # c7s1-64, d128, d256 | R256 x 9 | u128, u64, c7s1-3 (Appendix 7.2)
    assert [(c.kernel_size, c.stride, c.out_channels) for c in convs] == [
        ((7, 7), (1, 1), 64), ((3, 3), (2, 2), 128), ((3, 3), (2, 2), 256),
        ((3, 3), (2, 2), 128), ((3, 3), (2, 2), 64), ((7, 7), (1, 1), 3)]
    assert [type(c) for c in convs[3:5]] == [nn.ConvTranspose2d] * 2
    blocks = [m for m in layers if isinstance(m, cyclegan.ResnetBlock)]
    assert len(blocks) == 9
    assert isinstance(layers[0], nn.ReflectionPad2d) and isinstance(layers[-1], nn.Tanh)
    # reflection padding, never zero padding, around every stride-1 conv
    assert all(c.padding == (0, 0) for m in [G] for c in m.modules() if isinstance(c, nn.Conv2d) and c.stride == (1, 1))
    norms = [m for m in G.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(norms) == 5 + 2 * 9 and not any(n.affine for n in norms)


def test_generator_keeps_size_and_range():
    G = cyclegan.ResnetGenerator(1, 3, width=4, n_blocks=1)
    y = G(mg.tensor(np.random.default_rng(0).normal(0, 3, (2, 1, 24, 28)).astype(np.float32)))
    assert y.shape == (2, 3, 24, 28) and np.abs(y.numpy()).max() <= 1


def test_resnet_block_with_a_silent_branch_is_the_identity():
    """x + R(x): with the second conv's weights and bias zero, instance norm of a zero map is
    zero and the block returns its input exactly."""
    block = cyclegan.ResnetBlock(3)
    nn.init.zeros_(block.block[5].weight)
    nn.init.zeros_(block.block[5].bias)
    x = mg.randn(2, 3, 8, 8)
    np.testing.assert_array_equal(block(x).numpy(), x.numpy())


def test_generator_refuses_sizes_the_halvings_cannot_undo():
    G = cyclegan.ResnetGenerator(1, 1, width=4, n_blocks=1)
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\).*\(2, 1, 30, 32\)"):
        G(mg.zeros(2, 1, 30, 32))
    with pytest.raises(ValueError, match=r"\(2, 3, 32, 32\)"):
        G(mg.zeros(2, 3, 32, 32))


def test_init_is_normal_0_002_with_zero_biases():
    mg.manual_seed(0)
    assert_normal_init(cyclegan.ResnetGenerator(3, 3, width=32, n_blocks=2))


# ---------------------------------------------------------------- the image pool


def _distinct(n, start=0, shape=(1, 2, 2)):
    """n images, the i-th filled with the value start + i, so each can be told apart."""
    return mg.tensor(np.broadcast_to((start + np.arange(n, dtype=np.float32))[:, None, None, None],
                                     (n, *shape)).copy())


def _ids(images):
    return images.numpy()[:, 0, 0, 0].astype(int).tolist()


def test_pool_returns_its_inputs_until_full_and_fills_in_order():
    pool = cyclegan.ImagePool(10, (1, 2, 2), np.random.default_rng(0))
    assert _ids(pool(_distinct(4))) == [0, 1, 2, 3]
    assert _ids(pool(_distinct(4, 4))) == [4, 5, 6, 7]
    assert _ids(pool.images)[:8] == list(range(8)) and int(pool.stored.item()) == 8  # slot i: the i-th image
    out = _ids(pool(_distinct(4, 8)))
    assert out[:2] == [8, 9]  # the last two free slots: stored and returned
    assert int(pool.stored.item()) == 10
    # the two images fed to the full pool came back themselves or swapped with a stored one
    assert sorted(out[2:] + _ids(pool.images)) == list(range(12))


def test_pool_swaps_with_probability_one_half_into_a_uniform_slot():
    """Fed one new image at a time into a full pool of 5: each is returned itself with
    probability 1/2; otherwise the image of a uniformly chosen slot is returned and the new
    one takes that slot. n = 4000 draws: a binomial share within 4 sigma, a chi-square over slots."""
    size, n = 5, 4000
    pool = cyclegan.ImagePool(size, (1, 2, 2), np.random.default_rng(1))
    pool(_distinct(size))
    slots, swaps = np.zeros(size, int), 0
    for i in range(n):
        before = _ids(pool.images)
        new = size + i
        (out,) = _ids(pool(_distinct(1, new)))
        after = _ids(pool.images)
        if out == new:
            assert after == before  # returned itself: the pool is unchanged
            continue
        swaps += 1
        slot = before.index(out)  # the old image that came back left its slot to the new one
        assert after == before[:slot] + [new] + before[slot + 1:]
        slots[slot] += 1
    assert abs(swaps / n - 0.5) < 4 * np.sqrt(0.25 / n)
    expected = swaps / size
    chi2 = ((slots - expected) ** 2 / expected).sum()
    assert chi2 < 18.47  # the 0.999 quantile of chi-square with 4 degrees of freedom


def test_pool_gives_the_reference_implementations_images_for_the_same_draws():
    rng, trng = np.random.default_rng(7), np.random.default_rng(7)
    pool = cyclegan.ImagePool(6, (1, 2, 2), rng)
    tpool = TorchImagePool(6, uniform=lambda: trng.uniform(0, 1), randint=lambda lo, hi: trng.integers(lo, hi + 1))
    for step in range(12):
        batch = _distinct(4, 4 * step)
        np.testing.assert_array_equal(pool(batch).numpy(), tpool.query(torch.tensor(batch.numpy())).numpy())


def test_pool_output_is_detached_and_pool_size_zero_passes_through():
    x = mg.randn(3, 1, 2, 2, requires_grad=True)
    for size in (0, 2):
        out = cyclegan.ImagePool(size, (1, 2, 2), np.random.default_rng(0))(x * 2)
        assert not out.requires_grad
        np.testing.assert_array_equal(out.numpy()[:2], 2 * x.numpy()[:2])
    with pytest.raises(ValueError, match=r"\(N, 1, 2, 2\).*\(3, 1, 4, 4\)"):
        cyclegan.ImagePool(2, (1, 2, 2))(mg.zeros(3, 1, 4, 4))


def test_pool_state_dict_resumes_the_pool():
    """A pool loaded from another's state_dict (with its generator's state) answers as it would."""
    a = cyclegan.ImagePool(4, (1, 2, 2), np.random.default_rng(3))
    a(_distinct(6))
    b = cyclegan.ImagePool(4, (1, 2, 2), np.random.default_rng())
    b.load_state_dict(a.state_dict())
    b.rng.bit_generator.state = a.rng.bit_generator.state
    for step in range(5):
        batch = _distinct(3, 10 + 3 * step)
        np.testing.assert_array_equal(a(batch).numpy(), b(batch).numpy())


# ---------------------------------------------------------------- losses and the learning rate


def test_losses_are_the_least_squares_and_l1_closed_forms():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(4, 1, 3, 3)), rng.normal(size=(4, 1, 3, 3))
    a, b = rng.uniform(-1, 1, (2, 1, 5, 5)), rng.uniform(-1, 1, (2, 1, 5, 5))
    t = lambda v: mg.tensor(v.astype(np.float64))
    assert cyclegan.discriminator_loss(t(real), t(fake)).item() == pytest.approx(
        0.5 * (((real - 1) ** 2).mean() + (fake ** 2).mean()), rel=1e-12)
    assert cyclegan.generator_loss(t(fake)).item() == pytest.approx(((fake - 1) ** 2).mean(), rel=1e-12)
    assert cyclegan.cycle_loss(t(a), t(b)).item() == pytest.approx(np.abs(a - b).mean(), rel=1e-12)
    assert cyclegan.identity_loss(t(a), t(b)).item() == pytest.approx(np.abs(a - b).mean(), rel=1e-12)


def _reference_lambda_rule(hold, decay):
    """The reference's ``lambda_rule`` of lr_policy 'linear' (epoch_count 1, n_epochs hold,
    n_epochs_decay decay)."""
    return lambda epoch: 1.0 - max(0, epoch + 1 - hold) / float(decay + 1)


def test_linear_decay_holds_then_falls_linearly_as_torchs_lambda_lr():
    hold, decay = 5, 7
    p, tp = nn.Parameter(mg.zeros(1)), torch.zeros(1, requires_grad=True)
    opt, topt = optim.Adam([p], lr=2e-4), torch.optim.Adam([tp], lr=2e-4)
    sched = optim.lr_scheduler.LambdaLR(opt, cyclegan.LinearDecay(hold, decay))
    tsched = torch.optim.lr_scheduler.LambdaLR(topt, _reference_lambda_rule(hold, decay))
    lrs = []
    for step in range(hold + decay):
        lrs.append(opt.param_groups[0]["lr"])
        assert lrs[-1] == pytest.approx(topt.param_groups[0]["lr"], rel=1e-14), step
        opt.step(), topt.step()
        sched.step(), tsched.step()
    assert lrs[:hold] == [2e-4] * hold
    steps = np.diff(lrs[hold - 1:])
    np.testing.assert_allclose(steps, -2e-4 / (decay + 1), rtol=1e-9)  # a straight line down ...
    assert lrs[-1] + steps[-1] == pytest.approx(0, abs=1e-18)  # ... that reaches 0 a step after the end


# ---------------------------------------------------------------- one training step

ADAM = dict(lr=2e-4, betas=(0.5, 0.999))


def _cyclegan_twins(seed=0, cx=1, cy=2):
    """G: X (cx channels) -> Y (cy channels), F: Y -> X, and their PatchGANs, with torch twins
    loaded with the same weights; one Adam over both generators, one over both Ds.

    In float64: a conv's bias before an instance norm has a zero gradient, which float32
    gives as rounding noise of either sign (about 1e-5) and Adam turns into a step of +-lr;
    float64's noise (about 1e-17) stays far below Adam's eps, and the bias stays put."""
    G, tG = _generator_twins(cx, cy, seed=seed)
    F, tF = _generator_twins(cy, cx, seed=seed + 1)
    D_X, D_Y = cyclegan.discriminator(cx, width=4), cyclegan.discriminator(cy, width=4)
    tD_X = load_into_twin(D_X, TorchNLayerDiscriminator(cx, ndf=4, n_layers=3, norm="instance"))
    tD_Y = load_into_twin(D_Y, TorchNLayerDiscriminator(cy, ndf=4, n_layers=3, norm="instance"))
    nets = tuple(net.double() for net in (G, F, D_X, D_Y))
    twins = tuple(twin.double() for twin in (tG, tF, tD_X, tD_Y))
    opts = (optim.Adam([*G.parameters(), *F.parameters()], **ADAM),
            optim.Adam([*D_X.parameters(), *D_Y.parameters()], **ADAM))
    topts = (torch.optim.Adam([*tG.parameters(), *tF.parameters()], **ADAM),
             torch.optim.Adam([*tD_X.parameters(), *tD_Y.parameters()], **ADAM))
    return nets, twins, opts, topts


@pytest.mark.parametrize("lambda_identity,cy", [(0.5, 1), (0.0, 2)])
def test_training_steps_without_pool_match_torch_twin(lambda_identity, cy):
    """Three steps of the reference's optimize_parameters: the losses, and every parameter of
    the four networks after each step. (The identity terms need as many channels in Y as in X.)"""
    nets, twins, opts, topts = _cyclegan_twins(cy=cy)
    rng = np.random.default_rng(5)
    for step in range(3):
        x, y = rng.uniform(-1, 1, (2, 1, 32, 32)), rng.uniform(-1, 1, (2, cy, 32, 32))
        losses = cyclegan.train_step(*nets, *opts, mg.tensor(x), mg.tensor(y), lambda_identity=lambda_identity)
        tlosses = torch_train_step(twins[0], twins[1], twins[3], twins[2], *topts, torch.tensor(x), torch.tensor(y),
                                   lambda_idt=lambda_identity)
        for k, v in tlosses.items():
            np.testing.assert_allclose(losses[k], v, rtol=1e-9, err_msg=f"{k} at step {step}")
        for net, twin in zip(nets, twins):
            assert_state_match(net, twin, rtol=1e-7, atol=1e-8)  # lr 2e-4: a real step is far above
    assert all(p.requires_grad for net in nets for p in net.parameters())  # D trainable again


def test_training_steps_with_pools_match_torch_twin_for_the_same_draws():
    """Pools of 3 with batches of 2: from the second step on, D sees a mix of new and stored fakes."""
    nets, twins, opts, topts = _cyclegan_twins(seed=3)
    rngs = [np.random.default_rng(11), np.random.default_rng(12)]
    trngs = [np.random.default_rng(11), np.random.default_rng(12)]
    pools = [cyclegan.ImagePool(3, shape, r).double() for shape, r in zip([(1, 32, 32), (2, 32, 32)], rngs)]
    tpools = [TorchImagePool(3, uniform=lambda r=r: r.uniform(0, 1), randint=lambda lo, hi, r=r: r.integers(lo, hi + 1))
              for r in trngs]
    rng = np.random.default_rng(6)
    for step in range(4):
        x, y = rng.uniform(-1, 1, (2, 1, 32, 32)), rng.uniform(-1, 1, (2, 2, 32, 32))
        losses = cyclegan.train_step(*nets, *opts, mg.tensor(x), mg.tensor(y), *pools, lambda_identity=0)
        tlosses = torch_train_step(twins[0], twins[1], twins[3], twins[2], *topts, torch.tensor(x), torch.tensor(y),
                                   fake_A_pool=tpools[0], fake_B_pool=tpools[1], lambda_idt=0)
        np.testing.assert_allclose([losses["d_x"], losses["d_y"]], [tlosses["d_x"], tlosses["d_y"]], rtol=1e-9)
        for net, twin in zip(nets, twins):
            assert_state_match(net, twin, rtol=1e-7, atol=1e-8)  # lr 2e-4: a real step is far above


# ---------------------------------------------------------------- sneakers2boots

needs_fashion_mnist = pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DIR),
                                         reason="needs Debian's dataset-fashion-mnist")


@needs_fashion_mnist
def test_sneakers2boots_are_fashion_mnists_classes_7_and_9():
    """Fashion-MNIST has 6000 training and 1000 test images per class; the project's classifier
    (90.9% test accuracy) names nearly all of X sneakers and of Y ankle boots."""
    classifier = load_classifier("fashion-mnist")
    for split, n in (("train", 6000), ("test", 1000)):
        d = load_sneakers2boots(split)
        assert d.x.shape == d.y.shape == (n, 1, 32, 32) and d.x.dtype == np.float32
        assert -1 <= min(d.x.min(), d.y.min()) and max(d.x.max(), d.y.max()) <= 1
        if split == "test":
            assert (classifier.predict(d.x) == 7).mean() > 0.9 and (classifier.predict(d.y) == 9).mean() > 0.9
    with pytest.raises(ValueError, match="split"):
        load_sneakers2boots("validation")


# ---------------------------------------------------------------- examples/cyclegan.py

TINY = ("--width", 2, "--blocks", 1, "--d-width", 2, "--batch-size", 2, "--pool-size", 3)


@needs_fashion_mnist
def test_cyclegan_example_writes_the_contract_files(tmp_path):
    metrics = run("cyclegan", tmp_path, "--steps", 3, *TINY)
    for f in CONTRACT + ["samples.npz"]:
        assert (tmp_path / f).stat().st_size > 0, f
    assert json.loads((tmp_path / "metrics.json").read_text())["steps"] == 3 == metrics["steps"]
    assert 0 <= metrics["target_share"] <= 1 and 0 <= metrics["cycle_l1"] <= 2
    samples = np.load(tmp_path / "samples.npz")
    assert sorted(samples.files) == ["input", "label", "output"]  # no true target for unpaired domains
    for k in ("input", "output"):
        assert samples[k].shape == (2000, 1, 32, 32) and samples[k].dtype == np.float32
        assert -1 <= samples[k].min() and samples[k].max() <= 1
    # the whole test split: every sneaker translated to a boot (9), every boot to a sneaker (7)
    assert samples["label"].tolist() == [9] * 1000 + [7] * 1000


@needs_fashion_mnist
def test_cyclegan_example_resumed_after_a_crash_equals_uninterrupted_run(tmp_path, monkeypatch):
    """A run that dies after its checkpoint at step 3 of 6 and is resumed ends bit for bit where
    an uninterrupted run ends: the pools (their images and generator) and the lr schedule (held
    for 3 steps, then decaying, a function of --steps) resume too; the steps after the crash
    swap fakes in and out of a full pool of 3 and train at a decaying lr."""
    once, twice = assert_resumed_after_a_crash_equals_uninterrupted_run(
        "cyclegan", tmp_path, monkeypatch, cyclegan, ("--steps", 6, "--checkpoint-every", 3, *TINY),
        ["G", "F", "D_X", "D_Y", "pool_x", "pool_y"])
    a, b = (np.load(d / "samples.npz")["output"] for d in (once, twice))
    np.testing.assert_array_equal(a, b)


@needs_fashion_mnist
def test_cyclegan_example_on_unpaired_edges2fashion_scores_the_test_pairs(tmp_path):
    metrics = run("cyclegan", tmp_path, "--data", "edges2fashion", "--steps", 2, "--test-examples", 1000, *TINY)
    samples = np.load(tmp_path / "samples.npz")
    assert sorted(samples.files) == ["input", "label", "output", "target"]
    for k in ("input", "output", "target"):
        assert samples[k].shape == (1000, 1, 32, 32) and samples[k].dtype == np.float32
    # the scores are pix2pix's, on the test pairs: L1 against the true garment of each edge map
    l1 = np.abs(samples["output"].astype(np.float64) - samples["target"]).mean()
    assert metrics["l1"] == pytest.approx(l1, rel=1e-6) and 0 <= metrics["accuracy"] <= 1
    assert metrics["accuracy_targets"] > 0.85  # the classifier on the true garments: the ceiling


@pytest.mark.slow
@needs_fashion_mnist
def test_default_run_translates_sneakers_and_boots_and_closes_the_cycle(tmp_path):
    """``python examples/cyclegan.py`` (400 steps, about 3 CPU-minutes): the classifier puts most
    translations in the target class, where it puts under 5% of the untranslated inputs, and
    the cycle gives each sneaker back far closer than another test sneaker is to it."""
    metrics = run("cyclegan", tmp_path)
    assert metrics["sneaker_to_boot_target_share"] > 0.8 and metrics["boot_to_sneaker_target_share"] > 0.7
    assert metrics["sneaker_to_boot_input_target_share"] < 0.05 and metrics["boot_to_sneaker_input_target_share"] < 0.05
    sneakers = load_sneakers2boots("test").x
    unrelated = np.abs(sneakers - sneakers[np.random.default_rng(0).permutation(len(sneakers))]).mean()  # about 0.22
    assert metrics["sneaker_to_boot_cycle_l1"] < 0.75 * unrelated
