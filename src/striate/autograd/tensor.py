"""``Tensor``: an array that remembers the operation that made it, so it can be differentiated."""
import collections
import numbers
import operator

import numpy

from striate._backend import xp
from striate.autograd.grad_mode import is_grad_enabled
from striate.autograd.promotion import is_scalar, promote_types, result_type

float32, float64, float16 = xp.float32, xp.float64, xp.float16
int64, int32, uint8, bool_ = xp.int64, xp.int32, xp.uint8, xp.bool_

_ReturnTypes = collections.namedtuple("values_indices", ["values", "indices"])


def _as_array(data, dtype=None, copy=True):
    """An ndarray from ``data`` with PyTorch's dtype rule: Python floats become float32,
    arrays keep their dtype (float64 included), integers become int64."""
    if isinstance(data, Tensor):
        data = data.data
    from_array = dtype is not None or isinstance(data, (xp.ndarray, xp.generic))
    try:
        array = xp.array(data, dtype=dtype, copy=copy or None)
    except ValueError as error:  # ragged nested lists, strings that are not numbers
        raise ValueError(f"tensor: data must be a number or a rectangular nested sequence of numbers: "
                         f"{error}") from None
    if not from_array:
        if array.dtype.kind == "f":
            array = array.astype(float32)
        elif array.dtype.kind in "iu":
            array = array.astype(int64)
    if array.dtype.kind not in "fiub":
        raise TypeError(f"tensor: cannot make a tensor from data of dtype {array.dtype} "
                        "(expected numbers or booleans)")
    return array


