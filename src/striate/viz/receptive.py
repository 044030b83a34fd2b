"""The receptive field of one unit of a feature map, drawn as a box on the input.

The field comes from ``striate.tools.receptive_field`` (through ``striate.summary``, which
traces one forward pass): per spatial dimension a layer's units see ``rf`` input pixels,
neighbouring units are ``jump`` pixels apart and unit 0 is centred on input coordinate
``start``. Unit ``o`` therefore sees input pixels

    start + o·jump − (rf − 1)/2   …   start + o·jump + (rf − 1)/2      (inclusive)

which may reach past the image where the layers read padding; ``receptive_bounds`` gives
those exact bounds and ``receptive_box`` the part inside the image, as slices.

    receptive_bounds(lenet5(), (1, 28, 28), "c3", (0, 0))    # ((-2, 11), (-2, 11))
    plot_receptive_field(model, x, "c3", (4, 2, 3), path="rf.png")
"""
import math

import numpy

from striate.tools import receptive_field as rfield
from striate.viz._common import finish, image_of, match_layer, new_figure, one_sample


def find_row(rows, layer, op):
    """The summary row of module ``layer`` (its dotted name or a dotted suffix; the first call of it)."""
    name = match_layer([row.name for row in rows if not row.function and row.name], layer, op)
    return next(row for row in rows if not row.function and row.name == name)


def layer_field(model, input_size, layer, op="layer_field", strict=True):
    """``(Field, output spatial shape)`` of ``layer``'s units for inputs of ``input_size`` (without the batch).

    With ``strict=False``, a layer whose field is unknown (an op before it moves positions in a
    way ``striate.tools.receptive_field`` does not describe) gives None instead of an error.

    Raises:
        ValueError: no such layer, or (``strict``) its field is unknown or not spatial (after ``Flatten``).
    """
    from striate.tools.summary import summary
    param = next(model.parameters(), None)
    table = summary(model, tuple(input_size), dtype=numpy.float32 if param is None else param.dtype)
    row = find_row(table.rows, layer, op)
    field = row.field
    if not isinstance(field, rfield.Field) or row.output_shape is None or len(row.output_shape) != len(input_size) + 1:
        if not strict:
            return None
        raise ValueError(f"{op}: layer {row.name!r} has no spatial receptive field (output {row.output_shape}, "
                         f"field {field!r})")
    return field, tuple(row.output_shape[2:])


def bounds_of(field, position):
    """Inclusive input-pixel bounds ``((lo, hi), ...)`` that unit ``position`` of a layer with ``field`` sees."""
    bounds = []
    for rf, jump, start, o in zip(field.rf, field.jump, field.start, position):
        centre = start + o * jump
        lo, hi = centre - (rf - 1) / 2, centre + (rf - 1) / 2
        bounds.append((math.floor(lo + 1e-9), math.ceil(hi - 1e-9)))   # exact unless adaptive pooling rounded
    return tuple(bounds)


def _check_position(position, size, layer, op):
    position = tuple(position)
    if len(position) != len(size) or not all(isinstance(o, (int, numpy.integer)) and not isinstance(o, bool)
                                              for o in position):
        raise ValueError(f"{op}: position must be {len(size)} ints (one per spatial dimension), got {position!r}")
    if any(not 0 <= o < d for o, d in zip(position, size)):
        raise IndexError(f"{op}: position {position} is outside the maps of layer {layer!r}, of size {size}")
    return tuple(int(o) for o in position)


def receptive_bounds(model, input_size, layer, position):
    """The input pixels unit ``position`` of ``layer`` sees: ``((lo, hi), ...)`` per spatial dimension, inclusive.

    Bounds are not clipped: a negative ``lo`` or a ``hi`` past the image means the field
    reaches into padding.

    Args:
        model: an ``nn.Module``.
        input_size: the input's shape without the batch dimension, e.g. ``(1, 28, 28)``.
        layer: the layer's dotted name in ``named_modules`` or a dotted suffix of it (``"c3"``).
        position: the unit's spatial index in the layer's output, e.g. ``(y, x)``.
    """
    field, size = layer_field(model, input_size, layer, "receptive_bounds")
    return bounds_of(field, _check_position(position, size, layer, "receptive_bounds"))


