"""``ImageFolder``: images stored one sub-folder per class (torchvision's layout), loaded with Pillow.

    root/cat/001.png
    root/cat/kittens/002.jpg
    root/dog/001.png

Classes are the sorted names of ``root``'s sub-folders; each image, found at any depth below
its class folder, is a sample of that class. What a folder may contain is not trusted:

- A symbolic link (to a file or a folder) that resolves outside ``root`` is skipped with a
  ``SkippedFileWarning``, as is a broken link; links inside ``root`` are followed, once
  (a link back up the tree does not loop).
- Hidden files and folders (names starting with ``.``, such as ``.ipynb_checkpoints``) are
  ignored (torchvision would make ``.ipynb_checkpoints`` a class).
- Images are decoded when an item is read. A truncated or undecodable file, and a
  decompression bomb — more pixels than Pillow's ``Image.MAX_IMAGE_PIXELS`` (89.5 million by
  default; Pillow itself only warns below twice that) — is refused with ``FormatError``
  naming the file; nothing is silently replaced. Set ``Image.MAX_IMAGE_PIXELS`` to change
  the limit, or ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES = True`` to accept truncated files
  as Pillow pads them.
"""
import numbers
import os
import warnings

import numpy

from striate.data.dataset import Dataset
from striate.errors import FormatError

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
MODES = ("RGB", "L")


class SkippedFileWarning(UserWarning):
    """A file or folder under an ImageFolder root was left out (a link outside the root, or a broken link)."""


class ImageFolder(Dataset):
    """A dataset of images arranged one sub-folder per class, like torchvision's ``ImageFolder``.

    Args:
        root: the directory whose sub-folders are the classes.
        transform: applied to each image array, e.g. ``Compose([ToArray(), Resize(64), CenterCrop(64)])``.
        target_transform: applied to each int label.
        extensions: the file-name endings (case-insensitive) that count as images.
        mode: ``"RGB"`` (items are uint8 ``(H, W, 3)``) or ``"L"`` (grayscale, uint8 ``(H, W)``);
            every image is converted to it with Pillow, as torchvision converts to RGB.
        loader: a function ``path -> sample`` to use instead of Pillow decoding.

    Attributes:
        classes: the sorted class names. class_to_idx: name → index.
        samples: ``(path, class index)`` pairs, classes in order, files sorted within each.
        targets: the class index of each sample.

    Raises:
        FileNotFoundError: ``root`` is not a directory, has no class folders, or a class folder
            has no image files.
        FormatError: (when an item is read) the image is truncated, undecodable, or a
            decompression bomb.

    Example::

        >>> ds = ImageFolder("photos", transform=Compose([ToArray(), Resize(32), CenterCrop(32)]))
        >>> image, label = ds[0]      # float32 (3, 32, 32), 0
        >>> ds.classes
        ['cat', 'dog']
    """

    def __init__(self, root, transform=None, target_transform=None, extensions=IMG_EXTENSIONS, mode="RGB",
                 loader=None):
        self.root = os.fspath(root)
        if mode not in MODES:
            raise ValueError(f"ImageFolder: mode must be one of {MODES}, got {mode!r}")
        if isinstance(extensions, str):
            extensions = (extensions,)
        self.extensions = tuple(e.lower() for e in extensions)
        if not self.extensions or not all(isinstance(e, str) and e for e in self.extensions):
            raise ValueError(f"ImageFolder: extensions must be non-empty strings, got {extensions!r}")
        if loader is not None and not callable(loader):
            raise TypeError(f"ImageFolder: loader must be callable, got {type(loader).__name__}")
        self.mode = mode
        self.loader = loader
        self.transform = transform
        self.target_transform = target_transform
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"ImageFolder: {os.path.abspath(self.root)!r} is not a directory")
        self._real_root = os.path.realpath(self.root)
        self.classes = self._find_classes()
        self.class_to_idx = {name: index for index, name in enumerate(self.classes)}
        self.samples = self._find_samples()
        self.imgs = self.samples
        self.targets = [target for _, target in self.samples]

    # ----- scanning -------------------------------------------------------------------------------------
    def _inside_root(self, path):
        """The resolved ``path`` if it lies inside the root, else None (after warning why it is skipped)."""
        real = os.path.realpath(path)
        if not os.path.exists(real):
            warnings.warn(f"ImageFolder: skipping {path}: a broken symbolic link", SkippedFileWarning, stacklevel=4)
            return None
        if os.path.commonpath([real, self._real_root]) != self._real_root:
            warnings.warn(f"ImageFolder: skipping {path}: a symbolic link to {real}, outside the root "
                          f"{self._real_root}", SkippedFileWarning, stacklevel=4)
            return None
        return real

    def _entries(self, directory):
        """The visible entries of ``directory`` as ``(name, path, resolved path or None if skipped)``."""
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            if entry.name.startswith("."):
                continue
            real = self._inside_root(entry.path) if entry.is_symlink() else os.path.realpath(entry.path)
            if real is not None:
                yield entry.name, entry.path, real

    def _find_classes(self):
        classes = [name for name, _, real in self._entries(self.root) if os.path.isdir(real)]
        if not classes:
            raise FileNotFoundError(f"ImageFolder: no class folders in {os.path.abspath(self.root)!r}; it must "
                                    "hold one sub-folder of images per class")
        return classes

    def _find_samples(self):
        samples, empty = [], []
        for index, name in enumerate(self.classes):
            found = self._walk(os.path.join(self.root, name))
            if not found:
                empty.append(name)
            samples.extend((path, index) for path in found)
        if empty:
            raise FileNotFoundError(f"ImageFolder: no image files in the class folder(s) {', '.join(empty)} of "
                                    f"{os.path.abspath(self.root)!r} (looking for {', '.join(self.extensions)})")
        return samples

    def _walk(self, top):
        """The image files below ``top``: folders in sorted path order, files sorted in each (torchvision's order)."""
        by_folder = {}
        visited = set()
        pending = [(top, os.path.realpath(top))]
        while pending:
            folder, real = pending.pop()
            if real in visited:  # a link to a folder already seen: follow each folder once
                continue
            visited.add(real)
            files = by_folder.setdefault(folder, [])
            for name, path, target in self._entries(folder):
                if os.path.isdir(target):
                    pending.append((path, target))
                elif name.lower().endswith(self.extensions) and os.path.isfile(target):
                    files.append(path)
        return [path for folder in sorted(by_folder) for path in by_folder[folder]]

    # ----- items ----------------------------------------------------------------------------------------
    def __getitem__(self, index):
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"ImageFolder: index must be an int, got {type(index).__name__}")
        path, target = self.samples[index]  # IndexError past the end, as a list
        sample = self.loader(path) if self.loader is not None else load_image(path, self.mode)
        if self.transform is not None:
            sample = self.transform(sample)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return sample, target

    def __len__(self):
        return len(self.samples)

    def __repr__(self):
        return (f"ImageFolder(root={self.root!r}, {len(self.classes)} classes, {len(self)} samples, "
                f"mode={self.mode!r})")


