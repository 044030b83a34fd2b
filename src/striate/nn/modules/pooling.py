"""Pooling layers: max, min and average over sliding windows, and their adaptive forms.

Each family has one N-d base; the ``1d``/``2d``/``3d`` classes only fix the rank. Settings are
stored as given (``MaxPool2d(2)`` keeps ``kernel_size=2``), so reprs read like PyTorch's.
"""
from striate.kernels.sizes import check_non_negative, check_positive, ntuple
from striate.nn import functional as F
from striate.nn.module import Module
from striate.nn.modules._validate import positive_int

_SHAPE = """
    Shape:
        Input ``(N, C, *D)`` or ``(C, *D)``; output ``(N, C, *O)`` with, per dimension,
        ``O = floor((D + 2·padding − dilation·(kernel_size − 1) − 1) / stride) + 1``
        (rounded up instead with ``ceil_mode=True``, dropping a last window that would
        start in the right padding).
"""


def _check_window(module, kernel_size, stride, padding, dilation=1):
    """Validate the window settings once, at construction, with the layer's name in every error."""
    name, n = type(module).__name__, module._rank
    check_positive(ntuple(kernel_size, n, "kernel_size", name), "kernel_size", name)
    check_positive(ntuple(stride, n, "stride", name), "stride", name)
    check_non_negative(ntuple(padding, n, "padding", name), "padding", name)
    check_positive(ntuple(dilation, n, "dilation", name), "dilation", name)


class _ExtremePoolNd(Module):
    """Max or min over each window; ``_functions`` maps the rank to the functional op."""

    _rank = None
    _functions = None

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        stride = kernel_size if stride is None else stride
        _check_window(self, kernel_size, stride, padding, dilation)
        self.kernel_size, self.stride, self.padding, self.dilation = kernel_size, stride, padding, dilation
        self.return_indices, self.ceil_mode = bool(return_indices), bool(ceil_mode)

    def forward(self, input):
        return self._functions[self._rank](input, self.kernel_size, stride=self.stride, padding=self.padding,
                                           dilation=self.dilation, ceil_mode=self.ceil_mode,
                                           return_indices=self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


_EXTREME_ARGS = """
    Args:
        kernel_size: window size, an int or a tuple.
        stride: step between windows; defaults to ``kernel_size``.
        padding: implicit padding on both sides (never selected: padding counts as ∓∞),
            at most half the kernel.
        dilation: spacing between window taps.
        return_indices: also return the flat index (within each input plane) of every selected element.
        ceil_mode: round the output size up instead of down.
"""


class _MaxPoolNd(_ExtremePoolNd):
    _functions = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}


class _MinPoolNd(_ExtremePoolNd):
    _functions = {1: F.min_pool1d, 2: F.min_pool2d, 3: F.min_pool3d}


class MaxPool1d(_MaxPoolNd):
    __doc__ = "Maximum over sliding windows of a ``(N, C, L)`` input.\n" + _EXTREME_ARGS + _SHAPE + """
    Example::

        >>> nn.MaxPool1d(3, stride=2)(st.randn(20, 16, 50)).shape
        (20, 16, 24)
    """
    _rank = 1


class MaxPool2d(_MaxPoolNd):
    __doc__ = "Maximum over sliding windows of a ``(N, C, H, W)`` input.\n" + _EXTREME_ARGS + _SHAPE + """
    Example::

        >>> nn.MaxPool2d(2)(st.randn(8, 16, 32, 32)).shape
        (8, 16, 16, 16)
    """
    _rank = 2


class MaxPool3d(_MaxPoolNd):
    __doc__ = "Maximum over sliding windows of a ``(N, C, D, H, W)`` input.\n" + _EXTREME_ARGS + _SHAPE + """
    Example::

        >>> nn.MaxPool3d(2)(st.randn(2, 4, 8, 8, 8)).shape
        (2, 4, 4, 4, 4)
    """
    _rank = 3


class MinPool1d(_MinPoolNd):
    __doc__ = ("Minimum over sliding windows of a ``(N, C, L)`` input (no PyTorch twin).\n"
               + _EXTREME_ARGS + _SHAPE + """
    Example::

        >>> nn.MinPool1d(2)(st.randn(4, 3, 10)).shape
        (4, 3, 5)
    """)
    _rank = 1


