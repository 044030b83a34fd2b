"""linear: y = x·Wᵀ + b — gradcheck, PyTorch parity over random shapes, errors."""
import numpy
import pytest

import striate as st
import striate.nn.functional as F
from oracle import compare, torch

TF = torch.nn.functional
TOL = {numpy.float32: dict(rtol=1e-5, atol=1e-5), numpy.float64: dict(rtol=1e-10, atol=1e-12)}


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("with_bias", [True, False])
def test_matches_torch_over_random_shapes(dtype, with_bias):
    rng = numpy.random.default_rng(11)
    for trial in range(12):
        lead = tuple(int(s) for s in rng.integers(1, 5, size=rng.integers(0, 4)))   # (*), maybe none
        n_in, n_out = (int(v) for v in rng.integers(1, 40, size=2))
        arrays = [rng.standard_normal(lead + (n_in,)).astype(dtype),
                  rng.standard_normal((n_out, n_in)).astype(dtype)]
        if with_bias:
            arrays.append(rng.standard_normal(n_out).astype(dtype))
        out = compare(F.linear, TF.linear, arrays, grad=tuple(range(len(arrays))), seed=trial, **TOL[dtype])
        assert out.shape == lead + (n_out,) and out.dtype == dtype


def test_gradcheck_with_and_without_bias():
    rng = numpy.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((5, 4)), rng.standard_normal(5)
    assert st.gradcheck(F.linear, [x, w, b])
    assert st.gradcheck(F.linear, [x, w])
    assert st.gradcheck(F.linear, [x[0, 0], w, b])       # unbatched (in,) input


def test_gradient_only_for_what_requires_it():
    rng = numpy.random.default_rng(1)
    x = st.tensor(rng.standard_normal((3, 4)))
    w = st.tensor(rng.standard_normal((2, 4)), requires_grad=True)
    F.linear(x, w).sum().backward()
    assert x.grad is None
    numpy.testing.assert_allclose(w.grad.data, numpy.tile(x.data.sum(axis=0), (2, 1)), rtol=1e-12)


def test_known_value_and_empty_batch():
    x = st.tensor(numpy.array([[1.0, 2.0]]))
    w = st.tensor(numpy.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    b = st.tensor(numpy.array([0.5, 0.0, -1.0]))
    assert F.linear(x, w, b).tolist() == [[1.5, 2.0, 2.0]]
    empty = st.tensor(numpy.zeros((0, 2)), requires_grad=True)
    y = F.linear(empty, w, b)
    assert y.shape == (0, 3)
    y.sum().backward()
    assert empty.grad.shape == (0, 2)


@pytest.mark.parametrize("call, error, match", [
    (lambda: F.linear(st.zeros(4, 3), st.zeros(5, 4)), ValueError,
     r"linear: the last dimension of input must equal weight's in_features: input \(4, 3\) has 3, "
     r"weight \(5, 4\) expects 4"),
    (lambda: F.linear(st.zeros(4, 3), st.zeros(3)), ValueError,
     r"linear: weight must have shape \(out_features, in_features\), got 1-D weight of shape \(3,\)"),
    (lambda: F.linear(st.zeros(4, 3), st.zeros(5, 3), st.zeros(4)), ValueError,
     r"linear: bias must have shape \(out_features,\) = \(5,\), got \(4,\)"),
    (lambda: F.linear(st.zeros(4, 3), st.zeros(5, 3), st.zeros(1, 5)), ValueError, r"got \(1, 5\)"),
    (lambda: F.linear(st.tensor(1.0), st.zeros(5, 1)), ValueError, "linear: input must have shape"),
    (lambda: F.linear(st.zeros(4, 3), st.zeros(5, 3).double()), TypeError,
     "linear: input and weight must have the same dtype, got float32 and float64"),
    (lambda: F.linear(st.zeros(4, 3), st.zeros(5, 3), st.zeros(5).double()), TypeError,
     "linear: input and bias must have the same dtype"),
    (lambda: F.linear(st.tensor([[1, 2]]), st.zeros(5, 2)), TypeError, "linear: input must be a floating-point"),
    (lambda: F.linear([[1.0, 2.0]], st.zeros(5, 2)), TypeError, "linear: input must be a Tensor or an array"),
])
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
