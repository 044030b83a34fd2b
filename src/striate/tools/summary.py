"""``striate.summary(model, input_size)``: the layer table of a model, in the manner of torchinfo.

The model is run once, in evaluation mode and without gradients, on a random input of
``(batch_size, *input_size)``; forward hooks on every module and a tracer on
``Function.apply`` record what each layer and each functional call computed. Rows:

- one per module call, indented by its depth in the module tree and named as in
  ``named_modules`` (a module called twice gets two rows; its parameters count at the first);
- one per function called directly in a ``forward`` that is not a built-in ``striate.nn``
  layer: ``F.max_pool2d(x, 2)`` or ``x + identity`` in a model's ``forward`` is its own row,
  nested under the module whose forward called it. (The ops inside a built-in layer, such as
  ``Conv2d``'s convolution, belong to that layer's row.)

Parameters are shown with the arithmetic that gives them: ``(5·5·1 + 1)·6 = 156`` for a
convolution (``(∏k·C_in/groups + 1)·C_out``), ``(400 + 1)·120 = 48,120`` for a linear layer,
``2·16 = 32`` for batch norm (scale and shift per channel), and the sum of the parameter shapes
for any other module. The totals come from ``model.parameters()`` itself (each shared
parameter once), split into trainable (``requires_grad``) and not.

Mult-adds follow torchinfo's convention, one multiply-add per use of a weight or a bias:

- convolution: ``output elements × (C_in/groups·∏k + 1)`` (``+ 1``: the bias add; without a
  bias, ``+ 0``);
- linear: ``output elements × (in_features + 1)``, i.e. ``batch × (in·out + out)``;
- batch norm: one per output element (in evaluation mode it is ``y = x·a + b`` per channel;
  torchinfo counts ``batch × 2·C`` instead, ignoring the spatial positions);
- matrix products: ``output elements × inner size``; every other op (activations, pooling,
  additions, reshapes): 0.

This is the convention that gives LeNet-5 at 1×32×32 its usual 423,038: C1 28·28·6·(25 + 1)
= 122,304, C3 10·10·16·(150 + 1) = 241,600, F5 120·(400 + 1) = 48,120, F6 84·(120 + 1) =
10,164, output 10·(84 + 1) = 850. (Without the bias terms the sum would be 416,520.)

Receptive field, jump and start follow the classic recurrence (see
``striate.tools.receptive_field`` for the rules, branches and functional ops included), shown
for the first spatial dimension, or as a tuple when the dimensions differ; ``?`` where an op
moves positions in a way the rules do not describe, ``—`` where the input has no spatial
dimensions. The jump of a layer whose output has no spatial layout (after ``Flatten``) is ``—``.

Memory: a row's figure is the size of its output (elements × bytes per element). The totals
are the input, the forward activations (the outputs of every row that is not a container,
views such as ``Flatten``'s included, as torchinfo counts them) and the parameters, in
MB = 10⁶ bytes (kB = 10³ bytes in the rows).
"""
import dataclasses
import numbers
import textwrap

import numpy

from striate.autograd.tensor import Tensor, float32
from striate.tools import receptive_field as rfield
from striate.tools.tracing import check_input_size, run_traced

__all__ = ["summary", "Summary", "Row"]


@dataclasses.dataclass
class Row:
    """One line of the table: a module call or a function called in a ``forward``."""

    name: str                 # dotted name from named_modules; a function row: its module's name + "." + op
    kind: str                 # the module's class ("Conv2d"), or the function ("F.max_pool2d", "add")
    depth: int                # 0 for the model itself
    input_shape: tuple        # of the first tensor argument (None if there is none)
    output_shape: tuple       # of the (first) tensor returned
    params: int = 0           # parameters the module holds directly (0 for a repeated call or a function)
    arithmetic: str = ""      # how ``params`` comes about, e.g. "(5·5·1 + 1)·6 = 156"
    mult_adds: int = 0        # of this row's own computation (0 for a container; see nested_mult_adds)
    receptive_field: tuple = None  # per spatial dimension; None where unknown or without spatial input
    jump: tuple = None        # per spatial dimension; None also once the output has no spatial layout
    start: tuple = None       # per spatial dimension, in input pixel coordinates
    activation_bytes: int = 0  # size of the output in bytes
    container: bool = False   # its computation is in the rows nested under it
    shared: bool = False      # a further call of a module listed above
    function: bool = False    # a function called in a forward, not a module call
    nested_params: int = 0    # containers: parameters of the rows nested under it
    nested_mult_adds: int = 0  # containers: mult-adds of the rows nested under it
    field: object = dataclasses.field(default=None, repr=False)  # a receptive_field.Field, UNKNOWN or None


