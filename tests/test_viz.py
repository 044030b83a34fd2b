"""striate.viz: what each picture draws, checked against PyTorch, SciPy and hand arithmetic; `striate show`."""
import json
import subprocess
import sys

import numpy
import pytest

import striate as st
from cli_run import run_cli
from oracle import assert_close, to_torch, torch
from striate import nn
from striate.models import lenet5
from striate.tools.cli import main
from striate.viz import (confusion_rates, curve_series, explain_unit, feature_grid, feature_maps, filter_grid,
                         filter_tiles, kernel_responses, learned_responses, plot_confusion, plot_curves,
                         plot_feature_maps, plot_filters, plot_kernels, plot_receptive_field, plot_saliency,
                         read_history, receptive_bounds, receptive_box, saliency_map, tile_grid)

pytest.importorskip("matplotlib", reason="striate.viz draws with matplotlib (pip install 'striate[viz]')")
pytest.importorskip("PIL", reason="the CLI reads images with Pillow")
F = torch.nn.functional


@pytest.fixture(scope="module")
def model():
    st.manual_seed(0)
    return lenet5().eval()


@pytest.fixture(scope="module")
def digit():
    """A model-ready digit-like input (1, 28, 28): a bright stroke on the normalised dark background."""
    x = numpy.full((1, 28, 28), -0.42, dtype=numpy.float32)
    x[0, 5:23, 13:16] = 2.8
    x[0, 5:8, 8:16] = 2.8
    x += numpy.random.default_rng(0).normal(0, 0.05, x.shape).astype(numpy.float32)
    return x


def torch_lenet_features(model, x):
    """LeNet-5's four feature maps computed by PyTorch from striate's weights (the reference)."""
    w = {k: to_torch(v) for k, v in model.state_dict().items()}
    t = to_torch(x[None])
    c1 = F.relu(F.conv2d(t, w["features.c1.weight"], w["features.c1.bias"], padding=2))
    s2 = F.max_pool2d(c1, 2)
    c3 = F.relu(F.conv2d(s2, w["features.c3.weight"], w["features.c3.bias"]))
    s4 = F.max_pool2d(c3, 2)
    return [a[0].numpy() for a in (c1, s2, c3, s4)], [t[0].numpy(), c1[0].numpy(), s2[0].numpy(), c3[0].numpy()]


def drawn(axis):
    """The array an axis's (first) image draws."""
    return numpy.ma.filled(axis.images[0].get_array().astype(float), numpy.nan)


# ----- tile grids and feature maps ----------------------------------------------------------------

