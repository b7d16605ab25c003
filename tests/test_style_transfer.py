"""Style transfer (Gatys et al. 2016, AdaIN of Huang & Belongie 2017) against plain torch
(``tests/twins/style_transfer_torch.py``): the losses, their gradients and the optimizer
steps with the same weights in float64, AdaIN's promises, the example's smoke runs."""
import numpy as np
import pytest
import torch

import minigan as mg
from minigan import optim
from minigan.models import style_transfer as st
from minigan.testing import assert_params_match, assert_state_match, load_into_twin
from test_examples import assert_resume_continues_the_run, example, run
from twins import style_transfer_torch as twin
from twins.vgg19_torch import VGG19

torch.set_num_threads(1)
WIDTH = 1 / 16  # VGG-19 at 4, 8, 16, 32 channels


def _images(n, size, seed):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 3, size, size))


def _vgg(last, seed=0):
    ours = st.feature_network("random", last=last, width=WIDTH, seed=seed).double()
    theirs = load_into_twin(ours, VGG19(last, width=WIDTH).requires_grad_(False)).double()
    return ours, theirs


def test_gatys_losses_gradients_and_adam_steps_match_torch():
    network, tnet = _vgg("relu5_1")
    content, style = _images(1, 32, 1), _images(1, 48, 2)  # the style image may have another size
    p, a = st.gatys_targets(network, mg.tensor(content), mg.tensor(style))
    start = st.initial_image(content, style, "noise", rng=3).astype(np.float64)
    pixels = st.Pixels(start).double()
    tpixels = torch.tensor(start, requires_grad=True)

    x = mg.tensor(start, requires_grad=True)
    losses = st.gatys_losses(network, x, p, a)
    st.gatys_loss(losses, 1.0, 1e3).backward()
    tx = torch.tensor(start, requires_grad=True)
    tc, ts = twin.gatys_losses(tnet, tx, torch.tensor(content), torch.tensor(style))
    (tc + 1e3 * ts).backward()
    assert losses["content"].item() == pytest.approx(tc.item(), rel=1e-10)
    assert losses["style"].item() == pytest.approx(ts.item(), rel=1e-10)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-8, atol=1e-12 * np.abs(tx.grad.numpy()).max())

    opt, topt = optim.Adam(pixels.parameters(), lr=0.05), torch.optim.Adam([tpixels], lr=0.05)
    for _ in range(3):
        ours = st.gatys_step(network, pixels, opt, p, a, 1.0, 1e3)
        theirs = twin.gatys_step(tnet, tpixels, topt, torch.tensor(content), torch.tensor(style), 1.0, 1e3)
        for k in ours:
            assert ours[k] == pytest.approx(theirs[k], rel=1e-8), k
    np.testing.assert_allclose(pixels.image.numpy(), tpixels.detach().numpy(), rtol=1e-8, atol=1e-10)
    assert np.abs(pixels.image.numpy()).max() <= 1  # clamped to the images' range
    assert all(q.grad is None for q in network.parameters())  # the features stay fixed


def test_gatys_losses_vanish_on_their_own_targets_and_not_elsewhere():
    network, _ = _vgg("relu5_1")
    content, style = _images(1, 32, 4), _images(1, 32, 5)
    p, a = st.gatys_targets(network, mg.tensor(content), mg.tensor(style))
    with mg.no_grad():
        on_content = st.gatys_losses(network, mg.tensor(content), p, a)
        on_style = st.gatys_losses(network, mg.tensor(style), p, a)
    assert on_content["content"].item() == 0 and on_content["style"].item() > 0
    assert on_style["style"].item() == 0 and on_style["content"].item() > 0


def _adain_models(seed=0):
    encoder, tencoder = _vgg("relu4_1", seed)
    mg.manual_seed(seed + 1)
    decoder = st.Decoder(WIDTH).double()
    tdecoder = load_into_twin(decoder, twin.Decoder(WIDTH)).double()
    return encoder, tencoder, decoder, tdecoder


