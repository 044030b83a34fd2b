"""CIFAR-10 and CIFAR-100 from either standard distribution: the binary files, or the python pickles read safely.

The binary version (``cifar-10-batches-bin``, ``cifar-100-binary``) is a sequence of records,
each the label byte(s) then 3072 pixel bytes: 1024 red, 1024 green, 1024 blue, row by row
(CIFAR-100: a coarse-label byte, then the fine-label byte). It is read directly with NumPy.

The python version (``cifar-10-batches-py``, ``cifar-100-python``) is a set of pickles made by
Python 2; they are read with :mod:`striate.data.safe_pickle`, which builds the dicts and
arrays without ever importing or calling anything the file names, so a hostile batch is
refused and runs nothing.

Every file is checked before it is used: sizes, shapes, dtypes, label ranges and
image/label counts; a violation raises ``FormatError`` naming the file and the rule.
"""
import gzip
import os
import tarfile
import zlib

import numpy

from striate.data import safe_pickle
from striate.data.datasets.mnist import LabelledImages
from striate.data.download import download_file
from striate.errors import FormatError
from striate.io import atomic_open

# Per-channel mean and std of the training pixels in [0, 1] (RGB), the values in common use.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)

IMAGE_SHAPE = (32, 32, 3)
PIXELS = 32 * 32 * 3
# A downloaded archive member larger than this is not a CIFAR file (the largest, CIFAR-100's train.bin, is 154 MB).
_MAX_MEMBER_BYTES = 200 << 20


