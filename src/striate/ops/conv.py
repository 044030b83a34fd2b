"""Convolution of any spatial rank, lowered to matrix products over sliding windows.

One ``ConvND`` serves 1-D, 2-D and 3-D. The padded input is viewed as its windows
(``sliding_windows``, no copy); a block of samples at a time, the windows are copied out as
columns and each group's filters multiply them in one matrix product. Backward rebuilds the
same columns: the weight gradient is ``gy · colsᵀ`` and the input gradient is ``Wᵀ · gy``
scattered back onto the image by ``fold`` (the adjoint of taking windows). At stride 1 the
products run over an output grid a little wider than the output (see `_grid_windows`), which
makes the column copies long and fast.
"""
import math

from striate._backend import xp
from striate.autograd.function import Function
from striate.kernels.sizes import check_non_negative, check_positive, ntuple, same_padding, window_span
from striate.kernels.windows import crop_spatial, fold, pad_spatial, sliding_windows
from striate.ops._validate import as_tensor, expect_float, expect_spatial_input

_PADDING_MODES = ("valid", "same", "full")


# Samples are processed in blocks whose columns take about this many bytes, so each block's
# columns are still in cache when the matrix product reads them (and memory stays bounded).
_BLOCK_BYTES = 4 * 2**20


def _wraps(stride):
    """Whether the output grid spans whole padded rows (see `_grid_windows`): stride 1, two or more dims."""
    return len(stride) > 1 and all(s == 1 for s in stride)


def _grid_windows(x_padded, kernel, stride, dilation):
    """Windows ``(N, C, *grid, *K)`` of the padded input, the output ``grid`` and the true output size.

    With strides > 1 (or one spatial dimension) the grid is the output size ``(O₁, …, Oₙ)``. At
    stride 1 in two or more dimensions it spans whole padded rows, ``(O₁, Dp₂, …, Dpₙ)``: windows
    past a row's last valid position run on into the next row (``x_padded`` then carries one
    extra zero row at the end, so the last sample stays in bounds), and their outputs are
    dropped after the product. In exchange, each window column is one contiguous run of the
    input, so copying columns out takes a few long copies instead of one short copy per image
    row: several times faster on small images.
    """
    n = len(kernel)
    if not _wraps(stride):
        windows = sliding_windows(x_padded, kernel, stride, dilation)             # (N, C, *O, *K) view
        out_size = windows.shape[2:2 + n]
        return windows, out_size, out_size
    padded = x_padded.shape[2:]
    span = [dil * (k - 1) for k, dil in zip(kernel, dilation)]
    out_size = (padded[0] - 1 - span[0],) + tuple(d - sp for d, sp in zip(padded[1:], span[1:]))
    grid = (out_size[0],) + padded[1:]
    windows = x_padded.reshape(*x_padded.shape[:2], math.prod(padded))            # (N, C, ∏Dp) view
    for k, dil, pitch in zip(kernel, dilation, (math.prod(padded[i + 1:]) for i in range(n))):
        # One tap axis at a time along the flat image: a step of dilation × pitch per tap.
        windows = sliding_windows(windows, (k,), (1,), (dil * pitch,)).swapaxes(-1, -2)  # (N, C, *K so far, L)
    windows = windows[..., :math.prod(grid)].reshape(*windows.shape[:-1], *grid)  # (N, C, *K, *grid)
    windows = windows.transpose(0, 1, *range(2 + n, 2 + 2 * n), *range(2, 2 + n))  # (N, C, *grid, *K)
    return windows, grid, out_size


