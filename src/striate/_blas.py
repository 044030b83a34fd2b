"""What NumPy cannot express, from the BLAS NumPy already loaded: ``C += A·B`` in place, and a fast transpose.

``numpy.matmul`` always writes a fresh ``A·B``. Convolution written as a sum of shifted
products (``y += W_k · x[shift_k]`` over the kernel taps, see `striate.ops.conv`) needs the
general matrix product's accumulate form, ``C = A·B + β·C``, with operands that are strided
windows of larger arrays. That is GEMM itself, in the same BLAS library NumPy already loaded
and uses for ``@``; this module finds it and calls it through ctypes. The same library's
``omatcopy`` copies a matrix transposed 1.6–2.2× faster than NumPy can in cache-sized tiles
(`striate.kernels.transpose`), which convolution needs for its weights and weight gradients.

They are found only where they can be identified for certain: NumPy's own wheels on Linux,
which ship OpenBLAS as ``scipy-openblas`` (its build configuration says whether integers are
64-bit and so which symbols exist). Anywhere else ``GEMM_AVAILABLE`` is False and striate uses
its pure-NumPy path, which gives the same results to float rounding and is tested on every
platform. ``STRIATE_NUMPY_ONLY=1`` in the environment, set before striate is imported, forces
that path.

`gemm` and `transpose` take NumPy arrays, never raw pointers: the pointers, shapes and leading
dimensions they hand to BLAS all come from the arrays' own views, after a check that each one
is a matrix BLAS can read as it lies, so a call cannot reach outside the arrays it was given.
"""
import ctypes
import os
import sys

import numpy

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


def _loaded_openblas():
    """The path of NumPy's own OpenBLAS as this process has mapped it, or None.

    Other libraries may map their own OpenBLAS too (SciPy ships one with 32-bit integers), so
    only a library inside NumPy's installation (``numpy.libs`` beside the package) counts.
    """
    try:
        with open("/proc/self/maps") as maps:
            fields = (line.split(None, 5) for line in maps)
            paths = {f[5].strip() for f in fields if len(f) == 6}
    except OSError:
        return None
    home = os.path.dirname(os.path.realpath(numpy.__file__))                # …/site-packages/numpy
    found = sorted(p for p in paths if "openblas" in os.path.basename(p).lower() and ".so" in p
                   and os.path.realpath(p).startswith(home))                # numpy/ or numpy.libs/
    return found[0] if len(found) == 1 else None


def _find_blas():
    """``({float32: sgemm, …}, {float32: somatcopy, …})`` from NumPy's scipy-openblas, or None where unsure."""
    if os.environ.get("STRIATE_NUMPY_ONLY", "") not in ("", "0") or not sys.platform.startswith("linux"):
        return None
    try:
        blas = numpy.__config__.CONFIG["Build Dependencies"]["blas"]
    except (AttributeError, KeyError, TypeError):
        return None
    if blas.get("name") != "scipy-openblas":
        return None
    numpy.ones((2, 2)) @ numpy.ones((2, 2))            # make sure NumPy has loaded its BLAS
    path = _loaded_openblas()
    if path is None:
        return None
    wide = "USE64BITINT" in (blas.get("openblas configuration") or "")
    integer, suffix = (ctypes.c_int64, "64_") if wide else (ctypes.c_int32, "")
    try:
        lib = ctypes.CDLL(path)
        products, transposes = {}, {}
        for dtype, letter, scalar in ((numpy.float32, "s", ctypes.c_float), (numpy.float64, "d", ctypes.c_double)):
            function = getattr(lib, f"scipy_cblas_{letter}gemm{suffix}")
            function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, integer, integer, integer,
                                 scalar, ctypes.c_void_p, integer, ctypes.c_void_p, integer,
                                 scalar, ctypes.c_void_p, integer]
            function.restype = None
            products[numpy.dtype(dtype)] = function
            function = getattr(lib, f"scipy_cblas_{letter}omatcopy{suffix}")
            function.argtypes = [ctypes.c_int, ctypes.c_int, integer, integer, scalar,
                                 ctypes.c_void_p, integer, ctypes.c_void_p, integer]
            function.restype = None
            transposes[numpy.dtype(dtype)] = function
    except (OSError, AttributeError):
        return None
    return products, transposes


