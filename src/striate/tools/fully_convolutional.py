"""``to_fully_convolutional``: rewrite a classifier's ``Flatten → Linear …`` head as convolutions.

A Linear layer on a flattened ``C × H × W`` feature map is a convolution whose kernel is the whole
map: output unit ``o`` takes the dot product of its weight row, read as a ``(C, H, W)`` filter, with
the map. Later Linear layers see a vector, i.e. a ``1 × 1`` map, and become ``1 × 1`` convolutions.
The rewritten network computes the same numbers on the original input size and slides the whole
classifier over a larger input, giving a map of class scores.
"""
import contextlib
import copy
import math
import operator

from striate._backend import xp
from striate import nn
from striate.autograd import no_grad, tensor
from striate.creation import zeros

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_BATCH_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
# These act on each element alike, so they do the same to a feature vector and to a map of them.
_ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.Sigmoid, nn.Tanh, nn.Softplus, nn.Dropout, nn.Identity)
_OP = "to_fully_convolutional"


def to_fully_convolutional(model, input_size, *, flatten_output=False):
    """A new model whose ``Flatten → Linear …`` head is convolutions, equal to ``model`` on ``input_size``.

    The part of ``model`` before the ``Flatten`` (the features) is copied unchanged. The first
    Linear after it becomes a convolution of the features' spatial rank whose kernel covers the
    whole feature map that ``input_size`` gives, its weight ``(out, C·∏D)`` reshaped to
    ``(out, C, *D)`` (PyTorch flattens ``(C, *D)`` in C order, channel slowest, so the reshape
    puts every weight back on the pixel it multiplied). Each later Linear becomes a ``1 × 1``
    convolution; element-wise layers (activations, dropout), ``BatchNorm1d`` and
    ``Softmax``/``LogSoftmax`` over the features carry over, acting on the channel dimension.
    Parameters are deep copies: ``model`` is not changed and the two do not share weights.

    The model is read as a chain: a ``Sequential`` (nested ones too) is its children in order.
    Another module that holds the ``Flatten`` (e.g. ``LeNet5``, whose forward is
    ``classifier(features(x))``) is read as the chain of its children, as is a root model whose
    ``forward`` flattens in code before a ``Linear`` child; that reading is then checked by
    running both models on a random input of ``input_size``, and a mismatch raises.

    The result is a ``Sequential`` that keeps the original names (``features.c1``,
    ``classifier.f5``, ...), so its ``state_dict`` keys are the original's; only the Linear
    weights change shape. Training mode is copied per layer.

    Args:
        model: a ``Module`` whose forward ends in ``Flatten → Linear → (activation, dropout)
            → Linear …``.
        input_size: the size of one input without the batch dimension, ``(C, *D)``, with 1 to
            3 spatial dimensions (e.g. ``(1, 28, 28)``): the size the model was built for.
        flatten_output: append a ``Flatten`` so that on ``input_size`` the output is
            ``(N, classes)`` exactly as the original's (on a larger input it is then
            ``(N, classes·∏D_out)``, the map flattened). Default False: the map is returned.

    Shape:
        Input ``(N, C, *D_in)``, each ``D_in`` at least the original ``D``. Output
        ``(N, classes, *D_out)`` with ``D_out = F_in − F + 1``, where ``F`` and ``F_in`` are the
        feature-map sizes for ``input_size`` and for the input: 1 on ``input_size``. The
        positions step by the features' total stride ``s`` (the product of their conv and
        pooling strides), so ``D_out = (D_in − D) / s + 1`` when that divides (LeNet-5:
        ``(60 − 28) / 4 + 1 = 9``). Position ``i`` is the original model on input samples
        ``s·i … s·i + D − 1`` when the features have no padding; a padded network pads the big
        input once, at its outer border, rather than each window.

    Raises:
        ValueError: no ``Flatten → Linear`` head is found, the features are not a map with 1 to
            3 spatial dimensions, the first Linear's ``in_features`` is not the size of the
            flattened map, the head holds a layer that has no convolutional equivalent, or the
            chain reading of a custom model does not reproduce its output.

    Example::

        >>> model = striate.models.lenet5().eval()
        >>> fcn = to_fully_convolutional(model, (1, 28, 28))
        >>> fcn.classifier.f5
        Conv2d(16, 120, kernel_size=(5, 5), stride=(1, 1))
        >>> fcn(st.randn(2, 1, 28, 28)).shape     # the original size: one position
        (2, 10, 1, 1)
        >>> fcn(st.randn(2, 1, 60, 60)).shape     # a larger input: a 9 × 9 map of scores
        (2, 10, 9, 9)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"{_OP}: expected an nn.Module, got {type(model).__name__}")
    input_size = _check_input_size(input_size)
    steps, read_as_chain = _chain(model, ())
    with _eval_mode(model):
        flatten_at, implicit, feature_shape = _find_head(steps, input_size, _probe_dtype(model))
    memo = {}  # one memo for every copy, so weights shared between layers stay shared
    new_steps = [(path, copy.deepcopy(module, memo)) for path, module in steps[:flatten_at]]
    head = steps[flatten_at if implicit else flatten_at + 1:]
    new_steps += _convert_head(head, feature_shape, input_size, memo)
    fcn = _nest(new_steps, model, ())
    if flatten_output:
        name = "flatten"
        while name in fcn._modules:
            name += "_"
        fcn.add_module(name, nn.Flatten())
    if read_as_chain or implicit:
        _check_equal(model, fcn, input_size, flatten_output)
    return fcn


def _check_input_size(input_size):
    """``input_size`` as a tuple ``(C, *D)`` of positive ints with 1 to 3 spatial dimensions."""
    try:
        size = tuple(operator.index(d) for d in input_size)
    except TypeError:
        raise TypeError(f"{_OP}: input_size must be a tuple of ints (C, *D), e.g. (1, 28, 28). "
                        f"Received: input_size={input_size!r}") from None
    if not 2 <= len(size) <= 4 or min(size) <= 0:
        raise ValueError(f"{_OP}: input_size must be (C, *D) without the batch dimension, with 1 to 3 "
                         f"spatial dimensions, all positive, e.g. (1, 28, 28). Received: input_size={size}")
    return size


def _chain(module, path):
    """``([(path, module), ...], read_as_chain)``: ``module`` as the layers it applies in order.

    A Sequential holding a Flatten or a Linear is opened into its children; so is any module
    holding a Flatten, and the root when it holds a Linear (its forward may flatten in code).
    Everything else stays whole. ``read_as_chain`` says whether a module other than a
    Sequential was opened, which assumes its forward applies its children in order.
    """
    if isinstance(module, nn.Flatten):
        return [(path, module)], False
    has_flatten = any(isinstance(m, nn.Flatten) for m in module.modules())
    has_linear = any(isinstance(m, nn.Linear) for m in module.modules())
    sequential = isinstance(module, nn.Sequential)
    children = list(module.named_children())
    opened = children and ((sequential and (has_flatten or has_linear))
                           or (not sequential and (has_flatten or (not path and has_linear))))
    if not opened:
        return [(path, module)], False
    steps, read_as_chain = [], not sequential
    for name, child in children:
        child_steps, child_chain = _chain(child, path + (name,))
        steps += child_steps
        read_as_chain |= child_chain
    return steps, read_as_chain


def _probe_dtype(model):
    """The dtype of the model's first floating parameter (float32 when it has none)."""
    for param in model.parameters():
        if param.dtype.kind == "f":
            return param.dtype
    return xp.dtype(xp.float32)