def load_image(path, mode="RGB"):
    """Decode an image file with Pillow into a uint8 array ``(H, W, 3)`` (``"RGB"``) or ``(H, W)`` (``"L"``).

    Raises:
        FormatError: the file is truncated, not an image Pillow can decode, or has more
            pixels than ``PIL.Image.MAX_IMAGE_PIXELS`` (a decompression bomb).
        FileNotFoundError: the file does not exist.
    """
    return _with_pillow(path, lambda image: (image.load(), numpy.array(image.convert(mode)))[1])


def image_header(path):
    """``(width, height, mode)`` of an image file, from its header only (no pixels decoded).

    Raises ``FormatError`` as :func:`load_image` does, a decompression bomb included.
    """
    return _with_pillow(path, lambda image: (image.width, image.height, image.mode))


def _with_pillow(path, use):
    """``use(image)`` on the Pillow image at ``path``, every decoding failure a ``FormatError`` naming the file."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("ImageFolder needs Pillow to decode images: pip install 'striate[cli]'") from None
    path = os.fspath(path)
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; refuse the whole range.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as image:
                return use(image)   # load() decodes now, so a truncated file fails here
        except FileNotFoundError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise FormatError(f"ImageFolder: {path}: refused as a decompression bomb: {error}") from None
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as error:
            # Pillow reports truncated and corrupt files as any of these (UnidentifiedImageError is an OSError).
            raise FormatError(f"ImageFolder: {path}: cannot decode the image "
                              f"({type(error).__name__}: {error})") from None


__all__ = ["ImageFolder", "IMG_EXTENSIONS", "SkippedFileWarning", "load_image", "image_header"]
