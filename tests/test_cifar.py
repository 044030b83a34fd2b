"""CIFAR-10/100 readers on small files made here in both real formats; every malformed or hostile file refused."""
import io
import os
import pickle
import shutil
import tarfile

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cifar_files import FOLDERS, binary_bytes, py2_pickle, python_batch, records, write_cifar, write_pickle
from striate import FormatError
from striate.data import DataLoader
from striate.data.datasets import CIFAR10, CIFAR10_MEAN, CIFAR10_STD, CIFAR100
from striate.data.transforms import Compose, Normalize, RandomCrop, RandomHorizontalFlip, ToArray

READERS = {"cifar10": CIFAR10, "cifar100": CIFAR100}


def check(dataset, expected, train):
    images, labels, coarse = expected[train]
    assert dataset.data.dtype == numpy.uint8 and dataset.data.shape == (len(labels), 32, 32, 3)
    numpy.testing.assert_array_equal(dataset.data, images)
    assert dataset.targets.dtype == numpy.int64
    numpy.testing.assert_array_equal(dataset.targets, labels)
    if coarse is not None:
        numpy.testing.assert_array_equal(dataset.coarse_targets, coarse)
    image, label = dataset[len(labels) - 1]
    numpy.testing.assert_array_equal(image, images[-1])
    assert label == labels[-1] and type(label) is int


# ----- reading both distributions ----------------------------------------------------------------
@pytest.mark.parametrize("kind", ["cifar10", "cifar100"])
@pytest.mark.parametrize("fmt,protocol", [("binary", None), ("python", "py2"), ("python", 2), ("python", 4),
                                          ("python", 5)])
def test_reads_both_splits_of_every_format(tmp_path, rng, kind, fmt, protocol):
    folder, expected = write_cifar(tmp_path, kind, fmt, rng, protocol=protocol)
    for train in (True, False):
        dataset = READERS[kind](tmp_path, train=train)   # root: the folder's parent ...
        assert dataset.format == fmt and dataset.folder == folder
        check(dataset, expected, train)
        check(READERS[kind](folder, train=train), expected, train)   # ... or the folder itself
    n_files = 5 if kind == "cifar10" else 1
    assert len(READERS[kind](tmp_path)) == 3 * n_files
    assert dataset.classes == [f"class_{i}" for i in range(10 if kind == "cifar10" else 100)]  # from the meta file


def test_pixel_layout_is_red_green_blue_planes_row_by_row(tmp_path):
    chw = numpy.zeros((1, 3, 32, 32), numpy.uint8)
    chw[0, 0, 0, 1] = 200   # red, row 0, column 1
    chw[0, 2, 31, 0] = 100  # blue, row 31, column 0
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        (folder / name).write_bytes(binary_bytes(chw, numpy.array([7])))
    record = (folder / "test_batch.bin").read_bytes()
    assert record[0] == 7 and record[1 + 1] == 200 and record[1 + 2048 + 31 * 32] == 100
    image = CIFAR10(tmp_path, train=False).data[0]
    assert image[0, 1, 0] == 200 and image[31, 0, 2] == 100 and image.sum() == 300


def test_binary_is_preferred_and_both_versions_agree(tmp_path, rng):
    chw, labels, _ = records(rng, 4, "cifar10")
    for fmt in ("binary", "python"):
        folder = tmp_path / FOLDERS["cifar10", fmt]
        folder.mkdir()
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            if fmt == "binary":
                (folder / (name + ".bin")).write_bytes(binary_bytes(chw, labels))
            else:
                write_pickle(folder / name, python_batch(chw, labels), "py2")
    both = CIFAR10(tmp_path)
    assert both.format == "binary"
    python = CIFAR10(tmp_path / "cifar-10-batches-py")
    assert python.format == "python"
    numpy.testing.assert_array_equal(both.data, python.data)
    numpy.testing.assert_array_equal(both.targets, python.targets)
    assert both.classes == CIFAR10.classes[:] and both.classes[6] == "frog"   # no meta file: the standard names


def test_cifar100_standard_names_and_coarse_labels(tmp_path, rng):
    write_cifar(tmp_path, "cifar100", "binary", rng, meta=False)
    dataset = CIFAR100(tmp_path)
    assert len(dataset.classes) == 100 and dataset.classes[:3] == ["apple", "aquarium_fish", "baby"]
    assert dataset.classes[-1] == "worm" and sorted(dataset.classes) == dataset.classes
    assert dataset.coarse_targets.dtype == numpy.int64 and dataset.coarse_targets.max() < 20


