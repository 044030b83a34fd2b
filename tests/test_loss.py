"""Losses: float64 gradient checks, PyTorch parity forward and backward, stability, error inputs."""
import numpy
import pytest

import striate as st
import striate.nn.functional as F
from oracle import assert_close, compare, to_torch, torch

TF = torch.nn.functional
REDUCTIONS = ("none", "mean", "sum")
# (N, C, *d) shapes: unbatched (C,), plain (N, C), and K-dimensional inputs.
CLASS_SHAPES = [(4,), (3, 4), (2, 3, 4), (2, 3, 2, 2)]


def class_targets(rng, shape, ignore_index=None, ignored=1):
    """Random class indices for an input of ``shape``, with ``ignored`` entries set to ``ignore_index``."""
    num_classes = shape[0] if len(shape) == 1 else shape[1]
    target_shape = () if len(shape) == 1 else shape[:1] + shape[2:]
    target = rng.integers(0, num_classes, size=target_shape)
    if num_classes > 1:  # only the chosen entries are ignored, so a mean never runs over nothing
        target = numpy.where(target == ignore_index, (target + 1) % num_classes, target)
    if ignore_index is not None and target.ndim:
        flat = target.reshape(-1)
        flat[rng.choice(flat.size, size=min(ignored, flat.size - 1), replace=False)] = ignore_index
    return target


def class_probabilities(rng, shape):
    p = rng.random(shape) + 0.05
    axis = 0 if len(shape) == 1 else 1
    return p / p.sum(axis=axis, keepdims=True)


def num_classes_of(shape):
    return shape[0] if len(shape) == 1 else shape[1]


