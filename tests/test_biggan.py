"""BigGAN against a torch twin written in plain torch (``tests/twins/train_biggan_torch.py``).

The twin loads minigan's weights, spectral norm's u and v and the running statistics;
conditional batch norm, G and the projection D must give the same outputs and
gradients (float64), and whole training steps (hinge losses, one or two D steps,
orthogonal regularization, Adam with beta (0, 0.999)) the same parameters, spectral
norm vectors and statistics after (float32). The truncated normal is checked against
its closed-form variance, the standing statistics against torch's cumulative
average, and the example by smoke runs.
"""
import json
import math

import numpy as np
import pytest
import torch

import minigan as mg
from minigan import nn, optim
from minigan.models import biggan
from minigan.testing import assert_params_match, assert_state_match, load_into_twin
from test_examples import CONTRACT, assert_resume_continues_the_run, run
from twins import train_biggan_torch as twin

torch.set_num_threads(1)
SMALL = dict(latent_dim=9, n_classes=3, channels=1, image_size=16, width=4, shared_dim=5)


def _nets(seed=0, dtype=None, **shape):
    shape = {**SMALL, **shape}
    mg.manual_seed(seed)
    G = biggan.Generator(**shape)
    D = biggan.Discriminator(shape["n_classes"], shape["channels"], shape["image_size"], shape["width"])
    tG = twin.Generator(*shape.values())
    tD = twin.Discriminator(shape["n_classes"], shape["channels"], shape["image_size"], shape["width"])
    if dtype is not None:
        for m in (G, D, tG, tD):
            m.double()
    return G, D, load_into_twin(G, tG), load_into_twin(D, tD)


def _noise(rng, n, latent_dim=SMALL["latent_dim"], n_classes=SMALL["n_classes"]):
    return rng.standard_normal((n, latent_dim)), rng.integers(0, n_classes, n)


# ---------------------------------------------------------------- conditional batch norm


@pytest.mark.parametrize("training", [True, False])
def test_conditional_batch_norm_matches_torch(training):
    mg.manual_seed(0)
    bn = nn.ConditionalBatchNorm2d(3, 4).double()
    tbn = load_into_twin(bn, twin.ConditionalBatchNorm2d(3, 4).double())
    rng = np.random.default_rng(0)
    bn.bn.running_mean.copy_(rng.standard_normal(3))  # eval mode must read these
    tbn.bn.running_mean.copy_(torch.tensor(bn.bn.running_mean.numpy()))
    bn.train(training), tbn.train(training)
    x, c = rng.standard_normal((5, 3, 4, 4)) * 2 + 1, rng.standard_normal((5, 4))
    xm, cm = mg.tensor(x, requires_grad=True), mg.tensor(c, requires_grad=True)
    xt, ct = torch.tensor(x, requires_grad=True), torch.tensor(c, requires_grad=True)
    out, tout = bn(xm, cm), tbn(xt, ct)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = rng.standard_normal(out.shape)
    (out * mg.tensor(w)).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(xm.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(cm.grad.numpy(), ct.grad.numpy(), rtol=1e-9, atol=1e-12)
    assert_params_match(bn, tbn, rtol=1e-9, atol=1e-12, grads=True)
    assert_state_match(bn, tbn, rtol=1e-12, atol=1e-12)  # running statistics


def test_conditional_batch_norm_is_batch_norm_at_zero_condition_weights():
    """gain = bias = 0: y = 1 * BN(x) + 0, each sample's scale and shift then move with c alone."""
    bn = nn.ConditionalBatchNorm2d(2, 3)
    nn.init.zeros_(bn.gain.weight), nn.init.zeros_(bn.bias.weight)
    x = mg.randn(4, 2, 3, 3)
    np.testing.assert_allclose(bn(x, mg.randn(4, 3)).numpy(), nn.BatchNorm2d(2, affine=False)(x).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match=r"condition of shape \(4, 3\)"):
        bn(x, mg.randn(4, 2))


# ---------------------------------------------------------------- the networks


def test_state_dict_keys_match_torch_twin_and_spectral_norm_everywhere_but_the_shared_embedding():
    G, D, tG, tD = _nets()
    assert sorted(G.state_dict()) == sorted(tG.state_dict())
    assert sorted(D.state_dict()) == sorted(tD.state_dict())
    for net in (G, D):
        for name, m in net.named_modules():
            if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)):
                assert ("weight_orig" in m._parameters) == (name != "shared"), name
    assert G.blocks[0].bn1.gain.weight_orig.shape == (4, 5 + 3)  # condition = shared embedding + one z chunk


