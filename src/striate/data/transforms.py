"""Per-sample image transforms (torchvision's names and semantics) on NumPy arrays and Pillow images.

Layout: an image *before* ``ToArray`` is a Pillow image or an ``(H, W)`` / ``(H, W, C)``
array, as datasets return them; ``ToArray`` turns it into a float32 ``(C, H, W)`` array, and
the array transforms (``Normalize``, ``Pad``, ``RandomCrop``, ``RandomHorizontalFlip``,
``Resize``, ``CenterCrop``) act on the last two axes ``(..., H, W)`` of arrays, like
torchvision's tensor transforms, and on Pillow images directly. So a colour ``(H, W, C)``
array goes through ``ToArray`` first::

    train = Compose([ToArray(), RandomCrop(32, padding=4), RandomHorizontalFlip(),
                     Normalize(CIFAR10_MEAN, CIFAR10_STD)])

Random transforms draw from ``seed``: an int gives the transform its own generator (the same
seed, the same sequence of crops and flips over a ``DataLoader`` that visits samples in the
same order); ``None`` draws from ``striate.random.default_generator()``, so ``st.manual_seed``
governs it and a training checkpoint that saves the random state resumes it exactly.
"""
import numbers

import numpy

from striate.data import _geometry
from striate.random import default_generator


class Compose:
    """Apply transforms one after another.

    Example::

        >>> t = Compose([ToArray(), Normalize(MNIST_MEAN, MNIST_STD)])
    """

    def __init__(self, transforms):
        self.transforms = list(transforms)
        for k, t in enumerate(self.transforms):
            if not callable(t):
                raise TypeError(f"Compose: transform {k} is not callable, got {type(t).__name__}")

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self):
        inner = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"Compose([{inner}\n])"


class ToArray:
    """An image as a float32 C×H×W array: uint8 is scaled to [0, 1] (torchvision's ToTensor).

    Accepts an ``(H, W)`` or ``(H, W, C)`` array or a Pillow image. Pillow images become
    arrays as torchvision reads them: mode ``"1"`` is 0/255, ``"I"`` int32, ``"I;16"``
    int16, ``"F"`` float32, every other mode uint8 per band. Only uint8 is rescaled; other
    integer and float input is converted to float32 unchanged.

    Shape:
        - Input: ``(H, W)`` or ``(H, W, C)``, or a Pillow image.
        - Output: ``(1, H, W)`` or ``(C, H, W)``.
    """

    def __call__(self, image):
        image = _pil_to_array(image) if _geometry.is_pil(image) else numpy.asarray(image)
        if image.ndim not in (2, 3):
            raise ValueError(f"ToArray: expected an image of shape (H, W) or (H, W, C), got shape {image.shape}")
        if image.dtype.kind not in "uif":
            raise TypeError(f"ToArray: expected an integer or float image, got dtype {image.dtype}")
        chw = image[None] if image.ndim == 2 else image.transpose(2, 0, 1)  # (H, W, C) -> (C, H, W)
        out = numpy.ascontiguousarray(chw, dtype=numpy.float32)
        if image.dtype == numpy.uint8:
            out /= 255  # divide, as torchvision does, so values match it bit for bit
        return out

    def __repr__(self):
        return "ToArray()"


def _pil_to_array(image):
    """torchvision's ``pil_to_tensor`` dtypes: "1" → uint8 0/255, "I" int32, "I;16" int16, "F" float32, else uint8."""
    if image.mode == "1":
        return numpy.asarray(image, dtype=numpy.uint8) * numpy.uint8(255)
    if image.mode.startswith("I;16"):
        return numpy.asarray(image).astype(numpy.int16)
    return numpy.asarray(image)


