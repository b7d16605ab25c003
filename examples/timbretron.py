"""Train TimbreTron (Huang et al. 2019): a CycleGAN on constant-Q spectrograms between two instruments.

    python examples/timbretron.py                       # flute <-> reed, CPU, about 8 minutes
    python examples/timbretron.py --lambda-cycle 0      # the ablation: no cycle (and no identity loss)

The data (``minigan.data.timbre``): random melodies from the C major scale, rendered by
additive synthesis as two instruments that differ only in their spectral envelope, a
mellow "flute" (strong fundamental, weak harmonics) and a bright "reed" (many
harmonics). X = flute clips of some melodies, Y = reed clips of other melodies: no clip
has its counterpart in the other domain. Each clip is 2.048 s at 16 kHz, seen as a CQT
image of 48 semitone bins (110-1661 Hz) by 64 frames of 32 ms, in [-1, 1].

Training follows minigan/models/timbretron.py: CycleGAN's ResNet generators, TimbreTron's
full-spectrogram discriminators with a gradient penalty, the identity loss, random crops
of --crop frames in time; the generators then translate whole clips.

Evaluation, on test melodies never trained on, each rendered by both instruments: G
translates the flute clips to reed, F the reed clips to flute, and

  * target_share: the share of translations the project's timbre classifier
    (``load_classifier('timbre')``) calls the target instrument; next to it the same
    share for the untranslated inputs (the baseline a translation must beat) and for
    the target-timbre renders (the ceiling);
  * pitch_preserved: the share of notes whose pitch, estimated from the translation
    (``minigan.eval.timbre``), is the melody's; next to it the untranslated input's and
    the target render's (the measure's own ceiling, both 1.0) and chance (the
    translations scored against other clips' melodies);
  * upper_level: the mean level of the top two octaves of bins, where only harmonics
    lie (``minigan.eval.timbre.upper_level``): the timbre measured by hand, next to the
    input's and the target render's;
  * l1_to_target: the mean L1 distance between each translation and the render of
    the same melody by the target instrument (a paired truth no network saw), next to
    the input's distance to it.

Writes samples.png (rows: flute inputs, their reed translations, the reed renders of the
same melodies; then the same for reed -> flute; low frequencies at the bottom),
spectrograms.png (input | translated | target render, two clips per direction),
audio/*.wav (for the first two clips of each direction: the input render, the
translation made audible by Griffin–Lim on the CQT, the Griffin–Lim of the input's own
image to hear what the image and the inversion alone lose, and the target-timbre render),
losses.png, metrics.json, checkpoint.safetensors and samples.npz (``input``, ``output``,
``target``: (N, 1, 48, 64) float32 in [-1, 1], ``label``: the target instrument, 1 for
reed, 0 for flute; the flute -> reed clips first). --resume continues from the
checkpoint (the pools and the lr schedule included).

Defaults and why they differ from the paper (ResNet generators with 64 filters, 4-second
crops at 16 kHz of real recordings, a WaveNet to synthesize): width 16, 3 residual
blocks, 16-filter discriminators, batches of 4 crops of 32 frames (1 s) and 1200 steps
take about 8 minutes on one CPU core.
"""
import os

import numpy as np

import minigan as mg
from minigan.data import timbre
from minigan.data.cqt import magnitude_from_image
from minigan.eval import load_classifier
from minigan.eval.timbre import pitch_preserved, upper_level
from minigan.models import cyclegan, timbretron
from minigan.utils import save_image, save_npz, save_spectrograms, save_wav
from minigan.utils.experiment import (Experiment, RunSettings, check_batch_size, example_parser, nonnegative_float,
                                    nonnegative_int, positive_int, unit_float)

DATA = ("flute-reed",)
GRID = 6  # clips per direction in samples.png
AUDIO = 2  # clips per direction written as WAV files


def translate(generator, images, device, batch_size=100):
    """``generator`` over whole clips (a NumPy array) in batches, without a graph: float32 NumPy."""
    with mg.no_grad():
        return np.concatenate([generator(mg.tensor(images[i:i + batch_size], device=device)).numpy()
                               for i in range(0, len(images), batch_size)]).astype(np.float32)


def score_direction(name, generator, source, target, melodies, classifier, target_class, device):
    """One direction's translations and its numbers (see the module docstring)."""
    out = translate(generator, source, device)
    rotated = melodies[1:] + melodies[:1]  # other clips' melodies: what matching by chance scores
    metrics = {f"{name}_target_share": float((classifier.predict(out) == target_class).mean()),
               f"{name}_input_target_share": float((classifier.predict(source) == target_class).mean()),
               f"{name}_render_target_share": float((classifier.predict(target) == target_class).mean()),
               f"{name}_pitch_preserved": pitch_preserved(out, melodies),
               f"{name}_input_pitch_preserved": pitch_preserved(source, melodies),
               f"{name}_render_pitch_preserved": pitch_preserved(target, melodies),
               f"{name}_chance_pitch_preserved": pitch_preserved(out, rotated),
               f"{name}_upper_level": upper_level(out),
               f"{name}_input_upper_level": upper_level(source),
               f"{name}_render_upper_level": upper_level(target),
               f"{name}_l1_to_target": float(np.abs(out - target).mean()),
               f"{name}_input_l1_to_target": float(np.abs(source - target).mean())}
    return out, metrics