def test_tile_grid_places_tiles_row_by_row_with_nan_gaps():
    tiles = numpy.arange(5 * 2 * 3, dtype=float).reshape(5, 2, 3)
    grid = tile_grid(tiles, columns=2, pad=1)
    assert grid.shape == (3 * 3 - 1, 2 * 4 - 1)
    for i in range(5):
        top, left = (i // 2) * 3, (i % 2) * 4
        numpy.testing.assert_array_equal(grid[top:top + 2, left:left + 3], tiles[i])
    assert numpy.isnan(grid[2]).all() and numpy.isnan(grid[:, 3]).all()
    assert numpy.isnan(grid[6:8, 4:7]).all()                      # the empty sixth place
    assert tile_grid(tiles).shape == (2 * 3 - 1, 3 * 4 - 1)        # ceil(sqrt(5)) = 3 columns
    assert tile_grid(numpy.zeros((4, 2, 2, 3)), pad=0).shape == (4, 4, 3)
    with pytest.raises(ValueError, match=r"tile_grid: expected tiles of shape \(n, h, w\)"):
        tile_grid(numpy.zeros((2, 3)))
    with pytest.raises(ValueError, match="columns must be a positive int, got 0"):
        tile_grid(tiles, columns=0)


def test_feature_maps_match_pytorch(model, digit):
    maps = feature_maps(model, digit)
    assert [(m.name, m.label, m.kind, m.shape) for m in maps] == [
        ("features.c1", "c1 + relu1", "Conv2d", (6, 28, 28)), ("features.s2", "s2", "MaxPool2d", (6, 14, 14)),
        ("features.c3", "c3 + relu3", "Conv2d", (16, 10, 10)), ("features.s4", "s4", "MaxPool2d", (16, 5, 5))]
    expected, inputs = torch_lenet_features(model, digit)
    for fmap, values, received in zip(maps, expected, inputs):
        assert_close(fmap.values, values, rtol=1e-5, atol=1e-5, what=fmap.name)
        assert_close(fmap.input, received, rtol=1e-5, atol=1e-5, what=fmap.name + " input")
    assert type(maps[0].activation).__name__ == "ReLU" and maps[1].activation is None
    assert (maps[0].pre_activation < 0).any() and (maps[0].values >= 0).all()
    raw = feature_maps(model, st.tensor(digit[None]), after_activation=False)
    assert raw[0].label == "c1" and raw[0].activation is None
    numpy.testing.assert_array_equal(raw[0].values, maps[0].pre_activation)
    assert model.features.c1._forward_hooks == {}                  # the hooks are removed
    assert model.training is False


def test_feature_maps_restore_training_mode_and_check_input(digit):
    st.manual_seed(0)
    net = lenet5()
    assert net.training
    feature_maps(net, digit)
    assert net.training and net.features.c1.training
    with pytest.raises(ValueError, match=r"feature_maps: expected one input of shape \(C, H, W\) or \(1, C, H, W\), "
                                         r"got 4-D input of shape \(2, 1, 28, 28\)"):
        feature_maps(net, numpy.zeros((2, 1, 28, 28), numpy.float32))
    with pytest.raises(TypeError, match="floating-point input"):
        feature_maps(net, numpy.zeros((1, 28, 28), numpy.uint8))
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        feature_maps(lambda x: x, digit)


def test_feature_grid_shares_one_scale_per_layer(model, digit):
    values = feature_maps(model, digit)[2].values                  # (16, 10, 10)
    grid = feature_grid(values, pad=2)
    assert grid.shape == (4 * 12 - 2, 4 * 12 - 2)
    lo, hi = values.min(), values.max()
    for c in range(16):
        top, left = (c // 4) * 12, (c % 4) * 12
        numpy.testing.assert_allclose(grid[top:top + 10, left:left + 10], (values[c] - lo) / (hi - lo))
    assert numpy.nanmin(grid) == 0 and numpy.nanmax(grid) == 1
    assert (feature_grid(numpy.zeros((2, 3, 3))) == 0).sum() == 18   # a dead layer is dark, not NaN
    with pytest.raises(ValueError, match=r"feature_grid: expected one layer's maps of shape \(C, H, W\)"):
        feature_grid(values[0])


def test_plot_feature_maps_draws_the_grids(model, digit, tmp_path):
    path = tmp_path / "features.png"
    figure = plot_feature_maps(model, digit, path=path, max_channels=8, title="a digit")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    axes = figure.axes
    assert len(axes) == 5
    numpy.testing.assert_allclose(drawn(axes[0]), digit[0])
    for axis, values in zip(axes[1:], torch_lenet_features(model, digit)[0]):
        shown = values[:8]
        lo, hi = values.min(), values.max()                        # the whole layer's scale
        columns = int(numpy.ceil(numpy.sqrt(len(shown))))
        expected = tile_grid((shown - lo) / (hi - lo), columns=columns)
        numpy.testing.assert_allclose(drawn(axis), expected, rtol=1e-5, atol=1e-6)
    assert "(first 8)" in axes[3].get_title() and "16×10×10" in axes[3].get_title()


# ----- filters ------------------------------------------------------------------------------------

def test_filter_tiles_are_the_weights_on_one_symmetric_scale(model):
    weight = model.features.c3.weight.data                         # (16, 6, 5, 5)
    peak = numpy.abs(weight).max()
    numpy.testing.assert_allclose(filter_tiles(model.features.c3.weight), weight / peak)
    grid = filter_grid(weight)
    assert grid.shape == (6 * 6 - 1, 16 * 6 - 1)                   # rows: input channels, columns: filters
    for o in (0, 7, 15):
        for c in (0, 5):
            numpy.testing.assert_allclose(grid[c * 6:c * 6 + 5, o * 6:o * 6 + 5], weight[o, c] / peak)
    first = filter_grid(model.features.c1.weight.data)            # one row of 6 tiles
    assert first.shape == (5, 6 * 6 - 1)
    numpy.testing.assert_allclose(first[:, 12:17], model.features.c1.weight.data[2, 0]
                                  / numpy.abs(model.features.c1.weight.data).max())


def test_filter_tiles_rgb(rng):
    weight = rng.standard_normal((4, 3, 3, 3))
    peak = numpy.abs(weight).max()
    tiles = filter_tiles(weight)
    assert tiles.shape == (4, 3, 3, 3)
    for o in range(4):
        for colour in range(3):
            numpy.testing.assert_allclose(tiles[o, :, :, colour], 0.5 + weight[o, colour] / (2 * peak))
    assert filter_grid(weight).shape == (3, 4 * 4 - 1, 3)
    assert filter_tiles(weight, rgb=False).shape == (4, 3, 3, 3)   # per channel, not colours
    numpy.testing.assert_allclose(filter_tiles(weight, rgb=False), weight / peak)
    with pytest.raises(ValueError, match="rgb=True needs 3 input channels"):
        filter_tiles(rng.standard_normal((4, 2, 3, 3)), rgb=True)
    with pytest.raises(ValueError, match=r"expected a 2-D convolution weight of shape \(O, C, kh, kw\)"):
        filter_tiles(rng.standard_normal((4, 3, 3)))
    assert (filter_tiles(numpy.zeros((2, 1, 3, 3))) == 0).all()


def test_plot_filters_draws_the_grid(model, tmp_path):
    figure = plot_filters(model, "c3", path=tmp_path / "f.png")
    weight = model.features.c3.weight.data
    numpy.testing.assert_allclose(drawn(figure.axes[0]), filter_grid(weight), rtol=1e-6)
    assert "features.c3: 16 filters 6×5×5" in figure.axes[0].get_title()
    with pytest.raises(ValueError, match="no convolution layer named 'c9'; the model's are features.c1, features.c3"):
        plot_filters(model, "c9")
    with pytest.raises(ValueError, match="has no convolution layer"):
        plot_filters(nn.Sequential(nn.Linear(2, 2)))


# ----- curves and confusion -----------------------------------------------------------------------

HISTORY = [{"epoch": 1, "loss": 0.9, "accuracy": 0.7, "val_loss": 0.5, "val_accuracy": 0.85, "lr": 0.1},
           {"epoch": 2, "loss": 0.4, "accuracy": 0.88, "val_loss": 0.35, "val_accuracy": 0.9, "lr": 0.05}]


def test_curves_read_every_run_file_and_draw_the_series(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps(HISTORY))
    assert read_history(tmp_path) == HISTORY
    assert read_history(tmp_path / "metrics.json") == HISTORY
    (tmp_path / "checkpoint.json").write_text(json.dumps({"history": HISTORY[:1]}))
    assert read_history(tmp_path / "checkpoint.json") == HISTORY[:1]
    series = curve_series(HISTORY + [{"epoch": 3, "loss": 0.3, "accuracy": 0.9, "val_loss": None}])
    numpy.testing.assert_array_equal(series["epoch"], [1, 2, 3])
    numpy.testing.assert_array_equal(series["val_loss"], [0.5, 0.35, numpy.nan])
    figure = plot_curves(tmp_path, path=tmp_path / "curves.png")
    loss_axis, accuracy_axis = figure.axes
    numpy.testing.assert_allclose(loss_axis.lines[0].get_ydata(), [0.9, 0.4])
    numpy.testing.assert_allclose(loss_axis.lines[1].get_ydata(), [0.5, 0.35])
    numpy.testing.assert_allclose(accuracy_axis.lines[1].get_ydata(), [85.0, 90.0])
    assert [line.get_label() for line in loss_axis.lines] == ["training", "validation"]
    assert (tmp_path / "curves.png").exists()
    (tmp_path / "bad.json").write_text('{"no": "history"}')
    with pytest.raises(st.FormatError, match="expected a list of per-epoch records"):
        read_history(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError, match="no metrics file"):
        read_history(tmp_path / "missing.json")


def test_confusion_rates_and_picture():
    matrix = numpy.array([[8, 2, 0], [1, 3, 0], [0, 0, 0]])
    rates = confusion_rates(matrix)
    numpy.testing.assert_allclose(rates[:2], [[0.8, 0.2, 0.0], [0.25, 0.75, 0.0]])
    assert numpy.isnan(rates[2]).all()
    figure = plot_confusion(matrix, ["a", "b", "c"])
    axis = figure.axes[0]
    numpy.testing.assert_allclose(drawn(axis), rates)
    assert sorted(t.get_text() for t in axis.texts) == ["1", "2", "3", "8"]
    assert "accuracy 78.57% on 14 images" in axis.get_title()
    with pytest.raises(ValueError, match=r"expected a square \(K, K\) confusion matrix, got shape \(2, 3\)"):
        confusion_rates(numpy.zeros((2, 3)))
    with pytest.raises(ValueError, match="3 classes in the matrix but 2 names given"):
        plot_confusion(matrix, ["a", "b"])


# ----- receptive fields ---------------------------------------------------------------------------

def test_receptive_bounds_of_lenet_by_hand(model):
    # c1 (5×5, padding 2): unit y sees y−2 … y+2.  s2 (2×2, stride 2): y sees 2y−2 … 2y+3.
    # c3 (5×5 on s2): rows of s2 y … y+4 → 2y−2 … 2(y+4)+3 = 2y+11.  s4: 4y−2 … 4y+13.
    for layer, (y, x), expected in [("c1", (0, 0), ((-2, 2), (-2, 2))), ("c1", (27, 5), ((25, 29), (3, 7))),
                                    ("s2", (3, 1), ((4, 9), (0, 5))), ("features.c3", (2, 9), ((2, 15), (16, 29))),
                                    ("s4", (4, 0), ((14, 29), (-2, 13)))]:
        assert receptive_bounds(model, (1, 28, 28), layer, (y, x)) == expected
    assert receptive_box(model, (1, 28, 28), "c3", (2, 9)) == (slice(2, 16), slice(16, 28))
    assert receptive_box(model, (1, 28, 28), "c1", (0, 0)) == (slice(0, 3), slice(0, 3))
    with pytest.raises(IndexError, match=r"position \(10, 0\) is outside the maps of layer 'c3', of size \(10, 10\)"):
        receptive_bounds(model, (1, 28, 28), "c3", (10, 0))
    with pytest.raises(ValueError, match="no layer named 'c7'"):
        receptive_bounds(model, (1, 28, 28), "c7", (0, 0))
    with pytest.raises(ValueError, match="has no spatial receptive field"):
        receptive_bounds(model, (1, 28, 28), "f5", (0,))


def test_receptive_box_is_where_the_gradient_can_reach():
    # Independent check: with positive weights and inputs, a unit's gradient with respect to the
    # input (PyTorch autograd) is non-zero exactly on the pixels of its receptive field.
    st.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.Conv2d(2, 2, 3, dilation=2, padding=1),
                        nn.AvgPool2d(2), nn.Conv2d(2, 1, 2, stride=1))
    for module in net.modules():
        if isinstance(module, (nn.Conv2d,)):
            module.weight.data[...] = numpy.abs(module.weight.data) + 0.1
    x = torch.ones((1, 1, 23, 23), dtype=torch.float64, requires_grad=True)
    out = x
    for module in net:
        if isinstance(module, nn.Conv2d):
            out = F.conv2d(out, to_torch(module.weight.data).double(), to_torch(module.bias.data).double(),
                           stride=module.stride, padding=module.padding, dilation=module.dilation)
        else:
            out = F.avg_pool2d(out, 2)
    for y, x_ in [(0, 0), (1, 2), (out.shape[2] - 1, out.shape[3] - 1)]:
        (grad,) = torch.autograd.grad(out[0, 0, y, x_], x, retain_graph=True)
        rows, cols = numpy.nonzero(grad[0, 0].numpy())
        box = receptive_box(net, (1, 23, 23), "3", (y, x_))
        assert box == (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1)), (y, x_)


