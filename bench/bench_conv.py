"""Time striate's convolution against PyTorch's, forward and forward+backward, on the same data.

Run from the repository root:

    python bench/bench_conv.py [--repeat 7] [--warmup 2] [--only resnet] [--threads 1]

Shapes (1-D, 2-D and 3-D) come from LeNet-5, CIFAR ResNets, VGG-16, ResNet-18 and typical 1-D
(signal) and 3-D (video/volume) networks, at the batch sizes people train them with. Each
figure is the median of 2 × ``--repeat`` timed runs, in two alternating blocks per library
(each after a pause and ``--warmup`` untimed runs), both libraries in one process on the same
arrays, in float32, PyTorch limited to the threads NumPy's BLAS uses (``--threads`` sets both).
The ratio is PyTorch time / striate time: above 1 striate is faster, below 1 PyTorch is.

Each layer's arithmetic (2 · multiply-adds) over its time gives achieved GFLOP/s, printed next to
the float32 matrix-product peak NumPy reaches on this machine, measured in the same run
(``a @ b`` on 2048² matrices): striate lowers convolution to that product, so the peak is the
roof for its design. Forward+backward counts 3× the forward's arithmetic (input and weight
gradients). Results are printed as a table and written to ``bench/results/conv-<time>.json``.
"""
import argparse
import math
import os
import sys

import numpy
import torch

import striate as st
import striate.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (add_threads_argument, geomean, load_average, matmul_peak, median_times,  # noqa: E402
                    source_revision, use_threads, write_results)

# name, batch, in channels, out channels, kernel, input size, stride, padding (per spatial dim)
SHAPES = [
    ("1d signal 1→32 k9 s2 @4096", 32, 1, 32, (9,), (4096,), 2, 4),
    ("1d 64→64 k3 @1024", 32, 64, 64, (3,), (1024,), 1, 1),
    ("lenet5 c1 1→6 5×5 @28 p2", 64, 1, 6, (5, 5), (28, 28), 1, 2),
    ("lenet5 c3 6→16 5×5 @14", 64, 6, 16, (5, 5), (14, 14), 1, 0),
    ("resnet20 16→16 3×3 @32", 128, 16, 16, (3, 3), (32, 32), 1, 1),
    ("resnet20 16→32 3×3 s2 @32", 128, 16, 32, (3, 3), (32, 32), 2, 1),
    ("resnet20 32→32 3×3 @16", 128, 32, 32, (3, 3), (16, 16), 1, 1),
    ("resnet20 64→64 3×3 @8", 128, 64, 64, (3, 3), (8, 8), 1, 1),
    ("vgg16 64→64 3×3 @112", 8, 64, 64, (3, 3), (112, 112), 1, 1),
    ("vgg16 128→128 3×3 @56", 8, 128, 128, (3, 3), (56, 56), 1, 1),
    ("vgg16 256→256 3×3 @28", 8, 256, 256, (3, 3), (28, 28), 1, 1),
    ("resnet18 stem 3→64 7×7 s2 @224", 8, 3, 64, (7, 7), (224, 224), 2, 3),
    ("resnet18 64→64 3×3 @56", 8, 64, 64, (3, 3), (56, 56), 1, 1),
    ("resnet18 128→256 3×3 s2 @28", 8, 128, 256, (3, 3), (28, 28), 2, 1),
    ("resnet18 512→512 3×3 @7", 8, 512, 512, (3, 3), (7, 7), 1, 1),
    ("3d 3→16 3³ @16×56×56", 4, 3, 16, (3, 3, 3), (16, 56, 56), 1, 1),
    ("3d 32→32 3³ @8×28×28", 4, 32, 32, (3, 3, 3), (8, 28, 28), 1, 1),
]

_TORCH = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d, 3: torch.nn.functional.conv3d}
_STRIATE = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def forward_flops(batch, cin, cout, kernel, out_size):
    """Floating-point operations of one forward pass: 2 per multiply-add."""
    return 2 * batch * cout * math.prod(out_size) * cin * math.prod(kernel)


