r"""Is a generator copying its training set? Nearest neighbours of samples (the lecture's check).

A model that memorized its training images can score well on every sample-quality
number (they are real images, after all). The check: for each generated sample, find
its nearest training images, and ask whether samples sit closer to the training set
than new images of the same distribution do.

* **Two spaces.** Euclidean distance between pixels (``nearest_neighbours``), which
  catches copies, and between the evaluation classifier's penultimate-layer
  features (``Classifier.embed``), which also catches a copy that moved a pixel or
  two and groups images by what they show rather than where their ink is.
* **The yardstick.** Held-out real images (the test split) were never trained on:
  their distances to the nearest training image show how close a *novel* image of
  the data distribution typically comes. A memorizing generator's sample->train
  distances fall below the held-out ones; a generator that makes new images has the
  same distribution, or a larger one (samples off the data manifold are far from
  everything).
* **The numbers.** Quantiles (1%, 5%, 25%, 50%) of both distance distributions; the
  share of samples closer to the training set than the 1st percentile of the
  held-out distances (about 0.01 for samples as novel as held-out images, near 1
  for copies; the samples below it are the *flagged* ones); the Kolmogorov-Smirnov
  statistic between the two distributions (max |F_samples - F_held_out|; 0 when
  they match); and the count of exact copies (pixel distance 0).

Pictures: ``nearest.png``, one row per sample (the most-flagged half of the rows, by
pixel distance, then samples in their drawn order): the sample, its k nearest
training images in pixel space, then its k nearest in feature space; and
``nearest_distances.png``, the two distance histograms in each space with the
held-out 1st percentile marked.

Held-out and training images must have the samples' shape and value range; the
classifier resizes all three the same way. Distances are float64; the search is by
|a|^2 - 2 a.b + |b|^2 over chunks of queries, and the k distances returned are
recomputed directly, so a copy is at distance exactly 0.
"""
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..utils.common import atomic_save
from ..utils.images import save_image

QUANTILES = (0.01, 0.05, 0.25, 0.5)


def _flat(x):
    x = np.asarray(x)
    return x.reshape(len(x), -1).astype(np.float64)


def nearest_neighbours(queries, references, k=1, chunk=128):
    """The k nearest ``references`` of every query by Euclidean distance, nearest first:
    distances (N, k) float64 and indices (N, k) int64 into ``references``.

    Both are arrays of N and M items of any shape (flattened here), e.g. images
    (N, C, H, W) or features (N, D).
    """
    queries, references = _flat(queries), _flat(references)
    if queries.shape[1] != references.shape[1]:
        raise ValueError(f"nearest_neighbours: queries have {queries.shape[1]} values each, references "
                         f"{references.shape[1]}: compare images of one shape (or features of one size)")
    if not 1 <= k <= len(references):
        raise ValueError(f"nearest_neighbours: k = {k}, but there are {len(references)} references")
    ref_sq = (references ** 2).sum(1)
    distances = np.empty((len(queries), k))
    indices = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), chunk):
        q = queries[start:start + chunk]
        d2 = (q ** 2).sum(1)[:, None] - 2 * q @ references.T + ref_sq[None]
        found = np.argpartition(d2, k - 1, axis=1)[:, :k]
        exact = np.sqrt(((q[:, None, :] - references[found]) ** 2).sum(-1))
        order = np.argsort(exact, axis=1, kind="stable")
        distances[start:start + chunk] = np.take_along_axis(exact, order, 1)
        indices[start:start + chunk] = np.take_along_axis(found, order, 1)
    return distances, indices


def ks_statistic(a, b):
    """The two-sample Kolmogorov-Smirnov statistic, max_x |F_a(x) - F_b(x)| of the empirical CDFs."""
    a, b = np.sort(np.asarray(a, np.float64)), np.sort(np.asarray(b, np.float64))
    points = np.concatenate([a, b])
    f_a = np.searchsorted(a, points, side="right") / len(a)
    f_b = np.searchsorted(b, points, side="right") / len(b)
    return float(np.abs(f_a - f_b).max())


def compare_distances(sample_distances, held_out_distances, quantiles=QUANTILES):
    """The numbers of the check for one space, from each sample's and each held-out image's
    distance to its nearest training image: quantiles of both, the share (and the indices)
    of samples closer than the held-out 1st percentile, the KS statistic, exact copies."""
    s = np.asarray(sample_distances, np.float64)
    h = np.asarray(held_out_distances, np.float64)
    threshold = float(np.quantile(h, 0.01))
    flagged = np.flatnonzero(s < threshold)
    return {"sample_quantiles": {f"{q:g}": float(np.quantile(s, q)) for q in quantiles},
            "held_out_quantiles": {f"{q:g}": float(np.quantile(h, q)) for q in quantiles},
            "held_out_p1": threshold,
            "share_below_held_out_p1": float(len(flagged) / len(s)),
            "flagged": flagged[np.argsort(s[flagged], kind="stable")].tolist(),
            "ks_statistic": ks_statistic(s, h),
            "median_ratio": float(np.median(s) / np.median(h)),
            "exact_copies": int((s == 0).sum())}


