"""Differentiable CNN operations on Tensors, one file per family; public through ``striate.nn.functional``."""
from striate import _allocator

# The ops free and reallocate activation-sized temporaries every step; keep them in the heap
# (see striate/_allocator.py: it halves a small model's step time on Linux).
_allocator.configure()