@dataclasses.dataclass
class Summary:
    """What ``summary`` found: ``str()`` is the table; the figures are attributes."""

    model_name: str
    input_shape: tuple        # with the batch dimension
    dtype: object
    spatial_dims: int
    rows: list
    total_params: int
    trainable_params: int
    total_mult_adds: int
    input_bytes: int
    activation_bytes: int
    param_bytes: int

    @property
    def non_trainable_params(self):
        return self.total_params - self.trainable_params

    @property
    def total_bytes(self):
        """Input, forward activations and parameters together (the estimated total)."""
        return self.input_bytes + self.activation_bytes + self.param_bytes

    def __str__(self):
        return _render(self)

    def __repr__(self):
        return _render(self)


def summary(model, input_size, *, batch_size=1, dtype=float32):
    """Run ``model`` once and tabulate its layers: shapes, parameters, mult-adds, receptive fields, memory.

    The model is run in evaluation mode under ``no_grad`` on a random normal input (drawn
    from its own seeded generator: the global random state is untouched); every module's
    ``training`` flag is restored afterwards. See the module docstring for the conventions.

    Args:
        model: an ``nn.Module`` whose forward takes one tensor.
        input_size: the shape of one input without the batch dimension, e.g. ``(1, 32, 32)``
            for a 1-channel 32×32 image; its dimensions after the first are the spatial ones.
        batch_size: the batch dimension put in front of ``input_size``.
        dtype: the floating-point dtype of the input (the model's parameters must match it).

    Returns:
        A ``Summary``: ``str()`` is the table; ``rows``, ``total_params``, ``trainable_params``,
        ``total_mult_adds`` and the byte counts are attributes.

    Example::

        >>> from striate.models import lenet5
        >>> s = st.summary(lenet5(input_size=32), (1, 32, 32))
        >>> s.total_params, s.total_mult_adds
        (61706, 423038)
    """
    from striate.nn import Module
    if not isinstance(model, Module):
        raise TypeError(f"summary: model must be an nn.Module, got {type(model).__name__}")
    input_size = check_input_size(input_size, "summary")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size <= 0:
        raise ValueError(f"summary: batch_size must be a positive int, got {batch_size!r}")
    try:
        dtype = numpy.dtype(dtype)
    except TypeError:
        raise TypeError(f"summary: dtype must be a floating-point dtype, got {dtype!r}") from None
    if dtype.kind != "f":
        raise TypeError(f"summary: dtype must be a floating-point dtype, got {dtype}")
    shape = (int(batch_size),) + input_size
    n = len(input_size) - 1
    x = Tensor._from_array(numpy.random.default_rng(0).standard_normal(shape).astype(dtype))

    recorder = _Recorder(model, n)
    recorder.fields[id(x)] = rfield.input_field(n)
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        run_traced(model, x, recorder, "summary")
    finally:
        for module, training in modes:
            module.training = training

    params = list(model.parameters())
    rows = recorder.rows
    return Summary(
        model_name=type(model).__name__, input_shape=shape, dtype=dtype, spatial_dims=n, rows=rows,
        total_params=sum(p.numel() for p in params),
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        total_mult_adds=sum(r.mult_adds for r in rows),
        input_bytes=x.data.nbytes,
        activation_bytes=sum(r.activation_bytes for r in rows if not r.container),
        param_bytes=sum(p.data.nbytes for p in params))


# ----- recording a forward pass --------------------------------------------------------------

@dataclasses.dataclass
class _Call:
    module: object
    row: Row
    index: int                # of the row in the table
    absorbs: bool             # its function calls are part of its row (a built-in layer)


def _first_tensor(value):
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for item in value:
            found = _first_tensor(item)
            if found is not None:
                return found
    if isinstance(value, dict):
        return _first_tensor(list(value.values()))
    return None


def _shape(tensor):
    return None if tensor is None else tuple(tensor.shape)


