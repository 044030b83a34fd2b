"""ImageFolder: torchvision's class/sample order, Pillow decoding, and what it refuses or skips (and says so)."""
import os
import warnings

import numpy
import pytest

from striate import FormatError
from striate.data import DataLoader
from striate.data.datasets import ImageFolder, SkippedFileWarning
from striate.data.transforms import CenterCrop, Compose, Resize, ToArray

Image = pytest.importorskip("PIL.Image")


def save(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path)
    return array


@pytest.fixture
def tree(tmp_path, rng):
    """root/{dog, cat, bird/nested}: PNG (lossless) images of known pixels, plus files that are not images."""
    root = tmp_path / "root"
    pixels = {}
    for rel in ["dog/b.png", "dog/A.PNG", "cat/z.png", "cat/sub/a.png", "cat/sub/deeper/0.bmp", "cat/a2.png",
                "bird/x.png"]:
        pixels[rel] = save(str(root / rel), rng.integers(0, 256, size=(5 + len(rel), 7, 3), dtype=numpy.uint8))
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / "README.md").write_text("a file at the top is not a class")
    save(str(root / ".ipynb_checkpoints" / "x.png"), numpy.zeros((2, 2), numpy.uint8))
    save(str(root / "cat" / ".hidden.png"), numpy.zeros((2, 2), numpy.uint8))
    return root, pixels


def test_classes_and_samples_follow_torchvisions_order(tree):
    root, pixels = tree
    ds = ImageFolder(root)
    assert ds.classes == ["bird", "cat", "dog"]
    assert ds.class_to_idx == {"bird": 0, "cat": 1, "dog": 2}
    # torchvision: classes in order; within one, sorted(os.walk(...)) folders, then sorted file names
    expected = [("bird/x.png", 0), ("cat/a2.png", 1), ("cat/z.png", 1), ("cat/sub/a.png", 1),
                ("cat/sub/deeper/0.bmp", 1), ("dog/A.PNG", 2), ("dog/b.png", 2)]
    assert [(os.path.relpath(p, root), t) for p, t in ds.samples] == expected
    assert ds.targets == [t for _, t in expected] and ds.imgs is ds.samples and len(ds) == 7
    for index, (rel, target) in enumerate(expected):
        image, label = ds[index]
        assert image.dtype == numpy.uint8 and label == target
        numpy.testing.assert_array_equal(image, pixels[rel])
    assert "3 classes, 7 samples" in repr(ds)


def test_grayscale_mode_and_conversion(tmp_path, rng):
    gray = save(str(tmp_path / "a" / "g.png"), rng.integers(0, 256, size=(4, 6), dtype=numpy.uint8))
    rgb = ImageFolder(tmp_path)[0][0]
    assert rgb.shape == (4, 6, 3)
    for c in range(3):
        numpy.testing.assert_array_equal(rgb[..., c], gray)   # L -> RGB repeats the channel
    numpy.testing.assert_array_equal(ImageFolder(tmp_path, mode="L")[0][0], gray)
    with pytest.raises(ValueError, match=r"ImageFolder: mode must be one of \('RGB', 'L'\), got 'CMYK'"):
        ImageFolder(tmp_path, mode="CMYK")


def test_extensions_loader_and_transforms(tree):
    root, _ = tree
    bitmaps = ImageFolder(root / "cat", extensions=".BMP")   # case-insensitive; a str is one extension
    assert bitmaps.classes == ["sub"] and [os.path.basename(p) for p, _ in bitmaps.samples] == ["0.bmp"]
    with pytest.raises(FileNotFoundError, match=r"no image files in the class folder\(s\) bird, dog"):
        ImageFolder(root, extensions=(".bmp",))
    ds = ImageFolder(root, loader=os.path.basename, target_transform=lambda t: -t)
    assert ds[0] == ("x.png", 0) and ds[6] == ("b.png", -2)
    ds = ImageFolder(root, transform=Compose([ToArray(), Resize(8), CenterCrop(8)]))
    images, labels = next(iter(DataLoader(ds, batch_size=7)))
    assert images.shape == (7, 3, 8, 8) and labels.numpy().tolist() == [0, 1, 1, 1, 1, 2, 2]
    with pytest.raises(IndexError):
        ds[7]
    with pytest.raises(TypeError, match="ImageFolder: index must be an int, got str"):
        ds["0"]


