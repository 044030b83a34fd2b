"""N-d cross-correlation and true convolution with scipy.signal's modes, on sliding windows.

Both are one computation. With the "full" output indexed from 0, correlation is

    full[j] = Σ_k in1[j + k − (K − 1)] · in2[k]          (per axis; in1 is 0 outside its support)

so ``full`` is ``in1`` zero-padded by ``K − 1`` on both sides, cut into windows the size of
``in2``, each multiplied with ``in2`` and summed. Every mode is a box of that full output, and
cutting the box first just means padding less. True convolution is the same thing with the
kernel flipped on every axis: ``convolve(a, v) == correlate(a, v[::-1, ::-1, ...])``.
"""
from striate._backend import xp
from striate.autograd.tensor import Tensor
from striate.kernels.windows import pad_spatial, sliding_windows

_MODES = ("full", "valid", "same")


def correlate(in1, in2, mode="full"):
    """Cross-correlate two N-d arrays: slide ``in2`` over ``in1`` without flipping it.

    This is what a convolutional layer computes (``F.conv*`` are correlations). Equal to
    ``scipy.signal.correlate(in1, in2, mode, method="direct")`` on real input.

    Args:
        in1: array (or Tensor, read through its data) of any rank ≥ 1, real numbers.
        in2: the kernel, an array of the same rank as ``in1``.
        mode: which part of the output to return, per axis, with ``D = in1`` and ``K = in2`` sizes:
            ``"full"`` — every overlap, even partial: ``D + K − 1`` samples.
            ``"valid"`` — only where one input lies wholly inside the other: ``|D − K| + 1``
            samples. ``in1`` must be at least as large as ``in2`` on every axis or at most as
            large on every axis (when ``in2`` is the larger, the result is still the matching
            part of the full output, as in scipy).
            ``"same"`` — ``D`` samples, centred on the full output: it starts at full index
            ``(K − 1) // 2``, so for an even kernel the extra sample of context is on the left.

    Shape:
        ``in1 (*D)``, ``in2 (*K)`` → ``(*D + K − 1)`` full, ``(*|D − K| + 1)`` valid, ``(*D)`` same.
        The dtype is ``numpy.result_type(in1, in2)``; integers stay integers (and wrap on overflow).

    Example:
        >>> import numpy as np
        >>> correlate(np.array([0., 1., 2., 3.]), np.array([1., -1.]))
        array([ 0., -1., -1., -1.,  3.])
    """
    image, kernel = _check_inputs(in1, in2, mode, "correlate")
    return _correlate(image, kernel, mode)


def convolve(in1, in2, mode="full"):
    """Convolve two N-d arrays: correlation with ``in2`` flipped on every axis.

    ``convolve(a, v, mode) == correlate(a, flip(v), mode)`` — that is literally how it is
    computed. Equal to ``scipy.signal.convolve(in1, in2, mode, method="direct")`` on real input;
    unlike correlation it is commutative in "full" mode.

    Args:
        in1: array (or Tensor) of any rank ≥ 1, real numbers.
        in2: the kernel, same rank as ``in1``.
        mode: ``"full"``, ``"valid"`` or ``"same"``, exactly as for `correlate`.

    Shape:
        As `correlate`: ``(*D + K − 1)`` full, ``(*|D − K| + 1)`` valid, ``(*D)`` same.

    Example:
        >>> import numpy as np
        >>> convolve(np.array([0., 1., 2., 3.]), np.array([1., -1.]))
        array([ 0.,  1.,  1.,  1., -3.])
    """
    image, kernel = _check_inputs(in1, in2, mode, "convolve")
    flipped = kernel[(slice(None, None, -1),) * kernel.ndim]    # reversed on every axis (a view)
    return _correlate(image, flipped, mode)


def _correlate(image, kernel, mode):
    """Correlation of validated arrays of equal rank ≥ 1: pad, take windows, contract with the kernel."""
    if image.ndim == 0:
        return xp.asarray(image * kernel)
    dtype = xp.result_type(image, kernel)
    image, kernel = image.astype(dtype, copy=False), kernel.astype(dtype, copy=False)
    start, length = _output_box(image.shape, kernel.shape, mode)
    # Output index j reads padded samples j … j + K − 1; starting the output at full index s
    # needs K − 1 − s samples of zeros on the left, and enough on the right for `length` windows.
    pad_lo = tuple(k - 1 - s for k, s in zip(kernel.shape, start))
    pad_hi = tuple(n + k - 1 - d - lo for n, k, d, lo in zip(length, kernel.shape, image.shape, pad_lo))
    padded = pad_spatial(image, pad_lo, pad_hi)
    ones = (1,) * image.ndim
    windows = sliding_windows(padded, kernel.shape, ones, ones)                 # (*O, *K) view
    return xp.tensordot(windows, kernel, axes=kernel.ndim)                     # (*O)


def _output_box(image_shape, kernel_shape, mode):
    """Per-axis (start, length) of the requested mode's output within the full output."""
    if mode == "full":
        return (0,) * len(image_shape), tuple(d + k - 1 for d, k in zip(image_shape, kernel_shape))
    if mode == "same":
        return tuple((k - 1) // 2 for k in kernel_shape), tuple(image_shape)
    # "valid": the positions where the smaller input lies wholly inside the larger one.
    return (tuple(min(d, k) - 1 for d, k in zip(image_shape, kernel_shape)),
            tuple(abs(d - k) + 1 for d, k in zip(image_shape, kernel_shape)))


def _check_inputs(in1, in2, mode, op):
    """Both inputs as real numeric arrays of equal rank, non-empty, with a known mode."""
    image, kernel = _as_real_array(in1, "in1", op), _as_real_array(in2, "in2", op)
    if mode not in _MODES:
        raise ValueError(f"{op}: mode must be one of 'full', 'valid', 'same', got {mode!r}")
    if image.ndim != kernel.ndim:
        raise ValueError(f"{op}: in1 and in2 must have the same number of dimensions, got in1 of shape "
                         f"{image.shape} ({image.ndim}-D) and in2 of shape {kernel.shape} ({kernel.ndim}-D)")
    if image.size == 0 or kernel.size == 0:
        raise ValueError(f"{op}: in1 and in2 must not be empty, got shapes {image.shape} and {kernel.shape}")
    if mode == "valid":
        larger = all(d >= k for d, k in zip(image.shape, kernel.shape))
        smaller = all(d <= k for d, k in zip(image.shape, kernel.shape))
        if not (larger or smaller):
            raise ValueError(f"{op}: in 'valid' mode one input must be at least as large as the other "
                             f"on every axis, got shapes {image.shape} and {kernel.shape}")
    return image, kernel


def _as_real_array(value, name, op):
    if isinstance(value, Tensor):
        value = value.data
    array = xp.asarray(value)
    if array.dtype.kind == "c":
        raise TypeError(f"{op}: {name} must be real, got complex dtype {array.dtype} "
                        f"(correlate the real and imaginary parts separately)")
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{op}: {name} must hold integers or floats, got dtype {array.dtype}")
    return array
