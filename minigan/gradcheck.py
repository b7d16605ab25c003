"""Numerical gradient checks: is an op's backward the derivative of its forward?

For ops torch lacks there is no reference to compare with, but there is always
the definition of a derivative. ``gradcheck`` builds the Jacobian of ``fn`` twice,

    numerical:   J[j, k] = (f_k(x + eps e_j) - f_k(x - eps e_j)) / (2 eps)
    analytical:  row k of J from one backward pass with grad_outputs = e_k

and asks that they agree: |analytical - numerical| <= atol + rtol |numerical|.
``gradgradcheck`` runs the same check on the function

    (x, v) -> d<fn(x), v>/dx     (the vector-Jacobian product, create_graph=True)

so it tests the derivative of a backward pass with respect to both the inputs
and the incoming gradient ``v``: the second derivatives a gradient penalty uses.

Central differences lose about half the digits, so the inputs must be float64:

    x = mg.tensor(np.random.randn(3, 4), dtype=mg.float64, requires_grad=True)
    gradcheck(lambda x: x.tanh() * x, (x,))
    gradgradcheck(lambda x: x.tanh() * x, (x,))
"""
import numpy as np

from . import backend
from .autograd import Tensor, grad


class GradcheckError(RuntimeError):
    """An analytical derivative disagrees with the numerical one."""


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True):
    """Check the gradients of ``fn`` at ``inputs`` against central differences.

    ``fn`` takes the inputs and returns a Tensor or a tuple of Tensors. Inputs
    that are Tensors with ``requires_grad`` are differentiated (they must be
    float64); anything else (integer targets, numbers) is passed through as is.
    Returns True, or raises ``GradcheckError`` naming the input, the element and
    both values (returns False instead with ``raise_exception=False``).
    """
    inputs = _as_tuple(inputs)
    return _check(fn, inputs, eps, atol, rtol, raise_exception, "gradcheck: Jacobian mismatch for",
                  lambda k: f"output {k}", lambda i: f"input {i}")


def gradgradcheck(fn, inputs, grad_outputs=None, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True):
    """Check the second derivatives of ``fn`` against central differences.

    Runs ``gradcheck`` on ``(inputs, v) -> grad(fn(inputs), inputs, v, create_graph=True)``,
    with respect to the inputs and ``v`` (``grad_outputs``: one float64 Tensor per
    output of ``fn``; random normal values when not given).
    """
    inputs = _as_tuple(inputs)
    wrt = _differentiable(inputs, "gradgradcheck")
    outputs = _outputs(fn(*inputs), "gradgradcheck")
    if grad_outputs is None:
        rng = np.random.default_rng(0)
        grad_outputs = [rng.standard_normal(y.shape) for y in outputs]
    grad_outputs = _as_tuple(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"gradgradcheck: {len(grad_outputs)} grad_outputs given for {len(outputs)} outputs")
    vs = []
    for k, (v, y) in enumerate(zip(grad_outputs, outputs)):
        v = v.array if isinstance(v, Tensor) else v if hasattr(v, "dtype") else np.asarray(v)
        if tuple(np.shape(v)) != y.shape or np.dtype(v.dtype) != np.float64:
            raise TypeError(f"gradgradcheck: grad_outputs[{k}] must be float64 of shape {y.shape}, "
                            f"got {np.dtype(v.dtype)} of shape {tuple(np.shape(v))}")
        xp = backend.xp_for(y.device)
        vs.append(Tensor(xp.array(backend.to_device(v, y.device)), requires_grad=True))

    n_in = len(inputs)

    def vector_jacobian_product(*args):
        """One output per differentiated input: its gradient (zeros where it is unused)."""
        xs, v = args[:n_in], args[n_in:]
        ys = _outputs(fn(*xs), "gradgradcheck")
        used = [(y, g) for y, g in zip(ys, v) if y.requires_grad]
        gxs = [None] * len(wrt)
        if used:
            gxs = grad([y for y, _ in used], [xs[i] for i in wrt], [g for _, g in used],
                       create_graph=True, allow_unused=True)
        return tuple(Tensor(backend.get_array_module(xs[i].array).zeros(xs[i].shape)) if g is None else g
                     for i, g in zip(wrt, gxs))

    return _check(vector_jacobian_product, inputs + tuple(vs), eps, atol, rtol, raise_exception,
                  "gradgradcheck: second derivative mismatch for",
                  lambda k: f"the gradient of input {wrt[k]}",
                  lambda i: f"input {i}" if i < n_in else f"grad_outputs[{i - n_in}]")


# ---------------------------------------------------------------- the two Jacobians


def _check(fn, inputs, eps, atol, rtol, raise_exception, what, output_name, input_name):
    """Both Jacobians, block by block (output k, input i); the first disagreement fails."""
    wrt = _differentiable(inputs, "gradcheck")
    outputs = _outputs(fn(*inputs), "gradcheck")
    analytical = _analytical_jacobian(outputs, [inputs[i] for i in wrt])
    numerical = _numerical_jacobian(fn, inputs, wrt, outputs, eps)
    for n, i in enumerate(wrt):
        for k, y in enumerate(outputs):
            message = _compare(analytical[n][k], numerical[n][k], atol, rtol, inputs[i].shape, y.shape)
            if message:
                return _fail(f"{what} {output_name(k)} (shape {y.shape}) with respect to "
                             f"{input_name(i)} (shape {inputs[i].shape}): {message}", raise_exception)
    return True


