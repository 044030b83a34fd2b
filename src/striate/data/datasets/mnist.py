"""MNIST and Fashion-MNIST from their four standard IDX files (raw or ``.gz``) in one directory."""
import os

import numpy

from striate.data.dataset import Dataset
from striate.data.download import download_file
from striate.data.idx import read_idx
from striate.errors import FormatError

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081

IMAGE_SIZE = (28, 28)


def load_image_label_pair(images_path, labels_path, num_classes):
    """Read and cross-check an images file (uint8, N×28×28) and a labels file (uint8, N, each < num_classes).

    Returns:
        ``(images, labels)``: uint8 ``(N, 28, 28)`` and int64 ``(N,)``.
    """
    images = read_idx(images_path, ndim=3, dtype=numpy.uint8)
    if images.shape[1:] != IMAGE_SIZE:
        raise FormatError(f"{os.fspath(images_path)}: expected {IMAGE_SIZE[0]}×{IMAGE_SIZE[1]} images, "
                          f"got {images.shape[1]}×{images.shape[2]}")
    labels = read_idx(labels_path, ndim=1, dtype=numpy.uint8)
    if len(labels) != len(images):
        raise FormatError(f"{os.fspath(labels_path)}: image/label count mismatch: {len(images)} images in "
                          f"{os.path.basename(os.fspath(images_path))} but {len(labels)} labels")
    bad = numpy.flatnonzero(labels >= num_classes)
    if bad.size:
        raise FormatError(f"{os.fspath(labels_path)}: labels must lie in 0..{num_classes - 1}, got "
                          f"{int(labels[bad[0]])} at index {int(bad[0])} ({bad.size} out of range)")
    return images, labels.astype(numpy.int64)


class LabelledImages(Dataset):
    """Images ``.data`` (uint8 N×H×W) with integer labels ``.targets``; items are ``(image, label)``."""

    classes = []

    def __init__(self, data, targets, transform=None, target_transform=None):
        self.data = data
        self.targets = targets
        self.transform = transform
        self.target_transform = target_transform

    def __getitem__(self, index):
        image, label = self.data[index], int(self.targets[index])  # numpy raises IndexError past the end
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return image, label

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        return f"{type(self).__name__}({self._describe()}, {len(self)} samples)"

    def _describe(self):
        return "train" if self.train else "test"


class MNIST(LabelledImages):
    """The MNIST handwritten digits (Y. LeCun, C. Cortes, C. J. C. Burges; CC BY-SA 3.0).

    Args:
        root: the directory holding the four standard files, each raw or gzip-compressed:
            ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
            ``t10k-labels-idx1-ubyte`` (optionally ending in ``.gz``).
        train: the 60,000 training images if true, else the 10,000 test images.
        transform: applied to each uint8 (28, 28) image, e.g. ``Compose([ToArray(), Normalize(...)])``.
        target_transform: applied to each int label.
        download: fetch missing files into ``root`` from the public mirrors, verifying their MD5s.

    Attributes:
        data: uint8 ``(N, 28, 28)``. targets: int64 ``(N,)``. classes: the class names.

    Raises:
        FileNotFoundError: a file is missing (and ``download`` is false).
        FormatError: a file is corrupt (bad header, wrong size, labels out of range, counts differ).

    Example::

        >>> train = MNIST("../shared/data/mnist", transform=ToArray())
        >>> image, label = train[0]          # float32 (1, 28, 28), 5
    """

    mirrors = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]
    # (file name without .gz, MD5 of the .gz file the mirrors serve)
    resources = [
        ("train-images-idx3-ubyte", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        ("train-labels-idx1-ubyte", "d53e105ee54ea40749a09fcbcd1e9432"),
        ("t10k-images-idx3-ubyte", "9fb629c4189551a2d022fa330f9573f3"),
        ("t10k-labels-idx1-ubyte", "ec29112dd5afa0611ce80d1b7f02629c"),
    ]
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four",
               "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine"]

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        self.root = os.fspath(root)
        self.train = bool(train)
        if download:
            self.download()
        prefix = "train" if self.train else "t10k"
        names = [f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"]
        paths = [_find(self.root, name) for name in names]
        if None in paths:
            missing = [name for name, path in zip(names, paths) if path is None]
            raise FileNotFoundError(
                f"{type(self).__name__}: {', '.join(missing)} (raw or .gz) not found in directory "
                f"{os.path.abspath(self.root)!r}; it must hold {', '.join(names)} (each optionally ending in "
                f".gz). Pass download=True to fetch the {type(self).__name__} files there.")
        data, targets = load_image_label_pair(*paths, num_classes=len(self.classes))
        super().__init__(data, targets, transform, target_transform)

    def download(self):
        """Fetch every standard file missing from ``root`` (as ``.gz``), verifying each MD5."""
        os.makedirs(self.root, exist_ok=True)
        for name, md5 in self.resources:
            if _find(self.root, name) is None:
                download_file([mirror + name + ".gz" for mirror in self.mirrors],
                              os.path.join(self.root, name + ".gz"), md5)

    def _describe(self):
        return f"root={self.root!r}, {super()._describe()}"


class FashionMNIST(MNIST):
    """Fashion-MNIST (Zalando Research; MIT licence): 28×28 grey images of ten kinds of clothing.

    Same files, arguments and attributes as :class:`MNIST`.
    """

    mirrors = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
    resources = [
        ("train-images-idx3-ubyte", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        ("train-labels-idx1-ubyte", "25c81989df183df01b3e8a0aad5dffbe"),
        ("t10k-images-idx3-ubyte", "bef4ecab320f06d8554ea6380940ec79"),
        ("t10k-labels-idx1-ubyte", "bb300cfdad3c16e7a12a480ee83cd310"),
    ]
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def _find(root, name):
    """``root/name`` or ``root/name.gz``, whichever exists (raw first), else None."""
    for candidate in (name, name + ".gz"):
        path = os.path.join(root, candidate)
        if os.path.isfile(path):
            return path
    return None


__all__ = ["MNIST", "FashionMNIST", "MNIST_MEAN", "MNIST_STD", "load_image_label_pair"]