# ----- float64 gradient checks ---------------------------------------------------------------------
@pytest.mark.parametrize("shape", CLASS_SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted, label_smoothing", [(False, 0.0), (True, 0.0), (False, 0.3), (True, 0.25)])
def test_cross_entropy_class_indices_gradcheck(shape, reduction, weighted, label_smoothing):
    rng = numpy.random.default_rng(len(shape) * 31 + int(weighted) * 7 + int(label_smoothing * 100))
    target = st.tensor(class_targets(rng, shape, ignore_index=-1))
    weight = st.tensor(rng.random(num_classes_of(shape)) + 0.5) if weighted else None
    st.gradcheck(lambda x: F.cross_entropy(x, target, weight=weight, ignore_index=-1, reduction=reduction,
                                           label_smoothing=label_smoothing),
                 [rng.standard_normal(shape)])


@pytest.mark.parametrize("shape", CLASS_SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted, label_smoothing", [(False, 0.0), (True, 0.0), (True, 0.2)])
def test_cross_entropy_class_probabilities_gradcheck(shape, reduction, weighted, label_smoothing):
    rng = numpy.random.default_rng(len(shape) * 13 + int(weighted))
    weight = st.tensor(rng.random(num_classes_of(shape)) + 0.5) if weighted else None
    st.gradcheck(lambda x, p: F.cross_entropy(x, p, weight=weight, reduction=reduction,
                                              label_smoothing=label_smoothing),
                 [rng.standard_normal(shape), class_probabilities(rng, shape)])


@pytest.mark.parametrize("shape", CLASS_SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss_gradcheck(shape, reduction, weighted):
    rng = numpy.random.default_rng(len(shape) * 5 + int(weighted))
    target = st.tensor(class_targets(rng, shape, ignore_index=2))
    weight = st.tensor(rng.random(num_classes_of(shape)) + 0.5) if weighted else None
    st.gradcheck(lambda x: F.nll_loss(x, target, weight=weight, ignore_index=2, reduction=reduction),
                 [rng.standard_normal(shape)])


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 2, 2)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss_gradcheck(shape, reduction):
    rng = numpy.random.default_rng(len(shape))
    st.gradcheck(lambda x, y: F.mse_loss(x, y, reduction=reduction),
                 [rng.standard_normal(shape), rng.standard_normal(shape)])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted, pos_weighted", [(False, False), (True, False), (False, True), (True, True)])
def test_binary_cross_entropy_with_logits_gradcheck(reduction, weighted, pos_weighted):
    rng = numpy.random.default_rng(int(weighted) * 2 + int(pos_weighted))
    weight = st.tensor(rng.random((3, 1)) + 0.5) if weighted else None
    pos_weight = st.tensor(rng.random(4) * 3) if pos_weighted else None
    st.gradcheck(lambda x, y: F.binary_cross_entropy_with_logits(x, y, weight=weight, reduction=reduction,
                                                                 pos_weight=pos_weight),
                 [rng.standard_normal((3, 4)) * 3, rng.random((3, 4))])


# ----- PyTorch parity over randomised configurations -----------------------------------------------
def _tolerances(dtype):
    return (1e-5, 1e-6) if dtype == numpy.float32 else (1e-10, 1e-12)


def test_cross_entropy_class_indices_matches_torch():
    rng = numpy.random.default_rng(0)
    for trial in range(40):
        dtype = (numpy.float32, numpy.float64)[trial % 2]
        k = rng.integers(0, 4)                                   # 0 to 3 extra dims
        num_classes = int(rng.integers(1, 12))
        shape = (int(rng.integers(1, 5)), num_classes) + tuple(int(s) for s in rng.integers(1, 4, size=k))
        if trial % 7 == 0:
            shape = (num_classes,)                                # unbatched
        ignore_index = int(rng.choice([-100, -1, 0, num_classes - 1]))
        target = class_targets(rng, shape, ignore_index=ignore_index, ignored=int(rng.integers(0, 3)))
        weight = (rng.random(num_classes) + 0.1).astype(dtype) if rng.random() < 0.5 else None
        reduction = REDUCTIONS[trial % 3]
        label_smoothing = float(rng.choice([0.0, 0.1, 0.5, 1.0]))
        x = (rng.standard_normal(shape) * 3).astype(dtype)
        rtol, atol = _tolerances(dtype)
        kwargs = dict(ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing)
        compare(lambda x, t: F.cross_entropy(x, t, weight=weight, **kwargs),
                lambda x, t: TF.cross_entropy(x, t, weight=None if weight is None else to_torch(weight), **kwargs),
                [x, target], grad=(0,), rtol=rtol, atol=atol, seed=trial)


def test_cross_entropy_class_probabilities_matches_torch():
    rng = numpy.random.default_rng(1)
    for trial in range(24):
        dtype = (numpy.float32, numpy.float64)[trial % 2]
        k = rng.integers(0, 3)
        shape = (int(rng.integers(1, 5)), int(rng.integers(2, 9))) + tuple(int(s) for s in rng.integers(1, 4, size=k))
        if trial % 6 == 0:
            shape = shape[1:2]
        weight = (rng.random(num_classes_of(shape)) + 0.1).astype(dtype) if trial % 4 < 2 else None
        reduction = REDUCTIONS[trial % 3]
        label_smoothing = float(rng.choice([0.0, 0.2, 1.0]))
        x = (rng.standard_normal(shape) * 3).astype(dtype)
        p = class_probabilities(rng, shape).astype(dtype)
        rtol, atol = _tolerances(dtype)
        kwargs = dict(reduction=reduction, label_smoothing=label_smoothing)
        compare(lambda x, p: F.cross_entropy(x, p, weight=weight, **kwargs),
                lambda x, p: TF.cross_entropy(x, p, weight=None if weight is None else to_torch(weight), **kwargs),
                [x, p], grad=(0, 1), rtol=rtol, atol=atol, seed=trial)


def test_nll_loss_matches_torch():
    rng = numpy.random.default_rng(2)
    for trial in range(24):
        dtype = (numpy.float32, numpy.float64)[trial % 2]
        k = rng.integers(0, 4)
        num_classes = int(rng.integers(1, 10))
        shape = (int(rng.integers(1, 5)), num_classes) + tuple(int(s) for s in rng.integers(1, 4, size=k))
        if trial % 5 == 0:
            shape = (num_classes,)
        ignore_index = int(rng.choice([-100, 0]))
        target = class_targets(rng, shape, ignore_index=ignore_index, ignored=int(rng.integers(0, 2)))
        weight = (rng.random(num_classes) + 0.1).astype(dtype) if trial % 4 < 2 else None
        kwargs = dict(ignore_index=ignore_index, reduction=REDUCTIONS[trial % 3])
        rtol, atol = _tolerances(dtype)
        compare(lambda x, t: F.nll_loss(x, t, weight=weight, **kwargs),
                lambda x, t: TF.nll_loss(x, t, weight=None if weight is None else to_torch(weight), **kwargs),
                [rng.standard_normal(shape).astype(dtype), target], grad=(0,), rtol=rtol, atol=atol, seed=trial)


def test_mse_loss_matches_torch():
    rng = numpy.random.default_rng(3)
    for trial in range(12):
        dtype = (numpy.float32, numpy.float64)[trial % 2]
        shape = tuple(int(s) for s in rng.integers(1, 5, size=rng.integers(0, 5)))
        rtol, atol = _tolerances(dtype)
        reduction = REDUCTIONS[trial % 3]
        compare(lambda x, y: F.mse_loss(x, y, reduction=reduction),
                lambda x, y: TF.mse_loss(x, y, reduction=reduction),
                [rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)],
                grad=(0, 1), rtol=rtol, atol=atol, seed=trial)


def test_binary_cross_entropy_with_logits_matches_torch():
    rng = numpy.random.default_rng(4)
    for trial in range(24):
        dtype = (numpy.float32, numpy.float64)[trial % 2]
        shape = (int(rng.integers(1, 5)),) + tuple(int(s) for s in rng.integers(1, 5, size=rng.integers(0, 3)))
        weight = (rng.random(shape[-1:]) + 0.1).astype(dtype) if rng.random() < 0.5 else None
        pos_weight = (rng.random(shape[-1:]) * 4).astype(dtype) if rng.random() < 0.5 else None
        x = (rng.standard_normal(shape) * 20).astype(dtype)      # well into both saturated tails
        y = rng.random(shape).astype(dtype)
        y[rng.random(shape) < 0.3] = 1.0
        kwargs = dict(reduction=REDUCTIONS[trial % 3])
        rtol, atol = _tolerances(dtype)
        compare(lambda x, y: F.binary_cross_entropy_with_logits(x, y, weight=weight, pos_weight=pos_weight, **kwargs),
                lambda x, y: TF.binary_cross_entropy_with_logits(
                    x, y, weight=None if weight is None else to_torch(weight),
                    pos_weight=None if pos_weight is None else to_torch(pos_weight), **kwargs),
                [x, y], grad=(0, 1), rtol=rtol, atol=atol * 10, seed=trial)


@pytest.mark.parametrize("op", ["cross_entropy", "nll_loss"])
def test_mean_over_only_ignored_targets_is_nan_like_torch(op):
    x = numpy.random.default_rng(5).standard_normal((3, 4)).astype(numpy.float32)
    target = numpy.array([-100, -100, -100])
    ours_x, theirs_x = st.tensor(x, requires_grad=True), to_torch(x, requires_grad=True)
    ours = getattr(F, op)(ours_x, st.tensor(target))
    theirs = getattr(TF, op)(theirs_x, to_torch(target))
    assert numpy.isnan(ours.item()) and torch.isnan(theirs)
    ours.backward()
    theirs.backward()
    assert_close(ours_x.grad, theirs_x.grad, what="gradient when every target is ignored")


# ----- stability and dtypes -----------------------------------------------------------------------
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_is_stable_for_extreme_logits(label_smoothing):
    rng = numpy.random.default_rng(6)
    x = rng.choice([-1e4, 1e4, 0.0, 3e3], size=(16, 7)).astype(numpy.float32)
    target = rng.integers(0, 7, size=16)
    out = compare(lambda x, t: F.cross_entropy(x, t, reduction="none", label_smoothing=label_smoothing),
                  lambda x, t: TF.cross_entropy(x, t, reduction="none", label_smoothing=label_smoothing),
                  [x, target], grad=(0,), rtol=1e-6, atol=1e-6)
    assert numpy.isfinite(out.data).all()


def test_binary_cross_entropy_with_logits_is_stable_for_extreme_logits():
    x = numpy.array([-1e4, -100.0, 0.0, 100.0, 1e4], dtype=numpy.float32)
    y = numpy.array([1.0, 0.0, 0.5, 1.0, 0.0], dtype=numpy.float32)
    out = compare(lambda x, y: F.binary_cross_entropy_with_logits(x, y, reduction="none"),
                  lambda x, y: TF.binary_cross_entropy_with_logits(x, y, reduction="none"),
                  [x, y], grad=(0, 1))
    assert numpy.isfinite(out.data).all()


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_losses_keep_the_input_dtype(dtype):
    rng = numpy.random.default_rng(7)
    x = st.tensor(rng.standard_normal((4, 3)).astype(dtype), requires_grad=True)
    target = st.tensor(rng.integers(0, 3, size=4))
    losses = [F.cross_entropy(x, target), F.cross_entropy(x, target, label_smoothing=0.1),
              F.nll_loss(x, target), F.mse_loss(x, st.tensor(rng.random((4, 3)).astype(dtype))),
              F.binary_cross_entropy_with_logits(x, st.tensor(rng.random((4, 3)).astype(dtype)))]
    for loss in losses:
        assert loss.dtype == dtype
        x.grad = None
        loss.backward()
        assert x.grad.dtype == dtype


def test_cross_entropy_accepts_unsigned_and_int32_targets():
    x = numpy.random.default_rng(8).standard_normal((3, 5))
    for dtype in (numpy.uint8, numpy.int32):
        target = numpy.array([4, 0, 2], dtype=dtype)
        assert_close(F.cross_entropy(st.tensor(x), st.tensor(target)),
                     TF.cross_entropy(to_torch(x), to_torch(target.astype(numpy.int64))))


# ----- error inputs -----------------------------------------------------------------------------
def _x(*shape):
    return st.tensor(numpy.zeros(shape, dtype=numpy.float32))


def _t(*values):
    return st.tensor(numpy.array(values, dtype=numpy.int64))


@pytest.mark.parametrize("op", [F.cross_entropy, F.nll_loss])
def test_class_index_losses_reject_bad_targets(op):
    name = op.__name__
    with pytest.raises(ValueError, match=rf"{name}: expected input batch size \(3\) to match target batch size \(2\)"):
        op(_x(3, 4), _t(0, 1))
    with pytest.raises(ValueError, match=rf"{name}: expected target of shape .* \(2, 5\).*got \(2, 6\)"):
        op(_x(2, 4, 5), st.tensor(numpy.zeros((2, 6), dtype=numpy.int64)))
    with pytest.raises(IndexError, match=rf"{name}: target class index 4 is out of range \[0, C\) with C = 4"):
        op(_x(3, 4), _t(0, 4, 1))
    with pytest.raises(IndexError, match=rf"{name}: target class index -2 .*C = 4"):
        op(_x(3, 4), _t(0, -2, 1), ignore_index=-1)
    with pytest.raises(IndexError, match=rf"{name}: target class index -100 .*C = 4"):
        op(_x(3, 4), _t(0, -100, 1), ignore_index=-1)
    with pytest.raises(TypeError, match=rf"{name}: class-index target must have an integer dtype, got dtype float32"):
        op(_x(3, 4), st.tensor(numpy.zeros(3, dtype=numpy.float32)))
    with pytest.raises(TypeError, match=rf"{name}: class-index target must have an integer dtype, got dtype bool"):
        op(_x(3, 4), st.tensor(numpy.zeros(3, dtype=bool)))
    with pytest.raises(ValueError, match=rf"{name}: reduction must be one of .*got 'avg'"):
        op(_x(3, 4), _t(0, 1, 2), reduction="avg")
    with pytest.raises(ValueError, match=rf"{name}: weight must have shape \(C,\) = \(4,\).*got shape \(3,\)"):
        op(_x(3, 4), _t(0, 1, 2), weight=st.ones(3))
    with pytest.raises(ValueError, match=rf"{name}: weight is treated as a constant"):
        op(_x(3, 4), _t(0, 1, 2), weight=st.ones(4, requires_grad=True))
    with pytest.raises(ValueError, match=rf"{name}: expected input of shape .*got a 0-D input"):
        op(_x(), _t(0))
    with pytest.raises(TypeError, match=rf"{name}: input must be a floating-point tensor, got dtype int64"):
        op(_t(1, 2), _t(0))


def test_cross_entropy_rejects_bad_probability_targets_and_smoothing():
    with pytest.raises(TypeError, match="cross_entropy: a target of the input's shape .* class probabilities.*int64"):
        F.cross_entropy(_x(3, 4), st.tensor(numpy.zeros((3, 4), dtype=numpy.int64)))
    with pytest.raises(ValueError, match="cross_entropy: ignore_index is not supported with class-probability"):
        F.cross_entropy(_x(3, 4), _x(3, 4), ignore_index=1)
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match=rf"cross_entropy: label_smoothing must be between 0.0 and 1.0, got {bad}"):
            F.cross_entropy(_x(3, 4), _t(0, 1, 2), label_smoothing=bad)
    with pytest.raises(ValueError, match=r"cross_entropy: weight must have shape \(C,\) = \(4,\)"):
        F.cross_entropy(_x(3, 4), _x(3, 4), weight=st.ones(5))


