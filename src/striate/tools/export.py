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
import numbers
import os

import numpy

from striate.autograd.tensor import Tensor
from striate.ops import pool
from striate.tools import receptive_field as rfield
from striate.tools.onnx_ops import CONVERTERS, Graph, Value, describe
from striate.tools.tracing import check_input_size, run_traced

__all__ = ["to_onnx", "to_safetensors"]

_INSTALL = "pip install 'striate[export]'"
_MIN_OPSET = 13        # Softmax over one axis, ReduceSum's axes as an input, Pad's pads as an input
_TRACE_BATCHES = (2, 3)


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
            raise ValueError(f"{op}: {describe(a)} receives a tensor that changes with the input but was not "
                             f"computed by striate ops (e.g. made with .numpy(), .data or a NumPy function, or "
                             f"sized by the batch); it cannot be recorded in the graph")


# ----- the public entries -----------------------------------------------------------------------

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
    size = check_input_size(input_size, op)
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
    g = Graph(onnx, opset, batch_dynamic, op)
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
                values.append(Value(name=names[id(t)], shape=t.shape))
                dynamic = True
            elif t is None:
                values.append(None)
            else:
                array = numpy.asarray(t.data if isinstance(t, Tensor) else t)
                values.append(Value(array=array, tensor=t if isinstance(t, Tensor) else None, shape=array.shape))
        if not dynamic:
            continue                                     # constant: folded (its result is read where used)
        convert = CONVERTERS.get(type(call.fn))
        if convert is None:
            raise ValueError(f"{op}: cannot export {describe(call)}: it has no ONNX mapping (supported: convolution, "
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
