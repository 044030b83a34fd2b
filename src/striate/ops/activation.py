"""Activation functions: element-wise nonlinearities, and softmax/log-softmax along one dimension.

Each is one ``Function`` with its forward and backward side by side. Derivatives at kinks
follow PyTorch: ``relu'(0) = 0``, ``leaky_relu'(0) = negative_slope``, ``elu'(0) = alpha``.
Everything that could overflow is written so it cannot: sigmoid and softplus evaluate
``exp`` only at non-positive arguments, softmax and log-softmax subtract the maximum first.
"""
import math
import numbers

from striate._backend import xp
from striate.autograd.function import Function
from striate.autograd.reductions import normalize_dims
from striate.ops._validate import as_tensor, expect_float

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TANH_SCALE = math.sqrt(2.0 / math.pi)   # GELU's tanh approximation: tanh(√(2/π)·(x + 0.044715·x³))
_TANH_CUBIC = 0.044715

# NumPy has no erf/erfc. math.erfc is accurate to about an ulp over the whole line, so the exact
# GELU matches PyTorch to float64 precision. frompyfunc calls it once per element from Python
# (a few tenths of a µs each, some 20× slower than PyTorch's GELU); exactness is worth more here
# than speed because GELU is not used by the classic CNNs this library targets.
# erfc rather than 1 + erf keeps full relative accuracy of Φ(x) in the far-negative tail.
_erfc = xp.frompyfunc(math.erfc, 1, 1)


def _stable_sigmoid(x):
    """1 / (1 + e^−x) with ``exp`` taken only of −|x|, so no argument can overflow."""
    e = xp.exp(-xp.abs(x))
    y = xp.where(x >= 0, 1, e)     # numerator: 1 for x ≥ 0, e^x otherwise
    y /= 1 + e
    return y


def _reject_inplace(inplace, op):
    # striate never writes into an op's input (the graph may still need it); rather than
    # ignore inplace=True and leave code that relies on the side effect silently wrong, refuse it.
    if inplace:
        raise ValueError(f"{op}: inplace=True is not supported (striate ops never modify their input); "
                         "use the returned tensor instead")


def _float_input(input, op):
    input = as_tensor(input, op)
    expect_float(input, op)
    return input


def _number(value, name, op):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{op}: {name} must be a real number, got {value!r}")
    return float(value)


# ----- element-wise ---------------------------------------------------------------------------------
class ReLU(Function):
    def forward(self, x):
        y = xp.maximum(x, 0)
        if self.needs_input_grad[0]:
            self.y = y   # the output, which the next layer holds anyway: no mask kept in memory
        return y

    def backward(self, gy):
        # A multiply by the boolean mask is several times faster than xp.where on large arrays;
        # it differs from PyTorch only if gy holds inf/NaN where x ≤ 0 (NaN here, 0 there).
        return gy * (self.y > 0)


class LeakyReLU(Function):
    def forward(self, x, negative_slope):
        self.positive = x > 0
        self.slope = xp.asarray(negative_slope, dtype=x.dtype)
        return xp.where(self.positive, x, x * self.slope)

    def backward(self, gy):
        return xp.where(self.positive, gy, gy * self.slope)


class ELU(Function):
    def forward(self, x, alpha):
        self.x = x
        self.alpha = xp.asarray(alpha, dtype=x.dtype)
        # expm1 of min(x, 0): exact near 0, and never overflows in the branch where() discards.
        return xp.where(x > 0, x, self.alpha * xp.expm1(xp.minimum(x, 0)))

    def backward(self, gy):
        x = self.x
        return xp.where(x > 0, gy, gy * self.alpha * xp.exp(xp.minimum(x, 0)))


class GELU(Function):
    """x·Φ(x), Φ the standard normal CDF, exactly (``"none"``) or by the tanh approximation."""

    def forward(self, x, approximate):
        self.x, self.approximate = x, approximate
        if approximate == "tanh":
            # ½(1 + tanh u) = σ(2u): the sigmoid form keeps full relative accuracy where tanh u
            # rounds to −1 and ½(1 + tanh u) would cancel to 0 (x ≲ −5 in float32).
            self.s = _stable_sigmoid(2 * _TANH_SCALE * (x + _TANH_CUBIC * x ** 3))
            return x * self.s
        # Φ(x) = erfc(−x/√2)/2, evaluated in float64 then returned in the input's dtype.
        erfc = xp.asarray(_erfc(-_SQRT_HALF * x.astype(xp.float64)), dtype=xp.float64)  # object → float64
        self.cdf = (0.5 * erfc).astype(x.dtype)
        return x * self.cdf

    def backward(self, gy):
        x = self.x
        if self.approximate == "tanh":
            # d/dx x·σ(2u) = σ(2u) + 2x·σ(2u)(1 − σ(2u))·u′, u′ = √(2/π)(1 + 3·0.044715·x²)
            s = self.s
            inner_dx = _TANH_SCALE * (1 + 3 * _TANH_CUBIC * x * x)
            return gy * (s + 2 * x * s * (1 - s) * inner_dx)
        pdf = _INV_SQRT_2PI * xp.exp(-0.5 * x * x)
        return gy * (self.cdf + x * pdf)


