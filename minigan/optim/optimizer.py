"""``Optimizer``: parameter groups, per-parameter state, and torch's state_dict format.

An optimizer holds ``param_groups`` — a list of dicts, each with its ``params``
and its own options (``lr``, ``betas``, ...) — and ``state``, a dict from each
parameter to what its update remembers (``exp_avg``, ``momentum_buffer``,
``step``). ``step()`` updates the raw arrays in place (``p.array``), reading
``p.grad.array``; it records no graph and skips parameters whose grad is None.

``state_dict()`` has torch's layout, with parameters replaced by their index in
the order of ``param_groups``::

    {"state": {0: {"step": 3, "exp_avg": Tensor, "exp_avg_sq": Tensor}, ...},
     "param_groups": [{"lr": 0.001, "betas": (0.9, 0.999), ..., "params": [0, 1, 2]}]}

One difference: minigan stores ``step`` as a Python int where torch stores a
0-d float tensor; ``load_state_dict`` accepts both, and torch's optimizers
accept the int (they convert it when loading).
"""
import copy
from collections import defaultdict
from itertools import chain

import numpy as np

from .. import backend
from ..autograd import Tensor, enable_grad, no_grad
from ..nn.module import to_array


class _RequiredParameter:
    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()  # a default that a group must override (e.g. SGD's lr in old torch)


def _is_tensor_like(value):
    return isinstance(value, Tensor) or (hasattr(value, "shape") and hasattr(value, "dtype"))


class Optimizer:
    """Base class: subclasses define ``_update(param, grad, state, group)`` on raw arrays, and
    may define ``_update_group`` to update a group's parameters together (Adam on the GPU)."""

    def __init__(self, params, defaults):
        self.defaults = defaults
        self.state = defaultdict(dict)
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors "
                            f"or dicts, but got {type(params).__name__}")
        groups = list(params)
        if len(groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group):
        """Add a group of parameters with its own options (missing options take the defaults).

        Useful to give the mapping network of StyleGAN a smaller learning rate, or to
        start training a layer that was frozen.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the "
                            "ordering of tensors in sets will change between runs. Please use a list instead.")
        params = list(params)
        if params and all(isinstance(p, tuple) for p in params):  # from named_parameters()
            group["param_names"] = [name for name, _ in params]
            params = [p for _, p in params]
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        group["params"] = params
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            group.setdefault(name, default)
        if len({id(p) for p in params}) != len(params):
            raise ValueError("optimizer contains a parameter group with duplicate parameters")
        taken = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in taken for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        """Clear the gradients of every optimized parameter (to None, or to fresh zeros)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    if set_to_none:
                        p.grad = None
                    else:
                        # a fresh array: an engine-made .grad may be shared or read-only
                        p.grad = Tensor(backend.get_array_module(p.grad.array).zeros_like(p.grad.array))

    def step(self, closure=None):
        """One update of every parameter that has a gradient.

        ``closure``, if given, re-evaluates the model and returns the loss (it runs
        with gradients enabled); its loss is returned.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                params = [p for p in group["params"] if p.grad is not None]
                for p in params:
                    if backend.device_of(p.grad.array) != p.device:
                        raise RuntimeError(f"{type(self).__name__}: gradient on {backend.device_of(p.grad.array)} "
                                           f"for a parameter of shape {p.shape} on {p.device}")
                self._update_group(params, group)
                for p in params:
                    p._versions[0] += 1  # the in-place update, as torch counts it
        return loss

    def _update_group(self, params, group):
        """Update every parameter of ``group`` that has a gradient (``params``): one at a time,
        unless a subclass updates several at once."""
        for p in params:
            self._update(p.array, p.grad.array, self.state[p], group)

    def _update(self, param, grad, state, group):
        """Update the array ``param`` in place from ``grad`` (both raw arrays)."""
        raise NotImplementedError

    @staticmethod
    def _zeros_like(param):
        return Tensor(backend.get_array_module(param).zeros_like(param))

    # ------------------------------------------------------------ state_dict

    def state_dict(self):
        """``{"state": {index: {name: Tensor | number}}, "param_groups": [{..., "params": [indices]}]}``.

        As in torch, the Tensors are the optimizer's own (not copies).
        """
        index = {}
        for i, p in enumerate(chain.from_iterable(g["params"] for g in self.param_groups)):
            index.setdefault(id(p), i)
        groups = [{**{k: v for k, v in g.items() if k != "params"},
                   "params": [index[id(p)] for p in g["params"]]} for g in self.param_groups]
        state = {index[id(p)] if isinstance(p, Tensor) else p: dict(s) for p, s in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore a state written by ``state_dict()`` (minigan's or a converted torch one).

        Group options are taken from the saved groups; state values are copied onto
        each parameter's device (floating ones cast to its dtype), so the loaded
        optimizer shares no arrays with ``state_dict``.
        """
        groups = self.param_groups
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups "
                             f"({len(saved_groups)}, this optimizer has {len(groups)})")
        for i, (g, s) in enumerate(zip(groups, saved_groups)):
            if len(g["params"]) != len(s["params"]):
                raise ValueError(f"loaded state dict contains a parameter group that doesn't match the size of "
                                 f"optimizer's group (group {i}: {len(s['params'])} saved, {len(g['params'])} here)")
        id_map = dict(zip(chain.from_iterable(s["params"] for s in saved_groups),
                          chain.from_iterable(g["params"] for g in groups)))
        state = defaultdict(dict)
        for key, value in state_dict["state"].items():
            key = int(key) if isinstance(key, str) and key.isdigit() else key  # JSON-ised keys
            if key in id_map:
                param = id_map[key]
                state[param] = {name: self._cast(param, name, v) for name, v in value.items()}
            else:
                state[key] = value
        new_groups = []
        for g, s in zip(groups, saved_groups):
            s["params"] = g["params"]
            if "param_names" in g and "param_names" not in s:
                s["param_names"] = g["param_names"]
            for name, default in self.defaults.items():  # options this version added
                s.setdefault(name, default)
            if isinstance(s.get("betas"), list):  # a checkpoint may turn the tuple into a list
                s["betas"] = tuple(s["betas"])
            new_groups.append(s)
        self.state, self.param_groups = state, new_groups

    @staticmethod
    def _cast(param, name, value):
        if name == "step":  # torch: a 0-d float tensor; minigan: an int
            return int(float(to_array(value))) if _is_tensor_like(value) else value
        if isinstance(value, dict):
            return {k: Optimizer._cast(param, k, v) for k, v in value.items()}
        if not _is_tensor_like(value):
            return value
        array = backend.to_device(to_array(value), param.device)
        xp = backend.get_array_module(array)
        dtype = param.dtype if np.dtype(param.dtype).kind == "f" else array.dtype
        return Tensor(xp.array(array, dtype=dtype, copy=True))

    def __repr__(self):
        text = type(self).__name__ + " ("
        for i, group in enumerate(self.param_groups):
            text += f"\nParameter Group {i}\n"
            for key in sorted(group):
                if key != "params":
                    text += f"    {key}: {group[key]}\n"
        return text + ")"