def bench_shape(shape, repeat, warmup, rng, peak):
    name, batch, cin, cout, kernel, size, stride, padding = shape
    n = len(kernel)
    x = rng.standard_normal((batch, cin, *size), dtype=numpy.float32)
    w = (rng.standard_normal((cout, cin, *kernel), dtype=numpy.float32)
         / numpy.float32(math.sqrt(cin * math.prod(kernel))))
    b = rng.standard_normal(cout, dtype=numpy.float32)
    kw = dict(stride=stride, padding=padding)
    s_conv, t_conv = _STRIATE[n], _TORCH[n]

    sx, sw, sb = (st.tensor(a, requires_grad=True) for a in (x, w, b))
    tx, tw, tb = (torch.from_numpy(a.copy()).requires_grad_() for a in (x, w, b))
    with st.no_grad():
        out_shape = s_conv(sx, sw, sb, **kw).shape
    gy = numpy.ones(out_shape, dtype=numpy.float32)
    tgy = torch.from_numpy(gy)

    def striate_forward():
        with st.no_grad():
            s_conv(sx, sw, sb, **kw)

    def torch_forward():
        with torch.no_grad():
            t_conv(tx, tw, tb, **kw)

    def striate_train():
        sx.grad = sw.grad = sb.grad = None
        s_conv(sx, sw, sb, **kw).backward(gy)

    def torch_train():
        tx.grad = tw.grad = tb.grad = None
        t_conv(tx, tw, tb, **kw).backward(tgy)

    flops = forward_flops(batch, cin, cout, kernel, out_shape[2:])
    row = {"name": name, "input": [batch, cin, *size], "weight": [cout, cin, *kernel],
           "stride": stride, "padding": padding, "forward_gflop": flops / 1e9}
    for phase, s_fn, t_fn, work in (("forward", striate_forward, torch_forward, flops),
                                    ("forward_backward", striate_train, torch_train, 3 * flops)):
        s_time, t_time = median_times((s_fn, t_fn), repeat, warmup)
        row[phase] = {"striate_s": s_time, "torch_s": t_time, "ratio": t_time / s_time,
                      "striate_gflops": work / s_time / 1e9, "torch_gflops": work / t_time / 1e9,
                      "striate_fraction_of_peak": work / s_time / 1e9 / peak}
    return row


def print_table(rows, peak):
    header = (f"{'shape':<32} {'fwd striate':>11} {'fwd torch':>10} {'ratio':>6} {'GFLOP/s':>8} {'%peak':>6}  "
              f"{'f+b striate':>11} {'f+b torch':>10} {'ratio':>6}")
    print(header)
    print("-" * len(header))
    for r in rows:
        f, t = r["forward"], r["forward_backward"]
        print(f"{r['name']:<32} {f['striate_s'] * 1e3:>9.2f}ms {f['torch_s'] * 1e3:>8.2f}ms {f['ratio']:>6.2f} "
              f"{f['striate_gflops']:>8.1f} {f['striate_gflops'] / peak:>6.0%}  "
              f"{t['striate_s'] * 1e3:>9.2f}ms {t['torch_s'] * 1e3:>8.2f}ms {t['ratio']:>6.2f}")


def markdown(payload):
    """The table for BENCHMARKS.md."""
    peak = payload["matmul_peak_gflops"]
    lines = ["| shape (batch) | fwd striate | fwd PyTorch | ratio | striate GFLOP/s (% of peak) | PyTorch GFLOP/s "
             "| fwd+bwd striate | fwd+bwd PyTorch | ratio |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in payload["rows"]:
        f, t = r["forward"], r["forward_backward"]
        lines.append(f"| {r['name']} ({r['input'][0]}) | {f['striate_s'] * 1e3:.2f} ms | {f['torch_s'] * 1e3:.2f} ms "
                     f"| {f['ratio']:.2f} | {f['striate_gflops']:.0f} ({f['striate_gflops'] / peak:.0%}) "
                     f"| {f['torch_gflops']:.0f} | {t['striate_s'] * 1e3:.2f} ms | {t['torch_s'] * 1e3:.2f} ms "
                     f"| {t['ratio']:.2f} |")
    g = payload["geomean"]
    lines.append(f"| **geometric mean** | | | **{g['forward']:.2f}** | | | | | **{g['forward_backward']:.2f}** |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7,
                        help="timed runs per block (two blocks per library; median taken)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs before timing")
    parser.add_argument("--only", default="", help="run only shapes whose name contains this text")
    add_threads_argument(parser)
    args = parser.parse_args(argv)

    threads, machine = use_threads(args.threads, torch)
    peak = matmul_peak()
    print(machine)
    print(f"float32 matrix-product peak (NumPy, 2048², {threads} thread(s)): {peak:.0f} GFLOP/s")
    print(f"median of 2×{args.repeat} runs in alternating blocks, each after {args.warmup} warm-up; float32; "
          "ratio = PyTorch time / striate time (>1: striate faster, <1: PyTorch faster)\n")

    rng = numpy.random.default_rng(0)
    rows = []
    for shape in SHAPES:
        if args.only in shape[0]:
            rows.append(bench_shape(shape, args.repeat, args.warmup, rng, peak))
            print(f"  {shape[0]}: forward {rows[-1]['forward']['ratio']:.2f}, "
                  f"forward+backward {rows[-1]['forward_backward']['ratio']:.2f}", flush=True)
    print()
    print_table(rows, peak)
    summary = {phase: geomean([r[phase]["ratio"] for r in rows]) for phase in ("forward", "forward_backward")}
    print(f"\ngeometric mean of ratios (PyTorch time / striate time): forward {summary['forward']:.2f}, "
          f"forward+backward {summary['forward_backward']:.2f}")
    payload = {"machine": machine, "revision": source_revision(), "threads": threads,
               "matmul_peak_gflops": peak, "repeat": args.repeat, "warmup": args.warmup,
               "rows": rows, "geomean": summary, "load_average_after": load_average()}
    path = write_results("conv", payload)
    print(f"wrote {os.path.relpath(path)}\n\nMarkdown for BENCHMARKS.md:\n")
    print(markdown(payload))
    return payload


if __name__ == "__main__":
    main()
