"""The figures of docs/notes-executed.md, each checked against an independent reference (scipy, PyTorch, arithmetic)."""
import doctest
import math
import pathlib

import numpy
import pytest
import scipy.signal
import torch

import striate as st
import striate.nn.functional as F
from striate import nn, signal
from striate.tools.arithmetic import compare_fc_conv, conv_output_size, conv_params, linear_params

PAGE = pathlib.Path(__file__).resolve().parents[1] / "docs" / "notes-executed.md"

IMAGE = numpy.array([[6, 1, 4, 2, 8],
                     [2, 6, 6, 9, 3],
                     [3, 0, 2, 1, 4],
                     [3, 6, 5, 9, 5],
                     [5, 8, 9, 6, 1]])
VERTICAL_EDGE = numpy.array([[1, 0, -1]] * 3)
NOTES_MAP = numpy.array([[-1, -5, -3], [-5, -7, 1], [-5, -2, 6]])


def test_page_runs():
    """The page's snippets print what they say (also collected by pytest from docs/ with --doctest-glob)."""
    result = doctest.testfile(str(PAGE), module_relative=False, verbose=False, report=False)
    assert result.attempted > 50 and result.failed == 0


# ----- §1 the 5×5 example ------------------------------------------------------------------------

def test_the_image_gives_the_notes_map():
    numpy.testing.assert_array_equal(scipy.signal.correlate2d(IMAGE, VERTICAL_EDGE, "valid"), NOTES_MAP)
    numpy.testing.assert_array_equal(signal.correlate(IMAGE, VERTICAL_EDGE, mode="valid"), NOTES_MAP)
    y = torch.nn.functional.conv2d(torch.tensor(IMAGE, dtype=torch.float64)[None, None],
                                   torch.tensor(VERTICAL_EDGE, dtype=torch.float64)[None, None])
    numpy.testing.assert_array_equal(y[0, 0].numpy(), NOTES_MAP)


def test_true_convolution_is_the_negation_for_this_filter():
    numpy.testing.assert_array_equal(scipy.signal.convolve2d(IMAGE, VERTICAL_EDGE, "valid"), -NOTES_MAP)
    numpy.testing.assert_array_equal(signal.convolve(IMAGE, VERTICAL_EDGE, mode="valid"), -NOTES_MAP)


def test_every_3x3_map_comes_from_some_image(rng):
    # Any target map: solve the 9 equations in least squares and check the solution reproduces it.
    rows = [scipy.signal.correlate2d(e.reshape(5, 5), VERTICAL_EDGE, "valid").ravel() for e in numpy.eye(25)]
    matrix = numpy.stack(rows, axis=1)
    assert numpy.linalg.matrix_rank(matrix) == 9
    target = rng.integers(-9, 10, 9).astype(float)
    solution = numpy.linalg.lstsq(matrix, target, rcond=None)[0]
    numpy.testing.assert_allclose(scipy.signal.correlate2d(solution.reshape(5, 5), VERTICAL_EDGE, "valid").ravel(),
                                  target, atol=1e-9)
    invisible = numpy.array([[3, 1, 3, 1, 3]] * 5)
    numpy.testing.assert_array_equal(scipy.signal.correlate2d(IMAGE + invisible, VERTICAL_EDGE, "valid"), NOTES_MAP)


# ----- §2–§4 sizes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mode, size", [("full", 7), ("valid", 3), ("same", 5)])
def test_full_valid_same_sizes(mode, size):
    assert scipy.signal.correlate2d(IMAGE, VERTICAL_EDGE, mode).shape == (size, size)
    assert signal.correlate(IMAGE, VERTICAL_EDGE, mode=mode).shape == (size, size)
    x = st.tensor(IMAGE[None, None].astype(float))
    assert F.conv2d(x, st.tensor(VERTICAL_EDGE[None, None].astype(float)), padding=mode).shape == (1, 1, size, size)


@pytest.mark.parametrize("size, kwargs, expected", [
    (5, dict(kernel_size=3), 3), (7, dict(kernel_size=3, padding=1), 7), (5, dict(kernel_size=3, stride=2), 2)])
def test_output_size_cases(size, kwargs, expected):
    reference = torch.nn.Conv2d(1, 1, **kwargs)(torch.zeros(1, 1, size, size)).shape[2:]
    assert tuple(reference) == (expected, expected)
    assert conv_output_size(size, **kwargs) == expected
    assert nn.Conv2d(1, 1, **kwargs)(st.zeros(1, 1, size, size)).shape[2:] == (expected, expected)
    assert (size + 2 * kwargs.get("padding", 0) - kwargs["kernel_size"]) // kwargs.get("stride", 1) + 1 == expected


