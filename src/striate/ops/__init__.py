"""Differentiable CNN operations on Tensors, one file per family; public through ``striate.nn.functional``."""
