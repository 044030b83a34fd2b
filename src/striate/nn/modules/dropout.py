"""``Dropout``: zero random elements while training, and scale the rest to keep the mean."""
from striate.nn import functional as F
from striate.nn.module import Module
from striate.nn.modules._validate import probability


class Dropout(Module):
    """While training, zero each element with probability ``p`` and scale the others by ``1 / (1 − p)``.

    In eval mode (``model.eval()``) it returns its input unchanged. The mask is drawn from
    ``generator`` if given, else from striate's default generator (``st.manual_seed``).

    Args:
        p: probability of zeroing an element. Default 0.5.
        inplace: accepted for PyTorch compatibility; striate always returns a new tensor.
        generator: an optional ``numpy.random.Generator`` this layer draws its masks from
            (keyword only).

    Shape:
        Any; the output has the input's shape.

    Example::

        >>> drop = nn.Dropout(0.2)
        >>> drop(st.ones(4, 5)).shape
        (4, 5)
    """

    def __init__(self, p=0.5, inplace=False, *, generator=None):
        super().__init__()
        self.p = probability(p, "p", "Dropout")
        self.inplace = inplace
        self.generator = generator

    def forward(self, input):
        return F.dropout(input, self.p, self.training, generator=self.generator)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


__all__ = ["Dropout"]
