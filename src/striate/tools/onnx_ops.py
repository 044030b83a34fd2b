"""ONNX for each op striate records: the graph being built and one converter per ``Function``.

``striate.tools.export.to_onnx`` traces a model and hands each recorded call to the converter
that ``CONVERTERS`` maps its ``Function`` class to; the converter appends the ONNX node(s) that
compute the same values to a ``Graph``. A call whose inputs are all constants never gets here:
export folds it into a constant first.
"""

import functools
import math
import numbers

import numpy

from striate.autograd import arithmetic, elementwise, reductions, shaping
from striate.autograd.tensor import _Cast
from striate.ops import activation, conv, dropout, linear, normalization, padding, pool

_INT64_MIN = -(2 ** 63)


def describe(call):
    """``op NAME in module M``: how errors name a recorded call."""
    name = type(call.fn).__name__
    if call.pooling and call.pooling[0]:
        name = f"{call.pooling[0]} ({name})"
    return f"op {name} in module {call.module!r}" if call.module else f"op {name}"


# ----- the graph ------------------------------------------------------------------------------

class Graph:
    """ONNX nodes and initializers under construction; values are names, with their batch axis."""

    def __init__(self, onnx, opset, batch_dynamic, op):
        self.onnx, self.helper = onnx, onnx.helper
        self.opset, self.batch_dynamic, self.op = opset, batch_dynamic, op
        self.nodes, self.initializers = [], []
        self.batch = {}                    # value name → its batch axis (or None)
        self.constant_names = {}           # (id(tensor or array), dtype) → initializer name
        self.parameter_names = {}          # id(parameter or buffer, or its array) → its state-dict name
        self.taken = {"input", "output"}   # value names in use (the graph's input and output are reserved)
        self.keep = []                     # arrays named by id, kept alive
        self.count = 0
        self.scope = ""

    def fresh(self, hint):
        self.count += 1
        while f"{hint}_{self.count}" in self.taken:
            self.count += 1
        return f"{hint}_{self.count}"

    def node(self, op_type, inputs, batch_axis=None, outputs=1, **attrs):
        names = [self.fresh(op_type.lower()) for _ in range(outputs)]
        prefix = f"{self.scope}/" if self.scope else ""
        self.nodes.append(self.helper.make_node(op_type, list(inputs), names, name=f"{prefix}{op_type}_{self.count}",
                                                **attrs))
        for name in names:
            self.batch[name] = batch_axis
        self.taken.update(names)
        return names[0] if outputs == 1 else names

    def const(self, value, hint="const", dtype=None, key=None):
        """An initializer holding ``value`` (cast to ``dtype``); ``key``: the tensor or array it comes
        from, so a parameter used twice is stored once, under its ``state_dict`` name."""
        array = numpy.asarray(value)
        if dtype is not None:
            array = array.astype(dtype, copy=False)
        if key is not None:
            hint = self.parameter_names.get(id(key), hint)
            cached = self.constant_names.get((id(key), array.dtype))
            if cached is not None:
                return cached
        name = hint if hint not in self.taken else self.fresh(hint)
        self.taken.add(name)
        self.initializers.append((name, numpy.ascontiguousarray(array)))
        self.batch[name] = None
        if key is not None:
            self.constant_names[(id(key), array.dtype)] = name
            self.keep.append(key)
        return name

    def ints(self, values, hint="shape"):
        return self.const(numpy.asarray(values, dtype=numpy.int64), hint)

    def reduce(self, op_type, x, axes, keepdims, batch_axis=None):
        """A Reduce* node over ``axes`` (an attribute before opset 18, an input from then on; ReduceSum from 13)."""
        axes = [int(a) for a in axes]
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.node(op_type, [x, self.ints(axes, "axes")], batch_axis, keepdims=int(keepdims))
        return self.node(op_type, [x], batch_axis, axes=axes, keepdims=int(keepdims))

    def refuse(self, call, why):
        raise ValueError(f"{self.op}: cannot export {describe(call)}: {why}")


