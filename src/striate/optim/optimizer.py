"""``Optimizer``: parameter groups, per-parameter state, and checkpoints in PyTorch's layout."""
import collections
import copy
import numbers

from striate._backend import xp
from striate.autograd.grad_mode import enable_grad, no_grad
from striate.autograd.tensor import Tensor


class Optimizer:
    """Base class of the optimizers: parameter groups, per-parameter state, ``step`` and checkpoints.

    A subclass passes its hyperparameter defaults to ``__init__``, checks a group's values
    in ``_check_group`` and updates one parameter in ``_update``.

    Args:
        params: an iterable of Tensors, or of dicts (parameter groups) each holding
            ``"params"`` and any hyperparameters that differ from the defaults.
        defaults: the hyperparameters a group gets when it does not set them.

    Attributes:
        param_groups: list of dicts, each with ``"params"`` (a list of Tensors) and every
            hyperparameter filled in; a scheduler changes ``group["lr"]`` here.
        state: per-parameter state (momentum buffers, moment estimates, step counts),
            keyed by the parameter Tensor.
    """

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self._check_group(self.defaults)
        self.state = collections.defaultdict(dict)
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError(f"{self._name}: params must be an iterable of Tensors or of dicts, "
                            f"got a single Tensor of shape {params.shape}; wrap it in a list")
        if isinstance(params, (set, frozenset, dict)):
            raise TypeError(f"{self._name}: params must be an ordered iterable (a list) of Tensors or of dicts, "
                            f"got a {type(params).__name__}, whose order is not the parameters' order")
        try:
            groups = list(params)
        except TypeError:
            raise TypeError(f"{self._name}: params must be an iterable of Tensors or of dicts, "
                            f"got {type(params).__name__}") from None
        if not groups:
            raise ValueError(f"{self._name}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    @property
    def _name(self):
        return type(self).__name__

    def _check_group(self, group):
        """Raise if a group's hyperparameters are invalid; subclasses add their rules."""

    def _check_non_negative(self, group, key):
        value = group[key]
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise TypeError(f"{self._name}: {key} must be a real number, got {value!r}")
        if not value >= 0:
            raise ValueError(f"{self._name}: {key} must be >= 0, got {value}")

    def add_param_group(self, param_group):
        """Add a group of parameters with its own hyperparameters (missing ones take the defaults).

        Args:
            param_group: dict with ``"params"`` (a Tensor or an iterable of Tensors) and
                optional hyperparameters, e.g. ``{"params": head, "lr": 1e-2}``.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"{self._name}: a parameter group must be a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"{self._name}: a parameter group must have a 'params' entry, "
                             f"got keys {sorted(param_group)}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(f"{self._name}: a group's params must be an ordered collection (a list), got a set")
        else:
            params = list(params)
        for position, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{self._name}: can only optimize Tensors, got {type(p).__name__} "
                                f"at position {position} of parameter group {len(self.param_groups)}")
            if not p.is_leaf:
                raise ValueError(f"{self._name}: can't optimize a non-leaf Tensor (position {position} of "
                                 f"parameter group {len(self.param_groups)}, made by {p.grad_fn.name}); "
                                 "optimize the leaf it was computed from, or detach() it")
        group = {key: value for key, value in param_group.items() if key != "params"}
        for key, default in self.defaults.items():
            group.setdefault(key, default)
        self._check_group(group)

        seen = set()
        for position, p in enumerate(params):
            if id(p) in seen:
                raise ValueError(f"{self._name}: parameter at position {position} appears twice in its group "
                                 f"(shape {p.shape}); each parameter must be listed once")
            seen.add(id(p))
        for index, other in enumerate(self.param_groups):
            if any(id(p) in seen for p in other["params"]):
                raise ValueError(f"{self._name}: some parameters appear in more than one parameter group "
                                 f"(groups {index} and {len(self.param_groups)})")
        group["params"] = params
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        """Clear the gradients of every parameter.

        Args:
            set_to_none: set ``.grad`` to None (the default, as in PyTorch) instead of
                filling it with zeros.
        """
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.zero_()

    def step(self, closure=None):
        """Update every parameter that has a gradient, in place on its ``.data``.

        Args:
            closure: optional callable that re-evaluates the loss (zeroing the gradients and
                calling ``backward`` itself); it runs with gradients enabled before the update.

        Returns:
            The closure's loss, or None.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        self._update(p, p.grad.data, group)
        return loss

    def _update(self, param, grad, group):
        """Update ``param.data`` in place from the gradient array ``grad``."""
        raise NotImplementedError

    # ----- checkpoints ----------------------------------------------------------------------
    def state_dict(self):
        """The optimizer's state in PyTorch's structure, with arrays copied.

        ``{"state": {index: {name: array or number}}, "param_groups": [{hyperparameters...,
        "params": [index, ...]}]}``, where parameters are numbered in group order.
        """
        index = {}
        groups = []
        for group in self.param_groups:
            packed = {key: copy.deepcopy(value) for key, value in group.items() if key != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        state = {index[id(p)]: {key: _copy_value(value) for key, value in entry.items()}
                 for p, entry in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore hyperparameters and state saved by ``state_dict`` (or PyTorch's, converted to NumPy).

        The saved groups must match this optimizer's in number and size; parameters are
        matched by position. Arrays are copied and cast to their parameter's dtype.
        """
        where = f"{self._name}.load_state_dict"
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= set(state_dict):
            got = sorted(map(str, state_dict)) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError(f"{where}: expected a dict with 'state' and 'param_groups', got {got}")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{where}: the state dict has {len(saved_groups)} parameter groups, "
                             f"this optimizer has {len(self.param_groups)}")
        by_index = {}
        new_groups = []
        for number, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            saved_params = saved.get("params") if isinstance(saved, dict) else None
            if saved_params is None:
                raise ValueError(f"{where}: parameter group {number} of the state dict has no 'params' list")
            if len(saved_params) != len(group["params"]):
                raise ValueError(f"{where}: parameter group {number} has {len(saved_params)} parameters in the "
                                 f"state dict but {len(group['params'])} in this optimizer")
            by_index.update(zip((_as_index(i) for i in saved_params), group["params"]))
            new_group = dict(self.defaults)
            new_group.update({key: copy.deepcopy(value) for key, value in saved.items() if key != "params"})
            self._check_group(new_group)
            new_group["params"] = group["params"]
            new_groups.append(new_group)

        new_state = collections.defaultdict(dict)
        for key, entry in state_dict["state"].items():
            param = by_index.get(_as_index(key))
            if param is None:
                raise ValueError(f"{where}: the state dict has state for parameter {key!r}, "
                                 f"which no parameter group lists (groups list {sorted(by_index)})")
            new_state[param] = {name: _load_value(name, value, param, f"{where}: state {name!r} of parameter {key!r}")
                                for name, value in entry.items()}
        self.param_groups = new_groups
        self.state = new_state

    def __repr__(self):
        lines = [f"{self._name} ("]
        for number, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {number}")
            lines += [f"    {key}: {group[key]}" for key in sorted(group) if key != "params"]
        return "\n".join(lines + [")"])


def _copy_value(value):
    return value.copy() if isinstance(value, xp.ndarray) else copy.deepcopy(value)


def _as_index(key):
    """A saved parameter index as an int (keys read back from text formats may be strings)."""
    return int(key) if isinstance(key, str) and key.isdigit() else key


def _load_value(name, value, param, what):
    """A saved state value ready to use for ``param``: arrays copied in its dtype, counts as numbers."""
    if isinstance(value, Tensor):
        value = value.data
    if not isinstance(value, (xp.ndarray, xp.generic)):
        return copy.deepcopy(value)
    if name == "step" or (value.ndim == 0 and param.ndim != 0):
        # PyTorch keeps the step count as a 0-d float32 tensor; here it is a Python number,
        # so bias corrections are computed in double precision as PyTorch does.
        number = value.item()
        return int(number) if isinstance(number, float) and number.is_integer() else number
    if value.shape != param.shape:
        raise ValueError(f"{what} has shape {value.shape}, but the parameter has shape {param.shape}")
    return xp.array(value, dtype=param.dtype)


__all__ = ["Optimizer"]
