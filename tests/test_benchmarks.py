"""The CPU benchmark times the same work in both frameworks: a small run of its pieces."""
import numpy as np

from benchmarks.dcgan import Twins, layers


def test_dcgan_layers_chain_from_latent_to_image_and_back_to_a_logit():
    for size in (32, 64):
        g = [l for l in layers(size) if l.transposed]
        d = [l for l in layers(size) if not l.transposed]
        assert (g[0].in_size, g[-1].out_size, g[-1].cout) == (1, size, 3)
        assert (d[0].in_size, d[-1].out_size, d[-1].cout) == (size, 1, 1)
        for net in (g, d):
            assert all(a.out_size == b.in_size and a.cout == b.cin for a, b in zip(net, net[1:]))


def test_minigan_and_torch_training_steps_agree_over_two_steps():
    twins = Twins(image_size=32, batch_size=4)
    for _ in range(2):  # the second step also checks that Adam and the running stats moved alike
        np.testing.assert_allclose(twins.minigan_step(), twins.torch_step(), rtol=1e-3, atol=1e-4)


def test_product_timer_counts_each_layers_flops_once():
    import minigan as mg
    from minigan import functional as F
    from benchmarks.cpu import _ProductTimer
    rng = np.random.default_rng(0)
    for layer in layers(32)[1:3] + layers(32)[-3:-1]:  # transposed (a product computed transposed) and plain
        x = mg.tensor(rng.standard_normal((2, layer.cin, layer.in_size, layer.in_size)).astype(np.float32))
        shape = (layer.cin, layer.cout, 4, 4) if layer.transposed else (layer.cout, layer.cin, 4, 4)
        w = mg.tensor(rng.standard_normal(shape).astype(np.float32))
        conv = F.conv_transpose2d if layer.transposed else F.conv2d
        with _ProductTimer() as timer:
            conv(x, w, None, layer.stride, layer.padding)
        assert timer.flops == 2 * layer.flops(), layer


def test_gpu_suite_runs_every_case_in_a_dry_run_on_the_cpu():
    # the GPU harness is run where a GPU is lent; this keeps it from breaking in between
    import subprocess
    import sys
    from pathlib import Path

    import pytest
    pytest.importorskip("triton", reason="the kernels need triton (Linux)")
    done = subprocess.run([sys.executable, "-m", "benchmarks", "gpu", "--dry-run"],
                          cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    for table in ("device-to-device copy", "AdaIN bwd", "batch norm bwd", "NCHW -> NHWC", "speed vs cuDNN",
                  "ConvT fwd", "DCGAN 16×16, batch 2, width 8", "DCGAN 16×16, batch 1, width 2", "Triton launches"):
        assert table in done.stdout, table
