"""CuPy without a GPU: a stand-in that computes with NumPy but keeps CuPy's rules.

No real CuPy array can exist on a machine without a GPU, so minigan's "cuda"
paths (every op on CuPy arrays, the optimizers, checkpoints, the examples with
``--device cuda``, the kernels' launchers handed CuPy arrays) would first run
on a GPU. The ``fake_cuda`` fixture (tests/conftest.py) installs this module as
``cupy`` and ``cupyx``. Its ``ndarray`` holds a NumPy array and does its
arithmetic, and refuses what CuPy 14 refuses, which is how host/device bugs
show up on the CPU:

- no implicit conversion to NumPy: ``np.asarray(a)`` raises, as does a NumPy
  array inside an expression or function call with CuPy arrays (``.get()`` and
  ``cupy.asnumpy`` copy to the host; ``cupy.asarray`` copies to the device;
  indexing copies NumPy index arrays and assigned values over, as CuPy does);
- reductions give 0-d arrays, not scalars (``float()`` and ``bool()`` still
  work; ``__index__`` does not exist, so ``range(a.sum())`` fails as on CuPy);
- the NumPy functions, array methods and random methods CuPy lacks are
  missing (the lists below are read off CuPy 14.2: ``dir(cupy)`` against
  ``dir(numpy)``), and the random methods take CuPy's ``dtype=``;
- NumPy functions given these arrays dispatch to them (``__array_ufunc__``,
  ``__array_function__``), as CuPy's arrays do.

What it cannot catch: anything about speed, streams or real device memory, and
the places where CuPy computes differently from NumPy (integer casts of
out-of-range floats, wrapped out-of-bounds indices).
"""
import copy as _copy
import sys
import time
import types
import weakref

import numpy as np

# numpy's public names that cupy 14.2 does not have (module, array, random state)
NOT_IN_CUPY = frozenset("""
    False_ ScalarType True_ asmatrix block bmat busday_count busday_offset busdaycalendar bytes_ char
    character clongdouble complex256 core ctypeslib datetime64 datetime_as_string datetime_data dtypes
    einsum_path emath errstate f2py flexible float128 frompyfunc fromregex geomspace get_include
    getbufsize geterr geterrcall histogram_bin_edges info insert is_busday isnat little_endian
    longdouble ma matrix matvec memmap nanpercentile nanquantile ndenumerate nditer nested_iters
    object_ polyder polydiv polyint rec recarray record sctypeDict setbufsize seterr seterrcall
    show_runtime spacing str_ strings test timedelta64 typecodes unstack vecdot vecmat void
""".split())
NOT_IN_CUPY_LINALG = frozenset("diagonal matrix_norm multi_dot outer svdvals tensordot test trace "
                               "vecdot vector_norm".split())
NOT_ON_CUPY_ARRAYS = frozenset("ctypes getfield resize setfield setflags to_device".split())
RANDOM_STATE_METHODS = frozenset("""
    beta binomial chisquare choice dirichlet exponential f gamma geometric gumbel hypergeometric laplace
    logistic lognormal logseries multivariate_normal negative_binomial noncentral_chisquare noncentral_f
    normal pareto permutation poisson power rand randint randn random_sample rayleigh seed shuffle
    standard_cauchy standard_exponential standard_gamma standard_normal standard_t tomaxint triangular
    uniform vonmises wald weibull zipf
""".split())


def _device_only(value, where):
    """``value`` with every stand-in array replaced by its NumPy array; a NumPy array raises."""
    if isinstance(value, ndarray):
        return value._array
    if isinstance(value, np.ndarray):
        raise TypeError(f"cupy (stand-in): {where} was given a NumPy array {value.shape}, "
                        "where CuPy accepts only its own arrays (move it with cupy.asarray)")
    if type(value) in (list, tuple):
        return type(value)(_device_only(v, where) for v in value)
    if type(value) is dict:
        return {k: _device_only(v, where) for k, v in value.items()}
    return value


