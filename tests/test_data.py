"""Datasets, DataLoader (batching, shuffling per (seed, epoch), resume, collate) and transforms."""
import numpy
import pytest
import torch

import striate as st
from striate.data import DataLoader, Dataset, Subset, TensorDataset, default_collate
from striate.data.transforms import Compose, Lambda, Normalize, Pad, ToArray


class Numbers(Dataset):
    """Item i is the int i: a dataset whose batches show exactly which samples were visited."""

    def __init__(self, n):
        self.n = n

    def __getitem__(self, index):
        if not 0 <= index < self.n:
            raise IndexError(index)
        return index

    def __len__(self):
        return self.n


def visited(loader):
    """Each batch of one epoch as a list of ints."""
    return [batch.data.tolist() for batch in loader]


# ----- datasets ------------------------------------------------------------------------------------
def test_tensor_dataset_items_and_length(rng):
    x = rng.standard_normal((7, 3)).astype(numpy.float32)
    y = numpy.arange(7) * 10
    ds = TensorDataset(x, st.tensor(y))
    assert len(ds) == 7
    a, b = ds[2]
    numpy.testing.assert_array_equal(a, x[2])
    assert b == 20
    numpy.testing.assert_array_equal(ds[-1][0], x[6])
    with pytest.raises(IndexError, match="TensorDataset: index 7 is out of range for 7 samples"):
        ds[7]
    with pytest.raises(TypeError, match="TensorDataset: index must be an int, got float"):
        ds[1.0]


def test_tensor_dataset_rejects_bad_arrays():
    with pytest.raises(ValueError, match=r"same first dimension, got \[3, 4\]"):
        TensorDataset(numpy.zeros(3), numpy.zeros(4))
    with pytest.raises(ValueError, match="array 1 is 0-dimensional"):
        TensorDataset(numpy.zeros(3), numpy.float32(1))
    with pytest.raises(ValueError, match="at least one array"):
        TensorDataset()


def test_subset_maps_indices():
    sub = Subset(Numbers(10), [9, 0, 3, -1])
    assert len(sub) == 4
    assert [sub[i] for i in range(4)] == [9, 0, 3, 9]
    assert list(sub) == [9, 0, 3, 9]  # iteration stops at IndexError
    with pytest.raises(IndexError, match="Subset: index 4 is out of range for 4 samples"):
        sub[4]
    with pytest.raises(IndexError, match=r"indices must lie in \[-10, 10\) .* got values from 0 to 10"):
        Subset(Numbers(10), [0, 10])
    with pytest.raises(TypeError, match="1-D sequence of ints"):
        Subset(Numbers(10), [0.5])
    assert len(Subset(Numbers(10), [])) == 0


def test_dataset_base_class_requires_methods():
    with pytest.raises(NotImplementedError, match="must implement __getitem__"):
        Dataset()[0]
    with pytest.raises(NotImplementedError, match="must implement __len__"):
        len(Dataset())


# ----- batching ------------------------------------------------------------------------------------
@pytest.mark.parametrize("n,batch_size,drop_last,expected_len", [
    (10, 3, False, 4), (10, 3, True, 3), (9, 3, False, 3), (9, 3, True, 3), (2, 5, False, 1), (2, 5, True, 0),
    (0, 4, False, 0), (1, 1, False, 1)])
def test_batches_cover_dataset_in_order(n, batch_size, drop_last, expected_len):
    loader = DataLoader(Numbers(n), batch_size=batch_size, drop_last=drop_last)
    batches = visited(loader)
    assert len(loader) == expected_len == len(batches)
    flat = [i for b in batches for i in b]
    assert flat == list(range(expected_len * batch_size if drop_last else n))
    assert all(len(b) == batch_size for b in batches[:-1])
    if drop_last:
        assert all(len(b) == batch_size for b in batches)


