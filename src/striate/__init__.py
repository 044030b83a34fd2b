"""striate — convolutional neural networks from first principles, on NumPy.

    import striate as st
    import striate.nn as nn
    import striate.nn.functional as F
"""
from striate.autograd import (Function, Tensor, cat, enable_grad, gradcheck, is_grad_enabled, no_grad,
                              set_grad_enabled, stack, tensor)
from striate.autograd.tensor import bool_, float16, float32, float64, int32, int64, uint8
from striate.creation import (arange, empty, empty_like, eye, from_numpy, full, full_like, linspace, ones, ones_like, rand,
                              rand_like, randint, randn, randn_like, randperm, zeros, zeros_like)
from striate.errors import FormatError
from striate.random import manual_seed
from striate.serialization import load, load_metadata, save
from striate import nn, optim  # noqa: E402,F401  (import striate; striate.nn works, as in PyTorch)

__version__ = "0.1.0"


def __getattr__(name):
    # Tools load on first use, so ``import striate`` stays fast.
    if name == "summary":
        from striate.tools.summary import summary
        return summary
    raise AttributeError(f"module 'striate' has no attribute {name!r}")


__all__ = [
    "Tensor", "tensor", "Function", "gradcheck", "cat", "stack",
    "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "manual_seed",
    "zeros", "ones", "full", "empty", "zeros_like", "ones_like", "full_like", "empty_like",
    "rand", "randn", "rand_like", "randn_like", "randint", "randperm", "arange", "linspace", "eye", "from_numpy",
    "float16", "float32", "float64", "int32", "int64", "uint8", "bool_",
    "nn", "optim", "FormatError", "save", "load", "load_metadata", "summary",
]
