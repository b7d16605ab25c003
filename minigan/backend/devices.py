"""Devices and their array modules: NumPy on the CPU, CuPy on the GPU.

A device is named as in PyTorch: ``"cpu"`` or ``"cuda"``. Every op looks at its
inputs once, finds the one array module they share, and refuses to mix devices.
"""
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


def device(type):
    """What ``torch.device`` is for a script: a device name ('cpu', 'cuda', 'cuda:0'), checked."""
    return normalize_device(type)


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
    is an object with a ``.array`` array, a torch tensor one whose ``.data`` is
    another torch tensor and that has ``detach``.
    """
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, np.generic):  # NumPy scalars have a ``.array`` memoryview: not a Tensor
        return np.asarray(x)
    if hasattr(x, "__cuda_array_interface__") and hasattr(x, "get"):  # CuPy: copy to the host
        return x.get()
    array = getattr(x, "array", None)
    if array is not None:  # a minigan Tensor
        return to_numpy(array)
    if getattr(x, "data", None) is not None and hasattr(x, "detach"):
        return x.detach().cpu().numpy(force=True)  # torch; force: its lazy ZeroTensor gradients too
    return np.asarray(x)
