"""One unit of a feature map, explained with the real numbers: the window it read and how it combined it.

For a convolution unit this is the notes' ``x = g(Σ x·w + b)`` filled in: the window of the
layer's input (padding included, as the layer padded it), the filter's weights, the bias, the
weighted sum, and the activation ``g`` applied after it (the activation layer that takes the
convolution's output, when there is one). For a pooling unit: the window and its maximum,
minimum or mean. Every unit also gets its receptive field on the model's input
(``striate.viz.receptive``).

The numbers are recomputed here from the layer's input and parameters in float64, and set
beside the value the model itself computed (``model_value``), so a reader can check one
against the other.

    unit = explain_unit(model, x, "c3", channel=4, position=(2, 3))
    unit.weighted_sum, unit.value, unit.bounds
"""
import dataclasses

import numpy

from striate.autograd.tensor import Tensor
from striate.nn import functional as F
from striate.nn.modules import pooling
from striate.ops import pool
from striate.viz._common import is_conv, model_input
from striate.viz.features import feature_maps, find_map
from striate.viz.receptive import bounds_of, clip, layer_field


_UNSET = object()


@dataclasses.dataclass
class UnitExplanation:
    """What one unit of a convolution or pooling layer computed, with its inputs.

    Attributes:
        layer: the layer's dotted name; ``label`` as feature pictures title it.
        kind: ``"conv"``, ``"max"``, ``"min"``, ``"avg"``, ``"adaptive_avg"``, ``"adaptive_max"``.
        channel, position: the unit: output channel and spatial index ``(y, x)``.
        bounds: inclusive input-pixel bounds of its receptive field per dimension (may reach
            into padding); ``box``: the same clipped to the input, as slices. Both None when
            the field is unknown (``striate.tools.receptive_field`` has no rule for an op before it).
        input_channels: the layer-input channels the window covers (all, or the group's).
        taps: per spatial dimension, the layer-input index of every tap (outside ``0…D−1``:
            a padding position).
        layer_input_size: the spatial size ``D`` of the layer's input.
        window: ``(len(input_channels), *K)`` the values the unit read, padding included
            (zeros, or the module's padding mode; NaN for a pooling tap on padding, which
            pooling never selects).
        weights: ``(len(input_channels), *K)`` the filter (flipped when the layer convolves
            with ``flip=True``); None for pooling.
        bias: the filter's bias (0.0 when the layer has none); None for pooling.
        weighted_sum: ``Σ x·w + b`` (conv) or the pooled value, computed here in float64.
        activation: the name of ``g`` (``"ReLU"``) or None.
        value: ``g(weighted_sum)`` (or ``weighted_sum`` without an activation), float64.
        model_value: the value in the model's own feature map (its dtype), for comparison.
    """

    layer: str
    label: str
    kind: str
    channel: int
    position: tuple
    bounds: tuple
    box: tuple
    input_channels: list
    taps: list
    layer_input_size: tuple
    window: numpy.ndarray
    weights: numpy.ndarray
    bias: float
    weighted_sum: float
    activation: str
    value: float
    model_value: float

    def to_dict(self):
        """A JSON-ready dict (arrays as nested lists; NaN as None)."""
        def plain(array):
            if array is None:
                return None
            return [plain(a) for a in array] if array.ndim else (None if numpy.isnan(array) else float(array))
        return {
            "layer": self.layer, "label": self.label, "kind": self.kind, "channel": self.channel,
            "position": list(self.position),
            "bounds": None if self.bounds is None else [list(b) for b in self.bounds],
            "box": None if self.box is None else [[s.start, s.stop - 1] for s in self.box],
            "input_channels": list(self.input_channels),
            "taps": [list(t) for t in self.taps], "layer_input_size": list(self.layer_input_size),
            "window": plain(self.window), "weights": plain(self.weights),
            "bias": self.bias, "weighted_sum": self.weighted_sum, "activation": self.activation,
            "value": self.value, "model_value": self.model_value,
        }


def explain_unit(model, input, layer, channel, position, *, maps=None, field=_UNSET):
    """The window, weights, bias, weighted sum and activation behind one unit of a feature map.

    Args:
        model: an ``nn.Module``.
        input: one model-ready sample ``(C, *D)`` or ``(1, C, *D)``.
        layer: a convolution or pooling layer's dotted name or a dotted suffix of it (``"c3"``).
        channel: the unit's output channel.
        position: the unit's spatial index in the layer's output, e.g. ``(y, x)``.
        maps: ``feature_maps(model, input)`` when already computed (saves a forward pass).
        field: the layer's ``(Field, output size)`` from ``receptive.layer_field(..., strict=False)``
            when already known (None: the field is unknown).

    Returns:
        A ``UnitExplanation``.

    Raises:
        ValueError: no such layer; IndexError: the channel or position is outside its maps.
    """
    input_shape = model_input(model, input, "explain_unit").shape[1:]   # (C, *D)
    maps = feature_maps(model, input) if maps is None else maps
    fmap = find_map(maps, layer, "explain_unit")
    name = fmap.name
    channels, *size = fmap.values.shape
    if isinstance(channel, bool) or not isinstance(channel, (int, numpy.integer)) or not 0 <= channel < channels:
        raise IndexError(f"explain_unit: channel must be an int in 0…{channels - 1} for layer {name!r}, "
                         f"got {channel!r}")
    position = tuple(position)
    if len(position) != len(size) or any(isinstance(o, bool) or not isinstance(o, (int, numpy.integer))
                                         for o in position):
        raise ValueError(f"explain_unit: position must be {len(size)} ints, got {position!r}")
    if any(not 0 <= o < d for o, d in zip(position, size)):
        raise IndexError(f"explain_unit: position {position} is outside the maps of layer {name!r}, "
                         f"of size {tuple(size)}")
    channel, position = int(channel), tuple(int(o) for o in position)
    if field is _UNSET:
        field = layer_field(model, input_shape, name, "explain_unit", strict=False)
    bounds = box = None                        # unknown where the receptive-field rules do not reach
    if field is not None:
        bounds = bounds_of(field[0], position)
        box = clip(bounds, input_shape[1:])
    module = fmap.module
    common = {"layer": name, "label": fmap.label, "channel": channel, "position": position, "bounds": bounds,
              "box": box, "model_value": float(fmap.values[(channel, *position)]),
              "layer_input_size": tuple(fmap.input.shape[1:])}
    if is_conv(module):
        return _conv_unit(fmap, module, channel, position, common)
    return _pool_unit(fmap, module, channel, position, common)


