"""A pickle reader that builds plain data only: it never imports or calls anything a file names.

``pickle.load`` is a small virtual machine whose ``GLOBAL`` and ``REDUCE`` opcodes import
any module and call any function the file names, so unpickling a stranger's file runs the
stranger's code. The CIFAR python batches are pickles of dicts holding NumPy arrays, so
``load`` interprets the opcodes itself (walked with ``pickletools.genops``, which only
decodes them) and builds nothing but dicts, lists, tuples, str, bytes, ints, floats, bools,
None and NumPy arrays of numbers.

NumPy arrays are pickled as calls to a few NumPy functions. Those are recognised by *name*
and the array is built here from its raw bytes, after checking the shape, the dtype and
that the bytes match them exactly (arrays come back writable, in native byte order); the
named functions are never imported or called:

- ``numpy.core.multiarray._reconstruct`` (or ``numpy._core...``) with ``numpy.ndarray``,
  followed by ``BUILD`` with ``(version, shape, dtype, is_fortran, raw bytes)`` (protocols 0–4);
- ``numpy.core.numeric._frombuffer(buffer, dtype, shape, order)`` (protocol 5);
- ``numpy.dtype(code, align, copy)`` followed by ``BUILD`` with the byte order, for numeric
  dtypes only (bool, int, uint, float, complex);
- ``_codecs.encode(text, "latin1")`` and ``bytes()``: how Python 3 writes ``bytes`` at protocols 0–2.

Any other global, and every opcode that could call or construct something else (``INST``,
``OBJ``, ``NEWOBJ``, ``NEWOBJ_EX``, ``PERSID``, ``BINPERSID``, the ``EXT`` registry,
out-of-band buffers, sets), raises ``FormatError`` naming the opcode and the global, before
anything is built. A pickle whose declared lengths run past the end of the file, or whose
array shape disagrees with its bytes, is refused before any allocation larger than the file.
"""
import io
import numbers
import os
import pickletools
import re
import struct

import numpy

from striate.errors import FormatError

_RECONSTRUCT = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}
_FROMBUFFER = {("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer")}
_NDARRAY = ("numpy", "ndarray")
_DTYPE = ("numpy", "dtype")
_CODECS_ENCODE = ("_codecs", "encode")
_BYTES = {("builtins", "bytes"), ("__builtin__", "bytes")}  # bytes() is how protocols 0-2 write b""
_ALLOWED_GLOBALS = _RECONSTRUCT | _FROMBUFFER | _BYTES | {_NDARRAY, _DTYPE, _CODECS_ENCODE}

# Numeric dtype codes as numpy.dtype's pickle spells them: kind and item size, e.g. "u1", "f8".
_DTYPE_CODE = re.compile(r"(b1|[iu](1|2|4|8)|f(2|4|8)|c(8|16))")
_BYTE_ORDERS = ("<", ">", "=", "|")
_LATIN1 = ("latin1", "latin-1")

_PUSH_CONSTANT = {
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
    "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8",
}
# Python 2 ``str``: pickletools decodes it as latin-1 text; with encoding="bytes" it comes back as bytes.
_PY2_STRING = {"STRING", "BINSTRING", "SHORT_BINSTRING"}
_PUT = {"PUT", "BINPUT", "LONG_BINPUT"}
_GET = {"GET", "BINGET", "LONG_BINGET"}
_DICT_KEY_TYPES = (str, bytes, int, float, bool, type(None))

DEFAULT_MAX_BYTES = 1 << 30


class _Global:
    """An allowed global, by name only: an inert token that REDUCE recognises."""

    __slots__ = ("module", "name")

    def __init__(self, module, name):
        self.module, self.name = module, name

    @property
    def key(self):
        return (self.module, self.name)


class _Pending:
    """The result of ``_reconstruct(...)`` or ``numpy.dtype(...)``: completed by the BUILD that follows.

    ``memo_keys`` lists the memo slots holding it, so they can be pointed at the finished object.
    """

    __slots__ = ("kind", "code", "memo_keys")

    def __init__(self, kind, code=None):
        self.kind, self.code, self.memo_keys = kind, code, []


def _text(value):
    """A str, or a Python 2 str read as bytes, as str; None for anything else."""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value if isinstance(value, str) else None


