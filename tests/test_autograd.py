"""The autograd core against PyTorch (forward and backward) and finite differences.

Ops × samples × checks: every Tensor operation runs on seeded random shapes (broadcasting
in every direction) in striate and PyTorch with the same inputs and upstream gradient;
every one also passes a float64 ``st.gradcheck``. Then the engine itself: accumulation,
diamonds, graph release, deep graphs, grad mode, errors.
"""
import gc
import threading
import weakref

import numpy
import pytest

import striate as st
from oracle import assert_close, compare, torch

RNG_SEED = 20240607


def _torch_dtype_as_numpy(t):
    return t.detach().numpy().dtype


def check(striate_fn, torch_fn, arrays, grad=None, rtol=None, atol=None):
    """``compare`` plus a dtype check, with tolerances chosen by the inputs' precision."""
    grad = tuple(range(len(arrays))) if grad is None else grad
    single = any(numpy.asarray(a).dtype == numpy.float32 for a in arrays)
    rtol = rtol if rtol is not None else (2e-5 if single else 1e-10)
    atol = atol if atol is not None else (2e-6 if single else 1e-12)
    out = compare(striate_fn, torch_fn, arrays, grad=grad, rtol=rtol, atol=atol)
    reference = torch_fn(*[torch.from_numpy(numpy.array(a)) for a in arrays])
    assert out.dtype == _torch_dtype_as_numpy(reference), f"dtype {out.dtype} != reference {reference.dtype}"
    return out


def broadcast_pairs(count, seed):
    """Shape pairs that broadcast: either side may have fewer dims or size-1 dims stretched."""
    rng = numpy.random.default_rng(seed)
    pairs = []
    for _ in range(count):
        rank = int(rng.integers(0, 5))
        full = [int(s) for s in rng.integers(1, 5, size=rank)]

        def operand():
            kept = int(rng.integers(0, rank + 1))
            return tuple(1 if rng.random() < 0.35 else s for s in full[rank - kept:])
        pairs.append((operand(), operand()))
    return pairs


def randn(shape, dtype=numpy.float32, seed=0):
    return numpy.random.default_rng(seed).standard_normal(shape).astype(dtype)


def away_from_zero(shape, dtype=numpy.float32, seed=0):
    x = randn(shape, dtype, seed)
    return (numpy.sign(x) + (x == 0)) * (0.5 + numpy.abs(x))


def positive(shape, dtype=numpy.float32, seed=0):
    return (0.5 + numpy.abs(randn(shape, dtype, seed))).astype(dtype)


