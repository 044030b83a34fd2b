"""Bad calls as data: one table per op family, each row a call, the exception it must raise and its message.

``tests/test_errors.py`` runs every row. A message must name the op, state the rule and show the
values received, so each pattern is anchored at the op's name (``^conv2d: ...``) and spells out
the rule and the offending values. Rows are built lazily (each ``call`` is a zero-argument
callable), so a broken op fails its own rows, not the import of this file.
"""
import contextlib
import dataclasses
import io
import re
from typing import Callable

import numpy

import striate as st
import striate.nn as nn
import striate.nn.functional as F
from striate import optim
from striate.data import DataLoader, Subset, TensorDataset, default_collate
from striate.optim import lr_scheduler


@dataclasses.dataclass(frozen=True)
class Case:
    """One bad call: ``call()`` must raise ``error`` with a message matching ``match`` (``re.search``)."""

    id: str
    call: Callable
    error: type
    match: str


def r(text):
    """A literal message fragment as a regex (most patterns quote messages verbatim)."""
    return re.escape(text)


def x(*shape, dtype=numpy.float32):
    """A random tensor of ``shape`` (seeded, so a failure reproduces)."""
    rng = numpy.random.default_rng(sum(shape) + len(shape))
    return st.tensor(rng.standard_normal(shape).astype(dtype))


def ints(*values):
    return st.tensor(numpy.array(values, dtype=numpy.int64))


def params(*shapes):
    return [nn.Parameter(x(*shape)) for shape in shapes]


# ----- convolution -------------------------------------------------------------------------------------------
W = (4, 3, 3, 3)
CONV = [
    Case("rank 2-D input", lambda: F.conv2d(x(8, 8), x(*W)), ValueError,
         r"^conv2d: expected input of shape \(N, C, H, W\) or \(C, H, W\), got 2-D input of shape \(8, 8\)"),
    Case("rank 4-D into conv1d", lambda: F.conv1d(x(2, 3, 8, 8), x(4, 3, 3)), ValueError,
         r"^conv1d: expected input of shape \(N, C, L\) or \(C, L\), got 4-D input of shape \(2, 3, 8, 8\)"),
    Case("rank weight", lambda: F.conv3d(x(1, 3, 4, 4, 4), x(*W)), ValueError,
         r"^conv3d: expected 5-D weight of shape \(C_out, C_in / groups, k1, k2, k3\), got 4-D weight of shape "
         r"\(4, 3, 3, 3\)"),
    Case("channels", lambda: F.conv2d(x(2, 5, 8, 8), x(*W)), ValueError,
         r"^conv2d: input channels must equal weight.shape\[1\] · groups, got 5 input channels and weight of "
         r"shape \(4, 3, 3, 3\) with groups=1 \(expects 3\)"),
    Case("groups not dividing out channels", lambda: F.conv2d(x(1, 4, 8, 8), x(3, 2, 3, 3), groups=2), ValueError,
         r"^conv2d: output channels \(weight.shape\[0\]\) must be divisible by groups, got 3 output channels "
         r"and groups=2"),
    Case("groups zero", lambda: F.conv2d(x(2, 3, 8, 8), x(*W), groups=0), ValueError,
         r"^conv2d: groups must be positive, got 0"),
    Case("groups float", lambda: F.conv2d(x(2, 3, 8, 8), x(*W), groups=1.0), TypeError,
         r"^conv2d: groups must be an int, got 1.0"),
    Case("stride zero", lambda: F.conv2d(x(2, 3, 8, 8), x(*W), stride=0), ValueError,
         r"^conv2d: stride must be positive in every dimension, got \(0, 0\)"),
    Case("stride of wrong length", lambda: F.conv2d(x(2, 3, 8, 8), x(*W), stride=(1, 1, 1)), ValueError,
         r"^conv2d: stride must be an int or a tuple of 2 ints, got \(1, 1, 1\)"),
    Case("stride float", lambda: F.conv2d(x(2, 3, 8, 8), x(*W), stride=1.5), TypeError,
         r"^conv2d: stride must be an int or a tuple of 2 ints, got 1.5"),
    Case("negative padding", lambda: F.conv2d(x(2, 3, 8, 8), x(*W), padding=-1), ValueError,
         r"^conv2d: padding must be non-negative in every dimension, got \(-1, -1\)"),
    Case("unknown padding mode", lambda: F.conv2d(x(2, 3, 8, 8), x(*W), padding="bogus"), ValueError,
         r"^conv2d: padding must be an int, a tuple of 2 ints or one of 'valid', 'same', 'full', got 'bogus'"),
    Case("dilation zero", lambda: F.conv2d(x(2, 3, 8, 8), x(*W), dilation=0), ValueError,
         r"^conv2d: dilation must be positive in every dimension, got \(0, 0\)"),
    Case("kernel larger than padded input", lambda: F.conv2d(x(1, 3, 2, 2), x(*W)), ValueError,
         r"^conv2d: the \(dilated\) kernel must fit in the padded input .*kernel span \(3, 3\) .*padded input "
         r"size \(2, 2\)"),
    Case("bias shape", lambda: F.conv2d(x(2, 3, 8, 8), x(*W), x(3)), ValueError,
         r"^conv2d: expected bias of shape \(4,\) \(one per output channel\), got shape \(3,\)"),
    Case("bias dtype", lambda: F.conv2d(x(2, 3, 8, 8), x(*W), x(4, dtype=numpy.float64)), TypeError,
         r"^conv2d: bias must have the input's dtype float32, got float64"),
    Case("input and weight dtypes", lambda: F.conv2d(x(2, 3, 8, 8), x(*W, dtype=numpy.float64)), TypeError,
         r"^conv2d: input and weight must have the same dtype, got input float32 and weight float64"),
    Case("integer input", lambda: F.conv2d(st.ones(1, 3, 8, 8, dtype=st.int64), x(*W)), TypeError,
         r"^conv2d: input must be a floating-point tensor, got dtype int64"),
    Case("list input", lambda: F.conv2d([[1.0]], x(*W)), TypeError,
         r"^conv2d: input must be a Tensor or an array, got list"),
    Case("module in_channels zero", lambda: nn.Conv2d(0, 4, 3), ValueError,
         r"^Conv2d: in_channels must be a positive integer. Received: in_channels=0"),
    Case("module groups", lambda: nn.Conv2d(3, 4, 3, groups=2), ValueError,
         r"^Conv2d: in_channels must be divisible by groups. Received: in_channels=3, groups=2"),
    Case("module out_channels groups", lambda: nn.Conv2d(4, 3, 3, groups=2), ValueError,
         r"^Conv2d: out_channels must be divisible by groups. Received: out_channels=3, groups=2"),
    Case("module padding_mode", lambda: nn.Conv2d(3, 4, 3, padding_mode="mirror"), ValueError,
         r"^Conv2d: padding_mode must be one of \('zeros', 'reflect', 'replicate', 'circular'\). "
         r"Received: padding_mode='mirror'"),
    Case("module kernel zero", lambda: nn.Conv2d(3, 4, 0), ValueError,
         r"^Conv2d: kernel_size must be positive in every dimension, got \(0, 0\)"),
    Case("module stride zero", lambda: nn.Conv1d(3, 4, 3, stride=0), ValueError,
         r"^Conv1d: stride must be positive in every dimension, got \(0,\)"),
    Case("module forward rank", lambda: nn.Conv2d(3, 4, 3)(x(2, 3, 8, 8, 8)), ValueError,
         r"^conv2d: expected input of shape \(N, C, H, W\) or \(C, H, W\), got 5-D input of shape \(2, 3, 8, 8, 8\)"),
    Case("module reflect padding too wide",
         lambda: nn.Conv2d(3, 4, 3, padding=9, padding_mode="reflect")(x(1, 3, 4, 4)), ValueError,
         r"^pad: reflect padding must be smaller than the dimension it pads, got padding \(9, 9\) for "
         r"dimension 2 of size 4"),
]