class Sigmoid(Function):
    def forward(self, x):
        self.y = _stable_sigmoid(x)
        return self.y

    def backward(self, gy):
        return gy * self.y * (1 - self.y)


class Tanh(Function):
    def forward(self, x):
        self.y = xp.tanh(x)
        return self.y

    def backward(self, gy):
        return gy * (1 - self.y * self.y)


class Softplus(Function):
    """log(1 + e^(βx))/β, and x itself where βx > threshold (PyTorch's rule)."""

    def forward(self, x, beta, threshold):
        z = x * xp.asarray(beta, dtype=x.dtype)
        self.z, self.linear = z, z > threshold
        # log(1 + e^z) = max(z, 0) + log1p(e^−|z|): exp never sees a positive argument.
        soft = (xp.maximum(z, 0) + xp.log1p(xp.exp(-xp.abs(z)))) / xp.asarray(beta, dtype=x.dtype)
        return xp.where(self.linear, x, soft)

    def backward(self, gy):
        return xp.where(self.linear, gy, gy * _stable_sigmoid(self.z))


# ----- along a dimension ----------------------------------------------------------------------------
class Softmax(Function):
    def forward(self, x, axis):
        shifted = x - xp.max(x, axis=axis, keepdims=True, initial=-xp.inf)
        e = xp.exp(shifted)
        self.y = e / e.sum(axis=axis, keepdims=True)
        self.axis = axis
        return self.y

    def backward(self, gy):
        y = self.y
        return y * (gy - (gy * y).sum(axis=self.axis, keepdims=True))


class LogSoftmax(Function):
    def forward(self, x, axis):
        shifted = x - xp.max(x, axis=axis, keepdims=True, initial=-xp.inf)
        self.y = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
        self.axis = axis
        return self.y

    def backward(self, gy):
        return gy - xp.exp(self.y) * gy.sum(axis=self.axis, keepdims=True)


def _along(fn, input, dim, dtype, op):
    input = as_tensor(input, op)
    if dim is None:
        raise TypeError(f"{op}: dim is required (PyTorch's implicit choice of dim is deprecated); "
                        f"pass e.g. dim=-1 for the last dimension, got dim=None")
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    if dtype is not None:
        input = input.to(dtype)
    expect_float(input, op)
    if input.ndim == 0:     # a scalar is a one-element distribution, as in PyTorch
        if dim not in (-1, 0):
            raise IndexError(f"{op}: dim {dim} is out of range for a 0-D tensor (expected -1 or 0)")
        return fn.apply(input.reshape(1), axis=0).reshape(())
    (axis,) = normalize_dims(int(dim), input.ndim, op)
    return fn.apply(input, axis=axis)


# ----- public ---------------------------------------------------------------------------------------
def relu(input, inplace=False):
    """Rectified linear unit, max(x, 0), applied element-wise.

    Args:
        input: a floating-point tensor of any shape.
        inplace: accepted for PyTorch compatibility; only ``False`` is supported.

    Shape:
        Output has the shape of the input. The derivative at 0 is 0, as in PyTorch.

    Example::

        >>> F.relu(st.tensor([-1.0, 0.0, 2.0]))
        tensor([0., 0., 2.])
    """
    _reject_inplace(inplace, "relu")
    return ReLU.apply(_float_input(input, "relu"))


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """x where x > 0, else negative_slope·x, element-wise.

    Args:
        input: a floating-point tensor of any shape.
        negative_slope: the slope for x ≤ 0 (also the derivative at 0, as in PyTorch).
        inplace: accepted for PyTorch compatibility; only ``False`` is supported.

    Shape:
        Output has the shape of the input.

    Example::

        >>> F.leaky_relu(st.tensor([-2.0, 3.0]), 0.1)
        tensor([-0.2000,  3.0000])
    """
    _reject_inplace(inplace, "leaky_relu")
    slope = _number(negative_slope, "negative_slope", "leaky_relu")
    return LeakyReLU.apply(_float_input(input, "leaky_relu"), negative_slope=slope)


