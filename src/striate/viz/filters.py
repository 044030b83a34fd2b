"""Convolution filters as tiles: the first layer's as small images, a deeper layer's one tile per input channel.

A weight ``(O, C, kh, kw)`` is drawn on one colour scale for the whole layer, symmetric about
zero, so a weight's sign and size read the same in every tile:

- one value per pixel (``C == 1``, or any ``C`` per input channel): ``w / max|W|`` in [−1, 1],
  drawn with a diverging map (0 is the middle colour);
- RGB (a first layer on colour images, ``C == 3``): ``0.5 + w / (2·max|W|)`` per colour channel
  in [0, 1], so a zero weight is mid grey and a filter's colour is the colour it responds to.

    tiles = filter_tiles(model.features.c1.weight)     # (6, 1, 5, 5): weight / max|weight|
    plot_filters(model, path="filters.png")            # the first convolution by default
"""
import numpy

from striate.autograd.tensor import Tensor
from striate.viz._common import finish, is_conv, match_layer, new_figure, tile_grid


def conv_layers(model):
    """``[(dotted name, module)]`` of every convolution in ``model``, in registration order."""
    return [(name, module) for name, module in model.named_modules() if is_conv(module)]


def find_conv(model, layer=None, op="plot_filters"):
    """``(name, module)`` of convolution ``layer`` (its dotted name or a dotted suffix), default the first."""
    layers = conv_layers(model)
    if not layers:
        raise ValueError(f"{op}: {type(model).__name__} has no convolution layer")
    if layer is None:
        return layers[0]
    name = match_layer([name for name, _ in layers], layer, op, "convolution layer")
    return next((n, module) for n, module in layers if n == name)


def _weight_array(weight):
    array = weight.data if isinstance(weight, Tensor) else numpy.asarray(weight)
    if array.ndim != 4:
        raise ValueError(f"filter_tiles: expected a 2-D convolution weight of shape (O, C, kh, kw), "
                         f"got shape {array.shape}")
    return array.astype(numpy.float64)


def filter_tiles(weight, rgb="auto"):
    """The filters of one convolution weight, scaled for drawing on one symmetric scale.

    Args:
        weight: ``(O, C, kh, kw)`` array or Tensor (a ``Conv2d``'s weight).
        rgb: ``True`` draws each filter as one colour image (needs ``C == 3``); ``False`` gives
            one tile per input channel; ``"auto"`` means ``C == 3``.

    Returns:
        RGB: ``(O, kh, kw, 3)``, ``0.5 + w / (2·max|W|)`` in [0, 1].
        Otherwise ``(O, C, kh, kw)``, ``w / max|W|`` in [−1, 1]. (All zeros when ``W`` is.)
    """
    array = _weight_array(weight)
    channels = array.shape[1]
    if rgb == "auto":
        rgb = channels == 3
    if rgb not in (True, False):
        raise ValueError(f"filter_tiles: rgb must be True, False or 'auto', got {rgb!r}")
    if rgb and channels != 3:
        raise ValueError(f"filter_tiles: rgb=True needs 3 input channels, got a weight of shape {array.shape}")
    peak = numpy.abs(array).max()
    unit = array / peak if peak > 0 else numpy.zeros_like(array)
    if rgb:
        return 0.5 + 0.5 * unit.transpose(0, 2, 3, 1)              # (O, C, kh, kw) -> (O, kh, kw, C)
    return unit


