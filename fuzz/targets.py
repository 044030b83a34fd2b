"""Fuzz targets: one function per striate file parser, ``target(data: bytes) -> None``.

Each feeds the bytes to a parser. The contract under test: whatever the bytes, the parser
returns a well-formed result or raises ``striate.FormatError``; any other exception escapes the
target and is reported as a bug (by atheris/libFuzzer, by ``fuzz/run.py``'s plain driver, or by
the hypothesis tests in ``tests/test_fuzz_properties.py``, which call these same functions).
Time and memory are bounded by the drivers (per-input time limit, RSS limit / tracemalloc).

``SEEDS[name]`` are small valid inputs that mutation starts from.
"""
import gzip
import os
import pickle
import tempfile

import numpy

import striate as st
from striate.data import idx
from striate.errors import FormatError
from striate.serialization import load_bytes, save_bytes
from striate.tools import checkpoint

TARGETS = {}
SEEDS = {}


def target(name, seeds):
    def register(function):
        TARGETS[name] = function
        SEEDS[name] = seeds
        return function
    return register


def _scratch_file(data, suffix=""):
    """A temporary file holding ``data`` (for parsers that read paths); the caller removes it."""
    fd, path = tempfile.mkstemp(prefix="striate-fuzz-", suffix=suffix)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


# ----- safetensors --------------------------------------------------------------------------------------------------
def _safetensors_seeds():
    rng = numpy.random.default_rng(0)
    return [
        save_bytes({}),
        save_bytes({"w": rng.standard_normal((3, 2)).astype(numpy.float32), "b": numpy.arange(3, dtype=numpy.int64)},
                   metadata={"epoch": "3"}),
        save_bytes({"m": numpy.array([True, False]), "s": numpy.float64(2.5), "e": numpy.zeros((0, 4), numpy.uint8)}),
    ]


@target("safetensors", _safetensors_seeds())
def fuzz_safetensors(data):
    try:
        tensors = load_bytes(data)
    except FormatError:
        return
    for name, array in tensors.items():
        assert isinstance(name, str) and isinstance(array, numpy.ndarray) and array.flags.writeable


# ----- IDX ----------------------------------------------------------------------------------------------------------
def _idx_seeds():
    images = numpy.arange(2 * 4 * 4, dtype=numpy.uint8).reshape(2, 4, 4)
    return [idx.encode_idx(images), idx.encode_idx(numpy.array([3, 1], numpy.uint8)),
            idx.encode_idx(numpy.linspace(-1, 1, 6, dtype=numpy.float32).reshape(2, 3)),
            gzip.compress(idx.encode_idx(images), mtime=0), gzip.compress(idx.encode_idx(numpy.arange(5, dtype=">i4")),
                                                                          mtime=0)]


@target("idx", _idx_seeds())
def fuzz_idx(data):
    """Raw bytes, or a gzip stream when they start with the gzip magic (bombs, truncation, bad CRCs)."""
    try:
        array = idx.decode_idx(data)
    except FormatError:
        return
    assert isinstance(array, numpy.ndarray) and array.dtype.isnative
    assert array.nbytes <= max(len(data), 1) * 1100   # a deflate stream expands at most ~1032 times


@target("idx_gzip", [seed for seed in _idx_seeds() if not seed.startswith(b"\x1f\x8b")])
def fuzz_idx_gzip(data):
    """The bytes gzip-compressed, so mutations of the IDX content reach the parser through the inflater."""
    fuzz_idx(gzip.compress(data, compresslevel=1, mtime=0))


# ----- checkpoint descriptions --------------------------------------------------------------------------------------
def _checkpoint_seeds():
    from striate import nn
    model = nn.Linear(2, 2)
    optimizer = st.optim.Adam(model.parameters(), lr=0.01)
    with tempfile.TemporaryDirectory() as directory:
        path = checkpoint.CheckpointWriter(directory, model_name="mlp", model_kwargs={"hidden": [4]},
                                           metadata={"data": "sample"}).save(model=model, optimizer=optimizer, epoch=1)
        description = path.read_bytes()
    return [description, b'{"format": "striate-checkpoint", "version": 1, "epoch": 0, "optimizer": '
                         b'{"param_groups": [{}], "state": {"0": {"step": 3}}}, "model": {"name": null}}']


