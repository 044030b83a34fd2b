"""The arithmetic of convolutional layers: output sizes (and what happens to a remainder), parameter counts.

    >>> from striate.tools.arithmetic import conv_output_size, conv_params, explain_output_size
    >>> conv_output_size(7, 3, stride=2)
    3
    >>> conv_params(386, 386, 7, bias=False)
    7300804

Sizes are per dimension. A window of ``k`` taps ``dilation`` apart spans ``dil·(k − 1) + 1``
samples; sliding it by ``stride`` over ``d`` samples padded by ``p`` on each side gives
``floor((d + 2p − dil·(k − 1) − 1) / s) + 1`` outputs (the same formula
`striate.kernels.sizes` gives the conv and pool ops — this module calls it rather than
repeating it).
"""
import dataclasses
import math
import textwrap

from striate._backend import xp
from striate.kernels.sizes import check_positive, conv_output_size as _positions, ntuple, pool_output_size, same_padding

_PADDING_WORDS = ("valid", "same", "full")


@dataclasses.dataclass(frozen=True)
class _Geometry:
    """One dimension of a sliding window, with padding resolved to (low, high) and the output size."""

    size: int
    kernel: int
    stride: int
    dilation: int
    padding: object            # as given: an int or one of _PADDING_WORDS
    pad_lo: int
    pad_hi: int
    ceil_mode: bool
    out: int

    @property
    def span(self):
        return self.dilation * (self.kernel - 1) + 1

    @property
    def padded(self):
        return self.size + self.pad_lo + self.pad_hi


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1, ceil_mode=False):
    """Output length of a convolution or pooling layer along each dimension.

    Args:
        size: input length ``d`` (an int), or a tuple of lengths, one per spatial dimension.
        kernel_size, stride, dilation: positive ints (or tuples matching ``size``).
        padding: non-negative int (or tuple) added on both sides, or ``"valid"`` (0), ``"full"``
            (``dil·(k − 1)`` on both sides) or ``"same"`` (``ceil(d / s)`` outputs, any stride,
            the odd sample of padding going after, as `F.conv2d` does).
        ceil_mode: round up instead of down, as the pooling layers' ``ceil_mode`` — a last,
            partial window is kept unless it would start inside the right padding.

    Shape:
        ``out = floor((d + 2p − dil·(k − 1) − 1) / s) + 1`` (``ceil`` with ``ceil_mode``).

    Returns:
        An int for an int ``size``, else a tuple.

    Example:
        >>> conv_output_size(5, 3), conv_output_size(7, 3, padding=1), conv_output_size(5, 3, stride=2)
        (3, 7, 2)
        >>> conv_output_size((28, 28), 5, padding="same", stride=2)
        (14, 14)
    """
    geometries = _geometries(size, kernel_size, stride, padding, dilation, ceil_mode, "conv_output_size")
    outs = tuple(g.out for g in geometries)
    return outs[0] if _is_int(size) else outs


def unvisited_inputs(size, kernel_size, stride=1, padding=0, dilation=1, ceil_mode=False):
    """Indices of the input samples along one dimension that no window reads.

    With floor rounding, the samples after the last window are skipped; with dilation, samples
    between taps can be skipped too. These inputs get no gradient and never affect the output.

    Args:
        size, kernel_size, stride, padding, dilation, ceil_mode: as `conv_output_size`, one dimension (ints).

    Example:
        >>> unvisited_inputs(6, 3, stride=2)    # windows cover 0–2 and 2–4; sample 5 is left over
        (5,)
    """
    geometry = _geometry(size, kernel_size, stride, padding, dilation, ceil_mode, "unvisited_inputs")
    return _unvisited(geometry)


