"""Weight initialisation in place, with PyTorch's names and formulas (``striate.nn.init``).

Every function fills ``tensor.data`` in place and returns the tensor. Random ones draw from
``generator`` when given, else from ``striate.random.default_generator()`` (seeded by
``st.manual_seed``). Samples are drawn in float64 and rounded to the tensor's dtype.
"""
import math
import numbers

from striate.autograd.tensor import Tensor
from striate.random import default_generator

_LINEAR = ("linear", "identity", "conv1d", "conv2d", "conv3d",
           "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")


def _target(tensor, op):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{op}: expected a Tensor (or Parameter), got {type(tensor).__name__}")
    return tensor


def _fill(tensor, values):
    tensor.data[...] = values  # rounds the float64 samples to the tensor's dtype
    return tensor


def calculate_gain(nonlinearity, param=None):
    """The recommended factor on the standard deviation of weights feeding ``nonlinearity``.

    ``linear``/``conv*``/``sigmoid``: 1; ``tanh``: 5/3; ``relu``: √2;
    ``leaky_relu``: √(2 / (1 + negative_slope²)) with ``param`` the slope (default 0.01);
    ``selu``: 3/4.

    Example::

        >>> nn.init.calculate_gain("leaky_relu", 0.2)
        1.3867504905630728
    """
    if nonlinearity in _LINEAR or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, numbers.Real) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor):
    """``(fan_in, fan_out)`` of a weight ``(out, in, *kernel)``: ``in·∏kernel`` and ``out·∏kernel``."""
    if tensor.ndim < 2:
        raise ValueError(f"fan in and fan out can not be computed for a tensor with fewer than 2 dimensions, "
                         f"got shape {tuple(tensor.shape)}")
    receptive_field = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def _calculate_correct_fan(tensor, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """Fill with samples from U(a, b)."""
    _target(tensor, "uniform_")
    if a > b:
        raise ValueError(f"uniform_: expected a <= b, got a={a} and b={b}")
    rng = generator or default_generator()
    return _fill(tensor, rng.uniform(a, b, size=tensor.shape))


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """Fill with samples from N(mean, std²)."""
    _target(tensor, "normal_")
    if std < 0:
        raise ValueError(f"normal_: std must be non-negative, got {std}")
    rng = generator or default_generator()
    return _fill(tensor, rng.normal(mean, std, size=tensor.shape))


def constant_(tensor, val):
    """Fill with ``val``."""
    _target(tensor, "constant_")
    tensor.data[...] = val
    return tensor


def zeros_(tensor):
    """Fill with 0."""
    return constant_(tensor, 0)


def ones_(tensor):
    """Fill with 1."""
    return constant_(tensor, 1)


def xavier_uniform_(tensor, gain=1.0, generator=None):
    """Glorot uniform: U(−a, a) with ``a = gain·√(6 / (fan_in + fan_out))``."""
    _target(tensor, "xavier_uniform_")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    """Glorot normal: N(0, std²) with ``std = gain·√(2 / (fan_in + fan_out))``."""
    _target(tensor, "xavier_normal_")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He uniform: U(−b, b) with ``b = gain·√(3 / fan)``, ``gain = calculate_gain(nonlinearity, a)``.

    Args:
        tensor: the weight, ``(out, in, *kernel)``.
        a: negative slope of the leaky ReLU that follows (used only for ``"leaky_relu"``).
        mode: ``"fan_in"`` keeps the forward variance, ``"fan_out"`` the backward one.
        nonlinearity: the function that follows, as named by ``calculate_gain``.
        generator: a ``numpy.random.Generator``; the default generator when ``None``.

    Example::

        >>> w = nn.Parameter(numpy.empty((16, 3, 3, 3), dtype="float32"))
        >>> w = nn.init.kaiming_uniform_(w, a=math.sqrt(5))   # PyTorch's default for Conv and Linear
    """
    _target(tensor, "kaiming_uniform_")
    if 0 in tensor.shape:
        return tensor  # nothing to fill (and the fan would be 0)
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He normal: N(0, std²) with ``std = gain / √fan``, ``gain = calculate_gain(nonlinearity, a)``."""
    _target(tensor, "kaiming_normal_")
    if 0 in tensor.shape:
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return normal_(tensor, 0.0, std, generator)


__all__ = ["calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_",
           "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_"]
