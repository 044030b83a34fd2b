"""The classic numerical traps, with exact expected values, and no floating-point warning on the way.

Everything runs under ``np.errstate(all="raise", under="ignore")``: overflow, invalid
operations (NaN from finite numbers) and division by zero raise. Underflow is left alone:
``exp(-2000)`` flushing to 0 is the exact answer these tests expect, and NumPy never warns
about it (its default is ``under="ignore"``). ``test_no_warning_at_all_with_numpy_defaults``
runs the extremes again with every warning turned into an error.
"""
import itertools
import math
import warnings

import numpy as np
import pytest
import torch

import striate as st
import striate.nn.functional as F
from oracle import assert_close, compare

RAISE = dict(all="raise", under="ignore")
DTYPES = [np.float32, np.float64]


# ----- softmax, cross-entropy, sigmoid, BCE at ±1000 -------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_and_log_softmax_at_plus_minus_1000(dtype):
    logits = np.array([[1000, -1000], [1000, 1000], [-1000, -1000], [0, 1000]], dtype=dtype)
    with np.errstate(**RAISE):
        probabilities = F.softmax(st.tensor(logits), dim=1).numpy()
        log_probabilities = F.log_softmax(st.tensor(logits), dim=1).numpy()
    np.testing.assert_array_equal(probabilities, np.array([[1, 0], [0.5, 0.5], [0.5, 0.5], [0, 1]], dtype))
    np.testing.assert_array_equal(log_probabilities, np.array([[0, -2000], [-math.log(2)] * 2, [-math.log(2)] * 2,
                                                                [-1000, 0]], dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_at_plus_minus_1000_value_and_gradient(dtype):
    logits = st.tensor(np.array([[1000, -1000], [1000, -1000], [-1000, 1000]], dtype=dtype), requires_grad=True)
    target = st.tensor(np.array([0, 1, 0]))
    with np.errstate(**RAISE):
        loss = F.cross_entropy(logits, target, reduction="none")
        np.testing.assert_array_equal(loss.numpy(), np.array([0, 2000, 2000], dtype))
        loss.sum().backward()
    # d loss / d logits = softmax − one-hot, exactly representable here.
    np.testing.assert_array_equal(logits.grad.numpy(), np.array([[0, 0], [1, -1], [-1, 1]], dtype))
    with np.errstate(**RAISE):
        mean = F.cross_entropy(logits.detach(), target, label_smoothing=0.1).item()
    # smoothing 0.1 over 2 classes: targets 0.95/0.05; losses 0.05·2000, 0.95·2000, 0.95·2000
    assert mean == pytest.approx((100 + 1900 + 1900) / 3, rel=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_at_plus_minus_1000_value_and_gradient(dtype):
    x = st.tensor(np.array([1000, -1000, 0], dtype=dtype), requires_grad=True)
    with np.errstate(**RAISE):
        y = F.sigmoid(x)
        y.sum().backward()
    np.testing.assert_array_equal(y.numpy(), np.array([1, 0, 0.5], dtype))
    np.testing.assert_array_equal(x.grad.numpy(), np.array([0, 0, 0.25], dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_with_logits_at_plus_minus_1000_value_and_gradient(dtype):
    x = st.tensor(np.array([1000, 1000, -1000, -1000], dtype=dtype), requires_grad=True)
    y = st.tensor(np.array([1, 0, 1, 0], dtype=dtype))
    with np.errstate(**RAISE):
        loss = F.binary_cross_entropy_with_logits(x, y, reduction="none")
        loss.sum().backward()
        weighted = F.binary_cross_entropy_with_logits(x.detach(), y, reduction="none",
                                                      pos_weight=st.tensor(np.array([3.0], dtype)))
    np.testing.assert_array_equal(loss.numpy(), np.array([0, 1000, 1000, 0], dtype))
    np.testing.assert_array_equal(x.grad.numpy(), np.array([0, 1, -1, 0], dtype))     # sigmoid(x) − y
    np.testing.assert_array_equal(weighted.numpy(), np.array([0, 1000, 3000, 0], dtype))


def test_no_warning_at_all_with_numpy_defaults():
    extremes = np.array([[1000, -1000, 0, 88.8, -104]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for op in (lambda t: F.softmax(t, dim=1), lambda t: F.log_softmax(t, dim=1), F.sigmoid, F.softplus,
                   F.tanh, F.elu, F.gelu, lambda t: F.cross_entropy(t, st.tensor([1])),
                   lambda t: F.binary_cross_entropy_with_logits(t, st.ones(1, 5))):
            x = st.tensor(extremes, requires_grad=True)
            out = op(x)
            out.sum().backward()
            assert np.isfinite(out.numpy()).all() and np.isfinite(x.grad.numpy()).all()


# ----- float32 sums over 2^25 elements ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def big():
    """2^25 float32 values in [0, 1)."""
    return np.random.default_rng(0).random(2 ** 25, dtype=np.float32)


def reference_sum(values):
    """fsum-quality: float64 partial sums of 1024 slices (each exact to ~1e-16) combined by math.fsum."""
    return math.fsum(np.ascontiguousarray(values, dtype=np.float64).reshape(1024, -1).sum(axis=1))


def test_float32_sum_of_2_25_ones_is_exact():
    # Adding one at a time in float32 stalls at 2^24 (16,777,216 + 1 rounds back down).
    ones = st.ones(2 ** 25)
    with np.errstate(**RAISE):
        assert ones.sum().item() == 2 ** 25
        assert ones.mean().item() == 1.0
        assert (ones.reshape(2 ** 24, 2).sum(dim=0).numpy() == 2 ** 24).all()
        assert (ones.reshape(2 ** 23, 4).mean(dim=0).numpy() == 1.0).all()


def test_float32_sum_over_2_25_elements_matches_fsum(big):
    with np.errstate(**RAISE):
        total = st.tensor(big).sum()
        mean = st.tensor(big).mean()
    assert total.dtype == np.float32
    expected = reference_sum(big)
    assert abs(total.item() - expected) / expected < 1e-6
    assert abs(mean.item() - expected / big.size) / (expected / big.size) < 1e-6


@pytest.mark.parametrize("shape, dim", [((2 ** 24, 2), 0), ((2 ** 12, 2 ** 13), 0), ((2, 2 ** 24), 1),
                                        ((2 ** 11, 2 ** 4, 2 ** 10), (0, 2))],
                         ids=["tall, across rows", "square, across rows", "wide, along rows", "two axes"])
def test_float32_sum_along_any_axis_matches_fsum(big, shape, dim):
    """NumPy adds pairwise only along the contiguous axis; across rows striate must not drift either."""
    values = big.reshape(shape)
    with np.errstate(**RAISE):
        total = st.tensor(values).sum(dim=dim).numpy()
    assert total.dtype == np.float32
    expected = np.sum(values.astype(np.float64), axis=dim)        # pairwise in float64: error ~1e-16
    assert np.max(np.abs(total - expected) / expected) < 1e-6
    if shape == (2 ** 24, 2):
        column = reference_sum(values[:, 0])
        assert abs(total[0] - column) / column < 1e-6


# ----- max pooling: ties and NaN, as PyTorch ------------------------------------------------------------------------
POOLS = {1: (F.max_pool1d, torch.nn.functional.max_pool1d), 2: (F.max_pool2d, torch.nn.functional.max_pool2d),
         3: (F.max_pool3d, torch.nn.functional.max_pool3d)}


def pool_configs(rng, n, count):
    for _ in range(count):
        kernel = tuple(int(k) for k in rng.integers(1, 4, n))
        stride = tuple(int(s) for s in rng.integers(1, 4, n))
        padding = tuple(int(rng.integers(0, k // 2 + 1)) for k in kernel)
        dilation = tuple(int(d) for d in rng.integers(1, 3, n))
        size = tuple(int(s) for s in rng.integers(4, 8 if n < 3 else 6, n))
        yield dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation,
                   ceil_mode=bool(rng.integers(2))), size


def pool_both(n, x, kwargs):
    """Forward values, indices and the input gradient of striate and PyTorch for one max pool."""
    ours, theirs = POOLS[n]
    upstream = None
    results = []
    for lib in ("striate", "torch"):
        if lib == "striate":
            t = st.tensor(x, requires_grad=True)
            with np.errstate(**RAISE):
                y, indices = ours(t, return_indices=True, **kwargs)
        else:
            t = torch.tensor(x, requires_grad=True)
            y, indices = theirs(t, return_indices=True, **kwargs)
        if upstream is None:
            upstream = np.random.default_rng(1).standard_normal(tuple(y.shape)).astype(x.dtype)
        with np.errstate(**RAISE):
            y.backward(st.tensor(upstream) if lib == "striate" else torch.tensor(upstream))
        results.append((y.detach().numpy(), indices.numpy(), t.grad.numpy()))
    return results


def pool_configs_with_output(rng, n, count):
    """Configurations for which PyTorch's max pool gives an output whose every window reads an input element."""
    found = 0
    while found < count:
        for kwargs, size in pool_configs(rng, n, 1):
            try:
                out = POOLS[n][1](torch.zeros((1, 1) + size, dtype=torch.float64), **kwargs)
            except RuntimeError:
                continue
            if torch.isfinite(out).all():
                found += 1
                yield kwargs, size


@pytest.mark.parametrize("n", [1, 2, 3])
def test_max_pool_ties_send_the_gradient_to_one_maximum_as_pytorch(n):
    rng = np.random.default_rng(n)
    for kwargs, size in pool_configs_with_output(rng, n, 12):
        x = rng.integers(0, 2, (2, 2) + size).astype(np.float64)   # mostly ties
        (y, i, g), (ty, ti, tg) = pool_both(n, x, kwargs)
        np.testing.assert_array_equal(y, ty, err_msg=str(kwargs))
        np.testing.assert_array_equal(i, ti, err_msg=str(kwargs))
        np.testing.assert_array_equal(g, tg, err_msg=str(kwargs))
    # All equal: each window's gradient lands on its first element only, never shared.
    x = st.ones(1, 1, 4, requires_grad=True)
    F.max_pool1d(x, 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[[1, 0, 1, 0]]])


@pytest.mark.parametrize("n", [1, 2, 3])
def test_nan_inside_a_pooling_window_propagates_as_pytorch(n):
    rng = np.random.default_rng(10 + n)
    for kwargs, size in pool_configs_with_output(rng, n, 12):
        x = rng.standard_normal((2, 2) + size)
        x[rng.random(x.shape) < 0.15] = np.nan
        (y, i, g), (ty, ti, tg) = pool_both(n, x, kwargs)
        np.testing.assert_array_equal(y, ty, err_msg=str(kwargs))     # NaN where PyTorch has NaN
        np.testing.assert_array_equal(i, ti, err_msg=str(kwargs))     # the index of the (first) NaN
        np.testing.assert_array_equal(g, tg, err_msg=str(kwargs))
    x = np.array([[[1, np.nan, 3, 2]]])
    with np.errstate(**RAISE):
        values, indices = F.max_pool1d(st.tensor(x), 2, return_indices=True)
    np.testing.assert_array_equal(values.numpy(), [[[np.nan, 3]]])
    np.testing.assert_array_equal(indices.numpy(), [[[1, 2]]])


def test_nan_in_average_and_adaptive_max_pools_as_pytorch():
    x = np.arange(36.0).reshape(1, 1, 6, 6)
    x[0, 0, 1, 1] = np.nan
    with np.errstate(**RAISE):
        compare(lambda t: F.avg_pool2d(t, 2, padding=1, count_include_pad=False),
                lambda t: torch.nn.functional.avg_pool2d(t, 2, padding=1, count_include_pad=False), [x], grad=(0,))
        compare(lambda t: F.adaptive_max_pool2d(t, 4), lambda t: torch.nn.functional.adaptive_max_pool2d(t, 4), [x],
                grad=(0,))


# adaptive_avg_pool once multiplied by a dense averaging matrix, so one NaN or Inf (Inf·0 = NaN)
# poisoned every output along its axis instead of only its own bin.
@pytest.mark.parametrize("value", [np.nan, np.inf], ids=["nan", "inf"])
def test_non_finite_value_in_adaptive_avg_pool_stays_in_its_bin_as_pytorch(value):
    x = np.arange(36.0).reshape(1, 1, 6, 6)
    x[0, 0, 1, 1] = value
    with np.errstate(all="ignore"):
        compare(lambda t: F.adaptive_avg_pool2d(t, 4), lambda t: torch.nn.functional.adaptive_avg_pool2d(t, 4), [x],
                grad=(0,))


# ----- output sizes, floor and ceil, with padding -------------------------------------------------------------------
def torch_shape(fn, *args, **kwargs):
    try:
        return tuple(fn(*args, **kwargs).shape)
    except RuntimeError:
        return None


def striate_shape(fn, *args, **kwargs):
    try:
        with np.errstate(**RAISE):
            return fn(*args, **kwargs).shape
    except ValueError:
        return None


def test_ceil_mode_drops_the_window_that_would_start_in_the_padding():
    # Length 5, kernel 2, stride 2, padding 1: ceil((5 + 2 − 2) / 2) + 1 = 4 windows, but the
    # 4th would start at padded position 6, inside the right padding, so there are 3 (as PyTorch).
    x = np.arange(1.0, 6.0).reshape(1, 1, 5)
    with np.errstate(**RAISE):
        floor = F.max_pool1d(st.tensor(x), 2, stride=2, padding=1)
        ceil = F.max_pool1d(st.tensor(x), 2, stride=2, padding=1, ceil_mode=True)
        ceil_avg = F.avg_pool1d(st.tensor(x), 2, stride=2, padding=1, ceil_mode=True)
    np.testing.assert_array_equal(floor.numpy(), [[[1, 3, 5]]])
    np.testing.assert_array_equal(ceil.numpy(), [[[1, 3, 5]]])
    np.testing.assert_array_equal(ceil_avg.numpy(), [[[0.5, 2.5, 4.5]]])
    assert tuple(torch.nn.functional.max_pool1d(torch.tensor(x), 2, 2, 1, ceil_mode=True).shape) == (1, 1, 3)
    # Length 6 instead: the 4th window starts at the last real sample, so it is kept.
    y = np.arange(1.0, 7.0).reshape(1, 1, 6)
    with np.errstate(**RAISE):
        np.testing.assert_array_equal(F.max_pool1d(st.tensor(y), 2, 2, 1, ceil_mode=True).numpy(), [[[1, 3, 5, 6]]])
        np.testing.assert_array_equal(F.max_pool1d(st.tensor(y), 2, 2, 1).numpy(), [[[1, 3, 5, 6]]])
        np.testing.assert_array_equal(F.max_pool1d(st.tensor(y), 3, 2, 1).numpy(), [[[2, 4, 6]]])
        np.testing.assert_array_equal(F.max_pool1d(st.tensor(y), 3, 2, 1, ceil_mode=True).numpy(), [[[2, 4, 6, 6]]])


def test_output_sizes_match_pytorch_in_floor_and_ceil_mode():
    x = {}
    for size, kernel, stride, dilation, ceil in itertools.product(range(1, 11), (1, 2, 3, 4), (1, 2, 3), (1, 2),
                                                                   (False, True)):
        for padding in range(kernel // 2 + 1):
            data = x.setdefault(size, np.arange(float(size)).reshape(1, 1, size))
            expected = torch_shape(torch.nn.functional.max_pool1d, torch.tensor(data), kernel, stride, padding,
                                   dilation, ceil_mode=ceil)
            got = striate_shape(F.max_pool1d, st.tensor(data), kernel, stride, padding, dilation, ceil_mode=ceil)
            if got is None and expected is not None:
                # A deliberate difference: where a dilated window would read only padding, PyTorch
                # returns -inf there and striate refuses the configuration.
                reference = torch.nn.functional.max_pool1d(torch.tensor(data), kernel, stride, padding, dilation,
                                                           ceil_mode=ceil)
                assert torch.isinf(reference).any(), (size, kernel, stride, padding, dilation, ceil)
                with pytest.raises(ValueError, match="reads only padding"):
                    F.max_pool1d(st.tensor(data), kernel, stride, padding, dilation, ceil_mode=ceil)
                continue
            assert got == expected, (size, kernel, stride, padding, dilation, ceil)
            if dilation == 1:
                expected = torch_shape(torch.nn.functional.avg_pool1d, torch.tensor(data), kernel, stride, padding,
                                       ceil_mode=ceil)
                got = striate_shape(F.avg_pool1d, st.tensor(data), kernel, stride, padding, ceil_mode=ceil)
                assert got == expected, ("avg", size, kernel, stride, padding, ceil)


# ----- count_include_pad --------------------------------------------------------------------------------------------
def test_count_include_pad_both_ways_exact_values():
    # [1 2 3 4] padded by 1: windows of 3 with stride 2 start at −1, 1 and (ceil mode) 3.
    x = st.tensor(np.array([[[1.0, 2, 3, 4]]]), requires_grad=True)
    with np.errstate(**RAISE):
        include = F.avg_pool1d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=True)
        exclude = F.avg_pool1d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
    # (0+1+2)/3, (2+3+4)/3, and the last window: [4, pad] within the padded input (the part past
    # the padding never counts), so 4/2 including the padding and 4/1 excluding it.
    np.testing.assert_array_equal(include.numpy(), [[[1, 3, 2]]])
    np.testing.assert_array_equal(exclude.numpy(), [[[1.5, 3, 4]]])
    with np.errstate(**RAISE):
        exclude.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[[1 / 2, 1 / 2 + 1 / 3, 1 / 3, 1 / 3 + 1]]])


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_count_include_pad_matches_pytorch(n, count_include_pad):
    ours = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[n]
    theirs = {1: torch.nn.functional.avg_pool1d, 2: torch.nn.functional.avg_pool2d,
              3: torch.nn.functional.avg_pool3d}[n]
    rng = np.random.default_rng(20 + n + 3 * count_include_pad)
    for _ in range(10):
        kernel = tuple(int(k) for k in rng.integers(1, 4, n))
        stride = tuple(int(s) for s in rng.integers(1, 4, n))
        padding = tuple(int(rng.integers(0, k // 2 + 1)) for k in kernel)
        ceil_mode = bool(rng.integers(2))
        size = tuple(int(s) for s in rng.integers(3, 7, n))
        x = rng.standard_normal((2, 2) + size)
        kwargs = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode,
                      count_include_pad=count_include_pad)
        if striate_shape(ours, st.tensor(x), **kwargs) is None:
            assert torch_shape(theirs, torch.tensor(x), **kwargs) is None
            continue
        with np.errstate(**RAISE):
            out = compare(lambda t: ours(t, **kwargs), lambda t: theirs(t, **kwargs), [x], grad=(0,),
                          rtol=1e-12, atol=1e-12)
        assert out.dtype == np.float64


def test_avg_pool_float32_stays_float32_and_matches_pytorch():
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 9)).astype(np.float32)
    with np.errstate(**RAISE):
        out = compare(lambda t: F.avg_pool2d(t, 3, 2, 1, ceil_mode=True, count_include_pad=False),
                      lambda t: torch.nn.functional.avg_pool2d(t, 3, 2, 1, ceil_mode=True, count_include_pad=False),
                      [x], grad=(0,))
    assert out.dtype == np.float32
    assert_close(out, torch.nn.functional.avg_pool2d(torch.tensor(x), 3, 2, 1, True, False))