class _Recorder:
    """Builds the rows from forward (pre-)hooks and the ``Function.apply`` tracer."""

    def __init__(self, model, n):
        self.names = {id(module): name for name, module in model.named_modules()}
        self.n = n
        self.rows = []
        self.stack = []
        self.fields = {}          # id(tensor) → its Field
        self.keep = []            # every tensor in ``fields``, so no id is reused while it is in use
        self.listed = set()       # ids of the modules that already have a row

    def before(self, module, args):
        first = id(module) not in self.listed
        self.listed.add(id(module))
        own = sum(p.numel() for p in module.parameters(recurse=False))
        row = Row(name=self.names.get(id(module), ""), kind=type(module).__name__, depth=len(self.stack),
                  input_shape=_shape(_first_tensor(args)), output_shape=None,
                  params=own if first else 0, shared=not first,
                  arithmetic=_arithmetic(module) if first and own else "")
        builtin = type(module).__module__.startswith("striate.nn.")
        self.stack.append(_Call(module, row, len(self.rows), builtin and not any(True for _ in module.children())))
        self.rows.append(row)

    def after(self, module, args, output):
        call = self.stack.pop()
        row, nested = call.row, self.rows[call.index + 1:]
        out = _first_tensor(output)
        row.output_shape = _shape(out)
        row.activation_bytes = out.data.nbytes if out is not None else 0
        row.container = bool(nested)
        row.nested_params = sum(r.params for r in nested)
        row.nested_mult_adds = sum(r.mult_adds for r in nested)
        self._set_field(row, out)

    def on_function(self, fn, inputs, params, result):
        fields = [self.fields.get(id(t)) if isinstance(t, Tensor) else None for t in inputs]
        field = rfield.field_after(fn, inputs, params, result, fields, self.n)
        if field is not None:
            self.fields[id(result)] = field
            self.keep.append(result)
        work = _mult_adds(fn, inputs, result)
        if not self.stack:
            return
        call = self.stack[-1]
        if call.absorbs:
            call.row.mult_adds += work
            return
        kind = _function_kind(fn, inputs, params)
        owner = call.row.name
        row = Row(name=f"{owner}.{kind.removeprefix('F.')}" if owner else kind.removeprefix("F."), kind=kind,
                  depth=call.row.depth + 1, input_shape=_shape(_first_tensor(list(inputs))),
                  output_shape=tuple(result.shape), mult_adds=work, activation_bytes=result.data.nbytes,
                  function=True)
        self._set_field(row, result)
        self.rows.append(row)

    def _set_field(self, row, tensor):
        field = self.fields.get(id(tensor)) if tensor is not None else None
        row.field = field
        if isinstance(field, rfield.Field) and self.n:
            row.receptive_field = tuple(_tidy(v) for v in field.rf)
            row.start = tuple(_tidy(v) for v in field.start)
            if tensor.ndim == self.n + 2:
                row.jump = tuple(_tidy(v) for v in field.jump)


def _tidy(value):
    """An int when the number is whole (``5.0`` → 5), else the float rounded to 6 places."""
    value = float(value)
    return int(value) if value.is_integer() else round(value, 6)


# ----- what each op computes -----------------------------------------------------------------

def _mult_adds(fn, inputs, result):
    """Multiply-adds of one op, by the convention in the module docstring."""
    from striate.autograd.arithmetic import MatMul
    from striate.ops.conv import ConvND
    from striate.ops.linear import Linear
    from striate.ops.normalization import BatchNorm
    kind, size = type(fn), result.data.size
    if kind is ConvND:
        weight, bias = inputs[1], inputs[2]
        return size * (int(numpy.prod(weight.shape[1:])) + (bias is not None))
    if kind is Linear:
        weight, bias = inputs[1], inputs[2]
        return size * (weight.shape[1] + (bias is not None))
    if kind is BatchNorm:
        return size
    if kind is MatMul:
        return size * inputs[0].shape[-1]
    return 0


_OP_NAMES = {"ConvND": "conv", "_AvgPool": "avg_pool", "_Contract": "adaptive_avg_pool", "_Chosen": "max_pool",
             "Linear": "linear", "BatchNorm": "batch_norm", "Dropout": "dropout", "ConstantPad": "pad",
             "IndexPad": "pad", "ReLU": "relu", "LeakyReLU": "leaky_relu", "ELU": "elu", "GELU": "gelu",
             "Sigmoid": "sigmoid", "Tanh": "tanh", "Softplus": "softplus", "Softmax": "softmax",
             "LogSoftmax": "log_softmax", "GetItem": "getitem", "PowScalar": "pow", "MatMul": "matmul",
             "ExtremeAlong": "max", "Extreme": "amax", "_Cast": "to"}


def _function_kind(fn, inputs, params):
    """How a function row is labelled: ``F.conv2d``, ``F.max_pool2d``, ``add``, ``reshape``..."""
    name = type(fn).__name__
    label = _OP_NAMES.get(name, name.lstrip("_").lower())
    if name == "ConvND":
        label += f"{inputs[1].ndim - 2}d"
    elif name == "_AvgPool":
        label += f"{len(params['windows'].kernel)}d"
    elif name == "_Contract":
        label += f"{len(params['matrices'])}d"
    elif name == "_Chosen":
        op, _ = rfield.pooling_call()
        label = op or label
    elif name in ("Extreme", "ExtremeAlong"):
        label = "max" if params.get("largest", True) else "min"
    return f"F.{label}" if type(fn).__module__.startswith("striate.ops.") else label


