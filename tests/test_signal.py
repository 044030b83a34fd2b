"""striate.signal: correlate/convolve against scipy.signal (direct method); kernel presets vs textbook matrices."""
import math

import numpy
import pytest

import striate as st
from striate.signal import convolve, correlate, kernels

scipy_signal = pytest.importorskip("scipy.signal")
ndimage = pytest.importorskip("scipy.ndimage")

MODES = ("full", "valid", "same")
OPS = {"correlate": (correlate, scipy_signal.correlate), "convolve": (convolve, scipy_signal.convolve)}
SAMPLES = 12  # random shape pairs per (op, rank, mode, dtype)


def random_shapes(rng, rank, mode):
    """An (image, kernel) shape pair: odd, even and non-square kernels, sometimes larger than the image."""
    image = tuple(int(d) for d in rng.integers(1, 8, rank))
    if rng.random() < 0.3:                                     # kernel larger than the image on every axis
        kernel = tuple(d + int(e) for d, e in zip(image, rng.integers(0, 4, rank)))
    elif mode == "valid":                                      # valid needs one side at least as large on every axis
        kernel = tuple(int(rng.integers(1, d + 1)) for d in image)
    else:
        kernel = tuple(int(k) for k in rng.integers(1, 6, rank))
    return image, kernel


def assert_matches(actual, expected, dtype):
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    scale = float(numpy.abs(expected).max()) if expected.size else 1.0
    tolerance = 1e-5 if dtype == numpy.float32 else 1e-12
    numpy.testing.assert_allclose(actual, expected, rtol=tolerance, atol=tolerance * max(scale, 1.0))


# ----- parity with scipy -------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("op", sorted(OPS))
def test_matches_scipy_direct(op, rank, mode, dtype):
    ours, reference = OPS[op]
    rng = numpy.random.default_rng([rank, MODES.index(mode), len(op)])
    for _ in range(SAMPLES):
        image_shape, kernel_shape = random_shapes(rng, rank, mode)
        image = rng.standard_normal(image_shape).astype(dtype)
        kernel = rng.standard_normal(kernel_shape).astype(dtype)
        expected = reference(image, kernel, mode=mode, method="direct")
        assert_matches(ours(image, kernel, mode=mode), expected, dtype)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", sorted(OPS))
def test_even_kernel_same_mode_centring(op, mode):
    """Even kernels: scipy's "same" takes full-output indices (K − 1)//2 … ; the extra context sits on the left."""
    ours, reference = OPS[op]
    image = numpy.arange(1.0, 9.0)
    for kernel in (numpy.array([1.0, 10.0]), numpy.array([1.0, 10.0, 100.0, 1000.0])):
        numpy.testing.assert_array_equal(ours(image, kernel, mode), reference(image, kernel, mode, method="direct"))
    # Written out: correlate([1..8], [1, 10], "same") starts at full index 0, i.e. 10·x[0] with x[−1] = 0.
    if op == "correlate" and mode == "same":
        numpy.testing.assert_array_equal(ours(image, numpy.array([1.0, 10.0]), "same"),
                                         [10.0, 21.0, 32.0, 43.0, 54.0, 65.0, 76.0, 87.0])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("dtypes", [("int64", "int64"), ("int32", "int32"), ("uint8", "uint8"), ("int8", "int8"),
                                    ("int64", "float32"), ("float32", "float64"), ("uint8", "float32")])
def test_dtype_rules_match_scipy(dtypes, op, mode):
    """Result dtype is numpy.result_type(in1, in2), as in scipy; narrow integers wrap on overflow as scipy's do."""
    ours, reference = OPS[op]
    rng = numpy.random.default_rng(7)
    for shapes in (((9,), (4,)), ((6, 7), (3, 2)), ((4, 5, 3), (2, 3, 2))):
        image = rng.integers(0, 120, shapes[0]).astype(dtypes[0])
        kernel = rng.integers(0, 120, shapes[1]).astype(dtypes[1])
        expected = reference(image, kernel, mode, method="direct")
        actual = ours(image, kernel, mode)
        assert actual.dtype == expected.dtype
        numpy.testing.assert_allclose(actual, expected, rtol=1e-6)


def test_non_contiguous_and_tensor_inputs():
    rng = numpy.random.default_rng(3)
    image = rng.standard_normal((9, 8)).T[::2]                 # transposed, strided view (4, 9)
    kernel = rng.standard_normal((5, 3))[::2, ::-1]            # (3, 3), negative strides
    for mode in MODES:
        expected = scipy_signal.correlate(image, kernel, mode, method="direct")
        numpy.testing.assert_allclose(correlate(image, kernel, mode), expected, rtol=1e-12)
        numpy.testing.assert_allclose(correlate(st.tensor(image), st.tensor(kernel), mode), expected, rtol=1e-12)


