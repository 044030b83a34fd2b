"""Losses: cross-entropy, negative log-likelihood, mean squared error, binary cross-entropy on logits.

Each loss is one Function whose backward is written out (softmax − one-hot and its weighted,
smoothed relatives), so a training step costs a few passes over the logits and no graph of
primitives. Every log-probability comes from a max-shifted log-sum-exp, so logits of ±1e4
stay finite in float32.
"""
import numbers

from striate._backend import xp
from striate.autograd.function import Function
from striate.autograd.grad_mode import is_grad_enabled
from striate.ops._validate import as_tensor, expect_float

_REDUCTIONS = ("none", "mean", "sum")


# ----- shared pieces ------------------------------------------------------------------------------
def _log_softmax(x):
    """log softmax over the class axis 1, shifted by the maximum so no exp overflows."""
    shifted = x - x.max(axis=1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))


def _along_classes(vector, ndim):
    """A per-class ``(C,)`` vector shaped ``(1, C, 1, ...)`` to broadcast against ``(N, C, *d)``."""
    return vector.reshape((1, -1) + (1,) * (ndim - 2))


def _reduce(loss, reduction, count):
    """Apply ``reduction`` to per-element losses; ``mean`` divides by ``count``."""
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "sum":
        return xp.asarray(total, dtype=loss.dtype)
    with xp.errstate(invalid="ignore", divide="ignore"):  # nothing left to average is NaN, as in PyTorch
        return xp.asarray(total / count, dtype=loss.dtype)


def _upstream(gy, reduction, count, shape):
    """The gradient reaching each per-element loss, undoing ``_reduce``."""
    if reduction == "none":
        return gy
    if reduction == "mean":
        with xp.errstate(invalid="ignore", divide="ignore"):
            gy = gy / count
    return xp.broadcast_to(gy, shape)


def _check_reduction(reduction, op):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _constant(value, op, name, dtype):
    """An optional non-differentiable argument (weights) as an array of ``dtype``."""
    if value is None:
        return None
    value = as_tensor(value, op, name)
    if value.requires_grad and is_grad_enabled():
        raise ValueError(f"{op}: {name} is treated as a constant and cannot require grad "
                         "(PyTorch refuses it too); pass weight.detach()")
    expect_float(value, op, name)
    return value.data.astype(dtype, copy=False)


def _class_weight(weight, num_classes, op, dtype):
    weight = _constant(weight, op, "weight", dtype)
    if weight is not None and weight.shape != (num_classes,):
        raise ValueError(f"{op}: weight must have shape (C,) = ({num_classes},), one entry per class, "
                         f"got shape {weight.shape}")
    return weight


def _batched(input, op):
    """Input ``(N, C, *d)`` as is, or unbatched ``(C,)`` with a batch dim added; returns (input, added)."""
    if input.ndim == 0:
        raise ValueError(f"{op}: expected input of shape (C,), (N, C) or (N, C, d1, ...), got a 0-D input")
    if input.ndim == 1:
        return input.reshape(1, input.shape[0]), True
    return input, False


def _check_class_target(input, target, ignore_index, op):
    """Class-index target: integer dtype, shape ``(N, *d)`` for input ``(N, C, *d)``, values in [0, C)."""
    if target.dtype.kind not in "iu":
        raise TypeError(f"{op}: class-index target must have an integer dtype, got dtype {target.dtype} "
                        f"(class probabilities need a float target of the input's shape {tuple(input.shape)})")
    if not isinstance(ignore_index, numbers.Integral) or isinstance(ignore_index, bool):
        raise TypeError(f"{op}: ignore_index must be an int, got {type(ignore_index).__name__}")
    expected = input.shape[:1] + input.shape[2:]
    if target.shape != expected:
        if target.ndim >= 1 and target.shape[0] != input.shape[0]:
            raise ValueError(f"{op}: expected input batch size ({input.shape[0]}) to match target batch size "
                             f"({target.shape[0]}); input {tuple(input.shape)}, target {tuple(target.shape)}")
        raise ValueError(f"{op}: expected target of shape (N, d1, ...) = {expected} for input of shape "
                         f"{tuple(input.shape)}, got {tuple(target.shape)}")
    num_classes = input.shape[1]
    bad = ((target.data < 0) | (target.data >= num_classes)) & (target.data != ignore_index)
    if bad.any():
        value = int(target.data[bad].flat[0])
        raise IndexError(f"{op}: target class index {value} is out of range [0, C) with C = {num_classes} "
                         f"(ignore_index = {ignore_index})")