@contextlib.contextmanager
def _eval_mode(*models):
    """Run in eval mode (no dropout, no batch-norm statistics updates); restore each layer's mode after."""
    modes = [(module, module.training) for model in models for module in model.modules()]
    for model in models:
        model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def _name(path):
    return f"layer {'.'.join(path)!r}" if path else "the model"


def _find_head(steps, input_size, dtype):
    """``(index of the flatten step, whether it is implicit, feature-map shape (C, *D))``.

    Runs a zero input through the layers before the head to learn the feature map's shape.
    The flatten is a ``Flatten`` layer, or, where a forward flattens in code, the first Linear
    whose input is a map that its ``in_features`` counts whole.
    """
    with no_grad():
        x = zeros((1,) + input_size, dtype=dtype)
        for index, (path, module) in enumerate(steps):
            if isinstance(module, nn.Flatten):
                _check_flatten(module, path, x.ndim)
                return index, False, _check_map(tuple(x.shape[1:]), path, input_size)
            if isinstance(module, nn.Linear) and x.ndim > 2 and module.in_features != x.shape[-1]:
                return index, True, _check_map(tuple(x.shape[1:]), path, input_size)
            x = module(x)
    if len(steps) == 1 and not steps[0][0]:
        raise ValueError(f"{_OP}: {type(steps[0][1]).__name__} holds no Flatten and no Linear layer, so it has "
                         "no classifier head to make convolutional")
    layers = ", ".join(f"{'.'.join(path)} ({type(module).__name__})" for path, module in steps)
    raise ValueError(f"{_OP}: found no Flatten → Linear head: expected the layers to end in a Flatten (an "
                     "nn.Flatten layer, or a flatten in the root's forward) followed by Linear layers; the "
                     f"layers read in order are [{layers}]")


