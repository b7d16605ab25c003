"""TimbreTron: the constant-Q transform and its Griffin–Lim inverse against closed forms, the
synthetic instruments against their known melodies, the networks and the training step
against the torch twin (tests/twins/train_timbretron_torch.py), and the example."""
import json
import os
import wave

import numpy as np
import pytest
import torch

import minigan as mg
from minigan import optim
from minigan.data import timbre
from minigan.data.cqt import CQT, log_image, magnitude_from_image
from minigan.eval import load_classifier
from minigan.eval.timbre import estimate_pitch, note_pitch_hits, pitch_preserved, upper_level
from minigan.models import cyclegan, timbretron
from minigan.models.patchgan import receptive_field
from minigan.testing import assert_state_match, load_into_twin
from test_examples import CONTRACT, assert_resumed_after_a_crash_equals_uninterrupted_run, run
from twins.train_cyclegan_torch import ResnetGenerator as TorchResnetGenerator
from twins.train_timbretron_torch import FullSpectrogramDiscriminator as TorchFullSpectrogramDiscriminator
from twins.train_timbretron_torch import gradient_penalty as torch_gradient_penalty
from twins.train_timbretron_torch import train_step as torch_train_step

SR = timbre.SR


@pytest.fixture(scope="module")
def transform():
    return timbre.cqt()


def tone(freq, amplitude=0.5, length=timbre.LENGTH, phase=0.3):
    return amplitude * np.cos(2 * np.pi * freq * np.arange(length) / SR + phase)


# ---------------------------------------------------------------- the constant-Q transform


@pytest.mark.parametrize("bin", [0, 7, 12, 30, 47])
def test_a_pure_tone_at_a_bins_centre_lands_in_that_bin_with_half_its_amplitude(transform, bin):
    """|X[k, t]| = A / 2 for A cos(2 pi f_k n / sr): the window sums to 1 and the tone's other
    half sits at -f_k, outside every kernel's band."""
    X = np.abs(transform.forward(tone(transform.freqs[bin], amplitude=0.6)))
    middle = X[:, 100:156]  # frames far from the clip's ends
    assert (middle.argmax(0) == bin).all()
    np.testing.assert_allclose(middle[bin], 0.3, rtol=2e-3)


def test_bins_are_semitones_from_110_hz():
    cqt = CQT(sr=SR, fmin=110.0, n_bins=48, bins_per_octave=12)
    np.testing.assert_allclose(cqt.freqs[[0, 12, 24, 36]], [110, 220, 440, 880], rtol=1e-12)
    np.testing.assert_allclose(cqt.freqs[1:] / cqt.freqs[:-1], 2 ** (1 / 12), rtol=1e-12)
    np.testing.assert_allclose(timbre.midi_to_hz([45, 57, 69]), [110, 220, 440])


def test_a_top_bin_above_nyquist_and_a_length_off_the_hop_are_refused():
    with pytest.raises(ValueError, match="Nyquist"):
        CQT(sr=8000, fmin=110.0, n_bins=72)
    with pytest.raises(ValueError, match="multiple of hop"):
        CQT(length=1000, hop=128)


def test_the_transform_is_linear(transform):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(timbre.LENGTH), rng.standard_normal(timbre.LENGTH)
    np.testing.assert_allclose(transform.forward(2 * a - 3 * b), 2 * transform.forward(a) - 3 * transform.forward(b),
                               atol=2e-4)


