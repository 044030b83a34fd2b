"""Convolution layers: one ``_ConvNd``; ``Conv1d``/``Conv2d``/``Conv3d`` only fix the rank."""
import math

from striate._backend import xp
from striate.autograd.tensor import float32
from striate.kernels.sizes import check_non_negative, check_positive, ntuple, same_padding
from striate.nn import functional as F
from striate.nn import init
from striate.nn.module import Module
from striate.nn.modules._validate import positive_int
from striate.nn.parameter import Parameter

_PADDING_STRINGS = ("valid", "same", "full")
_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


class _ConvNd(Module):
    """Convolution over ``_rank`` spatial dimensions with a learned filter bank and bias.

    Holds ``weight (out_channels, in_channels / groups, *kernel_size)`` and ``bias (out_channels,)``,
    initialised as PyTorch does: weight ~ kaiming_uniform_(a=√5), i.e. U(−1/√fan_in, 1/√fan_in),
    and bias ~ U(−1/√fan_in, 1/√fan_in), where ``fan_in = in_channels / groups · ∏kernel_size``.
    """

    _rank = None

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", dtype=None, flip=False):
        super().__init__()
        name, n = type(self).__name__, self._rank
        self.in_channels = positive_int(in_channels, "in_channels", name)
        self.out_channels = positive_int(out_channels, "out_channels", name)
        self.groups = positive_int(groups, "groups", name)
        if in_channels % groups:
            raise ValueError(f"{name}: in_channels must be divisible by groups. "
                             f"Received: in_channels={in_channels}, groups={groups}")
        if out_channels % groups:
            raise ValueError(f"{name}: out_channels must be divisible by groups. "
                             f"Received: out_channels={out_channels}, groups={groups}")
        self.kernel_size = ntuple(kernel_size, n, "kernel_size", name)
        check_positive(self.kernel_size, "kernel_size", name)
        self.stride = ntuple(stride, n, "stride", name)
        check_positive(self.stride, "stride", name)
        self.dilation = ntuple(dilation, n, "dilation", name)
        check_positive(self.dilation, "dilation", name)
        if isinstance(padding, str):
            if padding not in _PADDING_STRINGS:
                raise ValueError(f"{name}: padding must be an int, a tuple of {n} ints or one of "
                                 f"{_PADDING_STRINGS}. Received: padding={padding!r}")
            self.padding = padding
        else:
            self.padding = ntuple(padding, n, "padding", name)
            check_non_negative(self.padding, "padding", name)
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {_PADDING_MODES}. "
                             f"Received: padding_mode={padding_mode!r}")
        self.padding_mode = padding_mode
        if not isinstance(flip, bool):
            raise TypeError(f"{name}: flip must be True or False. Received: flip={flip!r}")
        self.flip = flip
        dtype = float32 if dtype is None else xp.dtype(dtype)
        self.weight = Parameter(xp.empty((out_channels, in_channels // groups) + self.kernel_size, dtype=dtype))
        if bias:
            self.bias = Parameter(xp.empty((out_channels,), dtype=dtype))
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

    def _explicit_padding(self, size):
        """Per-dimension ``(low, high)`` padding for an input of spatial ``size``."""
        if self.padding == "valid":
            return [(0, 0)] * self._rank
        if self.padding == "same":
            return [same_padding(d, k, s, dil)
                    for d, k, s, dil in zip(size, self.kernel_size, self.stride, self.dilation)]
        if self.padding == "full":
            return [(dil * (k - 1),) * 2 for k, dil in zip(self.kernel_size, self.dilation)]
        return [(p, p) for p in self.padding]

    def forward(self, input):
        conv = _CONV[self._rank]
        if self.padding_mode == "zeros":
            return conv(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups,
                        flip=self.flip)
        # Other modes pad explicitly first, then convolve without padding (as PyTorch does).
        pairs = self._explicit_padding(input.shape[-self._rank:])
        flat = tuple(p for pair in reversed(pairs) for p in pair)  # F.pad lists the last dimension first
        padded = F.pad(input, flat, mode=self.padding_mode)
        return conv(padded, self.weight, self.bias, self.stride, 0, self.dilation, self.groups, flip=self.flip)

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0,) * self._rank:
            text += f", padding={self.padding}"
        if self.dilation != (1,) * self._rank:
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode}"
        if self.flip:
            text += ", flip=True"
        return text


_ARGS = """
    Args:
        in_channels: channels of the input.
        out_channels: channels of the output (number of filters).
        kernel_size: filter size, an int or a tuple (one per spatial dimension).
        stride: step between windows, an int or a tuple. Default 1.
        padding: an int or tuple (added on both sides), or ``"valid"`` (none), ``"same"``
            (``ceil(D / stride)`` outputs, at any stride) or ``"full"``. Default 0.
        dilation: spacing between filter taps. Default 1.
        groups: split the channels into this many independent convolutions; ``in_channels``
            and ``out_channels`` must both divide by it. Default 1.
        bias: whether to learn a per-channel bias. Default True.
        padding_mode: ``"zeros"``, ``"reflect"``, ``"replicate"`` or ``"circular"``.
        dtype: parameter dtype, float32 by default.
        flip: compute true convolution (the kernel reversed on every spatial axis) rather than
            cross-correlation. The parameters and their layout are the same. Default False.

    Shape:
        Input ``(N, C_in, {dims})`` or ``(C_in, {dims})``; output ``(N, C_out, {outs})`` with, per
        dimension, ``O = floor((D + 2·padding − dilation·(kernel_size − 1) − 1) / stride) + 1``.
        Weight ``(C_out, C_in / groups, {kernel})``, bias ``(C_out,)``.
"""


class Conv1d(_ConvNd):
    __doc__ = ("""1-D convolution over ``(N, C, L)`` input (see ``_ConvNd``).
""" + _ARGS.format(dims="L", outs="L_out", kernel="k") + """
    Example::

        >>> conv = nn.Conv1d(16, 33, 3, stride=2)
        >>> conv(st.randn(20, 16, 50)).shape
        (20, 33, 24)
    """)
    _rank = 1


class Conv2d(_ConvNd):
    __doc__ = ("""2-D convolution over ``(N, C, H, W)`` input (see ``_ConvNd``).
""" + _ARGS.format(dims="H, W", outs="H_out, W_out", kernel="kH, kW") + """
    Example::

        >>> conv = nn.Conv2d(3, 16, 3, padding=1)
        >>> conv(st.randn(8, 3, 32, 32)).shape
        (8, 16, 32, 32)
    """)
    _rank = 2


class Conv3d(_ConvNd):
    __doc__ = ("""3-D convolution over ``(N, C, D, H, W)`` input (see ``_ConvNd``).
""" + _ARGS.format(dims="D, H, W", outs="D_out, H_out, W_out", kernel="kD, kH, kW") + """
    Example::

        >>> conv = nn.Conv3d(1, 4, 3, padding="same", padding_mode="reflect")
        >>> conv(st.randn(2, 1, 8, 8, 8)).shape
        (2, 4, 8, 8, 8)
    """)
    _rank = 3


__all__ = ["Conv1d", "Conv2d", "Conv3d"]