def _cast(operand, dtype):
    """``operand`` (Tensor, array or Python number) as ``dtype``; a Tensor stays in the graph."""
    if isinstance(operand, Tensor):
        return operand.to(dtype)
    if isinstance(operand, xp.ndarray):
        return operand.astype(dtype, copy=False)
    return xp.asarray(operand, dtype=dtype)


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
        if not self._requires_grad:
            raise RuntimeError("retain_grad: the tensor does not require grad, so it will never have one")
        self._retains_grad = True

    @property
    def retains_grad(self):
        return self._retains_grad and self._ctx is not None

    def detach(self):
        """The same data (shared, not copied), cut from the graph."""
        return Tensor._from_array(self.data)

    def backward(self, gradient=None, retain_graph=None, create_graph=False):
        """Accumulate the gradient of this tensor with respect to every leaf into their ``.grad``.

        Args:
            gradient: d(something)/d(self), same shape as self. Only a single-element tensor
                may leave it out (it is then 1).
            retain_graph: keep the graph so backward can run through it again; by default it
                is released as it is used, as in PyTorch.
            create_graph: higher-order gradients; not supported (must be False).
        """
        if create_graph:
            raise NotImplementedError("backward: create_graph=True (higher-order gradients) is not supported")
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad and has no grad_fn "
                               "(did you compute it under no_grad, or from tensors without requires_grad=True?)")
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward: grad can be implicitly created only for scalar outputs, "
                                   f"got shape {self.shape}; pass gradient=")
            g = xp.ones(self.shape, dtype=self.dtype)
        else:
            # Not copied: backward functions never write into their upstream gradient, and a
            # leaf's .grad is always a copy (engine._accumulate), so the caller's array is safe.
            g = _as_array(gradient, dtype=self.dtype, copy=False)
            if g.shape != self.shape:
                raise ValueError(f"backward: gradient has shape {g.shape}, expected {self.shape}")
        from striate.autograd.engine import run_backward
        run_backward(self, g, retain_graph=bool(retain_graph))

    # ----- in place (never recorded) ------------------------------------------------------
    def _check_in_place(self, op):
        if self._requires_grad and is_grad_enabled():
            raise RuntimeError(f"{op}: in-place change of a tensor that requires grad; "
                               "do it under st.no_grad() or on a detached tensor")

    def zero_(self):
        self._check_in_place("zero_")
        self.data[...] = 0
        return self

    def fill_(self, value):
        self._check_in_place("fill_")
        self.data[...] = value
        return self

    def copy_(self, src):
        """Copy ``src`` (broadcast to this shape) into this tensor's memory."""
        self._check_in_place("copy_")
        src = src.data if isinstance(src, Tensor) else src
        try:
            self.data[...] = xp.broadcast_to(src, self.shape)
        except ValueError:
            raise ValueError(f"copy_: cannot broadcast a source of shape {xp.shape(src)} "
                             f"to the tensor's shape {self.shape}") from None
        return self

    def __setitem__(self, index, value):
        self._check_in_place("setitem")
        self.data[_unwrap_index(index)] = value.data if isinstance(value, Tensor) else value

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

    @property
    def device(self):
        return "cpu"

    def size(self, dim=None):
        if dim is None:
            return self.data.shape
        return self.data.shape[_red.normalize_dims(dim, self.ndim, "size")[0]]

    def dim(self):
        return self.data.ndim

    def numel(self):
        return int(self.data.size)

    def is_floating_point(self):
        return self.data.dtype.kind == "f"

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self):
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.data.shape[0]))

    def __array__(self, dtype=None, copy=None):
        if dtype is not None and xp.dtype(dtype) != self.data.dtype:
            if copy is False:
                raise ValueError(f"__array__: converting {self.dtype} to {xp.dtype(dtype)} needs a copy")
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def numpy(self):
        """The underlying array (shared, not copied), like PyTorch's."""
        return self.data

    def cpu(self):
        return self

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item: only one-element tensors can be converted to a Python number, "
                             f"got shape {self.shape}")
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
        data = self.data
        # PyTorch's style: 4 decimals, or none for whole numbers ("tensor([1., 2.])")
        finite = data[numpy.isfinite(data)] if data.dtype.kind == "f" else data
        whole = data.dtype.kind != "f" or bool(numpy.all(finite == numpy.round(finite)))
        body = numpy.array2string(data, separator=", ", prefix="tensor(", precision=4,
                                  floatmode="maxprec" if whole else "fixed")
        extras = []
        if self.dtype not in (float32, int64, bool_) or (self.data.size == 0 and self.dtype != float32):
            extras.append(f"dtype={self.dtype}")
        if self._ctx is not None:
            extras.append(f"grad_fn=<{self._ctx.name}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body] + extras) + ")"

    def __format__(self, spec):
        # As in PyTorch, a 0-d tensor formats as its number: f"{loss:.4f}".
        if self.data.ndim == 0:
            return format(self.item(), spec)
        return format(repr(self), spec)

    __hash__ = object.__hash__

    # ----- arithmetic -----------------------------------------------------------------------
    def _promoted(self, other, true_divide=False):
        """``self`` and ``other`` cast to the dtype PyTorch's promotion gives the operation."""
        if self.data.dtype.kind == "f" and isinstance(other, (float, int)):
            # the common case, a float tensor and a Python number: the tensor's dtype wins
            return self, xp.asarray(other, dtype=self.data.dtype)
        if isinstance(other, Tensor):
            if other.data.dtype == self.data.dtype and (self.data.dtype.kind == "f" or not true_divide):
                return self, other
        elif not is_scalar(other):
            other = _as_array(other, copy=False)
        dtype = result_type(self, other)
        if true_divide and dtype.kind != "f":
            dtype = xp.dtype(float32)
        return _cast(self, dtype), _cast(other, dtype)

    def _binary(self, function, other, reflected=False, true_divide=False):
        if not isinstance(other, _OPERANDS) and not is_scalar(other):
            return NotImplemented  # Python then tries the other side, or raises its TypeError
        a, b = self._promoted(other, true_divide)
        try:
            return function.apply(b, a) if reflected else function.apply(a, b)
        except ValueError as error:
            if "could not be broadcast" not in str(error):
                raise
            left, right = (b, a) if reflected else (a, b)
            raise ValueError(f"{function.__name__.lower()}: operands of shapes {tuple(xp.shape(left))} and "
                             f"{tuple(xp.shape(right))} cannot be broadcast together (aligned from the last "
                             f"dimension, sizes must be equal or 1)") from None

    def __add__(self, other):
        return self._binary(_ar.Add, other)

    def __radd__(self, other):
        return self._binary(_ar.Add, other, reflected=True)

    def __sub__(self, other):
        return self._binary(_ar.Sub, other)

    def __rsub__(self, other):
        return self._binary(_ar.Sub, other, reflected=True)

    def __mul__(self, other):
        return self._binary(_ar.Mul, other)

    def __rmul__(self, other):
        return self._binary(_ar.Mul, other, reflected=True)

    def __truediv__(self, other):
        return self._binary(_ar.Div, other, true_divide=True)

    def __rtruediv__(self, other):
        return self._binary(_ar.Div, other, reflected=True, true_divide=True)

    def __pow__(self, other):
        if is_scalar(other) and not isinstance(other, (bool, xp.bool_)):
            base = _cast(self, result_type(self, other))
            exponent = other.item() if isinstance(other, xp.generic) else other  # a NumPy scalar would promote
            return _ar.PowScalar.apply(base, exponent=exponent)
        return self._binary(_ar.Pow, other)

    def __rpow__(self, other):
        return self._binary(_ar.Pow, other, reflected=True)

    def __matmul__(self, other):
        return self._binary(_ar.MatMul, other)

    def __rmatmul__(self, other):
        return self._binary(_ar.MatMul, other, reflected=True)

    def __neg__(self):
        if self.dtype == bool_:
            raise TypeError("neg: negation of a bool tensor is not supported; use ~ (logical not)")
        return _ar.Neg.apply(self)

    def __pos__(self):
        return self

    def add(self, other, *, alpha=1):
        return self + (other if alpha == 1 else other * alpha)

    def sub(self, other, *, alpha=1):
        return self - (other if alpha == 1 else other * alpha)

    def mul(self, other):
        return self * other

    def div(self, other):
        return self / other

    def pow(self, exponent):
        return self ** exponent

    def matmul(self, other):
        return self @ other

    def neg(self):
        return -self

    # ----- comparisons and logic (results never require grad) -----------------------------
    def _elementwise_no_grad(self, other, ufunc):
        if not isinstance(other, _OPERANDS) and not is_scalar(other):
            return NotImplemented  # t == None is False, as in PyTorch
        other = other.data if isinstance(other, Tensor) else other
        return Tensor._from_array(ufunc(self.data, other))

    def __eq__(self, other):
        return self._elementwise_no_grad(other, xp.equal)

    def __ne__(self, other):
        return self._elementwise_no_grad(other, xp.not_equal)

    def __lt__(self, other):
        return self._elementwise_no_grad(other, xp.less)

    def __le__(self, other):
        return self._elementwise_no_grad(other, xp.less_equal)

    def __gt__(self, other):
        return self._elementwise_no_grad(other, xp.greater)

    def __ge__(self, other):
        return self._elementwise_no_grad(other, xp.greater_equal)

    def __and__(self, other):
        return self._elementwise_no_grad(other, xp.bitwise_and)

    __rand__ = __and__

    def __or__(self, other):
        return self._elementwise_no_grad(other, xp.bitwise_or)

    __ror__ = __or__

    def __xor__(self, other):
        return self._elementwise_no_grad(other, xp.bitwise_xor)

    __rxor__ = __xor__

    def __invert__(self):
        return Tensor._from_array(xp.invert(self.data))

    # ----- element-wise -----------------------------------------------------------------------
    def _as_float(self):
        return self if self.data.dtype.kind == "f" else self.to(float32)

    def exp(self):
        return _el.Exp.apply(self._as_float())

    def log(self):
        return _el.Log.apply(self._as_float())

    def sqrt(self):
        return _el.Sqrt.apply(self._as_float())

    def abs(self):
        return _el.Abs.apply(self)

    __abs__ = abs

    def clamp(self, min=None, max=None):
        """Clip into [min, max]; bounds are numbers or tensors (not differentiated)."""
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        min, max = (b.data if isinstance(b, Tensor) else b for b in (min, max))
        dtype = result_type(self, *(b if is_scalar(b) else xp.asarray(b) for b in (min, max) if b is not None))
        return _el.Clamp.apply(_cast(self, dtype), min=min, max=max)

    clip = clamp

    # ----- reductions -----------------------------------------------------------------------------
    def _axes(self, dim, op):
        # PyTorch reduces over every dimension for dim=None and for an empty dim list.
        empty = isinstance(dim, (tuple, list)) and len(dim) == 0
        return _red.normalize_dims(None if empty else dim, self.ndim, op)

    def sum(self, dim=None, keepdim=False):
        return _red.Sum.apply(self, axes=self._axes(dim, "sum"), keepdim=keepdim)

    def mean(self, dim=None, keepdim=False):
        if self.dtype.kind != "f":
            raise TypeError(f"mean: needs a floating-point tensor, got dtype {self.dtype}")
        return _red.Mean.apply(self, axes=self._axes(dim, "mean"), keepdim=keepdim)

    def _spread(self, function, op, dim, unbiased, keepdim, correction):
        if isinstance(dim, bool):  # var(True): PyTorch's (unbiased) overload
            dim, unbiased = None, dim
        if unbiased is not None and correction is not None:
            raise ValueError(f"{op}: give either unbiased or correction, not both")
        if correction is None:
            correction = 1 if unbiased is None or unbiased else 0
        if self.dtype.kind != "f":
            raise TypeError(f"{op}: needs a floating-point tensor, got dtype {self.dtype}")
        return function.apply(self, axes=self._axes(dim, op), correction=correction, keepdim=keepdim)

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        """Variance; ``correction=1`` (the default, Bessel's) or ``unbiased=False`` for the population one."""
        return self._spread(_red.Var, "var", dim, unbiased, keepdim, correction)

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        """Standard deviation, with ``var``'s arguments."""
        return self._spread(_red.Std, "std", dim, unbiased, keepdim, correction)

    def _extreme(self, dim, keepdim, largest, op):
        if dim is None:
            if self.data.size == 0:
                raise ValueError(f"{op}: cannot reduce an empty tensor of shape {self.shape}")
            return _red.Extreme.apply(self, axes=tuple(range(self.ndim)), keepdim=False, largest=largest)
        if not isinstance(dim, numbers.Integral):
            raise TypeError(f"{op}: dim must be an int, got {dim!r}")
        axes = _red.normalize_dims(dim, self.ndim, op)
        if not axes:  # a 0-d tensor: its only element, at index 0
            return _ReturnTypes(_sh.Reshape.apply(self, shape=()), Tensor._from_array(xp.zeros((), dtype=int64)))
        (axis,) = axes
        if self.shape[axis] == 0:
            raise ValueError(f"{op}: cannot reduce over dimension {dim} of size 0 (shape {self.shape})")
        values = _red.ExtremeAlong.apply(self, axis=axis, keepdim=keepdim, largest=largest)
        indices = values._ctx.indices if values._ctx is not None else (
            xp.argmax(self.data, axis=axis) if largest else xp.argmin(self.data, axis=axis))
        if keepdim:
            indices = xp.expand_dims(indices, axis)
        return _ReturnTypes(values, Tensor._from_array(indices.astype(int64, copy=False)))

    def max(self, dim=None, keepdim=False):
        """The largest element (ties share the gradient), or with ``dim`` a ``(values, indices)`` pair."""
        return self._extreme(dim, keepdim, True, "max")

    def min(self, dim=None, keepdim=False):
        """The smallest element (ties share the gradient), or with ``dim`` a ``(values, indices)`` pair."""
        return self._extreme(dim, keepdim, False, "min")

    def amax(self, dim=None, keepdim=False):
        return _red.Extreme.apply(self, axes=self._axes(dim, "amax"), keepdim=keepdim, largest=True)

    def amin(self, dim=None, keepdim=False):
        return _red.Extreme.apply(self, axes=self._axes(dim, "amin"), keepdim=keepdim, largest=False)

    def _arg_extreme(self, dim, keepdim, find, op):
        if dim is None:
            index = xp.asarray(find(self.data), dtype=int64)
            return Tensor._from_array(index.reshape((1,) * self.ndim) if keepdim else index)
        axes = _red.normalize_dims(dim, self.ndim, op)
        if not axes:
            return Tensor._from_array(xp.zeros((), dtype=int64))
        return Tensor._from_array(find(self.data, axis=axes[0], keepdims=keepdim).astype(int64, copy=False))

    def argmax(self, dim=None, keepdim=False):
        return self._arg_extreme(dim, keepdim, xp.argmax, "argmax")

    def argmin(self, dim=None, keepdim=False):
        return self._arg_extreme(dim, keepdim, xp.argmin, "argmin")

    # ----- shape ----------------------------------------------------------------------------------
    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and not isinstance(shape[0], numbers.Integral) else shape
        try:
            shape = tuple(operator.index(s) for s in shape)
        except TypeError:
            raise TypeError(f"reshape: shape must be ints, got {shape!r}") from None
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

    def view_as(self, other):
        return self.reshape(other.shape)

    reshape_as = view_as

    def flatten(self, start_dim=0, end_dim=-1):
        if self.ndim == 0:
            return self.reshape(1)
        (start,) = _red.normalize_dims(start_dim, self.ndim, "flatten")
        (end,) = _red.normalize_dims(end_dim, self.ndim, "flatten")
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} "
                             f"for a tensor of shape {self.shape}")
        merged = 1
        for s in self.shape[start:end + 1]:
            merged *= s
        return _sh.Reshape.apply(self, shape=self.shape[:start] + (merged,) + self.shape[end + 1:])

    def permute(self, *dims):
        dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
        if len(dims) != self.ndim:
            raise ValueError(f"permute: expected {self.ndim} dims for a tensor of shape {self.shape}, got {dims}")
        order = tuple(_red.normalize_dims(d, self.ndim, "permute")[0] for d in dims)
        if len(set(order)) != len(order):
            raise ValueError(f"permute: dims {dims} name a dimension twice")
        return _sh.Permute.apply(self, dims=order)

    def transpose(self, dim0, dim1):
        (a,) = _red.normalize_dims(dim0, self.ndim, "transpose") or (0,)
        (b,) = _red.normalize_dims(dim1, self.ndim, "transpose") or (0,)
        dims = list(range(self.ndim))
        if dims:
            dims[a], dims[b] = dims[b], dims[a]
        return _sh.Permute.apply(self, dims=tuple(dims))

    swapaxes = transpose

    @property
    def T(self):
        """All dimensions reversed (the matrix transpose for 2-D)."""
        return _sh.Permute.apply(self, dims=tuple(reversed(range(self.ndim))))

    @property
    def mT(self):
        """The last two dimensions swapped: a batch of matrices transposed."""
        if self.ndim < 2:
            raise ValueError(f"mT: expects a tensor with at least 2 dimensions, got shape {self.shape}")
        return self.transpose(-2, -1)

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
        if not isinstance(dim, numbers.Integral):
            raise TypeError(f"unsqueeze: dim must be an int, got {dim!r}")
        if not -self.ndim - 1 <= dim <= self.ndim:
            raise IndexError(f"unsqueeze: dim {dim} is out of range for a tensor with {self.ndim} dimensions "
                             f"(expected a dim in [{-self.ndim - 1}, {self.ndim}])")
        dim = int(dim) % (self.ndim + 1)
        return _sh.Reshape.apply(self, shape=self.shape[:dim] + (1,) + self.shape[dim:])

    def expand(self, *shape):
        """A broadcast view: size-1 dimensions grow to ``shape`` (-1 keeps a size); no copy."""
        shape = tuple(shape[0]) if len(shape) == 1 and not isinstance(shape[0], numbers.Integral) else shape
        lead = len(shape) - self.ndim
        if lead < 0:
            raise ValueError(f"expand: the target shape {shape} has fewer dimensions than the tensor's {self.shape}")
        target = []
        for i, s in enumerate(shape):
            own = self.shape[i - lead] if i >= lead else None
            if s == -1 and own is not None:
                s = own
            if s < 0 or (own is not None and own != 1 and own != s):
                raise ValueError(f"expand: cannot expand a tensor of shape {self.shape} to {shape}: "
                                 f"only size-1 dimensions can grow, and -1 only keeps an existing size")
            target.append(int(s))
        return _sh.Expand.apply(self, shape=tuple(target))

    def expand_as(self, other):
        return self.expand(other.shape)

    def clone(self):
        """A copy of the data that stays in the graph (gradients flow through it)."""
        return _sh.Clone.apply(self)

    def contiguous(self):
        return self

    def __getitem__(self, index):
        try:
            return _sh.GetItem.apply(self, index=_unwrap_index(index))
        except IndexError as error:  # NumPy's message names neither the op nor the tensor
            raise IndexError(f"getitem: invalid index {index!r:.100} for a tensor of shape {self.shape}: "
                             f"{error}") from None

    # ----- dtype ----------------------------------------------------------------------------------
    def to(self, *args, dtype=None, device=None, copy=False):
        """This tensor as ``dtype`` (a dtype, or another tensor's); ``device`` may only be the CPU.

        Returns ``self`` when nothing changes (unless ``copy``); a float-to-float cast of a
        tensor that requires grad stays in the graph.
        """
        for arg in args:
            if isinstance(arg, Tensor):
                dtype = arg.dtype
            elif arg is not None and str(arg).split(":")[0] in ("cpu", "cuda", "mps", "meta", "xpu"):
                device = arg
            else:
                dtype = arg
        if device is not None and str(device) != "cpu":
            raise ValueError(f"to: striate runs on the CPU only, got device {device!r}")
        dtype = self.dtype if dtype is None else xp.dtype(dtype)
        if dtype == self.dtype:
            return self.clone() if copy else self
        if self.requires_grad and dtype.kind == "f":
            return _Cast.apply(self, dtype=dtype)
        return Tensor._from_array(self.data.astype(dtype))

    def type_as(self, other):
        return self.to(other.dtype)

    def float(self):
        return self.to(float32)

    def double(self):
        return self.to(float64)

    def half(self):
        return self.to(float16)

    def long(self):
        return self.to(int64)

    def int(self):
        return self.to(int32)

    def bool(self):
        return self.to(bool_)