class Value:
    """An op's input: a graph value (``name``) or a constant array (``array``), with its shape."""

    def __init__(self, name=None, array=None, tensor=None, shape=()):
        self.name, self.array, self.tensor, self.shape = name, array, tensor, tuple(shape)

    @property
    def dynamic(self):
        return self.name is not None


def _aligned(axis, in_ndim, out_ndim):
    """Where axis ``axis`` of an input of rank ``in_ndim`` lands in a broadcast result of rank ``out_ndim``."""
    return None if axis is None else out_ndim - (in_ndim - axis)


def _batch_of(g, values, out_ndim):
    for v in values:
        if v is not None and v.dynamic and g.batch.get(v.name) is not None:
            return _aligned(g.batch[v.name], len(v.shape), out_ndim)
    return None


def _name(g, v, dtype=None, hint="const"):
    """A graph name for input ``v`` (an initializer for a constant, cast to ``dtype`` when given)."""
    if v.dynamic:
        return v.name
    return g.const(v.array, hint, dtype=dtype, key=v.tensor)


# ----- converters: one per Function -----------------------------------------------------------

def _conv(g, call, v):
    x, w, b = v
    p = call.params
    inputs = [x.name, _name(g, w, hint="weight")] + ([_name(g, b, hint="bias")] if b is not None else [])
    return g.node("Conv", inputs, 0, kernel_shape=list(w.shape[2:]), strides=list(p["stride"]),
                  pads=list(p["pad_lo"]) + list(p["pad_hi"]), dilations=list(p["dilation"]), group=int(p["groups"]))


def _linear(g, call, v):
    x, w, b = v
    batch = g.batch.get(x.name)
    if len(x.shape) == 2:
        inputs = [x.name, _name(g, w, hint="weight")] + ([_name(g, b, hint="bias")] if b is not None else [])
        return g.node("Gemm", inputs, batch, transB=1)
    wt = g.const(w.array.T, "weight_t") if not w.dynamic else g.node("Transpose", [w.name], None, perm=[1, 0])
    y = g.node("MatMul", [x.name, wt], batch)
    return g.node("Add", [y, _name(g, b, hint="bias")], batch) if b is not None else y


def _batch_norm(g, call, v):
    x, gamma, beta = v
    p = call.params
    if p["training"]:
        g.refuse(call, "batch norm in training mode normalises by the batch's own statistics; export runs the "
                       "model in eval mode, so this batch_norm was called with training=True in forward (or "
                       "without running statistics: track_running_stats=False)")
    dtype, c = call.result.dtype, x.shape[1]
    if (gamma is not None and gamma.dynamic) or (beta is not None and beta.dynamic):
        g.refuse(call, "its weight or bias is computed from the input")
    scale = _name(g, gamma, dtype, "bn_scale") if gamma is not None else g.const(numpy.ones(c, dtype), "bn_scale")
    shift = _name(g, beta, dtype, "bn_bias") if beta is not None else g.const(numpy.zeros(c, dtype), "bn_bias")
    inputs = [x.name, scale, shift,
              g.const(p["running_mean"], "bn_mean", dtype=dtype, key=p["running_mean"]),
              g.const(p["running_var"], "bn_var", dtype=dtype, key=p["running_var"])]
    return g.node("BatchNormalization", inputs, g.batch.get(x.name), epsilon=float(p["eps"]))


def _unary(op_type, **attrs):
    def convert(g, call, v):
        return g.node(op_type, [v[0].name], g.batch.get(v[0].name), **attrs)
    return convert


def _scalar(g, value, dtype, hint="scalar"):
    return g.const(numpy.asarray(value, dtype=dtype), hint)


def _leaky_relu(g, call, v):
    return g.node("LeakyRelu", [v[0].name], g.batch.get(v[0].name), alpha=float(call.params["negative_slope"]))


