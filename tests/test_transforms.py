"""Geometric and random transforms against torchvision's rules written out by hand (torchvision is not installed),
PyTorch's interpolate and Pillow's resize; reproducibility; the ImageNet metadata and preset.

ToArray/Normalize/Pad basics live in tests/test_data.py; this file covers what was added to them.
"""
import importlib.resources

import numpy
import pytest
import torch

import striate as st
from striate.data import DataLoader, Dataset
from striate.data.imagenet import IMAGENET_MEAN, IMAGENET_STD, imagenet_classes, imagenet_transform
from striate.data.transforms import (CenterCrop, Compose, Normalize, Pad, RandomCrop, RandomHorizontalFlip, Resize,
                                     ToArray)
from striate.random import get_rng_state, set_rng_state

Image = pytest.importorskip("PIL.Image")


def positions(c, h, w):
    """An image whose pixel (k, i, j) holds k·10000 + i·100 + j: any crop shows where it came from."""
    k, i, j = numpy.meshgrid(numpy.arange(c), numpy.arange(h), numpy.arange(w), indexing="ij")
    return (k * 10000 + i * 100 + j).astype(numpy.float64)


# ----- RandomCrop -----------------------------------------------------------------------------------
def test_random_crop_takes_the_window_at_the_seeded_offsets(rng):
    x = rng.random((3, 10, 12)).astype(numpy.float32)
    crop = RandomCrop((4, 5), padding=2, seed=123)
    draws = numpy.random.default_rng(123)
    padded = torch.nn.functional.pad(torch.from_numpy(x), (2, 2, 2, 2)).numpy()   # (left, right, top, bottom)
    for _ in range(20):
        top, left = draws.integers(0, 14 - 4 + 1), draws.integers(0, 16 - 5 + 1)   # torchvision: top, then left
        out = crop(x)
        assert out.shape == (3, 4, 5) and out.dtype == numpy.float32 and out.flags.c_contiguous
        numpy.testing.assert_array_equal(out, padded[:, top:top + 4, left:left + 5])


