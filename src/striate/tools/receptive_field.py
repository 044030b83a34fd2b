"""Receptive field, jump and start of every tensor a forward pass computes: the classic recurrence, op by op.

Along one spatial dimension, a unit of a feature map sees ``rf`` consecutive input positions
(its receptive field), neighbouring units are ``jump`` input positions apart, and the field of
the first unit is centred on input coordinate ``start`` (input coordinates are pixel indices:
0 is the first pixel, so ``start`` can be negative where padding is read, and ends in .5 for
even windows). A window of ``k`` taps with stride ``s``, padding ``p`` and dilation ``dil``
maps them as

    j_out     = j_in · s
    r_out     = r_in + (k − 1)·dil · j_in
    start_out = start_in + ((k − 1)/2 · dil − p) · j_in

so unit ``o`` of the output sees the input positions
``start + o·jump − (rf − 1)/2 … start + o·jump + (rf − 1)/2`` (some of them may be padding).
Every spatial dimension has its own (rf, jump, start); a ``Field`` holds one tuple of each.

The rules, by kind of op:

- convolution and windowed pooling: the recurrence above (padding is the low side's, which
  is what places the first window);
- adaptive pooling: bin ``i`` covers ``[floor(i·D/O), ceil((i+1)·D/O))``; the window is the
  longest bin, the step the mean distance between bin starts (exact when ``O`` divides ``D``);
- ``F.pad``: shifts ``start`` by the low padding; ``rf`` and ``jump`` are unchanged;
- position-wise ops (activations, batch norm, dropout, arithmetic, casts): a unit sees what its
  inputs' units at the same position see. When they merge several inputs (a residual block's
  ``out + identity``, a channel concatenation), the field of the merge is the union of the
  branches' fields, measured on the first unit: from the lowest field start to the highest
  field end. When the branches are centred alike (a residual block's are) this is the largest
  branch ``rf``. Its jump is the smallest of the branches' jumps;
- ops that gather the spatial positions (``Flatten``/``reshape``, a mean or sum over them,
  a ``Linear`` layer across the last one): each unit sees the union over all ``D`` positions,
  ``r + (D − 1)·j`` centred on ``start + (D − 1)/2·j`` (as a pool with a window of ``D`` would);
- any other op that keeps a spatial layout, or a spatial op whose input has lost it, makes
  the field unknown (``UNKNOWN``) from there on, rather than guessed.

Tensors a forward pass does not compute (parameters, constants) have no field and do not
take part in merges.
"""
import sys
from typing import NamedTuple

import numpy

from striate.autograd import arithmetic, elementwise, reductions, shaping
from striate.autograd.tensor import _Cast
from striate.ops import activation, conv, dropout, linear, normalization, padding, pool


class Field(NamedTuple):
    """Receptive field size, jump and start of one tensor's units: one entry per spatial dimension."""

    rf: tuple
    jump: tuple
    start: tuple


class _Unknown:
    """The field of a tensor whose positions an op moved in a way the rules do not describe."""

    def __repr__(self):
        return "UNKNOWN"


UNKNOWN = _Unknown()


class Window(NamedTuple):
    """One spatial dimension of a windowed op: ``span = (k − 1)·dil``, ``step = s``, and ``offset``,
    the centre of the first window in input positions, ``(k − 1)/2·dil − p``."""

    span: float
    step: float
    offset: float

    @classmethod
    def of(cls, kernel, stride, pad_lo, dilation):
        return cls((kernel - 1) * dilation, stride, (kernel - 1) * dilation / 2 - pad_lo)

    @classmethod
    def from_intervals(cls, first, last, size):
        """The window of an op whose output ``o`` reads input positions ``first[o] … last[o]`` (inclusive)."""
        first, last = numpy.asarray(first), numpy.asarray(last)
        count = len(first)
        step = (first[-1] - first[0]) / (count - 1) if count > 1 else size
        return cls(int((last - first).max()), float(step), float(first[0] + last[0]) / 2)


def input_field(n):
    """The model input's field: every unit sees itself, ``rf = jump = 1``, ``start = 0``."""
    return Field((1,) * n, (1,) * n, (0,) * n)


def through(field, windows):
    """The field after an op with one ``Window`` per spatial dimension (the classic recurrence)."""
    return Field(tuple(r + w.span * j for r, j, w in zip(field.rf, field.jump, windows)),
                 tuple(j * w.step for j, w in zip(field.jump, windows)),
                 tuple(s + w.offset * j for s, j, w in zip(field.start, field.jump, windows)))


