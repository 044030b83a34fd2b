"""Functions that make new tensors: zeros, ones, full, rand, randn, arange and friends.

Dtypes follow PyTorch: float32 unless ``dtype`` says otherwise (``full`` and ``arange``
infer it from their numbers, ``randint`` and ``randperm`` give int64).
"""
import numbers
import operator

from striate._backend import xp
from striate.autograd.tensor import Tensor, float32, int64
from striate.random import default_generator


def _shape(size, op):
    """``size`` as given to ``zeros(2, 3)`` or ``zeros((2, 3))``, as a tuple of non-negative ints."""
    if len(size) == 1 and not isinstance(size[0], numbers.Integral):
        size = size[0]
    try:
        shape = tuple(operator.index(s) for s in size)
    except TypeError:
        raise TypeError(f"{op}: expected a shape of ints, got {size!r}") from None
    if any(s < 0 for s in shape):
        raise ValueError(f"{op}: sizes must be non-negative, got {shape}")
    return shape


def _dtype(dtype, default=float32):
    return xp.dtype(default if dtype is None else dtype)


def _new(array, requires_grad):
    t = Tensor._from_array(array)
    t.requires_grad = requires_grad  # the setter refuses non-float tensors
    return t


def _float_dtype(dtype, op):
    dtype = _dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"{op}: needs a floating-point dtype, got {dtype}")
    return dtype


def zeros(*size, dtype=None, requires_grad=False):
    """A tensor of zeros: ``zeros(2, 3)`` or ``zeros((2, 3))``."""
    return _new(xp.zeros(_shape(size, "zeros"), dtype=_dtype(dtype)), requires_grad)


def ones(*size, dtype=None, requires_grad=False):
    """A tensor of ones: ``ones(2, 3)`` or ``ones((2, 3))``."""
    return _new(xp.ones(_shape(size, "ones"), dtype=_dtype(dtype)), requires_grad)


def empty(*size, dtype=None, requires_grad=False):
    """An uninitialised tensor: ``empty(2, 3)`` or ``empty((2, 3))``."""
    return _new(xp.empty(_shape(size, "empty"), dtype=_dtype(dtype)), requires_grad)


def _fill_dtype(fill_value):
    if isinstance(fill_value, (bool, xp.bool_)):
        return xp.bool_
    if isinstance(fill_value, numbers.Integral):
        return int64
    return float32


def full(size, fill_value, dtype=None, requires_grad=False):
    """A tensor filled with ``fill_value``; its dtype follows the value (bool, int64 or float32)."""
    size = (size,) if isinstance(size, numbers.Integral) else tuple(size)
    dtype = _dtype(dtype, _fill_dtype(fill_value))
    return _new(xp.full(_shape(size, "full"), fill_value, dtype=dtype), requires_grad)


def zeros_like(input, dtype=None, requires_grad=False):
    """Zeros with the shape and (unless ``dtype``) the dtype of ``input``."""
    return _new(xp.zeros(input.shape, dtype=_dtype(dtype, input.dtype)), requires_grad)


def ones_like(input, dtype=None, requires_grad=False):
    """Ones with the shape and (unless ``dtype``) the dtype of ``input``."""
    return _new(xp.ones(input.shape, dtype=_dtype(dtype, input.dtype)), requires_grad)


def full_like(input, fill_value, dtype=None, requires_grad=False):
    """``fill_value`` with the shape and (unless ``dtype``) the dtype of ``input``."""
    return _new(xp.full(input.shape, fill_value, dtype=_dtype(dtype, input.dtype)), requires_grad)


def empty_like(input, dtype=None, requires_grad=False):
    """Uninitialised, with the shape and (unless ``dtype``) the dtype of ``input``."""
    return _new(xp.empty(input.shape, dtype=_dtype(dtype, input.dtype)), requires_grad)


def rand(*size, dtype=None, generator=None, requires_grad=False):
    """Uniform samples in [0, 1), from ``generator`` or the default one (``st.manual_seed``).

    Samples are drawn in float64 and rounded, so float32 and float64 see the same stream.
    """
    dtype = _float_dtype(dtype, "rand")
    rng = generator if generator is not None else default_generator()
    return _new(rng.random(_shape(size, "rand"), dtype=xp.float64).astype(dtype, copy=False), requires_grad)


