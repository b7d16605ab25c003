"""StarGAN against a torch twin written after the reference implementation
(``tests/twins/train_stargan_torch.py``): G's and D's forward values (both heads) and
gradients, and whole training steps of D (with the gradient penalty's double backward)
and of G (adversarial + classification + reconstruction), losses, gradients and the
parameters after Adam. The label tiling against its definition, the domains' parsing,
bad inputs, and the example by a smoke run.
"""
import json
import os

import numpy as np
import pytest
import torch

import minigan as mg
from minigan import nn, optim
from minigan.data.fashion_domains import DOMAIN_SETS, load_fashion_domains, parse_domains
from minigan.data.mnist import FASHION_MNIST_CLASSES, FASHION_MNIST_DIR
from minigan.models import stargan
from minigan.testing import assert_params_match, load_into_twin
from test_examples import CONTRACT, assert_resume_continues_the_run, run
from twins import train_stargan_torch as twin

torch.set_num_threads(1)
ADAM = dict(lr=1e-4, betas=(0.5, 0.999))
K = 3
needs_data = pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DIR),
                                reason=f"Fashion-MNIST not installed in {FASHION_MNIST_DIR}")


def _models(k=K, width=4, blocks=2, d_width=4, d_layers=4, size=32, seed=0):
    """G and D with their torch twins, in float64 (Adam divides by the root of tiny second moments)."""
    mg.manual_seed(seed)
    G, D = stargan.Generator(k, 1, width, blocks), stargan.Discriminator(k, 1, size, d_width, d_layers)
    tG = load_into_twin(G, twin.Generator(k, 1, width, blocks))
    tD = load_into_twin(D, twin.Discriminator(k, 1, size, d_width, d_layers))
    return G.double(), D.double(), tG.double(), tD.double()


def _batch(n=4, k=K, size=32, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 1, size, size))
    org = rng.integers(0, k, n)
    return x, org, (org + rng.integers(1, k, n)) % k  # every target another domain


# ---------------------------------------------------------------- the labels


def test_tile_labels_puts_each_images_label_vector_at_every_pixel():
    c = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    tiled = stargan.tile_labels(mg.tensor(c), 5, 6).numpy()
    assert tiled.shape == (3, 4, 5, 6)
    for n in range(3):
        for i in range(5):
            for j in range(6):
                np.testing.assert_array_equal(tiled[n, :, i, j], c[n])
    np.testing.assert_array_equal(tiled, torch.tensor(c).view(3, 4, 1, 1).repeat(1, 1, 5, 6).numpy())


def test_tile_labels_passes_the_gradient_back_summed_over_pixels():
    c = mg.tensor(np.eye(3, dtype=np.float32), requires_grad=True)
    w = np.random.default_rng(1).standard_normal((3, 3, 4, 4)).astype(np.float32)
    (stargan.tile_labels(c, 4, 4) * mg.tensor(w)).sum().backward()
    np.testing.assert_allclose(c.grad.numpy(), w.sum(axis=(2, 3)), rtol=1e-6)


def test_one_hot_and_its_errors():
    np.testing.assert_array_equal(stargan.one_hot([2, 0], 3).numpy(), [[0, 0, 1], [1, 0, 0]])
    assert stargan.one_hot(np.array([1]), 2).dtype == np.float32
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\), got \[3\]"):
        stargan.one_hot([0, 3], 3)
    with pytest.raises(ValueError, match="integer labels"):
        stargan.one_hot(np.array([0.5]), 3)


def test_generator_sees_the_target_label_as_extra_channels():
    """G's first conv takes channels + k inputs, and the translation depends on the label."""
    mg.manual_seed(0)
    G = stargan.Generator(4, channels=1, width=4, n_blocks=1)
    assert G.main[0].in_channels == 1 + 4
    x = mg.tensor(np.random.default_rng(0).uniform(-1, 1, (1, 1, 16, 16)).astype(np.float32))
    a, b = G(x, stargan.one_hot([0], 4)).numpy(), G(x, stargan.one_hot([3], 4)).numpy()
    assert not np.allclose(a, b)


# ---------------------------------------------------------------- the networks against torch


def test_state_dict_keys_match_the_twins():
    G, D, tG, tD = _models()
    assert list(G.state_dict()) == list(tG.state_dict())
    assert list(D.state_dict()) == list(tD.state_dict())


