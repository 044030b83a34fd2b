"""Adam and AdamW: adaptive moment estimation, with L2 or decoupled weight decay."""
import numbers

from striate._backend import xp
from striate.optim.optimizer import Optimizer


class Adam(Optimizer):
    """Adam (Kingma & Ba), with PyTorch's bias corrections and optional AMSGrad.

    For each parameter ``p`` with gradient ``g`` (negated when ``maximize``), step ``t``::

        g ← g + weight_decay·p                       (AdamW instead: p ← p·(1 − lr·weight_decay))
        m ← m + (1 − β₁)·(g − m)                     first moment
        v ← β₂·v + (1 − β₂)·g²                       second moment
        v̂ ← max(v̂, v)                                AMSGrad only; v̂ then stands for v below
        p ← p − (lr / (1 − β₁ᵗ))·m / (√v / √(1 − β₂ᵗ) + eps)

    Args:
        params: an iterable of Tensors or of parameter-group dicts.
        lr: learning rate.
        betas: decay rates ``(β₁, β₂)`` of the moment estimates, each in [0, 1).
        eps: added to the denominator for numerical stability.
        weight_decay: L2 penalty added to the gradient (decoupled in ``AdamW``).
        amsgrad: normalise by the running maximum of ``v`` (Reddi et al.).
        maximize: ascend the objective instead of descending it.

    Example::

        >>> opt = st.optim.Adam(model.parameters(), lr=1e-3)
        >>> opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()
    """

    decoupled_weight_decay = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 maximize=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group):
        for key in ("lr", "eps", "weight_decay"):
            self._check_non_negative(group, key)
        betas = group["betas"]
        if (not isinstance(betas, (tuple, list)) or len(betas) != 2
                or not all(isinstance(b, numbers.Real) and not isinstance(b, bool) for b in betas)):
            raise TypeError(f"{self._name}: betas must be a pair of numbers (beta1, beta2), got {betas!r}")
        for index, beta in enumerate(betas):
            if not 0 <= beta < 1:
                raise ValueError(f"{self._name}: betas[{index}] must be in [0, 1), got {beta}")
        group["betas"] = tuple(betas)

    def _update(self, param, grad, group):
        lr, (beta1, beta2), weight_decay = group["lr"], group["betas"], group["weight_decay"]
        g = -grad if group["maximize"] else grad
        state = self.state[param]
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(param.data)
            state["exp_avg_sq"] = xp.zeros_like(param.data)
        state["step"] += 1
        step = state["step"]
        if weight_decay != 0:
            if self.decoupled_weight_decay:
                param.data *= 1 - lr * weight_decay
            else:
                g = g + weight_decay * param.data

        # The operations and their order follow PyTorch's single-tensor Adam, so float32
        # results round the same way: lerp for m, addcmul for v, addcdiv for p.
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg += (1 - beta1) * (g - exp_avg)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * g * g
        if group["amsgrad"]:
            second_moment = state.get("max_exp_avg_sq")
            if second_moment is None:
                second_moment = state["max_exp_avg_sq"] = xp.zeros_like(param.data)
            xp.maximum(second_moment, exp_avg_sq, out=second_moment)
        else:
            second_moment = exp_avg_sq
        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        step_size = lr / bias_correction1
        denom = xp.sqrt(second_moment) / bias_correction2 ** 0.5
        denom += group["eps"]
        param.data -= step_size * exp_avg / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): ``p ← p·(1 − lr·weight_decay)``, then Adam.

    Args are those of ``Adam``; ``weight_decay`` defaults to 1e-2.

    Example::

        >>> opt = st.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    """

    decoupled_weight_decay = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize)


__all__ = ["Adam", "AdamW"]