def _analytical_jacobian(outputs, xs):
    """J[n][k]: a (x_n.size, y_k.size) array whose entry [j, c] is d y_k[c] / d x_n[j]."""
    jac = [[np.zeros((x.numel(), y.numel())) for y in outputs] for x in xs]
    for k, y in enumerate(outputs):
        if not y.requires_grad:
            continue  # a float output that does not depend on the inputs: its Jacobian is 0
        xp = backend.get_array_module(y.array)
        for col in range(y.numel()):
            seed = xp.zeros(y.shape, dtype=y.dtype)
            seed[np.unravel_index(col, y.shape)] = 1.0
            gxs = grad(y, xs, Tensor(seed), retain_graph=True, allow_unused=True)
            for n, (x, g) in enumerate(zip(xs, gxs)):
                if g is None:
                    continue
                if g.shape != x.shape or g.dtype != x.dtype:
                    raise GradcheckError(f"gradcheck: gradient of input shape {g.shape} dtype {g.dtype} "
                                         f"for input of shape {x.shape} dtype {x.dtype}")
                jac[n][k][:, col] = backend.to_device(g.array, "cpu").reshape(-1)
    return jac


def _numerical_jacobian(fn, inputs, wrt, outputs, eps):
    jac = []
    for i in wrt:
        x = inputs[i].array
        blocks = [np.zeros((x.size, y.numel())) for y in outputs]
        for j in range(x.size):
            index = np.unravel_index(j, x.shape)
            original = x[index].item()
            x[index] = original + eps
            plus = _evaluate(fn, inputs)
            x[index] = original - eps
            minus = _evaluate(fn, inputs)
            x[index] = original
            for k, (a, b) in enumerate(zip(plus, minus)):
                blocks[k][j] = ((a - b) / (2 * eps)).reshape(-1)
        jac.append(blocks)
    return jac


def _evaluate(fn, inputs):
    # no_grad would break an fn that itself differentiates (gradgradcheck's), so record as usual
    return [backend.to_device(y.array, "cpu").astype(np.float64) for y in _outputs(fn(*inputs), "gradcheck")]


def _compare(analytical, numerical, atol, rtol, in_shape, out_shape):
    """A sentence on the worst disagreeing element, or '' when all agree."""
    excess = np.abs(analytical - numerical) - (atol + rtol * np.abs(numerical))
    excess = np.where(np.isnan(excess), np.inf, excess)  # a nan on either side is a failure
    if not (excess > 0).any():
        return ""
    j, col = np.unravel_index(int(np.argmax(excess)), excess.shape)
    return (f"at input element {tuple(int(a) for a in np.unravel_index(j, in_shape))}, output element "
            f"{tuple(int(a) for a in np.unravel_index(col, out_shape))}: numerical {float(numerical[j, col])!r}, "
            f"analytical {float(analytical[j, col])!r} ({int((excess > 0).sum())} of {excess.size} entries "
            f"differ by more than atol={atol} + rtol={rtol} * |numerical|)")


def _fail(message, raise_exception):
    if raise_exception:
        raise GradcheckError(message)
    return False


# ---------------------------------------------------------------- arguments


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _differentiable(inputs, op):
    """Indices of the inputs to differentiate; every floating Tensor must be float64."""
    wrt = []
    for i, x in enumerate(inputs):
        if not isinstance(x, Tensor):
            continue
        if x.dtype.kind == "f" and x.dtype != np.float64:
            raise TypeError(f"{op}: input {i} (shape {x.shape}) is {x.dtype}; central differences need "
                            f"float64 inputs, convert with .double()")
        if x.requires_grad:
            if not x.is_leaf:
                raise ValueError(f"{op}: input {i} (shape {x.shape}) is not a leaf tensor; pass a leaf "
                                 "(x.detach().requires_grad_())")
            wrt.append(i)
    if not wrt:
        raise ValueError(f"{op}: no input requires grad; nothing to check")
    return wrt


def _outputs(result, op):
    """The floating outputs of ``fn`` as a tuple (integer outputs such as indices are skipped)."""
    result = _as_tuple(result)
    for k, y in enumerate(result):
        if not isinstance(y, Tensor):
            raise TypeError(f"{op}: fn must return Tensors, output {k} is {type(y).__name__}")
    outputs = tuple(y for y in result if y.dtype.kind == "f")
    for k, y in enumerate(outputs):
        if y.dtype != np.float64:
            raise TypeError(f"{op}: output {k} (shape {y.shape}) is {y.dtype}, expected float64")
    return outputs


__all__ = ["gradcheck", "gradgradcheck", "GradcheckError"]
