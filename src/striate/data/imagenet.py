"""ImageNet-1k metadata shipped with striate: the 1000 class names, the mean and std, the reference preprocessing.

The class names are torchvision's (``torchvision.models._meta._IMAGENET_CATEGORIES``), in
the order of the 1000 outputs of every ImageNet classifier trained with torchvision, so a
pretrained model's ``argmax`` indexes ``imagenet_classes()`` directly. They ship in
``striate/data/imagenet_classes.txt`` (one per line); nothing is downloaded.
"""
import functools
import importlib.resources

from striate.data.transforms import CenterCrop, Compose, Normalize, Resize, ToArray
from striate.errors import FormatError

# The per-channel mean and std of the ImageNet training images in [0, 1], RGB.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NUM_CLASSES = 1000


@functools.lru_cache(maxsize=1)
def _class_names():
    text = importlib.resources.files("striate.data").joinpath("imagenet_classes.txt").read_text(encoding="utf-8")
    names = tuple(text.splitlines())
    if len(names) != NUM_CLASSES or not all(names):
        raise FormatError(f"imagenet_classes.txt: expected {NUM_CLASSES} non-empty lines, got {len(names)}")
    return names


def imagenet_classes():
    """The 1000 ImageNet class names, index ``i`` naming output ``i`` (a new list each call).

    Example::

        >>> imagenet_classes()[:3]
        ['tench', 'goldfish', 'great white shark']
    """
    return list(_class_names())


def imagenet_transform(resize_size=256, crop_size=224):
    """The reference evaluation preprocessing: resize the shorter side to 256, centre-crop 224, normalise.

    Takes a Pillow image or an ``(H, W, 3)`` uint8 array (RGB) and returns float32
    ``(3, 224, 224)``. ``ToArray`` comes first so arrays need no Pillow; the resize then
    runs on [0, 1] floats with the same antialiased bilinear filter Pillow uses, so the
    result differs from torchvision's ``Resize(256), CenterCrop(224), ToTensor(),
    Normalize(...)`` on a Pillow image only by the rounding Pillow does to 8 bits after
    its resize (at most about 1/255 before normalisation).

    Args:
        resize_size: the shorter side after resizing.
        crop_size: the side of the centre crop.

    Example::

        >>> x = imagenet_transform()(Image.open("cat.jpg").convert("RGB"))   # (3, 224, 224)
        >>> probabilities = F.softmax(model(st.tensor(x[None])), dim=1)
    """
    return Compose([ToArray(), Resize(resize_size), CenterCrop(crop_size), Normalize(IMAGENET_MEAN, IMAGENET_STD)])


__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "NUM_CLASSES", "imagenet_classes", "imagenet_transform"]
