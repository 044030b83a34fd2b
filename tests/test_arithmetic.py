"""striate.tools.arithmetic: the notes' figures, and every formula against what PyTorch layers actually do."""
import math
import re

import numpy
import pytest

from oracle import torch
from striate.tools.arithmetic import (FcConvComparison, compare_fc_conv, conv_output_size, conv_params,
                                      explain_output_size, linear_params, unvisited_inputs)

TF = torch.nn.functional
SAMPLES = 40  # random configurations per check and rank


def torch_untouched(size, kernel_size, stride, padding, dilation, ceil_mode):
    """Input indices whose gradient is exactly zero after summing a conv (or, with ceil_mode, an avg-pool)."""
    x = torch.ones(1, 1, size, dtype=torch.float64, requires_grad=True)
    if ceil_mode:      # PyTorch has ceil_mode only on pooling; avg pooling sends gradient to every window member
        out = TF.avg_pool1d(x, kernel_size, stride, padding, ceil_mode=True, count_include_pad=True)
    else:
        out = TF.conv1d(x, torch.ones(1, 1, kernel_size, dtype=torch.float64), None, stride, padding, dilation)
    out.sum().backward()
    return tuple(int(i) for i in torch.nonzero(x.grad[0, 0] == 0).flatten())


# ----- the notes' figures ------------------------------------------------------------------------

@pytest.mark.parametrize("args,kwargs,expected", [
    ((5, 3), {}, 3),                                  # 5×5 k3 s1 → 3
    ((7, 3), {"padding": 1}, 7),                      # 7×7 k3 s1 p1 → 7
    ((5, 3), {"stride": 2}, 2),                       # 5×5 k3 s2 → 2
    ((7, 3), {"stride": 2}, 3),                       # 7×7 k3 s2 → 3
    ((6, 3), {"stride": 2}, 2),                       # 6×6 k3 s2 → 2, one column left over
    ((6, 3), {"stride": 2, "ceil_mode": True}, 3),    # …or 3 with a partial last window
    ((5, 3), {"padding": "full"}, 7),                 # full / valid / same of the 5×5, 3×3 example
    ((5, 3), {"padding": "valid"}, 3),
    ((5, 3), {"padding": "same"}, 5),
])
def test_notes_output_sizes(args, kwargs, expected):
    assert conv_output_size(*args, **kwargs) == expected
    assert conv_output_size((args[0],) * 2, *args[1:], **kwargs) == (expected, expected)


def test_notes_parameter_counts():
    assert linear_params(7 * 7 * 386, 4096) == (18_914 + 1) * 4096 == 77_475_840
    assert conv_params(386, 386, 7, bias=False) == 7_300_804
    comparison = compare_fc_conv((386, 7, 7), 4096, 7, out_channels=386, bias=False)
    assert comparison.conv_params == 7_300_804 and comparison.conv_output_shape == (386, 1, 1)
    text = str(compare_fc_conv((386, 7, 7), 4096, 7, out_channels=386))
    assert "(18,914 + 1) × 4,096 = 77,475,840 parameters" in text
    assert "(7·7·386 + 1) × 386 = 7,301,190 parameters" in text


def test_n_filters_on_n_by_n_by_r_input_give_n_plus_1_minus_m_maps():
    """An n×n×r input with D filters of m×m×r gives (n + 1 − m)×(n + 1 − m)×D, with (m·m·r + 1)·D parameters."""
    for n, m, r, filters in ((32, 5, 3, 6), (28, 3, 1, 8), (10, 10, 4, 2)):
        comparison = compare_fc_conv((r, n, n), 10, m, out_channels=filters)
        assert comparison.conv_output_shape == (filters, n + 1 - m, n + 1 - m)
        assert comparison.conv_params == (m * m * r + 1) * filters


# ----- what a stride leaves unvisited, checked against PyTorch's gradient ------------------------

