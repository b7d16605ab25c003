"""``Module``: the base class of every network, as ``torch.nn.Module``.

A Module keeps three ordered tables, filled by plain attribute assignment:

    self.weight = Parameter(...)    -> _parameters   (learned, in state_dict)
    self.block = Linear(...)        -> _modules      (children, recursed into)
    self.register_buffer("mean", t) -> _buffers      (not learned; in state_dict
                                                      unless persistent=False)

Everything else (``parameters()``, ``state_dict()``, ``train()``, ``to()``)
walks these tables, so state_dict keys come out exactly as torch names them
for the same tree: ``net.0.weight``, ``blocks.2.bias``.
"""
import contextlib
from collections import OrderedDict, namedtuple

import numpy as np

from .. import backend
from ..autograd import Tensor, no_grad
from .parameter import Parameter


class IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What ``load_state_dict`` returns: the keys it missed and the ones it ignored."""

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()


class RemovableHandle:
    """Returned by ``register_forward_hook``; ``remove()`` unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks):
        self.hooks, self.id = hooks, RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self):
        self.hooks.pop(self.id, None)


def to_array(value):
    """The array inside a minigan Tensor, NumPy/CuPy array, torch tensor or number.

    A NumPy or CuPy array stays on its device; anything else (a torch tensor, a
    list, a number) becomes a NumPy array through ``backend.to_numpy``.
    """
    if isinstance(value, Tensor):
        return value.array
    if hasattr(value, "shape") and hasattr(value, "dtype") and not hasattr(value, "detach"):
        return value  # NumPy or CuPy array
    return backend.to_numpy(value)


def _addindent(text, spaces):
    lines = text.split("\n")
    return lines[0] if len(lines) == 1 else "\n".join([lines[0]] + [" " * spaces + l for l in lines[1:]])