def filter_grid(weight, rgb="auto", pad=1, max_filters=None, max_channels=None):
    """One image of a layer's filters (the ``filter_tiles`` values; NaN in the gaps).

    A first layer (``C == 1``, or RGB) is one row of ``O`` tiles — wrapped every
    ``ceil(√O)`` for more than 16 —; a deeper layer has one column per filter and one row
    per input channel, so row ``c``, column ``o`` is ``W[o, c] / max|W|``.

    Shape:
        per-channel: ``(C·(kh + pad) − pad, O·(kw + pad) − pad)``; first layer:
        ``(rows·(kh + pad) − pad, columns·(kw + pad) − pad[, 3])``.
    """
    array = _weight_array(weight)
    tiles = filter_tiles(array, rgb)
    if max_filters is not None:
        tiles = tiles[:max_filters]
    count = len(tiles)
    if rgb is True or (rgb == "auto" and array.shape[1] == 3):  # RGB tiles (O, kh, kw, 3)
        return tile_grid(tiles, columns=_first_layer_columns(count), pad=pad)
    if array.shape[1] == 1:
        return tile_grid(tiles[:, 0], columns=_first_layer_columns(count), pad=pad)
    if max_channels is not None:
        tiles = tiles[:, :max_channels]
    out, channels, kh, kw = tiles.shape
    by_channel = tiles.transpose(1, 0, 2, 3).reshape(channels * out, kh, kw)  # (C·O, kh, kw): row c holds W[:, c]
    return tile_grid(by_channel, columns=out, pad=pad)


def _first_layer_columns(count):
    return count if count <= 16 else int(numpy.ceil(numpy.sqrt(count)))


def plot_filters(model_or_weight, layer=None, *, path=None, max_filters=64, max_channels=32, cmap="RdBu_r"):
    """Draw the filters of one convolution: a first layer as images, a deeper one per input channel.

    Args:
        model_or_weight: an ``nn.Module`` (then ``layer`` picks the convolution, default the
            first) or a weight ``(O, C, kh, kw)``.
        layer: the convolution's dotted name or its last part (``"features.c3"`` or ``"c3"``).
        path: save the figure there as PNG when given.
        max_filters: draw at most this many filters (output channels).
        max_channels: of a deeper layer, at most this many input channels.
        cmap: the diverging colour map of one-value tiles (blue negative, red positive).

    Returns:
        The matplotlib ``Figure``.
    """
    from striate.nn import Module
    if isinstance(model_or_weight, Module):
        name, module = find_conv(model_or_weight, layer)
        weight = module.weight
    else:
        name, weight = layer or "weight", model_or_weight
    array = _weight_array(weight)
    out, channels, kh, kw = array.shape
    peak = float(numpy.abs(array).max())
    grid = filter_grid(array, pad=1, max_filters=max_filters, max_channels=max_channels)
    rows, cols = grid.shape[:2]
    inch = min(0.25, max(0.05, 7.0 / max(rows, cols)))       # inches per weight: big enough to see, fits a page
    figure = new_figure(max(4.5, cols * inch + 1.6), rows * inch + 0.9, "plot_filters")
    axis = figure.subplots()
    if grid.ndim == 3:
        shown = numpy.where(numpy.isnan(grid), 1.0, grid)      # white gaps
        axis.imshow(shown, interpolation="nearest")
        how = "RGB: 0.5 + w / (2·max|w|)"
    else:
        from matplotlib import colormaps
        colours = colormaps[cmap].with_extremes(bad="0.3")    # dark grey gaps, apart from white zeros
        picture = axis.imshow(grid, cmap=colours, vmin=-1, vmax=1, interpolation="nearest")
        colorbar = figure.colorbar(picture, ax=axis, shrink=0.8, ticks=[-1, 0, 1])
        colorbar.ax.set_yticklabels([f"−{peak:.2g}", "0", f"{peak:.2g}"])
        how = "one tile per filter" if channels == 1 else "columns: filters, rows: input channels"
    shown_filters = min(out, max_filters) if max_filters else out
    note = f", first {shown_filters}" if shown_filters < out else ""
    axis.set_title(f"{name}: {out} filters {channels}×{kh}×{kw}{note}\n{how}", fontsize=9)
    axis.set_xticks([])
    axis.set_yticks([])
    return finish(figure, path)


__all__ = ["conv_layers", "find_conv", "filter_tiles", "filter_grid", "plot_filters"]
