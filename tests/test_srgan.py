"""SRResNet, SRGAN's discriminator, the content losses and both training steps against
plain-torch twins (``tests/twins/train_srgan_torch.py``); the pixel shuffle against
torch's; the bicubic LR against PIL and torch; the example's smoke run."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from PIL import Image

import minigan as mg
from minigan import functional as F
from minigan import nn, optim
from minigan.data import superres
from minigan.models import srgan
from minigan.testing import assert_params_match, assert_state_match, load_into_twin
from test_examples import run
from twins import train_srgan_torch as twin
from twins.vgg19_torch import VGG19

torch.set_num_threads(1)
ADAM = dict(lr=1e-3, betas=(0.9, 0.999))
WIDTH, BLOCKS, NDF, DENSE, VGG_WIDTH = 4, 2, 4, 8, 1 / 16


def _models(seed=0, size=16):
    """G and D with their twins, in float64 (Adam divides by the root of tiny second moments)."""
    mg.manual_seed(seed)
    G = srgan.SRResNet(width=WIDTH, blocks=BLOCKS)
    D = srgan.Discriminator(image_size=size, ndf=NDF, dense=DENSE)
    for m in list(G.modules()) + list(D.modules()):  # PReLU slopes and BN scales away from their constant init
        if isinstance(m, (nn.PReLU, nn.BatchNorm2d)):
            m.weight.array[...] = np.random.default_rng(seed).uniform(0.1, 1.5, m.weight.shape)
    tG = load_into_twin(G, twin.SRResNet(width=WIDTH, blocks=BLOCKS)).double()
    tD = load_into_twin(D, twin.Discriminator(image_size=size, ndf=NDF, dense=DENSE)).double()
    return G.double(), D.double(), tG, tD


def _batch(n=4, size=16, seed=1):
    rng = np.random.default_rng(seed)
    hr = rng.uniform(-1, 1, (n, 3, size, size))
    return superres.downsample(hr).astype(np.float64), hr


def _content(kind):
    loss = srgan.ContentLoss(kind, vgg_width=VGG_WIDTH, seed=3)
    theirs = twin.ContentLoss(kind)
    if loss.vgg is not None:
        loss.vgg.double()
        theirs.vgg = load_into_twin(loss.vgg, VGG19(loss.layer, width=VGG_WIDTH)).double()
    return loss, theirs


def test_srresnet_and_d_match_torch_forward_and_gradients():
    G, D, tG, tD = _models()
    lr, hr = _batch()
    x, tx = mg.tensor(lr, requires_grad=True), torch.tensor(lr, requires_grad=True)
    out, tout = G(x), tG(tx)
    assert out.shape == (4, 3, 16, 16)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-9, atol=1e-12)
    logits, tlogits = D(out), tD(tout)
    assert logits.shape == (4,)
    np.testing.assert_allclose(logits.numpy(), tlogits.detach().numpy(), rtol=1e-9, atol=1e-12)
    weights = np.random.default_rng(2).standard_normal(4)
    (logits * mg.tensor(weights)).sum().backward()
    (tlogits * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-8, atol=1e-12)
    assert_params_match(G, tG, rtol=1e-8, atol=1e-12, grads=True)
    assert_params_match(D, tD, rtol=1e-8, atol=1e-12, grads=True)
    assert_state_match(G, tG, rtol=1e-9, atol=1e-12)  # BN's running statistics moved alike


def test_the_networks_have_the_papers_layers():
    G = srgan.SRResNet(width=64, blocks=16)
    convs = [m for m in G.modules() if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size for c in (convs[0], convs[-1])] == [(9, 9), (9, 9)]
    assert len(convs) == 1 + 2 * 16 + 1 + 2 + 1
    assert sum(isinstance(m, nn.PixelShuffle) for m in G.modules()) == 2
    D = srgan.Discriminator(image_size=96, ndf=64, dense=1024)
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.stride[0]) for c in convs] == [(64, 1), (64, 2), (128, 1), (128, 2), (256, 1),
                                                              (256, 2), (512, 1), (512, 2)]
    assert D.classifier[0].in_features == 512 * 6 * 6 and D.classifier[0].out_features == 1024


@pytest.mark.parametrize("kind", ["mse", "vgg22", "vgg54"])
def test_content_losses_match_torch(kind):
    loss, theirs = _content(kind)
    rng = np.random.default_rng(0)
    fake, target = rng.uniform(-1, 1, (2, 3, 32, 32)), rng.uniform(-1, 1, (2, 3, 32, 32))
    f, tf = mg.tensor(fake, requires_grad=True), torch.tensor(fake, requires_grad=True)
    value, tvalue = loss(f, mg.tensor(target)), theirs(tf, torch.tensor(target))
    np.testing.assert_allclose(value.item(), tvalue.item(), rtol=1e-9)
    assert value.item() > 0
    value.backward()
    tvalue.backward()
    np.testing.assert_allclose(f.grad.numpy(), tf.grad.numpy(), rtol=1e-8, atol=1e-14)


def test_vgg_content_is_the_rescaled_feature_mse():
    loss, _ = _content("vgg54")
    rng = np.random.default_rng(4)
    fake, target = (mg.tensor(rng.uniform(-1, 1, (1, 3, 32, 32))) for _ in range(2))
    phi = lambda x: loss.vgg(x, "relu5_4")["relu5_4"].numpy()  # noqa: E731
    expected = ((phi(fake) - phi(target)) ** 2).mean() / 12.75 ** 2
    assert loss(fake, target).item() == pytest.approx(expected, rel=1e-9)
    assert phi(fake).shape == (1, 32, 2, 2)  # 512 / 16 channels, 32 / 16 pixels


@pytest.mark.parametrize("kind", ["vgg54", "mse"])
def test_srresnet_then_srgan_steps_match_torch(kind):
    G, D, tG, tD = _models()
    content, tcontent = _content(kind)
    opt, topt = optim.Adam(G.parameters(), **ADAM), torch.optim.Adam(tG.parameters(), **ADAM)
    for step in range(2):  # SRResNet's MSE steps
        lr, hr = _batch(seed=step)
        ours = srgan.srresnet_step(G, opt, mg.tensor(lr), mg.tensor(hr))
        theirs = twin.srresnet_step(tG, topt, torch.tensor(lr), torch.tensor(hr))
        np.testing.assert_allclose(ours["mse"], theirs["mse"], rtol=1e-9)
    assert_params_match(G, tG, rtol=1e-7, atol=1e-10)
    opt_g, opt_d = optim.Adam(G.parameters(), **ADAM), optim.Adam(D.parameters(), **ADAM)
    topt_g, topt_d = torch.optim.Adam(tG.parameters(), **ADAM), torch.optim.Adam(tD.parameters(), **ADAM)
    for step in range(2):  # SRGAN from that SRResNet: D, then G through the updated D
        lr, hr = _batch(seed=10 + step)
        ours = srgan.srgan_step(G, D, opt_g, opt_d, mg.tensor(lr), mg.tensor(hr), content)
        theirs = twin.srgan_step(tG, tD, topt_g, topt_d, torch.tensor(lr), torch.tensor(hr), tcontent)
        assert ours.keys() == theirs.keys()
        for k in ours:
            np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-8, err_msg=k)
        assert ours["g_loss"] == pytest.approx(ours["content"] + 1e-3 * ours["adversarial"], rel=1e-12)
    assert_params_match(G, tG, rtol=1e-7, atol=1e-10)
    assert_params_match(D, tD, rtol=1e-7, atol=1e-10)
    assert_state_match(G, tG, rtol=1e-7, atol=1e-10)
    assert_state_match(D, tD, rtol=1e-7, atol=1e-10)
    assert all(p.requires_grad for p in D.parameters())


def test_the_losses_are_the_papers():
    rng = np.random.default_rng(0)
    real, fake = rng.standard_normal(5), rng.standard_normal(5)
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    d = srgan.discriminator_loss(mg.tensor(real), mg.tensor(fake)).item()
    assert d == pytest.approx(-np.log(sigmoid(real)).mean() - np.log(1 - sigmoid(fake)).mean())
    out, target = rng.uniform(-1, 1, (2, 3, 8, 8)), rng.uniform(-1, 1, (2, 3, 8, 8))
    total, parts = srgan.generator_loss(mg.tensor(out), mg.tensor(target), srgan.ContentLoss("mse"),
                                        mg.tensor(fake))
    assert parts["content"].item() == pytest.approx(((out - target) ** 2).mean())
    assert parts["adversarial"].item() == pytest.approx(-np.log(sigmoid(fake)).mean())
    assert total.item() == pytest.approx(((out - target) ** 2).mean() - 1e-3 * np.log(sigmoid(fake)).mean())


@pytest.mark.parametrize("shape,r", [((2, 12, 3, 5), 2), ((1, 2, 18, 2, 3), 3), ((8, 1, 1), 2)])
def test_pixel_shuffle_matches_torch_shape_and_order(shape, r):
    x = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    ours, theirs = F.pixel_shuffle(mg.tensor(x), r).numpy(), TF.pixel_shuffle(torch.tensor(x), r).numpy()
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)
    # the closed form: out[c, h r + i, w r + j] = in[c r^2 + i r + j, h, w]
    expected = np.empty_like(ours)
    for i in range(r):
        for j in range(r):
            expected[..., :, i::r, j::r] = x[..., i * r + j::r * r, :, :]
    np.testing.assert_array_equal(ours, expected)
    np.testing.assert_array_equal(nn.PixelShuffle(r)(mg.tensor(x)).numpy(), theirs)


def test_lr_is_the_bicubic_downsampled_hr_as_pil_and_torch_make_it():
    train, _, _ = superres.load_superres()
    lr, hr = superres.sr_pairs(train, 6, 32, np.random.default_rng(0))
    assert lr.shape == (6, 3, 8, 8) and hr.shape == (6, 3, 32, 32) and lr.dtype == np.float32
    pil = np.stack([np.stack([np.asarray(Image.fromarray(hr[n, c]).resize((8, 8), Image.BICUBIC))
                              for c in range(3)]) for n in range(6)])
    np.testing.assert_allclose(lr, np.clip(pil, -1, 1), atol=1e-6)
    antialiased = TF.interpolate(torch.tensor(hr), size=(8, 8), mode="bicubic", antialias=True).numpy()
    np.testing.assert_allclose(lr, np.clip(antialiased, -1, 1), atol=1e-6)
    # a constant picture stays constant; the bicubic baseline enlarges back to HR's size
    np.testing.assert_allclose(superres.downsample(np.full((1, 3, 16, 16), 0.3)), 0.3, atol=1e-6)
    up = superres.upsample(lr)
    pil_up = np.asarray(Image.fromarray(lr[0, 0]).resize((32, 32), Image.BICUBIC))
    assert up.shape == hr.shape
    np.testing.assert_allclose(up[0, 0], np.clip(pil_up, -1, 1), atol=1e-6)


def test_super_resolve_uses_running_statistics_and_restores_the_mode():
    G, _, tG, _ = _models()
    lr, _ = _batch(5)
    G.train()
    out = srgan.super_resolve(G, lr, batch_size=2)
    tG.eval()
    with torch.no_grad():
        expected = np.clip(tG(torch.tensor(lr)).numpy(), -1, 1)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert G.training and out.dtype == np.float32 and out.shape == (5, 3, 16, 16)


def test_bad_arguments_name_what_was_wrong():
    with pytest.raises(ValueError, match="content loss"):
        srgan.ContentLoss("vgg33")
    with pytest.raises(ValueError, match="scale"):
        srgan.SRResNet(scale=3)
    with pytest.raises(ValueError, match="multiple of 16"):
        srgan.Discriminator(image_size=40)
    with pytest.raises(ValueError, match=r"\(N, 3, h, w\)"):
        srgan.SRResNet(width=2, blocks=1)(mg.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="Discriminator expects"):
        srgan.Discriminator(image_size=16, ndf=2, dense=2)(mg.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="not a multiple of the scale"):
        superres.downsample(np.zeros((1, 3, 30, 30)))
    with pytest.raises(ValueError, match="not a multiple of the scale"):
        superres.sr_pairs([np.zeros((3, 40, 40), np.float32)], 1, 18, 0)
    with pytest.raises(FileNotFoundError, match="weights"):
        srgan.ContentLoss("vgg54", weights="/nonexistent/vgg19.safetensors")
    with pytest.raises(ValueError, match="low-resolution"):
        srgan.super_resolve(srgan.SRResNet(width=2, blocks=1), np.zeros((3, 4, 4)))


def test_example_smoke_run_writes_the_contract(tmp_path):
    out = tmp_path / "run"
    metrics = run("srgan", out, "--srresnet-steps", 2, "--steps", 2, "--batch-size", 2, "--crop", 16,
                  "--width", 4, "--blocks", 1, "--ndf", 4, "--dense", 8, "--vgg-width", 0.0625,
                  "--num-samples", 1000)
    for name in ("samples.png", "losses.png", "metrics.json", "checkpoint.safetensors", "samples.npz",
                 "samples_srresnet.npz"):
        assert (out / name).exists(), name
    with np.load(out / "samples.npz") as npz:
        assert {"input", "output", "target", "bicubic", "srresnet"} <= set(npz.files)
        assert npz["input"].shape == (1000, 3, 4, 4) and npz["target"].shape == (1000, 3, 16, 16)
        assert npz["output"].dtype == np.float32 and np.abs(npz["output"]).max() <= 1
        np.testing.assert_allclose(npz["input"], superres.downsample(npz["target"]), atol=1e-6)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["steps"] == 4 and set(saved["table"]) == {"bicubic", "srresnet", "srgan", "target"}
    for name in ("bicubic", "srresnet", "srgan"):
        row = saved["table"][name]
        assert {"psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb", "edge_energy_ratio"} <= set(row)
    assert metrics["table"]["bicubic"]["psnr_y"] > 10


def test_example_refuses_bad_flags(tmp_path):
    with pytest.raises(SystemExit):
        run("srgan", tmp_path / "a", "--crop", 24)
    with pytest.raises(SystemExit):
        run("srgan", tmp_path / "b", "--vgg-width", 2)


def test_calibrated_rescale_makes_the_vgg_loss_the_pixel_mse():
    loss, _ = _content("vgg22")
    rng = np.random.default_rng(5)
    images, references = (mg.tensor(rng.uniform(-1, 1, (3, 3, 16, 16))) for _ in range(2))
    loss.rescale = srgan.calibrate_rescale(loss, images, references)
    pixel = ((images.numpy() - references.numpy()) ** 2).mean()
    assert loss(images, references).item() == pytest.approx(pixel, rel=1e-9)
    with pytest.raises(ValueError, match="no feature maps"):
        srgan.calibrate_rescale(srgan.ContentLoss("mse"), images, references)
