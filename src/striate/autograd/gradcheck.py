"""Finite-difference check of a Function's backward against its forward."""
import numpy

from striate.autograd.tensor import Tensor


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Compare analytic gradients of ``fn`` with central differences, in float64.

    ``fn`` takes Tensors and returns one Tensor. The output is projected on a fixed random
    direction ``v`` so one backward pass checks the whole Jacobian-vector product
    ``vᵀJ`` against ``(f(x + eps·e_i) − f(x − eps·e_i))·v / (2·eps)`` for every input element.

    Args:
        inputs: float64 arrays, one per argument of ``fn``; all are differentiated.

    Raises:
        AssertionError naming the input and the worst element when they disagree.
    Returns:
        True when every gradient agrees.
    """
    arrays = [numpy.array(a, dtype=numpy.float64) for a in inputs]
    rng = numpy.random.default_rng(seed)
    leaves = [Tensor(a, requires_grad=True) for a in arrays]
    out = fn(*leaves)
    direction = rng.standard_normal(out.shape)
    (out * Tensor(direction)).sum().backward()

    def projected(values):
        return float(numpy.sum(numpy.asarray(fn(*[Tensor(v) for v in values]).data) * direction))

    for index, (leaf, array) in enumerate(zip(leaves, arrays)):
        analytic = numpy.zeros_like(array) if leaf.grad is None else leaf.grad.data
        numeric = numpy.zeros_like(array)
        flat = array.reshape(-1)
        for i in range(flat.size):
            original = flat[i]
            flat[i] = original + eps
            plus = projected(arrays)
            flat[i] = original - eps
            minus = projected(arrays)
            flat[i] = original
            numeric.reshape(-1)[i] = (plus - minus) / (2 * eps)
        error = numpy.abs(analytic - numeric) - (atol + rtol * numpy.abs(numeric))
        error = numpy.where(numpy.isnan(error), numpy.inf, error)  # a NaN gradient is a failure, not a pass
        if error.size and error.max() > 0:
            worst = numpy.unravel_index(int(numpy.argmax(error)), error.shape)
            raise AssertionError(f"gradcheck: input {index} disagrees at {worst}: "
                                 f"analytic {analytic[worst]!r}, numeric {numeric[worst]!r}")
    return True


__all__ = ["gradcheck"]
