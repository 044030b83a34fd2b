"""Export a model for other runtimes: ONNX (``to_onnx``) and PyTorch-ready safetensors (``to_safetensors``).

``to_onnx`` traces rather than pattern-matches modules: it runs the model once through
``Function.apply``'s tracer hook (the one ``striate.summary`` and anomaly mode use), records
every op the forward pass calls — those inside built-in layers and the functional calls a
model makes in its own ``forward`` (``F.max_pool2d``, ``out + identity``, ``x.flatten(1)``)
alike — and writes one ONNX node (or a few) per op. Ops whose inputs are all constants
(parameters, buffers, numbers) are folded into constants: ``flip=True`` convolutions export
their already-flipped weights.

Three checks stand between a model and a silently wrong graph:

1. every recorded op has a mapping below, or export stops naming the op and the module;
2. the model is traced twice, on zeros of batch 2 and on random values of batch 3: the two
   runs must call the same ops with the same constants, so a value computed outside striate's
   ops (``x.numpy()``, a NumPy detour, a tensor sized by the batch) is refused, not frozen;
3. with onnxruntime installed (``verify=True``), the written graph is run on the second
   input and must give striate's output.

The batch dimension is symbolic (``"N"``) unless ``batch_dynamic=False``; ops that mix it with
other dimensions (a reshape that folds it, a slice along it) are refused in dynamic mode.
"""
import dataclasses
import functools
import math
import numbers
import os

import numpy

from striate.autograd import arithmetic, elementwise, reductions, shaping
from striate.autograd.tensor import Tensor, _Cast
from striate.ops import activation, conv, dropout, linear, normalization, padding, pool
from striate.tools import receptive_field as rfield
from striate.tools.tracing import run_traced

__all__ = ["to_onnx", "to_safetensors"]

_INSTALL = "pip install 'striate[export]'"
_MIN_OPSET = 13        # Softmax over one axis, ReduceSum's axes as an input, Pad's pads as an input
_TRACE_BATCHES = (2, 3)
_INT64_MIN = -(2 ** 63)


def _require(module, op):
    try:
        return __import__(module)
    except ImportError:
        raise ModuleNotFoundError(f"{op}: the {module} package is needed to export ONNX files; install it "
                                  f"with: {_INSTALL}") from None


# ----- tracing ----------------------------------------------------------------------------------

@dataclasses.dataclass
class _Call:
    fn: object
    inputs: tuple
    params: dict
    result: Tensor
    module: str               # the innermost module running when the op was called
    pooling: tuple = None     # (op name, windows) of a max/min/adaptive-max pool


class _Tracer:
    def __init__(self, model):
        self.names = {id(m): name or type(model).__name__ for name, m in model.named_modules()}
        self.stack, self.calls = [], []

    def before(self, module, args):
        self.stack.append(self.names.get(id(module), type(module).__name__))

    def after(self, module, args, output):
        self.stack.pop()

    def on_function(self, fn, inputs, params, result):
        call = _Call(fn, tuple(inputs), dict(params), result, self.stack[-1] if self.stack else "")
        if type(fn) is pool._Chosen:
            call.pooling = rfield.pooling_call()
        self.calls.append(call)


def _trace(model, x, op):
    """``(calls, output)`` of one forward pass of ``model`` on ``x``."""
    tracer = _Tracer(model)
    output = run_traced(model, x, tracer, op)
    return tracer.calls, output


def _outputs(output, op):
    items = output if isinstance(output, (tuple, list)) else (output,)
    if not items or not all(isinstance(t, Tensor) for t in items):
        raise TypeError(f"{op}: the model must return a Tensor or a tuple of Tensors, got {type(output).__name__}")
    return list(items)


def _dynamic_ids(calls, x):
    """Ids of the tensors computed from ``x`` by recorded ops."""
    dynamic = {id(x)}
    for call in calls:
        if any(isinstance(t, Tensor) and id(t) in dynamic for t in call.inputs):
            dynamic.add(id(call.result))
    return dynamic