def gather(field, sizes, dims=None):
    """The field after every position of spatial dimensions ``dims`` (all by default) is gathered into one unit."""
    dims = range(len(field.rf)) if dims is None else dims
    windows = [Window(size - 1, size, (size - 1) / 2) if d in dims else Window(0, 1, 0)
               for d, size in enumerate(sizes)]
    return through(field, windows)


def union(fields):
    """The field of a unit that merges units with these fields (``None`` entries take no part)."""
    fields = [f for f in fields if f is not None]
    if not fields:
        return None
    if any(f is UNKNOWN for f in fields):
        return UNKNOWN
    if len(fields) == 1:
        return fields[0]
    rf, jump, start = [], [], []
    for d in range(len(fields[0].rf)):
        lo = min(f.start[d] - (f.rf[d] - 1) / 2 for f in fields)
        hi = max(f.start[d] + (f.rf[d] - 1) / 2 for f in fields)
        rf.append(hi - lo + 1)
        start.append((lo + hi) / 2)
        jump.append(min(f.jump[d] for f in fields))
    return Field(tuple(rf), tuple(jump), tuple(start))


# ----- the rules, one per kind of op ---------------------------------------------------------

def _spatial_input(inputs, fields, n):
    """``(x, field)`` of an op's first input when it has a spatial layout ``(N, C, *D)``; else the
    field to return as it is (``None`` or ``UNKNOWN``) in place of ``x``."""
    x, field = inputs[0], fields[0]
    if field is None or field is UNKNOWN:
        return None, field
    if numpy.ndim(x) != n + 2:
        return None, UNKNOWN
    return x, field


def _windowed(windows_of):
    def rule(fn, inputs, params, result, fields, n):
        x, field = _spatial_input(inputs, fields, n)
        if x is None:
            return field
        windows = windows_of(fn, inputs, params, x)
        return UNKNOWN if windows is None else through(field, windows)
    return rule


def _conv_windows(fn, inputs, params, x):
    kernel = inputs[1].shape[2:]
    return [Window.of(k, s, p, dil) for k, s, p, dil
            in zip(kernel, params["stride"], params["pad_lo"], params["dilation"])]


def _pool_windows(windows):
    return [Window.of(k, s, p, dil) for k, s, p, dil
            in zip(windows.kernel, windows.stride, windows.padding, windows.dilation)]


def _avg_pool_windows(fn, inputs, params, x):
    return _pool_windows(params["windows"])


def _bin_windows(sizes, out):
    windows = []
    for size, count in zip(sizes, out):
        first, end = pool._bins(size, count)
        windows.append(Window.from_intervals(first, end - 1, size))
    return windows


def pooling_call():
    """``(op name, windows or None)`` of the pooling function that called ``_Chosen.apply``.

    ``_Chosen`` (the differentiable pick behind max, min and adaptive max pooling) receives the
    chosen elements, not the windows, so the windows are read from the local variables of the
    calling function in ``striate.ops.pool`` (``op`` and ``windows``). ``(None, None)`` when
    there is no such caller.
    """
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") != pool.__name__:
        frame = frame.f_back
    if frame is None:
        return None, None
    local = frame.f_locals
    op = local.get("op")
    return (op if isinstance(op, str) else None), local.get("windows")


def _chosen_windows(fn, inputs, params, x):
    op, windows = pooling_call()
    if op is not None and op.startswith("adaptive"):
        return _bin_windows(x.shape[2:], fn.indices.shape[2:])
    if windows is not None:
        return _pool_windows(windows)
    return None


def _contract_windows(fn, inputs, params, x):
    windows = []
    for matrix, size in zip(params["matrices"], x.shape[2:]):
        reads = matrix != 0                                            # (O, D)
        first = reads.argmax(axis=1)
        last = size - 1 - reads[:, ::-1].argmax(axis=1)
        windows.append(Window.from_intervals(first, last, size))
    return windows


def _pad_windows(fn, inputs, params, x):
    lo = params["lo"]
    skipped = x.ndim - len(lo)                                         # axes before the padded ones
    return [Window(0, 1, -lo[axis - skipped] if axis >= skipped else 0) for axis in range(2, x.ndim)]


def _position_wise(fn, inputs, params, result, fields, n):
    return union(fields)


def _has_layout(field, x, n):
    return field is not None and field is not UNKNOWN and numpy.ndim(x) == n + 2


def _gather_axes(axes_of):
    """A reduction: gathers the spatial axes it reduces over."""
    def rule(fn, inputs, params, result, fields, n):
        x, field = inputs[0], fields[0]
        if not _has_layout(field, x, n):
            return field
        axes = {a % x.ndim for a in axes_of(params)}
        return gather(field, x.shape[2:], [d for d in range(n) if d + 2 in axes])
    return rule