def _check_label_smoothing(label_smoothing, op):
    if not isinstance(label_smoothing, numbers.Real) or not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be between 0.0 and 1.0, got {label_smoothing!r}")


# ----- class-index targets: cross-entropy and NLL -------------------------------------------------
class ClassIndexLoss(Function):
    """−w[t]·log p[t] per element, with PyTorch's label smoothing, from logits or log-probabilities.

    Per element i (class axis 1), with a_i = w[t_i] (0 where t_i is ignored), ε the smoothing, C classes:

        loss_i = (1 − ε)·a_i·(−logp[i, t_i]) + (ε/C)·[t_i kept]·Σ_c w_c·(−logp[i, c])

    and ``mean`` divides the sum by Σ a_i, PyTorch's rule for both terms. From logits,
    logp = s − log Σ exp(s) with s = x − max x; only exp(s) is kept for backward.
    """

    def forward(self, x, target, weight=None, ignore_index=-100, reduction="mean",
                label_smoothing=0.0, logits=True):
        num_classes = x.shape[1]
        keep = target != ignore_index                                             # (N, *d)
        safe_target = xp.where(keep, target, 0)[:, None]                          # (N, 1, *d)
        kept = keep.astype(x.dtype)
        a = kept if weight is None else weight[safe_target[:, 0]] * kept          # w[t_i], 0 if ignored
        if logits:
            shifted = x - x.max(axis=1, keepdims=True)                            # (N, C, *d), ≤ 0
            exp_shifted = xp.exp(shifted)
            total = exp_shifted.sum(axis=1)                                       # (N, *d), in [1, C]
            log_total = xp.log(total)
            self.exp_shifted, self.total = exp_shifted, total
        else:
            shifted, log_total = x, 0
        picked = xp.take_along_axis(shifted, safe_target, axis=1)[:, 0] - log_total   # logp[i, t_i]
        loss = -(1.0 - label_smoothing) * a * picked
        if label_smoothing:
            if weight is None:
                summed = shifted.sum(axis=1) - num_classes * log_total            # Σ_c logp[i, c]
            else:
                summed = xp.einsum("nc...,c->n...", shifted, weight) - weight.sum() * log_total
            loss -= (label_smoothing / num_classes) * kept * summed
        count = a.sum()
        self.settings = (reduction, label_smoothing, logits, count, x.shape)
        self.weight, self.safe_target, self.a, self.kept = weight, safe_target, a, kept
        return _reduce(loss, reduction, count).astype(x.dtype, copy=False)

    def backward(self, gy):
        reduction, eps, logits, count, shape = self.settings
        weight, kept = self.weight, self.kept
        num_classes = shape[1]
        if reduction == "mean" and count == 0:   # every target ignored: a NaN loss, zero gradient (PyTorch)
            return xp.zeros(shape, gy.dtype), None
        g = _upstream(gy, reduction, count, kept.shape)                        # (N, *d)
        on_target = (1.0 - eps) * g * self.a                                   # −dloss/dlogp at t_i
        smooth = (eps / num_classes) * g * kept if eps else None               # −dloss/dlogp per unit w_c
        # Through log_softmax, dloss/dx = dloss/dlogp − softmax · Σ_c dloss/dlogp.
        if logits:
            total = on_target if smooth is None else (
                on_target + smooth * (num_classes if weight is None else weight.sum()))
            gx = self.exp_shifted * (total / self.total)[:, None]
        else:
            gx = xp.zeros(shape, g.dtype)
        if smooth is not None:
            gx -= smooth[:, None] if weight is None else smooth[:, None] * _along_classes(weight, len(shape))
        # Each (i, *d) position has exactly one target class, so a gather-subtract-scatter is exact.
        at_target = xp.take_along_axis(gx, self.safe_target, axis=1) - on_target[:, None]
        xp.put_along_axis(gx, self.safe_target, at_target, axis=1)
        return gx, None