class CIFAR10(LabelledImages):
    """CIFAR-10 (A. Krizhevsky, 2009): 60,000 32×32 colour images in 10 classes, 50,000 for training.

    Args:
        root: the directory that holds the standard files — the extracted
            ``cifar-10-batches-bin`` (``data_batch_1.bin`` … ``data_batch_5.bin``,
            ``test_batch.bin``, optionally ``batches.meta.txt``) or ``cifar-10-batches-py``
            (``data_batch_1`` … ``data_batch_5``, ``test_batch``, optionally ``batches.meta``)
            folder, or the directory containing one of those folders. The binary version is
            preferred when both are present.
        train: the 50,000 training images if true, else the 10,000 test images.
        transform: applied to each uint8 ``(32, 32, 3)`` (H, W, C) image, e.g.
            ``Compose([ToArray(), RandomCrop(32, padding=4), RandomHorizontalFlip(), Normalize(...)])``.
        target_transform: applied to each int label.
        download: fetch the binary version from the official address into ``root``
            (verifying its MD5) if no complete set of files is there.

    Attributes:
        data: uint8 ``(N, 32, 32, 3)``. targets: int64 ``(N,)``. classes: the class names
            (from the meta file when present). files: the paths that were read. format: ``"binary"``
            or ``"python"``. coarse_targets: CIFAR-100's int64 super-class labels (None for CIFAR-10).

    Raises:
        FileNotFoundError: no complete set of files in ``root`` (the message lists what is missing).
        FormatError: a file is truncated, too long, malformed, hostile, or holds out-of-range labels.

    Example::

        >>> train = CIFAR10("data/cifar-10-batches-bin", transform=ToArray())
        >>> image, label = train[0]        # float32 (3, 32, 32), 6
        >>> train.classes[label]
        'frog'
    """

    folders = {"binary": "cifar-10-batches-bin", "python": "cifar-10-batches-py"}
    num_classes = 10
    # file names per format and split (train=True / False)
    file_names = {
        "binary": {True: [f"data_batch_{i}.bin" for i in range(1, 6)], False: ["test_batch.bin"]},
        "python": {True: [f"data_batch_{i}" for i in range(1, 6)], False: ["test_batch"]},
    }
    meta_files = {"binary": "batches.meta.txt", "python": "batches.meta"}
    meta_key = "label_names"
    labels_key = "labels"
    label_bytes = 1   # the fine (only) label is the last of the record's label bytes
    url = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    md5 = "c32a1d4ab5d03f1284b67883e8d87530"
    # The python version, as torchvision fetches it (not used by download, which takes the binary one).
    python_url = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    python_md5 = "c58f30108f718f92721af3b95e74349a"
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        self.root = os.fspath(root)
        self.train = bool(train)
        found = self._locate()
        if found is None and download:
            self.download()
            found = self._locate()
        if found is None:
            raise FileNotFoundError(self._missing_message())
        self.format, self.folder = found
        self.files = [os.path.join(self.folder, name) for name in self.file_names[self.format][self.train]]
        self.classes = self._read_classes()
        read = self._read_binary if self.format == "binary" else self._read_python
        parts = [read(path) for path in self.files]   # (images, labels, coarse labels or None) per file
        data = numpy.concatenate([p[0] for p in parts])
        targets = numpy.concatenate([p[1] for p in parts])
        coarse = [p[2] for p in parts]
        self.coarse_targets = None if any(c is None for c in coarse) else numpy.concatenate(coarse)
        super().__init__(data, targets, transform, target_transform)

    # ----- finding the files --------------------------------------------------------------------------
    def _candidates(self):
        """``(format, directory)`` pairs to try, in order of preference."""
        for fmt in ("binary", "python"):
            yield fmt, os.path.join(self.root, self.folders[fmt])
            yield fmt, self.root

    def _locate(self):
        for fmt, folder in self._candidates():
            names = self.file_names[fmt][self.train]
            if all(os.path.isfile(os.path.join(folder, name)) for name in names):
                return fmt, folder
        return None

    def _missing_message(self):
        name = type(self).__name__
        lines = []
        for fmt, folder in self._candidates():
            names = self.file_names[fmt][self.train]
            present = [n for n in names if os.path.isfile(os.path.join(folder, n))]
            if present:
                missing = [n for n in names if n not in present]
                lines.append(f"{folder} has {', '.join(present)} but lacks {', '.join(missing)}")
        split = "training" if self.train else "test"
        binary, python = (", ".join(self.file_names[fmt][self.train]) for fmt in ("binary", "python"))
        expected = f"the {split} files of the binary version ({binary}) or of the python version ({python})"
        where = (f"in {os.path.abspath(self.root)!r} or its sub-directory {self.folders['binary']!r} or "
                 f"{self.folders['python']!r}")
        detail = ("; " + "; ".join(lines)) if lines else ""
        return (f"{name}: expected {expected} {where}{detail}. Pass download=True to fetch the binary version.")

    # ----- reading --------------------------------------------------------------------------------------
    def _read_binary(self, path):
        """``(images uint8 (N, 32, 32, 3), labels int64 (N,), coarse labels or None)`` of one binary file."""
        record = self.label_bytes + PIXELS
        size = os.path.getsize(path)
        if size == 0 or size % record:
            raise FormatError(f"{path}: file size {size} is not a positive multiple of the {record}-byte record "
                              f"({self.label_bytes} label byte(s) + {PIXELS} pixel bytes)")
        with open(path, "rb") as f:
            raw = f.read(size + 1)
        if len(raw) != size:  # the file changed under us
            raise FormatError(f"{path}: expected {size} bytes, read {len(raw)}")
        records = numpy.frombuffer(raw, dtype=numpy.uint8).reshape(-1, record)        # (N, labels + 3072)
        coarse = self._check_labels(records[:, 0], 20, path, "coarse label") if self.label_bytes == 2 else None
        labels = self._check_labels(records[:, self.label_bytes - 1], self.num_classes, path, "label")
        images = records[:, self.label_bytes:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # (N,C,H,W) -> (N,H,W,C)
        return numpy.ascontiguousarray(images), labels, coarse

    def _read_python(self, path):
        """One python-version batch (a dict with ``data`` uint8 (N, 3072) and N int labels), as ``_read_binary``."""
        batch = _plain_keys(safe_pickle.load(path), path)
        for key in ("data", self.labels_key):
            if key not in batch:
                raise FormatError(f"{path}: missing the {key!r} entry (found {sorted(batch)[:8]})")
        data = batch["data"]
        if not isinstance(data, numpy.ndarray) or data.dtype != numpy.uint8 or data.ndim != 2 \
                or data.shape[1] != PIXELS:
            what = (f"a {data.dtype} array of shape {data.shape}" if isinstance(data, numpy.ndarray)
                    else f"a {type(data).__name__}")
            raise FormatError(f"{path}: 'data' must be a uint8 array of shape (N, {PIXELS}), got {what}")
        labels = _int_array(batch[self.labels_key], path, self.labels_key)
        if len(labels) != len(data):
            raise FormatError(f"{path}: image/label count mismatch: {len(data)} images but {len(labels)} "
                              f"{self.labels_key}")
        coarse = None
        if self.label_bytes == 2 and "coarse_labels" in batch:
            coarse = _int_array(batch["coarse_labels"], path, "coarse_labels")
            if len(coarse) != len(data):
                raise FormatError(f"{path}: image/label count mismatch: {len(data)} images but {len(coarse)} "
                                  "coarse_labels")
            coarse = self._check_labels(coarse, 20, path, "coarse label")
        labels = self._check_labels(labels, self.num_classes, path, "label")
        images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)                  # (N, C, H, W) -> (N, H, W, C)
        return numpy.ascontiguousarray(images), labels, coarse

    @staticmethod
    def _check_labels(labels, count, path, what):
        bad = numpy.flatnonzero((labels < 0) | (labels >= count))
        if bad.size:
            raise FormatError(f"{path}: {what}s must lie in 0..{count - 1}, got {int(labels[bad[0]])} at "
                              f"record {int(bad[0])} ({bad.size} out of range)")
        return labels.astype(numpy.int64)

    def _read_classes(self):
        """The class names from the meta file when it is there, else the standard names."""
        path = os.path.join(self.folder, self.meta_files[self.format])
        if not os.path.isfile(path):
            return list(self.classes)
        if self.format == "binary":
            with open(path, "rb") as f:
                raw = f.read(1 << 20)
            try:
                names = [line.strip() for line in raw.decode("ascii").splitlines() if line.strip()]
            except UnicodeDecodeError:
                raise FormatError(f"{path}: class names must be ASCII text, one per line") from None
        else:
            meta = _plain_keys(safe_pickle.load(path, max_bytes=1 << 20), path)
            names = meta.get(self.meta_key)
            if not isinstance(names, list) or not all(isinstance(n, (bytes, str)) for n in names):
                raise FormatError(f"{path}: {self.meta_key!r} must be a list of strings")
            names = [n.decode("latin-1") if isinstance(n, bytes) else n for n in names]
        if len(names) != self.num_classes:
            raise FormatError(f"{path}: expected {self.num_classes} class names, got {len(names)}")
        return names

    # ----- download -------------------------------------------------------------------------------------
    def download(self):
        """Fetch the binary version into ``root``, verify its MD5, and extract only the expected files."""
        os.makedirs(self.root, exist_ok=True)
        archive = os.path.join(self.root, os.path.basename(self.url))
        if not os.path.isfile(archive):
            download_file([self.url], archive, self.md5, max_bytes=400 << 20)
        wanted = set(self.file_names["binary"][True] + self.file_names["binary"][False] + [self.meta_files["binary"]])
        folder = os.path.join(self.root, self.folders["binary"])
        os.makedirs(folder, exist_ok=True)
        try:
            with tarfile.open(archive, "r:gz") as tar:
                for member in tar:
                    name = os.path.basename(member.name)
                    # Regular files with the expected names only: no links, no paths outside root.
                    if not member.isfile() or name not in wanted:
                        continue
                    if member.size > _MAX_MEMBER_BYTES:
                        raise FormatError(f"{archive}: member {member.name} is {member.size} bytes, "
                                          "larger than any CIFAR file")
                    source = tar.extractfile(member)
                    with atomic_open(os.path.join(folder, name)) as out:
                        while chunk := source.read(1 << 20):
                            out.write(chunk)
        except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as error:
            raise FormatError(f"{archive}: cannot extract: {error}") from None

    def _describe(self):
        return f"root={self.root!r}, {self.format}, {super()._describe()}"