def _constant_inputs(call, dynamic):
    """The inputs of ``call`` that are not computed from the model input (None where one is)."""
    return [None if isinstance(t, Tensor) and id(t) in dynamic else t for t in call.inputs]


def _same_constant(u, v):
    if u is v:
        return True                                 # the same parameter or buffer in both runs
    if (u is None) != (v is None):
        return False
    u, v = (numpy.asarray(t.data if isinstance(t, Tensor) else t) for t in (u, v))
    return u.shape == v.shape and numpy.array_equal(u, v, equal_nan=u.dtype.kind in "fc" and v.dtype.kind in "fc")


def _check_runs_agree(first, second, op):
    """Both traces must call the same ops with the same constants (see the module docstring, check 2)."""
    (calls_a, x_a), (calls_b, x_b) = first, second
    dyn_a, dyn_b = _dynamic_ids(calls_a, x_a), _dynamic_ids(calls_b, x_b)
    if [type(c.fn) for c in calls_a] != [type(c.fn) for c in calls_b]:
        raise ValueError(f"{op}: the model calls different ops for different inputs (data-dependent control "
                         f"flow, or shapes that depend on the batch size), so no single graph describes it")
    for a, b in zip(calls_a, calls_b):
        ca, cb = _constant_inputs(a, dyn_a), _constant_inputs(b, dyn_b)
        if len(ca) != len(cb) or not all(_same_constant(u, v) for u, v in zip(ca, cb)):
            raise ValueError(f"{op}: {_describe(a)} receives a tensor that changes with the input but was not "
                             f"computed by striate ops (e.g. made with .numpy(), .data or a NumPy function, or "
                             f"sized by the batch); it cannot be recorded in the graph")


def _describe(call):
    name = type(call.fn).__name__
    if call.pooling and call.pooling[0]:
        name = f"{call.pooling[0]} ({name})"
    return f"op {name} in module {call.module!r}" if call.module else f"op {name}"


# ----- the graph ------------------------------------------------------------------------------

class _Graph:
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
        raise ValueError(f"{self.op}: cannot export {_describe(call)}: {why}")


class _Value:
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


_CONVERTERS = {
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


# ----- the public entries -----------------------------------------------------------------------

def _check_size(input_size, op):
    if isinstance(input_size, numbers.Integral) and not isinstance(input_size, bool):
        input_size = (input_size,)
    try:
        size = tuple(input_size)
    except TypeError:
        size = ()
    if not size or not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) and d > 0 for d in size):
        raise ValueError(f"{op}: input_size must be a tuple of positive ints without the batch dimension, "
                         f"e.g. (1, 28, 28), got {input_size!r}")
    return tuple(int(d) for d in size)


def _model_dtype(model):
    for p in model.parameters():
        if p.dtype.kind == "f":
            return p.dtype
    return numpy.dtype(numpy.float32)


