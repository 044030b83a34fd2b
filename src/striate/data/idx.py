"""The IDX file format (MNIST's): read and write, raw or gzip-compressed, validating every field.

An IDX file is a 4-byte magic ``00 00 TT NN`` (TT the element type, NN the rank), then NN
big-endian uint32 dimensions, then the elements in C order, big-endian. A reader that trusts
the header can be made to allocate gigabytes or to return a silently wrong array, so
``read_idx`` checks each field and reads at most the declared payload plus one byte: a file
that is short, long, or a gzip stream that inflates beyond its header is a ``FormatError``.
"""
import gzip
import io
import math
import os
import zlib

import numpy

from striate.errors import FormatError

GZIP_MAGIC = b"\x1f\x8b"

# Type code → element dtype (big-endian on disk).
IDX_TYPES = {
    0x08: numpy.dtype("u1"),
    0x09: numpy.dtype("i1"),
    0x0B: numpy.dtype(">i2"),
    0x0C: numpy.dtype(">i4"),
    0x0D: numpy.dtype(">f4"),
    0x0E: numpy.dtype(">f8"),
}
_TYPE_CODES = {dtype.newbyteorder("="): code for code, dtype in IDX_TYPES.items()}

# Read in slices so memory tracks the bytes actually present, never just what a header claims.
_CHUNK = 1 << 20
# The largest payload NumPy can index (numpy.intp); a larger declared size cannot be a real file.
_MAX_PAYLOAD = numpy.iinfo(numpy.intp).max
# The most dimensions a NumPy array may have (32 before NumPy 2.0, 64 since); IDX allows 255.
_MAX_NDIM = 64 if numpy.lib.NumpyVersion(numpy.__version__) >= "2.0.0" else 32


def read_idx(path, *, ndim=None, dtype=None):
    """Read an IDX file (raw, or gzip-compressed: detected by its magic bytes, not its name).

    Args:
        path: the file.
        ndim: if given, the rank the file must have.
        dtype: if given, the element type the file must hold (e.g. ``numpy.uint8``).

    Returns:
        A writable ndarray in native byte order with the shape the header declares.

    Raises:
        FormatError: bad magic, unknown type code, wrong rank or type, truncated header,
            a dimension product that overflows, or a payload shorter or longer than declared
            (checked before any payload-sized allocation beyond what the file really holds).
        FileNotFoundError: the file does not exist.
    """
    name = os.fspath(path)
    with open(name, "rb") as raw:
        compressed = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        if not compressed:
            return _read_stream(raw, name, ndim, dtype)
        try:
            return _read_stream(_BoundedGzip(raw), name, ndim, dtype)
        except zlib.error as error:
            raise FormatError(f"read_idx: {name}: corrupt gzip stream ({type(error).__name__}: {error})") from None


class _BoundedGzip:
    """A gzip stream whose ``read(n)`` inflates at most ``n`` bytes.

    ``gzip.GzipFile`` decompresses ahead into an 8 KiB buffer; this reader asks zlib for exactly
    what is requested, so reading a header-declared payload plus one byte never inflates more,
    however much a hostile stream would expand. Each member's CRC-32 and length are checked by
    zlib when its end is reached; concatenated members are read one after another.
    """

    def __init__(self, raw):
        self.raw = raw
        self.inflater = zlib.decompressobj(wbits=31)  # 31: a gzip container around deflate
        self.pending = b""                            # compressed bytes not yet given to zlib

    def read(self, count):
        out = bytearray()
        while len(out) < count:
            if self.inflater.eof:
                rest = self.inflater.unused_data + self.pending
                self.pending = b""
                if not rest:
                    rest = self.raw.read(_CHUNK)
                if not rest:
                    break                             # clean end after a complete member
                self.inflater = zlib.decompressobj(wbits=31)
                self.pending = rest
            data = self.inflater.unconsumed_tail or self.pending or self.raw.read(_CHUNK)
            self.pending = b""
            if not data:
                raise zlib.error("truncated gzip stream: it ends before its end-of-stream marker")
            out += self.inflater.decompress(data, count - len(out))
        return bytes(out)


def decode_idx(data, *, ndim=None, dtype=None):
    """The array held by the bytes of an IDX file (raw or gzip-compressed), with ``read_idx``'s checks.

    ``FormatError`` messages name the source ``<bytes>``.
    """
    data = memoryview(data).cast("B")
    raw = io.BytesIO(data)
    if data[:2] != GZIP_MAGIC:
        return _read_stream(raw, "<bytes>", ndim, dtype)
    try:
        return _read_stream(_BoundedGzip(raw), "<bytes>", ndim, dtype)
    except zlib.error as error:
        raise FormatError(f"read_idx: <bytes>: corrupt gzip stream ({type(error).__name__}: {error})") from None