_OPERANDS = (Tensor, xp.ndarray, list, tuple)


def _unwrap_index(index):
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


def tensor(data, dtype=None, requires_grad=False):
    """A new Tensor holding a copy of ``data``: Python floats give float32, NumPy arrays keep their dtype."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def _joinable(tensors, op):
    tensors = [t if isinstance(t, Tensor) else tensor(t) for t in tensors]
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty sequence of tensors")
    dtype = None
    for t in tensors:
        dtype = promote_types(dtype, t.dtype)
    return [t.to(dtype) for t in tensors]


def cat(tensors, dim=0):
    """Join tensors along an existing dimension (dtypes promote as in PyTorch)."""
    tensors = _joinable(tensors, "cat")
    first = tensors[0]
    for i, t in enumerate(tensors):
        if t.ndim == 0:
            raise ValueError(f"cat: zero-dimensional tensor (at position {i}) cannot be concatenated")
    (axis,) = _red.normalize_dims(dim, first.ndim, "cat")
    for t in tensors[1:]:
        if t.ndim != first.ndim or t.shape[:axis] + t.shape[axis + 1:] != first.shape[:axis] + first.shape[axis + 1:]:
            raise ValueError(f"cat: all tensors must match except in dimension {dim}, "
                             f"got shapes {[tuple(x.shape) for x in tensors]}")
    return _sh.Cat.apply(*tensors, axis=axis)


def stack(tensors, dim=0):
    """Join same-shaped tensors along a new dimension (dtypes promote as in PyTorch)."""
    tensors = _joinable(tensors, "stack")
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
