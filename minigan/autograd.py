"""Reverse-mode automatic differentiation: Tensor, Function, backward.

A ``Tensor`` wraps one array (NumPy or CuPy). Every differentiable op is a
``Function``: ``forward`` computes on raw arrays, ``backward`` maps the output
gradients to input gradients *using Tensor ops*. Because the backward pass is
made of the same differentiable ops, running it with ``create_graph=True``
records a new graph, and differentiating that graph gives second derivatives
(the gradient penalties of WGAN-GP, R1 and SinGAN need them).

Ownership runs one way, so no reference cycles form:

    output Tensor --creator--> Function --inputs--> input Tensors
    Function --weakref--> output Tensors

Backward visits Functions in reverse topological order (by ``generation``: a
Function comes after every Function that produced one of its inputs), found by
a loop rather than recursion, so a graph 10,000 ops deep works.
"""
import contextlib
import operator
import weakref

import numpy as np

from . import backend

# ---------------------------------------------------------------- grad mode

_grad_enabled = True


def is_grad_enabled():
    return _grad_enabled


@contextlib.contextmanager
def set_grad_enabled(mode):
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, bool(mode)
    try:
        yield
    finally:
        _grad_enabled = previous


class no_grad(contextlib.ContextDecorator):
    """Context manager and decorator: ops inside record no graph."""

    def __enter__(self):
        self._ctx = set_grad_enabled(False)
        self._ctx.__enter__()

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


class enable_grad(no_grad):
    def __enter__(self):
        self._ctx = set_grad_enabled(True)
        self._ctx.__enter__()


# ---------------------------------------------------------------- Tensor

_FLOAT_DTYPES = (np.float16, np.float32, np.float64)


def _is_float(dtype):
    return np.dtype(dtype).kind == "f"


_NUMERIC_KINDS = "biufc"  # bool, ints, floats, complex: what a tensor may hold


def _non_numeric_error(data, from_array):
    """The TypeError, as torch's, for data that is not numbers (None, strings, bytes, objects).

    From an array it names the array's type (torch.from_numpy's words); from Python data
    the first element that is not a number (torch.tensor's).
    """
    kind = data.dtype.kind
    numbers = "tensors hold bool, integer, floating-point or complex numbers"
    if from_array:
        return TypeError(f"can't convert np.ndarray of type numpy.{data.dtype.type.__name__}; {numbers}")
    if kind == "O":
        bad = next((v for v in data.flat if not isinstance(v, (bool, int, float, complex, np.number, np.bool_))),
                   None)
        name = type(bad).__name__
    else:
        name = {"U": "str", "S": "bytes"}.get(kind, data.dtype.name)
    return TypeError(f"Could not infer dtype of {name}; {numbers}")



def _check_numeric(data, from_array):
    """Raise torch's TypeError unless ``data`` (an array) holds numbers."""
    if data.dtype.kind not in _NUMERIC_KINDS:
        raise _non_numeric_error(data, from_array)