def _read_stream(stream, name, ndim, dtype):
    """Parse the header, then read exactly the declared payload from ``stream``."""
    magic = stream.read(4)
    if len(magic) < 4:
        raise FormatError(f"read_idx: {name}: truncated header: expected a 4-byte magic number, "
                          f"got {len(magic)} byte(s)")
    if magic[:2] != b"\x00\x00":
        raise FormatError(f"read_idx: {name}: not an IDX file: the magic number must start with bytes 00 00, "
                          f"got {magic[:2].hex(' ')}")
    code, rank = magic[2], magic[3]
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
        raise FormatError(f"read_idx: {name}: unknown IDX type code 0x{code:02X} (known: {known})")
    element = IDX_TYPES[code]
    if dtype is not None and element.newbyteorder("=") != numpy.dtype(dtype):
        raise FormatError(f"read_idx: {name}: expected elements of type {numpy.dtype(dtype)}, "
                          f"got type code 0x{code:02X} ({element.newbyteorder('=')})")
    if rank == 0:
        raise FormatError(f"read_idx: {name}: the rank (4th magic byte) must be at least 1, got 0")
    if ndim is not None and rank != ndim:
        raise FormatError(f"read_idx: {name}: expected a rank-{ndim} IDX file, got rank {rank}")

    dims_bytes = stream.read(4 * rank)
    if len(dims_bytes) < 4 * rank:
        raise FormatError(f"read_idx: {name}: truncated header: rank {rank} needs {4 * rank} bytes of "
                          f"dimensions, got {len(dims_bytes)}")
    if rank > _MAX_NDIM:
        raise FormatError(f"read_idx: {name}: rank {rank} exceeds NumPy's limit of {_MAX_NDIM} dimensions")
    shape = tuple(int(d) for d in numpy.frombuffer(dims_bytes, dtype=">u4"))
    # Python ints are exact, so nothing wraps around. The product over the non-zero dimensions
    # is bounded too: NumPy refuses even an empty array whose nominal size does not fit.
    nominal = element.itemsize
    for d in shape:
        nominal *= max(d, 1)
        if nominal > _MAX_PAYLOAD:
            raise FormatError(f"read_idx: {name}: dimensions {shape} of {element.itemsize}-byte elements "
                              f"overflow the largest addressable size ({_MAX_PAYLOAD} bytes)")
    size = element.itemsize * math.prod(shape)

    # Read one byte past the declared size, so a long file is caught without reading it all.
    payload = bytearray()
    while len(payload) <= size:
        chunk = stream.read(min(_CHUNK, size + 1 - len(payload)))
        if not chunk:
            break
        payload += chunk
    if len(payload) != size:
        got = f"{len(payload)}" if len(payload) < size else f"more than {size}"
        raise FormatError(f"read_idx: {name}: payload size mismatch: dimensions {shape} of "
                          f"{element.itemsize}-byte elements declare {size} bytes, got {got}")
    array = numpy.frombuffer(payload, dtype=element).reshape(shape)
    return array if element.byteorder in "=|" else array.astype(element.newbyteorder("="))


def encode_idx(array):
    """The IDX bytes (uncompressed) of ``array``: header followed by big-endian elements."""
    array = numpy.asarray(array)
    code = _TYPE_CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        supported = ", ".join(str(d.newbyteorder("=")) for d in IDX_TYPES.values())
        raise TypeError(f"encode_idx: IDX cannot hold dtype {array.dtype} (supported: {supported})")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"encode_idx: IDX rank must be 1..255, got a {array.ndim}-D array")
    if any(d > 0xFFFFFFFF for d in array.shape):
        raise ValueError(f"encode_idx: IDX dimensions must fit in 32 bits, got shape {array.shape}")
    header = bytes([0, 0, code, array.ndim]) + numpy.asarray(array.shape, dtype=">u4").tobytes()
    return header + numpy.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes()


def write_idx(path, array, compress=None):
    """Write ``array`` as an IDX file; gzip-compressed when ``compress`` (default: path ends in ``.gz``).

    Compressed output is byte-for-byte reproducible (no timestamp or file name in the gzip header).
    """
    name = os.fspath(path)
    data = encode_idx(array)
    if compress is None:
        compress = name.endswith(".gz")
    if compress:
        data = gzip.compress(data, compresslevel=9, mtime=0)
    with open(name, "wb") as f:
        f.write(data)


__all__ = ["read_idx", "decode_idx", "write_idx", "encode_idx", "IDX_TYPES"]