class Normalize:
    """``(x - mean) / std`` per channel of a float C×H×W array.

    Args:
        mean: one value, or one per channel.
        std: one value, or one per channel; all must be non-zero.
    """

    def __init__(self, mean, std):
        self.mean = numpy.atleast_1d(numpy.asarray(mean, dtype=numpy.float64))
        self.std = numpy.atleast_1d(numpy.asarray(std, dtype=numpy.float64))
        if self.mean.ndim != 1 or self.std.ndim != 1:
            raise ValueError(f"Normalize: mean and std must be numbers or 1-D sequences, "
                             f"got shapes {self.mean.shape} and {self.std.shape}")
        if numpy.any(self.std == 0):
            raise ValueError(f"Normalize: std must be non-zero, got {self.std.tolist()}")
        self._cache = {}

    def __call__(self, x):
        x = numpy.asarray(x)
        if x.dtype.kind != "f":
            raise TypeError(f"Normalize: expected a float array (apply ToArray first), got dtype {x.dtype}")
        if x.ndim < 3:
            raise ValueError(f"Normalize: expected an array of shape (C, H, W), got shape {x.shape}")
        channels = x.shape[-3]
        for name, v in (("mean", self.mean), ("std", self.std)):
            if v.size not in (1, channels):
                raise ValueError(f"Normalize: {name} has {v.size} values for an input with {channels} channels")
        mean, std = self._constants(x.dtype)
        out = x - mean
        out /= std  # subtract then divide in x's dtype, as torchvision does, so results match it exactly
        return out

    def _constants(self, dtype):
        """mean and std as (C, 1, 1) arrays of ``dtype``, made once per dtype (this runs per sample)."""
        if dtype not in self._cache:
            self._cache[dtype] = (self.mean.astype(dtype)[:, None, None], self.std.astype(dtype)[:, None, None])
        return self._cache[dtype]

    def __repr__(self):
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


class Pad:
    """Pad the last two axes (H, W) of an array, or a Pillow image, as torchvision's Pad.

    Args:
        padding: ``p`` on every side, ``(left/right, top/bottom)``, or ``(left, top, right, bottom)``.
        fill: the constant, for ``padding_mode="constant"``.
        padding_mode: ``"constant"``, ``"edge"`` (repeat the border pixel), ``"reflect"``
            (mirror without repeating it) or ``"symmetric"`` (mirror repeating it).

    Shape:
        ``(..., H, W)`` → ``(..., H + top + bottom, W + left + right)``.
    """

    def __init__(self, padding, fill=0, padding_mode="constant"):
        self.padding = _geometry.padding_ltrb(padding, "Pad")  # (left, top, right, bottom)
        self.fill = fill
        self.padding_mode = _geometry.check_pad_mode(padding_mode, "Pad")

    def __call__(self, x):
        x = _geometry.as_image(x, "Pad")
        _geometry.image_size(x, "Pad")
        return _geometry.pad(x, self.padding, self.fill, self.padding_mode)

    def __repr__(self):
        return f"Pad(padding={self.padding}, fill={self.fill}, padding_mode={self.padding_mode!r})"


class _Random:
    """The generator a random transform draws from: its own (``seed`` an int or a Generator) or striate's default."""

    def __init__(self, seed, owner):
        if seed is None or isinstance(seed, numpy.random.Generator):
            self.generator = seed
        elif isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0:
            self.generator = numpy.random.default_rng(int(seed))
        else:
            raise ValueError(f"{owner}: seed must be a non-negative int, a numpy.random.Generator or None, "
                             f"got {seed!r}")

    def rng(self):
        return self.generator if self.generator is not None else default_generator()


