"""Image geometry for the transforms: sizes, crop offsets, padding and antialiased bilinear resampling.

Arrays are ``(..., H, W)`` (channels first, as ``ToArray`` returns them); Pillow images are
converted to ``(H, W)`` or ``(H, W, C)`` arrays and back where Pillow has no operation of its own.
"""
import numbers
import sys

import numpy

PAD_MODES = ("constant", "edge", "reflect", "symmetric")


def is_pil(x):
    """Whether ``x`` is a Pillow image (without importing Pillow: an image implies it is loaded)."""
    image_module = sys.modules.get("PIL.Image")
    return image_module is not None and isinstance(x, image_module.Image)


def as_image(x, owner):
    """``x`` as a Pillow image (kept) or a NumPy array (lists and array-likes converted); text is a TypeError."""
    if is_pil(x) or isinstance(x, numpy.ndarray):
        return x
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{owner}: expected a NumPy array (..., H, W) or a Pillow image, got {type(x).__name__}")
    return numpy.asarray(x)


def image_size(x, owner):
    """``(H, W)`` of a Pillow image or of an array ``(..., H, W)``."""
    if is_pil(x):
        return x.height, x.width
    if not isinstance(x, numpy.ndarray):
        raise TypeError(f"{owner}: expected a NumPy array (..., H, W) or a Pillow image, got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(f"{owner}: expected an array of shape (..., H, W), got shape {x.shape}")
    return x.shape[-2], x.shape[-1]


def pair(size, owner, name="size"):
    """``size`` as ``(h, w)`` of positive ints: an int is square, a 1-sequence too (torchvision's rule)."""
    values = (size,) if isinstance(size, numbers.Integral) else tuple(size) if _is_sequence(size) else None
    if (values is None or len(values) not in (1, 2)
            or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v <= 0 for v in values)):
        raise ValueError(f"{owner}: {name} must be a positive int or a sequence (h, w) of positive ints, got {size!r}")
    return (int(values[0]),) * 2 if len(values) == 1 else (int(values[0]), int(values[1]))


def _is_sequence(x):
    return isinstance(x, (tuple, list))


def padding_ltrb(padding, owner):
    """torchvision's padding argument as ``(left, top, right, bottom)``.

    ``p`` pads every side, ``(left/right, top/bottom)`` two, ``(left, top, right, bottom)`` four.
    """
    values = (padding,) if isinstance(padding, numbers.Integral) else tuple(padding) if _is_sequence(padding) else ()
    if len(values) not in (1, 2, 4) or any(isinstance(p, bool) or not isinstance(p, numbers.Integral)
                                           for p in values):
        raise ValueError(f"{owner}: padding must be an int or a tuple of 2 or 4 ints, got {padding!r}")
    if any(p < 0 for p in values):
        raise ValueError(f"{owner}: padding must be non-negative, got {padding!r}")
    if len(values) == 1:
        values = values * 4
    elif len(values) == 2:
        values = values * 2
    return tuple(int(p) for p in values)


def check_pad_mode(mode, owner):
    if mode not in PAD_MODES:
        raise ValueError(f"{owner}: padding_mode must be one of {', '.join(PAD_MODES)}, got {mode!r}")
    return mode


def pad_array(x, ltrb, fill=0, mode="constant", spatial=(-2, -1)):
    """Pad the ``spatial`` axes of ``x`` by ``(left, top, right, bottom)`` (NumPy's modes = torchvision's)."""
    left, top, right, bottom = ltrb
    widths = [(0, 0)] * x.ndim
    widths[spatial[0]] = (top, bottom)
    widths[spatial[1]] = (left, right)
    if mode == "constant":
        return numpy.pad(x, widths, mode="constant", constant_values=fill)
    return numpy.pad(x, widths, mode=mode)


