"""Weights files in the safetensors format, read and written by striate's own NumPy code.

Layout (https://github.com/huggingface/safetensors): an 8-byte little-endian header length N,
N bytes of UTF-8 JSON ``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__":
{str: str}}`` padded with spaces to a multiple of 8, then the tensors' bytes, little-endian and
C-ordered, ``begin``/``end`` counted from the end of the header. Nothing in a file is ever
executed, and the reader checks every rule of the format before it allocates anything larger
than the file itself; a file that breaks one raises :class:`striate.FormatError` naming the
file, the rule and the values found.

:func:`save` writes byte for byte what ``safetensors.numpy.save`` writes (same tensor order:
wider dtypes first, then by name; same JSON), so files go both ways between striate, PyTorch
and every other safetensors reader.

dtypes: ``F64 F32 F16 I64 I32 I16 I8 U64 U32 U16 U8 BOOL`` are read and written as the NumPy
dtype of the same name. ``BF16`` (common in PyTorch checkpoints; NumPy has no bfloat16) is read
and widened to float32, which is exact; striate never writes BF16. Other dtypes (float8, ...) are
refused with FormatError on reading.
"""
import collections
import collections.abc
import io
import json
import math
import os
import sys

import numpy as np

from striate.autograd.tensor import Tensor
from striate.errors import FormatError
from striate.io import atomic_open

__all__ = ["save", "load", "load_metadata", "save_bytes", "load_bytes", "MAX_HEADER_SIZE"]

#: Largest header accepted, in bytes (the reference implementation's limit).
MAX_HEADER_SIZE = 100_000_000

_METADATA_KEY = "__metadata__"
_ENTRY_KEYS = frozenset({"dtype", "shape", "data_offsets"})
# The most dimensions a NumPy array may have (32 before NumPy 2.0, 64 since).
_MAX_NDIM = 64 if np.lib.NumpyVersion(np.__version__) >= "2.0.0" else 32
_MAX_ARRAY_BYTES = 2 ** 63 - 1  # NumPy refuses arrays whose nominal size does not fit an int64

# safetensors dtype code -> little-endian NumPy dtype, in the reference's dtype order (the order its
# writer sorts tensors by, widest last); BF16 is stored as raw 16-bit words and widened on reading.
_DTYPES = {
    "BOOL": np.dtype("|b1"), "U8": np.dtype("|u1"), "I8": np.dtype("|i1"),
    "I16": np.dtype("<i2"), "U16": np.dtype("<u2"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
    "I32": np.dtype("<i4"), "U32": np.dtype("<u4"), "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"), "I64": np.dtype("<i8"), "U64": np.dtype("<u8"),
}
_DTYPE_RANK = {code: rank for rank, code in enumerate(_DTYPES)}
# (kind, itemsize) of a NumPy dtype -> code, for writing; keyed so that byte order and aliases
# (intc/int32, longlong/int64) do not matter.
_CODES = {(dtype.kind, dtype.itemsize): code for code, dtype in _DTYPES.items() if code != "BF16"}


# ----- writing ------------------------------------------------------------------------------------
def save(state_dict, path, metadata=None):
    """Write a state_dict (name → NumPy array or Tensor) to ``path`` as a safetensors file, atomically.

    The file is written to a temporary file beside ``path`` and renamed over it only once complete
    and fsynced (:func:`striate.io.atomic_open`), so an error or a kill mid-save leaves any previous
    file at ``path`` intact. Arrays are streamed to disk without building the whole file in memory.

    Args:
        state_dict: a mapping of str names to NumPy arrays, NumPy scalars or striate Tensors of
            dtype float64/32/16, int64/32/16/8, uint64/32/16/8 or bool. ``"__metadata__"`` is
            reserved.
        path: the file to write (str or path-like).
        metadata: optional mapping of str to str stored in the header (read back by
            :func:`load_metadata`).

    Example:
        >>> st.save(model.state_dict(), "lenet5.safetensors", metadata={"model": "lenet5"})  # doctest: +SKIP
    """
    header, arrays = _prepare(state_dict, metadata, "save")
    with atomic_open(path) as file:
        file.write(header)
        for array in arrays:
            _write_array(file, array)