def test_six_by_six_stride_two_never_visits_the_last_column():
    x = torch.ones(1, 1, 6, 6, requires_grad=True)
    TF.conv2d(x, torch.ones(1, 1, 3, 3), stride=2).sum().backward()
    untouched_columns = [j for j in range(6) if (x.grad[0, 0, :, j] == 0).all()]
    untouched_rows = [i for i in range(6) if (x.grad[0, 0, i, :] == 0).all()]
    assert untouched_columns == untouched_rows == [5]
    assert unvisited_inputs(6, 3, stride=2) == (5,)
    text = explain_output_size(6, 3, stride=2)
    assert "(6 + 2·0 − 3) / 2 = 1.5 is not a whole number" in text
    assert re.search(r"The last 1 input sample \(index 5\) is\s+never\s+visited", text)


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_unvisited_inputs_match_pytorch_gradient(ceil_mode):
    rng = numpy.random.default_rng(11 + ceil_mode)
    for _ in range(SAMPLES):
        size, kernel, stride = (int(v) for v in (rng.integers(1, 16), rng.integers(1, 5), rng.integers(1, 5)))
        dilation = 1 if ceil_mode else int(rng.integers(1, 4))
        padding = int(rng.integers(0, kernel // 2 + 1))       # PyTorch pooling allows at most half the kernel
        if size + 2 * padding < dilation * (kernel - 1) + 1:
            continue
        expected = torch_untouched(size, kernel, stride, padding, dilation, ceil_mode)
        args = (size, kernel, stride, padding, dilation, ceil_mode)
        assert unvisited_inputs(*args) == expected, args
        text = explain_output_size(*args)
        out = conv_output_size(size, kernel, stride, padding, dilation, ceil_mode)
        last_read = (out - 1) * stride + dilation * (kernel - 1) - padding      # input index of the last tap
        tail = [i for i in expected if i > last_read]
        if tail:   # the count the explanation states is the count PyTorch never touches after the last window
            assert re.search(rf"The\s+last\s+{len(tail)}\s+input\s+samples?\s", text), (args, text)
        else:
            assert not re.search(r"The\s+last\s+\d+\s+input\s+samples?\s", text), (args, text)


def test_explanations_state_the_remainder():
    whole = explain_output_size(5, 3, stride=2)
    assert "floor((5 + 2·0 − 3) / 2) + 1 = floor(2 / 2) + 1 = 2" in whole
    assert "is a whole number" in whole
    partial = explain_output_size(6, 3, stride=2, ceil_mode=True)
    assert "ceil((6 + 2·0 − 3) / 2) + 1 = ceil(3 / 2) + 1 = 3" in partial
    assert re.search(r"is\s+partial\s+—\s+it\s+hangs\s+1\s+sample\s+past\s+the\s+end", partial)
    padding_only = explain_output_size(8, 3, stride=3, padding=1)
    assert re.search(r"They\s+are\s+all\s+padding,\s+so\s+no\s+input\s+sample\s+is\s+lost", padding_only)
    dropped = explain_output_size(5, 1, stride=3, ceil_mode=True)
    assert "ceil(4 / 3) + 1 = 3, less the window that would start past the input = 2" in dropped
    dilated = explain_output_size(10, 3, stride=2, dilation=2)
    assert "floor((d + 2p − dil·(k − 1) − 1) / s) + 1" in dilated
    assert re.search(r"leaves\s+4\s+input\s+samples\s+between\s+taps\s+unread\s+\(indices\s+1,\s+3,\s+5,\s+7\)",
                     dilated)
    same = explain_output_size(7, 4, stride=3, padding="same")
    assert "= 3, 1 before and 2 after" in same and "floor((7 + 1 + 2 − 4) / 3) + 1" in same


# ----- sizes against the layers' real output shapes ----------------------------------------------

@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_conv_output_size_matches_pytorch_conv(rank):
    rng = numpy.random.default_rng(rank)
    conv = getattr(TF, f"conv{rank}d")
    checked = 0
    for _ in range(SAMPLES):
        size = tuple(int(v) for v in rng.integers(1, 12, rank))
        kernel = tuple(int(v) for v in rng.integers(1, 5, rank))
        stride = tuple(int(v) for v in rng.integers(1, 4, rank))
        dilation = tuple(int(v) for v in rng.integers(1, 3, rank))
        padding = tuple(int(v) for v in rng.integers(0, 3, rank))
        if any(d + 2 * p < dil * (k - 1) + 1 for d, p, dil, k in zip(size, padding, dilation, kernel)):
            with pytest.raises(ValueError, match="conv_output_size: the window spans"):
                conv_output_size(size, kernel, stride, padding, dilation)
            continue
        x, w = torch.zeros(1, 1, *size), torch.zeros(1, 1, *kernel)
        expected = conv(x, w, None, stride, padding, dilation).shape[2:]
        assert conv_output_size(size, kernel, stride, padding, dilation) == tuple(expected)
        full = tuple(dil * (k - 1) for k, dil in zip(kernel, dilation))
        assert conv_output_size(size, kernel, stride, "full", dilation) == tuple(conv(x, w, None, stride, full,
                                                                                      dilation).shape[2:])
        if all(d >= dil * (k - 1) + 1 for d, dil, k in zip(size, dilation, kernel)):
            assert conv_output_size(size, kernel, 1, "valid", dilation) == tuple(conv(x, w, None, 1, "valid",
                                                                                      dilation).shape[2:])
        assert conv_output_size(size, kernel, 1, "same", dilation) == tuple(conv(x, w, None, 1, "same",
                                                                                 dilation).shape[2:])
        # "same" at any stride means ceil(d / s) outputs (PyTorch refuses stride > 1 with "same").
        assert conv_output_size(size, kernel, stride, "same", dilation) == tuple(math.ceil(d / s)
                                                                                 for d, s in zip(size, stride))
        checked += 1
    assert checked >= SAMPLES // 2


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_conv_output_size_matches_pytorch_max_pool(rank, ceil_mode):
    rng = numpy.random.default_rng([rank, ceil_mode])
    pool = getattr(TF, f"max_pool{rank}d")
    for _ in range(SAMPLES):
        size = tuple(int(v) for v in rng.integers(1, 12, rank))
        kernel = tuple(int(v) for v in rng.integers(1, 5, rank))
        stride = tuple(int(v) for v in rng.integers(1, 5, rank))
        dilation = tuple(int(v) for v in rng.integers(1, 3, rank))
        padding = tuple(int(rng.integers(0, k // 2 + 1)) for k in kernel)
        if any(d + 2 * p < dil * (k - 1) + 1 for d, p, dil, k in zip(size, padding, dilation, kernel)):
            continue
        expected = pool(torch.zeros(1, 1, *size), kernel, stride, padding, dilation, ceil_mode=ceil_mode).shape[2:]
        assert conv_output_size(size, kernel, stride, padding, dilation, ceil_mode) == tuple(expected)


# ----- parameter counts against the layers' real parameters --------------------------------------

def test_conv_params_matches_pytorch_modules():
    rng = numpy.random.default_rng(21)
    for _ in range(SAMPLES):
        rank = int(rng.integers(1, 4))
        groups = int(rng.choice([1, 2, 3, 4]))
        in_channels, out_channels = groups * int(rng.integers(1, 5)), groups * int(rng.integers(1, 5))
        kernel = tuple(int(v) for v in rng.integers(1, 6, rank))
        bias = bool(rng.integers(0, 2))
        layer = getattr(torch.nn, f"Conv{rank}d")(in_channels, out_channels, kernel, groups=groups, bias=bias)
        expected = sum(p.numel() for p in layer.parameters())
        assert conv_params(in_channels, out_channels, kernel, groups=groups, bias=bias) == expected
        if rank == 2 and kernel[0] == kernel[1]:
            assert conv_params(in_channels, out_channels, kernel[0], groups=groups, bias=bias) == expected


def test_linear_params_matches_pytorch_modules():
    for in_features, out_features, bias in ((1, 1, True), (784, 10, True), (400, 120, False), (18_914, 4096, True)):
        layer = torch.nn.Linear(in_features, out_features, bias=bias, device="meta")
        assert linear_params(in_features, out_features, bias) == sum(p.numel() for p in layer.parameters())


def test_compare_fc_conv_counts_real_layers():
    c = compare_fc_conv((3, 32, 32), 120, 5, out_channels=6)
    assert isinstance(c, FcConvComparison)
    fc = torch.nn.Linear(3 * 32 * 32, 120, device="meta")
    conv = torch.nn.Conv2d(3, 6, 5)
    dense = torch.nn.Linear(3 * 32 * 32, 6 * 28 * 28, device="meta")
    assert c.fc_params == sum(p.numel() for p in fc.parameters()) == 368_760
    assert c.conv_params == sum(p.numel() for p in conv.parameters()) == 456
    assert c.dense_params == sum(p.numel() for p in dense.parameters()) == 14_455_392
    assert c.local_params == (5 * 5 * 3 + 1) * 6 * 28 * 28 == 357_504  # a filter per output position
    assert c.conv_output_shape == tuple(conv(torch.zeros(1, 3, 32, 32)).shape[1:])
    text = str(c)
    for line in ("(3,072 + 1) × 120 = 368,760", "(5·5·3 + 1) × 6 = 456", "(3,072 + 1) × 4,704 = 14,455,392",
                 "(75 + 1) × 4,704 = 357,504", "one filter reused at all 784 positions"):
        assert line in text
    strided = compare_fc_conv((1, 28, 28), 10, 3, stride=2, padding=1)
    assert strided.conv_output_shape == (10, 14, 14)


# ----- errors ------------------------------------------------------------------------------------

def test_bad_arguments_raise_errors_naming_the_function():
    with pytest.raises(ValueError, match=r"conv_output_size: stride must be positive in every dimension, got \(0,\)"):
        conv_output_size(5, 3, stride=0)
    with pytest.raises(ValueError, match="conv_output_size: padding must be non-negative, got -1"):
        conv_output_size(5, 3, padding=-1)
    with pytest.raises(ValueError, match="conv_output_size: padding must be an int or one of 'valid', 'same', "
                                         "'full', got 'half'"):
        conv_output_size(5, 3, padding="half")
    with pytest.raises(ValueError, match=r"explain_output_size: the window spans 5 samples .*kernel_size=3, "
                                         r"dilation=2.* the padded input has only 4"):
        explain_output_size(4, 3, dilation=2)
    with pytest.raises(TypeError, match="conv_output_size: size must be an int or a tuple of ints, got 5.0"):
        conv_output_size(5.0, 3)
    with pytest.raises(ValueError, match=r"conv_output_size: kernel_size must be an int or a tuple of 2 ints, "
                                         r"got \(3, 3, 3\)"):
        conv_output_size((5, 5), (3, 3, 3))
    with pytest.raises(ValueError, match="conv_params: in_channels and out_channels must be divisible by groups, "
                                         "got in_channels=6, out_channels=4, groups=3"):
        conv_params(6, 4, 3, groups=3)
    with pytest.raises(ValueError, match="conv_params: kernel_size must be positive, got 0"):
        conv_params(1, 1, (3, 0))
    with pytest.raises(ValueError, match="linear_params: in_features must be positive, got 0"):
        linear_params(0, 3)
    with pytest.raises(ValueError, match=r"compare_fc_conv: input_shape must be \(C, \*spatial\)"):
        compare_fc_conv((3,), 10, 3)