def _elu(g, call, v):
    return g.node("Elu", [v[0].name], g.batch.get(v[0].name), alpha=float(call.params["alpha"]))


def _gelu(g, call, v):
    x, dtype, batch = v[0].name, call.result.dtype, g.batch.get(v[0].name)
    approximate = call.params["approximate"]
    if g.opset >= 20:
        return g.node("Gelu", [x], batch, approximate=approximate)
    if approximate == "tanh":   # x·σ(2u), u = √(2/π)(x + 0.044715x³), the form striate computes
        cube = g.node("Mul", [g.node("Mul", [x, x], batch), x], batch)
        inner = g.node("Add", [x, g.node("Mul", [cube, _scalar(g, activation._TANH_CUBIC, dtype)], batch)], batch)
        scaled = g.node("Mul", [inner, _scalar(g, 2 * activation._TANH_SCALE, dtype)], batch)
        return g.node("Mul", [x, g.node("Sigmoid", [scaled], batch)], batch)
    erf = g.node("Erf", [g.node("Mul", [x, _scalar(g, math.sqrt(0.5), dtype)], batch)], batch)
    cdf = g.node("Mul", [g.node("Add", [erf, _scalar(g, 1, dtype)], batch), _scalar(g, 0.5, dtype)], batch)
    return g.node("Mul", [x, cdf], batch)


def _softplus(g, call, v):
    x, dtype, batch = v[0].name, call.result.dtype, g.batch.get(v[0].name)
    beta, threshold = call.params["beta"], call.params["threshold"]
    z = g.node("Mul", [x, _scalar(g, beta, dtype)], batch) if beta != 1 else x
    soft = g.node("Softplus", [z], batch)
    if beta != 1:
        soft = g.node("Div", [soft, _scalar(g, beta, dtype)], batch)
    linear_part = g.node("Greater", [z, _scalar(g, threshold, dtype)], batch)
    return g.node("Where", [linear_part, x, soft], batch)


def _along(op_type):
    def convert(g, call, v):
        return g.node(op_type, [v[0].name], g.batch.get(v[0].name), axis=int(call.params["axis"]))
    return convert


def _dropout(g, call, v):
    g.refuse(call, "dropout is active (training=True): export runs the model in eval mode, so pass "
                   "training=self.training to F.dropout in forward")


def _binary(op_type):
    def convert(g, call, v):
        dtype = call.result.dtype
        names = [_name(g, a, dtype=dtype if not a.dynamic else None) for a in v]
        return g.node(op_type, names, _batch_of(g, v, call.result.ndim))
    return convert


def _pow_scalar(g, call, v):
    x = v[0]
    exponent = _scalar(g, call.params["exponent"], call.result.dtype, "exponent")
    return g.node("Pow", [x.name, exponent], g.batch.get(x.name))


def _matmul(g, call, v):
    names = [_name(g, a) for a in v]
    out = call.result.ndim
    batch = None
    for a in v:
        axis = g.batch.get(a.name) if a.dynamic else None
        if axis is not None:
            batch = axis if len(a.shape) == 2 and out == 2 else _aligned(axis, len(a.shape), out)
            break
    return g.node("MatMul", names, batch)


def _clamp(g, call, v):
    x, dtype = v[0], call.result.dtype
    lo, hi = call.params.get("min"), call.params.get("max")
    inputs = [x.name, "" if lo is None else _scalar(g, lo, dtype, "min"),
              "" if hi is None else _scalar(g, hi, dtype, "max")]
    while inputs[-1] == "":
        inputs.pop()
    return g.node("Clip", inputs, g.batch.get(x.name))