def test_random_crop_offsets_are_uniform_over_every_position():
    x = positions(1, 6, 7)
    crop = RandomCrop(4, seed=0)
    counts = numpy.zeros((3, 4), int)
    for _ in range(3000):
        corner = int(crop(x)[0, 0, 0])
        counts[corner // 100, corner % 100] += 1
    assert counts.min() > 3000 / 12 * 0.75 and counts.max() < 3000 / 12 * 1.25
    assert numpy.array_equal(RandomCrop((6, 7), seed=0)(x), x)   # the whole image: no draw needed


@pytest.mark.parametrize("mode,torch_mode", [("constant", "constant"), ("edge", "replicate"), ("reflect", "reflect")])
def test_random_crop_padding_modes_match_torch(rng, mode, torch_mode):
    x = rng.random((2, 5, 6))
    crop = RandomCrop((9, 8), padding=(1, 2), padding_mode=mode, fill=0, seed=3)   # (left/right, top/bottom)
    padded = torch.nn.functional.pad(torch.from_numpy(x)[None], (1, 1, 2, 2), mode=torch_mode)[0].numpy()
    draws = numpy.random.default_rng(3)
    top, left = draws.integers(0, 9 - 9 + 1), draws.integers(0, 8 - 8 + 1)
    numpy.testing.assert_array_equal(crop(x), padded[:, top:top + 9, left:left + 8])


def test_symmetric_padding_repeats_the_border_pixel():
    row = numpy.array([[1.0, 2.0, 3.0]])
    numpy.testing.assert_array_equal(Pad((2, 0), padding_mode="symmetric")(row), [[2, 1, 1, 2, 3, 3, 2]])
    numpy.testing.assert_array_equal(Pad((2, 0), padding_mode="reflect")(row), [[3, 2, 1, 2, 3, 2, 1]])
    numpy.testing.assert_array_equal(Pad((2, 0), padding_mode="edge")(row), [[1, 1, 1, 2, 3, 3, 3]])


def test_pad_if_needed_pads_the_deficit_on_both_sides_like_torchvision():
    x = positions(1, 5, 6) + 1   # no zeros, so padding shows
    out = RandomCrop((8, 7), pad_if_needed=True, seed=0)(x)
    # torchvision pads [size - W, 0] (left and right) then [0, size - H] (top and bottom)
    padded = numpy.zeros((1, 5 + 2 * 3, 6 + 2 * 1))
    padded[:, 3:8, 1:7] = x
    draws = numpy.random.default_rng(0)
    top, left = draws.integers(0, 11 - 8 + 1), draws.integers(0, 8 - 7 + 1)
    numpy.testing.assert_array_equal(out, padded[:, top:top + 8, left:left + 7])


def test_random_crop_on_pillow_images_matches_the_array_path(rng):
    hwc = rng.integers(0, 256, size=(10, 12, 3), dtype=numpy.uint8)
    out = RandomCrop(6, padding=1, fill=7, seed=9)(Image.fromarray(hwc))
    assert isinstance(out, Image.Image) and out.size == (6, 6) and out.mode == "RGB"
    chw = RandomCrop(6, padding=1, fill=7, seed=9)(hwc.transpose(2, 0, 1))
    numpy.testing.assert_array_equal(numpy.asarray(out), chw.transpose(1, 2, 0))


@pytest.mark.parametrize("make,error,pattern", [
    (lambda: RandomCrop(8)(numpy.zeros((5, 6))), ValueError,
     r"RandomCrop: crop size \(8, 8\) is larger than the \(padded\) input size \(5, 6\)"),
    (lambda: RandomCrop(0), ValueError, r"RandomCrop: size must be a positive int or a sequence \(h, w\)"),
    (lambda: RandomCrop((2, 3, 4)), ValueError, r"got \(2, 3, 4\)"),
    (lambda: RandomCrop(2, padding=(1, 2, 3)), ValueError, r"padding must be an int or a tuple of 2 or 4 ints"),
    (lambda: RandomCrop(2, padding=-1), ValueError, r"padding must be non-negative, got -1"),
    (lambda: RandomCrop(2, padding_mode="wrap"), ValueError, r"padding_mode must be one of constant, edge, reflect"),
    (lambda: RandomCrop(2, seed=-1), ValueError, r"seed must be a non-negative int, a numpy\.random\.Generator"),
    (lambda: RandomCrop(2, seed=True), ValueError, r"seed must be"),
    (lambda: RandomCrop(2)(numpy.zeros(5)), ValueError, r"RandomCrop: expected an array of shape \(\.\.\., H, W\)"),
    (lambda: RandomCrop(2)("image"), TypeError, r"expected a NumPy array \(\.\.\., H, W\) or a Pillow image, got str"),
    (lambda: RandomHorizontalFlip(1.5), ValueError, r"p must be a probability in \[0, 1\], got 1\.5"),
    (lambda: Resize(-3), ValueError, r"Resize: size must be a positive int"),
    (lambda: Resize((3, 4), max_size=10), ValueError, r"max_size applies only when size is an int"),
    (lambda: Resize(32, max_size=32), ValueError, r"max_size must be an int larger than size"),
    (lambda: Resize(4)(numpy.zeros((3, 3), bool)), TypeError, r"Resize: expected an integer or float array"),
    (lambda: CenterCrop((0, 2)), ValueError, r"CenterCrop: size must be a positive int"),
])
def test_bad_arguments_name_the_transform_and_the_rule(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


# ----- RandomHorizontalFlip -------------------------------------------------------------------------
def test_flip_follows_one_draw_per_call(rng):
    x = rng.random((2, 3, 4))
    numpy.testing.assert_array_equal(RandomHorizontalFlip(p=1)(x), x[..., ::-1])
    assert RandomHorizontalFlip(p=0)(x) is x
    flip = RandomHorizontalFlip(seed=42)
    draws = numpy.random.default_rng(42)
    flipped = 0
    for _ in range(40):
        expected = x[..., ::-1] if draws.random() < 0.5 else x
        out = flip(x)
        numpy.testing.assert_array_equal(out, expected)
        flipped += out is not x
    assert 10 < flipped < 30
    image = Image.fromarray((x[0] * 255).astype(numpy.uint8))
    numpy.testing.assert_array_equal(numpy.asarray(RandomHorizontalFlip(p=1)(image)), numpy.asarray(image)[:, ::-1])


# ----- reproducibility ------------------------------------------------------------------------------
class Augmented(Dataset):
    def __init__(self, transform):
        self.images = positions(3, 8, 8)[None].repeat(6, axis=0) + numpy.arange(6)[:, None, None, None]
        self.transform = transform

    def __getitem__(self, index):
        return self.transform(self.images[index]), index

    def __len__(self):
        return 6


def epochs(transform, n=2):
    loader = DataLoader(Augmented(transform), batch_size=4, shuffle=True, seed=0)
    return [[batch[0].numpy().copy() for batch in loader] for _ in range(n)]


def augment(seed=None):
    return Compose([RandomCrop(6, padding=1, seed=seed), RandomHorizontalFlip(seed=None if seed is None else seed + 1)])


def test_seeded_transforms_give_the_same_batches_every_run():
    first, again, other = epochs(augment(5)), epochs(augment(5)), epochs(augment(6))
    for a, b in zip(first, again):
        for x, y in zip(a, b):
            numpy.testing.assert_array_equal(x, y)
    assert any(not numpy.array_equal(x, y) for a, b in zip(first, other) for x, y in zip(a, b))
    assert not all(numpy.array_equal(x, y) for x, y in zip(first[0], first[1]))   # epochs differ


def test_unseeded_transforms_follow_manual_seed_and_resume_from_the_saved_state():
    st.manual_seed(11)
    first = epochs(augment())
    st.manual_seed(11)
    loader = DataLoader(Augmented(augment()), batch_size=4, shuffle=True, seed=0)
    epoch0 = [b[0].numpy().copy() for b in loader]
    state = get_rng_state()            # what a checkpoint saves after epoch 0
    epoch1 = [b[0].numpy().copy() for b in loader]
    st.manual_seed(999)                # a new process...
    set_rng_state(state)               # ...restores the state and the loader's epoch
    resumed = DataLoader(Augmented(augment()), batch_size=4, shuffle=True, seed=0)
    resumed.epoch = 1
    for a, b in zip(first[0] + first[1], epoch0 + [b[0].numpy() for b in resumed]):
        numpy.testing.assert_array_equal(a, b)
    for a, b in zip(epoch1, first[1]):
        numpy.testing.assert_array_equal(a, b)


# ----- Resize ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("size,max_size,in_hw,out_hw", [
    (25, None, (100, 50), (50, 25)),     # shorter side (W) to 25, H = int(25 * 100 / 50)
    (25, None, (50, 100), (25, 50)),
    (10, None, (33, 77), (10, 23)),      # int(10 * 77 / 33) = int(23.33) = 23: truncated, not rounded
    (10, None, (77, 33), (23, 10)),
    (7, None, (20, 20), (7, 7)),
    ([7], None, (20, 40), (7, 14)),      # a 1-sequence is the shorter side too
    ((7, 9), None, (20, 40), (7, 9)),    # (h, w) is exact
    (10, 15, (20, 40), (7, 15)),         # longer side capped at max_size, shorter int(15 * 10 / 20) = 7
    (10, 30, (20, 40), (10, 20)),        # under the cap: unchanged
])
def test_resize_output_size_follows_torchvisions_rule(size, max_size, in_hw, out_hw):
    resize = Resize(size, max_size=max_size)
    assert resize.output_size(*in_hw) == out_hw
    assert resize(numpy.zeros((2, *in_hw), numpy.float32)).shape == (2, *out_hw)
    assert resize(Image.new("RGB", in_hw[::-1])).size == out_hw[::-1]


