"""``Module``: the base of every layer — it registers parameters, buffers and submodules by assignment."""
import collections
import collections.abc
import itertools

from striate._backend import xp
from striate.autograd.tensor import Tensor
from striate.nn.parameter import Parameter

_IncompatibleKeys = collections.namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class RemovableHandle:
    """Returned by ``register_forward_hook``: call ``remove()`` to unregister the hook."""

    _ids = itertools.count()

    def __init__(self, hooks):
        self.hooks = hooks
        self.id = next(RemovableHandle._ids)

    def remove(self):
        self.hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _addindent(text, spaces):
    """Indent every line but the first (for nesting a child's repr inside its parent's)."""
    first, *rest = text.split("\n")
    if not rest:
        return text
    return "\n".join([first] + [" " * spaces + line if line.strip() else "" for line in rest])


def _check_name(module, name, kind):
    if not isinstance(name, str):
        raise TypeError(f"{type(module).__name__}: {kind} name must be a string, got {type(name).__name__}")
    if not name or "." in name:
        raise KeyError(f"{type(module).__name__}: {kind} name must be non-empty and contain no '.', got {name!r}")


class Module:
    """Base class of every layer and model.

    Assigning a ``Parameter``, a ``Module`` or (through ``register_buffer``) a state Tensor
    as an attribute registers it, in order, so ``parameters()``, ``state_dict()``,
    ``train()``/``eval()`` and ``zero_grad()`` reach everything inside. Subclasses call
    ``super().__init__()`` first and write ``forward``.

    Example::

        >>> class Net(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.conv = nn.Conv2d(1, 8, 3)
        ...         self.fc = nn.Linear(8, 10)
        ...     def forward(self, x):
        ...         return self.fc(self.conv(x).mean(dim=(2, 3)))
        >>> [name for name, _ in Net().named_parameters()]
        ['conv.weight', 'conv.bias', 'fc.weight', 'fc.bias']
    """

    def __init__(self):
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_forward_pre_hooks", {})
        object.__setattr__(self, "_forward_hooks", {})

    # ----- calling --------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')

    def __call__(self, *args, **kwargs):
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        output = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, output)
            if result is not None:
                output = result
        return output

    def register_forward_pre_hook(self, hook):
        """Call ``hook(module, args)`` before each forward; a non-None result replaces ``args``."""
        handle = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        return handle

    def register_forward_hook(self, hook):
        """Call ``hook(module, args, output)`` after each forward; a non-None result replaces ``output``."""
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    # ----- registration ---------------------------------------------------------------------------
    def _require_init(self, what):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: cannot assign {what} before Module.__init__() "
                                 "is called (call super().__init__() first in your __init__)")

    def register_parameter(self, name, param):
        """Register ``param`` (a ``Parameter`` or ``None``) under ``name``."""
        self._require_init("parameters")
        _check_name(self, name, "parameter")
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"{type(self).__name__}: attribute {name!r} already exists")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"{type(self).__name__}: cannot assign {type(param).__name__} object as parameter "
                            f"{name!r} (nn.Parameter or None expected)")
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """Register ``tensor`` (state that is not trained, e.g. BatchNorm's running mean) under ``name``.

        A persistent buffer is part of ``state_dict()``; a non-persistent one is not.
        """
        self._require_init("buffers")
        _check_name(self, name, "buffer")
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"{type(self).__name__}: attribute {name!r} already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"{type(self).__name__}: cannot assign {type(tensor).__name__} object as buffer "
                            f"{name!r} (Tensor or None expected)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name, module):
        """Register ``module`` (or ``None``) as a child under ``name``."""
        self._require_init("submodules")
        _check_name(self, name, "module")
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"{type(self).__name__}: attribute {name!r} already exists")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}: {type(module).__name__} is not a Module subclass")
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name, value):
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            self._require_init("parameters")
            self._forget(name, keep=self._parameters)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"{type(self).__name__}: cannot assign {type(value).__name__} object as parameter "
                                f"{name!r} (nn.Parameter or None expected)")
            params[name] = None
        elif isinstance(value, Module):
            self._require_init("submodules")
            self._forget(name, keep=self._modules)
            self._modules[name] = value
        elif params is not None and name in self._modules:
            if value is not None:
                raise TypeError(f"{type(self).__name__}: cannot assign {type(value).__name__} object as child "
                                f"module {name!r} (nn.Module or None expected)")
            self._modules[name] = None
        elif params is not None and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"{type(self).__name__}: cannot assign {type(value).__name__} object as buffer "
                                f"{name!r} (Tensor or None expected)")
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name, keep):
        """Drop ``name`` from the instance dict and every registry but ``keep`` (where a
        re-assignment keeps its place in the order)."""
        self.__dict__.pop(name, None)
        for registry in (self._parameters, self._buffers, self._modules):
            if registry is not keep:
                registry.pop(name, None)
        self._non_persistent_buffers.discard(name)

    def __getattr__(self, name):
        # Only reached when normal lookup fails: look in the registries.
        for registry in ("_parameters", "_buffers", "_modules"):
            found = self.__dict__.get(registry)
            if found is not None and name in found:
                return found[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))

    # ----- traversal ------------------------------------------------------------------------------
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """``(name, module)`` for this module and every descendant, depth first, parents first."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            yield from module.named_modules(memo, prefix + ("." if prefix else "") + name, remove_duplicate)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        """``(name, module)`` for the direct children (each module once)."""
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def _named_members(self, registry, prefix, recurse, remove_duplicate=True):
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        seen = set()
        for module_prefix, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield module_prefix + ("." if module_prefix else "") + name, value

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """``(dotted name, Parameter)`` pairs in registration order, a shared Parameter once."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def get_submodule(self, target):
        """The descendant named by a dotted path such as ``"features.0"`` (``""`` is this module)."""
        module = self
        for part in target.split(".") if target else []:
            child = module._modules.get(part)
            if child is None:
                raise AttributeError(f"{type(module).__name__} has no submodule {part!r} (looking up {target!r})")
            module = child
        return module

    def apply(self, fn):
        """Call ``fn(module)`` on every child (recursively) and then on this module; returns self."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ----- modes and gradients --------------------------------------------------------------------
    def train(self, mode=True):
        """Set training mode (dropout active, batch norm uses batch statistics) here and below."""
        if not isinstance(mode, bool):
            raise TypeError(f"train: mode must be a bool, got {mode!r}")
        self.training = mode
        for module in self.children():
            module.train(mode)
        return self

    def eval(self):
        """Set evaluation mode here and below (same as ``train(False)``)."""
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Clear every parameter's gradient: drop it (default) or fill it with zeros."""
        for param in self.parameters():
            if param.grad is None:
                continue
            if set_to_none:
                param.grad = None
            else:
                param.grad = Tensor._from_array(xp.zeros_like(param.grad.data))

    # ----- dtype ----------------------------------------------------------------------------------
    def to(self, *args, dtype=None):
        """Convert parameters (and their gradients) and floating-point buffers to ``dtype``, in place.

        The Parameter objects stay the same, so an optimizer built before still holds them.
        Integer buffers (``num_batches_tracked``) keep their dtype. ``to("cpu")`` does nothing.
        """
        for arg in args:
            if isinstance(arg, str) and arg == "cpu":
                continue
            if dtype is not None:
                raise TypeError(f"to: dtype given twice ({dtype!r} and {arg!r})")
            dtype = arg
        if dtype is None:
            return self
        try:
            dtype = xp.dtype(dtype)
        except TypeError:
            raise TypeError(f"to: expected a floating-point dtype or 'cpu', got {dtype!r}") from None
        if dtype.kind != "f":
            raise TypeError(f"to: a Module converts only to floating-point dtypes, got {dtype}")
        for param in self.parameters():
            param.data = param.data.astype(dtype, copy=False)
            if param.grad is not None:
                param.grad = Tensor._from_array(param.grad.data.astype(dtype, copy=False))
        for buffer in self.buffers():
            if buffer.dtype.kind == "f":
                buffer.data = buffer.data.astype(dtype, copy=False)
        return self

    def float(self):
        return self.to(xp.float32)

    def double(self):
        return self.to(xp.float64)

    # ----- state ----------------------------------------------------------------------------------
    def _state_items(self, prefix=""):
        """``(key, Tensor)`` for every parameter and persistent buffer, PyTorch's order, duplicates kept."""
        for name, param in self._parameters.items():
            if param is not None:
                yield prefix + name, param
        for name, buffer in self._buffers.items():
            if buffer is not None and name not in self._non_persistent_buffers:
                yield prefix + name, buffer
        for name, module in self._modules.items():
            if module is not None:
                yield from module._state_items(prefix + name + ".")

    def state_dict(self, prefix="", keep_vars=False):
        """An ordered dict of dotted name → NumPy array (a copy) for every parameter and persistent buffer.

        With ``keep_vars=True`` the values are the Tensors themselves, not copies.
        """
        return collections.OrderedDict(
            (key, value if keep_vars else value.data.copy()) for key, value in self._state_items(prefix))

    def load_state_dict(self, state_dict, strict=True):
        """Copy ``state_dict``'s arrays (NumPy arrays or Tensors) into this module's parameters and buffers.

        Values are cast to each parameter's dtype and copied into the existing arrays, so the
        Parameter objects (and any optimizer holding them) stay the same. A shape mismatch always
        raises; with ``strict=True`` missing or unexpected keys raise too. Nothing is copied
        when anything raises.

        Returns:
            ``(missing_keys, unexpected_keys)``, a named tuple of lists.
        """
        if not isinstance(state_dict, collections.abc.Mapping):
            raise TypeError(f"load_state_dict: expected a mapping of name -> array, got {type(state_dict).__name__}")
        own = dict(self._state_items())
        missing = [key for key in own if key not in state_dict]
        unexpected = [key for key in state_dict if key not in own]
        errors, copies = [], []
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            value = value.data if isinstance(value, Tensor) else xp.asarray(value)
            if value.shape != target.shape:
                errors.append(f"size mismatch for {key}: copying a param with shape {value.shape} from "
                              f"checkpoint, the shape in current model is {target.shape}.")
            else:
                copies.append((target, value))
        if strict:
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ".")
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ".")
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" + "\n\t".join(errors))
        for target, value in copies:
            target.data[...] = value.astype(target.dtype, copy=False)
        return _IncompatibleKeys(missing, unexpected)

    # ----- printing -------------------------------------------------------------------------------
    def extra_repr(self):
        """The settings shown between the parentheses of this module's repr; subclasses override it."""
        return ""

    def _get_name(self):
        return type(self).__name__

    def __repr__(self):
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): " + _addindent(repr(module), 2) for name, module in self._modules.items()]
        lines = extra_lines + child_lines
        text = self._get_name() + "("
        if len(extra_lines) == 1 and not child_lines:
            text += extra_lines[0]
        elif lines:
            text += "\n  " + "\n  ".join(lines) + "\n"
        return text + ")"


__all__ = ["Module"]
