"""Reductions over some or all dimensions: sum, mean, max, min, var, std."""
import numbers

from striate._backend import xp
from striate.autograd.function import Function


def normalize_dims(dim, ndim, op):
    """``dim`` (None, an int or a sequence of ints, negatives allowed) as a sorted tuple of axes."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, numbers.Integral) else tuple(dim) if isinstance(dim, (tuple, list)) else None
    if dims is None or not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in dims):
        raise TypeError(f"{op}: dim must be an int or a tuple of ints, got {dim!r}")
    rank = max(ndim, 1)
    out = []
    for d in dims:
        if not -rank <= d < rank:
            raise IndexError(f"{op}: dim {d} is out of range for a tensor with {ndim} dimensions "
                             f"(expected a dim in [{-rank}, {rank - 1}])")
        out.append(int(d) % rank)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: dim {dim} names a dimension twice")
    return tuple(sorted(out)) if ndim else ()


# NumPy sums pairwise (error ~ log n · eps) only along the innermost, contiguous run of reduced
# axes; every other reduced axis is added one slice at a time (error ~ n · eps). Past this many
# such sequential terms, float16/32 inputs are accumulated in float64 instead (as PyTorch's
# cascade sums are accurate along any axis).
_MAX_SEQUENTIAL_TERMS = 256


def _accumulator(x, axes):
    """The dtype to accumulate a sum of ``x`` over ``axes`` in: None (x's own) or float64."""
    if x.dtype.kind != "f" or x.dtype.itemsize >= 8:
        return None
    sequential, trailing = 1, x.flags.c_contiguous
    for axis in reversed(range(x.ndim)):
        if axis not in axes:
            trailing = False
        elif not trailing:
            sequential *= x.shape[axis]
    return xp.float64 if sequential > _MAX_SEQUENTIAL_TERMS else None


def _expand_back(g, shape, axes, keepdim):
    """Reshape a reduced gradient so it broadcasts against the input again."""
    if not keepdim:
        g = xp.expand_dims(g, axes) if axes else g
    return xp.broadcast_to(g, shape)


class Sum(Function):
    def forward(self, x, axes=(), keepdim=False):
        self.shape, self.axes, self.keepdim = x.shape, axes, keepdim
        wide = _accumulator(x, axes)
        if wide is None:
            return xp.sum(x, axis=axes, keepdims=keepdim)
        return xp.sum(x, axis=axes, keepdims=keepdim, dtype=wide).astype(x.dtype)

    def backward(self, gy):
        # .copy(), not ascontiguousarray: that one turns a 0-d gradient into shape (1,).
        return _expand_back(gy, self.shape, self.axes, self.keepdim).copy()


class Mean(Function):
    def forward(self, x, axes=(), keepdim=False):
        self.shape, self.axes, self.keepdim = x.shape, axes, keepdim
        self.count = 1
        for a in axes:
            self.count *= x.shape[a]
        wide = _accumulator(x, axes)
        if wide is None:
            return xp.mean(x, axis=axes, keepdims=keepdim)
        return xp.mean(x, axis=axes, keepdims=keepdim, dtype=wide).astype(x.dtype)

    def backward(self, gy):
        return _expand_back(gy / self.count, self.shape, self.axes, self.keepdim).copy()


class Extreme(Function):
    """max or min over ``axes``; ties share the gradient equally (PyTorch's amax/amin rule)."""

    def forward(self, x, axes=(), keepdim=False, largest=True):
        y = xp.max(x, axis=axes, keepdims=True) if largest else xp.min(x, axis=axes, keepdims=True)
        self.hit = x == y
        self.shape, self.axes, self.keepdim = x.shape, axes, keepdim
        return y if keepdim else xp.squeeze(y, axis=axes)

    def backward(self, gy):
        g = gy if self.keepdim else xp.expand_dims(gy, self.axes)
        share = self.hit / xp.sum(self.hit, axis=self.axes, keepdims=True, dtype=gy.dtype)
        return g * share


class ExtremeAlong(Function):
    """max or min along one dimension; the gradient goes to the index returned (the first extreme)."""

    def forward(self, x, axis=0, keepdim=False, largest=True):
        self.indices = xp.argmax(x, axis=axis) if largest else xp.argmin(x, axis=axis)
        self.shape, self.axis, self.keepdim = x.shape, axis, keepdim
        y = xp.take_along_axis(x, xp.expand_dims(self.indices, axis), axis=axis)
        return y if keepdim else xp.squeeze(y, axis=axis)

    def backward(self, gy):
        g = gy if self.keepdim else xp.expand_dims(gy, self.axis)
        gx = xp.zeros(self.shape, dtype=gy.dtype)
        xp.put_along_axis(gx, xp.expand_dims(self.indices, self.axis), g, axis=self.axis)
        return gx


def _count(shape, axes):
    count = 1
    for a in axes:
        count *= shape[a]
    return count


class Var(Function):
    """Variance with ``correction`` (1 = unbiased, Bessel's; 0 = population)."""

    def forward(self, x, axes=(), correction=1, keepdim=False):
        self.centered = x - xp.mean(x, axis=axes, keepdims=True)
        self.denominator = x.dtype.type(max(_count(x.shape, axes) - correction, 0))
        self.axes, self.keepdim = axes, keepdim
        with xp.errstate(divide="ignore", invalid="ignore"):
            return xp.sum(self.centered * self.centered, axis=axes, keepdims=keepdim) / self.denominator

    def backward(self, gy):
        # The mean's own gradient term vanishes because the centered values sum to zero.
        g = gy if self.keepdim else xp.expand_dims(gy, self.axes)
        with xp.errstate(divide="ignore", invalid="ignore"):
            return g * (2 / self.denominator) * self.centered


class Std(Function):
    """Standard deviation; where it is 0 the gradient is taken as 0, as PyTorch does."""

    def forward(self, x, axes=(), correction=1, keepdim=False):
        self.centered = x - xp.mean(x, axis=axes, keepdims=True)
        self.denominator = x.dtype.type(max(_count(x.shape, axes) - correction, 0))
        self.axes, self.keepdim = axes, keepdim
        with xp.errstate(divide="ignore", invalid="ignore"):
            self.y = xp.sqrt(xp.sum(self.centered * self.centered, axis=axes, keepdims=True) / self.denominator)
        return self.y if keepdim else xp.squeeze(self.y, axis=axes)

    def backward(self, gy):
        # d std / dx = centered / (denominator · std)
        g = gy if self.keepdim else xp.expand_dims(gy, self.axes)
        with xp.errstate(divide="ignore", invalid="ignore"):
            scale = xp.where(self.y == 0, 0, g / (self.denominator * self.y)).astype(gy.dtype)
        return scale * self.centered
