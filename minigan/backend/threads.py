"""CPU threads for NumPy work: a batch split between the cores."""
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

_pool = None  # (process id, thread count, ThreadPoolExecutor), made on first use


def cpu_threads():
    """How many threads the CPU ops use: as many as BLAS (``OPENBLAS_NUM_THREADS``,
    ``OMP_NUM_THREADS``), else one per core this process may run on."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(var, "").isdigit() and int(os.environ[var]) > 0:
            return int(os.environ[var])
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def over_batch(n, work, xp=np, size=None):
    """Run ``work(start, stop)`` on slices of range(n) that cover it, one per CPU thread.

    A matrix product runs on every core (BLAS), but a NumPy copy or add runs on
    one. NumPy lets go of Python's lock inside its loops, so threads given
    disjoint slices of the batch run them on every core too. ``work`` must only
    write to its own slice. On CuPy (``xp``), or when the arrays hold fewer than
    ``size`` < 2**16 elements (a thread's hand-off costs more than it saves), it
    is one call, ``work(0, n)``.

    These threads share the cores with BLAS's, whose idle threads ``tune_cpu()``
    tells to sleep at once (``openblas_idle_threads_sleep``).
    """
    global _pool
    if xp is not np or (size is not None and size < 2 ** 16) or n <= 1:
        work(0, n)
        return
    threads = min(cpu_threads(), n)
    if threads <= 1:
        work(0, n)
        return
    if _pool is None or _pool[:2] != (os.getpid(), threads):  # a forked child needs its own threads
        if _pool is not None and _pool[0] == os.getpid():
            _pool[2].shutdown(wait=False)
        _pool = (os.getpid(), threads, ThreadPoolExecutor(threads, thread_name_prefix="minigan"))
    bounds = [n * i // threads for i in range(threads + 1)]
    for done in [_pool[2].submit(work, a, b) for a, b in zip(bounds, bounds[1:])]:
        done.result()


def batch_sum(n, part, xp=np, size=None):
    """``part(0, n)``, computed as the sum of ``part(a, b)`` over slices of the batch
    run on the CPU threads (``over_batch``): a reduction over the batch, in parallel.
    ``part`` returns an array (a partial sum) and must not write to shared memory."""
    partials = {}

    def work(a, b):
        partials[a] = part(a, b)

    over_batch(n, work, xp, size)
    total = None
    for a in sorted(partials):
        total = partials[a] if total is None else total + partials[a]
    return total
