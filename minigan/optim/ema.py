"""``EMA``: an exponential moving average of a model's weights.

GAN generators oscillate around a good solution while the discriminator keeps
moving; averaging the generator's weights over the last ~1/(1 - decay) steps
gives visibly better samples (Karras et al. 2018, "Progressive Growing of GANs";
Yazici et al. 2019, "The Unusual Effectiveness of Averaging in GAN Training").
After every optimizer step::

    shadow <- decay * shadow + (1 - decay) * param

Buffers (e.g. BatchNorm's running statistics) are not averaged but copied, as
StyleGAN does. Sampling uses the averaged weights: ``ema.copy_to(g_ema)`` into
a second copy of the generator, or ``ema.copy_to()`` into the model itself
between a ``store()`` and a ``restore()``.
"""
from collections import OrderedDict

from .. import backend
from ..autograd import Tensor
from ..nn.module import to_array


class EMA:
    """Shadow copies of ``model``'s parameters and buffers, averaged by ``update()``.

    ``decay`` close to 1 averages over more steps (0.999 ~ the last thousand).
    """

    def __init__(self, model, decay=0.999):
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"Invalid decay value: {decay} (expected 0 <= decay <= 1)")
        self.model, self.decay, self.num_updates = model, decay, 0
        self.shadow = OrderedDict((name, Tensor(p.array.copy())) for name, p in model.named_parameters())
        self.shadow_buffers = OrderedDict((name, Tensor(b.array.copy())) for name, b in model.named_buffers())
        self._stored = None

    def update(self, model=None):
        """Move the averages towards ``model``'s current weights (``self.model`` by default)."""
        model = self.model if model is None else model
        params = dict(model.named_parameters())
        self._check_names(params, self.shadow, "parameters")
        for name, avg in self.shadow.items():
            # avg + (1 - decay) (param - avg), in place: the same as decay avg + (1 - decay) param
            avg.array *= self.decay
            avg.array += (1.0 - self.decay) * params[name].array
            avg._version += 1
        for name, buf in model.named_buffers():
            if name in self.shadow_buffers:
                self.shadow_buffers[name].copy_(buf.array)
        self.num_updates += 1

    def copy_to(self, model=None):
        """Write the averaged weights into ``model`` (``self.model`` by default)."""
        model = self.model if model is None else model
        params = dict(model.named_parameters())
        self._check_names(params, self.shadow, "parameters")
        for name, avg in self.shadow.items():
            params[name].copy_(avg.array)
        for name, buf in model.named_buffers():
            if name in self.shadow_buffers:
                buf.copy_(self.shadow_buffers[name].array)
        return model

    def store(self, model=None):
        """Remember ``model``'s current weights, to be put back by ``restore()``."""
        model = self.model if model is None else model
        self._stored = [p.array.copy() for p in model.parameters()]

    def restore(self, model=None):
        model = self.model if model is None else model
        if self._stored is None:
            raise RuntimeError("EMA.restore() called without a store() before it")
        for p, data in zip(model.parameters(), self._stored):
            p.copy_(data)
        self._stored = None

    def to(self, device):
        """Move the averages to ``device`` (after moving the model)."""
        for table in (self.shadow, self.shadow_buffers):
            for t in table.values():
                t.array = backend.to_device(t.array, device)
        return self

    @staticmethod
    def _check_names(params, shadow, what):
        if set(params) != set(shadow):
            missing, extra = sorted(set(shadow) - set(params)), sorted(set(params) - set(shadow))
            raise KeyError(f"EMA: the model's {what} differ from the averaged ones "
                           f"(missing in model: {missing}, not averaged: {extra})")

    def state_dict(self):
        """``{"decay", "num_updates", "shadow": {name: Tensor}, "shadow_buffers": {name: Tensor}}``."""
        return {"decay": self.decay, "num_updates": self.num_updates,
                "shadow": OrderedDict(self.shadow), "shadow_buffers": OrderedDict(self.shadow_buffers)}

    def load_state_dict(self, state_dict):
        """Restore a ``state_dict()``; values may be Tensors, arrays or torch tensors."""
        self.decay = state_dict["decay"]
        self.num_updates = int(state_dict["num_updates"])
        for key, table in (("shadow", self.shadow), ("shadow_buffers", self.shadow_buffers)):
            saved = state_dict.get(key, {})
            self._check_names(saved, table, key)
            for name, t in table.items():
                t.copy_(to_array(saved[name]))

    def __repr__(self):
        return f"EMA(decay={self.decay}, num_updates={self.num_updates}, parameters={len(self.shadow)})"