# ----- pooling -------------------------------------------------------------------------------------------------
POOL = [
    Case("max kernel zero", lambda: F.max_pool2d(x(2, 3, 8, 8), 0), ValueError,
         r"^max_pool2d: kernel_size must be positive in every dimension, got \(0, 0\)"),
    Case("max stride zero", lambda: F.max_pool2d(x(2, 3, 8, 8), 2, stride=0), ValueError,
         r"^max_pool2d: stride must be positive in every dimension, got \(0, 0\)"),
    Case("max negative padding", lambda: F.max_pool2d(x(2, 3, 8, 8), 2, padding=-1), ValueError,
         r"^max_pool2d: padding must be non-negative in every dimension, got \(-1, -1\)"),
    Case("max padding over half the kernel", lambda: F.max_pool2d(x(2, 3, 8, 8), 2, padding=2), ValueError,
         r"^max_pool2d: padding must be at most half the kernel size \(padding <= kernel_size // 2\), got padding "
         r"\(2, 2\) for kernel_size \(2, 2\)"),
    Case("max empty output", lambda: F.max_pool2d(x(1, 1, 2, 2), 3), ValueError,
         r"^max_pool2d: output size must be positive, got \(0, 0\) for input size \(2, 2\) with kernel_size \(3, 3\)"),
    Case("max dilation too wide", lambda: F.max_pool2d(x(1, 1, 4, 4), 2, dilation=4), ValueError,
         r"^max_pool2d: output size must be positive, got \(0, 0\) .*dilation \(4, 4\)"),
    Case("max kernel of wrong length", lambda: F.max_pool2d(x(2, 3, 8, 8), (2, 2, 2)), ValueError,
         r"^max_pool2d: kernel_size must be an int or a tuple of 2 ints, got \(2, 2, 2\)"),
    Case("max rank", lambda: F.max_pool3d(x(2, 3, 8), 2), ValueError,
         r"^max_pool3d: expected input of shape \(N, C, D, H, W\) or \(C, D, H, W\), got 3-D input of shape "
         r"\(2, 3, 8\)"),
    Case("max pool1d of 4-D", lambda: F.max_pool1d(x(2, 3, 8, 8), 2), ValueError,
         r"^max_pool1d: expected input of shape \(N, C, L\) or \(C, L\), got 4-D input of shape \(2, 3, 8, 8\)"),
    Case("max list input", lambda: F.max_pool2d([[1.0]], 2), TypeError,
         r"^max_pool2d: input must be a Tensor or an array, got list"),
    Case("min kernel zero", lambda: F.min_pool2d(x(2, 3, 8, 8), 0), ValueError,
         r"^min_pool2d: kernel_size must be positive in every dimension, got \(0, 0\)"),
    Case("avg padding over half the kernel", lambda: F.avg_pool2d(x(2, 3, 8, 8), 2, padding=3), ValueError,
         r"^avg_pool2d: padding must be at most half the kernel size .*got padding \(3, 3\) for kernel_size \(2, 2\)"),
    Case("avg divisor zero", lambda: F.avg_pool2d(x(2, 3, 8, 8), 2, divisor_override=0), ValueError,
         r"^avg_pool2d: divisor_override must be non-zero, got 0"),
    Case("avg integer input", lambda: F.avg_pool2d(st.ones(1, 1, 4, 4, dtype=st.int64), 2), TypeError,
         r"^avg_pool2d: input must be a floating-point tensor, got dtype int64"),
    Case("adaptive output zero", lambda: F.adaptive_avg_pool2d(x(2, 3, 8, 8), 0), ValueError,
         r"^adaptive_avg_pool2d: output_size must be positive in every dimension, got 0"),
    Case("adaptive output negative", lambda: F.adaptive_avg_pool2d(x(2, 3, 8, 8), (2, -1)), ValueError,
         r"^adaptive_avg_pool2d: output_size must be positive in every dimension, got \(2, -1\)"),
    Case("adaptive output of wrong length", lambda: F.adaptive_avg_pool2d(x(2, 3, 8, 8), (1, 2, 3)), ValueError,
         r"^adaptive_avg_pool2d: output_size must be an int or a tuple of 2 ints or None, got \(1, 2, 3\)"),
    Case("adaptive max rank", lambda: F.adaptive_max_pool1d(x(2, 3, 8, 8), 2), ValueError,
         r"^adaptive_max_pool1d: expected input of shape \(N, C, L\) or \(C, L\), got 4-D input"),
    Case("module kernel zero", lambda: nn.MaxPool2d(0), ValueError,
         r"^MaxPool2d: kernel_size must be positive in every dimension, got \(0, 0\)"),
    Case("module forward rank", lambda: nn.MaxPool3d(2)(x(2, 8)), ValueError,
         r"^max_pool3d: expected input of shape \(N, C, D, H, W\) or \(C, D, H, W\), got 2-D input of shape \(2, 8\)"),
    Case("module adaptive zero", lambda: nn.AdaptiveAvgPool2d(0), ValueError,
         r"^AdaptiveAvgPool2d: output_size must be a positive int or a tuple of 2 positive ints .*"
         r"Received: output_size=0"),
]

