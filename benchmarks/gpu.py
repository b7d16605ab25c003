"""minigan's Triton kernels against PyTorch on the GPU, in one run: ``python -m benchmarks gpu``.

The tables, in order:

1. the device-to-device copy rate (one large array copied on the GPU): the
   ceiling for the memory-bound kernels;
2. the memory-bound kernels on a StyleGAN-sized feature map, x (16, 256, 64, 64),
   and on StyleGAN's 8x8 layer, x (64, 512, 8, 8): bias + leaky ReLU,
   instance norm and AdaIN, forward and backward. For each: ms, GB/s (the bytes
   it must move, over its time), that rate as a share of the copy rate, and
   torch eager on the same data (for AdaIN the same formula in torch ops, which
   is what fusing saves); batch norm in training, against cuDNN's; and the
   NCHW -> NHWC copy the conv launchers make of their inputs, against torch's
   channels_last copy;
3. conv2d on DCGAN and StyleGAN layer shapes: forward, input gradient (dgrad),
   weight gradient (wgrad), and DCGAN's transposed convolution, against cuDNN
   (TF32 allowed in both); "speed vs cuDNN" is torch's time over minigan's;
4. one DCGAN training step (64x64, batch 64, the CPU suite's ``Twins``) on the
   GPU: minigan (CuPy arrays, kernels on) against torch eager, and the Triton
   launches minigan's step makes (each costs host time: many small ones can
   decide a step's time more than the kernels do); then the same step on a
   DCGAN narrowed to 2 channels a layer and one image, which is host time only.

Every time is the median over ``--repeats`` calls, each timed with CUDA events
on the stream both frameworks launch on (the legacy default stream).

``--dry-run`` runs every case once at toy sizes on the CPU, NumPy arrays and
the kernels under Triton's interpreter: it checks the harness before a GPU run
is spent on it, and says nothing about speed.
"""
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as TF

from minigan.functional.conv import Geometry

from .dcgan import Twins
from .timing import markdown_table


class Clock:
    """Median milliseconds of one call: CUDA events on the GPU (``benchmarks.kernels.gpu_ms``),
    the wall clock in a dry run."""

    def __init__(self, xp, repeats, warmup=2):
        self.xp, self.repeats, self.warmup = xp, repeats, warmup

    def __call__(self, fn):
        if self.xp is not np:
            from .kernels import gpu_ms
            return gpu_ms(fn, self.repeats, self.warmup)
        for _ in range(self.warmup):
            fn()
        samples = []
        for _ in range(self.repeats):
            start = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - start) * 1e3)
        return statistics.median(samples)


def _as_torch(xp, array):
    """The same memory as a torch tensor (no copy)."""
    return torch.from_numpy(array) if xp is np else torch.from_dlpack(array)


