"""Where a kernel meets an array: the one place that knows about torch, streams and the interpreter.

Triton launches kernels on anything with a ``data_ptr()`` and a ``dtype``
(torch tensors, usually); minigan holds NumPy or CuPy arrays. The bridge hands
each array over *without copying* and launches:

    CuPy array   -> a ``DevicePointer`` (its address and dtype), launched on CuPy's
                    current stream (Triton asks torch for the stream; where
                    torch's current device and stream are not CuPy's already,
                    torch.cuda.ExternalStream makes CuPy's stream torch's current
                    one for the launch)
    NumPy array  -> torch CPU tensor via torch.from_numpy, for Triton's interpreter
                    (TRITON_INTERPRET=1), which runs the kernel in NumPy

``launch`` is the only function the kernel files call. ``recording()`` catches
launches instead of running them, so the tests can compile, for an sm_90 GPU
without one, exactly the kernels and block sizes the launchers choose.
"""
import collections
import contextlib
import sys
import typing
import warnings

import numpy as np

_POINTEE = {np.dtype(np.float16): "fp16", np.dtype(np.float32): "fp32", np.dtype(np.float64): "fp64",
            np.dtype(np.int32): "i32", np.dtype(np.int64): "i64"}  # Triton's names of what an array holds


def xp_of(array):
    """numpy for a NumPy array, cupy for a CuPy one (without importing minigan)."""
    return np if isinstance(array, np.ndarray) else __import__("cupy")


def contiguous(array):
    """``array`` itself when C-contiguous, else a C-contiguous copy (0-d stays 0-d).

    (A size-1 axis may carry any stride, a negative one too, in an array flagged
    contiguous; the launcher refuses negative strides, so those are copied.)
    """
    if array.flags.c_contiguous and min(array.strides, default=0) >= 0:
        return array
    return array.copy()


def _torch():
    try:
        import torch
    except ImportError as error:
        raise RuntimeError("minigan's Triton kernels launch through torch, which is not installed; "
                           "install torch, or set MINIGAN_KERNELS=0 to use the NumPy/CuPy ops") from error
    return torch


def as_torch(array):
    """The same memory as a CPU torch tensor: how the interpreter reads a NumPy array argument.

    A broadcast (zero-stride) input stays one, read-only memory too, since kernels
    only read their inputs.
    """
    torch = _torch()
    with warnings.catch_warnings():  # torch warns that read-only memory could be written
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(array)


class DevicePointer:
    """What Triton's launcher reads of an array argument: its address (``data_ptr()``) and dtype.

    Triton launches on anything with those two; a CuPy array passed this way costs
    no DLPack exchange and no torch tensor per argument and launch, which on a
    small layer is much of the host's time per launch. (Under the interpreter the
    kernels read memory through real tensors: ``as_torch``.)
    """
    __slots__ = ("address", "dtype")

    def __init__(self, array):
        self.address, self.dtype = _address(array), array.dtype

    def data_ptr(self):
        return self.address


def nonnegative_strides(array):
    """``array``, or a C-contiguous copy where a stride is negative (a flipped view)."""
    return array.copy() if any(s < 0 for s in array.strides) else array


_streams = {}  # (device, CuPy stream pointer) -> torch.cuda.ExternalStream


def _where_triton_launches():
    """(device, raw stream pointer) Triton's next launch goes to: torch's current ones,
    read through the same driver functions Triton's launcher calls."""
    from triton.runtime import driver
    active = driver.active
    device = active.get_current_device()
    return device, active.get_current_stream(device)


@contextlib.contextmanager
def _on_cupy_stream(device, ptr):
    """Make CuPy's ``device`` and stream ``ptr`` torch's current ones, so Triton launches there.

    (CuPy's legacy default stream, pointer 0, is torch's default stream.)
    """
    torch = _torch()
    if ptr == 0:
        stream = torch.cuda.default_stream(device)
    else:
        if (device, ptr) not in _streams:
            _streams[device, ptr] = torch.cuda.ExternalStream(ptr, device=torch.device("cuda", device))
        stream = _streams[device, ptr]
    with torch.cuda.device(device), torch.cuda.stream(stream):
        yield


