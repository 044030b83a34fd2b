"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay."""
from striate.optim.optimizer import Optimizer


class SGD(Optimizer):
    """Stochastic gradient descent, with PyTorch's momentum rule.

    For each parameter ``p`` with gradient ``g`` (negated when ``maximize``)::

        g ← g + weight_decay·p
        b ← g                                   on the first step
        b ← momentum·b + (1 − dampening)·g      after it
        g ← g + momentum·b   (nesterov)   or   g ← b
        p ← p − lr·g

    Args:
        params: an iterable of Tensors or of parameter-group dicts.
        lr: learning rate.
        momentum: momentum factor (0 turns momentum off).
        dampening: how much of the new gradient the momentum buffer discounts.
        weight_decay: L2 penalty added to the gradient.
        nesterov: use Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).
        maximize: ascend the objective instead of descending it.

    Example::

        >>> opt = st.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        >>> opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group):
        for key in ("lr", "momentum", "weight_decay"):
            self._check_non_negative(group, key)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"SGD: Nesterov momentum requires momentum > 0 and dampening == 0, "
                             f"got momentum={group['momentum']}, dampening={group['dampening']}")

    def _update(self, param, grad, group):
        lr, momentum, weight_decay = group["lr"], group["momentum"], group["weight_decay"]
        g = -grad if group["maximize"] else grad
        if weight_decay != 0:
            g = g + weight_decay * param.data
        if momentum != 0:
            state = self.state[param]
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.copy()
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * g
            g = g + momentum * buf if group["nesterov"] else buf
        param.data -= lr * g


__all__ = ["SGD"]
