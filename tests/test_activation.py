"""Activations: ops × samples × checks (gradcheck, PyTorch parity, extremes, kinks, errors)."""
import warnings
import zlib

import numpy
import pytest
import scipy.special

import striate as st
import striate.nn.functional as F
from oracle import assert_close, compare, torch

TF = torch.nn.functional

# name -> (striate call, torch call) for one setting of the op's parameters.
ELEMENTWISE = {
    "relu": (F.relu, TF.relu),
    "leaky_relu": (lambda x: F.leaky_relu(x), lambda x: TF.leaky_relu(x)),
    "leaky_relu_0.3": (lambda x: F.leaky_relu(x, 0.3), lambda x: TF.leaky_relu(x, 0.3)),
    "leaky_relu_neg": (lambda x: F.leaky_relu(x, negative_slope=-1.5), lambda x: TF.leaky_relu(x, -1.5)),
    "elu": (F.elu, TF.elu),
    "elu_2.5": (lambda x: F.elu(x, alpha=2.5), lambda x: TF.elu(x, alpha=2.5)),
    "gelu": (F.gelu, TF.gelu),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), lambda x: TF.gelu(x, approximate="tanh")),
    "sigmoid": (F.sigmoid, torch.sigmoid),
    "tanh": (F.tanh, torch.tanh),
    "softplus": (F.softplus, TF.softplus),
    "softplus_beta2_thr1": (lambda x: F.softplus(x, beta=2.0, threshold=1.0),
                            lambda x: TF.softplus(x, beta=2.0, threshold=1.0)),
    "softplus_beta0.5": (lambda x: F.softplus(x, 0.5, 5), lambda x: TF.softplus(x, 0.5, 5)),
    "softplus_neg_beta": (lambda x: F.softplus(x, beta=-1.0), lambda x: TF.softplus(x, beta=-1.0)),
}

ALONG = {"softmax": (F.softmax, TF.softmax), "log_softmax": (F.log_softmax, TF.log_softmax)}

TOL = {numpy.float32: dict(rtol=1e-5, atol=1e-6), numpy.float64: dict(rtol=1e-10, atol=1e-12)}


def random_shape(rng, max_ndim=5):
    return tuple(int(s) for s in rng.integers(1, 5, size=rng.integers(0, max_ndim + 1)))


# ----- parity with PyTorch, forward and backward ------------------------------------------------------
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_matches_torch(name, dtype):
    ours, theirs = ELEMENTWISE[name]
    rng = numpy.random.default_rng(zlib.crc32(name.encode()))
    for trial in range(6):
        x = (rng.standard_normal(random_shape(rng)) * rng.choice([0.5, 3.0, 30.0])).astype(dtype)
        tol = TOL[dtype]
        if name == "gelu_tanh" and dtype == numpy.float32:
            # PyTorch's float32 ½(1 + tanh u) cancels to 0 for x ≲ −5 where the true value is
            # ~1e-6; ours keeps it (see test_gelu_tanh_float32_tail_is_accurate).
            tol = dict(tol, atol=1e-5)
        out = compare(ours, theirs, [x], grad=(0,), seed=trial, **tol)
        assert out.dtype == dtype


def test_gelu_tanh_float32_tail_is_accurate():
    # Reference in float64 through SciPy's expit, using ½(1 + tanh u) = expit(2u), which does
    # not cancel (PyTorch's own float64 result underflows to 0 below x ≈ −7).
    x = numpy.linspace(-9, -3, 25, dtype=numpy.float32)
    x64 = x.astype(numpy.float64)
    k = numpy.sqrt(2 / numpy.pi)
    s = scipy.special.expit(2 * k * (x64 + 0.044715 * x64 ** 3))
    expected_y = x64 * s
    expected_grad = s + 2 * x64 * s * (1 - s) * k * (1 + 3 * 0.044715 * x64 ** 2)
    t = st.tensor(x, requires_grad=True)
    y = F.gelu(t, approximate="tanh")
    y.sum().backward()
    numpy.testing.assert_allclose(y.data, expected_y, rtol=1e-4, atol=0)
    numpy.testing.assert_allclose(t.grad.data, expected_grad, rtol=1e-4, atol=0)


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("name", sorted(ALONG))
def test_softmax_family_matches_torch(name, dtype):
    ours, theirs = ALONG[name]
    rng = numpy.random.default_rng(7)
    for trial in range(12):
        shape = random_shape(rng)
        x = (rng.standard_normal(shape) * rng.choice([1.0, 10.0, 300.0])).astype(dtype)
        ndim = max(len(shape), 1)
        dim = int(rng.integers(-ndim, ndim))
        out = compare(lambda t: ours(t, dim=dim), lambda t: theirs(t, dim=dim), [x], grad=(0,), seed=trial,
                      **TOL[dtype])
        assert out.dtype == dtype


