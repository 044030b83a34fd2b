"""striate.save / load / load_metadata: the safetensors format, round trips, hostile files, atomicity, compatibility.

Files are assembled by hand with struct and json here, never with the code under test, and the
reference implementation (the `safetensors` package) checks compatibility both ways.
"""
import json
import os
import struct
import tracemalloc

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as hs
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import striate as st
import striate.nn as nn
from striate.serialization import MAX_HEADER_SIZE, load_bytes, save_bytes

DTYPES = [np.float64, np.float32, np.float16, np.int64, np.int32, np.int16, np.int8,
          np.uint64, np.uint32, np.uint16, np.uint8, np.bool_]
CODES = {np.float64: "F64", np.float32: "F32", np.float16: "F16", np.int64: "I64", np.int32: "I32",
         np.int16: "I16", np.int8: "I8", np.uint64: "U64", np.uint32: "U32", np.uint16: "U16",
         np.uint8: "U8", np.bool_: "BOOL"}
SHAPES = [(), (0,), (5,), (2, 0, 3), (2, 3, 4), (1, 1, 1, 1, 1)]
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ----- helpers ------------------------------------------------------------------------------------
def build(header, data=b"", *, length=None, pad=True):
    """Assemble a safetensors file by hand: ``header`` a dict (dumped compactly), str or bytes."""
    if isinstance(header, dict):
        header = json.dumps(header, separators=(",", ":"))
    if isinstance(header, str):
        header = header.encode("utf-8")
    if pad:
        header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header) if length is None else length) + header + data


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def sample(dtype, shape, rng):
    """Random values over the dtype's whole range; floats include the special values."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(bool)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    values = rng.standard_normal(size=shape).astype(dtype)
    specials = np.array([np.nan, np.inf, -np.inf, -0.0, np.finfo(dtype).smallest_subnormal, np.finfo(dtype).max],
                        dtype=dtype)
    flat = values.reshape(-1)
    flat[: min(flat.size, specials.size)] = specials[: flat.size]
    return values


def assert_same_array(actual, expected):
    """Same dtype, shape and bits (so NaN payloads and -0.0 count too)."""
    expected = np.asarray(expected)
    assert actual.dtype == expected.dtype.newbyteorder("="), (actual.dtype, expected.dtype)
    assert actual.shape == expected.shape
    assert actual.tobytes() == expected.astype(expected.dtype.newbyteorder("=")).tobytes()


def listing(directory):
    return sorted(os.listdir(directory))


# ----- the format, byte for byte --------------------------------------------------------------------
def test_writes_the_documented_layout(tmp_path):
    header = b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
    header += b" " * (-len(header) % 8)
    expected = struct.pack("<Q", len(header)) + header + struct.pack("<2f", 1.5, -2.0)
    assert len(header) % 8 == 0
    st.save({"w": np.array([1.5, -2.0], np.float32)}, tmp_path / "w.safetensors")
    assert (tmp_path / "w.safetensors").read_bytes() == expected
    assert save_bytes({"w": np.array([1.5, -2.0], np.float32)}) == expected


def test_writes_metadata_first_and_tensors_widest_dtype_first_then_by_name():
    data = save_bytes({"b": np.zeros(1, np.int8), "c": np.zeros(1, np.float64), "a": np.zeros(1, np.float64),
                       "d": np.zeros((), np.bool_)}, metadata={"k": "v"})
    length = struct.unpack("<Q", data[:8])[0]
    assert list(json.loads(data[8:8 + length])) == ["__metadata__", "a", "c", "b", "d"]
    assert data[8 + length:] == bytes(8 + 8 + 1 + 1)


def test_reads_a_hand_built_file_in_offset_order():
    header = {"z": entry("I16", [2], 8, 12), "__metadata__": {"note": "hand-made"}, "a": entry("F64", [], 0, 8)}
    data = struct.pack("<d", -0.25) + struct.pack("<2h", -7, 300)
    loaded = load_bytes(build(header, data))
    assert list(loaded) == ["a", "z"]
    assert_same_array(loaded["a"], np.float64(-0.25))
    assert_same_array(loaded["z"], np.array([-7, 300], np.int16))


def test_reads_bf16_widened_exactly_to_float32(tmp_path):
    values = np.array([1.0, -2.5, 3.140625, np.inf, -np.inf, 0.0, 2.0 ** -133], np.float32)
    words = (values.view(np.uint32) >> 16).astype("<u2")  # these values are exact in bfloat16
    path = tmp_path / "bf16.safetensors"
    path.write_bytes(build({"x": entry("BF16", [7], 0, 14)}, words.tobytes()))
    assert_same_array(st.load(path)["x"], values)
    scalar = load_bytes(build({"s": entry("BF16", [], 0, 2)}, struct.pack("<H", 0xC020)))["s"]
    assert isinstance(scalar, np.ndarray) and scalar.flags.writeable
    assert_same_array(scalar, np.array(-2.5, np.float32))


# ----- round trips ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_round_trip_every_dtype_and_shape(tmp_path, rng, dtype):
    state = {f"t{i}": sample(dtype, shape, rng) for i, shape in enumerate(SHAPES)}
    path = tmp_path / "w.safetensors"
    st.save(state, path)
    loaded = st.load(path)
    assert sorted(loaded) == sorted(state)
    for name, array in state.items():
        assert_same_array(loaded[name], array)


def test_round_trip_mixed_dtypes_and_many_tensors(tmp_path, rng):
    state = {f"layer{i}.{kind}": sample(DTYPES[i % len(DTYPES)], (i % 4, 3), rng)
             for i in range(40) for kind in ("weight", "bias")}
    st.save(state, tmp_path / "w.safetensors")
    loaded = st.load(tmp_path / "w.safetensors")
    assert loaded.keys() == state.keys()
    for name, array in state.items():
        assert_same_array(loaded[name], array)


def test_non_contiguous_big_endian_and_scalar_values(tmp_path, rng):
    base = rng.standard_normal((4, 6)).astype(np.float32)
    state = {"transposed": base.T, "strided": base[::2, 1::3], "big_endian": base.astype(">f4"),
             "big_int": np.arange(5, dtype=">i8"), "fortran": np.asfortranarray(base), "scalar": np.float16(2.5),
             "int_scalar": np.int64(-3)}
    st.save(state, tmp_path / "w.safetensors")
    loaded = st.load(tmp_path / "w.safetensors")
    for name, array in state.items():
        assert_same_array(loaded[name], array)
    assert loaded["big_endian"].dtype == np.float32 and loaded["big_endian"].dtype.isnative


def test_tensor_and_parameter_values(tmp_path):
    model = nn.Linear(3, 2)
    state = dict(model.state_dict(keep_vars=True))  # Parameters themselves
    state["extra"] = st.tensor([[1.0, 2.0]], dtype=st.float64)
    st.save(state, tmp_path / "w.safetensors")
    loaded = st.load(tmp_path / "w.safetensors")
    assert_same_array(loaded["weight"], model.weight.data)
    assert_same_array(loaded["bias"], model.bias.data)
    assert_same_array(loaded["extra"], np.array([[1.0, 2.0]]))


def test_loaded_arrays_are_writable_native_and_independent(tmp_path):
    st.save({"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.arange(3, dtype=np.int64),
             "c": np.ones((), bool)}, tmp_path / "w.safetensors")
    loaded = st.load(tmp_path / "w.safetensors")
    for array in loaded.values():
        assert array.flags.writeable and array.flags.c_contiguous and array.dtype.isnative
    assert not np.shares_memory(loaded["a"], loaded["b"])
    loaded["a"][0, 0] = 42.0
    assert st.load(tmp_path / "w.safetensors")["a"][0, 0] == 0.0


def test_empty_state_dict(tmp_path):
    st.save({}, tmp_path / "w.safetensors")
    assert (tmp_path / "w.safetensors").read_bytes() == struct.pack("<Q", 8) + b"{}      "
    assert st.load(tmp_path / "w.safetensors") == {}
    assert st.load_metadata(tmp_path / "w.safetensors") == {}


def test_model_state_dict_round_trip_restores_outputs(tmp_path, rng):
    st.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 2))
    model.train()
    model(st.tensor(rng.standard_normal((4, 1, 4, 4)).astype(np.float32)))  # moves the running statistics
    st.save(model.state_dict(), tmp_path / "m.safetensors")
    st.manual_seed(1)
    other = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 2))
    other.load_state_dict(st.load(tmp_path / "m.safetensors"))
    model.eval(), other.eval()
    x = st.tensor(rng.standard_normal((2, 1, 4, 4)).astype(np.float32))
    np.testing.assert_array_equal(other(x).data, model(x).data)
    assert int(other[1].num_batches_tracked.data) == 1


# ----- metadata ------------------------------------------------------------------------------------
def test_metadata_round_trip(tmp_path):
    metadata = {"model": "lenet5", "args": json.dumps({"num_classes": 10}), "note": "réseau ✓", "empty": ""}
    st.save({"w": np.zeros(2, np.float32)}, tmp_path / "w.safetensors", metadata=metadata)
    assert st.load_metadata(tmp_path / "w.safetensors") == metadata
    assert list(st.load(tmp_path / "w.safetensors")) == ["w"]


def test_metadata_absent_or_empty(tmp_path):
    st.save({"w": np.zeros(2, np.float32)}, tmp_path / "none.safetensors")
    st.save({"w": np.zeros(2, np.float32)}, tmp_path / "empty.safetensors", metadata={})
    assert st.load_metadata(tmp_path / "none.safetensors") == {}
    assert st.load_metadata(tmp_path / "empty.safetensors") == {}
    assert b"__metadata__" not in (tmp_path / "none.safetensors").read_bytes()


# ----- argument errors on saving -------------------------------------------------------------------
SAVE_ERRORS = [
    ("not a mapping", [np.zeros(1)], None, TypeError, r"save: expected a mapping of name -> array, got list"),
    ("int name", {1: np.zeros(1)}, None, TypeError, r"save: tensor names must be str, got int 1"),
    ("reserved name", {"__metadata__": np.zeros(1)}, None, ValueError, r"'__metadata__' is reserved"),
    ("list value", {"w": [1.0, 2.0]}, None, TypeError, r"value of 'w' must be a NumPy array or a Tensor, got list"),
    ("float value", {"w": 1.0}, None, TypeError, r"value of 'w' must be a NumPy array or a Tensor, got float"),
    ("complex", {"w": np.zeros(2, complex)}, None, TypeError, r"'w' has dtype complex128, which safetensors cannot"),
    ("object", {"w": np.array([None])}, None, TypeError, r"'w' has dtype object"),
    ("unicode", {"w": np.array(["a"])}, None, TypeError, r"'w' has dtype <U1"),
    ("structured", {"w": np.zeros(2, "i4,f4")}, None, TypeError, r"which safetensors cannot store"),
    ("surrogate name", {"\ud800": np.zeros(1)}, None, ValueError, r"encodable as UTF-8"),
    ("metadata list", {}, [("a", "b")], TypeError, r"metadata must be a mapping of str to str, got list"),
    ("metadata int value", {}, {"epoch": 3}, TypeError, r"metadata must map str to str, got str 'epoch' -> int 3"),
    ("metadata int key", {}, {3: "x"}, TypeError, r"metadata must map str to str, got int 3"),
]


@pytest.mark.parametrize("state, metadata, error, pattern", [case[1:] for case in SAVE_ERRORS],
                         ids=[case[0] for case in SAVE_ERRORS])
def test_save_argument_errors_write_nothing(tmp_path, state, metadata, error, pattern):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"previous")
    with pytest.raises(error, match=pattern):
        st.save(state, path, metadata=metadata)
    assert path.read_bytes() == b"previous"
    assert listing(tmp_path) == ["w.safetensors"]


# ----- hostile files --------------------------------------------------------------------------------
F32x2 = entry("F32", [2], 0, 8)
HOSTILE = [
    # (id, file bytes, message pattern, rejected by load_metadata too)
    ("empty file", b"", r"0 bytes long, shorter than the 8-byte header length field", True),
    ("7-byte file", b"\x08" + bytes(6), r"7 bytes long", True),
    ("header length 0", struct.pack("<Q", 0) + b"{}", r"header length 0 is below the minimum of 2", True),
    ("header length 1", struct.pack("<Q", 1) + b"{}", r"header length 1 is below the minimum of 2", True),
    ("header length beyond file", build({}, length=64), r"header length 64 exceeds the 8 bytes that follow", True),
    ("header length over the cap", build({}, length=MAX_HEADER_SIZE + 1),
     rf"header length {MAX_HEADER_SIZE + 1} exceeds the limit of {MAX_HEADER_SIZE} bytes", True),
    ("header length 2**64-1", build({}, length=2 ** 64 - 1), r"header length 18446744073709551615 exceeds the limit",
     True),
    ("header not UTF-8", build(b'{"\xff":1}'), r"header is not valid UTF-8", True),
    ("leading space", build(" {}"), r"header must start with '\{', got ' \{\}", True),
    ("leading newline", build("\n{}"), r"header must start with '\{'", True),
    ("JSON array", build("[]"), r"header must start with '\{', got '\[\]", True),
    ("not JSON", build("{abc"), r"header is not valid JSON", True),
    ("trailing garbage", build("{} x"), r"header is not valid JSON: Extra data", True),
    ("NUL padding", build(b"{}" + bytes(6), pad=False), r"header is not valid JSON", True),
    ("NaN", build('{"a":{"dtype":"F32","shape":[NaN],"data_offsets":[0,0]}}'), r"NaN is not a JSON value", True),
    ("Infinity", build('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,Infinity]}}'),
     r"Infinity is not a JSON value", True),
    ("deep nesting", build('{"a":' + "[" * 100_000 + "]" * 100_000 + "}"), r"header is not valid JSON", True),
    ("huge integer", build('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1' + "0" * 5000 + "]}}", b"\x00"),
     r"not valid JSON|extend past|hold", True),
    ("duplicate names", build('{"a":' + json.dumps(F32x2) + ',"a":' + json.dumps(F32x2) + "}", bytes(8)),
     r"header has duplicate names \['a'\]", True),
    ("duplicate key in entry", build('{"a":{"dtype":"F32","dtype":"I32","shape":[2],"data_offsets":[0,8]}}', bytes(8)),
     r"duplicate names \['dtype'\]", True),
    ("duplicate metadata key", build('{"__metadata__":{"k":"1","k":"2"}}'), r"duplicate names \['k'\]", True),
    ("entry not an object", build({"a": 1}), r"tensor 'a': entry must be an object with exactly the keys", True),
    ("entry missing a key", build({"a": {"dtype": "F32", "shape": [2]}}, bytes(8)),
     r"exactly the keys \['data_offsets', 'dtype', 'shape'\], got \['dtype', 'shape'\]", True),
    ("entry extra key", build({"a": dict(F32x2, name="a")}, bytes(8)), r"exactly the keys", True),
    ("unknown dtype F8", build({"a": entry("F8_E4M3", [2], 0, 2)}, bytes(2)),
     r"tensor 'a': unknown or unsupported dtype 'F8_E4M3'", True),
    ("lowercase dtype", build({"a": entry("f32", [2], 0, 8)}, bytes(8)), r"unknown or unsupported dtype 'f32'", True),
    ("dtype not a string", build({"a": entry(5, [2], 0, 8)}, bytes(8)), r"unknown or unsupported dtype 5", True),
    ("shape not a list", build({"a": entry("F32", 2, 0, 8)}, bytes(8)),
     r"shape must be a list of non-negative integers, got 2", True),
    ("negative dimension", build({"a": entry("F32", [-2], 0, 0)}), r"non-negative integers, got \[-2\]", True),
    ("negative dimensions cancelling", build({"a": entry("F32", [-2, -1], 0, 8)}, bytes(8)),
     r"non-negative integers, got \[-2, -1\]", True),
    ("float dimension", build({"a": entry("F32", [2.0], 0, 8)}, bytes(8)), r"non-negative integers, got \[2.0\]",
     True),
    ("bool dimension", build({"a": entry("F32", [True], 0, 4)}, bytes(4)), r"non-negative integers, got \[True\]",
     True),
    ("null dimension", build({"a": entry("F32", [None], 0, 4)}, bytes(4)), r"non-negative integers", True),
    ("too many dimensions", build({"a": entry("F32", [1] * 65, 0, 4)}, bytes(4)),
     r"shape has 65 dimensions, more than NumPy's limit", True),
    ("one offset", build({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8]}}, bytes(8)),
     r"data_offsets must be \[begin, end\], two non-negative integers, got \[8\]", True),
    ("three offsets", build({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8, 8]}}, bytes(8)),
     r"got \[0, 8, 8\]", True),
    ("negative offset", build({"a": entry("F32", [2], -8, 0)}, bytes(8)), r"got \[-8, 0\]", True),
    ("float offset", build({"a": entry("F32", [2], 0, 8.0)}, bytes(8)), r"got \[0, 8.0\]", True),
    ("end before begin", build({"a": entry("U8", [0], 8, 4)}, bytes(8)), r"data_offsets end 4 is before begin 8",
     True),
    ("size disagrees with offsets", build({"a": entry("F32", [3], 0, 8)}, bytes(8)),
     r"tensor 'a': shape \[3\] of F32 needs 12 bytes but data_offsets \[0, 8\] hold 8", True),
    ("shape overflowing to 0 in 64 bits", build({"a": entry("U8", [2 ** 33, 2 ** 31], 0, 0)}),
     r"needs 18446744073709551616 bytes but data_offsets \[0, 0\] hold 0", True),
    ("shape overflowing to 16 in 64 bits", build({"a": entry("F32", [2 ** 62 + 1, 4], 0, 16)}, bytes(16)),
     r"needs 73786976294838206480 bytes", True),
    ("empty array with an impossible shape", build({"a": entry("F32", [0, 2 ** 62], 0, 0)}),
     r"shape \[0, 4611686018427387904\] is too large for a NumPy array", True),
    ("overlapping tensors", build({"a": F32x2, "b": entry("F32", [2], 4, 12)}, bytes(12)),
     r"tensor 'b' overlaps the previous tensor: its data_offsets begin at 4, the previous tensor ends at 8", True),
    ("gap between tensors", build({"a": entry("F32", [1], 0, 4), "b": entry("F32", [1], 8, 12)}, bytes(12)),
     r"tensor 'b' leaves a gap after the previous tensor: its data_offsets begin at 8", True),
    ("first tensor not at 0", build({"a": entry("F32", [1], 4, 8)}, bytes(8)),
     r"tensor 'a' leaves a gap .* begin at 4, the previous tensor ends at 0", True),
    ("trailing bytes", build({"a": F32x2}, bytes(9)),
     r"end at 8 but do not cover the data area of 9 bytes \(trailing bytes\)", True),
    ("trailing bytes without tensors", build({}, b"x"), r"end at 0 but do not cover the data area of 1 bytes", True),
    ("data shorter than offsets", build({"a": F32x2}, bytes(4)), r"end at 8 but extend past the data area of 4 bytes",
     True),
    ("huge claimed tensor", build({"a": entry("F32", [2 ** 28], 0, 2 ** 30)}, bytes(16)),
     r"end at 1073741824 but extend past the data area of 16 bytes", True),
    ("metadata not an object", build({"__metadata__": "x"}), r"'__metadata__' must be an object mapping str to str",
     True),
    ("metadata null", build({"__metadata__": None}), r"'__metadata__' must be an object", True),
    ("metadata int value", build({"__metadata__": {"epoch": 3}}), r"mapping str to str, got \{'epoch': 3\}", True),
    ("bool byte not 0 or 1", build({"a": entry("BOOL", [3], 0, 3)}, b"\x01\x00\x02"),
     r"tensor 'a' of dtype BOOL holds byte 2, not 0 or 1", False),
]


@pytest.mark.parametrize("data, pattern, in_header", [case[1:] for case in HOSTILE], ids=[case[0] for case in HOSTILE])
def test_hostile_file_raises_format_error_naming_file_and_rule(tmp_path, data, pattern, in_header):
    path = tmp_path / "hostile.safetensors"
    path.write_bytes(data)
    with pytest.raises(st.FormatError, match=pattern) as raised:
        st.load(path)
    assert str(raised.value).startswith(f"{path}: ")
    with pytest.raises(st.FormatError, match=pattern):
        load_bytes(data)
    if in_header:
        with pytest.raises(st.FormatError, match=pattern):
            st.load_metadata(path)
    else:
        st.load_metadata(path)  # the header itself is fine


def test_format_error_is_a_value_error():
    with pytest.raises(ValueError):
        load_bytes(b"short")


def test_hostile_size_claims_allocate_nothing_large(tmp_path):
    """A header claiming a 1 GiB tensor in a tiny file is refused before any large allocation."""
    path = tmp_path / "claims.safetensors"
    path.write_bytes(build({"a": entry("F32", [2 ** 28], 0, 2 ** 30)}, bytes(16)))
    tracemalloc.start()
    try:
        with pytest.raises(st.FormatError):
            st.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_truncated_tensor_data_detected(tmp_path, rng):
    st.save({"a": rng.standard_normal(100).astype(np.float32)}, tmp_path / "w.safetensors")
    data = (tmp_path / "w.safetensors").read_bytes()
    for cut in (1, 4, 399):
        with pytest.raises(st.FormatError):
            load_bytes(data[:-cut])


def test_file_shrinking_while_read_is_format_error_not_a_hang(tmp_path, monkeypatch):
    import striate.serialization as serialization

    path = tmp_path / "w.safetensors"
    st.save({"a": np.zeros(2 ** 16, np.float32)}, path)  # larger than the reader's buffer
    real_read_header = serialization._read_header

    def read_header_then_truncate(file, size, where):
        header = real_read_header(file, size, where)
        os.truncate(path, size - 10)  # another process cuts the file after the header was checked
        return header

    monkeypatch.setattr(serialization, "_read_header", read_header_then_truncate)
    with pytest.raises(st.FormatError, match=r"file is truncated: expected 10 more bytes of tensor data"):
        st.load(path)


def test_missing_file_is_os_error_not_format_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        st.load(tmp_path / "nope.safetensors")
    with pytest.raises(FileNotFoundError):
        st.load_metadata(tmp_path / "nope.safetensors")


# ----- memory: streamed, not built twice ------------------------------------------------------------
def test_save_and_load_do_not_copy_the_whole_payload(tmp_path):
    weights = {"a": np.ones(2 ** 21, np.float32), "b": np.ones(2 ** 20, np.float64)}  # 16 MiB in all
    payload = sum(array.nbytes for array in weights.values())
    path = tmp_path / "big.safetensors"
    tracemalloc.start()
    try:
        st.save(weights, path)
        save_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        loaded = st.load(path)
        load_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert save_peak < payload // 8, save_peak
    assert load_peak < payload * 1.1, load_peak  # the arrays themselves, nothing more
    assert np.array_equal(loaded["a"], weights["a"]) and np.array_equal(loaded["b"], weights["b"])


# ----- atomic saving ----------------------------------------------------------------------------------
class FailingFile:
    """Wraps the temporary file: after ``budget`` bytes it writes part of the next chunk, then raises."""

    def __init__(self, file, budget, exception):
        self._file, self._budget, self._exception = file, budget, exception

    def write(self, data):
        data = memoryview(data).cast("B")
        if len(data) > self._budget:
            self._file.write(data[: self._budget])
            self._file.flush()
            raise self._exception
        self._budget -= len(data)
        return self._file.write(data)

    def __getattr__(self, name):
        return getattr(self._file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._file.__exit__(*exc)


@pytest.mark.parametrize("exception", [OSError(28, "No space left on device"), KeyboardInterrupt()],
                         ids=["disk full", "Ctrl-C"])
@pytest.mark.parametrize("budget", [0, 20, 200, 5000])
def test_failure_mid_save_keeps_previous_file_loadable(tmp_path, rng, monkeypatch, exception, budget):
    path = tmp_path / "checkpoint.safetensors"
    old = {"w": rng.standard_normal((8, 8)).astype(np.float32), "step": np.array(1)}
    st.save(old, path, metadata={"epoch": "1"})
    new = {"w": rng.standard_normal((40, 40)).astype(np.float32), "step": np.array(2)}

    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: FailingFile(real_fdopen(fd, *a, **k), budget, exception))
    with pytest.raises(type(exception)):
        st.save(new, path, metadata={"epoch": "2"})
    monkeypatch.undo()

    assert listing(tmp_path) == ["checkpoint.safetensors"]  # no temporary file left behind
    loaded = st.load(path)
    assert_same_array(loaded["w"], old["w"])
    assert_same_array(loaded["step"], old["step"])
    assert st.load_metadata(path) == {"epoch": "1"}


@pytest.mark.parametrize("exception", [OSError(5, "I/O error"), KeyboardInterrupt()], ids=["EIO", "Ctrl-C"])
def test_failure_at_fsync_keeps_previous_file(tmp_path, monkeypatch, exception):
    path = tmp_path / "checkpoint.safetensors"
    st.save({"w": np.arange(3.0)}, path)

    def fsync(fd):
        raise exception

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(type(exception)):
        st.save({"w": np.arange(300.0)}, path)
    monkeypatch.undo()
    assert listing(tmp_path) == ["checkpoint.safetensors"]
    assert_same_array(st.load(path)["w"], np.arange(3.0))


# ----- compatibility with the reference implementation ----------------------------------------------
def reference_state(rng):
    return {f"{CODES[dtype].lower()}.{i}": sample(dtype, shape, rng)
            for dtype in DTYPES for i, shape in enumerate([(), (0, 2), (3, 4)])}


def test_reference_numpy_file_loads_in_striate(tmp_path, rng):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    state = reference_state(rng)
    path = tmp_path / "ref.safetensors"
    safetensors_numpy.save_file(state, path, metadata={"framework": "numpy", "x": "1"})
    loaded = st.load(path)
    assert sorted(loaded) == sorted(state)
    for name, array in state.items():
        assert_same_array(loaded[name], array)
    assert st.load_metadata(path) == {"framework": "numpy", "x": "1"}


def test_striate_file_loads_in_reference_numpy_and_matches_its_bytes(tmp_path, rng):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    safetensors = pytest.importorskip("safetensors")
    state = reference_state(rng)
    path = tmp_path / "ours.safetensors"
    st.save(state, path, metadata={"model": "test"})
    loaded = safetensors_numpy.load_file(path)
    assert sorted(loaded) == sorted(state)
    for name, array in state.items():
        assert_same_array(loaded[name], array)
    with safetensors.safe_open(path, framework="numpy") as file:
        assert file.metadata() == {"model": "test"}
    assert path.read_bytes() == safetensors_numpy.save(state, metadata={"model": "test"})


def _torch_pair(torch):
    """The same small conv net in PyTorch and in striate (identical parameter names and layouts)."""
    tnet = torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.BatchNorm2d(6), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(6, 8, 3, stride=2), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(32, 5))
    snet = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(32, 5))
    with torch.no_grad():  # running statistics far from their defaults, so loading them matters
        tnet[1].running_mean.uniform_(-1, 1)
        tnet[1].running_var.uniform_(0.5, 2.0)
        tnet[1].num_batches_tracked.fill_(7)
    return tnet.eval(), snet.eval()


def test_pytorch_state_dict_loads_into_striate_model(tmp_path, rng):
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    torch.manual_seed(0)
    tnet, snet = _torch_pair(torch)
    path = tmp_path / "torch.safetensors"
    safetensors_torch.save_file(tnet.state_dict(), path)
    snet.load_state_dict(st.load(path))
    x = rng.standard_normal((4, 3, 10, 10)).astype(np.float32)
    with torch.no_grad():
        expected = tnet(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(snet(st.tensor(x)).data, expected, rtol=1e-5, atol=1e-6)
    assert int(snet[1].num_batches_tracked.data) == 7


def test_pytorch_bf16_state_dict_loads_as_float32(tmp_path, rng):
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    torch.manual_seed(1)
    tnet, snet = _torch_pair(torch)
    tnet = tnet.to(torch.bfloat16)
    path = tmp_path / "bf16.safetensors"
    safetensors_torch.save_file(tnet.state_dict(), path)
    loaded = st.load(path)
    assert loaded["0.weight"].dtype == np.float32 and loaded["1.num_batches_tracked"].dtype == np.int64
    np.testing.assert_array_equal(loaded["0.weight"], tnet[0].weight.float().detach().numpy())
    snet.load_state_dict(loaded)
    x = rng.standard_normal((2, 3, 10, 10)).astype(np.float32)
    with torch.no_grad():
        expected = tnet.float()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(snet(st.tensor(x)).data, expected, rtol=1e-5, atol=1e-6)


def test_striate_state_dict_loads_into_pytorch_model(tmp_path, rng):
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    st.manual_seed(2)
    tnet, snet = _torch_pair(torch)
    snet[1].running_mean.data[...] = rng.uniform(-1, 1, 6)
    path = tmp_path / "striate.safetensors"
    st.save(snet.state_dict(), path)
    tnet.load_state_dict(safetensors_torch.load_file(path))
    x = rng.standard_normal((3, 3, 10, 10)).astype(np.float32)
    with torch.no_grad():
        expected = tnet(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(snet(st.tensor(x)).data, expected, rtol=1e-5, atol=1e-6)


# ----- property tests -----------------------------------------------------------------------------------
def load_or_format_error(data):
    """The contract for any input: a dict of arrays, or FormatError; nothing else escapes."""
    try:
        loaded = load_bytes(data)
    except st.FormatError:
        return None
    assert isinstance(loaded, dict)
    assert all(isinstance(array, np.ndarray) for array in loaded.values())
    return loaded


@FUZZ
@given(hs.binary(max_size=300))
def test_random_bytes_load_or_raise_format_error(data):
    load_or_format_error(data)


@FUZZ
@given(hs.binary(max_size=300), hs.integers(-16, 16))
def test_random_header_with_plausible_length_loads_or_raises_format_error(body, slack):
    load_or_format_error(struct.pack("<Q", max(len(body) + slack, 0)) + body)


VALID = build({"__metadata__": {"k": "v"}, "a": entry("F32", [2], 0, 8), "b": entry("BOOL", [2], 8, 10),
               "c": entry("BF16", [1, 1], 10, 12)}, struct.pack("<2f", 1, 2) + b"\x01\x00" + b"\x80\x3f")


@FUZZ
@given(hs.lists(hs.tuples(hs.integers(0, len(VALID) - 1),
                          hs.sampled_from(b'0123456789{}[]",: -') | hs.integers(0, 255)), max_size=4),
       hs.just(0) | hs.integers(0, 14) | hs.integers(0, len(VALID)), hs.binary(max_size=4))
def test_mutated_valid_file_loads_or_raises_format_error(edits, trim, extra):
    data = bytearray(VALID)
    for position, value in edits:
        data[position] = value
    load_or_format_error(bytes(data[: len(data) - trim]) + extra)


ITEMSIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
             "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1}


@hs.composite
def headers(draw):
    """A header whose tensors tile the data exactly, then (most of the time) one field perturbed."""
    header, offset = {}, 0
    for name in draw(hs.lists(hs.sampled_from("abcdef"), unique=True, max_size=4)):
        code = draw(hs.sampled_from(sorted(ITEMSIZES)))
        shape = draw(hs.lists(hs.integers(0, 4), max_size=3))
        size = int(np.prod(shape)) * ITEMSIZES[code]
        header[name] = entry(code, shape, offset, offset + size)
        offset += size
    data_size = offset
    if header and draw(hs.booleans()):
        target = header[draw(hs.sampled_from(sorted(header)))]
        field = draw(hs.sampled_from(["dtype", "dim", "ndim", "begin", "end", "swap"]))
        big = hs.sampled_from([-1, 2 ** 31, 2 ** 32 + 1, 2 ** 63, 2 ** 64, 2 ** 64 + 4])
        if field == "dtype":
            target["dtype"] = draw(hs.sampled_from(sorted(ITEMSIZES) + ["F8_E4M3", "X", ""]))
        elif field == "dim" and target["shape"]:
            target["shape"][draw(hs.integers(0, len(target["shape"]) - 1))] = draw(hs.integers(-2, 6) | big)
        elif field == "ndim":
            target["shape"].append(draw(hs.integers(0, 2) | big))
        elif field in ("begin", "end"):
            target["data_offsets"][field == "end"] += draw(hs.integers(-9, 9))
        elif field == "swap":
            target["data_offsets"].reverse()
    elif draw(hs.booleans()):
        data_size += draw(hs.integers(-3, 3))
    return header, max(data_size, 0)


@FUZZ
@given(headers())
def test_random_structured_headers_load_or_raise_format_error(case):
    header, data_size = case
    loaded = load_or_format_error(build(header, bytes(data_size)))
    if loaded is not None:  # then the header was valid: the tensors tile the data exactly
        assert sorted(loaded) == sorted(header)
        sizes = [int(np.prod(value["shape"])) * ITEMSIZES[value["dtype"]] for value in header.values()]
        assert sum(sizes) == data_size


NAMES = hs.text(hs.characters(exclude_categories=("Cs",)), max_size=12).filter(lambda name: name != "__metadata__")
state_dicts = hs.dictionaries(
    NAMES,
    hs.sampled_from(DTYPES).flatmap(lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=4,
                                                                                       min_side=0, max_side=4))),
    max_size=5)
metadata_maps = hs.dictionaries(NAMES, hs.text(hs.characters(exclude_categories=("Cs",)), max_size=8), max_size=3)


@FUZZ
@given(state_dicts, metadata_maps)
def test_property_round_trip_matches_reference_bytes(state, metadata):
    metadata = metadata or None  # the reference writes invalid JSON for empty metadata without tensors
    data = save_bytes(state, metadata=metadata)
    loaded = load_bytes(data)
    assert sorted(loaded) == sorted(state)
    for name, array in state.items():
        assert_same_array(loaded[name], array)
    length = struct.unpack("<Q", data[:8])[0]
    assert json.loads(data[8:8 + length]).get("__metadata__", {}) == (metadata or {})
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    reference = safetensors_numpy.save(state, metadata=metadata)
    if metadata is not None and len(metadata) > 1:
        # The reference keeps metadata in a hash map, so the order of its keys varies; all else is fixed.
        ref_length = struct.unpack("<Q", reference[:8])[0]
        assert json.loads(reference[8:8 + ref_length]) == json.loads(data[8:8 + length])
        assert reference[8 + ref_length:] == data[8 + length:]
    else:
        assert data == reference