# ---------------------------------------------------------------- launching


class Launch(typing.NamedTuple):
    """One recorded launch, specialized as Triton's launcher would specialize it.

    ``signature`` maps each run-time argument to its Triton type; an int argument
    equal to 1 is in ``constexprs`` instead (Triton compiles it in as a constant),
    and ``aligned`` names the arguments Triton marks divisible by 16 (an address
    or an int), which is what lets the compiler emit 16-byte loads.
    """
    kernel: object
    signature: dict
    constexprs: dict
    options: dict
    aligned: tuple


class _Recorder:
    """Collects ``Launch`` records instead of launching."""

    def __init__(self):
        self.launches = []


_recorder = None


@contextlib.contextmanager
def recording():
    """Launches inside this block are recorded, not run; yields the list of ``Launch`` they go to."""
    global _recorder
    previous, _recorder = _recorder, _Recorder()
    try:
        yield _recorder.launches
    finally:
        _recorder = previous


_counts = None  # kernel name -> launches, inside counting()


@contextlib.contextmanager
def counting():
    """Launches inside this block run as usual and are counted: yields a Counter, kernel name -> launches."""
    global _counts
    previous, _counts = _counts, collections.Counter()
    try:
        yield _counts
    finally:
        _counts = previous


def _address(array):
    return array.ctypes.data if isinstance(array, np.ndarray) else array.data.ptr


def _specialize(args, constexprs):
    """(signature, constexprs, aligned) for these arguments, by Triton's launcher's rules:
    arrays are typed pointers, an int is i32 or i64 (and a constant when it is 1), a
    float is fp32, a bool u1; addresses and ints divisible by 16 are marked aligned."""
    signature, constexprs, aligned = {}, dict(constexprs), []
    for name, value in args.items():
        if hasattr(value, "dtype") and hasattr(value, "shape"):
            signature[name] = "*" + _POINTEE[np.dtype(value.dtype)]
            if _address(value) % 16 == 0:
                aligned.append(name)
        elif isinstance(value, (bool, np.bool_)):
            signature[name] = "u1"
        elif isinstance(value, (int, np.integer)):
            if value == 1:
                constexprs[name] = 1
                continue
            signature[name] = "i32" if -2**31 <= int(value) < 2**31 else "i64"
            if value % 16 == 0:
                aligned.append(name)
        elif isinstance(value, float):
            signature[name] = "fp32"
        else:
            raise TypeError(f"minigan.kernels.bridge: cannot type launch argument {name}={value!r}")
    return signature, constexprs, tuple(aligned)