def elu(input, alpha=1.0, inplace=False):
    """Exponential linear unit: x where x > 0, else alpha·(eˣ − 1), element-wise.

    Args:
        input: a floating-point tensor of any shape.
        alpha: the value approached as x → −∞ is −alpha; the derivative at 0 is alpha, as in PyTorch.
        inplace: accepted for PyTorch compatibility; only ``False`` is supported.

    Shape:
        Output has the shape of the input.

    Example::

        >>> F.elu(st.tensor([-1.0, 1.0]))
        tensor([-0.6321,  1.0000])
    """
    _reject_inplace(inplace, "elu")
    alpha = _number(alpha, "alpha", "elu")
    return ELU.apply(_float_input(input, "elu"), alpha=alpha)


def gelu(input, approximate="none"):
    """Gaussian error linear unit, x·Φ(x) with Φ the standard normal CDF, element-wise.

    Args:
        input: a floating-point tensor of any shape.
        approximate: ``"none"`` for the exact erf form, ``"tanh"`` for
            0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).

    Shape:
        Output has the shape of the input.

    Example::

        >>> F.gelu(st.tensor([0.0, 1.0]))
        tensor([0.0000, 0.8413])
    """
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(_float_input(input, "gelu"), approximate=approximate)


def sigmoid(input):
    """Logistic sigmoid 1/(1 + e⁻ˣ), element-wise, stable for any |x| (no overflow).

    Args:
        input: a floating-point tensor of any shape.

    Shape:
        Output has the shape of the input.

    Example::

        >>> F.sigmoid(st.tensor([-1000.0, 0.0, 1000.0]))
        tensor([0.0000, 0.5000, 1.0000])
    """
    return Sigmoid.apply(_float_input(input, "sigmoid"))


def tanh(input):
    """Hyperbolic tangent, element-wise.

    Args:
        input: a floating-point tensor of any shape.

    Shape:
        Output has the shape of the input.

    Example::

        >>> F.tanh(st.tensor([0.0]))
        tensor([0.])
    """
    return Tanh.apply(_float_input(input, "tanh"))


def softplus(input, beta=1.0, threshold=20.0):
    """Smooth ReLU, log(1 + e^(β·x))/β, reverting to x where β·x > threshold (as PyTorch).

    Args:
        input: a floating-point tensor of any shape.
        beta: sharpness β (non-zero).
        threshold: above this value of β·x the function is the identity.

    Shape:
        Output has the shape of the input.

    Example::

        >>> F.softplus(st.tensor([0.0, 100.0]))
        tensor([  0.6931, 100.0000])
    """
    beta = _number(beta, "beta", "softplus")
    threshold = _number(threshold, "threshold", "softplus")
    if beta == 0:
        raise ValueError("softplus: beta must be non-zero (the function divides by it), got 0")
    return Softplus.apply(_float_input(input, "softplus"), beta=beta, threshold=threshold)


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """exp(x)/Σexp(x) along ``dim``, computed after subtracting the maximum (no overflow).

    Args:
        input: a floating-point tensor.
        dim: the dimension that sums to 1. Required: PyTorch's implicit choice is deprecated,
            so ``None`` raises a TypeError asking for it.
        _stacklevel: ignored; kept so PyTorch-style positional calls line up.
        dtype: if given, the input is cast to it first.

    Shape:
        Output has the shape of the input.

    Example::

        >>> F.softmax(st.tensor([[1.0, 1.0]]), dim=1)
        tensor([[0.5000, 0.5000]])
    """
    return _along(Softmax, input, dim, dtype, "softmax")


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """log(softmax(x)) along ``dim``, as x − max − log Σ exp(x − max) (log-sum-exp).

    Args:
        input: a floating-point tensor.
        dim: the dimension to normalise over. Required (``None`` raises a TypeError).
        _stacklevel: ignored; kept so PyTorch-style positional calls line up.
        dtype: if given, the input is cast to it first.

    Shape:
        Output has the shape of the input.

    Example::

        >>> F.log_softmax(st.tensor([[0.0, 0.0]]), dim=-1)
        tensor([[-0.6931, -0.6931]])
    """
    return _along(LogSoftmax, input, dim, dtype, "log_softmax")


__all__ = ["relu", "leaky_relu", "elu", "gelu", "sigmoid", "tanh", "softplus", "softmax", "log_softmax"]
