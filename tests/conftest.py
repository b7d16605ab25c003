"""Shared test setup: the ``slow`` and ``gpu`` markers and hypothesis settings.

``pytest -m slow`` runs the heavy cases; ``gpu`` tests run only where CuPy sees a
GPU. Hypothesis never times an example out (``deadline=None``): the first call
of an op pays for imports and caches, which is not a failure.

``MINIGAN_FAKE_CUPY=1`` makes ``tests/fake_cupy.py`` the ``cupy`` of the whole
run (the ``fake_cuda`` fixture does it for one test): how the kernel tests run
on "cuda" arrays under Triton's interpreter. The ``gpu`` tests still skip.
"""
import os
import sys

import pytest
from hypothesis import settings

from minigan.backend import cuda_available

settings.register_profile("minigan", deadline=None)
settings.load_profile("minigan")


FAKE_CUPY = os.environ.get("MINIGAN_FAKE_CUPY") == "1"


def _install_fake_cupy(setitem, setattr):
    """Make ``fake_cupy`` minigan's CuPy, through ``setitem``/``setattr`` (monkeypatch's, or for good)."""
    import fake_cupy

    from minigan import backend
    setitem(sys.modules, "cupy", fake_cupy.cupy)
    setitem(sys.modules, "cupyx", fake_cupy.cupyx)
    setattr(backend.devices, "cp", fake_cupy.cupy)
    setattr(backend.rng, "_generators", {k: v for k, v in backend.rng._generators.items() if k != "cuda"})
    return fake_cupy.cupy


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: heavy cases, left out of the default run (run with -m slow)")
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU with CuPy; skipped without one")
    if FAKE_CUPY:
        _install_fake_cupy(dict.__setitem__, setattr)


def pytest_collection_modifyitems(config, items):
    if cuda_available() and not FAKE_CUPY:
        return
    skip = pytest.mark.skip(reason="no CUDA GPU (CuPy cannot see one)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def fake_cuda(monkeypatch):
    """minigan's "cuda" device on the CPU: CuPy replaced by ``fake_cupy`` (NumPy arithmetic under
    CuPy's rules, so a host array reaching a device op raises as it would on a GPU).

    The Triton kernels are off (``MINIGAN_KERNELS=0``): this tests the CuPy array path. Yields
    the stand-in ``cupy`` module.
    """
    monkeypatch.setenv("MINIGAN_KERNELS", "0")
    yield _install_fake_cupy(monkeypatch.setitem, monkeypatch.setattr)
