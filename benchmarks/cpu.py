"""minigan vs torch on the CPU: the GEMM rate, DCGAN's conv layers, one DCGAN training step.

The tables, in order:

1. the machine's float32 GEMM rate (a large square ``numpy.matmul``, and
   ``torch.mm`` for comparison): the ceiling for a convolution done as GEMMs;
2. every conv layer of DCGAN's G and D (64x64 and 32x32), forward and
   forward + backward (input and weight gradients), each framework's time, the
   ratio, and minigan's and torch's GFLOP/s as a share of numpy's GEMM rate;
   then the same summed over each network;
3. one full DCGAN training step (D and G, batch norm, Adam) in both;
4. (``--parts split``) minigan's step split into its BLAS products and the
   rest, next to torch's whole step: the products are the im2col design's floor;
5. (``--parts overhead``) the step on a DCGAN narrowed to 2 channels a layer and
   one image: next to no arithmetic, so it times each framework's own work per op.

Both frameworks get the same NCHW-contiguous float32 arrays.
"""
import os
import platform
import time

import numpy as np
import torch

import minigan as mg
from minigan import functional as F
from minigan.functional import conv as conv_module

from .dcgan import WIDTH, Twins, layers
from .timing import interleaved, markdown_table, median, paired_ratio


def gemm_rate(repeats, size=2048):
    """Float32 GFLOP/s of one (size x size) @ (size x size) product, numpy and torch.

    The best sample, not the median: a shared machine's slow samples say how busy
    it was, the fastest how fast it can multiply, and the ceiling is what the
    conv layers are measured against. ``run`` takes it at the start and the end.
    """
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    out, tout = np.empty_like(a), torch.empty(size, size)
    times = interleaved({"numpy": lambda: np.matmul(a, b, out=out),
                         "torch": lambda: torch.mm(ta, tb, out=tout)}, repeats)
    flops = 2 * size ** 3
    return {name: flops / min(t) / 1e9 for name, t in times.items()}


def _layer_inputs(layer, batch_size, rng):
    x = rng.standard_normal((batch_size, layer.cin, layer.in_size, layer.in_size), dtype=np.float32)
    shape = (layer.cin, layer.cout, 4, 4) if layer.transposed else (layer.cout, layer.cin, 4, 4)
    w = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)
    gy = rng.standard_normal((batch_size, layer.cout, layer.out_size, layer.out_size), dtype=np.float32)
    return x, w, gy


def _conv_calls(layer, x, w, gy):
    """forward and forward+backward closures for minigan and torch on the same arrays."""
    args = (layer.stride, layer.padding)
    mg_conv = F.conv_transpose2d if layer.transposed else F.conv2d
    th_conv = torch.nn.functional.conv_transpose2d if layer.transposed else torch.nn.functional.conv2d
    mx, mw = mg.Tensor(x, requires_grad=True), mg.Tensor(w, requires_grad=True)
    tx, tw = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
    mgy, tgy = mg.Tensor(gy), torch.from_numpy(gy)

    def mg_forward():
        with mg.no_grad():
            return mg_conv(mx, mw, None, *args)

    def th_forward():
        with torch.no_grad():
            return th_conv(tx, tw, None, *args)

    def mg_both():
        mx.grad = mw.grad = None
        mg_conv(mx, mw, None, *args).backward(mgy)

    def th_both():
        tx.grad = tw.grad = None
        th_conv(tx, tw, None, *args).backward(tgy)

    return (mg_forward, th_forward), (mg_both, th_both)


