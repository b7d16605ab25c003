"""Random numbers: one seeded generator per device (``manual_seed``), so a run is
reproducible and its RNG state can be checkpointed.
"""
import numpy as np

from . import devices

_generators = {}


class DeviceGenerator:
    """CuPy's random numbers, with a state that a checkpoint can hold.

    CuPy's ``RandomState`` (cuRAND underneath) cannot say where in its stream it
    is, so a run resumed from a checkpoint would draw other numbers than the run
    it continues. This one reseeds before every draw: draw k comes from the seed
    derived from (seed, k), so ``state`` is just those two integers. It reseeds
    cuRAND's Philox generator, which is counter-based: a new seed sets no state
    up on the device. Draws take CuPy's methods and arguments (``dtype=`` too).
    """

    def __init__(self, seed=None):
        self.seed = int(np.random.SeedSequence(seed).generate_state(1, np.uint64)[0]) if seed is None else int(seed)
        self.draws = 0
        self._random = devices.cp.random.RandomState(method=_philox())

    @property
    def state(self):
        return {"seed": self.seed, "draws": self.draws}

    @state.setter
    def state(self, state):
        self.seed, self.draws = int(state["seed"]), int(state["draws"])

    def __getattr__(self, name):
        draw = getattr(self._random, name)

        def reseeded(*args, **kwargs):
            seed = np.random.SeedSequence((self.seed, self.draws)).generate_state(1, np.uint64)[0]
            self._random.seed(int(seed))
            self.draws += 1
            return draw(*args, **kwargs)
        return reseeded


def _philox():
    """cuRAND's Philox4x32-10 generator type (None: CuPy's default, where cuRAND is not there)."""
    try:
        from cupy_backends.cuda.libs import curand
    except ImportError:
        return None
    return curand.CURAND_RNG_PSEUDO_PHILOX4_32_10


def manual_seed(seed):
    """Seed the random generators of every device, like ``torch.manual_seed``."""
    seed = int(seed)
    _generators["cpu"] = np.random.Generator(np.random.PCG64(seed))
    if devices.cuda_available():
        _generators["cuda"] = DeviceGenerator(seed)
    return seed


def generator(device="cpu"):
    """The seeded generator of ``device``: a NumPy Generator, or a ``DeviceGenerator`` (CuPy's
    RandomState methods)."""
    device = devices.normalize_device(device)
    if device not in _generators:
        _generators[device] = np.random.Generator(np.random.PCG64()) if device == "cpu" else DeviceGenerator()
    return _generators[device]


def get_rng_state(device="cpu"):
    """The generator's state of ``device`` as a JSON-friendly dict (for checkpoints)."""
    gen = generator(device)
    return gen.bit_generator.state if devices.normalize_device(device) == "cpu" else gen.state


def set_rng_state(state, device="cpu"):
    """Restore a state returned by ``get_rng_state(device)``."""
    gen = generator(device)
    if devices.normalize_device(device) == "cpu":
        gen.bit_generator.state = state
    else:
        gen.state = state
