"""Anomaly mode: stop at the first operation whose output (or gradient) holds NaN or ±Inf.

Like ``torch.autograd.detect_anomaly``, but it checks forward outputs as well as backward
gradients, and it catches infinities as well as NaN::

    with st.autograd.detect_anomaly():
        loss = model(x).sum()          # raises AnomalyError at the first op that makes NaN/Inf
        loss.backward()                # ... or at the first backward that returns NaN/Inf

It works through ``Function.apply``'s tracer hook, so when it is off it costs nothing. When on,
every op's output is scanned (and every backward's gradients), which is slow: use it to find
where a NaN came from, not for every run.
"""
import contextlib
import os
import sys
import weakref

from striate._backend import xp
from striate.autograd import function as _function
from striate.autograd.tensor import Tensor

__all__ = ["AnomalyError", "detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled"]

_STRIATE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_enabled = False


class AnomalyError(RuntimeError):
    """An operation produced NaN or ±Inf under anomaly mode.

    Attributes:
        op: the public operation that made them (``"log_softmax"``, ``"Tensor.log"``,
            ``"conv_nd"``...), or the Function's name when no public caller was found.
        function: the ``Function`` subclass that ran (``"LogSoftmax"``, ``"Log"``...).
        phase: ``"forward"`` (its output) or ``"backward"`` (a gradient it returned).
        kind: ``"NaN"``, ``"Inf"`` or ``"NaN and Inf"``.
        inputs_finite: whether everything the op received was finite. False means the op only
            passed on non-finite values that came from outside any recorded op (data, a
            parameter, or the upstream gradient for backward).
        location: ``"file:line"`` of the innermost caller outside striate's ops and autograd
            (the model's ``forward`` or the user's code), or None.
        owners: objects whose methods were running when the op was called, innermost first
            (e.g. the ``nn.Module`` instances), so a caller can name the layer.
    """

    def __init__(self, message, *, op, function, phase, kind, inputs_finite, location, owners):
        super().__init__(message)
        self.op, self.function, self.phase, self.kind = op, function, phase, kind
        self.inputs_finite, self.location, self.owners = inputs_finite, location, owners


def is_anomaly_enabled():
    """Whether anomaly mode is on."""
    return _enabled


def set_detect_anomaly(mode, check_nan=True):
    """Turn anomaly mode on or off (for the whole process), as ``torch.autograd.set_detect_anomaly``.

    Args:
        mode: True to check every op's output and every backward's gradients for NaN and ±Inf.
        check_nan: accepted for PyTorch compatibility; checking is what anomaly mode does here,
            so False turns it off.
    """
    global _enabled
    if not isinstance(mode, bool):
        raise TypeError(f"set_detect_anomaly: mode must be True or False, got {mode!r}")
    on = mode and bool(check_nan)
    if on and not _enabled:
        _function._tracers.append(_check_forward)
    elif not on and _enabled:
        _function._tracers.remove(_check_forward)
    _enabled = on


@contextlib.contextmanager
def detect_anomaly(check_nan=True):
    """A context in which anomaly mode is on; the previous mode is restored on exit.

    Example:
        >>> x = st.tensor([1.0, 0.0], requires_grad=True)
        >>> with st.autograd.detect_anomaly():
        ...     (x.log() * 0).sum().backward()      # doctest: +SKIP
        AnomalyError: Tensor.log (Function Log) produced Inf in its forward output, from finite inputs ...
    """
    previous = _enabled
    set_detect_anomaly(True, check_nan)
    try:
        yield
    finally:
        set_detect_anomaly(previous)


def _non_finite(array):
    """``"NaN"``, ``"Inf"``, ``"NaN and Inf"`` or None for an array (only floats can hold them)."""
    if not isinstance(array, (xp.ndarray, xp.generic)) or array.dtype.kind not in "fc":
        return None
    if xp.isfinite(array).all():
        return None
    nan, inf = bool(xp.isnan(array).any()), bool(xp.isinf(array).any())
    return "NaN and Inf" if nan and inf else "NaN" if nan else "Inf"


def _internal(filename):
    """Whether a frame belongs to striate's machinery (autograd, ops, kernels, functional)."""
    if not filename.startswith(_STRIATE_DIR):
        return False
    inner = filename[len(_STRIATE_DIR):]
    return inner.startswith(("autograd", "ops", "kernels", "_backend")) or inner == os.path.join("nn", "functional.py")


def _caller_info():
    """The public op being run, the first frame outside striate's machinery, and the owners on the stack.

    The op is the outermost public function of the run of striate frames that ends in
    ``Function.apply``: what the user (or a Module) called, e.g. ``conv2d`` rather than the
    helpers it goes through.
    """
    frame = sys._getframe(3)  # skip _caller_info, the tracer and Function.apply
    op, location, owners, in_op = None, None, [], True
    while frame is not None:
        code = frame.f_code
        internal = _internal(code.co_filename)
        if in_op and internal:
            name = getattr(code, "co_qualname", code.co_name)  # co_qualname: Python 3.11+
            short = name.rsplit(".", 1)[-1]
            if not short.startswith("_") or (short.startswith("__") and short.endswith("__")):
                op = name
        elif in_op:
            in_op, location = False, f"{code.co_filename}:{frame.f_lineno}"
        if not internal and code.co_argcount and code.co_varnames[0] == "self":
            owner = frame.f_locals.get("self")
            if owner is not None and all(owner is not known for known in owners):
                owners.append(owner)
        frame = frame.f_back
    return op, location, owners


def _describe(op, function):
    return f"{op} (Function {function})" if op and op != function else f"Function {function}"


def _check_forward(fn, inputs, params, result):
    """The tracer: raise at a non-finite output; arm the backward check of ops in the graph."""
    op = location = owners = None
    kind = _non_finite(result.data)
    if kind is not None:
        op, location, owners = _caller_info()
        arrays = [t.data if isinstance(t, Tensor) else t for t in inputs]
        bad = [i for i, a in enumerate(arrays) if _non_finite(a) is not None]
        where = f" at {location}" if location else ""
        if bad:
            origin = (f"but input {bad[0]} already held non-finite values (they came from outside any op "
                      f"recorded under anomaly mode: the data, a parameter, or an op run before it was on)")
        else:
            origin = "from finite inputs"
        raise AnomalyError(f"{_describe(op, fn.name)} produced {kind} in its forward output, {origin}; "
                           f"called{where}", op=op or fn.name, function=fn.name, phase="forward", kind=kind,
                           inputs_finite=not bad, location=location, owners=owners)
    if result._ctx is fn:
        op, location, owners = _caller_info()
        # A weak reference and the unbound method: the wrapper must not keep ``fn`` alive in a cycle.
        fn.backward = _checked_backward(weakref.ref(fn), type(fn).backward, op, location, owners)


def _checked_backward(fn_ref, backward, op, location, owners):
    def run(gy):
        fn = fn_ref()
        grads = backward(fn, gy)
        for index, g in enumerate(grads if isinstance(grads, tuple) else (grads,)):
            kind = _non_finite(g)
            if kind is not None:
                upstream = _non_finite(gy)
                origin = (f"but the gradient flowing into it already held {upstream}" if upstream
                          else "from a finite upstream gradient")
                where = f" (its forward was called at {location})" if location else ""
                raise AnomalyError(f"{_describe(op, fn.name)} returned {kind} in the gradient of input {index} "
                                   f"during backward, {origin}{where}", op=op or fn.name, function=fn.name,
                                   phase="backward", kind=kind, inputs_finite=upstream is None,
                                   location=location, owners=owners)
        return grads
    return run