def test_plot_receptive_field_draws_the_box(model, digit):
    figure = plot_receptive_field(model, digit, "c3", (4, 2, 9))
    box = figure.axes[0].patches[0]
    assert (box.get_x(), box.get_y(), box.get_width(), box.get_height()) == (16 - 0.5, 2 - 0.5, 14, 14)
    marker = figure.axes[1].patches[0]
    assert (marker.get_x(), marker.get_y()) == (9 - 0.5, 2 - 0.5)
    numpy.testing.assert_allclose(drawn(figure.axes[1]), torch_lenet_features(model, digit)[0][2][4], rtol=1e-5,
                                  atol=1e-6)
    strongest = plot_receptive_field(model, digit, "s2")            # default: the most active unit
    values = torch_lenet_features(model, digit)[0][1]
    _, y, x = numpy.unravel_index(values.argmax(), values.shape)
    assert strongest.axes[1].patches[0].get_x() == x - 0.5 and strongest.axes[1].patches[0].get_y() == y - 0.5


# ----- one unit's numbers -------------------------------------------------------------------------

def test_explain_conv_unit_with_the_real_numbers(model, digit):
    _, inputs = torch_lenet_features(model, digit)
    received = feature_maps(model, digit)[2].input                 # c3's input (s2's output), as striate computed it
    assert_close(received, inputs[2], rtol=1e-5, atol=1e-6)
    w = model.features.c3.weight.data.astype(numpy.float64)
    b = model.features.c3.bias.data.astype(numpy.float64)
    for channel, (y, x) in [(0, (0, 0)), (7, (4, 5)), (15, (9, 9))]:
        unit = explain_unit(model, digit, "c3", channel, (y, x))
        numpy.testing.assert_array_equal(unit.window, received[:, y:y + 5, x:x + 5])   # unpadded window
        numpy.testing.assert_allclose(unit.weights, w[channel])
        reference = F.conv2d(to_torch(received[None]).double(), to_torch(w), to_torch(b))[0, channel, y, x].item()
        assert unit.weighted_sum == pytest.approx(reference, rel=1e-9, abs=1e-9)
        assert unit.bias == pytest.approx(b[channel])
        assert unit.value == pytest.approx(max(reference, 0.0), abs=1e-12)
        assert unit.activation == "ReLU" and unit.kind == "conv"
        assert unit.model_value == pytest.approx(unit.value, rel=1e-5, abs=1e-5)
        assert unit.bounds == ((2 * y - 2, 2 * y + 11), (2 * x - 2, 2 * x + 11))
        assert unit.taps == [list(range(y, y + 5)), list(range(x, x + 5))]
    edge = explain_unit(model, digit, "c1", 2, (0, 1))              # reads padding: zeros
    numpy.testing.assert_array_equal(edge.window[0, :2], 0)
    numpy.testing.assert_allclose(edge.window[0, 2:, 1:], digit[0, :3, :4].astype(numpy.float64))
    assert edge.taps == [[-2, -1, 0, 1, 2], [-1, 0, 1, 2, 3]]
    assert edge.to_dict()["box"] == [[0, 2], [0, 3]]