def write_audio(out_dir, name, source, source_audio, out, target_audio, gl_iters):
    """The first AUDIO clips of a direction as WAV files; Griffin–Lim makes the images audible
    (the input's own image goes the same way, to hear what the image and the inversion lose)."""
    transform = timbre.cqt()
    for i in range(AUDIO):
        translated = transform.griffin_lim(magnitude_from_image(out[i, 0], pool=timbre.POOL), n_iter=gl_iters)
        inverted = transform.griffin_lim(magnitude_from_image(source[i, 0], pool=timbre.POOL), n_iter=gl_iters)
        for kind, audio in (("input", source_audio[i]), ("translated", translated),
                            ("input_griffin_lim", inverted), ("target", target_audio[i])):
            save_wav(os.path.join(out_dir, "audio", f"{name}_{i}_{kind}.wav"), audio, timbre.SR)


def evaluate(G, F, device, out_dir, n_test, seed, gl_iters):
    """Both directions on ``n_test`` test melodies; writes the pictures, WAVs and samples.npz."""
    test = timbre.load_timbre_clips(n_test, seed=[seed, 3])
    classifier = load_classifier("timbre", device)
    flute, reed = 0, 1
    fake_reed, m_fr = score_direction("flute_to_reed", G, test.flute, test.reed, test.melodies, classifier, reed,
                                      device)
    fake_flute, m_rf = score_direction("reed_to_flute", F, test.reed, test.flute, test.melodies, classifier, flute,
                                       device)
    metrics = {**m_fr, **m_rf}
    for key in ("target_share", "pitch_preserved", "input_target_share", "input_pitch_preserved",
                "chance_pitch_preserved", "l1_to_target", "input_l1_to_target"):
        metrics[key] = float(np.mean([m_fr[f"flute_to_reed_{key}"], m_rf[f"reed_to_flute_{key}"]]))

    grid = np.concatenate([test.flute[:GRID], fake_reed[:GRID], test.reed[:GRID],
                           test.reed[:GRID], fake_flute[:GRID], test.flute[:GRID]])
    save_image(grid[..., ::-1, :], os.path.join(out_dir, "samples.png"), nrow=min(GRID, n_test))  # low notes down
    rows = [[test.flute[i, 0], fake_reed[i, 0], test.reed[i, 0]] for i in range(AUDIO)]
    rows += [[test.reed[i, 0], fake_flute[i, 0], test.flute[i, 0]] for i in range(AUDIO)]
    save_spectrograms(rows, os.path.join(out_dir, "spectrograms.png"),
                      ["input", "translated", "target-timbre render"],
                      row_labels=["flute -> reed (MIDI pitch)"] * AUDIO + ["reed -> flute (MIDI pitch)"] * AUDIO,
                      extent=(0, timbre.LENGTH / timbre.SR, timbre.MIDI_FMIN - 0.5, timbre.MIDI_FMIN + 47.5))
    write_audio(out_dir, "flute_to_reed", test.flute, test.flute_audio, fake_reed, test.reed_audio, gl_iters)
    write_audio(out_dir, "reed_to_flute", test.reed, test.reed_audio, fake_flute, test.flute_audio, gl_iters)
    save_npz(os.path.join(out_dir, "samples.npz"), input=np.concatenate([test.flute, test.reed]),
             output=np.concatenate([fake_reed, fake_flute]), target=np.concatenate([test.reed, test.flute]),
             label=np.repeat(np.array([reed, flute], np.int64), n_test))
    return metrics


