"""dropout: mask statistics, scaling, backward through the same mask, determinism, errors."""
import numpy
import pytest

import striate as st
import striate.nn.functional as F


def _run(shape, p, dtype=numpy.float64, generator=None, seed=0):
    """Dropout of a strictly positive input; returns (input, output, input gradient, upstream)."""
    rng = numpy.random.default_rng(seed)
    x = st.tensor(rng.uniform(0.5, 2.0, size=shape).astype(dtype), requires_grad=True)
    y = F.dropout(x, p=p, generator=generator)
    gy = rng.standard_normal(shape).astype(dtype)
    y.backward(gy)
    return x.data, y.data, x.grad.data, gy


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_mask_statistics_and_scaling(p):
    st.manual_seed(1)
    x, y, _, _ = _run((200, 500), p)
    kept = y != 0
    # The kept fraction is Binomial(n, 1 − p)/n: allow 5 standard deviations.
    n = kept.size
    assert abs(kept.mean() - (1 - p)) < 5 * numpy.sqrt(p * (1 - p) / n)
    # Survivors are scaled by exactly 1/(1 − p), so the expectation is unchanged.
    numpy.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-15)
    assert abs(y.mean() / x.mean() - 1) < 0.02


def test_mask_is_independent_across_elements():
    st.manual_seed(2)
    _, y, _, _ = _run((400, 400), 0.5)
    kept = (y != 0).astype(float)
    # Neighbouring elements along either axis are uncorrelated.
    for a, b in ((kept[:, 1:], kept[:, :-1]), (kept[1:], kept[:-1])):
        assert abs(numpy.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.02


@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_backward_uses_the_forward_mask(p, dtype):
    st.manual_seed(3)
    _, y, gx, gy = _run((7, 3, 11), p, dtype)
    mask = (y != 0).astype(dtype)
    numpy.testing.assert_allclose(gx, mask / dtype(1 - p) * gy, rtol=1e-6)
    assert y.dtype == dtype and gx.dtype == dtype


def test_gradcheck_with_a_fixed_generator():
    x = numpy.random.default_rng(0).uniform(0.5, 1.5, size=(3, 4))
    # Every evaluation draws a fresh mask from a freshly seeded generator, so the function is fixed.
    assert st.gradcheck(lambda t: F.dropout(t, 0.4, generator=numpy.random.default_rng(5)), [x])


def test_determinism_under_manual_seed():
    st.manual_seed(123)
    _, first, _, _ = _run((6, 50), 0.5)
    _, second, _, _ = _run((6, 50), 0.5)
    st.manual_seed(123)
    _, again, _, _ = _run((6, 50), 0.5)
    numpy.testing.assert_array_equal(first, again)
    assert not numpy.array_equal(first, second)


def test_explicit_generator_leaves_the_default_alone():
    st.manual_seed(9)
    expected = st.random.default_generator().random(3)
    st.manual_seed(9)
    _, a, _, _ = _run((4, 5), 0.5, generator=numpy.random.default_rng(42))
    _, b, _, _ = _run((4, 5), 0.5, generator=numpy.random.default_rng(42))
    numpy.testing.assert_array_equal(a, b)
    numpy.testing.assert_array_equal(st.random.default_generator().random(3), expected)


def test_p_one_gives_zeros_and_zero_gradient():
    x, y, gx, _ = _run((5, 6), 1.0)
    assert not y.any() and not gx.any() and numpy.isfinite(gx).all()


def test_p_zero_and_eval_mode_return_the_input():
    x = st.tensor(numpy.ones((3, 3)), requires_grad=True)
    assert F.dropout(x, 0.0) is x
    assert F.dropout(x, 0.7, training=False) is x
    assert F.dropout(x, 0.7, False) is x


def test_matches_torch_in_distribution_and_scaling():
    torch = pytest.importorskip("torch")
    x = torch.ones(100, 100, dtype=torch.float64)
    torch.manual_seed(0)
    theirs = torch.nn.functional.dropout(x, 0.3).numpy()
    st.manual_seed(0)
    ours = F.dropout(st.tensor(numpy.ones((100, 100))), 0.3).data
    # Different generators, so only the set of values and the kept rate can agree.
    assert set(numpy.unique(ours)) == set(numpy.unique(theirs)) == {0.0, 1 / 0.7}
    assert abs((ours != 0).mean() - (theirs != 0).mean()) < 0.05


@pytest.mark.parametrize("call, error, match", [
    (lambda: F.dropout(st.ones(3), p=1.5), ValueError, "dropout: probability p has to be between 0 and 1, got 1.5"),
    (lambda: F.dropout(st.ones(3), p=-0.1), ValueError, "between 0 and 1, got -0.1"),
    (lambda: F.dropout(st.ones(3), p="0.5"), TypeError, "dropout: p must be a number in"),
    (lambda: F.dropout(st.ones(3), p=True), TypeError, "dropout: p must be a number in"),
    (lambda: F.dropout(st.ones(3), inplace=True), ValueError, "dropout: inplace=True is not supported"),
    (lambda: F.dropout(st.ones(3), generator=numpy.random.RandomState(0)), TypeError,
     "dropout: generator must be a numpy.random.Generator, got RandomState"),
    (lambda: F.dropout(st.tensor([1, 2]), 0.5), TypeError, "dropout: input must be a floating-point tensor"),
])
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