class Tensor:
    """An n-dimensional array that remembers how it was made.

    ``array`` is the raw NumPy/CuPy array, ``grad`` a Tensor (or None) filled by backward,
    ``creator`` the Function that produced it (None for leaves). ``data`` is torch's: another
    Tensor on the same array, outside the graph, whose in-place changes autograd does not see.
    ``_version`` counts the in-place changes of the array, so that backward can refuse to use
    a value that changed after an op saved it; ``detach()`` shares the count, ``data`` does not.
    """

    __array_priority__ = 1000  # numpy scalars defer to Tensor's operators

    def __init__(self, data, requires_grad=False):
        if isinstance(data, Tensor):
            data = data.array
        from_array = hasattr(data, "shape")
        if not from_array or isinstance(data, np.generic):
            data = np.asarray(data)
            if not from_array and data.dtype == np.float64:
                data = data.astype(np.float32)  # Python floats -> torch's default dtype
        if data.dtype.kind not in _NUMERIC_KINDS:  # _check_numeric, inlined: every op's output passes here
            raise _non_numeric_error(data, from_array)
        if requires_grad and not _is_float(data.dtype):
            raise RuntimeError(f"only floating-point tensors can require gradients, got {data.dtype}")
        self.array = data
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self.creator = None
        self._out_index = 0
        self._versions = [0]  # a box, so that detach() can share the count

    @property
    def _version(self):
        return self._versions[0]

    @_version.setter
    def _version(self, value):
        self._versions[0] = value

    @property
    def data(self):
        """A Tensor on the same array, requires_grad=False, no creator, with its own version
        count: changes through it (``p.data.clamp_(-c, c)``) are invisible to autograd, as in torch."""
        return Tensor(self.array)

    @data.setter
    def data(self, value):
        self.array = value.array if isinstance(value, Tensor) else value

    # --- array facts
    @property
    def shape(self):
        return tuple(self.array.shape)

    @property
    def ndim(self):
        return self.array.ndim

    @property
    def dtype(self):
        return self.array.dtype

    @property
    def device(self):
        return backend.device_of(self.array)

    @property
    def is_leaf(self):
        return self.creator is None

    @property
    def grad_fn(self):
        """torch's name for ``creator``."""
        return self.creator

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self):
        return self.ndim

    def numel(self):
        return int(self.array.size)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self):
        body = repr(self.numpy()).replace("array(", "tensor(", 1)
        extra = ", device='cuda'" if self.device == "cuda" else ""
        if self.creator is not None:
            extra += f", grad_fn=<{type(self.creator).__name__}>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return body[:-1] + extra + ")" if extra else body

    # --- conversions
    def numpy(self):
        return backend.to_device(self.array, "cpu")

    def item(self):
        if self.array.size != 1:
            raise ValueError(f"item(): tensor of shape {self.shape} has {self.array.size} elements, not 1")
        return self.array.reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self.array.size != 1:
            raise RuntimeError(f"truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self.item())

    def __hash__(self):
        return id(self)

    def detach(self):
        """A new leaf sharing this tensor's array and version count, cut from the graph."""
        out = Tensor(self.array)
        out._versions = self._versions
        return out

    def detach_(self):
        self.creator = None
        self.requires_grad = False
        return self

    def requires_grad_(self, requires_grad=True):
        if not self.is_leaf:
            raise RuntimeError("requires_grad_(): only leaf tensors can change requires_grad")
        if requires_grad and not _is_float(self.dtype):
            raise RuntimeError(f"only floating-point tensors can require gradients, got {self.dtype}")
        self.requires_grad = requires_grad
        return self

    def to(self, device=None, dtype=None):
        """Move to ``device`` and/or cast to ``dtype``; differentiable."""
        if isinstance(device, (type, np.dtype)) or (isinstance(device, str) and device not in ("cpu", "cuda") and not device.startswith("cuda")):
            device, dtype = None, device
            if isinstance(dtype, str):
                try:
                    np.dtype(dtype)
                except TypeError:
                    raise ValueError(f"unknown device or dtype {dtype!r}: expected 'cpu', 'cuda', 'cuda:N' "
                                     "or a dtype") from None
        out = self
        if device is not None and backend.normalize_device(device) != self.device:
            out = ToDevice(backend.normalize_device(device))(out)
        if dtype is not None and np.dtype(dtype) != out.dtype:
            out = Cast(np.dtype(dtype))(out)
        return out

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def float(self):
        return self.to(dtype=np.float32)

    def double(self):
        return self.to(dtype=np.float64)

    def long(self):
        return self.to(dtype=np.int64)

    def clone(self):
        return Copy()(self)

    def is_contiguous(self):
        return bool(self.array.flags.c_contiguous)

    def contiguous(self):
        """This tensor if its array is C-ordered, else a differentiable C-ordered copy."""
        return self if self.is_contiguous() else Copy()(self)

    def copy_(self, other):
        """In-place copy of values (no graph), as used by optimizers and load_state_dict."""
        other = other.array if isinstance(other, Tensor) else other
        xp = backend.get_array_module(self.array)
        if type(other) is not type(self.array) or other.shape != self.array.shape:  # else: same device, same shape
            if backend.device_of(other) != self.device:
                other = backend.to_device(other, self.device)
            try:
                fits = np.broadcast_shapes(np.shape(other), self.shape) == self.shape
            except ValueError:
                fits = False
            if not fits:
                raise RuntimeError(f"copy_: cannot copy shape {tuple(np.shape(other))} into {self.shape}")
            other = xp.asarray(other, dtype=self.dtype)
        xp.copyto(self.array, other, casting="unsafe")
        self._version += 1
        return self

    def zero_(self):
        self.array[...] = 0
        self._version += 1
        return self

    def fill_(self, value):
        self.array[...] = value
        self._version += 1
        return self

    # --- backward
    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (or only into
        ``inputs``'), like PyTorch: a leaf's gradients from this call are summed
        first, and that sum is added to ``.grad``."""
        if not self.requires_grad:
            raise RuntimeError("backward(): tensor does not require grad and has no grad_fn")
        if gradient is None and self.array.size != 1:
            raise RuntimeError(f"backward(): grad can be implicitly created only for scalar outputs, "
                               f"got shape {self.shape}; pass gradient=")
        if inputs is not None:
            inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
        retain_graph = create_graph if retain_graph is None else retain_graph
        for t, g in run_backward([self], [gradient], inputs, retain_graph, create_graph):
            if g is not None:
                t.grad = _owned(g, create_graph) if t.grad is None else t.grad + g

    # Python operators and the Tensor methods live in functional/ and are
    # attached by minigan.functional.tensor_methods to keep this file small.


# ---------------------------------------------------------------- Function


class Function:
    """One differentiable op.

    Subclasses implement ``forward(*arrays) -> array | tuple`` and
    ``backward(*grad_outputs: Tensor) -> Tensor | None | tuple``. Constructor
    arguments hold the op's settings (axis, stride, ...). ``forward`` may save
    what backward needs on ``self``; inputs are ``self.inputs`` (Tensors) and
    outputs ``self.output(i)``. ``self.needs_input_grad[i]`` says whether the
    backward pass wants input i's gradient, so backward can skip work (return
    None there).

    Backward refuses to read a value that an in-place op changed after the forward (as
    torch does), so each node says what its backward reads: its outputs (``keeps_outputs``)
    and which inputs (``reads_inputs``: True for all, False for none, or for each input
    the inputs its gradient reads, ``((1,), (0,))`` for a product). A view shares its
    base's version count (``is_view``), so an optimizer's step on a weight is seen through
    the weight's transpose that a matmul saved.
    """

    keeps_outputs = False  # set True when backward reads the outputs
    reads_inputs = True
    is_view = False  # True when outputs may be views of input 0 (reshape, permute, indexing)
    _saved_versions = None

    def __call__(self, *inputs):
        tensors = [x if isinstance(x, Tensor) else None for x in inputs]
        first = next((t for t in tensors if t is not None), None)
        arrays = [t.array if t is not None else _constant(x, first) for x, t in zip(inputs, tensors)]
        backend.get_array_module(*arrays, op=type(self).__name__)
        outputs = self.forward(*arrays)
        single = not isinstance(outputs, tuple)
        outputs = (outputs,) if single else outputs
        results = [Tensor(y) for y in outputs]
        if self.is_view:
            _share_versions(tensors[0], results)

        needs = tuple(t is not None and t.requires_grad for t in tensors)
        if _grad_enabled and any(needs):
            self.inputs = [t if t is not None else Tensor(a) for t, a in zip(tensors, arrays)]
            self.needs_input_grad = needs
            self.generation = max(t.creator.generation + 1 if t.creator else 0
                                  for t in self.inputs)
            self._meta = [(y.shape, y.dtype) for y in outputs]
            if self.reads_inputs:
                self._saved_versions = [t._versions[0] for t in self.inputs]
            self._outputs = [weakref.ref(r) for r in results]
            if self.keeps_outputs:
                self._output_arrays = outputs
            for i, r in enumerate(results):
                if _is_float(r.dtype):
                    r.requires_grad = True
                    r.creator = self
                    r._out_index = i
        return results[0] if single else tuple(results)

    def forward(self, *xs):
        raise NotImplementedError

    def backward(self, *gys):
        raise NotImplementedError(f"{type(self).__name__} has no backward")

    def output(self, i=0):
        """Output ``i`` as a Tensor still attached to this Function.

        Outputs are held weakly; if the caller dropped one, an equal Tensor is
        rebuilt from the saved array so double backward still sees this node.
        """
        y = self._outputs[i]()
        if y is None:
            if not self.keeps_outputs:
                raise RuntimeError(f"{type(self).__name__}: output {i} was freed and not kept")
            y = Tensor(self._output_arrays[i])
            y.requires_grad, y.creator, y._out_index = True, self, i
        return y

    def release(self):
        """Drop everything backward needed (after a backward without retain_graph)."""
        self.inputs = None
        self._output_arrays = None
        for k in list(vars(self)):
            if k.startswith("saved_"):
                setattr(self, k, None)


def _share_versions(base, views):
    """Give the outputs that are views of ``base``'s array ``base``'s version count, as torch does.

    A view's ``.base`` is the array that owns the memory (NumPy and CuPy collapse chains of
    views), so this is an identity test, not a memory-overlap search."""
    owner = base.array if base.array.base is None else base.array.base
    for v in views:
        if v.array.base is owner:
            v._versions = base._versions


def _constant(x, like):
    """A Python number or array operand as an array on ``like``'s device.

    A number takes the dtype of the tensor it meets (``x * 0.5`` stays float32),
    except where its kind is above the tensor's, as in torch: a float meeting an
    integer or bool tensor becomes float32, an integer meeting a bool tensor int64.
    """
    if hasattr(x, "shape") and not isinstance(x, np.generic):
        return x
    xp = backend.xp_for(like.device) if like is not None else np
    if like is None:
        return Tensor(x).array
    dtype = like.dtype
    if _KINDS.index(_scalar_kind(x)) > _KINDS.index(dtype.kind.replace("u", "i")):
        dtype = _DEFAULT_DTYPES[_scalar_kind(x)]
    return xp.asarray(x, dtype=dtype)


# torch's type promotion: kinds in order, and the dtype a Python number of each kind gets
_KINDS = "bifc"
_DEFAULT_DTYPES = {"b": np.dtype(np.bool_), "i": np.dtype(np.int64), "f": np.dtype(np.float32),
                   "c": np.dtype(np.complex64)}


def _scalar_kind(x):
    if isinstance(x, (bool, np.bool_)):
        return "b"
    if isinstance(x, (int, np.integer)):
        return "i"
    if isinstance(x, (float, np.floating)):
        return "f"
    return "c"


def result_dtype(a, b):
    """The dtype torch gives a binary elementwise op on ``a`` and ``b`` (Tensors, arrays or numbers).

    Operands rank as: tensors with dimensions, then 0-d tensors, then Python numbers. The
    highest-ranked operands decide (float32 with float64 -> float64, int32 with int64 -> int64,
    int64 with float32 -> float32, bool with int -> int); a lower-ranked operand counts only
    where its kind (bool < int < float < complex) is above theirs, so ``float32 * 2.0`` and
    ``float32 tensor * float64 0-d tensor`` stay float32, while ``int64 tensor * 0.5`` is float32.
    """
    def facts(x):
        if hasattr(x, "shape") and not isinstance(x, np.generic):
            dtype = np.dtype(x.dtype)
            return dtype, _KINDS.index(dtype.kind.replace("u", "i")), 2 if len(x.shape) else 1
        kind = _scalar_kind(x)
        return _DEFAULT_DTYPES[kind], _KINDS.index(kind), 0

    (da, ka, ra), (db, kb, rb) = facts(a), facts(b)
    if da == db:
        return da
    if ra == rb:
        return da if ka > kb else db if kb > ka else np.promote_types(da, db)
    (dh, kh, _), (dl, kl, _) = ((da, ka, ra), (db, kb, rb)) if ra > rb else ((db, kb, rb), (da, ka, ra))
    return dl if kl > kh else dh


# ---------------------------------------------------------------- the engine's own ops
# Tensor.to and Tensor.clone are made of these three, so they live with the engine.


class Copy(Function):
    reads_inputs = False

    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        return gy


class Cast(Function):
    reads_inputs = False

    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, x):
        self.in_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, gy):
        return Cast(self.in_dtype)(gy)


class ToDevice(Function):
    reads_inputs = False

    def __init__(self, device):
        self.device = device

    def forward(self, x):
        self.in_device = backend.device_of(x)
        return backend.to_device(x, self.device)

    def backward(self, gy):
        return ToDevice(self.in_device)(gy)


# ---------------------------------------------------------------- the backward pass


def run_backward(outputs, grad_outputs, inputs=None, retain_graph=False, create_graph=False):
    """Backprop: the gradient of ``outputs`` (weighted by ``grad_outputs``) with
    respect to each of ``inputs``, by default every leaf the outputs depend on.

    Each Function runs once all of its outputs' gradients are in (reverse
    topological order); its ``backward`` turns them into its inputs' gradients,
    which are added to what those inputs have received so far. Returns a list
    of (input, gradient) pairs, the gradient None where no path leads.
    """
    grads = _seeds(outputs, grad_outputs)  # a tensor's key -> its gradient so far
    functions, leaves = _graph(outputs)
    inputs = leaves if inputs is None else inputs
    wanted = {_key(t) for t in inputs}
    with set_grad_enabled(create_graph):
        for f in reversed(_prune(functions, wanted)):  # consumers before producers
            gys = [_output_grad(f, i, grads, wanted) for i in range(len(f._meta))]
            if f._saved_versions is not None or f.keeps_outputs:
                _check_versions(f)
            gxs = _checked(f, f.backward(*gys))
            for x, gx, need in zip(f.inputs, gxs, f.needs_input_grad):
                if need and gx is not None:
                    _add(grads, _key(x), gx)
            if not retain_graph:
                f.release()
    return [(t, grads.get(_key(t))) for t in inputs]


def _key(t):
    """A tensor's name in the backward pass: a leaf by its identity, any other tensor
    as output i of its Function (double backward may rebuild that tensor's object)."""
    return (id(t.creator), t._out_index) if t.creator is not None else id(t)


def _seeds(outputs, grad_outputs):
    """The gradients the pass starts from: ``grad_outputs``, or ones for a scalar output."""
    grads = {}
    for y, g in zip(outputs, grad_outputs):
        if not y.requires_grad:
            raise RuntimeError("element of outputs does not require grad and has no grad_fn")
        if g is None:
            if y.array.size != 1:
                raise RuntimeError(f"grad can be implicitly created only for scalar outputs, got shape {y.shape}")
            g = Tensor(backend.get_array_module(y.array).ones_like(y.array))
        elif not isinstance(g, Tensor):
            g = Tensor(g)
        if g.shape != y.shape:
            raise RuntimeError(f"grad_outputs shape {g.shape} does not match output shape {y.shape}")
        if g.dtype != y.dtype:  # as torch: the seed takes the output's dtype
            g = g.to(dtype=y.dtype)
        _add(grads, _key(y), g)
    return grads


def _graph(outputs):
    """The Functions that made ``outputs``, and the leaves among their inputs that
    require grad. A walk with a stack, not recursion, so any depth works."""
    functions, seen = [], set()
    leaves = {id(y): y for y in outputs if y.creator is None}
    stack = [y.creator for y in outputs if y.creator is not None]
    while stack:
        f = stack.pop()
        if id(f) in seen:
            continue
        seen.add(id(f))
        functions.append(f)
        if f.inputs is None:
            raise RuntimeError(
                f"Trying to backward through the graph a second time ({type(f).__name__}): "
                "its saved values were freed; pass retain_graph=True to the first backward")
        for x in f.inputs:
            if x.creator is not None:
                stack.append(x.creator)
            elif x.requires_grad:
                leaves[id(x)] = x
    return functions, list(leaves.values())


def _prune(functions, wanted):
    """The Functions on a path to a wanted tensor, producers first.

    Sets each one's ``needs_input_grad`` for this pass: an input needs a gradient
    only if it leads to a wanted tensor, so a gradient penalty, which asks for
    d(critic)/d(image), computes no weight gradients.
    """
    kept, leads = [], set()  # leads: the ids of the kept Functions
    for f in sorted(functions, key=operator.attrgetter("generation")):  # a producer before its consumers
        f.needs_input_grad = tuple([
            x.requires_grad and ((x.creator is not None and id(x.creator) in leads) or _key(x) in wanted)
            for x in f.inputs])
        if any(f.needs_input_grad):
            kept.append(f)
            leads.add(id(f))
    return kept


def _output_grad(f, i, grads, wanted):
    """The gradient of output i of ``f``, summed over its consumers (zeros when none
    used it). It leaves the table then, unless it is one the caller asked for."""
    key = (id(f), i)
    g = grads.get(key) if key in wanted else grads.pop(key, None)
    if g is None:
        shape, dtype = f._meta[i]
        g = Tensor(backend.get_array_module(f.inputs[0].array).zeros(shape, dtype=dtype))
    return g


def _check_versions(f):
    """Raise, as torch does, if a tensor ``f``'s backward reads changed in place after the forward.

    An output counts from version 0 (it was made by ``f``); an input from the version it had
    then, and only if it is read for a gradient this pass computes.
    """
    saved = f._saved_versions
    if saved is not None:
        for x, version in zip(f.inputs, saved):
            if x._versions[0] != version and _reads(f, x):
                raise _modified_in_place(x, version)
    if f.keeps_outputs:
        for ref in f._outputs:
            y = ref()
            if y is not None and y._versions[0] != 0:
                raise _modified_in_place(y, 0)


def _reads(f, x):
    """Whether ``f``'s backward reads its input ``x`` (at any of its places) for the gradients
    this pass asks of it."""
    if f.reads_inputs is True:
        return True
    places = {i for i, y in enumerate(f.inputs) if y is x}
    return any(need and places & set(read) for need, read in zip(f.needs_input_grad, f.reads_inputs))


def _modified_in_place(t, expected):
    made = (f", which is output {t._out_index} of {type(t.creator).__name__}," if t.creator is not None
            else "")
    return RuntimeError(
        "one of the variables needed for gradient computation has been modified by an inplace "
        f"operation: [{t.dtype} {list(t.shape)}]{made} is at version {t._version}; expected version "
        f"{expected} instead. Hint: an in-place op (an optimizer's step, add_, x[i] = v, ...) changed it "
        "after the forward saved it; run it after this backward, or give the forward a .clone().")


def _add(grads, key, g):
    grads[key] = g if key not in grads else grads[key] + g


def _checked(f, gxs):
    """``f.backward``'s gradients as a tuple, checked: one per input, each of its input's shape."""
    gxs = gxs if isinstance(gxs, tuple) else (gxs,)
    if len(gxs) != len(f.inputs):
        raise RuntimeError(f"{type(f).__name__}.backward returned {len(gxs)} gradients "
                           f"for {len(f.inputs)} inputs")
    for x, gx in zip(f.inputs, gxs):
        if gx is not None and gx.array.shape != x.array.shape:
            raise RuntimeError(f"{type(f).__name__}.backward: gradient shape {gx.shape} "
                               f"does not match input shape {x.shape}")
    return gxs


def _owned(g, create_graph):
    """A gradient a leaf may keep as ``.grad``: its own writable array, never a
    view of another tensor's (a broadcast seed or an input's data), so that
    ``p.grad.zero_()`` or an optimizer writing into it changes nothing else."""
    if create_graph:
        return g.clone()
    xp = backend.get_array_module(g.array)
    return Tensor(xp.array(g.array, copy=True))


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, only_inputs=True,
         allow_unused=False):
    """Gradients of ``outputs`` with respect to ``inputs``, like ``torch.autograd.grad``.

    Returns a tuple with one Tensor per input; nothing is accumulated into
    ``.grad``. With ``create_graph=True`` the results are differentiable.
    ``only_inputs`` is accepted and has no effect (as in torch, where it is deprecated).
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError("grad(): one of the inputs does not require grad")
    retain_graph = create_graph if retain_graph is None else retain_graph
    pairs = run_backward(outputs, list(grad_outputs), inputs, retain_graph, create_graph)
    for i, (t, g) in enumerate(pairs):
        if g is None and not allow_unused:
            raise RuntimeError(f"grad(): input {i} (shape {t.shape}) is not used in the graph "
                               "of the outputs; pass allow_unused=True to get None")
    return tuple(g for _, g in pairs)
