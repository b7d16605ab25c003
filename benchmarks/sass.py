"""What a kernel compiles to on sm_90, read without a GPU: ``python -m benchmarks.sass``.

Timing needs the device; much of why a kernel is slow does not. This compiles
the launches that the launchers choose for the file headers' typical shapes
(``bridge.recording`` + ``bridge.compile_for``, specialized as Triton's launcher
would), disassembles the cubin with the ``nvdisasm`` and ``cuobjdump`` that
ship in Triton's wheel, and reports per kernel:

    registers, stack     per thread; a stack means spills to local memory
    shared               bytes of shared memory per program
    loop                 instructions per thread in the main loop's body (its
                         longest backward branch), or in the whole kernel if it has none
    gmma                 tensor-core instructions (HGMMA, sm_90's wgmma) in that body
    16-byte / narrow     global loads, stores and async copies, 16 bytes wide or narrower
    calls                subroutine calls (64-bit integer division compiles to one)

The conv kernels' headers quote these numbers; tests/test_kernels.py checks the
ones that decide speed (tensor-core instructions, 16-byte copies, a loop budget).
"""
import collections
import os
import re
import subprocess
import tempfile

import numpy as np

from minigan.kernels import batch_norm, bias_act, bridge, conv, layout, norm, optim

_INSTRUCTION = re.compile(r"/\*[0-9a-f]+\*/\s+(?:@!?U?P[T0-9]+\s+)?([A-Z][A-Z0-9_.]*)")


def _tool(name):
    import triton
    path = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{name} is not in this Triton's wheel ({path})")
    return path


def resources(compiled):
    """Registers and stack bytes per thread of a compiled kernel (``bridge.compile_for``), as
    ``cuobjdump --dump-resource-usage`` reads them off its cubin: {"REG": .., "STACK": ..}."""
    with tempfile.TemporaryDirectory() as folder:
        cubin = os.path.join(folder, "kernel.cubin")
        with open(cubin, "wb") as f:
            f.write(compiled.asm["cubin"])
        usage = subprocess.run([_tool("cuobjdump"), "--dump-resource-usage", cubin], capture_output=True,
                               text=True, check=True).stdout
    found = dict(re.findall(r"(REG|STACK):(\d+)", usage))
    return {key: int(found.get(key, 0)) for key in ("REG", "STACK")}


def report(launch):
    """The compiled facts of one recorded launch (see the module's docstring), as a dict."""
    compiled = bridge.compile_for(launch)
    with tempfile.TemporaryDirectory() as folder:
        cubin = os.path.join(folder, "kernel.cubin")
        with open(cubin, "wb") as f:
            f.write(compiled.asm["cubin"])
        lines = subprocess.run([_tool("nvdisasm"), "-c", cubin], capture_output=True, text=True,
                               check=True).stdout.splitlines()
    labels = {line.strip().rstrip(":"): i for i, line in enumerate(lines) if line.startswith(".L")}
    body = lines
    for i, line in enumerate(lines):  # the longest backward branch spans the main loop
        target = re.search(r"BRA\s+`?\(?(\.L_x_\d+)", line)
        start = labels.get(target.group(1), i) if target else i
        if start < i - 1 and (body is lines or i - start > len(body)):  # (not the trap: BRA to itself)
            body = lines[start:i + 1]
    opcodes = lambda part: collections.Counter(m.group(1) for m in map(_INSTRUCTION.search, part) if m)  # noqa: E731
    ops = opcodes(body)
    memory = {op: k for op, k in ops.items() if op.startswith(("LDG", "STG")) and op != "LDGDEPBAR"}
    usage = resources(compiled)
    return dict(kernel=launch.kernel.fn.__name__, warps=launch.options["num_warps"],
                registers=usage["REG"], stack=usage["STACK"],
                shared=compiled.metadata.shared, loop=sum(ops.values()),
                gmma=sum(k for op, k in ops.items() if "GMMA" in op),
                wide=sum(k for op, k in memory.items() if op.endswith(".128")),
                narrow=sum(k for op, k in memory.items() if not op.endswith(".128")),
                calls=sum(k for op, k in opcodes(lines).items() if op.startswith("CALL")))


