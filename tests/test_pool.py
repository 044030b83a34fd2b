"""Pooling ops × samples × checks: PyTorch parity (values, gradients, indices), gradcheck, errors."""
import itertools
import math

import numpy
import pytest

import striate as st
import striate.nn.functional as F
from oracle import assert_close, compare, to_torch, torch

TF = torch.nn.functional
RANKS = (1, 2, 3)
SAMPLES = 10  # randomised configurations per op and rank


# ----- the ops and their references ------------------------------------------------------------

def striate_op(family, n):
    return getattr(F, f"{family}{n}d")


def torch_op(family, n):
    """PyTorch's op; PyTorch has no min pooling, so its reference is ``-max_pool(-x)``."""
    if family == "avg_pool" and n == 1:
        return avg_pool1d_via_2d
    if family != "min_pool":
        return getattr(TF, f"{family}{n}d")
    max_pool = getattr(TF, f"max_pool{n}d")

    def min_pool(x, *args, **kwargs):
        out = max_pool(-x, *args, **kwargs)
        return (-out[0], out[1]) if kwargs.get("return_indices") else -out
    return min_pool


def avg_pool1d_via_2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                      divisor_override=None):
    """PyTorch's avg_pool1d lacks ``divisor_override``; its avg_pool2d over a height of 1 has it."""
    def pair(v, fill):
        return None if v is None else (fill,) + tuple(v if isinstance(v, tuple) else (v,))
    return TF.avg_pool2d(x.unsqueeze(-2), pair(kernel_size, 1), pair(stride, 1), pair(padding, 0), ceil_mode,
                         count_include_pad, divisor_override).squeeze(-2)


# ----- samples -------------------------------------------------------------------------------------

def window_samples(n, seed, dilation):
    """Random window settings for rank ``n``: odd, non-square sizes, overlapping or gapped windows."""
    rng = numpy.random.default_rng(seed)
    samples = []
    for _ in range(SAMPLES):
        kernel = tuple(int(k) for k in rng.integers(1, (6, 4, 4)[n - 1], n))
        stride = tuple(int(s) for s in rng.integers(1, 4, n)) if rng.random() < 0.75 else None
        padding = tuple(int(rng.integers(0, k // 2 + 1)) for k in kernel)
        dil = tuple(int(d) for d in rng.integers(1, 3, n)) if dilation else (1,) * n
        # at least one window's span per dimension, so every window touches the input
        size = tuple(d * (k - 1) + 1 + int(rng.integers(0, (9, 6, 4)[n - 1])) for k, d in zip(kernel, dil))
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 3))) + size
        kwargs = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=bool(rng.integers(2)))
        if dilation:
            kwargs["dilation"] = dil
        samples.append((shape, kwargs))
    return samples


def avg_samples(n, seed):
    rng = numpy.random.default_rng(seed)
    samples = window_samples(n, seed, dilation=False)
    for _, kwargs in samples:
        kwargs["count_include_pad"] = bool(rng.integers(2))
        kwargs["divisor_override"] = int(rng.integers(1, 7)) if rng.random() < 0.25 else None
    return samples


def adaptive_samples(n, seed):
    """Input sizes and output sizes: dividing, not dividing, larger than the input, ``None``."""
    rng = numpy.random.default_rng(seed)
    samples = []
    for _ in range(SAMPLES):
        size = tuple(int(d) for d in rng.integers(1, (13, 8, 6)[n - 1], n))
        out = tuple(None if rng.random() < 0.15 else int(rng.integers(1, d + 3)) for d in size)
        samples.append(((int(rng.integers(1, 3)), int(rng.integers(1, 3))) + size, out))
    return samples


MAX_MIN_SAMPLES = {n: window_samples(n, seed=10 + n, dilation=True) for n in RANKS}
AVG_SAMPLES = {n: avg_samples(n, seed=20 + n) for n in RANKS}
DILATED_AVG_SAMPLES = {n: window_samples(n, seed=30 + n, dilation=True) for n in RANKS}
ADAPTIVE_SAMPLES = {n: adaptive_samples(n, seed=40 + n) for n in RANKS}


def distinct_values(shape, rng, dtype=numpy.float64):
    """Values at least 0.1 apart, so no max/min is tied and finite differences cannot swap winners."""
    return (rng.permutation(math.prod(shape)).reshape(shape) * 0.1 - 1.0).astype(dtype)


