"""Padding of the trailing dimensions: constant, reflect, replicate and circular, with PyTorch's rules.

``pad`` takes PyTorch's pad tuple, last dimension first: ``(left, right)`` pads the last
dimension, ``(left, right, top, bottom)`` the last two, and so on.

Constant padding is two slices (negative widths crop). The other modes are gathers: each
padded axis gets an index map ``source[o]`` = the input position that output position ``o``
copies, and the axes are gathered one after another (so corners come out right). Along an
axis the uncropped middle maps one-to-one and moves as a single slice; only the few padded
positions are copied one at a time. The backward is the adjoint, a scatter-add per axis in
the same shape, with ``+=`` for the padded positions because their sources may repeat
(replicate sends every left pad to position 0).
"""
import numbers

from striate._backend import xp
from striate.autograd.function import Function
from striate.ops._validate import as_tensor

_MODES = ("constant", "reflect", "replicate", "circular")


def _source_index(mode, lo, hi, n):
    """For each output position along one axis, the input position it copies."""
    o = xp.arange(n + lo + hi)
    j = o - lo                                      # input position, before folding back
    if mode == "reflect":
        # Mirror about 0, then about n − 1 (no edge repeat); pads < n need a single fold each.
        j = xp.abs(j)
        return (n - 1) - xp.abs((n - 1) - j)
    if mode == "replicate":
        return xp.clip(j, 0, n - 1)
    # circular: PyTorch crops negative pads first, then wraps around what is left (m samples).
    start, m = max(-lo, 0), n - max(-lo, 0) - max(-hi, 0)
    if m == 0:      # everything cropped; validation has made the output empty too
        return o
    return start + (o - max(lo, 0)) % m


def _axis_index(ndim, axis, item):
    """An index tuple selecting ``item`` along ``axis`` and everything along the other axes."""
    return (slice(None),) * axis + (item,) + (slice(None),) * (ndim - axis - 1)


def _runs(lo, n, out_len):
    """Output positions along one axis: the middle ``[first, stop)`` copies input ``o − lo``; the rest are pads."""
    first, stop = max(lo, 0), max(min(n + lo, out_len), max(lo, 0))
    return first, stop, (*range(first), *range(stop, out_len))


def _gather_axis(x, source, lo, axis):
    """``take(x, source, axis)``, written as one slice copy of the middle plus one copy per padded position.

    Slices beat a fancy-indexing gather several times over, and the pads are few.
    """
    n, out_len = x.shape[axis], len(source)
    y = xp.empty(x.shape[:axis] + (out_len,) + x.shape[axis + 1:], dtype=x.dtype)
    first, stop, pads = _runs(lo, n, out_len)
    y[_axis_index(x.ndim, axis, slice(first, stop))] = x[_axis_index(x.ndim, axis, slice(first - lo, stop - lo))]
    for o in pads:
        y[_axis_index(x.ndim, axis, o)] = x[_axis_index(x.ndim, axis, int(source[o]))]
    return y


def _scatter_axis(g, source, lo, n, axis):
    """Adjoint of ``_gather_axis``: add each slice of ``g`` onto input position ``source[o]``.

    Sources of padded positions may repeat (replicate sends every left pad to position 0),
    hence ``+=`` one position at a time.
    """
    out_len = g.shape[axis]
    gx = xp.zeros(g.shape[:axis] + (n,) + g.shape[axis + 1:], dtype=g.dtype)
    first, stop, pads = _runs(lo, n, out_len)
    gx[_axis_index(g.ndim, axis, slice(first - lo, stop - lo))] = g[_axis_index(g.ndim, axis, slice(first, stop))]
    for o in pads:
        gx[_axis_index(g.ndim, axis, int(source[o]))] += g[_axis_index(g.ndim, axis, o)]
    return gx


class ConstantPad(Function):
    """Widen (or, with negative widths, crop) the last ``len(lo)`` axes, filling with ``value``."""

    def forward(self, x, lo, hi, value):
        k = len(lo)
        size = x.shape[x.ndim - k:]
        out_size = tuple(n + a + b for n, a, b in zip(size, lo, hi))
        kept = tuple(max(n - max(-a, 0) - max(-b, 0), 0) for n, a, b in zip(size, lo, hi))
        self.src = (Ellipsis,) + tuple(slice(max(-a, 0), max(-a, 0) + m) for a, m in zip(lo, kept))
        self.dst = (Ellipsis,) + tuple(slice(max(a, 0), max(a, 0) + m) for a, m in zip(lo, kept))
        self.x_shape = x.shape
        y = xp.full(x.shape[:x.ndim - k] + out_size, value, dtype=x.dtype)
        y[self.dst] = x[self.src]
        return y

    def backward(self, gy):
        gx = xp.zeros(self.x_shape, dtype=gy.dtype)
        gx[self.src] = gy[self.dst]
        return gx


class IndexPad(Function):
    """Pad the last ``len(lo)`` axes by copying input samples chosen by ``mode``'s index maps."""

    def forward(self, x, lo, hi, mode):
        k = len(lo)
        self.size, self.lo = x.shape[x.ndim - k:], lo
        self.sources = tuple(_source_index(mode, a, b, n) for a, b, n in zip(lo, hi, self.size))
        y = x
        for i, (source, a) in enumerate(zip(self.sources, lo)):
            y = _gather_axis(y, source, a, x.ndim - k + i)
        return y

    def backward(self, gy):
        g = gy
        first_axis = gy.ndim - len(self.lo)
        for i, (source, lo, n) in enumerate(zip(self.sources, self.lo, self.size)):
            g = _scatter_axis(g, source, lo, n, first_axis + i)
        return g


