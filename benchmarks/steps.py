"""Run N training steps of minigan's narrow DCGAN (64×64, batch 1, width 2), nothing else.

The narrow step is almost all per-op Python work (the engine, dispatch, argument checks), so
its cost is the framework's overhead. Timed, it varies with the machine's load; counted in
instructions under valgrind it does not:

    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.5 python -m benchmarks.steps 5
    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.25 python -m benchmarks.steps 25

(with ``OPENBLAS_NUM_THREADS=1``); the difference of the two totals over 20 is one step's
instructions, the start-up cancelled out. benchmarks/RESULTS.md has the counts.
"""
import sys

import minigan

from .dcgan import Twins


def main(steps):
    minigan.backend.tune_cpu()
    twins = Twins(64, 1, width=2)
    for _ in range(steps):
        twins.minigan_step()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 25)
