"""The model registry: architectures by name, so the command line and checkpoints can name them.

A checkpoint stores ``(name, kwargs)``; ``get_model(name, **kwargs)`` rebuilds the same
architecture from them.
"""
import dataclasses
import inspect


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """One registered architecture: its name, builder, one-line description and usual input shape.

    ``input_size`` is the shape of one input without the batch dimension as the model is
    usually fed (``(3, 224, 224)`` for the ImageNet models), which ``striate summary`` uses
    when no ``--input`` is given; ``None`` where the builder's own arguments decide it.
    """

    name: str
    builder: object
    description: str
    input_size: tuple = None


_REGISTRY = {}


def register_model(name=None, *, description=None, input_size=None):
    """Decorator that registers a model-building function under ``name`` (default: the function's name).

    Args:
        name: the name the command line and checkpoints use.
        description: one line for ``striate train --help``; defaults to the first line of
            the function's docstring.
        input_size: the usual shape of one input, without the batch dimension.

    Example::

        >>> @register_model(description="a single linear layer")
        ... def linear_probe(num_classes=10, in_features=784):
        ...     return nn.Sequential(nn.Flatten(), nn.Linear(in_features, num_classes))
    """
    def decorate(builder):
        key = name or builder.__name__
        if not isinstance(key, str) or not key:
            raise ValueError(f"register_model: name must be a non-empty string, got {key!r}")
        if key in _REGISTRY and _REGISTRY[key].builder is not builder:
            raise ValueError(f"register_model: a model named {key!r} is already registered "
                             f"(by {_REGISTRY[key].builder.__module__}.{_REGISTRY[key].builder.__qualname__})")
        text = description or (inspect.getdoc(builder) or "").split("\n", 1)[0].strip()
        _REGISTRY[key] = ModelEntry(key, builder, text, None if input_size is None else tuple(input_size))
        return builder
    return decorate


def list_models():
    """The names of the registered models, sorted."""
    return sorted(_REGISTRY)


def model_entry(name):
    """The ``ModelEntry`` registered under ``name``; ``ValueError`` listing the known names otherwise."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    return _REGISTRY[name]


def get_model(name, **kwargs):
    """Build the model registered under ``name`` with ``kwargs``.

    Unknown names and arguments the builder does not take raise ``ValueError`` (not a bare
    ``TypeError`` from deep inside the call), naming what is accepted.

    Example::

        >>> model = get_model("lenet5", num_classes=10)
    """
    entry = model_entry(name)
    parameters = inspect.signature(entry.builder).parameters
    unknown = sorted(set(kwargs) - set(parameters))
    if unknown and not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        raise ValueError(f"get_model: model {name!r} takes no argument(s) {unknown}; "
                         f"it takes {list(parameters)}")
    return entry.builder(**kwargs)


__all__ = ["ModelEntry", "register_model", "list_models", "model_entry", "get_model"]