def _conv_unit(fmap, module, channel, position, common):
    x = fmap.input.astype(numpy.float64)                                   # (C_in, *D)
    size = x.shape[1:]
    pairs = module._explicit_padding(size)
    flat = tuple(p for pair in reversed(pairs) for p in pair)             # F.pad lists the last dimension first
    mode = "constant" if module.padding_mode == "zeros" else module.padding_mode
    padded = F.pad(Tensor._from_array(x[None]), flat, mode=mode).data[0]  # (C_in, *Dp), as the layer padded it
    weight = module.weight.data.astype(numpy.float64)                     # (O, C_in/G, *K)
    kernel = weight.shape[2:]
    group_in = weight.shape[1]
    group = channel // (module.out_channels // module.groups)
    input_channels = list(range(group * group_in, (group + 1) * group_in))
    taps = [o * s + numpy.arange(k) * dil for o, s, k, dil in zip(position, module.stride, kernel, module.dilation)]
    window = padded[(slice(input_channels[0], input_channels[-1] + 1), *numpy.ix_(*taps))]  # (Cg, *K)
    w = weight[channel]
    if module.flip:
        w = w[(slice(None),) + (slice(None, None, -1),) * len(kernel)]   # true convolution: the flipped filter
    bias = 0.0 if module.bias is None else float(module.bias.data[channel])
    total = float((window * w).sum()) + bias
    activation, value = None, total
    if fmap.activation is not None:
        activation = type(fmap.activation).__name__
        value = float(fmap.activation(Tensor._from_array(numpy.array([total]))).data[0])
    return UnitExplanation(kind="conv", input_channels=input_channels,
                           taps=[(t - lo).tolist() for t, (lo, _) in zip(taps, pairs)], window=window, weights=w,
                           bias=bias, weighted_sum=total, activation=activation, value=value, **common)


def _pool_unit(fmap, module, channel, position, common):
    x = fmap.input[channel].astype(numpy.float64)                          # (*D): pooling keeps the channel
    size = x.shape
    if isinstance(module, (pooling._AdaptiveAvgPoolNd, pooling._AdaptiveMaxPoolNd)):
        kind = "adaptive_avg" if isinstance(module, pooling._AdaptiveAvgPoolNd) else "adaptive_max"
        out = fmap.values.shape[1:]
        taps = []
        for o, d, count in zip(position, size, out):
            first, end = pool._bins(d, count)
            taps.append(numpy.arange(first[o], end[o]))
        divisor = None
    else:
        largest = isinstance(module, pooling._MaxPoolNd)
        kind = "avg" if isinstance(module, pooling._AvgPoolNd) else ("max" if largest else "min")
        dilation = getattr(module, "dilation", 1)
        windows = pool._windows(type(module).__name__, size, module.kernel_size, module.stride, module.padding,
                                dilation, module.ceil_mode)
        taps = [windows.positions(d)[o] for d, o in enumerate(position)]
        divisor = _avg_divisor(module, windows, position) if kind == "avg" else None
    # A tap reads real input only where it is inside along every dimension: (*K), by broadcasting.
    mask = numpy.ones([len(t) for t in taps], dtype=bool)
    for d, t in enumerate(taps):
        mask &= ((t >= 0) & (t < size[d])).reshape([-1 if a == d else 1 for a in range(len(taps))])
    clipped = [numpy.clip(t, 0, d - 1) for t, d in zip(taps, size)]
    window = numpy.where(mask, x[numpy.ix_(*clipped)], numpy.nan)[None]  # (1, *K); NaN on padding / overhang
    real = window[0][mask]
    if kind in ("max", "adaptive_max"):
        total = float(real.max())
    elif kind == "min":
        total = float(real.min())
    elif kind == "adaptive_avg":
        total = float(real.mean())
    else:
        total = float(real.sum()) / divisor
    return UnitExplanation(kind=kind, input_channels=[channel], taps=[t.tolist() for t in taps], window=window,
                           weights=None, bias=None, weighted_sum=total, activation=None, value=total, **common)


def _avg_divisor(module, windows, position):
    """The divisor average pooling used for this window (PyTorch's rules)."""
    if module.divisor_override is not None:
        return float(module.divisor_override)
    count = 1
    for d, o in enumerate(position):
        positions = windows.positions(d)[o]
        lo, hi = (-windows.padding[d], windows.size[d] + windows.padding[d]) if module.count_include_pad \
            else (0, windows.size[d])
        count *= int(((positions >= lo) & (positions < hi)).sum())
    return float(count)


__all__ = ["UnitExplanation", "explain_unit"]