def _reduction(op_type, largest_picks=None):
    def convert(g, call, v):
        x = v[0]
        p = call.params
        kind = op_type
        if largest_picks:
            kind = "ReduceMax" if p.get("largest", True) else "ReduceMin"
        axes = (p["axis"],) if "axis" in p else tuple(p["axes"]) or tuple(range(len(x.shape)))
        axes = tuple(a % max(len(x.shape), 1) for a in axes)
        keep = bool(p.get("keepdim", False))
        batch = g.batch.get(x.name)
        if batch is not None:
            batch = None if batch in axes else (batch if keep else batch - sum(a < batch for a in axes))
        return g.reduce(kind, x.name, axes, keep, batch)
    return convert


def _cast(g, call, v):
    to = g.helper.np_dtype_to_tensor_dtype(numpy.dtype(call.result.dtype))
    return g.node("Cast", [v[0].name], g.batch.get(v[0].name), to=to)


# ----- shapes ---------------------------------------------------------------------------------

def _reshape(g, call, v):
    x, out = v[0], tuple(call.result.shape)
    batch = g.batch.get(x.name)
    if batch is None or not g.batch_dynamic:
        return g.node("Reshape", [x.name, g.ints(out)], None)
    if batch == 0 and out and out[0] == x.shape[0]:
        return g.node("Reshape", [x.name, g.ints((0,) + out[1:])], 0)   # 0: keep the input's (batch) size
    g.refuse(call, f"the reshape {x.shape} → {out} mixes the batch dimension (axis {batch}) with others; "
                   f"export with batch_dynamic=False for a fixed batch size")


def _permute(g, call, v):
    x, dims = v[0], [int(d) for d in call.params["dims"]]
    batch = g.batch.get(x.name)
    return g.node("Transpose", [x.name], None if batch is None else dims.index(batch), perm=dims)


def _expand(g, call, v):
    x, shape = v[0], list(call.result.shape)
    batch = _aligned(g.batch.get(x.name), len(x.shape), len(shape))
    if batch is not None and g.batch_dynamic:
        shape[batch] = 1               # Expand broadcasts both ways: 1 keeps the input's batch size
    return g.node("Expand", [x.name, g.ints(shape)], batch)


def _clone(g, call, v):
    return g.node("Identity", [v[0].name], g.batch.get(v[0].name))


def _cat(g, call, v):
    axis = int(call.params["axis"]) % call.result.ndim
    batch = _batch_of(g, v, call.result.ndim)
    if batch == axis and g.batch_dynamic:
        g.refuse(call, f"it concatenates along the batch dimension (axis {axis}); export with batch_dynamic=False")
    return g.node("Concat", [_name(g, a, dtype=call.result.dtype if not a.dynamic else None) for a in v], batch,
                  axis=axis)


def _stack(g, call, v):
    axis = int(call.params["axis"]) % call.result.ndim
    parts, batch = [], None
    for a in v:
        name = _name(g, a, dtype=call.result.dtype if not a.dynamic else None)
        parts.append(g.node("Unsqueeze", [name, g.ints([axis], "axes")], None))
        if a.dynamic and g.batch.get(a.name) is not None and batch is None:
            axis_in = g.batch[a.name]
            batch = axis_in + (axis <= axis_in)
    if batch == axis and g.batch_dynamic:
        g.refuse(call, f"it stacks along the batch dimension (axis {axis}); export with batch_dynamic=False")
    return g.node("Concat", parts, batch, axis=axis)