class CIFAR100(CIFAR10):
    """CIFAR-100: 60,000 32×32 colour images in 100 fine classes (20 coarse super-classes).

    Same arguments as :class:`CIFAR10`; the files are the binary version's ``train.bin`` and
    ``test.bin`` (folder ``cifar-100-binary``, class names in ``fine_label_names.txt``) or the
    python version's ``train`` and ``test`` (folder ``cifar-100-python``, names in ``meta``).
    Items carry the fine label; ``coarse_targets`` holds the coarse ones.
    """

    folders = {"binary": "cifar-100-binary", "python": "cifar-100-python"}
    file_names = {"binary": {True: ["train.bin"], False: ["test.bin"]},
             "python": {True: ["train"], False: ["test"]}}
    meta_files = {"binary": "fine_label_names.txt", "python": "meta"}
    meta_key = "fine_label_names"
    labels_key = "fine_labels"
    label_bytes = 2
    num_classes = 100
    url = "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"
    md5 = "03b5dce01913d631647c71ecec9e9cb8"
    python_url = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
    python_md5 = "eb9058c3a382ffc7106e4002c42a8d85"
    classes = [
        "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
        "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
        "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
        "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
        "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
        "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
        "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
        "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
        "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger",
        "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
    ]


def _plain_keys(obj, path):
    """A pickled dict with its keys as str (the real files' keys are Python 2 byte strings)."""
    if not isinstance(obj, dict):
        raise FormatError(f"{path}: expected a pickled dict, got a {type(obj).__name__}")
    out = {}
    for key, value in obj.items():
        if not isinstance(key, (bytes, str)):
            raise FormatError(f"{path}: dict keys must be strings, got a {type(key).__name__}")
        out[key.decode("latin-1") if isinstance(key, bytes) else key] = value
    return out


def _int_array(values, path, key):
    """A list (or 1-D integer array) of ints as an int64 array; anything else is a FormatError."""
    if isinstance(values, numpy.ndarray):
        if values.ndim != 1 or values.dtype.kind not in "iu":
            raise FormatError(f"{path}: {key!r} must be a 1-D integer array, got {values.dtype} of shape "
                              f"{values.shape}")
        return values
    if not isinstance(values, list) or not all(type(v) is int for v in values):
        raise FormatError(f"{path}: {key!r} must be a list of ints")
    if values and (min(values) < -2**63 or max(values) >= 2**63):
        raise FormatError(f"{path}: {key!r} holds integers outside the int64 range")
    return numpy.array(values, dtype=numpy.int64)


__all__ = ["CIFAR10", "CIFAR100", "CIFAR10_MEAN", "CIFAR10_STD", "CIFAR100_MEAN", "CIFAR100_STD"]
