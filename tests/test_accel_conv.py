"""The speed paths of convolution and the allocator setting, each forced on and off.

`ConvND` chooses per call between equivalent lowerings: shifted products through BLAS's
accumulating product (`_shifted_fold`, where `striate._blas` finds it; with 0 to n axes' taps
folded into the products) or im2col columns
in pure NumPy; within im2col, one product per block or one per sample (`_per_sample`, tiny
weights), and for the input gradient at stride 1 the transposed convolution
(`_transposed_plan`) or the scatter of column gradients. The usual tests see whichever a shape
picks; here every choice is forced for the same random convolutions and checked against
PyTorch (float64, forward and all three gradients) and by finite differences.
"""
import os
import subprocess
import sys

import numpy
import pytest

import striate as st
from striate import _allocator, _blas
from striate.ops import conv as conv_module
from striate.ops.conv import conv_nd
from tests.oracle import compare, torch

TF = torch.nn.functional
TORCH = {1: TF.conv1d, 2: TF.conv2d, 3: TF.conv3d}

# (spatial rank, size, channels, out channels, kernel, stride, padding, dilation, groups)
CASES = [
    (2, (9, 8), 4, 6, (3, 3), (1, 1), (1, 1), (1, 1), 1),     # ResNet-like: transposed input gradient
    (2, (11, 10), 2, 4, (5, 3), (1, 1), (2, 0), (1, 2), 2),   # grouped, dilated, uneven padding
    (2, (12, 12), 3, 6, (5, 5), (1, 1), (0, 0), (1, 1), 1),   # LeNet-like c3: more outputs than inputs
    (2, (10, 9), 4, 4, (3, 3), (2, 1), (1, 1), (1, 1), 2),    # stride 2: always the scatter
    (2, (7, 7), 2, 3, (1, 1), (1, 1), (1, 1), (1, 1), 1),     # padding past the kernel's reach
    (1, (17,), 3, 5, (4,), (1,), (2,), (2,), 1),
    (3, (5, 6, 5), 2, 4, (3, 2, 3), (1, 1, 1), (1, 0, 1), (1, 1, 1), 2),
    (2, (9, 12), 3, 4, (3, 3), (2, 2), (1, 1), (1, 1), 1),    # stride 2 on both axes, as ResNets downsample
    (3, (4, 5, 9), 2, 3, (2, 2, 3), (1, 2, 3), (0, 1, 1), (1, 1, 1), 1),
]


needs_gemm = pytest.mark.skipif(not _blas.GEMM_AVAILABLE,
                                reason="NumPy's BLAS is not reachable here (not NumPy's Linux wheel, or STRIATE_NUMPY_ONLY=1)")


@pytest.fixture(autouse=True)
def lowering(request, monkeypatch):
    """im2col unless a test asks for shifted products with ``@pytest.mark.shifted(fold=f)``."""
    marker = request.node.get_closest_marker("shifted")
    fold = None if marker is None else marker.kwargs.get("fold", 0)
    monkeypatch.setattr(conv_module, "_shifted_fold", lambda group_in, group_out, groups, taps, forward=False: fold)
    # im2col's weight gradient from its columns; folded under im2col: test_folded_weight_gradient_*
    monkeypatch.setattr(conv_module, "_weight_gradient_fold", lambda group_in, group_out, groups, first_taps: None)
    return fold


