"""DCGAN against a torch twin written in plain torch (``tests/twins/train_dcgan_torch.py``).

The twin loads minigan's weights and buffers; forward outputs (batch norm in train
and eval mode), gradients, and the parameters and running statistics after whole
training steps (D step, then G step on the same fakes, Adam on both) must agree
within float32 tolerance. The init is checked against the paper's N(0, 0.02) by
the sampling error of a standard deviation, and the example by smoke runs.
"""
import json

import numpy as np
import pytest
import torch

import minigan as mg
from minigan import optim
from minigan.models import dcgan
from minigan.testing import assert_normal_init, assert_params_match, assert_state_match
from test_examples import CONTRACT, assert_resume_continues_the_run, run
from twins.train_dcgan_torch import Discriminator as TorchDiscriminator
from twins.train_dcgan_torch import Generator as TorchGenerator
from twins.train_dcgan_torch import train_step as torch_train_step

torch.set_num_threads(1)
LATENT, WIDTH, SIZE = 6, 4, 16
ADAM = dict(lr=2e-4, betas=(0.5, 0.999))


def _to_torch(module, twin):
    twin.load_state_dict({k: torch.tensor(np.array(v.numpy())) for k, v in module.state_dict().items()})
    return twin


def _twins(norm="batch", seed=0, channels=1, image_size=SIZE):
    mg.manual_seed(seed)
    G = dcgan.Generator(LATENT, channels, image_size, WIDTH)
    D = dcgan.Discriminator(channels, image_size, WIDTH, norm=norm)
    tG = _to_torch(G, TorchGenerator(LATENT, channels, image_size, WIDTH))
    tD = _to_torch(D, TorchDiscriminator(channels, image_size, WIDTH, norm=norm))
    return G, D, tG, tD


# ---------------------------------------------------------------- the networks


@pytest.mark.parametrize("norm", ["batch", "layer", "instance", None])
def test_state_dict_keys_match_torch_twin(norm):
    G, D, tG, tD = _twins(norm)
    assert list(G.state_dict()) == list(tG.state_dict())
    assert list(D.state_dict()) == list(tD.state_dict())


@pytest.mark.parametrize("image_size", [16, 32, 64])
@pytest.mark.parametrize("norm", ["batch", "layer", "instance", None])
def test_output_shapes_for_each_image_size_and_norm(image_size, norm):
    mg.manual_seed(0)
    G = dcgan.Generator(latent_dim=10, channels=3, image_size=image_size, width=4)
    D = dcgan.Discriminator(channels=3, image_size=image_size, width=4, norm=norm)
    x = G(dcgan.sample_latent(2, 10))
    assert x.shape == (2, 3, image_size, image_size)
    assert x.numpy().min() >= -1 and x.numpy().max() <= 1  # tanh
    assert G(dcgan.sample_latent(2, 10).reshape(2, 10, 1, 1)).shape == x.shape
    assert D(x).shape == (2,)
    # the paper's stride-2 layers: two at 16x16, one more per doubling; channels double each time
    convs = [m for m in G.modules() if isinstance(m, mg.nn.ConvTranspose2d)]
    assert len(convs) == int(np.log2(image_size)) - 1
    assert [c.out_channels for c in convs[1:-1]] == [4 * 2 ** i for i in range(len(convs) - 2)][::-1]


def test_batch_norm_everywhere_but_g_output_and_d_input():
    G, D = dcgan.Generator(image_size=32, width=8), dcgan.Discriminator(image_size=32, width=8)
    g, d = list(G.net), list(D.net)
    assert isinstance(g[-2], mg.nn.ConvTranspose2d) and isinstance(g[-1], mg.nn.Tanh)  # output: conv, tanh
    assert sum(isinstance(m, mg.nn.BatchNorm2d) for m in g) == 3
    assert isinstance(d[0], mg.nn.Conv2d) and isinstance(d[1], mg.nn.LeakyReLU)  # input: conv, no norm
    assert d[1].negative_slope == 0.2
    assert sum(isinstance(m, mg.nn.BatchNorm2d) for m in d) == 2


def test_bad_inputs_name_what_was_wrong():
    G, D = dcgan.Generator(latent_dim=8, image_size=16, width=4), dcgan.Discriminator(image_size=16, width=4)
    with pytest.raises(ValueError, match=r"\(N, 8\)"):
        G(mg.zeros(2, 5))
    with pytest.raises(ValueError, match=r"\(N, 1, 16, 16\).*\(2, 1, 32, 32\)"):
        D(mg.zeros(2, 1, 32, 32))
    with pytest.raises(ValueError, match="image_size"):
        dcgan.Generator(image_size=28)
    with pytest.raises(ValueError, match="norm"):
        dcgan.Discriminator(norm="spectral")


def test_init_is_the_papers_normal_0_002():
    mg.manual_seed(0)
    G, D = dcgan.Generator(image_size=32, width=64), dcgan.Discriminator(image_size=32, width=64)
    for net in (G, D):
        assert_normal_init(net, 0.02)