# ----- binary arithmetic ------------------------------------------------------------------------
BINARY = {
    "add": (lambda a, b: a + b, randn, randn),
    "sub": (lambda a, b: a - b, randn, randn),
    "mul": (lambda a, b: a * b, randn, randn),
    "div": (lambda a, b: a / b, randn, away_from_zero),
    "pow": (lambda a, b: a ** b, positive, randn),
}
PAIRS = broadcast_pairs(24, RNG_SEED)


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("shapes", PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
@pytest.mark.parametrize("op", BINARY)
def test_binary_matches_torch_with_broadcasting(op, shapes, dtype):
    fn, make_a, make_b = BINARY[op]
    a, b = make_a(shapes[0], dtype, 1), make_b(shapes[1], dtype, 2)
    out = check(fn, fn, [a, b])
    assert out.shape == numpy.broadcast_shapes(*shapes)


SCALAR_EXPRESSIONS = {
    "t+s": lambda t: t + 2.5, "s+t": lambda t: 2.5 + t, "t-s": lambda t: t - 3, "s-t": lambda t: 3 - t,
    "t*s": lambda t: t * -1.5, "s*t": lambda t: -1.5 * t, "t/s": lambda t: t / 4, "s/t": lambda t: 2.0 / t,
    "t**int": lambda t: t ** 3, "t**float": lambda t: t ** 2.5, "t**0": lambda t: t ** 0, "t**-1": lambda t: t ** -1,
    "s**t": lambda t: 1.7 ** t, "neg": lambda t: -t, "pos": lambda t: +t,
}


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("expr", SCALAR_EXPRESSIONS)
def test_python_scalars_on_either_side(expr, dtype):
    fn = SCALAR_EXPRESSIONS[expr]
    check(fn, fn, [positive((3, 4), dtype, 5)])


ARRAY_EXPRESSIONS = {
    "arr+t": lambda arr, t: arr + t, "t+arr": lambda arr, t: t + arr,
    "arr-t": lambda arr, t: arr - t, "t-arr": lambda arr, t: t - arr,
    "arr*t": lambda arr, t: arr * t, "t*arr": lambda arr, t: t * arr,
    "arr/t": lambda arr, t: arr / t, "t/arr": lambda arr, t: t / arr,
    "arr**t": lambda arr, t: arr ** t, "t**arr": lambda arr, t: t ** arr,
    "arr@t": lambda arr, t: arr @ t, "t@arr": lambda arr, t: t @ arr.T,
}


@pytest.mark.parametrize("expr", ARRAY_EXPRESSIONS)
def test_numpy_arrays_on_either_side_give_tensors(expr):
    fn = ARRAY_EXPRESSIONS[expr]
    arr = positive((2, 3), numpy.float32, 7)        # broadcasts against (3, 3) for the elementwise ones
    arr = arr if "@" in expr else arr[:1]
    x = positive((3, 3), numpy.float32, 8)
    out = check(lambda t: fn(arr, t), lambda t: fn(torch.from_numpy(arr), t), [x])
    assert isinstance(out, st.Tensor)


MATMUL_SHAPES = [
    ((4,), (4,)), ((4,), (4, 3)), ((2, 4), (4,)), ((2, 4), (4, 3)), ((5, 2, 4), (4, 3)),
    ((2, 4), (5, 4, 3)), ((5, 2, 4), (5, 4, 3)), ((5, 1, 2, 4), (3, 4, 2)), ((4,), (5, 4, 3)),
    ((5, 2, 4), (4,)), ((1, 2, 4), (6, 4, 3)),
]


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=[f"{a}@{b}" for a, b in MATMUL_SHAPES])
def test_matmul_matches_torch(shapes, dtype):
    matmul = lambda a, b: a @ b  # noqa: E731
    rtol = 1e-4 if dtype == numpy.float32 else None      # K-term dot products round differently
    check(matmul, matmul, [randn(shapes[0], dtype, 3), randn(shapes[1], dtype, 4)], rtol=rtol)


def test_gradient_of_one_operand_only():
    a, b = randn((3, 1), seed=1), randn((4,), seed=2)
    check(lambda x, y: x * y, lambda x, y: x * y, [a, b], grad=(1,))
    check(lambda x, y: x / y, lambda x, y: x / y, [a, away_from_zero((4,))], grad=(0,))


def test_pow_edges_match_torch():
    """0 ** 0, 0 ** negative and negative bases: the same zeros, infinities and NaNs as PyTorch."""
    base = numpy.array([0.0, 0.0, -1.5, 2.0, 0.0, -2.0])
    exponent = numpy.array([0.0, -1.0, 2.0, 0.5, 2.0, 0.5])
    s_a, s_b = st.tensor(base, requires_grad=True), st.tensor(exponent, requires_grad=True)
    t_a, t_b = torch.tensor(base, requires_grad=True), torch.tensor(exponent, requires_grad=True)
    with numpy.errstate(all="ignore"):
        (s_a ** s_b).backward(numpy.ones(6))
    (t_a ** t_b).backward(torch.ones(6, dtype=torch.float64))
    numpy.testing.assert_array_equal(s_a.grad.data, t_a.grad.numpy())
    numpy.testing.assert_array_equal(s_b.grad.data, t_b.grad.numpy())


# ----- reductions -------------------------------------------------------------------------------
REDUCTION_DIMS = [None, 0, -1, 1, (0, 2), (-1, 0), (0, 1, 2), ()]


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", REDUCTION_DIMS, ids=str)
@pytest.mark.parametrize("op", ["sum", "mean", "amax", "amin"])
def test_reductions_match_torch(op, dim, keepdim):
    x = randn((3, 4, 5), numpy.float32, 11)
    if dim is None:
        fn = (lambda t: getattr(t, op)()) if not keepdim else (lambda t: getattr(t, op)(dim=None, keepdim=True))
        if op in ("amax", "amin") and keepdim:
            fn = lambda t: getattr(t, op)(dim=(0, 1, 2), keepdim=True)  # noqa: E731
    else:
        fn = lambda t: getattr(t, op)(dim, keepdim=keepdim)  # noqa: E731
    check(fn, fn, [x])