def compare_case(case):
    """One of CASES, with seeded float64 data and a bias, against PyTorch: forward and all three gradients."""
    n, size, channels, out_channels, kernel, stride, padding, dilation, groups = case
    rng = numpy.random.default_rng(sum(size) + channels)
    x = rng.standard_normal((3, channels, *size))
    w = rng.standard_normal((out_channels, channels // groups, *kernel))
    b = rng.standard_normal(out_channels)
    return compare(lambda x, w, b: conv_nd(x, w, b, stride, padding, dilation, groups),
                   lambda x, w, b: TORCH[n](x, w, b, stride, padding, dilation, groups),
                   [x, w, b], grad=(0, 1, 2), rtol=1e-10, atol=1e-10)


@pytest.fixture(params=["single product", "per sample"])
def product(request, monkeypatch):
    monkeypatch.setattr(conv_module, "_per_sample", lambda w_mat: request.param == "per sample")
    return request.param


@pytest.fixture(params=["transposed", "scatter"])
def input_gradient(request, monkeypatch):
    calls = []
    if request.param == "scatter":
        monkeypatch.setattr(conv_module.ConvND, "_transposed_plan", lambda self, out_size: None)
    else:
        monkeypatch.setattr(conv_module, "_TRANSPOSED_COST", float("inf"))   # wherever it applies
        original = conv_module.ConvND._transposed_plan

        def spy(self, out_size):
            plan = original(self, out_size)
            calls.append(plan is not None)
            return plan
        monkeypatch.setattr(conv_module.ConvND, "_transposed_plan", spy)
    return request.param, calls


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}d-k{c[4]}-s{c[5]}-p{c[6]}-d{c[7]}-g{c[8]}")
def test_every_lowering_matches_pytorch(case, product, input_gradient):
    compare_case(case)
    path, calls = input_gradient
    _, _, _, _, kernel, stride, padding, dilation, _ = case
    applies = all(s == 1 for s in stride) and all(p <= (k - 1) * d for p, k, d in zip(padding, kernel, dilation))
    assert path == "scatter" or calls == [applies]


def test_transposed_input_gradient_is_taken_where_it_applies(input_gradient):
    path, calls = input_gradient
    if path == "scatter":
        pytest.skip("the scatter is forced here")
    rng = numpy.random.default_rng(0)
    x = st.tensor(rng.standard_normal((2, 4, 9, 8)), requires_grad=True)
    conv_nd(x, st.tensor(rng.standard_normal((4, 4, 3, 3)), requires_grad=True), padding=1).sum().backward()
    conv_nd(x, st.tensor(rng.standard_normal((4, 4, 3, 3))), stride=2, padding=1).sum().backward()
    conv_nd(x, st.tensor(rng.standard_normal((4, 4, 1, 1))), padding=1).sum().backward()       # pad > reach
    assert calls == [True, False, False], calls


@pytest.mark.parametrize("per_sample", [False, True])
def test_gradcheck_both_products(per_sample, monkeypatch):
    monkeypatch.setattr(conv_module, "_per_sample", lambda w_mat: per_sample)
    rng = numpy.random.default_rng(1)
    x = st.tensor(rng.standard_normal((2, 2, 6, 5)), requires_grad=True)
    w = st.tensor(rng.standard_normal((4, 1, 3, 2)), requires_grad=True)
    b = st.tensor(rng.standard_normal(4), requires_grad=True)
    assert st.gradcheck(lambda x, w, b: conv_nd(x, w, b, padding=(1, 0), dilation=(1, 2), groups=2), (x, w, b))


def test_transposed_input_gradient_only_where_cheaper():
    rng = numpy.random.default_rng(3)
    x = st.tensor(rng.standard_normal((2, 4, 9, 8)), requires_grad=True)
    same = conv_nd(x, st.tensor(rng.standard_normal((4, 4, 3, 3))), padding=1)
    wide = conv_nd(x, st.tensor(rng.standard_normal((16, 4, 5, 5))), padding="full")
    assert same.grad_fn._transposed_plan(same.shape[2:]) is not None
    assert wide.grad_fn._transposed_plan(wide.shape[2:]) is None   # 4× the outputs, "full": the scatter


def test_float32_lowerings_agree_to_rounding(monkeypatch):
    rng = numpy.random.default_rng(2)
    x = rng.standard_normal((4, 6, 14, 14)).astype(numpy.float32)
    w = rng.standard_normal((6, 6, 3, 3)).astype(numpy.float32)
    results = []
    for per_sample in (False, True):
        monkeypatch.setattr(conv_module, "_per_sample", lambda w_mat, flag=per_sample: flag)
        xs, ws = st.tensor(x, requires_grad=True), st.tensor(w, requires_grad=True)
        y = conv_nd(xs, ws, padding=1)
        y.sum().backward()
        results.append((y.data, xs.grad.data, ws.grad.data))
    for a, b in zip(*results):
        assert a.dtype == numpy.float32
        numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)