@pytest.mark.parametrize("antialias", [True, False])
@pytest.mark.parametrize("in_hw,out_hw", [((37, 50), (16, 23)), ((10, 12), (31, 7)), ((9, 4), (3, 8)),
                                          ((64, 64), (17, 17)), ((5, 5), (1, 1))])
def test_resize_of_arrays_matches_torch_bilinear(rng, antialias, in_hw, out_hw):
    for dtype, tolerance in [(numpy.float64, 1e-12), (numpy.float32, 1e-5)]:
        x = rng.random((2, 3, *in_hw)).astype(dtype)
        expected = torch.nn.functional.interpolate(torch.from_numpy(x), size=out_hw, mode="bilinear",
                                                   antialias=antialias, align_corners=False).numpy()
        out = Resize(out_hw, antialias=antialias)(x)
        assert out.dtype == dtype
        numpy.testing.assert_allclose(out, expected, rtol=0, atol=tolerance)


def test_resize_of_uint8_arrays_is_within_one_level_of_pillow(rng):
    hwc = rng.integers(0, 256, size=(60, 80, 3), dtype=numpy.uint8)
    for h, w in [(45, 60), (120, 160), (17, 33)]:
        expected = numpy.asarray(Image.fromarray(hwc).resize((w, h), Image.BILINEAR)).astype(int)
        out = Resize((h, w))(hwc.transpose(2, 0, 1))
        assert out.dtype == numpy.uint8
        assert numpy.abs(out.transpose(1, 2, 0).astype(int) - expected).max() <= 1