def randn(*size, dtype=None, generator=None, requires_grad=False):
    """Standard normal samples, from ``generator`` or the default one (``st.manual_seed``)."""
    dtype = _float_dtype(dtype, "randn")
    rng = generator if generator is not None else default_generator()
    return _new(rng.standard_normal(_shape(size, "randn")).astype(dtype, copy=False), requires_grad)


def rand_like(input, dtype=None, generator=None, requires_grad=False):
    """``rand`` with the shape and (unless ``dtype``) the dtype of ``input``."""
    return rand(input.shape, dtype=_dtype(dtype, input.dtype), generator=generator, requires_grad=requires_grad)


def randn_like(input, dtype=None, generator=None, requires_grad=False):
    """``randn`` with the shape and (unless ``dtype``) the dtype of ``input``."""
    return randn(input.shape, dtype=_dtype(dtype, input.dtype), generator=generator, requires_grad=requires_grad)


def randint(low, high=None, size=None, *, generator=None, dtype=None):
    """Uniform integers in [low, high): ``randint(high, size)`` or ``randint(low, high, size)``.

    Example::

        >>> st.randint(10, (3,)).dtype
        dtype('int64')
    """
    if size is None and high is not None and not isinstance(high, numbers.Integral):
        low, high, size = 0, low, high          # randint(high, size)
    elif high is None:
        low, high = 0, low                      # randint(high, size=...)
    if size is None:
        raise TypeError("randint: missing the size argument, e.g. randint(10, (3,))")
    size = (size,) if isinstance(size, numbers.Integral) else tuple(size)
    if not high > low:
        raise ValueError(f"randint: high must be greater than low, got low={low}, high={high}")
    rng = generator if generator is not None else default_generator()
    values = rng.integers(low, high, size=_shape(size, "randint"), dtype=xp.int64)
    return _new(values.astype(_dtype(dtype, int64), copy=False), False)


def randperm(n, *, generator=None, dtype=None):
    """A random permutation of ``0 .. n-1`` (int64)."""
    n = operator.index(n)
    if n < 0:
        raise ValueError(f"randperm: n must be non-negative, got {n}")
    rng = generator if generator is not None else default_generator()
    return _new(rng.permutation(n).astype(_dtype(dtype, int64), copy=False), False)


def arange(start, end=None, step=1, dtype=None, requires_grad=False):
    """Values from ``start`` up to (not including) ``end`` by ``step``, as ``range``.

    All-integer arguments give int64, any float gives float32 (PyTorch's rule).
    """
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError(f"arange: step must be nonzero, got start={start}, end={end}, step={step}")
    if (end - start) * step < 0:
        raise ValueError(f"arange: step {step} never reaches end {end} from start {start}")
    integral = all(isinstance(v, numbers.Integral) for v in (start, end, step))
    dtype = _dtype(dtype, int64 if integral else float32)
    return _new(xp.arange(start, end, step, dtype=xp.int64 if integral else xp.float64).astype(dtype), requires_grad)


def linspace(start, end, steps, dtype=None, requires_grad=False):
    """``steps`` evenly spaced values from ``start`` to ``end``, both included."""
    steps = operator.index(steps)
    if steps < 0:
        raise ValueError(f"linspace: steps must be non-negative, got {steps}")
    return _new(xp.linspace(start, end, steps).astype(_dtype(dtype)), requires_grad)


def eye(n, m=None, dtype=None, requires_grad=False):
    """An ``n × m`` matrix (``m = n`` by default) with ones on the diagonal."""
    n = operator.index(n)
    m = n if m is None else operator.index(m)
    if n < 0 or m < 0:
        raise ValueError(f"eye: sizes must be non-negative, got n={n}, m={m}")
    return _new(xp.eye(n, m, dtype=_dtype(dtype)), requires_grad)


def from_numpy(array):
    """A Tensor that shares ``array``'s memory and keeps its dtype (no copy, like PyTorch's)."""
    if not isinstance(array, xp.ndarray):
        raise TypeError(f"from_numpy: expected a NumPy array, got {type(array).__name__}")
    if array.dtype.kind not in "fiub":
        raise TypeError(f"from_numpy: cannot share an array of dtype {array.dtype} "
                        "(expected bool, integer or floating point)")
    return Tensor._from_array(array)


__all__ = ["zeros", "ones", "empty", "full", "zeros_like", "ones_like", "full_like", "empty_like",
           "rand", "randn", "rand_like", "randn_like", "randint", "randperm", "arange", "linspace", "eye",
           "from_numpy"]
