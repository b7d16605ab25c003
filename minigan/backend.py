"""The array module behind every Tensor: NumPy on the CPU, CuPy on the GPU.

A device is named as in PyTorch: ``"cpu"`` or ``"cuda"``. Every op looks at its
inputs once, finds the one array module they share, and refuses to mix devices.
Random numbers come from one seeded generator per device (``manual_seed``), so a
run is reproducible and its RNG state can be checkpointed.
"""
import os

import numpy as np

try:  # CuPy is optional: without it only the CPU exists.
    import cupy as cp
except Exception:  # ImportError, or a CuPy without a usable CUDA driver
    cp = None


def cuda_available():
    """True when CuPy is installed and can see a GPU."""
    if cp is None:
        return False
    try:
        return cp.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def normalize_device(device):
    """'cpu' | 'cuda' | 'cuda:0' -> 'cpu' | 'cuda'; anything else is an error."""
    if device is None:
        return "cpu"
    name = str(device).split(":")[0]
    if name not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}: expected 'cpu' or 'cuda'")
    if name == "cuda" and not cuda_available():
        raise RuntimeError("device 'cuda' was asked for, but CuPy or a GPU is not available")
    return name


def xp_for(device):
    """The array module of a device."""
    return cp if normalize_device(device) == "cuda" else np


def device_of(array):
    """'cuda' for a CuPy array, 'cpu' for anything else."""
    if cp is not None and isinstance(array, cp.ndarray):
        return "cuda"
    return "cpu"


def get_array_module(*arrays, op="op"):
    """The one array module shared by ``arrays``; mixing devices raises.

    Python scalars and NumPy scalars go with either device.
    """
    on_cpu = on_cuda = False  # (every op calls this: a plain loop, no set of devices)
    for a in arrays:
        if cp is not None and isinstance(a, cp.ndarray):
            on_cuda = True
        elif isinstance(a, np.ndarray):
            on_cpu = True
        elif hasattr(a, "shape") and not np.isscalar(a):
            on_cpu = True
    if on_cpu and on_cuda:
        raise RuntimeError(f"{op}: inputs are on different devices (cpu and cuda); "
                           "move them to one device with .to(device)")
    return cp if on_cuda else np


def to_device(array, device):
    """Copy ``array`` to ``device`` (a no-op when it is already there)."""
    device = normalize_device(device)
    if device_of(array) == device:
        return array
    if device == "cuda":
        return cp.asarray(array)
    return cp.asnumpy(array)


def to_numpy(x):
    """A NumPy array from a NumPy/CuPy array, a minigan Tensor, a torch tensor or anything array-like.

    Duck-typed, so the bottom layer imports neither the engine nor torch: a Tensor
    is an object with a ``.data`` array, a torch tensor one whose ``.data`` is
    another torch tensor and that has ``detach``.
    """
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, np.generic):  # NumPy scalars have a ``.data`` memoryview: not a Tensor
        return np.asarray(x)
    if hasattr(x, "__cuda_array_interface__") and hasattr(x, "get"):  # CuPy: copy to the host
        return x.get()
    data = getattr(x, "data", None)
    if data is not None and not isinstance(data, type(x)):
        return to_numpy(data)
    if data is not None and hasattr(x, "detach"):  # torch; force: its lazy ZeroTensor gradients too
        return x.detach().cpu().numpy(force=True)
    return np.asarray(x)


# ---------------------------------------------------------------- random numbers

_generators = {}


class DeviceGenerator:
    """CuPy's random numbers, with a state that a checkpoint can hold.

    CuPy's ``RandomState`` (cuRAND underneath) cannot say where in its stream it
    is, so a run resumed from a checkpoint would draw other numbers than the run
    it continues. This one reseeds before every draw: draw k comes from the seed
    derived from (seed, k), so ``state`` is just those two integers. It reseeds
    cuRAND's Philox generator, which is counter-based: a new seed sets no state
    up on the device. Draws take CuPy's methods and arguments (``dtype=`` too).
    """

    def __init__(self, seed=None):
        self.seed = int(np.random.SeedSequence(seed).generate_state(1, np.uint64)[0]) if seed is None else int(seed)
        self.draws = 0
        self._random = cp.random.RandomState(method=_philox())

    @property
    def state(self):
        return {"seed": self.seed, "draws": self.draws}

    @state.setter
    def state(self, state):
        self.seed, self.draws = int(state["seed"]), int(state["draws"])

    def __getattr__(self, name):
        draw = getattr(self._random, name)

        def reseeded(*args, **kwargs):
            seed = np.random.SeedSequence((self.seed, self.draws)).generate_state(1, np.uint64)[0]
            self._random.seed(int(seed))
            self.draws += 1
            return draw(*args, **kwargs)
        return reseeded


