"""Offline data: toy mixtures and their mode metrics, digits, the DataLoader."""
import numpy as np
import pytest

from minigan.data import DataLoader, grid_modes, load_digits, mode_metrics, ring, ring_modes


def test_ring_samples_lie_on_their_modes():
    rng = np.random.default_rng(0)
    x = ring(4000, rng)
    m = mode_metrics(x, ring_modes(), std=0.02)
    # 3 sigma of a 2-D Gaussian holds 1 - exp(-9/2) = 98.9% of its mass
    assert m["modes_covered"] == 8
    assert abs(m["high_quality_share"] - (1 - np.exp(-4.5))) < 0.01
    np.testing.assert_allclose(np.linalg.norm(ring_modes(), axis=1), 2.0)


def test_collapsed_samples_cover_one_mode():
    x = np.repeat(ring_modes()[[3]], 500, axis=0)
    m = mode_metrics(x, ring_modes(), std=0.02)
    assert m["modes_covered"] == 1 and m["samples_per_mode"][3] == 500


def test_far_samples_are_not_high_quality():
    m = mode_metrics(np.zeros((100, 2)), ring_modes(), std=0.02)
    assert m["high_quality_share"] == 0.0 and m["modes_covered"] == 0


def test_grid_has_25_distinct_modes_centered():
    g = grid_modes()
    assert g.shape == (25, 2) and len({tuple(p) for p in g}) == 25
    np.testing.assert_allclose(g.mean(axis=0), 0.0, atol=1e-12)


def test_digits_are_scaled_to_unit_range_with_a_fixed_split():
    x, y = load_digits()
    assert x.shape == (1797, 1, 8, 8) and x.dtype == np.float32
    assert x.min() == -1.0 and x.max() == 1.0 and set(y.tolist()) == set(range(10))
    train, _ = load_digits(split="train")
    test, _ = load_digits(split="test")
    assert len(train) + len(test) == 1797
    again, _ = load_digits(split="test")
    np.testing.assert_array_equal(test, again)
    assert load_digits(size=16)[0].shape == (1797, 1, 16, 16)


def test_loader_batches_cover_each_sample_once_per_epoch():
    x = np.arange(10, dtype=np.float32)[:, None]
    y = np.arange(10)
    loader = DataLoader(x, y, batch_size=3, drop_last=False, seed=1)
    seen = np.concatenate([bx.numpy()[:, 0] for bx, by in loader])
    assert sorted(seen.tolist()) == list(range(10)) and len(loader) == 4
    first = [by.numpy().tolist() for _, by in DataLoader(x, y, batch_size=3, seed=1)]
    again = [by.numpy().tolist() for _, by in DataLoader(x, y, batch_size=3, seed=1)]
    assert first == again and len(first) == 3  # drop_last


def test_loader_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="different lengths"):
        DataLoader(np.zeros(3), np.zeros(4))
