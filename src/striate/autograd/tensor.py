"""``Tensor``: an array that remembers the operation that made it, so it can be differentiated."""
import collections
import numbers

import numpy

from striate._backend import xp
from striate.autograd.grad_mode import is_grad_enabled

float32, float64, float16 = xp.float32, xp.float64, xp.float16
int64, int32, uint8, bool_ = xp.int64, xp.int32, xp.uint8, xp.bool_

_ReturnTypes = collections.namedtuple("values_indices", ["values", "indices"])


def _as_array(data, dtype=None, copy=True):
    """An ndarray from ``data`` with PyTorch's dtype rule: Python floats become float32,
    arrays keep their dtype (float64 included), integers become int64."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        array = xp.array(data, dtype=dtype, copy=copy or None)
    else:
        from_array = isinstance(data, (xp.ndarray, xp.generic))
        array = xp.array(data, copy=copy or None)
        if not from_array:
            if array.dtype.kind == "f":
                array = array.astype(float32)
            elif array.dtype.kind in "iu":
                array = array.astype(int64)
    if array.dtype.kind not in "fiub":
        raise TypeError(f"tensor: cannot make a tensor from data of dtype {array.dtype} "
                        "(expected numbers or booleans)")
    return array


class Tensor:
    """An n-dimensional array with reverse-mode automatic differentiation.

    Args:
        data: anything ``numpy.asarray`` accepts. Python floats become float32; NumPy
            arrays keep their dtype, so float64 stays float64.
        requires_grad: record operations on this tensor so ``backward`` can fill ``.grad``.
        dtype: force a dtype.

    Example::

        >>> x = st.tensor([1.0, 2.0, 3.0], requires_grad=True)
        >>> (x * x).sum().backward()
        >>> x.grad
        tensor([2., 4., 6.])
    """

    __slots__ = ("data", "grad", "_requires_grad", "_ctx", "_retains_grad", "__weakref__")
    __array_priority__ = 1000  # ndarray ⊕ Tensor defers to Tensor's reflected operators

    def __init__(self, data, requires_grad=False, dtype=None):
        self.data = _as_array(data, dtype)
        self.grad = None
        self._ctx = None
        self._retains_grad = False
        self._requires_grad = False
        self.requires_grad = requires_grad

    @classmethod
    def _from_array(cls, array, requires_grad=False):
        """Wrap an ndarray without copying or converting it."""
        t = cls.__new__(cls)
        t.data = array if isinstance(array, xp.ndarray) else xp.asarray(array)
        t.grad = None
        t._ctx = None
        t._retains_grad = False
        t._requires_grad = requires_grad
        return t

    # ----- autograd state ---------------------------------------------------------------
    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        if value and self.data.dtype.kind != "f":
            raise TypeError(f"requires_grad: only floating-point tensors can require gradients, "
                            f"got dtype {self.data.dtype}")
        if not value and self._ctx is not None:
            raise RuntimeError("requires_grad: cannot turn off gradients of a non-leaf tensor; use detach()")
        self._requires_grad = bool(value)

    def requires_grad_(self, requires_grad=True):
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self):
        return self._ctx is None

    @property
    def grad_fn(self):
        return self._ctx

    def retain_grad(self):
        """Keep ``.grad`` on this non-leaf tensor after backward."""
        self._retains_grad = True

    def detach(self):
        """The same data (shared, not copied), cut from the graph."""
        return Tensor._from_array(self.data)

    def backward(self, gradient=None):
        """Accumulate the gradient of this tensor with respect to every leaf into their ``.grad``.

        Args:
            gradient: d(something)/d(self), same shape as self. Only a single-element tensor
                may leave it out (it is then 1).
        """
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad and has no grad_fn "
                               "(did you compute it under no_grad, or from tensors without requires_grad=True?)")
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward: grad can be implicitly created only for scalar outputs, "
                                   f"got shape {self.shape}; pass gradient=")
            g = xp.ones(self.shape, dtype=self.dtype)
        else:
            g = _as_array(gradient, dtype=self.dtype)
            if g.shape != self.shape:
                raise ValueError(f"backward: gradient has shape {g.shape}, expected {self.shape}")
        from striate.autograd.engine import run_backward
        run_backward(self, g)

    def zero_(self):
        self.data[...] = 0
        return self

    # ----- array protocol -----------------------------------------------------------------
    @property
    def shape(self):
        return self.data.shape

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    def size(self, dim=None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def dim(self):
        return self.data.ndim

    def numel(self):
        return int(self.data.size)

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __array__(self, dtype=None, copy=None):
        if dtype is not None and dtype != self.data.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def numpy(self):
        """The underlying array (shared, not copied), like PyTorch's."""
        return self.data

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item: only one-element tensors can be converted to a Python number, got shape {self.shape}")
        return self.data.reshape(()).item()

    def tolist(self):
        return self.data.tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        return bool(self.item())

    def __index__(self):
        if self.data.dtype.kind not in "iu":
            raise TypeError(f"only integer tensors can be used as an index, got dtype {self.dtype}")
        return int(self.item())

    def __repr__(self):
        body = numpy.array2string(self.data, separator=", ", prefix="tensor(")
        extras = []
        if self.dtype not in (float32, int64, bool_):
            extras.append(f"dtype={self.dtype}")
        if self._ctx is not None:
            extras.append(f"grad_fn=<{self._ctx.name}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body] + extras) + ")"

    __hash__ = object.__hash__

    # ----- arithmetic -----------------------------------------------------------------------
    def _operand(self, other):
        if isinstance(other, Tensor):
            return other
        if isinstance(other, numbers.Number) and not isinstance(other, bool):
            kind = self.dtype.kind
            if isinstance(other, float) and kind != "f":
                return xp.asarray(other, dtype=float32)
            return xp.asarray(other, dtype=self.dtype)
        return xp.asarray(other)

    def __add__(self, other):
        return _ar.Add.apply(self, self._operand(other))

    def __radd__(self, other):
        return _ar.Add.apply(self._operand(other), self)

    def __sub__(self, other):
        return _ar.Sub.apply(self, self._operand(other))

    def __rsub__(self, other):
        return _ar.Sub.apply(self._operand(other), self)

    def __mul__(self, other):
        return _ar.Mul.apply(self, self._operand(other))

    def __rmul__(self, other):
        return _ar.Mul.apply(self._operand(other), self)

    def __truediv__(self, other):
        return _ar.Div.apply(self, self._operand(other))

    def __rtruediv__(self, other):
        return _ar.Div.apply(self._operand(other), self)

    def __pow__(self, other):
        if isinstance(other, numbers.Number) and not isinstance(other, bool):
            return _ar.PowScalar.apply(self, exponent=other)
        return _ar.Pow.apply(self, self._operand(other))

    def __rpow__(self, other):
        return _ar.Pow.apply(self._operand(other), self)

    def __matmul__(self, other):
        return _ar.MatMul.apply(self, self._operand(other))

    def __rmatmul__(self, other):
        return _ar.MatMul.apply(self._operand(other), self)

    def __neg__(self):
        return _ar.Neg.apply(self)

    def __pos__(self):
        return self

    def _compare(self, other, ufunc):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor._from_array(ufunc(self.data, other))

    def __eq__(self, other):
        return self._compare(other, xp.equal)

    def __ne__(self, other):
        return self._compare(other, xp.not_equal)

    def __lt__(self, other):
        return self._compare(other, xp.less)

    def __le__(self, other):
        return self._compare(other, xp.less_equal)

    def __gt__(self, other):
        return self._compare(other, xp.greater)

    def __ge__(self, other):
        return self._compare(other, xp.greater_equal)

    # ----- element-wise -----------------------------------------------------------------------
    def exp(self):
        return _el.Exp.apply(self)

    def log(self):
        return _el.Log.apply(self)

    def sqrt(self):
        return _el.Sqrt.apply(self)

    def abs(self):
        return _el.Abs.apply(self)

    __abs__ = abs

    def clamp(self, min=None, max=None):
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        return _el.Clamp.apply(self, min=min, max=max)

    clip = clamp

    # ----- reductions -----------------------------------------------------------------------------
    def sum(self, dim=None, keepdim=False):
        return _red.Sum.apply(self, axes=_red.normalize_dims(dim, self.ndim, "sum"), keepdim=keepdim)

    def mean(self, dim=None, keepdim=False):
        if self.dtype.kind != "f":
            raise TypeError(f"mean: needs a floating-point tensor, got dtype {self.dtype}")
        return _red.Mean.apply(self, axes=_red.normalize_dims(dim, self.ndim, "mean"), keepdim=keepdim)

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        if unbiased is not None and correction is not None:
            raise ValueError("var: give either unbiased or correction, not both")
        if correction is None:
            correction = 1 if unbiased is None or unbiased else 0
        return _red.Var.apply(self, axes=_red.normalize_dims(dim, self.ndim, "var"),
                              correction=correction, keepdim=keepdim)

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return self.var(dim, unbiased, keepdim, correction=correction).sqrt()

    def _extreme(self, dim, keepdim, largest, op):
        if self.data.size == 0:
            raise ValueError(f"{op}: cannot reduce an empty tensor of shape {self.shape}")
        if dim is None:
            return _red.Extreme.apply(self, axes=tuple(range(self.ndim)), keepdim=False, largest=largest)
        (axis,) = _red.normalize_dims(dim, self.ndim, op)
        values = _red.ExtremeAlong.apply(self, axis=axis, keepdim=keepdim, largest=largest)
        indices = values._ctx.indices if values._ctx is not None else (
            xp.argmax(self.data, axis=axis) if largest else xp.argmin(self.data, axis=axis))
        if keepdim:
            indices = xp.expand_dims(indices, axis)
        return _ReturnTypes(values, Tensor._from_array(indices.astype(int64)))

    def max(self, dim=None, keepdim=False):
        """The largest element, or with ``dim`` a ``(values, indices)`` pair as in PyTorch."""
        return self._extreme(dim, keepdim, True, "max")

    def min(self, dim=None, keepdim=False):
        """The smallest element, or with ``dim`` a ``(values, indices)`` pair as in PyTorch."""
        return self._extreme(dim, keepdim, False, "min")

    def amax(self, dim=None, keepdim=False):
        return _red.Extreme.apply(self, axes=_red.normalize_dims(dim, self.ndim, "amax"), keepdim=keepdim, largest=True)

    def amin(self, dim=None, keepdim=False):
        return _red.Extreme.apply(self, axes=_red.normalize_dims(dim, self.ndim, "amin"), keepdim=keepdim, largest=False)

    def argmax(self, dim=None, keepdim=False):
        if dim is None:
            return Tensor._from_array(xp.asarray(xp.argmax(self.data), dtype=int64))
        return Tensor._from_array(xp.argmax(self.data, axis=dim, keepdims=keepdim).astype(int64))

    def argmin(self, dim=None, keepdim=False):
        if dim is None:
            return Tensor._from_array(xp.asarray(xp.argmin(self.data), dtype=int64))
        return Tensor._from_array(xp.argmin(self.data, axis=dim, keepdims=keepdim).astype(int64))

    # ----- shape ----------------------------------------------------------------------------------
    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape
        shape = tuple(int(s) for s in shape)
        known = 1
        for s in shape:
            known *= s if s != -1 else 1
        valid = shape.count(-1) <= 1 and all(s >= -1 for s in shape) and (
            (known != 0 and self.data.size % known == 0) if -1 in shape else known == self.data.size)
        if not valid:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {self.shape} "
                             f"({self.data.size} elements) into {shape}")
        return _sh.Reshape.apply(self, shape=shape)

    view = reshape

    def flatten(self, start_dim=0, end_dim=-1):
        if self.ndim == 0:
            return self.reshape(1)
        start, end = start_dim % self.ndim, end_dim % self.ndim
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        shape = self.shape[:start] + (-1,) + self.shape[end + 1:]
        if self.data.size == 0:
            shape = self.shape[:start] + (int(numpy.prod(self.shape[start:end + 1])),) + self.shape[end + 1:]
        return self.reshape(shape)

    def permute(self, *dims):
        dims = dims[0] if len(dims) == 1 and not isinstance(dims[0], int) else dims
        if sorted(d % max(self.ndim, 1) for d in dims) != list(range(self.ndim)):
            raise ValueError(f"permute: dims {tuple(dims)} are not a permutation of the {self.ndim} dimensions")
        return _sh.Permute.apply(self, dims=tuple(d % self.ndim for d in dims))

    def transpose(self, dim0, dim1):
        dims = list(range(self.ndim))
        a, b = _red.normalize_dims((dim0,), self.ndim, "transpose")[0], _red.normalize_dims((dim1,), self.ndim, "transpose")[0]
        dims[a], dims[b] = dims[b], dims[a]
        return _sh.Permute.apply(self, dims=tuple(dims))

    @property
    def T(self):
        return _sh.Permute.apply(self, dims=tuple(reversed(range(self.ndim))))

    def t(self):
        if self.ndim > 2:
            raise ValueError(f"t: expects a tensor with at most 2 dimensions, got {self.ndim}")
        return self.T

    def squeeze(self, dim=None):
        if dim is None:
            shape = tuple(s for s in self.shape if s != 1)
        else:
            axes = _red.normalize_dims(dim, self.ndim, "squeeze")
            shape = tuple(s for i, s in enumerate(self.shape) if not (i in axes and s == 1))
        return _sh.Reshape.apply(self, shape=shape)

    def unsqueeze(self, dim):
        if not -self.ndim - 1 <= dim <= self.ndim:
            raise IndexError(f"unsqueeze: dim {dim} is out of range for a tensor with {self.ndim} dimensions")
        dim = dim % (self.ndim + 1)
        return _sh.Reshape.apply(self, shape=self.shape[:dim] + (1,) + self.shape[dim:])

    def expand(self, *shape):
        shape = shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape
        shape = tuple(s if s != -1 else self.shape[i - len(shape) + self.ndim] for i, s in enumerate(shape))
        return _sh.Expand.apply(self, shape=shape)

    def contiguous(self):
        return self

    def __getitem__(self, index):
        return _sh.GetItem.apply(self, index=_unwrap_index(index))

    def __setitem__(self, index, value):
        if self.requires_grad and is_grad_enabled():
            raise RuntimeError("setitem: in-place assignment to a tensor that requires grad; "
                               "do it under no_grad() or on a detached tensor")
        self.data[_unwrap_index(index)] = value.data if isinstance(value, Tensor) else value

    # ----- dtype ----------------------------------------------------------------------------------
    def to(self, dtype):
        dtype = xp.dtype(dtype)
        if dtype == self.dtype:
            return self
        if self.requires_grad and dtype.kind == "f":
            return _Cast.apply(self, dtype=dtype)
        return Tensor._from_array(self.data.astype(dtype))

    def float(self):
        return self.to(float32)

    def double(self):
        return self.to(float64)

    def long(self):
        return self.to(int64)

    def int(self):
        return self.to(int32)