@pytest.mark.parametrize("correction", [{}, {"unbiased": True}, {"unbiased": False}, {"correction": 0},
                                        {"correction": 2}], ids=str)
@pytest.mark.parametrize("dim", [None, 1, -1, (0, 2)], ids=str)
@pytest.mark.parametrize("op", ["var", "std"])
def test_var_std_match_torch(op, dim, correction):
    x = randn((3, 4, 5), numpy.float32, 12)
    for keepdim in (False, True):
        fn = lambda t: getattr(t, op)(dim, keepdim=keepdim, **correction)  # noqa: E731
        check(fn, fn, [x], rtol=1e-4)


def test_var_positional_unbiased_and_std_of_constant():
    x = numpy.array([1.0, 2.0, 4.0], dtype=numpy.float32)
    check(lambda t: t.var(False), lambda t: t.var(False), [x])
    check(lambda t: t.var(True), lambda t: t.var(True), [x])
    # A constant has std 0: the gradient there is 0 in PyTorch, not NaN.
    check(lambda t: t.std(), lambda t: t.std(), [numpy.ones(4, dtype=numpy.float32)])
    check(lambda t: t.std(1), lambda t: t.std(1), [numpy.ones((2, 3), dtype=numpy.float32)])


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [0, 1, -1, 2])
@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_along_dim_return_values_and_indices(op, dim, keepdim):
    x = randn((3, 4, 5), numpy.float32, 13)
    s_x, t_x = st.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    s_values, s_indices = getattr(s_x, op)(dim, keepdim=keepdim)
    t_result = getattr(t_x, op)(dim, keepdim=keepdim)
    assert_close(s_values, t_result.values)
    assert s_indices.dtype == numpy.int64
    numpy.testing.assert_array_equal(s_indices.data, t_result.indices.numpy())
    result = getattr(s_x, op)(dim, keepdim=keepdim)
    assert result.values is not None and result.indices is not None     # named fields, as in PyTorch
    upstream = randn(s_values.shape, seed=1)
    s_values.backward(upstream)
    t_result.values.backward(torch.from_numpy(upstream))
    assert_close(s_x.grad, t_x.grad)


@pytest.mark.parametrize("op", ["max", "min", "amax", "amin"])
def test_ties_share_or_pick_like_torch(op):
    """Full max()/min() (and amax/amin) split the gradient evenly over ties, as torch 2.13 does;
    max(dim)/min(dim) pick the first extreme and give it all of the gradient."""
    x = numpy.array([[1.0, 3.0, 3.0, 0.0], [3.0, -1.0, 3.0, -1.0], [0.0, 3.0, -1.0, -1.0]], dtype=numpy.float32)
    check(lambda t: getattr(t, op)(), lambda t: getattr(t, op)(), [x])
    if op in ("max", "min"):
        for dim in (0, 1):
            s_x, t_x = st.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
            s_values, s_indices = getattr(s_x, op)(dim)
            t_values, t_indices = getattr(t_x, op)(dim)
            numpy.testing.assert_array_equal(s_indices.data, t_indices.numpy())
            s_values.sum().backward()
            t_values.sum().backward()
            assert_close(s_x.grad, t_x.grad)
    else:
        check(lambda t: getattr(t, op)(1), lambda t: getattr(t, op)(1), [x])


def test_reductions_of_a_0d_tensor_and_of_ints():
    x = numpy.array(2.5, dtype=numpy.float32)
    for fn in (lambda t: t.sum(), lambda t: t.mean(), lambda t: t.max(), lambda t: t.sum(0),
               lambda t: t.max(0)[0], lambda t: t.amax(-1)):
        check(fn, fn, [x])
    assert st.tensor(3.0).max(0).indices.item() == 0
    assert st.tensor([[True, False], [True, True]]).sum().item() == 3
    assert st.tensor([1, 2, 3], dtype=st.int32).sum().dtype == numpy.int64  # as PyTorch


