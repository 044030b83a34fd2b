"""The Tensor object: construction and dtypes, PyTorch's type promotion, conversions to and
from NumPy and Python, the conveniences a PyTorch user reaches for, and error messages."""
import itertools

import numpy
import pytest

import striate as st
from oracle import assert_close, torch

NUMPY_OF_TORCH = {torch.bool: numpy.bool_, torch.uint8: numpy.uint8, torch.int32: numpy.int32,
                  torch.int64: numpy.int64, torch.float16: numpy.float16, torch.float32: numpy.float32,
                  torch.float64: numpy.float64}


# ----- construction -------------------------------------------------------------------------------
@pytest.mark.parametrize("data, dtype", [
    (1.5, numpy.float32), ([1.0, 2.0], numpy.float32), ([[1, 2], [3, 4]], numpy.int64), (3, numpy.int64),
    (True, numpy.bool_), ([True, False], numpy.bool_), ([1, 2.5], numpy.float32), ([], numpy.float32),
    (numpy.zeros(3), numpy.float64), (numpy.zeros(3, dtype=numpy.float32), numpy.float32),
    (numpy.zeros(3, dtype=numpy.int32), numpy.int32), (numpy.float64(2.0), numpy.float64),
    (numpy.zeros(2, dtype=numpy.uint8), numpy.uint8),
], ids=lambda v: type(v).__name__ if not isinstance(v, type) else v.__name__)
def test_dtype_of_new_tensors_follows_torch(data, dtype):
    assert st.tensor(data).dtype == dtype
    assert st.tensor(data).dtype == NUMPY_OF_TORCH[torch.tensor(data).dtype]


def test_tensor_copies_and_dtype_can_be_forced():
    array = numpy.ones(3)
    t = st.tensor(array)
    array[0] = 5
    assert t.data[0] == 1
    assert st.tensor([1, 2], dtype=st.float64).dtype == numpy.float64
    assert st.tensor(st.tensor([1.0, 2.0], requires_grad=True)).requires_grad is False
    with pytest.raises(TypeError, match="tensor: cannot make a tensor from data of dtype"):
        st.tensor(["a", "b"])


# ----- type promotion ------------------------------------------------------------------------------
DTYPES = [torch.bool, torch.uint8, torch.int32, torch.int64, torch.float16, torch.float32, torch.float64]
OTHERS = {
    "tensor": lambda d: torch.tensor([1, 0, 1]).to(d),
    "0d-tensor": lambda d: torch.tensor(1).to(d),
    "python-bool": lambda d: True,
    "python-int": lambda d: 2,
    "python-float": lambda d: 2.5,
}
OPS = {"add": lambda a, b: a + b, "mul": lambda a, b: a * b, "div": lambda a, b: a / b,
       "sub": lambda a, b: a - b, "radd": lambda a, b: b + a, "rdiv": lambda a, b: b / a}


def _striate_of(value):
    return st.tensor(value.numpy()) if isinstance(value, torch.Tensor) else value


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("left", DTYPES, ids=str)
def test_result_dtypes_follow_torch_promotion(left, op):
    """Every pairing of a tensor with a tensor, a 0-d tensor or a Python number gives PyTorch's dtype."""
    checked = 0
    for (kind, make), right in itertools.product(OTHERS.items(), DTYPES):
        if kind.startswith("python") and right != DTYPES[0]:
            continue          # a Python number has one dtype of its own
        t_left = torch.tensor([1, 1, 0]).to(left)
        t_right = make(right)
        try:
            expected = OPS[op](t_left, t_right)
        except (RuntimeError, TypeError):
            continue          # e.g. bool - bool; PyTorch refuses, so striate may too
        s_left, s_right = st.tensor(t_left.numpy()), _striate_of(t_right)
        with numpy.errstate(divide="ignore", invalid="ignore"):
            actual = OPS[op](s_left, s_right)
        assert actual.dtype == NUMPY_OF_TORCH[expected.dtype], (
            f"{left} {op} {kind} {right}: striate {actual.dtype}, torch {expected.dtype}")
        with numpy.errstate(invalid="ignore"):
            assert_close(actual.data.astype(numpy.float64), expected.double(), rtol=1e-3, atol=1e-3, what=f"{kind} {right}")
        checked += 1
    assert checked > 5 or (left == torch.bool and op == "sub")   # PyTorch refuses bool - anything


