"""Run every benchmark, striate against PyTorch, and check the figures against the project's targets.

Run from the repository root:

    python bench/run_all.py                  # everything, default repetitions (~10–15 min on 2 cores)
    python bench/run_all.py --quick          # fewer repetitions, for a first look
    python bench/run_all.py --threads 1      # both libraries on one thread

Runs, in this order, each in its own process so thread settings and memory do not leak from
one to the next: ``bench_conv.py`` (1-D/2-D/3-D convolution layers, GFLOP/s against the
measured matrix-product peak), ``bench_layers.py`` (pooling, batch norm, cross-entropy),
``bench_lenet.py`` (LeNet-5 training at batch 64 and 256 and inference), ``bench_memory.py``
(peak memory of a training step) and ``bench_models.py`` when present. Each writes its own
JSON under ``bench/results/``; this script then writes ``bench/results/all-<time>.json``
gathering them, and prints each target of the performance issue with the figure reached.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import RESULTS, load_average, source_revision, write_results  # noqa: E402

# script, prefix of the JSON it writes, extra arguments for --quick
BENCHES = [
    ("bench_conv.py", "conv", ["--repeat", "3", "--warmup", "1"]),
    ("bench_layers.py", "layers", ["--repeat", "3", "--warmup", "1"]),
    ("bench_lenet.py", "lenet", ["--repeat", "3"]),
    ("bench_memory.py", "memory", ["--repeat", "1"]),
    ("bench_models.py", "models", []),
]


def newest(prefix, since):
    """The newest ``bench/results/<prefix>-*.json`` written after ``since``, loaded, or None."""
    paths = [p for p in glob.glob(os.path.join(RESULTS, f"{prefix}-*.json")) if os.path.getmtime(p) >= since]
    if not paths:
        return None
    with open(max(paths, key=os.path.getmtime)) as f:
        return json.load(f)


def targets(results):
    """``[(target, figure, met)]`` for the issue's targets that the results cover."""
    lines = []
    conv = results.get("conv")
    if conv:
        ratios = [r["forward_backward"]["ratio"] for r in conv["rows"]]
        worst = min(conv["rows"], key=lambda r: r["forward_backward"]["ratio"])
        g = conv["geomean"]["forward_backward"]
        lines.append(("conv forward+backward geometric mean ≥ 1.0× PyTorch", f"{g:.2f}×", g >= 1.0))
        lines.append(("no conv shape below 0.5× (forward+backward)",
                      f"lowest {min(ratios):.2f}× ({worst['name']})", min(ratios) >= 0.5))
        large = [r for r in conv["rows"] if r["forward_gflop"] >= 1.0]
        if large:
            # Every large shape must reach it, not just the best one.
            lowest = min(r["forward"]["striate_fraction_of_peak"] for r in large)
            lines.append(("every large conv forward ≥ 70% of the matmul peak "
                          f"({conv['matmul_peak_gflops']:.0f} GFLOP/s)",
                          ", ".join(f"{r['name']} {r['forward']['striate_fraction_of_peak']:.0%}" for r in large),
                          lowest >= 0.7))
    lenet = results.get("lenet")
    if lenet:
        for r in lenet["rows"]:
            if r["phase"] == "train":
                lines.append((f"LeNet-5 training ≥ 1.0× PyTorch at batch {r['batch_size']}",
                              f"{r['ratio']:.2f}×", r["ratio"] >= 1.0))
    memory = results.get("memory")
    if memory:
        for r in memory["rows"]:
            lines.append((f"peak memory ≤ 1.2× PyTorch: {r['name']}", f"{r['ratio']:.2f}×", r["ratio"] <= 1.2))
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (noisier)")
    parser.add_argument("--threads", type=int, default=None, help="threads for both libraries in every timing")
    parser.add_argument("--skip", nargs="*", default=[], help="benches to leave out, e.g. --skip memory lenet")
    args = parser.parse_args(argv)

    start = time.time()
    load_before = load_average()
    results = {}
    for script, prefix, quick in BENCHES:
        path = os.path.join(HERE, script)
        if prefix in args.skip or not os.path.exists(path):
            continue
        command = [sys.executable, path] + (quick if args.quick else [])
        with open(path) as f:
            takes_threads = "--threads" in f.read()
        if args.threads is not None and takes_threads:
            command += ["--threads", str(args.threads)]
        print(f"\n$ python bench/{script} {' '.join(command[2:])}", flush=True)
        since = time.time()
        subprocess.run(command, check=True, cwd=os.path.dirname(HERE))
        results[prefix] = newest(prefix, since)

    print("\nissue-6 targets:")
    checks = targets(results)
    for target, figure, met in checks:
        print(f"  [{'met' if met else 'SHORT'}] {target}: {figure}")
    payload = {"revision": source_revision(), "load_average_before": load_before,
               "load_average_after": load_average(), "seconds": time.time() - start,
               "targets": [{"target": t, "figure": f, "met": m} for t, f, m in checks], "results": results}
    path = write_results("all", payload)
    print(f"\nwrote {os.path.relpath(path)} ({time.time() - start:.0f} s in all)")


if __name__ == "__main__":
    main()
