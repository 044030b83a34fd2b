"""Property tests over every file parser: any bytes either parse or raise FormatError, in bounded time and memory.

The targets are fuzz/targets.py's (the functions atheris and ``fuzz/run.py`` drive), so the
fuzzers and these tests check the same contract: a target absorbs FormatError and lets
anything else escape. The structured tests go further and say WHICH inputs must parse: an IDX
file parses exactly when its header is well formed and its payload has the declared size.
(safetensors has its own structured and round-trip properties in test_serialization.py.)
"""
import gzip
import json
import math
import os
import struct
import sys
import time
import tracemalloc

import hypothesis.strategies as hs
import numpy
import pytest
from hypothesis import HealthCheck, given, settings

from striate.data.idx import decode_idx
from striate.errors import FormatError
from striate.tools import checkpoint

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fuzz"))
import targets as fuzz_targets  # noqa: E402

TARGETS = sorted(fuzz_targets.TARGETS)
# Every target is held to "never allocate more than the file size" (the CIFAR python reader once read
# with f.read(max_bytes + 1), which makes CPython allocate the whole 1 GiB limit up front).
UNBOUNDED_MEMORY = set()
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
SECONDS_PER_INPUT = 2.0


def bounded(target, data, memory=True):
    """Run a target on ``data``: no exception but FormatError (absorbed inside), limited time and memory."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        target(data)
    finally:
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert elapsed < SECONDS_PER_INPUT, f"{elapsed:.2f} s for {len(data)} bytes"
    # Never more than a small multiple of the input (a deflate stream inflates ≤ 1032×), plus a constant.
    assert not memory or peak < (4 << 20) + 1100 * len(data), f"peak {peak} bytes for {len(data)} bytes of input"


@pytest.mark.parametrize("name", TARGETS)
@FUZZ
@given(data=hs.binary(max_size=2000))
def test_random_bytes_parse_or_raise_format_error(name, data):
    bounded(fuzz_targets.TARGETS[name], data, memory=name not in UNBOUNDED_MEMORY)


@hs.composite
def mutated_seed(draw, name):
    data = bytearray(draw(hs.sampled_from(fuzz_targets.SEEDS[name])))
    for _ in range(draw(hs.integers(1, 6))):
        position = draw(hs.integers(0, len(data)))
        kind = draw(hs.sampled_from(["set", "insert", "delete", "int"]))
        if kind == "set" and data:
            data[position % len(data)] = draw(hs.integers(0, 255))
        elif kind == "insert":
            data[position:position] = draw(hs.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[position:position + draw(hs.integers(1, 16))]
        elif kind == "int":
            width = draw(hs.sampled_from([1, 2, 4, 8]))
            value = draw(hs.sampled_from([0, 1, 2 ** 31 - 1, 2 ** 32 - 1, 2 ** 63, 2 ** 64 - 1])) % (1 << 8 * width)
            data[position:position + width] = value.to_bytes(width, draw(hs.sampled_from(["little", "big"])))
    return bytes(data[:len(data) - draw(hs.integers(0, 3))])


@pytest.mark.parametrize("name", TARGETS)
@FUZZ
@given(data=hs.data())
def test_mutated_valid_files_parse_or_raise_format_error(name, data):
    bounded(fuzz_targets.TARGETS[name], data.draw(mutated_seed(name)), memory=name not in UNBOUNDED_MEMORY)


@pytest.mark.skipif("cifar_python" not in fuzz_targets.TARGETS, reason="no CIFAR reader in this striate")
def test_cifar_python_reader_allocates_no_more_than_the_file():
    bounded(fuzz_targets.TARGETS["cifar_python"], b"")


def test_every_seed_parses():
    """The seeds are valid files, so mutation starts from inputs that reach deep into each parser."""
    assert {"safetensors", "idx", "idx_gzip", "checkpoint_json"} <= set(fuzz_targets.TARGETS)
    for name in fuzz_targets.TARGETS:
        for seed in fuzz_targets.SEEDS[name]:
            fuzz_targets.TARGETS[name](seed)


# ----- IDX: parses exactly when well formed -------------------------------------------------------------------------
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}   # from the spec


@hs.composite
def idx_files(draw):
    """(bytes, expected array or None): a header, mostly plausible, and a payload of about the declared size."""
    code = draw(hs.sampled_from(sorted(IDX_TYPES)) | hs.integers(0, 255))
    rank = draw(hs.integers(1, 4) | hs.integers(0, 70))
    dims = draw(hs.lists(hs.integers(0, 5) | hs.sampled_from([2 ** 31, 2 ** 32 - 1]), min_size=rank, max_size=rank))
    magic = bytes([0, 0, code, rank]) if draw(hs.integers(0, 9)) else draw(hs.binary(min_size=4, max_size=4))
    header = magic + struct.pack(f">{rank}I", *dims)
    header = header[:len(header) - draw(hs.just(0) | hs.integers(0, len(header)))]
    declared = math.prod(dims) * numpy.dtype(IDX_TYPES.get(code, "u1")).itemsize
    size = max(0, min(declared, 4096) + draw(hs.sampled_from([0, 0, 0, -1, 1, -7, 9])))
    payload = draw(hs.binary(min_size=size, max_size=size))
    data = header + payload
    valid = (len(header) == 4 + 4 * rank and magic[:2] == b"\0\0" and magic[2] in IDX_TYPES and 1 <= magic[3] <= 64
             and size == declared and math.prod(max(d, 1) for d in dims) * 8 < 2 ** 63)
    expected = numpy.frombuffer(payload, IDX_TYPES[code]).reshape(dims) if valid else None
    return data, expected


@FUZZ
@given(case=idx_files(), compressed=hs.booleans())
def test_idx_parses_exactly_the_well_formed_files(case, compressed):
    data, expected = case
    if compressed:
        data = gzip.compress(data, mtime=0)
    try:
        array = decode_idx(data)
    except FormatError:
        assert expected is None, "a well-formed IDX file was refused"
        return
    assert expected is not None, "a malformed IDX file was accepted"
    assert array.shape == expected.shape and array.dtype == expected.dtype.newbyteorder("=")
    assert array.tobytes() == expected.astype(expected.dtype.newbyteorder("=")).tobytes()


# ----- checkpoint descriptions --------------------------------------------------------------------------------------
VALID_DESCRIPTION = json.loads(fuzz_targets.SEEDS["checkpoint_json"][0])
JSON_VALUES = hs.recursive(hs.none() | hs.booleans() | hs.integers(-3, 2 ** 70) | hs.floats() | hs.text(max_size=5),
                           lambda inner: hs.lists(inner, max_size=3) | hs.dictionaries(hs.text(max_size=4), inner,
                                                                                        max_size=3), max_leaves=8)


@hs.composite
def descriptions(draw):
    """The valid description with one entry (at any depth) replaced, added or removed."""
    meta = json.loads(json.dumps(VALID_DESCRIPTION))
    node = meta
    for _ in range(draw(hs.integers(0, 3))):
        children = [key for key, value in (node.items() if isinstance(node, dict) else enumerate(node))
                    if isinstance(value, (dict, list)) and value]
        if not children:
            break
        node = node[draw(hs.sampled_from(children))]
    keys = list(node) if isinstance(node, dict) else list(range(len(node)))
    action = draw(hs.sampled_from(["replace", "add", "remove"]))
    if action == "remove" and keys:
        del node[draw(hs.sampled_from(keys))]
    elif action == "add" and isinstance(node, dict):
        node[draw(hs.text(max_size=6))] = draw(JSON_VALUES)
    elif keys:
        node[draw(hs.sampled_from(keys))] = draw(JSON_VALUES)
    return json.dumps(meta, allow_nan=True).encode()


@FUZZ
@given(data=descriptions())
def test_checkpoint_descriptions_parse_or_raise_format_error(data):
    bounded(fuzz_targets.TARGETS["checkpoint_json"], data)
    try:
        meta = checkpoint.parse_description(data)
    except FormatError:
        return
    assert isinstance(meta["epoch"], int) and meta["epoch"] >= 0
    assert isinstance(meta["optimizer"]["param_groups"], list)


@pytest.mark.parametrize("text, rule", [
    (b'{"a": 1, "a": 2}', r"duplicate keys \['a'\]"),
    (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    (b'{"epoch": 1' + b"0" * 5000 + b"}", "not valid JSON"),
    (b"\xff\xfe{", "not valid JSON"),
    (json.dumps({**VALID_DESCRIPTION, "rng_state": {"bit_generator": "PCG64", "state": 3}}).encode(),
     "malformed 'rng_state' entry"),
    (json.dumps({**VALID_DESCRIPTION, "loader": {"epoch": -1}}).encode(), "epoch must be a non-negative int"),
    (json.dumps({**VALID_DESCRIPTION, "optimizer": {"param_groups": [], "state": {"²": {}}}}).encode(),
     "malformed 'optimizer' entry"),
], ids=["duplicate keys", "deep nesting", "huge integer", "not UTF-8", "bad rng state", "negative loader epoch",
        "superscript index"])
def test_checkpoint_description_rules(text, rule):
    with pytest.raises(FormatError, match=rule):
        checkpoint.parse_description(text)