def _on_device(value):
    """NumPy results as stand-in arrays: arrays and scalars (CuPy returns 0-d arrays)."""
    if isinstance(value, (np.ndarray, np.generic)):
        return ndarray._holding(np.asarray(value))
    if isinstance(value, (list, tuple)):  # (NumPy's named results, eigh's say, come back as tuples)
        return (list if isinstance(value, list) else tuple)(_on_device(v) for v in value)
    return value


def _call(function, where, args, kwargs):
    return _on_device(function(*_device_only(args, where), **_device_only(kwargs, where)))


class _Memory:
    def __init__(self, array):
        self.ptr = array.ctypes.data


class Device:
    """The one stand-in device, number 0."""

    def __init__(self, device=0):
        self.id = int(device)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def use(self):
        return self

    def synchronize(self):
        pass


class Stream:
    """A stream that does nothing: work runs when it is called."""
    null = None

    def __init__(self, null=False, non_blocking=False, ptr=0):
        self.ptr = 0 if null else ptr or id(self)

    def __enter__(self):
        _streams.append(self)
        return self

    def __exit__(self, *exc):
        _streams.pop()
        return False

    def synchronize(self):
        pass

    def use(self):
        _streams[0] = self
        return self


Stream.null = Stream(null=True)
_streams = [Stream.null]


class Event:
    """Records the wall clock (the work it would time has already run)."""

    def __init__(self, *args, **kwargs):
        self.time = None

    def record(self, stream=None):
        self.time = time.perf_counter()

    def synchronize(self):
        pass


def get_elapsed_time(start, end):
    return (end.time - start.time) * 1e3


# the first stand-in made to hold each NumPy array, so that a view's ``base`` is the very object
# that holds the memory's owner, as CuPy's is (minigan's views share version counts by it)
_HOLDERS = weakref.WeakValueDictionary()


class ndarray:
    """A NumPy array standing in for device memory (see the module's docstring)."""
    __slots__ = ("_array", "__weakref__")
    __array_priority__ = 100

    def __init__(self, shape, dtype=float):
        self._array = np.empty(shape, dtype)
        _HOLDERS.setdefault(id(self._array), self)

    @classmethod
    def _holding(cls, array):
        new = cls.__new__(cls)
        new._array = array
        _HOLDERS.setdefault(id(array), new)
        return new

    # what CuPy refuses
    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def __getattr__(self, name):
        if name.startswith("__") or name in NOT_ON_CUPY_ARRAYS:
            raise AttributeError(f"'cupy.ndarray' object has no attribute {name!r}")
        value = getattr(self._array, name)
        if callable(value):
            return lambda *args, **kwargs: _call(value, f"ndarray.{name}", args, kwargs)
        return _on_device(value)

    # what CuPy has and NumPy does not, or has otherwise
    def get(self, stream=None, order="C", out=None, blocking=True):
        return self._array.copy(order=order)

    def set(self, array, stream=None):
        self._array[...] = array

    @property
    def data(self):
        return _Memory(self._array)

    @property
    def __cuda_array_interface__(self):
        return {"version": 3, "shape": self.shape, "typestr": self.dtype.str, "descr": [("", self.dtype.str)],
                "data": (self.data.ptr, False), "strides": None if self.flags.c_contiguous else self.strides}

    @property
    def device(self):
        return Device(0)

    @property
    def flags(self):
        return self._array.flags

    @property
    def shape(self):
        return self._array.shape

    @shape.setter
    def shape(self, value):
        self._array.shape = value

    @property
    def dtype(self):
        return self._array.dtype

    @property
    def strides(self):
        return self._array.strides

    ndim = property(lambda self: self._array.ndim)
    size = property(lambda self: self._array.size)
    itemsize = property(lambda self: self._array.itemsize)
    nbytes = property(lambda self: self._array.nbytes)
    T = property(lambda self: ndarray._holding(self._array.T))
    mT = property(lambda self: ndarray._holding(self._array.mT))
    real = property(lambda self: ndarray._holding(self._array.real))
    imag = property(lambda self: ndarray._holding(self._array.imag))
    @property
    def base(self):
        owner = self._array.base
        if owner is None:
            return None
        holder = _HOLDERS.get(id(owner))
        return holder if holder is not None else ndarray._holding(owner)

    # Indexing copies NumPy index arrays and assigned NumPy values to the device, as CuPy does
    # (``_prepare_slice_list`` and ``_scatter_op`` call ``cupy.array`` on them).
    def __getitem__(self, key):
        return _on_device(self._array[_host(key)])

    def __setitem__(self, key, value):
        self._array[_host(key)] = _host(value)

    def __len__(self):
        return len(self._array)

    def __iter__(self):
        return (ndarray._holding(row) for row in self._array) if self.ndim else iter(self._array)

    def __bool__(self):
        return bool(self._array)

    def __float__(self):
        return float(self._array)

    def __int__(self):
        return int(self._array)

    def __complex__(self):
        return complex(self._array)

    def __repr__(self):
        return repr(self._array)

    def __str__(self):
        return str(self._array)

    def __format__(self, spec):
        return format(self._array.item() if self.ndim == 0 else self._array, spec)

    def __copy__(self):
        return ndarray._holding(self._array.copy())

    def __deepcopy__(self, memo):
        return ndarray._holding(_copy.deepcopy(self._array, memo))

    def __reduce__(self):
        return ndarray._holding, (self._array,)

    def __dlpack__(self, *args, **kwargs):  # a CPU capsule: torch.from_dlpack gives a CPU tensor
        return self._array.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self._array.__dlpack_device__()

    __hash__ = None

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        where = f"numpy.{ufunc.__name__}"
        return _call(getattr(ufunc, method), where, inputs, kwargs)

    def __array_function__(self, function, types, args, kwargs):
        return _call(function, f"numpy.{function.__name__}", args, kwargs)