def test_adjoint_is_the_transpose_of_the_transform(transform):
    """<A x, c> = <x, A^T c> for the real operator [Re A; Im A]: the overlap-add is A's adjoint."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal(timbre.LENGTH)
    c = rng.standard_normal((48, transform.n_frames)) + 1j * rng.standard_normal((48, transform.n_frames))
    padded, _ = transform.adjoint(c)
    half = transform.window // 2
    lhs = np.sum(np.real(transform.forward(x).astype(np.complex128) * np.conj(c)))
    rhs = np.dot(x, padded[0, half:half + timbre.LENGTH])
    assert lhs == pytest.approx(rhs, rel=1e-4)


@pytest.mark.parametrize("freq", [110.0, 150.0, 220.0, 440.0, 880.0, 1500.0])
def test_the_pseudo_inverse_gives_a_tone_in_the_bins_band_back(transform, freq):
    x = tone(freq)
    back = transform.pinv(transform.forward(x))
    inner = slice(4000, -4000)  # the clip's ends lose the halves of the kernels that stick out
    assert np.linalg.norm(back[inner] - x[inner]) / np.linalg.norm(x[inner]) < 0.04


def test_griffin_lim_lowers_the_magnitude_error_pass_after_pass(transform):
    """From the magnitude alone: || |A x| - M || / ||M|| falls at every pass (up to rounding)
    and ends far below where it started."""
    n = np.arange(timbre.LENGTH)
    x = sum(0.3 / k * np.cos(2 * np.pi * 150 * k * n / SR + k) for k in range(1, 10)) * np.minimum(1, n / 800)
    _, errors = transform.griffin_lim(np.abs(transform.forward(x)), n_iter=24, return_errors=True)
    assert (np.diff(errors) <= 1e-4).all(), errors
    assert errors[-1] < 0.5 * errors[0] and errors[-1] < 0.12, errors


def test_log_image_is_decibels_scaled_to_minus_one_one_and_magnitude_from_image_undoes_it():
    db = np.array([[-100.0, -80.0, -45.0, -10.0, 0.0]])
    image = log_image(10 ** (db / 20), pool=1)
    np.testing.assert_allclose(image, [[-1, -1, 0, 1, 1]], atol=1e-6)  # [-80, -10] dB -> [-1, 1], clipped
    np.testing.assert_allclose(20 * np.log10(magnitude_from_image(image, pool=1)), [[-80, -80, -45, -10, -10]],
                               atol=1e-4)
    pooled = log_image(np.full((3, 8), 10 ** (-45 / 20)), pool=4)  # a constant level stays where it is
    assert pooled.shape == (3, 2)
    np.testing.assert_allclose(magnitude_from_image(pooled, pool=4), 10 ** (-45 / 20), rtol=1e-5)


# ---------------------------------------------------------------- the instruments


def test_clips_are_deterministic_with_a_seed_and_differ_between_seeds():
    a, b, c = (timbre.load_timbre_clips(2, seed=s) for s in (5, 5, 6))
    np.testing.assert_array_equal(a.flute_audio, b.flute_audio)
    np.testing.assert_array_equal(a.reed, b.reed)
    assert not np.array_equal(a.flute_audio, c.flute_audio)
    assert a.flute.shape == a.reed.shape == (2, 1, 48, 64) and a.flute.dtype == np.float32
    assert -1 <= a.reed.min() and a.reed.max() <= 1 and np.abs(a.reed_audio).max() < 1


def test_melodies_are_notes_of_the_scale_one_after_another_filling_the_clip():
    rng = np.random.default_rng(3)
    for _ in range(20):
        m = timbre.random_melody(rng)
        assert set(m.pitch) <= set(timbre.SCALE)
        assert m.onset[0] == 0 and np.allclose(m.onset[1:], m.offset[:-1])
        assert timbre.LENGTH / SR - 0.1 <= m.offset[-1] <= timbre.LENGTH / SR  # full, up to the last 0.1 s


def test_every_rendered_note_has_the_melodys_pitch_by_both_instruments():
    clips = timbre.load_timbre_clips(20, seed=7)
    assert pitch_preserved(clips.flute, clips.melodies) == 1.0
    assert pitch_preserved(clips.reed, clips.melodies) == 1.0
    # and the measure is not a formality: against other clips' melodies it mostly misses
    assert pitch_preserved(clips.flute, clips.melodies[1:] + clips.melodies[:1]) < 0.3


def test_the_instruments_share_their_loudness_contour_and_differ_in_their_harmonics():
    """One melody by both: the same energy over time (frames of 32 ms), but the reed puts far
    more of it above the 4th harmonic (measured on one note's spectrum, by FFT)."""
    rng = np.random.default_rng(11)
    melody = timbre.random_melody(rng)
    flute, reed = timbre.render(melody, "flute", rng), timbre.render(melody, "reed", rng)
    rms = [np.sqrt((a.reshape(-1, 512) ** 2).mean(1)) for a in (flute, reed)]
    assert np.corrcoef(*rms)[0, 1] > 0.9  # not 1: each note's harmonics are jittered
    start, stop = int(melody.onset[0] * SR), int(melody.offset[0] * SR)
    f0 = timbre.midi_to_hz(melody.pitch[0])
    shares = []
    for audio in (flute, reed):
        power = np.abs(np.fft.rfft(audio[start:stop] * np.hanning(stop - start))) ** 2
        freqs = np.fft.rfftfreq(stop - start, 1 / SR)
        shares.append(power[freqs > 4.5 * f0].sum() / power.sum())
    assert shares[0] < 0.01 and shares[1] > 0.2


def test_the_reed_fills_the_top_two_octaves_the_flute_leaves_nearly_empty():
    clips = timbre.load_timbre_clips(10, seed=8)
    assert upper_level(clips.flute) < -0.6 < -0.4 < upper_level(clips.reed)


def test_unknown_instrument_is_refused():
    with pytest.raises(ValueError, match="unknown instrument 'piano'"):
        timbre.render(timbre.random_melody(np.random.default_rng(0)), "piano", np.random.default_rng(0))


def test_harmonic_summation_finds_the_fundamental_even_under_a_stronger_second_harmonic():
    magnitude = np.zeros(48)
    for k, a in zip(range(1, 9), [0.5, 1.0, 0.6, 0.5, 0.4, 0.3, 0.3, 0.2]):  # note at bin 5 (MIDI 50)
        magnitude[5 + int(np.round(12 * np.log2(k)))] = a
    assert magnitude.argmax() == 17  # the strongest partial is the octave ...
    assert estimate_pitch(magnitude) == 50  # ... the estimate is the fundamental


def test_note_pitch_hits_skip_notes_too_short_to_hold_a_frame():
    melody = timbre.Melody(np.array([60, 62]), np.array([0.0, 1.0]), np.array([1.0, 1.1]), np.array([1.0, 1.0]))
    image = np.full((1, 48, 64), -1.0, np.float32)
    image[0, 60 - timbre.MIDI_FMIN, :] = 0.5
    assert note_pitch_hits(image, melody).tolist() == [True]  # 0.1 s minus the margins holds no frame


def test_the_committed_timbre_classifier_tells_new_melodies_apart():
    """Melodies neither the classifier nor the example trained or tested on."""
    classifier = load_classifier("timbre")
    clips = timbre.load_timbre_clips(50, seed=[99, 99])
    assert (classifier.predict(clips.flute) == 0).mean() >= 0.95
    assert (classifier.predict(clips.reed) == 1).mean() >= 0.95


# ---------------------------------------------------------------- the networks


def _discriminator_twins(n_bins=48, ndf=4, seed=0):
    mg.manual_seed(seed)
    D = timbretron.FullSpectrogramDiscriminator(n_bins, ndf)
    return D, load_into_twin(D, TorchFullSpectrogramDiscriminator(n_bins, ndf))


def test_discriminator_state_dict_keys_and_forward_and_gradients_match_torch_twin():
    D, tD = _discriminator_twins()
    D, tD = D.double(), tD.double()
    assert list(D.state_dict()) == list(tD.state_dict())
    x = np.random.default_rng(2).uniform(-1, 1, (2, 1, 48, 32))
    xm, xt = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, tout = D(xm), tD(xt)
    assert out.shape == tout.shape == (2, 1, 1, 4)  # one score per stretch of 8 frames
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    (out ** 2).sum().backward()
    (tout ** 2).sum().backward()
    np.testing.assert_allclose(xm.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    for name, p in D.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), dict(tD.named_parameters())[name].grad.numpy(), rtol=1e-9,
                                   atol=1e-12, err_msg=name)


