"""Copying an array with two neighbouring axes swapped: by BLAS where it can, else tile by tile.

NumPy copies a transposed view element by element in the output's order, so one of the two
arrays is walked with a large stride: a convolution weight ``(512·512, 9) → (9, 512·512)``
took 3.3 ms and a weight gradient ``(4608, 512) → (512, 4608)`` 18 ms. Copied in tiles of
about 32 KB, each read and written inside the fastest cache (measured, 8–64 KB tiles; below
1 MB the whole array fits and one copy is faster), they take 1.2 and 3.0 ms; OpenBLAS's
``omatcopy`` (`striate._blas.transpose`), where NumPy's BLAS is reachable and single elements
move, 0.73 and 1.35 ms.
"""
import math

from striate import _blas
from striate._backend import xp

_TILE_BYTES = 32 * 2**10
_UNTILED_BYTES = 2**20


def swapped(a, axis):
    """A C-contiguous copy of ``a`` with axes ``axis`` and ``axis + 1`` exchanged.

    The same values as ``ascontiguousarray(a.swapaxes(axis, axis + 1))``; the axes after the
    pair move with each element as one block.
    """
    src = a.swapaxes(axis, axis + 1)
    if a.nbytes <= _UNTILED_BYTES:
        return xp.ascontiguousarray(src)
    rows, cols = src.shape[axis], src.shape[axis + 1]
    out = xp.empty(src.shape, dtype=a.dtype)
    block = math.prod(a.shape[axis + 2:])                              # elements that move together
    if block == 1 and a.flags.c_contiguous and _blas.GEMM_AVAILABLE and a.dtype in (xp.float32, xp.float64):
        matrices, lead = a.reshape(-1, cols, rows), out.reshape(-1, rows, cols)
        for matrix, target in zip(matrices, lead):
            _blas.transpose(matrix, target)
        return out
    tile_rows = min(rows, max(1, math.isqrt(_TILE_BYTES // (block * a.itemsize))))
    tile_cols = max(1, _TILE_BYTES // (block * a.itemsize * tile_rows))
    lead = (slice(None),) * axis
    for i in range(0, rows, tile_rows):
        for j in range(0, cols, tile_cols):
            tile = lead + (slice(i, i + tile_rows), slice(j, j + tile_cols))
            out[tile] = src[tile]
    return out