# ----- linear ----------------------------------------------------------------------------------------------------
LINEAR = [
    Case("in_features mismatch", lambda: F.linear(x(2, 5), x(4, 3)), ValueError,
         r"^linear: the last dimension of input must equal weight's in_features: input \(2, 5\) has 5, "
         r"weight \(4, 3\) expects 3"),
    Case("bias shape", lambda: F.linear(x(2, 3), x(4, 3), x(5)), ValueError,
         r"^linear: bias must have shape \(out_features,\) = \(4,\), got \(5,\)"),
    Case("weight rank", lambda: F.linear(x(2, 3), x(3)), ValueError,
         r"^linear: weight must have shape \(out_features, in_features\), got 1-D weight of shape \(3,\)"),
    Case("0-D input", lambda: F.linear(st.tensor(1.0), x(2, 3)), ValueError,
         r"^linear: input must have shape \(\*, in_features\), got a 0-D tensor"),
    Case("dtypes", lambda: F.linear(x(2, 3), x(4, 3, dtype=numpy.float64)), TypeError,
         r"^linear: input and weight must have the same dtype, got float32 and float64"),
    Case("integer input", lambda: F.linear(st.ones(2, 3, dtype=st.int64), x(4, 3)), TypeError,
         r"^linear: input must be a floating-point tensor, got dtype int64"),
    Case("list input", lambda: F.linear([1.0, 2.0, 3.0], x(2, 3)), TypeError,
         r"^linear: input must be a Tensor or an array, got list"),
    Case("module in_features zero", lambda: nn.Linear(0, 3), ValueError,
         r"^Linear: in_features must be a positive integer. Received: in_features=0"),
    Case("module out_features negative", lambda: nn.Linear(3, -1), ValueError,
         r"^Linear: out_features must be a positive integer. Received: out_features=-1"),
    Case("module in_features float", lambda: nn.Linear(3.5, 2), TypeError,
         r"^Linear: in_features must be an int. Received: in_features=3.5"),
    Case("module forward width", lambda: nn.Linear(3, 2)(x(2, 4)), ValueError,
         r"^linear: the last dimension of input must equal weight's in_features: input \(2, 4\) has 4, "
         r"weight \(2, 3\) expects 3"),
]

# ----- losses ------------------------------------------------------------------------------------------------------
LOSSES = [
    Case("cross_entropy class too large", lambda: F.cross_entropy(x(2, 3), ints(0, 3)), IndexError,
         r"^cross_entropy: target class index 3 is out of range \[0, C\) with C = 3"),
    Case("cross_entropy negative class", lambda: F.cross_entropy(x(2, 3), ints(0, -2)), IndexError,
         r"^cross_entropy: target class index -2 is out of range \[0, C\) with C = 3 \(ignore_index = -100\)"),
    Case("cross_entropy batch sizes", lambda: F.cross_entropy(x(2, 3), ints(0, 1, 2)), ValueError,
         r"^cross_entropy: expected input batch size \(2\) to match target batch size \(3\); input \(2, 3\), "
         r"target \(3,\)"),
    Case("cross_entropy spatial target", lambda: F.cross_entropy(x(2, 3, 4, 4), st.zeros(2, 4, 5, dtype=st.int64)),
         ValueError, r"^cross_entropy: expected target of shape \(N, d1, ...\) = \(2, 4, 4\) for input of shape "
                     r"\(2, 3, 4, 4\), got \(2, 4, 5\)"),
    Case("cross_entropy float index target", lambda: F.cross_entropy(x(2, 3), x(2, 4)), TypeError,
         r"^cross_entropy: class-index target must have an integer dtype, got dtype float32"),
    Case("cross_entropy 0-D input", lambda: F.cross_entropy(st.tensor(1.0), ints(0)), ValueError,
         r"^cross_entropy: expected input of shape \(C,\), \(N, C\) or \(N, C, d1, ...\), got a 0-D input"),
    Case("cross_entropy integer input", lambda: F.cross_entropy(ints(1, 2), ints(0, 1)), TypeError,
         r"^cross_entropy: input must be a floating-point tensor, got dtype int64"),
    Case("cross_entropy reduction", lambda: F.cross_entropy(x(2, 3), ints(0, 1), reduction="avg"), ValueError,
         r"^cross_entropy: reduction must be one of \('none', 'mean', 'sum'\), got 'avg'"),
    Case("cross_entropy label_smoothing", lambda: F.cross_entropy(x(2, 3), ints(0, 1), label_smoothing=1.5),
         ValueError, r"^cross_entropy: label_smoothing must be between 0.0 and 1.0, got 1.5"),
    Case("cross_entropy weight shape", lambda: F.cross_entropy(x(2, 3), ints(0, 1), weight=x(4)), ValueError,
         r"^cross_entropy: weight must have shape \(C,\) = \(3,\), one entry per class, got shape \(4,\)"),
    Case("cross_entropy list target", lambda: F.cross_entropy(x(2, 3), [0, 1]), TypeError,
         r"^cross_entropy: target must be a Tensor or an array, got list"),
    Case("nll_loss class too large", lambda: F.nll_loss(x(2, 3), ints(0, 5)), IndexError,
         r"^nll_loss: target class index 5 is out of range \[0, C\) with C = 3"),
    Case("nll_loss target shape", lambda: F.nll_loss(x(2, 3), st.zeros(2, 2, dtype=st.int64)), ValueError,
         r"^nll_loss: expected target of shape \(N, d1, ...\) = \(2,\) for input of shape \(2, 3\), got \(2, 2\)"),
    Case("mse_loss shapes", lambda: F.mse_loss(x(2, 3), x(3, 2)), ValueError,
         r"^mse_loss: target shape \(3, 2\) must equal input shape \(2, 3\)"),
    Case("mse_loss reduction", lambda: F.mse_loss(x(2, 3), x(2, 3), reduction="avg"), ValueError,
         r"^mse_loss: reduction must be one of \('none', 'mean', 'sum'\), got 'avg'"),
    Case("mse_loss integer input", lambda: F.mse_loss(ints(1, 2), ints(1, 2)), TypeError,
         r"^mse_loss: input must be a floating-point tensor, got dtype int64"),
    Case("bce shapes", lambda: F.binary_cross_entropy_with_logits(x(2, 3), x(3, 2)), ValueError,
         r"^binary_cross_entropy_with_logits: target shape \(3, 2\) must equal input shape \(2, 3\)"),
    Case("bce pos_weight", lambda: F.binary_cross_entropy_with_logits(x(2, 3), x(2, 3), pos_weight=x(4)), ValueError,
         r"^binary_cross_entropy_with_logits: pos_weight of shape \(4,\) does not broadcast to the input's shape "
         r"\(2, 3\)"),
    Case("bce integer target", lambda: F.binary_cross_entropy_with_logits(x(3), ints(0, 1, 1)), TypeError,
         r"^binary_cross_entropy_with_logits: target must be a floating-point tensor, got dtype int64"),
    Case("module reduction", lambda: nn.CrossEntropyLoss(reduction="avg"), ValueError,
         r"^CrossEntropyLoss: reduction must be one of \('mean', 'sum', 'none'\). Received: reduction='avg'"),
    Case("module MSELoss reduction", lambda: nn.MSELoss(reduction="avg"), ValueError,
         r"^MSELoss: reduction must be one of \('mean', 'sum', 'none'\). Received: reduction='avg'"),
]

