"""``DataLoader``: batches of a dataset as Tensors, shuffled reproducibly per (seed, epoch)."""
import collections.abc
import math
import numbers

import numpy

from striate.autograd.tensor import Tensor
from striate.data.dataset import TensorDataset
from striate.random import default_generator


def default_collate(batch):
    """Stack a list of samples into a batch, field by field, as Tensors.

    NumPy arrays and Tensors are stacked along a new first axis (dtype kept); NumPy scalars keep
    their dtype; Python ints become int64, bools bool, floats float32 (striate's default); strings
    stay a list; tuples, lists and dicts are collated field by field (a tuple or dict comes back).

    Example::

        >>> images, labels = default_collate([(numpy.zeros((1, 2, 2), numpy.float32), 3)] * 4)
        >>> images.shape, labels.dtype
        ((4, 1, 2, 2), dtype('int64'))
    """
    if not batch:
        raise ValueError("default_collate: cannot collate an empty batch")
    elem = batch[0]
    if isinstance(elem, Tensor):
        return Tensor._from_array(_stack([s.data for s in batch]))
    if isinstance(elem, (numpy.ndarray, numpy.generic)):
        return Tensor._from_array(_stack([numpy.asarray(s) for s in batch]))
    if isinstance(elem, numbers.Real):
        # Every sample of the field must be the same kind of number: [1, 2.5] must not become int64 [1, 2].
        kind = (bool if isinstance(elem, bool) else
                numbers.Integral if isinstance(elem, numbers.Integral) else numbers.Real)
        if not all(isinstance(s, kind) and (kind is bool or not isinstance(s, bool)) for s in batch):
            types = sorted({type(s).__name__ for s in batch})
            raise TypeError(f"default_collate: every sample of a field must have the same kind of number as the "
                            f"first ({type(elem).__name__}), got types {types}")
        dtype = {bool: numpy.bool_, numbers.Integral: numpy.int64, numbers.Real: numpy.float32}[kind]
        return Tensor._from_array(numpy.array(batch, dtype=dtype))
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, collections.abc.Mapping):
        keys = set(elem)
        for s in batch:
            if not isinstance(s, collections.abc.Mapping) or set(s) != keys:
                got = sorted(map(str, s)) if isinstance(s, collections.abc.Mapping) else type(s).__name__
                raise ValueError(f"default_collate: every dict sample must have the keys of the first, "
                                 f"{sorted(map(str, keys))}, got {got}")
        return {key: default_collate([s[key] for s in batch]) for key in elem}
    if isinstance(elem, collections.abc.Sequence):
        lengths = {len(s) for s in batch}
        if len(lengths) != 1:
            raise ValueError(f"default_collate: every sample must have the same number of fields, "
                             f"got lengths {sorted(lengths)}")
        return tuple(default_collate(list(field)) for field in zip(*batch))
    raise TypeError(f"default_collate: cannot collate samples of type {type(elem).__name__} "
                    "(expected arrays, Tensors, numbers, strings, or tuples/lists/dicts of them)")


def _stack(arrays):
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"default_collate: every sample must have the same shape to be stacked, "
                         f"got {sorted(shapes)}")
    return numpy.stack(arrays)


class DataLoader:
    """Iterate over a dataset in batches, optionally shuffled, yielding Tensors.

    With ``shuffle=True`` the order of epoch ``e`` is a pure function of ``(seed, e)``, where
    ``e`` counts the iterations started (``loader.epoch`` is the number of the next one; it is
    settable, so a run resumed after ``k`` finished epochs sets ``loader.epoch = k`` and sees the
    same batches an uninterrupted run would).

    Args:
        dataset: a map-style dataset (``__getitem__`` and ``__len__``).
        batch_size: samples per batch.
        shuffle: visit the samples in a fresh permutation every epoch.
        drop_last: leave out the last batch when it would be smaller than ``batch_size``.
        seed: the shuffle seed (a non-negative int). ``None`` draws one from
            ``striate.random.default_generator()`` once, here, so ``st.manual_seed`` governs it.
        collate_fn: turns a list of samples into a batch; default ``default_collate``.

    Example::

        >>> loader = DataLoader(Digits(transform=ToArray()), batch_size=64, shuffle=True, seed=0)
        >>> for images, labels in loader:   # float32 (64, 1, 28, 28), int64 (64,)
        ...     ...
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None, collate_fn=None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
            raise ValueError(f"DataLoader: seed must be a non-negative int or None, got {seed!r}")
        if not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
            raise TypeError(f"DataLoader: dataset must be map-style (support len() and dataset[i]), "
                            f"got {type(dataset).__name__}")
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"DataLoader: collate_fn must be callable, got {type(collate_fn).__name__}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        if seed is None and self.shuffle:
            seed = int(default_generator().integers(2**63))
        self.seed = None if seed is None else int(seed)
        self.collate_fn = collate_fn
        self._epoch = 0

    @property
    def epoch(self):
        """The number of iterations started so far: the next ``iter(loader)`` runs epoch ``epoch``."""
        return self._epoch

    @epoch.setter
    def epoch(self, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"DataLoader: epoch must be a non-negative int, got {value!r}")
        self._epoch = int(value)

    def order(self, epoch):
        """The sample indices in the order epoch ``epoch`` visits them."""
        n = len(self.dataset)
        if not self.shuffle:
            return numpy.arange(n)
        return numpy.random.default_rng((self.seed, int(epoch))).permutation(n)

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        # The epoch advances when iteration starts, not when the generator is first advanced.
        order = self.order(self._epoch)
        self._epoch += 1
        return self._batches(order)

    def _batches(self, order):
        stop = len(self) * self.batch_size if self.drop_last else len(order)
        for start in range(0, stop, self.batch_size):
            yield self._fetch(order[start:start + self.batch_size])

    def _fetch(self, indices):
        if self.collate_fn is None and type(self.dataset) is TensorDataset:
            # Same result as collating the rows one by one, in one gather per array.
            return tuple(Tensor._from_array(a[indices]) for a in self.dataset.arrays)
        getitems = getattr(self.dataset, "__getitems__", None)  # PyTorch's batched-fetch hook
        samples = getitems(indices.tolist()) if getitems is not None else [self.dataset[int(i)] for i in indices]
        return (self.collate_fn or default_collate)(samples)

    def __repr__(self):
        return (f"DataLoader(dataset={type(self.dataset).__name__} of {len(self.dataset)}, "
                f"batch_size={self.batch_size}, shuffle={self.shuffle}, drop_last={self.drop_last}, "
                f"seed={self.seed})")


__all__ = ["DataLoader", "default_collate"]
