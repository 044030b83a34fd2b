"""The one place striate reaches its array module.

Every op gets arrays through ``xp`` so that a GPU array library with NumPy's
interface (CuPy) can stand in later without touching the ops.
"""
import numpy

xp = numpy

__all__ = ["xp"]
