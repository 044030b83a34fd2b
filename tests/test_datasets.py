"""MNIST / Fashion-MNIST readers, the download logic (offline), and the embedded Digits."""
import gzip
import hashlib
import importlib.resources
import os
import pathlib
import struct

import numpy
import pytest

from striate import FormatError
from striate.data import DataLoader
from striate.data.datasets import MNIST, MNIST_MEAN, MNIST_STD, Digits, FashionMNIST
from striate.data.download import download_file
from striate.data.transforms import Compose, Normalize, ToArray

SHARED_MNIST = pathlib.Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist"
needs_mnist = pytest.mark.skipif(not (SHARED_MNIST / "train-images-idx3-ubyte.gz").exists(),
                                 reason=f"the full MNIST files are not at {SHARED_MNIST}")

# From ../shared/data/README.md, and MNIST's published per-class counts.
DECOMPRESSED_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
CLASS_COUNTS = {
    True: [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    False: [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
}
FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def images_idx(images):
    n, h, w = images.shape
    return struct.pack(">4B3I", 0, 0, 8, 3, n, h, w) + images.astype(numpy.uint8).tobytes()


def labels_idx(labels):
    return struct.pack(">4BI", 0, 0, 8, 1, len(labels)) + bytes(int(v) for v in labels)


def make_mnist_dir(root, rng, n_train=12, n_test=5, gz=False, **overrides):
    """A fake MNIST directory; ``overrides`` maps a file name to the bytes to write instead."""
    root.mkdir(parents=True, exist_ok=True)
    content = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        content[f"{prefix}-images"] = rng.integers(0, 256, size=(n, 28, 28), dtype=numpy.uint8)
        content[f"{prefix}-labels"] = rng.integers(0, 10, size=n)
    blobs = {
        "train-images-idx3-ubyte": images_idx(content["train-images"]),
        "train-labels-idx1-ubyte": labels_idx(content["train-labels"]),
        "t10k-images-idx3-ubyte": images_idx(content["t10k-images"]),
        "t10k-labels-idx1-ubyte": labels_idx(content["t10k-labels"]),
    }
    blobs.update(overrides)
    for name, data in blobs.items():
        if gz:
            (root / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (root / name).write_bytes(data)
    return content


# ----- reading -------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [MNIST, FashionMNIST])
@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_reads_standard_files(tmp_path, rng, cls, gz):
    content = make_mnist_dir(tmp_path, rng, gz=gz)
    for train, prefix, n in ((True, "train", 12), (False, "t10k", 5)):
        ds = cls(tmp_path, train=train)
        assert len(ds) == n
        assert ds.data.dtype == numpy.uint8 and ds.data.shape == (n, 28, 28)
        assert ds.targets.dtype == numpy.int64 and ds.targets.shape == (n,)
        numpy.testing.assert_array_equal(ds.data, content[f"{prefix}-images"])
        numpy.testing.assert_array_equal(ds.targets, content[f"{prefix}-labels"])
        image, label = ds[3]
        assert image.dtype == numpy.uint8 and image.shape == (28, 28)
        assert type(label) is int and label == content[f"{prefix}-labels"][3]
        assert len(ds.classes) == 10
        assert len(list(ds)) == n  # __getitem__ raises IndexError past the end
    assert FashionMNIST.classes[9] == "Ankle boot" and MNIST.classes[3] == "3 - three"


def test_transforms_are_applied(tmp_path, rng):
    content = make_mnist_dir(tmp_path, rng)
    ds = MNIST(tmp_path, transform=Compose([ToArray(), Normalize(MNIST_MEAN, MNIST_STD)]),
               target_transform=lambda y: y + 100)
    image, label = ds[0]
    assert image.shape == (1, 28, 28) and image.dtype == numpy.float32
    numpy.testing.assert_allclose(image[0], (content["train-images"][0] / 255 - 0.1307) / 0.3081, rtol=1e-5, atol=1e-6)
    assert label == content["train-labels"][0] + 100
    x, y = next(iter(DataLoader(ds, batch_size=4)))
    assert x.shape == (4, 1, 28, 28) and x.dtype == numpy.float32 and y.dtype == numpy.int64


def test_missing_files_name_directory_and_files_and_suggest_download(tmp_path, rng):
    with pytest.raises(FileNotFoundError, match=r"MNIST: train-images-idx3-ubyte, train-labels-idx1-ubyte "
                                                r"\(raw or .gz\) not found in directory .*download=True") as info:
        MNIST(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(info.value)
    make_mnist_dir(tmp_path, rng)
    os.remove(tmp_path / "t10k-labels-idx1-ubyte")
    MNIST(tmp_path)  # the train split is complete
    with pytest.raises(FileNotFoundError, match=r"FashionMNIST: t10k-labels-idx1-ubyte \(raw or .gz\) not found"):
        FashionMNIST(tmp_path, train=False)


BAD = {
    "label 10": ({"train-labels-idx1-ubyte": labels_idx([0, 1, 10] + [0] * 9)},
                 r"train-labels-idx1-ubyte.gz: labels must lie in 0..9, got 10 at index 2 \(1 out of range\)"),
    "count mismatch": ({"train-labels-idx1-ubyte": labels_idx([0] * 11)},
                       "image/label count mismatch: 12 images in train-images-idx3-ubyte.gz but 11 labels"),
    "image size": ({"train-images-idx3-ubyte": struct.pack(">4B3I", 0, 0, 8, 3, 12, 27, 28) + bytes(12 * 27 * 28)},
                   "expected 28×28 images, got 27×28"),
    "labels rank": ({"train-labels-idx1-ubyte": struct.pack(">4B2I", 0, 0, 8, 2, 12, 1) + bytes(12)},
                    "expected a rank-1 IDX file, got rank 2"),
    "images type": ({"train-images-idx3-ubyte": struct.pack(">4B3I", 0, 0, 0x0D, 3, 12, 28, 28) + bytes(12 * 784 * 4)},
                    "expected elements of type uint8, got type code 0x0D"),
    "truncated images": ({"train-images-idx3-ubyte": images_idx(numpy.zeros((12, 28, 28)))[:-1]},
                         "payload size mismatch"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_corrupt_files_raise_format_error(tmp_path, rng, case):
    overrides, message = BAD[case]
    make_mnist_dir(tmp_path, rng, gz=True, **overrides)
    with pytest.raises(FormatError, match=message):
        MNIST(tmp_path)


# ----- download (offline: file:// mirrors) ---------------------------------------------------------
def _serve(directory, files):
    """Write ``files`` (name → bytes) into ``directory`` and return its file:// URL with a trailing slash."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return directory.as_uri() + "/"


def _fake_release(rng):
    """The four .gz files of a small fake MNIST release and their MD5s."""
    gz = {}
    for prefix, n in (("train", 6), ("t10k", 3)):
        gz[f"{prefix}-images-idx3-ubyte.gz"] = gzip.compress(images_idx(rng.integers(0, 256, (n, 28, 28))))
        gz[f"{prefix}-labels-idx1-ubyte.gz"] = gzip.compress(labels_idx(rng.integers(0, 10, n)))
    md5s = [(name, hashlib.md5(gz[name + ".gz"]).hexdigest()) for name in FILES]
    return gz, md5s


def test_download_falls_back_to_the_next_mirror_on_checksum_mismatch(tmp_path, rng, monkeypatch):
    gz, md5s = _fake_release(rng)
    corrupt = {name: data[:-1] + b"\x00" for name, data in gz.items()}
    monkeypatch.setattr(MNIST, "mirrors", [_serve(tmp_path / "bad", corrupt), (tmp_path / "absent").as_uri() + "/",
                                           _serve(tmp_path / "good", gz)])
    monkeypatch.setattr(MNIST, "resources", md5s)
    root = tmp_path / "data" / "mnist"
    ds = MNIST(root, download=True)
    assert len(ds) == 6 and len(MNIST(root, train=False)) == 3
    assert sorted(os.listdir(root)) == sorted(gz)  # no temporary files left behind
    for name, data in gz.items():
        assert (root / name).read_bytes() == data


def test_download_with_no_good_mirror_writes_nothing(tmp_path, rng, monkeypatch):
    gz, md5s = _fake_release(rng)
    corrupt = {name: data + b"junk" for name, data in gz.items()}
    monkeypatch.setattr(FashionMNIST, "mirrors", [_serve(tmp_path / "bad", corrupt)])
    monkeypatch.setattr(FashionMNIST, "resources", md5s)
    root = tmp_path / "fashion"
    with pytest.raises(RuntimeError, match=r"could not fetch train-images-idx3-ubyte.gz from any mirror:\n.*"
                                           r"MD5 mismatch: expected " + md5s[0][1]):
        FashionMNIST(root, download=True)
    assert os.listdir(root) == []


def test_download_skips_files_already_present(tmp_path, rng, monkeypatch):
    make_mnist_dir(tmp_path, rng)
    monkeypatch.setattr(MNIST, "mirrors", [])  # any fetch would fail
    assert len(MNIST(tmp_path, download=True)) == 12


def test_failed_download_never_replaces_an_existing_file(tmp_path, monkeypatch):
    target = tmp_path / "file.gz"
    target.write_bytes(b"old contents")
    url = _serve(tmp_path / "mirror", {"file.gz": b"new contents"})
    with pytest.raises(RuntimeError, match="MD5 mismatch"):
        download_file([url + "file.gz"], target, "0" * 32)
    assert target.read_bytes() == b"old contents"

    class Interrupted:
        """A response that delivers one chunk, then the connection drops."""

        def __init__(self, *args, **kwargs):
            self.chunks = [b"partial"]

        def read(self, size):
            if self.chunks:
                return self.chunks.pop()
            raise ConnectionResetError("connection reset by peer")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr("urllib.request.urlopen", Interrupted)
    with pytest.raises(RuntimeError, match="connection reset by peer"):
        download_file(["http://example.invalid/file.gz"], target, hashlib.md5(b"partial").hexdigest())
    assert target.read_bytes() == b"old contents"
    assert sorted(os.listdir(tmp_path)) == ["file.gz", "mirror"]

    good = hashlib.md5(b"new contents").hexdigest()
    monkeypatch.undo()
    assert download_file([url + "file.gz"], target, good.upper()) == str(target)
    assert target.read_bytes() == b"new contents"


def test_download_refuses_oversized_responses(tmp_path):
    url = _serve(tmp_path / "mirror", {"big.gz": bytes(5000)})
    with pytest.raises(RuntimeError, match="more than 1000 bytes"):
        download_file([url + "big.gz"], tmp_path / "big.gz", hashlib.md5(bytes(5000)).hexdigest(), max_bytes=1000)
    assert not (tmp_path / "big.gz").exists()


# ----- the real MNIST ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_mnist():
    return {train: MNIST(SHARED_MNIST, train=train) for train in (True, False)}


@needs_mnist
@pytest.mark.parametrize("train,prefix,count", [(True, "train", 60000), (False, "t10k", 10000)])
def test_real_mnist(real_mnist, train, prefix, count):
    ds = real_mnist[train]
    assert len(ds) == count and ds.data.shape == (count, 28, 28)
    # The decompressed files are the published ones, and what we read is exactly their payload.
    images = gzip.decompress((SHARED_MNIST / f"{prefix}-images-idx3-ubyte.gz").read_bytes())
    labels = gzip.decompress((SHARED_MNIST / f"{prefix}-labels-idx1-ubyte.gz").read_bytes())
    assert hashlib.md5(images).hexdigest() == DECOMPRESSED_MD5[f"{prefix}-images-idx3-ubyte"]
    assert hashlib.md5(labels).hexdigest() == DECOMPRESSED_MD5[f"{prefix}-labels-idx1-ubyte"]
    assert ds.data.tobytes() == images[16:]
    assert ds.targets.astype(numpy.uint8).tobytes() == labels[8:]
    assert ds.targets.min() == 0 and ds.targets.max() == 9
    assert numpy.bincount(ds.targets).tolist() == CLASS_COUNTS[train]


@needs_mnist
def test_real_mnist_through_fashion_reader(real_mnist):
    # Fashion-MNIST shares the format; the reader must not care which it is given.
    assert len(FashionMNIST(SHARED_MNIST, train=False)) == 10000


# ----- the embedded digits -------------------------------------------------------------------------
@pytest.mark.parametrize("train,per_class", [(True, 1000), (False, 200)])
def test_digits_counts_balance_and_format(train, per_class):
    ds = Digits(train=train)
    assert len(ds) == 10 * per_class
    assert ds.data.dtype == numpy.uint8 and ds.data.shape == (10 * per_class, 28, 28)
    assert ds.targets.dtype == numpy.int64
    assert numpy.bincount(ds.targets, minlength=10).tolist() == [per_class] * 10
    image, label = ds[0]
    assert image.shape == (28, 28) and type(label) is int
    assert ds.classes == MNIST.classes
    assert ds.data.reshape(len(ds), -1).std(axis=1).min() > 0  # real pictures, not blanks


def test_digits_transform_and_repr():
    ds = Digits(train=False, transform=ToArray(), target_transform=str)
    image, label = ds[1]
    assert image.shape == (1, 28, 28) and image.dtype == numpy.float32 and isinstance(label, str)
    assert repr(ds) == "Digits(test, 2000 samples)"


def test_sample_files_are_small_and_licensed():
    sample = importlib.resources.files("striate.data").joinpath("sample")
    names = [f + ".gz" for f in FILES] + ["LICENSE.txt"]
    total = sum(len(sample.joinpath(name).read_bytes()) for name in names)
    assert total <= 3 * 1024 * 1024
    license_text = sample.joinpath("LICENSE.txt").read_text(encoding="utf-8")
    for phrase in ("LeCun", "Cortes", "Burges", "CC BY-SA 3.0", "make_sample_digits.py"):
        assert phrase in license_text


@needs_mnist
@pytest.mark.parametrize("train", [True, False])
def test_digits_are_real_mnist_images(real_mnist, train):
    def rows(data):
        return [bytes(row) for row in data.reshape(len(data), -1)]

    source = real_mnist[train]
    label_of = dict(zip(rows(source.data), source.targets.tolist()))
    digits = Digits(train=train)
    for image, label in zip(rows(digits.data), digits.targets.tolist()):
        assert label_of.get(image) == label  # every image is in the source split, with its own label
    if not train:  # held out: no test digit is an MNIST training image
        assert not set(rows(digits.data)) & set(rows(real_mnist[True].data))