FOLDED_CASES = [pytest.param(case, fold, marks=pytest.mark.shifted(fold=fold),
                             id=f"{case[0]}d-k{case[4]}-s{case[5]}-p{case[6]}-d{case[7]}-g{case[8]}-fold{fold}")
                for case in CASES for fold in range(case[0] + 1)]


@needs_gemm
@pytest.mark.parametrize("case, fold", FOLDED_CASES)
@pytest.mark.parametrize("block_bytes", [1, 2**30], ids=["one sample a block", "one block"])
def test_shifted_products_match_pytorch(case, fold, block_bytes, monkeypatch):
    monkeypatch.setattr(conv_module, "_SHIFTED_BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(conv_module, "_SHIFTED_BACKWARD_BLOCK_BYTES", block_bytes)
    # One sample a block: the input gradient is one batch-wide array; one block: per-block ones.
    monkeypatch.setattr(conv_module, "_GRADIENT_VIEW_BYTES", 0 if block_bytes == 1 else 2**40)
    y = compare_case(case)
    assert y.grad_fn.shifted and y.grad_fn.fold == fold


def _with_remainder(span):
    """A chunk length that leaves a remainder: the shortest from 5 up that does not divide ``span``."""
    return next(length for length in range(5, span) if span % length)


@needs_gemm
@pytest.mark.parametrize("case, fold", FOLDED_CASES)
def test_shifted_weight_gradient_in_chunks_matches_pytorch(case, fold, monkeypatch):
    # Products over chunks of positions, batched and summed, and the remainder in one more.
    monkeypatch.setattr(conv_module, "_chunk_length", _with_remainder)
    monkeypatch.setattr(conv_module, "_CHUNKED_OUTPUTS", 10**9)
    y = compare_case(case)
    assert y.grad_fn.shifted and y.grad_fn.weight_fold == fold


class _PoisonedNumPy:
    """NumPy, except that ``empty`` hands out arrays full of NaN, so a read of any position not written first shows."""

    def __getattr__(self, name):
        return getattr(numpy, name)

    @staticmethod
    def empty(shape, dtype=float):
        return numpy.full(shape, numpy.nan, dtype=dtype)


@pytest.mark.parametrize("case, fold", FOLDED_CASES + [pytest.param(case, None, id=f"{case[0]}d-im2col-{i}")
                                                       for i, case in enumerate(CASES)])
def test_every_lowering_writes_what_it_reads(case, fold, monkeypatch):
    # Fresh memory is often zero already, which would hide padding or a tail left unwritten.
    if fold is not None and not _blas.GEMM_AVAILABLE:
        pytest.skip("NumPy's BLAS is not reachable here")
    monkeypatch.setattr(conv_module, "_shifted_fold", lambda i, o, g, taps, forward=False: fold)
    monkeypatch.setattr(conv_module, "xp", _PoisonedNumPy())
    compare_case(case)


@needs_gemm
@pytest.mark.parametrize("fold", [pytest.param(f, marks=pytest.mark.shifted(fold=f)) for f in (0, 1, 2)])
def test_shifted_products_gradcheck(fold):
    rng = numpy.random.default_rng(4)
    x = st.tensor(rng.standard_normal((2, 4, 6, 5)), requires_grad=True)
    w = st.tensor(rng.standard_normal((6, 2, 3, 2)), requires_grad=True)
    b = st.tensor(rng.standard_normal(6), requires_grad=True)
    assert st.gradcheck(lambda x, w, b: conv_nd(x, w, b, stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2),
                        (x, w, b))


@needs_gemm
@pytest.mark.parametrize("fold", [pytest.param(f, marks=pytest.mark.shifted(fold=f)) for f in (0, 1)])
@pytest.mark.parametrize("wanted", [(0,), (1,)], ids=["input gradient only", "weight gradient only"])
def test_shifted_products_compute_only_the_gradient_asked_for(wanted, fold):
    rng = numpy.random.default_rng(6)
    x, w = rng.standard_normal((3, 4, 7, 6)), rng.standard_normal((6, 2, 3, 3))
    compare(lambda x, w: conv_nd(x, w, padding=1, groups=2), lambda x, w: TF.conv2d(x, w, padding=1, groups=2),
            [x, w], grad=wanted, rtol=1e-10, atol=1e-10)


@needs_gemm
@pytest.mark.shifted
def test_shifted_products_in_float32_agree_with_im2col(monkeypatch):
    rng = numpy.random.default_rng(5)
    x = rng.standard_normal((5, 16, 12, 11)).astype(numpy.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(numpy.float32)
    results = []
    for fold in (0, 1, 2, None):
        monkeypatch.setattr(conv_module, "_shifted_fold", lambda i, o, g, taps, forward=False, fold=fold: fold)
        xs, ws = st.tensor(x, requires_grad=True), st.tensor(w, requires_grad=True)
        y = conv_nd(xs, ws, stride=(1, 2), padding=1)
        assert y.grad_fn.shifted == (fold is not None)
        (y * y).sum().backward()
        results.append((y.data, xs.grad.data, ws.grad.data))
    for result in results[:-1]:
        for a, b in zip(result, results[-1]):
            assert a.dtype == numpy.float32
            numpy.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)


@needs_gemm
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}d-k{c[4]}-s{c[5]}-p{c[6]}-d{c[7]}-g{c[8]}")
@pytest.mark.parametrize("chunk", [lambda span: 4, _with_remainder, lambda span: span],
                         ids=["chunks of 4", "chunks and a remainder", "one product"])