def _philox():
    """cuRAND's Philox4x32-10 generator type (None: CuPy's default, where cuRAND is not there)."""
    try:
        from cupy_backends.cuda.libs import curand
    except ImportError:
        return None
    return curand.CURAND_RNG_PSEUDO_PHILOX4_32_10


def manual_seed(seed):
    """Seed the random generators of every device, like ``torch.manual_seed``."""
    seed = int(seed)
    _generators["cpu"] = np.random.Generator(np.random.PCG64(seed))
    if cuda_available():
        _generators["cuda"] = DeviceGenerator(seed)
    return seed


def generator(device="cpu"):
    """The seeded generator of ``device``: a NumPy Generator, or a ``DeviceGenerator`` (CuPy's
    RandomState methods)."""
    device = normalize_device(device)
    if device not in _generators:
        _generators[device] = np.random.Generator(np.random.PCG64()) if device == "cpu" else DeviceGenerator()
    return _generators[device]


def get_rng_state(device="cpu"):
    """The generator's state of ``device`` as a JSON-friendly dict (for checkpoints)."""
    gen = generator(device)
    return gen.bit_generator.state if normalize_device(device) == "cpu" else gen.state


def set_rng_state(state, device="cpu"):
    """Restore a state returned by ``get_rng_state(device)``."""
    gen = generator(device)
    if normalize_device(device) == "cpu":
        gen.bit_generator.state = state
    else:
        gen.state = state


# ---------------------------------------------------------------- kernels

def kernels_enabled(*arrays):
    """Whether the Triton kernels should run for ``arrays`` (the op's inputs; None is skipped).

    On CuPy arrays they are on unless ``MINIGAN_KERNELS=0``; on NumPy arrays they
    run only under Triton's interpreter (``TRITON_INTERPRET=1 MINIGAN_KERNELS=1``).
    They take float16, float32 or float64, one dtype for all; anything else runs
    the NumPy/CuPy op.
    """
    arrays = [a for a in arrays if a is not None]
    flag = os.environ.get("MINIGAN_KERNELS")
    if device_of(arrays[0]) == "cuda":
        on = flag != "0"
    else:
        on = flag == "1" and os.environ.get("TRITON_INTERPRET") == "1"
    dtypes = {np.dtype(a.dtype) for a in arrays}
    return on and len(dtypes) == 1 and dtypes.pop() in (np.float16, np.float32, np.float64)


# ---------------------------------------------------------------- CPU threads

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

    These threads share the cores with BLAS's, whose idle threads minigan tells
    to sleep at once (``openblas_idle_threads_sleep``).
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
        from concurrent.futures import ThreadPoolExecutor
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


# ---------------------------------------------------------------- CPU memory

def keep_freed_host_memory():
    """Let the C allocator keep freed memory for reuse instead of returning it to the system.

    A training step allocates the same large arrays every step (im2col's
    columns are tens of MB). glibc's malloc serves such a block with a fresh
    ``mmap`` and unmaps it on free, so every step the kernel hands out and zeroes
    new pages again, one page fault per 4 KB (``benchmarks/RESULTS.md`` has the
    DCGAN step with and without this). Serving every block from the heap and never
    trimming it is what a caching allocator (CuPy's memory pool, torch's CUDA
    allocator) does: the process keeps its peak memory, and a step reuses it.

    Called when minigan is imported, on Linux with glibc; ``MINIGAN_HOST_CACHE=0``
    leaves the allocator as it is. Returns whether the setting was made.
    """
    import ctypes
    import platform
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
    import ctypes
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
    which is usually before minigan is; so this sets the variable, has OpenBLAS
    read it again and stops its threads, and the next product starts them with
    the new timeout (waking them costs microseconds per product).

    Called when minigan is imported. Does nothing when ``OPENBLAS_THREAD_TIMEOUT``
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


keep_freed_host_memory()
openblas_idle_threads_sleep()
