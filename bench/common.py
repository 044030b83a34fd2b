"""Shared helpers for the benchmarks: thread counts, machine load, timed blocks, result files."""
import ctypes
import glob
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def _openblas():
    """NumPy's bundled OpenBLAS as a ctypes library, or None when it cannot be found."""
    for path in glob.glob(os.path.join(os.path.dirname(numpy.__file__), os.pardir, "numpy.libs", "*openblas*")):
        return ctypes.CDLL(path)
    return None


def numpy_blas_threads():
    """Threads NumPy's BLAS will use: from threadpoolctl when installed, else asked of OpenBLAS, else the CPU count."""
    try:
        from threadpoolctl import threadpool_info
        counts = [p["num_threads"] for p in threadpool_info() if p.get("internal_api") in ("openblas", "mkl", "blis")]
        if counts:
            return counts[0]
    except ImportError:
        pass
    lib = _openblas()
    for symbol in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads"):
        if lib is not None and hasattr(lib, symbol):
            return int(getattr(lib, symbol)())
    return os.cpu_count()


def set_numpy_blas_threads(count):
    """Limit NumPy's BLAS to ``count`` threads for the rest of the process; returns the count now in force."""
    try:
        from threadpoolctl import threadpool_limits
        # Kept alive on the function: the limit lasts as long as the object is not used as a context.
        set_numpy_blas_threads.limit = threadpool_limits(limits=count, user_api="blas")
        return numpy_blas_threads()
    except ImportError:
        pass
    lib = _openblas()
    for symbol in ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_", "openblas_set_num_threads"):
        if lib is not None and hasattr(lib, symbol):
            getattr(lib, symbol)(ctypes.c_int(count))
            return numpy_blas_threads()
    raise RuntimeError("cannot set NumPy's BLAS threads: install threadpoolctl, or set OPENBLAS_NUM_THREADS "
                       "before starting Python")


def add_threads_argument(parser):
    """The ``--threads`` option every bench takes."""
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both libraries (default: as many as NumPy's BLAS uses, all cores)")


def use_threads(requested, torch):
    """Put NumPy's BLAS and PyTorch on ``requested`` threads (None: BLAS's own count); ``(threads, machine line)``."""
    threads = numpy_blas_threads() if requested is None else set_numpy_blas_threads(requested)
    torch.set_num_threads(threads)
    return threads, machine_line(threads, torch)


def load_average():
    """The 1, 5 and 15-minute load averages, or None where the system has none."""
    try:
        return os.getloadavg()
    except (AttributeError, OSError):
        return None


def machine_line(threads, torch):
    """One line naming the library versions, thread counts, CPU and load, for the top of a report."""
    load = load_average()
    load_text = f", load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}" if load else ""
    return (f"NumPy {numpy.__version__} (BLAS threads {threads}), PyTorch {torch.__version__} "
            f"(threads {torch.get_num_threads()}), {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} CPUs{load_text}")


def timed_blocks(runs, repeat, warmup, count, settle=0.3):
    """Seconds each of ``runs`` takes for ``count`` iterations, in ``repeat`` rounds taking the runs in turn.

    Each library's thread pool spins for a while after its last call (OpenBLAS ~0.1 s), which
    on a small machine steals cores from the next one timed; so each block starts after a
    ``settle`` pause and ``warmup`` untimed iterations. Taking the libraries in turns, round
    after round, spreads a burst of load from elsewhere over both.

    Args:
        runs: ``{name: fn}``; ``fn(n)`` does ``n`` iterations (e.g. ``n`` training steps).

    Returns:
        ``{name: [seconds of each round]}``.
    """
    times = {name: [] for name in runs}
    for _ in range(repeat):
        for name, fn in runs.items():
            time.sleep(settle)
            fn(warmup)
            start = time.perf_counter()
            fn(count)
            times[name].append(time.perf_counter() - start)
    return times


def median_times(fns, repeat, warmup, rounds=2, settle=0.3):
    """Median seconds of each function, timed in blocks: ``rounds`` × (one block per function).

    Each library's thread pool spins for a while after its last call (OpenBLAS ~0.1 s), which
    on a small machine steals cores from the other; so blocks are separated by a ``settle``
    pause and each starts with ``warmup`` untimed calls. Alternating blocks over ``rounds``
    spreads slow drifts in machine load over both libraries.
    """
    times = [[] for _ in fns]
    for _ in range(rounds):
        for fn, record in zip(fns, times):
            time.sleep(settle)
            for _ in range(warmup):
                fn()
            for _ in range(repeat):
                start = time.perf_counter()
                fn()
                record.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def geomean(values):
    """Geometric mean of positive numbers (the summary of a column of ratios)."""
    values = list(values)
    return math.exp(sum(math.log(v) for v in values) / len(values))


def matmul_peak(size=2048, repeat=5):
    """Best float32 GFLOP/s of NumPy's ``a @ b`` on ``size``² matrices: the roof for an im2col design."""
    rng = numpy.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=numpy.float32)
    b = rng.standard_normal((size, size), dtype=numpy.float32)
    out = numpy.empty_like(a)
    numpy.matmul(a, b, out=out)
    best = min(_timed(lambda: numpy.matmul(a, b, out=out)) for _ in range(repeat))
    return 2 * size ** 3 / best / 1e9


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def spread(values):
    """``{"median", "min", "max", "all"}`` of a list of numbers."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "all": list(values)}


def source_revision():
    """The checkout's commit as ``git describe`` gives it (``-dirty`` when files are modified), or None."""
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], cwd=os.path.dirname(RESULTS),
                              capture_output=True, text=True, check=True).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


def write_results(prefix, payload):
    """Write ``payload`` (with the command line added) to ``bench/results/<prefix>-<time>.json``; return the path."""
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, time.strftime(f"{prefix}-%Y%m%d-%H%M%S.json"))
    with open(path, "w") as f:
        json.dump({"command": " ".join(["python"] + sys.argv), **payload}, f, indent=2)
    return path