# ----- class-probability targets --------------------------------------------------------------
class ClassProbabilityLoss(Function):
    """−Σ_c w_c·q_c·log p_c per element, q = (1 − ε)·target + ε/C; ``mean`` divides by N·∏d."""

    def forward(self, x, target, weight=None, reduction="mean", label_smoothing=0.0):
        num_classes = x.shape[1]
        logp = _log_softmax(x)
        q = target * (1.0 - label_smoothing) + label_smoothing / num_classes if label_smoothing else target
        class_w = None if weight is None else _along_classes(weight, x.ndim)
        wq = q if class_w is None else q * class_w
        loss = -(logp * wq).sum(axis=1)                                       # (N, *d)
        count = loss.size
        self.logp, self.wq, self.class_w, self.settings = logp, wq, class_w, (reduction, label_smoothing, count)
        return _reduce(loss, reduction, count).astype(x.dtype, copy=False)

    def backward(self, gy):
        reduction, eps, count = self.settings
        logp, wq = self.logp, self.wq
        g = _upstream(gy, reduction, count, logp.shape[:1] + logp.shape[2:])[:, None]   # (N, 1, *d)
        gx = g * (xp.exp(logp) * wq.sum(axis=1, keepdims=True) - wq) if self.needs_input_grad[0] else None
        gt = None
        if self.needs_input_grad[1]:
            gt = -(1.0 - eps) * g * logp
            gt = gt if self.class_w is None else gt * self.class_w
        return gx, gt


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Cross-entropy between logits and class indices or class probabilities, as PyTorch computes it.

    Args:
        input: unnormalised logits; classes along dimension 1 (dimension 0 when unbatched).
        target: class indices (integer dtype, shape of input without the class dim) or class
            probabilities (float dtype, the same shape as input).
        weight: optional per-class rescaling of shape (C,), a constant (no gradient).
        ignore_index: a class-index target value that contributes neither loss nor gradient and
            is left out of the mean's denominator. Probability targets accept only a negative one.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. With class indices, ``mean`` divides by the
            sum of the target weights ``Σ w[t_i]`` over kept elements (their count without weight);
            with probabilities, by ``N·d1·…``.
        label_smoothing: ε in [0, 1]; the target becomes (1 − ε)·target + ε/C (with class indices,
            the ε/C share is weighted by ``weight`` and normalised like the main term).

    Shape:
        input (C,), (N, C) or (N, C, d1, ..., dK); target (), (N,) or (N, d1, ..., dK), or the
        input's shape for probabilities; output a scalar, or the target-index shape with
        ``reduction="none"``.

    Example::

        >>> logits = st.randn(4, 10, requires_grad=True)
        >>> F.cross_entropy(logits, st.tensor([1, 0, 9, 3])).backward()
    """
    op = "cross_entropy"
    input, target = as_tensor(input, op), as_tensor(target, op, "target")
    expect_float(input, op)
    _check_reduction(reduction, op)
    _check_label_smoothing(label_smoothing, op)
    if target.shape == input.shape and input.ndim >= 1:
        if target.dtype.kind != "f":
            raise TypeError(f"{op}: a target of the input's shape {tuple(input.shape)} holds class probabilities "
                            f"and must be floating point, got dtype {target.dtype}")
        if ignore_index >= 0:
            raise ValueError(f"{op}: ignore_index is not supported with class-probability targets, "
                             f"got ignore_index={ignore_index}")
        x, added = _batched(input, op)
        t = target.reshape(x.shape) if added else target
        dtype = xp.promote_types(x.dtype, t.dtype)
        if x.dtype != dtype:
            x = x.to(dtype)
        weight = _class_weight(weight, x.shape[1], op, dtype)
        out = ClassProbabilityLoss.apply(x, t, weight=weight, reduction=reduction, label_smoothing=label_smoothing)
    else:
        x, added = _batched(input, op)
        t = target.reshape(1) if added and target.ndim == 0 else target
        _check_class_target(x, t, ignore_index, op)
        weight = _class_weight(weight, x.shape[1], op, x.dtype)
        out = ClassIndexLoss.apply(x, t.data, weight=weight, ignore_index=ignore_index, reduction=reduction,
                                   label_smoothing=float(label_smoothing), logits=True)
    return out.reshape(()) if added and reduction == "none" else out


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of class indices given log-probabilities (``log_softmax`` output).

    Args:
        input: log-probabilities; classes along dimension 1 (dimension 0 when unbatched).
        target: class indices, integer dtype.
        weight: optional per-class rescaling of shape (C,), a constant (no gradient).
        ignore_index: a target value that contributes nothing and is left out of the mean.
        reduction: ``"none"`` | ``"mean"`` (divides by Σ w[t_i] over kept elements) | ``"sum"``.

    Shape:
        input (C,), (N, C) or (N, C, d1, ..., dK); target (), (N,) or (N, d1, ..., dK); output a
        scalar, or the target's shape with ``reduction="none"``.

    Example::

        >>> logp = F.log_softmax(st.randn(4, 10, requires_grad=True), dim=1)
        >>> F.nll_loss(logp, st.tensor([1, 0, 9, 3])).backward()
    """
    op = "nll_loss"
    input, target = as_tensor(input, op), as_tensor(target, op, "target")
    expect_float(input, op)
    _check_reduction(reduction, op)
    x, added = _batched(input, op)
    t = target.reshape(1) if added and target.ndim == 0 else target
    _check_class_target(x, t, ignore_index, op)
    weight = _class_weight(weight, x.shape[1], op, x.dtype)
    out = ClassIndexLoss.apply(x, t.data, weight=weight, ignore_index=ignore_index, reduction=reduction,
                               label_smoothing=0.0, logits=False)
    return out.reshape(()) if added and reduction == "none" else out