def main(argv=None):
    mg.backend.tune_cpu()  # faster CPU steps: keep freed memory, idle BLAS threads sleep
    parser = example_parser(__doc__.splitlines()[0], data=DATA, steps=1200, batch_size=4, lr=2e-4)
    parser.add_argument("--width", type=positive_int, default=16,
                        help="filters of the generators' first layer, k of c7s1-k (the paper: 64)")
    parser.add_argument("--blocks", type=positive_int, default=3, help="residual blocks per generator")
    parser.add_argument("--d-width", type=positive_int, default=16, help="filters of the discriminators' first layer")
    parser.add_argument("--crop", type=positive_int, default=32,
                        help="frames of the random crops in time the networks train on (a multiple of 8, "
                             "at most 64: a whole clip)")
    parser.add_argument("--lambda-cycle", type=nonnegative_float, default=10.0)
    parser.add_argument("--lambda-identity", type=nonnegative_float, default=0.5,
                        help="the identity loss's weight, relative to --lambda-cycle")
    parser.add_argument("--gp-weight", type=nonnegative_float, default=timbretron.GP_WEIGHT,
                        help="the gradient penalty on the discriminators (0: none)")
    parser.add_argument("--pool-size", type=nonnegative_int, default=50, help="fakes D draws from (0: none)")
    parser.add_argument("--beta1", type=unit_float, default=0.5)
    parser.add_argument("--train-clips", type=positive_int, default=500, help="clips per instrument to train on")
    parser.add_argument("--test-clips", type=positive_int, default=500,
                        help="test melodies, translated in both directions (samples.npz holds 2x this many)")
    parser.add_argument("--griffin-lim-iters", type=positive_int, default=32)
    args = parser.parse_args(argv)
    if args.crop % 8 or args.crop > 64:
        parser.error(f"--crop {args.crop}: the crop must be a multiple of 8 frames (three stride-2 layers in D) "
                     "and at most 64 (a whole clip)")
    if args.test_clips < AUDIO:
        parser.error(f"--test-clips {args.test_clips}: at least {AUDIO}, the clips written as WAV files each way")
    check_batch_size(parser, args.batch_size, args.train_clips, args.data)
    decay = args.steps // 2

    mg.manual_seed(args.seed)
    data_rng, pool_rng = np.random.default_rng(args.seed), np.random.default_rng(args.seed + 1)
    # unpaired: the flute clips and the reed clips play different melodies
    x_train = timbre.load_timbre_clips(args.train_clips, seed=[args.seed, 1]).flute
    y_train = timbre.load_timbre_clips(args.train_clips, seed=[args.seed, 2]).reed
    bins = x_train.shape[2]

    G = timbretron.generator(args.width, args.blocks).to(args.device)
    F = timbretron.generator(args.width, args.blocks).to(args.device)
    D_X = timbretron.FullSpectrogramDiscriminator(bins, args.d_width).to(args.device)
    D_Y = timbretron.FullSpectrogramDiscriminator(bins, args.d_width).to(args.device)
    pool_x = cyclegan.ImagePool(args.pool_size, (1, bins, args.crop), pool_rng).to(args.device)
    pool_y = cyclegan.ImagePool(args.pool_size, (1, bins, args.crop), pool_rng).to(args.device)
    opt_g, opt_d, schedules = cyclegan.optimizers(G, F, D_X, D_Y, args.steps, decay, args.lr, args.beta1)

    run = Experiment("timbretron", RunSettings.from_args(args),
                     {"G": G, "F": F, "D_X": D_X, "D_Y": D_Y, "pool_x": pool_x, "pool_y": pool_y},
                     {"generators": opt_g, "discriminators": opt_d}, rngs={"data": data_rng, "pool": pool_rng})
    if run.maybe_resume(scheduled_lr=True):
        for s in schedules:
            s.last_epoch = run.step - 1
            s.step()

    for _ in run.steps(args.steps, desc=f"timbretron/{args.data}"):
        x = timbretron.random_time_crop(x_train[data_rng.choice(len(x_train), args.batch_size, replace=False)],
                                        args.crop, data_rng)
        y = timbretron.random_time_crop(y_train[data_rng.choice(len(y_train), args.batch_size, replace=False)],
                                        args.crop, data_rng)
        run.log(timbretron.train_step(G, F, D_X, D_Y, opt_g, opt_d, mg.tensor(x, device=args.device),
                                      mg.tensor(y, device=args.device), pool_x, pool_y,
                                      lambda_cycle=args.lambda_cycle, lambda_identity=args.lambda_identity,
                                      gp_weight=args.gp_weight))
        for s in schedules:
            s.step()

    G.eval(), F.eval()
    metrics = evaluate(G, F, args.device, run.out, args.test_clips, args.seed, args.griffin_lim_iters)
    metrics = run.finish({"data": args.data, "width": args.width, "blocks": args.blocks, "d_width": args.d_width,
                          "crop": args.crop, "batch_size": args.batch_size, "pool_size": args.pool_size,
                          "lambda_cycle": args.lambda_cycle, "lambda_identity": args.lambda_identity,
                          "gp_weight": args.gp_weight, "train_clips": args.train_clips,
                          "test_clips": args.test_clips, **metrics})
    print({k: v for k, v in metrics.items() if k in ("steps", "wall_time_s", "target_share", "pitch_preserved",
                                                      "input_target_share", "chance_pitch_preserved",
                                                      "l1_to_target", "input_l1_to_target")})
    return metrics


if __name__ == "__main__":
    main()
