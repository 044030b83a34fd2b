"""Activation functions as layers, each a thin Module over the functional op of the same name.

``inplace=`` is accepted where PyTorch has it, so PyTorch model code runs unchanged, and shows
in the repr as there; striate always returns a new tensor (the values are the same).
"""
from striate.nn import functional as F
from striate.nn.module import Module


def _with_inplace(text, inplace):
    """PyTorch's repr convention: ``inplace=True`` is shown only when set."""
    if not inplace:
        return text
    return f"{text}, inplace=True" if text else "inplace=True"


class ReLU(Module):
    """``max(0, x)`` element-wise.

    Example::

        >>> nn.ReLU()(st.tensor([-1.0, 2.0]))
        tensor([0., 2.])
    """

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.relu(input)

    def extra_repr(self):
        return _with_inplace("", self.inplace)


class LeakyReLU(Module):
    """``x`` where positive, ``negative_slope · x`` elsewhere.

    Args:
        negative_slope: slope for negative inputs. Default 0.01.

    Example::

        >>> nn.LeakyReLU(0.1)(st.tensor([-1.0, 2.0]))
        tensor([-0.1000,  2.0000])
    """

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self):
        return _with_inplace(f"negative_slope={self.negative_slope}", self.inplace)


class ELU(Module):
    """``x`` where positive, ``alpha · (exp(x) − 1)`` elsewhere.

    Args:
        alpha: the saturation value for large negative inputs is ``−alpha``. Default 1.0.

    Example::

        >>> nn.ELU()(st.randn(4)).shape
        (4,)
    """

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input):
        return F.elu(input, self.alpha)

    def extra_repr(self):
        return _with_inplace(f"alpha={self.alpha}", self.inplace)


class GELU(Module):
    """``x · Φ(x)`` with Φ the standard normal CDF (or its tanh approximation).

    Args:
        approximate: ``"none"`` (exact, erf) or ``"tanh"``.

    Example::

        >>> nn.GELU(approximate="tanh")(st.randn(4)).shape
        (4,)
    """

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh'. Received: approximate={approximate!r}")
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Sigmoid(Module):
    """``1 / (1 + exp(−x))`` element-wise (computed stably).

    Example::

        >>> nn.Sigmoid()(st.tensor([0.0]))
        tensor([0.5000])
    """

    def forward(self, input):
        return F.sigmoid(input)


class Tanh(Module):
    """Hyperbolic tangent element-wise.

    Example::

        >>> nn.Tanh()(st.tensor([0.0]))
        tensor([0.])
    """

    def forward(self, input):
        return F.tanh(input)


class Softplus(Module):
    """``log(1 + exp(beta · x)) / beta``, and ``x`` itself where ``beta · x > threshold``.

    Args:
        beta: sharpness. Default 1.0.
        threshold: above this value of ``beta · x`` the function is taken as linear. Default 20.0.

    Example::

        >>> nn.Softplus()(st.randn(4)).shape
        (4,)
    """

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, input):
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class Softmax(Module):
    """``exp(x) / Σ exp(x)`` along ``dim`` (a probability distribution over that dimension).

    Args:
        dim: the dimension that sums to 1.

    Example::

        >>> probabilities = nn.Softmax(dim=1)(st.randn(2, 3))   # each row sums to 1
    """

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.softmax(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """``log(softmax(x))`` along ``dim``, computed stably as ``x − logsumexp(x)``.

    Args:
        dim: the dimension normalised over.

    Example::

        >>> nn.LogSoftmax(dim=1)(st.randn(2, 3)).shape
        (2, 3)
    """

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.log_softmax(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


__all__ = ["ReLU", "LeakyReLU", "ELU", "GELU", "Sigmoid", "Tanh", "Softplus", "Softmax", "LogSoftmax"]
