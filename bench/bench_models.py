"""Time the big models in striate against the same models in PyTorch: ResNet-18 and VGG-16 inference, a ResNet-20 step.

Run from the repository root:

    python bench/bench_models.py                    # all three workloads, median of 5 rounds
    python bench/bench_models.py --repeat 3         # quicker, noisier
    python bench/bench_models.py --only resnet20    # the workloads whose name contains this text
    python bench/bench_models.py --threads 1        # both libraries on one thread

Workloads (issue 5): ResNet-18 and VGG-16 inference at batch 8 on 3×224×224 images (eval
mode, under ``no_grad``), and a ResNet-20 (the CIFAR network, option-A shortcuts) training
step at batch 128 on 3×32×32 images: ``zero_grad``, forward, ``cross_entropy``, ``backward``,
SGD step (lr 0.1, momentum 0.9, weight decay 5e-4, as in He et al. 2016). Both libraries run
the same architecture — striate's ``striate.models`` builder and a ``torch.nn`` twin written
here with torchvision's module names (torchvision is not required), into which striate's
initial weights are loaded by name — on the same float32 arrays, with the same number of
threads. Before timing, the logits of the two are compared (they agree to ~1e-6 relative).

Each figure is the median over ``--repeat`` rounds; in each round both libraries run
``--warmup`` untimed iterations and then the workload's timed ones, in turns (see
``common.timed_blocks``). The ratio is striate images/s ÷ PyTorch images/s: above 1 striate
is faster, below 1 PyTorch is. Results are printed as a table and as a Markdown block for
BENCHMARKS.md, and written to ``bench/results/models-<time>.json``.
"""
import argparse
import dataclasses
import itertools
import os
import statistics
import sys

import numpy
import torch
import torch.nn as tnn

import striate as st
import striate.nn.functional as F
from striate import models, optim

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (add_threads_argument, load_average, source_revision, spread, timed_blocks, use_threads,  # noqa: E402
                    write_results)

SGD = {"lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4}


@dataclasses.dataclass(frozen=True)
class Workload:
    name: str           # the model's name in striate.models
    phase: str          # "inference" or "train"
    batch_size: int
    size: int           # height and width of the square input
    steps: int          # iterations per timed block
    batches: int = 2    # distinct input batches, cycled

    @property
    def label(self):
        return f"{self.name} {self.phase}"


WORKLOADS = [
    Workload("resnet18", "inference", 8, 224, steps=2),
    Workload("vgg16", "inference", 8, 224, steps=1),
    Workload("resnet20", "train", 128, 32, steps=3),
]


# ----- the PyTorch twins (torchvision's names, so striate's state dict loads by name) -------------------------
class TorchBasicBlock(tnn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = tnn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(planes)
        self.relu = tnn.ReLU(inplace=True)
        self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class TorchZeroPad(tnn.Module):
    """Option A: subsample by 2 and pad the new channels with zeros, half before and half after."""

    def __init__(self, pad):
        super().__init__()
        self.pad = pad

    def forward(self, x):
        return torch.nn.functional.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))