def test_unvisited_last_row_gets_no_gradient():
    x = torch.ones(1, 1, 6, 6, requires_grad=True)
    torch.nn.functional.conv2d(x, torch.ones(1, 1, 3, 3), stride=2).sum().backward()
    ours = st.ones(1, 1, 6, 6, requires_grad=True)
    F.conv2d(ours, st.ones(1, 1, 3, 3), stride=2).sum().backward()
    numpy.testing.assert_array_equal(ours.grad.numpy(), x.grad.numpy())
    assert not x.grad[0, 0, 5].any() and not x.grad[0, 0, :, 5].any()


@pytest.mark.parametrize("n, r, m, d", [(6, 3, 3, 2), (32, 3, 5, 6), (28, 1, 5, 16), (7, 386, 7, 10)])
def test_n_filters_give_n_maps_of_n_plus_1_minus_m(n, r, m, d):
    reference = torch.nn.Conv2d(r, d, m)(torch.zeros(1, r, n, n)).shape
    assert tuple(reference) == (1, d, n + 1 - m, n + 1 - m)
    assert nn.Conv2d(r, d, m)(st.zeros(1, r, n, n)).shape == tuple(reference)


# ----- §5 parameters --------------------------------------------------------------------------------

def test_fc_and_conv_parameter_counts():
    def count(module):
        return sum(p.numel() for p in module.parameters())

    # meta tensors: the counts without allocating 77 million floats.
    assert count(torch.nn.Linear(7 * 7 * 386, 4096, device="meta")) == (18_914 + 1) * 4096 == 77_475_840
    assert count(torch.nn.Conv2d(386, 386, 7, bias=False, device="meta")) == 7 * 7 * 386 * 386 == 7_300_804
    assert linear_params(7 * 7 * 386, 4096) == 77_475_840
    assert conv_params(386, 386, 7, bias=False) == 7_300_804
    head = compare_fc_conv((386, 7, 7), 4096, 7)
    assert head.conv_params == count(torch.nn.Conv2d(386, 4096, 7, device="meta")) == 77_475_840
    spatial = compare_fc_conv((386, 7, 7), 4096, 7, out_channels=386, padding=3, bias=False)
    assert spatial.dense_params == 18_914 * 18_914 == 357_739_396
    assert spatial.dense_params == 49 * spatial.conv_params


# ----- §6–§7 ReLU and sparsity -----------------------------------------------------------------------

def test_relu_is_max_0_x():
    values = numpy.array([-2.0, -0.5, 0.0, 1.5, 3.0], numpy.float32)
    v = st.tensor(values, requires_grad=True)
    F.relu(v).sum().backward()
    t = torch.tensor(values, requires_grad=True)
    torch.relu(t).sum().backward()
    numpy.testing.assert_array_equal(F.relu(st.tensor(values)).numpy(), numpy.maximum(0, values))
    numpy.testing.assert_array_equal(v.grad.numpy(), t.grad.numpy())


@pytest.mark.parametrize("k", [1, 3, 5])
def test_one_output_touches_k_by_k_inputs(k):
    kernel = numpy.arange(1.0, k * k + 1).reshape(1, 1, k, k)
    x = torch.zeros(1, 1, 9, 9, dtype=torch.float64, requires_grad=True)
    torch.nn.functional.conv2d(x, torch.tensor(kernel))[0, 0, 2, 3].backward()
    ours = st.zeros(1, 1, 9, 9, dtype=st.float64, requires_grad=True)
    F.conv2d(ours, st.tensor(kernel))[0, 0, 2, 3].backward()
    assert int((x.grad != 0).sum()) == k * k == int((ours.grad.numpy() != 0).sum())
    numpy.testing.assert_array_equal(ours.grad.numpy()[0, 0, 2:2 + k, 3:3 + k], kernel[0, 0])


# ----- §8 translation ------------------------------------------------------------------------------

def test_pooling_invariance_counts_match_torch():
    canvas = numpy.zeros((1, 1, 12, 12))
    canvas[0, 0, 3:8, 3:8] = IMAGE
    moved = numpy.roll(canvas, 1, axis=3)
    edges = numpy.stack([VERTICAL_EDGE, VERTICAL_EDGE.T])[:, None].astype(float)

    def maps(picture):
        return torch.relu(torch.nn.functional.conv2d(torch.tensor(picture), torch.tensor(edges)))

    a, b = maps(canvas), maps(moved)
    assert torch.equal(b[..., 1:], a[..., :-1])                                   # equivariance
    ours_a = F.relu(F.conv2d(st.tensor(canvas), st.tensor(edges))).numpy()
    numpy.testing.assert_array_equal(ours_a, a.numpy())

    def changed(pooled_a, pooled_b):
        active = (pooled_a != 0) | (pooled_b != 0)
        return int((pooled_a != pooled_b).sum()), int(active.sum())

    assert changed(a, b) == (55, 56)
    for kernel, expected in [(2, (21, 25)), (5, (3, 8))]:
        reference = changed(torch.nn.functional.max_pool2d(a, kernel), torch.nn.functional.max_pool2d(b, kernel))
        ours = changed(F.max_pool2d(st.tensor(a.numpy()), kernel).numpy(),
                       F.max_pool2d(st.tensor(b.numpy()), kernel).numpy())
        assert reference == ours == expected
    assert torch.equal(a.amax(dim=(2, 3)), b.amax(dim=(2, 3)))
    assert a.amax(dim=(2, 3)).flatten().tolist() == [19.0, 23.0]


