"""Reductions over some or all dimensions: sum, mean, max, min, var."""
from striate._backend import xp
from striate.autograd.function import Function


def normalize_dims(dim, ndim, op):
    """``dim`` (None, an int or a tuple, negatives allowed) as a sorted tuple of axes."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    rank = max(ndim, 1)
    out = []
    for d in dims:
        if not -rank <= d < rank:
            raise IndexError(f"{op}: dim {d} is out of range for a tensor with {ndim} dimensions")
        out.append(d % rank)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: dim {dim} names a dimension twice")
    return tuple(sorted(out)) if ndim else ()


def _expand_back(g, shape, axes, keepdim):
    """Reshape a reduced gradient so it broadcasts against the input again."""
    if not keepdim:
        g = xp.expand_dims(g, axes) if axes else g
    return xp.broadcast_to(g, shape)


class Sum(Function):
    def forward(self, x, axes=(), keepdim=False):
        self.shape, self.axes, self.keepdim = x.shape, axes, keepdim
        return xp.sum(x, axis=axes, keepdims=keepdim)

    def backward(self, gy):
        return xp.ascontiguousarray(_expand_back(gy, self.shape, self.axes, self.keepdim))


class Mean(Function):
    def forward(self, x, axes=(), keepdim=False):
        self.shape, self.axes, self.keepdim = x.shape, axes, keepdim
        self.count = 1
        for a in axes:
            self.count *= x.shape[a]
        return xp.mean(x, axis=axes, keepdims=keepdim)

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
        share = self.hit / xp.sum(self.hit, axis=self.axes, keepdims=True)
        return (g * share).astype(gy.dtype)


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


class Var(Function):
    """Variance with ``correction`` (1 = unbiased, Bessel's; 0 = population)."""

    def forward(self, x, axes=(), correction=1, keepdim=False):
        count = 1
        for a in axes:
            count *= x.shape[a]
        self.centered = x - xp.mean(x, axis=axes, keepdims=True)
        self.denominator = max(count - correction, 0)
        self.axes, self.keepdim = axes, keepdim
        with xp.errstate(divide="ignore", invalid="ignore"):
            return xp.sum(self.centered ** 2, axis=axes, keepdims=keepdim) / x.dtype.type(self.denominator)

    def backward(self, gy):
        g = gy if self.keepdim else xp.expand_dims(gy, self.axes)
        with xp.errstate(divide="ignore", invalid="ignore"):
            return (g * (2 / self.centered.dtype.type(self.denominator)) * self.centered).astype(gy.dtype)