@pytest.mark.parametrize("left, exponent", [
    (torch.int64, 2), (torch.int64, 0.5), (torch.bool, 2), (torch.float16, 2.0), (torch.float32, 3),
    (torch.int32, torch.tensor([2.0])), (torch.float32, torch.tensor([2], dtype=torch.int64)),
])
def test_pow_dtypes_follow_torch(left, exponent):
    base = torch.tensor([1, 2, 3]).to(left)
    expected = base ** exponent
    actual = st.tensor(base.numpy()) ** _striate_of(exponent)
    assert actual.dtype == NUMPY_OF_TORCH[expected.dtype]
    assert_close(actual.data.astype(numpy.float64), expected.double())


def test_numpy_scalars_act_like_python_numbers():
    x = st.ones(2)
    assert (x * numpy.float64(2.0)).dtype == numpy.float32
    assert (numpy.float64(2.0) * x).dtype == numpy.float32
    assert (x ** numpy.float64(2.0)).dtype == numpy.float32
    assert isinstance(numpy.float32(2.0) * x, st.Tensor)


def test_numpy_arrays_on_the_left_give_tensors():
    x = st.tensor([1.0, 2.0], requires_grad=True)
    array = numpy.array([3.0, 4.0], dtype=numpy.float32)
    for result in (array + x, array - x, array * x, array / x, array ** x, array @ x):
        assert isinstance(result, st.Tensor) and result.requires_grad
    for mask in (array > x, array == x, array <= x):
        assert isinstance(mask, st.Tensor) and mask.dtype == numpy.bool_


def test_float32_with_float64_gives_float64_and_keeps_grads():
    a = st.tensor(numpy.ones(2, dtype=numpy.float32), requires_grad=True)
    b = st.tensor(numpy.ones(2, dtype=numpy.float64), requires_grad=True)
    (a + b).sum().backward()
    assert (a + b).dtype == numpy.float64
    assert a.grad.dtype == numpy.float32 and b.grad.dtype == numpy.float64
    # a 0-d float64 tensor does not widen a float32 one (PyTorch's rule)
    assert (a * st.tensor(numpy.float64(2.0))).dtype == numpy.float32


# ----- NumPy and Python interop --------------------------------------------------------------------
def test_numpy_and_array_share_memory():
    t = st.tensor([1.0, 2.0, 3.0])
    assert t.numpy() is t.data
    assert numpy.shares_memory(numpy.asarray(t), t.data)
    assert numpy.asarray(t, dtype=numpy.float64).dtype == numpy.float64
    copied = numpy.array(t)
    copied[0] = 9
    assert t.data[0] == 1
    t.numpy()[1] = 7
    assert t[1].item() == 7
    shared = st.from_numpy(numpy.arange(3.0))
    assert shared.dtype == numpy.float64


def test_detach_shares_data_and_leaves_the_graph():
    x = st.tensor([1.0, 2.0], requires_grad=True)
    y = (x * 2).detach()
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf
    d = x.detach()
    assert numpy.shares_memory(d.data, x.data)


def test_python_conversions():
    t = st.tensor([[2.5]])
    assert t.item() == 2.5 and float(t) == 2.5 and int(st.tensor(3.9)) == 3
    assert isinstance(st.tensor(3).item(), int) and isinstance(st.tensor(True).item(), bool)
    assert bool(st.tensor([1.0])) and not bool(st.tensor(0.0))
    assert st.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    assert [10, 20, 30][st.tensor(1)] == 20                       # __index__
    assert f"{st.tensor(2.5):.3f}" == "2.500" == f"{torch.tensor(2.5):.3f}"
    assert f"{st.tensor(0.125)}" == f"{torch.tensor(0.125)}"
    with pytest.raises(ValueError, match="item: only one-element tensors.*\\(2,\\)"):
        st.tensor([1.0, 2.0]).item()
    with pytest.raises(TypeError, match="only integer tensors"):
        [1, 2][st.tensor(1.0)]