def test_explain_unit_of_strided_dilated_grouped_reflect_conv(rng):
    st.manual_seed(1)
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2, padding_mode="reflect")
    net = nn.Sequential(conv, nn.Tanh())
    x = rng.standard_normal((4, 11, 11)).astype(numpy.float64)
    net.double()
    padded = F.pad(to_torch(x[None]), (2, 2, 2, 2), mode="reflect")
    reference = F.conv2d(padded, to_torch(conv.weight.data), to_torch(conv.bias.data), stride=2, dilation=2,
                         groups=2)
    for channel, (y, x_) in [(0, (0, 0)), (4, (2, 3)), (5, (4, 4))]:
        unit = explain_unit(net, x, "0", channel, (y, x_))
        assert unit.input_channels == ([0, 1] if channel < 3 else [2, 3])
        assert unit.weighted_sum == pytest.approx(reference[0, channel, y, x_].item(), rel=1e-12)
        assert unit.value == pytest.approx(numpy.tanh(reference[0, channel, y, x_].item()), rel=1e-12)
        assert unit.activation == "Tanh"


def test_explain_pool_units(model, digit):
    _, inputs = torch_lenet_features(model, digit)
    unit = explain_unit(model, digit, "s2", 3, (5, 6))
    numpy.testing.assert_allclose(unit.window[0], inputs[1][3, 10:12, 12:14], rtol=1e-6)
    assert unit.kind == "max" and unit.weights is None and unit.value == pytest.approx(inputs[1][3, 10:12, 12:14].max())
    net = nn.Sequential(nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
                        nn.MaxPool2d(2, padding=1), nn.AdaptiveAvgPool2d(2))
    x = numpy.arange(2 * 7 * 7, dtype=numpy.float32).reshape(2, 7, 7) / 10
    out = F.avg_pool2d(to_torch(x[None]), 3, stride=2, padding=1, count_include_pad=False)
    avg = explain_unit(net, x, "0", 1, (0, 0))
    assert avg.kind == "avg" and avg.value == pytest.approx(out[0, 1, 0, 0].item(), rel=1e-6)
    assert numpy.isnan(avg.window[0, 0]).all() and avg.taps == [[-1, 0, 1], [-1, 0, 1]]
    pooled = F.max_pool2d(out, 2, padding=1)
    adaptive = explain_unit(net, x, "2", 0, (1, 1))
    assert adaptive.kind == "adaptive_avg"
    assert adaptive.value == pytest.approx(F.adaptive_avg_pool2d(pooled, 2)[0, 0, 1, 1].item(), rel=1e-6)
    with pytest.raises(IndexError, match=r"channel must be an int in 0…5 for layer 'features.s2', got 6"):
        explain_unit(model, digit, "s2", 6, (0, 0))
    with pytest.raises(IndexError, match=r"position \(14, 0\) is outside"):
        explain_unit(model, digit, "s2", 0, (14, 0))


