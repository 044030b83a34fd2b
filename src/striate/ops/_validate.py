"""Argument checks shared by the ops: each error names the op, the rule and what was received."""
from striate._backend import xp
from striate.autograd.tensor import Tensor

_LAYOUTS = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}


def as_tensor(value, op, name="input"):
    """``value`` as a Tensor (arrays are wrapped without copying); anything else is a TypeError."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (xp.ndarray, xp.generic)):
        return Tensor._from_array(xp.asarray(value))
    raise TypeError(f"{op}: {name} must be a Tensor or an array, got {type(value).__name__}")


def spatial_layout(n):
    """The documented layout of a batched input with ``n`` spatial dimensions."""
    return _LAYOUTS.get(n, f"(N, C, {n} spatial dims)")


def einsum_layout(ndim):
    """einsum's subscripts for an ``ndim``-dimensional ``(N, C, *D)`` array: ``"nc"`` and a letter per spatial axis."""
    return "nc" + "defghijklmopqrstuvwxyz"[:ndim - 2]


def expect_spatial_input(input, n, op):
    """Check ``input`` has ``n`` spatial dims, batched ``(N, C, *D)`` or unbatched ``(C, *D)``.

    Returns the batched tensor and whether a batch dimension was added (to remove afterwards).
    """
    input = as_tensor(input, op)
    if input.ndim == n + 2:
        return input, False
    if input.ndim == n + 1:
        return input.unsqueeze(0), True
    unbatched = spatial_layout(n).replace("N, ", "")
    raise ValueError(f"{op}: expected input of shape {spatial_layout(n)} or {unbatched}, "
                     f"got {input.ndim}-D input of shape {tuple(input.shape)}")


def expect_float(input, op, name="input"):
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: {name} must be a floating-point tensor, got dtype {input.dtype}")