_GEMM, _OMATCOPY = _find_blas() or (None, None)


def _layout(matrix, name, op="gemm"):
    """``(transposed, leading dimension)`` of a 2-D operand BLAS reads in place, else ValueError.

    Row-major: unit column stride, and rows at least a row apart. Transposed: unit row stride,
    and columns at least a column apart. The stride of an axis of length 1 is never used.
    """
    rows, cols = matrix.shape
    item = matrix.itemsize
    row_step, col_step = matrix.strides
    if (cols == 1 or col_step == item) and (rows == 1 or (row_step % item == 0 and row_step >= cols * item)):
        return False, row_step // item if rows > 1 else max(cols, 1)
    if (rows == 1 or row_step == item) and (cols == 1 or (col_step % item == 0 and col_step >= rows * item)):
        return True, col_step // item if cols > 1 else max(rows, 1)
    raise ValueError(f"{op}: {name} (shape {matrix.shape}, strides {matrix.strides}) is not a matrix BLAS reads in place")


def gemm(a, b, c, beta):
    """``c ← a·b + beta·c`` in place, for 2-D float32 or float64 arrays of one dtype.

    ``a`` and ``b`` may be row-major or transposed views with any leading dimension; ``c`` must
    be row-major (unit column stride) and writable. Called only when ``GEMM_AVAILABLE``.
    """
    if _GEMM is None:
        raise RuntimeError("gemm: NumPy's BLAS is not reachable here (see GEMM_AVAILABLE)")
    dtype = c.dtype
    if a.dtype != dtype or b.dtype != dtype or dtype not in _GEMM:
        raise ValueError(f"gemm: dtypes {a.dtype}, {b.dtype}, {c.dtype}; expected one of float32, float64")
    (m, k), (k2, n) = a.shape, b.shape
    if k2 != k or c.shape != (m, n):
        raise ValueError(f"gemm: shapes {a.shape} · {b.shape} → {c.shape} do not chain")
    if not c.flags.writeable:
        raise ValueError("gemm: the output is read-only")
    if m == 0 or n == 0:
        return
    if k == 0:
        c *= beta
        return
    trans_a, lda = _layout(a, "a")
    trans_b, ldb = _layout(b, "b")
    trans_c, ldc = _layout(c, "c")
    if trans_c:                                  # a row or column of unit stride reads as row-major already
        raise ValueError(f"gemm: the output (shape {c.shape}, strides {c.strides}) must be row-major")
    _GEMM[dtype](_ROW_MAJOR, _TRANS if trans_a else _NO_TRANS, _TRANS if trans_b else _NO_TRANS,
                 m, n, k, 1.0, a.ctypes.data, lda, b.ctypes.data, ldb, float(beta), c.ctypes.data, ldc)


def transpose(a, out):
    """``out ← aᵀ``: a 2-D float32 or float64 row-major ``a (r, c)`` (any row stride) into a row-major ``out (c, r)``.

    Called only when ``GEMM_AVAILABLE``. The two must not overlap (a fresh ``out``).
    """
    if _OMATCOPY is None:
        raise RuntimeError("transpose: NumPy's BLAS is not reachable here (see GEMM_AVAILABLE)")
    if a.dtype != out.dtype or a.dtype not in _OMATCOPY:
        raise ValueError(f"transpose: dtypes {a.dtype}, {out.dtype}; expected one of float32, float64")
    if a.ndim != 2 or out.shape != a.shape[::-1]:
        raise ValueError(f"transpose: shapes {a.shape} → {out.shape}; expected a matrix and its transpose's shape")
    if not out.flags.writeable:
        raise ValueError("transpose: the output is read-only")
    if a.size == 0:
        return
    trans_a, lda = _layout(a, "a", "transpose")
    trans_out, ldo = _layout(out, "out", "transpose")
    if trans_a or trans_out:
        raise ValueError(f"transpose: a (strides {a.strides}) and out (strides {out.strides}) must be row-major")
    rows, cols = a.shape
    _OMATCOPY[a.dtype](_ROW_MAJOR, _TRANS, rows, cols, 1.0, a.ctypes.data, lda, out.ctypes.data, ldo)


GEMM_AVAILABLE = _GEMM is not None

__all__ = ["GEMM_AVAILABLE", "gemm", "transpose"]
