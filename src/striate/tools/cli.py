"""The ``striate`` command: ``train``, ``evaluate`` and ``predict`` (also ``python -m striate``)."""
import argparse
import dataclasses
import datetime
import json
import math
import os
import pathlib
import sys
import time

import numpy

_DATA_HELP = ("'sample' (the 12,000 MNIST digits shipped with striate), 'mnist:DIR' or 'fashion-mnist:DIR' "
              "(DIR holds the four standard IDX files, raw or .gz), 'cifar10:DIR' or 'cifar100:DIR' (DIR holds "
              "the binary or python version's files, or their extracted folder), or 'folder:DIR' (one sub-folder "
              "of images per class; DIR/train and DIR/val or DIR/test if present, else every 10th image of each "
              "class is held out)")
# Per-data-set normalisation (mean, std of the training pixels in [0, 1], per channel for colour);
# predict reads it back from the checkpoint. 'folder' data is measured on its training images.
_NORMALIZATION = {"sample": (0.1307, 0.3081), "mnist": (0.1307, 0.3081), "fashion-mnist": (0.2860, 0.3530),
                  "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
                  "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))}
_DATA_ON_DISK = ("mnist", "fashion-mnist", "cifar10", "cifar100", "folder")
# 'folder:DIR' images of mixed sizes are resized (shorter side) and centre-cropped to this square.
_FOLDER_SIZE = 32
_OPTIMIZERS = ("sgd", "adam", "adamw")
_SCHEDULES = ("cosine", "onecycle", "constant")
# Measured: LeNet-5 on the embedded digits with these reaches ~98.5% held out in well under a minute on 2 cores.
TRAIN_DEFAULTS = {"model": "lenet5", "data": "sample", "epochs": 8, "batch_size": 64, "optimizer": "adam",
                  "lr": 2e-3, "weight_decay": None, "schedule": "cosine", "seed": 0, "subset": None,
                  "augment": "none"}
AUGMENTATIONS = ("none", "crop", "flip", "crop+flip")


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (the reason and where to find help), exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return value


def _non_negative_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text!r}") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a non-negative finite number, got {text!r}")
    return value


# ----- data ------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class DataSpec:
    """A parsed ``--data`` value: the data set's name and, for files on disk, their directory."""

    name: str
    root: str = None

    @property
    def text(self):
        return self.name if self.root is None else f"{self.name}:{self.root}"


def parse_data_spec(text):
    """``"sample"``, or ``"NAME:DIR"`` for mnist, fashion-mnist, cifar10, cifar100, folder, as a ``DataSpec``.

    DIR is made absolute; it may itself contain colons (only the first one separates).
    """
    name, colon, root = str(text).partition(":")
    name = name.strip().lower()
    if name == "sample" and not colon:
        return DataSpec("sample")
    if name in _DATA_ON_DISK and root:
        return DataSpec(name, os.path.abspath(os.path.expanduser(root)))
    if name in _DATA_ON_DISK:
        what = {"folder": "the image folder", "cifar10": "the CIFAR-10 files",
                "cifar100": "the CIFAR-100 files"}.get(name, "the IDX files")
        raise ValueError(f"{text!r}: give the directory of {what}, e.g. '{name}:data/{name}'")
    raise ValueError(f"expected {_DATA_HELP}; got {text!r}")