def test_transforms_and_a_loader_give_training_batches(tmp_path, rng):
    write_cifar(tmp_path, "cifar10", "binary", rng, n=4)
    train = CIFAR10(tmp_path, transform=Compose([ToArray(), RandomCrop(32, padding=4, seed=0),
                                                 RandomHorizontalFlip(seed=1), Normalize(CIFAR10_MEAN, CIFAR10_STD)]),
                    target_transform=lambda y: y + 100)
    images, labels = next(iter(DataLoader(train, batch_size=8, shuffle=True, seed=0)))
    assert images.shape == (8, 3, 32, 32) and str(images.dtype) == "float32"
    assert labels.numpy().min() >= 100
    assert "CIFAR10(root=" in repr(train) and "20 samples" in repr(train)


def test_missing_files_say_what_is_expected_and_what_is_there(tmp_path, rng):
    with pytest.raises(FileNotFoundError, match=r"CIFAR10: expected the training files of the binary version "
                                                r"\(data_batch_1\.bin, .*\) or of the python version"):
        CIFAR10(tmp_path)
    folder, _ = write_cifar(tmp_path, "cifar10", "binary", rng)
    os.remove(os.path.join(folder, "data_batch_3.bin"))
    with pytest.raises(FileNotFoundError, match=r"cifar-10-batches-bin has data_batch_1\.bin, data_batch_2\.bin, "
                                                r"data_batch_4\.bin, data_batch_5\.bin but lacks data_batch_3\.bin"):
        CIFAR10(tmp_path)
    assert len(CIFAR10(tmp_path, train=False)) == 3   # the test split is complete
    with pytest.raises(FileNotFoundError, match=r"CIFAR100: expected the test files .*\(test\.bin\)"):
        CIFAR100(tmp_path, train=False)


# ----- malformed files ---------------------------------------------------------------------------------
def binary_case(kind, mutate):
    def write(folder, rng):
        chw, labels, coarse = records(rng, 3, kind)
        return mutate(binary_bytes(chw, labels, coarse))
    return write


BINARY_CASES = {
    "one byte short": ("cifar10", lambda b: b[:-1], r"file size 9218 is not a positive multiple of the 3073-byte "
                                                    r"record \(1 label byte\(s\) \+ 3072 pixel bytes\)"),
    "one byte long": ("cifar10", lambda b: b + b"\x00", r"file size 9220 is not a positive multiple"),
    "empty": ("cifar10", lambda b: b"", r"file size 0 is not a positive multiple"),
    "truncated record": ("cifar100", lambda b: b[:3074 + 100], r"file size 3174 is not a positive multiple of the 3074-byte record \(2 label byte\(s\)"),
    "label 10": ("cifar10", lambda b: b[:3073] + b"\x0a" + b[3074:],
                 r"labels must lie in 0\.\.9, got 10 at record 1 \(1 out of range\)"),
    "label 255": ("cifar10", lambda b: b"\xff" + b[1:], r"labels must lie in 0\.\.9, got 255 at record 0"),
    "fine label 100": ("cifar100", lambda b: b[:1] + b"\x64" + b[2:], r"labels must lie in 0\.\.99, got 100"),
    "coarse label 20": ("cifar100", lambda b: b"\x14" + b[1:], r"coarse labels must lie in 0\.\.19, got 20"),
}


@pytest.mark.parametrize("case", sorted(BINARY_CASES))
def test_malformed_binary_files_raise_format_error_naming_file_and_rule(tmp_path, rng, case):
    kind, mutate, pattern = BINARY_CASES[case]
    folder, _ = write_cifar(tmp_path, kind, "binary", rng)
    target = os.path.join(folder, "test_batch.bin" if kind == "cifar10" else "test.bin")
    chw, labels, coarse = records(rng, 3, kind)
    with open(target, "wb") as f:
        f.write(mutate(binary_bytes(chw, labels, coarse)))
    with pytest.raises(FormatError, match=rf"{os.path.basename(target)}: {pattern}"):
        READERS[kind](tmp_path, train=False)