def save_bytes(state_dict, metadata=None):
    """The bytes :func:`save` would write for ``state_dict`` and ``metadata``."""
    header, arrays = _prepare(state_dict, metadata, "save_bytes")
    buffer = io.BytesIO()
    buffer.write(header)
    for array in arrays:
        _write_array(buffer, array)
    return buffer.getvalue()


def _prepare(state_dict, metadata, op):
    """Check the arguments; return the padded header bytes and the arrays in file order."""
    if not isinstance(state_dict, collections.abc.Mapping):
        raise TypeError(f"{op}: expected a mapping of name -> array, got {type(state_dict).__name__}")
    entries = []
    for name, value in state_dict.items():
        if not isinstance(name, str):
            raise TypeError(f"{op}: tensor names must be str, got {type(name).__name__} {name!r}")
        if name == _METADATA_KEY:
            raise ValueError(f"{op}: the name {_METADATA_KEY!r} is reserved for the metadata")
        array = _as_supported_array(value, name, op)
        entries.append((name, array, _CODES[array.dtype.kind, array.dtype.itemsize]))
    # The reference writer's order: widest dtype first, then by name; it keeps every tensor aligned
    # to its item size, since the header is padded to a multiple of 8.
    entries.sort(key=lambda entry: (-_DTYPE_RANK[entry[2]], entry[0]))

    header = {}
    if metadata is not None:
        header[_METADATA_KEY] = _checked_metadata(metadata, op)
    offset = 0
    for name, array, code in entries:
        header[name] = {"dtype": code, "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    try:
        text = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"{op}: names and metadata must be encodable as UTF-8: {error}") from None
    text += b" " * (-len(text) % 8)
    if len(text) > MAX_HEADER_SIZE:
        raise ValueError(f"{op}: the header would be {len(text)} bytes, over the format's limit of "
                         f"{MAX_HEADER_SIZE} bytes (too many tensors or too much metadata)")
    return len(text).to_bytes(8, "little") + text, [array for _, array, _ in entries]


def _as_supported_array(value, name, op):
    """The value as an array of a dtype safetensors can store (no copy)."""
    if isinstance(value, Tensor):
        value = value.data
    if not isinstance(value, (np.ndarray, np.generic)):
        raise TypeError(f"{op}: value of {name!r} must be a NumPy array or a Tensor, got {type(value).__name__}")
    array = np.asarray(value)
    if array.dtype.fields is not None or (array.dtype.kind, array.dtype.itemsize) not in _CODES:
        raise TypeError(f"{op}: value of {name!r} has dtype {array.dtype}, which safetensors cannot store; "
                        f"supported: float64/32/16, int64/32/16/8, uint64/32/16/8, bool")
    return array


def _checked_metadata(metadata, op):
    if not isinstance(metadata, collections.abc.Mapping):
        raise TypeError(f"{op}: metadata must be a mapping of str to str, got {type(metadata).__name__}")
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"{op}: metadata must map str to str, got {type(key).__name__} {key!r} -> "
                            f"{type(value).__name__} {value!r}")
    return dict(metadata)


def _write_array(file, array):
    """Write the array's bytes, little-endian and in C order.

    Arrays are converted one at a time, so a non-contiguous or big-endian array costs one
    temporary copy of itself, never a copy of the whole file.
    """
    # order="C" keeps 0-d arrays 0-d (ascontiguousarray makes them 1-d on NumPy < 2).
    array = np.asarray(array, dtype=array.dtype.newbyteorder("<"), order="C")
    # A flat uint8 view of the contiguous array: written straight from its memory, no copy.
    file.write(array.reshape(-1).view(np.uint8))