class MinPool2d(_MinPoolNd):
    __doc__ = ("Minimum over sliding windows of a ``(N, C, H, W)`` input (no PyTorch twin).\n"
               + _EXTREME_ARGS + _SHAPE + """
    Example::

        >>> nn.MinPool2d(2)(st.randn(4, 3, 10, 10)).shape
        (4, 3, 5, 5)
    """)
    _rank = 2


class MinPool3d(_MinPoolNd):
    __doc__ = ("Minimum over sliding windows of a ``(N, C, D, H, W)`` input (no PyTorch twin).\n"
               + _EXTREME_ARGS + _SHAPE + """
    Example::

        >>> nn.MinPool3d(2)(st.randn(4, 3, 6, 6, 6)).shape
        (4, 3, 3, 3, 3)
    """)
    _rank = 3


class _AvgPoolNd(Module):
    """Mean over each window."""

    _rank = None
    _functions = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__()
        stride = kernel_size if stride is None else stride
        _check_window(self, kernel_size, stride, padding)
        if divisor_override is not None:
            positive_int(divisor_override, "divisor_override", type(self).__name__)
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = bool(ceil_mode), bool(count_include_pad)
        self.divisor_override = divisor_override

    def forward(self, input):
        return self._functions[self._rank](input, self.kernel_size, stride=self.stride, padding=self.padding,
                                           ceil_mode=self.ceil_mode, count_include_pad=self.count_include_pad,
                                           divisor_override=self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


_AVG_ARGS = """
    Args:
        kernel_size: window size, an int or a tuple.
        stride: step between windows; defaults to ``kernel_size``.
        padding: implicit zero padding on both sides, at most half the kernel.
        ceil_mode: round the output size up instead of down.
        count_include_pad: divide by the full window size, padding included (else by the
            number of real input elements in the window).
        divisor_override: if given, divide every window's sum by this instead.
"""
_AVG_SHAPE = _SHAPE.replace("dilation·(kernel_size − 1) − 1", "kernel_size")


class AvgPool1d(_AvgPoolNd):
    __doc__ = "Mean over sliding windows of a ``(N, C, L)`` input.\n" + _AVG_ARGS + _AVG_SHAPE + """
    Example::

        >>> nn.AvgPool1d(2)(st.randn(4, 3, 10)).shape
        (4, 3, 5)
    """
    _rank = 1


class AvgPool2d(_AvgPoolNd):
    __doc__ = "Mean over sliding windows of a ``(N, C, H, W)`` input.\n" + _AVG_ARGS + _AVG_SHAPE + """
    Example::

        >>> nn.AvgPool2d(3, stride=2, padding=1)(st.randn(4, 3, 10, 10)).shape
        (4, 3, 5, 5)
    """
    _rank = 2


class AvgPool3d(_AvgPoolNd):
    __doc__ = "Mean over sliding windows of a ``(N, C, D, H, W)`` input.\n" + _AVG_ARGS + _AVG_SHAPE + """
    Example::

        >>> nn.AvgPool3d(2)(st.randn(2, 3, 6, 6, 6)).shape
        (2, 3, 3, 3, 3)
    """
    _rank = 3


def _check_output_size(module, output_size):
    name, n = type(module).__name__, module._rank
    sizes = (output_size,) * n if output_size is None or isinstance(output_size, int) else tuple(output_size)
    if len(sizes) == 1:
        sizes = sizes * n
    if len(sizes) != n or any(s is not None and (isinstance(s, bool) or not isinstance(s, int) or s <= 0)
                              for s in sizes):
        raise ValueError(f"{name}: output_size must be a positive int or a tuple of {n} positive ints "
                         f"(None keeps the input size). Received: output_size={output_size!r}")


_ADAPTIVE_SHAPE = """
    Shape:
        Input ``(N, C, *D)`` or ``(C, *D)``; output ``(N, C, *output_size)``. Output cell ``i``
        of a dimension pools the inputs ``floor(i·D / O)`` to ``ceil((i + 1)·D / O)`` (exclusive).
"""


class _AdaptiveAvgPoolNd(Module):
    """Mean over windows chosen so the output has exactly ``output_size`` cells."""

    _rank = None
    _functions = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}

    def __init__(self, output_size):
        super().__init__()
        _check_output_size(self, output_size)
        self.output_size = output_size

    def forward(self, input):
        return self._functions[self._rank](input, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    __doc__ = """Average pooling of ``(N, C, L)`` input to ``output_size`` cells.

    Args:
        output_size: the output length.
""" + _ADAPTIVE_SHAPE + """
    Example::

        >>> nn.AdaptiveAvgPool1d(5)(st.randn(1, 64, 8)).shape
        (1, 64, 5)
    """
    _rank = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    __doc__ = """Average pooling of ``(N, C, H, W)`` input to ``output_size`` cells.

    Args:
        output_size: an int (square) or ``(H_out, W_out)``; ``None`` keeps that input size.
""" + _ADAPTIVE_SHAPE + """
    Example::

        >>> nn.AdaptiveAvgPool2d(1)(st.randn(8, 512, 7, 7)).shape   # global average pooling
        (8, 512, 1, 1)
    """
    _rank = 2


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    __doc__ = """Average pooling of ``(N, C, D, H, W)`` input to ``output_size`` cells.

    Args:
        output_size: an int (cube) or ``(D_out, H_out, W_out)``; ``None`` keeps that input size.
""" + _ADAPTIVE_SHAPE + """
    Example::

        >>> nn.AdaptiveAvgPool3d((2, 3, 3))(st.randn(1, 4, 8, 9, 9)).shape
        (1, 4, 2, 3, 3)
    """
    _rank = 3


class _AdaptiveMaxPoolNd(Module):
    """Maximum over windows chosen so the output has exactly ``output_size`` cells."""

    _rank = None
    _functions = {1: F.adaptive_max_pool1d, 2: F.adaptive_max_pool2d, 3: F.adaptive_max_pool3d}

    def __init__(self, output_size, return_indices=False):
        super().__init__()
        _check_output_size(self, output_size)
        self.output_size, self.return_indices = output_size, bool(return_indices)

    def forward(self, input):
        return self._functions[self._rank](input, self.output_size, return_indices=self.return_indices)

    def extra_repr(self):
        return f"output_size={self.output_size}"


_ADAPTIVE_MAX_ARGS = """
    Args:
        output_size: an int or a tuple (one per spatial dimension); ``None`` keeps that input size.
        return_indices: also return the flat index (within each input plane) of every maximum.
"""


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    __doc__ = ("Max pooling of ``(N, C, L)`` input to ``output_size`` cells.\n"
               + _ADAPTIVE_MAX_ARGS + _ADAPTIVE_SHAPE + """
    Example::

        >>> nn.AdaptiveMaxPool1d(5)(st.randn(1, 64, 8)).shape
        (1, 64, 5)
    """)
    _rank = 1


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    __doc__ = ("Max pooling of ``(N, C, H, W)`` input to ``output_size`` cells.\n"
               + _ADAPTIVE_MAX_ARGS + _ADAPTIVE_SHAPE + """
    Example::

        >>> nn.AdaptiveMaxPool2d((5, 7))(st.randn(1, 64, 8, 9)).shape
        (1, 64, 5, 7)
    """)
    _rank = 2


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    __doc__ = ("Max pooling of ``(N, C, D, H, W)`` input to ``output_size`` cells.\n"
               + _ADAPTIVE_MAX_ARGS + _ADAPTIVE_SHAPE + """
    Example::

        >>> nn.AdaptiveMaxPool3d(2)(st.randn(1, 4, 8, 9, 10)).shape
        (1, 4, 2, 2, 2)
    """)
    _rank = 3


__all__ = ["MaxPool1d", "MaxPool2d", "MaxPool3d", "MinPool1d", "MinPool2d", "MinPool3d",
           "AvgPool1d", "AvgPool2d", "AvgPool3d",
           "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d",
           "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d"]
