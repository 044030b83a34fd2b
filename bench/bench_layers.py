"""Time striate's pooling, batch norm and cross-entropy against PyTorch's, forward and forward+backward.

Run from the repository root:

    python bench/bench_layers.py [--repeat 7] [--warmup 2] [--only pool] [--threads 1]

The shapes are the ones these layers see in LeNet-5, CIFAR ResNets, VGG and ResNet-18 at
training batch sizes. Timing works as in ``bench_conv.py``: both libraries in one process on
the same float32 arrays, alternating blocks, medians; forward under ``no_grad``, forward+backward
seeded with the same upstream gradient. Ratio = PyTorch time / striate time (>1: striate
faster). Results go to ``bench/results/layers-<time>.json``.
"""
import argparse
import os
import sys

import numpy
import torch

import striate as st
import striate.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (add_threads_argument, geomean, load_average, median_times, source_revision,  # noqa: E402
                    use_threads, write_results)

TF = torch.nn.functional


def _pool(kind, n, **kw):
    return (lambda x: getattr(F, f"{kind}_pool{n}d")(x, **kw),
            lambda x: getattr(TF, f"{kind}_pool{n}d")(x, **kw))


def _batch_norm(channels):
    """Training-mode batch norm with affine parameters and running statistics, as BatchNorm2d runs it."""
    def ours(x, weight, bias):
        return F.batch_norm(x, numpy.zeros(channels, numpy.float32), numpy.ones(channels, numpy.float32),
                            weight, bias, training=True)

    def theirs(x, weight, bias):
        return TF.batch_norm(x, torch.zeros(channels), torch.ones(channels), weight, bias, training=True)
    return ours, theirs


# name, input shapes (float arrays; the first is the one the op runs on), (striate fn, torch fn),
# extra integer input (class targets) or None
CASES = [
    ("max_pool2d 2×2 lenet s2 (64, 6, 28, 28)", [(64, 6, 28, 28)], _pool("max", 2, kernel_size=2), None),
    ("max_pool2d 2×2 lenet s4 (64, 16, 10, 10)", [(64, 16, 10, 10)], _pool("max", 2, kernel_size=2), None),
    ("max_pool2d 2×2 vgg (8, 64, 224, 224)", [(8, 64, 224, 224)], _pool("max", 2, kernel_size=2), None),
    ("max_pool2d 3×3 s2 p1 resnet18 (8, 64, 112, 112)", [(8, 64, 112, 112)],
     _pool("max", 2, kernel_size=3, stride=2, padding=1), None),
    ("max_pool1d 2 (32, 64, 1024)", [(32, 64, 1024)], _pool("max", 1, kernel_size=2), None),
    ("max_pool3d 2³ (4, 32, 16, 28, 28)", [(4, 32, 16, 28, 28)], _pool("max", 3, kernel_size=2), None),
    ("avg_pool2d 2×2 (64, 6, 28, 28)", [(64, 6, 28, 28)], _pool("avg", 2, kernel_size=2), None),
    ("avg_pool2d 3×3 s1 p1 (128, 32, 16, 16)", [(128, 32, 16, 16)],
     _pool("avg", 2, kernel_size=3, stride=1, padding=1), None),
    ("adaptive_avg_pool2d 1 resnet20 (128, 64, 8, 8)", [(128, 64, 8, 8)],
     (lambda x: F.adaptive_avg_pool2d(x, 1), lambda x: TF.adaptive_avg_pool2d(x, 1)), None),
    ("batch_norm2d resnet20 (128, 16, 32, 32)", [(128, 16, 32, 32), (16,), (16,)], _batch_norm(16), None),
    ("batch_norm2d resnet20 (128, 64, 8, 8)", [(128, 64, 8, 8), (64,), (64,)], _batch_norm(64), None),
    ("batch_norm2d resnet18 (8, 64, 56, 56)", [(8, 64, 56, 56), (64,), (64,)], _batch_norm(64), None),
    ("batch_norm1d (256, 120)", [(256, 120), (120,), (120,)], _batch_norm(120), None),
    ("cross_entropy mnist (64, 10)", [(64, 10)], (F.cross_entropy, TF.cross_entropy), 10),
    ("cross_entropy mnist (256, 10)", [(256, 10)], (F.cross_entropy, TF.cross_entropy), 10),
    ("cross_entropy imagenet (128, 1000)", [(128, 1000)], (F.cross_entropy, TF.cross_entropy), 1000),
    ("relu (128, 16, 32, 32)", [(128, 16, 32, 32)], (F.relu, TF.relu), None),
]


