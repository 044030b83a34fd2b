"""Feature maps: what every convolution and pooling layer outputs for one input, as a grid of images per layer.

``feature_maps`` runs the model once with forward hooks on its modules and keeps the output of
each convolution and pooling layer. A convolution directly followed by an activation layer that
takes its output (``c1`` then ``relu1``) is shown after the activation, as the notes draw it,
``x = g(Σ x·w + b)``; its raw output is kept as ``pre_activation``. Each layer's channels share
one colour scale (the layer's minimum to maximum), so a bright tile means a strong response
compared with the layer's other channels, not only within its own.

    maps = feature_maps(model, x)                 # x: the normalised input (C, H, W)
    grid = feature_grid(maps[0].values)           # (rows·(H + 1) − 1, cols·(W + 1) − 1), in [0, 1]
    plot_feature_maps(model, x, path="features.png")
"""
import dataclasses
import math

import numpy

from striate.autograd.grad_mode import no_grad
from striate.autograd.tensor import Tensor
from striate.viz._common import (eval_mode, finish, image_of, input_dims, is_conv, match_layer, model_input,
                                 new_figure, one_sample, scale, short_names, tile_grid)


def _spatial_kinds():
    from striate.nn.modules.conv import _ConvNd
    from striate.nn.modules.pooling import _AdaptiveAvgPoolNd, _AdaptiveMaxPoolNd, _AvgPoolNd, _ExtremePoolNd
    return (_ConvNd, _ExtremePoolNd, _AvgPoolNd, _AdaptiveAvgPoolNd, _AdaptiveMaxPoolNd)


def _activation_kinds():
    from striate.nn.modules import activation
    return (activation.ReLU, activation.LeakyReLU, activation.ELU, activation.GELU, activation.Sigmoid,
            activation.Tanh, activation.Softplus)


@dataclasses.dataclass
class FeatureMap:
    """One layer's output for one input.

    Attributes:
        name: the layer's dotted name in ``model.named_modules()`` (``"features.c1"``).
        label: how pictures title it: the shortest dotted suffix of ``name`` that no other layer
            shares, ``+`` its activation's name (``"c1 + relu1"``, ``"layer1.0.conv1"``).
        kind: the layer's class name (``"Conv2d"``, ``"MaxPool2d"``).
        values: ``(C, *D)`` float array: the layer's output, after ``activation`` when there is one.
        input: ``(C_in, *D_in)`` float array: what the layer received.
        module: the layer.
        activation: the activation module applied to a convolution's output, or None.
        pre_activation: the convolution's own output ``Σ x·w + b`` when ``activation`` is set, else None.
    """

    name: str
    label: str
    kind: str
    values: numpy.ndarray
    input: numpy.ndarray
    module: object
    activation: object = None
    pre_activation: numpy.ndarray = None

    @property
    def shape(self):
        return self.values.shape


def _first_tensor(value):
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], Tensor):
        return value[0]     # pooling with return_indices: (values, indices)
    return None


def feature_maps(model, input, *, after_activation=True):
    """The output of every convolution and pooling layer of ``model`` for one ``input``, in call order.

    The model runs once in evaluation mode without gradients (its modules' modes are restored).

    Args:
        model: an ``nn.Module``.
        input: one model-ready sample ``(C, *D)`` or ``(1, C, *D)``, an array or a Tensor (the
            normalised image, as the model was trained on).
        after_activation: show a convolution after the activation layer that directly takes its
            output (``Conv2d`` → ``ReLU``), as ``x = g(Σ x·w + b)``.

    Returns:
        A list of ``FeatureMap``, one per call of a convolution or pooling layer.

    Example::

        >>> from striate.models import lenet5
        >>> maps = feature_maps(lenet5(), numpy.zeros((1, 28, 28), numpy.float32))
        >>> [(m.label, m.shape) for m in maps]
        [('c1 + relu1', (6, 28, 28)), ('s2', (6, 14, 14)), ('c3 + relu3', (16, 10, 10)), ('s4', (16, 5, 5))]
    """
    x = model_input(model, input, "feature_maps")
    names = {id(module): name for name, module in model.named_modules()}
    calls = []   # (module, input Tensor, output Tensor, output copy), in the order the modules finish

    def record(module, args, output):
        out = _first_tensor(output)
        arg = _first_tensor(list(args))
        if out is not None:
            calls.append((module, arg, out, out.data.copy(), None if arg is None else arg.data.copy()))

    handles = [module.register_forward_hook(record) for module in model.modules() if module is not model]
    try:
        with eval_mode(model), no_grad():
            model(Tensor._from_array(x))
    finally:
        for handle in handles:
            handle.remove()

    spatial, activations = _spatial_kinds(), _activation_kinds()
    short = short_names(names.get(id(c[0]), "") for c in calls if isinstance(c[0], spatial))
    maps = []
    for index, (module, arg, out, values, received) in enumerate(calls):
        if not isinstance(module, spatial) or values.ndim < 3 or received is None:
            continue
        name = names.get(id(module), type(module).__name__)
        label = short.get(name) or type(module).__name__
        activation = pre = None
        if after_activation and is_conv(module):
            follower = next((c for c in calls[index + 1:] if c[1] is out), None)
            if follower is not None and isinstance(follower[0], activations):
                activation, pre = follower[0], values[0]
                values = follower[3]
                own = names.get(id(activation), "").rsplit(".", 1)[-1]
                label += " + " + (own if own and not own.isdigit() else type(activation).__name__)
        maps.append(FeatureMap(name=name, label=label, kind=type(module).__name__, values=values[0],
                               input=received[0], module=module, activation=activation, pre_activation=pre))
    return maps


