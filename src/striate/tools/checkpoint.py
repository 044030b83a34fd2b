"""Training checkpoints: safetensors weights plus a JSON description, written so a crash never breaks them.

A run directory holds::

    checkpoint-epoch0007.safetensors   model weights (``model.*``) and optimizer arrays (``optimizer.*``)
    checkpoint.json                    everything else, naming that weights file and its SHA-256
    metrics.json                       one record per epoch

Each epoch writes a NEW weights file first, then atomically replaces ``checkpoint.json``
to point at it, then deletes the previous weights file. A crash at any moment therefore
leaves a ``checkpoint.json`` whose weights file exists and matches its hash: the previous
epoch's pair until the JSON is replaced, the new one after. The weights file also carries
the same description in its safetensors metadata, so it can be used on its own.
"""
import dataclasses
import hashlib
import json
import math
import numbers
import pathlib
import re

import numpy

from striate import random as st_random
from striate.autograd.tensor import Tensor
from striate.errors import FormatError
from striate.io import atomic_write
from striate.serialization import load, load_metadata, save

CHECKPOINT_JSON = "checkpoint.json"
METRICS_JSON = "metrics.json"
FORMAT = "striate-checkpoint"
VERSION = 1
_WEIGHTS_PATTERN = re.compile(r"checkpoint-epoch\d+(-\d+)?\.safetensors\Z")
# Temporary files of striate.io.atomic_open for this directory's files: a save killed outright
# (SIGKILL, power cut) cannot remove its own, so the next save does.
_STALE_TEMP_PATTERN = re.compile(r"\.(checkpoint-epoch\d+(-\d+)?\.safetensors|checkpoint\.json|metrics\.json)"
                                 r"\.[0-9a-f]{16}\.tmp\Z")
_METADATA_KEY = "striate.checkpoint"


def _json_bytes(value):
    return (json.dumps(value, indent=2, allow_nan=False) + "\n").encode("utf-8")


def _plain(value):
    """``value`` with NumPy scalars and tuples turned into JSON types (arrays are not expected here)."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, numpy.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None   # strict JSON has no NaN or Infinity
    if isinstance(value, numpy.ndarray):
        return value.tolist()
    return value


def _split_optimizer_state(optimizer):
    """The optimizer's state dict split into arrays (for safetensors) and everything else (for JSON)."""
    packed = optimizer.state_dict()
    arrays, scalars = {}, {}
    for index, entry in packed["state"].items():
        for name, value in entry.items():
            if isinstance(value, Tensor):
                value = value.data
            if isinstance(value, numpy.ndarray):
                arrays[f"optimizer.state.{index}.{name}"] = value
            else:
                scalars.setdefault(str(index), {})[name] = _plain(value)
    return arrays, {"class": type(optimizer).__name__, "state": scalars,
                    "param_groups": _plain(packed["param_groups"])}


def write_metrics(directory, history):
    """Write ``directory/metrics.json`` (a list of per-epoch records) atomically."""
    atomic_write(pathlib.Path(directory) / METRICS_JSON, _json_bytes(_plain(history)))


