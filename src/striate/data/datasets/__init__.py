"""Datasets of labelled images: MNIST, Fashion-MNIST, CIFAR-10/100 from their files, image folders, embedded ``Digits``."""
from striate.data.datasets.cifar import (CIFAR10, CIFAR10_MEAN, CIFAR10_STD, CIFAR100, CIFAR100_MEAN,
                                         CIFAR100_STD)
from striate.data.datasets.digits import Digits
from striate.data.datasets.folder import IMG_EXTENSIONS, ImageFolder, SkippedFileWarning
from striate.data.datasets.mnist import MNIST_MEAN, MNIST_STD, MNIST, FashionMNIST

__all__ = ["MNIST", "FashionMNIST", "Digits", "MNIST_MEAN", "MNIST_STD", "CIFAR10", "CIFAR100", "CIFAR10_MEAN",
           "CIFAR10_STD", "CIFAR100_MEAN", "CIFAR100_STD", "ImageFolder", "IMG_EXTENSIONS", "SkippedFileWarning"]
