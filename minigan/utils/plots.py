"""Loss curves of a training run."""
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .common import atomic_save, to_numpy


def save_losses(history, path, title=None, smooth=None):
    """Plot each loss in ``history`` ({name: [value per step]}) against its step; save a PNG.

    GAN losses are noisy, so each curve is drawn faintly and a moving average of
    ``smooth`` steps is drawn over it in the same color. ``smooth=None`` picks about
    1/50 of the run; ``smooth=1`` draws the raw curves only. The x axis is the index
    in each list, so a loss logged every step and one logged every 5th step have
    different x scales: log them at the same rate, or in separate plots.
    """
    figure = Figure(figsize=(7, 4))
    FigureCanvasAgg(figure)  # Agg without pyplot: no global backend switch, no figure leak
    axes = figure.add_subplot()
    for name, values in history.items():
        values = np.array([to_numpy(v).item() for v in values], dtype=np.float64)
        steps = np.arange(len(values))
        window = smooth if smooth is not None else max(1, len(values) // 50)
        if 1 < window <= len(values):
            raw, = axes.plot(steps, values, alpha=0.25, linewidth=0.8)
            # A trailing average: the point at step t summarises steps t-window+1 .. t.
            averaged = np.convolve(values, np.ones(window) / window, mode="valid")
            axes.plot(steps[window - 1:], averaged, color=raw.get_color(),
                      label=f"{name} (mean of {window})")
        else:
            axes.plot(steps, values, label=name)
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    if history:
        axes.legend()
    if title:
        axes.set_title(title)
    axes.grid(alpha=0.3)
    atomic_save(path, lambda f: figure.savefig(f, format="png", dpi=100, bbox_inches="tight"))