@pytest.mark.parametrize("name", sorted(ALONG))
def test_softmax_family_dtype_argument_casts_first(name):
    ours, theirs = ALONG[name]
    x = numpy.random.default_rng(0).standard_normal((3, 4)).astype(numpy.float32)
    out = compare(lambda t: ours(t, 1, dtype=st.float64), lambda t: theirs(t, 1, dtype=torch.float64),
                  [x], grad=(0,), rtol=1e-6, atol=1e-7)
    assert out.dtype == numpy.float64


def test_softmax_rows_sum_to_one_and_positional_dim():
    x = numpy.random.default_rng(1).standard_normal((4, 6))
    y = F.softmax(st.tensor(x), 1).data
    numpy.testing.assert_allclose(y.sum(axis=1), numpy.ones(4), rtol=1e-12)
    numpy.testing.assert_allclose(numpy.exp(F.log_softmax(st.tensor(x), 1).data), y, rtol=1e-12)


def test_softmax_of_scalar_and_empty():
    assert F.softmax(st.tensor(numpy.float64(3.0)), dim=0).item() == 1.0
    assert F.log_softmax(st.tensor(numpy.float64(3.0)), dim=-1).item() == 0.0
    for dim in (0, 1):
        assert F.softmax(st.tensor(numpy.zeros((0, 3))), dim=dim).shape == (0, 3)


# ----- finite-difference gradients in float64 -----------------------------------------------------------
@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_gradcheck(name):
    ours, _ = ELEMENTWISE[name]
    x = numpy.random.default_rng(3).standard_normal((2, 3, 2)) * 2
    assert st.gradcheck(ours, [x])


@pytest.mark.parametrize("name", sorted(ALONG))
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_family_gradcheck(name, dim):
    ours, _ = ALONG[name]
    x = numpy.random.default_rng(4).standard_normal((3, 4, 2))
    assert st.gradcheck(lambda t: ours(t, dim=dim), [x])


# ----- extremes: finite, correct, no overflow warnings, in both float widths ---------------------------
EXTREME = [-1000.0, -300.0, -89.0, -20.0, -1.0, 0.0, 1.0, 20.0, 89.0, 300.0, 1000.0]


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("name", ["sigmoid", "softplus", "softplus_beta0.5", "tanh", "elu", "gelu",
                                  "gelu_tanh", "leaky_relu", "relu", "softplus_neg_beta"])
def test_extreme_values_are_finite_and_match_torch(name, dtype):
    ours, theirs = ELEMENTWISE[name]
    x = numpy.array(EXTREME, dtype=dtype)
    with warnings.catch_warnings(), numpy.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        out = compare(ours, theirs, [x], grad=(0,), **TOL[dtype])
    assert numpy.all(numpy.isfinite(out.data))


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("name", sorted(ALONG))
def test_softmax_family_extremes(name, dtype):
    ours, theirs = ALONG[name]
    x = numpy.array([[1000.0, -1000.0, 0.0, 999.0], [-1000.0, -1000.0, -999.0, -1000.0]], dtype=dtype)
    with warnings.catch_warnings(), numpy.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        out = compare(lambda t: ours(t, dim=1), lambda t: theirs(t, dim=1), [x], grad=(0,), **TOL[dtype])
    assert numpy.all(numpy.isfinite(out.data))
    if name == "log_softmax":
        # log-sum-exp keeps the tiny probabilities as exact, finite logs.
        assert out.data[0, 1] == pytest.approx(-2000.0 - numpy.log1p(numpy.exp(-1.0)), rel=1e-6)


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_softplus_below_a_huge_threshold_stays_finite(dtype):
    # With threshold=1e4 every x here takes the log(1 + e^βx) branch; PyTorch itself overflows to
    # inf at x = 1000, so the reference is NumPy's logaddexp and SciPy's expit.
    x = numpy.array(EXTREME, dtype=dtype)
    t = st.tensor(x, requires_grad=True)
    with numpy.errstate(over="raise", invalid="raise"):
        y = F.softplus(t, beta=1.0, threshold=1e4)
        y.sum().backward()
    assert_close(y, numpy.logaddexp(0, x.astype(numpy.float64)).astype(dtype), **TOL[dtype])
    assert_close(t.grad, scipy.special.expit(x.astype(numpy.float64)).astype(dtype), **TOL[dtype])


