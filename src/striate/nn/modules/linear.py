"""``Linear`` (a learned affine map of the last dimension) and ``Identity``."""
import math

from striate._backend import xp
from striate.autograd.tensor import float32
from striate.nn import functional as F
from striate.nn import init
from striate.nn.module import Module
from striate.nn.modules._validate import positive_int
from striate.nn.parameter import Parameter



class Identity(Module):
    """Returns its input unchanged; any constructor arguments are ignored (a placeholder layer).

    Example::

        >>> x = st.randn(3)
        >>> nn.Identity(54, unused="anything")(x) is x
        True
    """

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Linear(Module):
    """``y = x Wᵀ + b`` over the last dimension of the input.

    Weight ``(out_features, in_features)`` ~ kaiming_uniform_(a=√5), i.e. U(−1/√in_features,
    1/√in_features), and bias ``(out_features,)`` ~ U(−1/√in_features, 1/√in_features), as PyTorch.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        bias: whether to learn an additive bias. Default True.
        dtype: parameter dtype, float32 by default.

    Shape:
        Input ``(*, in_features)``, output ``(*, out_features)``.

    Example::

        >>> nn.Linear(20, 30)(st.randn(128, 20)).shape
        (128, 30)
    """

    def __init__(self, in_features, out_features, bias=True, dtype=None):
        super().__init__()
        self.in_features = positive_int(in_features, "in_features", "Linear")
        self.out_features = positive_int(out_features, "out_features", "Linear")
        dtype = float32 if dtype is None else xp.dtype(dtype)
        self.weight = Parameter(xp.empty((out_features, in_features), dtype=dtype))
        if bias:
            self.bias = Parameter(xp.empty((out_features,), dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        """Re-draw weight and bias from PyTorch's default distributions."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


__all__ = ["Identity", "Linear"]