def receptive_box(model, input_size, layer, position):
    """The part of the input unit ``position`` of ``layer`` sees, as slices: ``image[(..., *box)]``.

    ``receptive_bounds`` clipped to the image (``slice(max(lo, 0), min(hi, D − 1) + 1)``).
    """
    bounds = receptive_bounds(model, input_size, layer, position)
    return clip(bounds, tuple(input_size)[1:])


def clip(bounds, size):
    """Inclusive ``bounds`` as slices clipped to an image of spatial ``size``."""
    return tuple(slice(max(lo, 0), min(hi, d - 1) + 1) for (lo, hi), d in zip(bounds, size))


def plot_receptive_field(model, input, layer, unit=None, *, path=None, cmap="viridis"):
    """Draw the input with the receptive field of one unit as a box, beside the layer's map with the unit marked.

    Args:
        model: an ``nn.Module`` on 2-D images.
        input: one model-ready sample ``(C, H, W)`` or ``(1, C, H, W)``.
        layer: the layer's dotted name or its last part (a convolution or pooling layer).
        unit: ``(channel, y, x)`` in the layer's output; default the unit with the largest value.
        path: save the figure there as PNG when given.
        cmap: colour map of the layer's map.

    Returns:
        The matplotlib ``Figure``.
    """
    from matplotlib.patches import Rectangle

    from striate.viz.features import feature_maps, find_map
    x = one_sample(input, 2, "plot_receptive_field")
    field, size = layer_field(model, x.shape[1:], layer, "plot_receptive_field")
    fmap = find_map(feature_maps(model, x), layer, "plot_receptive_field")
    name = fmap.name
    if unit is None:
        unit = numpy.unravel_index(int(numpy.argmax(fmap.values)), fmap.values.shape)
    channel, *position = (int(u) for u in unit)
    if not 0 <= channel < fmap.values.shape[0]:
        raise IndexError(f"plot_receptive_field: channel {channel} is outside the {fmap.values.shape[0]} "
                         f"channels of layer {name!r}")
    position = _check_position(position, size, name, "plot_receptive_field")
    (top, bottom), (left, right) = bounds_of(field, position)
    figure = new_figure(8, 4.2, "plot_receptive_field")
    input_axis, map_axis = figure.subplots(1, 2)
    image, gray = image_of(x)
    input_axis.imshow(image, cmap=gray, interpolation="nearest")
    input_axis.add_patch(Rectangle((left - 0.5, top - 0.5), right - left + 1, bottom - top + 1, fill=False,
                                   edgecolor="red", linewidth=2, clip_on=True))
    height, width = x.shape[2:]
    input_axis.set_xlim(min(-0.5, left - 1), max(width - 0.5, right + 1))
    input_axis.set_ylim(max(height - 0.5, bottom + 1), min(-0.5, top - 1))
    input_axis.set_title(f"input: rows {top}…{bottom}, columns {left}…{right}\n"
                         f"receptive field {_size(field.rf)}, jump {_size(field.jump)}", fontsize=9)
    map_axis.imshow(fmap.values[channel], cmap=cmap, interpolation="nearest")
    map_axis.add_patch(Rectangle((position[1] - 0.5, position[0] - 0.5), 1, 1, fill=False, edgecolor="red",
                                 linewidth=2))
    map_axis.set_title(f"{fmap.label}, channel {channel}: unit (y={position[0]}, x={position[1]}) = "
                       f"{fmap.values[channel][position]:.3g}", fontsize=9)
    for axis in (input_axis, map_axis):
        axis.set_xticks([])
        axis.set_yticks([])
    return finish(figure, path)


def _size(values):
    values = [int(v) if float(v).is_integer() else round(float(v), 2) for v in values]
    return "×".join(map(str, values)) if len(set(values)) > 1 else str(values[0])


__all__ = ["receptive_bounds", "receptive_box", "layer_field", "bounds_of", "clip", "plot_receptive_field"]