def typical_launches():
    """(label, launch) for the headers' typical shapes, float32."""
    from minigan.functional.conv import Geometry
    z = lambda *shape: np.zeros(shape, np.float32)  # noqa: E731
    cases = []
    for label, (n, c, hw, o, k, s) in (("3x3 64x256x16x16", (64, 256, 16, 256, 3, 1)),
                                        ("4x4 s2 64x128x32x32", (64, 128, 32, 256, 4, 2))):
        geo = Geometry((s, s), (1, 1, 1, 1), (1, 1), 1)
        out = geo.out_size((hw, hw), (k, k))
        # recorded launches do not run, so the weight gradient's split-K sum adds uninitialised memory
        with bridge.recording() as launches, np.errstate(over="ignore", invalid="ignore"):
            conv.conv2d_forward(z(n, c, hw, hw), z(o, c, k, k), None, geo, out)
            conv.conv2d_input_grad(z(o, c, k, k), z(n, o, *out), None, geo, (n, c, hw, hw))
            conv.conv2d_weight_grad(z(n, c, hw, hw), z(n, o, *out), geo, (o, c, k, k))
        seen = set()
        for launch in launches:  # dgrad's stride phases share one compiled kernel; the layout copies come below
            if launch.kernel not in seen and launch.kernel.fn.__name__.startswith("conv2d"):
                seen.add(launch.kernel)
                cases.append((label, launch))
    for shape in ((16, 256, 64, 64), (16, 512, 8, 8)):  # a big map, and StyleGAN's 8x8 (rows share programs)
        x, p, stats = z(*shape), z(shape[1]), np.zeros(shape[:2], np.float32)
        with bridge.recording() as launches:
            norm.norm_forward(x, p, p, 1e-5)
            norm.norm_backward(x, x, p, stats, stats, 1e-5)
            if shape[2] == 64:
                bias_act.bias_leaky_relu(x, p, 0.2, 2 ** 0.5)
                bias_act.bias_leaky_relu_grad(x, x, p, 0.2, 2 ** 0.5)
                layout.move_axis_last(x.reshape(16, 256, -1))
                flat = x.reshape(-1)
                hyper = dict(lr=2e-4, beta1=0.5, beta2=0.999, eps=1e-8, weight_decay=0, decoupled=False,
                             maximize=False, step=1)
                optim.adam_update(flat, flat, flat, flat, None, **hyper)
                optim.adam_update_many([(flat, flat, flat, flat, None)], **hyper)
        cases += [("x".join(map(str, shape)), launch) for launch in launches]
    # a DCGAN generator layer's batch norm; and few channels on a small map, where the apply
    # kernels merge the most chunks per program
    for shape in ((64, 128, 16, 16), (256, 4, 4, 4)):
        x, p, stats = z(*shape), z(shape[1]), z(shape[1])
        with bridge.recording() as launches:
            batch_norm.batch_norm_forward(x, p, p, 1e-5, running=(stats, stats, 0.1))
            batch_norm.batch_norm_backward(x, x, p, stats, stats, 1e-5)
        cases += [("x".join(map(str, shape)), launch) for launch in launches]
    return cases


def main():
    import triton
    print(f"sm_90, Triton {triton.__version__}; per thread: registers, stack bytes; main loop: instructions, "
          "tensor-core (GMMA), 16-byte and narrower global loads/stores/copies; subroutine calls")
    print(f"{'kernel':30s} {'shape':20s} {'warps':>5s} {'regs':>5s} {'stack':>5s} {'shared':>7s} "
          f"{'loop':>5s} {'gmma':>4s} {'16B':>4s} {'<16B':>4s} {'calls':>5s}")
    for label, launch in typical_launches():
        r = report(launch)
        print(f"{r['kernel']:30s} {label:20s} {r['warps']:5d} {r['registers']:5d} {r['stack']:5d} "
              f"{r['shared']:7d} {r['loop']:5d} {r['gmma']:4d} {r['wide']:4d} {r['narrow']:4d} {r['calls']:5d}")


if __name__ == "__main__":
    main()