class CheckpointWriter:
    """Saves a run's checkpoint into ``directory`` each epoch (see the module docstring for the layout).

    Args:
        directory: the run directory (created if missing).
        model_name: the registry name of the model (``striate.models.get_model``), so the
            checkpoint can rebuild it; None when the model is not a registered one.
        model_kwargs: the arguments the model was built with.
        metadata: extra JSON-serialisable facts to record, e.g. the data set, the
            normalisation and the class names (``striate predict`` reads them back).
    """

    def __init__(self, directory, model_name=None, model_kwargs=None, metadata=None):
        self.directory = pathlib.Path(directory)
        self.model_name = model_name
        self.model_kwargs = dict(model_kwargs or {})
        self.metadata = dict(metadata or {})

    def save(self, *, model, optimizer, epoch, scheduler=None, scheduler_interval=None, loader=None, history=()):
        """Write the checkpoint after ``epoch`` epochs, and ``metrics.json``; returns the JSON's path."""
        self.directory.mkdir(parents=True, exist_ok=True)
        tensors = {f"model.{key}": value for key, value in model.state_dict().items()}
        optimizer_arrays, optimizer_meta = _split_optimizer_state(optimizer)
        tensors.update(optimizer_arrays)
        history = _plain(list(history))
        description = {
            "format": FORMAT, "version": VERSION, "epoch": epoch,
            "model": {"name": self.model_name, "kwargs": _plain(self.model_kwargs)},
            "optimizer": optimizer_meta,
            "scheduler": None if scheduler is None else {"class": type(scheduler).__name__,
                                                         "interval": scheduler_interval,
                                                         "state": _plain(scheduler.state_dict())},
            "loader": None if loader is None else {"epoch": getattr(loader, "epoch", None),
                                                   "seed": getattr(loader, "seed", None)},
            "rng_state": _plain(st_random.get_rng_state()),
            "metrics": history[-1] if history else None,
            "history": history,
            **_plain(self.metadata),
        }
        weights_name = f"checkpoint-epoch{epoch:04d}.safetensors"
        copy = 0
        while (self.directory / weights_name).exists():
            # Never overwrite a weights file: the current checkpoint.json may point at it.
            copy += 1
            weights_name = f"checkpoint-epoch{epoch:04d}-{copy}.safetensors"
        weights_path = self.directory / weights_name
        save(tensors, weights_path, metadata={_METADATA_KEY: json.dumps(description)})
        pointer = {**description, "weights": weights_name, "sha256": _sha256(weights_path)}
        json_path = self.directory / CHECKPOINT_JSON
        atomic_write(json_path, _json_bytes(pointer))
        write_metrics(self.directory, history)
        # Only now is the previous weights file unreferenced; temporary files left by a killed save go too.
        for old in self.directory.iterdir():
            if (old.name != weights_name and _WEIGHTS_PATTERN.match(old.name)) or _STALE_TEMP_PATTERN.match(old.name):
                old.unlink(missing_ok=True)
        return json_path


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclasses.dataclass
class Checkpoint:
    """A checkpoint read back: its description (the JSON) and its arrays.

    Attributes:
        path: what was read: the ``checkpoint.json`` or the weights file.
        weights_path: the safetensors file holding the arrays.
        meta: the JSON description (model, epoch, optimizer, scheduler, loader, rng_state,
            metrics, history, and the writer's extra metadata such as ``data`` and ``normalize``).
        tensors: every array in the weights file, by name (``model.*``, ``optimizer.*``).
    """

    path: pathlib.Path
    weights_path: pathlib.Path
    meta: dict
    tensors: dict

    @property
    def epoch(self):
        return self.meta["epoch"]

    @property
    def history(self):
        return self.meta.get("history") or []

    @property
    def model_state(self):
        """The model's state dict (names without the ``model.`` prefix)."""
        return {key[len("model."):]: value for key, value in self.tensors.items() if key.startswith("model.")}

    def optimizer_state_dict(self):
        """The optimizer's state dict, as ``Optimizer.load_state_dict`` takes it."""
        saved = self.meta["optimizer"]
        state = {int(index): dict(entry) for index, entry in saved.get("state", {}).items()}
        for key, value in self.tensors.items():
            if key.startswith("optimizer.state."):
                index, _, name = key[len("optimizer.state."):].partition(".")
                if not _INDEX.match(index) or not name:
                    raise FormatError(f"{self.weights_path}: tensor name {key!r:.200} is not "
                                      "'optimizer.state.<parameter index>.<name>'")
                state.setdefault(int(index), {})[name] = value
        return {"state": state, "param_groups": saved["param_groups"]}

    def build_model(self):
        """The model rebuilt from the registry with its saved arguments and weights, in eval mode."""
        from striate.models import get_model
        spec = self.meta.get("model") or {}
        if not spec.get("name"):
            raise ValueError(f"{self.path}: the checkpoint does not name a registered model, so it cannot "
                             "rebuild it; build the model yourself and load checkpoint.model_state")
        kwargs = spec.get("kwargs") or {}
        state = self.model_state
        _check_model_arguments(kwargs, state, self.path)
        try:
            model = get_model(spec["name"], **kwargs)
        except (TypeError, ValueError) as error:
            raise FormatError(f"{self.path}: cannot rebuild model {spec['name']!r} from the checkpoint: {error}") from None
        model.load_state_dict(state)
        return model.eval()


# Size arguments up to this are accepted whatever the weights hold (input sizes such as 224 or
# 4,096-wide layers need not appear as a tensor dimension).
_ARGUMENT_FLOOR = 4096