def _linear(fn, inputs, params, result, fields, n):
    x, field = inputs[0], fields[0]
    if not _has_layout(field, x, n):
        return field
    return gather(field, x.shape[2:], [n - 1])                         # it mixes the last axis


def _reshape(fn, inputs, params, result, fields, n):
    x, field = inputs[0], fields[0]
    if not _has_layout(field, x, n):
        return field
    if result.ndim == n + 2 and result.shape[2:] == x.shape[2:]:
        return field                                                   # only batch and channel axes moved
    return gather(field, x.shape[2:])


def _permute(fn, inputs, params, result, fields, n):
    x, field = inputs[0], fields[0]
    if not _has_layout(field, x, n):
        return field
    return field if tuple(params["dims"][2:]) == tuple(range(2, n + 2)) else UNKNOWN


def _same_positions(fn, inputs, params, result, fields, n):
    """Indexing: the field survives when the spatial axes are untouched."""
    x, field = inputs[0], fields[0]
    if not _has_layout(field, x, n):
        return field
    return field if result.ndim == n + 2 and result.shape[2:] == x.shape[2:] else UNKNOWN


def _concatenate(fn, inputs, params, result, fields, n):
    if result.ndim == n + 2 and params.get("axis", 0) % result.ndim >= 2:
        spatial = [f for f, x in zip(fields, inputs) if _has_layout(f, x, n)]
        if spatial:
            return UNKNOWN                                             # joined along a spatial axis
    return union(fields)


def _softmax(fn, inputs, params, result, fields, n):
    x, field = inputs[0], fields[0]
    if not _has_layout(field, x, n):
        return field
    axis = params["axis"] % x.ndim
    return gather(field, x.shape[2:], [axis - 2]) if axis >= 2 else field


def _matmul(fn, inputs, params, result, fields, n):
    if any(_has_layout(f, x, n) for f, x in zip(fields, inputs)):
        return UNKNOWN
    return union(fields)


_RULES = {
    conv.ConvND: _windowed(_conv_windows),
    pool._AvgPool: _windowed(_avg_pool_windows),
    pool._Chosen: _windowed(_chosen_windows),
    pool._Contract: _windowed(_contract_windows),
    padding.ConstantPad: _windowed(_pad_windows),
    padding.IndexPad: _windowed(_pad_windows),
    linear.Linear: _linear,
    shaping.Reshape: _reshape,
    shaping.Permute: _permute,
    shaping.GetItem: _same_positions,
    shaping.Expand: _position_wise,
    shaping.Clone: _position_wise,
    shaping.Cat: _concatenate,
    shaping.Stack: _concatenate,
    activation.Softmax: _softmax,
    activation.LogSoftmax: _softmax,
    arithmetic.MatMul: _matmul,
    reductions.ExtremeAlong: _gather_axes(lambda params: (params["axis"],)),
    _Cast: _position_wise,
}
for _reduction in (reductions.Sum, reductions.Mean, reductions.Extreme, reductions.Var, reductions.Std):
    _RULES[_reduction] = _gather_axes(lambda params: params["axes"])
for _op in (activation.ReLU, activation.LeakyReLU, activation.ELU, activation.GELU, activation.Sigmoid,
            activation.Tanh, activation.Softplus, dropout.Dropout, normalization.BatchNorm,
            arithmetic.Add, arithmetic.Sub, arithmetic.Mul, arithmetic.Div, arithmetic.Pow, arithmetic.PowScalar,
            arithmetic.Neg, elementwise.Exp, elementwise.Log, elementwise.Sqrt, elementwise.Abs, elementwise.Clamp):
    _RULES[_op] = _position_wise


def field_after(fn, inputs, params, result, fields, n):
    """The field of ``result``, computed by Function ``fn`` from ``inputs`` whose fields are ``fields``.

    ``n`` is the number of spatial dimensions of the model input. Returns a ``Field``,
    ``UNKNOWN``, or ``None`` when no input has a field.
    """
    if all(f is None for f in fields):
        return None
    rule = _RULES.get(type(fn))
    if rule is not None:
        return rule(fn, inputs, params, result, fields, n)
    # An op without a rule: if its result has no spatial layout, each unit can at most see
    # everything its inputs saw; otherwise where its units look is unknown.
    if result.ndim == n + 2:
        return UNKNOWN
    return union([gather(f, x.shape[2:]) if _has_layout(f, x, n) else f for f, x in zip(fields, inputs)])


__all__ = ["Field", "UNKNOWN", "Window", "input_field", "through", "gather", "union", "field_after",
           "pooling_call"]
