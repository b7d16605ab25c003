"""What runs under every Tensor, one job a module:

    devices        NumPy on the CPU, CuPy on the GPU: an op's array module, moving arrays
    rng            one seeded random generator per device, with a state checkpoints hold
    kernel_switch  whether an op runs its Triton kernel or its NumPy/CuPy code
    threads        NumPy work on a batch split between the CPU's cores
    tuning         tune_cpu(): process-wide CPU settings, made only when a program asks

Their public names are all reachable here, as ``minigan.backend.<name>``.
"""
from .devices import cuda_available, device, device_of, get_array_module, normalize_device, to_device, to_numpy, xp_for
from .kernel_switch import kernels_enabled
from .rng import DeviceGenerator, generator, get_rng_state, manual_seed, set_rng_state
from .threads import batch_sum, cpu_threads, over_batch
from .tuning import keep_freed_host_memory, openblas_idle_threads_sleep, tune_cpu
