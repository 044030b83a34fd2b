"""The safe pickle reader: plain data and NumPy arrays round-trip, anything that could run code is refused."""
import io
import os
import pickle
import struct
import warnings

import numpy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cifar_files import py2_pickle
from striate import FormatError
from striate.data import safe_pickle

PLAIN = {"empty": numpy.zeros((2, 0, 3)), "text": "héllo", b"raw": b"\x00\xff", "empty_bytes": b"", "int": -7, "big": 10**40, "float": 2.5,
         "flags": [True, False, None], "nested": {"t": (1, (2, 3), []), "l": [[], {}]}, 1: "int key"}


def reference(data, **kwargs):
    """What the standard (unsafe) unpickler makes of trusted bytes we wrote ourselves."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # numpy.core is deprecated in NumPy 2
        return pickle.loads(data, **kwargs)


def assert_same(a, b):
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, numpy.ndarray):
        # byte order aside: NumPy's own unpickler returns native order at protocols 0-4 but not at 5
        assert a.dtype.newbyteorder("=") == b.dtype.newbyteorder("=") and a.shape == b.shape
        assert a.dtype.isnative
        numpy.testing.assert_array_equal(a, b)
        assert a.flags.writeable
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    else:
        assert a == b


# ----- what it reads ------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", range(6))
def test_plain_data_round_trips(protocol):
    data = pickle.dumps(PLAIN, protocol=protocol)
    assert_same(safe_pickle.loads(data), reference(data))


@pytest.mark.parametrize("protocol", range(6))
def test_arrays_round_trip_in_every_dtype_order_and_byte_order(protocol, rng):
    dtypes = ["u1", "i1", "<i2", ">i2", "<u4", ">i4", "<i8", "<f2", "<f4", ">f4", "<f8", ">f8", "?", "<c8", "<c16"]
    for k, code in enumerate(dtypes):
        shape = tuple(int(d) for d in rng.integers(1, 4, size=k % 4 + 1))
        a = (rng.standard_normal(shape) * 50).astype(code)
        for array in (a, numpy.asfortranarray(a)):
            data = pickle.dumps({"a": array}, protocol=protocol)
            out = safe_pickle.loads(data)["a"]
            assert_same(out, reference(data)["a"])
            assert out.dtype == numpy.dtype(code).newbyteorder("=")


def test_a_python2_cifar_batch_reads_as_pickle_does(rng):
    batch = {b"batch_label": b"training batch 1 of 5", b"labels": [int(v) for v in rng.integers(0, 10, 300)],
             b"data": rng.integers(0, 256, size=(300, 3072), dtype=numpy.uint8),
             b"filenames": [b"leptodactylus_pentadactylus_s_000004.png"] * 300}
    data = py2_pickle(batch)
    assert data[:2] == b"\x80\x02" and b"cnumpy.core.multiarray\n_reconstruct\n" in data
    assert_same(safe_pickle.loads(data), reference(data, encoding="bytes"))
    # Python 2 str as latin-1 text, as pickle.loads(..., encoding="latin1") gives it
    assert_same(safe_pickle.loads(data, encoding="latin1"), reference(data, encoding="latin1"))


def test_cycles_and_shared_objects_are_kept():
    shared = [1, 2]
    cyclic = [shared, shared]
    cyclic.append(cyclic)
    out = safe_pickle.loads(pickle.dumps(cyclic, protocol=2))
    assert out[0] is out[1] and out[2] is out


def test_load_reads_a_file_and_bounds_its_size(tmp_path):
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({"x": numpy.arange(3)}, protocol=4))
    numpy.testing.assert_array_equal(safe_pickle.load(path)["x"], numpy.arange(3))
    with pytest.raises(FormatError, match=r"batch: file of \d+ bytes exceeds the limit of 10 bytes"):
        safe_pickle.load(path, max_bytes=10)
    with pytest.raises(ValueError, match="encoding must be 'bytes' or 'latin1'"):
        safe_pickle.loads(b"N.", encoding="utf-8")


# ----- hostile pickles: refused, and nothing runs -------------------------------------------------
class RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_a_pickle_that_would_run_a_command_is_refused_and_runs_nothing(tmp_path, protocol):
    evil = pickle.dumps({b"data": numpy.zeros((1, 3072), numpy.uint8), b"labels": [RunsACommand(tmp_path / "m")]},
                        protocol=protocol)
    with pytest.raises(FormatError, match=r"refused global (posix|nt|os)\.system: .*opcode (STACK_)?GLOBAL"):
        safe_pickle.loads(evil)
    assert not (tmp_path / "m").exists()
    # The payload is real: the standard unpickler does run it.
    pickle.loads(pickle.dumps(RunsACommand(tmp_path / "proof"), protocol=protocol))
    assert (tmp_path / "proof").exists()


def proto(n=2):
    return pickle.PROTO + bytes([n])


EMPTY_TUPLE = pickle.EMPTY_TUPLE
HOSTILE = {
    "INST": pickle.MARK + b"iposix\nsystem\n" + pickle.STOP,
    # (numpy.ndarray is a global the reader accepts by name, so the opcode itself is what is refused)
    "OBJ": pickle.MARK + b"cnumpy\nndarray\n" + pickle.OBJ + pickle.STOP,
    "NEWOBJ": b"cnumpy\nndarray\n" + EMPTY_TUPLE + pickle.NEWOBJ + pickle.STOP,
    "NEWOBJ_EX": proto(4) + b"cnumpy\nndarray\n" + EMPTY_TUPLE + pickle.EMPTY_DICT + pickle.NEWOBJ_EX + pickle.STOP,
    "PERSID": pickle.PERSID + b"42\n" + pickle.STOP,
    "BINPERSID": pickle.NONE + pickle.BINPERSID + pickle.STOP,
    "EXT1": proto() + pickle.EXT1 + b"\x01" + pickle.STOP,
    "EXT2": proto() + pickle.EXT2 + b"\x01\x00" + pickle.STOP,
    "EXT4": proto() + pickle.EXT4 + b"\x01\x00\x00\x00" + pickle.STOP,
    "EMPTY_SET": proto(4) + pickle.EMPTY_SET + pickle.STOP,
    "FROZENSET": proto(4) + pickle.MARK + pickle.FROZENSET + pickle.STOP,
    "NEXT_BUFFER": proto(5) + pickle.NEXT_BUFFER + pickle.STOP,
    "READONLY_BUFFER": proto(5) + pickle.NONE + pickle.READONLY_BUFFER + pickle.STOP,
}


@pytest.mark.parametrize("opcode", sorted(HOSTILE))
def test_opcodes_that_construct_or_call_are_refused(opcode):
    with pytest.raises(FormatError, match=rf"refused opcode {opcode}\b.*\(opcode {opcode} at byte"):
        safe_pickle.loads(HOSTILE[opcode])


@pytest.mark.parametrize("data,pattern", [
    (b"cbuiltins\neval\n(S'1'\ntR.", r"refused global builtins\.eval: .*\(opcode GLOBAL at byte 0\)"),
    (proto(4) + b"\x8c\x08builtins\x8c\x04exec\x93.", r"refused global builtins\.exec: .*\(opcode STACK_GLOBAL at byte 18\)"),
    (b"cnumpy\ndtype\n(S'O8'\nI0\nI1\ntR.", r"only numeric dtypes .* got 'O8'"),
    (b"cnumpy\ndtype\n(S'u1'\nI0\nI1\ntR(I3\nS'|'\n(tNNI-1\nI-1\nI0\ntb.", r"numpy\.dtype state must be"),
    (b"cnumpy\nndarray\n.", r"the result holds a global numpy\.ndarray"),
    (b"cnumpy.core.multiarray\n_reconstruct\n(I1\ntR.", r"expects \(numpy\.ndarray, shape, typecode\)"),
    (b"(d(db.", r"refused BUILD on a dict"),
    (b"c_codecs\nencode\n(Vabc\nVutf-8\ntR.", r"_codecs\.encode expects \(text, 'latin1'\)"),
    (b"N(I1\ntR.", r"refused REDUCE of a NoneType"),
    (b"]cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\n(I0\ntS'b'\ntRa.",
     r"an unfinished array cannot be stored"),
    (b"(cnumpy\nndarray\nl.", r"global numpy\.ndarray cannot be stored in a container"),
    (b"}]I1\ns.", r"dict keys must be str, bytes, numbers or None, got list"),
])
def test_misused_globals_and_malformed_structure_are_refused(data, pattern):
    with pytest.raises(FormatError, match=pattern):
        safe_pickle.loads(data)


def array_pickle(shape_text, raw_len):
    """A protocol-0 array pickle whose shape is ``shape_text`` and whose raw data has ``raw_len`` bytes."""
    return (b"cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\n(I0\ntS'b'\ntR"
            b"(I1\n" + shape_text + b"cnumpy\ndtype\n(S'f8'\nI0\nI1\ntR(I3\nS'<'\nNNNI-1\nI-1\nI0\ntb"
            b"I00\nC" + struct.pack("<B", raw_len) + b"\x00" * raw_len + b"tb.")


@pytest.mark.parametrize("shape,raw,pattern", [
    (b"(I2\nI3\nt", 48, None),
    (b"(I2\nI3\nt", 47, r"shape \(2, 3\) and dtype float64 needs 48 bytes of data, got 47"),
    (b"(I2\nI3\nt", 49, r"needs 48 bytes of data, got 49"),
    (b"(I1099511627776\nI1099511627776\nt", 8, r"needs 9671406556917033397649408 bytes of data, got 8"),
    (b"(I-1\nt", 8, r"shape must be a tuple of at most 32 non-negative ints"),
])
def test_array_sizes_must_match_their_bytes_before_anything_is_allocated(shape, raw, pattern):
    data = array_pickle(shape, raw)
    if pattern is None:
        assert safe_pickle.loads(data).shape == (2, 3)
        return
    with pytest.raises(FormatError, match=pattern):
        safe_pickle.loads(data)


@pytest.mark.parametrize("data,pattern", [
    (b"", r"before seeing STOP"),
    (pickle.dumps([1, 2], protocol=2)[:-1], r"before seeing STOP"),
    (pickle.dumps([1, 2], protocol=2)[:-3], r"malformed pickle"),
    (pickle.dumps([1, 2], protocol=2) + b"\x00", r"1 trailing byte\(s\) after STOP"),
    (proto(4) + pickle.BINBYTES8 + struct.pack("<Q", 2**60) + b"abc" + pickle.STOP, r"malformed pickle: .*bytes8"),
    (proto(4) + pickle.BINUNICODE + struct.pack("<I", 2**31) + b"abc" + pickle.STOP, r"malformed pickle"),
    (b"\xff", r"malformed pickle: .*opcode"),
    (proto(9) + pickle.NONE + pickle.STOP, r"unsupported pickle protocol 9"),
    (pickle.APPEND + pickle.STOP, r"stack underflow"),
    (pickle.NONE + pickle.NONE + pickle.STOP, r"STOP expects exactly one object on the stack, found 2"),
    (pickle.MARK + pickle.NONE + pickle.STOP, r"STOP inside an unclosed MARK"),
    (pickle.TUPLE + pickle.STOP, r"no MARK to pop to"),
    (b"g7\n.", r"memo key 7 was never stored"),
    (pickle.NONE + pickle.MARK + pickle.APPENDS + pickle.STOP, r"expected a list to append to, got NoneType"),
])
def test_malformed_streams_raise_format_error(data, pattern):
    with pytest.raises(FormatError, match=pattern):
        safe_pickle.loads(data)


# ----- fuzzing: any bytes either parse or raise FormatError ---------------------------------------
SEEDS = [pickle.dumps(PLAIN, protocol=p) for p in range(6)] + [
    pickle.dumps({b"data": numpy.arange(12, dtype=numpy.uint8).reshape(3, 4), b"labels": [1, 2, 3]}, protocol=p)
    for p in (2, 4, 5)] + [py2_pickle({b"data": numpy.zeros((2, 5), numpy.uint8), b"labels": [0, 9]})]


def parses_or_refuses(data):
    try:
        safe_pickle.loads(data)
    except FormatError:
        pass


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_parse_or_raise_format_error(data):
    parses_or_refuses(data)
    parses_or_refuses(b"\x80\x02" + data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255), st.integers(0, 2)),
                                        min_size=1, max_size=4))
def test_mutated_valid_pickles_parse_or_raise_format_error(seed, edits):
    data = bytearray(seed)
    for position, value, kind in edits:
        position %= len(data) + 1
        if kind == 0 and position < len(data):
            data[position] = value
        elif kind == 1:
            data.insert(position, value)
        else:
            del data[position:position + 1]
    parses_or_refuses(bytes(data))


def test_errors_name_the_file_the_global_the_opcode_and_its_position(tmp_path):
    data = io.BytesIO()
    pickle.Pickler(data, protocol=2).dump([1, os.getcwd])
    path = tmp_path / "x.pkl"
    path.write_bytes(data.getvalue())
    with pytest.raises(FormatError, match=r"safe_pickle: .*x\.pkl: refused global (posix|nt|os)\.getcwd: .*"
                                          r"\(opcode GLOBAL at byte 8\)"):
        safe_pickle.load(path)