def test_each_score_of_the_discriminator_spans_the_whole_frequency_axis():
    """One score per stretch of time, from a receptive field taller than the 48 bins; the
    PatchGAN instead scores frequency regions one by one (several rows of scores)."""
    D, _ = _discriminator_twins()
    assert receptive_field(D) >= 48
    assert D(mg.zeros(1, 1, 48, 32)).shape == (1, 1, 1, 4)
    assert cyclegan.discriminator(1, width=4)(mg.zeros(1, 1, 48, 32)).shape[2] > 1


def test_discriminator_refuses_another_number_of_bins():
    D, _ = _discriminator_twins()
    with pytest.raises(ValueError, match="48 frequency bins"):
        D(mg.zeros(1, 1, 40, 32))
    with pytest.raises(ValueError, match="multiple of"):
        timbretron.FullSpectrogramDiscriminator(n_bins=44)


def test_the_generator_trained_on_crops_translates_whole_clips():
    G = timbretron.generator(width=4, n_blocks=1)
    for frames in (32, 64, 100):
        assert G(mg.zeros(1, 1, 48, frames)).shape == (1, 1, 48, frames)


def test_random_time_crops_are_stretches_of_their_own_image():
    rng = np.random.default_rng(4)
    images = rng.standard_normal((5, 1, 48, 64))
    crops = timbretron.random_time_crop(images, 24, np.random.default_rng(9))
    starts = np.random.default_rng(9).integers(0, 64 - 24 + 1, 5)
    assert crops.shape == (5, 1, 48, 24)
    for image, crop, s in zip(images, crops, starts):
        np.testing.assert_array_equal(crop, image[..., s:s + 24])
    with pytest.raises(ValueError, match="65 frames"):
        timbretron.random_time_crop(images, 65, rng)