def test_folded_weight_gradient_under_im2col_matches_pytorch(case, chunk, monkeypatch):
    # The 1–3-channel layers' backward: the input gradient im2col's, the weight gradient from
    # rows folded along the first axis; every array fresh from `empty` is NaN until written.
    monkeypatch.setattr(conv_module, "_weight_gradient_fold", lambda i, o, g, first_taps: 1)
    monkeypatch.setattr(conv_module, "_chunk_length", chunk)
    monkeypatch.setattr(conv_module, "_CHUNKED_OUTPUTS", 10**9)
    monkeypatch.setattr(conv_module, "xp", _PoisonedNumPy())
    y = compare_case(case)
    assert not y.grad_fn.shifted and y.grad_fn.weight_fold == 1


@pytest.mark.parametrize("span, length", [(8960, 896), (35840, 1024), (57344, 1024), (1536, 768), (10007, 1024)])
def test_chunks_divide_the_positions_evenly_where_they_can(span, length):
    # LeNet's 6 → 16 at batch 64 and 256, its first layer at 64, a short block, and a prime.
    assert conv_module._chunk_length(span) == length
    assert span % length == 0 or span == 10007


def test_which_lowering_each_layer_gets(monkeypatch):
    monkeypatch.undo()                                            # the real choice, not the fixture's
    choose = conv_module._shifted_fold
    if not _blas.GEMM_AVAILABLE:
        assert {choose(16, 16, 1, 9), choose(1, 6, 1, 25), choose(1, 1, 32, 9)} == {None}
        assert conv_module._weight_gradient_fold(1, 6, 1, 5) is None
        return
    assert choose(16, 16, 1, 9) == 0 and choose(64, 64, 2, 9) == 0  # wide groups: plain shifted products
    assert choose(6, 16, 1, 25) == 1 and choose(4, 2, 1, 9) == 1    # 4–15 channels: the first axis folded
    assert choose(1, 6, 1, 25) is None and choose(3, 64, 1, 49) is None   # images and signals: im2col ...
    assert choose(1, 6, 1, 25, forward=True) == 1 == choose(3, 64, 1, 49, forward=True)   # ... but folded forward
    assert choose(1, 1, 32, 9) is None and choose(8, 8, 4, 9) is None     # narrow groups: im2col
    assert choose(1, 1, 32, 9, forward=True) is None and choose(16, 16, 1, 25, forward=True) == 0
    assert choose(32, 32, 1, 27, forward=True) == 1 and choose(32, 32, 1, 27) == 0  # many taps: forward folds
    weight = conv_module._weight_gradient_fold            # under im2col: folded for tiny products only
    assert weight(1, 6, 1, 5) == 1 == weight(3, 16, 1, 3) and weight(1, 32, 1, 9) == 1   # LeNet c1, 3-D, signal
    assert weight(3, 64, 1, 7) is None and weight(1, 1, 32, 3) is None                   # a 7×7 stem; depthwise