# ----- normalisation -------------------------------------------------------------------------------------------
NORMALIZATION = [
    Case("running_mean shape", lambda: F.batch_norm(x(2, 3, 8, 8), st.zeros(4), st.ones(4)), ValueError,
         r"^batch_norm: running_mean must have shape \(C,\) = \(3,\) for input of shape \(2, 3, 8, 8\), "
         r"got shape \(4,\)"),
    Case("weight shape", lambda: F.batch_norm(x(2, 3, 8, 8), st.zeros(3), st.ones(3), weight=st.ones(4)), ValueError,
         r"^batch_norm: weight must have shape \(C,\) = \(3,\) for input of shape \(2, 3, 8, 8\), got shape \(4,\)"),
    Case("one value per channel", lambda: F.batch_norm(x(1, 3), None, None, training=True), ValueError,
         r"^batch_norm: expected more than 1 value per channel when training, got input of shape \(1, 3\)"),
    Case("negative eps", lambda: F.batch_norm(x(2, 3, 8, 8), st.zeros(3), st.ones(3), eps=-1.0), ValueError,
         r"^batch_norm: eps must be a non-negative number, got -1.0"),
    Case("no running stats in eval", lambda: F.batch_norm(x(2, 3, 8, 8), None, None, training=False), ValueError,
         r"^batch_norm: running_mean and running_var must be given in evaluation mode \(training=False\)"),
    Case("1-D input", lambda: F.batch_norm(x(3), st.zeros(3), st.ones(3)), ValueError,
         r"^batch_norm: expected input of shape \(N, C\) or \(N, C, \*D\), got 1-D input of shape \(3,\)"),
    Case("integer input", lambda: F.batch_norm(st.ones(2, 3, dtype=st.int64), st.zeros(3), st.ones(3)), TypeError,
         r"^batch_norm: input must be a floating-point tensor, got dtype int64"),
    Case("module num_features zero", lambda: nn.BatchNorm2d(0), ValueError,
         r"^BatchNorm2d: num_features must be a positive integer. Received: num_features=0"),
    Case("module num_features float", lambda: nn.BatchNorm2d(3.0), TypeError,
         r"^BatchNorm2d: num_features must be an int. Received: num_features=3.0"),
    Case("module eps zero", lambda: nn.BatchNorm1d(3, eps=0), ValueError,
         r"^BatchNorm1d: eps must be positive. Received: eps=0"),
    Case("module momentum", lambda: nn.BatchNorm2d(3, momentum=-0.1), ValueError,
         r"^BatchNorm2d: momentum must be in \[0, 1\] or None. Received: momentum=-0.1"),
    Case("module rank", lambda: nn.BatchNorm2d(3)(x(2, 3, 8)), ValueError,
         r"^BatchNorm2d: expected input of shape \(N, C, H, W\), got 3-D input of shape \(2, 3, 8\)"),
    Case("module BatchNorm1d rank", lambda: nn.BatchNorm1d(3)(x(2, 3, 8, 8)), ValueError,
         r"^BatchNorm1d: expected input of shape \(N, C\) or \(N, C, L\), got 4-D input of shape \(2, 3, 8, 8\)"),
    Case("module channels", lambda: nn.BatchNorm2d(4)(x(2, 3, 8, 8)), ValueError,
         r"^batch_norm: running_mean must have shape \(C,\) = \(3,\) for input of shape \(2, 3, 8, 8\), "
         r"got shape \(4,\)"),
]