def test_gradient_penalty_matches_torch_twin_and_its_weight_gradients():
    D, tD = _discriminator_twins(seed=1)
    D, tD = D.double(), tD.double()
    rng = np.random.default_rng(5)
    real, fake, eps = rng.uniform(-1, 1, (3, 1, 48, 16)), rng.uniform(-1, 1, (3, 1, 48, 16)), rng.uniform(0, 1, 3)
    from minigan.models.wgan import gradient_penalty
    gp = gradient_penalty(D, mg.tensor(real), mg.tensor(fake), weight=10.0, eps=mg.tensor(eps))
    tgp = torch_gradient_penalty(tD, torch.tensor(real), torch.tensor(fake), 10.0, torch.tensor(eps))
    assert gp.item() == pytest.approx(tgp.item(), rel=1e-9)
    gp.backward()
    tgp.backward()  # double backward: the penalty's gradient with respect to D's weights
    for name, p in D.named_parameters():
        theirs = dict(tD.named_parameters())[name].grad
        if theirs is None:  # the last bias moves every score alike: the input gradient does not see it
            assert p.grad is None or not p.grad.numpy().any(), name
            continue
        np.testing.assert_allclose(p.grad.numpy(), theirs.numpy(), rtol=1e-7, atol=1e-10, err_msg=name)


# ---------------------------------------------------------------- one training step

ADAM = dict(lr=2e-4, betas=(0.5, 0.999))


@pytest.mark.parametrize("lambda_identity,gp_weight", [(0.5, 10.0), (0.0, 0.0)])
def test_training_steps_match_torch_twin(lambda_identity, gp_weight):
    """Three TimbreTron steps (CycleGAN's step with the penalty on D, the interpolation weights
    drawn by minigan's generator and handed to the twin): losses and every parameter after
    each step. In float64, as tests/test_cyclegan.py explains."""
    mg.manual_seed(0)
    G, F = timbretron.generator(4, 1), timbretron.generator(4, 1)
    D_X, D_Y = timbretron.FullSpectrogramDiscriminator(48, 4), timbretron.FullSpectrogramDiscriminator(48, 4)
    twins = (load_into_twin(G, TorchResnetGenerator(1, 1, 4, 1)), load_into_twin(F, TorchResnetGenerator(1, 1, 4, 1)),
             load_into_twin(D_X, TorchFullSpectrogramDiscriminator(48, 4)),
             load_into_twin(D_Y, TorchFullSpectrogramDiscriminator(48, 4)))
    nets = tuple(net.double() for net in (G, F, D_X, D_Y))
    twins = tuple(twin.double() for twin in twins)
    opts = (optim.Adam([*G.parameters(), *F.parameters()], **ADAM),
            optim.Adam([*D_X.parameters(), *D_Y.parameters()], **ADAM))
    topts = (torch.optim.Adam([*twins[0].parameters(), *twins[1].parameters()], **ADAM),
             torch.optim.Adam([*twins[2].parameters(), *twins[3].parameters()], **ADAM))
    rng = np.random.default_rng(6)
    for step in range(3):
        x, y = rng.uniform(-1, 1, (2, 1, 48, 16)), rng.uniform(-1, 1, (2, 1, 48, 16))
        mg.manual_seed(100 + step)  # the penalty draws eps for D_X, then for D_Y
        eps = {"x": torch.tensor(mg.rand(2).numpy(), dtype=torch.float64),
               "y": torch.tensor(mg.rand(2).numpy(), dtype=torch.float64)}
        mg.manual_seed(100 + step)
        losses = timbretron.train_step(*nets, *opts, mg.tensor(x), mg.tensor(y), lambda_identity=lambda_identity,
                                       gp_weight=gp_weight)
        tlosses = torch_train_step(*twins, *topts, torch.tensor(x), torch.tensor(y), lambda_identity=lambda_identity,
                                   gp_weight=gp_weight, eps=eps)
        assert ("d_penalty" in losses) == (gp_weight > 0)
        for k, v in tlosses.items():
            np.testing.assert_allclose(losses[k], v, rtol=1e-6 if k == "d_penalty" else 1e-8,  # eps drawn in float32
                                       err_msg=f"{k} at step {step}")
        for net, twin in zip(nets, twins):
            # atol 1e-7: the biases before an instance norm get no gradient, but the penalty's double
            # backward leaves rounding noise there that Adam turns into moves of ~1e-8; a step is 2e-4
            assert_state_match(net, twin, rtol=1e-7, atol=1e-7)