def _check_flatten(flatten, path, ndim):
    """A Flatten that merges everything but the batch dimension (the classifier-head kind)."""
    start, end = flatten.start_dim, flatten.end_dim
    if start not in (1, 1 - ndim) or end not in (-1, ndim - 1):
        raise ValueError(f"{_OP}: {_name(path)} must flatten every dimension but the batch one "
                         f"(start_dim=1, end_dim=-1) to be read as a classifier head. "
                         f"Received: start_dim={start}, end_dim={end} on a {ndim}-D input")


def _check_map(shape, path, input_size):
    """``shape`` if it is ``(C, *D)`` with 1 to 3 spatial dimensions, else a ValueError."""
    if not 2 <= len(shape) <= 4:
        raise ValueError(f"{_OP}: the features before {_name(path)} must be a map (N, C, *D) with 1 to 3 "
                         f"spatial dimensions to become convolutions; at input_size={input_size} they have "
                         f"shape {(1,) + shape}")
    return shape


def _convert_head(head, feature_shape, input_size, memo):
    """The head's layers as ``[(path, module)]`` acting on maps: Linear → Conv, the others carried over."""
    channels, spatial = feature_shape[0], feature_shape[1:]
    rank, features, seen_linear, converted = len(spatial), math.prod(feature_shape), False, []
    for path, module in head:
        if isinstance(module, nn.Linear):
            if module.in_features != features:
                if not seen_linear:
                    shown = "×".join(map(str, feature_shape))
                    raise ValueError(f"{_OP}: {_name(path)} (Linear) has in_features={module.in_features}, but the "
                                     f"feature map before it at input_size={input_size} is {shown} = {features}; "
                                     "pass the input size the model was built for")
                raise ValueError(f"{_OP}: {_name(path)} (Linear) has in_features={module.in_features}, but the "
                                 f"layer before it gives {features} features")
            kernel = spatial if not seen_linear else (1,) * rank
            in_channels = channels if not seen_linear else features
            converted.append((path, _linear_to_conv(module, in_channels, kernel)))
            features, seen_linear = module.out_features, True
        elif isinstance(module, _ELEMENTWISE):
            converted.append((path, copy.deepcopy(module, memo)))
        elif isinstance(module, (nn.Softmax, nn.LogSoftmax)) and seen_linear and module.dim in (1, -1):
            # Over the features of (N, F) is over the channels of (N, F, *D): dimension 1.
            layer = type(module)(dim=1)
            layer.training = module.training
            converted.append((path, layer))
        elif isinstance(module, nn.BatchNorm1d) and seen_linear:
            converted.append((path, _batch_norm_to_rank(module, rank)))
        else:
            where = "after the last Linear" if seen_linear else "between the Flatten and the first Linear"
            raise ValueError(f"{_OP}: {_name(path)} ({type(module).__name__}) {where} has no convolutional "
                             "equivalent; the head may hold only Linear layers, element-wise layers "
                             "(activations, Dropout, Identity), and after a Linear BatchNorm1d or "
                             "Softmax/LogSoftmax over dim 1")
    if not seen_linear:
        raise ValueError(f"{_OP}: found a Flatten but no Linear layer after it; nothing to make convolutional")
    return converted