# ----- reshaping and broadcasting ------------------------------------------------------------------------------
RESHAPE_BROADCAST = [
    Case("reshape element count", lambda: x(2, 3, 8, 8).reshape(5, 5), ValueError,
         r"^reshape: cannot reshape a tensor of shape \(2, 3, 8, 8\) \(384 elements\) into \(5, 5\)"),
    Case("reshape two -1", lambda: x(2, 3, 8, 8).reshape(-1, -1), ValueError,
         r"^reshape: cannot reshape a tensor of shape \(2, 3, 8, 8\) \(384 elements\) into \(-1, -1\)"),
    Case("reshape -1 not dividing", lambda: x(2, 3, 8, 8).view(7, -1), ValueError,
         r"^reshape: cannot reshape a tensor of shape \(2, 3, 8, 8\) \(384 elements\) into \(7, -1\)"),
    Case("reshape float size", lambda: x(2, 3).reshape(2.5, -1), TypeError,
         r"^reshape: shape must be ints, got \(2.5, -1\)"),
    Case("add", lambda: x(2, 3) + x(4, 3), ValueError,
         r"^add: operands of shapes \(2, 3\) and \(4, 3\) cannot be broadcast together \(aligned from the last "
         r"dimension, sizes must be equal or 1\)"),
    Case("mul", lambda: x(2, 3) * x(2, 4), ValueError,
         r"^mul: operands of shapes \(2, 3\) and \(2, 4\) cannot be broadcast together"),
    Case("sub with an array", lambda: x(2, 3) - numpy.ones((3, 2), numpy.float32), ValueError,
         r"^sub: operands of shapes \(2, 3\) and \(3, 2\) cannot be broadcast together"),
    Case("reflected div", lambda: numpy.ones((3, 2), numpy.float32) / x(2, 3), ValueError,
         r"^div: operands of shapes \(3, 2\) and \(2, 3\) cannot be broadcast together"),
    Case("pow", lambda: x(2, 3) ** x(3, 2), ValueError,
         r"^pow: operands of shapes \(2, 3\) and \(3, 2\) cannot be broadcast together"),
    Case("matmul", lambda: x(2, 3) @ x(4, 3), ValueError,
         r"^matmul: inner dimensions must agree, got shapes \(2, 3\) and \(4, 3\)"),
    Case("expand", lambda: x(2, 3).expand(4, 3), ValueError,
         r"^expand: cannot expand a tensor of shape \(2, 3\) to \(4, 3\): only size-1 dimensions can grow"),
    Case("permute length", lambda: x(2, 3, 8, 8).permute(0, 1, 2), ValueError,
         r"^permute: expected 4 dims for a tensor of shape \(2, 3, 8, 8\), got \(0, 1, 2\)"),
    Case("permute repeated", lambda: x(2, 3, 8, 8).permute(0, 1, 1, 2), ValueError,
         r"^permute: dims \(0, 1, 1, 2\) name a dimension twice"),
    Case("transpose dim", lambda: x(2, 3, 8, 8).transpose(0, 5), IndexError,
         r"^transpose: dim 5 is out of range for a tensor with 4 dimensions \(expected a dim in \[-4, 3\]\)"),
    Case("sum dim", lambda: x(2, 3, 8, 8).sum(dim=5), IndexError,
         r"^sum: dim 5 is out of range for a tensor with 4 dimensions"),
    Case("mean repeated dims", lambda: x(2, 3, 8, 8).mean(dim=(0, 0)), ValueError,
         r"^mean: dim \(0, 0\) names a dimension twice"),
    Case("flatten order", lambda: x(2, 3, 8, 8).flatten(3, 1), ValueError,
         r"^flatten: start_dim 3 comes after end_dim 1 for a tensor of shape \(2, 3, 8, 8\)"),
    Case("module Flatten order", lambda: nn.Flatten(3, 1)(x(2, 3, 8, 8)), ValueError,
         r"^flatten: start_dim 3 comes after end_dim 1"),
    Case("squeeze dim", lambda: x(2, 3, 8, 8).squeeze(7), IndexError,
         r"^squeeze: dim 7 is out of range for a tensor with 4 dimensions"),
    Case("unsqueeze dim", lambda: x(2, 3, 8, 8).unsqueeze(9), IndexError,
         r"^unsqueeze: dim 9 is out of range for a tensor with 4 dimensions \(expected a dim in \[-5, 4\]\)"),
    Case("cat shapes", lambda: st.cat([x(2, 3), x(2, 4)]), ValueError,
         r"^cat: all tensors must match except in dimension 0, got shapes \[\(2, 3\), \(2, 4\)\]"),
    Case("cat dim", lambda: st.cat([x(2, 3), x(2, 3)], dim=3), IndexError,
         r"^cat: dim 3 is out of range for a tensor with 2 dimensions"),
    Case("stack shapes", lambda: st.stack([x(2, 3), x(2, 4)]), ValueError,
         r"^stack: all tensors must have the same shape, got \[\(2, 3\), \(2, 4\)\]"),
    Case("getitem out of range", lambda: x(2, 3)[5], IndexError,
         r"^getitem: invalid index 5 for a tensor of shape \(2, 3\): index 5 is out of bounds for axis 0 with size 2"),
    Case("getitem float", lambda: x(2, 3)[1.5], IndexError,
         r"^getitem: invalid index 1.5 for a tensor of shape \(2, 3\): only integers, slices"),
    Case("tensor ragged", lambda: st.tensor([[1.0], [1.0, 2.0]]), ValueError,
         r"^tensor: data must be a number or a rectangular nested sequence of numbers: .*inhomogeneous"),
    Case("pad odd length", lambda: F.pad(x(2, 3, 8, 8), (1,)), ValueError,
         r"^pad: padding length must be divisible by 2 \(a left and a right width per dimension\), got 1 values "
         r"\(1,\)"),
    Case("pad mode", lambda: F.pad(x(2, 3, 8, 8), (1, 1), mode="mirror"), ValueError,
         r"^pad: mode must be one of 'constant', 'reflect', 'replicate', 'circular', got 'mirror'"),
    Case("softmax dim", lambda: F.softmax(x(2, 3), dim=5), IndexError,
         r"^softmax: dim 5 is out of range for a tensor with 2 dimensions"),
]

# ----- optimizers and schedules ----------------------------------------------------------------------------------
SGD_GROUP = {"params": [0], "lr": 0.1, "momentum": 0.9, "dampening": 0, "nesterov": False, "weight_decay": 0,
             "maximize": False}