def _normalize_pad(pad, ndim):
    if isinstance(pad, (str, bytes)) or not hasattr(pad, "__len__"):
        raise TypeError(f"pad: pad must be a tuple of ints (left, right, top, bottom, ...), got {pad!r}")
    if not all(isinstance(p, numbers.Integral) and not isinstance(p, bool) for p in pad):
        raise TypeError(f"pad: pad must be a tuple of ints (left, right, top, bottom, ...), got {tuple(pad)!r}")
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise ValueError(f"pad: padding length must be divisible by 2 (a left and a right width per dimension), "
                         f"got {len(pad)} values {pad}")
    if len(pad) > 2 * ndim:
        raise ValueError(f"pad: padding length must be at most twice the input dimension, "
                         f"got {len(pad)} values {pad} for a {ndim}-D input")
    # PyTorch's tuple runs last dimension first; turn it into per-axis (lo, hi) in axis order.
    lo, hi = pad[0::2][::-1], pad[1::2][::-1]
    return lo, hi


def _check_index_mode(input, lo, hi, mode, value):
    k, shape, ndim = len(lo), tuple(input.shape), input.ndim
    if value is not None and value != 0:
        raise ValueError(f"pad: padding mode {mode!r} does not take a value argument, got value={value!r}")
    if k not in (1, 2, 3) or ndim not in (k + 1, k + 2):
        raise ValueError(f"pad: {mode} padding supports padding the last 1, 2 or 3 dimensions of a "
                         f"(N, C, *D) or (C, *D) input, i.e. 2 values for a 2-D/3-D input, 4 for 3-D/4-D, "
                         f"6 for 4-D/5-D; got {2 * k} values for a {ndim}-D input of shape {shape}")
    padded = shape[ndim - k:]
    if mode in ("reflect", "replicate"):
        # Every dimension but the batch must be non-empty: there is nothing to copy from otherwise.
        body = shape[1:] if ndim == k + 2 else shape
        if 0 in body:
            raise ValueError(f"pad: {mode} padding needs non-empty dimensions (the batch may be empty), "
                             f"got input of shape {shape}")
    for axis, (n, a, b) in enumerate(zip(padded, lo, hi), start=ndim - k):
        if mode == "reflect" and (a >= n or b >= n):
            raise ValueError(f"pad: reflect padding must be smaller than the dimension it pads, "
                             f"got padding ({a}, {b}) for dimension {axis} of size {n} (input shape {shape})")
        if mode in ("reflect", "replicate") and n + a + b < 1:
            raise ValueError(f"pad: {mode} padding would leave dimension {axis} of size {n} with "
                             f"{n + a + b} samples (padding ({a}, {b})); the output must have at least one")
        if mode == "circular":
            kept = n - max(-a, 0) - max(-b, 0)
            if kept < 0:
                raise ValueError(f"pad: negative circular padding ({a}, {b}) crops more than dimension {axis} "
                                 f"of size {n} holds (input shape {shape})")
            if max(a, b) > kept:
                raise ValueError(f"pad: circular padding may wrap around at most once: padding ({a}, {b}) "
                                 f"exceeds the {kept} samples of dimension {axis} (size {n}, after cropping "
                                 f"negative padding; input shape {shape})")


def pad(input, pad, mode="constant", value=None):
    """Pad (or crop, with negative widths) the trailing dimensions of ``input``.

    Args:
        input: a tensor. Constant mode pads any of its dimensions; reflect, replicate and
            circular pad the last 1, 2 or 3 dimensions of an ``(N, C, *D)`` or ``(C, *D)`` input.
        pad: ``(left, right)`` for the last dimension, then ``(top, bottom)`` for the one before,
            and so on: ``len(pad) / 2`` dimensions are padded, last dimension first.
        mode: ``"constant"`` (fill with ``value``), ``"reflect"`` (mirror without repeating the
            edge; each width < the dimension), ``"replicate"`` (repeat the edge sample), or
            ``"circular"`` (wrap around; each width ≤ the dimension). Negative widths crop:
            constant, reflect, replicate and circular all accept them, as in PyTorch.
        value: the fill value for constant mode (default 0); other modes accept only None or 0.

    Shape:
        A padded dimension of size ``D`` becomes ``D + left + right``; others are unchanged.

    Example::

        >>> x = st.tensor([[[1.0, 2.0, 3.0]]])
        >>> F.pad(x, (2, 1), mode="reflect")
        tensor([[[3., 2., 1., 2., 3., 2.]]])
    """
    input = as_tensor(input, "pad")
    lo, hi = _normalize_pad(pad, input.ndim)
    if mode not in _MODES:
        raise ValueError(f"pad: mode must be one of {', '.join(map(repr, _MODES))}, got {mode!r}")
    if mode == "constant":
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
            raise TypeError(f"pad: value must be a real number, got {value!r}")
        k = len(lo)
        for axis, (n, a, b) in enumerate(zip(input.shape[input.ndim - k:], lo, hi), start=input.ndim - k):
            if n + a + b < 0:
                raise ValueError(f"pad: negative padding ({a}, {b}) would give dimension {axis} of size {n} "
                                 f"a negative size {n + a + b} (input shape {tuple(input.shape)})")
        return ConstantPad.apply(input, lo=lo, hi=hi, value=0 if value is None else value)
    _check_index_mode(input, lo, hi, mode, value)
    return IndexPad.apply(input, lo=lo, hi=hi, mode=mode)


__all__ = ["pad"]