def _operator(name):
    def apply(self, other):
        return _on_device(getattr(self._array, name)(_device_only(other, f"ndarray.{name}")))
    apply.__name__ = name
    return apply


def _in_place(name):
    def apply(self, other):
        getattr(self._array, name)(_device_only(other, f"ndarray.{name}"))
        return self
    apply.__name__ = name
    return apply


for _name in ("add sub mul truediv floordiv mod pow matmul and or xor lshift rshift divmod").split():
    setattr(ndarray, f"__{_name}__", _operator(f"__{_name}__"))
    setattr(ndarray, f"__r{_name}__", _operator(f"__r{_name}__"))
    if _name != "divmod":
        setattr(ndarray, f"__i{_name}__", _in_place(f"__i{_name}__"))
for _name in ("eq ne lt le gt ge").split():
    setattr(ndarray, f"__{_name}__", _operator(f"__{_name}__"))
for _name in ("neg pos abs invert").split():
    setattr(ndarray, f"__{_name}__", lambda self, _n=f"__{_name}__": ndarray._holding(getattr(self._array, _n)()))


class _Ufunc:
    """A NumPy ufunc on stand-in arrays (calls and its methods)."""

    def __init__(self, ufunc):
        self._ufunc, self.__name__ = ufunc, ufunc.__name__

    def __call__(self, *args, **kwargs):
        return _call(self._ufunc, f"cupy.{self.__name__}", args, kwargs)

    def __getattr__(self, name):
        value = getattr(self._ufunc, name)
        if not callable(value):
            return value
        return lambda *args, **kwargs: _call(value, f"cupy.{self.__name__}.{name}", args, kwargs)


