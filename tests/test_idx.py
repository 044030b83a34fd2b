"""The IDX reader/writer: hand-built files round-trip; every malformed or hostile file is a FormatError."""
import gzip
import struct
import time
import tracemalloc
import zlib

import numpy
import pytest

from striate import FormatError
from striate.data.idx import decode_idx, encode_idx, read_idx, write_idx

# (type code, big-endian struct letter, native dtype) — written down from the IDX spec, not from idx.py.
TYPES = [(0x08, "B", numpy.uint8), (0x09, "b", numpy.int8), (0x0B, "h", numpy.int16),
         (0x0C, "i", numpy.int32), (0x0D, "f", numpy.float32), (0x0E, "d", numpy.float64)]
SHAPES = [(5,), (3, 4), (2, 3, 4), (2, 1, 3, 2), (0, 3)]


def idx_file(code, dims, values=(), letter="B"):
    """IDX bytes built by hand with struct: magic, big-endian uint32 dims, big-endian elements."""
    header = bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    return header + struct.pack(f">{len(values)}{letter}", *values)


def put(tmp_path, data, name="file.idx", gz=False):
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def sample_values(dtype, n, rng):
    if numpy.dtype(dtype).kind == "f":
        return rng.standard_normal(n).astype(dtype)
    info = numpy.iinfo(dtype)
    return rng.integers(info.min, info.max, size=n, endpoint=True).astype(dtype)


# ----- valid files ---------------------------------------------------------------------------------
@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("code,letter,dtype", TYPES, ids=[t[2].__name__ for t in TYPES])
def test_reads_hand_built_files(tmp_path, rng, code, letter, dtype, gz):
    for shape in SHAPES:
        values = sample_values(dtype, int(numpy.prod(shape)), rng)
        path = put(tmp_path, idx_file(code, shape, values.tolist(), letter), gz=gz)
        array = read_idx(path)
        assert array.shape == shape
        assert array.dtype == numpy.dtype(dtype)  # native byte order
        assert array.dtype.isnative
        numpy.testing.assert_array_equal(array.ravel(), values)
        array[...] = 0  # writable: callers may modify what they read