# ----- shaping and indexing ---------------------------------------------------------------------
SHAPING = {
    "reshape": ((2, 3, 4), lambda t: t.reshape(4, -1)),
    "reshape-tuple": ((2, 3, 4), lambda t: t.reshape((6, 4))),
    "view": ((2, 3, 4), lambda t: t.view(-1)),
    "view-0d": ((1, 1), lambda t: t.view(())),
    "permute": ((2, 3, 4), lambda t: t.permute(2, 0, 1)),
    "permute-neg": ((2, 3, 4), lambda t: t.permute((-1, -3, -2))),
    "transpose": ((2, 3, 4), lambda t: t.transpose(0, -1)),
    "T": ((3, 4), lambda t: t.T),
    "mT": ((2, 3, 4), lambda t: t.mT),
    "t": ((3, 4), lambda t: t.t()),
    "flatten": ((2, 3, 4, 5), lambda t: t.flatten()),
    "flatten-1": ((2, 3, 4, 5), lambda t: t.flatten(1)),
    "flatten-1-2": ((2, 3, 4, 5), lambda t: t.flatten(1, 2)),
    "flatten-neg": ((2, 3, 4, 5), lambda t: t.flatten(-3, -2)),
    "squeeze": ((1, 3, 1, 4), lambda t: t.squeeze()),
    "squeeze-dim": ((1, 3, 1, 4), lambda t: t.squeeze(2)),
    "squeeze-non1": ((1, 3, 1, 4), lambda t: t.squeeze(1)),
    "squeeze-tuple": ((1, 3, 1, 4), lambda t: t.squeeze((0, -2))),
    "unsqueeze": ((3, 4), lambda t: t.unsqueeze(0)),
    "unsqueeze-neg": ((3, 4), lambda t: t.unsqueeze(-1)),
    "unsqueeze-mid": ((3, 4), lambda t: t.unsqueeze(-2)),
    "expand": ((3, 1), lambda t: t.expand(3, 4)),
    "expand-lead": ((1, 4), lambda t: t.expand(2, 3, -1)),
    "expand-tuple": ((3, 1), lambda t: t.expand((2, -1, 5))),
    "expand_as": ((3, 1), lambda t: t.expand_as(t.expand(3, 6))),
    "clone": ((3, 4), lambda t: t.clone()),
    "double": ((3, 4), lambda t: t.double()),
    "view_as": ((3, 4), lambda t: t.view_as(t.reshape(2, 6))),
}


@pytest.mark.parametrize("name", SHAPING)
def test_shaping_matches_torch(name):
    shape, fn = SHAPING[name]
    check(fn, fn, [randn(shape, seed=21)])


INDEXING = {
    "int": (lambda t: t[1], None),
    "negative-int": (lambda t: t[-1], None),
    "slice": (lambda t: t[1:3], None),
    "slice-step": (lambda t: t[::2, 1::2], None),
    "multi": (lambda t: t[1, :, -2:], None),
    "ellipsis": (lambda t: t[..., 1], None),
    "none": (lambda t: t[None, 1:, ..., None], None),
    "reverse": (lambda t: t[::-1], lambda t: t.flip(0)),
    "reverse-step": (lambda t: t[:, ::-2], lambda t: t.flip(1)[:, ::2]),
    "reverse-inner": (lambda t: t[1:, 3:0:-1, ::-3], lambda t: t[1:].flip(1)[:, 1:4].flip(2)[:, :, ::3]),
    "list-repeats": (lambda t: t[[0, 0, 3, 1, 0]], None),
    "array-2d": (lambda t: t[numpy.array([[0, 1], [1, 1]])], lambda t: t[torch.tensor([[0, 1], [1, 1]])]),
    "pairs": (lambda t: t[[0, 2, 2], [1, 1, 4]], None),
    "mixed": (lambda t: t[:, [4, 0, 4], 1:3], None),
    "int-and-list": (lambda t: t[1, [2, 2], ::2], None),
    "tensor-index": (lambda t: t[st.tensor([3, 1, 3])], lambda t: t[torch.tensor([3, 1, 3])]),
    "tensor-tuple": (lambda t: t[st.tensor([0, 1]), :, st.tensor([5, 5])],
                     lambda t: t[torch.tensor([0, 1]), :, torch.tensor([5, 5])]),
    "bool-mask-row": (lambda t: t[numpy.array([True, False, True, True])],
                      lambda t: t[torch.tensor([True, False, True, True])]),
    "bool-mask-2d": (lambda t: t[st.tensor(MASK)], lambda t: t[torch.from_numpy(MASK)]),
    "bool-mask-full": (lambda t: t[st.tensor(FULL_MASK)], lambda t: t[torch.from_numpy(FULL_MASK)]),
}
MASK = numpy.random.default_rng(3).random((4, 5)) < 0.5
FULL_MASK = numpy.random.default_rng(4).random((4, 5, 6)) < 0.3