OPTIMIZERS = [
    Case("negative lr", lambda: optim.SGD(params((2,)), lr=-1), ValueError, r"^SGD: lr must be >= 0, got -1"),
    Case("NaN lr", lambda: optim.Adam(params((2,)), lr=float("nan")), ValueError, r"^Adam: lr must be >= 0, got nan"),
    Case("lr string", lambda: optim.SGD(params((2,)), lr="0.1"), TypeError,
         r"^SGD: lr must be a real number, got '0.1'"),
    Case("negative momentum", lambda: optim.SGD(params((2,)), lr=0.1, momentum=-1), ValueError,
         r"^SGD: momentum must be >= 0, got -1"),
    Case("nesterov without momentum", lambda: optim.SGD(params((2,)), lr=0.1, nesterov=True), ValueError,
         r"^SGD: Nesterov momentum requires momentum > 0 and dampening == 0, got momentum=0, dampening=0"),
    Case("nesterov with dampening", lambda: optim.SGD(params((2,)), lr=0.1, momentum=0.9, nesterov=True,
                                                      dampening=0.5), ValueError,
         r"^SGD: Nesterov momentum requires momentum > 0 and dampening == 0, got momentum=0.9, dampening=0.5"),
    Case("negative weight_decay", lambda: optim.AdamW(params((2,)), weight_decay=-1), ValueError,
         r"^AdamW: weight_decay must be >= 0, got -1"),
    Case("beta1 of 1", lambda: optim.Adam(params((2,)), betas=(1.0, 0.9)), ValueError,
         r"^Adam: betas\[0\] must be in \[0, 1\), got 1.0"),
    Case("negative beta2", lambda: optim.Adam(params((2,)), betas=(0.9, -0.1)), ValueError,
         r"^Adam: betas\[1\] must be in \[0, 1\), got -0.1"),
    Case("one beta", lambda: optim.Adam(params((2,)), betas=(0.9,)), TypeError,
         r"^Adam: betas must be a pair of numbers \(beta1, beta2\), got \(0.9,\)"),
    Case("negative eps", lambda: optim.Adam(params((2,)), eps=-1e-8), ValueError,
         r"^Adam: eps must be >= 0, got -1e-08"),
    Case("empty parameter list", lambda: optim.SGD([], lr=0.1), ValueError, r"^SGD: got an empty parameter list"),
    Case("a single tensor", lambda: optim.SGD(x(2), lr=0.1), TypeError,
         r"^SGD: params must be an iterable of Tensors or of dicts, got a single Tensor of shape \(2,\); "
         r"wrap it in a list"),
    Case("a float parameter", lambda: optim.SGD([1.0], lr=0.1), TypeError,
         r"^SGD: can only optimize Tensors, got float at position 0 of parameter group 0"),
    Case("non-leaf parameter", lambda: optim.SGD([st.randn(2, requires_grad=True) * 2], lr=0.1), ValueError,
         r"^SGD: can't optimize a non-leaf Tensor \(position 0 of parameter group 0, made by Mul\)"),
    Case("repeated parameter", lambda: optim.SGD(params((2,)) * 2, lr=0.1), ValueError,
         r"^SGD: parameter at position 1 appears twice in its group \(shape \(2,\)\)"),
    Case("group without params", lambda: optim.SGD([{"lr": 0.1}], lr=0.1), ValueError,
         r"^SGD: a parameter group must have a 'params' entry, got keys \['lr'\]"),
    Case("parameter in two groups", lambda: (lambda p: optim.SGD([{"params": p}, {"params": p}], lr=0.1))(params((2,))),
         ValueError, r"^SGD: some parameters appear in more than one parameter group \(groups 0 and 1\)"),
    Case("load_state_dict not a dict", lambda: optim.SGD(params((2,)), lr=0.1).load_state_dict([1]), ValueError,
         r"^SGD.load_state_dict: expected a dict with 'state' and 'param_groups', got list"),
    Case("load_state_dict group count", lambda: optim.SGD(params((2,)), lr=0.1).load_state_dict(
        {"state": {}, "param_groups": []}), ValueError,
         r"^SGD.load_state_dict: the state dict has 0 parameter groups, this optimizer has 1"),
    Case("load_state_dict group size", lambda: optim.SGD(params((2,), (3,)), lr=0.1).load_state_dict(
        {"state": {}, "param_groups": [{**SGD_GROUP}]}), ValueError,
         r"^SGD.load_state_dict: parameter group 0 has 1 parameters in the state dict but 2 in this optimizer"),
    Case("load_state_dict state shape", lambda: optim.SGD(params((2,)), lr=0.1, momentum=0.9).load_state_dict(
        {"state": {0: {"momentum_buffer": numpy.zeros(3)}}, "param_groups": [SGD_GROUP]}), ValueError,
         r"^SGD.load_state_dict: state 'momentum_buffer' of parameter 0 has shape \(3,\), but the parameter has "
         r"shape \(2,\)"),
    Case("load_state_dict unknown parameter", lambda: optim.SGD(params((2,)), lr=0.1).load_state_dict(
        {"state": {5: {}}, "param_groups": [SGD_GROUP]}), ValueError,
         r"^SGD.load_state_dict: the state dict has state for parameter 5, which no parameter group lists"),
    Case("StepLR step_size", lambda: lr_scheduler.StepLR(optim.SGD(params((2,)), lr=0.1), 0), ValueError,
         r"^StepLR: step_size must be a positive integer, got 0"),
    Case("StepLR not an optimizer", lambda: lr_scheduler.StepLR("sgd", 2), TypeError,
         r"^StepLR: expected an Optimizer, got str"),
    Case("CosineAnnealingLR T_max", lambda: lr_scheduler.CosineAnnealingLR(optim.SGD(params((2,)), lr=0.1), 0),
         ValueError, r"^CosineAnnealingLR: T_max must be a positive integer, got 0"),
    Case("OneCycleLR no length", lambda: lr_scheduler.OneCycleLR(optim.SGD(params((2,)), lr=0.1), max_lr=0.1),
         ValueError, r"^OneCycleLR: give either total_steps, or both epochs and steps_per_epoch; got total_steps=None"),
    Case("OneCycleLR pct_start", lambda: lr_scheduler.OneCycleLR(optim.SGD(params((2,)), lr=0.1), max_lr=0.1,
                                                                   total_steps=10, pct_start=1.5), ValueError,
         r"^OneCycleLR: pct_start must be a number in \[0, 1\], got 1.5"),
    Case("OneCycleLR past its end", lambda: [s.step() for s in [lr_scheduler.OneCycleLR(
        optim.SGD(params((2,)), lr=0.1), max_lr=0.1, total_steps=2)] for _ in range(3)], ValueError,
         r"^OneCycleLR: tried to step 3 times, but total_steps is 2"),
    Case("scheduler load_state_dict",
         lambda: lr_scheduler.StepLR(optim.SGD(params((2,)), lr=0.1), 2).load_state_dict([1]), ValueError,
         r"^StepLR.load_state_dict: expected a dict with 'last_epoch' and 'base_lrs', got list"),
]