def test_lists_and_zero_dimensional_inputs_like_scipy():
    numpy.testing.assert_array_equal(correlate([1, 2, 3], [0, 1]), scipy_signal.correlate([1, 2, 3], [0, 1]))
    assert correlate(numpy.float64(2.0), numpy.float64(3.0)) == 6.0


def test_float16_is_supported_where_scipy_nd_refuses_it():
    """scipy's N-d direct path raises "Unsupported type" for float16; striate computes it in float16."""
    rng = numpy.random.default_rng(4)
    image, kernel = rng.standard_normal((6, 6)), rng.standard_normal((3, 3))
    out = correlate(image.astype(numpy.float16), kernel.astype(numpy.float16), "valid")
    assert out.dtype == numpy.float16
    numpy.testing.assert_allclose(out, scipy_signal.correlate(image, kernel, "valid", method="direct"), atol=3e-2)


# ----- the flip relation and the notes' sizes ----------------------------------------------------

def test_convolution_is_correlation_with_the_kernel_flipped_on_every_axis():
    rng = numpy.random.default_rng(5)
    image, kernel = rng.standard_normal((5, 6, 4)), rng.standard_normal((3, 2, 2))
    for mode in MODES:
        flipped = kernel[::-1, ::-1, ::-1]
        numpy.testing.assert_allclose(convolve(image, kernel, mode), correlate(image, flipped, mode), rtol=1e-12)
    # Convolution commutes in "full" mode; correlation does not (it reverses).
    numpy.testing.assert_allclose(convolve(image, kernel), convolve(kernel, image), rtol=1e-12)
    numpy.testing.assert_allclose(correlate(kernel, image), correlate(image, kernel)[::-1, ::-1, ::-1], rtol=1e-12)


def test_antisymmetric_kernel_convolution_is_the_negated_correlation():
    """The notes' vertical-edge filter [[1, 0, −1]]×3 is antisymmetric left-right, so flipping negates it."""
    rng = numpy.random.default_rng(6)
    image = rng.integers(0, 10, (5, 5)).astype(numpy.float64)
    edge = numpy.array([[1.0, 0.0, -1.0]] * 3)
    valid = correlate(image, edge, "valid")
    expected = numpy.array([[image[i:i + 3, j].sum() - image[i:i + 3, j + 2].sum() for j in range(3)]
                            for i in range(3)])
    numpy.testing.assert_array_equal(valid, expected)
    numpy.testing.assert_array_equal(convolve(image, edge, "valid"), -valid)
    assert [correlate(image, edge, m).shape for m in MODES] == [(7, 7), (3, 3), (5, 5)]


# ----- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("op", sorted(OPS))
def test_bad_inputs_raise_errors_naming_the_op(op):
    fn = OPS[op][0]
    with pytest.raises(TypeError, match=rf"{op}: in1 must be real, got complex dtype complex128"):
        fn(numpy.ones(4, dtype=complex), numpy.ones(2))
    with pytest.raises(TypeError, match=rf"{op}: in2 must hold integers or floats, got dtype bool"):
        fn(numpy.ones(4), numpy.ones(2, dtype=bool))
    with pytest.raises(ValueError, match=rf"{op}: in1 and in2 must have the same number of dimensions, "
                                         r"got in1 of shape \(4, 4\) \(2-D\) and in2 of shape \(3,\) \(1-D\)"):
        fn(numpy.ones((4, 4)), numpy.ones(3))
    with pytest.raises(ValueError, match=rf"{op}: in1 and in2 must not be empty, got shapes \(0, 3\) and \(2, 2\)"):
        fn(numpy.ones((0, 3)), numpy.ones((2, 2)))
    with pytest.raises(ValueError, match=rf"{op}: mode must be one of 'full', 'valid', 'same', got 'circular'"):
        fn(numpy.ones(4), numpy.ones(2), mode="circular")
    with pytest.raises(ValueError, match=rf"{op}: in 'valid' mode one input must be at least as large as the other "
                                         r"on every axis, got shapes \(4, 2\) and \(2, 4\)"):
        fn(numpy.ones((4, 2)), numpy.ones((2, 4)), mode="valid")


# ----- kernel presets ----------------------------------------------------------------------------

TEXTBOOK = {
    # Correlation kernels, the signs scipy.ndimage and OpenCV use: positive where intensity increases along the axis.
    "sobel_x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "sobel_y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "prewitt_x": [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]],
    "prewitt_y": [[-1, -1, -1], [0, 0, 0], [1, 1, 1]],
    "scharr_x": [[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]],
    "scharr_y": [[-3, -10, -3], [0, 0, 0], [3, 10, 3]],
    "laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "laplacian_diagonals": [[1, 1, 1], [1, -8, 1], [1, 1, 1]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "box": [[1 / 9] * 3] * 3,
}


@pytest.mark.parametrize("name", sorted(TEXTBOOK))
def test_presets_equal_their_textbook_matrices(name):
    kernel = kernels.PRESETS[name]()
    assert kernel.dtype == numpy.float64
    numpy.testing.assert_allclose(kernel, TEXTBOOK[name], rtol=1e-15)


