"""Where a kernel meets an array: the one place that knows about torch, streams and the interpreter.

Triton launches kernels on torch tensors; minigan holds NumPy or CuPy arrays.
The bridge wraps each array as a torch tensor *without copying* and launches:

    CuPy array   -> torch CUDA tensor via DLPack, launched on CuPy's current stream
                    (Triton asks torch for the stream; torch.cuda.ExternalStream
                    makes CuPy's stream torch's current one for the launch)
    NumPy array  -> torch CPU tensor via torch.from_numpy, for Triton's interpreter
                    (TRITON_INTERPRET=1), which runs the kernel in NumPy

``launch`` is the only function the kernel files call. ``recording()`` catches
launches instead of running them, so the tests can compile, for an sm_90 GPU
without one, exactly the kernels and block sizes the launchers choose.
"""
import contextlib
import warnings

import numpy as np

_FLOAT = {np.dtype(np.float16): "fp16", np.dtype(np.float32): "fp32", np.dtype(np.float64): "fp64"}


def xp_of(array):
    """numpy for a NumPy array, cupy for a CuPy one (without importing minigan)."""
    return np if isinstance(array, np.ndarray) else __import__("cupy")


def contiguous(array):
    """``array`` itself when C-contiguous, else a C-contiguous copy (0-d stays 0-d)."""
    return array if array.flags.c_contiguous else array.copy()


def _torch():
    try:
        import torch
    except ImportError as error:
        raise RuntimeError("minigan's Triton kernels launch through torch, which is not installed; "
                           "install torch, or set MINIGAN_KERNELS=0 to use the NumPy/CuPy ops") from error
    return torch


def as_torch(array):
    """The same memory as a torch tensor: CPU for NumPy (interpreter), CUDA for CuPy.

    Any strides but negative ones (see ``nonnegative_strides``); a broadcast
    (zero-stride) input stays one, read-only memory too, since kernels only read their inputs.
    """
    torch = _torch()
    if any(s < 0 for s in array.strides):
        raise ValueError(f"kernels.bridge: an array with negative strides {array.strides}; "
                         "pass it through nonnegative_strides() first")
    if isinstance(array, np.ndarray):
        with warnings.catch_warnings():  # torch warns that read-only memory could be written
            warnings.simplefilter("ignore", UserWarning)
            return torch.from_numpy(array)
    return torch.from_dlpack(array)


def nonnegative_strides(array):
    """``array``, or a C-contiguous copy where a stride is negative (a flipped view)."""
    return array.copy() if any(s < 0 for s in array.strides) else array


_streams = {}  # (device, CuPy stream pointer) -> torch.cuda.ExternalStream


@contextlib.contextmanager
def _on_cupy_stream(array):
    """Make CuPy's current device and stream torch's, so Triton launches there."""
    import cupy
    torch = _torch()
    device = array.device.id
    ptr = cupy.cuda.get_current_stream().ptr
    if ptr == 0:  # CuPy's legacy default stream is torch's default stream too
        with torch.cuda.device(device):
            yield
        return
    key = (device, ptr)
    if key not in _streams:
        _streams[key] = torch.cuda.ExternalStream(ptr, device=torch.device("cuda", device))
    with torch.cuda.device(device), torch.cuda.stream(_streams[key]):
        yield


# ---------------------------------------------------------------- launching


class _Recorder:
    """Collects (kernel, argument types, constexprs, options) instead of launching."""

    def __init__(self):
        self.launches = []


_recorder = None


@contextlib.contextmanager
def recording():
    """Launches inside this block are recorded, not run; yields the list they go to."""
    global _recorder
    previous, _recorder = _recorder, _Recorder()
    try:
        yield _recorder.launches
    finally:
        _recorder = previous


def _type_of(value):
    """Triton's signature type of one launch argument (for compiling without a launch)."""
    if hasattr(value, "dtype") and hasattr(value, "shape"):
        return "*" + _FLOAT[np.dtype(value.dtype)]
    if isinstance(value, (bool, np.bool_)):
        return "i1"
    if isinstance(value, (int, np.integer)):
        return "i32" if -2**31 <= int(value) < 2**31 else "i64"
    if isinstance(value, float):
        return "fp32"
    raise TypeError(f"kernels.bridge: cannot type launch argument {value!r}")


def launch(kernel, grid, args, constexprs, num_warps=4, num_stages=None):
    """Run ``kernel[grid](*args, **constexprs)`` on the device of the array arguments.

    ``args`` is a dict name -> value in the kernel's parameter order: arrays
    (NumPy or CuPy, all on one device), ints and floats; ``constexprs`` are the
    compile-time parameters (block sizes, flags, the slope of an activation).
    """
    options = {"num_warps": num_warps}
    if num_stages is not None:
        options["num_stages"] = num_stages
    if _recorder is not None:
        signature = {name: _type_of(v) for name, v in args.items()}
        _recorder.launches.append((kernel, signature, dict(constexprs), options))
        return
    grid = tuple(int(g) for g in grid)
    if min(grid) == 0:
        return
    first = next(v for v in args.values() if hasattr(v, "shape"))
    if isinstance(first, np.ndarray):
        if type(kernel).__name__ != "InterpretedFunction":
            raise RuntimeError(f"{kernel.fn.__name__}: NumPy arrays run only under Triton's interpreter, "
                               "and these kernels were compiled for the GPU: set TRITON_INTERPRET=1 before "
                               "triton is imported (or MINIGAN_KERNELS=0)")
        kernel[grid](*[as_torch(v) if hasattr(v, "shape") else v for v in args.values()],
                     **constexprs, **options)
        return
    with _on_cupy_stream(first):  # wrapped on the launch stream, DLPack adds no synchronization
        kernel[grid](*[as_torch(v) if hasattr(v, "shape") else v for v in args.values()],
                     **constexprs, **options)


def next_power_of_2(n):
    return 1 << max(int(n) - 1, 0).bit_length()


def cdiv(a, b):
    return -(-int(a) // int(b))


# ---------------------------------------------------------------- compiling without a GPU


def compile_for(kernel, signature, constexprs, options, arch=90):
    """Compile one recorded launch for CUDA ``arch`` (sm_90 by default) on any machine.

    ``triton.compile`` with a CUDA target runs the whole pipeline (TTIR, TTGIR,
    LLVM, PTX, and ptxas to a cubin) without a GPU; ptxas ships in Triton's wheel.
    Returns the compiled kernel: ``.metadata.shared`` is its shared memory in bytes.
    Triton >= 3.2 names the compile-time arguments ``constexprs``, older ones ``constants``.
    """
    import inspect

    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    full = {name: "constexpr" if name in constexprs else signature[name] for name in kernel.arg_names}
    keyword = "constexprs" if "constexprs" in inspect.signature(ASTSource).parameters else "constants"
    source = ASTSource(kernel, full, **{keyword: dict(constexprs)})
    return triton.compile(source, target=GPUTarget("cuda", arch, 32), options=dict(options))
