"""Pooling of any spatial rank: max, min and average over sliding windows, and adaptive pooling.

Each pool is written once for N spatial dimensions; ``max_pool2d`` and its siblings only fix
the rank. Windowed pools read their windows through ``sliding_windows`` (a zero-copy view)
and size their output with PyTorch's ``pool_output_size`` rule.

Max and min pooling *choose* on plain arrays: they scan every window's taps in order, as
PyTorch's CPU kernel does (the first extreme wins, a NaN beats everything), keeping the winning
value and its flat index inside the input plane. One small Function then makes the chosen
values differentiable: its backward sends each output's gradient to the chosen element, adding
where windows overlap. Adaptive max pooling chooses over its bins the same way and shares it.
"""
import functools
import itertools
import math
import numbers
from typing import NamedTuple

from striate._backend import xp
from striate.autograd.function import Function
from striate.autograd.grad_mode import is_grad_enabled
from striate.autograd.tensor import Tensor
from striate.kernels.sizes import check_non_negative, check_positive, ntuple, pool_output_size, window_span
from striate.kernels.windows import crop_spatial, fold, pad_spatial, sliding_windows
from striate.ops._validate import einsum_layout, expect_float, expect_spatial_input, spatial_layout


# ----- where the windows lie ----------------------------------------------------------------

class _Windows(NamedTuple):
    """The windows of one pooling call: per-dimension settings, input ``size`` and output ``out``."""

    kernel: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    size: tuple
    out: tuple

    def positions(self, d):
        """Input positions every window reads along dimension ``d``: ``(O, K)`` of ``o·s + k·dil − p``."""
        o = xp.arange(self.out[d])[:, None]
        k = xp.arange(self.kernel[d])[None, :]
        return o * self.stride[d] + k * self.dilation[d] - self.padding[d]

    def pad_hi(self):
        """Right padding that holds every window, including ceil-mode windows that overhang it."""
        spans = window_span(self.kernel, self.dilation)
        return tuple(max(p, (o - 1) * s + span - p - d)
                     for p, o, s, span, d in zip(self.padding, self.out, self.stride, spans, self.size))

    def taps_inside(self, d, lo, hi):
        """How many taps of each window along dimension ``d`` fall in ``[lo, hi)``: ``(O,)``."""
        positions = self.positions(d)
        return ((positions >= lo) & (positions < hi)).sum(axis=1)


