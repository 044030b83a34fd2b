"""Inverted dropout: zero each element with probability p and scale the survivors by 1/(1 − p)."""
import numbers

import numpy

from striate._backend import xp
from striate.autograd.function import Function
from striate.ops._validate import as_tensor, expect_float
from striate.random import default_generator


class Dropout(Function):
    """``x · mask / (1 − p)`` with ``mask`` Bernoulli(1 − p); backward reuses the same scaled mask."""

    def forward(self, x, p, generator):
        if p == 1:
            self.scaled_mask = xp.zeros_like(x)
        else:
            # Uniform draws in float32 halve the random-number cost; keeping u ≥ p then has
            # probability 1 − p to within 2⁻²⁴, far below anything a training run can detect.
            keep = generator.random(x.shape, dtype=numpy.float32) >= p
            self.scaled_mask = keep.astype(x.dtype) * xp.asarray(1 / (1 - p), dtype=x.dtype)
        return x * self.scaled_mask

    def backward(self, gy):
        return gy * self.scaled_mask


def dropout(input, p=0.5, training=True, inplace=False, *, generator=None):
    """Zero elements at random with probability ``p`` during training, scaling the rest by 1/(1 − p).

    Scaling at training time ("inverted" dropout) keeps every element's expectation unchanged,
    so evaluation needs no rescaling: with ``training=False`` the input is returned as it is.

    Args:
        input: a floating-point tensor of any shape.
        p: probability of zeroing an element, in [0, 1]; ``p=1`` gives zeros.
        training: apply dropout only when True. When False, or when ``p=0``, ``input``
            itself is returned.
        inplace: accepted for PyTorch compatibility; only ``False`` is supported.
        generator: a ``numpy.random.Generator`` to draw the mask from; by default the
            generator seeded by ``st.manual_seed``.

    Shape:
        Output has the shape of the input.

    Example::

        >>> st.manual_seed(0)
        >>> y = F.dropout(st.ones(4, 4), p=0.25)   # entries are 0 or 4/3
    """
    if inplace:
        raise ValueError("dropout: inplace=True is not supported (striate ops never modify their input); "
                         "use the returned tensor instead")
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"dropout: p must be a number in [0, 1], got {p!r}")
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: probability p has to be between 0 and 1, got {p}")
    if generator is not None and not isinstance(generator, numpy.random.Generator):
        raise TypeError(f"dropout: generator must be a numpy.random.Generator, got {type(generator).__name__}")
    input = as_tensor(input, "dropout")
    expect_float(input, "dropout")
    if not training or p == 0:
        return input
    return Dropout.apply(input, p=float(p), generator=generator if generator is not None else default_generator())


__all__ = ["dropout"]
