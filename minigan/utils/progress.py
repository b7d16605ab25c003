"""A progress bar for training loops: tqdm when it is installed, a plain loop otherwise."""
import os
import sys

try:
    from tqdm import tqdm
except ImportError:
    tqdm = None


def progress(iterable_or_total, desc=None, disable=None, total=None):
    """Wrap an iterable (or ``range(n)`` for an int ``n``) in a progress bar on stderr.

    The bar is shown unless ``disable=True`` or, with ``disable=None``, the environment
    sets ``MINIGAN_PROGRESS=0`` (for CI logs). The result iterates like its input and
    has ``set_postfix(**values)``, ``update(n)`` and ``close()`` as in tqdm.
    """
    if isinstance(iterable_or_total, int):
        iterable_or_total = range(iterable_or_total)
    if disable is None:
        disable = os.environ.get("MINIGAN_PROGRESS") == "0"
    if tqdm is None:
        return _PlainProgress(iterable_or_total)
    return tqdm(iterable_or_total, desc=desc, total=total, disable=disable, file=sys.stderr,
                dynamic_ncols=True)


class _PlainProgress:
    """The part of tqdm's interface a training loop uses, doing nothing but iterate."""

    def __init__(self, iterable):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable)

    def __len__(self):
        return len(self.iterable)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def set_postfix(self, ordered_dict=None, refresh=True, **values):
        pass

    def set_description(self, desc=None, refresh=True):
        pass

    def update(self, n=1):
        pass

    def close(self):
        pass