@pytest.mark.parametrize("image_size", [16, 32, 64])
def test_shapes_and_the_hierarchical_z(image_size):
    mg.manual_seed(0)
    n_blocks = int(math.log2(image_size)) - 2
    G = biggan.Generator(latent_dim=2 * (n_blocks + 1), n_classes=3, channels=3, image_size=image_size, width=4,
                         shared_dim=2)
    D = biggan.Discriminator(3, 3, image_size, 4)
    assert len(G.blocks) == n_blocks and G.chunk == 2
    assert sum(b.downsample for b in D.blocks) == n_blocks - 1 and len(D.blocks) == n_blocks + 1  # to 8x8, 2 more
    x = G(mg.randn(2, G.latent_dim), mg.tensor([0, 2]))
    assert x.shape == (2, 3, image_size, image_size) and np.abs(x.numpy()).max() <= 1
    assert D(x, mg.tensor([0, 2])).shape == (2,)
    with pytest.raises(ValueError, match="equal chunks"):
        biggan.Generator(latent_dim=7, image_size=image_size)
    with pytest.raises(ValueError, match="image_size"):
        biggan.Discriminator(image_size=28)


def test_the_last_z_chunk_reaches_only_the_last_block():
    G = _nets()[0]
    G.eval()  # running statistics: each sample on its own
    z, y = mg.randn(3, 9), mg.tensor([0, 1, 2])
    seen = {}
    G.blocks[-1].register_forward_pre_hook(lambda m, inputs: seen.update({len(seen): inputs[0].numpy()}))
    changed = z.numpy().copy()
    changed[:, -G.chunk:] += 1
    a, b = G(z, y).numpy(), G(mg.tensor(changed), y).numpy()
    np.testing.assert_array_equal(seen[0], seen[1])  # the last block's input does not see its chunk
    assert np.abs(a - b).max() > 1e-3


@pytest.mark.parametrize("training", [True, False])
def test_generator_forward_and_gradients_match_torch_twin(training):
    G, _, tG, _ = _nets(dtype=np.float64)
    G.train(training), tG.train(training)
    z, y = _noise(np.random.default_rng(1), 6)
    zm, zt = mg.tensor(z, requires_grad=True), torch.tensor(z, requires_grad=True)
    out, tout = G(zm, mg.tensor(y)), tG(zt, torch.tensor(y))
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-9, atol=1e-12)
    w = np.random.default_rng(2).standard_normal(out.shape)
    (out * mg.tensor(w)).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(zm.grad.numpy(), zt.grad.numpy(), rtol=1e-8, atol=1e-11)
    assert_params_match(G, tG, rtol=1e-8, atol=1e-11, grads=True)
    assert_state_match(G, tG, rtol=1e-9, atol=1e-12)  # u, v of the power iteration and the statistics


