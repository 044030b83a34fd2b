"""What the picture modules share: the model input as a batch, running a model in eval mode, tile grids, figures."""
import contextlib
import math
import numbers

import numpy

from striate.autograd.tensor import Tensor

_INSTALL = "pip install 'striate[viz]'"


def one_sample(input, spatial_dims, op):
    """``input`` as an ndarray ``(1, C, *D)`` with ``spatial_dims`` spatial dimensions.

    Accepts ``(C, *D)`` or ``(1, C, *D)`` (a batch of one), as an ndarray or a Tensor.
    """
    array = input.data if isinstance(input, Tensor) else numpy.asarray(input)
    if array.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point input (the model-ready, normalised image), "
                        f"got dtype {array.dtype}")
    if array.ndim == spatial_dims + 1:
        array = array[None]
    if array.ndim != spatial_dims + 2 or array.shape[0] != 1:
        names = {1: "L", 2: "H, W", 3: "D, H, W"}.get(spatial_dims, "*D")
        raise ValueError(f"{op}: expected one input of shape (C, {names}) or (1, C, {names}), got "
                         f"{array.ndim}-D input of shape {array.shape}")
    return array


def is_conv(module):
    """Whether ``module`` is a convolution layer (``Conv1d/2d/3d``)."""
    from striate.nn.modules.conv import _ConvNd
    return isinstance(module, _ConvNd)


def input_dims(model):
    """Spatial dimensions of the model's input: its first convolution's (2 when it has none)."""
    for module in model.modules():
        if is_conv(module):
            return module.weight.ndim - 2
    return 2


def model_input(model, input, op):
    """``input`` as one sample ``(1, C, *D)`` in the dtype of the model's parameters (its own precision)."""
    from striate.nn import Module
    if not isinstance(model, Module):
        raise TypeError(f"{op}: model must be an nn.Module, got {type(model).__name__}")
    x = one_sample(input, input_dims(model), op)
    param = next(model.parameters(), None)
    return x if param is None else x.astype(param.dtype, copy=False)


def _ends_with(name, suffix):
    return name == suffix or name.endswith("." + suffix)


def match_layer(names, layer, op, what="layer"):
    """The one name in ``names`` that ``layer`` means: the dotted name itself, or a dotted suffix of it
    (``"c3"`` for ``"features.c3"``, ``"layer1.0.conv1"`` for ``"model.layer1.0.conv1"``).

    Raises:
        ValueError: nothing matches, or several names do (the message lists them).
    """
    names = list(dict.fromkeys(names))
    if layer in names:
        return layer
    matches = [name for name in names if _ends_with(name, str(layer))]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ValueError(f"{op}: {what} name {layer!r} is ambiguous: it could be " + ", ".join(matches)
                         + "; give more of the dotted name")
    raise ValueError(f"{op}: no {what} named {layer!r}; the model's are " + ", ".join(names))


def short_names(names):
    """Each dotted name's shortest dotted suffix that names it alone among ``names`` and is not
    only an index (for titles: ``"c1"``, ``"layer1.0.conv1"``, ``"features.3"``).

    Example::

        >>> short_names(["features.c1", "features.3", "layer1.0.conv1", "layer2.0.conv1"]).values()
        dict_values(['c1', 'features.3', 'layer1.0.conv1', 'layer2.0.conv1'])
    """
    names = list(dict.fromkeys(names))
    short = {}
    for name in names:
        parts = name.split(".")
        for k in range(1, len(parts) + 1):
            suffix = ".".join(parts[-k:])
            indices_only = all(part.isdigit() for part in parts[-k:])
            if not indices_only and sum(_ends_with(other, suffix) for other in names) == 1:
                break
        short[name] = suffix
    return short


@contextlib.contextmanager
def eval_mode(model):
    """Run ``model`` in evaluation mode, putting every module's ``training`` flag back afterwards."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


def tile_grid(tiles, columns=None, pad=1, fill=numpy.nan):
    """Lay ``n`` equal tiles out on a grid, row by row, with ``pad`` pixels of ``fill`` between them.

    Args:
        tiles: ``(n, h, w)`` (one value per pixel) or ``(n, h, w, 3)`` (RGB).
        columns: tiles per row; default ``ceil(sqrt(n))``.
        pad: pixels between neighbouring tiles (none around the outside).
        fill: the value of the gaps (NaN, which colour maps draw as the background).

    Shape:
        ``(rows·(h + pad) − pad, columns·(w + pad) − pad[, 3])`` with ``rows = ceil(n / columns)``;
        tile ``i`` sits at row ``i // columns``, column ``i % columns``.
    """
    tiles = numpy.asarray(tiles, dtype=numpy.float64)
    if tiles.ndim not in (3, 4) or (tiles.ndim == 4 and tiles.shape[-1] != 3) or len(tiles) == 0:
        raise ValueError(f"tile_grid: expected tiles of shape (n, h, w) or (n, h, w, 3) with n > 0, "
                         f"got shape {tiles.shape}")
    count, height, width = tiles.shape[:3]
    if columns is None:
        columns = math.ceil(math.sqrt(count))
    if isinstance(columns, bool) or not isinstance(columns, numbers.Integral) or columns < 1:
        raise ValueError(f"tile_grid: columns must be a positive int, got {columns!r}")
    if isinstance(pad, bool) or not isinstance(pad, numbers.Integral) or pad < 0:
        raise ValueError(f"tile_grid: pad must be a non-negative int, got {pad!r}")
    columns = min(int(columns), count)
    rows = math.ceil(count / columns)
    grid = numpy.full((rows * (height + pad) - pad, columns * (width + pad) - pad) + tiles.shape[3:], fill)
    for index, tile in enumerate(tiles):
        top, left = (index // columns) * (height + pad), (index % columns) * (width + pad)
        grid[top:top + height, left:left + width] = tile
    return grid


def scale(values, lo=None, hi=None):
    """``values`` mapped linearly to [0, 1] with ``lo`` → 0 and ``hi`` → 1 (default their min and max).

    A constant array (``hi == lo``) maps to 0 everywhere, so an all-zero map is drawn dark, not undefined.
    """
    values = numpy.asarray(values, dtype=numpy.float64)
    lo = float(numpy.min(values)) if lo is None else float(lo)
    hi = float(numpy.max(values)) if hi is None else float(hi)
    if hi <= lo:
        return numpy.zeros_like(values)
    return (values - lo) / (hi - lo)


def new_figure(width, height, op):
    """A matplotlib ``Figure`` on the Agg canvas (no pyplot, no window, safe in threads)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(f"{op} draws with matplotlib, which is not installed: {_INSTALL}") from None
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def finish(figure, path, dpi=120):
    """Save ``figure`` as a PNG at ``path`` when one is given; returns the figure."""
    if path is not None:
        figure.savefig(path, dpi=dpi, format="png", facecolor="white", bbox_inches="tight", pad_inches=0.1)
    return figure


def image_of(input):
    """One sample ``(1, C, H, W)`` as ``imshow`` draws it: ``(H, W)`` for one channel, RGB in [0, 1] for three."""
    array = numpy.asarray(input)[0]
    if array.shape[0] == 3:
        rgb = array.transpose(1, 2, 0)                          # (C, H, W) -> (H, W, C)
        return scale(rgb), None
    return array[0] if array.shape[0] == 1 else array.mean(axis=0), "gray"
