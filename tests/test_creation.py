"""Tensor factories: shapes, dtypes and values against PyTorch; seeded determinism of the random ones."""
import numpy
import pytest

import striate as st
from oracle import assert_close, torch

NUMPY_OF_TORCH = {torch.bool: numpy.bool_, torch.int64: numpy.int64, torch.float32: numpy.float32,
                  torch.float64: numpy.float64, torch.int32: numpy.int32}


def same_shape_and_dtype(s, t):
    assert s.shape == tuple(t.shape), f"shape {s.shape} != {tuple(t.shape)}"
    assert s.dtype == NUMPY_OF_TORCH[t.dtype], f"dtype {s.dtype} != {t.dtype}"


SIZES = [(), (3,), (2, 3), (0, 4), (2, 1, 3)]


@pytest.mark.parametrize("size", SIZES, ids=str)
@pytest.mark.parametrize("name", ["zeros", "ones", "empty", "rand", "randn"])
def test_factories_take_sizes_like_torch(name, size):
    s_fn, t_fn = getattr(st, name), getattr(torch, name)
    for s, t in ((s_fn(size), t_fn(size)), (s_fn(list(size)), t_fn(list(size)))):
        same_shape_and_dtype(s, t)
    if size:   # PyTorch needs at least one size when they are unpacked
        same_shape_and_dtype(s_fn(*size), t_fn(*size))
    same_shape_and_dtype(s_fn(size, dtype=st.float64), t_fn(size, dtype=torch.float64))
    same_shape_and_dtype(s_fn(size, dtype=None), t_fn(size, dtype=None))
    x = s_fn(size, requires_grad=True)
    assert x.requires_grad and x.is_leaf


def test_zeros_and_ones_values():
    assert not st.zeros(2, 3).data.any() and st.ones(2, 3).data.all()
    assert st.zeros(numpy.int64(2), 3).shape == (2, 3)
    assert st.zeros(2, dtype=st.int64).dtype == numpy.int64
    assert st.zeros(2, dtype="float64").dtype == numpy.float64


@pytest.mark.parametrize("fill", [3, 2.5, True, -1])
def test_full_infers_its_dtype_like_torch(fill):
    same_shape_and_dtype(st.full((2, 3), fill), torch.full((2, 3), fill))
    assert_close(st.full((2, 3), fill), torch.full((2, 3), fill))
    same_shape_and_dtype(st.full((2,), fill, dtype=st.float64), torch.full((2,), fill, dtype=torch.float64))
    assert st.full(4, fill).shape == (4,)


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64, numpy.int64])
def test_like_factories_keep_shape_and_dtype(dtype):
    x = st.tensor(numpy.arange(6).reshape(2, 3).astype(dtype))
    t = torch.from_numpy(x.data.copy())
    for name in ("zeros_like", "ones_like", "empty_like"):
        same_shape_and_dtype(getattr(st, name)(x), getattr(torch, name)(t))
        same_shape_and_dtype(getattr(st, name)(x, dtype=st.float64), getattr(torch, name)(t, dtype=torch.float64))
    same_shape_and_dtype(st.full_like(x, 7), torch.full_like(t, 7))
    assert_close(st.full_like(x, 7), torch.full_like(t, 7))
    assert st.zeros_like(x, dtype=numpy.dtype("float64")).dtype == numpy.float64   # a dtype object, not only a type
    if dtype != numpy.int64:
        same_shape_and_dtype(st.rand_like(x), torch.rand_like(t))
        same_shape_and_dtype(st.randn_like(x), torch.randn_like(t))
        assert st.zeros_like(x, requires_grad=True).requires_grad


@pytest.mark.parametrize("args", [(5,), (2, 9), (0, 10, 3), (10, 0, -3), (-4, 4, 2), (0.0, 1.0, 0.1), (1, 2.5, 0.5),
                                  (5, 5), (0, 1, 0.3), (3.0,), (-1.5, 2.0, 0.7)], ids=str)
def test_arange_matches_torch(args):
    s, t = st.arange(*args), torch.arange(*args)
    same_shape_and_dtype(s, t)
    assert_close(s, t)
    same_shape_and_dtype(st.arange(*args, dtype=st.float64), torch.arange(*args, dtype=torch.float64))
    assert_close(st.arange(*args, dtype=st.float64), torch.arange(*args, dtype=torch.float64), rtol=1e-12)


@pytest.mark.parametrize("args", [(0, 1, 5), (-2.0, 3.0, 7), (1, 1, 3), (0, 1, 1), (0, 1, 0)], ids=str)
def test_linspace_matches_torch(args):
    s, t = st.linspace(*args), torch.linspace(*args)
    same_shape_and_dtype(s, t)
    assert_close(s, t)


