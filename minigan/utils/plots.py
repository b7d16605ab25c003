"""Loss curves of a training run, and other plots of the examples."""
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


def save_curves(panels, path, size=(4.2, 3.8)):
    """Line plots side by side, one per panel, saved as a PNG at ``path``.

    Each panel is a dict: ``lines``, a list of (x, y, style, label) with a matplotlib
    format string as the style (``"k--"``, ``"C2o"``); and optionally ``title``,
    ``xlabel``, ``log_y`` (a logarithmic y axis) and ``ylim`` (lo, hi).
    """
    figure = Figure(figsize=(size[0] * len(panels), size[1]))
    FigureCanvasAgg(figure)  # Agg without pyplot: no global backend switch, no figure leak
    for axes, panel in zip(np.atleast_1d(figure.subplots(1, len(panels))), panels):
        for x, y, style, label in panel["lines"]:
            axes.plot(x, y, style, label=label)
        if panel.get("log_y"):
            axes.set_yscale("log")
        if "ylim" in panel:
            axes.set_ylim(*panel["ylim"])
        axes.set_title(panel.get("title", ""))
        axes.set_xlabel(panel.get("xlabel", ""))
        axes.legend(fontsize=7)
        axes.grid(alpha=0.3)
    atomic_save(path, lambda f: figure.savefig(f, format="png", dpi=80, bbox_inches="tight"))


def save_scatters(panels, path, size=(3.6, 3.4)):
    """Scatter plots side by side, one per panel, saved as a PNG at ``path``.

    Each panel is a dict: ``groups``, a list of (points (N, 2), colour, label), drawn in
    order with small translucent markers; and optionally ``title``.
    """
    figure = Figure(figsize=(size[0] * len(panels), size[1]))
    FigureCanvasAgg(figure)  # Agg without pyplot: no global backend switch, no figure leak
    for axes, panel in zip(np.atleast_1d(figure.subplots(1, len(panels))), panels):
        for points, colour, label in panel["groups"]:
            points = np.asarray(to_numpy(points), dtype=np.float64)
            axes.scatter(points[:, 0], points[:, 1], s=4, alpha=0.5, color=colour, label=label, linewidths=0)
        axes.set_title(panel.get("title", ""), fontsize=9)
        axes.set_xticks([])
        axes.set_yticks([])
        axes.legend(fontsize=7, markerscale=3)
    atomic_save(path, lambda f: figure.savefig(f, format="png", dpi=80, bbox_inches="tight"))