def _windows(op, size, kernel_size, stride, padding, dilation, ceil_mode):
    """Normalise and check the window arguments of a pool over an input of spatial ``size``."""
    n = len(size)
    kernel = ntuple(kernel_size, n, "kernel_size", op)
    stride = kernel if stride is None else ntuple(stride, n, "stride", op)
    padding = ntuple(padding, n, "padding", op)
    dilation = ntuple(dilation, n, "dilation", op)
    check_positive(kernel, "kernel_size", op)
    check_positive(stride, "stride", op)
    check_positive(dilation, "dilation", op)
    check_non_negative(padding, "padding", op)
    if any(p > k // 2 for p, k in zip(padding, kernel)):
        raise ValueError(f"{op}: padding must be at most half the kernel size (padding <= kernel_size // 2), "
                         f"got padding {padding} for kernel_size {kernel}")
    out = tuple(pool_output_size(d, k, s, p, dil, ceil_mode)
                for d, k, s, p, dil in zip(size, kernel, stride, padding, dilation))
    if any(o <= 0 for o in out):
        raise ValueError(f"{op}: output size must be positive, got {out} for input size {size} with "
                         f"kernel_size {kernel}, stride {stride}, padding {padding}, dilation {dilation}, "
                         f"ceil_mode={bool(ceil_mode)}")
    windows = _Windows(kernel, stride, padding, dilation, tuple(size), out)
    # A dilated window can straddle the whole input and read only padding; PyTorch then returns
    # -inf and an index outside the input, so refuse instead.
    for d in range(n):
        empty = xp.flatnonzero(windows.taps_inside(d, 0, size[d]) == 0)
        if empty.size:
            raise ValueError(f"{op}: every window must cover at least one input element, but along spatial "
                             f"dimension {d} the window at output position {int(empty[0])} reads only padding "
                             f"(input size {size[d]}, kernel_size {kernel[d]}, stride {stride[d]}, "
                             f"padding {padding[d]}, dilation {dilation[d]})")
    return windows


def _adaptive_output_size(op, size, output_size):
    """``output_size`` as a tuple of positive ints; ``None`` keeps that input size."""
    n = len(size)

    def is_int(v):
        return isinstance(v, numbers.Integral) and not isinstance(v, bool)

    if is_int(output_size):
        values = (output_size,) * n
    else:
        try:
            values = tuple(output_size)
        except TypeError:
            raise TypeError(f"{op}: output_size must be an int or a tuple of {n} ints or None, "
                            f"got {output_size!r}") from None
        if len(values) != n or not all(v is None or is_int(v) for v in values):
            raise ValueError(f"{op}: output_size must be an int or a tuple of {n} ints or None, "
                             f"got {output_size!r}")
    out = tuple(d if v is None else int(v) for v, d in zip(values, size))
    if any(o <= 0 for o in out):
        raise ValueError(f"{op}: output_size must be positive in every dimension, got {output_size!r}")
    if any(d <= 0 for d in size):
        raise ValueError(f"{op}: input spatial size must be positive in every dimension, got {size}")
    return out


def _bins(size, out):
    """PyTorch's adaptive bins along one dimension: bin ``i`` is ``[floor(i·D/O), ceil((i+1)·D/O))``."""
    i = xp.arange(out)
    return (i * size) // out, -(-(i + 1) * size // out)


# ----- choosing the winner of every window: plain arrays, no gradient ------------------------

def _row_major_strides(size):
    return tuple(math.prod(size[d + 1:]) for d in range(len(size)))


def _tap_index_table(tables, size):
    """``(∏O, ∏K)``: the flat plane index that tap ``k`` of window ``o`` reads.

    Built from per-dimension positions ``tables[d]`` of shape ``(O_d, K_d)``; it depends only on
    the geometry, so it is as small as one plane's windows, whatever the batch.
    """
    n = len(tables)
    table = xp.zeros((), dtype=xp.int64)
    for d, (positions, step) in enumerate(zip(tables, _row_major_strides(size))):
        shape = [1] * (2 * n)
        shape[d], shape[n + d] = positions.shape
        table = table + (positions * step).reshape(shape)  # broadcasts to (*O, *K)
    return table.reshape(math.prod(t.shape[0] for t in tables), -1)  # (∏O, ∏K)


def _scan(tap_values, taps, first, shape, dtype, largest):
    """The extreme of every window ``shape`` and the tap it came from, taps scanned in order.

    This is PyTorch's CPU loop vectorised over windows: start from tap ``first`` with best value
    ∓inf; a tap wins when strictly better than the best so far, or NaN. So the first extreme
    wins ties, the last NaN wins over any number, and a window whose real elements are all
    −inf (for max) reports its first real element. ``tap_values(t)`` gives tap ``t`` of every
    window; taps before ``first`` must never win.
    """
    better, extreme = (xp.greater, xp.maximum) if largest else (xp.less, xp.minimum)
    tap_type = xp.min_scalar_type(taps - 1)
    # NaN is rare, so scan without testing for it; a NaN propagates to the best value, and
    # only then is the scan repeated with PyTorch's NaN rule.
    dense = xp.empty(shape, dtype=dtype)
    for nan_aware in (False, True):
        best = xp.full(shape, -xp.inf if largest else xp.inf, dtype=dtype)
        chosen = xp.empty(shape, dtype=tap_type)
        chosen[...] = first
        wins, scratch = xp.empty(shape, dtype=bool), xp.empty(shape, dtype=tap_type)
        for t in range(taps):
            values = tap_values(t)
            if not values.flags.c_contiguous:
                # read a strided tap once into a dense buffer, not twice (compare, then extreme)
                xp.copyto(dense, values)
                values = dense
            better(values, best, out=wins)
            if nan_aware:
                wins |= xp.isnan(values)
            extreme(best, values, out=best)
            # Taps come in increasing order, so the last tap that won is the largest winning
            # tap: a running maximum, cheaper than a masked write.
            xp.multiply(wins, tap_type.type(t), out=scratch)
            xp.maximum(chosen, scratch, out=chosen)
        if nan_aware or not xp.isnan(best).any():
            return best, chosen


def _plane_indices(table, chosen):
    """Flat plane indices ``(N, C, *O)`` of the chosen taps, through the ``(∏O, ∏K)`` table."""
    windows = xp.arange(table.shape[0])
    return table[windows, chosen.reshape(-1, table.shape[0])].reshape(chosen.shape)  # (N·C, ∏O) → (N, C, *O)


def _choose_in_windows(x, windows, largest):
    """The max (or min) ``(N, C, *O)`` of every window of ``x`` and its flat index in the input plane."""
    n = len(windows.kernel)
    # Padding reads as ∓inf so it never beats a real element.
    padded = pad_spatial(x, windows.padding, windows.pad_hi(), -xp.inf if largest else xp.inf)
    view = sliding_windows(padded, windows.kernel, windows.stride, windows.dilation)  # (N, C, *O, *K)
    taps = list(itertools.product(*(range(k) for k in windows.kernel)))
    tables = [windows.positions(d) for d in range(n)]  # (O_d, K_d) each
    # PyTorch starts each window at its first tap inside the input; the inside is a box, so
    # that tap is the first inside tap along every dimension.
    first_inside = [xp.argmax((t >= 0) & (t < d), axis=1) for t, d in zip(tables, windows.size)]
    first = xp.ravel_multi_index(xp.ix_(*first_inside), windows.kernel)  # (*O) flat tap
    best, chosen = _scan(lambda t: view[(Ellipsis,) + taps[t]], len(taps), first, view.shape[:-n], x.dtype,
                         largest)
    return best, _plane_indices(_tap_index_table(tables, windows.size), chosen)


def _extremes_in_windows(x, windows, largest):
    """Only the max (or min) ``(N, C, *O)`` of every window: a running extreme over the taps.

    ``maximum``/``minimum`` propagate NaN, so a window holding one gives NaN, as in
    `_choose_in_windows`; padding reads as ∓inf and every window holds a real element.
    """
    extreme = xp.maximum if largest else xp.minimum
    padded = pad_spatial(x, windows.padding, windows.pad_hi(), -xp.inf if largest else xp.inf)
    view = sliding_windows(padded, windows.kernel, windows.stride, windows.dilation)  # (N, C, *O, *K)
    taps = itertools.product(*(range(k) for k in windows.kernel))
    best = xp.array(view[(Ellipsis,) + next(taps)])
    for tap in taps:
        extreme(best, view[(Ellipsis,) + tap], out=best)
    return best


def _choose_in_bins(x, out, largest):
    """The max (or min) ``(N, C, *O)`` of every adaptive bin of ``x`` and its flat index in the input plane."""
    tables = []
    for d, o in zip(x.shape[2:], out):
        start, end = _bins(d, o)
        longest = int((end - start).max())
        # (O, L): a shorter bin repeats its last position. A repeat is never strictly better,
        # and a repeated NaN is the same element, so the winner is unchanged.
        tables.append(xp.minimum(start[:, None] + xp.arange(longest), end[:, None] - 1))
    lengths = tuple(t.shape[1] for t in tables)

    def tap_values(t):
        values = x
        for axis, (positions, k) in enumerate(zip(tables, xp.unravel_index(t, lengths)), start=2):
            values = xp.take(values, positions[:, k], axis=axis)  # (…, D_d, …) → (…, O_d, …)
        return values

    best, chosen = _scan(tap_values, math.prod(lengths), 0, x.shape[:2] + tuple(out), x.dtype, largest)
    return best, _plane_indices(_tap_index_table(tables, x.shape[2:]), chosen)


def _tiles(windows):
    """Whether the windows tile the input without overlap or padding (stride = kernel, the usual pool)."""
    return (windows.stride == windows.kernel and not any(windows.padding) and all(d == 1 for d in windows.dilation)
            and all(o * k <= d for o, k, d in zip(windows.out, windows.kernel, windows.size)))


def _covered(x, kernel, out):
    """The part of ``x (N, C, *D)`` that non-overlapping windows cover, ``(N, C, *(O·K))``, a view."""
    return x[(Ellipsis,) + tuple(slice(0, o * k) for o, k in zip(out, kernel))]


def _split_axis(x, axis, out, k):
    """``x`` with ``axis`` (of length ``out·k``) split into ``(out, k)``: a view."""
    return x.reshape(x.shape[:axis] + (out, k) + x.shape[axis + 1:])


def _tile_view(x, kernel, out):
    """``x (N, C, *D)`` cut into its non-overlapping windows, as a view ``(N, C, *O, *K)``."""
    n = len(kernel)
    pairs = (v for o, k in zip(out, kernel) for v in (o, k))
    tiles = _covered(x, kernel, out).reshape(*x.shape[:2], *pairs)             # (N, C, O₁, K₁, …)
    return tiles.transpose(0, 1, *range(2, 2 + 2 * n, 2), *range(3, 3 + 2 * n, 2))  # (N, C, *O, *K)


def _choose_in_tiles(x, windows, largest, choices=True):
    """``(extremes, choices)`` of the non-overlapping windows of ``x``, or None when one is NaN.

    One axis at a time, the last first: along it each window's ``K_d`` taps are compared in
    order (a strictly better tap wins, so the first extreme does), which halves a 2×2 pool's
    data at every stage and reads long runs, instead of ``∏K`` strided passes over short ones.
    The first extreme of the whole window in PyTorch's row-major scan is the first along the
    first axis of the first along the second, and so on: exactly what the stages pick.

    ``choices[d]`` (uint8, or None for a 1-wide axis) holds the winning tap along axis ``d``
    at every position of that stage: the input covered up to axis ``d``, reduced after it.
    Two taps make it one bit, kept packed (`_pack`): a 2×2 pool then holds 3/32 of a byte per
    input element until backward, not 3/4. `_Chosen` walks them back to route the gradient;
    with ``choices=False`` (inference) they are not kept. A NaN makes PyTorch pick the last
    NaN instead, so then this returns None and the general scan decides.
    """
    better, extreme = (xp.greater, xp.maximum) if largest else (xp.less, xp.minimum)
    values, kept = _covered(x, windows.kernel, windows.out), []
    for axis in reversed(range(2, x.ndim)):
        k, out = windows.kernel[axis - 2], windows.out[axis - 2]
        tiles = _split_axis(values, axis, out, k)
        tap = [tiles[(slice(None),) * (axis + 1) + (t,)] for t in range(k)]
        if k == 1:
            values, which = tap[0], None
        else:
            which = better(tap[1], tap[0]).view(xp.uint8) if choices else None
            values = extreme(tap[0], tap[1])
            for t in range(2, k):
                if choices:   # taps come in order: the last win is the largest, a running maximum
                    xp.maximum(which, better(tap[t], values).view(xp.uint8) * xp.uint8(t), out=which)
                extreme(values, tap[t], out=values)
        kept.append(_pack(which) if k == 2 and choices else which)
    if xp.isnan(values).any():
        return None
    values = values.copy() if xp.may_share_memory(values, x) else values          # 1-wide everywhere: a view of x
    return values, kept[::-1] if choices else None


def _pack(which):
    """A 0/1 ``which`` as ``(bits, shape)``: one bit per element."""
    return xp.packbits(which, axis=None), which.shape


def _unpack(choice):
    """The uint8 choice array of `_choose_in_tiles`, unpacked where `_pack` packed it."""
    if not isinstance(choice, tuple):
        return choice
    bits, shape = choice
    return xp.unpackbits(bits, count=math.prod(shape)).reshape(shape)


def _winning_tap(x, best, kernel):
    """Index (in ∏K) of the first tap of each non-overlapping window that holds its extreme ``best``."""
    tiles = _tile_view(x, kernel, best.shape[2:])                   # (N, C, *O, *K) view
    taps = list(itertools.product(*(range(k) for k in kernel)))
    count = len(taps)
    score_type = xp.min_scalar_type(count)
    # Tap t scores count − t where it holds the extreme: the highest score is the first such tap.
    score, scratch = xp.zeros(best.shape, dtype=score_type), xp.empty(best.shape, dtype=score_type)
    for t, tap in enumerate(taps):
        xp.multiply(tiles[(Ellipsis,) + tap] == best, score_type.type(count - t), out=scratch)
        xp.maximum(score, scratch, out=score)
    return xp.subtract(score_type.type(count), score, out=score)


def _tap_indices(tap, windows):
    """Flat plane indices ``(N, C, *O)`` of the winning ``tap`` of each non-overlapping window."""
    index = xp.zeros(tap.shape, dtype=xp.int64)
    taps = xp.unravel_index(tap, windows.kernel)
    for d, (k, pitch) in enumerate(zip(windows.kernel, _row_major_strides(windows.size))):
        origin = (xp.arange(windows.out[d]) * k).reshape((-1,) + (1,) * (len(windows.kernel) - 1 - d))
        index += (origin + taps[d]) * pitch
    return index


# ----- differentiable pieces ---------------------------------------------------------------

class _Chosen(Function):
    """Elements chosen from ``x``, as a function of ``x``: the gradient goes back to where they were.

    ``values`` ``(N, C, *O)`` are the elements of each (N, C) plane of ``x`` at flat ``indices``,
    already read by the choosing scan, so forward only hands them on. For non-overlapping
    windows of size ``tiles`` (see `_tiles`) the indices may be left out for the ``choices``
    of `_choose_in_tiles`: backward then spreads the gradient back one axis at a time, along
    each writing one strided slice per tap instead of a scatter-add.
    """

    def forward(self, x, indices=None, values=None, tiles=None, choices=None):
        self.shape, self.indices = x.shape, indices
        if tiles is not None and indices is None:
            self.kernel, self.choices = tiles, choices
        return values

    def backward(self, gy):
        if self.indices is None:
            covered = all(o * k == d for o, k, d in zip(gy.shape[2:], self.kernel, self.shape[2:]))
            gx = (xp.empty if covered else xp.zeros)(self.shape, dtype=gy.dtype)  # every element written?
            g = gy
            for axis, (k, which) in enumerate(zip(self.kernel, self.choices), start=2):
                which, last = _unpack(which), axis == gy.ndim - 1
                if which is None:                                        # a 1-wide axis: nothing to spread
                    if last:
                        _covered(gx, self.kernel, gy.shape[2:])[...] = g
                    continue
                shape = g.shape[:axis] + (g.shape[axis] * k,) + g.shape[axis + 1:]
                spread = _covered(gx, self.kernel, gy.shape[2:]) if last else xp.empty(shape, dtype=gy.dtype)
                tiles = _split_axis(spread, axis, g.shape[axis], k)
                for t in range(k):
                    xp.multiply(g, which == t, out=tiles[(slice(None),) * (axis + 1) + (t,)])
                g = spread
            return gx
        n, c = self.shape[:2]
        plane = math.prod(self.shape[2:])
        gx = xp.zeros(n * c * plane, dtype=gy.dtype)
        # Shift plane r's indices by r·∏D to address all planes at once; add.at sums repeats.
        flat = self.indices.reshape(n * c, -1) + xp.arange(n * c)[:, None] * plane  # (N·C, ∏O)
        xp.add.at(gx, flat.ravel(), gy.ravel())
        return gx.reshape(self.shape)


class _AvgPool(Function):
    """Window sums divided by ``divisor`` (an array ``(*O)`` or a number)."""

    def forward(self, x, windows=None, divisor=None):
        self.windows, self.divisor = windows, divisor
        padded = pad_spatial(x, windows.padding, windows.pad_hi())
        self.padded_size = padded.shape[2:]
        view = sliding_windows(padded, windows.kernel, windows.stride, windows.dilation)  # (N, C, *O, *K)
        # One add per tap over all windows at once: far faster than reducing the strided view's
        # short last axes, and it sums each window in tap order as PyTorch does.
        taps = itertools.product(*(range(k) for k in windows.kernel))
        total = view[(Ellipsis,) + next(taps)].copy()
        for tap in taps:
            xp.add(total, view[(Ellipsis,) + tap], out=total)
        return total / divisor

    def backward(self, gy):
        w = self.windows
        n = len(w.kernel)
        share = (gy / self.divisor)[(Ellipsis,) + (None,) * n]  # (N, C, *O, 1, …)
        share = xp.broadcast_to(share, share.shape[:-n] + w.kernel)  # (N, C, *O, *K), no copy
        gx = fold(share, self.padded_size, w.kernel, w.stride, w.dilation)  # (N, C, *padded)
        return crop_spatial(gx, w.padding, w.size)


class _Contract(Function):
    """Adaptive average pooling, separable: along each spatial axis, bin ``i`` averages its own inputs.

    Forward sums each bin's slice rather than multiplying by the averaging matrix: a product
    would meet a NaN or Inf with the matrix's zeros (Inf·0 = NaN) and spread it to every bin of
    the axis, where PyTorch keeps it in the bins that hold it. Backward is the transposed
    matrix: the upstream gradient is finite, and each input receives 1/count of its bins.

    One bin on every axis (a classifier head: ResNets' ``AdaptiveAvgPool2d(1)``) is one
    ``einsum`` over the input as it lies in memory instead of a mean per axis (ResNet-20's
    head, 128 × 64 × 8 × 8: 1.34 → 0.06 ms), and its gradient a broadcast.
    """

    def forward(self, x, matrices=(), bins=()):
        self.matrices, self.shape = matrices, x.shape
        self.single_bin = x.size > 0 and all(m.shape[0] == 1 for m in matrices)
        if self.single_bin:
            count = x.dtype.type(math.prod(x.shape[2:]))
            means = xp.einsum(f"{einsum_layout(x.ndim)}->nc", x) / count                 # (N, C)
            return means.reshape(x.shape[:2] + (1,) * (x.ndim - 2))
        for axis, (start, end) in enumerate(bins, start=2):
            x = _bin_means(x, axis, start, end)
        return xp.ascontiguousarray(x)

    def backward(self, gy):
        if self.single_bin:
            gx = xp.empty(self.shape, dtype=gy.dtype)
            gx[...] = gy / gy.dtype.type(math.prod(self.shape[2:]))                  # broadcast over (*D)
            return gx
        return _along_spatial_axes(gy, [m.T for m in self.matrices])


def _along_spatial_axes(x, matrices):
    for axis, m in enumerate(matrices, start=2):
        x = xp.moveaxis(xp.moveaxis(x, axis, -1) @ m.T, -1, axis)  # axis d: D_d → O_d
    return xp.ascontiguousarray(x)


def _bin_means(x, axis, start, end):
    """The mean of ``x[start[i]:end[i]]`` along ``axis`` for every bin ``i``."""
    size, out = x.shape[axis], len(start)
    if size % out == 0:   # equal, disjoint bins: one reshape
        return x.reshape(x.shape[:axis] + (out, size // out) + x.shape[axis + 1:]).mean(axis=axis + 1)
    x = xp.moveaxis(x, axis, -1)
    means = xp.stack([x[..., s:e].mean(axis=-1) for s, e in zip(start.tolist(), end.tolist())], axis=-1)
    return xp.moveaxis(means, -1, axis)


def _averaging_matrix(size, out, dtype):
    """``(O, D)``: row ``i`` averages adaptive bin ``i``."""
    start, end = _bins(size, out)
    j = xp.arange(size)
    member = (j >= start[:, None]) & (j < end[:, None])
    return (member / (end - start)[:, None]).astype(dtype)


# ----- the N-d pools -----------------------------------------------------------------------

def _finish(out, indices, added_batch, return_indices):
    if added_batch:
        out = out.squeeze(0)
        indices = None if indices is None else indices[0]
    return (out, Tensor._from_array(indices)) if return_indices else out


def _extreme_pool(op, n, largest, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    x, added_batch = expect_spatial_input(input, n, op)
    expect_float(x, op)
    windows = _windows(op, x.shape[2:], kernel_size, stride, padding, dilation, ceil_mode)
    grad = is_grad_enabled() and x.requires_grad
    chosen = _choose_in_tiles(x.data, windows, largest, choices=grad and not return_indices) if _tiles(windows) else None
    if chosen is not None:
        values, choices = chosen
        indices = _tap_indices(_winning_tap(x.data, values, windows.kernel), windows) if return_indices else None
        out = _Chosen.apply(x, indices=indices, values=values, tiles=windows.kernel, choices=choices)
        return _finish(out, indices, added_batch, return_indices)
    if not return_indices and not grad:
        # Nothing will ask where the extremes were (inference): one pass per tap, no indices.
        out = _Chosen.apply(x, values=_extremes_in_windows(x.data, windows, largest))
        return _finish(out, None, added_batch, False)
    values, indices = _choose_in_windows(x.data, windows, largest)
    return _finish(_Chosen.apply(x, indices=indices, values=values), indices, added_batch, return_indices)


def _avg_pool(op, n, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
              dilation):
    x, added_batch = expect_spatial_input(input, n, op)
    expect_float(x, op)
    windows = _windows(op, x.shape[2:], kernel_size, stride, padding, dilation, ceil_mode)
    if divisor_override is not None:
        if isinstance(divisor_override, bool) or not isinstance(divisor_override, int):
            raise TypeError(f"{op}: divisor_override must be an int, got {divisor_override!r}")
        if divisor_override == 0:
            raise ValueError(f"{op}: divisor_override must be non-zero, got 0")
        divisor = divisor_override
    else:
        # The divisor counts the taps inside the padded input (ceil-mode overhang excluded),
        # or only those on real input; windows are boxes, so the count is a product over dims.
        counts = [windows.taps_inside(d, -p, size + p) if count_include_pad else windows.taps_inside(d, 0, size)
                  for d, (size, p) in enumerate(zip(windows.size, windows.padding))]
        divisor = functools.reduce(xp.multiply.outer, counts).astype(x.dtype)  # (*O)
    out = _AvgPool.apply(x, windows=windows, divisor=divisor)
    return out.squeeze(0) if added_batch else out


def _adaptive_avg_pool(op, n, input, output_size):
    x, added_batch = expect_spatial_input(input, n, op)
    expect_float(x, op)
    out = _adaptive_output_size(op, x.shape[2:], output_size)
    matrices = [_averaging_matrix(d, o, x.dtype) for d, o in zip(x.shape[2:], out)]
    y = _Contract.apply(x, matrices=matrices, bins=[_bins(d, o) for d, o in zip(x.shape[2:], out)])
    return y.squeeze(0) if added_batch else y


def _adaptive_max_pool(op, n, input, output_size, return_indices):
    x, added_batch = expect_spatial_input(input, n, op)
    expect_float(x, op)
    out = _adaptive_output_size(op, x.shape[2:], output_size)
    values, indices = _choose_in_bins(x.data, out, largest=True)
    return _finish(_Chosen.apply(x, indices=indices, values=values), indices, added_batch, return_indices)


# ----- public entries: each fixes the rank ---------------------------------------------------

_SPATIAL = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def _documented(template, n, **words):
    """Fill a docstring template shared by the 1-d, 2-d and 3-d entries of one pool."""
    dims = _SPATIAL[n]

    def attach(fn):
        fn.__doc__ = template.format(n=n, name=fn.__name__, layout=spatial_layout(n), dim=dims[-1],
                                     out_layout="(N, C, " + ", ".join(f"{d}_out" for d in dims) + ")",
                                     example=", ".join(["8"] * n), **words)
        return fn
    return attach


_WINDOW_SHAPE = """Shape:
        ``{layout}`` → ``{out_layout}`` with
        ``{dim}_out = floor(({dim} + 2·padding − dilation·(kernel_size − 1) − 1) / stride) + 1``
        (rounded up instead with ``ceil_mode``), and likewise for every spatial dimension."""

_EXTREME_DOC = """{kind} pooling over {n}-d windows: each output is the {extreme} of its window.

    Args:
        input: ``{layout}`` or unbatched, floating point.
        kernel_size: window size: an int, or a tuple with one per spatial dimension.
        stride: step between windows; defaults to ``kernel_size``.
        padding: implicit {pad} on both sides, at most ``kernel_size // 2``.
        dilation: spacing between the taps of a window.
        ceil_mode: round the output size up (a last window must still start inside the input
            or its left padding).
        return_indices: also return, for each output, the flat index (int64) of the chosen
            element within its input plane: the first {extreme} in scan order.

    """ + _WINDOW_SHAPE + """

    Example::

        >>> y = F.{name}(st.randn(1, 3, {example}), kernel_size=2)
    """

_AVG_DOC = """Average pooling over {n}-d windows.

    Args:
        input: ``{layout}`` or unbatched, floating point.
        kernel_size: window size: an int, or a tuple with one per spatial dimension.
        stride: step between windows; defaults to ``kernel_size``.
        padding: implicit zeros on both sides, at most ``kernel_size // 2``.
        ceil_mode: round the output size up; windows are then clipped to the padded input.
        count_include_pad: divide by the number of taps inside the padded input (True) or
            only of those on real input (False).
        divisor_override: divide every window sum by this instead.
        dilation: keyword only, a striate extension: spacing between the taps of a window.

    """ + _WINDOW_SHAPE + """

    Example::

        >>> y = F.{name}(st.randn(1, 3, {example}), kernel_size=2)
    """

_ADAPTIVE_DOC = """Adaptive {kind} pooling: split each spatial dimension into ``output_size`` bins.

    Bin ``i`` of a dimension of size ``D`` covers ``[floor(i·D/O), ceil((i+1)·D/O))``, as in PyTorch.

    Args:
        input: ``{layout}`` or unbatched, floating point.
        output_size: an int, or a tuple with one per spatial dimension where ``None`` keeps that input size.{extra}

    Shape:
        ``{layout}`` → ``{out_layout}`` with ``{dim}_out = output_size``.

    Example::

        >>> y = F.{name}(st.randn(1, 3, {example}), 1)
    """

_RETURN_INDICES = """
        return_indices: also return the flat index (int64) of each chosen element within its
            input plane: the first maximum in scan order."""

_MAX = dict(kind="Max", extreme="maximum", pad="−inf")
_MIN = dict(kind="Min", extreme="minimum", pad="+inf")


@_documented(_EXTREME_DOC, 1, **_MAX)
def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    return _extreme_pool("max_pool1d", 1, True, input, kernel_size, stride, padding, dilation, ceil_mode,
                         return_indices)


@_documented(_EXTREME_DOC, 2, **_MAX)
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    return _extreme_pool("max_pool2d", 2, True, input, kernel_size, stride, padding, dilation, ceil_mode,
                         return_indices)


@_documented(_EXTREME_DOC, 3, **_MAX)
def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    return _extreme_pool("max_pool3d", 3, True, input, kernel_size, stride, padding, dilation, ceil_mode,
                         return_indices)


@_documented(_EXTREME_DOC, 1, **_MIN)
def min_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    return _extreme_pool("min_pool1d", 1, False, input, kernel_size, stride, padding, dilation, ceil_mode,
                         return_indices)


@_documented(_EXTREME_DOC, 2, **_MIN)
def min_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    return _extreme_pool("min_pool2d", 2, False, input, kernel_size, stride, padding, dilation, ceil_mode,
                         return_indices)


@_documented(_EXTREME_DOC, 3, **_MIN)
def min_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    return _extreme_pool("min_pool3d", 3, False, input, kernel_size, stride, padding, dilation, ceil_mode,
                         return_indices)


@_documented(_AVG_DOC, 1)
def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, *, dilation=1):
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, dilation)


@_documented(_AVG_DOC, 2)
def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, *, dilation=1):
    return _avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, dilation)