def test_preset_functions_and_axis_aliases():
    numpy.testing.assert_array_equal(kernels.sobel("x"), TEXTBOOK["sobel_x"])
    numpy.testing.assert_array_equal(kernels.sobel(1), kernels.sobel(-1))
    numpy.testing.assert_array_equal(kernels.sobel(0), TEXTBOOK["sobel_y"])
    numpy.testing.assert_array_equal(kernels.prewitt("y"), kernels.prewitt(-2))
    numpy.testing.assert_array_equal(kernels.scharr("y"), TEXTBOOK["scharr_y"])
    numpy.testing.assert_array_equal(kernels.laplacian(diagonals=True), TEXTBOOK["laplacian_diagonals"])
    assert set(kernels.PRESETS) == set(TEXTBOOK) | {"gaussian"}


@pytest.mark.parametrize("family", ["sobel", "prewitt", "scharr"])
def test_derivatives_respond_positively_to_dark_to_bright_edges(family):
    """The documented convention: "x" positive when brighter to the right, "y" when brighter below."""
    step = numpy.zeros((7, 7))
    step[:, 4:] = 1.0                                          # dark left, bright right: a vertical edge
    make = getattr(kernels, family)
    across = correlate(step, make("x"), "valid")
    assert (across >= 0).all() and across.max() > 0
    assert not correlate(step, make("y"), "valid").any()       # no change down the rows
    assert (correlate(step.T, make("y"), "valid") > 0).any()   # bright below
    assert (correlate(step[:, ::-1], make("x"), "valid") <= 0).all()   # bright to the left: negative


def test_derivatives_and_laplacian_agree_with_scipy_ndimage_inside_the_border():
    image = numpy.random.default_rng(8).standard_normal((9, 10))
    inner = (slice(1, -1), slice(1, -1))                       # ndimage reflects at the border; "same" pads zeros
    for ours, reference in ((kernels.sobel("x"), ndimage.sobel(image, axis=1)),
                            (kernels.sobel("y"), ndimage.sobel(image, axis=0)),
                            (kernels.prewitt("x"), ndimage.prewitt(image, axis=1)),
                            (kernels.prewitt("y"), ndimage.prewitt(image, axis=0)),
                            (kernels.laplacian(), ndimage.laplace(image))):
        numpy.testing.assert_allclose(correlate(image, ours, "same")[inner], reference[inner], rtol=1e-12,
                                      atol=1e-12)


@pytest.mark.parametrize("size,sigma", [(3, 1.0), (5, 1.0), (4, 0.7), (7, 2.5), (1, 3.0)])
def test_gaussian_is_the_normalised_formula(size, sigma):
    kernel = kernels.gaussian(size, sigma)
    centre = (size - 1) / 2
    formula = numpy.array([[math.exp(-((i - centre) ** 2 + (j - centre) ** 2) / (2 * sigma ** 2))
                            for j in range(size)] for i in range(size)])
    assert kernel.shape == (size, size)
    assert math.isclose(kernel.sum(), 1.0, rel_tol=1e-14)
    numpy.testing.assert_allclose(kernel, formula / formula.sum(), rtol=1e-14)
    window = scipy_signal.windows.gaussian(size, sigma)
    numpy.testing.assert_allclose(kernel, numpy.outer(window, window) / numpy.outer(window, window).sum(), rtol=1e-13)


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_box_sums_to_one_with_equal_weights(size):
    kernel = kernels.box(size)
    assert kernel.shape == (size, size)
    assert math.isclose(kernel.sum(), 1.0, rel_tol=1e-14)
    assert numpy.ptp(kernel) == 0


def test_blurs_and_sharpen_keep_a_flat_image_flat_and_laplacians_zero_it():
    flat = numpy.full((6, 6), 3.0)
    for kernel in (kernels.gaussian(), kernels.box(), kernels.sharpen()):
        numpy.testing.assert_allclose(correlate(flat, kernel, "valid"), 3.0, rtol=1e-14)
    for kernel in (kernels.laplacian(), kernels.laplacian(diagonals=True)):
        numpy.testing.assert_array_equal(correlate(flat, kernel, "valid"), 0.0)


def test_preset_argument_errors():
    with pytest.raises(ValueError, match=r"sobel: axis must be 'x' \(along columns; 1 or -1\) or 'y'.*got 'z'"):
        kernels.sobel("z")
    with pytest.raises(ValueError, match="scharr: axis must be .* got True"):
        kernels.scharr(True)
    with pytest.raises(ValueError, match="gaussian: size must be a positive int, got 0"):
        kernels.gaussian(0, 1.0)
    with pytest.raises(ValueError, match="gaussian: sigma must be a positive finite number, got -1.0"):
        kernels.gaussian(3, -1.0)
    with pytest.raises(ValueError, match=r"box: size must be a positive int, got 2.5"):
        kernels.box(2.5)
