"""Shared test setup: the ``slow`` and ``gpu`` markers and hypothesis settings.

``pytest -m slow`` runs the heavy cases; ``gpu`` tests run only where CuPy sees a
GPU. Hypothesis never times an example out (``deadline=None``): the first call
of an op pays for imports and caches, which is not a failure.
"""
import pytest
from hypothesis import settings

from minigan.backend import cuda_available

settings.register_profile("minigan", deadline=None)
settings.load_profile("minigan")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: heavy cases, left out of the default run (run with -m slow)")
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU with CuPy; skipped without one")


def pytest_collection_modifyitems(config, items):
    if cuda_available():
        return
    skip = pytest.mark.skip(reason="no CUDA GPU (CuPy cannot see one)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