def copy_rate(xp, clock, megabytes):
    """GB/s of a device-to-device copy (read + write) of ``megabytes`` of float32."""
    a = xp.ones(megabytes * 2 ** 20 // 4, dtype=np.float32)
    b = xp.empty_like(a)
    return 2 * a.nbytes / (clock(lambda: xp.copyto(b, a)) * 1e-3) / 1e9


def memory_bound(xp, clock, shape, copy_gbs):
    """Bias + leaky ReLU, instance norm, AdaIN and batch norm, forward and backward, and the NCHW -> NHWC
    copy, against torch eager; GB/s counts the bytes each must move at least (batch norm's
    kernels read the data twice: a second read shows as a lower share of the copy rate)."""
    from minigan.kernels import batch_norm, bias_act, layout, norm

    rng = np.random.default_rng(0)
    n, c = shape[:2]
    x, gy = (xp.asarray(rng.standard_normal(shape, dtype=np.float32)) for _ in range(2))
    w, b = (xp.asarray(rng.standard_normal(c, dtype=np.float32)) for _ in range(2))
    ys, yb = (xp.asarray(rng.standard_normal((n, c), dtype=np.float32)) for _ in range(2))
    tx, tgy, tw, tb, tys, tyb = (_as_torch(xp, a) for a in (x, gy, w, b, ys, yb))
    eps = 1e-5

    def torch_adain(t):  # the formula, as a user of torch writes it
        mu = t.mean((2, 3), keepdim=True)
        var = t.var((2, 3), unbiased=False, keepdim=True)
        return (t - mu) / torch.sqrt(var + eps) * tys[:, :, None, None] + tyb[:, :, None, None]

    def torch_backward(forward):  # gradient of the input, through torch's autograd
        t = tx.clone().requires_grad_()
        y = forward(t)
        return lambda: torch.autograd.grad(y, t, tgy, retain_graph=True)

    _, mean, var = norm.norm_forward(x, w, b, eps)
    _, style_mean, style_var = norm.norm_forward(x, ys, yb, eps)
    _, bn_mean, bn_var = batch_norm.batch_norm_forward(x, w, b, eps)
    cases = [
        ("bias + leaky ReLU fwd", lambda: bias_act.bias_leaky_relu(x, b, 0.2, 1.0), 2,
         lambda: TF.leaky_relu(tx + tb[:, None, None], 0.2)),
        ("bias + leaky ReLU bwd", lambda: bias_act.bias_leaky_relu_grad(gy, x, b, 0.2, 1.0), 3,
         torch_backward(lambda t: TF.leaky_relu(t + tb[:, None, None], 0.2))),
        ("instance norm fwd", lambda: norm.norm_forward(x, w, b, eps), 2,
         lambda: TF.instance_norm(tx, weight=tw, bias=tb, eps=eps)),
        ("instance norm bwd", lambda: norm.norm_backward(x, gy, w, mean, var, eps), 3,
         torch_backward(lambda t: TF.instance_norm(t, weight=tw, bias=tb, eps=eps))),
        ("AdaIN fwd", lambda: norm.norm_forward(x, ys, yb, eps), 2, lambda: torch_adain(tx)),
        ("AdaIN bwd", lambda: norm.norm_backward(x, gy, ys, style_mean, style_var, eps), 3,
         torch_backward(torch_adain)),
        ("batch norm fwd (training)", lambda: batch_norm.batch_norm_forward(x, w, b, eps), 2,
         lambda: TF.batch_norm(tx, None, None, weight=tw, bias=tb, training=True, eps=eps)),
        ("batch norm bwd", lambda: batch_norm.batch_norm_backward(x, gy, w, bn_mean, bn_var, eps), 3,
         torch_backward(lambda t: TF.batch_norm(t, None, None, weight=tw, bias=tb, training=True, eps=eps))),
        ("NCHW -> NHWC (conv input)", lambda: layout.move_axis_last(x.reshape(n, c, -1)), 2,
         lambda: tx.contiguous(memory_format=torch.channels_last)),
    ]
    rows = []
    for name, mine, passes, theirs in cases:
        ms, torch_ms = clock(mine), clock(theirs)
        rate = passes * x.nbytes / (ms * 1e-3) / 1e9
        rows.append([name, f"{ms:.3f}", f"{rate:.0f}", f"{100 * rate / copy_gbs:.0f}%",
                     f"{torch_ms:.3f}", f"{torch_ms / ms:.2f}"])
    header = ["kernel", "minigan ms", "GB/s", "% of copy", "torch eager ms", "torch / minigan"]
    return f"x {tuple(shape)} float32, {x.nbytes / 1e6:.0f} MB\n\n" + markdown_table(header, rows)


# (name, batch, in channels, out channels, input size, kernel, stride, padding)
CONV_LAYERS = [
    ("DCGAN D2 4x4 s2", 64, 64, 128, 32, 4, 2, 1),
    ("DCGAN D4 4x4 s2", 64, 256, 512, 8, 4, 2, 1),
    ("StyleGAN 3x3, 512 @ 8", 64, 512, 512, 8, 3, 1, 1),
    ("StyleGAN 3x3, 256 @ 32", 64, 256, 256, 32, 3, 1, 1),
    ("StyleGAN 3x3, 128 @ 64", 64, 128, 128, 64, 3, 1, 1),
]


def convolutions(xp, clock, layers):
    """conv2d forward, dgrad and wgrad per layer, and DCGAN's transposed convolution, against cuDNN."""
    from minigan.kernels import conv

    rng = np.random.default_rng(0)
    rows = []
    for name, n, cin, cout, size, k, stride, pad in layers:
        out = (size + 2 * pad - k) // stride + 1
        x = xp.asarray(rng.standard_normal((n, cin, size, size), dtype=np.float32))
        w = xp.asarray(rng.standard_normal((cout, cin, k, k), dtype=np.float32) * np.float32(0.02))
        gy = xp.asarray(rng.standard_normal((n, cout, out, out), dtype=np.float32))
        tx, tw, tgy = (_as_torch(xp, a) for a in (x, w, gy))
        geo = Geometry((stride, stride), (pad,) * 4, (1, 1), 1)
        flops = 2 * n * out * out * cout * cin * k * k
        passes = [
            ("fwd", lambda: conv.conv2d_forward(x, w, None, geo, (out, out)),
             lambda: TF.conv2d(tx, tw, stride=stride, padding=pad)),
            ("dgrad", lambda: conv.conv2d_input_grad(w, gy, None, geo, x.shape),
             lambda: torch.nn.grad.conv2d_input(tx.shape, tw, tgy, stride=stride, padding=pad)),
            ("wgrad", lambda: conv.conv2d_weight_grad(x, gy, geo, w.shape),
             lambda: torch.nn.grad.conv2d_weight(tx, tw.shape, tgy, stride=stride, padding=pad)),
        ]
        if stride == 2:  # the same dgrad kernel is a transposed convolution: G's layer, cout -> cin
            passes.append(("ConvT fwd", lambda: conv.conv2d_input_grad(w, gy, None, geo, x.shape),
                           lambda: TF.conv_transpose2d(tgy, tw, stride=stride, padding=pad)))
        for pass_name, mine, theirs in passes:
            ms, torch_ms = clock(mine), clock(theirs)
            rows.append([name, f"{n}x{cin}x{size}² → {cout}x{out}²", pass_name, f"{ms:.3f}",
                         f"{torch_ms:.3f}", f"{torch_ms / ms:.2f}", f"{flops / (ms * 1e-3) / 1e12:.0f}"])
    header = ["layer", "shape", "pass", "minigan ms", "cuDNN ms", "speed vs cuDNN", "minigan TFLOP/s"]
    return markdown_table(header, rows)


def training_step(device, clock, steps):
    """DCGAN steps (D then G, Adam) on ``device`` in both frameworks, the same weights and batch,
    one row per (image size, batch size, width); and how many Triton launches minigan's step makes.

    A narrow DCGAN (width 2, one image) does next to no arithmetic: its row is the
    frameworks' host time per step, what the full step's ratio comes down to
    where the layers are small.
    """
    from minigan.kernels import bridge
    rows = []
    for image_size, batch_size, width in steps:
        twins = Twins(image_size, batch_size, device=device, width=width)
        mine, theirs = twins.minigan_step(), twins.torch_step()
        if not np.allclose(mine, theirs, rtol=2e-2, atol=1e-3):  # TF32 products in both
            raise RuntimeError(f"DCGAN {image_size}: minigan's losses {mine} differ from torch's {theirs}")
        with bridge.counting() as launches:  # where the host's time per step may go
            twins.minigan_step()
        ms, torch_ms = clock(twins.minigan_step), clock(twins.torch_step)
        rows.append([f"DCGAN {image_size}×{image_size}, batch {batch_size}, width {width}", f"{ms:.2f}",
                     f"{torch_ms:.2f}", f"{ms / torch_ms:.2f}", str(sum(launches.values()))])
    return markdown_table(["training step (D + G, Adam)", "minigan ms", "torch eager ms", "minigan / torch",
                           "minigan Triton launches"], rows)


def _triton_version():
    import triton
    return triton.__version__


def run(args):
    if args.dry_run:
        xp, device = np, "cpu"
        # width 8 makes the same launches as width 64, in a third of the time under the interpreter
        sizes = dict(copy_mb=1, feature_maps=[(2, 3, 5, 7)], steps=[(16, 2, 8), (16, 1, 2)],
                     layers=[(name, 2, 3, 4, 8 if k == 4 else 6, k, s, p)
                             for name, _, _, _, _, k, s, p in CONV_LAYERS[::2]])
    else:
        import cupy as xp
        device = "cuda"
        # a large map (the targets), and StyleGAN's 8x8 layer, where many short rows share a program
        sizes = dict(copy_mb=1024, feature_maps=[(16, 256, 64, 64), (64, 512, 8, 8)],
                     steps=[(64, 64, 64), (64, 1, 2)],
                     layers=CONV_LAYERS)
        torch.backends.cudnn.allow_tf32 = True  # as minigan's float32 convolutions (MINIGAN_TF32)
        torch.backends.cudnn.benchmark = True
    clock = Clock(xp, 1, warmup=0) if args.dry_run else Clock(xp, args.repeats)
    if xp is np:
        print("dry run: toy sizes on the CPU, kernels under Triton's interpreter; no timing means anything")
    else:
        name = xp.cuda.runtime.getDeviceProperties(0)["name"]
        name = name.decode() if isinstance(name, bytes) else name
        print(f"GPU: {name}; CuPy {xp.__version__}, triton {_triton_version()}, torch {torch.__version__}")
    copy_gbs = copy_rate(xp, clock, sizes["copy_mb"])
    print()
    print(markdown_table(["device-to-device copy", "GB/s"], [[f"{sizes['copy_mb']} MB float32", f"{copy_gbs:.0f}"]]))
    print()
    for shape in sizes["feature_maps"]:
        print(memory_bound(xp, clock, shape, copy_gbs))
        print()
    print(convolutions(xp, clock, sizes["layers"]))
    print()
    print(training_step(device, clock, sizes["steps"]))
