"""Whether operations record a graph for backward (PyTorch's grad mode), per thread."""
import contextlib
import threading

_state = threading.local()


def is_grad_enabled():
    """True when operations on tensors that require grad are recorded for backward."""
    return getattr(_state, "enabled", True)


def _set_enabled(mode):
    _state.enabled = mode


class _GradMode(contextlib.ContextDecorator):
    """Context manager and decorator that sets grad mode and restores the previous one on exit."""

    def __init__(self, mode):
        self.mode = bool(mode)
        self._previous = []  # a stack, so the same object can be entered again while active

    def __enter__(self):
        self._previous.append(is_grad_enabled())
        _set_enabled(self.mode)
        return self

    def __exit__(self, *exc):
        _set_enabled(self._previous.pop())
        return False

    def _recreate_cm(self):
        # Each call of a decorated function gets its own context, so recursion and
        # threads never share the saved previous mode.
        return _GradMode(self.mode)


class no_grad(_GradMode):
    """Run without recording a graph: for evaluation, and for updating parameters in place.

    Works as a context manager and as a decorator (with or without parentheses); results
    computed inside do not require grad.

    Example::

        with st.no_grad():
            logits = model(images)
    """

    def __new__(cls, func=None):
        if func is not None:  # used as ``@st.no_grad`` without parentheses
            return cls()(func)
        return super().__new__(cls)

    def __init__(self, func=None):
        super().__init__(False)


class enable_grad(_GradMode):
    """Record a graph again inside a ``no_grad`` block (context manager or decorator)."""

    def __new__(cls, func=None):
        if func is not None:
            return cls()(func)
        return super().__new__(cls)

    def __init__(self, func=None):
        super().__init__(True)


class set_grad_enabled(_GradMode):
    """Turn graph recording on or off.

    As in PyTorch, calling it as a plain function switches the mode at once
    (``st.set_grad_enabled(False)``); used with ``with`` or as a decorator, the previous
    mode comes back on exit.
    """

    def __init__(self, mode):
        super().__init__(mode)
        self._initial = is_grad_enabled()
        _set_enabled(self.mode)

    def __enter__(self):
        # The mode was already switched by __init__; exit must restore the mode from before it.
        self._previous.append(self._initial)
        _set_enabled(self.mode)
        return self

    def __call__(self, func):
        _set_enabled(self._initial)  # as a decorator, the switch applies only inside calls
        return super().__call__(func)


__all__ = ["is_grad_enabled", "set_grad_enabled", "no_grad", "enable_grad"]
