"""pad: every mode × 1/2/3 padded dims × batched/unbatched, against PyTorch; gradcheck; PyTorch's limits."""
import numpy
import pytest

import striate as st
import striate.nn.functional as F
from oracle import compare, torch

TF = torch.nn.functional
MODES = ["constant", "reflect", "replicate", "circular"]
TOL = {numpy.float32: dict(rtol=1e-6, atol=1e-6), numpy.float64: dict(rtol=1e-12, atol=1e-12)}


def random_widths(rng, mode, n):
    """A (left, right) pair that PyTorch accepts for ``mode`` on a dimension of size ``n``, negatives included."""
    while True:
        lo, hi = (int(v) for v in rng.integers(-n, n + 3, size=2))
        out = n + lo + hi
        if mode == "constant" and out >= 0:
            return lo, hi
        if mode == "reflect" and max(lo, hi) < n and out >= 1:
            return lo, hi
        if mode == "replicate" and out >= 1:
            return lo, hi
        if mode == "circular":
            kept = n - max(-lo, 0) - max(-hi, 0)
            if kept >= 0 and max(lo, hi) <= kept:
                return lo, hi


def random_case(rng, mode, k, batched):
    """Input shape and pad tuple (last dimension first) for ``k`` padded dims."""
    spatial = tuple(int(s) for s in rng.integers(1, 6, size=k))
    lead = (int(rng.integers(1, 3)), int(rng.integers(1, 4))) if batched else (int(rng.integers(1, 4)),)
    widths = [random_widths(rng, mode, n) for n in spatial]
    pad = tuple(w for lo_hi in reversed(widths) for w in lo_hi)
    return lead + spatial, pad


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("mode", MODES)
def test_matches_torch(mode, k, batched, dtype):
    rng = numpy.random.default_rng(100 * k + MODES.index(mode) + 7 * batched)
    for trial in range(8):
        shape, pad = random_case(rng, mode, k, batched)
        x = rng.standard_normal(shape).astype(dtype)
        value = float(rng.standard_normal()) if mode == "constant" and trial % 2 else None
        out = compare(lambda t: F.pad(t, pad, mode=mode, value=value),
                      lambda t: TF.pad(t, pad, mode=mode, value=value),
                      [x], grad=(0,), seed=trial, **TOL[dtype])
        assert out.dtype == dtype, (shape, pad)