@pytest.mark.parametrize("make", [
    lambda m: m.tensor([0.5, 0.25]), lambda m: m.tensor([1.0, 2.0]), lambda m: m.tensor(2.3333333),
    lambda m: m.tensor([[1, 2], [3, 4]]), lambda m: m.tensor([True, False]), lambda m: m.tensor([1e-8, 1.0]),
    lambda m: m.tensor([1.5, 2.0], requires_grad=True), lambda m: m.zeros(0), lambda m: m.tensor([], dtype=m.int64),
    lambda m: m.tensor([1.0, 2.5], dtype=m.float64), lambda m: m.tensor(-3.0),
    lambda m: m.tensor([float("nan"), 1.5]), lambda m: m.tensor([float("inf"), 1.5]),
])
def test_repr_reads_like_torch(make):
    assert repr(make(st)) == repr(make(torch)).replace("torch.", "")


def test_repr_names_the_grad_fn():
    assert "grad_fn=<Mul>" in repr(st.ones(2, requires_grad=True) * 2)


# ----- conveniences --------------------------------------------------------------------------------
def test_len_iter_size_and_friends():
    x = st.tensor(numpy.arange(24.0, dtype=numpy.float32).reshape(2, 3, 4), requires_grad=True)
    assert len(x) == 2 and x.size() == (2, 3, 4) and x.size(-1) == 4 and x.size(1) == 3
    assert x.dim() == 3 and x.ndim == 3 and x.numel() == 24 and x.shape == (2, 3, 4)
    assert x.is_floating_point() and not st.tensor([1]).is_floating_point()
    assert x.device == "cpu" and x.cpu() is x and x.contiguous() is x
    rows = list(x)
    assert len(rows) == 2 and rows[1].shape == (3, 4)
    sum(row.sum() for row in rows).backward()            # gradients flow through iteration
    numpy.testing.assert_array_equal(x.grad.data, numpy.ones((2, 3, 4)))
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        iter(st.tensor(1.0))
    with pytest.raises(TypeError, match="len\\(\\) of a 0-d tensor"):
        len(st.tensor(1.0))
    with pytest.raises(IndexError, match="size: dim 3 is out of range"):
        x.size(3)


def test_conversions_between_dtypes():
    x = st.tensor([1.7, -2.2, 0.0])
    assert x.float() is x
    assert x.double().dtype == numpy.float64 and x.half().dtype == numpy.float16
    assert x.long().tolist() == torch.tensor([1.7, -2.2, 0.0]).long().tolist()
    assert x.int().dtype == numpy.int32
    assert x.bool().tolist() == [True, True, False]
    assert x.to(st.float64).dtype == numpy.float64 and x.to("float64").dtype == numpy.float64
    assert x.to("cpu") is x and x.to("cpu", st.float64).dtype == numpy.float64
    assert x.to(st.tensor([1])).dtype == numpy.int64 and x.type_as(st.tensor([1])).dtype == numpy.int64
    assert x.to(dtype=st.float16).dtype == numpy.float16
    copy = x.to(st.float32, copy=True)
    assert copy is not x and not numpy.shares_memory(copy.data, x.data)
    with pytest.raises(ValueError, match="to: striate runs on the CPU only, got device 'cuda'"):
        x.to("cuda")
    # float → int leaves the graph, float → float stays in it
    w = st.tensor([1.0], requires_grad=True)
    assert not w.long().requires_grad and w.double().requires_grad


def test_arithmetic_method_aliases():
    x = st.tensor([1.0, 2.0])
    assert x.add(1).tolist() == [2.0, 3.0] and x.add(x, alpha=2).tolist() == [3.0, 6.0]
    assert x.sub(1, alpha=2).tolist() == [-1.0, 0.0] and x.mul(3).tolist() == [3.0, 6.0]
    assert x.div(2).tolist() == [0.5, 1.0] and x.pow(2).tolist() == [1.0, 4.0]
    assert x.matmul(x).item() == 5.0 and x.neg().tolist() == [-1.0, -2.0]


def test_comparisons_and_logic_give_bool_tensors_without_grad():
    x = st.tensor([-1.0, 0.0, 2.0], requires_grad=True)
    mask = (x > -0.5) & (x < 1)
    assert mask.dtype == numpy.bool_ and mask.tolist() == [False, True, False] and not mask.requires_grad
    assert (~mask).tolist() == [True, False, True]
    assert ((x == 0) | (x == 2)).tolist() == [False, True, True]
    assert ((x >= 0) ^ (x <= 0)).tolist() == [True, False, True]
    assert (x != 0).sum().item() == 2
    with pytest.raises(TypeError, match="negation of a bool tensor"):
        -mask