def test_shuffled_epochs_are_permutations_and_drop_last_drops_the_tail():
    loader = DataLoader(Numbers(10), batch_size=4, shuffle=True, drop_last=True, seed=3)
    for _ in range(3):
        flat = [i for b in visited(loader) for i in b]
        assert len(flat) == 8 and len(set(flat)) == 8 and set(flat) <= set(range(10))
    loader = DataLoader(Numbers(10), batch_size=4, shuffle=True, seed=3)
    for _ in range(3):
        assert sorted(i for b in visited(loader) for i in b) == list(range(10))


def test_shuffle_order_is_a_function_of_seed_and_epoch():
    def epochs(seed, count):
        loader = DataLoader(Numbers(50), batch_size=8, shuffle=True, seed=seed)
        return [visited(loader) for _ in range(count)]

    first, again, other = epochs(7, 4), epochs(7, 4), epochs(8, 4)
    assert first == again                                      # same seed: same orders
    assert len({str(e) for e in first}) == 4                   # each epoch a fresh order
    assert all(a != b for a, b in zip(first, other))           # another seed: other orders
    assert first[0] != [list(range(i, min(i + 8, 50))) for i in range(0, 50, 8)]  # actually shuffled


def test_setting_epoch_resumes_the_exact_order():
    uninterrupted = DataLoader(Numbers(30), batch_size=4, shuffle=True, seed=11)
    orders = [visited(uninterrupted) for _ in range(5)]
    assert uninterrupted.epoch == 5
    resumed = DataLoader(Numbers(30), batch_size=4, shuffle=True, seed=11)
    resumed.epoch = 3
    assert visited(resumed) == orders[3]
    assert resumed.epoch == 4
    assert visited(resumed) == orders[4]
    resumed.epoch = 0
    assert visited(resumed) == orders[0]


def test_epoch_counts_iterations_started():
    loader = DataLoader(Numbers(10), batch_size=2, shuffle=True, seed=0)
    iterator = iter(loader)
    assert loader.epoch == 1  # counted when iteration starts, before the first batch
    order = [next(iterator).data.tolist() for _ in range(2)]
    assert loader.epoch == 1
    loader.epoch = 0
    assert visited(loader)[:2] == order  # an abandoned epoch replays identically
    with pytest.raises(ValueError, match="epoch must be a non-negative int, got -1"):
        loader.epoch = -1


def test_seed_none_draws_from_striate_default_generator():
    st.manual_seed(123)
    a = DataLoader(Numbers(40), batch_size=40, shuffle=True)
    st.manual_seed(123)
    b = DataLoader(Numbers(40), batch_size=40, shuffle=True)
    c = DataLoader(Numbers(40), batch_size=40, shuffle=True)
    assert isinstance(a.seed, int) and a.seed == b.seed != c.seed
    assert visited(a) == visited(b)
    # The seed is drawn once, at construction: later draws from the generator do not change the order.
    st.randn(5)
    assert visited(a) == visited(b)


@pytest.mark.parametrize("kwargs,message", [
    ({"batch_size": 0}, "batch_size must be a positive int, got 0"),
    ({"batch_size": 2.0}, "batch_size must be a positive int, got 2.0"),
    ({"batch_size": True}, "batch_size must be a positive int, got True"),
    ({"seed": -1}, "seed must be a non-negative int or None, got -1"),
    ({"seed": 1.5}, "seed must be a non-negative int or None, got 1.5"),
])
def test_loader_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DataLoader(Numbers(4), **kwargs)
    with pytest.raises(TypeError, match="collate_fn must be callable"):
        DataLoader(Numbers(4), collate_fn=3)


def test_loader_over_images_yields_float32_images_and_int64_labels(rng):
    images = rng.integers(0, 256, size=(10, 28, 28), dtype=numpy.uint8)

    class Images(Dataset):
        def __getitem__(self, i):
            return ToArray()(images[i]), int(i % 3)

        def __len__(self):
            return 10

    x, y = next(iter(DataLoader(Images(), batch_size=4)))
    assert isinstance(x, st.Tensor) and isinstance(y, st.Tensor)
    assert x.shape == (4, 1, 28, 28) and x.dtype == numpy.float32
    assert y.shape == (4,) and y.dtype == numpy.int64
    numpy.testing.assert_array_equal(x.data[:, 0], images[:4] / numpy.float32(255))
    assert y.data.tolist() == [0, 1, 2, 0]