class TorchResNet(tnn.Module):
    """torchvision's ResNet with BasicBlocks (``stages`` blocks per stage), or the CIFAR one when ``cifar``."""

    def __init__(self, stages, num_classes, cifar=False):
        super().__init__()
        widths = (16, 32, 64) if cifar else (64, 128, 256, 512)
        self.inplanes = widths[0]
        if cifar:
            self.conv1 = tnn.Conv2d(3, 16, 3, 1, 1, bias=False)
        else:
            self.conv1 = tnn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = tnn.BatchNorm2d(widths[0])
        self.relu = tnn.ReLU(inplace=True)
        self.maxpool = tnn.Identity() if cifar else tnn.MaxPool2d(3, 2, 1)
        for index, (width, blocks) in enumerate(zip(widths, stages), start=1):
            stride = 1 if index == 1 else 2
            downsample = None
            if stride != 1:
                downsample = TorchZeroPad(width - self.inplanes) if cifar else tnn.Sequential(
                    tnn.Conv2d(self.inplanes, width, 1, stride, bias=False), tnn.BatchNorm2d(width))
            layers = [TorchBasicBlock(self.inplanes, width, stride, downsample)]
            layers += [TorchBasicBlock(width, width) for _ in range(1, blocks)]
            self.inplanes = width
            setattr(self, f"layer{index}", tnn.Sequential(*layers))
        self.stages = len(stages)
        self.avgpool = tnn.AdaptiveAvgPool2d(1)
        self.fc = tnn.Linear(widths[-1], num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for index in range(1, self.stages + 1):
            x = getattr(self, f"layer{index}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


class TorchVGG16(tnn.Module):
    def __init__(self, num_classes):
        super().__init__()
        layers, channels = [], 3
        for value in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
            if value == "M":
                layers.append(tnn.MaxPool2d(2, 2))
            else:
                layers += [tnn.Conv2d(channels, value, 3, padding=1), tnn.ReLU(inplace=True)]
                channels = value
        self.features = tnn.Sequential(*layers)
        self.avgpool = tnn.AdaptiveAvgPool2d((7, 7))
        self.classifier = tnn.Sequential(
            tnn.Linear(512 * 7 * 7, 4096), tnn.ReLU(inplace=True), tnn.Dropout(),
            tnn.Linear(4096, 4096), tnn.ReLU(inplace=True), tnn.Dropout(), tnn.Linear(4096, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def twin_models(name, seed=0):
    """striate's ``models.<name>()`` (seeded initialisation) and its PyTorch twin holding the same weights."""
    st.manual_seed(seed)
    model = getattr(models, name)()
    with torch.device("meta"):
        twin = {"resnet18": lambda: TorchResNet((2, 2, 2, 2), 1000),
                "vgg16": lambda: TorchVGG16(1000),
                "resnet20": lambda: TorchResNet((3, 3, 3), 10, cifar=True)}[name]()
    twin.load_state_dict({k: torch.from_numpy(numpy.array(v)) for k, v in model.state_dict().items()}, assign=True)
    return model, twin


def make_batches(workload, seed=0):
    """``workload.batches`` pairs of float32 images ``(B, 3, S, S)`` and int64 labels."""
    rng = numpy.random.default_rng(seed)
    classes = 10 if workload.name == "resnet20" else 1000
    shape = (workload.batch_size, 3, workload.size, workload.size)
    return [(rng.standard_normal(shape, dtype=numpy.float32), rng.integers(0, classes, workload.batch_size))
            for _ in range(workload.batches)]


def check_parity(model, twin, batch):
    """Max relative difference of the two models' logits in eval mode on one batch."""
    model.eval()
    twin.eval()
    x = batch[0][:2]
    with st.no_grad():
        logits = model(st.tensor(x)).numpy()
    with torch.no_grad():
        expected = twin(torch.from_numpy(x)).numpy()
    return float(numpy.abs(logits - expected).max() / numpy.abs(expected).max())


# ----- what is timed ---------------------------------------------------------------------------------------
def striate_run(model, workload, batches):
    """``fn(n)``: ``n`` inference batches or training steps of striate on the batches, cycling through them."""
    data = itertools.cycle([(st.tensor(x), st.tensor(y)) for x, y in batches])
    if workload.phase == "inference":
        def infer(n):
            model.eval()
            with st.no_grad():
                for _ in range(n):
                    model(next(data)[0])
        return infer
    opt = optim.SGD(model.parameters(), **SGD)

    def train(n):
        model.train()
        for _ in range(n):
            x, y = next(data)
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    return train


def torch_run(model, workload, batches):
    """``fn(n)``: the same for PyTorch."""
    data = itertools.cycle([(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches])
    if workload.phase == "inference":
        def infer(n):
            model.eval()
            with torch.no_grad():
                for _ in range(n):
                    model(next(data)[0])
        return infer
    opt = torch.optim.SGD(model.parameters(), **SGD)

    def train(n):
        model.train()
        for _ in range(n):
            x, y = next(data)
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    return train


def measure(workload, repeat, warmup):
    """Images/s of both libraries (median, min, max over the rounds), their ratio, and the logits' parity."""
    model, twin = twin_models(workload.name)
    batches = make_batches(workload)
    parity = check_parity(model, twin, batches[0])
    runs = {"striate": striate_run(model, workload, batches), "torch": torch_run(twin, workload, batches)}
    times = timed_blocks(runs, repeat, warmup, workload.steps)
    rates = {name: [workload.steps * workload.batch_size / t for t in ts] for name, ts in times.items()}
    paired = [s / t for s, t in zip(rates["striate"], rates["torch"])]  # same round: similar machine load
    return {**dataclasses.asdict(workload), "label": workload.label, "repeat": repeat, "warmup": warmup,
            "parameters": sum(p.numel() for p in model.parameters()), "logits_max_relative_diff": parity,
            "striate_images_per_s": spread(rates["striate"]), "torch_images_per_s": spread(rates["torch"]),
            "striate_seconds_per_batch": statistics.median(times["striate"]) / workload.steps,
            "torch_seconds_per_batch": statistics.median(times["torch"]) / workload.steps,
            "ratio": statistics.median(rates["striate"]) / statistics.median(rates["torch"]),
            "ratio_per_round": spread(paired)}


# ----- report ----------------------------------------------------------------------------------------------
def rate_text(s):
    return f"{s['median']:,.1f} ({s['min']:,.1f}–{s['max']:,.1f})"


def describe(r):
    what = "inference (eval, no_grad)" if r["phase"] == "inference" else "training step (SGD momentum)"
    return f"{r['name']} {what}", f"{r['batch_size']} × 3×{r['size']}×{r['size']}"


def print_table(rows):
    header = (f"{'workload':<44} {'input':>16}  {'striate img/s (min–max)':>24}  {'PyTorch img/s (min–max)':>24}  "
              f"{'ratio':>5}  {'per round':>11}")
    print(header)
    print("-" * len(header))
    for r in rows:
        p = r["ratio_per_round"]
        name, shape = describe(r)
        print(f"{name:<44} {shape:>16}  {rate_text(r['striate_images_per_s']):>24}  "
              f"{rate_text(r['torch_images_per_s']):>24}  {r['ratio']:>5.2f}  {p['min']:.2f}–{p['max']:.2f}")


def markdown(payload):
    rows, command = payload["rows"], payload["command"]
    lines = ["### ResNet-18, VGG-16 and ResNet-20: striate vs PyTorch", "",
             f"`{command}` at `{payload['revision']}` — {payload['machine']}; float32, random inputs, the same "
             f"weights in both (striate's initialisation loaded into a torch.nn twin by name); median of "
             f"{rows[0]['repeat']} rounds (min–max in brackets), the libraries timed in turns; load average "
             f"afterwards {' '.join(f'{v:.2f}' for v in payload['load_average_after'] or ())}. "
             "Ratio = striate images/s ÷ PyTorch images/s (>1: striate faster).", "",
             "| workload | input | striate images/s | PyTorch images/s | ratio (per-round range) |",
             "|---|---|---:|---:|---:|"]
    for r in rows:
        p = r["ratio_per_round"]
        name, shape = describe(r)
        lines.append(f"| {name} | {shape} | {rate_text(r['striate_images_per_s'])} | "
                     f"{rate_text(r['torch_images_per_s'])} | **{r['ratio']:.2f}** ({p['min']:.2f}–{p['max']:.2f}) |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds (the median is reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations before each timed block")
    parser.add_argument("--only", default="", help="run only the workloads whose label contains this text")
    add_threads_argument(parser)
    args = parser.parse_args(argv)

    threads, machine = use_threads(args.threads, torch)
    print(machine)
    print(f"median of {args.repeat} rounds, {args.warmup} warm-up iteration(s) before each timed block; "
          "ratio = striate images/s / PyTorch images/s (>1: striate faster)\n")
    rows = []
    for workload in [w for w in WORKLOADS if args.only in w.label]:
        rows.append(measure(workload, args.repeat, args.warmup))
        r = rows[-1]
        print(f"  {workload.label} batch {workload.batch_size}: striate {r['striate_images_per_s']['median']:,.1f} "
              f"img/s, PyTorch {r['torch_images_per_s']['median']:,.1f} img/s "
              f"(logits agree to {r['logits_max_relative_diff']:.1e} relative)", flush=True)
    if not rows:
        parser.error(f"no workload matches --only {args.only!r}; workloads: {[w.label for w in WORKLOADS]}")
    print()
    print_table(rows)
    payload = {"machine": machine, "revision": source_revision(), "numpy": numpy.__version__,
               "torch": torch.__version__, "numpy_blas_threads": threads, "torch_threads": torch.get_num_threads(),
               "sgd": SGD, "rows": rows, "load_average_after": load_average()}
    path = write_results("models", payload)
    payload["command"] = " ".join(["python"] + [os.path.relpath(sys.argv[0], os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))] + sys.argv[1:])
    print(f"wrote {os.path.relpath(path)}\n\nMarkdown for BENCHMARKS.md:\n")
    print(markdown(payload))


if __name__ == "__main__":
    main()
