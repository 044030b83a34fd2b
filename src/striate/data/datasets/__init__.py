"""Datasets of labelled images: MNIST, Fashion-MNIST from their files, and the embedded ``Digits``."""
from striate.data.datasets.digits import Digits
from striate.data.datasets.mnist import MNIST_MEAN, MNIST_STD, MNIST, FashionMNIST

__all__ = ["MNIST", "FashionMNIST", "Digits", "MNIST_MEAN", "MNIST_STD"]