@pytest.mark.parametrize("args", [(3,), (2, 4), (4, 2), (0,)], ids=str)
def test_eye_matches_torch(args):
    s, t = st.eye(*args), torch.eye(*args)
    same_shape_and_dtype(s, t)
    assert_close(s, t)


def test_randint_forms_bounds_and_dtype():
    st.manual_seed(0)
    for s, t in ((st.randint(10, (3, 4)), torch.randint(10, (3, 4))),
                 (st.randint(-5, 5, (100,)), torch.randint(-5, 5, (100,))),
                 (st.randint(3, size=(2,)), torch.randint(3, size=(2,))),
                 (st.randint(low=2, high=4, size=(5,)), torch.randint(low=2, high=4, size=(5,)))):
        same_shape_and_dtype(s, t)
    values = st.randint(-5, 5, (1000,)).data
    assert values.min() == -5 and values.max() == 4
    assert st.randint(4, (3,), dtype=st.int32).dtype == numpy.int32
    perm = st.randperm(10)
    assert perm.dtype == numpy.int64 and sorted(perm.tolist()) == list(range(10))


def test_rand_and_randn_distributions():
    st.manual_seed(1)
    u = st.rand(20000).data
    n = st.randn(20000).data
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.01
    assert abs(n.mean()) < 0.03 and abs(n.std() - 1) < 0.03


def test_manual_seed_makes_random_factories_repeat():
    def draw():
        return [st.rand(3, 2).data, st.randn(4).data, st.randint(0, 100, (5,)).data, st.randperm(6).data]

    st.manual_seed(123)
    first = draw()
    st.manual_seed(123)
    second = draw()
    st.manual_seed(124)
    third = draw()
    for a, b in zip(first, second):
        numpy.testing.assert_array_equal(a, b)
    assert not numpy.array_equal(first[0], third[0])
    # float32 and float64 draw the same stream
    st.manual_seed(5)
    a = st.rand(4).data
    st.manual_seed(5)
    b = st.rand(4, dtype=st.float64).data
    numpy.testing.assert_allclose(a, b, rtol=1e-7)


def test_generator_argument_is_independent_of_the_default():
    st.manual_seed(7)
    expected = st.randn(3).data
    st.manual_seed(7)
    own = numpy.random.default_rng(0)
    st.randn(5, generator=own)
    st.rand(5, generator=own)
    st.randint(0, 3, (5,), generator=own)
    numpy.testing.assert_array_equal(st.randn(3).data, expected)
    numpy.testing.assert_array_equal(st.rand(2, generator=numpy.random.default_rng(9)).data,
                                     st.rand(2, generator=numpy.random.default_rng(9)).data)


def test_rng_state_round_trip():
    from striate.random import get_rng_state, set_rng_state
    st.manual_seed(3)
    state = get_rng_state()
    first = st.randn(4).data
    set_rng_state(state)
    numpy.testing.assert_array_equal(st.randn(4).data, first)


def test_from_numpy_shares_memory():
    array = numpy.zeros(3, dtype=numpy.float64)
    t = st.from_numpy(array)
    array[1] = 4
    assert t.dtype == numpy.float64 and t.tolist() == [0, 4, 0]


ERRORS = [
    (lambda: st.zeros(-1, 2), ValueError, r"zeros: sizes must be non-negative, got \(-1, 2\)"),
    (lambda: st.ones(2.5), TypeError, r"ones: expected a shape of ints"),
    (lambda: st.zeros(2, dtype=st.int64, requires_grad=True), TypeError, r"only floating-point tensors can require gradients"),
    (lambda: st.rand(2, dtype=st.int64), TypeError, r"rand: needs a floating-point dtype, got int64"),
    (lambda: st.randn(2, dtype=st.int64), TypeError, r"randn: needs a floating-point dtype"),
    (lambda: st.randint(5, 5, (2,)), ValueError, r"randint: high must be greater than low, got low=5, high=5"),
    (lambda: st.randint(5), TypeError, r"randint: missing the size argument"),
    (lambda: st.arange(0, 5, 0), ValueError, r"arange: step must be nonzero"),
    (lambda: st.arange(0, 5, -1), ValueError, r"arange: step -1 never reaches end 5 from start 0"),
    (lambda: st.linspace(0, 1, -1), ValueError, r"linspace: steps must be non-negative"),
    (lambda: st.eye(-1), ValueError, r"eye: sizes must be non-negative"),
    (lambda: st.randperm(-2), ValueError, r"randperm: n must be non-negative"),
    (lambda: st.manual_seed(-1), ValueError, r"manual_seed: seed must be a non-negative int"),
    (lambda: st.manual_seed(1.5), ValueError, r"manual_seed: seed must be a non-negative int"),
    (lambda: st.from_numpy([1, 2]), TypeError, r"from_numpy: expected a NumPy array, got list"),
]


@pytest.mark.parametrize("call, error, message", ERRORS, ids=[m[:30] for _, _, m in ERRORS])
def test_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()
