"""Containers: ``Sequential``, ``ModuleList``, ``ModuleDict``, as in torch.nn.

They exist so that modules held in a list or dict are registered as children
(a plain Python list would hide their parameters from ``parameters()``), and
their names give the state_dict keys torch uses: ``net.0.weight``,
``blocks.3.bias``, ``heads.real.weight``.
"""
import operator
from collections import OrderedDict

from .module import Module, _addindent


def _index(idx, size):
    """A Python index (negative allowed) checked and made non-negative."""
    idx = operator.index(idx)
    if not -size <= idx < size:
        raise IndexError(f"index {idx} is out of range for a container of {size} modules")
    return idx % size


class _ModuleSequence(Module):
    """What Sequential and ModuleList share: children in order, numbered 0..n-1 again
    after an insertion or a deletion (as torch does)."""

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __delitem__(self, idx):
        keys = list(self._modules)
        for key in (keys[idx] if isinstance(idx, slice) else [keys[_index(idx, len(self))]]):
            delattr(self, key)
        super().__setattr__("_modules", OrderedDict((str(i), m) for i, m in enumerate(self._modules.values())))

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def insert(self, index, module):
        modules = list(self._modules.values())
        modules.insert(index, module)
        super().__setattr__("_modules", OrderedDict())
        return self.extend(modules)


class Sequential(_ModuleSequence):
    """Modules applied one after another: ``Sequential(Linear(2, 8), ReLU(), Linear(8, 1))``.

    Also ``Sequential(OrderedDict(name=module, ...))`` to choose the names.
    Indexing returns a module, slicing a new Sequential sharing the modules.
    """

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(args):
                self.add_module(str(i), module)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(OrderedDict(list(self._modules.items())[idx]))
        return list(self._modules.values())[_index(idx, len(self))]

    def __setitem__(self, idx, module):
        setattr(self, list(self._modules)[_index(idx, len(self))], module)

    def insert(self, index, module):
        n = len(self)
        if not -n <= index <= n:
            raise IndexError(f"index {index} is out of range for a Sequential of {n} modules")
        return super().insert(index, module)

    def forward(self, input):
        for module in self:
            input = module(input)
        return input


class ModuleList(_ModuleSequence):
    """A list of modules, registered as children ``0``, ``1``, ...; it has no forward of its own."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(list(self._modules.values())[idx])
        return self._modules[str(_index(idx, len(self)))]

    def __setitem__(self, idx, module):
        setattr(self, str(_index(idx, len(self))), module)

    def __iadd__(self, modules):
        return self.extend(modules)

    def __add__(self, other):
        return ModuleList(list(self) + list(other))

    def pop(self, idx=-1):
        module = self[idx]
        del self[idx]
        return module

    def __repr__(self):
        # runs of identical modules print once, as torch does: "(0-7): 8 x Linear(...)"
        runs = []  # [first index, last index, repr]
        for i, module in enumerate(self):
            text = repr(module)
            if runs and runs[-1][2] == text:
                runs[-1][1] = i
            else:
                runs.append([i, i, text])
        if not runs:
            return self._get_name() + "()"
        lines = [_addindent(f"({a}): {text}" if a == b else f"({a}-{b}): {b - a + 1} x {text}", 2)
                 for a, b, text in runs]
        return self._get_name() + "(\n  " + "\n  ".join(lines) + "\n)"


class ModuleDict(Module):
    """A dict of modules, registered as children under their keys (insertion order kept)."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __delitem__(self, key):
        del self._modules[key]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key):
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def clear(self):
        self._modules.clear()

    def pop(self, key):
        module = self[key]
        del self[key]
        return module

    def update(self, modules):
        """Add modules from a mapping or an iterable of (name, module) pairs."""
        items = modules.items() if hasattr(modules, "items") else modules
        for key, module in items:
            self[key] = module


def mlp(sizes, activation, dropout=None):
    """A multilayer perceptron as a ``Sequential``: ``Linear(sizes[0], sizes[1])``, then for
    every further layer ``activation()`` (and ``Dropout(dropout)`` when given) before the
    next Linear; nothing after the last one. ``activation`` makes a fresh module, e.g.
    ``lambda: LeakyReLU(0.2)``. The layers sit at the indices of the same Sequential
    written out by hand, so state_dict keys are those of the torch equivalent."""
    from .dropout import Dropout
    from .linear import Linear
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        if i:
            layers.append(activation())
            if dropout is not None:
                layers.append(Dropout(dropout))
        layers.append(Linear(n_in, n_out))
    return Sequential(*layers)
