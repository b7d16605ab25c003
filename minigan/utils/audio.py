"""Sound out of the examples: WAV files (the standard library's ``wave``) and pictures of
spectrograms side by side."""
import io
import wave

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .common import atomic_save, atomic_write


def save_wav(path, audio, sr):
    """A mono clip (float, nominally in [-1, 1]; clipped there) as 16-bit PCM at ``sr`` Hz, atomically."""
    audio = np.asarray(audio, np.float64)
    if audio.ndim != 1:
        raise ValueError(f"save_wav: expected a mono clip (samples,), got shape {audio.shape}")
    pcm = np.round(np.clip(audio, -1, 1) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sr))
        w.writeframes(pcm.tobytes())
    atomic_write(path, buffer.getvalue())


def save_spectrograms(rows, path, columns, row_labels=None, extent=None, size=(3.0, 2.2), dpi=72):
    """A grid of spectrogram images (n_bins, T) in [-1, 1], low frequencies at the bottom:
    ``rows`` is a list of lists, one image per column, ``columns`` the column titles.
    ``extent`` = (t0, t1, f0, f1) labels the axes (seconds, and the rows' unit)."""
    figure = Figure(figsize=(size[0] * len(columns), size[1] * len(rows)))
    FigureCanvasAgg(figure)
    axes = np.asarray(figure.subplots(len(rows), len(columns), squeeze=False))
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            ax = axes[r, c]
            ax.imshow(np.asarray(image), origin="lower", aspect="auto", vmin=-1, vmax=1, cmap="magma",
                      extent=extent)
            if r == 0:
                ax.set_title(columns[c], fontsize=9)
            if c == 0 and row_labels:
                ax.set_ylabel(row_labels[r], fontsize=8)
            if r < len(rows) - 1:
                ax.set_xticklabels([])
            ax.tick_params(labelsize=7)
    figure.tight_layout()
    atomic_save(path, lambda f: figure.savefig(f, format="png", dpi=dpi))