# ----- regression and binary losses -----------------------------------------------------------
class MSELoss(Function):
    """(x − y)² per element, reduced; the gradient 2·(x − y) goes to x and its negative to y."""

    def forward(self, x, y, reduction="mean"):
        self.diff, self.reduction = x - y, reduction
        return _reduce(self.diff * self.diff, reduction, self.diff.size)

    def backward(self, gy):
        g = 2 * _upstream(gy, self.reduction, self.diff.size, self.diff.shape) * self.diff
        return (g if self.needs_input_grad[0] else None), (-g if self.needs_input_grad[1] else None)


def mse_loss(input, target, reduction="mean"):
    """Mean squared error ``(input − target)²``, reduced.

    Unlike PyTorch, which broadcasts mismatched shapes with a warning, the shapes must be equal.

    Args:
        input: predictions, floating point.
        target: values of the same shape; gradients flow to it too when it requires grad.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.

    Shape:
        input and target (*), the same; output a scalar, or (*) with ``reduction="none"``.

    Example::

        >>> F.mse_loss(st.randn(8, 3, requires_grad=True), st.zeros(8, 3)).backward()
    """
    op = "mse_loss"
    input, target = as_tensor(input, op), as_tensor(target, op, "target")
    expect_float(input, op)
    _check_reduction(reduction, op)
    if target.shape != input.shape:
        raise ValueError(f"{op}: target shape {tuple(target.shape)} must equal input shape {tuple(input.shape)} "
                         "(striate does not broadcast losses)")
    if target.dtype.kind == "f":
        dtype = xp.promote_types(input.dtype, target.dtype)  # PyTorch's promotion: float32 with float64 is float64
        input, target = input.to(dtype), target.to(dtype)
    elif target.dtype.kind in "iub":
        target = target.to(input.dtype)
    return MSELoss.apply(input, target, reduction=reduction)


