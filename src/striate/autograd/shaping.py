"""Operations that move elements without changing them: clone, reshape, permute, expand, index, cat, stack."""
import numbers

from striate._backend import xp
from striate.autograd.function import Function


class Clone(Function):
    """A copy that stays in the graph."""

    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        return gy


class Reshape(Function):
    def forward(self, x, shape=()):
        self.shape = x.shape
        return x.reshape(shape)

    def backward(self, gy):
        return gy.reshape(self.shape)


class Permute(Function):
    def forward(self, x, dims=()):
        self.inverse = tuple(int(i) for i in xp.argsort(dims))
        return x.transpose(dims)

    def backward(self, gy):
        return gy.transpose(self.inverse)


class Expand(Function):
    """Broadcast to a larger shape without copying; the gradient sums back."""

    def forward(self, x, shape=()):
        self.shape = x.shape
        return xp.broadcast_to(x, shape)

    def backward(self, gy):
        from striate.autograd.arithmetic import unbroadcast
        return unbroadcast(gy, self.shape)


def _selects_each_element_once(index):
    """True for basic indexing and for one boolean mask: no element is picked twice, so the
    gradient can be assigned; integer arrays may repeat elements, whose gradients must add."""
    if isinstance(index, xp.ndarray) and index.dtype == bool:
        return True
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (slice, numbers.Integral)) and not isinstance(p, bool)
               for p in parts)


class GetItem(Function):
    """``x[index]``: basic slicing writes the gradient back; advanced indexing adds repeats."""

    def forward(self, x, index=None):
        self.shape, self.dtype, self.index = x.shape, x.dtype, index
        return x[index]

    def backward(self, gy):
        gx = xp.zeros(self.shape, dtype=gy.dtype)
        if _selects_each_element_once(self.index):
            gx[self.index] = gy
        else:
            xp.add.at(gx, self.index, gy)
        return gx


class Cat(Function):
    def forward(self, *arrays, axis=0):
        self.axis = axis
        self.bounds = xp.cumsum([a.shape[axis] for a in arrays])[:-1]
        return xp.concatenate(arrays, axis=axis)

    def backward(self, gy):
        return tuple(xp.split(gy, self.bounds, axis=self.axis))


class Stack(Function):
    def forward(self, *arrays, axis=0):
        self.axis = axis
        return xp.stack(arrays, axis=axis)

    def backward(self, gy):
        return tuple(xp.moveaxis(gy, self.axis, 0))