# ----- reading ------------------------------------------------------------------------------------
def load(path):
    """Read a safetensors file into a dict of name → NumPy array, checking every rule of the format first.

    Returns:
        A dict in file order of new, writable, C-contiguous arrays in native byte order (they
        share no memory with each other or the file). BF16 tensors come back as float32.

    Raises:
        striate.FormatError: the file is not a valid safetensors file (truncated, a bad header,
            offsets that overlap, leave gaps or disagree with shapes, unknown dtypes, ...).
        OSError: the file cannot be opened or read.

    Example:
        >>> model.load_state_dict(st.load("lenet5.safetensors"))  # doctest: +SKIP
    """
    where = os.fspath(path)
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        return _read_tensors(file, _read_header(file, size, where), where)


def load_metadata(path):
    """The ``__metadata__`` str → str dict of a safetensors file (empty if none), after checking the whole header."""
    where = os.fspath(path)
    with open(path, "rb") as file:
        return _read_header(file, os.fstat(file.fileno()).st_size, where).metadata


def load_bytes(data):
    """Like :func:`load`, for the bytes of a safetensors file held in memory."""
    data = memoryview(data).cast("B")
    file = io.BytesIO(data)
    return _read_tensors(file, _read_header(file, len(data), "<bytes>"), "<bytes>")


class _Header:
    """A checked header: the metadata, and ``(name, code, shape, begin, end)`` entries sorted by offset."""

    def __init__(self, metadata, entries, data_start):
        self.metadata, self.entries, self.data_start = metadata, entries, data_start