@pytest.mark.parametrize("name", INDEXING)
def test_indexing_matches_torch(name):
    s_fn, t_fn = INDEXING[name]
    check(s_fn, t_fn or s_fn, [randn((4, 5, 6), seed=22)])


@pytest.mark.parametrize("dim", [0, 1, 2, -1, -3])
def test_cat_and_stack_match_torch(dim):
    rng = numpy.random.default_rng(30 + dim)
    base = [2, 3, 4]
    arrays = []
    for i in range(3):
        shape = list(base)
        shape[dim] = int(rng.integers(1, 4))
        arrays.append(randn(tuple(shape), seed=i))
    check(lambda *t: st.cat(t, dim=dim), lambda *t: torch.cat(t, dim=dim), arrays)
    same = [randn((2, 3), seed=i) for i in range(3)]
    stack_dim = dim if -3 <= dim <= 2 else 0
    check(lambda *t: st.stack(list(t), dim=stack_dim), lambda *t: torch.stack(t, dim=stack_dim), same)


def test_cat_promotes_dtypes_like_torch():
    out = st.cat([st.ones(2), st.tensor([1, 2]), st.tensor(numpy.zeros(1))])
    assert out.dtype == numpy.float64
    assert st.cat([st.ones(2), st.tensor([1, 2])]).dtype == numpy.float32   # NumPy would say float64


# ----- element-wise ----------------------------------------------------------------------------
ELEMENTWISE = {
    "exp": (randn, lambda t: t.exp()),
    "log": (positive, lambda t: t.log()),
    "sqrt": (positive, lambda t: t.sqrt()),
    "abs": (away_from_zero, lambda t: t.abs()),
    "abs()": (away_from_zero, lambda t: abs(t)),
    "clamp-min": (randn, lambda t: t.clamp(min=-0.2)),
    "clamp-max": (randn, lambda t: t.clamp(max=0.3)),
    "clamp-both": (randn, lambda t: t.clamp(-0.5, 0.5)),
    "clamp-inverted": (randn, lambda t: t.clamp(min=0.5, max=-0.5)),
    "clip": (randn, lambda t: t.clip(-1, 1)),
}


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_matches_torch(name, dtype):
    make, fn = ELEMENTWISE[name]
    check(fn, fn, [make((3, 4, 5), dtype, 31)])


def test_clamp_with_tensor_bounds_and_integer_input():
    x = randn((3, 4), seed=5)
    low, high = randn((4,), seed=6) - 1, randn((3, 1), seed=7) + 1
    check(lambda t: t.clamp(st.tensor(low), st.tensor(high)),
          lambda t: t.clamp(torch.from_numpy(low), torch.from_numpy(high)), [x])
    out, ref = st.tensor([1, 2, 3]).clamp(min=1.5), torch.tensor([1, 2, 3]).clamp(min=1.5)
    assert out.dtype == _torch_dtype_as_numpy(ref)
    assert_close(out, ref)


def test_clamp_gradient_at_the_bounds_and_abs_at_zero():
    x = numpy.array([-1.0, -0.5, 0.0, 0.5, 1.0], dtype=numpy.float32)
    check(lambda t: t.clamp(-0.5, 0.5), lambda t: t.clamp(-0.5, 0.5), [x])
    check(lambda t: t.abs(), lambda t: t.abs(), [x])


def test_integer_inputs_become_float32_like_torch():
    for fn in (lambda t: t.exp(), lambda t: t.log(), lambda t: t.sqrt(), lambda t: t / 2, lambda t: t ** 0.5):
        out = fn(st.tensor([1, 4, 9]))
        ref = fn(torch.tensor([1, 4, 9]))
        assert out.dtype == _torch_dtype_as_numpy(ref)
        assert_close(out, ref)


# ----- finite differences in float64 ------------------------------------------------------------
def _f64(shape, make=randn, seed=0):
    return make(shape, numpy.float64, seed)


