"""batch_norm: float64 gradient checks, PyTorch parity with running statistics, error inputs."""
import numpy
import pytest

import striate as st
import striate.nn.functional as F
from oracle import assert_close, to_torch, torch

TF = torch.nn.functional
# (N, C, *D) for 2-D to 5-D inputs: BatchNorm1d (N, C) and (N, C, L), BatchNorm2d, BatchNorm3d.
SHAPES = [(4, 3), (3, 2, 4), (2, 3, 2, 3), (2, 2, 2, 2, 3)]


# ----- float64 gradient checks ---------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_gradcheck(shape, training, affine):
    rng = numpy.random.default_rng(len(shape) * 4 + 2 * training + affine)
    channels = shape[1]
    running_mean, running_var = rng.standard_normal(channels), rng.random(channels) + 0.5
    x = rng.standard_normal(shape) * 2 + 1

    if affine:
        def fn(x, weight, bias):
            return F.batch_norm(x, running_mean.copy(), running_var.copy(), weight, bias, training=training)
        st.gradcheck(fn, [x, rng.standard_normal(channels), rng.standard_normal(channels)])
    else:
        st.gradcheck(lambda x: F.batch_norm(x, running_mean.copy(), running_var.copy(), training=training), [x])


def test_batch_norm_gradcheck_with_only_weight_or_only_bias():
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((3, 2, 3))
    st.gradcheck(lambda x, w: F.batch_norm(x, None, None, weight=w, training=True), [x, rng.standard_normal(2)])
    st.gradcheck(lambda x, b: F.batch_norm(x, None, None, bias=b, training=True), [x, rng.standard_normal(2)])


# ----- PyTorch parity ------------------------------------------------------------------------------
def _run_both(x, running, weight, bias, upstream, **kwargs):
    """One batch_norm forward and backward in striate and PyTorch; running stats updated in place."""
    (s_mean, s_var), (t_mean, t_var) = running
    s_x, t_x = st.tensor(x, requires_grad=True), to_torch(x, requires_grad=True)
    s_w = None if weight is None else st.tensor(weight, requires_grad=True)
    t_w = None if weight is None else to_torch(weight, requires_grad=True)
    s_b = None if bias is None else st.tensor(bias, requires_grad=True)
    t_b = None if bias is None else to_torch(bias, requires_grad=True)
    s_y = F.batch_norm(s_x, s_mean, s_var, s_w, s_b, **kwargs)
    t_y = TF.batch_norm(t_x, t_mean, t_var, t_w, t_b, **kwargs)
    s_y.backward(upstream)
    t_y.backward(torch.from_numpy(upstream))
    return [(s_y, t_y), (s_x.grad, t_x.grad)] + [(s.grad, t.grad) for s, t in ((s_w, t_w), (s_b, t_b)) if s is not None]


def test_batch_norm_matches_torch_over_random_configurations():
    rng = numpy.random.default_rng(1)
    for trial in range(32):
        dtype = (numpy.float32, numpy.float64)[trial % 2]
        ndim = 2 + trial % 4                                    # 2-D to 5-D
        shape = (int(rng.integers(2, 6)), int(rng.integers(1, 5))) + tuple(
            int(s) for s in rng.integers(1, 5, size=ndim - 2))
        channels = shape[1]
        training = bool(rng.random() < 0.6)
        affine = bool(rng.random() < 0.7)
        weight = rng.standard_normal(channels).astype(dtype) if affine else None
        bias = rng.standard_normal(channels).astype(dtype) if affine else None
        momentum, eps = float(rng.choice([0.1, 0.5, 1.0, 0.0])), float(rng.choice([1e-5, 1e-3]))
        mean0, var0 = rng.standard_normal(channels).astype(dtype), (rng.random(channels) + 0.5).astype(dtype)
        running = ((mean0.copy(), var0.copy()), (to_torch(mean0), to_torch(var0)))
        x = (rng.standard_normal(shape) * 3 + 2).astype(dtype)
        upstream = rng.standard_normal(shape).astype(dtype)
        rtol, atol = (1e-4, 1e-5) if dtype == numpy.float32 else (1e-9, 1e-11)
        pairs = _run_both(x, running, weight, bias, upstream, training=training, momentum=momentum, eps=eps)
        for (ours, theirs), what in zip(pairs, ("forward", "grad input", "grad weight", "grad bias")):
            assert_close(ours, theirs, rtol, atol, f"trial {trial}: {what}")
            assert ours.dtype == dtype
        for ours, theirs, what in zip(running[0], running[1], ("running_mean", "running_var")):
            assert_close(ours, theirs, rtol, atol, f"trial {trial}: {what}")


