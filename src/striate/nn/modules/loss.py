"""Loss layers: ``CrossEntropyLoss`` and ``MSELoss`` as Modules over the functional losses."""
from striate.autograd.tensor import Tensor
from striate.nn import functional as F
from striate.nn.module import Module

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction, layer):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{layer}: reduction must be one of {_REDUCTIONS}. Received: reduction={reduction!r}")
    return reduction


class CrossEntropyLoss(Module):
    """Softmax cross-entropy between logits and class indices (or class probabilities).

    Computed stably as ``logsumexp(x) − x[target]`` per sample.

    Args:
        weight: optional per-class rescaling weights ``(C,)``, kept as a buffer.
        ignore_index: samples whose target is this index contribute nothing (and, with
            ``reduction="mean"``, are left out of the average). Default -100.
        reduction: ``"mean"`` (weighted mean over samples), ``"sum"`` or ``"none"``.
        label_smoothing: in [0, 1]; mixes the one-hot target with the uniform distribution.

    Shape:
        Input ``(N, C)`` or ``(N, C, *D)`` logits; target ``(N,)`` / ``(N, *D)`` int64 indices
        in ``[0, C)``, or probabilities of the input's shape. Output a scalar, or ``(N, *D)`` with
        ``reduction="none"``.

    Example::

        >>> loss = nn.CrossEntropyLoss()
        >>> loss(st.randn(3, 5, requires_grad=True), st.tensor([1, 0, 4])).backward()
    """

    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__()
        if weight is not None and not isinstance(weight, Tensor):
            raise TypeError(f"CrossEntropyLoss: weight must be a Tensor or None. "
                            f"Received: {type(weight).__name__}")
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must be in [0, 1]. "
                             f"Received: label_smoothing={label_smoothing}")
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index
        self.reduction = _check_reduction(reduction, "CrossEntropyLoss")
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)

    def extra_repr(self):
        # PyTorch prints nothing here; striate shows only the settings that differ from the defaults.
        settings = []
        if self.ignore_index != -100:
            settings.append(f"ignore_index={self.ignore_index}")
        if self.reduction != "mean":
            settings.append(f"reduction={self.reduction!r}")
        if self.label_smoothing:
            settings.append(f"label_smoothing={self.label_smoothing}")
        return ", ".join(settings)


class MSELoss(Module):
    """Mean squared error ``(input − target)²``, averaged (or summed) over every element.

    Args:
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Shape:
        Input and target of the same shape; output a scalar, or that shape with ``reduction="none"``.

    Example::

        >>> nn.MSELoss()(st.zeros(3), st.ones(3))
        tensor(1.)
    """

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = _check_reduction(reduction, "MSELoss")

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)

    def extra_repr(self):
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


__all__ = ["CrossEntropyLoss", "MSELoss"]
