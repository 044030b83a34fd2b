"""Keep freed activation-sized blocks in the C heap instead of handing them back to the OS.

A training step allocates and frees the same large temporaries every time (columns,
activations, gradients: 0.1–30 MB each). glibc serves blocks that large with ``mmap`` and
returns them with ``munmap``, or trims the top of its heap as soon as 128 KB–a few MB lie free
there, so every step faults all of that memory back in page by page. Measured on LeNet-5
(batch 64, one or two threads) that fault traffic was half of the step: 15 ms → 8 ms per
step with the settings below, the same computation and results.

``configure()`` raises glibc's mmap threshold to 32 MB (its maximum) and its trim threshold to
256 MB: the heap then keeps what a step frees for the next step, at the cost of holding that
memory (at most the peak of one step) until the process ends. It runs once, when
``striate.ops`` is imported; it does nothing outside glibc (macOS, Windows, musl) and when
``STRIATE_KEEP_MALLOC=1`` is set in the environment before striate is imported.
"""
import ctypes
import ctypes.util
import os
import platform
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20
TRIM_THRESHOLD = 256 * 2**20

configured = False


def configure():
    """Apply the thresholds once (glibc only); True when they are in force."""
    global configured
    if configured:
        return True
    if os.environ.get("STRIATE_KEEP_MALLOC", "") not in ("", "0"):
        return False
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    configured = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return configured


__all__ = ["configure", "configured"]
