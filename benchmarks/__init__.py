"""Speed of minigan against PyTorch on the same work, printed as ratios.

    python -m benchmarks cpu            # GEMM rate, DCGAN's conv layers, one DCGAN training step
    python -m benchmarks gpu            # the Triton kernels and a DCGAN step against torch and cuDNN
    python -m benchmarks.kernels        # each kernel on its file header's shape: kernel, CuPy op, torch (GPU)
    python -m benchmarks.sass           # what each kernel compiles to on sm_90, read without a GPU

Every number is measured in one run, minigan and torch interleaved (call A,
call B, call A, ...), so a machine that gets busier halfway slows both; each
ratio is the median over repeats of minigan's time / torch's time, and a ratio
below 1 means minigan is faster.
"""