# ----- PyTorch parity ------------------------------------------------------------------------------

@pytest.mark.parametrize("n", RANKS)
@pytest.mark.parametrize("family", ["max_pool", "min_pool"])
@pytest.mark.parametrize("index", range(SAMPLES))
def test_max_min_pool_match_torch(family, n, index):
    shape, kwargs = MAX_MIN_SAMPLES[n][index]
    x = numpy.random.default_rng(index).standard_normal(shape).astype(numpy.float32)
    ours, ref = striate_op(family, n), torch_op(family, n)
    compare(lambda t: ours(t, **kwargs), lambda t: ref(t, **kwargs), [x], grad=(0,))
    _, indices = ours(st.tensor(x), **kwargs, return_indices=True)
    _, expected = ref(to_torch(x), **kwargs, return_indices=True)
    assert indices.dtype == numpy.int64
    numpy.testing.assert_array_equal(indices.data, expected.numpy())


@pytest.mark.parametrize("n", RANKS)
@pytest.mark.parametrize("index", range(SAMPLES))
def test_avg_pool_matches_torch(n, index):
    shape, kwargs = AVG_SAMPLES[n][index]
    x = numpy.random.default_rng(index).standard_normal(shape).astype(numpy.float32)
    compare(lambda t: striate_op("avg_pool", n)(t, **kwargs), lambda t: torch_op("avg_pool", n)(t, **kwargs),
            [x], grad=(0,))


@pytest.mark.parametrize("n", RANKS)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool_ceil_mode_divisor(n, count_include_pad):
    """Ceil-mode windows overhang the padded input; the divisor counts only the part inside."""
    shape = (1, 2) + (6, 5, 4)[:n]
    kwargs = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=count_include_pad)
    x = numpy.random.default_rng(n).standard_normal(shape).astype(numpy.float32)
    compare(lambda t: striate_op("avg_pool", n)(t, **kwargs), lambda t: torch_op("avg_pool", n)(t, **kwargs),
            [x], grad=(0,))


@pytest.mark.parametrize("n", RANKS)
@pytest.mark.parametrize("family", ["adaptive_avg_pool", "adaptive_max_pool"])
@pytest.mark.parametrize("index", range(SAMPLES))
def test_adaptive_pool_matches_torch(family, n, index):
    shape, out = ADAPTIVE_SAMPLES[n][index]
    x = numpy.random.default_rng(index).standard_normal(shape).astype(numpy.float32)
    ours, ref = striate_op(family, n), torch_op(family, n)
    # PyTorch's 1-d adaptive pools do not take None for "keep this size"
    resolved = tuple(d if o is None else o for o, d in zip(out, shape[2:])) if n == 1 else out
    compare(lambda t: ours(t, out), lambda t: ref(t, resolved), [x], grad=(0,))
    if family == "adaptive_max_pool":
        _, indices = ours(st.tensor(x), out, return_indices=True)
        _, expected = ref(to_torch(x), resolved, return_indices=True)
        numpy.testing.assert_array_equal(indices.data, expected.numpy())


@pytest.mark.parametrize("n", RANKS)
@pytest.mark.parametrize("layout", ["contiguous", "channel-major view"])
def test_global_average_pool_matches_torch(n, layout):
    """Output size 1 everywhere (a classifier head) is one mean over all spatial axes, NaN and Inf kept per channel."""
    rng = numpy.random.default_rng(50 + n)
    x = rng.standard_normal((3, 4) + (9, 7, 5)[:n]).astype(numpy.float32)
    x[1, 2].flat[3], x[2, 0].flat[0] = numpy.inf, numpy.nan
    if layout == "channel-major view":               # how a convolution's output can lie in memory
        x = numpy.ascontiguousarray(x.swapaxes(0, 1)).swapaxes(0, 1)
    compare(lambda t: striate_op("adaptive_avg_pool", n)(t, 1), lambda t: torch_op("adaptive_avg_pool", n)(t, 1),
            [x], grad=(0,))
    x64 = st.tensor(rng.standard_normal((2, 3) + (4, 3, 2)[:n]), requires_grad=True)
    assert st.gradcheck(lambda t: striate_op("adaptive_avg_pool", n)(t, 1), (x64,))