def test_mse_loss_rejects_mismatched_shapes_and_bad_arguments():
    with pytest.raises(ValueError, match=r"mse_loss: target shape \(4,\) must equal input shape \(3, 4\)"):
        F.mse_loss(_x(3, 4), _x(4))
    with pytest.raises(ValueError, match="mse_loss: reduction must be one of"):
        F.mse_loss(_x(3), _x(3), reduction="elementwise_mean")
    with pytest.raises(TypeError, match="mse_loss: input must be a floating-point tensor"):
        F.mse_loss(_t(1, 2), _x(2))
    with pytest.raises(TypeError, match="mse_loss: target must be a Tensor or an array, got list"):
        F.mse_loss(_x(2), [1.0, 2.0])


def test_binary_cross_entropy_with_logits_rejects_bad_arguments():
    op = "binary_cross_entropy_with_logits"
    with pytest.raises(ValueError, match=rf"{op}: target shape \(3, 1\) must equal input shape \(3, 4\)"):
        F.binary_cross_entropy_with_logits(_x(3, 4), _x(3, 1))
    with pytest.raises(TypeError, match=rf"{op}: target must be a floating-point tensor, got dtype int64"):
        F.binary_cross_entropy_with_logits(_x(2), _t(0, 1))
    with pytest.raises(ValueError, match=rf"{op}: pos_weight of shape \(5,\) does not broadcast to .*\(3, 4\)"):
        F.binary_cross_entropy_with_logits(_x(3, 4), _x(3, 4), pos_weight=st.ones(5))
    with pytest.raises(ValueError, match=rf"{op}: weight of shape \(2, 3, 4\) does not broadcast"):
        F.binary_cross_entropy_with_logits(_x(3, 4), _x(3, 4), weight=_x(2, 3, 4))
    with pytest.raises(ValueError, match=rf"{op}: pos_weight is treated as a constant"):
        F.binary_cross_entropy_with_logits(_x(3, 4), _x(3, 4), pos_weight=st.ones(4, requires_grad=True))
    with pytest.raises(ValueError, match=rf"{op}: reduction must be one of"):
        F.binary_cross_entropy_with_logits(_x(3, 4), _x(3, 4), reduction=None)


def test_constant_weight_that_requires_grad_is_fine_under_no_grad():
    with st.no_grad():
        F.cross_entropy(_x(3, 4), _t(0, 1, 2), weight=st.ones(4, requires_grad=True))