def to_onnx(model, input_size, path, *, opset=17, batch_dynamic=True, verify=True, metadata=None):
    """Write ``model`` as an ONNX file that onnxruntime (or any ONNX runtime) runs to striate's outputs.

    The model is traced in evaluation mode (its ``training`` flags are restored afterwards):
    every op its forward calls — layers and functional calls alike — becomes ONNX nodes;
    parameters and buffers become initializers named as in ``state_dict``. See the module
    docstring for what is checked; an op without an exact mapping raises ``ValueError``
    naming the op and the module.

    Args:
        model: an ``nn.Module`` whose forward takes one tensor.
        input_size: the input's shape without the batch dimension, e.g. ``(1, 28, 28)``.
        path: the ``.onnx`` file to write (atomically: a failed export leaves no partial file).
        opset: the ONNX opset, 13 to the newest the installed ``onnx`` knows (default 17).
        batch_dynamic: a symbolic batch dimension ``"N"`` (default); False fixes it at 1.
        verify: with onnxruntime installed, run the written graph once and compare it with
            striate's output (``ValueError`` if they differ by more than 1e-4 relative).
        metadata: optional ``{str: str}`` stored in the model's ``metadata_props``.

    Returns:
        The ``onnx.ModelProto`` written.

    Example::

        >>> from striate.models import lenet5
        >>> to_onnx(lenet5(), (1, 28, 28), "lenet5.onnx")          # doctest: +SKIP
    """
    op = "to_onnx"
    from striate.nn import Module
    if not isinstance(model, Module):
        raise TypeError(f"{op}: model must be an nn.Module, got {type(model).__name__}")
    size = _check_size(input_size, op)
    onnx = _require("onnx", op)
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, numbers.Integral) or not _MIN_OPSET <= opset <= newest:
        raise ValueError(f"{op}: opset must be an int from {_MIN_OPSET} to {newest} (the newest the installed onnx "
                         f"package knows), got {opset!r}")
    if metadata is not None and not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise TypeError(f"{op}: metadata must map str to str")
    dtype = _model_dtype(model)
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        batch_a = _TRACE_BATCHES[0] if batch_dynamic else 1
        x_a = Tensor._from_array(numpy.zeros((batch_a,) + size, dtype))
        calls_a, out_a = _trace(model, x_a, op)
        x_b = Tensor._from_array(numpy.random.default_rng(0).standard_normal((_TRACE_BATCHES[1],) + size).astype(dtype))
        if not batch_dynamic:
            x_b = x_b[:1]
        calls_b, out_b = _trace(model, x_b, op)
    finally:
        for module, training in modes:
            module.training = training
    _check_runs_agree((calls_a, x_a), (calls_b, x_b), op)
    proto, data = _build(onnx, model, calls_a, x_a, _outputs(out_a, op), opset, batch_dynamic, dtype, metadata, op)
    if verify:
        _verify(data, x_b, _outputs(out_b, op), op)
    from striate.io import atomic_write
    atomic_write(os.fspath(path), data)
    return proto


def _build(onnx, model, calls, x, outputs, opset, batch_dynamic, dtype, metadata, op):
    g = _Graph(onnx, opset, batch_dynamic, op)
    g.taken.update(f"output_{i}" for i in range(len(outputs)))
    names = {id(x): "input"}
    g.batch["input"] = 0 if batch_dynamic else None
    for key, tensor in model.state_dict(keep_vars=True).items():
        g.parameter_names.setdefault(id(tensor), key)
        g.parameter_names.setdefault(id(tensor.data), key)
    keep = []
    for call in calls:
        values, dynamic = [], False
        for t in call.inputs:
            if isinstance(t, Tensor) and id(t) in names:
                values.append(_Value(name=names[id(t)], shape=t.shape))
                dynamic = True
            elif t is None:
                values.append(None)
            else:
                array = numpy.asarray(t.data if isinstance(t, Tensor) else t)
                values.append(_Value(array=array, tensor=t if isinstance(t, Tensor) else None, shape=array.shape))
        if not dynamic:
            continue                                     # constant: folded (its result is read where used)
        convert = _CONVERTERS.get(type(call.fn))
        if convert is None:
            raise ValueError(f"{op}: cannot export {_describe(call)}: it has no ONNX mapping (supported: convolution, "
                             f"pooling, linear, batch norm, activations, softmax, padding, arithmetic, reshapes, "
                             f"slicing, concatenation, reductions)")
        g.scope = call.module
        result = convert(g, call, values)
        names[id(call.result)] = result
        keep.append(call.result)
    output_names = []
    for i, out in enumerate(outputs):
        if id(out) not in names:
            raise ValueError(f"{op}: output {i} of the model does not depend on its input through striate ops, "
                             f"so the graph cannot compute it")
        output_names.append(names[id(out)])
    helper = onnx.helper
    elem = helper.np_dtype_to_tensor_dtype(numpy.dtype(dtype))
    batch_dim = "N" if batch_dynamic else 1

    def shape_of(tensor, axis):
        return [batch_dim if i == axis else int(d) for i, d in enumerate(tensor.shape)]

    graph_outputs, nodes = [], list(g.nodes)
    for i, (out, name) in enumerate(zip(outputs, output_names)):
        final = "output" if len(outputs) == 1 else f"output_{i}"
        nodes.append(helper.make_node("Identity", [name], [final], name=f"{final}/Identity"))
        out_elem = helper.np_dtype_to_tensor_dtype(numpy.dtype(out.dtype))
        graph_outputs.append(helper.make_tensor_value_info(final, out_elem, shape_of(out, g.batch.get(name))))
    graph = helper.make_graph(nodes, type(model).__name__, [helper.make_tensor_value_info(
        "input", elem, [batch_dim] + [int(d) for d in x.shape[1:]])], graph_outputs)
    from striate import __version__
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", int(opset))],
                              producer_name="striate", producer_version=str(__version__),
                              doc_string=f"{type(model).__name__} exported by striate.tools.export.to_onnx")
    proto.ir_version = min(proto.ir_version, 8 if opset <= 17 else 9 if opset <= 20 else 10)
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    total = sum(array.nbytes for _, array in g.initializers)
    if total >= 2 ** 31 - 2 ** 24:
        raise ValueError(f"{op}: the model's {total:,} bytes of weights exceed ONNX's 2 GB limit for one file")
    for name, array in g.initializers:        # built in place: make_graph would copy every weight twice
        tensor = proto.graph.initializer.add()
        tensor.name, tensor.data_type = name, helper.np_dtype_to_tensor_dtype(array.dtype)
        tensor.dims.extend(array.shape)
        tensor.raw_data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    data = proto.SerializeToString()
    onnx.checker.check_model(data, full_check=True)
    return proto, data


