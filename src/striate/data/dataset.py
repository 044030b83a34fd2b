"""Datasets: anything with ``__getitem__`` and ``__len__``; arrays sliced along their first axis; subsets."""
import numbers

import numpy

from striate.autograd.tensor import Tensor


class Dataset:
    """A map-style dataset: ``dataset[i]`` is the i-th sample, ``len(dataset)`` the number of samples.

    Subclasses implement both. ``__getitem__`` must raise ``IndexError`` past the end, so
    ``for sample in dataset`` stops.
    """

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")


def _check_index(index, length, owner):
    """``index`` as a non-negative int below ``length`` (negative counts from the end, as in a list)."""
    if isinstance(index, bool) or not isinstance(index, numbers.Integral):
        raise TypeError(f"{owner}: index must be an int, got {type(index).__name__}")
    index = int(index)
    if not -length <= index < length:
        raise IndexError(f"{owner}: index {index} is out of range for {length} samples")
    return index % length


class TensorDataset(Dataset):
    """Samples are the i-th rows of several arrays (or Tensors) with the same first dimension.

    Args:
        *arrays: NumPy arrays or Tensors; ``dataset[i]`` is ``tuple(a[i] for a in arrays)``.

    Example::

        >>> ds = TensorDataset(numpy.zeros((100, 1, 28, 28), numpy.float32), numpy.arange(100))
        >>> image, label = ds[3]
    """

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("TensorDataset: expected at least one array, got none")
        arrays = tuple(a.data if isinstance(a, Tensor) else numpy.asarray(a) for a in arrays)
        for k, a in enumerate(arrays):
            if a.ndim == 0:
                raise ValueError(f"TensorDataset: array {k} is 0-dimensional; every array needs a first "
                                 "(sample) dimension")
        lengths = [len(a) for a in arrays]
        if len(set(lengths)) != 1:
            raise ValueError(f"TensorDataset: every array must have the same first dimension, got {lengths}")
        self.arrays = arrays

    def __getitem__(self, index):
        index = _check_index(index, len(self), "TensorDataset")
        return tuple(a[index] for a in self.arrays)

    def __len__(self):
        return len(self.arrays[0])


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order.

    Example::

        >>> train, val = Subset(ds, range(0, 50000)), Subset(ds, range(50000, 60000))
    """

    def __init__(self, dataset, indices):
        self.dataset = dataset
        indices = numpy.asarray(indices)
        if indices.ndim != 1 or (indices.size and indices.dtype.kind not in "iu"):
            raise TypeError(f"Subset: indices must be a 1-D sequence of ints, got an array of shape "
                            f"{indices.shape} and dtype {indices.dtype}")
        n = len(dataset)
        if indices.size and (indices.min() < -n or indices.max() >= n):
            raise IndexError(f"Subset: indices must lie in [-{n}, {n}) for a dataset of {n} samples, "
                             f"got values from {indices.min()} to {indices.max()}")
        self.indices = indices.astype(numpy.int64) % max(n, 1)

    def __getitem__(self, index):
        return self.dataset[int(self.indices[_check_index(index, len(self), "Subset")])]

    def __len__(self):
        return len(self.indices)


__all__ = ["Dataset", "TensorDataset", "Subset"]