# ----- Module.load_state_dict ------------------------------------------------------------------------------------
def linear_state(**changes):
    state = {"weight": numpy.zeros((2, 2), numpy.float32), "bias": numpy.zeros(2, numpy.float32)}
    state.update(changes)
    return {key: value for key, value in state.items() if value is not None}


LOAD_STATE_DICT = [
    Case("missing key", lambda: nn.Linear(2, 2).load_state_dict(linear_state(bias=None)), RuntimeError,
         r"^Error\(s\) in loading state_dict for Linear:\s+Missing key\(s\) in state_dict: \"bias\"\."),
    Case("unexpected key", lambda: nn.Linear(2, 2).load_state_dict(linear_state(extra=numpy.zeros(1))), RuntimeError,
         r"^Error\(s\) in loading state_dict for Linear:\s+Unexpected key\(s\) in state_dict: \"extra\"\."),
    Case("shape", lambda: nn.Linear(2, 2).load_state_dict(linear_state(weight=numpy.zeros((3, 2), numpy.float32))),
         RuntimeError, r"^Error\(s\) in loading state_dict for Linear:\s+size mismatch for weight: copying a param "
                       r"with shape \(3, 2\) from checkpoint, the shape in current model is \(2, 2\)\."),
    Case("0-D for 1-D", lambda: nn.Linear(2, 2).load_state_dict(linear_state(bias=numpy.float32(0))), RuntimeError,
         r"size mismatch for bias: copying a param with shape \(\) from checkpoint, the shape in current model is "
         r"\(2,\)"),
    Case("buffer shape", lambda: nn.BatchNorm1d(2).load_state_dict(
        {**nn.BatchNorm1d(2).state_dict(), "running_mean": numpy.zeros(3)}), RuntimeError,
         r"^Error\(s\) in loading state_dict for BatchNorm1d:\s+size mismatch for running_mean: copying a param "
         r"with shape \(3,\)"),
    Case("nested names", lambda: nn.Sequential(nn.Linear(2, 2)).load_state_dict({"1.weight": numpy.zeros((2, 2))}),
         RuntimeError, r"^Error\(s\) in loading state_dict for Sequential:\s+Missing key\(s\) in state_dict: "
                       r"\"0.weight\", \"0.bias\"\.\s+Unexpected key\(s\) in state_dict: \"1.weight\"\."),
    Case("not a mapping", lambda: nn.Linear(2, 2).load_state_dict([1]), TypeError,
         r"^load_state_dict: expected a mapping of name -> array, got list"),
]


# ----- DataLoader and datasets -------------------------------------------------------------------------------------
def rows(n=4):
    return TensorDataset(numpy.zeros((n, 2), numpy.float32))


DATALOADER = [
    Case("batch_size zero", lambda: DataLoader(rows(), batch_size=0), ValueError,
         r"^DataLoader: batch_size must be a positive int, got 0"),
    Case("batch_size float", lambda: DataLoader(rows(), batch_size=1.5), ValueError,
         r"^DataLoader: batch_size must be a positive int, got 1.5"),
    Case("batch_size bool", lambda: DataLoader(rows(), batch_size=True), ValueError,
         r"^DataLoader: batch_size must be a positive int, got True"),
    Case("negative seed", lambda: DataLoader(rows(), shuffle=True, seed=-1), ValueError,
         r"^DataLoader: seed must be a non-negative int or None, got -1"),
    Case("collate_fn not callable", lambda: DataLoader(rows(), collate_fn=3), TypeError,
         r"^DataLoader: collate_fn must be callable, got int"),
    Case("not a dataset", lambda: DataLoader(5), TypeError,
         r"^DataLoader: dataset must be map-style \(support len\(\) and dataset\[i\]\), got int"),
    Case("negative epoch", lambda: setattr(DataLoader(rows()), "epoch", -1), ValueError,
         r"^DataLoader: epoch must be a non-negative int, got -1"),
    Case("samples of different shapes", lambda: list(DataLoader([(numpy.zeros(2), 1), (numpy.zeros(3), 1)],
                                                                batch_size=2)), ValueError,
         r"^default_collate: every sample must have the same shape to be stacked, got \[\(2,\), \(3,\)\]"),
    Case("samples of different lengths", lambda: default_collate([(1, 2), (1, 2, 3)]), ValueError,
         r"^default_collate: every sample must have the same number of fields, got lengths \[2, 3\]"),
    Case("dicts with different keys", lambda: default_collate([{"a": 1}, {"b": 2}]), ValueError,
         r"^default_collate: every dict sample must have the keys of the first, \['a'\], got \['b'\]"),
    Case("mixed number kinds", lambda: default_collate([1, 2.5]), TypeError,
         r"^default_collate: every sample of a field must have the same kind of number as the first \(int\), "
         r"got types \['float', 'int'\]"),
    Case("uncollatable", lambda: default_collate([object()]), TypeError,
         r"^default_collate: cannot collate samples of type object"),
    Case("empty batch", lambda: default_collate([]), ValueError, r"^default_collate: cannot collate an empty batch"),
    Case("TensorDataset lengths", lambda: TensorDataset(numpy.zeros((4, 2)), numpy.zeros(3)), ValueError,
         r"^TensorDataset: every array must have the same first dimension, got \[4, 3\]"),
    Case("TensorDataset nothing", lambda: TensorDataset(), ValueError,
         r"^TensorDataset: expected at least one array, got none"),
    Case("TensorDataset 0-D", lambda: TensorDataset(numpy.float32(1)), ValueError,
         r"^TensorDataset: array 0 is 0-dimensional"),
    Case("TensorDataset index", lambda: rows()[9], IndexError,
         r"^TensorDataset: index 9 is out of range for 4 samples"),
    Case("TensorDataset float index", lambda: rows()[1.5], TypeError,
         r"^TensorDataset: index must be an int, got float"),
    Case("Subset indices", lambda: Subset(rows(), [0, 7]), IndexError,
         r"^Subset: indices must lie in \[-4, 4\) for a dataset of 4 samples, got values from 0 to 7"),
    Case("Subset float indices", lambda: Subset(rows(), [0.5]), TypeError,
         r"^Subset: indices must be a 1-D sequence of ints, got an array of shape \(1,\) and dtype float64"),
]