def _linear_to_conv(linear, in_channels, kernel):
    """A convolution computing ``linear`` on a map of ``in_channels × kernel`` (weights copied)."""
    out = linear.out_features
    conv = _CONV[len(kernel)](in_channels, out, kernel, bias=linear.bias is not None, dtype=linear.weight.dtype)
    # (out, C·∏D) → (out, C, *D): row-major, as Flatten laid the map out (channel slowest).
    weight = linear.weight.data.reshape((out, in_channels) + tuple(kernel))
    conv.weight = nn.Parameter(weight, requires_grad=linear.weight.requires_grad)  # Parameter copies
    if linear.bias is not None:
        conv.bias = nn.Parameter(linear.bias.data, requires_grad=linear.bias.requires_grad)
    conv.training = linear.training
    return conv


def _batch_norm_to_rank(norm, rank):
    """``norm`` (a BatchNorm1d over features) as the BatchNorm of ``rank`` over channels, state copied."""
    layer = _BATCH_NORM[rank](norm.num_features, norm.eps, norm.momentum, norm.affine, norm.track_running_stats,
                              dtype=_probe_dtype(norm), bias=norm.bias is not None or not norm.affine)
    layer.load_state_dict(norm.state_dict())  # copies
    for name, param in norm.named_parameters():
        getattr(layer, name).requires_grad_(param.requires_grad)
    layer.training = norm.training
    return layer


def _nest(steps, original, prefix):
    """A Sequential that puts ``steps`` back under the names and nesting they had in ``original``."""
    groups = []  # [name, module] or [name, [(rest of path, module), ...]]
    for path, module in steps:
        rest = path[len(prefix):]
        if len(rest) == 1:
            groups.append([rest[0], module])
        elif groups and isinstance(groups[-1][1], list) and groups[-1][0] == rest[0]:
            groups[-1][1].append((path, module))
        else:
            groups.append([rest[0], [(path, module)]])
    container = nn.Sequential({name: _nest(value, original, prefix + (name,)) if isinstance(value, list) else value
                               for name, value in groups})
    container.training = original.get_submodule(".".join(prefix)).training
    return container


def _check_equal(model, fcn, input_size, flatten_output):
    """Raise unless ``fcn`` reproduces ``model`` on a random input (checks the chain reading)."""
    dtype = _probe_dtype(model)
    x = tensor(xp.random.default_rng(0).standard_normal((2,) + input_size).astype(dtype))
    with _eval_mode(model, fcn), no_grad():
        expected = model(x).data
        got = fcn(x).data
    got = got.reshape(got.shape[:2]) if not flatten_output and got.ndim > 2 else got
    scale = float(xp.abs(expected).max()) if expected.size else 0.0
    if expected.shape != got.shape or not xp.allclose(got, expected, rtol=1e-4, atol=1e-5 * max(scale, 1.0)):
        detail = (f"shapes {expected.shape} and {got.shape}" if expected.shape != got.shape
                  else f"outputs differ by up to {float(xp.abs(got - expected).max()):.3g}")
        raise ValueError(f"{_OP}: {type(model).__name__}'s forward is not its layers applied in order "
                         f"(the rewritten model gives {detail} at input_size={input_size}); rewrite it as "
                         "nn.Sequential(features..., nn.Flatten(), nn.Linear(...), ...) first")


__all__ = ["to_fully_convolutional"]
