"""Time each kernel on the typical shape of its file's header: ``python -m benchmarks.kernels`` (GPU).

For every op: the Triton kernel, the CuPy op it replaces (``MINIGAN_KERNELS=0``'s
path) and torch on the same memory (cuDNN for the convolutions), in ms per call
measured with CUDA events, and the kernel's share of the H100 roofline (bytes
moved / 3.35 TB/s, or flops / ~400 TFLOP/s dense TF32). These are the numbers
the headers' "measured" lines record.
"""
import os

import numpy as np

H100_BYTES_PER_S = 3.35e12
H100_TF32_FLOPS = 400e12  # dense, SXM


def gpu_ms(fn, repeats=20, warmup=2):
    """Median milliseconds of one call of ``fn``, each timed with CUDA events on CuPy's current
    stream (after ``warmup`` calls: compiles, autotuning, allocator pools)."""
    import statistics

    import cupy
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        samples.append(cupy.cuda.get_elapsed_time(start, stop))
    return statistics.median(samples)


def _reference(fn):
    """``fn`` run with the kernels off: the CuPy op."""
    def run():
        previous = os.environ.get("MINIGAN_KERNELS")
        os.environ["MINIGAN_KERNELS"] = "0"
        try:
            return fn()
        finally:
            if previous is None:
                del os.environ["MINIGAN_KERNELS"]
            else:
                os.environ["MINIGAN_KERNELS"] = previous
    return run