def find_map(maps, layer, op="feature_maps"):
    """The ``FeatureMap`` of ``layer`` (its dotted name or a dotted suffix, e.g. ``"c3"``; its first call)."""
    name = match_layer([m.name for m in maps], layer, op, "convolution or pooling layer")
    return next(m for m in maps if m.name == name)


def layer_scale(values):
    """``(lo, hi)``: the colour scale a layer's channels share, its minimum and maximum."""
    values = numpy.asarray(values)
    return float(values.min()), float(values.max())


def feature_grid(values, columns=None, pad=1):
    """A layer's ``(C, H, W)`` maps as one image: the channels tiled row by row, scaled together to [0, 1].

    Every channel is mapped with the layer's shared scale (``layer_scale``: min → 0, max → 1);
    the gaps between tiles are NaN.

    Shape:
        ``(rows·(H + pad) − pad, columns·(W + pad) − pad)``, ``columns`` default ``ceil(√C)``,
        ``rows = ceil(C / columns)``.
    """
    values = numpy.asarray(values)
    if values.ndim != 3:
        raise ValueError(f"feature_grid: expected one layer's maps of shape (C, H, W), got shape {values.shape}")
    lo, hi = layer_scale(values)
    return tile_grid(scale(values, lo, hi), columns=columns, pad=pad)


def plot_feature_maps(model, input, *, path=None, max_channels=32, title=None, cmap="viridis"):
    """Draw the input and the feature maps of every convolution and pooling layer, one grid per layer.

    Args:
        model: an ``nn.Module`` on 2-D images.
        input: one model-ready sample ``(C, H, W)`` or ``(1, C, H, W)``.
        path: save the figure there as PNG when given.
        max_channels: draw at most this many channels of a layer (the first ones).
        title: the figure's title.
        cmap: the matplotlib colour map of the maps.

    Returns:
        The matplotlib ``Figure``.
    """
    x = one_sample(input, 2, "plot_feature_maps")
    maps = [m for m in feature_maps(model, x) if m.values.ndim == 3]
    if not maps:
        raise ValueError(f"plot_feature_maps: {type(model).__name__} has no 2-D convolution or pooling layer")
    count = len(maps) + 1
    figure = new_figure(2.6 * count, 3.4, "plot_feature_maps")
    axes = figure.subplots(1, count, squeeze=False)[0]
    image, gray = image_of(x)
    axes[0].imshow(image, cmap=gray, interpolation="nearest")
    axes[0].set_title(f"input\n{tuple(x.shape[1:])}", fontsize=9)
    for axis, fmap in zip(axes[1:], maps):
        shown = fmap.values[:max_channels]
        columns = math.ceil(math.sqrt(len(shown)))
        lo, hi = layer_scale(fmap.values)
        axis.imshow(tile_grid(scale(shown, lo, hi), columns=columns), cmap=cmap, vmin=0, vmax=1,
                    interpolation="nearest")
        more = f" (first {len(shown)})" if len(shown) < len(fmap.values) else ""
        axis.set_title(f"{fmap.label}\n{'×'.join(map(str, fmap.shape))}{more}\nscale {lo:.2g} … {hi:.2g}", fontsize=9)
    for axis in axes:
        axis.set_xticks([])
        axis.set_yticks([])
        axis.set_facecolor("white")
    if title:
        figure.suptitle(title, fontsize=11)
    return finish(figure, path)


__all__ = ["FeatureMap", "feature_maps", "find_map", "feature_grid", "layer_scale", "plot_feature_maps", "is_conv",
           "input_dims"]