GRADCHECKS = {
    "add-broadcast": (lambda a, b: a + b, [_f64((2, 1, 3)), _f64((4, 1))]),
    "sub-broadcast": (lambda a, b: a - b, [_f64((3,)), _f64((2, 3))]),
    "mul-broadcast": (lambda a, b: a * b, [_f64((2, 3)), _f64((1, 3))]),
    "div-broadcast": (lambda a, b: a / b, [_f64((2, 3)), _f64((2, 1), away_from_zero)]),
    "pow-tensor": (lambda a, b: a ** b, [_f64((2, 3), positive), _f64((3,))]),
    "pow-scalar": (lambda a: a ** 3 + a ** -1.5 + a ** 0.5 + a ** 0, [_f64((2, 3), positive)]),
    "rpow": (lambda a: 2.5 ** a, [_f64((2, 3))]),
    "scalars": (lambda a: (3 - a) / 2 + 1 / (a * a + 1) - (-a), [_f64((4,))]),
    "matmul-2d": (lambda a, b: a @ b, [_f64((2, 3)), _f64((3, 4))]),
    "matmul-1d": (lambda a, b: a @ b, [_f64((3,)), _f64((2, 3, 4))]),
    "matmul-vec": (lambda a, b: a @ b, [_f64((2, 2, 3)), _f64((3,))]),
    "matmul-batch": (lambda a, b: a @ b, [_f64((2, 1, 2, 3)), _f64((3, 3, 2))]),
    "sum": (lambda a: a.sum((0, 2), keepdim=True) * a.sum(-1).sum(), [_f64((2, 3, 2))]),
    "mean": (lambda a: a.mean(1) + a.mean(), [_f64((2, 3))]),
    "var": (lambda a: a.var(0) + a.var(correction=0) + a.var(1, keepdim=True).sum(), [_f64((3, 4))]),
    "std": (lambda a: a.std(0) + a.std(unbiased=False) + a.std(1, keepdim=True).sum(), [_f64((3, 4))]),
    "max-dim": (lambda a: a.max(1)[0] + a.min(0, keepdim=True)[0].sum(), [_f64((3, 4))]),
    "max-all": (lambda a: a.max() - a.min() + a.amax((0, 1)) + a.amin(1).sum(), [_f64((3, 4))]),
    "shaping": (lambda a: a.reshape(3, 4).T.unsqueeze(0).expand(2, 4, 3).permute(1, 2, 0).flatten(1).squeeze(),
                [_f64((2, 6))]),
    "index-basic": (lambda a: a[1:, ::-1, None, 0], [_f64((3, 4, 2))]),
    "index-advanced": (lambda a: a[[0, 0, 2], :, [1, 1, 0]] + a[a.data > 0].sum(), [_f64((3, 4, 2))]),
    "cat-stack": (lambda a, b: st.cat([a, b, a], 1).sum(1, keepdim=True) + st.stack([a, a], -1).sum(-1),
                  [_f64((2, 3)), _f64((2, 2))]),
    "elementwise": (lambda a: a.exp() + (a * a + 1).log() + (a * a + 1).sqrt() + a.abs() + a.clamp(-0.3, 0.4),
                    [_f64((3, 4), away_from_zero)]),
}


@pytest.mark.parametrize("name", GRADCHECKS)
def test_gradcheck(name):
    fn, arrays = GRADCHECKS[name]
    assert st.gradcheck(fn, arrays)


def test_gradcheck_catches_a_wrong_backward():
    class WrongSquare(st.Function):
        def forward(self, x):
            self.x = x
            return x * x

        def backward(self, gy):
            return gy * self.x   # should be 2·x·gy

    with pytest.raises(AssertionError, match="gradcheck: input 0 disagrees"):
        st.gradcheck(lambda a: WrongSquare.apply(a), [_f64((3,))])


# ----- the engine --------------------------------------------------------------------------------
def test_diamond_graph_sums_both_paths():
    x = randn((3, 4), numpy.float64, 40)

    def fn(t):
        y = t * 2
        return (y * y + y.exp() + y[0]) * t
    check(fn, fn, [x])


def test_leaf_used_twice_in_one_op():
    x = st.tensor([1.0, -2.0, 3.0], requires_grad=True)
    (x * x + x + x).sum().backward()
    numpy.testing.assert_allclose(x.grad.data, 2 * x.data + 2)


def test_gradients_accumulate_across_backward_calls_on_separate_graphs():
    x = st.tensor([1.0, 2.0], requires_grad=True)
    (x * 2).sum().backward()
    (x * x).sum().backward()
    numpy.testing.assert_allclose(x.grad.data, [2 + 2, 2 + 4])


def test_backward_with_gradient_on_a_non_scalar():
    x = randn((2, 3), numpy.float64, 41)
    check(lambda t: t * t, lambda t: t * t, [x])      # compare() seeds a random upstream gradient
    s = st.tensor(x, requires_grad=True)
    (s * 3).backward(st.ones(2, 3))                    # a Tensor gradient works too
    numpy.testing.assert_allclose(s.grad.data, numpy.full((2, 3), 3.0))