def _getitem(g, call, v):
    x, index = v[0], call.params["index"]
    parts = list(index) if isinstance(index, tuple) else [index]
    simple = all(p is None or p is Ellipsis or isinstance(p, slice)
                 or (isinstance(p, numbers.Integral) and not isinstance(p, bool)) for p in parts)
    if not simple:
        g.refuse(call, "indexing with arrays, tensors or masks (advanced indexing) has no exact ONNX mapping "
                       "here; use slices, ints and None")
    used = sum(p is not None and p is not Ellipsis for p in parts)
    if Ellipsis in parts:
        at = parts.index(Ellipsis)
        parts = parts[:at] + [slice(None)] * (len(x.shape) - used) + parts[at + 1:]
    parts += [slice(None)] * (len(x.shape) - used - (Ellipsis in parts))
    batch = g.batch.get(x.name)
    starts, ends, axes, steps, squeeze, out_axis, new_batch, unsqueeze = [], [], [], [], [], 0, None, []
    axis = 0
    for p in parts:
        if p is None:
            unsqueeze.append(out_axis)
            out_axis += 1
            continue
        size = x.shape[axis]
        if isinstance(p, slice):
            start, stop, step = p.indices(size)
            if (start, stop, step) != (0, size, 1):
                if axis == batch and g.batch_dynamic:
                    g.refuse(call, f"it slices the batch dimension (axis {axis}) with {p}; export with "
                                   f"batch_dynamic=False")
                starts.append(start)
                ends.append(stop if stop >= 0 else _INT64_MIN)   # a negative stop from indices(): before 0
                axes.append(axis)
                steps.append(step)
            if axis == batch:
                new_batch = out_axis
            out_axis += 1
        else:
            i = int(p) % size
            if axis == batch and g.batch_dynamic:
                g.refuse(call, f"it picks element {p} of the batch dimension; export with batch_dynamic=False")
            starts.append(i)
            ends.append(i + 1)
            axes.append(axis)
            steps.append(1)
            squeeze.append(axis)
        axis += 1
    y = x.name
    if axes:
        y = g.node("Slice", [y, g.ints(starts, "starts"), g.ints(ends, "ends"), g.ints(axes, "axes"),
                             g.ints(steps, "steps")], batch)
    if squeeze:
        y = g.node("Squeeze", [y, g.ints(squeeze, "axes")], None)
    if unsqueeze:
        y = g.node("Unsqueeze", [y, g.ints(unsqueeze, "axes")], None)
    if y == x.name:
        y = g.node("Identity", [y], None)
    g.batch[y] = new_batch
    return y


def _pad_crop(g, x, lo, hi, batch):
    """Slice off the negative widths of ``lo``/``hi`` (per trailing axis); returns ``(x, lo, hi)`` non-negative."""
    rank, k = len(x.shape), len(lo)
    axes, starts, ends = [], [], []
    for i, (a, b) in enumerate(zip(lo, hi)):
        if a < 0 or b < 0:
            axis = rank - k + i
            axes.append(axis)
            starts.append(max(-a, 0))
            ends.append(x.shape[axis] - max(-b, 0))
    name = x.name
    if axes:
        name = g.node("Slice", [name, g.ints(starts, "starts"), g.ints(ends, "ends"), g.ints(axes, "axes")], batch)
    return name, [max(a, 0) for a in lo], [max(b, 0) for b in hi]


def _pad_node(g, name, rank, lo, hi, mode, batch, value=None, dtype=None):
    k = len(lo)
    if not any(lo) and not any(hi):
        return name
    pads = [0] * (rank - k) + list(lo) + [0] * (rank - k) + list(hi)
    inputs = [name, g.ints(pads, "pads")]
    if mode == "constant":
        inputs.append(_scalar(g, value, dtype, "pad_value"))
    return g.node("Pad", inputs, batch, mode=mode)


def _constant_pad(g, call, v):
    x, p = v[0], call.params
    batch = g.batch.get(x.name)
    rank, k = len(x.shape), len(p["lo"])
    if batch is not None and batch >= rank - k and (p["lo"][batch - rank + k] or p["hi"][batch - rank + k]):
        if g.batch_dynamic:
            g.refuse(call, "it pads the batch dimension; export with batch_dynamic=False")
    return _pad_node(g, x.name, rank, p["lo"], p["hi"], "constant", batch, p["value"], call.result.dtype)