def test_adain_decoder_forward_and_training_steps_match_torch():
    encoder, tencoder, decoder, tdecoder = _adain_models()
    assert set(decoder.state_dict()) == set(tdecoder.state_dict())
    opt = optim.Adam(decoder.parameters(), lr=1e-3)
    topt = torch.optim.Adam(tdecoder.parameters(), lr=1e-3)
    for step in range(3):
        content, style = _images(2, 16, 10 + step), _images(2, 24, 20 + step)
        if step == 0:  # the gradients of the first step, before Adam moves anything
            losses = st.adain_losses(encoder, decoder, mg.tensor(content), mg.tensor(style))
            losses["loss"].backward()
            tloss, _, _ = twin.adain_losses(tencoder, tdecoder, torch.tensor(content), torch.tensor(style))
            tloss.backward()
            assert losses["loss"].item() == pytest.approx(tloss.item(), rel=1e-10)
            assert_params_match(decoder, tdecoder, rtol=1e-8, atol=1e-14, grads=True)
        ours = st.adain_train_step(encoder, decoder, opt, mg.tensor(content), mg.tensor(style))
        theirs = twin.adain_train_step(tencoder, tdecoder, topt, torch.tensor(content), torch.tensor(style))
        for k in ours:
            assert ours[k] == pytest.approx(theirs[k], rel=1e-9), k
    assert_params_match(decoder, tdecoder, rtol=1e-8, atol=1e-12)
    assert_state_match(decoder, tdecoder, rtol=1e-8, atol=1e-12)
    assert all(q.grad is None for q in encoder.parameters())


def test_stylize_matches_torch_and_alpha_zero_decodes_the_content_features():
    encoder, tencoder, decoder, tdecoder = _adain_models(seed=3)
    content, style = _images(2, 16, 30), _images(2, 16, 31)
    tc, ts = torch.tensor(content), torch.tensor(style)
    with torch.no_grad():
        fc = tencoder(tc, ("relu4_1",))["relu4_1"]
        fs = tencoder(ts, ("relu4_1",))["relu4_1"]
        for alpha in (0.0, 0.5, 1.0):
            expected = tdecoder(alpha * twin.adain(fc, fs) + (1 - alpha) * fc).numpy()
            out = st.stylize(encoder, decoder, mg.tensor(content), mg.tensor(style), alpha).numpy()
            np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-12, err_msg=f"alpha={alpha}")
    with mg.no_grad():  # alpha = 0: the decoder of the content's own features, whatever the style
        plain = decoder(encoder(mg.tensor(content), "relu4_1")["relu4_1"]).numpy()
    other_style = st.stylize(encoder, decoder, mg.tensor(content), mg.tensor(_images(2, 16, 32)), 0.0).numpy()
    np.testing.assert_array_equal(other_style, plain)


def test_adain_gives_the_content_the_styles_mean_and_standard_deviation():
    rng = np.random.default_rng(6)
    content = rng.standard_normal((2, 5, 6, 7)) * 3 + 1
    style = rng.standard_normal((2, 5, 9, 4)) * rng.uniform(0.5, 4, (2, 5, 1, 1)) + rng.uniform(-2, 2, (2, 5, 1, 1))
    t = st.adain_target(mg.tensor(content), mg.tensor(style)).numpy()
    np.testing.assert_allclose(t.mean((2, 3)), style.mean((2, 3)), atol=1e-10)
    np.testing.assert_allclose(t.std((2, 3)), style.std((2, 3)), rtol=1e-4)  # up to eps = 1e-5 in both sigmas
    sigma = lambda x: np.sqrt(x.var((2, 3)) + st.EPS)  # noqa: E731
    np.testing.assert_allclose(t.std((2, 3)), sigma(style) * content.std((2, 3)) / sigma(content), rtol=1e-10)
    # and what is normalized away is only the statistics: the content's layout stays, per channel
    z = (content - content.mean((2, 3), keepdims=True)) / content.std((2, 3), keepdims=True)
    zt = (t - t.mean((2, 3), keepdims=True)) / t.std((2, 3), keepdims=True)
    np.testing.assert_allclose(zt, z, atol=1e-9)
    mean, std = st.mean_std(mg.tensor(style))
    np.testing.assert_allclose(mean.numpy(), style.mean((2, 3)), atol=1e-12)
    np.testing.assert_allclose(std.numpy(), np.sqrt(style.var((2, 3)) + st.EPS), rtol=1e-12)


