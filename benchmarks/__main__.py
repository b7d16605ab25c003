"""python -m benchmarks cpu [--repeats N] [--threads T] [--batch-size B] [--parts layers,step,split,overhead]
python -m benchmarks gpu [--repeats N] [--dry-run]

cpu: minigan on NumPy against torch on the CPU (benchmarks/cpu.py); gpu: the
Triton kernels and a DCGAN step against torch and cuDNN (benchmarks/gpu.py).

For the cpu suite, the thread count is fixed before numpy and torch are imported (their BLAS and
OpenMP pools read it at start-up), and torch is given the same number as
numpy's BLAS, so both frameworks run on the same cores. Both suites then call
``minigan.backend.tune_cpu()``, as the examples do: freed host memory is kept
for reuse and numpy's OpenBLAS lets its idle threads sleep at once (torch, in
the same process, runs with these settings too).
"""
import argparse
import os


def _parse():
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[1])
    parser.add_argument("suite", choices=["cpu", "gpu"],
                        help="what to time (cpu: minigan on NumPy vs torch on the CPU; gpu: the kernels)")
    parser.add_argument("--repeats", type=int, default=10,
                        help="samples per measurement (medians are reported)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="BLAS / OpenMP threads for both frameworks (default: all cores)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-sizes", default="64,32", help="DCGAN image sizes, comma-separated")
    parser.add_argument("--parts", default="layers,step,split,overhead",
                        help="cpu: which tables after the GEMM rate: layers, step, split, overhead (comma-separated)")
    parser.add_argument("--dry-run", action="store_true",
                        help="gpu: every case once at toy sizes on the CPU, the kernels under Triton's "
                             "interpreter (checks the harness, not the speed)")
    return parser.parse_args()


def main():
    args = _parse()
    if args.suite == "gpu":
        if args.dry_run:  # read when triton is imported
            os.environ.update(TRITON_INTERPRET="1", MINIGAN_KERNELS="1")
        from . import gpu
        _tune_cpu()
        gpu.run(args)
        return
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import torch
    from . import cpu

    torch.set_num_threads(args.threads)
    _tune_cpu()
    threads = {"cores": os.cpu_count(), "numpy": _numpy_blas_threads(args.threads)}
    if threads["numpy"] != torch.get_num_threads():
        print(f"warning: numpy's BLAS runs {threads['numpy']} threads, torch {torch.get_num_threads()}")
    cpu.run(args, threads)


def _tune_cpu():
    """minigan's CPU settings, made after the thread counts (minigan imports numpy), and printed."""
    from minigan.backend import tune_cpu
    print("tune_cpu():", ", ".join(f"{name} {'on' if on else 'off'}" for name, on in tune_cpu().items()))


def _numpy_blas_threads(asked):
    """numpy's BLAS thread count as the library reports it (threadpoolctl), else what was asked."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return asked
    import numpy  # noqa: F401  (load its BLAS so threadpoolctl can see it)
    counts = [p["num_threads"] for p in threadpool_info()
              if p["user_api"] == "blas" and "numpy" in p["filepath"]]
    return counts[0] if counts else asked


if __name__ == "__main__":
    main()