def _index_pad(g, call, v):
    x, p = v[0], call.params
    batch = g.batch.get(x.name)
    name, lo, hi = _pad_crop(g, x, p["lo"], p["hi"], batch)
    rank, k = len(x.shape), len(lo)
    if p["mode"] != "circular":
        return _pad_node(g, name, rank, lo, hi, {"reflect": "reflect", "replicate": "edge"}[p["mode"]], batch)
    sizes = [d - max(-a, 0) - max(-b, 0) for d, a, b in zip(x.shape[rank - k:], p["lo"], p["hi"])]
    for i, (a, b, size) in enumerate(zip(lo, hi, sizes)):    # wrap around: the tail before, the head after
        if not a and not b:
            continue
        axis = rank - k + i
        pieces = []
        if a:
            pieces.append(g.node("Slice", [name, g.ints([size - a], "starts"), g.ints([size], "ends"),
                                           g.ints([axis], "axes")], batch))
        pieces.append(name)
        if b:
            pieces.append(g.node("Slice", [name, g.ints([0], "starts"), g.ints([b], "ends"),
                                           g.ints([axis], "axes")], batch))
        name = g.node("Concat", pieces, batch, axis=axis)
    return name


# ----- pooling --------------------------------------------------------------------------------

def _ceil_pad_hi(windows):
    """High padding that holds every window (ceil mode's overhang included)."""
    return list(windows.pad_hi())


def _max_windows(g, x, windows, dtype, batch):
    """MaxPool over ``windows`` of ``x`` (a name of rank n + 2)."""
    n = len(windows.kernel)
    hi = _ceil_pad_hi(windows)
    attrs = dict(kernel_shape=list(windows.kernel), strides=list(windows.stride), dilations=list(windows.dilation))
    if hi == list(windows.padding):
        return g.node("MaxPool", [x], batch, pads=list(windows.padding) * 2, **attrs)
    # Ceil mode: the overhanging windows read padding explicitly, -inf, which never wins.
    padded = _pad_node(g, x, n + 2, list(windows.padding), hi, "constant", batch, -numpy.inf, dtype)
    return g.node("MaxPool", [padded], batch, **attrs)


def _chosen(g, call, v):
    x = v[0]
    name, windows = call.pooling or (None, None)
    batch, dtype = g.batch.get(x.name), call.result.dtype
    if name is None:
        g.refuse(call, "a chosen-element op outside striate's pooling functions")
    if name.startswith("adaptive"):
        return _adaptive(g, call, x, "max")
    if windows is None:
        g.refuse(call, f"the windows of {name} could not be read")
    if name.startswith("min"):       # min over a window = −max over the negated window
        negated = g.node("Neg", [x.name], batch)
        return g.node("Neg", [_max_windows(g, negated, windows, dtype, batch)], batch)
    return _max_windows(g, x.name, windows, dtype, batch)


def _avg_pool(g, call, v):
    x, windows, divisor = v[0], call.params["windows"], call.params["divisor"]
    batch, dtype = g.batch.get(x.name), call.result.dtype
    n = len(windows.kernel)
    taps = math.prod(windows.kernel)
    hi = _ceil_pad_hi(windows)
    plain = hi == list(windows.padding) and all(d == 1 for d in windows.dilation)
    if plain:
        inside = functools.reduce(numpy.multiply.outer, [windows.taps_inside(d, 0, s)
                                                         for d, s in enumerate(windows.size)])
        for include, expected in ((1, numpy.full(windows.out, taps)), (0, inside)):
            if numpy.array_equal(numpy.broadcast_to(divisor, windows.out), expected):
                return g.node("AveragePool", [x.name], batch, kernel_shape=list(windows.kernel),
                              strides=list(windows.stride), pads=list(windows.padding) * 2,
                              count_include_pad=include)
    # Any other divisor (ceil mode's clipped windows, dilation, divisor_override): window sums as a
    # depthwise convolution with ones over the explicitly padded input, then the exact divisor.
    channels = x.shape[1]
    padded = _pad_node(g, x.name, n + 2, list(windows.padding), hi, "constant", batch, 0, dtype)
    ones = g.const(numpy.ones((channels, 1) + tuple(windows.kernel), dtype), "window_ones")
    sums = g.node("Conv", [padded, ones], batch, kernel_shape=list(windows.kernel), strides=list(windows.stride),
                  dilations=list(windows.dilation), group=int(channels))
    return g.node("Div", [sums, g.const(numpy.asarray(divisor, dtype), "divisor")], batch)