def test_bad_input_names_what_was_wrong():
    encoder, _, decoder, _ = _adain_models()
    content, style = mg.tensor(_images(2, 16, 0)), mg.tensor(_images(1, 16, 1))
    for alpha in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"alpha .* \[0, 1\]"):
            st.stylize(encoder, decoder, content, mg.tensor(_images(2, 16, 1)), alpha)
    with pytest.raises(ValueError, match="same batch size"):
        st.stylize(encoder, decoder, content, style)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        st.stylize(encoder, decoder, mg.tensor(np.zeros((1, 1, 16, 16))), style)
    with pytest.raises(ValueError, match="relu4_1 features"):
        decoder(mg.tensor(np.zeros((1, 7, 2, 2))))
    network, _ = _vgg("relu5_1")
    p, a = st.gatys_targets(network, mg.tensor(_images(1, 32, 2)), mg.tensor(_images(1, 32, 3)))
    with pytest.raises(ValueError, match="same size"):
        st.gatys_losses(network, mg.tensor(_images(1, 48, 4)), p, a)
    with pytest.raises(ValueError, match="init"):
        st.initial_image(_images(1, 8, 0), _images(1, 8, 0), "zeros")


# ---------------------------------------------------------------- the example

TINY = ("--size", 32, "--width", 0.0625)


@pytest.mark.parametrize("method,extra", [("gatys", ()), ("adain", ("--crop", 16, "--batch-size", 2))])
def test_example_writes_the_contracts_files_and_the_baselines(tmp_path, method, extra):
    metrics = run("style_transfer", tmp_path, "--method", method, "--steps", 2, *TINY, *extra)
    for name in ("samples.png", "result.png", "samples.npz", "losses.png", "metrics.json", "checkpoint.safetensors"):
        assert (tmp_path / name).is_file(), name
    for judge in ("own", "judge"):
        losses = metrics[judge]
        assert losses["content_image"]["content"] == 0 and losses["style_image"]["style"] == 0
        assert losses["content_image"]["style"] > 0 and losses["style_image"]["content"] > 0
        assert losses["content_kept"] == pytest.approx(
            1 - losses["result"]["content"] / losses["style_image"]["content"])
    samples = np.load(tmp_path / "samples.npz")
    assert samples["result"].shape == (1, 3, 32, 32)
    if method == "adain":
        assert samples["alpha_sweep"].shape == (5, 3, 32, 32)
        np.testing.assert_array_equal(samples["alpha_sweep"][-1:], samples["result"])
        assert list(metrics["own"]["alpha_sweep"]) == ["0", "0.25", "0.5", "0.75", "1"]


def test_example_resumes_where_it_stopped(tmp_path):
    assert_resume_continues_the_run("style_transfer", tmp_path, 2, 1,
                                    ("--method", "adain", *TINY, "--crop", 16, "--batch-size", 2), ["decoder"])


@pytest.mark.parametrize("args,message", [
    (("--content", "mona_lisa"), "unknown picture 'mona_lisa'"),
    (("--style", "Stone/nosuch"), "unknown picture 'Stone/nosuch'"),
    (("--method", "adain", "--alpha", "1.5"), "--alpha"),
    (("--width", "2"), "--width 2.0"),
    (("--method", "adain", "--crop", "20"), "multiple of 8"),
])
def test_example_refuses_bad_flags_with_a_clear_message(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit):
        example("style_transfer").main(["--out", str(tmp_path), "--no-progress", *args])
    assert message in capsys.readouterr().err
    assert not (tmp_path / "metrics.json").exists()


@pytest.mark.parametrize("method,extra", [("gatys", ()), ("adain", ("--crop", 16, "--batch-size", 2))])
def test_example_runs_on_cuda(fake_cuda, tmp_path, method, extra):
    """--device cuda on the CuPy stand-in: no host array reaches a device op."""
    metrics = run("style_transfer", tmp_path, "--device", "cuda", "--method", method, "--steps", 2, *TINY, *extra)
    assert metrics["device"] == "cuda" and np.isfinite(metrics["judge"]["result"]["style"])