def launch(kernel, grid, args, constexprs, num_warps=4, num_stages=None):
    """Run ``kernel[grid](*args, **constexprs)`` on the device of the array arguments.

    ``args`` is a dict name -> value in the kernel's parameter order: arrays
    (NumPy or CuPy, all on one device), ints and floats; ``constexprs`` are the
    compile-time parameters (block sizes, flags, the slope of an activation).
    """
    options = {"num_warps": num_warps}
    if num_stages is not None:
        options["num_stages"] = num_stages
    if _recorder is not None:  # (the tests record every launcher's choices: check the order there)
        order = [name for name in kernel.arg_names if name in args]
        if list(args) != order:
            raise TypeError(f"{kernel.fn.__name__}: launch arguments {list(args)} are not in the kernel's "
                            f"order {order}")
        signature, constexprs, aligned = _specialize(args, constexprs)
        _recorder.launches.append(Launch(kernel, signature, constexprs, options, aligned))
        return
    grid = tuple(map(int, grid))
    if min(grid) == 0:
        return
    if _counts is not None:
        _counts[kernel.fn.__name__] += 1
    # one pass over the arguments (a launch's host time matters on small layers): arrays are
    # checked and wrapped, the first one saying where the kernel runs
    first, values = None, []
    for name, value in args.items():
        if hasattr(value, "shape"):
            if value.strides and min(value.strides) < 0:
                raise ValueError(f"minigan.kernels.bridge: {kernel.fn.__name__}'s {name} has negative strides "
                                 f"{value.strides}; pass it through nonnegative_strides() first")
            if first is None:
                first = value
            value = as_torch(value) if isinstance(value, np.ndarray) else DevicePointer(value)
        values.append(value)
    if isinstance(first, np.ndarray):
        if type(kernel).__name__ != "InterpretedFunction":
            raise RuntimeError(f"{kernel.fn.__name__}: NumPy arrays run only under Triton's interpreter, "
                               "and these kernels were compiled for the GPU: set TRITON_INTERPRET=1 before "
                               "triton is imported (or MINIGAN_KERNELS=0)")
        _interpreter_loops_take_scalars()
        kernel[grid](*values, **constexprs, **options)
        return
    cupy = sys.modules["cupy"]  # imported: ``first`` is a CuPy array
    here = first.device.id, cupy.cuda.get_current_stream().ptr
    if _where_triton_launches() == here:  # the usual case: switching costs more than a small kernel
        kernel[grid](*values, **constexprs, **options)
        return
    with _on_cupy_stream(*here):
        kernel[grid](*values, **constexprs, **options)


def _interpreter_loops_take_scalars():
    """Let ``range(0, S, BLOCK)`` with a run-time ``S`` work in Triton 3.6's interpreter on NumPy >= 2.4.

    The interpreter holds a scalar argument as a one-element array and gives
    ``range`` its ``int()``; NumPy 2.4 refuses ``int()`` of an array with a
    dimension ("only 0-dimensional arrays can be converted"). Newer Triton
    squeezes the array first; this does the same for the older ones, by
    wrapping the function that patches ``tl.tensor`` for each interpreted launch.
    """
    from triton.runtime import interpreter
    patch = getattr(interpreter, "_patch_lang_tensor", None)
    if patch is None or getattr(patch, "squeezes_scalars", False):
        return

    def patch_then_squeeze(tensor, scope, *rest):
        patch(tensor, scope, *rest)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))

    patch_then_squeeze.squeezes_scalars = True
    interpreter._patch_lang_tensor = patch_then_squeeze


def next_power_of_2(n):
    return 1 << max(int(n) - 1, 0).bit_length()


def cdiv(a, b):
    return -(-int(a) // int(b))


# ---------------------------------------------------------------- compiling without a GPU


def compile_for(launch, arch=90):
    """Compile one recorded ``Launch`` for CUDA ``arch`` (sm_90 by default) on any machine.

    ``triton.compile`` with a CUDA target runs the whole pipeline (TTIR, TTGIR,
    LLVM, PTX, and ptxas to a cubin) without a GPU; ptxas ships in Triton's wheel.
    The launch's specialization (constant 1s, 16-divisible arguments) is passed on,
    so this is the code the GPU would run for the same arrays.
    Returns the compiled kernel: ``.metadata.shared`` is its shared memory in bytes,
    ``.asm`` its TTGIR, PTX and cubin.
    Triton >= 3.2 names the compile-time arguments ``constexprs``, older ones ``constants``.
    """
    import inspect

    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    kernel, signature, constexprs = launch.kernel, launch.signature, launch.constexprs
    full = {name: "constexpr" if name in constexprs else signature[name] for name in kernel.arg_names}
    attrs = {(kernel.arg_names.index(name),): [["tt.divisibility", 16]] for name in launch.aligned}
    keyword = "constexprs" if "constexprs" in inspect.signature(ASTSource).parameters else "constants"
    source = ASTSource(kernel, full, attrs=attrs, **{keyword: dict(constexprs)})
    return triton.compile(source, target=GPUTarget("cuda", arch, 32), options=dict(launch.options))