class Module:
    """Base class of networks: subclasses set attributes in ``__init__`` and define ``forward``.

    Example::

        class MLP(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 1))

            def forward(self, x):
                return self.net(x)
    """

    training: bool

    def __init__(self):
        # object.__setattr__: our own __setattr__ needs these tables to exist
        set_ = super().__setattr__
        set_("training", True)
        set_("_parameters", OrderedDict())
        set_("_buffers", OrderedDict())
        set_("_non_persistent_buffers_set", set())
        set_("_modules", OrderedDict())
        set_("_forward_pre_hooks", OrderedDict())
        set_("_forward_hooks", OrderedDict())

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')

    def __call__(self, *args, **kwargs):
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        output = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, output)
            if result is not None:
                output = result
        return output

    # ------------------------------------------------------------ registration

    def _check_name(self, name, kind):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {kind} before Module.__init__() call")
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
        if "." in name:
            raise KeyError(f'{kind} name can\'t contain ".", got {name!r}')
        if name == "":
            raise KeyError(f'{kind} name can\'t be empty string ""')

    def register_parameter(self, name, param):
        """Add a Parameter (or None: a declared but absent one, like ``bias=False``)."""
        self._check_name(name, "parameter")
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute '{name}' already exists")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__name__}' object to parameter '{name}' "
                            "(minigan.nn.Parameter or None required)")
        if param is not None and not param.is_leaf:
            raise ValueError(f"cannot assign non-leaf Tensor to parameter '{name}'")
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """Add a Tensor that is state but not learned (running statistics, masks).

        ``persistent=False`` keeps it out of ``state_dict()``.
        """
        self._check_name(name, "buffer")
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' "
                            "(minigan Tensor or None required)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name, module):
        """Add a child module (or None)."""
        self._check_name(name, "module")
        if not isinstance(module, Module) and module is not None:
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name, value):
        # Where a value goes depends on its type, and on where the name lives
        # already (assigning None to a parameter keeps the slot declared).
        tables = self.__dict__.get("_parameters"), self.__dict__.get("_buffers"), self.__dict__.get("_modules")
        params, buffers, modules = tables
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._forget(name)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                                "(minigan.nn.Parameter or None expected)")
            params[name] = None
        elif isinstance(value, Module):
            if modules is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._forget(name)
            modules[name] = value
        elif modules is not None and name in modules:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module '{name}' "
                                "(minigan.nn.Module or None expected)")
            modules[name] = None
        elif buffers is not None and name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                                "(minigan Tensor or None expected)")
            buffers[name] = value
        else:
            super().__setattr__(name, value)

    def _forget(self, name):
        """Remove ``name`` from every table before it is registered in another."""
        self.__dict__.pop(name, None)
        for table in ("_parameters", "_buffers", "_modules"):
            self.__dict__[table].pop(name, None)
        self._non_persistent_buffers_set.discard(name)

    def __getattr__(self, name):
        # only called when normal lookup fails: look in the three tables
        d = self.__dict__
        for table in ("_parameters", "_buffers", "_modules"):
            if table in d and name in d[table]:
                return d[table][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for table in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__.get(table, ()):
                del self.__dict__[table][name]
                self._non_persistent_buffers_set.discard(name)
                return
        super().__delattr__(name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))

    def get_submodule(self, target):
        """The module at dotted path ``target`` (``"net.0"``); ``""`` is self."""
        module = self
        for part in target.split(".") if target else ():
            if part not in module._modules:
                raise AttributeError(f"{type(module).__name__} has no submodule {part!r} (looking for {target!r})")
            module = module._modules[part]
        return module

    # ------------------------------------------------------------ hooks

    def register_forward_pre_hook(self, hook):
        """``hook(module, args)`` runs before ``forward``; a non-None result replaces ``args``."""
        handle = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        return handle

    def register_forward_hook(self, hook):
        """``hook(module, args, output)`` runs after ``forward``; a non-None result replaces the output."""
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    # ------------------------------------------------------------ walking the tree

    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """(dotted name, module) for self and every descendant; a shared module once."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            yield from module.named_modules(memo, prefix + ("." if prefix else "") + name, remove_duplicate)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def _named_members(self, table, prefix, recurse, remove_duplicate):
        seen = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in getattr(module, table).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield module_prefix + ("." if module_prefix else "") + name, value

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """(dotted name, Parameter) pairs; a parameter shared by two modules comes once."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, buf in self.named_buffers(recurse=recurse):
            yield buf

    def apply(self, fn):
        """Call ``fn`` on every child (recursively), then on self; e.g. custom init."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------ modes and gradients

    def train(self, mode=True):
        """Training mode (Dropout drops, BatchNorm uses batch statistics) for self and descendants."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        self.training = mode
        for module in self.children():
            module.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        """Freeze (False) or unfreeze every parameter, e.g. D while G takes its step."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Clear the gradients of every parameter (to None, or to fresh zeros)."""
        for p in self.parameters():
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    # a new array, not zero_() in place: a .grad the engine made
                    # may be shared with another leaf or a read-only broadcast view
                    p.grad = Tensor(backend.get_array_module(p.grad.array).zeros_like(p.grad.array))

    # ------------------------------------------------------------ devices and dtypes

    def _apply(self, fn):
        """Replace every parameter's and buffer's array by ``fn(array)``, keeping the Tensor objects
        (so optimizers built before ``.to()`` still hold the right parameters)."""
        for module in self.modules():
            for p in module._parameters.values():
                if p is None:
                    continue
                p.array = fn(p.array)
                if p.grad is not None:
                    p.grad = Tensor(fn(p.grad.array))
            for b in module._buffers.values():
                if b is not None:
                    b.array = fn(b.array)
        return self

    def to(self, device=None, dtype=None):
        """Move parameters and buffers to ``device`` and/or cast floating ones to ``dtype``, in place.

        ``module.to("cuda")``, ``module.to(mg.float64)``, ``module.to("cpu", mg.float32)``.
        """
        if device is not None and (not isinstance(device, str) or device.split(":")[0] not in ("cpu", "cuda")):
            device, dtype = None, device  # to(dtype), to("float64")
            if isinstance(dtype, str):
                _check_dtype_or_device(dtype)
        target = backend.normalize_device(device) if device is not None else None
        dtype = np.dtype(dtype) if dtype is not None else None

        def convert(array):
            if target is not None:
                array = backend.to_device(array, target)
            if dtype is not None and array.dtype.kind == "f" and array.dtype != dtype:
                array = array.astype(dtype)
            return array

        return self._apply(convert)

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def float(self):
        return self.to(dtype=np.float32)

    def double(self):
        return self.to(dtype=np.float64)

    # ------------------------------------------------------------ state_dict

    def state_dict(self, *, destination=None, prefix="", keep_vars=False):
        """OrderedDict of dotted name -> Tensor: parameters, then persistent buffers, then children.

        The Tensors are detached but share the arrays (like torch: copy them if
        you keep them across training steps). A module shared in two places
        appears under both names, as in torch.
        """
        if destination is None:
            destination = OrderedDict()
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = b if keep_vars else b.detach()
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination=destination, prefix=prefix + name + ".", keep_vars=keep_vars)
        return destination

    def load_state_dict(self, state_dict, strict=True):
        """Copy values from ``state_dict`` into this module's parameters and buffers.

        Values may be minigan Tensors, NumPy/CuPy arrays or torch tensors; each is
        copied into the existing array (its device and dtype are kept). A shape
        mismatch is always an error; missing or unexpected keys are errors when
        ``strict``. Returns ``(missing_keys, unexpected_keys)`` like torch.
        """
        if not hasattr(state_dict, "keys"):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict).__name__}.")
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors = []
        values = {}
        for key, target in own.items():
            if key not in state_dict:
                continue
            array = to_array(state_dict[key])
            if tuple(np.shape(array)) != target.shape:
                errors.append(f"size mismatch for {key}: copying a param with shape {tuple(np.shape(array))} "
                              f"from checkpoint, the shape in current model is {target.shape}.")
            values[key] = array
        if strict:
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: {}. ".format(", ".join(f'"{k}"' for k in unexpected)))
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: {}. ".format(", ".join(f'"{k}"' for k in missing)))
        if errors:  # nothing is copied when anything is wrong
            raise RuntimeError("Error(s) in loading state_dict for {}:\n\t{}".format(type(self).__name__, "\n\t".join(errors)))
        with no_grad():
            for key, array in values.items():
                own[key].copy_(array)
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------ printing

    def extra_repr(self):
        """The settings shown inside the parentheses of ``repr``; override in layers."""
        return ""

    def _get_name(self):
        return type(self).__name__

    def __repr__(self):
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): " + _addindent(repr(module), 2) for name, module in self._modules.items()]
        lines = extra_lines + child_lines
        text = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                text += extra_lines[0]
            else:
                text += "\n  " + "\n  ".join(lines) + "\n"
        return text + ")"


def _check_dtype_or_device(name):
    """``name`` must be a dtype: a string that is neither one nor a device gets a clear error."""
    try:
        np.dtype(name)
    except TypeError:
        raise ValueError(f"unknown device or dtype {name!r}: expected 'cpu', 'cuda', 'cuda:N' or a dtype") from None


@contextlib.contextmanager
def evaluating(module, training=False):
    """Within the block, ``module`` and its descendants in eval mode (``training=True``: in
    training mode); afterwards every one of them is back in the mode it had, as sampling
    from a network in the middle of its training needs."""
    modes = [(m, m.training) for m in module.modules()]
    module.train(training)
    try:
        yield module
    finally:
        for m, mode in modes:
            m.training = mode