def test_projection_discriminator_matches_torch_twin_and_its_closed_form():
    _, D, _, tD = _nets(dtype=np.float64)
    rng = np.random.default_rng(3)
    x, y = rng.uniform(-1, 1, (5, 1, 16, 16)), rng.integers(0, 3, 5)
    xm, xt = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, tout = D(xm, mg.tensor(y)), tD(xt, torch.tensor(y))
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-9, atol=1e-12)
    w = rng.standard_normal(5)
    (out * mg.tensor(w)).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(xm.grad.numpy(), xt.grad.numpy(), rtol=1e-8, atol=1e-11)
    assert_params_match(D, tD, rtol=1e-8, atol=1e-11, grads=True)
    assert_state_match(D, tD, rtol=1e-9, atol=1e-12)
    # the projection: the label enters only as <embed(y), h>, so D(x, a) - D(x, b) = <e_a - e_b, h>
    D.eval()
    with mg.no_grad():
        h = mg.functional.relu(D.blocks(mg.tensor(x))).sum(dim=(2, 3)).numpy()
        e = D.embed(mg.tensor([0, 1, 2])).numpy()
        zeros, ones = mg.tensor(np.zeros(5, np.int64)), mg.tensor(np.ones(5, np.int64))
        diff = D(mg.tensor(x), zeros).numpy() - D(mg.tensor(x), ones).numpy()
    np.testing.assert_allclose(diff, h @ (e[0] - e[1]), rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- training steps


@pytest.mark.parametrize("d_steps, lr, ortho_beta", [  # SA-GAN's rates times the example's --lr-scale 4
    (biggan.D_STEPS_SAGAN, {net: 4 * rate for net, rate in biggan.LR_SAGAN.items()}, 0.0),
    (biggan.D_STEPS_BIGGAN, biggan.LR_BIGGAN, 1e-2)])
def test_training_steps_match_torch_twin(d_steps, lr, ortho_beta):
    G, D, tG, tD = _nets()
    opt_g = optim.Adam(G.parameters(), lr=lr["generator"], betas=biggan.BETAS)
    opt_d = optim.Adam(D.parameters(), lr=lr["discriminator"], betas=biggan.BETAS)
    topt_g = torch.optim.Adam(tG.parameters(), lr=lr["generator"], betas=biggan.BETAS)
    topt_d = torch.optim.Adam(tD.parameters(), lr=lr["discriminator"], betas=biggan.BETAS)
    rng = np.random.default_rng(5)
    for step in range(2):
        batches = [(rng.uniform(-1, 1, (6, 1, 16, 16)).astype(np.float32), rng.integers(0, 3, 6))
                   for _ in range(d_steps)]
        mg.manual_seed(100 + step)  # the noise train_step draws: z then y, per D step and for G's step
        noise = [(torch.tensor(biggan.sample_latent(6, 9).numpy()), torch.tensor(biggan.sample_labels(6, 3).numpy()))
                 for _ in range(d_steps + 1)]
        mg.manual_seed(100 + step)
        losses = biggan.train_step(G, D, opt_g, opt_d, [(mg.tensor(x), mg.tensor(y)) for x, y in batches],
                                   ortho_beta)
        d_loss, g_loss = twin.train_step(tG, tD, topt_g, topt_d,
                                         [(torch.tensor(x), torch.tensor(y)) for x, y in batches], noise, ortho_beta)
        np.testing.assert_allclose(losses["d_loss"], d_loss, rtol=1e-5)
        np.testing.assert_allclose(losses["g_loss"], g_loss, rtol=1e-5)
        assert_state_match(G, tG, rtol=1e-4, atol=1e-6)  # parameters, u and v, running statistics
        assert_state_match(D, tD, rtol=1e-4, atol=1e-6)
    assert all(p.requires_grad for p in D.parameters())


def test_orthogonal_regularization_matches_torch_and_vanishes_on_orthogonal_filters():
    G, _, tG, _ = _nets(dtype=np.float64)
    np.testing.assert_allclose(biggan.orthogonal_regularization(G, 1e-4).item(),
                               twin.orthogonal_regularization(tG, 1e-4).item(), rtol=1e-10)
    conv = nn.Conv2d(3, 4, 3).double()
    nn.init.orthogonal_(conv.weight, gain=3.0)  # 4 orthogonal filters of 27 weights, norms 3: no penalty
    m = np.asarray(conv.weight.numpy()).reshape(4, -1)
    np.testing.assert_allclose(m @ m.T, 9 * np.eye(4), atol=1e-12)
    assert biggan.orthogonal_regularization(conv, 1.0).item() < 1e-20


def test_hinge_losses():
    real, fake = mg.tensor([2.0, 0.5, -1.0]), mg.tensor([-3.0, 0.0, 1.5])
    assert biggan.discriminator_loss(real, fake).item() == pytest.approx((0 + 0.5 + 2) / 3 + (0 + 1 + 2.5) / 3)
    assert biggan.generator_loss(fake).item() == pytest.approx(-(-3 + 0 + 1.5) / 3)


# ---------------------------------------------------------------- sampling


def test_truncated_latent_has_the_truncated_normals_variance():
    mg.manual_seed(0)
    for psi in (0.25, 1.0, 2.0):
        z = biggan.truncated_latent(4000, 25, psi).numpy().astype(np.float64)
        assert np.abs(z).max() <= psi
        phi, cdf = math.exp(-psi ** 2 / 2) / math.sqrt(2 * math.pi), 0.5 * (1 + math.erf(psi / math.sqrt(2)))
        var = 1 - 2 * psi * phi / (2 * cdf - 1)
        n = z.size
        assert abs(z.mean()) < 5 * math.sqrt(var / n), psi
        assert abs(z.var() - var) < 5 * var * math.sqrt(2 / n), psi


def test_standing_statistics_are_torchs_cumulative_average():
    G, _, tG, _ = _nets()
    mg.manual_seed(7)
    draws = [(torch.tensor(biggan.sample_latent(4, 9).numpy()),
              torch.tensor(biggan.sample_labels(4, 3).numpy())) for _ in range(3)]
    mg.manual_seed(7)
    biggan.standing_statistics(G, batches=3, batch_size=4)
    assert not G.training
    for m in tG.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():
        for z, y in draws:
            tG(z, y)
    assert_state_match(G, tG)
    assert all(m.momentum == 0.1 for m in G.modules() if isinstance(m, nn.BatchNorm2d))


def test_orthogonal_init_is_orthogonal():
    mg.manual_seed(0)
    wide, tall = nn.init.orthogonal_(mg.zeros(5, 2, 3, 3)), nn.init.orthogonal_(mg.zeros(40, 6))
    m = wide.numpy().reshape(5, -1)
    np.testing.assert_allclose(m @ m.T, np.eye(5), atol=1e-5)
    np.testing.assert_allclose(tall.numpy().T @ tall.numpy(), np.eye(6), atol=1e-5)


# ---------------------------------------------------------------- examples/biggan.py

TINY = ("--batch-size", 8, "--width", 4, "--latent-dim", 8, "--shared-dim", 4, "--truncation", 1.0, 0.5)
FOLDER = ("--resolution", 16, "--batch-size", 4, "--width", 4, "--latent-dim", 9, "--shared-dim", 4,
          "--truncation", 1.0)  # a folder of pictures at 16x16: no classifier to run


def test_biggan_example_writes_the_contract_files(tmp_path):
    metrics = run("biggan", tmp_path, "--steps", 2, "--ema-start", 1, *TINY)
    for f in CONTRACT + ["samples.npz", "truncation.png"]:
        assert (tmp_path / f).stat().st_size > 0, f
    assert json.loads((tmp_path / "metrics.json").read_text())["steps"] == 2 == metrics["steps"]
    assert 0 <= metrics["accuracy"] <= 1 and metrics["classifier_fd"] > 0
    assert [s["psi"] for s in metrics["truncation"]] == [1.0, 0.5]
    # --lr-scale (default 4) multiplies both of SA-GAN's rates
    assert metrics["lr"] == {net: 4 * rate for net, rate in biggan.LR_SAGAN.items()}
    # 100 samples per class and 1000 real test images per class: the accuracy is the mean of the per-class ones
    for found, overall in ((metrics["accuracy_per_class"], metrics["accuracy"]),
                           (metrics["real_accuracy_per_class"], metrics["real_accuracy"])):
        assert len(found) == 10 and np.isclose(np.mean(found), overall)
    assert metrics["real_accuracy"] > 0.8  # the ceiling: the classifier on real images, not on these samples
    with np.load(tmp_path / "samples.npz") as f:
        x, y = f["x"], f["y"]
    assert x.shape == (1000, 1, 32, 32) and x.dtype == np.float32 and x.min() >= -1 and x.max() <= 1
    np.testing.assert_array_equal(np.bincount(y), [100] * 10)


def _pictures(folder, n, value):
    from PIL import Image
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((20, 24, 3), (value + 10 * i) % 256, np.uint8)).save(folder / f"{i}.png")


