"""Pretrained weights: a state dict saved from PyTorch as safetensors, loaded by name into a striate model.

The models in ``striate.models`` use torchvision's parameter names and layouts, so a state
dict exported on the PyTorch side with one line loads unchanged::

    # in PyTorch (pip install safetensors torchvision)
    import safetensors.torch, torchvision
    model = torchvision.models.resnet18(weights="IMAGENET1K_V1")
    safetensors.torch.save_file(model.state_dict(), "resnet18.safetensors")

    # in striate
    model = striate.models.resnet18(weights="resnet18.safetensors")

The file is read by striate's own safetensors reader (``striate.load``: no pickle, every
header rule checked before anything is allocated). Loading is strict: every parameter and
buffer of the model must be in the file with the same shape, and the file may hold nothing
else; otherwise a ``ValueError`` names each offending key (and both shapes) and nothing is
copied. Values are cast to the model's dtype (float16 and bfloat16 files load into float32).
"""
import os

from striate.serialization import load


def load_weights(model, weights, op):
    """Load the safetensors state dict at path ``weights`` into ``model`` (strict); return the model.

    ``weights=None`` leaves the model as initialised.

    Args:
        model: the freshly built ``nn.Module``.
        weights: ``None``, or a path (str or path-like) to a ``.safetensors`` state dict.
        op: the builder's name, for error messages (e.g. ``"resnet18"``).

    Raises:
        TypeError: ``weights`` is neither None nor a path.
        FileNotFoundError / OSError: the file cannot be read.
        striate.FormatError: the file is not a valid safetensors file.
        ValueError: the file's keys or shapes do not match the model's.
    """
    if weights is None:
        return model
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(f"{op}: weights must be None or the path of a .safetensors state dict, got "
                        f"{type(weights).__name__}; to load a dict of arrays use model.load_state_dict(...)")
    path = os.fspath(weights)
    state = load(path)
    problems = _mismatches(model, state)
    if problems:
        raise ValueError(f"{op}: the weights in {path!r} do not fit the model ({len(problems)} problem(s)):\n  "
                         + "\n  ".join(problems)
                         + "\n(num_classes and in_channels must be those the weights were trained with)")
    model.load_state_dict(state, strict=True)
    return model


def _mismatches(model, state):
    """One line per missing key, unexpected key and shape mismatch between ``model`` and ``state``."""
    own = dict(model.state_dict())
    problems = []
    for key, value in own.items():
        if key not in state:
            problems.append(f"missing key {key!r} (the model expects shape {tuple(value.shape)})")
        elif tuple(state[key].shape) != tuple(value.shape):
            problems.append(f"shape mismatch for {key!r}: the file has {tuple(state[key].shape)}, "
                            f"the model expects {tuple(value.shape)}")
    for key, value in state.items():
        if key not in own:
            problems.append(f"unexpected key {key!r} of shape {tuple(value.shape)} (not in the model)")
    return problems


__all__ = ["load_weights"]