def pad(x, ltrb, fill=0, mode="constant"):
    """``pad_array`` for an array ``(..., H, W)`` or a Pillow image (padded as its ``(H, W[, C])`` array)."""
    if not any(ltrb):
        return x
    if is_pil(x):
        return from_pil_array(pad_array(numpy.asarray(x), ltrb, fill, mode, spatial=(0, 1)), x)
    return pad_array(x, ltrb, fill, mode)


def crop(x, top, left, height, width):
    """The ``height``×``width`` window at ``(top, left)``; the window must lie inside the image."""
    if is_pil(x):
        return x.crop((left, top, left + width, top + height))
    return numpy.ascontiguousarray(x[..., top:top + height, left:left + width])


def hflip(x):
    """Mirror left–right."""
    if is_pil(x):
        from PIL import Image
        return x.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return numpy.ascontiguousarray(x[..., ::-1])


def from_pil_array(array, like):
    """A Pillow image of ``array`` (as ``numpy.asarray(like)`` gave it) in the mode of ``like``, palette kept."""
    from PIL import Image
    out = Image.fromarray(array)   # the mode follows from the dtype and channels, as for ``like``
    if like.mode == "P":
        out.putpalette(like.getpalette())   # an "L" image of palette indices becomes "P"
    return out


def resized_size(height, width, size, max_size):
    """torchvision's ``Resize`` output size ``(h, w)``: an int matches the shorter side, keeping the aspect ratio.

    The longer side is ``int(size * long / short)`` (truncated, as torchvision does); with
    ``max_size`` the longer side is capped there and the shorter scaled down to match.
    """
    if len(size) == 2:
        return size
    requested = size[0]
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = requested, int(requested * long / short)
    if max_size is not None and new_long > max_size:
        new_short, new_long = int(max_size * new_short / new_long), max_size
    return (new_long, new_short) if width <= height else (new_short, new_long)


def resample_matrix(in_size, out_size, antialias=True):
    """The ``(out_size, in_size)`` weights of bilinear resampling along one axis (Pillow's and PyTorch's).

    Output pixel ``i`` has centre ``(i + 0.5) * scale`` in input coordinates (``scale = in/out``,
    half-pixel centres, i.e. ``align_corners=False``) and takes the triangle filter
    ``max(0, 1 - |d| / s)`` of the distance ``d`` to each input centre, normalised to sum 1;
    ``s = max(scale, 1)`` when ``antialias`` (the filter widens when shrinking, so every
    input pixel counts, as in Pillow), else ``s = 1`` (plain two-tap interpolation).
    """
    scale = in_size / out_size
    support = max(scale, 1.0) if antialias else 1.0
    centers = (numpy.arange(out_size, dtype=numpy.float64) + 0.5) * scale
    distance = numpy.arange(in_size, dtype=numpy.float64)[None, :] + 0.5 - centers[:, None]  # (out, in)
    weights = numpy.clip(1.0 - numpy.abs(distance) / support, 0.0, None)
    return weights / weights.sum(axis=1, keepdims=True)


def resize_array(x, height, width, antialias=True):
    """Resize the last two axes of ``x`` to ``height``×``width`` with ``resample_matrix`` along each.

    Float arrays keep their dtype; integer arrays are resampled in float32, rounded to the
    nearest integer and clipped to their dtype's range.
    """
    if x.dtype.kind not in "uif":
        raise TypeError(f"Resize: expected an integer or float array, got dtype {x.dtype}")
    work = x.dtype if x.dtype.kind == "f" else numpy.dtype(numpy.float32)
    rows = resample_matrix(x.shape[-2], height, antialias).astype(work)   # (height, H)
    cols = resample_matrix(x.shape[-1], width, antialias).astype(work)    # (width, W)
    out = rows @ x.astype(work, copy=False) @ cols.T                     # (..., height, width)
    if x.dtype.kind == "f":
        return out
    info = numpy.iinfo(x.dtype)
    return numpy.clip(numpy.rint(out), info.min, info.max).astype(x.dtype)


__all__ = []