def _unwrap_index(index):
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


def tensor(data, dtype=None, requires_grad=False):
    """A new Tensor holding a copy of ``data``: Python floats give float32, NumPy arrays keep their dtype."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def cat(tensors, dim=0):
    """Join tensors along an existing dimension."""
    tensors = [t if isinstance(t, Tensor) else tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("cat: expected a non-empty sequence of tensors")
    ndim = tensors[0].ndim
    (axis,) = _red.normalize_dims(dim, ndim, "cat")
    for t in tensors[1:]:
        if t.ndim != ndim or t.shape[:axis] + t.shape[axis + 1:] != tensors[0].shape[:axis] + tensors[0].shape[axis + 1:]:
            raise ValueError(f"cat: all tensors must match except in dimension {dim}, "
                             f"got shapes {[tuple(x.shape) for x in tensors]}")
    return _sh.Cat.apply(*tensors, axis=axis)


def stack(tensors, dim=0):
    """Join same-shaped tensors along a new dimension."""
    tensors = [t if isinstance(t, Tensor) else tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: expected a non-empty sequence of tensors")
    if any(t.shape != tensors[0].shape for t in tensors):
        raise ValueError(f"stack: all tensors must have the same shape, got {[tuple(x.shape) for x in tensors]}")
    (axis,) = _red.normalize_dims(dim, tensors[0].ndim + 1, "stack")
    return _sh.Stack.apply(*tensors, axis=axis)


from striate.autograd import arithmetic as _ar  # noqa: E402  (the ops need Tensor defined first)
from striate.autograd import elementwise as _el  # noqa: E402
from striate.autograd import reductions as _red  # noqa: E402
from striate.autograd import shaping as _sh  # noqa: E402
from striate.autograd.function import Function as _Function  # noqa: E402


class _Cast(_Function):
    def forward(self, x, dtype=None):
        self.dtype = x.dtype
        return x.astype(dtype)

    def backward(self, gy):
        return gy.astype(self.dtype)
