"""Scoring a timbre translation: did the pitch of every note survive, and which instrument
does it sound like?

Pitch. Each note of a clip's melody is known (pitch, onset, offset), so a translated CQT
image can be checked note by note: the magnitudes of the frames inside the note are
averaged and the fundamental is estimated by harmonic summation (Hermes 1988), the pitch
whose harmonics k f0 carry the most energy, weighted 1 / k:

    f0_hat = argmax_p  sum_{k=1..8} |X|[bin(p) + round(12 log2 k)] / k

(the 1 / k weights keep the octave below, whose even harmonics coincide with all of the
note's, at half the score). A note keeps its pitch when f0_hat is the melody's semitone.
On the renders themselves the estimate is right for every note of both instruments
(tests/test_timbretron.py), so a miss after translation is the translation's.

Timbre, by hand: ``upper_level``, the mean level (in the images' [-1, 1] units) of the top
two octaves of bins (MIDI 69-92, 440-1661 Hz), where no fundamental of the melodies lies:
only harmonics. The bright reed fills them, the mellow flute barely; a translation
should land near the target instrument's renders of the same melodies.

Timbre, by a network: the project's classifier for the two instruments (``load_classifier('timbre')``,
trained by ``python -m minigan.eval.train_classifier --data timbre``) calls each image
flute (0) or reed (1).
"""
import numpy as np

from ..data.cqt import magnitude_from_image
from ..data.timbre import MIDI_FMIN, note_pitches

HARMONIC_BINS = np.round(12 * np.log2(np.arange(1, 9))).astype(int)  # 0, 12, 19, 24, 28, 31, 34, 36


def estimate_pitch(magnitude):
    """The MIDI pitch whose harmonics hold the most of ``magnitude`` (n_bins,) (linear, bin 0 at
    MIDI ``MIDI_FMIN``, one bin per semitone), by 1 / k weighted harmonic summation."""
    n = len(magnitude)
    scores = np.zeros(n)
    for k, offset in enumerate(HARMONIC_BINS, start=1):
        scores[:n - offset] += magnitude[offset:] / k
    return MIDI_FMIN + int(scores.argmax())


def note_pitch_hits(image, melody):
    """For one CQT image (1, n_bins, T) or (n_bins, T) in [-1, 1] and its melody: a boolean per
    note with frames inside it, True where the estimated pitch is the note's."""
    image = np.asarray(image).reshape(-1, np.asarray(image).shape[-1])
    magnitude = magnitude_from_image(image, pool=1)  # the dB scale undone, frames as they are
    return np.array([estimate_pitch(magnitude[:, frames].mean(1)) == pitch
                     for pitch, frames in note_pitches(melody, image.shape[-1]) if len(frames)], bool)


def pitch_preserved(images, melodies):
    """Share of the notes of all ``melodies`` whose pitch ``images`` (N, 1, n_bins, T) keep."""
    hits = np.concatenate([note_pitch_hits(image, melody) for image, melody in zip(images, melodies)])
    return float(hits.mean())


def upper_level(images, first_bin=24):
    """Mean of CQT images (N, 1, n_bins, T) over bins ``first_bin`` and up (the top two octaves)."""
    return float(np.asarray(images)[:, :, first_bin:, :].mean())
