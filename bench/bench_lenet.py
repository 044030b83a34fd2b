"""Time LeNet-5 training and inference in striate against the same model in PyTorch, on the same MNIST batches.

Run from the repository root:

    python bench/bench_lenet.py                    # throughput: train at batch 64 and 256, inference at 256
    python bench/bench_lenet.py --repeat 9         # steadier medians on a busy machine
    python bench/bench_lenet.py --profile          # also: where one striate training step at batch 64 spends its time
    python bench/bench_lenet.py --full             # also: the accuracy run (striate train, 10 epochs of full MNIST)
    python bench/bench_lenet.py --full --torch-accuracy   # ... and the same recipe in PyTorch

Both libraries get the same architecture (striate's ``lenet5()`` and an equivalent ``torch.nn``
model into which striate's initial weights are loaded), the same optimizer (Adam, lr 1e-3),
the same pre-normalised float32 batches (MNIST from ``--data``, or the embedded ``Digits``
when those files are absent) and the same number of threads. A training step is what a user
writes: ``zero_grad``, forward, ``cross_entropy``, ``backward``, ``step``; data loading is
excluded for both (the batches are ready-made arrays before timing starts). Inference is the
forward pass in eval mode under ``no_grad``. Each figure is the median over ``--repeat``
rounds; in each round both libraries run ``--warmup`` untimed steps and then ``--steps``
timed ones, in turns. The ratio is striate images/s ÷ PyTorch images/s: above 1 striate is
faster, below 1 PyTorch is. Results are printed as a table, as a Markdown block for
BENCHMARKS.md, and written to ``bench/results/lenet-<time>.json``.
"""
import argparse
import collections
import cProfile
import io
import itertools
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time

import numpy
import torch

import striate as st
import striate.nn.functional as F
from striate import optim
from striate.data.datasets import MNIST, MNIST_MEAN, MNIST_STD, Digits
from striate.models import lenet5

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (add_threads_argument, load_average, source_revision, spread, timed_blocks, use_threads,  # noqa: E402
                    write_results)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.normpath(os.path.join(ROOT, os.pardir, "shared", "data", "mnist"))
LR = 1e-3


# ----- data ------------------------------------------------------------------------------------------------
def load_data(root):
    """``(train_x, train_y, test_x, test_y, description)``: float32 ``(N, 1, 28, 28)`` normalised, int64 labels."""
    try:
        train, test = MNIST(root, train=True), MNIST(root, train=False)
        description = f"MNIST from {os.path.relpath(root)}"
    except FileNotFoundError:
        train, test = Digits(train=True), Digits(train=False)
        description = f"the embedded Digits (no MNIST files in {root})"
    return (*normalise(train), *normalise(test), description)


def normalise(dataset):
    """uint8 ``(N, 28, 28)`` → float32 ``(N, 1, 28, 28)`` scaled to [0, 1] and normalised, as ``striate train`` does."""
    x = dataset.data[:, None].astype(numpy.float32)  # (N, 28, 28) -> (N, 1, 28, 28)
    x /= 255
    x -= numpy.float32(MNIST_MEAN)
    x /= numpy.float32(MNIST_STD)
    return x, dataset.targets.astype(numpy.int64)