def test_a_class_without_images_and_an_empty_root_are_errors(tmp_path, rng):
    with pytest.raises(FileNotFoundError, match="ImageFolder: .* is not a directory"):
        ImageFolder(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="ImageFolder: no class folders in"):
        ImageFolder(tmp_path)
    save(str(tmp_path / "cat" / "a.png"), numpy.zeros((2, 2), numpy.uint8))
    (tmp_path / "dog").mkdir()
    (tmp_path / "dog" / "a.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match=r"no image files in the class folder\(s\) dog of .* \(looking for "
                                                r"\.jpg, \.jpeg, \.png"):
        ImageFolder(tmp_path)


# ----- symbolic links -----------------------------------------------------------------------------
@pytest.fixture
def linked(tmp_path, rng):
    root, outside = tmp_path / "root", tmp_path / "outside"
    save(str(root / "cat" / "a.png"), numpy.zeros((2, 2, 3), numpy.uint8))
    save(str(outside / "secret.png"), numpy.full((2, 2, 3), 9, numpy.uint8))
    save(str(outside / "cls" / "s.png"), numpy.full((2, 2, 3), 9, numpy.uint8))
    return root, outside


def test_links_leading_outside_the_root_are_skipped_with_a_warning(linked):
    root, outside = linked
    os.symlink(outside / "secret.png", root / "cat" / "leak.png")          # a file outside
    os.symlink(outside / "cls", root / "cat" / "more")                      # a folder outside
    os.symlink(outside / "cls", root / "exfiltrated")                       # a class folder outside
    os.symlink(root / "cat" / "gone.png", root / "cat" / "broken.png")      # a broken link
    with pytest.warns(SkippedFileWarning) as caught:
        ds = ImageFolder(root)
    messages = " | ".join(str(w.message) for w in caught)
    assert "leak.png: a symbolic link to" in messages and "outside the root" in messages
    assert "exfiltrated" in messages and "more" in messages and "broken.png: a broken symbolic link" in messages
    assert ds.classes == ["cat"]
    assert [os.path.basename(p) for p, _ in ds.samples] == ["a.png"]


def test_links_inside_the_root_are_followed_once_without_looping(linked):
    root, _ = linked
    os.symlink(root / "cat" / "a.png", root / "cat" / "alias.png")
    os.symlink(root / "cat", root / "cat" / "loop")        # a folder linking to its own ancestor
    os.symlink(root / "cat", root / "kitten")              # a second class name for the same folder
    with warnings.catch_warnings():
        warnings.simplefilter("error")                    # nothing here deserves a warning
        ds = ImageFolder(root)
    assert ds.classes == ["cat", "kitten"]
    names = [(os.path.relpath(p, root), t) for p, t in ds.samples]
    assert names == [("cat/a.png", 0), ("cat/alias.png", 0), ("kitten/a.png", 1), ("kitten/alias.png", 1)]


# ----- truncated files and decompression bombs: refused, naming the file --------------------------
def test_truncated_and_undecodable_images_raise_format_error(tmp_path, rng):
    noise = rng.integers(0, 256, size=(64, 64, 3), dtype=numpy.uint8)
    save(str(tmp_path / "c" / "0_ok.png"), noise)
    for name, cut in [("1_short.png", 0.6), ("2_short.jpg", 0.5)]:
        path = tmp_path / "c" / name
        Image.fromarray(noise).save(path)
        data = path.read_bytes()
        path.write_bytes(data[:int(len(data) * cut)])
    (tmp_path / "c" / "3_text.png").write_text("hello, not a PNG")
    ds = ImageFolder(tmp_path)
    assert ds[0][0].shape == (64, 64, 3)
    for index, name in [(1, "1_short.png"), (2, "2_short.jpg"), (3, "3_text.png")]:
        with pytest.raises(FormatError, match=rf"ImageFolder: .*{name}: cannot decode the image"):
            ds[index]


def test_decompression_bombs_are_refused_even_in_pillows_warning_range(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    save(str(tmp_path / "c" / "a_small.png"), numpy.zeros((10, 10), numpy.uint8))     # 100 pixels: allowed
    save(str(tmp_path / "c" / "b_warn.png"), numpy.zeros((12, 12), numpy.uint8))      # Pillow only warns
    save(str(tmp_path / "c" / "c_bomb.png"), numpy.zeros((20, 20), numpy.uint8))      # Pillow raises
    ds = ImageFolder(tmp_path, mode="L")
    assert ds[0][0].shape == (10, 10)
    for index, name in [(1, "b_warn.png"), (2, "c_bomb.png")]:
        with pytest.raises(FormatError, match=rf"{name}: refused as a decompression bomb"):
            ds[index]
    with pytest.raises(FileNotFoundError):
        os.remove(ds.samples[0][0])
        ds[0]