def test_gelu_exact_tail_accuracy_in_float64():
    # x·Φ(x) for very negative x is tiny but not zero; erfc keeps it (1 + erf would cancel to 0).
    x = numpy.array([-10.0, -20.0, -30.0])
    expected = x * 0.5 * scipy.special.erfc(-x / numpy.sqrt(2))
    numpy.testing.assert_allclose(F.gelu(st.tensor(x)).data, expected, rtol=1e-12)


# ----- derivatives at the kinks follow PyTorch ----------------------------------------------------------
@pytest.mark.parametrize("name", ["relu", "leaky_relu", "leaky_relu_0.3", "leaky_relu_neg", "elu", "elu_2.5",
                                  "softplus_beta2_thr1"])
def test_kink_derivatives_match_torch(name):
    ours, theirs = ELEMENTWISE[name]
    x = numpy.array([-1.0, -0.0, 0.0, 0.5, 1.0])
    compare(ours, theirs, [x], grad=(0,), rtol=0, atol=0)


def test_relu_derivative_at_zero_is_zero():
    x = st.tensor(numpy.array([0.0, 1.0]), requires_grad=True)
    F.relu(x).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0]


def test_arrays_are_accepted_and_nothing_is_modified():
    x = numpy.array([-1.0, 2.0])
    before = x.copy()
    for name, (ours, _) in ELEMENTWISE.items():
        ours(x)
        numpy.testing.assert_array_equal(x, before, err_msg=name)


# ----- errors --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, error, match", [
    (lambda: F.relu(st.tensor([1, 2])), TypeError, "relu: input must be a floating-point tensor"),
    (lambda: F.relu([1.0, 2.0]), TypeError, "relu: input must be a Tensor or an array, got list"),
    (lambda: F.relu(st.tensor([1.0]), inplace=True), ValueError, "relu: inplace=True is not supported"),
    (lambda: F.leaky_relu(st.tensor([1.0]), inplace=True), ValueError, "leaky_relu: inplace=True"),
    (lambda: F.elu(st.tensor([1.0]), inplace=True), ValueError, "elu: inplace=True"),
    (lambda: F.leaky_relu(st.tensor([1.0]), "0.1"), TypeError, "leaky_relu: negative_slope must be a real number"),
    (lambda: F.elu(st.tensor([1.0]), alpha=None), TypeError, "elu: alpha must be a real number"),
    (lambda: F.gelu(st.tensor([1.0]), approximate="erf"), ValueError, "gelu: approximate must be 'none' or 'tanh'"),
    (lambda: F.sigmoid(st.tensor([True])), TypeError, "sigmoid: input must be a floating-point tensor"),
    (lambda: F.tanh(st.tensor([3])), TypeError, "tanh: input must be a floating-point tensor"),
    (lambda: F.softplus(st.tensor([1.0]), beta=0), ValueError, "softplus: beta must be non-zero"),
    (lambda: F.softplus(st.tensor([1.0]), threshold="20"), TypeError, "softplus: threshold must be a real number"),
    (lambda: F.softmax(st.tensor([1.0, 2.0])), TypeError, "softmax: dim is required"),
    (lambda: F.log_softmax(st.tensor([1.0, 2.0])), TypeError, "log_softmax: dim is required"),
    (lambda: F.softmax(st.tensor([[1.0, 2.0]]), dim=2), IndexError, "softmax: dim 2 is out of range"),
    (lambda: F.log_softmax(st.tensor([[1.0, 2.0]]), dim=-3), IndexError, "log_softmax: dim -3 is out of range"),
    (lambda: F.softmax(st.tensor([1.0]), dim=1.0), TypeError, "softmax: dim must be an int"),
    (lambda: F.softmax(st.tensor([1, 2]), dim=0), TypeError, "softmax: input must be a floating-point tensor"),
])
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()