@_documented(_AVG_DOC, 3)
def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, *, dilation=1):
    return _avg_pool("avg_pool3d", 3, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, dilation)


@_documented(_ADAPTIVE_DOC, 1, kind="average", extra="")
def adaptive_avg_pool1d(input, output_size):
    return _adaptive_avg_pool("adaptive_avg_pool1d", 1, input, output_size)


@_documented(_ADAPTIVE_DOC, 2, kind="average", extra="")
def adaptive_avg_pool2d(input, output_size):
    return _adaptive_avg_pool("adaptive_avg_pool2d", 2, input, output_size)


@_documented(_ADAPTIVE_DOC, 3, kind="average", extra="")
def adaptive_avg_pool3d(input, output_size):
    return _adaptive_avg_pool("adaptive_avg_pool3d", 3, input, output_size)


@_documented(_ADAPTIVE_DOC, 1, kind="max", extra=_RETURN_INDICES)
def adaptive_max_pool1d(input, output_size, return_indices=False):
    return _adaptive_max_pool("adaptive_max_pool1d", 1, input, output_size, return_indices)


@_documented(_ADAPTIVE_DOC, 2, kind="max", extra=_RETURN_INDICES)
def adaptive_max_pool2d(input, output_size, return_indices=False):
    return _adaptive_max_pool("adaptive_max_pool2d", 2, input, output_size, return_indices)


@_documented(_ADAPTIVE_DOC, 3, kind="max", extra=_RETURN_INDICES)
def adaptive_max_pool3d(input, output_size, return_indices=False):
    return _adaptive_max_pool("adaptive_max_pool3d", 3, input, output_size, return_indices)


__all__ = ['max_pool1d', 'max_pool2d', 'max_pool3d', 'min_pool1d', 'min_pool2d', 'min_pool3d', 'avg_pool1d',
           'avg_pool2d', 'avg_pool3d', 'adaptive_avg_pool1d', 'adaptive_avg_pool2d', 'adaptive_avg_pool3d',
           'adaptive_max_pool1d', 'adaptive_max_pool2d', 'adaptive_max_pool3d']