@needs_gemm
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}d-k{c[4]}-s{c[5]}-p{c[6]}-d{c[7]}-g{c[8]}")
@pytest.mark.parametrize("backward", [None, 0], ids=["im2col backward", "unfolded backward"])
def test_folded_forward_with_another_backward_matches_pytorch(case, backward, monkeypatch):
    # Forward folded along the first axis; backward with im2col (1–3-channel layers) or
    # unfolded shifted products (wide layers with many taps).
    monkeypatch.setattr(conv_module, "_shifted_fold", lambda i, o, g, taps, forward=False: 1 if forward else backward)
    y = compare_case(case)
    assert y.grad_fn.shifted == (backward is not None) and y.grad_fn.fold == backward


@pytest.mark.parametrize("shifted", [pytest.param(True, marks=[needs_gemm, pytest.mark.shifted]), False],
                         ids=["shifted", "im2col"])
def test_outputs_view_the_grid_unless_it_wastes_space(shifted):
    rng = numpy.random.default_rng(7)
    x = rng.standard_normal((2, 16, 30, 29))
    # 31×30 grid positions for 30×29 outputs: a view; 30×29 (shifted) or 28×29 (im2col) for 28×21: copied
    for kernel, padding, view in [((3, 3), 1, True), ((3, 9), 0, False)]:
        w, b = rng.standard_normal((16, 16, *kernel)), rng.standard_normal(16)
        y = compare(lambda x, w, b: conv_nd(x, w, b, padding=padding), lambda x, w, b: TF.conv2d(x, w, b, padding=padding),
                    [x, w, b], grad=(0, 1, 2), rtol=1e-10, atol=1e-10)
        assert y.grad_fn.shifted == shifted
        assert y.data.flags.c_contiguous != view and (y.data.base is not None) == view


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}d-k{c[4]}-s{c[5]}-p{c[6]}-d{c[7]}-g{c[8]}")
def test_im2col_in_blocks_of_one_sample_matches_pytorch(case, monkeypatch):
    # Every block's input gradient lands in one batch-wide array at stride 1; its windows' spill
    # into the next block's part must only ever reach padding.
    monkeypatch.setattr(conv_module, "_BLOCK_BYTES", 1)
    monkeypatch.setattr(conv_module, "_GRADIENT_VIEW_BYTES", 0)
    monkeypatch.setattr(conv_module.ConvND, "_transposed_plan", lambda self, out_size: None)
    compare_case(case)


@pytest.mark.parametrize("shifted", [pytest.param(True, marks=[needs_gemm, pytest.mark.shifted]), False],
                         ids=["shifted", "im2col"])
def test_input_gradient_views_the_phase_arrays_at_stride_1(shifted, monkeypatch):
    monkeypatch.setattr(conv_module.ConvND, "_transposed_plan", lambda self, out_size: None)
    monkeypatch.setattr(conv_module, "_GRADIENT_VIEW_BYTES", 0)                # these arrays are small
    rng = numpy.random.default_rng(8)
    # 13×12 cells for 12×11 inputs: a view; stride 2, or 1×1 inputs padded by 1 (4 cells each): copies
    for size, stride, padding, view in [((12, 11), 1, 1, True), ((12, 11), 2, 1, False), ((1, 1), 1, 1, False)]:
        x, w = rng.standard_normal((2, 16, *size)), rng.standard_normal((16, 16, 3, 3))
        y = conv_nd(st.tensor(x, requires_grad=True), st.tensor(w), stride=stride, padding=padding)
        gy = rng.standard_normal(y.shape)
        gx, _, _ = y.grad_fn.backward(gy)
        tx = torch.from_numpy(x).requires_grad_()
        TF.conv2d(tx, torch.from_numpy(w), stride=stride, padding=padding).backward(torch.from_numpy(gy))
        numpy.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-10, atol=1e-10)
        assert (gx.base is not None) == view and gx.flags.c_contiguous != view


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the allocator setting is for glibc")
def test_allocator_configured_and_opt_out():
    import platform
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert _allocator.configure() and _allocator.configured
    code = "import striate, striate._allocator as a; print(a.configured)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "STRIATE_KEEP_MALLOC": "1"})
    assert out.stdout.strip() == "False"
