"""Containers: ``Sequential`` chains modules, ``ModuleList`` holds them like a list."""
import operator

from striate.nn.module import Module, _addindent


def _position(container, index):
    """``index`` (negative allowed) as a position in ``container``, or an IndexError."""
    size = len(container)
    index = operator.index(index)
    if not -size <= index < size:
        raise IndexError(f"{type(container).__name__}: index {index} is out of range for {size} modules")
    return index % size


def _renumber(container):
    """Re-key the children 0, 1, 2, ... after a deletion or insertion, keeping their order."""
    modules = list(container._modules.values())
    container._modules.clear()
    container._modules.update((str(i), module) for i, module in enumerate(modules))


class Sequential(Module):
    """Modules applied one after another: ``Sequential(a, b)(x)`` is ``b(a(x))``.

    Args:
        *modules: the modules, named ``"0"``, ``"1"``, ...; or a single (ordered) dict
            ``{name: module}`` to name them.

    Example::

        >>> model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Flatten())
        >>> model[0]
        Conv2d(1, 8, kernel_size=(3, 3), stride=(1, 1))
        >>> len(model)
        3
    """

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], dict):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for index, module in enumerate(args):
                self.add_module(str(index), module)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return type(self)(dict(list(self._modules.items())[index]))
        return list(self._modules.values())[_position(self, index)]

    def __setitem__(self, index, module):
        key = list(self._modules)[_position(self, index)]
        setattr(self, key, module)

    def __delitem__(self, index):
        keys = list(self._modules)
        for key in (keys[index] if isinstance(index, slice) else [keys[_position(self, index)]]):
            delattr(self, key)
        _renumber(self)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        """Add ``module`` at the end; returns self."""
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def insert(self, index, module):
        """Insert ``module`` before position ``index`` (children are renumbered); returns self."""
        if not isinstance(module, Module):
            raise TypeError(f"Sequential.insert: expected a Module, got {type(module).__name__}")
        size = len(self)
        if not -size <= index <= size:
            raise IndexError(f"Sequential.insert: index {index} is out of range for {size} modules")
        modules = list(self._modules.values())
        modules.insert(index, module)
        self._modules.clear()
        for i, child in enumerate(modules):
            self.add_module(str(i), child)
        return self

    def forward(self, input):
        for module in self:
            input = module(input)
        return input


class ModuleList(Module):
    """A list of modules, each registered (so their parameters are found), with no ``forward`` of its own.

    Args:
        modules: an optional iterable of modules.

    Example::

        >>> blocks = nn.ModuleList(nn.Linear(8, 8) for _ in range(3))
        >>> len(list(blocks.parameters()))
        6
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return type(self)(list(self._modules.values())[index])
        return self._modules[str(_position(self, index))]

    def __setitem__(self, index, module):
        setattr(self, str(_position(self, index)), module)

    def __delitem__(self, index):
        keys = list(self._modules)
        for key in (keys[index] if isinstance(index, slice) else [keys[_position(self, index)]]):
            delattr(self, key)
        _renumber(self)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __iadd__(self, modules):
        return self.extend(modules)

    def append(self, module):
        """Add ``module`` at the end; returns self."""
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        """Add each of ``modules`` at the end; returns self."""
        if isinstance(modules, (Module, str)) or not hasattr(modules, "__iter__"):
            raise TypeError(f"ModuleList.extend: expected an iterable of Modules, got {type(modules).__name__}")
        for module in modules:
            self.append(module)
        return self

    def insert(self, index, module):
        """Insert ``module`` before position ``index``."""
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList.insert: expected a Module, got {type(module).__name__}")
        modules = list(self._modules.values())
        modules.insert(index, module)
        self._modules.clear()
        for i, child in enumerate(modules):
            self.add_module(str(i), child)

    def __repr__(self):
        # Runs of identical children print once, as "(0-2): 3 x Linear(...)" (PyTorch's format).
        reprs = [repr(module) for module in self]
        if not reprs:
            return self._get_name() + "()"
        runs = []  # [first index, last index, repr]
        for i, text in enumerate(reprs):
            if runs and runs[-1][2] == text:
                runs[-1][1] = i
            else:
                runs.append([i, i, text])
        lines = [_addindent(f"({a}): {text}" if a == b else f"({a}-{b}): {b - a + 1} x {text}", 2)
                 for a, b, text in runs]
        return self._get_name() + "(\n  " + "\n  ".join(lines) + "\n)"


__all__ = ["Sequential", "ModuleList"]