def test_biggan_example_takes_classes_from_subfolders(tmp_path):
    _pictures(tmp_path / "data" / "cats", 4, 30)
    _pictures(tmp_path / "data" / "dogs", 5, 200)
    metrics = run("biggan", tmp_path / "out", "--data", tmp_path / "data", "--steps", 1, *FOLDER)
    with np.load(tmp_path / "out" / "samples.npz") as f:
        assert f["x"].shape == (1000, 3, 16, 16) and set(f["y"]) == {0, 1}
    assert "accuracy" not in metrics and (tmp_path / "out" / "truncation.png").stat().st_size > 0


def test_biggan_example_resumed_run_equals_uninterrupted_run(tmp_path):
    _pictures(tmp_path / "data" / "a", 4, 30)
    _pictures(tmp_path / "data" / "b", 4, 200)
    args = ("--data", tmp_path / "data", *FOLDER, "--checkpoint-every", 2, "--ema-start", 1, "--setting", "biggan")
    once, twice = assert_resume_continues_the_run("biggan", tmp_path, 4, 2, args, ["generator", "discriminator"])
    once_x, twice_x = (np.load(d / "samples.npz")["x"] for d in (once, twice))
    np.testing.assert_array_equal(once_x, twice_x)  # sampled from the averaged G: the average resumed too


def test_biggan_example_refuses_a_folder_without_class_subfolders(tmp_path):
    _pictures(tmp_path / "flat", 3, 0)
    with pytest.raises(SystemExit, match="two or more subfolders"):
        run("biggan", tmp_path / "out", "--data", tmp_path / "flat", "--steps", 1, *TINY)
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no PNG or JPEG"):
        run("biggan", tmp_path / "out2", "--data", tmp_path / "empty", "--steps", 1, *TINY)