def explain_output_size(size, kernel_size, stride=1, padding=0, dilation=1, ceil_mode=False):
    """The output-size formula for one dimension with the numbers put in, and what happens to the remainder.

    When ``(d + 2p − span) / s`` is not a whole number the windows do not tile the padded input:
    rounding down leaves the last samples unvisited (it says how many, and which of them are input
    rather than padding); ``ceil_mode`` adds a partial last window instead (it says by how much
    that window hangs over the end).

    Args:
        size, kernel_size, stride, padding, dilation, ceil_mode: as `conv_output_size`, one dimension (ints).

    Example:
        >>> print(explain_output_size(6, 3, stride=2))
        out = floor((d + 2p − k) / s) + 1 = floor((6 + 2·0 − 3) / 2) + 1 = floor(3 / 2) + 1 = 2
        (6 + 2·0 − 3) / 2 = 1.5 is not a whole number: the last of the 2 windows (starting at 0, 2) ends at
        sample 4, and the 1 sample after it is fewer than the stride (2), so a next window would run past
        the end. The last 1 input sample (index 5) is never visited — in an image, the last row or column
        along this axis.
    """
    g = _geometry(size, kernel_size, stride, padding, dilation, ceil_mode, "explain_output_size")
    lines = []
    if padding in _PADDING_WORDS:
        lines.append(_padding_sentence(g))
    lines.append(_formula_line(g))
    lines.append(_remainder_sentence(g))
    return "\n".join(lines)