def bench_case(case, repeat, warmup, rng):
    name, shapes, (ours, theirs), classes = case
    arrays = [rng.standard_normal(s, dtype=numpy.float32) for s in shapes]
    s_in = [st.tensor(a, requires_grad=True) for a in arrays]
    t_in = [torch.from_numpy(a.copy()).requires_grad_() for a in arrays]
    s_extra, t_extra = [], []
    if classes is not None:
        target = rng.integers(0, classes, shapes[0][0])
        s_extra, t_extra = [st.tensor(target)], [torch.from_numpy(target)]
    with st.no_grad():
        out_shape = ours(*s_in, *s_extra).shape
    gy = rng.standard_normal(out_shape).astype(numpy.float32)
    tgy = torch.from_numpy(gy)

    def striate_forward():
        with st.no_grad():
            ours(*s_in, *s_extra)

    def torch_forward():
        with torch.no_grad():
            theirs(*t_in, *t_extra)

    def striate_train():
        for t in s_in:
            t.grad = None
        ours(*s_in, *s_extra).backward(gy)

    def torch_train():
        for t in t_in:
            t.grad = None
        theirs(*t_in, *t_extra).backward(tgy)

    row = {"name": name, "shapes": [list(s) for s in shapes]}
    for phase, s_fn, t_fn in (("forward", striate_forward, torch_forward),
                              ("forward_backward", striate_train, torch_train)):
        s_time, t_time = median_times((s_fn, t_fn), repeat, warmup)
        row[phase] = {"striate_s": s_time, "torch_s": t_time, "ratio": t_time / s_time}
    return row


def markdown(payload):
    lines = ["| layer (input shape) | fwd striate | fwd PyTorch | ratio | fwd+bwd striate | fwd+bwd PyTorch | ratio |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in payload["rows"]:
        f, t = r["forward"], r["forward_backward"]
        lines.append(f"| {r['name']} | {f['striate_s'] * 1e3:.3f} ms | {f['torch_s'] * 1e3:.3f} ms | {f['ratio']:.2f} "
                     f"| {t['striate_s'] * 1e3:.3f} ms | {t['torch_s'] * 1e3:.3f} ms | {t['ratio']:.2f} |")
    g = payload["geomean"]
    lines.append(f"| **geometric mean** | | | **{g['forward']:.2f}** | | | **{g['forward_backward']:.2f}** |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per block (two blocks per library)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs before timing")
    parser.add_argument("--only", default="", help="run only cases whose name contains this text")
    add_threads_argument(parser)
    args = parser.parse_args(argv)

    threads, machine = use_threads(args.threads, torch)
    print(machine)
    print(f"median of 2×{args.repeat} runs in alternating blocks, each after {args.warmup} warm-up; float32; "
          "ratio = PyTorch time / striate time (>1: striate faster)\n")
    rng = numpy.random.default_rng(0)
    rows = []
    header = f"{'layer':<50} {'fwd striate':>11} {'fwd torch':>10} {'ratio':>6}  {'f+b striate':>11} {'f+b torch':>10} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    for case in CASES:
        if args.only not in case[0]:
            continue
        r = bench_case(case, args.repeat, args.warmup, rng)
        rows.append(r)
        f, t = r["forward"], r["forward_backward"]
        print(f"{r['name']:<50} {f['striate_s'] * 1e3:>9.3f}ms {f['torch_s'] * 1e3:>8.3f}ms {f['ratio']:>6.2f}  "
              f"{t['striate_s'] * 1e3:>9.3f}ms {t['torch_s'] * 1e3:>8.3f}ms {t['ratio']:>6.2f}", flush=True)
    summary = {phase: geomean([r[phase]["ratio"] for r in rows]) for phase in ("forward", "forward_backward")}
    print(f"\ngeometric mean of ratios: forward {summary['forward']:.2f}, "
          f"forward+backward {summary['forward_backward']:.2f}")
    payload = {"machine": machine, "revision": source_revision(), "threads": threads, "repeat": args.repeat,
               "warmup": args.warmup, "rows": rows, "geomean": summary, "load_average_after": load_average()}
    path = write_results("layers", payload)
    print(f"wrote {os.path.relpath(path)}\n\nMarkdown for BENCHMARKS.md:\n")
    print(markdown(payload))
    return payload


if __name__ == "__main__":
    main()
