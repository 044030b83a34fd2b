"""Learning-rate schedules: set each parameter group's ``lr`` from the number of steps taken.

Each schedule is a closed form in the step count ``last_epoch``, so a schedule resumed
from its ``state_dict`` continues exactly; the values equal PyTorch's (whose StepLR and
CosineAnnealingLR update the previous lr recursively) up to rounding.
"""
import copy
import math
import numbers

from striate.optim.optimizer import Optimizer


class LRScheduler:
    """Base class of the schedules: ``step()`` advances ``last_epoch`` and sets every group's ``lr``.

    A subclass writes ``get_lr()``: the learning rates at ``self.last_epoch``, one per group.
    Constructing a schedule takes its first step, to ``last_epoch = 0``.

    Args:
        optimizer: the optimizer whose ``param_groups[i]["lr"]`` the schedule sets.
        last_epoch: index of the last step taken, to resume a schedule (-1 starts it);
            resuming needs ``"initial_lr"`` in every group, as a loaded optimizer state has.
    """

    def __init__(self, optimizer, last_epoch=-1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            missing = [i for i, group in enumerate(optimizer.param_groups) if "initial_lr" not in group]
            if missing:
                raise ValueError(f"{type(self).__name__}: resuming at last_epoch={last_epoch} needs 'initial_lr' in "
                                 f"every parameter group, missing in groups {missing}; load the optimizer's "
                                 "state dict first, or start with last_epoch=-1")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def get_lr(self):
        """The learning rate of each parameter group at step ``last_epoch``."""
        raise NotImplementedError

    def step(self):
        """Advance one step and set every parameter group's ``lr``. Call it after ``optimizer.step()``."""
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self):
        """The learning rates the last ``step`` set, one per parameter group."""
        return list(self._last_lr)

    def state_dict(self):
        """Everything but the optimizer: step count, base rates and settings."""
        return {key: copy.deepcopy(value) for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict):
        """Restore a state saved by ``state_dict`` (the optimizer's lrs come from its own state dict)."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or "last_epoch" not in state_dict or "base_lrs" not in state_dict:
            got = sorted(map(str, state_dict)) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError(f"{name}.load_state_dict: expected a dict with 'last_epoch' and 'base_lrs', got {got}")
        if len(state_dict["base_lrs"]) != len(self.optimizer.param_groups):
            raise ValueError(f"{name}.load_state_dict: the state dict has {len(state_dict['base_lrs'])} base lrs, "
                             f"the optimizer has {len(self.optimizer.param_groups)} parameter groups")
        self.__dict__.update(copy.deepcopy(state_dict))


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` steps: ``lr = base_lr·gamma^⌊t / step_size⌋``.

    Args:
        optimizer: the optimizer to schedule.
        step_size: steps between decays (a positive int).
        gamma: the decay factor.
        last_epoch: index of the last step taken (-1 starts the schedule).

    Example::

        >>> sched = st.optim.lr_scheduler.StepLR(opt, step_size=30, gamma=0.1)
        >>> for epoch in range(90):
        ...     train_one_epoch(); sched.step()
    """

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        _check_positive_int(step_size, "step_size", "StepLR")
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size) for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Anneal the learning rate along a cosine from its initial value to ``eta_min`` over ``T_max`` steps.

    ``lr = eta_min + (base_lr − eta_min)·(1 + cos(π·t / T_max)) / 2``; past ``T_max`` it
    rises again along the same cosine, as PyTorch's does.

    Args:
        optimizer: the optimizer to schedule.
        T_max: steps in a half period (a positive int).
        eta_min: the smallest learning rate.
        last_epoch: index of the last step taken (-1 starts the schedule).

    Example::

        >>> sched = st.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100, eta_min=1e-5)
    """

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        _check_positive_int(T_max, "T_max", "CosineAnnealingLR")
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        cosine = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        return [self.eta_min + (base_lr - self.eta_min) * cosine for base_lr in self.base_lrs]


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith): warm the learning rate up to ``max_lr``, then anneal it far below its start.

    Over ``total_steps`` steps the lr goes from ``max_lr / div_factor`` up to ``max_lr``
    during the first ``pct_start`` of the cycle, then down to
    ``max_lr / (div_factor·final_div_factor)``; with ``three_phase`` it comes back down
    to the initial lr symmetrically and then anneals to the minimum. When
    ``cycle_momentum``, momentum (SGD's ``momentum``, Adam's ``betas[0]``) moves the
    opposite way between ``max_momentum`` and ``base_momentum``. Phases are interpolated
    along a cosine or linearly, exactly as PyTorch's ``OneCycleLR``.

    Args:
        optimizer: the optimizer to schedule.
        max_lr: the peak learning rate, or one per parameter group.
        total_steps: steps in the cycle; or give ``epochs`` and ``steps_per_epoch``.
        epochs, steps_per_epoch: ``total_steps = epochs·steps_per_epoch`` when
            ``total_steps`` is not given.
        pct_start: fraction of the cycle spent raising the lr.
        anneal_strategy: ``"cos"`` or ``"linear"``.
        cycle_momentum: also cycle the momentum.
        base_momentum, max_momentum: momentum at the lr's peak and at its ends (or one per group).
        div_factor: ``initial_lr = max_lr / div_factor``.
        final_div_factor: ``min_lr = initial_lr / final_div_factor``.
        three_phase: use the original paper's three phases instead of fastai's two.
        last_epoch: index of the last step taken (-1 starts the schedule).

    Stepping more than ``total_steps`` times raises ``ValueError``.

    Example::

        >>> sched = st.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, epochs=10, steps_per_epoch=len(loader))
        >>> for epoch in range(10):
        ...     for x, y in loader:
        ...         train_batch(x, y); opt.step(); sched.step()
    """

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None, pct_start=0.3,
                 anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85, max_momentum=0.95,
                 div_factor=25.0, final_div_factor=1e4, three_phase=False, last_epoch=-1):
        name = "OneCycleLR"
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{name}: expected an Optimizer, got {type(optimizer).__name__}")
        if total_steps is not None:
            _check_positive_int(total_steps, "total_steps", name)
        elif epochs is not None and steps_per_epoch is not None:
            _check_positive_int(epochs, "epochs", name)
            _check_positive_int(steps_per_epoch, "steps_per_epoch", name)
            total_steps = epochs * steps_per_epoch
        else:
            raise ValueError(f"{name}: give either total_steps, or both epochs and steps_per_epoch; "
                             f"got total_steps=None, epochs={epochs}, steps_per_epoch={steps_per_epoch}")
        if not isinstance(pct_start, numbers.Real) or not 0 <= pct_start <= 1:
            raise ValueError(f"{name}: pct_start must be a number in [0, 1], got {pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"{name}: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        for key, value in (("div_factor", div_factor), ("final_div_factor", final_div_factor)):
            if not isinstance(value, numbers.Real) or not value > 0:
                raise ValueError(f"{name}: {key} must be a positive number, got {value!r}")
        self.total_steps = total_steps
        self.anneal_strategy = anneal_strategy
        self.cycle_momentum = cycle_momentum
        self._phases = self._make_phases(total_steps, pct_start, three_phase)

        max_lrs = _per_group(max_lr, "max_lr", optimizer)
        if last_epoch == -1:
            for group, peak in zip(optimizer.param_groups, max_lrs):
                group["initial_lr"] = peak / div_factor
                group["max_lr"] = peak
                group["min_lr"] = group["initial_lr"] / final_div_factor
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(f"{name}: cycle_momentum needs an optimizer with 'momentum' or 'betas', "
                                 f"got {type(optimizer).__name__}; pass cycle_momentum=False")
            self.use_beta1 = "betas" in optimizer.defaults
            highs = _per_group(max_momentum, "max_momentum", optimizer)
            lows = _per_group(base_momentum, "base_momentum", optimizer)
            if last_epoch == -1:
                for group, high, low in zip(optimizer.param_groups, highs, lows):
                    group["max_momentum"] = high
                    group["base_momentum"] = low
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _make_phases(total_steps, pct_start, three_phase):
        """Each phase as (last step, start lr key, end lr key, start momentum key, end momentum key)."""
        warmup_end = float(pct_start * total_steps) - 1
        if three_phase:
            phases = [(warmup_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                      (float(2 * pct_start * total_steps) - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                      (total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
        else:
            phases = [(warmup_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                      (total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]
        start = 0.0
        for number, phase in enumerate(phases):
            # A phase of length zero would divide by zero when a step lands in it (PyTorch
            # raises ZeroDivisionError there); refuse the settings up front instead.
            if phase[0] == start:
                raise ValueError(f"OneCycleLR: phase {number + 1} of the cycle would last zero steps with "
                                 f"pct_start={pct_start}, total_steps={total_steps}, three_phase={three_phase}; "
                                 "change pct_start or total_steps")
            start = phase[0]
        return phases

    def _position(self):
        """The phase holding step ``last_epoch``, and how far through it (0 at its start, 1 at its end)."""
        start = 0.0
        for number, phase in enumerate(self._phases):
            end = phase[0]
            if self.last_epoch <= end or number == len(self._phases) - 1:
                return phase, (self.last_epoch - start) / (end - start)
            start = end

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self):
        (_, lr_from, lr_to, _, _), pct = self._position()
        return [self._anneal(group[lr_from], group[lr_to], pct) for group in self.optimizer.param_groups]

    def step(self):
        """Advance one step: set every group's lr (and momentum when cycling it)."""
        if self.last_epoch + 1 > self.total_steps:
            raise ValueError(f"OneCycleLR: tried to step {self.last_epoch + 1} times, but total_steps is "
                             f"{self.total_steps}")
        super().step()
        if self.cycle_momentum:
            (_, _, _, momentum_from, momentum_to), pct = self._position()
            for group in self.optimizer.param_groups:
                momentum = self._anneal(group[momentum_from], group[momentum_to], pct)
                if self.use_beta1:
                    group["betas"] = (momentum, *group["betas"][1:])
                else:
                    group["momentum"] = momentum


def _check_positive_int(value, key, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name}: {key} must be a positive integer, got {value!r}")


def _per_group(value, key, optimizer):
    """``value`` repeated for every parameter group, or checked to have one entry per group."""
    groups = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != groups:
            raise ValueError(f"OneCycleLR: {key} must have one value per parameter group ({groups}), "
                             f"got {len(value)} values")
        return list(value)
    return [value] * groups


__all__ = ["LRScheduler", "StepLR", "CosineAnnealingLR", "OneCycleLR"]