def _check_model_arguments(kwargs, state, where):
    """Refuse integer model arguments larger than the weights could justify, before anything is built.

    ``checkpoint.json`` is data from whoever wrote it: ``num_classes=10**9`` would make the
    builder allocate gigabytes before the strict load could notice the mismatch. A genuine size
    argument (classes, channels, widths, input sizes) is a dimension of some weight or small,
    so every integer — also inside lists — must be at most the largest dimension of any tensor
    in the weights file, or ``_ARGUMENT_FLOOR`` where that is larger.
    """
    limit = max([_ARGUMENT_FLOOR] + [max(value.shape, default=0) for value in state.values()])

    def integers(value):
        if isinstance(value, bool):
            return
        if isinstance(value, int):
            yield value
        elif isinstance(value, (list, tuple)):
            for item in value:
                yield from integers(item)
        elif isinstance(value, dict):
            for item in value.values():
                yield from integers(item)

    for key, value in kwargs.items():
        for number in integers(value):
            if number > limit:
                raise FormatError(f"{where}: model argument {key}={number:,} is larger than the weights could "
                                  f"justify (at most {limit:,}: the largest tensor dimension in the file, or "
                                  f"{_ARGUMENT_FLOOR:,}); refusing to build the model")


def resolve(path):
    """The file to read for ``path``: a run directory means its ``checkpoint.json``."""
    path = pathlib.Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_JSON
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return path


def parse_description(data, where="<bytes>"):
    """The checked description dict of a checkpoint from its JSON text or bytes (``checkpoint.json``'s content).

    Raises:
        FormatError: not JSON (or duplicate keys, or nesting too deep), or not a well-formed
            striate checkpoint description.
    """
    meta = _parse_json(data, where)
    _check_description(meta, where)
    return meta


_INDEX = re.compile(r"[0-9]+\Z")


def _check_description(meta, where):
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise FormatError(f"{where}: not a striate checkpoint (expected \"format\": \"{FORMAT}\")")
    if meta.get("version") != VERSION:
        raise FormatError(f"{where}: checkpoint version {meta.get('version')!r} is not supported "
                          f"(this striate reads version {VERSION})")
    epoch = meta.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or epoch < 0:
        raise FormatError(f"{where}: 'epoch' must be a non-negative int, got {epoch!r}")
    optimizer = meta.get("optimizer")
    if (not isinstance(optimizer, dict) or not isinstance(optimizer.get("param_groups"), list)
            or not all(isinstance(group, dict) for group in optimizer["param_groups"])
            or not isinstance(optimizer.get("state", {}), dict)
            or not all(isinstance(entry, dict) and _INDEX.match(index)
                       for index, entry in optimizer.get("state", {}).items())):
        raise FormatError(f"{where}: missing or malformed 'optimizer' entry")
    model = meta.get("model")
    if (not isinstance(model, dict) or not isinstance(model.get("name"), (str, type(None)))
            or not isinstance(model.get("kwargs", {}), dict)):
        raise FormatError(f"{where}: missing or malformed 'model' entry (expected name and kwargs)")
    for key in ("scheduler", "loader", "rng_state", "metrics"):
        if not isinstance(meta.get(key), (dict, type(None))):
            raise FormatError(f"{where}: malformed {key!r} entry: expected an object or null")
    if meta.get("rng_state") is not None:
        try:   # a throwaway generator of the default kind checks the state restore() will set
            type(st_random.default_generator().bit_generator)(0).state = meta["rng_state"]
        except (TypeError, ValueError, KeyError, OverflowError) as error:
            raise FormatError(f"{where}: malformed 'rng_state' entry: {error!s:.200}") from None
    loader = meta.get("loader") or {}
    for key in ("epoch", "seed"):
        value = loader.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise FormatError(f"{where}: malformed 'loader' entry: {key} must be a non-negative int or null, "
                              f"got {value!r:.50}")
    if not isinstance(meta.get("history", []), list):
        raise FormatError(f"{where}: malformed 'history' entry: expected a list")