def fixed_batches(x, y, batch_size, count, seed=0):
    """``count`` batches of a seeded permutation of the data, each a contiguous ``(images, labels)`` pair."""
    order = numpy.random.default_rng(seed).permutation(len(x))
    count = min(count, len(x) // batch_size)
    return [(numpy.ascontiguousarray(x[idx]), y[idx])
            for idx in (order[i * batch_size:(i + 1) * batch_size] for i in range(count))]


# ----- the two models ----------------------------------------------------------------------------------------
def torch_lenet5():
    """LeNet-5 in ``torch.nn`` with the same layers and parameter names as ``striate.models.lenet5()``."""
    nn = torch.nn
    features = nn.Sequential(collections.OrderedDict(
        c1=nn.Conv2d(1, 6, 5, padding=2), relu1=nn.ReLU(), s2=nn.MaxPool2d(2),
        c3=nn.Conv2d(6, 16, 5), relu3=nn.ReLU(), s4=nn.MaxPool2d(2)))
    classifier = nn.Sequential(collections.OrderedDict(
        flatten=nn.Flatten(), f5=nn.Linear(400, 120), relu5=nn.ReLU(), f6=nn.Linear(120, 84), relu6=nn.ReLU(),
        output=nn.Linear(84, 10)))
    return nn.Sequential(collections.OrderedDict(features=features, classifier=classifier))


def twin_models(seed=0):
    """A striate ``lenet5()`` and the PyTorch twin holding the same initial weights."""
    st.manual_seed(seed)
    model = lenet5()
    twin = torch_lenet5()
    twin.load_state_dict({k: torch.from_numpy(numpy.array(v)) for k, v in model.state_dict().items()})
    return model, twin


def check_parity(batch):
    """Max abs difference of the logits, and max relative difference of the parameter gradients, of the twins."""
    model, twin = twin_models()
    x, y = batch
    logits = model(st.tensor(x))
    twin_logits = twin(torch.from_numpy(x))
    F.cross_entropy(logits, st.tensor(y)).backward()
    torch.nn.functional.cross_entropy(twin_logits, torch.from_numpy(y)).backward()
    logits_diff = float(numpy.abs(logits.numpy() - twin_logits.detach().numpy()).max())
    twin_params = dict(twin.named_parameters())
    grad_diff = max(float(numpy.abs(p.grad.numpy() - twin_params[k].grad.numpy()).max()
                          / numpy.abs(twin_params[k].grad.numpy()).max())
                    for k, p in model.named_parameters())
    return logits_diff, grad_diff


# ----- what is timed ---------------------------------------------------------------------------------------
def striate_runs(batches):
    """``(train(n), infer(n))`` for striate over the batches, cycling through them."""
    model, _ = twin_models()
    opt = optim.Adam(model.parameters(), lr=LR)
    data = itertools.cycle([(st.tensor(x), st.tensor(y)) for x, y in batches])

    def train(n):
        model.train()
        for _ in range(n):
            x, y = next(data)
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()

    def infer(n):
        model.eval()
        with st.no_grad():
            for _ in range(n):
                model(next(data)[0])

    return train, infer


def torch_runs(batches):
    """``(train(n), infer(n))`` for PyTorch over the batches, cycling through them."""
    _, model = twin_models()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    data = itertools.cycle([(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches])

    def train(n):
        model.train()
        for _ in range(n):
            x, y = next(data)
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()

    def infer(n):
        model.eval()
        with torch.no_grad():
            for _ in range(n):
                model(next(data)[0])

    return train, infer


def measure(phase, batch_size, batches, steps, warmup, repeat):
    """Images/s of both libraries (median, min, max over the rounds) and their ratio for one phase and batch size."""
    s_train, s_infer = striate_runs(batches)
    t_train, t_infer = torch_runs(batches)
    runs = {"striate": s_train, "torch": t_train} if phase == "train" else {"striate": s_infer, "torch": t_infer}
    times = timed_blocks(runs, repeat, warmup, steps)
    rates = {name: [steps * batch_size / t for t in ts] for name, ts in times.items()}
    paired = [s / t for s, t in zip(rates["striate"], rates["torch"])]  # same round: similar machine load
    return {"phase": phase, "batch_size": batch_size, "steps": steps, "warmup": warmup, "repeat": repeat,
            "striate_images_per_s": spread(rates["striate"]), "torch_images_per_s": spread(rates["torch"]),
            "ratio": statistics.median(rates["striate"]) / statistics.median(rates["torch"]),
            "ratio_per_round": spread(paired)}


# ----- profile ---------------------------------------------------------------------------------------------
def profile_striate_step(batches, steps, top):
    """cProfile of ``steps`` striate training steps: the ``top`` functions by own time, as text."""
    train, _ = striate_runs(batches)
    train(3)  # warm caches and the optimizer state before profiling
    profiler = cProfile.Profile()
    profiler.enable()
    train(steps)
    profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    total = stats.total_tt
    return total / steps, text.getvalue()


# ----- accuracy --------------------------------------------------------------------------------------------
def striate_accuracy_run(data_root, have_mnist, epochs, threads):
    """Run ``striate train`` as a user would (with NumPy's BLAS on ``threads`` threads), streaming its output."""
    spec = f"mnist:{os.path.relpath(data_root)}" if have_mnist else "sample"
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "striate", "train", "--data", spec, "--epochs", str(epochs), "--out", out]
        shown = f"striate train --data {spec} --epochs {epochs}"
        print(f"\n$ {shown}", flush=True)
        start = time.perf_counter()
        subprocess.run(command, check=True, cwd=ROOT, env={**os.environ, "OPENBLAS_NUM_THREADS": str(threads)})
        wall = time.perf_counter() - start
        with open(os.path.join(out, "metrics.json")) as f:
            history = json.load(f)
    final = history[-1]
    return {"command": shown, "epochs": final["epoch"], "test_accuracy": final["val_accuracy"],
            "wall_s": wall, "train_images_per_s": [r["images_per_s"] for r in history],
            "history": history}


def torch_accuracy_run(train_x, train_y, test_x, test_y, epochs):
    """The ``striate train`` recipe in PyTorch from the same initial weights: batch 64, Adam 2e-3, cosine, seed 0."""
    from striate.tools.cli import TRAIN_DEFAULTS
    batch_size, lr, seed = TRAIN_DEFAULTS["batch_size"], TRAIN_DEFAULTS["lr"], TRAIN_DEFAULTS["seed"]
    _, model = twin_models(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    xs, ys, tx, ty = (torch.from_numpy(a) for a in (train_x, train_y, test_x, test_y))
    print(f"\nPyTorch, same recipe (batch {batch_size}, Adam {lr:g}, cosine over {epochs} epochs, seed {seed})",
          flush=True)
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.from_numpy(numpy.random.default_rng((seed, epoch)).permutation(len(xs)))
        for i in range(0, len(xs), batch_size):
            idx = order[i:i + batch_size]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xs[idx]), ys[idx]).backward()
            opt.step()
        scheduler.step()
        model.eval()
        with torch.no_grad():
            accuracy = float((model(tx).argmax(1) == ty).double().mean())
        print(f"epoch {epoch + 1}/{epochs}  test accuracy {accuracy:.2%}  {time.perf_counter() - start:.1f} s",
              flush=True)
    return {"epochs": epochs, "test_accuracy": accuracy, "wall_s": time.perf_counter() - start}