# ---------------------------------------------------------------- the example

TINY = ("--width", 2, "--blocks", 1, "--d-width", 2, "--batch-size", 2, "--pool-size", 3, "--crop", 16,
        "--train-clips", 4, "--test-clips", 3, "--griffin-lim-iters", 2)


def test_timbretron_example_writes_the_contract_files_and_the_audio(tmp_path):
    metrics = run("timbretron", tmp_path, "--steps", 3, *TINY)
    for f in CONTRACT + ["samples.npz", "spectrograms.png"]:
        assert (tmp_path / f).stat().st_size > 0, f
    assert json.loads((tmp_path / "metrics.json").read_text())["steps"] == 3 == metrics["steps"]
    for key in ("target_share", "pitch_preserved", "input_target_share", "chance_pitch_preserved"):
        assert 0 <= metrics[key] <= 1, key
    assert metrics["input_pitch_preserved"] == 1.0 and metrics["input_target_share"] == 0.0  # the baselines
    samples = np.load(tmp_path / "samples.npz")
    assert sorted(samples.files) == ["input", "label", "output", "target"]
    for k in ("input", "output", "target"):
        assert samples[k].shape == (6, 1, 48, 64) and samples[k].dtype == np.float32
        assert -1 <= samples[k].min() and samples[k].max() <= 1
    assert samples["label"].tolist() == [1] * 3 + [0] * 3  # flute -> reed first
    wavs = sorted(os.listdir(tmp_path / "audio"))
    assert len(wavs) == 16 and "flute_to_reed_0_translated.wav" in wavs
    with wave.open(str(tmp_path / "audio" / "reed_to_flute_1_target.wav")) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()) == (SR, 1, 2, timbre.LENGTH)


def test_timbretron_example_resumed_after_a_crash_equals_uninterrupted_run(tmp_path, monkeypatch):
    """A run that dies after its checkpoint at step 3 of 6 and is resumed ends bit for bit where an
    uninterrupted run ends: the data and pool draws, the penalty's eps (minigan's generator) and
    the lr schedule (a function of --steps, so the crash is simulated, not a shorter run)."""
    assert_resumed_after_a_crash_equals_uninterrupted_run(
        "timbretron", tmp_path, monkeypatch, timbretron, ("--steps", 6, "--checkpoint-every", 3, *TINY),
        ["G", "F", "D_X", "D_Y", "pool_x", "pool_y"])


@pytest.mark.slow
def test_default_run_changes_the_timbre_and_keeps_most_pitches(tmp_path):
    """The default run (about 8 CPU minutes): the classifier hears the target instrument in
    most translations, where it hears it in none of the inputs, and most notes keep their
    pitch, far above chance."""
    metrics = run("timbretron", tmp_path)
    assert metrics["target_share"] > 0.9 and metrics["input_target_share"] == 0
    assert metrics["pitch_preserved"] > 0.5 > 0.2 > metrics["chance_pitch_preserved"]
    assert metrics["l1_to_target"] < metrics["input_l1_to_target"]
