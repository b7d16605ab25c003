"""Spectral normalization (Miyato et al., 2018), as ``torch.nn.utils.spectral_norm``.

A critic is K-Lipschitz when each layer is; a linear layer's Lipschitz constant
is the largest singular value sigma(W) of its weight. Spectral norm divides the
weight by it before every forward:

    W_SN = W / sigma(W),    sigma(W) = max_{h != 0} |W h| / |h|

sigma is estimated by power iteration on the weight seen as a matrix
(dim ``dim`` first, the rest flattened), with u and v kept between steps, so one
iteration per training step suffices (the paper's Algorithm 1):

    v <- W^T u / |W^T u|,    u <- W v / |W v|,    sigma = u^T W v

u and v are buffers (``weight_u``, ``weight_v``) updated without grad and only
in training mode; the gradient flows through sigma = u^T W v with u, v held
constant, as in torch. The learned tensor is renamed ``weight_orig``, so the
state_dict keys (``weight_orig``, ``weight_u``, ``weight_v``) are torch's and a
torch twin loads them.
"""
from .. import backend
from ..autograd import Tensor, no_grad
from .conv import ConvTranspose2d
from .parameter import Parameter


def _normalize(xp, x, eps):
    """x / max(|x|, eps): torch's F.normalize of a vector (on the device: no sync with the host)."""
    return x / xp.maximum(xp.sqrt(xp.sum(x * x)), x.dtype.type(eps))


class SpectralNorm:
    """The forward pre-hook that sets ``module.<name>`` to ``<name>_orig / sigma``."""

    def __init__(self, name="weight", n_power_iterations=1, dim=0, eps=1e-12):
        if n_power_iterations <= 0:
            raise ValueError("spectral_norm: expected n_power_iterations to be positive, but "
                             f"got n_power_iterations={n_power_iterations}")
        self.name, self.n_power_iterations, self.dim, self.eps = name, n_power_iterations, dim, eps

    def matrix(self, weight):
        """The weight as a (shape[dim], rest) matrix: each row one output unit (torch's layout)."""
        if self.dim != 0:
            order = (self.dim,) + tuple(d for d in range(weight.ndim) if d != self.dim)
            weight = weight.permute(*order)
        return weight.reshape(weight.shape[0], -1)

    def compute_weight(self, module, do_power_iteration):
        weight = getattr(module, self.name + "_orig")
        u, v = getattr(module, self.name + "_u"), getattr(module, self.name + "_v")
        w_mat = self.matrix(weight)
        if do_power_iteration:
            xp = backend.get_array_module(w_mat.array)
            with no_grad():
                for _ in range(self.n_power_iterations):
                    v.copy_(_normalize(xp, w_mat.array.T @ u.array, self.eps))
                    u.copy_(_normalize(xp, w_mat.array @ v.array, self.eps))
        # copies, held as constants by the graph: a later step updates the buffers
        # in place before this step's backward has read them
        u, v = Tensor(u.array.copy()), Tensor(v.array.copy())
        sigma = u @ (w_mat @ v)
        return weight / sigma

    def __call__(self, module, inputs):
        setattr(module, self.name, self.compute_weight(module, do_power_iteration=module.training))

    def remove(self, module):
        with no_grad():
            weight = self.compute_weight(module, do_power_iteration=False)
        for suffix in ("", "_u", "_v", "_orig"):
            delattr(module, self.name + suffix)
        module.register_parameter(self.name, Parameter(weight.array))


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    """Reparametrize ``module.<name>`` as W / sigma(W); returns ``module``.

    ``dim`` is the output dim of the weight: 0, except 1 for ``ConvTranspose2d``
    (whose weight is (in, out, kh, kw)). u and v start as normalized N(0, 1) draws.
    """
    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, SpectralNorm) and hook.name == name:
            raise RuntimeError(f"Cannot register two spectral_norm hooks on the same parameter {name}")
    weight = module._parameters.get(name)
    if weight is None:
        raise ValueError(f"spectral_norm: {type(module).__name__} has no parameter {name!r} "
                         f"(parameters: {list(module._parameters)})")
    if dim is None:
        dim = 1 if isinstance(module, ConvTranspose2d) else 0
    fn = SpectralNorm(name, n_power_iterations, dim, eps)
    xp, gen = backend.get_array_module(weight.array), backend.generator(weight.device)
    h, w = fn.matrix(weight.detach()).shape
    u, v = (Tensor(_normalize(xp, xp.asarray(gen.standard_normal(n), dtype=weight.dtype), eps))
            for n in (h, w))

    delattr(module, name)
    module.register_parameter(name + "_orig", weight)
    # a plain attribute until the first forward (code that reads module.weight
    # right away, e.g. an init function, still finds it)
    setattr(module, name, weight.detach())
    module.register_buffer(name + "_u", u)
    module.register_buffer(name + "_v", v)
    module.register_forward_pre_hook(fn)
    return module


def remove_spectral_norm(module, name="weight"):
    """Undo ``spectral_norm``: ``module.<name>`` becomes a Parameter holding W / sigma(W)."""
    for key, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, SpectralNorm) and hook.name == name:
            hook.remove(module)
            del module._forward_pre_hooks[key]
            return module
    raise ValueError(f"spectral_norm of '{name}' not found in {module}")
