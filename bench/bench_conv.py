"""Time striate's conv2d against PyTorch's, forward and forward+backward, on the same data.

Run from the repository root:

    python bench/bench_conv.py [--repeat 7] [--warmup 2] [--only resnet] [--threads 1]

Shapes come from LeNet-5, a CIFAR ResNet and VGG. Each figure is the median of 2 × ``--repeat``
timed runs, in two alternating blocks per library (each after a pause and ``--warmup`` untimed
runs), both libraries in one process on the same arrays, in float32, PyTorch limited to the
threads NumPy's BLAS uses (``--threads`` sets both). The ratio is PyTorch time / striate time:
above 1 striate is faster, below 1 PyTorch is. Results are printed as a table and written to
``bench/results/conv-<time>.json``.
"""
import argparse
import math
import os
import statistics
import sys
import time

import numpy
import torch

import striate as st
import striate.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (load_average, machine_line, numpy_blas_threads, set_numpy_blas_threads,  # noqa: E402
                    source_revision, write_results)

# name, batch, in channels, out channels, kernel, height/width, stride, padding
SHAPES = [
    ("lenet5 c1 1→6 5×5 @32", 64, 1, 6, 5, 32, 1, 0),
    ("lenet5 c3 6→16 5×5 @14", 64, 6, 16, 5, 14, 1, 0),
    ("resnet 16→16 3×3 @32", 128, 16, 16, 3, 32, 1, 1),
    ("resnet 16→32 3×3 s2 @32", 128, 16, 32, 3, 32, 2, 1),
    ("resnet 32→32 3×3 @16", 128, 32, 32, 3, 16, 1, 1),
    ("resnet 64→64 3×3 @8", 128, 64, 64, 3, 8, 1, 1),
    ("vgg 64→64 3×3 @112", 8, 64, 64, 3, 112, 1, 1),
    ("vgg 128→128 3×3 @56", 8, 128, 128, 3, 56, 1, 1),
    ("vgg 256→256 3×3 @28", 8, 256, 256, 3, 28, 1, 1),
]


def median_times(fns, repeat, warmup, rounds=2, settle=0.3):
    """Median seconds of each function, timed in blocks: ``rounds`` × (A's block, B's block).

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


def bench_shape(shape, repeat, warmup, rng):
    name, batch, cin, cout, k, size, stride, padding = shape
    x = rng.standard_normal((batch, cin, size, size), dtype=numpy.float32)
    w = rng.standard_normal((cout, cin, k, k), dtype=numpy.float32) / numpy.float32(math.sqrt(cin * k * k))
    b = rng.standard_normal(cout, dtype=numpy.float32)
    kw = dict(stride=stride, padding=padding)

    sx, sw, sb = (st.tensor(a, requires_grad=True) for a in (x, w, b))
    tx, tw, tb = (torch.from_numpy(a.copy()).requires_grad_() for a in (x, w, b))
    with st.no_grad():
        gy = numpy.ones(F.conv2d(sx, sw, sb, **kw).shape, dtype=numpy.float32)
    tgy = torch.from_numpy(gy)

    def striate_forward():
        with st.no_grad():
            F.conv2d(sx, sw, sb, **kw)

    def torch_forward():
        with torch.no_grad():
            torch.nn.functional.conv2d(tx, tw, tb, **kw)

    def striate_train():
        sx.grad = sw.grad = sb.grad = None
        F.conv2d(sx, sw, sb, **kw).backward(gy)

    def torch_train():
        tx.grad = tw.grad = tb.grad = None
        torch.nn.functional.conv2d(tx, tw, tb, **kw).backward(tgy)

    row = {"name": name, "input": [batch, cin, size, size], "weight": [cout, cin, k, k],
           "stride": stride, "padding": padding}
    for phase, s_fn, t_fn in (("forward", striate_forward, torch_forward),
                              ("forward_backward", striate_train, torch_train)):
        s_time, t_time = median_times((s_fn, t_fn), repeat, warmup)
        row[phase] = {"striate_s": s_time, "torch_s": t_time, "ratio": t_time / s_time}
    return row


def geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7,
                        help="timed runs per block (two blocks per library; median taken)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs before timing")
    parser.add_argument("--only", default="", help="run only shapes whose name contains this text")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both libraries (default: what NumPy's BLAS uses, all cores)")
    args = parser.parse_args(argv)

    threads = numpy_blas_threads() if args.threads is None else set_numpy_blas_threads(args.threads)
    torch.set_num_threads(threads)
    machine = machine_line(threads, torch)
    print(machine)
    print(f"median of 2×{args.repeat} runs in alternating blocks, each after {args.warmup} warm-up; float32; "
          "ratio = PyTorch time / striate time (>1: striate faster, <1: PyTorch faster)\n")

    rng = numpy.random.default_rng(0)
    rows = [bench_shape(s, args.repeat, args.warmup, rng) for s in SHAPES if args.only in s[0]]
    header = (f"{'shape':<26} {'fwd striate':>11} {'fwd torch':>10} {'ratio':>6}  "
              f"{'f+b striate':>11} {'f+b torch':>10} {'ratio':>6}")
    print(header)
    print("-" * len(header))
    for r in rows:
        f, t = r["forward"], r["forward_backward"]
        print(f"{r['name']:<26} {f['striate_s'] * 1e3:>9.2f}ms {f['torch_s'] * 1e3:>8.2f}ms {f['ratio']:>6.2f}  "
              f"{t['striate_s'] * 1e3:>9.2f}ms {t['torch_s'] * 1e3:>8.2f}ms {t['ratio']:>6.2f}")
    summary = {phase: geomean([r[phase]["ratio"] for r in rows]) for phase in ("forward", "forward_backward")}
    print(f"\ngeometric mean of ratios (PyTorch time / striate time): forward {summary['forward']:.2f}, "
          f"forward+backward {summary['forward_backward']:.2f}")

    path = write_results("conv", {"machine": machine, "revision": source_revision(), "threads": threads,
                                  "load_after": load_average(), "repeat": args.repeat, "warmup": args.warmup,
                                  "rows": rows, "geomean": summary})
    print(f"wrote {os.path.relpath(path)}")


if __name__ == "__main__":
    main()