class _Strided(nn.Module):
    """A convolution, every second position of its output (an op the receptive-field rules leave unknown), a pool."""

    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(nn.Sequential(nn.Conv2d(1, 2, 3)), nn.Sequential(nn.Conv2d(2, 2, 3)))
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        return self.pool(self.blocks[1](self.blocks[0](x)[:, :, ::2, ::2]))


def test_labels_names_and_units_of_unknown_field():
    st.manual_seed(0)
    net = _Strided()
    x = numpy.random.default_rng(0).standard_normal((1, 12, 12)).astype(numpy.float32)
    maps = feature_maps(net, x)
    assert [m.label for m in maps] == ["blocks.0.0", "blocks.1.0", "pool"]   # "0" alone would be ambiguous
    with pytest.raises(ValueError, match=r"layer name '0' is ambiguous: it could be blocks.0.0, blocks.1.0"):
        explain_unit(net, x, "0", 0, (0, 0))
    unit = explain_unit(net, x, "1.0", 1, (1, 2))                   # a dotted suffix names it
    assert unit.layer == "blocks.1.0" and unit.bounds is None and unit.box is None
    assert unit.to_dict()["bounds"] is None
    assert unit.weighted_sum == pytest.approx(unit.model_value, rel=1e-5, abs=1e-6)
    assert explain_unit(net, x, "blocks.0.0", 0, (0, 0)).bounds == ((0, 2), (0, 2))
    with pytest.raises(ValueError, match="has no spatial receptive field"):
        plot_receptive_field(net, x, "pool")


