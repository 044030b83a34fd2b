"""Batch normalisation: one Function, forward and the classic three-term backward side by side."""
import numbers

from striate._backend import xp
from striate.autograd.function import Function
from striate.autograd.tensor import Tensor
from striate.ops._validate import as_tensor, einsum_layout, expect_float


class BatchNorm(Function):
    """y = γ·(x − μ)/√(σ² + eps) + β per channel (axis 1), with batch or running statistics.

    In training, μ and the biased σ² come from the batch, and the running buffers (arrays,
    updated in place) move towards μ and the unbiased σ² by ``momentum``. Work happens on the
    input as it is, ``(N, C, *D)``, where ``einsum`` reduces over N and D in one pass; it is not
    reshaped to ``(N, C, ∏D)``, which would copy a strided input (a convolution's output is a
    view of its products' grid) and hold that copy until backward.
    """

    def forward(self, x, gamma, beta, running_mean=None, running_var=None, training=False,
                momentum=0.1, eps=1e-5):
        c = x.shape[1]
        count = x.size // c
        per_channel = (c,) + (1,) * (x.ndim - 2)                   # broadcasts over (N, C, *D)
        axes = einsum_layout(x.ndim)
        total, dot = f"{axes}->c", f"{axes},{axes}->c"
        gamma = xp.ones(c, x.dtype) if gamma is None else gamma.astype(x.dtype, copy=False)
        if training:
            mean = xp.einsum(total, x) / count
            centred = x - mean.reshape(per_channel)                # (N, C, *D)
            var = xp.einsum(dot, centred, centred) / count        # two-pass: no cancellation
            if running_mean is not None:
                running_mean *= 1 - momentum
                running_mean += momentum * mean.astype(running_mean.dtype, copy=False)
            if running_var is not None:
                running_var *= 1 - momentum
                running_var += (momentum * count / (count - 1)) * var.astype(running_var.dtype, copy=False)
            inv_std = 1 / xp.sqrt(var + eps)                       # (C,)
            scale = gamma * inv_std
            y = centred
            y *= scale.reshape(per_channel)
            if beta is not None:
                y += beta.astype(x.dtype, copy=False).reshape(per_channel)
        else:
            mean = running_mean.astype(x.dtype, copy=False)
            inv_std = 1 / xp.sqrt(running_var.astype(x.dtype, copy=False) + eps)
            scale = gamma * inv_std
            shift = -mean * scale if beta is None else beta.astype(x.dtype, copy=False) - mean * scale
            y = x * scale.reshape(per_channel) + shift.reshape(per_channel)   # one affine map per channel
        # Keep x (held by the previous layer anyway) and μ, not x − μ: backward recomputes it,
        # so the layer costs no activation-sized array between forward and backward.
        self.x, self.mean, self.per_channel, self.sums = x, mean, per_channel, (total, dot)
        self.inv_std, self.scale, self.count, self.training = inv_std, scale, count, training
        return y

    def backward(self, gy):
        inv_std, scale, count, per_channel = self.inv_std, self.scale, self.count, self.per_channel
        total, dot = self.sums
        g_beta = xp.einsum(total, gy)
        if self.training:
            centred = self.x - self.mean.reshape(per_channel)      # (N, C, *D), as in forward
            g_dot = xp.einsum(dot, gy, centred)                    # Σ gy·(x − μ)
        else:
            g_dot = xp.einsum(dot, gy, self.x) - self.mean * g_beta
        g_gamma = g_dot * inv_std                                  # Σ gy·x̂
        gx = None
        if self.needs_input_grad[0]:
            gx = gy * scale.reshape(per_channel)
            if self.training:
                # μ and σ depend on x: gx = γ/σ · (gy − mean(gy) − x̂·mean(gy·x̂)).
                centred *= (scale * inv_std * g_gamma / count).reshape(per_channel)
                gx -= centred
                gx -= (scale * g_beta / count).reshape(per_channel)
        g_weight = g_gamma if self.needs_input_grad[1] else None
        g_bias = g_beta if self.needs_input_grad[2] else None
        return gx, g_weight, g_bias


def _per_channel(value, name, channels, input_shape, op):
    """A (C,) argument as an array (running buffers: the very array, so it can be updated in place)."""
    if value is None:
        return None
    if not isinstance(value, (Tensor, xp.ndarray)):
        raise TypeError(f"{op}: {name} must be a Tensor or an array, got {type(value).__name__}")
    if value.shape != (channels,):
        raise ValueError(f"{op}: {name} must have shape (C,) = ({channels},) for input of shape "
                         f"{tuple(input_shape)}, got shape {tuple(value.shape)}")
    if value.dtype.kind != "f":
        raise TypeError(f"{op}: {name} must be floating point, got dtype {value.dtype}")
    return value


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Normalise each channel over the batch and spatial dims, then scale by ``weight`` and shift by ``bias``.

    Args:
        input: ``(N, C)`` or ``(N, C, *D)``; channels along dimension 1.
        running_mean, running_var: ``(C,)`` Tensors or arrays. In training they are updated in
            place, ``r ← (1 − momentum)·r + momentum·batch_stat``, with the unbiased batch variance
            for ``running_var``; either may be None in training (then it is not tracked). Eval
            mode normalises with them, so both are required there.
        weight, bias: optional ``(C,)`` affine parameters γ and β.
        training: use the batch's statistics (biased variance) and update the running ones.
        momentum: a float in [0, 1]. PyTorch's ``momentum=None`` (a cumulative average) lives in
            the BatchNorm modules, which pass ``1 / num_batches_tracked`` here as a float.
        eps: added to the variance before the square root.

    Shape:
        input (N, C, *D); output the same.

    Example::

        >>> x = st.randn(8, 3, 5, 5, requires_grad=True)
        >>> mean, var = st.zeros(3), st.ones(3)
        >>> y = F.batch_norm(x, mean, var, st.ones(3), st.zeros(3), training=True)   # updates mean, var
    """
    op = "batch_norm"
    input = as_tensor(input, op)
    expect_float(input, op)
    if input.ndim < 2:
        raise ValueError(f"{op}: expected input of shape (N, C) or (N, C, *D), got {input.ndim}-D input "
                         f"of shape {tuple(input.shape)}")
    if momentum is None or isinstance(momentum, bool) or not isinstance(momentum, numbers.Real):
        raise TypeError(f"{op}: momentum must be a float, got {momentum!r} (momentum=None, the cumulative "
                        "average, is handled by the BatchNorm modules, which pass 1/num_batches_tracked)")
    if not isinstance(eps, numbers.Real) or eps < 0:
        raise ValueError(f"{op}: eps must be a non-negative number, got {eps!r}")
    channels = input.shape[1]
    running_mean = _per_channel(running_mean, "running_mean", channels, input.shape, op)
    running_var = _per_channel(running_var, "running_var", channels, input.shape, op)
    weight = _per_channel(weight, "weight", channels, input.shape, op)
    bias = _per_channel(bias, "bias", channels, input.shape, op)
    if training:
        if input.size(0) * int(xp.prod(input.shape[2:])) < 2:
            raise ValueError(f"{op}: expected more than 1 value per channel when training, "
                             f"got input of shape {tuple(input.shape)}")
    elif running_mean is None or running_var is None:
        raise ValueError(f"{op}: running_mean and running_var must be given in evaluation mode (training=False)")
    buffers = [b.data if isinstance(b, Tensor) else b for b in (running_mean, running_var)]
    return BatchNorm.apply(input, weight, bias, running_mean=buffers[0], running_var=buffers[1],
                           training=bool(training), momentum=float(momentum), eps=float(eps))


__all__ = ["batch_norm"]
