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


def _in_fresh_python(code, **env):
    import os
    import subprocess
    import sys
    environ = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    out = subprocess.run([sys.executable, "-c", code], env={**environ, **env}, capture_output=True,
                         text=True, check=True)
    return out.stdout.split()


_IMPORT_NUMPY_FIRST = """
import numpy as np
a = np.random.default_rng(0).standard_normal((300, 300))
before = a @ a                      # OpenBLAS's threads are running
import minigan.backend as b
lib = b._numpy_openblas()
print(b.openblas_idle_threads_sleep(), lib.openblas_thread_timeout() if lib is not None else -1,
      bool(np.array_equal(a @ a, before)))
"""


def test_openblas_threads_sleep_at_once_even_when_numpy_was_imported_first():
    in_force, timeout, same_product = _in_fresh_python(_IMPORT_NUMPY_FIRST)
    if in_force == "False":
        pytest.skip("numpy's BLAS is not OpenBLAS with its own threads")
    assert (timeout, same_product) == ("4", "True")


def test_openblas_thread_timeout_set_by_the_user_is_kept():
    in_force, timeout, same_product = _in_fresh_python(_IMPORT_NUMPY_FIRST, OPENBLAS_THREAD_TIMEOUT="10")
    assert in_force == "False" and same_product == "True"
    assert timeout in ("10", "-1")