def test_tensor_dataset_fast_path_equals_item_by_item_collation(rng):
    ds = TensorDataset(rng.standard_normal((23, 2, 3)).astype(numpy.float32), rng.integers(0, 9, 23),
                       rng.integers(0, 255, 23).astype(numpy.uint8))
    fast = DataLoader(ds, batch_size=5, shuffle=True, seed=1)
    generic = DataLoader(Subset(ds, range(23)), batch_size=5, shuffle=True, seed=1)  # item by item
    for a, b in zip(fast, generic, strict=True):
        for fa, fb in zip(a, b, strict=True):
            assert fa.dtype == fb.dtype and fa.shape == fb.shape
            numpy.testing.assert_array_equal(fa.data, fb.data)


def test_custom_collate_and_getitems_hook():
    loader = DataLoader(Numbers(5), batch_size=2, collate_fn=lambda samples: sum(samples))
    assert list(loader) == [1, 5, 4]

    class Batched(Numbers):
        calls = []

        def __getitems__(self, indices):
            self.calls.append(indices)
            return [i * 10 for i in indices]

    ds = Batched(5)
    assert visited(DataLoader(ds, batch_size=2)) == [[0, 10], [20, 30], [40]]
    assert ds.calls == [[0, 1], [2, 3], [4]]


# ----- collate -------------------------------------------------------------------------------------
def test_collate_dtypes_and_structures():
    batch = [(numpy.full((2, 2), i, numpy.float32), i, float(i), numpy.uint8(i), True, f"s{i}",
              {"a": numpy.int32(i), "b": [i, numpy.float64(i)]}, st.tensor([i, 0.5])) for i in range(3)]
    x, ints, floats, u8, flags, names, mapping, tensors = default_collate(batch)
    assert x.shape == (3, 2, 2) and x.dtype == numpy.float32 and x.data[2, 1, 1] == 2
    assert ints.dtype == numpy.int64 and ints.data.tolist() == [0, 1, 2]
    assert floats.dtype == numpy.float32
    assert u8.dtype == numpy.uint8
    assert flags.dtype == numpy.bool_
    assert names == ["s0", "s1", "s2"]
    assert mapping["a"].dtype == numpy.int32
    assert mapping["b"][0].dtype == numpy.int64 and mapping["b"][1].dtype == numpy.float64
    assert tensors.shape == (3, 2) and tensors.dtype == numpy.float32


def test_collate_errors():
    with pytest.raises(ValueError, match="same shape to be stacked"):
        default_collate([numpy.zeros(2), numpy.zeros(3)])
    with pytest.raises(ValueError, match=r"same number of fields, got lengths \[1, 2\]"):
        default_collate([(1,), (1, 2)])
    with pytest.raises(TypeError, match="cannot collate samples of type object"):
        default_collate([object()])
    with pytest.raises(ValueError, match="empty batch"):
        default_collate([])


# ----- transforms ----------------------------------------------------------------------------------
def test_to_array_scales_uint8_and_moves_channels_first():
    gray = numpy.array([[0, 51], [255, 102]], numpy.uint8)
    out = ToArray()(gray)
    assert out.shape == (1, 2, 2) and out.dtype == numpy.float32
    numpy.testing.assert_array_equal(out[0], numpy.array([[0, 0.2], [1, 0.4]], numpy.float32))
    color = numpy.arange(24, dtype=numpy.uint8).reshape(2, 3, 4)  # H, W, C
    out = ToArray()(color)
    assert out.shape == (4, 2, 3)
    assert out[3, 1, 2] * 255 == pytest.approx(color[1, 2, 3])
    assert out.flags.c_contiguous
    floats = numpy.full((2, 2), 7.5, numpy.float64)
    numpy.testing.assert_array_equal(ToArray()(floats), numpy.full((1, 2, 2), 7.5, numpy.float32))


