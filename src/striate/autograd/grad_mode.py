"""Whether operations record a graph for backward (PyTorch's grad mode)."""
import contextlib
import functools
import threading

_state = threading.local()


def is_grad_enabled():
    return getattr(_state, "enabled", True)


class set_grad_enabled(contextlib.ContextDecorator):
    """Context manager and decorator that turns graph recording on or off."""

    def __init__(self, mode):
        self.mode = bool(mode)

    def __enter__(self):
        self.previous = is_grad_enabled()
        _state.enabled = self.mode
        return self

    def __exit__(self, *exc):
        _state.enabled = self.previous
        return False


class no_grad(set_grad_enabled):
    """Run without recording a graph: for evaluation, and for updating parameters in place.

    Example::

        with st.no_grad():
            logits = model(images)
    """

    def __init__(self):
        super().__init__(False)


class enable_grad(set_grad_enabled):
    """Record a graph again inside a ``no_grad`` block."""

    def __init__(self):
        super().__init__(True)


__all__ = ["is_grad_enabled", "set_grad_enabled", "no_grad", "enable_grad"]