def test_unsupported_operands_behave_like_python():
    x = st.ones(2)
    assert (x == None) is False and (x != None) is True  # noqa: E711
    with pytest.raises(TypeError, match="unsupported operand"):
        x + None
    with pytest.raises(TypeError, match="unsupported operand"):
        x - "a"
    assert (x + [1.0, 2.0]).tolist() == [2.0, 3.0] and (x + [1.0, 2.0]).dtype == numpy.float32


def test_clone_is_a_copy_in_the_graph():
    x = st.tensor([1.0, 2.0], requires_grad=True)
    y = x.clone()
    assert not numpy.shares_memory(x.data, y.data) and y.grad_fn is not None
    (y * 3).sum().backward()
    numpy.testing.assert_array_equal(x.grad.data, [3.0, 3.0])


def test_in_place_changes():
    x = st.zeros(2, 3)
    x[0, 1] = 5
    x[1] = st.tensor([1.0, 2.0, 3.0])
    assert x.tolist() == [[0, 5, 0], [1, 2, 3]]
    assert x.fill_(2).tolist() == [[2] * 3] * 2
    x.copy_(st.tensor([1.0, 2.0, 3.0]))
    assert x.tolist() == [[1, 2, 3]] * 2
    assert x.zero_().tolist() == [[0] * 3] * 2
    with pytest.raises(ValueError, match="copy_: cannot broadcast a source of shape \\(4,\\) to the tensor's shape \\(2, 3\\)"):
        x.copy_(numpy.ones(4))
    w = st.ones(3, requires_grad=True)
    for change in (lambda: w.__setitem__(0, 2.0), w.zero_, lambda: w.fill_(1.0), lambda: w.copy_(numpy.ones(3))):
        with pytest.raises(RuntimeError, match="in-place change of a tensor that requires grad"):
            change()
    with st.no_grad():
        w[0] = 2.0
        w.fill_(4.0)
    assert w.tolist() == [4.0, 4.0, 4.0] and w.requires_grad


def test_requires_grad_flags():
    x = st.tensor([1.0], requires_grad=True)
    y = x * 2
    assert x.is_leaf and not y.is_leaf and y.requires_grad
    with pytest.raises(RuntimeError, match="non-leaf"):
        y.requires_grad = False
    z = st.tensor([1.0]).requires_grad_()
    assert z.requires_grad
    assert not (st.tensor([1.0]) * 2).requires_grad