def test_backward_errors():
    x = st.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="only for scalar outputs.*\\(2,\\)"):
        (x * 2).backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        st.tensor([1.0, 2.0]).sum().backward()
    with pytest.raises(ValueError, match="gradient has shape \\(3,\\), expected \\(2,\\)"):
        (x * 2).backward(numpy.ones(3))
    with pytest.raises(NotImplementedError, match="create_graph"):
        (x * 2).sum().backward(create_graph=True)
    with pytest.raises(TypeError, match="only floating-point tensors can require gradients"):
        st.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="only floating-point"):
        st.tensor([1, 2]).requires_grad_()


def test_graph_is_released_after_backward_unless_retained():
    x = st.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    y.sum().backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time.*retain_graph=True"):
        y.sum().backward()

    x.grad = None
    y = x * x
    loss = y.sum()
    loss.backward(retain_graph=True)
    loss.backward()
    numpy.testing.assert_allclose(x.grad.data, 2 * 2 * x.data)


def test_released_graph_frees_intermediate_tensors():
    x = st.tensor(numpy.ones((4, 4), dtype=numpy.float32), requires_grad=True)
    hidden = x * 2
    alive = weakref.ref(hidden)
    loss = (hidden * 3).sum()
    del hidden
    gc.collect()
    assert alive() is not None              # the graph keeps it for backward
    loss.backward()
    gc.collect()
    assert alive() is None                   # released with the graph, though ``loss`` lives on
    assert loss.grad_fn is not None


def test_retain_grad_on_intermediate_tensors():
    x = st.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    y.retain_grad()
    z = y * 5
    (y * y + z).sum().backward()
    numpy.testing.assert_allclose(y.grad.data, 2 * y.data + 5)
    assert z.grad is None and y.retains_grad and not z.retains_grad
    with pytest.raises(RuntimeError, match="retain_grad"):
        st.tensor([1.0]).retain_grad()


def test_leaf_gradients_never_share_memory():
    """Add passes its upstream gradient through unchanged; each leaf still owns its .grad."""
    x = st.ones(3, requires_grad=True)
    y = st.ones(3, requires_grad=True)
    upstream = numpy.ones(3, dtype=numpy.float32)
    (x + y).backward(upstream)
    x.grad.data *= 10
    numpy.testing.assert_array_equal(y.grad.data, numpy.ones(3))
    numpy.testing.assert_array_equal(upstream, numpy.ones(3))
    z = st.ones(2, 3, requires_grad=True)
    z.reshape(6).backward(numpy.arange(6.0, dtype=numpy.float32))
    assert z.grad.data.flags.writeable and z.grad.data.flags.c_contiguous
    leaf = st.ones(3, requires_grad=True)                   # the caller's gradient reaches .grad directly
    leaf.backward(upstream)
    leaf.grad.data *= 10
    numpy.testing.assert_array_equal(upstream, numpy.ones(3))


