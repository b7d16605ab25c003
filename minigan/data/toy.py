"""2-D toy distributions, the lecture's test beds for mode collapse.

A GAN that covers all 8 Gaussians of the ring (or all 25 of the grid) has not
collapsed; ``mode_metrics`` counts how many it reached and how many samples
land close to some mode (within 3 standard deviations).
"""
import numpy as np


def ring_modes(n_modes=8, radius=2.0):
    """Centers of ``n_modes`` Gaussians evenly spaced on a circle."""
    angles = 2 * np.pi * np.arange(n_modes) / n_modes
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def grid_modes(side=5, spacing=2.0):
    """Centers of a side x side grid of Gaussians centered on the origin."""
    ticks = (np.arange(side) - (side - 1) / 2) * spacing
    return np.stack(np.meshgrid(ticks, ticks, indexing="ij"), axis=-1).reshape(-1, 2)


def sample_mixture(modes, n, std, rng):
    """``n`` points from an equal-weight mixture of isotropic Gaussians at ``modes``."""
    which = rng.integers(len(modes), size=n)
    return (modes[which] + std * rng.standard_normal((n, 2))).astype(np.float32)


def ring(n, rng, n_modes=8, radius=2.0, std=0.02):
    """The ring of 8 Gaussians (Metz et al., Unrolled GANs: radius 2, std 0.02)."""
    return sample_mixture(ring_modes(n_modes, radius), n, std, rng)


def grid(n, rng, side=5, spacing=2.0, std=0.05):
    """The 5 x 5 grid of Gaussians (as in the WGAN-GP and VEEGAN experiments)."""
    return sample_mixture(grid_modes(side, spacing), n, std, rng)


def swiss_roll(n, rng, noise=0.05):
    """A 2-D swiss roll scaled to about [-2, 2]."""
    t = 1.5 * np.pi * (1 + 2 * rng.random(n))
    points = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / 5.0
    return (points + noise * rng.standard_normal((n, 2))).astype(np.float32)


def moons(n, rng, noise=0.05):
    """Two interleaving half circles, centered."""
    half = n // 2
    a = np.pi * rng.random(half)
    b = np.pi * rng.random(n - half)
    upper = np.stack([np.cos(a), np.sin(a)], axis=1)
    lower = np.stack([1 - np.cos(b), 0.5 - np.sin(b)], axis=1)
    points = np.concatenate([upper, lower]) - np.array([0.5, 0.25])
    return (points + noise * rng.standard_normal((n, 2))).astype(np.float32)


TOY_DATA = {"ring": ring, "grid": grid, "swiss_roll": swiss_roll, "moons": moons}


def mode_metrics(samples, modes, std, min_share=0.01):
    """How well ``samples`` cover a mixture's ``modes``.

    A sample is *high quality* when it lies within 3 std of its nearest mode;
    a mode is *covered* when at least ``min_share`` of all samples are high
    quality samples of that mode.
    """
    samples = np.asarray(samples, dtype=np.float64)
    dist = np.linalg.norm(samples[:, None, :] - modes[None, :, :], axis=-1)
    nearest = dist.argmin(axis=1)
    close = dist[np.arange(len(samples)), nearest] <= 3 * std
    counts = np.bincount(nearest[close], minlength=len(modes))
    return {
        "modes_covered": int((counts >= min_share * len(samples)).sum()),
        "modes_total": int(len(modes)),
        "high_quality_share": float(close.mean()),
        "samples_per_mode": counts.tolist(),
    }