@pytest.mark.parametrize("norm", ["batch", "layer", "instance", None])
def test_forward_and_gradients_match_torch_twin(norm):
    G, D, tG, tD = _twins(norm)
    rng = np.random.default_rng(1)
    z = rng.standard_normal((8, LATENT)).astype(np.float32)
    real = rng.uniform(-1, 1, (8, 1, SIZE, SIZE)).astype(np.float32)
    fake, tfake = G(mg.tensor(z)), tG(torch.tensor(z))  # train mode: batch statistics
    np.testing.assert_allclose(fake.numpy(), tfake.detach().numpy(), rtol=1e-5, atol=1e-6)
    loss = dcgan.discriminator_loss(D(mg.tensor(real)), D(fake))
    lr, lf = tD(torch.tensor(real)), tD(tfake)
    tloss = torch.nn.functional.binary_cross_entropy_with_logits(lr, torch.ones(8)) + \
        torch.nn.functional.binary_cross_entropy_with_logits(lf, torch.zeros(8))
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-5)
    loss.backward()
    tloss.backward()
    assert_params_match(G, tG, rtol=1e-4, grads=True)
    assert_params_match(D, tD, rtol=1e-4, grads=True)
    assert_state_match(G, tG)  # the running statistics both updated
    assert_state_match(D, tD)


def test_eval_mode_uses_running_statistics_as_torch():
    G, D, tG, tD = _twins()
    z = np.random.default_rng(3).standard_normal((5, LATENT)).astype(np.float32)
    for _ in range(3):  # move the running statistics away from (0, 1)
        G(mg.tensor(z * 2 + 1))
        tG(torch.tensor(z * 2 + 1))
    G.eval()
    tG.eval()
    np.testing.assert_allclose(G(mg.tensor(z)).numpy(), tG(torch.tensor(z)).detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_training_steps_match_torch_twin(norm):
    G, D, tG, tD = _twins(norm)
    opt_g, opt_d = optim.Adam(G.parameters(), **ADAM), optim.Adam(D.parameters(), **ADAM)
    topt_g, topt_d = torch.optim.Adam(tG.parameters(), **ADAM), torch.optim.Adam(tD.parameters(), **ADAM)
    rng = np.random.default_rng(2)
    for step in range(3):
        real = rng.uniform(-1, 1, (8, 1, SIZE, SIZE)).astype(np.float32)
        mg.manual_seed(100 + step)  # the noise train_step will draw, drawn first from the same seed
        z = torch.tensor(dcgan.sample_latent(8, LATENT).numpy())
        mg.manual_seed(100 + step)
        losses = dcgan.train_step(G, D, opt_g, opt_d, mg.tensor(real))
        d_loss, g_loss = torch_train_step(tG, tD, topt_g, topt_d, torch.tensor(real), z)
        np.testing.assert_allclose(losses["d_loss"], d_loss, rtol=1e-5)
        np.testing.assert_allclose(losses["g_loss"], g_loss, rtol=1e-5)
        assert_state_match(G, tG)
        assert_state_match(D, tD)
    assert all(p.requires_grad for p in D.parameters())  # D is trainable again after G's step


@pytest.mark.parametrize("norm", ["layer", "instance", None])
def test_critic_norms_judge_each_sample_alone(norm):
    """WGAN-GP's per-sample penalty needs D(x_i) to depend on x_i only; batch norm breaks that."""
    mg.manual_seed(0)
    x = np.random.default_rng(4).uniform(-1, 1, (6, 1, SIZE, SIZE)).astype(np.float32)
    for kind in (norm, "batch"):
        D = dcgan.Discriminator(1, SIZE, WIDTH, norm=kind)
        alone = np.concatenate([D(mg.tensor(x[i:i + 2])).numpy()[:1] for i in range(0, 6, 2)])
        together = D(mg.tensor(x)).numpy()[::2]
        assert np.allclose(alone, together, rtol=1e-5, atol=1e-6) == (kind != "batch"), kind


# ---------------------------------------------------------------- examples/dcgan.py


def test_dcgan_example_writes_the_contract_files(tmp_path):
    metrics = run("dcgan", tmp_path, "--steps", 3, "--batch-size", 8, "--width", 4)
    for f in CONTRACT + ["samples.npz"]:
        assert (tmp_path / f).stat().st_size > 0, f
    assert json.loads((tmp_path / "metrics.json").read_text())["steps"] == 3 == metrics["steps"]
    assert 1 <= metrics["classes_hit"] <= 10 and metrics["classifier_fd"] > 0
    x = np.load(tmp_path / "samples.npz")["x"]
    assert x.shape == (1000, 1, 32, 32) and x.dtype == np.float32
    assert x.min() >= -1 and x.max() <= 1  # the range of the training images


def test_dcgan_example_resumed_run_equals_uninterrupted_run(tmp_path):
    args = ("--batch-size", 8, "--width", 4, "--checkpoint-every", 3)
    once, twice = assert_resume_continues_the_run("dcgan", tmp_path, 6, 4, args, ["generator", "discriminator"])
    once_x, twice_x = (np.load(d / "samples.npz")["x"] for d in (once, twice))
    np.testing.assert_array_equal(once_x, twice_x)