def batch_with(**changes):
    """A valid python batch of 3 images (Python 2 keys), with entries replaced or removed (None)."""
    rng = numpy.random.default_rng(0)
    batch = python_batch(*records(rng, 3, "cifar10"))
    for key, value in changes.items():
        if value is None:
            del batch[key.encode()]
        else:
            batch[key.encode()] = value
    return batch


PYTHON_CASES = {
    "labels count": (batch_with(labels=[1, 2]), r"image/label count mismatch: 3 images but 2 labels"),
    "label out of range": (batch_with(labels=[1, 2, 10]), r"labels must lie in 0\.\.9, got 10 at record 2"),
    "negative label": (batch_with(labels=[1, -1, 2]), r"labels must lie in 0\.\.9, got -1 at record 1"),
    "labels not ints": (batch_with(labels=[b"1", 2, 3]), r"'labels' must be a list of ints"),
    "bool labels": (batch_with(labels=[True, 2, 3]), r"'labels' must be a list of ints"),
    "huge label": (batch_with(labels=[2**70, 2, 3]), r"'labels' holds integers outside the int64 range"),
    "float data": (batch_with(data=numpy.zeros((3, 3072), numpy.float32)),
                   r"'data' must be a uint8 array of shape \(N, 3072\), got a float32 array of shape \(3, 3072\)"),
    "wrong width": (batch_with(data=numpy.zeros((3, 3071), numpy.uint8)), r"'data' must be .*, got a uint8 array of shape \(3, 3071\)"),
    "3-d data": (batch_with(data=numpy.zeros((3, 3, 1024), numpy.uint8)), r"'data' must be .*, got a uint8 array of shape \(3, 3, 1024\)"),
    "data a list": (batch_with(data=[0] * 3072), r"'data' must be a uint8 array .*, got a list"),
    "no data": (batch_with(data=None), r"missing the 'data' entry"),
    "no labels": (batch_with(labels=None), r"missing the 'labels' entry"),
    "not a dict": ([1, 2, 3], r"expected a pickled dict, got a list"),
}


@pytest.mark.parametrize("case", sorted(PYTHON_CASES))
def test_malformed_python_batches_raise_format_error_naming_file_and_rule(tmp_path, rng, case):
    obj, pattern = PYTHON_CASES[case]
    folder, _ = write_cifar(tmp_path, "cifar10", "python", rng)
    with open(os.path.join(folder, "test_batch"), "wb") as f:
        f.write(pickle.dumps(obj, protocol=2))
    with pytest.raises(FormatError, match=rf"test_batch: {pattern}"):
        CIFAR10(tmp_path, train=False)


class RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("where", ["batch", "meta"])
def test_a_hostile_python_batch_is_refused_and_runs_nothing(tmp_path, rng, where):
    folder, _ = write_cifar(tmp_path, "cifar10", "python", rng)
    marker = tmp_path / "pwned"
    name = "data_batch_2" if where == "batch" else "batches.meta"
    hostile = batch_with(labels=[1, 2, RunsACommand(marker)])
    with open(os.path.join(folder, name), "wb") as f:
        f.write(pickle.dumps(hostile, protocol=2))
    with pytest.raises(FormatError, match=rf"{name}: refused global (posix|nt|os)\.system"):
        CIFAR10(tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize("mutate,pattern", [
    (lambda d: d[:-1], r"malformed pickle"),
    (lambda d: d[:len(d) // 2], r"malformed pickle"),
    (lambda d: d + b"\n", r"1 trailing byte\(s\) after STOP"),
])
def test_truncated_and_padded_pickles_are_refused(tmp_path, rng, mutate, pattern):
    folder, _ = write_cifar(tmp_path, "cifar10", "python", rng)
    path = os.path.join(folder, "test_batch")
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(mutate(data))
    with pytest.raises(FormatError, match=pattern):
        CIFAR10(tmp_path, train=False)


@pytest.mark.parametrize("fmt,content,pattern", [
    ("binary", "airplane\nautomobile\n", r"batches\.meta\.txt: expected 10 class names, got 2"),
    ("binary", b"\xff\xfe", r"class names must be ASCII text"),
    ("python", {b"label_names": [b"a"] * 11}, r"batches\.meta: expected 10 class names, got 11"),
    ("python", {b"label_names": b"abc"}, r"'label_names' must be a list of strings"),
])
def test_bad_meta_files_raise_format_error(tmp_path, rng, fmt, content, pattern):
    folder, _ = write_cifar(tmp_path, "cifar10", fmt, rng)
    path = os.path.join(folder, "batches.meta.txt" if fmt == "binary" else "batches.meta")
    with open(path, "wb") as f:
        f.write(content.encode() if isinstance(content, str) else content if isinstance(content, bytes)
                else py2_pickle(content))
    with pytest.raises(FormatError, match=pattern):
        CIFAR10(tmp_path, train=False)


# ----- download (offline): only the expected regular files leave the archive ---------------------------
def test_download_extracts_only_expected_regular_files(tmp_path, rng, monkeypatch):
    source = tmp_path / "source"
    _, expected = write_cifar(source, "cifar10", "binary", rng)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(source / "cifar-10-batches-bin", arcname="cifar-10-batches-bin")
        evil = tarfile.TarInfo("../../escaped.txt")
        evil.size = 4
        tar.addfile(evil, io.BytesIO(b"evil"))
        link = tarfile.TarInfo("cifar-10-batches-bin/readme.html")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    archive = buffer.getvalue()
    calls = []

    def fake_download(urls, path, md5, **kwargs):
        calls.append((urls, md5))   # the real download_file verifies md5 (tested in test_datasets.py)
        with open(path, "wb") as f:
            f.write(archive)

    monkeypatch.setattr("striate.data.datasets.cifar.download_file", fake_download)
    root = tmp_path / "root"
    dataset = CIFAR10(root, train=False, download=True)
    assert calls == [(["https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"], "c32a1d4ab5d03f1284b67883e8d87530")]
    check(dataset, expected, False)
    assert sorted(os.listdir(root / "cifar-10-batches-bin")) == sorted(
        [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin", "batches.meta.txt"])
    assert not (tmp_path / "escaped.txt").exists() and not (root.parent / "escaped.txt").exists()
    CIFAR10(root, download=True)   # files present: no second download
    assert len(calls) == 1


def test_download_of_a_corrupt_archive_is_a_format_error(tmp_path, monkeypatch):
    monkeypatch.setattr("striate.data.datasets.cifar.download_file",
                        lambda urls, path, md5, **kw: open(path, "wb").write(b"\x1f\x8b not really gzip"))
    with pytest.raises(FormatError, match=r"cifar-10-binary\.tar\.gz: cannot extract"):
        CIFAR10(tmp_path, download=True)


# ----- fuzzing: any file content either loads or raises FormatError ------------------------------------
@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    """One valid binary and one valid python CIFAR-10 tree, copied per example (faster than rewriting)."""
    rng = numpy.random.default_rng(7)
    made = {}
    for fmt in ("binary", "python"):
        root = tmp_path_factory.mktemp(fmt)
        write_cifar(root, "cifar10", fmt, rng, n=2, protocol="py2")
        made[fmt] = root
    return made


def loads_or_refuses(root):
    try:
        CIFAR10(root, train=False)
    except FormatError:
        pass


@settings(max_examples=150, deadline=None)
@given(fmt=st.sampled_from(["binary", "python"]), data=st.data())
def test_random_and_mutated_files_load_or_raise_format_error(layouts, tmp_path_factory, fmt, data):
    root = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(layouts[fmt], root, dirs_exist_ok=True)
    name = "test_batch.bin" if fmt == "binary" else "test_batch"
    path = root / FOLDERS["cifar10", fmt] / name
    original = path.read_bytes()
    if data.draw(st.booleans(), label="random bytes"):
        content = data.draw(st.binary(max_size=7000), label="content")
    else:
        content = bytearray(original)
        for _ in range(data.draw(st.integers(1, 4), label="edits")):
            position = data.draw(st.integers(0, len(content)), label="position")
            action = data.draw(st.sampled_from(["set", "insert", "delete", "truncate"]), label="action")
            value = data.draw(st.integers(0, 255), label="value")
            if action == "set" and position < len(content):
                content[position] = value
            elif action == "insert":
                content.insert(position, value)
            elif action == "delete":
                del content[position:position + 1]
            else:
                del content[position:]
    path.write_bytes(bytes(content))
    loads_or_refuses(root)
