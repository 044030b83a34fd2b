"""Functions that make new tensors: zeros, ones, full, rand, randn, arange and friends."""
from striate._backend import xp
from striate.autograd.tensor import Tensor, float32
from striate.random import default_generator


def _shape(size):
    if len(size) == 1 and not isinstance(size[0], int):
        size = tuple(size[0])
    if any(not isinstance(s, int) or s < 0 for s in size):
        raise ValueError(f"expected a shape of non-negative ints, got {size}")
    return tuple(size)


def _new(array, requires_grad):
    return Tensor._from_array(array, requires_grad=requires_grad)


def zeros(*size, dtype=float32, requires_grad=False):
    return _new(xp.zeros(_shape(size), dtype=dtype), requires_grad)


def ones(*size, dtype=float32, requires_grad=False):
    return _new(xp.ones(_shape(size), dtype=dtype), requires_grad)


def full(size, fill_value, dtype=float32, requires_grad=False):
    return _new(xp.full(_shape((size,)), fill_value, dtype=dtype), requires_grad)


def empty(*size, dtype=float32, requires_grad=False):
    return _new(xp.empty(_shape(size), dtype=dtype), requires_grad)


def zeros_like(t, dtype=None, requires_grad=False):
    return _new(xp.zeros(t.shape, dtype=dtype or t.dtype), requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    return _new(xp.ones(t.shape, dtype=dtype or t.dtype), requires_grad)


def rand(*size, dtype=float32, generator=None, requires_grad=False):
    """Uniform samples in [0, 1)."""
    rng = generator or default_generator()
    return _new(rng.random(_shape(size), dtype=xp.float64).astype(dtype, copy=False), requires_grad)


def randn(*size, dtype=float32, generator=None, requires_grad=False):
    """Standard normal samples."""
    rng = generator or default_generator()
    return _new(rng.standard_normal(_shape(size)).astype(dtype, copy=False), requires_grad)


def randint(low, high, size, generator=None):
    rng = generator or default_generator()
    return _new(rng.integers(low, high, size=_shape((size,)), dtype=xp.int64), False)


def arange(start, end=None, step=1, dtype=None, requires_grad=False):
    """Like ``range``: integers give int64, floats give float32."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        dtype = xp.int64 if all(isinstance(v, int) for v in (start, end, step)) else float32
    return _new(xp.arange(start, end, step).astype(dtype), requires_grad)


__all__ = ["zeros", "ones", "full", "empty", "zeros_like", "ones_like", "rand", "randn", "randint", "arange"]