def check_memorization(samples, train, held_out, classifier=None, out=None, k=3, rows=8, flagged_kept=20):
    """The whole check: nearest training images of ``samples`` and of ``held_out`` images
    in pixel space, and in ``classifier``'s feature space when one is given. Returns a
    dict for metrics.json (``flagged`` cut to the ``flagged_kept`` closest samples); with
    ``out``, writes ``out/nearest.png`` (``rows`` samples beside their k neighbours in each
    space) and ``out/nearest_distances.png``."""
    samples, train, held_out = (np.asarray(x, np.float32) for x in (samples, train, held_out))
    if samples.shape[1:] != train.shape[1:] or held_out.shape[1:] != train.shape[1:]:
        raise ValueError(f"check_memorization: samples {samples.shape[1:]}, training {train.shape[1:]} and "
                         f"held-out {held_out.shape[1:]} images must have one shape")
    spaces = {"pixel": (samples, train, held_out)}
    if classifier is not None:
        spaces["feature"] = tuple(classifier.embed(x) for x in (samples, train, held_out))
    found, report = {}, {"samples": len(samples), "training_images": len(train), "held_out_images": len(held_out)}
    for space, (s, t, h) in spaces.items():
        s_dist, s_idx = nearest_neighbours(s, t, k)
        h_dist, _ = nearest_neighbours(h, t, 1)
        found[space] = (s_dist, s_idx, h_dist[:, 0])
        numbers = compare_distances(s_dist[:, 0], h_dist[:, 0])
        numbers["flagged"] = numbers["flagged"][:flagged_kept]
        report[space] = numbers
    if out is not None:
        save_nearest_grid(samples, train, found, os.path.join(out, "nearest.png"), rows)
        save_distance_histograms(found, report, os.path.join(out, "nearest_distances.png"))
    return report


def save_nearest_grid(samples, train, found, path, rows=8):
    """Rows: a sample, then its nearest training images in each space of ``found``
    ({space: (distances, indices, held-out distances)}), a blank tile between groups.
    The first half of the rows are the samples nearest to the training set in pixels."""
    pixel_distances = found["pixel"][0][:, 0]
    closest = list(np.argsort(pixel_distances, kind="stable")[:rows // 2])
    shown = closest + [i for i in range(len(samples)) if i not in closest][:rows - len(closest)]
    blank = np.zeros_like(samples[:1])  # mid-grey in [-1, 1]
    tiles = []
    for i in shown:
        tiles.append(samples[i:i + 1])
        for _, indices, _ in found.values():
            tiles += [blank, train[indices[i]]]
    row_length = 1 + sum(1 + found[space][1].shape[1] for space in found)
    save_image(np.concatenate(tiles), path, nrow=row_length, value_range=(-1, 1), pad_value=1.0)


def save_distance_histograms(found, report, path):
    """Per space, histograms of the sample->train and the held-out->train nearest distances."""
    figure = Figure(figsize=(5 * len(found), 3.5))
    FigureCanvasAgg(figure)  # Agg without pyplot: no global backend switch, no figure leak
    for axes, (space, (s_dist, _, h_dist)) in zip(np.atleast_1d(figure.subplots(1, len(found))), found.items()):
        s, numbers = s_dist[:, 0], report[space]
        bins = np.linspace(0, max(s.max(), h_dist.max()) * 1.02 + 1e-12, 40)
        axes.hist(s, bins=bins, density=True, alpha=0.5, label=f"samples ({len(s)})")
        axes.hist(h_dist, bins=bins, density=True, alpha=0.5, label=f"held-out real ({len(h_dist)})")
        axes.axvline(numbers["held_out_p1"], color="k", linestyle=":",
                     label=f"held-out 1st percentile: {100 * numbers['share_below_held_out_p1']:.1f}% of samples below")
        axes.set_title(f"{space} space")
        axes.set_xlabel("Euclidean distance to the nearest training image")
        axes.legend(fontsize=7)
    atomic_save(path, lambda f: figure.savefig(f, format="png", dpi=80, bbox_inches="tight"))
