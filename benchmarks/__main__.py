"""python -m benchmarks cpu [--repeats N] [--threads T] [--batch-size B] [--parts layers,step,split]

The thread count is fixed before numpy and torch are imported (their BLAS and
OpenMP pools read it at start-up), and torch is given the same number as
numpy's BLAS, so both frameworks run on the same cores. (Importing minigan
tells numpy's OpenBLAS to let its idle threads sleep at once: see
``minigan.backend.openblas_idle_threads_sleep``.)
"""
import argparse
import os


def _parse():
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[1])
    parser.add_argument("suite", choices=["cpu"],
                        help="what to time (cpu: minigan on NumPy vs torch on the CPU)")
    parser.add_argument("--repeats", type=int, default=10,
                        help="samples per measurement (medians are reported)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="BLAS / OpenMP threads for both frameworks (default: all cores)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-sizes", default="64,32", help="DCGAN image sizes, comma-separated")
    parser.add_argument("--parts", default="layers,step,split",
                        help="which tables after the GEMM rate: layers, step, split (comma-separated)")
    return parser.parse_args()


def main():
    args = _parse()
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import torch
    from . import cpu

    torch.set_num_threads(args.threads)
    threads = {"cores": os.cpu_count(), "numpy": _numpy_blas_threads(args.threads)}
    if threads["numpy"] != torch.get_num_threads():
        print(f"warning: numpy's BLAS runs {threads['numpy']} threads, torch {torch.get_num_threads()}")
    cpu.run(args, threads)


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
