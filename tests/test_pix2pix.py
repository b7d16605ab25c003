"""pix2pix's training step against the reference's ``optimize_parameters`` in plain torch
(``tests/twins/train_pix2pix_torch.py``), for each loss of the paper's ablation, and its
test time (dropout and batch statistics on, the running statistics untouched).
"""
import os

import numpy as np
import pytest
import torch

import minigan as mg
from minigan import optim
from minigan.data import FASHION_MNIST_DIR
from minigan.models import pix2pix
from minigan.testing import assert_params_match, assert_state_match, load_into_twin
from test_examples import run
from twins import train_pix2pix_torch as twin

torch.set_num_threads(1)
NGF = NDF = 2
ADAM = dict(lr=2e-4, betas=(0.5, 0.999))


def _models(patch=70, kind="unet", dropout=0.0, seed=0):
    """G and D with their torch twins, in float64 (Adam divides by the root of tiny second moments)."""
    mg.manual_seed(seed)
    G = pix2pix.generator(kind, 1, 1, 32, NGF, dropout=dropout)
    D = pix2pix.discriminator(patch, 1, 1, NDF)
    tG = twin.UnetGenerator(1, 1, 5, NGF, use_dropout=dropout > 0, skip=kind == "unet")
    tD = twin.patch_discriminator(2, patch, NDF)
    return G.double(), D.double(), load_into_twin(G, tG).double(), load_into_twin(D, tD).double()


def _batch(n=4, seed=1):
    rng = np.random.default_rng(seed)
    return rng.choice([-1.0, 1.0], (n, 1, 32, 32), p=[0.8, 0.2]), rng.uniform(-1, 1, (n, 1, 32, 32))


@pytest.mark.parametrize("loss,patch,kind", [("l1+gan", 70, "unet"), ("gan", 16, "unet"), ("l1", 70, "unet"),
                                             ("l1+gan", "image", "encoder-decoder"), ("l1+gan", 1, "unet")])
def test_training_steps_match_the_reference_in_torch(loss, patch, kind):
    G, D, tG, tD = _models(patch, kind)
    opt_g, opt_d = optim.Adam(G.parameters(), **ADAM), optim.Adam(D.parameters(), **ADAM)
    topt_g, topt_d = torch.optim.Adam(tG.parameters(), **ADAM), torch.optim.Adam(tD.parameters(), **ADAM)
    for step in range(3):
        x, y = _batch(seed=step)
        ours = pix2pix.train_step(G, D, opt_g, opt_d, mg.tensor(x), mg.tensor(y), loss)
        theirs = twin.train_step(tG, tD, topt_g, topt_d, torch.tensor(x), torch.tensor(y), loss)
        assert ours.keys() == theirs.keys()
        for k in ours:
            np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-9, err_msg=k)
    assert_params_match(G, tG, rtol=1e-7, atol=1e-10)
    assert_state_match(G, tG, rtol=1e-7, atol=1e-10)
    assert_state_match(D, tD, rtol=1e-7, atol=1e-10)


def test_l1_alone_never_touches_d():
    G, D, _, _ = _models()
    before = {k: v.numpy().copy() for k, v in D.state_dict().items()}
    x, y = _batch()
    before_step = pix2pix.translate(G, x, "train", batch_size=len(x))  # what the step's forward computes
    losses = pix2pix.train_step(G, None, optim.Adam(G.parameters(), **ADAM), None, mg.tensor(x), mg.tensor(y), "l1")
    assert set(losses) == {"g_loss", "g_l1"}
    assert losses["g_l1"] == losses["g_loss"] == pytest.approx(100 * np.abs(y - before_step).mean(), rel=1e-6)
    for k, v in D.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])


