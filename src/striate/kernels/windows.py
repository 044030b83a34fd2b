"""Sliding windows of any spatial rank, as zero-copy views, and their adjoint.

Convolution and pooling are both "look at every window": ``sliding_windows`` returns a
strided view ``(..., *O, *K)`` of an array ``(..., *D)`` in which ``view[..., o, k]`` is
``x[..., o·stride + k·dilation]``. ``fold`` is its adjoint: it scatter-adds a
``(..., *O, *K)`` array back onto ``(..., *D)``, which is what every backward pass needs.
"""
import itertools

from numpy.lib.stride_tricks import as_strided

from striate._backend import xp


def sliding_windows(x, kernel, stride, dilation):
    """Read-only view ``(..., *O, *K)`` of the windows of ``x`` over its last ``len(kernel)`` axes."""
    n = len(kernel)
    lead, size = x.shape[:-n], x.shape[-n:]
    out = tuple((d - dil * (k - 1) - 1) // s + 1 for d, k, s, dil in zip(size, kernel, stride, dilation))
    lead_strides, axis_strides = x.strides[:-n], x.strides[-n:]
    strides = (lead_strides
               + tuple(a * s for a, s in zip(axis_strides, stride))
               + tuple(a * dil for a, dil in zip(axis_strides, dilation)))
    return as_strided(x, lead + out + tuple(kernel), strides, writeable=False)


def fold(windows, size, kernel, stride, dilation):
    """Adjoint of ``sliding_windows``: sum ``windows (..., *O, *K)`` into a new ``(..., *size)`` array.

    One strided add per kernel tap (∏K of them), each covering every output position at
    once, so the Python loop is as short as the kernel, not as long as the image.
    """
    n = len(kernel)
    out_size = windows.shape[-2 * n:-n]
    lead = windows.shape[:-2 * n]
    result = xp.zeros(lead + tuple(size), dtype=windows.dtype)
    for tap in itertools.product(*(range(k) for k in kernel)):
        target = tuple(slice(t * dil, t * dil + s * (o - 1) + 1, s)
                       for t, dil, s, o in zip(tap, dilation, stride, out_size))
        result[(Ellipsis,) + target] += windows[(Ellipsis,) + tap]
    return result


def pad_spatial(x, pad_lo, pad_hi, value=0.0):
    """``x`` padded on its last ``len(pad_lo)`` axes with a constant; no copy when there is no padding."""
    if not any(pad_lo) and not any(pad_hi):
        return x
    n = len(pad_lo)
    widths = [(0, 0)] * (x.ndim - n) + list(zip(pad_lo, pad_hi))
    return xp.pad(x, widths, mode="constant", constant_values=value)


def crop_spatial(x, pad_lo, size):
    """The ``size`` samples after ``pad_lo`` on the last axes: the inverse of ``pad_spatial``."""
    n = len(pad_lo)
    return x[(Ellipsis,) + tuple(slice(lo, lo + d) for lo, d in zip(pad_lo, size[-n:]))]