def test_train_skips_the_curves_without_matplotlib(tmp_path, monkeypatch, capsys):
    from striate.viz.cli import write_run_curves
    (tmp_path / "metrics.json").write_text(json.dumps(HISTORY))
    monkeypatch.setitem(sys.modules, "matplotlib", None)           # as if the viz extra were not installed
    assert write_run_curves(tmp_path) is None
    assert capsys.readouterr().out == "curves: not drawn (pip install 'striate[viz]' to get curves.png)\n"
    assert not (tmp_path / "curves.png").exists()


# ----- saliency and kernels -----------------------------------------------------------------------

def test_saliency_is_the_input_gradient_of_the_class_score(model, digit):
    w = {k: to_torch(v) for k, v in model.state_dict().items()}
    t = to_torch(digit[None], requires_grad=True)
    c = F.max_pool2d(F.relu(F.conv2d(t, w["features.c1.weight"], w["features.c1.bias"], padding=2)), 2)
    c = F.max_pool2d(F.relu(F.conv2d(c, w["features.c3.weight"], w["features.c3.bias"])), 2).flatten(1)
    c = F.relu(F.linear(c, w["classifier.f5.weight"], w["classifier.f5.bias"]))
    c = F.relu(F.linear(c, w["classifier.f6.weight"], w["classifier.f6.bias"]))
    logits = F.linear(c, w["classifier.output.weight"], w["classifier.output.bias"])
    for target in (3, int(logits.argmax())):
        (expected,) = torch.autograd.grad(logits[0, target], t, retain_graph=True)
        grad = saliency_map(model, digit, target)
        assert grad.shape == (1, 28, 28) and grad.dtype == numpy.float32
        assert_close(grad, expected[0], rtol=1e-4, atol=1e-6)
    numpy.testing.assert_array_equal(saliency_map(model, digit), saliency_map(model, digit, int(logits.argmax())))
    assert all(p.grad is None for p in model.parameters()) and all(p.requires_grad for p in model.parameters())
    with pytest.raises(IndexError, match=r"target must be a class index in 0…9, got 10"):
        saliency_map(model, digit, 10)


