"""The classic hand-made 2-D filters, as float64 arrays — hand-engineered features to set beside learned ones.

Sign convention: every kernel here is written for **correlation**, the operation a CNN layer and
`striate.signal.correlate` perform, and the one ``scipy.ndimage`` and OpenCV's ``filter2D`` use.
Axes are (row, column) = (y, x) with y growing downwards, as in an image array. So ``sobel("x")``
is ``[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]`` and responds *positively* where intensity rises
from left to right (a dark-to-bright vertical edge), ``sobel("y")`` where it rises from top to
bottom. Textbooks that print ``[[1, 0, -1], [2, 0, -2], [1, 0, -1]]`` (Wikipedia, for one) mean
it for true convolution: that matrix is this one flipped, and ``convolve(image, flipped) ==
correlate(image, sobel("x"))``.

    from striate.signal import correlate, kernels
    gx = correlate(image, kernels.sobel("x"), mode="same")
    weight = st.tensor(kernels.sobel("x").astype("float32")[None, None])  # (1, 1, 3, 3), F.conv2d
"""
import functools
import math

from striate._backend import xp

_AXES = {"x": "x", 1: "x", -1: "x", "y": "y", 0: "y", -2: "y"}


def _derivative(axis, smoothing, op):
    """Central difference ``[-1, 0, 1]`` along ``axis`` times ``smoothing`` across it (a separable kernel)."""
    if isinstance(axis, bool) or not isinstance(axis, (str, int)) or axis not in _AXES:
        raise ValueError(f"{op}: axis must be 'x' (along columns; 1 or -1) or 'y' (along rows; 0 or -2), "
                         f"got {axis!r}")
    difference = xp.array([-1.0, 0.0, 1.0])
    smoothing = xp.array(smoothing, dtype=xp.float64)
    if _AXES[axis] == "x":
        return xp.outer(smoothing, difference)            # rows smooth, columns differentiate
    return xp.outer(difference, smoothing)


def sobel(axis="x"):
    """Sobel derivative: a central difference smoothed by ``[1, 2, 1]``; detects edges across ``axis``.

    ``sobel("x")`` (vertical edges, brighter to the right is positive)::

        [[-1, 0, 1],
         [-2, 0, 2],
         [-1, 0, 1]]

    ``sobel("y")`` (horizontal edges, brighter below is positive) is its transpose. Identical to
    ``scipy.ndimage.sobel(image, axis=1)`` / ``axis=0`` away from the border.

    Args:
        axis: ``"x"`` (derivative along columns, also 1 or -1) or ``"y"`` (along rows, also 0 or -2).

    Example:
        >>> sobel("y")
        array([[-1., -2., -1.],
               [ 0.,  0.,  0.],
               [ 1.,  2.,  1.]])
    """
    return _derivative(axis, [1, 2, 1], "sobel")


def prewitt(axis="x"):
    """Prewitt derivative: a central difference averaged over three rows (or columns); detects edges.

    ``prewitt("x")``::

        [[-1, 0, 1],
         [-1, 0, 1],
         [-1, 0, 1]]

    ``prewitt("y")`` is its transpose. Same signs as `sobel`; equal to ``scipy.ndimage.prewitt``
    away from the border.

    Args:
        axis: ``"x"`` (also 1 or -1) or ``"y"`` (also 0 or -2).
    """
    return _derivative(axis, [1, 1, 1], "prewitt")


def scharr(axis="x"):
    """Scharr derivative: like Sobel with ``[3, 10, 3]`` smoothing, closer to rotation-invariant.

    ``scharr("x")`` (OpenCV's ``Scharr`` with ``dx=1``)::

        [[ -3, 0,  3],
         [-10, 0, 10],
         [ -3, 0,  3]]

    ``scharr("y")`` is its transpose.

    Args:
        axis: ``"x"`` (also 1 or -1) or ``"y"`` (also 0 or -2).
    """
    return _derivative(axis, [3, 10, 3], "scharr")


def laplacian(diagonals=False):
    """Discrete Laplacian (sum of second derivatives); responds to blobs, lines and corners, zero on ramps.

    The 4-neighbour stencil (``scipy.ndimage.laplace``), or with ``diagonals=True`` the 8-neighbour one::

        [[0,  1, 0],        [[1,  1, 1],
         [1, -4, 1],         [1, -8, 1],
         [0,  1, 0]]         [1,  1, 1]]

    Both sum to 0, so flat and linearly shaded regions give 0; symmetric, so correlation and
    convolution agree.
    """
    if diagonals:
        kernel = xp.ones((3, 3))
        kernel[1, 1] = -8.0
        return kernel
    return xp.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def gaussian(size=5, sigma=1.0):
    """Gaussian blur ``size × size``: weights ``exp(−(i² + j²) / 2σ²)`` about the centre, summing to 1.

    ``i`` and ``j`` are offsets from the centre ``(size − 1) / 2`` (half-integers for an even size).
    Smooths noise while keeping low frequencies; the larger ``sigma``, the wider the blur.

    Args:
        size: side of the square kernel, a positive int.
        sigma: standard deviation in pixels, positive.

    Example:
        >>> gaussian(3, 1.0).round(4)
        array([[0.0751, 0.1238, 0.0751],
               [0.1238, 0.2042, 0.1238],
               [0.0751, 0.1238, 0.0751]])
    """
    _check_size(size, "gaussian")
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not sigma > 0 or math.isinf(sigma):
        raise ValueError(f"gaussian: sigma must be a positive finite number, got {sigma!r}")
    offsets = xp.arange(size) - (size - 1) / 2
    profile = xp.exp(-offsets**2 / (2.0 * sigma**2))
    kernel = xp.outer(profile, profile)                   # exp(−i²/2σ²)·exp(−j²/2σ²) = exp(−(i²+j²)/2σ²)
    return kernel / kernel.sum()


def box(size=3):
    """Box (mean) blur: ``size × size`` equal weights ``1 / size²``, summing to 1.

    Args:
        size: side of the square kernel, a positive int.
    """
    _check_size(size, "box")
    return xp.full((size, size), 1.0 / size**2)


def sharpen():
    """Sharpen: the image plus its negative Laplacian, boosting detail and edges (weights sum to 1)::

        [[ 0, -1,  0],
         [-1,  5, -1],
         [ 0, -1,  0]]
    """
    return xp.array([[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]])


def _check_size(size, op):
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"{op}: size must be a positive int, got {size!r}")


# Name → zero-argument callable giving the kernel with its default settings.
PRESETS = {
    "sobel_x": functools.partial(sobel, "x"),
    "sobel_y": functools.partial(sobel, "y"),
    "prewitt_x": functools.partial(prewitt, "x"),
    "prewitt_y": functools.partial(prewitt, "y"),
    "scharr_x": functools.partial(scharr, "x"),
    "scharr_y": functools.partial(scharr, "y"),
    "laplacian": laplacian,
    "laplacian_diagonals": functools.partial(laplacian, diagonals=True),
    "gaussian": gaussian,
    "box": box,
    "sharpen": sharpen,
}

__all__ = ["sobel", "prewitt", "scharr", "laplacian", "gaussian", "box", "sharpen", "PRESETS"]
