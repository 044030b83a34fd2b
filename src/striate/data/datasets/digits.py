"""``Digits``: the MNIST subset shipped inside the package, so training works offline with nothing else."""
import importlib.resources

from striate.data.datasets.mnist import MNIST, LabelledImages, load_image_label_pair


class Digits(LabelledImages):
    """12,000 real MNIST digits embedded in striate: 10,000 for training, 2,000 held out.

    A stratified sample (1,000 training images per class from MNIST's training set, 200 test
    images per class from MNIST's test set), made by ``scripts/make_sample_digits.py``; see
    ``striate/data/sample/LICENSE.txt`` (MNIST by Y. LeCun, C. Cortes, C. J. C. Burges; CC BY-SA 3.0).

    Args:
        train: the 10,000 training images if true, else the 2,000 held-out test images.
        transform: applied to each uint8 (28, 28) image.
        target_transform: applied to each int label.

    Attributes:
        data: uint8 ``(N, 28, 28)``. targets: int64 ``(N,)``. classes: the ten digit names.

    Example::

        >>> train = Digits(transform=Compose([ToArray(), Normalize(MNIST_MEAN, MNIST_STD)]))
        >>> len(train), len(Digits(train=False))
        (10000, 2000)
    """

    classes = MNIST.classes

    def __init__(self, train=True, transform=None, target_transform=None):
        self.train = bool(train)
        prefix = "train" if self.train else "t10k"
        sample = importlib.resources.files("striate.data").joinpath("sample")
        with importlib.resources.as_file(sample.joinpath(f"{prefix}-images-idx3-ubyte.gz")) as images, \
                importlib.resources.as_file(sample.joinpath(f"{prefix}-labels-idx1-ubyte.gz")) as labels:
            data, targets = load_image_label_pair(images, labels, num_classes=len(self.classes))
        super().__init__(data, targets, transform, target_transform)


__all__ = ["Digits"]