@pytest.mark.parametrize("n", RANKS)
@pytest.mark.parametrize("family", ["max_pool", "min_pool"])
@pytest.mark.parametrize("index", range(SAMPLES))
def test_max_min_pool_without_gradient_match_torch(family, n, index):
    """Inference (no gradient wanted, no indices) takes a running extreme instead of the scan."""
    shape, kwargs = MAX_MIN_SAMPLES[n][index]
    x = numpy.random.default_rng(100 + index).standard_normal(shape).astype(numpy.float32)
    x.flat[::7] = [numpy.nan, -numpy.inf, numpy.inf][index % 3]
    expected = torch_op(family, n)(to_torch(x), **kwargs).numpy()
    plain = striate_op(family, n)(st.tensor(x), **kwargs)
    with st.no_grad():
        under_no_grad = striate_op(family, n)(st.tensor(x, requires_grad=True), **kwargs)
    for out in (plain, under_no_grad):
        assert not out.requires_grad and out.dtype == numpy.float32
        numpy.testing.assert_array_equal(out.data, expected)


@pytest.mark.parametrize("family", ["max_pool", "min_pool", "adaptive_max_pool"])
def test_ties_pick_the_first_extreme_as_torch(family):
    """Many equal values: the first extreme in scan order wins, and only it gets the gradient."""
    x = numpy.random.default_rng(0).integers(0, 3, (2, 3, 7, 6)).astype(numpy.float32)
    args = (5,) if family == "adaptive_max_pool" else (3,)
    kwargs = {} if family == "adaptive_max_pool" else dict(stride=2, padding=1, ceil_mode=True)
    ours, ref = striate_op(family, 2), torch_op(family, 2)
    compare(lambda t: ours(t, *args, **kwargs), lambda t: ref(t, *args, **kwargs), [x], grad=(0,))
    _, indices = ours(st.tensor(x), *args, **kwargs, return_indices=True)
    _, expected = ref(to_torch(x), *args, **kwargs, return_indices=True)
    numpy.testing.assert_array_equal(indices.data, expected.numpy())


@pytest.mark.parametrize("family", ["max_pool", "min_pool"])
@pytest.mark.parametrize("n, size, kernel", [
    (1, (9,), (2,)), (1, (12,), (4,)),
    (2, (8, 9), (2, 2)), (2, (7, 10), (3, 2)), (2, (6, 9), (1, 3)), (2, (9, 4), (2, 1)),
    (3, (4, 6, 5), (2, 2, 2)), (3, (5, 4, 7), (2, 1, 3)),
], ids=lambda v: "x".join(map(str, v)) if isinstance(v, tuple) else str(v))
@pytest.mark.parametrize("layout", ["contiguous", "channel-major view"])
def test_non_overlapping_windows_with_ties_as_torch(family, n, size, kernel, layout):
    """Windows that tile the input (stride = kernel, the usual pool) are reduced one axis at a
    time: with many equal values the first extreme in PyTorch's scan order still wins and alone
    gets the gradient, including 1-wide axes and inputs the windows do not cover to the end."""
    x = numpy.random.default_rng(sum(size)).integers(0, 3, (2, 3) + size).astype(numpy.float32)
    if layout == "channel-major view":               # how a convolution's output can lie in memory
        x = numpy.ascontiguousarray(x.swapaxes(0, 1)).swapaxes(0, 1)
    ours, ref = striate_op(family, n), torch_op(family, n)
    compare(lambda t: ours(t, kernel), lambda t: ref(t, kernel), [x], grad=(0,))
    out, indices = ours(st.tensor(x), kernel, return_indices=True)
    expected, expected_indices = ref(to_torch(x), kernel, return_indices=True)
    numpy.testing.assert_array_equal(indices.data, expected_indices.numpy())
    with st.no_grad():
        numpy.testing.assert_array_equal(ours(st.tensor(x), kernel).data, expected.numpy())


