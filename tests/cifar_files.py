"""Tiny CIFAR-10/100 files in the real formats, written by the tests (binary records, python-version pickles).

``py2_pickle`` writes a pickle the way Python 2's cPickle wrote the real CIFAR python batches
(protocol 2, ``str`` as SHORT_BINSTRING/BINSTRING, the array through
``numpy.core.multiarray._reconstruct`` and ``numpy.dtype('u1', 0, 1)`` + BUILD), so the safe
reader is tested on the byte-level shape of the files people download.
"""
import os
import pickle
import struct

import numpy

FOLDERS = {("cifar10", "binary"): "cifar-10-batches-bin", ("cifar10", "python"): "cifar-10-batches-py",
           ("cifar100", "binary"): "cifar-100-binary", ("cifar100", "python"): "cifar-100-python"}
SPLIT_FILES = {"cifar10": {True: [f"data_batch_{i}" for i in range(1, 6)], False: ["test_batch"]},
               "cifar100": {True: ["train"], False: ["test"]}}
NUM_CLASSES = {"cifar10": 10, "cifar100": 100}


def records(rng, n, kind):
    """``(images CHW uint8 (n, 3, 32, 32), labels, coarse labels or None)`` drawn at random."""
    chw = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=numpy.uint8)
    labels = rng.integers(0, NUM_CLASSES[kind], size=n)
    coarse = rng.integers(0, 20, size=n) if kind == "cifar100" else None
    return chw, labels, coarse


def binary_bytes(chw, labels, coarse=None):
    """The binary version's records: [coarse byte,] label byte, then 3072 bytes R, G, B planes row by row."""
    columns = ([] if coarse is None else [coarse]) + [labels]
    heads = numpy.stack(columns, axis=1).astype(numpy.uint8)
    return numpy.concatenate([heads, chw.reshape(len(chw), -1)], axis=1).tobytes()


def python_batch(chw, labels, coarse=None, kind="cifar10"):
    """The python version's dict, with Python 2 str keys read as bytes (as ``encoding="bytes"`` gives them)."""
    batch = {b"batch_label": b"training batch 1 of 5", b"data": chw.reshape(len(chw), -1),
             b"filenames": [b"img_%d.png" % i for i in range(len(chw))]}
    if kind == "cifar10":
        batch[b"labels"] = [int(v) for v in labels]
    else:
        batch[b"fine_labels"] = [int(v) for v in labels]
        batch[b"coarse_labels"] = [int(v) for v in coarse]
    return batch


def write_cifar(root, kind, fmt, rng, n=3, protocol="py2", meta=True):
    """Write every file of one CIFAR distribution into ``root/<its folder>``.

    Returns ``{train: (images HWC (N, 32, 32, 3), labels int64 (N,), coarse or None)}`` — the
    expected contents, made from the same random arrays, never by the reader under test.
    """
    folder = os.path.join(root, FOLDERS[kind, fmt])
    os.makedirs(folder, exist_ok=True)
    expected = {}
    for train, names in SPLIT_FILES[kind].items():
        parts = []
        for name in names:
            chw, labels, coarse = records(rng, n, kind)
            if fmt == "binary":
                with open(os.path.join(folder, name + ".bin"), "wb") as f:
                    f.write(binary_bytes(chw, labels, coarse))
            else:
                write_pickle(os.path.join(folder, name), python_batch(chw, labels, coarse, kind), protocol)
            parts.append((chw.transpose(0, 2, 3, 1), labels, coarse))
        expected[train] = (numpy.concatenate([p[0] for p in parts]), numpy.concatenate([p[1] for p in parts]),
                           None if kind == "cifar10" else numpy.concatenate([p[2] for p in parts]))
    if meta:
        names = [f"class_{i}" for i in range(NUM_CLASSES[kind])]
        if fmt == "binary":
            meta_name = "batches.meta.txt" if kind == "cifar10" else "fine_label_names.txt"
            with open(os.path.join(folder, meta_name), "w") as f:
                f.write("\n".join(names) + "\n\n")
        else:
            meta_name, key = ("batches.meta", b"label_names") if kind == "cifar10" else ("meta", b"fine_label_names")
            write_pickle(os.path.join(folder, meta_name), {key: [n.encode() for n in names], b"num_vis": 3072},
                         protocol)
    return folder, expected


def write_pickle(path, obj, protocol):
    with open(path, "wb") as f:
        f.write(py2_pickle(obj) if protocol == "py2" else pickle.dumps(obj, protocol=protocol))


def py2_pickle(obj):
    """``obj`` (dicts, lists, bytes as Python 2 str, ints, bools, None, 2-D uint8 arrays) as cPickle protocol 2."""
    out = bytearray(b"\x80\x02")
    memo = [0]

    def put():
        memo[0] += 1
        out.extend(b"q" + bytes([memo[0] % 256]))

    def string(s):
        out.extend((b"U" + bytes([len(s)]) if len(s) < 256 else b"T" + struct.pack("<i", len(s))) + s)
        put()

    def write(o):
        if o is None:
            out.extend(b"N")
        elif isinstance(o, bool):
            out.extend(b"\x88" if o else b"\x89")
        elif isinstance(o, int):
            out.extend(b"K" + bytes([o]) if 0 <= o < 256 else b"M" + struct.pack("<H", o) if 0 <= o < 65536
                       else b"J" + struct.pack("<i", o))
        elif isinstance(o, bytes):
            string(o)
        elif isinstance(o, list):
            out.extend(b"]")
            put()
            if o:
                out.extend(b"(")
                for v in o:
                    write(v)
                out.extend(b"e")
        elif isinstance(o, dict):
            out.extend(b"}")
            put()
            if o:
                out.extend(b"(")
                for k, v in o.items():
                    write(k)
                    write(v)
                out.extend(b"u")
        elif isinstance(o, numpy.ndarray) and o.dtype == numpy.uint8 and o.ndim == 2:
            out.extend(b"cnumpy.core.multiarray\n_reconstruct\n")
            put()
            out.extend(b"cnumpy\nndarray\n")
            put()
            out.extend(b"K\x00\x85")       # (0,)
            string(b"b")
            out.extend(b"\x87R")           # TUPLE3 REDUCE: _reconstruct(ndarray, (0,), 'b')
            put()
            out.extend(b"(K\x01")          # state: (1, shape, dtype, is_fortran, raw)
            write(o.shape[0])
            write(o.shape[1])
            out.extend(b"\x86cnumpy\ndtype\n")
            put()
            string(b"u1")
            out.extend(b"K\x00K\x01\x87R")  # numpy.dtype('u1', 0, 1)
            put()
            out.extend(b"(K\x03")
            string(b"|")
            out.extend(b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89")
            string(numpy.ascontiguousarray(o).tobytes())
            out.extend(b"tb")
        else:
            raise TypeError(f"py2_pickle: cannot write {type(o).__name__}")

    write(obj)
    out.extend(b".")
    return bytes(out)