def test_the_losses_are_the_papers():
    rng = np.random.default_rng(0)
    real, fake = rng.standard_normal((2, 1, 2, 2)), rng.standard_normal((2, 1, 2, 2))
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    d = pix2pix.discriminator_loss(mg.tensor(real), mg.tensor(fake)).item()
    assert d == pytest.approx(0.5 * (-np.log(sigmoid(real)).mean() - np.log(1 - sigmoid(fake)).mean()))
    out, target = rng.uniform(-1, 1, (2, 1, 4, 4)), rng.uniform(-1, 1, (2, 1, 4, 4))
    total, parts = pix2pix.generator_loss(mg.tensor(out), mg.tensor(target), mg.tensor(fake))
    assert parts["g_l1"].item() == pytest.approx(100 * np.abs(out - target).mean())
    assert parts["g_gan"].item() == pytest.approx(-np.log(sigmoid(fake)).mean())
    assert total.item() == pytest.approx(parts["g_l1"].item() + parts["g_gan"].item())


def test_translate_in_the_papers_test_mode_uses_batch_statistics_and_leaves_g_as_it_was():
    G, _, tG, _ = _models()
    x, _ = _batch(8)
    G.train()
    for _ in range(2):  # running statistics away from (0, 1)
        G(mg.tensor(x * 0.5 + 0.3))
    load_into_twin(G, tG)
    state = {k: v.numpy().copy() for k, v in G.state_dict().items()}
    out = pix2pix.translate(G, x, "train", batch_size=4)
    with torch.no_grad():
        tG.train()
        expected = np.concatenate([tG(torch.tensor(x[:4])).numpy(), tG(torch.tensor(x[4:])).numpy()])
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
        load_into_twin(G, tG).eval()  # torch's train-mode forward moved the twin's running statistics
        np.testing.assert_allclose(pix2pix.translate(G, x, "eval"), tG(torch.tensor(x)).numpy(), rtol=1e-5, atol=1e-6)
    assert G.training and out.dtype == np.float32 and out.shape == x.shape
    for k, v in G.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), state[k], err_msg=k)


def test_translate_in_the_papers_test_mode_keeps_dropouts_noise():
    G, _, _, _ = _models(dropout=0.5)
    x, _ = _batch(4)
    assert not np.array_equal(pix2pix.translate(G, x, "train"), pix2pix.translate(G, x, "train"))
    np.testing.assert_array_equal(pix2pix.translate(G, x, "eval"), pix2pix.translate(G, x, "eval"))


def test_d_sees_the_input_and_the_output_together():
    D = pix2pix.discriminator(70, in_channels=1, out_channels=3, ndf=NDF)
    assert D.in_channels == 4
    assert pix2pix.pair(mg.zeros(2, 1, 8, 8), mg.ones(2, 3, 8, 8)).shape == (2, 4, 8, 8)


def test_bad_arguments_name_what_was_wrong():
    with pytest.raises(ValueError, match="loss"):
        pix2pix.generator_loss(mg.zeros(1), mg.zeros(1), loss="l2")
    with pytest.raises(ValueError, match="kind"):
        pix2pix.generator("resnet")
    with pytest.raises(ValueError, match="power of two"):
        pix2pix.generator(image_size=28)
    with pytest.raises(ValueError, match="test_mode"):
        pix2pix.translate(pix2pix.generator(ngf=NGF), np.zeros((1, 1, 32, 32), np.float32), "test")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DIR), reason=f"Fashion-MNIST not installed in {FASHION_MNIST_DIR}")
def test_l1_plus_cgan_outputs_carry_more_edge_energy_than_l1_alone(tmp_path):
    """The paper's point (its Table 1 and Figure 4): L1 alone averages the plausible outputs
    into a blur; the cGAN term restores the high frequencies. About 80 s on a CPU."""
    args = ("--steps", 400, "--train-examples", 20000, "--test-examples", 1000)
    l1 = run("pix2pix", tmp_path / "l1", "--loss", "l1", *args)
    both = run("pix2pix", tmp_path / "both", "--loss", "l1+gan", *args)
    assert l1["edge_energy_ratio"] < 0.9  # the blur: clearly less than the targets' edge energy
    for mode in (both, both["test_mode_train"]):  # in either test mode
        assert mode["edge_energy"] > 1.15 * l1["edge_energy"]