def test_resize_to_the_same_size_is_the_identity(rng):
    x = rng.random((3, 8, 8))
    assert Resize(8)(x) is x
    numpy.testing.assert_allclose(Resize((8, 8), antialias=False)(x), x)


# ----- CenterCrop -----------------------------------------------------------------------------------
@pytest.mark.parametrize("hw,size,top_left", [
    ((5, 9), (4, 4), (0, 2)),    # round(0.5) = 0 and round(2.5) = 2: Python rounds halves to even
    ((7, 8), (4, 4), (2, 2)),    # round(1.5) = 2
    ((8, 11), (4, 6), (2, 2)),   # round(2.5) = 2
    ((6, 6), 6, (0, 0)),
])
def test_center_crop_offsets_round_halves_to_even_as_torchvision(hw, size, top_left):
    x = positions(2, *hw)
    out = CenterCrop(size)(x)
    h, w = (size, size) if isinstance(size, int) else size
    top, left = top_left
    numpy.testing.assert_array_equal(out, x[:, top:top + h, left:left + w])
    pil = CenterCrop(size)(Image.fromarray(x[0].astype(numpy.uint8)))
    numpy.testing.assert_array_equal(numpy.asarray(pil), x[0, top:top + h, left:left + w].astype(numpy.uint8))


def test_center_crop_larger_than_the_image_pads_with_zeros_odd_pixel_last():
    x = positions(1, 3, 4) + 1
    out = CenterCrop((6, 7))(x)
    expected = numpy.zeros((1, 6, 7))
    expected[:, 1:4, 1:5] = x   # (6-3)//2 = 1 above, 2 below; (7-4)//2 = 1 left, 2 right
    numpy.testing.assert_array_equal(out, expected)
    out = CenterCrop((2, 6))(x)  # crop rows, pad columns: pad (1, 1), then crop rows from the centre
    expected = numpy.zeros((1, 2, 6))
    expected[:, :, 1:5] = x[:, 0:2]   # top = round((3 - 2) / 2) = round(0.5) = 0
    numpy.testing.assert_array_equal(out, expected)


