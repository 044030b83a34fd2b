"""Reverse-mode differentiation: walk the graph from one output back to the leaves."""
from striate._backend import xp


def _topological_order(root):
    """Tensors reachable from ``root`` through recorded Functions, each after all its inputs."""
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
        if tensor._ctx is not None:
            for parent in tensor._ctx.inputs:
                if parent is not None and parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
    return order


def run_backward(root, gradient):
    """Accumulate ``d root / d leaf`` (seeded with ``gradient``) into every leaf's ``.grad``.

    Each Tensor's gradient is complete before its Function's backward runs, because
    Tensors are visited in reverse topological order; a Tensor used twice sums both uses.
    """
    from striate.autograd.tensor import Tensor

    pending = {id(root): gradient}
    for tensor in reversed(_topological_order(root)):
        grad = pending.pop(id(tensor), None)
        if grad is None:
            continue
        fn = tensor._ctx
        if fn is None or tensor._retains_grad:
            if tensor.grad is None:
                tensor.grad = Tensor._from_array(grad)
            else:
                tensor.grad = Tensor._from_array(tensor.grad.data + grad)
        if fn is None:
            continue
        input_grads = fn.backward(grad)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        if len(input_grads) != len(fn.inputs):
            raise RuntimeError(f"{fn.name}.backward returned {len(input_grads)} gradients "
                               f"for {len(fn.inputs)} inputs")
        for parent, g in zip(fn.inputs, input_grads):
            if parent is None or g is None or not parent.requires_grad:
                continue
            if g.shape != parent.shape:
                raise RuntimeError(f"{fn.name}.backward returned a gradient of shape {g.shape} "
                                   f"for an input of shape {parent.shape}")
            if g.dtype != parent.dtype:
                g = g.astype(parent.dtype)
            key = id(parent)
            pending[key] = g if key not in pending else pending[key] + g


__all__ = ["run_backward"]