@target("checkpoint_json", _checkpoint_seeds())
def fuzz_checkpoint_json(data):
    """A ``checkpoint.json`` (or the description a weights file carries): parsed, then read as resume would."""
    try:
        meta = checkpoint.parse_description(data)
    except FormatError:
        return
    saved = checkpoint.Checkpoint(path="<bytes>", weights_path="<bytes>", meta=meta,
                                  tensors={"optimizer.state.0.exp_avg": numpy.zeros(2, numpy.float32)})
    assert isinstance(saved.epoch, int) and isinstance(saved.history, list)
    state = saved.optimizer_state_dict()
    assert all(isinstance(index, int) for index in state["state"])
    if meta.get("rng_state") is not None:   # checked, so restore() can set it: try it on a throwaway generator
        numpy.random.default_rng().bit_generator.state = meta["rng_state"]


# ----- CIFAR and safe pickle (when this striate has them) -----------------------------------------------------------
def _optional_cifar():
    try:
        from striate.data import safe_pickle
        from striate.data.datasets import cifar
    except ImportError:
        return None, None
    if not (hasattr(safe_pickle, "loads") and hasattr(cifar.CIFAR10, "_read_binary")
            and hasattr(cifar.CIFAR10, "_read_python")):
        return None, None
    return safe_pickle, cifar


safe_pickle, cifar = _optional_cifar()

if safe_pickle is not None:
    def _pickle_seeds():
        rng = numpy.random.default_rng(0)
        batch = {b"data": rng.integers(0, 256, (2, 3072), dtype=numpy.uint8), b"labels": [1, 9],
                 b"filenames": [b"a.png", b"b.png"]}
        return [pickle.dumps(batch, protocol=p) for p in (2, 4, 5)] + [pickle.dumps([1, 2.5, "x", None, (True,)], 0)]

    @target("safe_pickle", _pickle_seeds())
    def fuzz_safe_pickle(data):
        """Never imports or calls anything: a pickle that would is a FormatError like any other bad one."""
        try:
            safe_pickle.loads(data)
        except FormatError:
            return

    def _cifar_instance(kind):
        instance = kind.__new__(kind)     # the readers need only the class's layout attributes
        instance.root, instance.train = "<fuzz>", True
        return instance

    @target("cifar_binary", [bytes([0]) + bytes([3]) + bytes(3072) + bytes([9]) + bytes(range(256)) * 12,
                             bytes([1]) + bytes([19, 99]) + bytes(range(256)) * 12])
    def fuzz_cifar_binary(data):
        """A CIFAR-10 (first byte even) or CIFAR-100 (odd) binary batch file."""
        kind = cifar.CIFAR100 if data[:1] and data[0] % 2 else cifar.CIFAR10
        path = _scratch_file(data[1:], ".bin")
        try:
            images, labels, _ = _cifar_instance(kind)._read_binary(path)
            assert images.shape[1:] == (32, 32, 3) and len(images) == len(labels)
        except FormatError:
            return
        finally:
            os.unlink(path)

    @target("cifar_python", _pickle_seeds()[:3])
    def fuzz_cifar_python(data):
        """A CIFAR-10 python-version batch (a pickled dict), read through the safe unpickler."""
        path = _scratch_file(data)
        try:
            images, labels, _ = _cifar_instance(cifar.CIFAR10)._read_python(path)
            assert images.shape[1:] == (32, 32, 3) and len(images) == len(labels)
        except FormatError:
            return
        finally:
            os.unlink(path)


# A target with a planted bug, registered only on request: the harness tests use it to prove a
# failing input is caught and saved by every engine.
if os.environ.get("STRIATE_FUZZ_SELFTEST"):
    @target("selftest", [b"fine", b"BUG!"])
    def fuzz_selftest(data):
        if data.startswith(b"BUG"):
            raise RuntimeError("planted bug")


__all__ = ["TARGETS", "SEEDS"]