def test_generator_forward_and_gradients_match_torch():
    G, _, tG, _ = _models()
    x, _, trg = _batch()
    c = np.eye(K)[trg]
    xm, xt = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    cm, ct = mg.tensor(c, requires_grad=True), torch.tensor(c, requires_grad=True)
    y, ty = G(xm, cm), tG(xt, ct)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = np.random.default_rng(2).standard_normal(y.shape)
    (y * mg.tensor(w)).sum().backward()
    (ty * torch.tensor(w)).sum().backward()
    assert_params_match(G, tG, rtol=1e-8, atol=1e-10, grads=True)
    np.testing.assert_allclose(xm.grad.numpy(), xt.grad.numpy(), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(cm.grad.numpy(), ct.grad.numpy(), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("size,layers", [(32, 4), (32, 3), (16, 2)])
def test_discriminator_heads_and_gradients_match_torch(size, layers):
    _, D, _, tD = _models(d_layers=layers, size=size)
    x, _, _ = _batch(size=size)
    xm, xt = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (src, cls), (tsrc, tcls) = D(xm), tD(xt)
    final = size // 2 ** layers
    assert src.shape == (4, 1, final, final) and cls.shape == (4, K)
    np.testing.assert_allclose(src.numpy(), tsrc.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cls.numpy(), tcls.detach().numpy(), rtol=1e-10, atol=1e-12)
    rng = np.random.default_rng(3)
    ws, wc = rng.standard_normal(src.shape), rng.standard_normal(cls.shape)
    ((src * mg.tensor(ws)).sum() + (cls * mg.tensor(wc)).sum()).backward()
    ((tsrc * torch.tensor(ws)).sum() + (tcls * torch.tensor(wc)).sum()).backward()
    assert_params_match(D, tD, rtol=1e-8, atol=1e-10, grads=True)
    np.testing.assert_allclose(xm.grad.numpy(), xt.grad.numpy(), rtol=1e-8, atol=1e-10)


def test_networks_match_torch_in_float32():
    mg.manual_seed(4)
    G, D = stargan.Generator(K, 1, 4, 1), stargan.Discriminator(K, 1, 32, 4)
    tG, tD = load_into_twin(G, twin.Generator(K, 1, 4, 1)), load_into_twin(D, twin.Discriminator(K, 1, 32, 4))
    x, _, trg = _batch()
    x, c = x.astype(np.float32), np.eye(K, dtype=np.float32)[trg]
    y = G(mg.tensor(x), mg.tensor(c)).numpy()
    with torch.no_grad():
        np.testing.assert_allclose(y, tG(torch.tensor(x), torch.tensor(c)).numpy(), rtol=1e-4, atol=1e-5)
        for mine, theirs in zip(D(mg.tensor(y)), tD(torch.tensor(y))):
            np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-4, atol=1e-5)


def test_the_architecture_is_the_papers():
    G = stargan.Generator(5, channels=3, width=64, n_blocks=6)
    convs = [m for m in G.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    # Table 4: conv 7x7 (64), 2 down 4x4 s2 (128, 256), 6 residual blocks of two 3x3 (256),
    # 2 up 4x4 s2 transposed (128, 64), conv 7x7 (3) + tanh; no conv bias anywhere
    assert [(c.kernel_size[0], c.stride[0], c.out_channels) for c in convs] == [
        (7, 1, 64), (4, 2, 128), (4, 2, 256), *[(3, 1, 256)] * 12, (4, 2, 128), (4, 2, 64), (7, 1, 3)]
    assert convs[0].in_channels == 3 + 5 and all(c.bias is None for c in convs)
    assert [type(c) for c in convs[-3:-1]] == [nn.ConvTranspose2d] * 2 and isinstance(G.main[-1], nn.Tanh)
    norms = [m for m in G.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(norms) == 5 + 2 * 6 and all(n.affine for n in norms)
    # Table 5 at 128x128: 6 convs 4x4 s2 with LeakyReLU(0.01), D_src 3x3 s1, D_cls with a 2x2 kernel
    D = stargan.Discriminator(5, channels=3, image_size=128, width=64, n_layers=6)
    trunk = [m for m in D.main if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in trunk] == [64, 128, 256, 512, 1024, 2048]
    assert all(m.negative_slope == 0.01 for m in D.main if isinstance(m, nn.LeakyReLU))
    assert D.conv1.kernel_size == (3, 3) and D.conv1.out_channels == 1
    assert D.conv2.kernel_size == (2, 2) and D.conv2.out_channels == 5
    assert not any(isinstance(m, (nn.InstanceNorm2d, nn.BatchNorm2d)) for m in D.modules())


# ---------------------------------------------------------------- the training steps against torch


def _check_states(G, D, tG, tD):
    for module, twin_module in ((G, tG), (D, tD)):
        assert_params_match(module, twin_module, rtol=1e-7, atol=1e-10, grads=True)
        assert_params_match(module, twin_module, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("lambda_rec", [10.0, 0.0])
def test_training_steps_match_the_reference_in_torch(lambda_rec):
    """Two iterations of n_critic = 2: D, D + G, D, D + G on the same batches, targets and
    interpolation weights; after every step the losses, D's and G's gradients and the
    parameters after Adam agree."""
    G, D, tG, tD = _models()
    opt_g, opt_d = optim.Adam(G.parameters(), **ADAM), optim.Adam(D.parameters(), **ADAM)
    topt_g, topt_d = torch.optim.Adam(tG.parameters(), **ADAM), torch.optim.Adam(tD.parameters(), **ADAM)
    for step in range(4):
        x, org, trg = _batch(seed=step)
        eps = np.random.default_rng(10 + step).uniform(0, 1, len(x))
        ours = stargan.discriminator_step(G, D, opt_d, mg.tensor(x), org, trg, eps=mg.tensor(eps))
        theirs = twin.d_step(tG, tD, topt_d, torch.tensor(x), torch.tensor(org), torch.tensor(trg), torch.tensor(eps))
        if step % 2:
            ours.update(stargan.generator_step(G, D, opt_g, mg.tensor(x), org, trg, lambda_rec=lambda_rec))
            theirs.update(twin.g_step(tG, tD, topt_g, torch.tensor(x), torch.tensor(org), torch.tensor(trg),
                                      lambda_rec=lambda_rec))
        assert ours.keys() == theirs.keys()
        for key in ours:
            np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-9, atol=1e-12, err_msg=f"step {step}: {key}")
        if step % 2:  # G's gradients exist after its step only
            _check_states(G, D, tG, tD)
        else:
            assert_params_match(D, tD, rtol=1e-7, atol=1e-10, grads=True)
            assert_params_match(D, tD, rtol=1e-7, atol=1e-10)
    assert ("g_rec" in ours) == (lambda_rec > 0)


def test_discriminator_loss_is_wgan_gp_plus_classification():
    """The step's parts against their closed forms on the same D, before its update."""
    G, D, tG, tD = _models()
    x, org, trg = _batch()
    eps = np.full(len(x), 0.3)
    with torch.no_grad():
        src_real, cls_real = tD(torch.tensor(x))
        fake = tG(torch.tensor(x), torch.tensor(np.eye(K)[trg]))
        src_fake, _ = tD(fake)
    xhat = torch.tensor(0.3 * x + 0.7 * fake.numpy(), requires_grad=True)
    g, = torch.autograd.grad(tD(xhat)[0].sum(), xhat)
    gp = 10 * ((g.flatten(1).norm(dim=1) - 1) ** 2).mean().item()
    logp = torch.log_softmax(cls_real, 1).numpy()
    d_cls = -logp[np.arange(len(x)), org].mean()
    losses = stargan.discriminator_step(G, D, optim.Adam(D.parameters(), **ADAM), mg.tensor(x), org, trg,
                                        eps=mg.tensor(eps))
    assert losses["d_real"] == pytest.approx(-src_real.mean().item(), rel=1e-9)
    assert losses["d_fake"] == pytest.approx(src_fake.mean().item(), rel=1e-9)
    assert losses["d_cls"] == pytest.approx(d_cls, rel=1e-9)
    assert losses["d_gp"] == pytest.approx(gp, rel=1e-6)
    assert losses["d_loss"] == pytest.approx(losses["d_real"] + losses["d_fake"] + d_cls + gp, rel=1e-6)


def test_generator_step_leaves_d_alone():
    G, D, _, _ = _models()
    before = {k: v.numpy().copy() for k, v in D.state_dict().items()}
    x, org, trg = _batch()
    stargan.generator_step(G, D, optim.Adam(G.parameters(), **ADAM), mg.tensor(x), org, trg)
    assert all(p.requires_grad and p.grad is None for p in D.parameters())
    for k, v in D.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])


def test_target_labels_are_the_batchs_labels_shuffled():
    org = np.array([0, 0, 1, 2, 2, 2])
    trg = stargan.target_labels(org, np.random.default_rng(0))
    assert sorted(trg) == sorted(org) and not np.array_equal(trg, org)


# ---------------------------------------------------------------- domains and bad inputs


def test_domains_parse_sets_names_and_aliases():
    assert parse_domains("shoes") == (("Sandal", "Sneaker", "Ankle boot"), (5, 7, 9))
    assert parse_domains("tops")[1] == (0, 2, 3, 4, 6)
    assert parse_domains(" sneaker , ANKLE BOOT,t-shirt") == (("Sneaker", "Ankle boot", "T-shirt/top"), (7, 9, 0))
    assert parse_domains(["Bag", "Trouser"]) == (("Bag", "Trouser"), (8, 1))
    assert all(FASHION_MNIST_CLASSES.index(n) >= 0 for names in DOMAIN_SETS.values() for n in names)


def test_bad_inputs_name_what_was_wrong():
    with pytest.raises(ValueError, match="unknown domain 'Hat'"):
        parse_domains("Sneaker,Hat")
    with pytest.raises(ValueError, match="'Sneaker' is given twice"):
        parse_domains("Sneaker,sneaker")
    with pytest.raises(ValueError, match="at least two domains"):
        parse_domains("Bag")
    with pytest.raises(ValueError, match="split"):
        load_fashion_domains("val")
    G = stargan.Generator(3, width=2, n_blocks=1)
    with pytest.raises(ValueError, match=r"one-hot target domains \(2, 3\).*\(2, 4\)"):
        G(mg.zeros(2, 1, 16, 16), mg.zeros(2, 4))
    with pytest.raises(ValueError, match=r"multiples of 4, got \(2, 1, 30, 32\)"):
        G(mg.zeros(2, 1, 30, 32), mg.zeros(2, 3))
    with pytest.raises(ValueError, match="at least 2 domains"):
        stargan.Generator(1)
    with pytest.raises(ValueError, match="not a multiple of 2\\^n_layers"):
        stargan.Discriminator(3, image_size=28, n_layers=4)
    D = stargan.Discriminator(3, image_size=32, width=2)
    with pytest.raises(ValueError, match=r"\(N, 1, 32, 32\), got \(2, 1, 16, 16\)"):
        D(mg.zeros(2, 1, 16, 16))
    with pytest.raises(ValueError, match="2 images but 3 target domains"):
        stargan.translate(G, np.zeros((2, 1, 16, 16), np.float32), [0, 1, 2])


def test_example_refuses_unknown_domains_with_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        run("stargan", "unused", "--domains", "Sneaker,Hat")
    assert "unknown domain 'Hat'" in capsys.readouterr().err


# ---------------------------------------------------------------- the example


TINY = ("--batch-size", 4, "--width", 2, "--blocks", 1, "--d-width", 2, "--n-critic", 2, "--test-examples", 400)


@needs_data
def test_example_writes_the_contract_files_and_scores(tmp_path):
    metrics = run("stargan", tmp_path, "--steps", 4, *TINY)
    for f in CONTRACT + ["samples.npz"]:
        assert (tmp_path / f).stat().st_size > 0, f
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["steps"] == 4 and saved["domains"] == ["Sandal", "Sneaker", "Ankle boot"]
    assert len(saved["accuracy_per_domain"]) == 3 and len(saved["accuracy_matrix"]) == 3
    assert min(saved["real_accuracy_per_domain"]) > 0.9  # the classifier knows the shoes
    assert max(saved["input_accuracy_per_domain"]) < 0.1  # and does not call them another kind
    samples = np.load(tmp_path / "samples.npz")
    assert samples["output"].shape == (1000, 1, 32, 32) and samples["output"].dtype == np.float32
    assert np.abs(samples["output"]).max() <= 1
    np.testing.assert_array_equal(samples["label"][:6], [0, 1, 2, 0, 1, 2])  # each input into every domain
    np.testing.assert_array_equal(samples["input"][0], samples["input"][2])
    assert metrics["accuracy"] == saved["accuracy"]


@needs_data
def test_example_resumes_where_it_stopped(tmp_path):
    assert_resume_continues_the_run("stargan", tmp_path, 6, 4, TINY + ("--checkpoint-every", 2), ["G", "D"])