class RandomCrop(_Random):
    """Crop a random ``size`` window, after optional padding (torchvision's RandomCrop).

    The window's top-left corner is uniform over every position where it fits: ``top`` is
    drawn from ``[0, H - h]``, then ``left`` from ``[0, W - w]`` (no draw when the image is
    exactly the crop size).

    Args:
        size: ``h`` for a square crop, or ``(h, w)``.
        padding: pad first, as :class:`Pad` (e.g. ``4`` for the classic CIFAR augmentation).
        pad_if_needed: pad an image smaller than ``size`` up to it (torchvision pads
            ``size - W`` on the left *and* the right, and likewise vertically).
        fill, padding_mode: as :class:`Pad`.
        seed: an int or ``numpy.random.Generator`` (its own draws), or None (striate's default generator).

    Shape:
        ``(..., H, W)`` → ``(..., h, w)``; a Pillow image stays a Pillow image.

    Example::

        >>> crop = RandomCrop(32, padding=4, seed=0)
        >>> crop(numpy.zeros((3, 32, 32), numpy.float32)).shape
        (3, 32, 32)
    """

    def __init__(self, size, padding=None, pad_if_needed=False, fill=0, padding_mode="constant", seed=None):
        super().__init__(seed, "RandomCrop")
        self.size = _geometry.pair(size, "RandomCrop")
        self.padding = None if padding is None else _geometry.padding_ltrb(padding, "RandomCrop")
        self.pad_if_needed = bool(pad_if_needed)
        self.fill = fill
        self.padding_mode = _geometry.check_pad_mode(padding_mode, "RandomCrop")

    @staticmethod
    def get_params(image_size, output_size, rng):
        """``(top, left, h, w)`` of a random ``output_size`` window in an image of ``image_size`` ``(H, W)``."""
        (height, width), (h, w) = image_size, output_size
        if height < h or width < w:
            raise ValueError(f"RandomCrop: crop size {(h, w)} is larger than the (padded) input size "
                             f"{(height, width)}; pass padding or pad_if_needed=True")
        if (height, width) == (h, w):
            return 0, 0, h, w
        top = int(rng.integers(0, height - h + 1))
        left = int(rng.integers(0, width - w + 1))
        return top, left, h, w

    def __call__(self, x):
        x = _geometry.as_image(x, "RandomCrop")
        height, width = _geometry.image_size(x, "RandomCrop")
        if self.padding is not None:
            x = _geometry.pad(x, self.padding, self.fill, self.padding_mode)
            height, width = _geometry.image_size(x, "RandomCrop")
        h, w = self.size
        if self.pad_if_needed and width < w:
            x = _geometry.pad(x, (w - width, 0, w - width, 0), self.fill, self.padding_mode)
        if self.pad_if_needed and height < h:
            x = _geometry.pad(x, (0, h - height, 0, h - height), self.fill, self.padding_mode)
        top, left, h, w = self.get_params(_geometry.image_size(x, "RandomCrop"), self.size, self.rng())
        return _geometry.crop(x, top, left, h, w)

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip(_Random):
    """Mirror the image left–right with probability ``p`` (one uniform draw per call, as torchvision).

    Args:
        p: the probability of flipping.
        seed: an int or ``numpy.random.Generator`` (its own draws), or None (striate's default generator).
    """

    def __init__(self, p=0.5, seed=None):
        super().__init__(seed, "RandomHorizontalFlip")
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
            raise ValueError(f"RandomHorizontalFlip: p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)

    def __call__(self, x):
        x = _geometry.as_image(x, "RandomHorizontalFlip")
        _geometry.image_size(x, "RandomHorizontalFlip")
        return _geometry.hflip(x) if self.rng().random() < self.p else x

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"


class Resize:
    """Resize with bilinear interpolation; an int matches the shorter side, keeping the aspect ratio.

    Output size (torchvision's rule): for ``size=s`` and an image whose shorter side is
    ``short`` and longer ``long``, the shorter side becomes ``s`` and the longer
    ``int(s * long / short)``; with ``max_size`` the longer side is capped at it and the
    shorter scaled to match. ``size=(h, w)`` is exact.

    Pillow images are resized by Pillow (``Image.BILINEAR``, as torchvision does). Arrays
    ``(..., H, W)`` are resized here without Pillow by the same antialiased bilinear filter
    (half-pixel centres; when shrinking, the triangle widens to cover every input pixel),
    which is also PyTorch's ``interpolate(mode="bilinear", antialias=True)``; floats keep
    their dtype, integer arrays are rounded back to their dtype (within one level of
    Pillow's fixed-point result).

    Args:
        size: ``s`` (shorter side) or ``(h, w)``.
        max_size: cap on the longer side when ``size`` is an int.
        antialias: widen the filter when shrinking arrays (Pillow always does).

    Shape:
        ``(..., H, W)`` → ``(..., h, w)``.
    """

    def __init__(self, size, max_size=None, antialias=True):
        _geometry.pair(size, "Resize")  # validates: a positive int, or a sequence of one or two
        self.size = (int(size),) if isinstance(size, numbers.Integral) else tuple(int(v) for v in size)
        if max_size is not None:
            if len(self.size) != 1:
                raise ValueError(f"Resize: max_size applies only when size is an int, got size={size!r}")
            if isinstance(max_size, bool) or not isinstance(max_size, numbers.Integral) or max_size <= self.size[0]:
                raise ValueError(f"Resize: max_size must be an int larger than size, got max_size={max_size!r} "
                                 f"for size={size!r}")
            max_size = int(max_size)
        self.max_size = max_size
        self.antialias = bool(antialias)

    def output_size(self, height, width):
        """``(h, w)`` of an ``height``×``width`` image after this resize."""
        return _geometry.resized_size(height, width, self.size, self.max_size)

    def __call__(self, x):
        x = _geometry.as_image(x, "Resize")
        height, width = _geometry.image_size(x, "Resize")
        h, w = self.output_size(height, width)
        if (h, w) == (height, width):
            return x
        if _geometry.is_pil(x):
            from PIL import Image
            return x.resize((w, h), Image.Resampling.BILINEAR)
        return _geometry.resize_array(x, h, w, self.antialias)

    def __repr__(self):
        size = self.size[0] if len(self.size) == 1 else self.size
        return f"Resize(size={size}, max_size={self.max_size}, antialias={self.antialias})"


class CenterCrop:
    """Crop the central ``size`` window (torchvision's CenterCrop), zero-padding an image smaller than it.

    The offsets are ``top = round((H - h) / 2)`` and ``left = round((W - w) / 2)`` with
    Python's ``round`` (halves to even), exactly as torchvision computes them.

    Shape:
        ``(..., H, W)`` → ``(..., h, w)``.
    """

    def __init__(self, size):
        self.size = _geometry.pair(size, "CenterCrop")

    def __call__(self, x):
        x = _geometry.as_image(x, "CenterCrop")
        height, width = _geometry.image_size(x, "CenterCrop")
        h, w = self.size
        if h > height or w > width:
            # torchvision: pad with zeros, the odd pixel on the right/bottom, then crop from the centre
            ltrb = ((w - width) // 2 if w > width else 0, (h - height) // 2 if h > height else 0,
                    (w - width + 1) // 2 if w > width else 0, (h - height + 1) // 2 if h > height else 0)
            x = _geometry.pad(x, ltrb)
            height, width = _geometry.image_size(x, "CenterCrop")
            if (height, width) == (h, w):
                return x
        top, left = int(round((height - h) / 2.0)), int(round((width - w) / 2.0))
        return _geometry.crop(x, top, left, h, w)

    def __repr__(self):
        return f"CenterCrop(size={self.size})"


class Lambda:
    """Apply a user function as a transform."""

    def __init__(self, fn):
        if not callable(fn):
            raise TypeError(f"Lambda: expected a callable, got {type(fn).__name__}")
        self.fn = fn

    def __call__(self, x):
        return self.fn(x)

    def __repr__(self):
        return f"Lambda({getattr(self.fn, '__name__', self.fn)!r})"


__all__ = ["Compose", "ToArray", "Normalize", "Pad", "Lambda", "RandomCrop", "RandomHorizontalFlip", "Resize",
           "CenterCrop"]
