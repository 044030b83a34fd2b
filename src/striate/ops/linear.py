"""The affine map of a fully connected layer, y = x·Wᵀ + b, as one matrix product."""
import math

from striate.autograd.function import Function
from striate.ops._validate import as_tensor, expect_float


class Linear(Function):
    """``x (*, in) · W (out, in)ᵀ + b (out,)``.

    Leading dimensions are flattened into rows first, so any input is a single GEMM
    (``x2 (M, in) @ Wᵀ (in, out)``) rather than a broadcast loop of small ones; the
    backward is two more GEMMs and a column sum.
    """

    def forward(self, x, w, b):
        self.lead, self.in_features = x.shape[:-1], x.shape[-1]
        rows = math.prod(self.lead)
        x2 = x.reshape(rows, self.in_features)             # (M, in), M = ∏ leading dims
        y = x2 @ w.T                                        # (M, out)
        if b is not None:
            y += b
        need_x, need_w, _ = self.needs_input_grad
        self.x2 = x2 if need_w else None
        self.w = w if need_x else None
        return y.reshape(self.lead + (w.shape[0],))        # (*, out)

    def backward(self, gy):
        need_x, need_w, need_b = self.needs_input_grad
        gy2 = gy.reshape(math.prod(self.lead), gy.shape[-1])  # (M, out)
        gx = (gy2 @ self.w).reshape(self.lead + (self.in_features,)) if need_x else None  # (*, in)
        gw = gy2.T @ self.x2 if need_w else None             # (out, in)
        gb = gy2.sum(axis=0) if need_b else None             # (out,)
        return gx, gw, gb


def linear(input, weight, bias=None):
    """Apply the affine map y = x·Wᵀ + b to the last dimension of ``input``.

    Args:
        input: floating-point tensor ``(*, in_features)``; ``*`` is any number of dimensions,
            including none.
        weight: ``(out_features, in_features)``, the same dtype as ``input``.
        bias: optional ``(out_features,)``.

    Shape:
        - Input: ``(*, in_features)``
        - Output: ``(*, out_features)``

    Example::

        >>> x = st.randn(8, 20)
        >>> w, b = st.randn(30, 20), st.randn(30)
        >>> F.linear(x, w, b).shape
        (8, 30)
    """
    input = as_tensor(input, "linear")
    weight = as_tensor(weight, "linear", "weight")
    expect_float(input, "linear")
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must have shape (out_features, in_features), "
                         f"got {weight.ndim}-D weight of shape {tuple(weight.shape)}")
    out_features, in_features = weight.shape
    if input.ndim == 0:
        raise ValueError("linear: input must have shape (*, in_features), got a 0-D tensor")
    if input.shape[-1] != in_features:
        raise ValueError(f"linear: the last dimension of input must equal weight's in_features: "
                         f"input {tuple(input.shape)} has {input.shape[-1]}, "
                         f"weight {tuple(weight.shape)} expects {in_features}")
    tensors = [input, weight]
    if bias is not None:
        bias = as_tensor(bias, "linear", "bias")
        if tuple(bias.shape) != (out_features,):
            raise ValueError(f"linear: bias must have shape (out_features,) = ({out_features},), "
                             f"got {tuple(bias.shape)}")
        tensors.append(bias)
    for name, t in zip(("weight", "bias"), tensors[1:]):
        if t.dtype != input.dtype:
            raise TypeError(f"linear: input and {name} must have the same dtype, "
                            f"got {input.dtype} and {t.dtype}")
    return Linear.apply(input, weight, bias)


__all__ = ["linear"]
