"""Broadcasting arithmetic: + − × ÷ ** @ and negation, each with its gradient."""
from striate._backend import xp
from striate.autograd.function import Function


def unbroadcast(g, shape):
    """Sum ``g`` over the axes NumPy broadcasting added or stretched, so it has ``shape``."""
    if g.shape == shape:
        return g
    extra = g.ndim - len(shape)
    if extra:
        g = g.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if stretched:
        g = g.sum(axis=stretched, keepdims=True)
    return g.reshape(shape)


class Add(Function):
    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        return a + b

    def backward(self, gy):
        ga = unbroadcast(gy, self.a_shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(gy, self.b_shape) if self.needs_input_grad[1] else None
        return ga, gb


class Sub(Function):
    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        return a - b

    def backward(self, gy):
        ga = unbroadcast(gy, self.a_shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(-gy, self.b_shape) if self.needs_input_grad[1] else None
        return ga, gb


class Mul(Function):
    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        # Each factor is needed only for the other's gradient: keep no more than that.
        self.a = a if self.needs_input_grad[1] else None
        self.b = b if self.needs_input_grad[0] else None
        return a * b

    def backward(self, gy):
        ga = unbroadcast(gy * self.b, self.a_shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(gy * self.a, self.b_shape) if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    def forward(self, a, b):
        self.a_shape = a.shape
        self.a = a if self.needs_input_grad[1] else None
        self.b = b
        return a / b

    def backward(self, gy):
        ga = unbroadcast(gy / self.b, self.a_shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(-gy * self.a / (self.b * self.b), self.b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Pow(Function):
    """``a ** b`` for a Tensor exponent, with PyTorch's values at the edges.

    d/da = b·a^(b−1), taken as 0 where b = 0; d/db = a^b·log(a), taken as 0 where
    a = 0 and b ≥ 0 (NaN for negative a, as the logarithm is).
    """

    def forward(self, a, b):
        self.a, self.b = a, b
        self.y = a ** b
        return self.y

    def backward(self, gy):
        a, b = self.a, self.b
        ga = gb = None
        with xp.errstate(divide="ignore", invalid="ignore"):
            if self.needs_input_grad[0]:
                ga = unbroadcast(xp.where(b == 0, 0, gy * b * a ** (b - 1)).astype(gy.dtype), a.shape)
            if self.needs_input_grad[1]:
                d_b = xp.where((a == 0) & (b >= 0), 0, self.y * xp.log(a)).astype(gy.dtype)
                gb = unbroadcast(gy * d_b, b.shape)
        return ga, gb


class PowScalar(Function):
    """``a ** p`` for a Python number ``p``."""

    def forward(self, a, exponent):
        self.a, self.exponent = a, exponent
        return a ** exponent

    def backward(self, gy):
        if self.exponent == 0:
            return xp.zeros_like(gy)
        return gy * self.exponent * self.a ** (self.exponent - 1)


class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, gy):
        return -gy


class MatMul(Function):
    """``a @ b`` with NumPy's rules: 1-D operands are promoted and batch dimensions broadcast."""

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: both operands need at least one dimension, got shapes {a.shape} and {b.shape}")
        if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ValueError(f"matmul: inner dimensions must agree, got shapes {a.shape} and {b.shape}")
        try:
            xp.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise ValueError(f"matmul: batch dimensions must broadcast, got shapes {a.shape} and {b.shape}") from None
        self.a, self.b = a, b
        return a @ b

    def backward(self, gy):
        a, b = self.a, self.b
        a2 = a[None, :] if a.ndim == 1 else a          # (..., M, K)
        b2 = b[:, None] if b.ndim == 1 else b          # (..., K, P)
        g2 = gy
        if a.ndim == 1:
            g2 = xp.expand_dims(g2, -2 if b.ndim > 1 else 0)
        if b.ndim == 1:
            g2 = xp.expand_dims(g2, -1)               # (..., M, P)
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = unbroadcast(g2 @ xp.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        if self.needs_input_grad[1]:
            gb = unbroadcast(xp.swapaxes(a2, -1, -2) @ g2, b2.shape).reshape(b.shape)
        return ga, gb
