"""The base of every differentiable operation: ``forward`` on arrays, ``backward`` beside it."""
from striate.autograd.grad_mode import is_grad_enabled

# Callables ``tracer(fn, inputs, params, result)`` that ``Function.apply`` calls after every op
# (``striate.tools.summary`` adds one while it runs a model, to see the functional calls made
# inside ``forward``). Empty, as it almost always is, it costs ``apply`` one truth test.
_tracers = []


class Function:
    """One node of the graph.

    A subclass writes ``forward(self, *arrays, **params)`` returning an array, and
    ``backward(self, gy)`` returning one gradient array (or ``None``) per positional input.
    State that backward needs is saved on ``self`` under a name. ``self.needs_input_grad``
    tells forward which inputs want gradients, so it can skip saving what will not be used.
    ``backward`` must not write into ``gy``: the same array may be another input's gradient
    (``Add`` passes it to both) or a read-only broadcast view.

    ``apply`` takes Tensors (or arrays) positionally and non-differentiable settings as
    keywords, runs forward, and links the result into the graph when any input requires grad.
    After a backward pass through it, ``inputs`` is ``None`` (the graph is released, as in
    PyTorch) unless ``backward(retain_graph=True)`` was asked for.
    """

    inputs = ()
    needs_input_grad = ()

    @classmethod
    def apply(cls, *inputs, **params):
        fn = cls()
        arrays = [t.data if isinstance(t, Tensor) else t for t in inputs]
        if is_grad_enabled():
            fn.needs_input_grad = tuple(isinstance(t, Tensor) and t._requires_grad for t in inputs)
        else:
            fn.needs_input_grad = (False,) * len(inputs)
        out = fn.forward(*arrays, **params)
        requires_grad = any(fn.needs_input_grad)
        result = Tensor._from_array(out, requires_grad=requires_grad)
        if requires_grad:
            fn.inputs = tuple(t if isinstance(t, Tensor) else None for t in inputs)
            result._ctx = fn
        if _tracers:
            for tracer in tuple(_tracers):
                tracer(fn, inputs, params, result)
        return result

    def forward(self, *arrays, **params):
        raise NotImplementedError

    def backward(self, gy):
        raise NotImplementedError

    @property
    def name(self):
        return type(self).__name__


# Imported last: tensor.py imports this module for its ops, and needs Function defined first.
from striate.autograd.tensor import Tensor  # noqa: E402

__all__ = ["Function"]
