"""Reverse-mode differentiation: walk the graph from one output back to the leaves."""
from striate._backend import xp

_RELEASED = ("backward: trying to backward through the graph a second time: {name} has already been "
             "differentiated and its graph released. Pass retain_graph=True to the first backward "
             "if you need to go through the graph again")


def _topological_order(root):
    """Tensors reachable from ``root`` through recorded Functions, each after all its inputs.

    Iterative (no recursion), so a graph thousands of operations deep is fine.
    """
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        tensor, expanded = stack.pop()
        if expanded:
            order.append(tensor)
            continue
        if id(tensor) in visited:
            continue
        visited.add(id(tensor))
        stack.append((tensor, True))
        fn = tensor._ctx
        if fn is not None and fn.inputs is not None:
            for parent in fn.inputs:
                if parent is not None and parent._requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
    return order


def _accumulate(tensor, grad):
    """Add ``grad`` into ``tensor.grad``, which never shares memory with anything else."""
    from striate.autograd.tensor import Tensor

    if tensor.grad is None:
        # Backward functions may return their upstream gradient itself or a view of it (Add,
        # Reshape), so the same array could reach several leaves: each .grad gets its own copy,
        # so an in-place update of one never changes another.
        tensor.grad = Tensor._from_array(grad.copy())
    else:
        tensor.grad = Tensor._from_array(tensor.grad.data + grad)


def run_backward(root, gradient, retain_graph=False):
    """Accumulate ``d root / d leaf`` (seeded with ``gradient``) into every leaf's ``.grad``.

    Each Tensor's gradient is complete before its Function's backward runs, because
    Tensors are visited in reverse topological order; a Tensor used twice sums both uses.
    Unless ``retain_graph``, every Function that ran drops its ``inputs``, so the tensors
    (and their saved arrays) upstream of it can be freed once nothing else holds them.
    """
    pending = {id(root): gradient}
    for tensor in reversed(_topological_order(root)):
        grad = pending.pop(id(tensor), None)
        if grad is None:
            continue
        fn = tensor._ctx
        if fn is None or tensor._retains_grad:
            _accumulate(tensor, grad)
        if fn is None:
            continue
        inputs = fn.inputs
        if inputs is None:
            raise RuntimeError(_RELEASED.format(name=fn.name))
        input_grads = fn.backward(grad)
        if not retain_graph:
            fn.inputs = None
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        if len(input_grads) != len(inputs):
            raise RuntimeError(f"{fn.name}.backward returned {len(input_grads)} gradients "
                               f"for {len(inputs)} inputs")
        for parent, g in zip(inputs, input_grads):
            if parent is None or g is None or not parent._requires_grad:
                continue
            if not isinstance(g, xp.ndarray):
                g = xp.asarray(g)
            if g.shape != parent.shape:
                raise RuntimeError(f"{fn.name}.backward returned a gradient of shape {g.shape} "
                                   f"for an input of shape {parent.shape}")
            if g.dtype != parent.dtype:
                g = g.astype(parent.dtype)
            key = id(parent)
            pending[key] = g if key not in pending else pending[key] + g


__all__ = ["run_backward"]