def load_checkpoint(path):
    """Read a checkpoint: a run directory, its ``checkpoint.json``, or a ``checkpoint-epoch*.safetensors``.

    Raises:
        FileNotFoundError: nothing at ``path``, or the weights file the JSON names is gone.
        FormatError: the JSON is malformed, or the weights file does not match its recorded hash.
    """
    path = resolve(path)
    if path.suffix == ".safetensors":
        weights_path = path
        text = load_metadata(path).get(_METADATA_KEY)
        if text is None:
            raise FormatError(f"{path}: a safetensors file without a striate checkpoint description; "
                              "load plain weights with striate.load")
        meta = parse_description(text, path)
    else:
        meta = parse_description(path.read_bytes(), path)
        name = meta.get("weights")
        if not isinstance(name, str) or pathlib.PurePath(name).name != name or not name:
            raise FormatError(f"{path}: 'weights' must be a file name in the same directory, got {name!r}")
        weights_path = path.parent / name
        if not weights_path.exists():
            raise FileNotFoundError(f"{path} names the weights file {name}, which is missing")
        digest = _sha256(weights_path)
        if digest != meta.get("sha256"):
            raise FormatError(f"{path}: the weights file {name} has SHA-256 {digest[:16]}..., but the checkpoint "
                              f"records {str(meta.get('sha256'))[:16]}...; the pair is inconsistent or corrupt")
    tensors = load(weights_path)
    return Checkpoint(path=path, weights_path=weights_path, meta=meta, tensors=tensors)


def _parse_json(data, where):
    try:
        return json.loads(data, object_pairs_hook=_object_without_duplicates)
    except FormatError as error:
        raise FormatError(f"{where}: {error}") from None
    # ValueError: JSONDecodeError, UnicodeDecodeError, integers of more than 4300 digits;
    # RecursionError: nesting deeper than the interpreter's stack.
    except (ValueError, RecursionError) as error:
        raise FormatError(f"{where}: not valid JSON ({error!s:.200})") from None


def _object_without_duplicates(pairs):
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        raise FormatError(f"not valid JSON: duplicate keys {duplicates!r:.200}")
    return dict(pairs)


def restore(checkpoint, *, model=None, optimizer=None, scheduler=None, loader=None, rng=True):
    """Put a checkpoint's state back into the objects of a run, to continue it exactly.

    Args:
        checkpoint: a ``Checkpoint`` or a path for ``load_checkpoint``.
        model: receives the weights (strictly: names and shapes must match).
        optimizer: receives the optimizer state; its class must be the saved one.
        scheduler: receives the schedule's state; its class must be the saved one.
        loader: gets its ``epoch`` and shuffle ``seed`` back, so shuffling continues where it stopped.
        rng: restore striate's default random generator (dropout, initialisation).

    Returns:
        The ``Checkpoint``.
    """
    if not isinstance(checkpoint, Checkpoint):
        checkpoint = load_checkpoint(checkpoint)
    meta, where = checkpoint.meta, checkpoint.path
    if model is not None:
        model.load_state_dict(checkpoint.model_state)
    if optimizer is not None:
        saved_class = meta["optimizer"].get("class")
        if saved_class != type(optimizer).__name__:
            raise ValueError(f"{where}: the checkpoint holds {saved_class} state, but the optimizer is "
                             f"{type(optimizer).__name__}")
        optimizer.load_state_dict(checkpoint.optimizer_state_dict())
    if scheduler is not None:
        saved = meta.get("scheduler")
        if not saved or saved.get("class") != type(scheduler).__name__:
            raise ValueError(f"{where}: the checkpoint holds {saved and saved.get('class')} scheduler state, "
                             f"but the scheduler is {type(scheduler).__name__}")
        scheduler.load_state_dict(saved["state"])
    if loader is not None and meta.get("loader"):
        if meta["loader"].get("epoch") is not None:
            loader.epoch = meta["loader"]["epoch"]
        # A loader built without a seed drew one from the generator when it was made, in the
        # first process; the checkpoint's is the one that continues that run's shuffle order.
        if meta["loader"].get("seed") is not None and getattr(loader, "seed", None) is not None:
            loader.seed = meta["loader"]["seed"]
    if rng and meta.get("rng_state") is not None:
        st_random.set_rng_state(meta["rng_state"])
    return checkpoint


__all__ = ["CheckpointWriter", "Checkpoint", "load_checkpoint", "parse_description", "restore", "resolve",
           "write_metrics", "CHECKPOINT_JSON", "METRICS_JSON"]