def _data_arg(text):
    try:
        return parse_data_spec(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def load_split(spec, train):
    """``(images uint8 (N, H, W) or (N, H, W, C), labels int64 (N,), class names)`` of one split of ``spec``."""
    from striate.data.datasets import CIFAR10, CIFAR100, MNIST, Digits, FashionMNIST
    if spec.name == "sample":
        dataset = Digits(train=train)
    elif spec.name == "folder":
        return _load_folder_split(spec.root, train)
    else:
        readers = {"mnist": MNIST, "fashion-mnist": FashionMNIST, "cifar10": CIFAR10, "cifar100": CIFAR100}
        dataset = readers[spec.name](spec.root, train=train)
    return dataset.data, dataset.targets, list(dataset.classes)


def _folder_splits(root):
    """``(training ImageFolder, its sample indices, held-out ImageFolder, its sample indices)`` of ``root``.

    With ``root/train`` and ``root/val`` (or ``root/test``) each is one ImageFolder; otherwise
    ``root`` holds the class folders and every 10th image of each class (the 10th, 20th, ...
    in file order) is held out.
    """
    from striate.data.datasets import ImageFolder
    held_out_dir = next((os.path.join(root, n) for n in ("val", "test") if os.path.isdir(os.path.join(root, n))), None)
    if os.path.isdir(os.path.join(root, "train")) and held_out_dir is not None:
        train = ImageFolder(os.path.join(root, "train"))
        held_out = ImageFolder(held_out_dir)
        if held_out.classes != train.classes:
            raise CommandError(f"{held_out_dir} has classes {held_out.classes} but {root}/train has {train.classes}")
        return train, numpy.arange(len(train)), held_out, numpy.arange(len(held_out))
    everything = ImageFolder(root)
    targets = numpy.asarray(everything.targets)
    rank = numpy.zeros(len(targets), dtype=numpy.int64)   # each sample's position within its class
    for c in range(len(everything.classes)):
        members = numpy.flatnonzero(targets == c)
        rank[members] = numpy.arange(len(members))
    held = rank % 10 == 9
    return everything, numpy.flatnonzero(~held), everything, numpy.flatnonzero(held)


def _load_folder_split(root, train):
    """One split of an image folder as arrays, every image brought to one shape.

    The shape comes from the training images, so both splits agree: one channel if every
    training image is stored grayscale, else RGB; their size if they all share one square
    size, else 32×32 (shorter side resized, bilinear, then centre-cropped).
    """
    try:
        from PIL import Image
    except ImportError:
        raise CommandError("'folder:DIR' data needs Pillow to read images: pip install 'striate[cli]'") from None
    from striate.data.datasets.folder import image_header, load_image
    from striate.data.transforms import CenterCrop, Resize
    train_set, train_index, test_set, test_index = _folder_splits(root)
    headers = {image_header(train_set.samples[i][0]) for i in train_index}
    mode = "L" if {m for _, _, m in headers} <= {"1", "L", "LA", "I", "I;16", "F"} else "RGB"
    sizes = {(w, h) for w, h, _ in headers}
    (width, height) = next(iter(sizes))
    side = width if len(sizes) == 1 and width == height else _FOLDER_SIZE
    dataset, index = (train_set, train_index) if train else (test_set, test_index)
    if not len(index):
        raise CommandError(f"folder:{root}: no held-out images: give each class at least 10 images, or split them "
                           "into train/ and val/ sub-folders")
    resize, crop = Resize(side), CenterCrop(side)
    images = [numpy.asarray(crop(resize(Image.fromarray(load_image(dataset.samples[i][0], mode))))) for i in index]
    return numpy.stack(images), numpy.asarray(dataset.targets, dtype=numpy.int64)[index], list(dataset.classes)


def _normalization(spec, train_images):
    """``(mean, std)`` lists, one value per channel, of the pixels in [0, 1] of ``spec``'s training data."""
    if spec.name in _NORMALIZATION:
        mean, std = _NORMALIZATION[spec.name]
    else:   # measured on the training images themselves (a folder of unknown images)
        pixels = numpy.asarray(train_images, dtype=numpy.float64) / 255
        axes = tuple(range(pixels.ndim - 1)) if pixels.ndim == 4 else None
        mean, std = pixels.mean(axis=axes), pixels.std(axis=axes)
        std = numpy.where(std > 0, std, 1.0)   # a constant channel: leave it unscaled rather than divide by 0
    return [float(v) for v in numpy.atleast_1d(mean)], [float(v) for v in numpy.atleast_1d(std)]


def to_model_input(images, mean, std):
    """uint8 images ``(N, H, W)`` or ``(N, H, W, C)`` → float32 ``(N, C, H, W)``, scaled to [0, 1] and normalised.

    Training, ``evaluate`` and ``predict`` all go through this one function, so an image is
    prepared exactly as the network saw its training data.
    """
    from striate.data.transforms import Normalize
    images = numpy.asarray(images)
    nchw = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    x = numpy.ascontiguousarray(nchw, dtype=numpy.float32)
    x /= 255  # as transforms.ToArray does
    return Normalize(mean, std)(x)


def _loader(images, labels, mean, std, batch_size, shuffle=False, seed=None, augment="none"):
    """A loader of normalised ``(N, C, H, W)`` batches, the training one randomly augmented when asked."""
    from striate.data import DataLoader, TensorDataset
    dataset = TensorDataset(to_model_input(images, mean, std), numpy.asarray(labels, dtype=numpy.int64))
    if augment != "none":
        dataset = _Augmented(dataset, augment)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, seed=seed)