@pytest.mark.parametrize("as_tensor", [False, True])
def test_running_statistics_after_several_steps_equal_torch(as_tensor):
    rng = numpy.random.default_rng(2)
    channels = 3
    s_mean, s_var = numpy.zeros(channels, numpy.float32), numpy.ones(channels, numpy.float32)
    if as_tensor:
        s_mean, s_var = st.tensor(s_mean), st.tensor(s_var)
    t_mean, t_var = torch.zeros(channels), torch.ones(channels)
    mean_array = s_mean.data if as_tensor else s_mean
    weight, bias = rng.standard_normal((2, channels)).astype(numpy.float32)
    for step in range(6):
        x = (rng.standard_normal((5, channels, 4, 4)) * (step + 1) + step).astype(numpy.float32)
        ours = F.batch_norm(st.tensor(x), s_mean, s_var, st.tensor(weight), st.tensor(bias),
                            training=True, momentum=0.3)
        theirs = TF.batch_norm(to_torch(x), t_mean, t_var, to_torch(weight), to_torch(bias),
                               training=True, momentum=0.3)
        assert_close(ours, theirs, 1e-5, 1e-5, f"step {step}: forward")
    assert_close(s_mean, t_mean, 1e-5, 1e-6, "running_mean")
    assert_close(s_var, t_var, 1e-5, 1e-6, "running_var")
    assert (s_mean.data if as_tensor else s_mean) is mean_array   # updated in place, not replaced
    # Eval mode now normalises with those statistics.
    x = rng.standard_normal((2, channels, 3, 3)).astype(numpy.float32)
    assert_close(F.batch_norm(st.tensor(x), s_mean, s_var, st.tensor(weight), st.tensor(bias)),
                 TF.batch_norm(to_torch(x), t_mean, t_var, to_torch(weight), to_torch(bias)), 1e-5, 1e-6)


def test_eval_mode_leaves_running_statistics_alone():
    mean, var = numpy.array([0.5, -1.0]), numpy.array([2.0, 0.25])
    F.batch_norm(st.tensor(numpy.ones((3, 2))), mean, var, training=False)
    numpy.testing.assert_array_equal(mean, [0.5, -1.0])
    numpy.testing.assert_array_equal(var, [2.0, 0.25])


def test_training_without_running_statistics_matches_torch():
    x = numpy.random.default_rng(3).standard_normal((4, 3, 5))
    assert_close(F.batch_norm(st.tensor(x), None, None, training=True),
                 TF.batch_norm(to_torch(x), None, None, training=True), 1e-10, 1e-12)


def test_batch_norm_is_stable_for_a_large_offset():
    # Two-pass variance: float32 data around 1e4 with unit spread keeps its variance.
    x = (numpy.random.default_rng(4).standard_normal((64, 2, 8)) + 1e4).astype(numpy.float32)
    assert_close(F.batch_norm(st.tensor(x), None, None, training=True),
                 TF.batch_norm(to_torch(x), None, None, training=True), 1e-3, 1e-3)


# ----- error inputs -----------------------------------------------------------------------------
def _x(*shape):
    return st.tensor(numpy.random.default_rng(0).standard_normal(shape).astype(numpy.float32))


def test_batch_norm_rejects_bad_arguments():
    stats = (numpy.zeros(3, numpy.float32), numpy.ones(3, numpy.float32))
    with pytest.raises(ValueError, match=r"batch_norm: running_mean must have shape \(C,\) = \(3,\) .*shape \(4,\)"):
        F.batch_norm(_x(2, 3), numpy.zeros(4), numpy.ones(3))
    with pytest.raises(ValueError, match=r"batch_norm: running_var must have shape \(C,\) = \(3,\) .*shape \(3, 1\)"):
        F.batch_norm(_x(2, 3), numpy.zeros(3), numpy.ones((3, 1)))
    with pytest.raises(ValueError, match=r"batch_norm: weight must have shape \(C,\) = \(3,\) for input of shape "
                                         r"\(2, 3, 4\), got shape \(4,\)"):
        F.batch_norm(_x(2, 3, 4), *stats, weight=st.ones(4))
    with pytest.raises(ValueError, match=r"batch_norm: bias must have shape \(C,\) = \(3,\)"):
        F.batch_norm(_x(2, 3, 4), *stats, bias=st.ones(2))
    with pytest.raises(ValueError, match=r"batch_norm: expected more than 1 value per channel when training, "
                                         r"got input of shape \(1, 3\)"):
        F.batch_norm(_x(1, 3), *stats, training=True)
    with pytest.raises(ValueError, match="batch_norm: expected more than 1 value per channel"):
        F.batch_norm(_x(1, 3, 1, 1), *stats, training=True)
    with pytest.raises(ValueError, match=r"batch_norm: expected input of shape \(N, C\) or \(N, C, \*D\), got 1-D"):
        F.batch_norm(_x(3), *stats)
    with pytest.raises(ValueError, match="batch_norm: running_mean and running_var must be given in evaluation mode"):
        F.batch_norm(_x(2, 3), None, None, training=False)
    with pytest.raises(TypeError, match="batch_norm: momentum must be a float, got None .*num_batches_tracked"):
        F.batch_norm(_x(2, 3), *stats, training=True, momentum=None)
    with pytest.raises(TypeError, match="batch_norm: input must be a floating-point tensor, got dtype int64"):
        F.batch_norm(st.tensor(numpy.ones((2, 3), dtype=numpy.int64)), *stats)
    with pytest.raises(TypeError, match="batch_norm: running_mean must be floating point, got dtype int64"):
        F.batch_norm(_x(2, 3), numpy.zeros(3, dtype=numpy.int64), stats[1])
    with pytest.raises(TypeError, match="batch_norm: running_var must be a Tensor or an array, got list"):
        F.batch_norm(_x(2, 3), stats[0], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="batch_norm: eps must be a non-negative number, got -1"):
        F.batch_norm(_x(2, 3), *stats, eps=-1)


def test_one_value_per_channel_is_fine_in_eval_mode():
    stats = (numpy.zeros(3, numpy.float32), numpy.ones(3, numpy.float32))
    x = numpy.ones((1, 3), numpy.float32)
    assert_close(F.batch_norm(st.tensor(x), *stats), TF.batch_norm(to_torch(x), *(to_torch(s) for s in stats)))