def _columns(windows, groups):
    """Windows ``(n, C, *grid, *K)`` of a block of samples as per-group columns ``(G, Cg·∏K, n·∏grid)``.

    Every sample's output positions sit side by side, so each group needs a single large matrix
    product rather than one small product per sample.
    """
    dims = (windows.ndim - 2) // 2
    batch, channels, *rest = windows.shape
    windows = windows.reshape(batch, groups, channels // groups, *rest)          # (n, G, Cg, *grid, *K)
    cols = windows.transpose(1, 2, *range(3 + dims, 3 + 2 * dims), 0, *range(3, 3 + dims))  # (G, Cg, *K, n, *grid)
    return cols.reshape(groups, -1, batch * math.prod(rest[:dims]))             # (G, Cg·∏K, n·∏grid) copy


def _windows_of(cols, kernel, grid, out_size):
    """Inverse of `_columns`, keeping the true outputs: ``(G, Cg·∏K, n·∏grid)`` as ``(n, C, *O, *K)``."""
    dims, groups = len(kernel), cols.shape[0]
    batch = cols.shape[2] // math.prod(grid)
    cols = _valid(cols.reshape(groups, -1, *kernel, batch, *grid), out_size)    # (G, Cg, *K, n, *O) view
    # (G, Cg, *K, n, *O) → (n, G, Cg, *O, *K)
    windows = cols.transpose(2 + dims, 0, 1, *range(3 + dims, 3 + 2 * dims), *range(2, 2 + dims))
    return windows.reshape(batch, -1, *out_size, *kernel)                        # (n, C, *O, *K) view


def _valid(grid_array, out_size):
    """The true outputs ``[..., :O₁, …, :Oₙ]`` of an array whose last axes span the output grid."""
    return grid_array[(Ellipsis,) + tuple(slice(0, o) for o in out_size)]


def _blocks(batch, bytes_per_sample):
    """``slice``s of the batch, each holding as many samples as fit in ``_BLOCK_BYTES`` (at least one)."""
    step = max(1, _BLOCK_BYTES // max(1, bytes_per_sample))
    return [slice(start, min(start + step, batch)) for start in range(0, batch, step)]


class ConvND(Function):
    """Cross-correlation of ``x (N, C, *D)`` with ``w (O, C/G, *K)`` plus an optional bias ``b (O,)``.

    Padding arrives already resolved to per-dimension ``pad_lo``/``pad_hi`` (they may differ,
    as "same" needs), and every setting is an ``n``-tuple of ints. Columns are built block by
    block and never stored: backward rebuilds them from the saved padded input.
    """

    def forward(self, x, w, b, *, stride, pad_lo, pad_hi, dilation, groups):
        batch, channels = x.shape[:2]
        out_channels, _, *kernel = w.shape
        n = len(kernel)
        # One more zero row when the output grid wraps, for the last windows to read (see `_grid_windows`).
        x_padded = pad_spatial(x, pad_lo, (pad_hi[0] + _wraps(stride),) + tuple(pad_hi[1:]))
        windows, grid, out_size = _grid_windows(x_padded, kernel, stride, dilation)
        w_mat = w.reshape(groups, out_channels // groups, -1)                   # (G, Og, Cg·∏K)
        y = xp.empty((batch, out_channels, *out_size), dtype=x.dtype)           # (N, O, *O)
        for block in _blocks(batch, channels * math.prod(kernel) * math.prod(grid) * x.itemsize):
            y_block = xp.matmul(w_mat, _columns(windows[block], groups))        # (G, Og, n·∏grid)
            y_block = _valid(y_block.reshape(out_channels, -1, *grid), out_size)  # (O, n, *O) view
            y_block = y_block.swapaxes(0, 1)                                    # (n, O, *O) view
            if b is None:
                y[block] = y_block
            else:
                xp.add(y_block, b.reshape(out_channels, *(1,) * n), out=y[block])  # bias added while copying

        need_x, need_w, _ = self.needs_input_grad
        self.x_padded = x_padded if need_w else None
        self.w_mat = w_mat if need_x else None
        self.kernel, self.stride, self.dilation, self.groups = tuple(kernel), stride, dilation, groups
        self.channels, self.input_size, self.pad_lo, self.grid = channels, x.shape[2:], pad_lo, grid
        self.padded_size = tuple(d + lo + hi for d, lo, hi in zip(x.shape[2:], pad_lo, pad_hi))
        return y

    def backward(self, gy):
        need_x, need_w, need_b = self.needs_input_grad
        kernel, groups, channels, grid = self.kernel, self.groups, self.channels, self.grid
        batch, out_channels, *out_size = gy.shape
        n, group_out = len(kernel), out_channels // groups
        gx = gw = gb = None
        if need_b:
            gb = gy.sum(axis=(0, *range(2, gy.ndim)))                           # (O,)
        if need_x:
            gx = xp.empty((batch, channels, *self.input_size), dtype=gy.dtype)  # (N, C, *D)
        if need_w:
            gw = xp.zeros((groups, group_out, channels // groups * math.prod(kernel)), dtype=gy.dtype)
            windows, _, _ = _grid_windows(self.x_padded, kernel, self.stride, self.dilation)
        if not (need_x or need_w):
            return gx, gw, gb
        for block in _blocks(batch, channels * math.prod(kernel) * math.prod(grid) * gy.itemsize):
            gy_block = gy[block].reshape(-1, groups, group_out, *out_size)      # (n, G, Og, *O)
            samples = gy_block.shape[0]
            # The upstream gradient laid out like the products' output: zero off the true outputs.
            gy_grid = xp.zeros((groups, group_out, samples, *grid), dtype=gy.dtype)  # (G, Og, n, *grid)
            _valid(gy_grid, out_size)[...] = gy_block.transpose(1, 2, 0, *range(3, 3 + n))
            gy_grid = gy_grid.reshape(groups, group_out, -1)                    # (G, Og, n·∏grid)
            if need_w:
                gw += xp.matmul(gy_grid, _columns(windows[block], groups).swapaxes(-1, -2))  # (G, Og, Cg·∏K)
            if need_x:
                gcols = xp.matmul(self.w_mat.swapaxes(-1, -2), gy_grid)         # (G, Cg·∏K, n·∏grid)
                gwindows = _windows_of(gcols, kernel, grid, out_size)           # (n, C, *O, *K) view
                gx_padded = fold(gwindows, self.padded_size, kernel, self.stride, self.dilation)  # (n, C, *Dp)
                gx[block] = crop_spatial(gx_padded, self.pad_lo, self.input_size)
        if need_w:
            gw = gw.reshape(out_channels, -1, *kernel)                          # (O, Cg, *K)
        return gx, gw, gb


def _resolve_padding(padding, size, kernel, stride, dilation, op):
    """Per-dimension (low, high) padding from an int, a tuple or "valid" / "same" / "full"."""
    n = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return (0,) * n, (0,) * n
        if padding == "same":
            pairs = [same_padding(d, k, s, dil) for d, k, s, dil in zip(size, kernel, stride, dilation)]
            return tuple(lo for lo, _ in pairs), tuple(hi for _, hi in pairs)
        if padding == "full":
            full = tuple(dil * (k - 1) for k, dil in zip(kernel, dilation))
            return full, full
        raise ValueError(f"{op}: padding must be an int, a tuple of {n} ints or one of "
                         f"{', '.join(repr(m) for m in _PADDING_MODES)}, got {padding!r}")
    pad = ntuple(padding, n, "padding", op)
    check_non_negative(pad, "padding", op)
    return pad, pad


def conv_nd(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, flip=False):
    """N-d convolution (cross-correlation, as in every deep-learning library) of ``input`` with ``weight``.

    The number of spatial dimensions ``n`` is ``weight.ndim − 2``.

    Args:
        input: ``(N, C_in, *D)`` or unbatched ``(C_in, *D)``.
        weight: ``(C_out, C_in / groups, *K)``.
        bias: optional ``(C_out,)``.
        stride: step between windows, an int or an ``n``-tuple (positive).
        padding: zeros added around the input: an int or ``n``-tuple (both sides alike), or
            ``"valid"`` (none), ``"full"`` (``dilation·(k − 1)`` on both sides, every partial
            overlap) or ``"same"``. "same" gives ``ceil(d / stride)`` outputs at ANY stride and
            dilation (PyTorch refuses stride > 1 with "same"; striate allows it, like
            TensorFlow): the total padding is
            ``max((ceil(d/s) − 1)·s + (k − 1)·dil + 1 − d, 0)``, split evenly with the odd
            sample on the high side.
        dilation: spacing between kernel taps, an int or ``n``-tuple (positive).
        groups: split channels into ``groups`` independent convolutions; ``groups == C_in``
            is a depthwise convolution. Both ``C_in`` and ``C_out`` must divide by it.
        flip: compute the mathematician's convolution instead: the kernel is reversed on every
            spatial axis before it slides, ``Σ x[i − j]·w[j]`` rather than ``Σ x[i + j]·w[j]``.
            Learned filters don't care which one a layer computes (the flipped filter is
            learned instead); classical filters and `striate.signal.convolve` do. Default False.

    Shape:
        Output ``(N, C_out, *O)`` (no ``N`` for unbatched input), per dimension
        ``O = floor((D + lo + hi − dilation·(K − 1) − 1) / stride) + 1``
        with ``lo``/``hi`` the padding on each side.

    Example::

        >>> x = st.randn(8, 3, 32, 32)
        >>> w = st.randn(16, 3, 3, 3, requires_grad=True)
        >>> conv_nd(x, w, stride=2, padding="same").shape
        (8, 16, 16, 16)
    """
    return _convolve(input, weight, bias, stride, padding, dilation, groups, flip, "conv_nd")


def _convolve(input, weight, bias, stride, padding, dilation, groups, flip, op, rank=None):
    """Validate and normalise every argument once, naming ``op`` in errors, then run `ConvND`.

    ``rank`` fixes the number of spatial dimensions (conv1d/2d/3d); without it the weight decides.
    """
    weight = as_tensor(weight, op, "weight")
    if rank is None:
        n = weight.ndim - 2
        if n < 1:
            raise ValueError(f"{op}: expected weight of shape (C_out, C_in / groups, *kernel) with at least one "
                             f"spatial dimension, got {weight.ndim}-D weight of shape {tuple(weight.shape)}")
        input = as_tensor(input, op)
        if input.ndim not in (n + 1, n + 2):
            raise ValueError(f"{op}: a {weight.ndim}-D weight has {n} spatial dimension(s), so the input must be "
                             f"{n + 2}-D (N, C, *D) or {n + 1}-D (C, *D), got {input.ndim}-D input of shape "
                             f"{tuple(input.shape)}")
    else:
        n = rank
    x, added_batch = expect_spatial_input(input, n, op)
    if weight.ndim != n + 2:
        kernel = ", ".join(f"k{i}" for i in range(1, n + 1))
        raise ValueError(f"{op}: expected {n + 2}-D weight of shape (C_out, C_in / groups, {kernel}), got "
                         f"{weight.ndim}-D weight of shape {tuple(weight.shape)}")
    expect_float(x, op)
    expect_float(weight, op, "weight")
    if weight.dtype != x.dtype:
        raise TypeError(f"{op}: input and weight must have the same dtype, got input {x.dtype} "
                        f"and weight {weight.dtype}")
    if isinstance(groups, bool) or not isinstance(groups, int) and not hasattr(groups, "__index__"):
        raise TypeError(f"{op}: groups must be an int, got {groups!r}")
    groups = int(groups)
    if groups <= 0:
        raise ValueError(f"{op}: groups must be positive, got {groups}")
    channels, size = x.shape[1], tuple(x.shape[2:])
    out_channels, kernel = weight.shape[0], tuple(weight.shape[2:])
    if channels != weight.shape[1] * groups:
        raise ValueError(f"{op}: input channels must equal weight.shape[1] · groups, got {channels} input "
                         f"channels and weight of shape {tuple(weight.shape)} with groups={groups} "
                         f"(expects {weight.shape[1] * groups})")
    if out_channels % groups:
        raise ValueError(f"{op}: output channels (weight.shape[0]) must be divisible by groups, "
                         f"got {out_channels} output channels and groups={groups}")
    if bias is not None:
        bias = as_tensor(bias, op, "bias")
        if tuple(bias.shape) != (out_channels,):
            raise ValueError(f"{op}: expected bias of shape ({out_channels},) (one per output channel), "
                             f"got shape {tuple(bias.shape)}")
        if bias.dtype != x.dtype:
            raise TypeError(f"{op}: bias must have the input's dtype {x.dtype}, got {bias.dtype}")

    stride = ntuple(stride, n, "stride", op)
    check_positive(stride, "stride", op)
    dilation = ntuple(dilation, n, "dilation", op)
    check_positive(dilation, "dilation", op)
    pad_lo, pad_hi = _resolve_padding(padding, size, kernel, stride, dilation, op)
    padded = tuple(d + lo + hi for d, lo, hi in zip(size, pad_lo, pad_hi))
    span = window_span(kernel, dilation)
    if any(s > p for s, p in zip(span, padded)):
        raise ValueError(f"{op}: the (dilated) kernel must fit in the padded input (else the output is "
                         f"empty), got kernel span "
                         f"{span} (kernel {kernel}, dilation {dilation}) and padded input size {padded} "
                         f"(input {size}, padding {tuple(zip(pad_lo, pad_hi))})")

    if not isinstance(flip, (bool, xp.bool_)):
        raise TypeError(f"{op}: flip must be True or False, got {flip!r}")
    if bool(flip):
        # True convolution is correlation with the kernel reversed on every spatial axis; the
        # reversal is an indexing op, so the weight's gradient is reversed back by autograd.
        weight = weight[(slice(None), slice(None)) + (slice(None, None, -1),) * n]
    y = ConvND.apply(x, weight, bias, stride=stride, pad_lo=pad_lo, pad_hi=pad_hi,
                     dilation=dilation, groups=groups)
    return y.squeeze(0) if added_batch else y


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, flip=False):
    """1-D convolution: `conv_nd` with exactly one spatial dimension (same arguments).

    Shape:
        input ``(N, C_in, L)`` or ``(C_in, L)``, weight ``(C_out, C_in / groups, k)``, output
        ``(N, C_out, L_out)`` with ``L_out = floor((L + lo + hi − dilation·(k − 1) − 1) / stride) + 1``.

    Example::

        >>> F.conv1d(st.randn(4, 2, 100), st.randn(8, 2, 5), padding="same", stride=3).shape
        (4, 8, 34)
    """
    return _convolve(input, weight, bias, stride, padding, dilation, groups, flip, "conv1d", rank=1)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, flip=False):
    """2-D convolution: `conv_nd` with exactly two spatial dimensions (same arguments).

    Shape:
        input ``(N, C_in, H, W)`` or ``(C_in, H, W)``, weight ``(C_out, C_in / groups, kH, kW)``,
        output ``(N, C_out, H_out, W_out)``, each
        ``floor((D + lo + hi − dilation·(k − 1) − 1) / stride) + 1``.

    Example::

        >>> F.conv2d(st.randn(8, 3, 32, 32), st.randn(16, 3, 5, 5), st.zeros(16)).shape
        (8, 16, 28, 28)
    """
    return _convolve(input, weight, bias, stride, padding, dilation, groups, flip, "conv2d", rank=2)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, flip=False):
    """3-D convolution: `conv_nd` with exactly three spatial dimensions (same arguments).

    Shape:
        input ``(N, C_in, D, H, W)`` or ``(C_in, D, H, W)``, weight ``(C_out, C_in / groups, kD, kH, kW)``,
        output ``(N, C_out, D_out, H_out, W_out)``, each
        ``floor((D + lo + hi − dilation·(k − 1) − 1) / stride) + 1``.

    Example::

        >>> F.conv3d(st.randn(2, 1, 16, 16, 16), st.randn(4, 1, 3, 3, 3), padding="full").shape
        (2, 4, 18, 18, 18)
    """
    return _convolve(input, weight, bias, stride, padding, dilation, groups, flip, "conv3d", rank=3)


__all__ = ["conv_nd", "conv1d", "conv2d", "conv3d"]