class BinaryCrossEntropyWithLogits(Function):
    """−w·[p·y·log σ(x) + (1 − y)·log σ(−x)], computed as w·[(1 − y)·x + (1 + (p − 1)·y)·softplus(−x)]."""

    def forward(self, x, y, weight=None, pos_weight=None, reduction="mean"):
        e = xp.exp(-xp.abs(x))                          # in (0, 1]: nothing overflows
        softplus_neg = xp.maximum(-x, 0) + xp.log1p(e)  # softplus(−x) = −log σ(x)
        log_weight = None if pos_weight is None else 1 + (pos_weight - 1) * y
        loss = (1 - y) * x + (softplus_neg if log_weight is None else log_weight * softplus_neg)
        if weight is not None:
            loss = loss * weight
        self.x, self.y, self.e, self.softplus_neg = x, y, e, softplus_neg
        self.weight, self.pos_weight, self.log_weight, self.reduction = weight, pos_weight, log_weight, reduction
        return _reduce(loss, reduction, loss.size).astype(x.dtype, copy=False)

    def backward(self, gy):
        x, e = self.x, self.e
        g = _upstream(gy, self.reduction, x.size, x.shape)
        if self.weight is not None:
            g = g * self.weight
        gx = gt = None
        if self.needs_input_grad[0]:
            sigmoid_neg = xp.where(x >= 0, e, 1) / (1 + e)   # σ(−x) without exp of a large number
            lw = 1 if self.log_weight is None else self.log_weight
            gx = g * ((1 - self.y) - lw * sigmoid_neg)
        if self.needs_input_grad[1]:
            gt = -x if self.pos_weight is None else (self.pos_weight - 1) * self.softplus_neg - x
            gt = g * gt
        return gx, gt


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """Binary cross-entropy of ``sigmoid(input)`` against ``target``, computed stably from the logits.

    Args:
        input: logits, floating point.
        target: probabilities in [0, 1] of the same shape (gradients flow to it when it requires grad).
        weight: optional rescaling of each element, broadcast to the input's shape (a constant).
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.
        pos_weight: optional weight of the positive term, broadcast against the input (usually (C,)
            for classes along the last dimension); a constant.

    Shape:
        input and target (*), the same; output a scalar, or (*) with ``reduction="none"``.

    Example::

        >>> F.binary_cross_entropy_with_logits(st.randn(4, 3, requires_grad=True), st.rand(4, 3)).backward()
    """
    op = "binary_cross_entropy_with_logits"
    input, target = as_tensor(input, op), as_tensor(target, op, "target")
    expect_float(input, op)
    expect_float(target, op, "target")
    _check_reduction(reduction, op)
    if target.shape != input.shape:
        raise ValueError(f"{op}: target shape {tuple(target.shape)} must equal input shape {tuple(input.shape)}")
    dtype = xp.promote_types(input.dtype, target.dtype)
    input, target = input.to(dtype), target.to(dtype)
    weight = _constant(weight, op, "weight", dtype)
    pos_weight = _constant(pos_weight, op, "pos_weight", dtype)
    for name, value in (("weight", weight), ("pos_weight", pos_weight)):
        if value is not None and not _broadcasts_to(value.shape, input.shape):
            raise ValueError(f"{op}: {name} of shape {value.shape} does not broadcast to the input's shape "
                             f"{tuple(input.shape)}")
    return BinaryCrossEntropyWithLogits.apply(input, target, weight=weight, pos_weight=pos_weight,
                                              reduction=reduction)


def _broadcasts_to(shape, target_shape):
    try:
        return xp.broadcast_shapes(shape, target_shape) == tuple(target_shape)
    except ValueError:
        return False


__all__ = ["cross_entropy", "nll_loss", "mse_loss", "binary_cross_entropy_with_logits"]
