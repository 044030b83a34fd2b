"""`striate._blas.gemm`: ``C ← A·B + β·C`` in place through NumPy's own BLAS, on strided views.

Expected values come from NumPy's ``@`` on copies; the views are the kinds convolution passes
(windows of wider arrays, transposed windows) and the kinds BLAS cannot read in place, which
must be refused before any pointer reaches BLAS.
"""
import os
import subprocess
import sys

import numpy
import pytest

from striate import _blas

needs_gemm = pytest.mark.skipif(
    not _blas.GEMM_AVAILABLE,
    reason="NumPy's BLAS is not reachable here (not NumPy's Linux wheel, or STRIATE_NUMPY_ONLY=1)")


def _numpy_ships_scipy_openblas():
    try:
        blas = numpy.__config__.CONFIG["Build Dependencies"]["blas"]
    except (AttributeError, KeyError, TypeError):
        return False
    return sys.platform.startswith("linux") and blas.get("name") == "scipy-openblas"


@pytest.mark.skipif(not _numpy_ships_scipy_openblas(), reason="NumPy here is not the Linux wheel with scipy-openblas")
@pytest.mark.parametrize("first", ["", "import scipy.linalg; "], ids=["alone", "after SciPy's own OpenBLAS"])
def test_numpys_blas_is_found_wherever_numpy_ships_it(first):
    # A silent fall back to the slower path would pass every other test, so check it is found,
    # also when another OpenBLAS (SciPy's, 32-bit integers) is mapped into the process first.
    code = first + "import striate._blas as b; print(b.GEMM_AVAILABLE)"
    env = {k: v for k, v in os.environ.items() if k != "STRIATE_NUMPY_ONLY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "True"


@needs_gemm
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("beta", [0.0, 1.0, 0.5])
@pytest.mark.parametrize("layout", ["row-major", "windows", "transposed windows"])
def test_gemm_matches_numpy(dtype, beta, layout, rng):
    big = rng.standard_normal((40, 60)).astype(dtype)
    if layout == "row-major":
        a, b = big[:5, :8].copy(), big[10:18, :7].copy()
    elif layout == "windows":
        a, b = big[2:7, 3:11], big[10:18, 31:38]                 # rows 60 apart, unit columns
    else:
        a, b = big[3:11, 2:7].T, big[31:38, 10:18].T             # unit rows, columns 60 apart
    out = rng.standard_normal((9, 12)).astype(dtype)
    target = out[2:7, 4:11]                                      # a window of a wider output
    expected = out.copy()
    expected[2:7, 4:11] = a @ b + beta * expected[2:7, 4:11]
    _blas.gemm(a, b, target, beta)
    tol = 1e-5 if dtype == numpy.float32 else 1e-12
    numpy.testing.assert_allclose(out, expected, rtol=tol, atol=tol)   # and nothing outside the window moved


@needs_gemm
@pytest.mark.parametrize("shape", [(1, 6, 4), (5, 6, 1), (5, 1, 4), (1, 1, 1)], ids=lambda s: "x".join(map(str, s)))
def test_gemm_with_axes_of_length_one(shape, rng):
    m, k, n = shape
    big = rng.standard_normal((30, 30))
    a, b = big[3:3 + m, 7:7 + k], big[11:11 + k, 2:2 + n].T.copy().T   # windows; b transposed
    out = numpy.zeros((4 * m, 3 * n))[::4, ::3] if n == 1 else numpy.zeros((m, n))  # n = 1: a strided column
    _blas.gemm(a, b, out, 0.0)
    numpy.testing.assert_allclose(out, a @ b, rtol=1e-12)


@needs_gemm
def test_gemm_with_an_empty_inner_dimension_scales_by_beta():
    out = numpy.full((2, 3), 4.0)
    _blas.gemm(numpy.zeros((2, 0)), numpy.zeros((0, 3)), out, 0.5)
    numpy.testing.assert_array_equal(out, numpy.full((2, 3), 2.0))


@needs_gemm
@pytest.mark.parametrize("bad, message", [
    (lambda big: (big[:5:2, :8:2], big[:4, :3], numpy.zeros((3, 3))), "is not a matrix BLAS reads in place"),
    (lambda big: (numpy.lib.stride_tricks.as_strided(big, (5, 8), (8, 8)), big[:8, :3], numpy.zeros((5, 3))),
     "is not a matrix BLAS reads in place"),                    # overlapping rows
    (lambda big: (big[:5, :8], big[:7, :3], numpy.zeros((5, 3))), "do not chain"),
    (lambda big: (big[:5, :8], big[:8, :3], numpy.zeros((5, 4))), "do not chain"),
    (lambda big: (big[:5, :8].astype(numpy.float32), big[:8, :3], numpy.zeros((5, 3))), "dtypes"),
    (lambda big: (big[:5, :8].astype(int), big[:8, :3].astype(int), numpy.zeros((5, 3), int)), "dtypes"),
    (lambda big: (big[:5, :8], big[:8, :3], numpy.zeros((3, 5)).T), "must be row-major"),
    (lambda big: (big[:1, :8], big[:8, :3], numpy.zeros((2, 6))[:1, ::2]), "must be row-major"),
    (lambda big: (big[:5, :8], big[:8, :3], numpy.broadcast_to(numpy.zeros(3), (5, 3))), "read-only"),
], ids=["every other row and column", "overlapping rows", "inner sizes", "output shape", "mixed dtypes",
        "integers", "transposed output", "one output row with gaps", "read-only output"])
def test_gemm_refuses_what_blas_cannot_take(bad, message, rng):
    a, b, out = bad(rng.standard_normal((20, 20)))
    with pytest.raises(ValueError, match=message):
        _blas.gemm(a, b, out, 0.0)


def test_numpy_only_switch_turns_blas_off_and_convolution_still_works():
    code = ("import numpy, striate as st, striate._blas as b\n"
            "from striate.ops.conv import conv_nd\n"
            "x = st.tensor(numpy.ones((2, 16, 5, 5)), requires_grad=True)\n"
            "y = conv_nd(x, st.tensor(numpy.ones((16, 16, 3, 3))), padding=1)\n"
            "y.sum().backward()\n"
            "print(b.GEMM_AVAILABLE, y.grad_fn.shifted, float(y.data[0, 0, 2, 2]), float(x.grad.data[0, 0, 0, 0]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "STRIATE_NUMPY_ONLY": "1"})
    # All-ones: an interior output sums 16·9 ones; a corner input feeds 4 outputs of each of 16 filters.
    assert out.stdout.split() == ["False", "False", "144.0", "64.0"]


@needs_gemm
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("layout", ["contiguous", "rows of a wider array", "one row", "one column"])
def test_transpose_matches_numpy(dtype, layout, rng):
    big = rng.standard_normal((70, 90)).astype(dtype)
    a = {"contiguous": big[:50].copy(), "rows of a wider array": big[3:60, 5:48],
         "one row": big[4:5, 2:80], "one column": big[:, 7:8]}[layout]
    out = numpy.full(a.shape[::-1], numpy.nan, dtype=dtype)
    _blas.transpose(a, out)
    numpy.testing.assert_array_equal(out, a.T)


@needs_gemm
@pytest.mark.parametrize("bad, message", [
    (lambda big: (big[:, :8:2], numpy.zeros((4, 20))), "transpose: a .* is not a matrix BLAS reads in place"),
    (lambda big: (big[:8, :5].T, numpy.zeros((8, 5))), "must be row-major"),
    (lambda big: (big[:5, :8], numpy.zeros((5, 8)).T), "must be row-major"),
    (lambda big: (big[:5, :8], numpy.zeros((5, 8))), "transpose's shape"),
    (lambda big: (big[:5, :8], numpy.zeros((8, 5), numpy.float32)), "dtypes"),
    (lambda big: (big[:5, :8].astype(int), numpy.zeros((8, 5), int)), "dtypes"),
    (lambda big: (big[:5, :8], numpy.broadcast_to(numpy.zeros(5), (8, 5))), "read-only"),
], ids=["every other column", "a transposed input", "a transposed output", "shape", "mixed dtypes", "integers",
        "read-only output"])
def test_transpose_refuses_what_blas_cannot_take(bad, message, rng):
    a, out = bad(rng.standard_normal((20, 20)))
    with pytest.raises(ValueError, match=message):
        _blas.transpose(a, out)