def load(path, *, encoding="bytes", max_bytes=DEFAULT_MAX_BYTES):
    """Read a pickle file, building plain data and NumPy arrays only; never import or call anything.

    Args:
        path: the file.
        encoding: how Python 2 ``str`` values are returned: ``"bytes"`` (as ``bytes``, what
            ``pickle.load(f, encoding="bytes")`` does) or ``"latin1"`` (as ``str``).
        max_bytes: refuse a file larger than this.

    Returns:
        The unpickled object.

    Raises:
        FormatError: the file is not a pickle, is truncated or has trailing bytes, or names a
            global or uses an opcode outside the plain-data subset (the message names both).

    Example::

        >>> batch = load("cifar-10-batches-py/data_batch_1")
        >>> batch[b"data"].shape, len(batch[b"labels"])
        ((10000, 3072), 10000)
    """
    name = os.fspath(path)
    size = os.path.getsize(name)
    if size > max_bytes:
        raise FormatError(f"safe_pickle: {name}: file of {size} bytes exceeds the limit of {max_bytes} bytes")
    with open(name, "rb") as f:
        data = f.read(size + 1)   # the size just measured, not the limit: no 1 GiB buffer for a small file
    if len(data) > max_bytes:      # it grew since
        raise FormatError(f"safe_pickle: {name}: file grew past the limit of {max_bytes} bytes while being read")
    return loads(data, encoding=encoding, source=name)


def loads(data, *, encoding="bytes", source="<bytes>"):
    """``load`` for a bytes object (``source`` names it in error messages)."""
    if encoding not in ("bytes",) + _LATIN1:
        raise ValueError(f"safe_pickle: encoding must be 'bytes' or 'latin1', got {encoding!r}")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"safe_pickle: expected bytes, got {type(data).__name__}")
    return _Machine(bytes(data), encoding, source).run()