def conv_layers(repeats, batch_size, sizes, numpy_gflops):
    """Per layer and pass: times, ratio, GFLOP/s as % of numpy's GEMM rate.

    Returns the table and a summary with the sums over each network's layers.
    """
    rng = np.random.default_rng(0)
    rows, totals = [], {}
    for image_size in sizes:
        for layer in layers(image_size):
            x, w, gy = _layer_inputs(layer, batch_size, rng)
            for (mine, theirs), (pass_name, products) in zip(_conv_calls(layer, x, w, gy),
                                                             (("fwd", 1), ("fwd+bwd", 3))):
                t = interleaved({"minigan": mine, "torch": theirs}, repeats)
                flops = products * layer.flops() * batch_size
                mg_t, th_t = median(t["minigan"]), median(t["torch"])
                total = totals.setdefault((image_size, layer.name[0], pass_name), [0.0, 0.0, 0])
                total[0], total[1], total[2] = total[0] + mg_t, total[1] + th_t, total[2] + flops
                kind = "ConvT" if layer.transposed else "Conv"
                rows.append([
                    f"{image_size}", layer.name,
                    f"{kind} {layer.cin}→{layer.cout}, {layer.in_size}→{layer.out_size}", pass_name,
                    f"{mg_t * 1e3:.1f}", f"{th_t * 1e3:.1f}",
                    f"{paired_ratio(t['minigan'], t['torch']):.2f}",
                    _share(flops, mg_t, numpy_gflops), _share(flops, th_t, numpy_gflops)])
    header = ["image", "layer", "shape", "pass", "minigan ms", "torch ms", "ratio",
              "minigan % GEMM", "torch % GEMM"]
    summary = [[f"{size}", "G" if net == "G" else "D", pass_name, f"{mg_t * 1e3:.0f}", f"{th_t * 1e3:.0f}",
                f"{mg_t / th_t:.2f}", _share(flops, mg_t, numpy_gflops), _share(flops, th_t, numpy_gflops)]
               for (size, net, pass_name), (mg_t, th_t, flops) in totals.items()]
    summary_header = ["image", "net", "pass", "minigan ms", "torch ms", "ratio of sums",
                      "minigan % GEMM", "torch % GEMM"]
    return markdown_table(header, rows), markdown_table(summary_header, summary)


def _share(flops, seconds, gemm_gflops):
    """Achieved GFLOP/s as a share of the GEMM rate."""
    return f"{100 * flops / seconds / 1e9 / gemm_gflops:.0f}%"


def training_step(repeats, batch_size, sizes, width=WIDTH):
    """One DCGAN training step (D then G, Adam) in each framework, side by side.

    With a ``width`` (ngf = ndf) below 64, the networks narrowed to it: at width 2
    and batch 1 the arithmetic is negligible and the step times each framework's
    own work per op, which on a GPU is what a small layer's time is made of.
    """
    rows = []
    for image_size in sizes:
        twins = Twins(image_size, batch_size, width=width)
        mine, theirs = twins.minigan_step(), twins.torch_step()  # same weights, same batch
        if not np.allclose(mine, theirs, rtol=1e-3, atol=1e-4):
            raise RuntimeError(f"DCGAN {image_size}: minigan's losses {mine} differ from torch's {theirs}; "
                               "the two steps are not doing the same work")
        t = interleaved({"minigan": twins.minigan_step, "torch": twins.torch_step}, repeats, warmup=1)
        label = f"DCGAN {image_size}×{image_size}, batch {batch_size}"
        digits = 0 if width == WIDTH else 1
        rows.append([label if width == WIDTH else f"{label}, width {width}",
                     f"{median(t['minigan']) * 1e3:.{digits}f}", f"{median(t['torch']) * 1e3:.{digits}f}",
                     f"{paired_ratio(t['minigan'], t['torch']):.2f}"])
    title = "training step (D + G, Adam)" if width == WIDTH else "overhead: the step on a narrow DCGAN"
    return markdown_table([title, "minigan ms", "torch ms", "ratio"], rows)