def test_saliency_against_finite_differences(digit):
    st.manual_seed(3)
    net = lenet5().double()
    x = digit.astype(numpy.float64)
    grad = saliency_map(net, x, 4)
    assert grad.dtype == numpy.float64

    def score(image):
        with st.no_grad():
            return net.eval()(st.tensor(image[None])).data[0, 4]
    for i, j in [(6, 14), (12, 13), (20, 15), (3, 3)]:
        step = numpy.zeros_like(x)
        step[0, i, j] = 1e-6
        assert grad[0, i, j] == pytest.approx((score(x + step) - score(x - step)) / 2e-6, rel=1e-5, abs=1e-9)


def test_plot_saliency_draws_the_gradient_magnitude(model, digit):
    figure = plot_saliency(model, digit, 7, classes=[f"c{i}" for i in range(10)])
    numpy.testing.assert_allclose(drawn(figure.axes[1]), numpy.abs(saliency_map(model, digit, 7))[0], rtol=1e-6)
    assert "c7" in figure.axes[1].get_title()


def test_kernel_responses_match_scipy(digit):
    ndimage = pytest.importorskip("scipy.ndimage")
    image = digit[0].astype(numpy.float64)
    for name, kernel, response in kernel_responses(image, ("sobel_x", "laplacian", "gaussian")):
        # scipy.ndimage.correlate centres odd kernels; "constant" is the zero padding of mode="same".
        numpy.testing.assert_allclose(response, ndimage.correlate(image, kernel, mode="constant"), atol=1e-12)
    (_, sobel, _), = kernel_responses(image, ("sobel_x",))
    numpy.testing.assert_array_equal(sobel, [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    with pytest.raises(ValueError, match="unknown kernel 'edge'; choose from sobel_x"):
        kernel_responses(image, ("edge",))


def test_learned_responses_and_plot_kernels(model, digit):
    name, weight, responses = learned_responses(model, digit)
    w = model.features.c1
    assert name == "features.c1"
    expected = F.conv2d(to_torch(digit[None]), to_torch(w.weight.data), to_torch(w.bias.data), padding=2)[0]
    assert_close(responses, expected, rtol=1e-5, atol=1e-5)
    figure = plot_kernels(model, digit, ("sobel_x", "laplacian"), max_filters=3)
    titled = [axis.get_title() for axis in figure.axes if axis.get_title()]
    assert titled == ["input", "sobel_x", "laplacian", "c1[0]", "c1[1]", "c1[2]"]


def test_import_striate_stays_numpy_only():
    code = ("import sys, striate, striate.viz, striate.viz.explore.app; "
            "print(sorted(m for m in ('matplotlib', 'PIL', 'torch') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# ----- the command line ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """LeNet-5 trained for one epoch on 300 of the embedded digits (a few seconds)."""
    out = tmp_path_factory.mktemp("viz-run")
    assert main(["train", "--subset", "300", "--epochs", "1", "--batch-size", "30", "--out", str(out)]) == 0
    return out


def test_train_writes_curves_png(tiny_run):
    assert (tiny_run / "curves.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("argv", [
    ["features", "{run}", "test:3", "--max-channels", "4"],
    ["filters", "{run}", "--layer", "c3"],
    ["curves", "{run}"],
    ["receptive-field", "{run}", "{image}", "--layer", "c3", "--unit", "1,2,3"],
    ["saliency", "{run}", "test:0", "--target", "2"],
    ["kernels", "{run}", "{image}", "--kernels", "sobel_y,box"],
])
def test_show_writes_each_picture(tiny_run, tmp_path, capsys, argv):
    from PIL import Image
    image = tmp_path / "seven.png"
    picture = numpy.full((40, 40), 255, numpy.uint8)
    picture[8:12, 10:30] = 0
    picture[12:34, 24:28] = 0
    Image.fromarray(picture).save(image)
    out = tmp_path / "out.png"
    status, stdout, err = run_cli(capsys, "show", *[a.format(run=tiny_run, image=image) for a in argv], "-o", out)
    assert status == 0, err
    assert stdout == f"wrote {out}\n"
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_show_confusion(tiny_run, tmp_path, capsys):
    out = tmp_path / "confusion.png"
    status, _, err = run_cli(capsys, "show", "confusion", tiny_run, "-o", out, "--batch-size", "1000")
    assert status == 0, err
    assert out.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("argv, status, message", [
    (["show", "receptive-field", "{run}", "test:0", "--unit", "1,2"], 2, "expected CHANNEL,Y,X"),
    (["show", "features", "{run}", "test:99999"], 1, "test:99999: the test split of sample has images 0…1999"),
    (["show", "features", "{run}", "{tmp}/none.png"], 1, "no image at"),
    (["show", "features", "{run}", "{tmp}/notes.txt"], 1, "cannot read image"),
    (["show", "filters", "{run}", "--layer", "zz"], 1, "no convolution layer named 'zz'"),
    (["show", "curves", "{tmp}"], 1, "no metrics.json or checkpoint.json"),
    (["show", "receptive-field", "{run}", "test:0", "--layer", "f5"], 1, "has no spatial receptive field"),
])
def test_show_errors_are_one_line(tiny_run, tmp_path, capsys, argv, status, message):
    (tmp_path / "notes.txt").write_text("not an image")
    code, _, err = run_cli(capsys, *[a.format(run=tiny_run, tmp=tmp_path) for a in argv])
    assert code == status
    assert len(err.strip().splitlines()) == 1 and message in err, err


def test_show_without_a_picture_prints_help(capsys):
    status, _, err = run_cli(capsys, "show")
    assert status == 2 and "features" in err and "receptive-field" in err
