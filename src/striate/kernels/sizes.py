"""Output-size arithmetic and argument normalisation for sliding-window ops.

A window of ``k`` taps spaced ``dilation`` apart spans ``dilation·(k − 1) + 1``
samples. Sliding it with step ``stride`` over ``d`` samples padded by ``lo`` and
``hi`` gives ``floor((d + lo + hi − span) / stride) + 1`` positions.
"""
import math


def ntuple(value, n, name, op):
    """``value`` as an ``n``-tuple of ints: an int is repeated, a sequence must have length ``n``."""
    if isinstance(value, bool):
        raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    if isinstance(value, int) or hasattr(value, "__index__") and not hasattr(value, "__len__"):
        return (int(value),) * n
    try:
        values = tuple(value)
    except TypeError:
        raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}") from None
    if len(values) == 1 and n > 1:
        values = values * n
    if len(values) != n or not all(isinstance(v, int) and not isinstance(v, bool) or hasattr(v, "__index__") for v in values):
        raise ValueError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    return tuple(int(v) for v in values)


def check_positive(values, name, op):
    if any(v <= 0 for v in values):
        raise ValueError(f"{op}: {name} must be positive in every dimension, got {values}")


def check_non_negative(values, name, op):
    if any(v < 0 for v in values):
        raise ValueError(f"{op}: {name} must be non-negative in every dimension, got {values}")


def window_span(kernel, dilation):
    """Samples covered by one window: ``dilation·(k − 1) + 1`` per dimension."""
    return tuple(dil * (k - 1) + 1 for k, dil in zip(kernel, dilation))


def conv_output_size(size, kernel, stride, pad_lo, pad_hi, dilation):
    """Window positions along one dimension: ``floor((d + lo + hi − span) / s) + 1`` (may be ≤ 0)."""
    span = dilation * (kernel - 1) + 1
    return (size + pad_lo + pad_hi - span) // stride + 1


def pool_output_size(size, kernel, stride, padding, dilation, ceil_mode):
    """Pooled length along one dimension, PyTorch's rule.

    ``(d + 2p − span) / s + 1`` rounded down, or up with ``ceil_mode``; in ceil mode a
    last window that would start in the right padding is dropped.
    """
    span = dilation * (kernel - 1) + 1
    numerator = size + 2 * padding - span
    if ceil_mode:
        out = -(-numerator // stride) + 1
        if (out - 1) * stride >= size + padding:
            out -= 1
    else:
        out = numerator // stride + 1
    return out


def same_padding(size, kernel, stride, dilation):
    """(low, high) padding so the output has ``ceil(d / s)`` samples — "same" at any stride.

    Total padding is ``max((ceil(d/s) − 1)·s + (k − 1)·dil + 1 − d, 0)``; when it is odd the
    extra sample goes on the high side (as PyTorch and TensorFlow do).
    """
    total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2
