"""PyTorch's type promotion for operations on several operands (bool < integer < floating).

NumPy and PyTorch disagree on mixed kinds: NumPy gives ``int64 + float32 → float64`` and
``int / int → float64``; PyTorch keeps ``float32`` in both. These rules reproduce PyTorch's
``torch.result_type`` for the bool, integer and floating dtypes striate has.
"""
import numbers

from striate._backend import xp

_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}
_DEFAULT_FLOAT = xp.dtype(xp.float32)
_INT64 = xp.dtype(xp.int64)
_BOOL = xp.dtype(xp.bool_)


def promote_types(a, b):
    """The dtype two tensors' dtypes combine to: across categories the higher one's, within one NumPy's rule."""
    if a is None:
        return b
    if b is None or a == b:
        return a
    ca, cb = _CATEGORY[a.kind], _CATEGORY[b.kind]
    if ca != cb:
        return a if ca > cb else b
    return xp.promote_types(a, b)


def _combine_categories(higher, lower):
    """A higher-priority operand's dtype wins unless the lower one is of a higher category."""
    if higher is None:
        return lower
    if lower is None or higher.kind == "f":
        return higher
    if higher.kind == "b" or lower.kind == "f":
        return promote_types(higher, lower)
    return higher


def is_scalar(value):
    """A Python (or NumPy) number, which PyTorch treats as a weak "wrapped number"."""
    return isinstance(value, (numbers.Number, xp.bool_))


def _scalar_dtype(value):
    if isinstance(value, (bool, xp.bool_)):
        return _BOOL
    if isinstance(value, numbers.Integral):
        return _INT64
    if isinstance(value, numbers.Real):
        return _DEFAULT_FLOAT
    raise TypeError(f"striate supports bool, integer and floating-point numbers, got {value!r}")


def result_type(*operands):
    """The dtype PyTorch gives an operation on ``operands`` (tensors, arrays or Python numbers).

    Operands with dimensions decide first, then 0-d tensors, then Python numbers; a later
    group changes the result only when it is of a higher category (an integer tensor times
    a Python float is float32; a float32 tensor plus a 0-d float64 tensor stays float32).
    """
    dims = zero = wrapped = None
    for x in operands:
        if is_scalar(x):
            wrapped = promote_types(wrapped, _scalar_dtype(x))
        elif x.ndim:
            dims = promote_types(dims, x.dtype)
        else:
            zero = promote_types(zero, x.dtype)
    return _combine_categories(dims, _combine_categories(zero, wrapped))


__all__ = ["promote_types", "result_type", "is_scalar"]