class _Augmented:
    """A dataset of normalised ``(C, H, W)`` images, each randomly cropped and/or mirrored when read.

    ``crop`` pads every side by an eighth of the image (4 pixels at 32×32, the classic CIFAR
    recipe) with zeros — the data mean, since the images are already normalised — and takes a
    random window of the original size; ``flip`` mirrors left–right with probability ½. The
    draws come from striate's default generator, whose state every checkpoint saves, so a
    resumed run sees the same augmented images as an uninterrupted one.
    """

    def __init__(self, dataset, augment):
        from striate.data.transforms import Compose, RandomCrop, RandomHorizontalFlip
        self.dataset = dataset
        size = dataset.arrays[0].shape[-2:]
        steps = []
        if "crop" in augment:
            steps.append(RandomCrop(size, padding=max(1, min(size) // 8)))
        if "flip" in augment:
            steps.append(RandomHorizontalFlip())
        self.transform = Compose(steps)

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        image, label = self.dataset[index]
        return self.transform(numpy.asarray(image)), label


def _model_kwargs(name, num_classes, channels, size):
    """The arguments that fit model ``name`` to images of ``channels``×``size``×``size`` and ``num_classes``."""
    import inspect

    from striate.models import model_entry
    accepted = inspect.signature(model_entry(name).builder).parameters
    candidates = {"num_classes": num_classes, "in_channels": channels, "input_size": size,
                  "in_features": channels * size * size}
    return {key: value for key, value in candidates.items() if key in accepted}


# ----- train -----------------------------------------------------------------------------------------------
def _make_optimizer(name, parameters, lr, weight_decay):
    from striate import optim
    extra = {} if weight_decay is None else {"weight_decay": weight_decay}
    if name == "sgd":
        return optim.SGD(parameters, lr=lr, momentum=0.9, **extra)
    return {"adam": optim.Adam, "adamw": optim.AdamW}[name](parameters, lr=lr, **extra)


def _make_scheduler(name, optimizer, epochs, steps_per_epoch, lr):
    from striate.optim import lr_scheduler
    if name == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "onecycle":
        return lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch)
    return None


def _default_out(model):
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = pathlib.Path("runs") / f"{model}-{stamp}"
    number = 1
    while out.exists():
        number += 1
        out = pathlib.Path("runs") / f"{model}-{stamp}-{number}"
    return out


def _resolve_train_args(args):
    """The run's settings: defaults, or when resuming the checkpoint's (only ``--epochs`` and ``--out`` may change)."""
    given = {key: getattr(args, key) for key in TRAIN_DEFAULTS if getattr(args, key) is not None}
    if "data" in given:
        given["data"] = given["data"].text
    if args.resume is None:
        return {**TRAIN_DEFAULTS, **given}, None
    from striate.tools.checkpoint import load_checkpoint
    saved = load_checkpoint(args.resume)
    recorded = saved.meta.get("args")
    if isinstance(recorded, dict):
        recorded = {"augment": "none", **recorded}   # runs from before --augment existed had none
    if not isinstance(recorded, dict) or set(TRAIN_DEFAULTS) - set(recorded):
        raise CommandError(f"{saved.path} was not written by 'striate train', so it cannot be resumed from "
                           "the command line; use striate.tools.train.fit(..., resume=...)")
    for key, value in given.items():
        if key != "epochs" and value != recorded[key]:
            flag = "--" + key.replace("_", "-")
            raise CommandError(f"cannot change {flag} when resuming: the checkpoint was trained with "
                               f"{flag} {recorded[key]}, got {value}")
    return {**recorded, **given}, saved


def cmd_train(args):
    out = sys.stdout
    import striate as st
    from striate.models import get_model
    from striate.tools.checkpoint import CheckpointWriter
    from striate.tools.train import fit

    settings, resume = _resolve_train_args(args)
    spec = parse_data_spec(settings["data"])
    if resume is not None and settings["epochs"] <= resume.epoch:
        raise CommandError(f"the checkpoint {resume.path} has already trained {resume.epoch} epochs; "
                           f"pass --epochs N with N > {resume.epoch} to train further")
    train_images, train_labels, classes = load_split(spec, train=True)
    if settings["subset"] is not None and settings["subset"] < len(train_labels):
        # A random (seeded) subset, not the first N: data files are often sorted by class.
        keep = numpy.sort(numpy.random.default_rng(settings["seed"]).permutation(len(train_labels))[:settings["subset"]])
        train_images, train_labels = train_images[keep], train_labels[keep]
    test_images, test_labels, _ = load_split(spec, train=False)
    mean, std = _normalization(spec, train_images)
    channels, size = (1 if train_images.ndim == 3 else train_images.shape[3]), train_images.shape[1]

    st.manual_seed(settings["seed"])
    kwargs = _model_kwargs(settings["model"], len(classes), channels, size)
    model = get_model(settings["model"], **kwargs)
    train_loader = _loader(train_images, train_labels, mean, std, settings["batch_size"], shuffle=True,
                           seed=settings["seed"], augment=settings["augment"])
    test_loader = _loader(test_images, test_labels, mean, std, 500)
    optimizer = _make_optimizer(settings["optimizer"], model.parameters(), settings["lr"], settings["weight_decay"])
    scheduler = _make_scheduler(settings["schedule"], optimizer, settings["epochs"], len(train_loader),
                                settings["lr"])
    if resume is not None and scheduler is not None and settings["epochs"] != resume.meta["args"]["epochs"]:
        raise CommandError(f"cannot change --epochs when resuming: the {settings['schedule']} learning-rate schedule "
                           f"was planned for {resume.meta['args']['epochs']} epochs (only a run with "
                           "--schedule constant can be extended)")

    run_dir = pathlib.Path(args.out) if args.out else (resume.path.parent if resume else _default_out(settings["model"]))
    metadata = {
        "args": settings,
        "data": {"spec": spec.text, "name": spec.name, "root": spec.root},
        "classes": classes,
        "normalize": {"mean": mean, "std": std},
        "input": {"channels": channels, "height": size, "width": size,
                  "foreground": "light on dark" if spec.name in ("sample", "mnist", "fashion-mnist") else None},
    }
    writer = CheckpointWriter(run_dir, model_name=settings["model"], model_kwargs=kwargs, metadata=metadata)
    count = sum(p.numel() for p in model.parameters())
    optimizer_text = f"{type(optimizer).__name__} lr {settings['lr']:g}" + (
        f" ({settings['schedule']} schedule)" if scheduler is not None else "")
    start = f"resuming from epoch {resume.epoch} of " if resume else ""
    print(f"{start}{settings['model']} ({count:,} parameters) on {spec.text}: {len(train_labels):,} training / "
          f"{len(test_labels):,} held-out images, {_plural(settings['epochs'], 'epoch')}, "
          f"batch {settings['batch_size']}, "
          f"{optimizer_text}, seed {settings['seed']}", file=out)
    print(f"writing checkpoints and metrics to {run_dir}/", file=out, flush=True)
    begin = time.perf_counter()
    try:
        history = fit(model, train_loader, test_loader, optimizer, settings["epochs"], scheduler=scheduler,
                      checkpoint=writer, resume=resume, progress="auto", stream=out)
    except KeyboardInterrupt:
        print(f"striate train: interrupted; every finished epoch is saved: continue with "
              f"'striate train --resume {run_dir}'", file=sys.stderr)
        return 130
    elapsed = time.perf_counter() - begin
    final = history[-1]
    correct = round(final["val_accuracy"] * len(test_labels))
    print(f"held-out accuracy {final['val_accuracy']:.2%} ({correct:,}/{len(test_labels):,}) after "
          f"{_plural(final['epoch'], 'epoch')}; trained in {elapsed:.1f} s", file=out)
    print(f"checkpoint: {run_dir / 'checkpoint.json'}\n"
          f"next: striate evaluate {run_dir}   |   striate predict {run_dir} IMAGE.png", file=out)
    from striate.viz.cli import write_run_curves
    write_run_curves(run_dir, out)
    return 0


# ----- evaluate --------------------------------------------------------------------------------------------
def _plural(count, noun):
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _load_for_inference(path):
    """``(checkpoint, model in eval mode, mean, std)`` from a checkpoint path or run directory."""
    from striate.errors import FormatError
    from striate.tools.checkpoint import load_checkpoint
    checkpoint = load_checkpoint(path)
    try:
        model = checkpoint.build_model()
    except RuntimeError as error:  # a state-dict mismatch: the weights do not fit the recorded model
        raise FormatError(f"{checkpoint.path}: the weights do not fit model "
                          f"{checkpoint.meta['model'].get('name')!r}: {str(error).splitlines()[-1].strip()}") from None
    normalize = checkpoint.meta.get("normalize") or {}
    if "mean" not in normalize or "std" not in normalize:
        raise FormatError(f"{checkpoint.path}: the checkpoint does not record its normalisation "
                          "(written by fit without 'normalize' metadata?)")
    return checkpoint, model, normalize["mean"], normalize["std"]


def _table(rows, header):
    widths = [max(len(str(row[i])) for row in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(str(cell).rjust(width) for cell, width in zip(row, widths)) for row in [header] + rows]
    return "\n".join(lines)


def cmd_evaluate(args):
    out = sys.stdout
    from striate.tools.train import evaluate

    checkpoint, model, mean, std = _load_for_inference(args.checkpoint)
    if args.data is not None:
        spec = args.data
    else:
        recorded = (checkpoint.meta.get("data") or {}).get("spec")
        if recorded is None:
            raise CommandError(f"{checkpoint.path} does not record its data set; pass --data")
        spec = parse_data_spec(recorded)
    images, labels, classes = load_split(spec, train=False)
    num_classes = len(checkpoint.meta.get("classes") or classes)
    if num_classes != len(classes):
        raise CommandError(f"the model has {num_classes} classes but {spec.text} has {len(classes)}")
    result = evaluate(model, _loader(images, labels, mean, std, args.batch_size), num_classes=num_classes)
    if args.json:
        report = {"checkpoint": str(checkpoint.path), "epoch": checkpoint.epoch, "data": spec.text,
                  "classes": classes, **result.to_dict()}
        print(json.dumps(report), file=out)
        return 0
    print(f"{checkpoint.meta['model'].get('name')} after {checkpoint.epoch} epochs, on the {spec.text} test split "
          f"({result.count:,} images)", file=out)
    print(f"accuracy {result.accuracy:.2%}   loss {result.loss:.4f}\n", file=out)
    per_class = result.confusion_matrix.sum(axis=1)
    rows = [[index, name, f"{a:.2%}" if not math.isnan(a) else "-", int(n)]
            for index, (name, a, n) in enumerate(zip(classes, result.per_class_accuracy, per_class))]
    print("per-class accuracy\n" + _table(rows, ["#", "class", "accuracy", "images"]) + "\n", file=out)
    matrix = [[f"true {i}"] + [int(v) for v in row] for i, row in enumerate(result.confusion_matrix)]
    print("confusion matrix (rows: true class, columns: predicted class)\n"
          + _table(matrix, [""] + [str(i) for i in range(num_classes)]), file=out)
    return 0


# ----- predict ---------------------------------------------------------------------------------------------
def read_image(path, channels, height, width, invert="auto"):
    """An image file as uint8 ``(H, W)`` (or ``(H, W, 3)``) the way the network saw its training images.

    Turned upright (EXIF), transparent areas made white, converted to grayscale (or RGB),
    resized to ``height``×``width``, and, for ``invert``:
    ``"yes"`` turns dark-on-light into light-on-dark, ``"no"`` leaves it, ``"auto"`` inverts
    when the image's border is mostly light (ink on paper), since MNIST-style digits are
    light strokes on a dark background.
    """
    try:
        from PIL import Image, ImageOps
    except ImportError:
        raise CommandError("striate predict needs Pillow to read images: pip install 'striate[cli]'") from None
    with Image.open(path) as image:
        image.load()
        image = ImageOps.exif_transpose(image)   # photos: upright as the camera meant
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            # Transparent areas count as white paper, as an image viewer shows them.
            rgba = image.convert("RGBA")
            image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        image = image.convert("L" if channels == 1 else "RGB")
        image = image.resize((width, height), Image.Resampling.LANCZOS)
        array = numpy.asarray(image, dtype=numpy.uint8)
    if invert == "auto":
        border = numpy.concatenate([array[0].ravel(), array[-1].ravel(), array[:, 0].ravel(), array[:, -1].ravel()])
        invert = "yes" if border.mean() > 127 else "no"
    return 255 - array if invert == "yes" else array


def _predict_pretrained(args):
    """``striate predict WEIGHTS --model NAME``: an ImageNet model with weights exported from PyTorch.

    Returns ``(source, model, batch, class names)``: the images preprocessed as the reference
    does (shorter side 256, centre crop 224, ImageNet mean and std, RGB).
    """
    import inspect

    from striate.data.imagenet import NUM_CLASSES, imagenet_classes, imagenet_transform
    from striate.models import get_model, model_entry
    accepted = inspect.signature(model_entry(args.model).builder).parameters
    classes = accepted.get("num_classes")
    channels = accepted.get("in_channels")
    if classes is None or classes.default != NUM_CLASSES or channels is None or channels.default != 3:
        raise CommandError(f"--model is for ImageNet classifiers (1000 classes, RGB input) with weights exported "
                           f"from PyTorch; {args.model} is not one. For a model you trained, pass its run directory "
                           f"without --model")
    model = get_model(args.model, weights=args.checkpoint)
    model.eval()
    try:
        from PIL import Image, ImageOps
    except ImportError:
        raise CommandError("striate predict needs Pillow to read images: pip install 'striate[cli]'") from None
    transform, arrays = imagenet_transform(), []
    for path in args.images:
        try:
            with Image.open(path) as image:
                arrays.append(transform(ImageOps.exif_transpose(image).convert("RGB")))
        except FileNotFoundError:
            raise FileNotFoundError(f"no image at {path}") from None
        except OSError as error:  # PIL.UnidentifiedImageError and friends
            raise CommandError(f"cannot read image {path}: {error}") from None
    return args.checkpoint, model, numpy.stack(arrays), imagenet_classes()


def cmd_predict(args):
    out = sys.stdout
    import striate as st
    from striate.nn import functional as F

    if args.model is not None:
        source, model, batch, classes = _predict_pretrained(args)
    else:
        source, model, batch, classes = _predict_trained(args)
    with st.no_grad():
        probabilities = F.softmax(model(st.tensor(batch)), dim=1).numpy()
    k = min(args.top_k, probabilities.shape[1])
    results = []
    for path, row in zip(args.images, probabilities):
        top = numpy.argsort(-row, kind="stable")[:k]
        results.append({"image": str(path), "top_k": [
            {"class": int(i), "name": classes[i] if classes else str(i), "probability": float(row[i])} for i in top]})
    if args.json:
        print(json.dumps({"checkpoint": str(source), "predictions": results}), file=out)
        return 0
    for result in results:
        guesses = "   ".join(f"{g['name']} {g['probability']:.2%}" for g in result["top_k"])
        print(f"{result['image']}: {guesses}", file=out)
    return 0


def _predict_trained(args):
    """``striate predict RUN``: a striate checkpoint, its images prepared as its training images were."""
    checkpoint, model, mean, std = _load_for_inference(args.checkpoint)
    shape = checkpoint.meta.get("input") or {"channels": 1, "height": 28, "width": 28}
    classes = checkpoint.meta.get("classes")
    # --invert auto is for digit models (light strokes on dark); photos (CIFAR, folders) are taken as they are.
    invert = "no" if args.invert == "auto" and not shape.get("foreground", "light on dark") else args.invert
    images = []
    for path in args.images:
        try:
            images.append(read_image(path, shape["channels"], shape["height"], shape["width"], invert))
        except FileNotFoundError:
            raise FileNotFoundError(f"no image at {path}") from None
        except OSError as error:  # PIL.UnidentifiedImageError and friends
            raise CommandError(f"cannot read image {path}: {error}") from None
    return checkpoint.path, model, to_model_input(numpy.stack(images), mean, std), classes


# ----- summary ---------------------------------------------------------------------------------------------
def _input_size(text):
    """``"1x28x28"`` → ``(1, 28, 28)``: the input's shape without the batch dimension."""
    parts = str(text).lower().replace("×", "x").replace(",", "x").split("x")
    try:
        size = tuple(int(part) for part in parts)
    except ValueError:
        size = ()
    if not size or any(d <= 0 for d in size):
        raise argparse.ArgumentTypeError(f"expected the input's shape without the batch dimension as positive "
                                         f"integers joined by 'x', such as 1x28x28 (channels x height x width); "
                                         f"got {text!r}")
    return size


def _summary_command(args):
    import inspect

    from striate.models import get_model, model_entry
    from striate.tools.summary import summary
    entry = model_entry(args.model)
    accepted = inspect.signature(entry.builder).parameters
    size = args.input
    if size is None:   # the model's own default input, where its builder or its registry entry says it
        default = {key: p.default for key, p in accepted.items() if p.default is not inspect.Parameter.empty}
        if entry.input_size is not None:
            size = entry.input_size
        elif "input_size" in default:
            size = (default.get("in_channels", 1), default["input_size"], default["input_size"])
        elif "in_features" in default:
            size = (default["in_features"],)
        else:
            raise CommandError(f"model {args.model!r} has no default input size; pass --input, e.g. --input 3x224x224")
    kwargs = {}
    if len(size) >= 2 and "in_channels" in accepted:
        kwargs["in_channels"] = size[0]
    if len(size) >= 2 and "input_size" in accepted and len(set(size[1:])) == 1:
        kwargs["input_size"] = size[1]
    if "in_features" in accepted:
        kwargs["in_features"] = math.prod(size)
    text = "x".join(str(d) for d in size)
    try:
        table = summary(get_model(args.model, **kwargs), size, batch_size=args.batch_size)
    except (ValueError, TypeError) as error:   # the model does not take this input: a usage error
        print(f"striate summary: error: {args.model} cannot take --input {text}: {_one_line(error)}", file=sys.stderr)
        return 2
    print(table)
    return 0


# ----- the parser ------------------------------------------------------------------------------------------
_MAIN_EPILOG = """\
examples:
  striate train                              train LeNet-5 on the digits shipped with striate (< 1 minute)
  striate evaluate runs/lenet5-20250101-120000
  striate predict runs/lenet5-20250101-120000 my_digit.png
  striate summary lenet5 --input 1x32x32     the layer table: shapes, parameters, mult-adds, receptive fields
  striate export runs/lenet5-20250101-120000 -o lenet5.onnx   for onnxruntime and other ONNX runtimes
  striate train --help                       all the training options

Run 'striate COMMAND --help' for the options of each command.
"""

_TRAIN_EPILOG = """\
examples:
  striate train                                      LeNet-5 on the embedded digits, defaults below
  striate train --epochs 3 --out runs/quick          a shorter run into a directory of your choice
  striate train --model mlp                          the fully connected baseline, for comparison
  striate train --data mnist:data/mnist --epochs 10  the full MNIST (60,000 images) from its IDX files
  striate train --data cifar10:data/cifar-10-batches-bin --model resnet20 --optimizer sgd --lr 0.1 \\
                --augment crop+flip --epochs 160                 CIFAR-10 with He et al.'s ResNet-20 recipe
  striate train --resume runs/quick                  continue an interrupted run where it stopped (same
                                                     results as an uninterrupted run)

The run directory gets checkpoint.json + checkpoint-epochNNNN.safetensors (weights and optimizer
state, rewritten after every epoch) and metrics.json (loss and accuracy of every epoch).
defaults: --model {model} --data {data} --epochs {epochs} --batch-size {batch_size} --optimizer {optimizer}
          --lr {lr:g} --schedule {schedule} --seed {seed} --augment {augment}
models:
{models}
"""

_EVALUATE_EPILOG = """\
examples:
  striate evaluate runs/lenet5-20250101-120000            accuracy, per-class accuracy, confusion matrix
  striate evaluate runs/lenet5-20250101-120000 --json     the same as one JSON object
  striate evaluate runs/a/checkpoint.json --data mnist:data/mnist

CHECKPOINT is a run directory, its checkpoint.json, or a checkpoint-epochNNNN.safetensors file.
By default the model is evaluated on the test split of the data it was trained on.
"""

_PREDICT_EPILOG = """\
examples:
  striate predict runs/lenet5-20250101-120000 seven.png
  striate predict runs/lenet5-20250101-120000 *.png --top-k 1

Images (PNG, JPEG, ... anything Pillow reads) are converted to grayscale, resized to 28x28 and
normalised exactly as the training images were. The training digits are light strokes on a dark
background (MNIST's convention); with --invert auto (the default) an image whose border is mostly
light, such as dark ink on white paper, is inverted first (transparent areas count as white).
For best results the digit should be centred and fill most of the image with a small margin,
as in MNIST.

Weights trained by PyTorch on ImageNet (torchvision's resnet18, vgg16, alexnet, ...), exported
with one line on the PyTorch side (no pickle is ever loaded):
  python -c "import torchvision, safetensors.torch as s; s.save_file(torchvision.models.resnet18(
             weights='IMAGENET1K_V1').state_dict(), 'resnet18.safetensors')"
  striate predict resnet18.safetensors --model resnet18 cat.jpg      prints ImageNet class names
"""

_SUMMARY_EPILOG = """\
examples:
  striate summary lenet5 --input 1x32x32     LeNet-5 as in the paper: 61,706 parameters, 423,038 mult-adds
  striate summary lenet5 --batch-size 64     the activation memory of a training batch
"""


_EXPORT_EPILOG = """\
examples:
  striate export runs/lenet5-20250101-120000 -o lenet5.onnx          ONNX, batch dimension dynamic ("N")
  striate export runs/lenet5-20250101-120000 -o lenet5.onnx --opset 18
  striate export runs/lenet5-20250101-120000 -o lenet5.safetensors  the state dict, PyTorch names and layouts

The format follows OUTPUT's extension. An .onnx file holds the model alone (the normalisation
recorded in the checkpoint is in its metadata, not in the graph); it is checked with onnxruntime,
when installed, before it is written. On the PyTorch side a .safetensors file loads with
  model.load_state_dict(safetensors.torch.load_file("lenet5.safetensors"))
ONNX export needs the onnx package: pip install 'striate[export]'.
"""


def _export_input_size(checkpoint, name):
    """The input shape (no batch) of a checkpoint's model: as trained, else the model's registered default."""
    import inspect

    from striate.models import model_entry
    seen = checkpoint.meta.get("input") or {}
    if all(isinstance(seen.get(k), int) for k in ("channels", "height", "width")):
        return (seen["channels"], seen["height"], seen["width"])
    entry = model_entry(name)
    if entry.input_size is not None:
        return tuple(entry.input_size)
    kwargs = {**{k: p.default for k, p in inspect.signature(entry.builder).parameters.items()
                 if p.default is not inspect.Parameter.empty},
              **((checkpoint.meta.get("model") or {}).get("kwargs") or {})}
    if "input_size" in kwargs:
        return (kwargs.get("in_channels", 1), kwargs["input_size"], kwargs["input_size"])
    if "in_features" in kwargs:
        return (kwargs["in_features"],)
    raise CommandError(f"the checkpoint does not record the input shape of model {name!r}; pass --input, "
                       f"e.g. --input 3x32x32")


def _export_command(args):
    from striate.errors import FormatError
    from striate.tools import export
    from striate.tools.checkpoint import load_checkpoint
    output = pathlib.Path(args.output)
    kind = output.suffix.lower()
    if kind not in (".onnx", ".safetensors"):
        raise CommandError(f"cannot tell the format from the output name {str(output)!r}: end it with .onnx "
                           f"(ONNX) or .safetensors (a PyTorch state dict)")
    checkpoint = load_checkpoint(args.checkpoint)
    try:
        model = checkpoint.build_model()
    except RuntimeError as error:  # a state-dict mismatch: the weights do not fit the recorded model
        raise FormatError(f"{checkpoint.path}: the weights do not fit model "
                          f"{checkpoint.meta['model'].get('name')!r}: {str(error).splitlines()[-1].strip()}") from None
    name = checkpoint.meta["model"]["name"]
    parameters = sum(p.numel() for p in model.parameters())
    if kind == ".safetensors":
        export.to_safetensors(model, output, metadata={"model": name})
        print(f"wrote {output}: the state dict of {name} ({parameters:,} parameters), PyTorch names and layouts")
        return 0
    size = args.input or _export_input_size(checkpoint, name)
    metadata = {"model": name, "model_kwargs": json.dumps((checkpoint.meta.get("model") or {}).get("kwargs") or {})}
    for key in ("normalize", "classes", "input"):
        if checkpoint.meta.get(key) is not None:
            metadata[key] = json.dumps(checkpoint.meta[key])
    try:
        proto = export.to_onnx(model, size, output, opset=args.opset, metadata=metadata)
    except ModuleNotFoundError as error:
        raise CommandError(str(error)) from None
    try:
        import onnxruntime  # noqa: F401
        checked = "; checked against striate with onnxruntime"
    except ImportError:
        checked = ""
    shape = lambda value: "[" + ", ".join(d.dim_param or str(d.dim_value)  # noqa: E731
                                          for d in value.type.tensor_type.shape.dim) + "]"
    print(f"wrote {output}: {name} ({parameters:,} parameters) as ONNX opset {args.opset}, input "
          f"{shape(proto.graph.input[0])} -> output {shape(proto.graph.output[0])}{checked}")
    return 0

def build_parser():
    """The ``striate`` argument parser with its commands (train, evaluate, predict, summary, export, show, ...)."""
    from striate.models import list_models, model_entry

    formatter = argparse.RawDescriptionHelpFormatter
    parser = _Parser(prog="striate", formatter_class=formatter, epilog=_MAIN_EPILOG,
                     description="striate: convolutional neural networks from first principles, on NumPy. "
                                 "Train a CNN, evaluate it, and use it on your own images.")
    parser.add_argument("--version", action="version", version=f"striate {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    models_text = "\n".join(f"  {name:<8} {model_entry(name).description}" for name in list_models())
    train = commands.add_parser(
        "train", help="train a model and save checkpoints and metrics", formatter_class=formatter,
        description="Train a model, printing loss and accuracy each epoch and saving a checkpoint after each one.",
        epilog=_TRAIN_EPILOG.format(models=models_text, **TRAIN_DEFAULTS))
    train.add_argument("--model", choices=list_models(), help="the architecture (default: lenet5)")
    train.add_argument("--data", type=_data_arg, metavar="DATA", help=f"the data set: {_DATA_HELP} (default: sample)")
    train.add_argument("--epochs", type=_positive_int, metavar="N",
                       help="total epochs (passes over the training images); when resuming, train up to epoch N")
    train.add_argument("--batch-size", type=_positive_int, metavar="B", help="images per update step (default: 64)")
    train.add_argument("--optimizer", choices=_OPTIMIZERS,
                       help="adam, adamw, or sgd (with momentum 0.9) (default: adam)")
    train.add_argument("--lr", type=_positive_float, metavar="LR", help="learning rate (default: 0.002)")
    train.add_argument("--weight-decay", type=_non_negative_float, metavar="WD",
                       help="weight decay (default: the optimizer's own, 0 for adam/sgd, 0.01 for adamw)")
    train.add_argument("--schedule", choices=_SCHEDULES,
                       help="learning-rate schedule: cosine decay over the epochs, one-cycle, or constant "
                            "(default: cosine)")
    train.add_argument("--seed", type=_non_negative_int, metavar="S",
                       help="random seed for initialisation and shuffling; the same seed gives the same "
                            "model (default: 0)")
    train.add_argument("--augment", choices=AUGMENTATIONS, metavar="{none,crop,flip,crop+flip}",
                       help="random changes to each training image every epoch: 'crop' pads by 1/8 of the side "
                            "and crops back at a random offset, 'flip' mirrors left-right half the time; "
                            "'crop+flip' is the classic CIFAR recipe (do not flip digits) (default: none)")
    train.add_argument("--subset", type=_positive_int, metavar="N",
                       help="train on a random N of the training images only, for a quick try (default: all)")
    train.add_argument("--out", metavar="DIR",
                       help="run directory for checkpoints and metrics.json (default: runs/MODEL-TIMESTAMP, "
                            "or the checkpoint's directory with --resume)")
    train.add_argument("--resume", metavar="CHECKPOINT",
                       help="continue a run from a run directory or checkpoint file, with its settings")
    train.set_defaults(handler=cmd_train)

    evaluate = commands.add_parser(
        "evaluate", help="accuracy, per-class accuracy and confusion matrix of a checkpoint",
        formatter_class=formatter, epilog=_EVALUATE_EPILOG,
        description="Measure a trained model on held-out images: accuracy, accuracy per class, and the "
                    "confusion matrix (which classes it mistakes for which).")
    evaluate.add_argument("checkpoint", metavar="CHECKPOINT", help="a run directory or checkpoint file")
    evaluate.add_argument("--data", type=_data_arg, metavar="DATA",
                          help=f"evaluate on the test split of: {_DATA_HELP} (default: the training data's)")
    evaluate.add_argument("--batch-size", type=_positive_int, default=500, metavar="B",
                          help="images per forward pass (default: 500)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    evaluate.set_defaults(handler=cmd_evaluate)

    predict = commands.add_parser(
        "predict", help="classify image files with a trained model", formatter_class=formatter,
        epilog=_PREDICT_EPILOG,
        description="Classify image files: print the K most likely classes of each, with their probabilities.")
    predict.add_argument("checkpoint", metavar="CHECKPOINT",
                         help="a run directory or checkpoint file; with --model, a .safetensors state dict")
    predict.add_argument("--model", choices=list_models(), metavar="NAME", default=None,
                         help="an ImageNet classifier (alexnet, vgg*, resnet18/34/50) whose weights CHECKPOINT holds, "
                              "exported from PyTorch: images are resized to 256, centre-cropped to 224 and "
                              "normalised as torchvision does, and the 1000 ImageNet class names are printed")
    predict.add_argument("images", metavar="IMAGE", nargs="+", help="image files to classify")
    predict.add_argument("--top-k", type=_positive_int, default=3, metavar="K",
                         help="how many classes to show per image (default: 3)")
    predict.add_argument("--invert", choices=("auto", "yes", "no"), default="auto",
                         help="invert dark-on-light images to light-on-dark like the training digits "
                              "(default: auto, decided from the image border)")
    predict.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    predict.set_defaults(handler=cmd_predict)

    summary = commands.add_parser(
        "summary", help="the layer table of a model: shapes, parameters, mult-adds, receptive fields",
        formatter_class=formatter, epilog=_SUMMARY_EPILOG,
        description="Run a model once on a random input and print its layers: input and output shapes, "
                    "parameters with their arithmetic, mult-adds, receptive field, jump and start, memory.")
    summary.add_argument("model", choices=list_models(), metavar="MODEL", help="the architecture: "
                         + ", ".join(list_models()))
    summary.add_argument("--input", type=_input_size, metavar="CxHxW",
                         help="the input's shape without the batch dimension (default: the model's own)")
    summary.add_argument("--batch-size", type=_positive_int, default=1, metavar="B",
                         help="the batch dimension (default: 1)")
    summary.set_defaults(handler=_summary_command)

    export = commands.add_parser(
        "export", help="write a checkpoint's model as ONNX or as a PyTorch-ready safetensors state dict",
        formatter_class=formatter, epilog=_EXPORT_EPILOG,
        description="Export a trained model: an ONNX graph (for onnxruntime, TensorRT, OpenVINO, browsers, ...) "
                    "that computes what striate computes, or the state dict as safetensors for PyTorch.")
    export.add_argument("checkpoint", metavar="CHECKPOINT", help="a run directory or checkpoint file")
    export.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                        help="the file to write: NAME.onnx or NAME.safetensors")
    export.add_argument("--opset", type=_positive_int, default=17, metavar="N",
                        help="the ONNX opset to target (default: 17)")
    export.add_argument("--input", type=_input_size, metavar="CxHxW",
                        help="the input's shape without the batch dimension (default: as trained)")
    export.set_defaults(handler=_export_command)

    from striate.viz.cli import add_commands as add_viz_commands   # show, explore
    add_viz_commands(commands, formatter)
    return parser


def _version():
    from striate import __version__
    return __version__


def _one_line(error):
    text = " ".join(part.strip() for part in str(error).splitlines() if part.strip())
    return text or type(error).__name__


def main(argv=None):
    """Run the ``striate`` command with ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    Failures the user can fix (bad arguments, missing or corrupt files, a diverged run) print
    one line, ``striate: error: ...``, to stderr and return a non-zero status, not a traceback.
    """
    from striate.errors import FormatError
    from striate.tools.train import TrainingDiverged

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.handler(args)
    except BrokenPipeError:
        # The reader of our output went away (e.g. '| head'); say nothing more. (Before OSError,
        # which it is a kind of.)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except FileNotFoundError as error:
        message = error.strerror and error.filename and f"{error.strerror}: {error.filename}"
        print(f"striate {args.command}: error: {message or _one_line(error)}", file=sys.stderr)
    except OSError as error:   # permissions, a directory where a file should be, a full disk, ...
        print(f"striate {args.command}: error: {_one_line(error)}", file=sys.stderr)
    except (CommandError, FormatError, ValueError, TrainingDiverged) as error:
        print(f"striate {args.command}: error: {_one_line(error)}", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"striate {args.command}: interrupted", file=sys.stderr)
        return 130
    return 1


__all__ = ["main", "build_parser", "parse_data_spec", "to_model_input", "read_image", "TRAIN_DEFAULTS"]
