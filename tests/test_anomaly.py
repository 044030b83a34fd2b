"""Anomaly mode: the first op whose forward output or backward gradient holds NaN or Inf is named."""
import gc
import weakref

import numpy
import pytest
import torch

import striate as st
import striate.nn as nn
import striate.nn.functional as F
from striate.autograd import AnomalyError, detect_anomaly, function, is_anomaly_enabled, set_detect_anomaly

pytestmark = [pytest.mark.filterwarnings("ignore::RuntimeWarning"),  # the NaNs and Infs are made on purpose
              pytest.mark.filterwarnings("ignore:Anomaly Detection has been enabled")]


@pytest.fixture(autouse=True)
def anomaly_mode_off():
    yield
    set_detect_anomaly(False)
    assert function._tracers == []


def raised(fn):
    with pytest.raises(AnomalyError) as caught:
        with detect_anomaly():
            fn()
    return caught.value


FORWARD = [
    # (id, call, op, Function, kind, inputs finite)
    ("log of a negative", lambda: st.tensor([1.0, -1.0]).log(), "Tensor.log", "Log", "NaN", True),
    ("log of zero", lambda: st.tensor([1.0, 0.0]).log(), "Tensor.log", "Log", "Inf", True),
    ("exp overflow", lambda: st.tensor([1.0, 100.0]).exp(), "Tensor.exp", "Exp", "Inf", True),
    ("sqrt then division by zero", lambda: st.tensor([4.0, -4.0]).sqrt() / st.tensor([1.0, 0.0]), "Tensor.sqrt", "Sqrt",
     "NaN", True),
    ("0/0 and 1/0", lambda: st.tensor([0.0, 1.0]) / st.tensor([0.0, 0.0]), "Tensor.__truediv__", "Div", "NaN and Inf",
     True),
    ("float32 product overflow", lambda: st.tensor([3e38]) * 2, "Tensor.__mul__", "Mul", "Inf", True),
    ("NaN weight passed on by linear", lambda: F.linear(st.ones(2, 3), st.tensor(numpy.full((4, 3), numpy.nan,
                                                                                             numpy.float32))),
     "linear", "Linear", "NaN", False),
    ("NaN data passed on by conv2d", lambda: F.conv2d(st.tensor(numpy.full((1, 1, 3, 3), numpy.nan, numpy.float32)),
                                                      st.ones(1, 1, 2, 2)), "conv2d", None, "NaN", False),
    ("Inf logits in cross_entropy", lambda: F.cross_entropy(st.tensor([[numpy.inf, 0.0]]), st.tensor([1])),
     "cross_entropy", None, "NaN", False),
]


@pytest.mark.parametrize("call, op, function_name, kind, finite", [case[1:] for case in FORWARD],
                         ids=[case[0] for case in FORWARD])
def test_forward_names_the_first_op_with_non_finite_output(call, op, function_name, kind, finite):
    error = raised(call)
    assert error.phase == "forward" and error.op == op and error.kind == kind and error.inputs_finite is finite
    if function_name is not None:
        assert error.function == function_name
    assert str(error).startswith(f"{op} (Function {error.function}) produced {kind} in its forward output, ")
    assert error.location and error.location.startswith(__file__)   # the call site in this test file
    assert isinstance(error, RuntimeError)


def test_the_first_op_is_named_not_the_ones_after_it():
    x = st.tensor([2.0, -2.0], requires_grad=True)
    error = raised(lambda: ((x * 3).log() + 1).relu().sum())
    assert (error.op, error.function) == ("Tensor.log", "Log")


def test_backward_names_the_op_whose_gradient_is_non_finite():
    x = st.tensor([4.0, 0.0], requires_grad=True)
    with pytest.raises(AnomalyError) as caught:
        with detect_anomaly():
            y = x.sqrt()               # forward is finite: sqrt(0) = 0; its gradient at 0 is infinite
            (y * 2).sum().backward()
    error = caught.value
    assert (error.phase, error.op, error.function, error.kind) == ("backward", "Tensor.sqrt", "Sqrt", "Inf")
    assert error.inputs_finite
    assert "returned Inf in the gradient of input 0 during backward, from a finite upstream gradient" in str(error)
    assert error.location.startswith(__file__)
    # PyTorch's anomaly mode checks only for NaN, so it lets this Inf through; striate's catches it.
    t = torch.tensor([4.0, 0.0], requires_grad=True)
    with torch.autograd.detect_anomaly():
        (t.sqrt() * 2).sum().backward()
    assert torch.isinf(t.grad).any()


def test_backward_nan_from_the_upstream_gradient_says_so():
    x = st.tensor([1.0, 2.0], requires_grad=True)
    with detect_anomaly():
        y = x * 3
    with pytest.raises(AnomalyError, match=r"Tensor.__mul__ \(Function Mul\) returned NaN in the gradient of input 0 "
                                           r"during backward, but the gradient flowing into it already held NaN"):
        y.backward(st.tensor([numpy.nan, 1.0]))


def test_modules_on_the_stack_are_reported():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    with st.no_grad():
        model[2].weight.data[...] = numpy.inf
    error = raised(lambda: model(st.ones(4, 2)))
    assert error.op == "linear" and not error.inputs_finite
    assert [type(owner).__name__ for owner in error.owners[:2]] == ["Linear", "Sequential"]
    assert error.owners[0] is model[2]


def test_off_by_default_and_restored_after_the_context():
    assert not is_anomaly_enabled()
    (st.tensor([0.0]).log())            # no error: anomaly mode is off
    with detect_anomaly():
        assert is_anomaly_enabled()
        with detect_anomaly():
            assert is_anomaly_enabled()
        assert is_anomaly_enabled()      # the inner context restores the outer's mode
    assert not is_anomaly_enabled() and function._tracers == []


def test_set_detect_anomaly_switches_it_for_the_process():
    set_detect_anomaly(True)
    assert is_anomaly_enabled() and len(function._tracers) == 1
    set_detect_anomaly(True)             # idempotent: still one tracer
    assert len(function._tracers) == 1
    with pytest.raises(AnomalyError):
        st.tensor([-1.0]).sqrt()
    set_detect_anomaly(False)
    assert not is_anomaly_enabled() and function._tracers == []
    st.tensor([-1.0]).sqrt()
    with pytest.raises(TypeError, match=r"set_detect_anomaly: mode must be True or False, got 'yes'"):
        set_detect_anomaly("yes")


def test_the_mode_is_left_off_when_the_body_raises():
    with pytest.raises(KeyError):
        with detect_anomaly():
            raise KeyError("x")
    assert not is_anomaly_enabled()


def test_finite_runs_match_normal_mode_exactly():
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((2, 3, 8, 8)).astype(numpy.float32)
    st.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(36, 5))
    grads = []
    for mode in (False, True):
        model.zero_grad()
        inputs = st.tensor(x, requires_grad=True)
        with detect_anomaly() if mode else st.enable_grad():
            loss = F.cross_entropy(model(inputs), st.tensor([1, 4]))
            loss.backward()
        grads.append([inputs.grad.numpy()] + [p.grad.numpy() for p in model.parameters()])
    for a, b in zip(*grads):
        numpy.testing.assert_array_equal(a, b)


def test_graphs_built_under_anomaly_mode_are_freed_without_the_cycle_collector():
    x = st.tensor([1.0, 2.0], requires_grad=True)
    gc.disable()
    try:
        with detect_anomaly():
            y = (x * 2).exp()
            node = weakref.ref(y._ctx)
            y.sum().backward()
        del y
        assert node() is None, "the checked backward keeps its Function alive in a reference cycle"
    finally:
        gc.enable()
