"""The CPU helpers under the ops: work split over threads, and tune_cpu's process-wide settings,
which ``import minigan`` alone never makes."""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from minigan import backend

ROOT = pathlib.Path(__file__).resolve().parents[1]


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
    """What ``code`` prints, run in a new Python without this one's tuning variables."""
    environ = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_THREAD_TIMEOUT", "MINIGAN_HOST_CACHE")}
    out = subprocess.run([sys.executable, "-c", code], env={**environ, **env}, capture_output=True,
                         text=True, check=True, cwd=ROOT)
    return out.stdout


_IMPORT_NUMPY_FIRST = """
import numpy as np
a = np.random.default_rng(0).standard_normal((300, 300))
before = a @ a                      # OpenBLAS's threads are running
import minigan.backend as b
lib = b.tuning._numpy_openblas()
print(b.openblas_idle_threads_sleep(), lib.openblas_thread_timeout() if lib is not None else -1,
      bool(np.array_equal(a @ a, before)))
"""


def test_openblas_threads_sleep_at_once_even_when_numpy_was_imported_first():
    in_force, timeout, same_product = _in_fresh_python(_IMPORT_NUMPY_FIRST).split()
    if in_force == "False":
        pytest.skip("numpy's BLAS is not OpenBLAS with its own threads")
    assert (timeout, same_product) == ("4", "True")


def test_openblas_thread_timeout_set_by_the_user_is_kept():
    in_force, timeout, same_product = _in_fresh_python(_IMPORT_NUMPY_FIRST, OPENBLAS_THREAD_TIMEOUT="10").split()
    assert in_force == "False" and same_product == "True"
    assert timeout in ("10", "-1")


# What a process looks like after ``import minigan`` (and then ``tune_cpu()`` when asked): the
# environment it changed, what tune_cpu recorded, numpy's OpenBLAS thread timeout, and whether
# glibc still serves a 64 MB block with its own mmap (it does unless told to keep freed memory).
_PROCESS_AFTER_IMPORT = """
import ctypes, json, os, platform
import numpy as np
from ctypes import c_size_t

class Mallinfo2(ctypes.Structure):  # glibc's malloc counters; hblkhd: bytes in mmap'ed blocks
    _fields_ = [(name, c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                              "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

environ = dict(os.environ)
import minigan
from minigan.backend import tuning
if TUNE:
    minigan.backend.tune_cpu()
lib = tuning._numpy_openblas()
big = np.ones(2 ** 23)
mapped = None
if platform.libc_ver()[0] == "glibc" and hasattr(ctypes.CDLL("libc.so.6"), "mallinfo2"):
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = Mallinfo2
    mapped = libc.mallinfo2().hblkhd >= big.nbytes
print(json.dumps({
    "environ_changes": {k: os.environ.get(k) for k in set(environ) | set(os.environ)
                        if environ.get(k) != os.environ.get(k)},
    "applied": tuning.applied,
    "openblas_timeout": lib.openblas_thread_timeout() if hasattr(lib, "openblas_thread_timeout") else None,
    "big_block_mapped": mapped}))
"""


def _process_after_import(tune):
    return json.loads(_in_fresh_python(_PROCESS_AFTER_IMPORT.replace("TUNE", str(tune))))


def test_import_minigan_leaves_the_process_as_it_was():
    after = _process_after_import(tune=False)
    assert after["environ_changes"] == {}
    assert after["applied"] is None
    assert after["openblas_timeout"] in (0, None)  # OpenBLAS's own default, or another BLAS
    assert after["big_block_mapped"] in (True, None)  # glibc's allocator as it was


def test_tune_cpu_keeps_freed_memory_and_lets_openblas_threads_sleep():
    after = _process_after_import(tune=True)
    applied = after["applied"]
    assert set(applied) == {"keep_freed_host_memory", "openblas_idle_threads_sleep"}
    if applied["keep_freed_host_memory"]:
        assert after["big_block_mapped"] is False
    if applied["openblas_idle_threads_sleep"]:
        assert after["environ_changes"] == {"OPENBLAS_THREAD_TIMEOUT": "4"}
        assert after["openblas_timeout"] == 4
    else:
        assert after["environ_changes"] == {}
