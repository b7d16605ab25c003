"""Two synthetic instruments playing random melodies: TimbreTron's domains, made offline.

Timbre is what tells two instruments apart when they play the same note at the same
loudness. Here the two instruments differ in one thing only, their *spectral envelope*
(the amplitudes of the harmonics k f0 of a note at f0):

    flute   a mellow tone: a strong fundamental, weak harmonics, the odd ones a little
            stronger (an open pipe's), nothing above the 6th
    reed    a bright tone: a sawtooth-like 1 / k^0.6 slope over 16 harmonics, with a
            formant that lifts harmonics 3-5

Both instruments share the same amplitude envelope (a 20 ms attack, a slight decay, a
50 ms release), the same loudness (their harmonic amplitudes have the same root mean
square) and the same note-to-note jitter (each harmonic's gain varies by about 1.5 dB),
so the only way to tell them apart, for the timbre classifier as for the discriminator,
is the balance of the harmonics; not whether a note sustains or decays.

A melody is a sequence of notes from the C major scale between C3 and E4 (MIDI 48-64,
131-330 Hz), each lasting 0.25, 0.375 or 0.5 s, filling a clip of 32768 samples at
16 kHz (2.048 s). Its pitches and onsets are known, so a translation can be checked
note by note against the melody it was made from (``note_pitches``). The same melody
can be rendered by both instruments: the target-timbre render a translation should
approach. Everything is deterministic given the seed.

The clips become CQT "images" (``cqt.py``): 48 semitone bins from A2 (110 Hz) to
G#6 (1661 Hz) by 64 frames of 32 ms, (N, 1, 48, 64) float32 in [-1, 1].
"""
from typing import NamedTuple

import numpy as np

from .cqt import CQT, log_image

SR, LENGTH = 16000, 32768
SCALE = np.array([48, 50, 52, 53, 55, 57, 59, 60, 62, 64])  # C major, C3 .. E4
DURATIONS = np.array([0.25, 0.375, 0.5])  # seconds
MIDI_FMIN = 45  # the CQT's lowest bin, A2 = 110 Hz
POOL = 4  # the CQT's frames (hop 128) averaged 4 at a time: a picture frame is 512 samples, 32 ms
INSTRUMENTS = ("flute", "reed")

_k = np.arange(1, 17)
HARMONICS = {  # amplitude of harmonic k = 1..16, before normalising to unit RMS
    "flute": np.where(_k == 1, 1.0, np.where(_k % 2, 0.14, 0.06) / np.maximum(_k - 1, 1)) * (_k <= 6),
    "reed": _k ** -0.6 * (1 + 1.5 * np.exp(-0.5 * ((_k - 4) / 1.2) ** 2)),
}


def midi_to_hz(midi):
    return 440.0 * 2.0 ** ((np.asarray(midi, np.float64) - 69) / 12)


class Melody(NamedTuple):
    """A melody's notes: MIDI pitch, onset and offset in seconds, loudness (0.5-1)."""
    pitch: np.ndarray
    onset: np.ndarray
    offset: np.ndarray
    velocity: np.ndarray


def random_melody(rng, length=LENGTH, sr=SR):
    """Notes from ``SCALE`` one after another until less than 0.1 s of the clip is left (the
    last note cut at the clip's end)."""
    pitch, onset, offset, velocity, t, end = [], [], [], [], 0.0, length / sr
    while t < end - 0.1:
        d = rng.choice(DURATIONS)
        pitch.append(int(rng.choice(SCALE)))
        onset.append(t)
        offset.append(min(t + d, end))
        velocity.append(rng.uniform(0.5, 1.0))
        t += d
    return Melody(np.array(pitch), np.array(onset), np.array(offset), np.array(velocity))


def render(melody, instrument, rng, length=LENGTH, sr=SR):
    """The melody played by ``instrument`` ('flute' or 'reed'): additive synthesis of the
    instrument's harmonics (those below 0.45 sr), float64 (length,) with peaks below 1."""
    if instrument not in HARMONICS:
        raise ValueError(f"render: unknown instrument {instrument!r}; choose one of {INSTRUMENTS}")
    amplitudes = HARMONICS[instrument] / np.sqrt((HARMONICS[instrument] ** 2).sum())
    out = np.zeros(length)
    for pitch, onset, offset, velocity in zip(*melody):
        start, stop = int(round(onset * sr)), min(int(round(offset * sr)), length)
        t = np.arange(stop - start) / sr
        # the same envelope for both instruments: 20 ms attack, a decay to 0.8, 50 ms release
        envelope = np.minimum(1, t / 0.02) * (0.8 + 0.2 * np.exp(-t / 0.15)) * np.clip((t[-1] - t) / 0.05, 0, 1)
        f0 = midi_to_hz(pitch)
        gains = amplitudes * np.exp(0.17 * rng.standard_normal(len(amplitudes)))  # about 1.5 dB of jitter
        phases = rng.uniform(0, 2 * np.pi, len(amplitudes))
        k = _k[_k * f0 < 0.45 * sr]
        tone = (gains[k - 1, None] * np.cos(2 * np.pi * f0 * k[:, None] * t + phases[k - 1, None])).sum(0)
        out[start:stop] += 0.3 * velocity * envelope * tone
    return out


def note_pitches(melody, n_frames, pool=POOL, hop=128, sr=SR, margin=0.06):
    """For each note, its MIDI pitch and the picture frames well inside it (frames whose centre
    is more than ``margin`` s from the note's ends): a list of (pitch, frame indices)."""
    centres = ((np.arange(n_frames) + 0.5) * pool - 0.5) * hop / sr
    return [(int(p), np.flatnonzero((centres > a + margin) & (centres < b - margin)))
            for p, a, b in zip(melody.pitch, melody.onset, melody.offset)]


class TimbreClips(NamedTuple):
    """Clips of random melodies: CQT images of both instruments' renders, the audio, the melodies."""
    flute: np.ndarray      # (N, 1, 48, 64) float32 in [-1, 1]
    reed: np.ndarray       # (N, 1, 48, 64)
    flute_audio: np.ndarray  # (N, LENGTH) float32
    reed_audio: np.ndarray
    melodies: list


_CQT = {}


def cqt():
    """The transform of the clips (built once: its kernels are reused by every call)."""
    if "cqt" not in _CQT:
        _CQT["cqt"] = CQT(sr=SR, fmin=float(midi_to_hz(MIDI_FMIN)), n_bins=48, bins_per_octave=12, hop=128,
                          length=LENGTH)
    return _CQT["cqt"]


def to_image(audio):
    """Clips (N, LENGTH) -> CQT images (N, 1, 48, 64) in [-1, 1]."""
    return log_image(np.abs(cqt().forward(audio)), pool=POOL)[:, None]


def load_timbre_clips(n, seed=0):
    """``n`` random melodies, each rendered by both instruments (the same notes, independent
    jitter), with their CQT images. Different seeds give different melodies."""
    if n < 1:
        raise ValueError(f"load_timbre_clips: n must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    melodies = [random_melody(rng) for _ in range(n)]
    audio = {name: np.stack([render(m, name, rng) for m in melodies]).astype(np.float32) for name in INSTRUMENTS}
    return TimbreClips(to_image(audio["flute"]), to_image(audio["reed"]), audio["flute"], audio["reed"], melodies)