class _Namespace(types.ModuleType):
    """NumPy's ``numpy_module`` on stand-in arrays, less what CuPy lacks; ``extra`` overrides."""

    def __init__(self, name, numpy_module, missing=frozenset(), **extra):
        super().__init__(name)
        self._numpy, self._missing = numpy_module, missing
        self.__dict__.update(extra)

    def __getattr__(self, name):
        if name.startswith("_") or name in self._missing:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        value = getattr(self._numpy, name)
        if isinstance(value, np.ufunc):
            value = _Ufunc(value)
        elif isinstance(value, (type, np.dtype, types.ModuleType)) or not callable(value):
            return value
        else:
            value = (lambda function, where: lambda *args, **kwargs: _call(function, where, args, kwargs))(
                value, f"cupy.{name}")
        setattr(self, name, value)
        return value


def _host(value):
    """What ``cupy.asarray`` copies from: stand-in arrays (in lists too) as their NumPy arrays."""
    if isinstance(value, ndarray):
        return value._array
    if type(value) in (list, tuple):
        return type(value)(_host(v) for v in value)
    return value


def asarray(a, dtype=None, order=None, copy=None, blocking=False):
    """A device array: ``a`` itself where it is one already (of that dtype), else a copy."""
    if isinstance(a, ndarray):
        return ndarray._holding(np.array(a._array, dtype=dtype, order=order or "K", copy=copy))
    return ndarray._holding(np.array(_host(a), dtype=dtype, order=order or "K"))  # host to device: a copy


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, blocking=False):
    return ndarray._holding(np.array(_host(obj), dtype=dtype, copy=copy or not isinstance(obj, ndarray),
                                     order=order, ndmin=ndmin))


def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    return a.get() if isinstance(a, ndarray) else np.asarray(a, order=order)


def get_array_module(*args):
    return sys.modules[__name__].cupy if any(isinstance(a, ndarray) for a in args) else np


class RandomState:
    """CuPy's RandomState: NumPy's draws, CuPy's method names and its ``dtype=``."""

    def __init__(self, seed=None, method=None):
        self._state = np.random.RandomState(None if seed is None else seed % 2 ** 32)

    def __getattr__(self, name):
        if name == "seed":
            return lambda seed=None: self._state.seed(None if seed is None else seed % 2 ** 32)
        if name not in RANDOM_STATE_METHODS:
            raise AttributeError(f"'cupy.random.RandomState' object has no attribute {name!r}")
        draw = getattr(self._state, name)

        def on_device(*args, dtype=None, **kwargs):
            values = np.asarray(draw(*_device_only(args, name), **_device_only(kwargs, name)))
            return ndarray._holding(values if dtype is None else values.astype(dtype))
        return on_device


def _scatter_add(a, slices, value):
    """``a[slices] += value`` with repeated indices summed; like indexing, NumPy indices and values
    are copied over (only ``a`` must be a device array)."""
    np.add.at(_device_only(a, "cupyx.scatter_add"), _host(slices), _host(value))


_runtime = types.SimpleNamespace(getDeviceCount=lambda: 1, getDevice=lambda: 0,
                                 deviceSynchronize=lambda: None)
cuda = types.SimpleNamespace(Device=Device, Stream=Stream, Event=Event, get_elapsed_time=get_elapsed_time,
                             get_current_stream=lambda device=None: _streams[-1], runtime=_runtime,
                             is_available=lambda: True)
random = types.SimpleNamespace(RandomState=RandomState, seed=lambda seed=None: None)
cupy = _Namespace(
    "cupy", np, NOT_IN_CUPY, ndarray=ndarray, asarray=asarray, array=array, asnumpy=asnumpy,
    get_array_module=get_array_module, cuda=cuda, random=random, __version__="14.2.0 (stand-in)",
    linalg=_Namespace("cupy.linalg", np.linalg, NOT_IN_CUPY_LINALG),
    fft=_Namespace("cupy.fft", np.fft),
    lib=types.SimpleNamespace(stride_tricks=_Namespace("cupy.lib.stride_tricks", np.lib.stride_tricks)),
)
cupyx = types.SimpleNamespace(scatter_add=_scatter_add, __name__="cupyx")