def _read_header(file, size, where):
    """Read and check the length field and JSON header of ``file`` (``size`` bytes long) at position 0."""
    if size < 8:
        raise FormatError(f"{where}: not a safetensors file: it is {size} bytes long, shorter than the "
                          f"8-byte header length field")
    length = int.from_bytes(_read_exactly(file, 8, where), "little")
    if length < 2:
        raise FormatError(f"{where}: header length {length} is below the minimum of 2 bytes ('{{}}')")
    if length > MAX_HEADER_SIZE:
        raise FormatError(f"{where}: header length {length} exceeds the limit of {MAX_HEADER_SIZE} bytes")
    if length > size - 8:
        raise FormatError(f"{where}: header length {length} exceeds the {size - 8} bytes that follow the "
                          f"length field (file size {size})")
    raw = _read_exactly(file, length, where)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise FormatError(f"{where}: header is not valid UTF-8: {error}") from None
    if not text.startswith("{"):
        raise FormatError(f"{where}: header must start with '{{', got {text[:20]!r}")
    try:
        header = json.loads(text, object_pairs_hook=_object_without_duplicates, parse_constant=_reject_constant)
    except FormatError as error:
        raise FormatError(f"{where}: {error}") from None
    except (ValueError, RecursionError) as error:  # JSONDecodeError, over-long integers, deep nesting
        raise FormatError(f"{where}: header is not valid JSON: {error}") from None
    if not isinstance(header, dict):
        raise FormatError(f"{where}: header must be a JSON object, got {type(header).__name__}")

    metadata = header.pop(_METADATA_KEY, {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise FormatError(f"{where}: {_METADATA_KEY!r} must be an object mapping str to str, got {metadata!r:.200}")
    entries = [_checked_entry(name, entry, where) for name, entry in header.items()]
    data_size = size - 8 - length
    _check_offsets(entries, data_size, where)
    return _Header(metadata, entries, 8 + length)


def _object_without_duplicates(pairs):
    counts = collections.Counter(name for name, _ in pairs)
    if len(counts) != len(pairs):
        duplicates = sorted(name for name, count in counts.items() if count > 1)
        raise FormatError(f"header has duplicate names {duplicates!r:.200}")
    return dict(pairs)


def _reject_constant(name):
    raise FormatError(f"header is not valid JSON: {name} is not a JSON value")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _checked_entry(name, entry, where):
    """Check one tensor's header entry; return ``(name, code, shape, begin, end)``."""
    label = f"{where}: tensor {name!r:.200}"
    if not isinstance(entry, dict) or entry.keys() != _ENTRY_KEYS:
        keys = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
        raise FormatError(f"{label}: entry must be an object with exactly the keys "
                          f"['data_offsets', 'dtype', 'shape'], got {keys!r:.200}")
    code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if code not in _DTYPES:
        raise FormatError(f"{label}: unknown or unsupported dtype {code!r:.50}; supported: {', '.join(_DTYPES)}")
    if not isinstance(shape, list) or not all(_is_int(dim) and dim >= 0 for dim in shape):
        raise FormatError(f"{label}: shape must be a list of non-negative integers, got {shape!r:.200}")
    if len(shape) > _MAX_NDIM:
        raise FormatError(f"{label}: shape has {len(shape)} dimensions, more than NumPy's limit of {_MAX_NDIM}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) and o >= 0 for o in offsets)):
        raise FormatError(f"{label}: data_offsets must be [begin, end], two non-negative integers, "
                          f"got {offsets!r:.200}")
    begin, end = offsets
    if end < begin:
        raise FormatError(f"{label}: data_offsets end {end} is before begin {begin}")
    itemsize = _DTYPES[code].itemsize
    # Python integers cannot overflow, so a hostile shape cannot wrap around to a small size.
    nbytes = math.prod(shape) * itemsize
    if nbytes != end - begin:
        raise FormatError(f"{label}: shape {shape!r:.200} of {code} needs {nbytes} bytes but data_offsets "
                          f"[{begin}, {end}] hold {end - begin}")
    # Even an empty array (a 0 in the shape) must have a nominal size NumPy can represent.
    if math.prod(dim for dim in shape if dim) * itemsize > _MAX_ARRAY_BYTES:
        raise FormatError(f"{label}: shape {shape!r:.200} is too large for a NumPy array")
    return name, code, tuple(shape), begin, end


def _check_offsets(entries, data_size, where):
    """The tensors must tile the data area exactly: sorted by offset, no gap, no overlap, nothing after."""
    entries.sort(key=lambda entry: (entry[3], entry[4]))
    position = 0
    for name, _, _, begin, end in entries:
        if begin != position:
            rule = "overlaps the previous tensor" if begin < position else "leaves a gap after the previous tensor"
            raise FormatError(f"{where}: tensor {name!r:.200} {rule}: its data_offsets begin at {begin}, "
                              f"the previous tensor ends at {position}")
        position = end
    if position != data_size:
        rule = "extend past" if position > data_size else "do not cover"
        raise FormatError(f"{where}: the tensors' data_offsets end at {position} but {rule} the data area "
                          f"of {data_size} bytes" + (" (trailing bytes)" if position < data_size else ""))


def _read_tensors(file, header, where):
    """Read every tensor of a checked header into its own new array."""
    file.seek(header.data_start)
    tensors = {}
    for name, code, shape, begin, end in header.entries:
        array = np.empty(shape, dtype=_DTYPES[code] if code != "BOOL" else np.uint8)
        _readinto_exactly(file, array.reshape(-1).view(np.uint8), where)
        tensors[name] = _to_native(array, code, name, where)
    return tensors


def _to_native(array, code, name, where):
    if code == "BOOL":
        if array.size and array.max() > 1:
            raise FormatError(f"{where}: tensor {name!r:.200} of dtype BOOL holds byte {int(array.max())}, "
                              f"not 0 or 1")
        return array.view(np.bool_)
    if code == "BF16":
        # bfloat16 is the top half of a float32: shifting the 16 bits up widens it exactly.
        # (In place, so a 0-d array stays an array rather than becoming a NumPy scalar.)
        wide = array.astype(np.uint32)
        wide <<= 16
        return wide.view(np.float32)
    if sys.byteorder == "big" and array.dtype.itemsize > 1:
        return array.astype(array.dtype.newbyteorder("="))
    return array


def _read_exactly(file, count, where):
    data = file.read(count)
    if len(data) != count:
        raise FormatError(f"{where}: file is truncated: expected {count} more bytes, got {len(data)}")
    return data


def _readinto_exactly(file, buffer, where):
    view, filled = memoryview(buffer), 0
    while filled < len(view):
        count = file.readinto(view[filled:])
        if not count:
            raise FormatError(f"{where}: file is truncated: expected {len(view) - filled} more bytes of tensor data")
        filled += count