class _ProductTimer:
    """Times every BLAS product of minigan's convolutions (``conv._matmul``) while on."""

    def __init__(self):
        self.seconds, self.flops = 0.0, 0

    def __enter__(self):
        self._matmul = conv_module._matmul

        depth = [0]  # _matmul calls itself for a transposed product: count the outer call only

        def timed(xp, a, b, transposed=None):
            depth[0] += 1
            start = time.perf_counter()
            try:
                out = self._matmul(xp, a, b, transposed)
            finally:
                depth[0] -= 1
            if depth[0] == 0:
                self.seconds += time.perf_counter() - start
                self.flops += 2 * a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]
            return out

        conv_module._matmul = timed
        return self

    def __exit__(self, *exc):
        conv_module._matmul = self._matmul


def step_split(repeats, batch_size, sizes, numpy_gflops):
    """Where minigan's training step goes: its conv layers' BLAS products, and the rest.

    The products are the floor of an im2col design: the step cannot be faster
    than they are, and the table sets them next to torch's whole step.
    """
    rows = []
    for image_size in sizes:
        twins = Twins(image_size, batch_size)
        twins.minigan_step()
        products, steps, torch_steps = [], [], []
        for _ in range(repeats):
            with _ProductTimer() as timer:
                start = time.perf_counter()
                twins.minigan_step()
                steps.append(time.perf_counter() - start)
            products.append(timer.seconds)
            start = time.perf_counter()
            twins.torch_step()
            torch_steps.append(time.perf_counter() - start)
        step, product, theirs = median(steps), median(products), median(torch_steps)
        rows.append([f"DCGAN {image_size}×{image_size}, batch {batch_size}", f"{step * 1e3:.0f}",
                     f"{product * 1e3:.0f}", f"{timer.flops / 1e9:.1f}",
                     f"{timer.flops / product / 1e9:.0f} ({_share(timer.flops, product, numpy_gflops)})",
                     f"{(step - product) * 1e3:.0f}", f"{theirs * 1e3:.0f}", f"{product / theirs:.2f}"])
    header = ["training step", "minigan ms", "of it, products ms", "products GFLOP",
              "products GFLOP/s (% GEMM)", "the rest ms", "torch step ms", "products / torch step"]
    return markdown_table(header, rows)


def machine(threads):
    """The facts that make a CPU timing reproducible."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        blas = np.__config__.CONFIG["Build Dependencies"]["blas"]
        blas = f"{blas['name']} {blas.get('version', '')}"
    except (AttributeError, KeyError):  # numpy < 1.25 has no CONFIG
        blas = "unknown BLAS"
    return (f"CPU: {model}, {threads['cores']} cores; numpy {np.__version__} with {blas} "
            f"({threads['numpy']} threads); torch {torch.__version__} "
            f"({torch.get_num_threads()} threads)")


def _load():
    """The 1-minute load average: other work on the machine slows both frameworks,
    and torch's OpenMP barriers far more than OpenBLAS (a core taken away stalls them)."""
    return f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "n/a"


def run(args, threads):
    print(machine(threads))
    print(f"load average at start: {_load()}")
    print()
    rates = gemm_rate(args.repeats)
    sizes = [int(s) for s in args.image_sizes.split(",")]
    tables = []
    if "layers" in args.parts:
        tables += conv_layers(args.repeats, args.batch_size, sizes, rates["numpy"])
    if "step" in args.parts:
        tables.append(training_step(args.repeats, args.batch_size, sizes))
    if "split" in args.parts:
        tables.append(step_split(args.repeats, args.batch_size, sizes, rates["numpy"]))
    if "overhead" in args.parts:
        tables.append(training_step(max(args.repeats, 50), 1, sizes, width=2))
    end = gemm_rate(args.repeats)
    print(markdown_table(["float32 GEMM 2048³ (best sample)", "GFLOP/s at start", "at end"],
                         [[name, f"{rate:.0f}", f"{end[name]:.0f}"] for name, rate in rates.items()]))
    print()
    print("% GEMM below: of numpy's rate at the start.")
    for table in tables:
        print()
        print(table)
    print()
    print(f"load average at end: {_load()}")
