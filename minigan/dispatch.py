"""Array path or Triton kernel: the one place that decides, for every op.

minigan's ops are written on arrays, NumPy on the CPU and CuPy on the GPU, and
that array code is the op: what a reader follows. The hot ops also have Triton
kernels (the repository's kernels/, installed as ``minigan.kernels``). An op asks
here which of the two runs::

    kernel(op, *arrays)  ->  None: the op's own array code runs
                             else:  the kernel that KERNELS names, imported now

The answer is ``backend.kernels_enabled(*arrays)``: on CuPy arrays the kernels
run unless ``MINIGAN_KERNELS=0``; on NumPy arrays only under Triton's
interpreter (``TRITON_INTERPRET=1 MINIGAN_KERNELS=1``, how CI runs the kernels'
code on the CPU); and only on float16, float32 or float64 arrays of one dtype.
Triton is imported when a kernel is first asked for, never by ``import minigan``.

What each kernel takes the place of:

    op                  kernel (minigan.kernels.)   in place of
    conv2d              conv.conv2d_forward         Conv2dFunction.forward: im2col, then one GEMM
    conv2d_input_grad   conv.conv2d_input_grad      Conv2dGradInput.forward: GEMM, then col2im
    conv2d_weight_grad  conv.conv2d_weight_grad     Conv2dGradWeight.forward: im2col^T @ gy
    leaky_relu          ops.BiasLeakyReLU           the LeakyReLU Function
    fused_leaky_relu    ops.BiasLeakyReLU           x + b, LeakyReLU, times the gain
    instance_norm       ops.instance_norm           the Tensor-op composite
    adain               ops.adain                   the Tensor-op composite
    batch_norm          ops.batch_norm_training     BatchNormTraining
    adam                optim                       Adam's array lines, per parameter

A convolution's kernel replaces only its Function's forward (``KernelForward``):
the three convolution Functions differentiate into one another, so their
backward, and every derivative after it, is the array path's, each Function
asking again here. The other kernels are whole Functions with a differentiable
backward of their own (kernels/ops.py), which the op calls instead of its own.
"""
import functools
import importlib

from . import backend
from .autograd import Function

# op -> (module of minigan.kernels, name in it; None: the module itself)
KERNELS = {
    "conv2d": ("conv", "conv2d_forward"),
    "conv2d_input_grad": ("conv", "conv2d_input_grad"),
    "conv2d_weight_grad": ("conv", "conv2d_weight_grad"),
    "leaky_relu": ("ops", "BiasLeakyReLU"),
    "fused_leaky_relu": ("ops", "BiasLeakyReLU"),
    "instance_norm": ("ops", "instance_norm"),
    "adain": ("ops", "adain"),
    "batch_norm": ("ops", "batch_norm_training"),
    "adam": ("optim", None),
}


def kernel(op, *arrays):
    """The kernel that runs ``op`` on ``arrays`` (None entries are skipped), or None where
    the op's array code runs."""
    if not backend.kernels_enabled(*arrays):
        return None
    module, name = KERNELS[op]
    module = importlib.import_module(f"{__package__}.kernels.{module}")
    return module if name is None else getattr(module, name)


class KernelForward(Function):
    """A Function whose forward a kernel may run: ``kernel_op`` names its row in KERNELS.

    The subclass writes ``forward`` on arrays, as any Function, and nothing about
    kernels. Where the kernels run on a call's inputs, that call's forward is the
    kernel instead, handed the Function's settings by KERNEL_FORWARDS below.
    """

    kernel_op = None

    def __call__(self, *inputs):
        launcher = kernel(self.kernel_op, *[getattr(t, "array", t) for t in inputs])
        if launcher is None:
            return super().__call__(*inputs)
        self.forward = functools.partial(KERNEL_FORWARDS[self.kernel_op], launcher, self)
        try:
            return super().__call__(*inputs)
        finally:
            del self.forward  # a node in the graph holds no reference to itself


# the convolution kernels take the Function's geometry and the size the array path works out
def _conv2d(launch, node, x, w, b=None):
    return launch(x, w, b, node.geo, node.out_hw)


def _conv2d_input_grad(launch, node, w, gy, b=None):
    return launch(w, gy, b, node.geo, node.x_shape)


def _conv2d_weight_grad(launch, node, x, gy):
    return launch(x, gy, node.geo, node.w_shape)


KERNEL_FORWARDS = {"conv2d": _conv2d, "conv2d_input_grad": _conv2d_input_grad,
                   "conv2d_weight_grad": _conv2d_weight_grad}
