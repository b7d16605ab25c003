"""``tune_cpu()``: two process-wide settings that make a CPU training step faster.

They change the whole process (the C allocator, numpy's OpenBLAS threads), torch
in it included, so ``import minigan`` does not make them: a program that wants
them calls ``minigan.backend.tune_cpu()`` when it starts, as the examples and the
benchmarks do.
"""
import ctypes
import os
import platform

applied = None  # what tune_cpu() set, once it has run: {setting: whether it is in force}


def tune_cpu():
    """Keep freed host memory for reuse and let OpenBLAS's idle threads sleep at once.

    Both speed up minigan's CPU step (``benchmarks/RESULTS.md`` has the numbers):
    ``keep_freed_host_memory`` and ``openblas_idle_threads_sleep`` say how and
    when each applies. Returns ``{setting: whether it is in force}``, kept in
    ``minigan.backend.tuning.applied``. Calling it again does no harm.
    """
    global applied
    applied = {"keep_freed_host_memory": keep_freed_host_memory(),
               "openblas_idle_threads_sleep": openblas_idle_threads_sleep()}
    return applied


def keep_freed_host_memory():
    """Let the C allocator keep freed memory for reuse instead of returning it to the system.

    A training step allocates the same large arrays every step (im2col's
    columns are tens of MB). glibc's malloc serves such a block with a fresh
    ``mmap`` and unmaps it on free, so every step the kernel hands out and zeroes
    new pages again, one page fault per 4 KB (``benchmarks/RESULTS.md`` has the
    DCGAN step with and without this). Serving every block from the heap and never
    trimming it is what a caching allocator (CuPy's memory pool, torch's CUDA
    allocator) does: the process keeps its peak memory, and a step reuses it.

    Part of ``tune_cpu()``; on Linux with glibc only. ``MINIGAN_HOST_CACHE=0``
    leaves the allocator as it is. Returns whether the setting was made.
    """
    if os.environ.get("MINIGAN_HOST_CACHE") == "0" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_max = -1, -4  # from <malloc.h>
    return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 2 ** 31 - 1))


def _numpy_openblas():
    """NumPy's OpenBLAS as a ctypes library, or None (another BLAS, or not Linux)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.rsplit("/", 1)[-1]}
    except OSError:
        return None
    for path in sorted(paths, key=lambda p: "numpy" not in p):  # numpy's own copy first
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def openblas_idle_threads_sleep(timeout=4):
    """Let OpenBLAS's idle threads sleep as soon as a product ends.

    By default they spin for 2^28 cycles (~0.1 s) waiting for the next product,
    and on the CPU every product is followed by NumPy copies and adds that need
    those cores (a col2im right after a product ran about half again as long
    as after a pause). ``OPENBLAS_THREAD_TIMEOUT`` (2^timeout
    cycles) sets how long they spin, but OpenBLAS reads it when it is loaded,
    which is when numpy is imported; so this sets the variable, has OpenBLAS
    read it again and stops its threads, and the next product starts them with
    the new timeout (waking them costs microseconds per product).

    Part of ``tune_cpu()``. Does nothing when ``OPENBLAS_THREAD_TIMEOUT``
    is already set (the user's choice), or for a BLAS other than OpenBLAS with
    its own threads (pthreads). Returns whether the setting is in force.
    """
    if "OPENBLAS_THREAD_TIMEOUT" in os.environ and os.environ["OPENBLAS_THREAD_TIMEOUT"] != str(timeout):
        return False
    lib = _numpy_openblas()
    names = ("openblas_get_parallel", "scipy_openblas_get_parallel64_", "scipy_openblas_get_parallel")
    get_parallel = next((getattr(lib, n) for n in names if lib is not None and hasattr(lib, n)), None)
    needed = ("openblas_thread_timeout", "openblas_read_env", "blas_thread_shutdown_")
    if get_parallel is None or not all(hasattr(lib, n) for n in needed) or get_parallel() != 1:
        return False  # 1: OpenBLAS's own thread server; 0 single-threaded, 2 OpenMP
    if lib.openblas_thread_timeout() != timeout:
        os.environ["OPENBLAS_THREAD_TIMEOUT"] = str(timeout)
        lib.openblas_read_env()
        lib.blas_thread_shutdown_()
    return lib.openblas_thread_timeout() == timeout