# ----- §9 vanishing gradient ----------------------------------------------------------------------------

def _striate_stack(activation, depth=10, width=64):
    st.manual_seed(0)
    layers = []
    for _ in range(depth):
        linear = nn.Linear(width, width)
        nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
        nn.init.zeros_(linear.bias)
        layers += [linear, activation()]
    return nn.Sequential(*layers).double()


@pytest.mark.parametrize("ours, theirs", [(nn.Sigmoid, torch.nn.Sigmoid), (nn.ReLU, torch.nn.ReLU)])
def test_gradient_norms_per_layer(ours, theirs):
    model = _striate_stack(ours)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    reference = torch.nn.Sequential(*[module for m in linears for module in (torch.nn.Linear(64, 64), theirs())])
    with torch.no_grad():
        for mine, their in zip(linears, [m for m in reference if isinstance(m, torch.nn.Linear)]):
            their.weight.copy_(torch.tensor(mine.weight.numpy()))
            their.bias.zero_()
    reference.double()
    inputs = numpy.random.default_rng(0).standard_normal((64, 64))
    y = model(st.tensor(inputs))
    (y * y).mean().backward()
    t = reference(torch.tensor(inputs))
    (t * t).mean().backward()
    norms = numpy.array([numpy.linalg.norm(m.weight.grad.numpy()) for m in linears])
    torch_norms = numpy.array([m.weight.grad.norm().item() for m in reference if isinstance(m, torch.nn.Linear)])
    numpy.testing.assert_allclose(norms, torch_norms, rtol=1e-9)
    ratios = numpy.log10(torch_norms / torch_norms[-1])
    if ours is nn.Sigmoid:
        assert ratios[0] < -4.5 and numpy.all(numpy.diff(ratios) > 0)             # shrinks every layer down
        # The page prints these rounded; keep them clear of the .5 boundaries so it is stable.
        assert numpy.round(ratios).astype(int).tolist() == [-5, -4, -4, -3, -3, -2, -2, -1, -1, 0]
    else:
        assert numpy.all(numpy.abs(ratios) < 0.45)
    assert numpy.min(numpy.abs(numpy.abs(ratios) % 1 - 0.5)) > 0.01


def test_sigmoid_derivative_is_at_most_a_quarter():
    s = torch.linspace(-6, 6, 121, dtype=torch.float64, requires_grad=True)
    torch.sigmoid(s).sum().backward()
    ours = st.tensor(numpy.linspace(-6, 6, 121), requires_grad=True)
    F.sigmoid(ours).sum().backward()
    numpy.testing.assert_allclose(ours.grad.numpy(), s.grad.numpy(), rtol=1e-12)
    assert math.isclose(ours.grad.numpy().max(), 0.25) and ours.grad.numpy().argmax() == 60


# ----- §11 a convolution as a matrix product, two ways ----------------------------------------------

@pytest.mark.parametrize("channels, filters, k", [(2, 3, 3), (4, 1, 5), (1, 6, 2)])
def test_columns_and_shifted_products_equal_torch(channels, filters, k):
    rng = numpy.random.default_rng(channels * 10 + k)
    x, w = rng.standard_normal((channels, 7, 6)), rng.standard_normal((filters, channels, k, k))
    out_h, out_w = 7 - k + 1, 6 - k + 1
    columns = numpy.stack([x[:, i:i + k, j:j + k].ravel() for i in range(out_h) for j in range(out_w)], axis=1)
    by_columns = (w.reshape(filters, -1) @ columns).reshape(filters, out_h, out_w)
    by_shifts = sum(w[:, :, a, b] @ x[:, a:a + out_h, b:b + out_w].reshape(channels, -1)
                    for a in range(k) for b in range(k)).reshape(filters, out_h, out_w)
    expected = torch.nn.functional.conv2d(torch.tensor(x[None]), torch.tensor(w)).numpy()[0]
    numpy.testing.assert_allclose(by_columns, expected, rtol=1e-12, atol=1e-12)
    numpy.testing.assert_allclose(by_shifts, expected, rtol=1e-12, atol=1e-12)
    assert columns.shape == (channels * k * k, out_h * out_w)   # k·k times the input's numbers per position
