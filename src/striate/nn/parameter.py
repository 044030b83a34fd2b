"""``Parameter``: a Tensor that a Module registers as one of its learnable weights."""
from striate._backend import xp
from striate.autograd.tensor import Tensor, float32


class Parameter(Tensor):
    """A Tensor that, assigned as a Module attribute, is registered as a learnable parameter.

    Args:
        data: the initial values; always copied. Python floats become float32, NumPy
            arrays keep their dtype (as ``st.tensor``). ``None`` gives an empty float32 tensor.
        requires_grad: whether the optimizer should train it (default ``True``).

    Example::

        >>> w = nn.Parameter(numpy.zeros((3, 4), dtype="float32"))
        >>> w.requires_grad
        True
    """

    __slots__ = ()

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = xp.empty((0,), dtype=float32)
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


__all__ = ["Parameter"]