def conv_params(in_channels, out_channels, kernel_size, groups=1, bias=True):
    """Parameters of a convolution layer: ``(k1·k2·… · C_in/groups + 1) · C_out`` (without the 1 when no bias).

    Each of the ``C_out`` filters has one weight per kernel tap per input channel of its group,
    and one bias. The count does not depend on the input's height and width: that is weight sharing.

    Args:
        in_channels, out_channels: positive ints, both divisible by ``groups``.
        kernel_size: an int ``k`` for a square ``k × k`` (2-D) kernel, or a tuple of any length.
        groups: positive int.
        bias: whether each filter has a bias.

    Example:
        >>> conv_params(1, 6, 5), conv_params(386, 386, 7, bias=False), conv_params(8, 8, (3,), groups=8)
        (156, 7300804, 32)
    """
    op = "conv_params"
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
        _check_int(value, name, op, minimum=1)
    kernel = (kernel_size, kernel_size) if _is_int(kernel_size) else tuple(kernel_size)
    for k in kernel:
        _check_int(k, "kernel_size", op, minimum=1)
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"{op}: in_channels and out_channels must be divisible by groups, got "
                         f"in_channels={in_channels}, out_channels={out_channels}, groups={groups}")
    return (math.prod(kernel) * (in_channels // groups) + int(bool(bias))) * out_channels


def linear_params(in_features, out_features, bias=True):
    """Parameters of a fully connected layer: ``(in_features + 1) · out_features`` (no 1 without bias).

    Example:
        >>> linear_params(7 * 7 * 386, 4096)
        77475840
    """
    _check_int(in_features, "in_features", "linear_params", minimum=1)
    _check_int(out_features, "out_features", "linear_params", minimum=1)
    return (in_features + int(bool(bias))) * out_features


@dataclasses.dataclass(frozen=True)
class FcConvComparison:
    """Parameter counts of a fully connected layer and a convolution on the same input; ``str()`` shows the sums.

    Attributes:
        input_shape: ``(C, *D)``.
        out_features: units of the fully connected layer.
        out_channels: filters of the convolution.
        kernel_size, stride, padding: the convolution's, one entry per spatial dimension.
        conv_output_shape: ``(out_channels, *O)``.
        fc_params: the fully connected layer's parameters.
        conv_params: the convolution's parameters.
        dense_params: a fully connected layer with the convolution's output size (``out_channels·∏O`` units).
        local_params: a locally connected layer (the convolution's patches, weights not shared).
        bias: whether the layers have biases.
    """

    input_shape: tuple
    out_features: int
    out_channels: int
    kernel_size: tuple
    stride: tuple
    padding: tuple
    bias: bool
    conv_output_shape: tuple
    fc_params: int
    conv_params: int
    dense_params: int
    local_params: int

    def __str__(self):
        channels = self.input_shape[0]
        inputs = math.prod(self.input_shape)
        patch = math.prod(self.kernel_size) * channels
        positions = math.prod(self.conv_output_shape[1:])
        outputs = self.out_channels * positions
        plus = " + 1" if self.bias else ""

        def times(a, b):
            return f"({a:,}{plus}) × {b:,}" if self.bias else f"{a:,} × {b:,}"

        kernel_text = "·".join(str(k) for k in self.kernel_size)
        lines = [
            f"Input {_dims(self.input_shape)} = {inputs:,} values.",
            f"Fully connected, {self.out_features:,} units: every unit has a weight for every input value"
            f"{' and a bias' if self.bias else ''}.",
            f"    {times(inputs, self.out_features)} = {self.fc_params:,} parameters",
            f"Convolution, {self.out_channels:,} filters of {_dims(self.kernel_size + (channels,))}, "
            f"stride {_dims(self.stride)}, padding {_dims(self.padding)} → output {_dims(self.conv_output_shape)}:",
            f"    ({kernel_text}·{channels}{plus}) × {self.out_channels:,} = {self.conv_params:,} parameters",
            f"Where the saving comes from, for the convolution's own output of {outputs:,} values:",
            f"    fully connected, {outputs:,} units: {times(inputs, outputs)} = {self.dense_params:,}",
            f"    local connectivity (each unit sees only a {_dims(self.kernel_size + (channels,))} patch, "
            f"{patch:,} inputs): {times(patch, outputs)} = {self.local_params:,}",
            f"    weight sharing (one filter reused at all {positions:,} positions): "
            f"{times(patch, self.out_channels)} = {self.conv_params:,}" if positions > 1 else
            f"    weight sharing: none — each filter fits at only 1 position: "
            f"{times(patch, self.out_channels)} = {self.conv_params:,}",
            f"The fully connected layer has {self.fc_params / self.conv_params:,.4g} × the convolution's parameters.",
        ]
        return "\n".join(lines)


def compare_fc_conv(input_shape, out_features, kernel_size, *, out_channels=None, stride=1, padding=0, bias=True):
    """Compare a fully connected layer and a convolution on the same ``(C, H, W)`` input.

    Args:
        input_shape: ``(C, H, W)`` — or ``(C, *D)`` of any rank.
        out_features: units of the fully connected layer; also the convolution's filters unless
            ``out_channels`` is given.
        kernel_size: the convolution's kernel, an int (repeated per dimension) or a tuple.
        out_channels: the convolution's filters (default ``out_features``).
        stride, padding: the convolution's (padding may be ``"valid"``, ``"same"``, ``"full"``).
        bias: whether both layers have biases.

    Returns:
        `FcConvComparison`: the counts as attributes; ``print()`` it to see the arithmetic, including
        the two steps from a dense layer to a convolution — local connectivity, then weight sharing.

    Example:
        >>> c = compare_fc_conv((386, 7, 7), 4096, 7, out_channels=386)
        >>> c.fc_params, c.conv_params
        (77475840, 7301190)
    """
    op = "compare_fc_conv"
    shape = tuple(input_shape) if not _is_int(input_shape) else (input_shape,)
    if len(shape) < 2:
        raise ValueError(f"{op}: input_shape must be (C, *spatial) with at least one spatial dimension, "
                         f"got {input_shape!r}")
    for value in shape:
        _check_int(value, "input_shape", op, minimum=1)
    channels, size = shape[0], shape[1:]
    out_channels = out_features if out_channels is None else out_channels
    geometries = _geometries(size, kernel_size, stride, padding, 1, False, op)
    kernel = tuple(g.kernel for g in geometries)
    out_size = tuple(g.out for g in geometries)
    inputs, patch, positions = math.prod(shape), math.prod(kernel) * channels, math.prod(out_size)
    extra = int(bool(bias))
    return FcConvComparison(
        input_shape=shape, out_features=out_features, out_channels=out_channels, kernel_size=kernel,
        stride=tuple(g.stride for g in geometries),
        padding=tuple(g.pad_lo if g.pad_lo == g.pad_hi else (g.pad_lo, g.pad_hi) for g in geometries),
        bias=bool(bias), conv_output_shape=(out_channels,) + out_size,
        fc_params=linear_params(inputs, out_features, bias),
        conv_params=conv_params(channels, out_channels, kernel, bias=bias),
        dense_params=(inputs + extra) * out_channels * positions,
        local_params=(patch + extra) * out_channels * positions)


# ----------------------------------------------------------------------------------------------
# geometry of one dimension


def _geometries(size, kernel_size, stride, padding, dilation, ceil_mode, op):
    """One `_Geometry` per dimension of ``size`` (an int or a tuple), arguments broadcast to match."""
    try:
        sizes = (size,) if _is_int(size) else tuple(size)
    except TypeError:
        raise TypeError(f"{op}: size must be an int or a tuple of ints, got {size!r}") from None
    n = len(sizes)
    kernel, strides, dilations = (ntuple(v, n, name, op) for v, name in
                                  ((kernel_size, "kernel_size"), (stride, "stride"), (dilation, "dilation")))
    paddings = (padding,) * n if isinstance(padding, str) else ntuple(padding, n, "padding", op)
    return tuple(_geometry(*args, ceil_mode, op) for args in zip(sizes, kernel, strides, paddings, dilations))


def _geometry(size, kernel, stride, padding, dilation, ceil_mode, op):
    _check_int(size, "size", op, minimum=1)
    check_positive((kernel,), "kernel_size", op)
    check_positive((stride,), "stride", op)
    check_positive((dilation,), "dilation", op)
    span = dilation * (kernel - 1) + 1
    if padding == "same":
        lo, hi = same_padding(size, kernel, stride, dilation)
    elif padding == "full":
        lo = hi = span - 1
    elif padding == "valid":
        lo = hi = 0
    elif isinstance(padding, str):
        raise ValueError(f"{op}: padding must be an int or one of 'valid', 'same', 'full', got {padding!r}")
    else:
        _check_int(padding, "padding", op, minimum=0)
        lo = hi = padding
    if size + lo + hi < span:
        raise ValueError(f"{op}: the window spans {span} samples (dilation·(kernel_size − 1) + 1 with "
                         f"kernel_size={kernel}, dilation={dilation}) but the padded input has only "
                         f"{size + lo + hi} (size={size}, padding {lo} + {hi}); no output")
    if lo == hi:
        out = pool_output_size(size, kernel, stride, lo, dilation, ceil_mode)
    else:
        # Only "same" pads unevenly, and it makes (d + lo + hi − span) a multiple of the stride,
        # so rounding up or down agree.
        out = _positions(size, kernel, stride, lo, hi, dilation)
    return _Geometry(size, kernel, stride, dilation, padding, lo, hi, bool(ceil_mode), out)


def _unvisited(g):
    """Input indices (0-based, unpadded) that no tap of any window touches."""
    reach = max(g.padded, (g.out - 1) * g.stride + g.span)        # a ceil-mode window may overhang
    visited = xp.zeros(reach, dtype=bool)
    for tap in range(g.kernel):
        start = tap * g.dilation
        visited[start:start + (g.out - 1) * g.stride + 1:g.stride] = True
    return tuple(int(i) for i in xp.flatnonzero(~visited[g.pad_lo:g.pad_lo + g.size]))


# ----------------------------------------------------------------------------------------------
# the sentences


def _padding_sentence(g):
    if g.padding == "valid":
        return "padding 'valid': no padding, p = 0"
    if g.padding == "full":
        return (f"padding 'full': p = dil·(k − 1) = {g.dilation}·({g.kernel} − 1) = {g.pad_lo} on each side, "
                "so every partial overlap gets a window")
    total = g.pad_lo + g.pad_hi
    return (f"padding 'same': total p = max((ceil(d / s) − 1)·s + span − d, 0) = "
            f"max(({math.ceil(g.size / g.stride)} − 1)·{g.stride} + {g.span} − {g.size}, 0) = {total}, "
            f"{g.pad_lo} before and {g.pad_hi} after (the odd one goes after)")


def _formula_line(g):
    rounding = "ceil" if g.ceil_mode else "floor"
    if g.pad_lo == g.pad_hi:
        pad_symbol, pad_numbers = "2p", f"2·{g.pad_lo}"
    else:
        pad_symbol, pad_numbers = "p_lo + p_hi", f"{g.pad_lo} + {g.pad_hi}"
    if g.dilation == 1:
        window_symbol, window_numbers = "k", f"{g.kernel}"
    else:
        window_symbol, window_numbers = "dil·(k − 1) − 1", f"{g.dilation}·({g.kernel} − 1) − 1"
    numerator = g.padded - g.span
    line = (f"out = {rounding}((d + {pad_symbol} − {window_symbol}) / s) + 1 = "
            f"{rounding}(({g.size} + {pad_numbers} − {window_numbers}) / {g.stride}) + 1 = "
            f"{rounding}({numerator} / {g.stride}) + 1 = ")
    raw = -(-numerator // g.stride) + 1 if g.ceil_mode else numerator // g.stride + 1
    if raw != g.out:
        return line + f"{raw}, less the window that would start past the input = {g.out}"
    return line + f"{g.out}"


def _remainder_sentence(g):
    numerator = g.padded - g.span
    pad_numbers = f"2·{g.pad_lo}" if g.pad_lo == g.pad_hi else f"{g.pad_lo} + {g.pad_hi}"
    window_numbers = f"{g.kernel}" if g.dilation == 1 else f"{g.dilation}·({g.kernel} − 1) − 1"
    ratio = numerator / g.stride
    quotient = f"({g.size} + {pad_numbers} − {window_numbers}) / {g.stride} = {_number(ratio)}"
    starts = _starts(g)
    last_end = (g.out - 1) * g.stride + g.span - 1                 # padded coordinates
    unvisited = _unvisited(g)
    tail = [i for i in unvisited if i + g.pad_lo > last_end]
    gaps = [i for i in unvisited if i + g.pad_lo <= last_end]
    where = " in padded coordinates" if g.pad_lo or g.pad_hi else ""
    if numerator % g.stride == 0:
        text = (f"{quotient} is a whole number: the {g.out} window{_s(g.out)} (starting at {starts}{where}) "
                f"tile the padded input exactly, the last one ending on its last sample.")
    elif not g.ceil_mode or (g.out - 1) * g.stride + g.span <= g.padded:
        left = g.padded - 1 - last_end
        text = (f"{quotient} is not a whole number: the last of the {g.out} window{_s(g.out)} (starting at "
                f"{starts}{where}) ends at sample {last_end}, and the {left} sample{_s(left)} after it "
                f"{_are(left)} fewer than the stride ({g.stride}), so a next window would run past the end. ")
        if g.ceil_mode:
            text += (f"ceil_mode would still add one starting at {g.out * g.stride}, but that is past the last "
                     f"input sample ({g.size + g.pad_lo - 1}), so it is dropped (as PyTorch does). ")
        if tail:
            count = len(tail)
            rows = "row or column" if count == 1 else f"{count} rows or columns"
            text += (f"The last {count} input sample{_s(count)} ({_indices(tail)}) {_are(count)} never visited — "
                     f"in an image, the last {rows} along this axis.")
            if count < left:
                text += f" The other {left - count} left over {_are(left - count)} padding."
        else:
            text += "They are all padding, so no input sample is lost at the end."
    else:
        overhang = (g.out - 1) * g.stride + g.span - g.padded
        text = (f"{quotient} is not a whole number: with ceil_mode the last of the {g.out} windows (starting at "
                f"{starts}{where}) is partial — it hangs {overhang} sample{_s(overhang)} past the end of the "
                f"padded input, and pooling reduces it over the samples that exist.")
    if gaps:
        text += (f" Stride {g.stride} with dilation {g.dilation} also leaves {len(gaps)} input sample{_s(len(gaps))} "
                 f"between taps unread ({_indices(gaps)}).")
    return textwrap.fill(text, width=100)


def _starts(g):
    starts = [i * g.stride for i in range(g.out)]
    if len(starts) <= 6:
        return ", ".join(str(s) for s in starts)
    return f"{starts[0]}, {starts[1]}, …, {starts[-1]}"


def _indices(indices):
    if len(indices) == 1:
        return f"index {indices[0]}"
    if indices == list(range(indices[0], indices[-1] + 1)):
        return f"indices {indices[0]}–{indices[-1]}"
    if len(indices) <= 8:
        return "indices " + ", ".join(str(i) for i in indices)
    return "indices " + ", ".join(str(i) for i in indices[:4]) + f", … {indices[-1]}"


def _number(x):
    return str(int(x)) if float(x).is_integer() else f"{x:.4g}"


def _s(n):
    return "" if n == 1 else "s"


def _are(n):
    return "is" if n == 1 else "are"


def _dims(values):
    return " × ".join(str(v) for v in values)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool) or (
        hasattr(value, "__index__") and not hasattr(value, "__len__") and not isinstance(value, bool))


def _check_int(value, name, op, minimum):
    if not _is_int(value):
        raise TypeError(f"{op}: {name} must be an int, got {value!r}")
    if value < minimum:
        rule = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{op}: {name} must be {rule}, got {value}")


__all__ = ["conv_output_size", "explain_output_size", "unvisited_inputs", "conv_params", "linear_params",
           "compare_fc_conv", "FcConvComparison"]
