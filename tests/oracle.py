"""Run the same computation in striate and PyTorch and compare values and gradients.

PyTorch is the reference: nothing here reuses striate's code to compute an expected value.
"""
import numpy
import pytest

import striate as st

torch = pytest.importorskip("torch", reason="PyTorch (the test oracle) is not installed")
torch.set_num_threads(1)


def to_torch(array, requires_grad=False):
    t = torch.from_numpy(numpy.array(array))
    return t.requires_grad_(requires_grad) if requires_grad and t.is_floating_point() else t


def as_numpy(value):
    if isinstance(value, st.Tensor):
        return value.data
    if isinstance(value, torch.Tensor):
        return value.detach().numpy()
    return numpy.asarray(value)


def assert_close(actual, expected, rtol=1e-5, atol=1e-6, what="value"):
    actual, expected = as_numpy(actual), as_numpy(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != reference {expected.shape}"
    numpy.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def compare(striate_fn, torch_fn, arrays, grad=(), rtol=1e-5, atol=1e-6, seed=0):
    """Check ``striate_fn(*tensors)`` against ``torch_fn(*tensors)``, forward and backward.

    ``arrays`` are the inputs (NumPy, any dtype); ``grad`` lists the indices of those to
    differentiate. The backward pass is seeded with the same random upstream gradient in
    both libraries. Returns the striate output for further checks.
    """
    s_in = [st.tensor(a, requires_grad=i in grad) for i, a in enumerate(arrays)]
    t_in = [to_torch(a, requires_grad=i in grad) for i, a in enumerate(arrays)]
    s_out = striate_fn(*s_in)
    t_out = torch_fn(*t_in)
    assert_close(s_out, t_out, rtol, atol, "forward")
    if grad:
        upstream = numpy.random.default_rng(seed).standard_normal(s_out.shape).astype(s_out.dtype)
        s_out.backward(upstream)
        t_out.backward(torch.from_numpy(upstream))
        for i in grad:
            expected = t_in[i].grad
            actual = s_in[i].grad
            if expected is None:
                assert actual is None or not numpy.any(actual.data), f"input {i}: reference has no gradient"
                continue
            assert actual is not None, f"input {i}: striate produced no gradient"
            assert_close(actual, expected, rtol, atol, f"gradient of input {i}")
    return s_out