# ----- ToArray on Pillow images ---------------------------------------------------------------------
def test_to_array_reads_pillow_images_with_torchvisions_dtypes(rng):
    gray = rng.integers(0, 256, size=(3, 4), dtype=numpy.uint8)
    numpy.testing.assert_array_equal(ToArray()(Image.fromarray(gray)), gray[None].astype(numpy.float32) / 255)
    rgb = rng.integers(0, 256, size=(3, 4, 3), dtype=numpy.uint8)
    numpy.testing.assert_array_equal(ToArray()(Image.fromarray(rgb)), ToArray()(rgb))
    bits = Image.fromarray(gray > 127)
    assert bits.mode == "1"
    numpy.testing.assert_array_equal(ToArray()(bits), (gray[None] > 127).astype(numpy.float32))   # 255 / 255
    ints = Image.fromarray(rng.integers(-1000, 1000, size=(3, 4)).astype(numpy.int32))
    numpy.testing.assert_array_equal(ToArray()(ints), numpy.asarray(ints)[None].astype(numpy.float32))  # unscaled
    floats = Image.fromarray(rng.random((3, 4)).astype(numpy.float32))
    numpy.testing.assert_array_equal(ToArray()(floats), numpy.asarray(floats)[None])


def test_cifar_style_pipeline_and_reprs(rng):
    pipeline = Compose([ToArray(), RandomCrop(32, padding=4, seed=0), RandomHorizontalFlip(seed=0),
                        Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))])
    out = pipeline(rng.integers(0, 256, size=(32, 32, 3), dtype=numpy.uint8))
    assert out.shape == (3, 32, 32) and out.dtype == numpy.float32
    text = repr(Compose([RandomCrop(32, padding=4), RandomHorizontalFlip(), Resize(256), CenterCrop(224)]))
    for part in ["RandomCrop(size=(32, 32), padding=(4, 4, 4, 4))", "RandomHorizontalFlip(p=0.5)",
                 "Resize(size=256, max_size=None, antialias=True)", "CenterCrop(size=(224, 224))"]:
        assert part in text


# ----- ImageNet ---------------------------------------------------------------------------------------
def test_imagenet_class_names_ship_in_torchvisions_order():
    names = imagenet_classes()
    assert len(names) == 1000 and len(set(names)) == 1000
    known = {0: "tench", 1: "goldfish", 134: "crane bird", 151: "Chihuahua", 207: "golden retriever",
             281: "tabby", 285: "Egyptian cat", 409: "analog clock", 517: "crane", 639: "maillot tank suit",
             948: "Granny Smith", 954: "banana", 999: "toilet tissue"}
    assert {i: names[i] for i in known} == known
    text = importlib.resources.files("striate.data").joinpath("imagenet_classes.txt").read_text(encoding="utf-8")
    assert text.splitlines() == names and text.endswith("\n")
    names.append("x")
    assert len(imagenet_classes()) == 1000   # a fresh list each call


def test_imagenet_preset_matches_the_pillow_reference_pipeline(rng):
    # a smooth image (as photos are) of a non-square size
    small = rng.integers(0, 256, size=(30, 40, 3), dtype=numpy.uint8)
    photo = Image.fromarray(small).resize((400, 300), Image.BILINEAR)
    out = imagenet_transform()(photo)
    assert out.shape == (3, 224, 224) and out.dtype == numpy.float32
    # torchvision's reference: Resize(256) and CenterCrop(224) on the Pillow image, then ToTensor, Normalize
    resized = numpy.asarray(photo.resize((341, 256), Image.BILINEAR))       # int(256 * 400 / 300) = 341
    top, left = int(round((256 - 224) / 2)), int(round((341 - 224) / 2))
    reference = resized[top:top + 224, left:left + 224].transpose(2, 0, 1) / 255.0
    reference = (reference - numpy.array(IMAGENET_MEAN)[:, None, None]) / numpy.array(IMAGENET_STD)[:, None, None]
    difference_in_pixels = numpy.abs(out - reference) * numpy.array(IMAGENET_STD)[:, None, None]
    assert difference_in_pixels.max() <= 1 / 255 + 1e-6   # Pillow's rounding to 8 bits after resizing
    numpy.testing.assert_allclose(imagenet_transform()(numpy.asarray(photo)), out, atol=1e-6)   # HWC arrays too
