"""Per-sample image transforms on NumPy arrays (torchvision's names): Compose, ToArray, Normalize, Pad, Lambda."""
import numbers

import numpy


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
    """An image array as float32 C×H×W: uint8 H×W or H×W×C is scaled to [0, 1] (torchvision's ToTensor).

    Float input is converted to float32 without rescaling.

    Shape:
        - Input: ``(H, W)`` or ``(H, W, C)``.
        - Output: ``(1, H, W)`` or ``(C, H, W)``.
    """

    def __call__(self, image):
        image = numpy.asarray(image)
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
    """Pad the last two axes (H, W) with a constant, as torchvision's Pad.

    Args:
        padding: ``p`` on every side, ``(left/right, top/bottom)``, or ``(left, top, right, bottom)``.
        fill: the constant.

    Shape:
        ``(..., H, W)`` → ``(..., H + top + bottom, W + left + right)``.
    """

    def __init__(self, padding, fill=0):
        values = (padding,) if isinstance(padding, numbers.Integral) else tuple(padding)
        if len(values) not in (1, 2, 4) or any(isinstance(p, bool) or not isinstance(p, numbers.Integral)
                                               for p in values):
            raise ValueError(f"Pad: padding must be an int or a tuple of 2 or 4 ints, got {padding!r}")
        if any(p < 0 for p in values):
            raise ValueError(f"Pad: padding must be non-negative, got {padding!r}")
        if len(values) == 1:
            values = values * 4
        elif len(values) == 2:
            values = values * 2
        self.padding = tuple(int(p) for p in values)  # (left, top, right, bottom)
        self.fill = fill

    def __call__(self, x):
        x = numpy.asarray(x)
        if x.ndim < 2:
            raise ValueError(f"Pad: expected an array of shape (..., H, W), got shape {x.shape}")
        left, top, right, bottom = self.padding
        widths = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
        return numpy.pad(x, widths, mode="constant", constant_values=self.fill)

    def __repr__(self):
        return f"Pad(padding={self.padding}, fill={self.fill})"


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


__all__ = ["Compose", "ToArray", "Normalize", "Pad", "Lambda"]
