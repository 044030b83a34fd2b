"""Data: datasets, the batching ``DataLoader``, image transforms, and the IDX file format.

    from striate.data import DataLoader
    from striate.data.datasets import Digits, MNIST_MEAN, MNIST_STD
    from striate.data.transforms import Compose, ToArray, Normalize

    train = Digits(transform=Compose([ToArray(), Normalize(MNIST_MEAN, MNIST_STD)]))
    for images, labels in DataLoader(train, batch_size=64, shuffle=True, seed=0):
        ...   # float32 (64, 1, 28, 28), int64 (64,)
"""
from striate.data import datasets, transforms
from striate.data.dataset import Dataset, Subset, TensorDataset
from striate.data.idx import read_idx, write_idx
from striate.data.loader import DataLoader, default_collate

__all__ = ["Dataset", "TensorDataset", "Subset", "DataLoader", "default_collate",
           "read_idx", "write_idx", "datasets", "transforms"]
