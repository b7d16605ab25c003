"""The CPU helpers under the ops: work split over threads, and the allocator setting."""
import numpy as np
import pytest

from minigan import backend


@pytest.mark.parametrize("n, size", [(1, 2 ** 20), (7, 2 ** 20), (64, 2 ** 20), (64, 100)])
def test_over_batch_covers_every_sample_once(n, size):
    hits = np.zeros(n, dtype=int)

    def work(a, b):
        hits[a:b] += 1

    backend.over_batch(n, work, size=size)
    np.testing.assert_array_equal(hits, np.ones(n, dtype=int))


@pytest.mark.parametrize("n", [1, 3, 64])
def test_batch_sum_equals_the_sum_over_the_whole_batch(n):
    x = np.random.default_rng(0).standard_normal((n, 5, 300))
    total = backend.batch_sum(n, lambda a, b: x[a:b].sum(axis=(0, 2)), size=x.size)
    np.testing.assert_allclose(total, x.sum(axis=(0, 2)), rtol=1e-12)


def test_host_memory_setting_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("MINIGAN_HOST_CACHE", "0")
    assert backend.keep_freed_host_memory() is False