# ----- the command line --------------------------------------------------------------------------------------------
class CommandFailed(Exception):
    """``striate ARGS`` exited with a non-zero status; the message is ``exit status S: <stderr>``."""


def cli(*argv):
    """A call running ``striate argv`` in this process; it raises CommandFailed with the exit status and stderr.

    Also checks the failure is reported as ONE line (no traceback) on stderr.
    """
    def call():
        from striate.tools.cli import main

        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                status = main(list(argv))
            except SystemExit as exit:
                status = exit.code
        text = err.getvalue().strip()
        assert "Traceback" not in text and len(text.splitlines()) == 1, text
        if status:
            raise CommandFailed(f"exit status {status}: {text}")
        return status
    return call


CLI = [
    Case("train --epochs 0", cli("train", "--epochs", "0"), CommandFailed,
         r"^exit status 2: striate train: error: argument --epochs: expected a positive integer, got 0"),
    Case("train --epochs word", cli("train", "--epochs", "ten"), CommandFailed,
         r"^exit status 2: striate train: error: argument --epochs: expected a positive integer, got 'ten'"),
    Case("train --batch-size -4", cli("train", "--batch-size", "-4"), CommandFailed,
         r"^exit status 2: striate train: error: argument --batch-size: expected a positive integer, got -4"),
    Case("train --lr word", cli("train", "--lr", "fast"), CommandFailed,
         r"^exit status 2: striate train: error: argument --lr: expected a positive number, got 'fast'"),
    Case("train --lr inf", cli("train", "--lr", "inf"), CommandFailed,
         r"^exit status 2: striate train: error: argument --lr: expected a positive finite number, got 'inf'"),
    Case("train --weight-decay -1", cli("train", "--weight-decay", "-1"), CommandFailed,
         r"^exit status 2: .*argument --weight-decay: expected a non-negative finite number, got '-1'"),
    Case("train --seed -1", cli("train", "--seed", "-1"), CommandFailed,
         r"^exit status 2: .*argument --seed: expected a non-negative integer, got -1"),
    Case("train --subset 0", cli("train", "--subset", "0"), CommandFailed,
         r"^exit status 2: .*argument --subset: expected a positive integer, got 0"),
    Case("train --model unknown", cli("train", "--model", "resnet"), CommandFailed,
         r"^exit status 2: .*argument --model: invalid choice: 'resnet'"),
    Case("train --optimizer unknown", cli("train", "--optimizer", "lbfgs"), CommandFailed,
         r"^exit status 2: .*argument --optimizer: invalid choice: 'lbfgs'"),
    Case("train --schedule unknown", cli("train", "--schedule", "step"), CommandFailed,
         r"^exit status 2: .*argument --schedule: invalid choice: 'step'"),
    Case("train --augment unknown", cli("train", "--augment", "rotate"), CommandFailed,
         r"^exit status 2: .*argument --augment: invalid choice: 'rotate'"),
    Case("train --data unknown", cli("train", "--data", "imagenet:/tmp"), CommandFailed,
         r"^exit status 2: .*argument --data: expected 'sample' \(the 12,000 .*; got 'imagenet:/tmp'"),
    Case("train --data without directory", cli("train", "--data", "mnist"), CommandFailed,
         r"^exit status 2: .*argument --data: 'mnist': give the directory of the IDX files, e.g. 'mnist:data/mnist'"),
    Case("train --resume missing", cli("train", "--resume", "/nonexistent/run"), CommandFailed,
         r"^exit status 1: striate train: error: no checkpoint at /nonexistent/run"),
    Case("train mnist directory missing", cli("train", "--data", "mnist:/nonexistent/mnist", "--epochs", "1"),
         CommandFailed, r"^exit status 1: striate train: error: MNIST: .* not found in directory '/nonexistent/mnist'"),
    Case("evaluate without checkpoint", cli("evaluate"), CommandFailed,
         r"^exit status 2: .*the following arguments are required: CHECKPOINT"),
    Case("evaluate --batch-size 0", cli("evaluate", "run", "--batch-size", "0"), CommandFailed,
         r"^exit status 2: .*argument --batch-size: expected a positive integer, got 0"),
    Case("evaluate missing checkpoint", cli("evaluate", "/nonexistent/run"), CommandFailed,
         r"^exit status 1: striate evaluate: error: no checkpoint at /nonexistent/run"),
    Case("predict without images", cli("predict", "run"), CommandFailed,
         r"^exit status 2: .*the following arguments are required: IMAGE"),
    Case("predict --top-k -1", cli("predict", "run", "x.png", "--top-k", "-1"), CommandFailed,
         r"^exit status 2: .*argument --top-k: expected a positive integer, got -1"),
    Case("predict --invert maybe", cli("predict", "run", "x.png", "--invert", "maybe"), CommandFailed,
         r"^exit status 2: .*argument --invert: invalid choice: 'maybe'"),
    Case("summary --input bad", cli("summary", "lenet5", "--input", "28x0"), CommandFailed,
         r"^exit status 2: .*argument --input: expected the input's shape without the batch dimension as positive "
         r"integers joined by 'x', such as 1x28x28 .*; got '28x0'"),
    Case("unknown command", cli("fly"), CommandFailed, r"^exit status 2: .*argument COMMAND: invalid choice: 'fly'"),
]

TABLES = {
    "conv": CONV, "pool": POOL, "linear": LINEAR, "losses": LOSSES, "normalization": NORMALIZATION,
    "reshape_broadcast": RESHAPE_BROADCAST, "optimizers": OPTIMIZERS, "load_state_dict": LOAD_STATE_DICT,
    "dataloader": DATALOADER, "cli": CLI,
}