def test_constant_pads_any_number_of_dims_of_any_rank():
    rng = numpy.random.default_rng(5)
    for trial in range(20):
        ndim = int(rng.integers(0, 6))
        shape = tuple(int(s) for s in rng.integers(1, 5, size=ndim))
        k = int(rng.integers(0, ndim + 1))
        widths = [random_widths(rng, "constant", n) for n in shape[ndim - k:]]
        pad = tuple(w for lo_hi in reversed(widths) for w in lo_hi)
        x = rng.standard_normal(shape)
        compare(lambda t: F.pad(t, pad, value=2.5), lambda t: TF.pad(t, pad, value=2.5), [x], grad=(0,),
                seed=trial, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("mode", MODES)
def test_gradcheck(mode, k):
    rng = numpy.random.default_rng(k)
    spatial = (3, 4, 5)[3 - k:]
    pad = {"constant": (2, -1, 1, 0, -1, 2), "reflect": (1, 1, 2, 1, 1, 2), "replicate": (3, -1, 0, 2, 2, 1),
           "circular": (2, 1, -1, 3, 2, 2)}[mode][:2 * k]
    x = rng.standard_normal((2, *spatial))
    assert st.gradcheck(lambda t: F.pad(t, pad, mode=mode), [x])


@pytest.mark.parametrize("mode, expected", [
    ("constant", [9, 9, 1, 2, 3, 9]),
    ("reflect", [3, 2, 1, 2, 3, 2]),
    ("replicate", [1, 1, 1, 2, 3, 3]),
    ("circular", [2, 3, 1, 2, 3, 1]),
])
def test_textbook_values(mode, expected):
    x = st.tensor(numpy.array([[[1.0, 2.0, 3.0]]]))
    value = 9.0 if mode == "constant" else None
    assert F.pad(x, (2, 1), mode=mode, value=value).data.ravel().tolist() == expected


def test_replicate_backward_sums_every_copy_of_the_edge():
    x = st.tensor(numpy.array([[[1.0, 2.0, 3.0]]]), requires_grad=True)
    F.pad(x, (4, 2), mode="replicate").sum().backward()
    assert x.grad.data.ravel().tolist() == [5.0, 1.0, 3.0]


def test_integer_input_and_empty_batch():
    x = st.tensor(numpy.arange(6).reshape(1, 2, 3))
    y = F.pad(x, (1, 1), value=7)
    assert y.dtype == numpy.int64 and y.data[0, 0].tolist() == [7, 0, 1, 2, 7]
    assert F.pad(x, (1, 2), mode="circular").data[0, 1].tolist() == [5, 3, 4, 5, 3, 4]
    for mode in MODES:
        assert F.pad(st.zeros(0, 2, 3), (1, 1), mode=mode).shape == (0, 2, 5)


def test_input_is_not_modified_and_zero_padding_is_a_copy():
    x = st.tensor(numpy.ones((1, 2, 3)))
    y = F.pad(x, (0, 0), mode="reflect")
    y.data[...] = 5
    assert (x.data == 1).all()


@pytest.mark.parametrize("call, error, match", [
    (lambda: F.pad(st.zeros(2, 5), (1,)), ValueError, "pad: padding length must be divisible by 2"),
    (lambda: F.pad(st.zeros(2, 5), (1, 1) * 3), ValueError,
     r"pad: padding length must be at most twice the input dimension, got 6 values .* for a 2-D input"),
    (lambda: F.pad(st.zeros(2, 5), (1.5, 1)), TypeError, r"pad: pad must be a tuple of ints"),
    (lambda: F.pad(st.zeros(2, 5), 1), TypeError, r"pad: pad must be a tuple of ints"),
    (lambda: F.pad(st.zeros(2, 5), (1, 1), mode="zeros"), ValueError, "pad: mode must be one of 'constant'"),
    (lambda: F.pad(st.zeros(2, 5), (-3, -3)), ValueError,
     r"pad: negative padding \(-3, -3\) would give dimension 1 of size 5 a negative size -1"),
    (lambda: F.pad(st.zeros(2, 5), (1, 1), mode="reflect", value=1.0), ValueError,
     "pad: padding mode 'reflect' does not take a value argument"),
    (lambda: F.pad(st.zeros(5), (1, 1), mode="reflect"), ValueError,
     r"pad: reflect padding supports padding the last 1, 2 or 3 dimensions .* got 2 values for a 1-D input"),
    (lambda: F.pad(st.zeros(1, 2, 3, 5), (1, 1), mode="replicate"), ValueError, "got 2 values for a 4-D input"),
    (lambda: F.pad(st.zeros(1, 1, 1, 1, 2, 2), (1,) * 6, mode="circular"), ValueError, "6 values for a 6-D"),
    (lambda: F.pad(st.zeros(1, 1, 1, 1), (1,) * 8, mode="circular"), ValueError, "8 values for a 4-D"),
    (lambda: F.pad(st.zeros(1, 1, 5), (5, 0), mode="reflect"), ValueError,
     r"pad: reflect padding must be smaller than the dimension it pads, got padding \(5, 0\) for dimension 2 "
     r"of size 5"),
    (lambda: F.pad(st.zeros(1, 1, 5), (-3, -2), mode="reflect"), ValueError,
     r"pad: reflect padding would leave dimension 2 of size 5 with 0 samples"),
    (lambda: F.pad(st.zeros(1, 1, 5), (-5, 0), mode="replicate"), ValueError, "replicate padding would leave"),
    (lambda: F.pad(st.zeros(2, 0, 5), (1, 1), mode="replicate"), ValueError,
     r"pad: replicate padding needs non-empty dimensions \(the batch may be empty\), got input of shape"),
    (lambda: F.pad(st.zeros(2, 2, 0), (1, 1), mode="reflect"), ValueError, "reflect padding needs non-empty"),
    (lambda: F.pad(st.zeros(1, 1, 5), (6, 0), mode="circular"), ValueError,
     r"pad: circular padding may wrap around at most once: padding \(6, 0\) exceeds the 5 samples"),
    (lambda: F.pad(st.zeros(1, 1, 5), (-2, 4), mode="circular"), ValueError, "exceeds the 3 samples"),
    (lambda: F.pad(st.zeros(1, 1, 5), (-3, -3), mode="circular"), ValueError,
     "pad: negative circular padding .* crops more than dimension 2 of size 5"),
    (lambda: F.pad([1.0, 2.0], (1, 1)), TypeError, "pad: input must be a Tensor or an array"),
    (lambda: F.pad(st.zeros(2, 5), (1, 1), value="0"), TypeError, "pad: value must be a real number, got '0'"),
])
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("mode, pad, shape", [
    ("reflect", (5, 0), (1, 1, 5)),
    ("reflect", (-3, -2), (1, 1, 5)),
    ("replicate", (1, 1), (2, 0, 5)),
    ("circular", (6, 0), (1, 1, 5)),
    ("circular", (-2, 4), (1, 1, 5)),
    ("constant", (-3, -3), (2, 5)),
    ("reflect", (1, 1), (5,)),
])
def test_torch_also_rejects(mode, pad, shape):
    # The error cases above are exactly the ones PyTorch refuses too.
    with pytest.raises((RuntimeError, NotImplementedError)):
        TF.pad(torch.zeros(shape), pad, mode=mode)