# ----- errors name the op and the values ------------------------------------------------------------
ERRORS = [
    (lambda: st.ones(2, 3).reshape(4, 2), ValueError, r"reshape: cannot reshape a tensor of shape \(2, 3\) \(6 elements\) into \(4, 2\)"),
    (lambda: st.ones(2, 3).reshape(-1, -1), ValueError, r"reshape: .*\(-1, -1\)"),
    (lambda: st.ones(2, 3).view(4, -1), ValueError, r"reshape: .*\(4, -1\)"),
    (lambda: st.ones(2, 3).permute(0, 5), IndexError, r"permute: dim 5 is out of range for a tensor with 2 dimensions"),
    (lambda: st.ones(2, 3).permute(0, 0), ValueError, r"permute: dims \(0, 0\) name a dimension twice"),
    (lambda: st.ones(2, 3).permute(0, 1, 2), ValueError, r"permute: expected 2 dims for a tensor of shape \(2, 3\), got \(0, 1, 2\)"),
    (lambda: st.cat([st.ones(2, 3), st.ones(3, 2)]), ValueError, r"cat: all tensors must match except in dimension 0, got shapes \[\(2, 3\), \(3, 2\)\]"),
    (lambda: st.cat([]), ValueError, r"cat: expected a non-empty sequence"),
    (lambda: st.cat([st.ones(2)], dim=1), IndexError, r"cat: dim 1 is out of range for a tensor with 1 dimensions"),
    (lambda: st.cat([st.tensor(1.0), st.tensor(2.0)]), ValueError, r"cat: zero-dimensional tensor"),
    (lambda: st.stack([st.ones(2), st.ones(3)]), ValueError, r"stack: all tensors must have the same shape, got \[\(2,\), \(3,\)\]"),
    (lambda: st.ones(2, 3) @ st.ones(2, 3), ValueError, r"matmul: inner dimensions must agree, got shapes \(2, 3\) and \(2, 3\)"),
    (lambda: st.ones(2, 2, 3) @ st.ones(3, 3, 2), ValueError, r"matmul: batch dimensions must broadcast, got shapes \(2, 2, 3\) and \(3, 3, 2\)"),
    (lambda: st.ones(3) @ st.tensor(2.0), ValueError, r"matmul: both operands need at least one dimension"),
    (lambda: st.ones(2, 3).sum(2), IndexError, r"sum: dim 2 is out of range for a tensor with 2 dimensions \(expected a dim in \[-2, 1\]\)"),
    (lambda: st.ones(2, 3).mean(-3), IndexError, r"mean: dim -3 is out of range"),
    (lambda: st.ones(2, 3).sum((0, 0)), ValueError, r"sum: dim \(0, 0\) names a dimension twice"),
    (lambda: st.ones(2, 3).sum(1.5), TypeError, r"sum: dim must be an int or a tuple of ints, got 1.5"),
    (lambda: st.ones(2, 3).max(5), IndexError, r"max: dim 5 is out of range"),
    (lambda: st.ones(2, 3).max((0, 1)), TypeError, r"max: dim must be an int, got \(0, 1\)"),
    (lambda: st.ones(2, 3).var(4), IndexError, r"var: dim 4 is out of range"),
    (lambda: st.ones(2, 3).argmax(2), IndexError, r"argmax: dim 2 is out of range"),
    (lambda: st.ones(2, 3).squeeze(2), IndexError, r"squeeze: dim 2 is out of range"),
    (lambda: st.ones(2, 3).unsqueeze(3), IndexError, r"unsqueeze: dim 3 is out of range for a tensor with 2 dimensions"),
    (lambda: st.ones(2, 3).transpose(0, 2), IndexError, r"transpose: dim 2 is out of range"),
    (lambda: st.ones(2, 3).flatten(3), IndexError, r"flatten: dim 3 is out of range"),
    (lambda: st.ones(2, 3, 4).flatten(2, 1), ValueError, r"flatten: start_dim 2 comes after end_dim 1"),
    (lambda: st.ones(2, 3).expand(4, 3), ValueError, r"expand: cannot expand a tensor of shape \(2, 3\) to \(4, 3\)"),
    (lambda: st.ones(2, 3).expand(3), ValueError, r"expand: the target shape \(3,\) has fewer dimensions"),
    (lambda: st.ones(1, 3).expand(-1, 2, 3), ValueError, r"expand: cannot expand"),
    (lambda: st.ones(2, 3, 4).t(), ValueError, r"t: expects a tensor with at most 2 dimensions"),
    (lambda: st.ones(3).mT, ValueError, r"mT: expects a tensor with at least 2 dimensions"),
    (lambda: st.zeros(0).max(), ValueError, r"max: cannot reduce an empty tensor of shape \(0,\)"),
    (lambda: st.zeros(2, 0).min(1), ValueError, r"min: cannot reduce over dimension 1 of size 0"),
    (lambda: st.ones(2).clamp(), ValueError, r"clamp: at least one of min and max"),
    (lambda: st.ones(2).var(unbiased=True, correction=0), ValueError, r"var: give either unbiased or correction"),
    (lambda: st.tensor([1, 2]).mean(), TypeError, r"mean: needs a floating-point tensor, got dtype int64"),
    (lambda: st.tensor([1, 2]).std(), TypeError, r"std: needs a floating-point tensor, got dtype int64"),
]


@pytest.mark.parametrize("call, error, message", ERRORS, ids=[m[:40] for _, _, m in ERRORS])
def test_errors_name_the_op_and_values(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_edge_shapes_match_torch():
    assert st.zeros(2, 0).max(0).values.shape == tuple(torch.zeros(2, 0).max(0).values.shape)
    assert st.zeros(0, 3).flatten().shape == (0,)
    assert st.tensor(5.0).flatten().shape == (1,)
    assert st.tensor(5.0).T.shape == () and st.ones(3).T.shape == (3,)
    assert st.ones(2, 3).argmax(keepdim=True).shape == tuple(torch.ones(2, 3).argmax(keepdim=True).shape)
    assert st.tensor([[1.0, 5.0], [7.0, 2.0]]).argmax().item() == 2
    assert st.tensor([[1.0, 5.0], [7.0, 2.0]]).argmin(1).tolist() == [0, 1]