def test_to_array_matches_torchvision_rule(rng):
    image = rng.integers(0, 256, size=(5, 6, 3), dtype=numpy.uint8)
    expected = torch.from_numpy(image).permute(2, 0, 1).float().div(255).numpy()  # torchvision ToTensor
    numpy.testing.assert_array_equal(ToArray()(image), expected)


def test_to_array_errors():
    with pytest.raises(ValueError, match=r"ToArray: expected an image of shape \(H, W\) or \(H, W, C\), got shape \(4,\)"):
        ToArray()(numpy.zeros(4, numpy.uint8))
    with pytest.raises(TypeError, match="ToArray: expected an integer or float image, got dtype bool"):
        ToArray()(numpy.zeros((2, 2), bool))


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_normalize_matches_torch(rng, dtype):
    x = rng.random((3, 4, 5)).astype(dtype)
    mean, std = [0.1, 0.5, 0.9], [0.2, 0.3, 0.7]
    out = Normalize(mean, std)(x)
    t = torch.from_numpy(x)
    expected = t.sub(torch.tensor(mean, dtype=t.dtype)[:, None, None]).div(torch.tensor(std, dtype=t.dtype)[:, None, None])
    assert out.dtype == dtype
    numpy.testing.assert_array_equal(out, expected.numpy())
    single = Normalize(0.1307, 0.3081)(x[:1])
    numpy.testing.assert_allclose(single, (x[:1] - 0.1307) / 0.3081, rtol=1e-6)
    assert not numpy.shares_memory(out, x)


def test_normalize_errors():
    with pytest.raises(ValueError, match=r"Normalize: std must be non-zero, got \[1.0, 0.0\]"):
        Normalize([0, 0], [1, 0])
    with pytest.raises(ValueError, match="Normalize: mean has 2 values for an input with 3 channels"):
        Normalize([0, 0], 1)(numpy.zeros((3, 2, 2)))
    with pytest.raises(TypeError, match="apply ToArray first"):
        Normalize(0, 1)(numpy.zeros((1, 2, 2), numpy.uint8))
    with pytest.raises(ValueError, match=r"expected an array of shape \(C, H, W\), got shape \(2, 2\)"):
        Normalize(0, 1)(numpy.zeros((2, 2)))


@pytest.mark.parametrize("padding,torch_pad", [
    (2, (2, 2, 2, 2)), ((1, 3), (1, 1, 3, 3)), ((1, 2, 3, 4), (1, 3, 2, 4))])  # torch: (left, right, top, bottom)
def test_pad_matches_torch(rng, padding, torch_pad):
    for shape in [(5, 6), (2, 5, 6)]:
        x = rng.integers(0, 255, size=shape).astype(numpy.uint8)
        expected = torch.nn.functional.pad(torch.from_numpy(x), torch_pad, value=9).numpy()
        out = Pad(padding, fill=9)(x)
        assert out.dtype == numpy.uint8
        numpy.testing.assert_array_equal(out, expected)


def test_pad_errors():
    with pytest.raises(ValueError, match=r"padding must be an int or a tuple of 2 or 4 ints, got \(1, 2, 3\)"):
        Pad((1, 2, 3))
    with pytest.raises(ValueError, match="padding must be non-negative, got -1"):
        Pad(-1)
    with pytest.raises(ValueError, match=r"Pad: expected an array of shape \(..., H, W\), got shape \(3,\)"):
        Pad(1)(numpy.zeros(3))


def test_compose_and_lambda():
    t = Compose([Pad(2), ToArray(), Normalize(0.5, 0.5), Lambda(lambda x: x * 2)])
    out = t(numpy.full((28, 28), 255, numpy.uint8))
    assert out.shape == (1, 32, 32) and out.dtype == numpy.float32
    assert out[0, 0, 0] == -2 and out[0, 5, 5] == 2
    assert "Pad" in repr(t) and "Normalize" in repr(t)
    with pytest.raises(TypeError, match="Compose: transform 1 is not callable"):
        Compose([ToArray(), 3])
    with pytest.raises(TypeError, match="Lambda: expected a callable"):
        Lambda(None)
