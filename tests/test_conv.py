"""conv1d / conv2d / conv3d / conv_nd: gradients, PyTorch parity, the "same" rule, errors."""
import math

import numpy
import pytest

import striate as st
import striate.nn.functional as F
from striate.ops.conv import conv_nd
from tests.oracle import assert_close, compare, to_torch, torch

TF = torch.nn.functional
ENTRIES = {1: (F.conv1d, TF.conv1d), 2: (F.conv2d, TF.conv2d), 3: (F.conv3d, TF.conv3d)}


def same_pads(size, kernel, stride, dilation):
    """The documented "same" rule, written out here independently of striate: (low, high) per dim."""
    pads = []
    for d, k, s, dil in zip(size, kernel, stride, dilation):
        total = max((-(-d // s) - 1) * s + (k - 1) * dil + 1 - d, 0)
        pads.append((total // 2, total - total // 2))
    return pads


def torch_conv(n, padding, size, kernel, stride, dilation, groups):
    """A PyTorch reference for ``padding`` in any striate form, padding explicitly where torch cannot."""
    conv = ENTRIES[n][1]

    def run(x, w, b=None):
        if padding == "same" and any(s > 1 for s in stride):
            widths = [p for pair in reversed(same_pads(size, kernel, stride, dilation)) for p in pair]
            return conv(TF.pad(x, widths), w, b, stride, 0, dilation, groups)
        if padding == "full":
            full = tuple(dil * (k - 1) for k, dil in zip(kernel, dilation))
            return conv(x, w, b, stride, full, dilation, groups)
        return conv(x, w, b, stride, padding, dilation, groups)

    return run


def random_config(rng, n):
    """One random convolution: odd non-square sizes, batch 1 or more, strides, dilations, groups."""
    groups = int(rng.choice([1, 1, 2, 3]))
    depthwise = groups > 1 and rng.random() < 0.3
    cg = 1 if depthwise else int(rng.integers(1, 4))
    og = int(rng.integers(1, 3)) if depthwise else int(rng.integers(1, 4))
    kernel = tuple(int(k) for k in rng.integers(1, 4 if n == 3 else 5, size=n))
    dilation = tuple(int(d) for d in rng.integers(1, 3, size=n))
    stride = tuple(int(s) for s in rng.integers(1, 4, size=n))
    padding = ["int", "tuple", "valid", "same", "full"][int(rng.integers(0, 5))]
    if padding == "int":
        padding = int(rng.integers(0, 3))
    elif padding == "tuple":
        padding = tuple(int(p) for p in rng.integers(0, 3, size=n))
    span = [dil * (k - 1) + 1 for k, dil in zip(kernel, dilation)]
    extra = 4 if n == 3 else 8
    size = tuple(s + int(rng.integers(0, extra)) for s in span)
    batch = int(rng.integers(1, 4))
    bias = bool(rng.random() < 0.7)
    return dict(batch=batch, channels=cg * groups, out_channels=og * groups, groups=groups, kernel=kernel,
                size=size, stride=stride, dilation=dilation, padding=padding, bias=bias)


def arrays_for(rng, cfg, dtype=numpy.float32):
    x = rng.standard_normal((cfg["batch"], cfg["channels"]) + cfg["size"]).astype(dtype)
    w = rng.standard_normal((cfg["out_channels"], cfg["channels"] // cfg["groups"]) + cfg["kernel"]).astype(dtype)
    b = rng.standard_normal(cfg["out_channels"]).astype(dtype)
    return [x, w, b] if cfg["bias"] else [x, w]


# ----- gradients (float64 finite differences) ------------------------------------------------

GRADCHECK_CASES = [
    # (input shape, weight shape, settings)
    ((2, 4, 7), (4, 2, 3), dict(stride=2, padding="same", dilation=2, groups=2)),
    ((1, 2, 6), (3, 2, 2), dict(padding="full")),
    ((3, 5), (2, 3, 3), dict(stride=1, padding=1)),                       # unbatched 1-D
    ((2, 4, 5, 6), (4, 2, 2, 3), dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)),
    ((1, 2, 5, 6), (3, 2, 3, 2), dict(stride=2, padding="same")),          # asymmetric padding
    ((2, 3, 4, 5), (6, 1, 3, 3), dict(padding="valid", groups=3)),         # depthwise, 2 per channel
    ((1, 2, 3, 4), (2, 2, 2, 2), dict(padding="full", dilation=(2, 1))),
    ((1, 2, 4, 3, 5), (2, 2, 2, 2, 3), dict(stride=(1, 2, 2), padding=1)),
    ((1, 2, 5, 4, 4), (2, 1, 2, 2, 2), dict(stride=2, padding="same", dilation=(2, 1, 1), groups=2)),
    ((2, 3, 3, 4), (2, 2, 2, 2, 2), dict(padding="full")),                 # unbatched 3-D
]


@pytest.mark.parametrize("x_shape, w_shape, settings", GRADCHECK_CASES)
def test_gradcheck_input_weight_bias(x_shape, w_shape, settings, rng):
    arrays = [rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])]
    conv = ENTRIES[len(w_shape) - 2][0]
    assert st.gradcheck(lambda x, w, b: conv(x, w, b, **settings), arrays)


def test_gradcheck_conv_nd_without_bias(rng):
    arrays = [rng.standard_normal((2, 2, 5, 4)), rng.standard_normal((3, 2, 2, 2))]
    assert st.gradcheck(lambda x, w: conv_nd(x, w, stride=(1, 2), padding=(0, 1)), arrays)


# ----- PyTorch parity over random configurations ------------------------------------------------

@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("n, count", [(1, 40), (2, 40), (3, 25)])
def test_matches_torch_forward_and_backward(n, count):
    rng = numpy.random.default_rng(100 + n)
    for _ in range(count):
        cfg = random_config(rng, n)
        settings = {k: cfg[k] for k in ("stride", "padding", "dilation", "groups")}
        reference = torch_conv(n, cfg["padding"], cfg["size"], cfg["kernel"], cfg["stride"], cfg["dilation"],
                               cfg["groups"])
        arrays = arrays_for(rng, cfg)
        ours = ENTRIES[n][0]
        try:
            compare(lambda *t: ours(*t, **settings), reference, arrays, grad=range(len(arrays)),
                    rtol=1e-4, atol=1e-5)
        except AssertionError as error:
            raise AssertionError(f"config {cfg}: {error}") from None


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("n", [1, 2, 3])
def test_same_at_stride_one_matches_torch_same(n, rng):
    """Odd and even kernels with dilation: torch's own padding="same" puts the odd sample high too."""
    for kernel in [(2,) * n, (3,) * n, (4,) * n]:
        for dilation in [1, 2]:
            size = (7, 6, 5)[:n]
            x = rng.standard_normal((2, 3) + size).astype(numpy.float32)
            w = rng.standard_normal((4, 3) + kernel).astype(numpy.float32)
            ours, theirs = ENTRIES[n]
            compare(lambda x, w: ours(x, w, padding="same", dilation=dilation),
                    lambda x, w: theirs(x, w, padding="same", dilation=dilation), [x, w], grad=(0, 1),
                    rtol=1e-4, atol=1e-5)


def test_same_output_size_is_ceil_of_size_over_stride():
    x_cache = {}
    for d in range(1, 12):
        x_cache[d] = st.zeros(1, 1, d)
        for k in range(1, 6):
            w = st.zeros(1, 1, k)
            for s in range(1, 5):
                for dil in range(1, 4):
                    out = F.conv1d(x_cache[d], w, stride=s, padding="same", dilation=dil)
                    assert out.shape == (1, 1, math.ceil(d / s)), (d, k, s, dil)


def test_same_puts_the_odd_padding_sample_on_the_high_side():
    # d=4, k=2, s=1: one sample of padding in total, which must go after the signal.
    x = st.tensor(numpy.array([[[1.0, 2.0, 3.0, 4.0]]], dtype=numpy.float32))
    w = st.tensor(numpy.array([[[1.0, 10.0]]], dtype=numpy.float32))
    out = F.conv1d(x, w, padding="same")
    assert_close(out, numpy.array([[[21.0, 32.0, 43.0, 4.0]]], dtype=numpy.float32))


def test_full_padding_gives_every_partial_overlap(rng):
    # "full" cross-correlation is numpy.correlate(..., "full") for one channel.
    x = rng.standard_normal(9)
    w = rng.standard_normal(4)
    out = F.conv1d(st.tensor(x[None, None]), st.tensor(w[None, None]), padding="full")
    assert_close(out.data[0, 0], numpy.correlate(x, w, mode="full"), rtol=1e-12, atol=1e-12)


# ----- layouts and dtypes -------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 3])
def test_unbatched_input_matches_torch(n, rng):
    size = (6, 5, 4)[:n]
    x = rng.standard_normal((4,) + size).astype(numpy.float32)
    w = rng.standard_normal((6, 2) + (2,) * n).astype(numpy.float32)
    b = rng.standard_normal(6).astype(numpy.float32)
    ours, theirs = ENTRIES[n]
    out = compare(lambda x, w, b: ours(x, w, b, stride=2, padding=1, groups=2),
                  lambda x, w, b: theirs(x, w, b, stride=2, padding=1, groups=2), [x, w, b], grad=(0, 1, 2),
                  rtol=1e-4, atol=1e-5)
    assert out.ndim == n + 1


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_dtype_is_kept_forward_and_backward(dtype, rng):
    x = st.tensor(rng.standard_normal((2, 3, 6, 5)).astype(dtype), requires_grad=True)
    w = st.tensor(rng.standard_normal((4, 3, 3, 3)).astype(dtype), requires_grad=True)
    b = st.tensor(rng.standard_normal(4).astype(dtype), requires_grad=True)
    out = F.conv2d(x, w, b, stride=2, padding="same")
    out.sum().backward()
    assert out.dtype == dtype
    assert x.grad.dtype == w.grad.dtype == b.grad.dtype == dtype


def test_float64_matches_torch_tightly(rng):
    x = rng.standard_normal((2, 4, 9, 7))
    w = rng.standard_normal((6, 2, 3, 2))
    b = rng.standard_normal(6)
    compare(lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=(1, 2), dilation=(1, 3), groups=2),
            lambda x, w, b: TF.conv2d(x, w, b, stride=(2, 1), padding=(1, 2), dilation=(1, 3), groups=2),
            [x, w, b], grad=(0, 1, 2), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_conv_nd_takes_its_rank_from_the_weight(n, rng):
    x = rng.standard_normal((2, 2) + (5,) * n).astype(numpy.float32)
    w = rng.standard_normal((3, 2) + (3,) * n).astype(numpy.float32)
    expected = ENTRIES[n][1](to_torch(x), to_torch(w), padding=1)
    assert_close(conv_nd(st.tensor(x), st.tensor(w), padding=1), expected)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_batch_split_into_blocks_matches_torch(n, rng, monkeypatch):
    """Large batches are processed a few samples at a time; an uneven last block included."""
    import striate.ops.conv as conv_module

    size, kernel = (7, 6, 5)[:n], (3, 2, 2)[:n]
    x = rng.standard_normal((5, 4) + size).astype(numpy.float32)
    w = rng.standard_normal((6, 2) + kernel).astype(numpy.float32)
    b = rng.standard_normal(6).astype(numpy.float32)
    per_sample = 4 * math.prod(kernel) * math.prod(s - k + 1 for s, k in zip(size, kernel)) * 4
    monkeypatch.setattr(conv_module, "_BLOCK_BYTES", 2 * per_sample)
    ours, theirs = ENTRIES[n]
    compare(lambda x, w, b: ours(x, w, b, groups=2), lambda x, w, b: theirs(x, w, b, groups=2), [x, w, b],
            grad=(0, 1, 2), rtol=1e-4, atol=1e-5)


def test_one_by_one_kernel_and_whole_image_kernel(rng):
    x = rng.standard_normal((2, 3, 5, 4)).astype(numpy.float32)
    for w_shape in [(4, 3, 1, 1), (4, 3, 5, 4)]:
        w = rng.standard_normal(w_shape).astype(numpy.float32)
        compare(F.conv2d, TF.conv2d, [x, w], grad=(0, 1), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("stride", [1, 2])
def test_empty_batch_matches_torch(stride, rng):
    x = numpy.zeros((0, 4, 7, 6), dtype=numpy.float32)
    w = rng.standard_normal((6, 2, 3, 3)).astype(numpy.float32)
    b = rng.standard_normal(6).astype(numpy.float32)
    compare(lambda x, w, b: F.conv2d(x, w, b, stride, 1, 1, 2), lambda x, w, b: TF.conv2d(x, w, b, stride, 1, 1, 2),
            [x, w, b], grad=(0, 1, 2))


def test_backward_skips_what_is_not_needed(rng):
    x = st.tensor(rng.standard_normal((2, 3, 5, 5)).astype(numpy.float32))           # first layer: no grad
    w = st.tensor(rng.standard_normal((4, 3, 3, 3)).astype(numpy.float32), requires_grad=True)
    out = F.conv2d(x, w)
    assert out.grad_fn.w_mat is None and out.grad_fn.x is not None
    out.sum().backward()
    assert x.grad is None and w.grad is not None
    frozen = st.tensor(rng.standard_normal((4, 3, 3, 3)).astype(numpy.float32))
    x.requires_grad_()
    assert F.conv2d(x, frozen).grad_fn.x is None


def test_bias_alone_can_require_grad(rng):
    x = rng.standard_normal((2, 4, 5)).astype(numpy.float32)
    w = rng.standard_normal((6, 2, 3)).astype(numpy.float32)
    b = rng.standard_normal(6).astype(numpy.float32)
    compare(lambda x, w, b: F.conv1d(x, w, b, groups=2), lambda x, w, b: TF.conv1d(x, w, b, groups=2),
            [x, w, b], grad=(2,), rtol=1e-4, atol=1e-5)


def test_no_grad_records_nothing(rng):
    w = st.tensor(rng.standard_normal((4, 3, 3, 3)).astype(numpy.float32), requires_grad=True)
    with st.no_grad():
        out = F.conv2d(st.zeros(1, 3, 5, 5), w)
    assert not out.requires_grad and out.grad_fn is None


def test_numpy_arrays_are_accepted_as_constants(rng):
    x = rng.standard_normal((1, 2, 5)).astype(numpy.float32)
    w = rng.standard_normal((3, 2, 2)).astype(numpy.float32)
    assert_close(F.conv1d(x, w), TF.conv1d(to_torch(x), to_torch(w)))


# ----- error inputs ------------------------------------------------------------------------------

def t32(*shape):
    return st.zeros(*shape)


ERROR_CASES = [
    # (callable, exception, message pattern)
    (lambda: F.conv2d(t32(8, 8), t32(1, 1, 3, 3)), ValueError,
     r"conv2d: expected input of shape \(N, C, H, W\) or \(C, H, W\), got 2-D input of shape \(8, 8\)"),
    (lambda: F.conv1d(t32(1, 1, 8, 8), t32(1, 1, 3)), ValueError, r"conv1d: expected input .*got 4-D"),
    (lambda: F.conv3d(t32(1, 8, 8), t32(1, 1, 3, 3, 3)), ValueError,
     r"conv3d: expected input of shape \(N, C, D, H, W\) or \(C, D, H, W\), got 3-D"),
    (lambda: F.conv2d(t32(1, 1, 8, 8), t32(1, 1, 3)), ValueError, r"conv2d: expected 4-D weight .*got 3-D"),
    (lambda: conv_nd(t32(1, 1, 8), t32(1, 1)), ValueError, r"conv_nd: expected weight .*got 2-D"),
    (lambda: conv_nd(t32(1, 1, 8, 8), t32(1, 1, 3)), ValueError,
     r"conv_nd: a 3-D weight has 1 spatial dimension\(s\), so the input must be 3-D .* got 4-D"),
    (lambda: F.conv2d(t32(1, 3, 8, 8), t32(4, 2, 3, 3)), ValueError,
     r"conv2d: input channels must equal weight.shape\[1\] · groups, got 3 input channels"),
    (lambda: F.conv2d(t32(1, 4, 8, 8), t32(4, 1, 3, 3), groups=2), ValueError,
     r"conv2d: input channels .* groups=2 \(expects 2\)"),
    (lambda: F.conv2d(t32(1, 4, 8, 8), t32(3, 2, 3, 3), groups=2), ValueError,
     r"conv2d: output channels .* divisible by groups, got 3 output channels and groups=2"),
    (lambda: F.conv2d(t32(1, 1, 8, 8), t32(4, 1, 3, 3), t32(3)), ValueError,
     r"conv2d: expected bias of shape \(4,\).*got shape \(3,\)"),
    (lambda: F.conv2d(t32(1, 1, 8, 8), t32(4, 1, 3, 3), t32(4, 1)), ValueError, r"conv2d: expected bias"),
    (lambda: F.conv2d(t32(1, 1, 4, 4), t32(1, 1, 5, 5)), ValueError,
     r"conv2d: the \(dilated\) kernel must fit in the padded input.*\(5, 5\).*\(4, 4\)"),
    (lambda: F.conv2d(t32(1, 1, 4, 4), t32(1, 1, 5, 5), padding=(1, 0)), ValueError,
     r"conv2d: the \(dilated\) kernel must fit.*padded input size \(6, 4\)"),
    (lambda: F.conv1d(t32(1, 1, 6), t32(1, 1, 3), dilation=3), ValueError,
     r"conv1d: the \(dilated\) kernel must fit.*span \(7,\)"),
    (lambda: F.conv2d(t32(1, 1, 8, 8), t32(1, 1, 3, 3), stride=0), ValueError,
     r"conv2d: stride must be positive .*got \(0, 0\)"),
    (lambda: F.conv2d(t32(1, 1, 8, 8), t32(1, 1, 3, 3), stride=(1, -2)), ValueError,
     r"conv2d: stride must be positive .*got \(1, -2\)"),
    (lambda: F.conv2d(t32(1, 1, 8, 8), t32(1, 1, 3, 3), stride=(1, 2, 3)), ValueError,
     r"conv2d: stride must be an int or a tuple of 2 ints"),
    (lambda: F.conv2d(t32(1, 1, 8, 8), t32(1, 1, 3, 3), padding=-1), ValueError,
     r"conv2d: padding must be non-negative .*got \(-1, -1\)"),
    (lambda: F.conv3d(t32(1, 1, 8, 8, 8), t32(1, 1, 3, 3, 3), padding=(0, -1, 0)), ValueError,
     r"conv3d: padding must be non-negative"),
    (lambda: F.conv2d(t32(1, 1, 8, 8), t32(1, 1, 3, 3), dilation=0), ValueError,
     r"conv2d: dilation must be positive .*got \(0, 0\)"),
    (lambda: F.conv2d(t32(1, 1, 8, 8), t32(1, 1, 3, 3), padding="SAME"), ValueError,
     r"conv2d: padding must be .*'valid', 'same', 'full', got 'SAME'"),
    (lambda: F.conv1d(t32(1, 1, 8), t32(1, 1, 3), padding="circular"), ValueError, r"conv1d: padding must be"),
    (lambda: F.conv2d(t32(1, 1, 8, 8), t32(1, 1, 3, 3), padding=1.5), TypeError, r"conv2d: padding must be"),
    (lambda: F.conv2d(t32(1, 1, 8, 8), t32(1, 1, 3, 3), groups=0), ValueError,
     r"conv2d: groups must be positive, got 0"),
    (lambda: F.conv2d(t32(1, 1, 8, 8), t32(1, 1, 3, 3), groups=-1), ValueError,
     r"conv2d: groups must be positive"),
    (lambda: F.conv2d(t32(1, 1, 8, 8), t32(1, 1, 3, 3), groups=1.5), TypeError, r"conv2d: groups must be an int"),
    (lambda: F.conv2d(t32(1, 1, 8, 8), st.zeros(1, 1, 3, 3, dtype=numpy.float64)), TypeError,
     r"conv2d: input and weight must have the same dtype, got input float32 and weight float64"),
    (lambda: F.conv2d(t32(1, 1, 8, 8), t32(2, 1, 3, 3), st.zeros(2, dtype=numpy.float64)), TypeError,
     r"conv2d: bias must have the input's dtype float32, got float64"),
    (lambda: F.conv2d(st.tensor(numpy.zeros((1, 1, 8, 8), dtype=numpy.int64)), t32(1, 1, 3, 3)), TypeError,
     r"conv2d: input must be a floating-point tensor, got dtype int64"),
    (lambda: F.conv2d([[[[1.0]]]], t32(1, 1, 1, 1)), TypeError, r"conv2d: input must be a Tensor or an array"),
]


@pytest.mark.parametrize("call, error, pattern", ERROR_CASES)
def test_bad_arguments_raise_clear_errors(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


# ----- flip=True: the mathematician's convolution --------------------------------------------

@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("n, count", [(1, 12), (2, 12), (3, 8)])
def test_flip_is_torch_conv_with_the_kernel_reversed(n, count):
    """flip=True equals torch's cross-correlation with the weight reversed on its spatial axes, both ways."""
    rng = numpy.random.default_rng(300 + n)
    spatial = tuple(range(2, 2 + n))
    for _ in range(count):
        cfg = random_config(rng, n)
        settings = {k: cfg[k] for k in ("stride", "padding", "dilation", "groups")}
        reference = torch_conv(n, cfg["padding"], cfg["size"], cfg["kernel"], cfg["stride"], cfg["dilation"],
                               cfg["groups"])
        arrays = arrays_for(rng, cfg)
        try:
            compare(lambda x, w, *b: ENTRIES[n][0](x, w, *b, flip=True, **settings),
                    lambda x, w, *b: reference(x, torch.flip(w, spatial), *b),
                    arrays, grad=range(len(arrays)), rtol=1e-4, atol=1e-5)
        except AssertionError as error:
            raise AssertionError(f"config {cfg}: {error}") from None


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("mode", ["valid", "full"])
def test_flip_equals_scipy_convolve(n, mode, rng):
    """One channel, one filter: conv with flip=True is scipy.signal.convolve (direct method)."""
    signal = pytest.importorskip("scipy.signal")
    x = rng.standard_normal((7, 6, 5)[:n])
    k = rng.standard_normal((3, 2, 3)[:n])
    ours = conv_nd(x[None, None], k[None, None], padding=mode, flip=True).data[0, 0]
    assert_close(ours, signal.convolve(x, k, mode=mode, method="direct"), 1e-12, 1e-12, f"{n}-D {mode}")


def test_flip_gradcheck(rng):
    arrays = [rng.standard_normal((2, 2, 5, 4)), rng.standard_normal((3, 2, 2, 3)), rng.standard_normal(3)]
    assert st.gradcheck(lambda x, w, b: conv_nd(x, w, b, stride=(2, 1), padding="same", flip=True), arrays)


def test_flip_module_keeps_parameters_and_computes_true_convolution(rng):
    """nn.Conv2d(flip=True) has the same parameters; its output is the unflipped layer's with a reversed kernel."""
    plain, flipped = st.nn.Conv2d(2, 3, (3, 2), padding=1), st.nn.Conv2d(2, 3, (3, 2), padding=1, flip=True)
    flipped.load_state_dict(plain.state_dict())
    x = st.tensor(rng.standard_normal((1, 2, 6, 5)).astype(numpy.float32))
    reversed_weight = plain.weight.data[:, :, ::-1, ::-1].copy()
    expected = F.conv2d(x, reversed_weight, plain.bias.data, padding=1)
    assert_close(flipped(x), expected, 1e-6, 1e-6, "module forward")
    assert "flip=True" in repr(flipped)
    with pytest.raises(TypeError, match=r"Conv2d: flip must be True or False. Received: flip='yes'"):
        st.nn.Conv2d(1, 1, 3, flip="yes")
    with pytest.raises(TypeError, match=r"conv1d: flip must be True or False, got 1"):
        F.conv1d(st.zeros(1, 1, 4), st.zeros(1, 1, 2), flip=1)