def _arithmetic(module):
    """How the parameters a module holds directly add up, e.g. ``(5·5·1 + 1)·6 = 156``."""
    from striate.nn import Linear
    from striate.nn.modules.conv import _ConvNd
    from striate.nn.modules.normalization import _BatchNorm
    own = dict(module.named_parameters(recurse=False))
    total = sum(p.numel() for p in own.values())
    weight, bias = own.get("weight"), own.get("bias")
    if isinstance(module, _ConvNd) and weight is not None and set(own) <= {"weight", "bias"}:
        out_channels, group_in, *kernel = weight.shape
        taps = "·".join(f"{v:,}" for v in (*kernel, group_in))
        text = f"({taps} + 1)·{out_channels:,}" if bias is not None else f"{taps}·{out_channels:,}"
    elif isinstance(module, Linear) and weight is not None and set(own) <= {"weight", "bias"}:
        out_features, in_features = weight.shape
        text = (f"({in_features:,} + 1)·{out_features:,}" if bias is not None
                else f"{in_features:,}·{out_features:,}")
    elif isinstance(module, _BatchNorm) and weight is not None and bias is not None and set(own) == {"weight", "bias"}:
        text = f"2·{weight.numel():,}"
    else:
        text = " + ".join("·".join(f"{v:,}" for v in p.shape) or "1" for p in own.values())
    return text if text == f"{total:,}" else f"{text} = {total:,}"


# ----- the table -----------------------------------------------------------------------------

def _bytes(count):
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


def _number(value):
    return f"{value:,}" if isinstance(value, int) else f"{value:.4g}"


def _per_dim(values):
    if values is None:
        return "—"
    if len(set(values)) == 1:
        return _number(values[0])
    return "(" + ", ".join(_number(v) for v in values) + ")"


def _cells(row, n):
    local = "" if row.function or row.depth == 0 else row.name.rsplit(".", 1)[-1]
    label = "  " * row.depth + (f"{local}: {row.kind}" if local else row.kind)
    if row.arithmetic:
        params = row.arithmetic
    elif row.shared:
        params = "(shared: counted above)"
    elif row.container and row.nested_params:
        params = f"({row.nested_params:,})"
    else:
        params = "—"
    if row.container:
        work = f"({row.nested_mult_adds:,})" if row.nested_mult_adds else "—"
    else:
        work = f"{row.mult_adds:,}" if row.mult_adds else "—"
    unknown = row.field is rfield.UNKNOWN and n > 0
    rf = "?" if unknown else _per_dim(row.receptive_field)
    jump = "?" if unknown else _per_dim(row.jump)
    start = "?" if unknown else _per_dim(row.start)
    memory = "—" if row.container else _bytes(row.activation_bytes)
    shape = lambda s: "—" if s is None else str(list(s))  # noqa: E731
    return [label, shape(row.input_shape), shape(row.output_shape), params, work, rf, jump, start, memory]


_HEADER = ["Layer (type)", "Input shape", "Output shape", "Parameters", "Mult-adds", "RF", "Jump", "Start",
           "Memory"]
_LEGEND = ("MB = 10^6 bytes, kB = 10^3 bytes. Memory: the size of the row's output; the forward activations "
           "add them up over the rows that are not containers. (...): the sum of the rows nested under a "
           "container. Mult-adds: one per use of a weight or a bias (conv: outputs·(C_in/groups·∏k + 1), "
           "linear: outputs·(in + 1), batch norm: outputs). RF: the input pixels one unit sees; Jump: input "
           "pixels between neighbouring units; Start: input coordinate (pixel index) of the centre of the "
           "first unit's field; ?: not known.")
_LEFT = {0, 1, 2}


def _render(s):
    table = [_HEADER] + [_cells(row, s.spatial_dims) for row in s.rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(_HEADER))]

    def line(cells):
        return "  ".join(c.ljust(w) if i in _LEFT else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    width = sum(widths) + 2 * (len(widths) - 1)
    work = s.total_mult_adds
    scaled = f"{work / 1e9:.2f} G" if work >= 1e9 else f"{work / 1e6:.2f} M"
    unused = s.total_params - sum(r.params for r in s.rows)
    mb = lambda count: f"{count / 1e6:.3f} MB"  # noqa: E731
    lines = [
        f"{s.model_name} on input {list(s.input_shape)} ({s.dtype}), evaluation mode",
        "=" * width, line(table[0]), "=" * width, *(line(cells) for cells in table[1:]), "=" * width,
        f"Total parameters: {s.total_params:,} (trainable {s.trainable_params:,}, "
        f"non-trainable {s.non_trainable_params:,})",
    ]
    if unused > 0:
        lines.append(f"  of which {unused:,} in modules the forward pass did not call")
    lines += [
        f"Total mult-adds: {work:,} ({scaled})",
        "-" * width,
        f"Input: {mb(s.input_bytes)}   forward activations: {mb(s.activation_bytes)}   "
        f"parameters: {mb(s.param_bytes)}   estimated total: {mb(s.total_bytes)}",
        "-" * width,
        *textwrap.wrap(_LEGEND, width=max(width, 72)),
        "=" * width,
    ]
    return "\n".join(lines)