def _adaptive(g, call, x, kind):
    """Adaptive average or max pooling of ``x`` to the recorded output size, exactly."""
    size, out = tuple(x.shape[2:]), tuple(call.result.shape[2:])
    batch = g.batch.get(x.name)
    if all(o == 1 for o in out):
        return g.node("GlobalAveragePool" if kind == "avg" else "GlobalMaxPool", [x.name], batch)
    if all(d % o == 0 for d, o in zip(size, out)):
        kernel = [d // o for d, o in zip(size, out)]
        attrs = dict(kernel_shape=kernel, strides=kernel)
        return g.node("AveragePool" if kind == "avg" else "MaxPool", [x.name], batch, **attrs)
    # Unequal or overlapping bins: separable, one axis at a time, each bin a slice reduced to one.
    reduce = "ReduceMean" if kind == "avg" else "ReduceMax"
    name = x.name
    for axis, (d, o) in enumerate(zip(size, out), start=2):
        if d == o:
            continue
        start, end = pool._bins(d, o)
        bins = [g.reduce(reduce, g.node("Slice", [name, g.ints([int(s)], "starts"), g.ints([int(e)], "ends"),
                                                  g.ints([axis], "axes")], batch), [axis], True, batch)
                for s, e in zip(start.tolist(), end.tolist())]
        name = g.node("Concat", bins, batch, axis=axis)
    return name if name != x.name else g.node("Identity", [name], batch)


def _contract(g, call, v):
    return _adaptive(g, call, v[0], "avg")


CONVERTERS = {
    conv.ConvND: _conv,
    linear.Linear: _linear,
    normalization.BatchNorm: _batch_norm,
    activation.ReLU: _unary("Relu"),
    activation.LeakyReLU: _leaky_relu,
    activation.ELU: _elu,
    activation.GELU: _gelu,
    activation.Sigmoid: _unary("Sigmoid"),
    activation.Tanh: _unary("Tanh"),
    activation.Softplus: _softplus,
    activation.Softmax: _along("Softmax"),
    activation.LogSoftmax: _along("LogSoftmax"),
    dropout.Dropout: _dropout,
    padding.ConstantPad: _constant_pad,
    padding.IndexPad: _index_pad,
    pool._Chosen: _chosen,
    pool._AvgPool: _avg_pool,
    pool._Contract: _contract,
    shaping.Reshape: _reshape,
    shaping.Permute: _permute,
    shaping.Expand: _expand,
    shaping.GetItem: _getitem,
    shaping.Cat: _cat,
    shaping.Stack: _stack,
    shaping.Clone: _clone,
    _Cast: _cast,
    arithmetic.Add: _binary("Add"),
    arithmetic.Sub: _binary("Sub"),
    arithmetic.Mul: _binary("Mul"),
    arithmetic.Div: _binary("Div"),
    arithmetic.Pow: _binary("Pow"),
    arithmetic.PowScalar: _pow_scalar,
    arithmetic.Neg: _unary("Neg"),
    arithmetic.MatMul: _matmul,
    elementwise.Exp: _unary("Exp"),
    elementwise.Log: _unary("Log"),
    elementwise.Sqrt: _unary("Sqrt"),
    elementwise.Abs: _unary("Abs"),
    elementwise.Clamp: _clamp,
    reductions.Sum: _reduction("ReduceSum"),
    reductions.Mean: _reduction("ReduceMean"),
    reductions.Extreme: _reduction(None, largest_picks=True),
    reductions.ExtremeAlong: _reduction(None, largest_picks=True),
}


__all__ = ["CONVERTERS", "Graph", "Value", "describe"]
