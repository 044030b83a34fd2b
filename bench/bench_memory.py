"""Peak memory of one training step in striate and in PyTorch, each library in a fresh process.

Run from the repository root:

    python bench/bench_memory.py                 # LeNet-5 (batch 64 and 256) and a ResNet basic block
    python bench/bench_memory.py --only lenet

The figure is how far one training step (zero_grad, forward, loss, backward, optimizer step)
raises the process's resident memory above what it held just before, measured the same way
for both libraries (Linux): each (library, workload) runs in its own subprocess, builds the
model and data, runs one untimed step (so optimizer state and gradients exist and every
lazily-initialised kernel has run), collects garbage, hands freed heap memory back to the
system (``malloc_trim``), records ``VmRSS``, resets the kernel's peak-RSS counter (writing 5
to ``/proc/self/clear_refs``), runs one step and reads the peak (``VmHWM``). Ratio = striate
peak ÷ PyTorch peak (<1: striate uses less). For striate the peak of NumPy's own allocations
during the step (``tracemalloc``, which NumPy reports to) is shown as a cross-check.
Results go to ``bench/results/memory-<time>.json``.
"""
import argparse
import collections
import ctypes
import gc
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

WORKLOADS = {
    "lenet5 batch 64": ("lenet", 64),
    "lenet5 batch 256": ("lenet", 256),
    "resnet basic block 16→16 @32, batch 128": ("block", 128),
}


def _status():
    """``{VmRSS, VmHWM}`` of this process in bytes."""
    values = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024
    return values


def _striate_step(kind, batch):
    import numpy

    import striate as st
    import striate.nn as nn
    import striate.nn.functional as F
    from striate import optim
    from striate.models import lenet5

    rng = numpy.random.default_rng(0)
    st.manual_seed(0)
    if kind == "lenet":
        model = lenet5()
        x = st.tensor(rng.standard_normal((batch, 1, 28, 28), dtype=numpy.float32))
        y = st.tensor(rng.integers(0, 10, batch))
        opt = optim.Adam(model.parameters(), lr=1e-3)

        def step():
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    else:
        body = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                             nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16))
        x = st.tensor(rng.standard_normal((batch, 16, 32, 32), dtype=numpy.float32), requires_grad=True)
        opt = optim.SGD(body.parameters(), lr=0.1, momentum=0.9)

        def step():
            opt.zero_grad()
            x.grad = None
            F.relu(body(x) + x).mean().backward()
            opt.step()
    return step


def _torch_step(kind, batch):
    import numpy
    import torch

    from bench_lenet import torch_lenet5

    rng = numpy.random.default_rng(0)
    torch.manual_seed(0)
    if kind == "lenet":
        model = torch_lenet5()
        x = torch.from_numpy(rng.standard_normal((batch, 1, 28, 28), dtype=numpy.float32))
        y = torch.from_numpy(rng.integers(0, 10, batch))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step():
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    else:
        nn = torch.nn
        body = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                             nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16))
        x = torch.from_numpy(rng.standard_normal((batch, 16, 32, 32), dtype=numpy.float32)).requires_grad_()
        opt = torch.optim.SGD(body.parameters(), lr=0.1, momentum=0.9)

        def step():
            opt.zero_grad()
            x.grad = None
            torch.nn.functional.relu(body(x) + x).mean().backward()
            opt.step()
    return step


def child(library, kind, batch):
    """Measure one step in this (fresh) process and print the result as JSON."""
    step = (_striate_step if library == "striate" else _torch_step)(kind, batch)
    step()
    libc = ctypes.CDLL("libc.so.6")
    result = {}
    if library == "striate":
        import tracemalloc
        tracemalloc.start()
        gc.collect()
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        step()
        result["tracemalloc_peak_bytes"] = tracemalloc.get_traced_memory()[1] - start
        tracemalloc.stop()
        step()  # once more untraced, so the RSS figure below is not disturbed by tracemalloc's own records
    gc.collect()
    libc.malloc_trim(0)
    before = _status()["VmRSS"]
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    step()
    result["rss_peak_bytes"] = _status()["VmHWM"] - before
    result["rss_before_bytes"] = before
    print(json.dumps(result))


def measure(library, kind, batch):
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", library, kind, str(batch)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run only workloads whose name contains this text")
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per library (median taken)")
    parser.add_argument("--child", nargs=3, metavar=("LIBRARY", "KIND", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        library, kind, batch = args.child
        child(library, kind, int(batch))
        return None

    import statistics

    from common import load_average, source_revision, write_results
    rows = []
    mib = 2 ** 20
    print("peak resident memory added by one training step, each library in fresh processes "
          f"(median of {args.repeat}); ratio = striate / PyTorch (<1: striate uses less)\n")
    print(f"{'workload':<42} {'striate':>10} {'PyTorch':>10} {'ratio':>6}  {'striate tracemalloc':>20}")
    for name, (kind, batch) in WORKLOADS.items():
        if args.only not in name:
            continue
        runs = collections.defaultdict(list)
        for _ in range(args.repeat):
            for library in ("striate", "torch"):
                runs[library].append(measure(library, kind, batch))
        s = statistics.median(r["rss_peak_bytes"] for r in runs["striate"])
        t = statistics.median(r["rss_peak_bytes"] for r in runs["torch"])
        traced = statistics.median(r["tracemalloc_peak_bytes"] for r in runs["striate"])
        rows.append({"name": name, "striate_bytes": s, "torch_bytes": t, "ratio": s / t,
                     "striate_tracemalloc_bytes": traced, "runs": dict(runs)})
        print(f"{name:<42} {s / mib:>8.1f}MB {t / mib:>8.1f}MB {s / t:>6.2f}  {traced / mib:>18.1f}MB", flush=True)
    payload = {"revision": source_revision(), "rows": rows, "load_average_after": load_average()}
    path = write_results("memory", payload)
    print(f"\nwrote {os.path.relpath(path)}")
    return payload


if __name__ == "__main__":
    main()