class _Machine:
    """The unpickling stack machine, restricted to plain data (modelled on CPython's ``_Unpickler``)."""

    def __init__(self, data, encoding, source):
        self.data = data
        self.py2_bytes = encoding == "bytes"
        self.source = source
        self.stack = []
        self.metastack = []
        self.memo = {}
        self.pos = 0
        self.op = ""

    def fail(self, rule):
        raise FormatError(f"safe_pickle: {self.source}: {rule} (opcode {self.op} at byte {self.pos})")

    def run(self):
        ops = pickletools.genops(io.BytesIO(self.data))
        while True:
            try:
                opcode, arg, pos = next(ops)   # genops itself raises ValueError at the end without STOP
            except (ValueError, struct.error, EOFError, OverflowError, UnicodeError, StopIteration) as error:
                # pickletools' own decoding errors: unknown opcode, a length past the end, bad text, no STOP.
                raise FormatError(f"safe_pickle: {self.source}: malformed pickle: "
                                  f"{str(error) or 'it ends before seeing STOP'}") from None
            self.op, self.pos = opcode.name, pos
            if opcode.name == "STOP":
                return self.stop(pos)
            self.step(opcode.name, arg)

    def stop(self, pos):
        if pos + 1 != len(self.data):
            self.fail(f"{len(self.data) - pos - 1} trailing byte(s) after STOP")
        if self.metastack:
            self.fail("STOP inside an unclosed MARK")
        if len(self.stack) != 1:
            self.fail(f"STOP expects exactly one object on the stack, found {len(self.stack)}")
        result = self.stack.pop()
        self.check_plain(result)
        return result

    # ----- the stack ------------------------------------------------------------------------------------
    def pop(self):
        if not self.stack:
            self.fail("stack underflow")
        return self.stack.pop()

    def top(self):
        if not self.stack:
            self.fail("stack underflow")
        return self.stack[-1]

    def pop_mark(self):
        if not self.metastack:
            self.fail("no MARK to pop to")
        items, self.stack = self.stack, self.metastack.pop()
        return items

    def items(self, values):
        """``values`` as container items: unfinished arrays and dtypes, and globals, may not be stored."""
        for v in values:
            if isinstance(v, (_Pending, _Global)):
                what = f"global {v.module}.{v.name}" if isinstance(v, _Global) else f"an unfinished {v.kind}"
                self.fail(f"{what} cannot be stored in a container")
        return values

    def set_items(self, target, flat):
        if not isinstance(target, dict):
            self.fail(f"expected a dict to set items on, got {type(target).__name__}")
        if len(flat) % 2:
            self.fail("odd number of items for a dict")
        for key, value in zip(flat[::2], flat[1::2]):
            if not isinstance(key, _DICT_KEY_TYPES):
                self.fail(f"dict keys must be str, bytes, numbers or None, got {type(key).__name__}")
            target[key] = value

    # ----- one opcode -----------------------------------------------------------------------------------
    def step(self, op, arg):
        stack = self.stack
        if op in _PUSH_CONSTANT:
            stack.append(arg)
        elif op in _PY2_STRING:
            stack.append(arg.encode("latin-1") if self.py2_bytes else arg)
        elif op == "BYTEARRAY8":
            stack.append(bytes(arg))
        elif op == "NONE":
            stack.append(None)
        elif op == "NEWTRUE":
            stack.append(True)
        elif op == "NEWFALSE":
            stack.append(False)
        elif op in ("PROTO", "FRAME"):
            if op == "PROTO" and not 0 <= arg <= 5:
                self.fail(f"unsupported pickle protocol {arg}")
        elif op == "MARK":
            self.metastack.append(stack)
            self.stack = []
        elif op == "POP":
            self.pop() if stack else self.pop_mark()
        elif op == "POP_MARK":
            self.pop_mark()
        elif op == "DUP":
            stack.append(self.top())
        elif op == "EMPTY_LIST":
            stack.append([])
        elif op == "EMPTY_DICT":
            stack.append({})
        elif op == "EMPTY_TUPLE":
            stack.append(())
        elif op in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(op[-1])
            if len(stack) < n:
                self.fail("stack underflow")
            values = tuple(stack[-n:])  # tuples may hold tokens and dtypes: they are REDUCE arguments
            del stack[-n:]
            stack.append(values)
        elif op == "TUPLE":
            values = self.pop_mark()
            self.stack.append(tuple(values))
        elif op == "LIST":
            values = list(self.items(self.pop_mark()))  # before self.stack is read: pop_mark replaces it
            self.stack.append(values)
        elif op == "DICT":
            d = {}
            self.set_items(d, self.items(self.pop_mark()))
            self.stack.append(d)
        elif op == "APPEND":
            value = self.pop()
            self.append(self.top(), [value])
        elif op == "APPENDS":
            values = self.pop_mark()
            self.append(self.top(), values)
        elif op == "SETITEM":
            value, key = self.pop(), self.pop()
            self.set_items(self.top(), self.items([key, value]))
        elif op == "SETITEMS":
            flat = self.items(self.pop_mark())
            self.set_items(self.top(), flat)
        elif op in _PUT or op == "MEMOIZE":
            key = len(self.memo) if op == "MEMOIZE" else arg
            value = self.top()
            self.memo[key] = value
            if isinstance(value, _Pending):
                value.memo_keys.append(key)
        elif op in _GET:
            if arg not in self.memo:
                self.fail(f"memo key {arg} was never stored")
            stack.append(self.memo[arg])
        elif op == "GLOBAL":
            module, _, name = arg.partition(" ")
            stack.append(self.lookup(module, name))
        elif op == "STACK_GLOBAL":
            name, module = self.pop(), self.pop()
            if not isinstance(module, str) or not isinstance(name, str):
                self.fail("STACK_GLOBAL expects two strings")
            stack.append(self.lookup(module, name))
        elif op == "REDUCE":
            args, func = self.pop(), self.pop()
            stack.append(self.reduce(func, args))
        elif op == "BUILD":
            state = self.pop()
            self.build(self.top(), state)
        else:  # INST, OBJ, NEWOBJ, NEWOBJ_EX, PERSID, BINPERSID, EXT1/2/4, buffers, sets, ...
            detail = f" {arg}" if isinstance(arg, str) else ""
            self.fail(f"refused opcode {op}{detail}: only plain data and NumPy arrays may be unpickled")

    def append(self, target, values):
        if not isinstance(target, list):
            self.fail(f"expected a list to append to, got {type(target).__name__}")
        target.extend(self.items(values))

    # ----- globals, calls and BUILD: NumPy arrays and dtypes only ---------------------------------------
    def lookup(self, module, name):
        if (module, name) not in _ALLOWED_GLOBALS:
            self.fail(f"refused global {module}.{name}: only NumPy array reconstruction may be named")
        return _Global(module, name)

    def reduce(self, func, args):
        if not isinstance(func, _Global):
            self.fail(f"refused REDUCE of a {type(func).__name__}: only NumPy array reconstruction may be called")
        if not isinstance(args, tuple):
            self.fail(f"REDUCE {func.module}.{func.name} expects a tuple of arguments, got {type(args).__name__}")
        key = func.key
        if key in _RECONSTRUCT:
            if (len(args) != 3 or not isinstance(args[0], _Global) or args[0].key != _NDARRAY
                    or not isinstance(args[1], tuple) or not isinstance(args[2], (bytes, str))):
                self.fail(f"{func.module}.{func.name} expects (numpy.ndarray, shape, typecode)")
            return _Pending("array")
        if key == _DTYPE:
            code = _text(args[0]) if args else None   # Python 2 files give the code as a str, read as bytes
            if len(args) != 3 or code is None or not _DTYPE_CODE.fullmatch(code):
                shown = code[:40] if code is not None else "a non-string"
                self.fail(f"numpy.dtype: only numeric dtypes (b1, i1..i8, u1..u8, f2..f8, c8, c16) may be "
                          f"unpickled, got {shown!r}")
            return _Pending("dtype", code)
        if key in _FROMBUFFER:
            if len(args) != 4:
                self.fail(f"{func.module}.{func.name} expects (buffer, dtype, shape, order)")
            buffer, dtype, shape, order = args
            return self.make_array(buffer, dtype, shape, order == "F" if order in ("C", "F") else None)
        if key == _CODECS_ENCODE:
            if len(args) != 2 or not isinstance(args[0], str) or args[1] not in _LATIN1:
                self.fail("_codecs.encode expects (text, 'latin1')")
            try:
                return args[0].encode("latin-1")
            except UnicodeEncodeError:
                self.fail("_codecs.encode: text is not latin-1")
        if key in _BYTES and args == ():
            return b""
        self.fail(f"refused REDUCE of {func.module}.{func.name} with these arguments")

    def build(self, obj, state):
        if not isinstance(obj, _Pending):
            self.fail(f"refused BUILD on a {type(obj).__name__}: only NumPy arrays and dtypes take state")
        if obj.kind == "dtype":
            # (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])
            order = _text(state[1]) if isinstance(state, tuple) and len(state) > 1 else None
            if (not isinstance(state, tuple) or len(state) not in (8, 9) or order not in _BYTE_ORDERS
                    or any(s is not None for s in state[2:5])):
                self.fail("numpy.dtype state must be (version, byteorder, None, None, None, ...) "
                          "for a numeric dtype")
            result = numpy.dtype(obj.code)
            if order in ("<", ">"):
                result = result.newbyteorder(order)
        else:
            # (version, shape, dtype, is_fortran, raw) or, from older NumPy, (shape, dtype, is_fortran, raw)
            if not isinstance(state, tuple) or len(state) not in (4, 5):
                self.fail("numpy array state must be (version, shape, dtype, is_fortran, data)")
            shape, dtype, fortran, raw = state[-4:]
            result = self.make_array(raw, dtype, shape, fortran if isinstance(fortran, (bool, int)) else None)
        self.stack[-1] = result
        for key in obj.memo_keys:
            if self.memo.get(key) is obj:
                self.memo[key] = result

    def make_array(self, raw, dtype, shape, fortran):
        """An array of ``dtype`` and ``shape`` from exactly ``prod(shape) * itemsize`` bytes ``raw``."""
        if not isinstance(dtype, numpy.dtype):
            self.fail(f"array dtype must be a numeric numpy.dtype, got {type(dtype).__name__}")
        if fortran is None:
            self.fail("array order must be 'C' or 'F' (is_fortran a bool)")
        if isinstance(raw, str):  # a Python 2 str read with encoding="latin1"
            try:
                raw = raw.encode("latin-1")
            except UnicodeEncodeError:
                self.fail("array data is text that is not latin-1")
        if not isinstance(raw, bytes):
            self.fail(f"array data must be bytes, got {type(raw).__name__}")
        if not isinstance(shape, tuple) or any(isinstance(d, bool) or not isinstance(d, numbers.Integral)
                                               or not 0 <= d < 2**63 for d in shape) or len(shape) > 32:
            self.fail("array shape must be a tuple of at most 32 non-negative ints")
        expected = dtype.itemsize
        for d in shape:  # Python ints: exact
            expected *= int(d)
        if expected != len(raw):
            self.fail(f"array of shape {tuple(int(d) for d in shape)} and dtype {dtype} needs {expected} bytes "
                      f"of data, got {len(raw)}")
        array = numpy.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C")
        # A writable copy, independent of the file's bytes, in native byte order (as NumPy's unpickler mostly gives).
        return array.astype(dtype.newbyteorder("="), order="K")

    def check_plain(self, result):
        """Walk the result (iteratively: it may be deep or cyclic) and refuse anything but plain data."""
        seen = set()
        todo = [result]
        while todo:
            obj = todo.pop()
            if isinstance(obj, (str, bytes, bool, int, float, type(None), numpy.ndarray)):
                continue
            if isinstance(obj, (list, tuple, dict)):
                if id(obj) in seen:
                    continue
                seen.add(id(obj))
                todo.extend(obj.values() if isinstance(obj, dict) else obj)
                continue
            what = f"global {obj.module}.{obj.name}" if isinstance(obj, _Global) else (
                f"unfinished {obj.kind}" if isinstance(obj, _Pending) else type(obj).__name__)
            self.fail(f"the result holds a {what}, which is not plain data")


__all__ = ["load", "loads", "DEFAULT_MAX_BYTES"]
