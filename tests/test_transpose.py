"""`striate.kernels.transpose.swapped`: two neighbouring axes exchanged, in one piece, tiles, or by BLAS.

The expected values are NumPy's own ``ascontiguousarray(a.swapaxes(…))``. Each path is forced
through the thresholds it is chosen by, so all three are seen on arrays small enough to be quick.
"""
import numpy
import pytest

from striate import _blas
from striate.kernels import transpose


@pytest.fixture(params=["one copy", "tiles", "BLAS"])
def path(request, monkeypatch):
    if request.param == "one copy":
        monkeypatch.setattr(transpose, "_UNTILED_BYTES", 2**40)
        return request.param
    monkeypatch.setattr(transpose, "_UNTILED_BYTES", 0)
    monkeypatch.setattr(transpose, "_TILE_BYTES", 256)                        # many tiles, uneven at the edges
    if request.param == "tiles":
        monkeypatch.setattr(_blas, "GEMM_AVAILABLE", False)
        return request.param
    if not _blas.GEMM_AVAILABLE:
        pytest.skip("NumPy's BLAS is not reachable here (not NumPy's Linux wheel, or STRIATE_NUMPY_ONLY=1)")
    calls, original = [], _blas.transpose
    monkeypatch.setattr(_blas, "transpose", lambda a, out: calls.append(a.shape) or original(a, out))
    return calls


@pytest.mark.parametrize("shape, axis", [((37, 23), 0), ((3, 41, 29), 1), ((41, 29, 1), 0), ((2, 19, 17, 5), 1),
                                         ((13, 11, 3, 2), 0)],
                         ids=["matrix", "batch of matrices", "trailing 1", "blocks of 5", "blocks of 3·2"])
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_swapped_matches_numpy(shape, axis, dtype, path, rng):
    a = rng.standard_normal(shape).astype(dtype)
    out = transpose.swapped(a, axis)
    assert out.flags.c_contiguous and out.dtype == dtype
    numpy.testing.assert_array_equal(out, numpy.ascontiguousarray(a.swapaxes(axis, axis + 1)))
    if isinstance(path, list):                                                 # BLAS: whenever single elements move
        assert len(path) == (numpy.prod(shape[:axis]) if numpy.prod(shape[axis + 2:]) == 1 else 0)


def test_swapped_takes_a_strided_input(path, rng):
    a = rng.standard_normal((30, 50))[:, ::2]                                  # not contiguous
    numpy.testing.assert_array_equal(transpose.swapped(a, 0), numpy.ascontiguousarray(a.T))


def test_integers_never_go_to_blas(path, rng):
    a = rng.integers(0, 1000, (31, 17))
    numpy.testing.assert_array_equal(transpose.swapped(a, 0), a.T)
    assert path in ("one copy", "tiles") or path == []
