"""Layers, containers and losses as Modules (PyTorch's names, layouts and initialisation)."""
from striate.nn import functional

__all__ = ["functional"]