# ----- report ----------------------------------------------------------------------------------------------
def rate_text(s):
    return f"{s['median']:,.0f} ({s['min']:,.0f}–{s['max']:,.0f})"


def print_table(rows):
    header = (f"{'phase':<10} {'batch':>5}  {'striate img/s (min–max)':>26}  {'PyTorch img/s (min–max)':>26}  "
              f"{'ratio':>5}  {'per round':>11}")
    print(header)
    print("-" * len(header))
    for r in rows:
        p = r["ratio_per_round"]
        print(f"{r['phase']:<10} {r['batch_size']:>5}  {rate_text(r['striate_images_per_s']):>26}  "
              f"{rate_text(r['torch_images_per_s']):>26}  {r['ratio']:>5.2f}  {p['min']:.2f}–{p['max']:.2f}")


def markdown(payload):
    rows, command = payload["rows"], payload["command"]
    lines = ["### LeNet-5 on MNIST: striate vs PyTorch", "",
             f"`{command}` at `{payload['revision']}` — {payload['machine']}; data: {payload['data']}; "
             f"Adam lr {LR:g}, float32, data loading excluded for both; median of {rows[0]['repeat']} rounds "
             f"(min–max in brackets), the libraries timed in turns; load average afterwards "
             f"{' '.join(f'{v:.2f}' for v in payload['load_average_after'] or ())}. "
             "Ratio = striate images/s ÷ PyTorch images/s (>1: striate faster).", "",
             "| phase | batch | striate images/s | PyTorch images/s | ratio (per-round range) |",
             "|---|---:|---:|---:|---:|"]
    for r in rows:
        p = r["ratio_per_round"]
        phase = "training step" if r["phase"] == "train" else "inference (eval, no_grad)"
        lines.append(f"| {phase} | {r['batch_size']} | {rate_text(r['striate_images_per_s'])} | "
                     f"{rate_text(r['torch_images_per_s'])} | **{r['ratio']:.2f}** ({p['min']:.2f}–{p['max']:.2f}) |")
    full = payload.get("accuracy")
    if full:
        s = full["striate"]
        seconds = [r["seconds"] for r in s["history"]]
        lines += ["", f"Accuracy run: `{s['command']}` (batch 64, Adam 2e-3, cosine schedule, seed 0): "
                      f"test accuracy **{s['test_accuracy']:.2%}** after {s['epochs']} epochs, "
                      f"wall time {s['wall_s']:.0f} s including loading and per-epoch evaluation "
                      f"(training epochs {statistics.median(seconds):.1f} s median, "
                      f"{min(seconds):.1f}–{max(seconds):.1f} s)."]
        if "torch" in full:
            t = full["torch"]
            lines[-1] += (f" The same recipe in PyTorch from the same initial weights (in-process loop over "
                          f"ready tensors, no DataLoader): {t['test_accuracy']:.2%}, {t['wall_s']:.0f} s.")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA, help="directory of the MNIST IDX files (default: %(default)s)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256], help="training batch sizes")
    parser.add_argument("--inference-batch", type=int, default=256, help="inference batch size")
    parser.add_argument("--images", type=int, default=6400,
                        help="images per timed block (steps = images / batch size; default %(default)s)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps before each timed block")
    parser.add_argument("--repeat", type=int, default=7, help="rounds (the median is reported)")
    add_threads_argument(parser)
    parser.add_argument("--profile", action="store_true", help="profile striate training steps at batch 64")
    parser.add_argument("--profile-steps", type=int, default=30, help="steps profiled with --profile")
    parser.add_argument("--full", action="store_true", help="also run the accuracy run (striate train on the data)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs of the accuracy run")
    parser.add_argument("--torch-accuracy", action="store_true", help="with --full: the same recipe in PyTorch too")
    args = parser.parse_args(argv)

    threads, machine = use_threads(args.threads, torch)
    train_x, train_y, test_x, test_y, data = load_data(args.data)
    have_mnist = data.startswith("MNIST")
    print(machine)
    print(f"data: {data} ({len(train_x):,} training / {len(test_x):,} test images), pre-normalised float32; "
          "data loading excluded for both libraries")
    print(f"Adam lr {LR:g}; {args.images} images per timed block after {args.warmup} warm-up steps; "
          f"median of {args.repeat} rounds; ratio = striate images/s / PyTorch images/s (>1: striate faster)")

    logits_diff, grad_diff = check_parity(fixed_batches(train_x, train_y, 64, 1)[0])
    print(f"parity (same weights, same batch): max |logits difference| {logits_diff:.1e}, "
          f"max relative gradient difference {grad_diff:.1e}\n")

    plan = [("train", b) for b in args.batch_sizes] + [("inference", args.inference_batch)]
    rows = []
    for phase, batch_size in plan:
        steps = max(1, args.images // batch_size)
        batches = fixed_batches(train_x, train_y, batch_size, steps + args.warmup)
        rows.append(measure(phase, batch_size, batches, steps, args.warmup, args.repeat))
        r = rows[-1]
        print(f"  {phase} batch {batch_size}: striate {r['striate_images_per_s']['median']:,.0f} img/s, "
              f"PyTorch {r['torch_images_per_s']['median']:,.0f} img/s", flush=True)
    print()
    print_table(rows)
    payload = {"machine": machine, "revision": source_revision(), "data": data,
               "numpy": numpy.__version__, "torch": torch.__version__,
               "numpy_blas_threads": threads, "torch_threads": torch.get_num_threads(), "lr": LR,
               "parity": {"logits_max_abs_diff": logits_diff, "gradient_max_relative_diff": grad_diff},
               "rows": rows, "load_average_after": load_average()}

    if args.profile:
        per_step, text = profile_striate_step(fixed_batches(train_x, train_y, 64, 16), args.profile_steps, 15)
        print(f"\nprofile of {args.profile_steps} striate training steps at batch 64 "
              f"({per_step * 1e3:.1f} ms per step under cProfile), top functions by own time:")
        print(text)
        payload["profile"] = {"steps": args.profile_steps, "seconds_per_step_under_cprofile": per_step, "text": text}

    if args.full:
        payload["accuracy"] = {"striate": striate_accuracy_run(args.data, have_mnist, args.epochs, threads)}
        if args.torch_accuracy:
            payload["accuracy"]["torch"] = torch_accuracy_run(train_x, train_y, test_x, test_y, args.epochs)
        s = payload["accuracy"]["striate"]
        print(f"\naccuracy run: test accuracy {s['test_accuracy']:.2%} after {s['epochs']} epochs, "
              f"wall {s['wall_s']:.1f} s" + ("" if s["test_accuracy"] >= 0.99 or not have_mnist
                                              else "  (BELOW the 99.0% target)"))

    payload["load_average_after"] = load_average()
    path = write_results("lenet", payload)
    payload["command"] = " ".join(["python"] + [os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:])
    print(f"wrote {os.path.relpath(path)}\n\nMarkdown for BENCHMARKS.md:\n")
    print(markdown(payload))


if __name__ == "__main__":
    main()