@pytest.mark.parametrize("special", [-numpy.inf, numpy.inf, numpy.nan])
@pytest.mark.parametrize("family", ["max_pool", "min_pool", "adaptive_max_pool"])
def test_infinities_and_nans_as_torch(family, special):
    """A window of only −inf (max) or +inf (min) reports its first real element, never padding;
    a NaN wins over any number, the last NaN in scan order."""
    x = numpy.random.default_rng(1).standard_normal((1, 2, 9)).astype(numpy.float32)
    x[0, 0, :6] = special  # windows and bins that hold nothing else
    x[0, 1, [2, 5]] = special
    args = (3,) if family == "adaptive_max_pool" else (4,)
    kwargs = {} if family == "adaptive_max_pool" else dict(stride=3, padding=2, dilation=1)
    ours, ref = striate_op(family, 1), torch_op(family, 1)
    out, indices = ours(st.tensor(x), *args, **kwargs, return_indices=True)
    expected, expected_indices = ref(to_torch(x), *args, **kwargs, return_indices=True)
    numpy.testing.assert_array_equal(out.data, expected.numpy())
    numpy.testing.assert_array_equal(indices.data, expected_indices.numpy())


@pytest.mark.parametrize("n", RANKS)
@pytest.mark.parametrize("family, args, kwargs", [
    ("max_pool", (2,), dict(padding=1)),
    ("min_pool", (3,), dict(stride=2, ceil_mode=True)),
    ("avg_pool", (2,), dict(stride=1, padding=1, count_include_pad=False)),
    ("adaptive_avg_pool", (3,), {}),
    ("adaptive_max_pool", (2,), {}),
])
def test_unbatched_input(family, args, kwargs, n):
    x = numpy.random.default_rng(n).standard_normal((3,) + (5, 4, 3)[:n]).astype(numpy.float32)
    ours, ref = striate_op(family, n), torch_op(family, n)
    out = compare(lambda t: ours(t, *args, **kwargs), lambda t: ref(t, *args, **kwargs), [x], grad=(0,))
    assert out.ndim == n + 1
    if "max" in family or "min" in family:
        _, indices = ours(st.tensor(x), *args, **kwargs, return_indices=True)
        _, expected = ref(to_torch(x), *args, **kwargs, return_indices=True)
        numpy.testing.assert_array_equal(indices.data, expected.numpy())


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("family, args", [("max_pool", (2,)), ("min_pool", (2,)), ("avg_pool", (2,)),
                                          ("adaptive_avg_pool", (3,)), ("adaptive_max_pool", (3,))])
def test_dtype_is_kept(family, args, dtype):
    x = st.tensor(numpy.random.default_rng(0).standard_normal((2, 3, 6, 5)).astype(dtype), requires_grad=True)
    out = striate_op(family, 2)(x, *args)
    out.sum().backward()
    assert out.dtype == dtype and x.grad.dtype == dtype
    if dtype == numpy.float64:
        expected = torch_op(family, 2)(to_torch(x.data), *args)
        assert expected.dtype == torch.float64
        assert_close(out, expected, rtol=1e-12, atol=1e-12)


# ----- gradients by finite differences (float64) -----------------------------------------------------

GRADCHECK_CASES = [
    ("max_pool", (3,), dict(stride=2, padding=1, dilation=1, ceil_mode=True)),
    ("max_pool", (2,), dict(stride=1, dilation=2)),
    ("min_pool", (3,), dict(stride=1, padding=1)),
    ("min_pool", (2,), dict(stride=2, dilation=2, ceil_mode=True)),
    ("avg_pool", (3,), dict(stride=2, padding=1, ceil_mode=True)),
    ("avg_pool", (2,), dict(stride=1, padding=1, count_include_pad=False, divisor_override=None)),
    ("avg_pool", (2,), dict(stride=1, divisor_override=3)),
    ("avg_pool", (3,), dict(stride=1, padding=1, dilation=2, count_include_pad=False)),
    ("adaptive_avg_pool", (4,), {}),  # 6 → 4 and 5 → 4: overlapping bins
    ("adaptive_max_pool", (4,), {}),
]


@pytest.mark.parametrize("n", RANKS)
@pytest.mark.parametrize("family, args, kwargs", GRADCHECK_CASES)
def test_gradcheck(family, args, kwargs, n):
    x = distinct_values((2, 1) + (6, 5, 4)[:n] if n < 3 else (1, 2, 5, 4, 4), numpy.random.default_rng(n))
    op = striate_op(family, n)
    assert st.gradcheck(lambda t: op(t, *args, **kwargs), [x])