def cases():
    """(name, kernel call, CuPy reference call, torch call, bytes, flops) on the headers' shapes."""
    import cupy
    import torch
    import torch.nn.functional as TF

    import minigan as mg
    from minigan.functional import conv as C
    from minigan.functional.activation import LeakyReLU
    from minigan.functional.normalization import BatchNormTraining
    from minigan.optim import Adam

    from minigan.kernels import batch_norm, bias_act, conv, layout, norm, optim

    rng = cupy.random.default_rng(0)
    t = torch.from_dlpack

    x = rng.standard_normal((16, 512, 64, 64), dtype=np.float32)
    b = rng.standard_normal(512, dtype=np.float32)
    gain = 2 ** 0.5
    yield ("bias_leaky_relu forward", lambda: bias_act.bias_leaky_relu(x, b, 0.2, gain),
           _reference(lambda: LeakyReLU(0.2).forward(x + b[:, None, None]) * np.float32(gain)),
           lambda: TF.leaky_relu(t(x) + t(b)[:, None, None], 0.2) * gain, 2 * x.nbytes, 3 * x.size)
    yield ("bias_leaky_relu backward", lambda: bias_act.bias_leaky_relu_grad(x, x, b, 0.2, gain),
           None, None, 3 * x.nbytes, 3 * x.size)

    x = rng.standard_normal((16, 256, 64, 64), dtype=np.float32)
    w = rng.standard_normal(256, dtype=np.float32)
    y, mean, var = norm.norm_forward(x, w, w, 1e-5)

    def numpy_norm():
        mu = x.mean((2, 3), keepdims=True)
        centered = x - mu
        return centered / cupy.sqrt((centered * centered).mean((2, 3), keepdims=True) + 1e-5) * w[:, None, None]

    yield ("instance_norm forward", lambda: norm.norm_forward(x, w, w, 1e-5), numpy_norm,
           lambda: TF.instance_norm(t(x), weight=t(w), bias=t(w)), 2 * x.nbytes, 5 * x.size)
    yield ("instance_norm backward", lambda: norm.norm_backward(x, x, w, mean, var, 1e-5),
           None, None, 3 * x.nbytes, 8 * x.size)

    p, g = (rng.standard_normal(16 * 2 ** 20, dtype=np.float32) for _ in range(2))
    m, v = cupy.zeros_like(p), cupy.zeros_like(p)
    mine = mg.tensor(p.copy(), device="cuda", requires_grad=True)
    mine.grad = mg.tensor(g, device="cuda")
    theirs = torch.nn.Parameter(t(p.copy()))
    theirs.grad = t(g)
    adam = dict(lr=2e-4, betas=(0.5, 0.999))
    yield ("adam update (16 M parameters)",
           lambda: optim.adam_update(p, g, m, v, None, lr=2e-4, beta1=0.5, beta2=0.999, eps=1e-8, weight_decay=0,
                                     decoupled=False, maximize=False, step=1),
           _reference(Adam([mine], **adam).step), torch.optim.Adam([theirs], **adam).step, 28 * p.size, 10 * p.size)

    # DCGAN's G and D (64x64): 24 parameters, one launch (and one copy of the address table) for each net
    from .dcgan import Twins
    twins = Twins(64, 1, device="cuda")
    for net in (twins.mg_g, twins.mg_d):
        for q in net.parameters():
            q.grad = mg.tensor(rng.standard_normal(q.shape, dtype=np.float32), device="cuda")
    for net in (twins.th_g, twins.th_d):
        for q in net.parameters():
            q.grad = torch.randn_like(q)
    mine_opts = [Adam(net.parameters(), **adam) for net in (twins.mg_g, twins.mg_d)]
    theirs_opts = [torch.optim.Adam(net.parameters(), **adam) for net in (twins.th_g, twins.th_d)]
    count = sum(q.numel() for net in (twins.mg_g, twins.mg_d) for q in net.parameters())
    yield ("adam step (DCGAN G + D)", lambda: [opt.step() for opt in mine_opts], None,
           lambda: [opt.step() for opt in theirs_opts], 28 * count, 10 * count)

    x = rng.standard_normal((64, 128, 16, 16), dtype=np.float32)
    w = rng.standard_normal(128, dtype=np.float32)
    _, mean, var = batch_norm.batch_norm_forward(x, w, w, 1e-5)
    node = BatchNormTraining((0, 2, 3), 1e-5, True, True)
    yield ("batch_norm forward", lambda: batch_norm.batch_norm_forward(x, w, w, 1e-5),
           _reference(lambda: node.forward(x, w, w)),
           lambda: TF.batch_norm(t(x), None, None, weight=t(w), bias=t(w), training=True), 3 * x.nbytes, 5 * x.size)
    yield ("batch_norm backward", lambda: batch_norm.batch_norm_backward(x, x, w, mean, var, 1e-5),
           None, None, 5 * x.nbytes, 8 * x.size)

    x = rng.standard_normal((64, 256, 32, 32), dtype=np.float32)
    rows = x.reshape(64, 256, -1)
    yield ("move_axis_last (NCHW->NHWC)", lambda: layout.move_axis_last(rows),
           lambda: cupy.ascontiguousarray(rows.transpose(0, 2, 1)),
           lambda: t(x).contiguous(memory_format=torch.channels_last), 2 * x.nbytes, 0)

    x = rng.standard_normal((16, 256, 32, 32), dtype=np.float32)
    w = rng.standard_normal((256, 256, 3, 3), dtype=np.float32) * 0.02
    geo = C.Geometry((1, 1), (1, 1, 1, 1), (1, 1), 1)
    gy = rng.standard_normal((16, 256, 32, 32), dtype=np.float32)
    flops = 2 * 16 * 32 * 32 * 256 * 256 * 9
    moved = x.nbytes + w.nbytes + gy.nbytes
    yield ("conv2d forward 3x3", lambda: conv.conv2d_forward(x, w, None, geo, (32, 32)),
           _reference(lambda: C.Conv2dFunction(geo, (32, 32)).forward(x, w)),
           lambda: TF.conv2d(t(x), t(w), padding=1), moved, flops)
    yield ("conv2d dgrad 3x3", lambda: conv.conv2d_input_grad(w, gy, None, geo, x.shape),
           _reference(lambda: C.Conv2dGradInput(geo, x.shape).forward(w, gy)),
           lambda: torch.nn.grad.conv2d_input(x.shape, t(w), t(gy), padding=1), moved, flops)
    yield ("conv2d wgrad 3x3", lambda: conv.conv2d_weight_grad(x, gy, geo, w.shape),
           _reference(lambda: C.Conv2dGradWeight(geo, w.shape).forward(x, gy)),
           lambda: torch.nn.grad.conv2d_weight(t(x), w.shape, t(gy), padding=1), moved, flops)

    # a DCGAN generator layer: conv_transpose2d 4x4, stride 2 (dgrad by four stride phases)
    x = rng.standard_normal((16, 256, 16, 16), dtype=np.float32)
    w = rng.standard_normal((256, 128, 4, 4), dtype=np.float32) * 0.02
    geo = C.Geometry((2, 2), (1, 1, 1, 1), (1, 1), 1)
    out_shape = (16, 128, 32, 32)
    yield ("conv_transpose2d 4x4 s2", lambda: conv.conv2d_input_grad(w, x, None, geo, out_shape),
           _reference(lambda: C.Conv2dGradInput(geo, out_shape).forward(w, x)),
           lambda: TF.conv_transpose2d(t(x), t(w), stride=2, padding=1),
           x.nbytes + w.nbytes + 4 * int(np.prod(out_shape)), 2 * 16 * 16 * 16 * 256 * 128 * 16)


def main():
    import torch
    torch.backends.cudnn.allow_tf32 = True
    print(f"{'op':28} {'kernel ms':>10} {'CuPy ms':>9} {'torch ms':>9} {'roofline':>9}")
    for name, kernel, reference, torch_call, moved, flops in cases():
        ms = gpu_ms(kernel)
        ref = gpu_ms(reference) if reference else float("nan")
        tms = gpu_ms(torch_call) if torch_call else float("nan")  # both on the legacy default stream
        bound = max(moved / H100_BYTES_PER_S, flops / H100_TF32_FLOPS) * 1e3
        print(f"{name:28} {ms:10.3f} {ref:9.3f} {tms:9.3f} {bound / ms:8.0%}")


if __name__ == "__main__":
    main()