def test_deep_graph_has_no_recursion_limit():
    x = st.tensor([1.0, 2.0], dtype=st.float64, requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0001 + 0.0
    y.sum().backward()
    numpy.testing.assert_allclose(x.grad.data, numpy.full(2, 1.0001 ** 5000), rtol=1e-10)
    # tearing the graph down again must not recurse either
    z = x
    for _ in range(20000):
        z = z + 1.0
    del z
    gc.collect()


def test_grads_have_each_parameters_dtype():
    w32 = st.tensor(randn((3,), numpy.float32), requires_grad=True)
    w64 = st.tensor(randn((3,), numpy.float64), requires_grad=True)
    out = w32 * w64
    assert out.dtype == numpy.float64
    out.sum().backward()
    assert w32.grad.dtype == numpy.float32 and w64.grad.dtype == numpy.float64
    numpy.testing.assert_allclose(w32.grad.data, w64.data.astype(numpy.float32), rtol=1e-6)
    v = st.tensor(randn((3,), numpy.float32), requires_grad=True)
    (v.double() * 2).sum().backward()
    assert v.grad.dtype == numpy.float32
    u = st.tensor(randn((3,), numpy.float32), requires_grad=True)
    (u * st.tensor([1, 2, 3])).sum().backward()    # int tensor promotes to float32, not float64
    assert u.grad.dtype == numpy.float32
    numpy.testing.assert_array_equal(u.grad.data, [1, 2, 3])


def test_no_grad_as_context_and_decorator():
    x = st.tensor([1.0, 2.0], requires_grad=True)
    with st.no_grad():
        y = x * 2
        assert not st.is_grad_enabled()
    assert st.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None

    @st.no_grad()
    def with_parentheses(t):
        return t * 2

    @st.no_grad
    def without_parentheses(t):
        return t * 2

    assert not with_parentheses(x).requires_grad
    assert not without_parentheses(x).requires_grad
    assert st.is_grad_enabled()
    assert (x * 2).requires_grad


def test_no_grad_decorator_is_reentrant():
    @st.no_grad()
    def recurse(n):
        if n:
            recurse(n - 1)
        return st.is_grad_enabled()

    assert recurse(3) is False
    assert st.is_grad_enabled()   # a shared saved mode would leave grad off here


def test_enable_grad_and_set_grad_enabled():
    x = st.tensor([1.0], requires_grad=True)
    with st.no_grad():
        with st.enable_grad():
            assert (x * 2).requires_grad
        assert not (x * 2).requires_grad
    with st.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert st.is_grad_enabled()
    st.set_grad_enabled(False)       # called as a function, it switches at once, like PyTorch's
    try:
        assert not st.is_grad_enabled()
    finally:
        st.set_grad_enabled(True)
    assert st.is_grad_enabled()

    @st.set_grad_enabled(False)
    def evaluate():
        return st.is_grad_enabled()
    assert st.is_grad_enabled() and evaluate() is False and st.is_grad_enabled()


def test_grad_mode_is_per_thread():
    seen = []
    with st.no_grad():
        worker = threading.Thread(target=lambda: seen.append(st.is_grad_enabled()))
        worker.start()
        worker.join()
    assert seen == [True]


def test_decorated_function_shared_by_two_threads():
    """Each call of a ``@no_grad()`` function saves its own previous mode: thread A (grad off)
    and thread B (grad on) inside it at once each get their own mode back."""
    a_inside, b_inside, a_done = threading.Event(), threading.Event(), threading.Event()
    after = {}

    @st.no_grad()
    def work(name):
        if name == "a":
            a_inside.set()
            b_inside.wait(5)
        else:
            b_inside.set()
            a_done.wait(5)

    def thread_a():
        with st.no_grad():
            work("a")
            after["a"] = st.is_grad_enabled()
        a_done.set()

    def thread_b():
        a_inside.wait(5)
        work("b")
        after["b"] = st.is_grad_enabled()

    threads = [threading.Thread(target=thread_a), threading.Thread(target=thread_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert after == {"a": False, "b": True}


def test_function_contract():
    """A custom Function: constants get no gradient, None means 'no gradient', and the
    engine names the Function when backward breaks the contract."""
    class ScaleBy(st.Function):
        def forward(self, x, factor, offset=0.0):
            self.factor = factor
            self.seen_needs = self.needs_input_grad
            return x * factor + offset

        def backward(self, gy):
            return gy * self.factor, None

    x = st.tensor([1.0, 2.0], requires_grad=True)
    y = ScaleBy.apply(x, numpy.array([3.0, 4.0], dtype=numpy.float32), offset=1.0)
    assert y.grad_fn.name == "ScaleBy" and y.grad_fn.inputs[1] is None
    assert y.grad_fn.seen_needs == (True, False)
    y.sum().backward()
    numpy.testing.assert_array_equal(x.grad.data, [3.0, 4.0])

    class BadShape(st.Function):
        def forward(self, x):
            return x.sum()

        def backward(self, gy):
            return gy.reshape(1)

    with pytest.raises(RuntimeError, match="BadShape.backward returned a gradient of shape \\(1,\\)"):
        BadShape.apply(st.ones(3, requires_grad=True)).backward()

    class BadCount(st.Function):
        def forward(self, x):
            return x.copy()

        def backward(self, gy):
            return gy, gy

    with pytest.raises(RuntimeError, match="BadCount.backward returned 2 gradients for 1 inputs"):
        BadCount.apply(st.ones(3, requires_grad=True)).sum().backward()

    with st.no_grad():
        out = ScaleBy.apply(st.ones(2, requires_grad=True), numpy.ones(2))
    assert out.grad_fn is None
