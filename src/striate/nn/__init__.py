"""Layers, containers and losses as Modules (PyTorch's names, layouts and initialisation).

    import striate.nn as nn
    model = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(6 * 12 * 12, 10))
"""
from striate.nn import functional, init
from striate.nn.module import Module
from striate.nn.parameter import Parameter
from striate.nn.modules import *  # noqa: F401,F403  (the curated list in striate.nn.modules.__all__)
from striate.nn.modules import __all__ as _layers

__all__ = ["Module", "Parameter", "functional", "init"] + _layers