def _verify(data, x, outputs, op):
    try:
        import onnxruntime
    except ImportError:
        return
    try:
        session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types; name what it said
        hint = (" (onnxruntime's CPU kernels for convolution and pooling are float32 only: convert the model "
                "with model.float())" if x.dtype != numpy.float32 else "")
        raise ValueError(f"{op}: onnxruntime cannot run the exported graph{hint}; pass verify=False to write it "
                         f"anyway. onnxruntime said: {str(error).strip()[:300]}") from None
    got = session.run(None, {"input": numpy.asarray(x.data)})
    for i, (actual, expected) in enumerate(zip(got, outputs)):
        expected = numpy.asarray(expected.data)
        if actual.shape != expected.shape:
            raise ValueError(f"{op}: the exported graph gives output {i} of shape {actual.shape}, striate "
                             f"{expected.shape}; refusing to write a wrong graph")
        scale = max(float(numpy.abs(expected).max(initial=0)), 1e-30)
        error = float(numpy.abs(actual.astype(numpy.float64) - expected).max(initial=0)) / scale
        if not error <= 1e-4:
            raise ValueError(f"{op}: the exported graph's output {i} differs from striate's by {error:.3g} "
                             f"(relative to its largest value) under onnxruntime; refusing to write a wrong graph")


def to_safetensors(model, path, metadata=None):
    """Write ``model.state_dict()`` as a safetensors file that PyTorch loads into the same architecture.

    Parameter and buffer names and layouts already follow PyTorch, so on the PyTorch side
    ``torch_model.load_state_dict(safetensors.torch.load_file(path))`` is all it takes. The
    file is written atomically (see ``striate.save``) with ``{"format": "pt"}`` in its header.

    Args:
        model: an ``nn.Module``.
        path: the ``.safetensors`` file to write.
        metadata: optional ``{str: str}`` added to the header.
    """
    from striate.nn import Module
    from striate.serialization import save
    if not isinstance(model, Module):
        raise TypeError(f"to_safetensors: model must be an nn.Module, got {type(model).__name__}")
    header = {"format": "pt", **(metadata or {})}
    save(model.state_dict(), path, metadata=header)