@pytest.mark.parametrize("code,letter,dtype", TYPES, ids=[t[2].__name__ for t in TYPES])
def test_encode_matches_hand_built_bytes_and_writes_round_trip(tmp_path, rng, code, letter, dtype):
    for shape in SHAPES:
        values = sample_values(dtype, int(numpy.prod(shape)), rng)
        assert encode_idx(values.reshape(shape)) == idx_file(code, shape, values.tolist(), letter)
        for name in ("a.idx", "a.idx.gz"):
            write_idx(tmp_path / name, values.reshape(shape))
            numpy.testing.assert_array_equal(read_idx(tmp_path / name), values.reshape(shape))
    assert (tmp_path / "a.idx.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert (tmp_path / "a.idx").read_bytes()[:2] == b"\x00\x00"


def test_gzip_is_detected_by_magic_bytes_not_name(tmp_path):
    data = idx_file(0x08, (2, 2), [1, 2, 3, 4])
    for name, gz in [("plain.gz", False), ("compressed.idx", True), ("noext", True)]:
        numpy.testing.assert_array_equal(read_idx(put(tmp_path, data, name, gz)), [[1, 2], [3, 4]])


def test_write_idx_gzip_is_reproducible(tmp_path):
    array = numpy.arange(100, dtype=numpy.uint8).reshape(10, 10)
    write_idx(tmp_path / "a.gz", array)
    data = (tmp_path / "a.gz").read_bytes()
    # RFC 1952 header: byte 3 is FLG (0: no file name or comment), bytes 4..7 MTIME (0: no timestamp).
    assert data[3] == 0 and data[4:8] == bytes(4)
    write_idx(tmp_path / "b.gz", array)
    assert (tmp_path / "b.gz").read_bytes() == data


def test_expected_rank_and_dtype_pass(tmp_path):
    path = put(tmp_path, idx_file(0x08, (2, 3), range(6)))
    assert read_idx(path, ndim=2, dtype=numpy.uint8).shape == (2, 3)


def test_encode_rejects_unsupported_arrays():
    with pytest.raises(TypeError, match="encode_idx: IDX cannot hold dtype int64"):
        encode_idx(numpy.arange(3))
    with pytest.raises(ValueError, match="encode_idx: IDX rank must be 1..255, got a 0-D array"):
        encode_idx(numpy.uint8(3))


# ----- malformed files -----------------------------------------------------------------------------
VALID = idx_file(0x08, (2, 3), range(6))
BAD_FILES = {
    "empty": (b"", r"truncated header: expected a 4-byte magic number, got 0 byte\(s\)"),
    "short magic": (b"\x00\x00\x08", r"truncated header: expected a 4-byte magic number, got 3 byte\(s\)"),
    "bad magic": (b"PK\x03\x04" + VALID[4:], "magic number must start with bytes 00 00, got 50 4b"),
    "one bad magic byte": (b"\x00\x01" + VALID[2:], "magic number must start with bytes 00 00, got 00 01"),
    "unknown type": (b"\x00\x00\x0a\x02" + VALID[4:], r"unknown IDX type code 0x0A \(known: 0x08, 0x09"),
    "rank zero": (b"\x00\x00\x08\x00", r"rank \(4th magic byte\) must be at least 1, got 0"),
    "truncated dims": (b"\x00\x00\x08\x03" + struct.pack(">2I", 2, 3),
                       "truncated header: rank 3 needs 12 bytes of dimensions, got 8"),
    "one byte short": (VALID[:-1], r"payload size mismatch: dimensions \(2, 3\) of 1-byte elements declare 6 bytes, got 5"),
    "one byte long": (VALID + b"\x00", "declare 6 bytes, got more than 6"),
    "no payload": (VALID[:12], "declare 6 bytes, got 0"),
    "int32 short": (idx_file(0x0C, (2,), [1, 2], "i")[:-1], "of 4-byte elements declare 8 bytes, got 7"),
    "product overflow": (idx_file(0x08, (0xFFFFFFFF,) * 3),
                         r"dimensions \(4294967295, 4294967295, 4294967295\) of 1-byte elements overflow"),
    "float64 overflow": (idx_file(0x0E, (0xFFFFFFFF, 0xFFFFFFFF)), "of 8-byte elements overflow"),
    # Empty (a zero dimension) yet impossible: NumPy refuses even an empty array this big nominally.
    "empty but overflowing": (idx_file(0x08, (0, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)),
                              r"dimensions \(0, 4294967295, 4294967295, 4294967295\) of 1-byte elements overflow"),
    "rank beyond NumPy": (idx_file(0x08, (1,) * 65, [0]), "rank 65 exceeds NumPy's limit of 64 dimensions"),
}


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("case", list(BAD_FILES))
def test_malformed_files_raise_format_error_naming_file_rule_and_values(tmp_path, case, gz):
    data, message = BAD_FILES[case]
    path = put(tmp_path, data, name="bad-file.idx", gz=gz)
    with pytest.raises(FormatError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_expected_rank_and_type_mismatches(tmp_path):
    path = put(tmp_path, idx_file(0x08, (2, 3), range(6)), name="labels.idx")
    with pytest.raises(FormatError, match=r"labels.idx: expected a rank-1 IDX file, got rank 2"):
        read_idx(path, ndim=1)
    with pytest.raises(FormatError, match=r"labels.idx: expected elements of type float32, got type code 0x08 \(uint8\)"):
        read_idx(path, dtype=numpy.float32)


def test_corrupt_gzip_streams(tmp_path):
    compressed = gzip.compress(VALID)
    cases = {
        "garbage after magic": b"\x1f\x8b" + b"\xff" * 40,
        "truncated stream": compressed[:-12],
        "bad crc": compressed[:-8] + b"\x00\x00\x00\x00" + compressed[-4:],
    }
    for name, data in cases.items():
        path = put(tmp_path, data, name=f"{name.replace(' ', '-')}.gz")
        with pytest.raises(FormatError, match="corrupt gzip stream|truncated|payload size mismatch") as info:
            read_idx(path)
        assert str(path) in str(info.value), name


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope.idx")


# ----- hostile files -------------------------------------------------------------------------------
def _bomb(header, inflated_bytes):
    """A small gzip file: ``header`` followed by ``inflated_bytes`` zero bytes once decompressed."""
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)  # wbits 31: gzip container
    zeros = bytes(1 << 20)
    parts = [packer.compress(header)]
    parts += [packer.compress(zeros) for _ in range(inflated_bytes >> 20)]
    return b"".join(parts + [packer.flush()])


def _peak_memory(fn):
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_gzip_bomb_is_rejected_quickly_without_inflating_it(tmp_path):
    # Declares 16 bytes; decompresses to 128 MiB more.
    bomb = _bomb(idx_file(0x08, (4, 4)), 128 << 20)
    assert len(bomb) < 1 << 20
    path = put(tmp_path, bomb, name="bomb.gz")

    def read():
        with pytest.raises(FormatError, match=r"bomb.gz: payload size mismatch: .* declare 16 bytes, got more than 16"):
            read_idx(path)

    start = time.perf_counter()
    peak = _peak_memory(read)
    assert time.perf_counter() - start < 1.0
    assert peak < 4 << 20, f"reading a 16-byte bomb allocated {peak} bytes"


def test_header_that_overstates_its_size_allocates_only_what_is_there(tmp_path):
    # Declares 2^36 bytes (64 GiB) and holds 100: must be rejected after reading the 100.
    path = put(tmp_path, idx_file(0x08, (1 << 16, 1 << 10, 1 << 10), [7] * 100), name="liar.gz", gz=True)

    def read():
        with pytest.raises(FormatError, match=r"declare 68719476736 bytes, got 100"):
            read_idx(path)

    assert _peak_memory(read) < 4 << 20


def test_gzip_is_inflated_no_further_than_the_declared_payload_plus_one_byte(tmp_path, monkeypatch):
    """The inflater is asked for exactly what is read: a bomb is never expanded past its header's claim."""
    import striate.data.idx as idx_module

    inflated = []
    real_decompressobj = zlib.decompressobj

    class CountingInflater:
        def __init__(self, *args, **kwargs):
            self.inner = real_decompressobj(*args, **kwargs)

        def decompress(self, data, max_length=0):
            out = self.inner.decompress(data, max_length)
            inflated.append(len(out))
            return out

        def __getattr__(self, name):
            return getattr(self.inner, name)

    monkeypatch.setattr(idx_module.zlib, "decompressobj", CountingInflater)
    header = idx_file(0x08, (64, 64))                               # declares 4096 bytes
    path = put(tmp_path, _bomb(header + bytes(4096), 8 << 20), name="bomb.gz")
    with pytest.raises(FormatError, match="declare 4096 bytes, got more than 4096"):
        read_idx(path)
    assert sum(inflated) == len(header) + 4096 + 1
    inflated.clear()
    valid = put(tmp_path, header + bytes(4096), name="valid.gz", gz=True)
    assert read_idx(valid).shape == (64, 64)
    assert sum(inflated) == len(header) + 4096                      # and the stream's end was reached: CRC checked


def test_decode_idx_reads_bytes_like_read_idx(tmp_path):
    data = idx_file(0x0B, (2, 2), [1, -2, 3, -4], "h")
    numpy.testing.assert_array_equal(decode_idx(data), [[1, -2], [3, -4]])
    numpy.testing.assert_array_equal(decode_idx(gzip.compress(data)), [[1, -2], [3, -4]])
    with pytest.raises(FormatError, match=r"read_idx: <bytes>: payload size mismatch"):
        decode_idx(data[:-1])
    with pytest.raises(FormatError, match=r"read_idx: <bytes>: corrupt gzip stream"):
        decode_idx(gzip.compress(data)[:-3] + b"xyz")
