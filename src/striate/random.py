"""striate's random number generator: one seedable default, or pass your own ``Generator``."""
import numbers

import numpy

_default = numpy.random.default_rng()


def manual_seed(seed):
    """Seed the default generator used by initialisation, dropout, ``rand`` and ``randn``."""
    global _default
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"manual_seed: seed must be a non-negative int, got {seed!r}")
    _default = numpy.random.default_rng(int(seed))
    return _default


def default_generator():
    """The generator used when an op is not given one."""
    return _default


def get_rng_state():
    """The default generator's state as a JSON-serialisable dict (for exact resume)."""
    return _default.bit_generator.state


def set_rng_state(state):
    _default.bit_generator.state = state


__all__ = ["manual_seed", "default_generator", "get_rng_state", "set_rng_state"]