# ----- dilated average pooling (a striate extension) against a naive loop ----------------------

def naive_avg_pool(x, kernel, stride, padding, dilation, ceil_mode, count_include_pad):
    """Direct definition: average the dilated taps of each window, counting those inside the
    padded input (or the real input), with PyTorch's output-size rule written out again."""
    size = x.shape[2:]
    out = []
    for d, k, s, p, dil in zip(size, kernel, stride, padding, dilation):
        room = d + 2 * p - (dil * (k - 1) + 1)
        o = (-(-room // s) if ceil_mode else room // s) + 1
        if ceil_mode and (o - 1) * s >= d + p:
            o -= 1
        out.append(o)
    y = numpy.zeros(x.shape[:2] + tuple(out))
    for o in itertools.product(*map(range, out)):
        total, count = numpy.zeros(x.shape[:2]), 0
        for k in itertools.product(*map(range, kernel)):
            pos = [oi * s + ki * dil - p for oi, ki, s, dil, p in zip(o, k, stride, dilation, padding)]
            real = all(0 <= q < d for q, d in zip(pos, size))
            padded = all(-p <= q < d + p for q, d, p in zip(pos, size, padding))
            if real:
                total += x[(Ellipsis,) + tuple(pos)]
            count += real or (padded and count_include_pad)
        y[(Ellipsis,) + o] = total / count
    return y


@pytest.mark.parametrize("n", RANKS)
@pytest.mark.parametrize("index", range(SAMPLES))
def test_dilated_avg_pool_matches_naive_loop(n, index):
    shape, kwargs = DILATED_AVG_SAMPLES[n][index]
    kwargs = dict(kwargs, stride=kwargs["stride"] or kwargs["kernel_size"], count_include_pad=bool(index % 2))
    x = numpy.random.default_rng(index).standard_normal(shape)
    out = striate_op("avg_pool", n)(st.tensor(x), **kwargs)
    expected = naive_avg_pool(x, kwargs["kernel_size"], kwargs["stride"], kwargs["padding"], kwargs["dilation"],
                              kwargs["ceil_mode"], kwargs["count_include_pad"])
    assert_close(out, expected, rtol=1e-12, atol=1e-12)


def test_dilated_avg_pool_is_keyword_only():
    x = st.tensor(numpy.ones((1, 1, 8)))
    with pytest.raises(TypeError):
        F.avg_pool1d(x, 2, 2, 0, False, True, None, 2)


# ----- bad input ---------------------------------------------------------------------------------

X1, X2, X3 = (st.tensor(numpy.zeros(s, numpy.float32)) for s in [(1, 2, 7), (1, 2, 7, 7), (1, 1, 5, 5, 5)])

ERROR_CASES = [
    (F.max_pool2d, (st.tensor(numpy.zeros((8, 8), numpy.float32)), 2), {}, ValueError,
     r"max_pool2d: expected input of shape \(N, C, H, W\) or \(C, H, W\), got 2-D input of shape \(8, 8\)"),
    (F.min_pool1d, (X2, 2), {}, ValueError, r"min_pool1d: expected input of shape \(N, C, L\)"),
    (F.avg_pool3d, (X1, 2), {}, ValueError,
     r"avg_pool3d: expected input of shape \(N, C, D, H, W\) or \(C, D, H, W\), got 3-D input"),
    (F.adaptive_avg_pool2d, (X3, 2), {}, ValueError, r"adaptive_avg_pool2d: expected input of shape"),
    (F.adaptive_max_pool3d, (X1, 2), {}, ValueError, r"adaptive_max_pool3d: expected input of shape"),
    (F.max_pool2d, (st.tensor(numpy.zeros((1, 1, 4, 4), numpy.int64)), 2), {}, TypeError,
     r"max_pool2d: input must be a floating-point tensor, got dtype int64"),
    (F.max_pool2d, ([[1.0]], 2), {}, TypeError, r"max_pool2d: input must be a Tensor or an array, got list"),
    (F.max_pool2d, (X2, 0), {}, ValueError, r"max_pool2d: kernel_size must be positive .* got \(0, 0\)"),
    (F.max_pool2d, (X2, (2, 2, 2)), {}, ValueError, r"max_pool2d: kernel_size must be an int or a tuple of 2"),
    (F.max_pool2d, (X2, 2.5), {}, TypeError, r"max_pool2d: kernel_size must be an int or a tuple of 2"),
    (F.min_pool3d, (X3, 2), dict(stride=(1, 0, 1)), ValueError,
     r"min_pool3d: stride must be positive .* \(1, 0, 1\)"),
    (F.max_pool1d, (X1, 2), dict(dilation=0), ValueError, r"max_pool1d: dilation must be positive .* \(0,\)"),
    (F.avg_pool3d, (X3, 2), dict(dilation=-1), ValueError, r"avg_pool3d: dilation must be positive"),
    (F.avg_pool2d, (X2, 3), dict(padding=-1), ValueError,
     r"avg_pool2d: padding must be non-negative .* \(-1, -1\)"),
    (F.max_pool2d, (X2, 3), dict(padding=2), ValueError,
     r"max_pool2d: padding must be at most half the kernel size \(padding <= kernel_size // 2\), "
     r"got padding \(2, 2\) for kernel_size \(3, 3\)"),
    (F.avg_pool1d, (X1, 4), dict(padding=3), ValueError, r"avg_pool1d: padding must be at most half"),
    (F.max_pool2d, (X2, 8), {}, ValueError,
     r"max_pool2d: output size must be positive, got \(0, 0\) for input size \(7, 7\) with kernel_size \(8, 8\)"),
    (F.avg_pool1d, (X1, 3), dict(dilation=4), ValueError,
     r"avg_pool1d: output size must be positive, got \(0,\) .* dilation \(4,\)"),
    (F.max_pool1d, (st.tensor(numpy.zeros((1, 1, 2), numpy.float32)), 2), dict(stride=1, padding=1, dilation=3),
     ValueError, r"max_pool1d: every window must cover at least one input element, but along spatial "
                 r"dimension 0 the window at output position 0 reads only padding"),
    (F.avg_pool2d, (X2, 2), dict(divisor_override=0), ValueError,
     r"avg_pool2d: divisor_override must be non-zero, got 0"),
    (F.avg_pool2d, (X2, 2), dict(divisor_override=1.5), TypeError, r"avg_pool2d: divisor_override must be an int"),
    (F.adaptive_avg_pool2d, (X2, 0), {}, ValueError,
     r"adaptive_avg_pool2d: output_size must be positive in every dimension, got 0"),
    (F.adaptive_max_pool2d, (X2, (3, -1)), {}, ValueError, r"adaptive_max_pool2d: output_size must be positive"),
    (F.adaptive_avg_pool3d, (X3, (2, 2)), {}, ValueError,
     r"adaptive_avg_pool3d: output_size must be an int or a tuple of 3 ints or None, got \(2, 2\)"),
    (F.adaptive_max_pool1d, (X1, 2.0), {}, TypeError, r"adaptive_max_pool1d: output_size must be an int"),
    (F.adaptive_avg_pool1d, (X1, (1.5,)), {}, ValueError, r"adaptive_avg_pool1d: output_size must be an int"),
    (F.adaptive_avg_pool2d, (st.tensor(numpy.zeros((1, 1, 0, 3), numpy.float32)), 2), {}, ValueError,
     r"adaptive_avg_pool2d: input spatial size must be positive in every dimension, got \(0, 3\)"),
]


@pytest.mark.parametrize("op, args, kwargs, error, match", ERROR_CASES,
                         ids=[f"{case[0].__name__}-{case[4][:40]}" for case in ERROR_CASES])
def test_bad_input_is_rejected(op, args, kwargs, error, match):
    with pytest.raises(error, match=match):
        op(*args, **kwargs)


@pytest.mark.parametrize("op, args, kwargs", [
    (case[0], case[1], case[2]) for case in ERROR_CASES
    if ("expected input" in case[4] or "padding must" in case[4] or "output size" in case[4])
    and "dilation" not in case[2]])
def test_torch_rejects_the_same_input(op, args, kwargs):
    """The rules are PyTorch's: where PyTorch has the op, it refuses the same arguments."""
    args = (to_torch(args[0].data),) + args[1:]
    name = op.__name__.replace("min_pool", "max_pool")
    with pytest.raises(RuntimeError):
        getattr(TF, name)(*args, **kwargs)
