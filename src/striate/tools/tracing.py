"""Run a model once while recording every module it enters and every op it applies.

``striate.summary`` (a row per layer and per functional call) and ``striate.tools.export``
(an ONNX node per op) both need one forward pass seen from inside: each module's entry and
exit, and every ``Function`` applied — including functional calls such as ``F.max_pool2d`` in
a ``forward``, which no module hook would see. ``run_traced`` installs a recorder's three
callbacks for that one pass and removes them afterwards, whatever happens.
"""
import numbers

from striate.autograd import function as _function
from striate.autograd.grad_mode import no_grad


def check_input_size(input_size, op):
    """``input_size`` (an int or a sequence of positive ints, without the batch dimension) as a tuple."""
    if isinstance(input_size, numbers.Integral) and not isinstance(input_size, bool):
        input_size = (input_size,)
    try:
        size = tuple(input_size)
    except TypeError:
        size = ()
    if not size or not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) and d > 0 for d in size):
        raise ValueError(f"{op}: input_size must be a tuple of positive ints without the batch dimension, "
                         f"e.g. (1, 28, 28), got {input_size!r}")
    return tuple(int(d) for d in size)


def run_traced(model, x, recorder, op):
    """``model(x)`` under ``no_grad`` with ``recorder`` watching; returns the output.

    Args:
        model: the ``nn.Module`` to run.
        x: its input tensor.
        recorder: an object with ``before(module, inputs)`` and ``after(module, inputs, output)``
            (forward hooks, registered on every module of ``model``) and ``on_function(...)``
            (told of every ``Function`` applied; see ``striate.autograd.function``).
        op: the caller's name, for the error message.

    Raises:
        ValueError / TypeError / IndexError: the model cannot take ``x``; the message names
            ``op``, the model and the input's shape, then the model's own error.
    """
    handles = []
    try:
        for module in model.modules():
            handles.append(module.register_forward_pre_hook(recorder.before))
            handles.append(module.register_forward_hook(recorder.after))
        _function._tracers.append(recorder.on_function)
        with no_grad():
            try:
                return model(x)
            except (ValueError, TypeError, IndexError) as error:
                kind = next(k for k in (ValueError, TypeError, IndexError) if isinstance(error, k))
                raise kind(f"{op}: running {type(model).__name__} on an input of shape {tuple(x.shape)} "
                           f"failed: {error}") from error
    finally:
        if recorder.on_function in _function._tracers:
            _function._tracers.remove(recorder.on_function)
        for handle in handles:
            handle.remove()


__all__ = ["check_input_size", "run_traced"]
