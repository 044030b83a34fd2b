"""striate.summary: parameter and mult-add arithmetic against independent counts (and PyTorch), receptive
fields against the gradient of one unit, functional calls and branches as rows, the ``striate summary`` command."""
import inspect
import math
import subprocess
import sys

import numpy
import pytest
import torch

import striate as st
from cli_run import run_cli
from striate import models, nn
from striate.autograd import function as autograd_function
from striate.nn import functional as F
from striate.tools.summary import summary

# ----- architectures written once against a PyTorch-like namespace, built in striate and in torch --------

VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def vgg(lib, cfg, batch_norm=False, num_classes=1000, pool=7, width=4096):
    layers, channels = [], 3
    for v in cfg:
        if v == "M":
            layers.append(lib.MaxPool2d(2))
            continue
        layers.append(lib.Conv2d(channels, v, 3, padding=1))
        layers += [lib.BatchNorm2d(v), lib.ReLU()] if batch_norm else [lib.ReLU()]
        channels = v
    return lib.Sequential(
        lib.Sequential(*layers), lib.AdaptiveAvgPool2d(pool), lib.Flatten(),
        lib.Linear(channels * pool * pool, width), lib.ReLU(), lib.Dropout(),
        lib.Linear(width, width), lib.ReLU(), lib.Dropout(), lib.Linear(width, num_classes))


def alexnet(lib, num_classes=1000):
    return lib.Sequential(
        lib.Conv2d(3, 64, 11, stride=4, padding=2), lib.ReLU(), lib.MaxPool2d(3, 2),
        lib.Conv2d(64, 192, 5, padding=2), lib.ReLU(), lib.MaxPool2d(3, 2),
        lib.Conv2d(192, 384, 3, padding=1), lib.ReLU(), lib.Conv2d(384, 256, 3, padding=1), lib.ReLU(),
        lib.Conv2d(256, 256, 3, padding=1), lib.ReLU(), lib.MaxPool2d(3, 2), lib.AdaptiveAvgPool2d(6),
        lib.Flatten(), lib.Dropout(), lib.Linear(256 * 36, 4096), lib.ReLU(), lib.Dropout(),
        lib.Linear(4096, 4096), lib.ReLU(), lib.Linear(4096, num_classes))


def resnet(lib, functional, blocks=(2, 2, 2, 2), widths=(64, 128, 256, 512), num_classes=1000, stem=True):
    """torchvision's ResNet-18 layout (BasicBlock, residual ``out + identity`` in forward)."""

    class BasicBlock(lib.Module):
        def __init__(self, c_in, c_out, stride):
            super().__init__()
            self.conv1 = lib.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
            self.bn1 = lib.BatchNorm2d(c_out)
            self.conv2 = lib.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
            self.bn2 = lib.BatchNorm2d(c_out)
            self.downsample = None
            if stride != 1 or c_in != c_out:
                self.downsample = lib.Sequential(lib.Conv2d(c_in, c_out, 1, stride, bias=False),
                                                 lib.BatchNorm2d(c_out))

        def forward(self, x):
            out = functional.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            identity = x if self.downsample is None else self.downsample(x)
            return functional.relu(out + identity)

    class ResNet(lib.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = lib.Conv2d(3, widths[0], 7, 2, 3, bias=False) if stem else lib.Conv2d(3, widths[0], 3, 1, 1,
                                                                                               bias=False)
            self.bn1 = lib.BatchNorm2d(widths[0])
            self.stem = stem
            stages, c_in = [], widths[0]
            for index, (count, width) in enumerate(zip(blocks, widths)):
                stride = 1 if index == 0 else 2
                stages.append(lib.Sequential(*[BasicBlock(c_in if i == 0 else width, width, stride if i == 0 else 1)
                                               for i in range(count)]))
                c_in = width
            self.layer1, self.layer2, self.layer3, self.layer4 = (stages + [lib.Identity()] * 4)[:4]
            self.fc = lib.Linear(c_in, num_classes)

        def forward(self, x):
            x = functional.relu(self.bn1(self.conv1(x)))
            if self.stem:
                x = functional.max_pool2d(x, 3, 2, 1)
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            x = functional.adaptive_avg_pool2d(x, 1).flatten(1)
            return self.fc(x)

    return ResNet()


def torch_count(build):
    with torch.device("meta"):   # shapes only: nothing allocated or initialised
        model = build(torch.nn)
    return model, sum(p.numel() for p in model.parameters())


def count(model):
    return sum(p.numel() for p in model.parameters())


# ----- parameters -----------------------------------------------------------------------------------------

def test_lenet5_at_32_has_61706_parameters_and_423038_mult_adds():
    s = st.summary(models.lenet5(input_size=32), (1, 32, 32))
    assert (s.total_params, s.trainable_params, s.non_trainable_params) == (61_706, 61_706, 0)
    assert s.total_mult_adds == 423_038
    by_name = {row.name: row for row in s.rows}
    # Hand arithmetic: one mult-add per weight or bias use at every output position.
    assert by_name["features.c1"].arithmetic == "(5·5·1 + 1)·6 = 156"
    assert by_name["features.c1"].mult_adds == 28 * 28 * 6 * (25 + 1) == 122_304
    assert by_name["features.c3"].arithmetic == "(5·5·6 + 1)·16 = 2,416"
    assert by_name["features.c3"].mult_adds == 10 * 10 * 16 * (150 + 1) == 241_600
    assert by_name["classifier.f5"].arithmetic == "(400 + 1)·120 = 48,120"
    assert by_name["classifier.f5"].mult_adds == 48_120
    assert by_name["classifier.f6"].mult_adds == 10_164 and by_name["classifier.output"].mult_adds == 850
    assert by_name["features.c1"].output_shape == (1, 6, 28, 28)
    assert by_name["classifier.flatten"].output_shape == (1, 400)
    text = str(s)
    assert "61,706" in text and "423,038" in text and "(5·5·1 + 1)·6 = 156" in text
    assert "MB = 10^6 bytes" in text


def test_memory_totals():
    s = st.summary(models.lenet5(input_size=32), (1, 32, 32), batch_size=3)
    assert s.input_shape == (3, 1, 32, 32)
    assert s.input_bytes == 3 * 32 * 32 * 4
    assert s.param_bytes == 61_706 * 4
    outputs = [(3, 6, 28, 28), (3, 6, 28, 28), (3, 6, 14, 14), (3, 16, 10, 10), (3, 16, 10, 10), (3, 16, 5, 5),
               (3, 400), (3, 120), (3, 120), (3, 84), (3, 84), (3, 10)]
    assert s.activation_bytes == 4 * sum(math.prod(shape) for shape in outputs)
    assert s.total_bytes == s.input_bytes + s.activation_bytes + s.param_bytes
    assert s.total_mult_adds == 3 * 423_038
    s64 = st.summary(models.lenet5().double(), (1, 28, 28), dtype=st.float64)
    assert (s64.input_bytes, s64.param_bytes) == (28 * 28 * 8, 61_706 * 8)
    assert s64.rows[2].activation_bytes == 6 * 28 * 28 * 8


def _builtin_input(name):
    """A small input the registered model ``name`` takes, from its builder's defaults."""
    defaults = {k: p.default for k, p in inspect.signature(models.model_entry(name).builder).parameters.items()}
    if "input_size" in defaults:
        return [(defaults.get("in_channels", 1), defaults["input_size"], defaults["input_size"])]
    if "in_features" in defaults:
        return [(defaults["in_features"],)]
    channels = defaults.get("in_channels", 3)
    # Images first; then a signal and a volume for the 1-D and 3-D models (cnn1d, cnn3d).
    return [(channels, 32, 32), (channels, 64, 64), (channels, 224, 224), (channels, 64), (channels, 8, 8, 8)]


@pytest.mark.parametrize("name", models.list_models())
def test_totals_equal_parameter_sizes_for_every_registered_model(name):
    model = models.get_model(name)
    for size in _builtin_input(name):
        try:
            s = st.summary(model, size)
            break
        except ValueError:   # too small for this architecture: try the next size
            continue
    else:
        pytest.fail(f"no input size fits {name}")
    assert s.total_params == count(model)
    assert s.trainable_params == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert sum(row.params for row in s.rows) == count(model)


@pytest.mark.parametrize("build, expected", [
    (lambda lib: vgg(lib, VGG16), 138_357_544),
    (lambda lib: alexnet(lib), 61_100_840),
    (lambda lib: resnet(lib, torch.nn.functional if lib is torch.nn else F), 11_689_512),
    (lambda lib: vgg(lib, [8, "M", 16, 16, "M"], batch_norm=True, num_classes=10, pool=2, width=32), None),
], ids=["vgg16", "alexnet", "resnet18", "small-vgg-bn"])
def test_totals_and_rows_match_the_same_architecture_in_torch(build, expected):
    torch_model, torch_total = torch_count(build)
    if expected is not None:
        assert torch_total == expected
    model = build(nn)
    s = st.summary(model, (3, 64, 64))
    assert s.total_params == torch_total == count(model)
    # Every module's row holds what torch counts for that module's own parameters.
    torch_modules = dict(torch_model.named_modules())
    rows = [row for row in s.rows if not row.function and not row.shared]
    assert len(rows) == len(torch_modules)
    for row in rows:
        own = sum(p.numel() for p in torch_modules[row.name].parameters(recurse=False))
        assert row.params == own, row.name


def test_batch_norm_without_affine_and_frozen_parameters():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4, affine=False), nn.Linear(6, 5))
    model[2].weight.requires_grad_(False)
    s = st.summary(model, (3, 8, 8))
    assert s.total_params == 3 * 4 * 9 + 30 + 5
    assert s.trainable_params == 3 * 4 * 9 + 5 and s.non_trainable_params == 30
    assert [row.arithmetic for row in s.rows[1:]] == ["3·3·3·4 = 108", "", "(6 + 1)·5 = 35"]
    bn = nn.BatchNorm2d(16)
    assert st.summary(bn, (16, 2, 2)).rows[0].arithmetic == "2·16 = 32"


def test_custom_module_parameters_show_their_shapes():
    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.gain = nn.Parameter(st.ones(3, 1, 1))
            self.offset = nn.Parameter(st.zeros(()))

        def forward(self, x):
            return x * self.gain + self.offset

    s = st.summary(Scale(), (3, 4, 4))
    assert s.rows[0].arithmetic == "3·1·1 + 1 = 4"
    assert [row.kind for row in s.rows[1:]] == ["mul", "add"]
    assert s.total_params == 4


# ----- mult-adds ------------------------------------------------------------------------------------------

def _expected_mult_adds(module, output_shape):
    """Multiply-adds from shapes alone: every output element uses C_in/groups·∏k weights (+ 1 bias)."""
    out = math.prod(output_shape)
    bias = module.bias is not None
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return out * (module.in_channels // module.groups * math.prod(module.kernel_size) + bias)
    return out * (module.in_features + bias)


@pytest.mark.parametrize("build, size", [
    (lambda: models.lenet5(), (1, 28, 28)),
    (lambda: vgg(nn, [8, "M", 16, 16, "M"], batch_norm=True, num_classes=10, pool=2, width=32), (3, 20, 20)),
    (lambda: resnet(nn, F, blocks=(1, 1), widths=(8, 16), num_classes=10, stem=False), (3, 16, 16)),
    (lambda: nn.Sequential(nn.Conv2d(4, 8, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2),
                           nn.Conv2d(8, 8, 3, groups=8, bias=False)), (4, 15, 13)),
    (lambda: nn.Sequential(nn.Conv1d(2, 3, 4, stride=3), nn.Identity()), (2, 30)),
    (lambda: nn.Sequential(nn.Conv3d(2, 3, (1, 2, 3), padding="same"), nn.Linear(7, 4)), (2, 5, 6, 7)),
], ids=["lenet5", "small-vgg-bn", "resnet", "grouped-dilated", "conv1d", "conv3d-linear"])
def test_mult_adds_of_conv_and_linear_equal_an_independent_count(build, size):
    model = build()
    s = st.summary(model, size, batch_size=2)
    modules = dict(model.named_modules())
    counted = 0
    for row in s.rows:
        if row.kind in ("Conv1d", "Conv2d", "Conv3d", "Linear"):
            assert row.mult_adds == _expected_mult_adds(modules[row.name], row.output_shape), row.name
            counted += 1
        elif row.kind.startswith("BatchNorm"):
            assert row.mult_adds == math.prod(row.output_shape)
        elif not row.container:
            assert row.mult_adds == 0, row.kind
    assert counted > 0
    assert s.total_mult_adds == sum(row.mult_adds for row in s.rows if not row.container)


def test_functional_conv_and_linear_count_too():
    weight, bias = st.randn(4, 3, 3, 3), st.randn(4)

    class Net(nn.Module):
        def forward(self, x):
            y = F.conv2d(x, weight, bias, stride=2)                      # (N, 4, 4, 4)
            return F.linear(y.flatten(1), st.randn(5, 64))               # (N, 5)

    s = st.summary(Net(), (3, 9, 9), batch_size=2)
    kinds = [row.kind for row in s.rows]
    assert kinds == ["Net", "F.conv2d", "reshape", "F.linear"]
    assert s.rows[1].mult_adds == 2 * 4 * 4 * 4 * (3 * 9 + 1)
    assert s.rows[3].mult_adds == 2 * 5 * 64
    assert s.total_mult_adds == s.rows[1].mult_adds + s.rows[3].mult_adds


# ----- receptive fields -----------------------------------------------------------------------------------

def test_three_by_three_stack_grows_by_two_and_stride_two_doubles_the_jump():
    s = st.summary(nn.Sequential(nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3)), (1, 16, 16))
    assert [row.receptive_field for row in s.rows[1:]] == [(3, 3), (5, 5), (7, 7)]
    assert [row.jump for row in s.rows[1:]] == [(1, 1)] * 3
    assert [row.start for row in s.rows[1:]] == [(1, 1), (2, 2), (3, 3)]
    s = st.summary(nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, stride=2, padding=1),
                                 nn.Conv2d(1, 1, 3, padding=1), nn.MaxPool2d(2)), (1, 16, 16))
    assert [row.receptive_field[0] for row in s.rows[1:]] == [3, 5, 9, 11]
    assert [row.jump[0] for row in s.rows[1:]] == [1, 2, 2, 4]
    assert [row.start[0] for row in s.rows[1:]] == [0, 0, 0, 1]
    assert s.rows[0].receptive_field == (11, 11)


def test_vgg16_receptive_fields_are_the_known_ones():
    # conv5_3 of VGG-16 sees 196×196 pixels, pool5 212×212 (jump 32).
    layers, channels = [], 3
    for v in VGG16:
        layers.append(nn.MaxPool2d(2) if v == "M" else nn.Conv2d(channels, 2, 3, padding=1))
        channels = channels if v == "M" else 2
    s = st.summary(nn.Sequential(*layers), (3, 64, 64))
    assert s.rows[-2].receptive_field == (196, 196)
    assert (s.rows[-1].receptive_field, s.rows[-1].jump, s.rows[-1].start) == ((212, 212), (32, 32), (15.5, 15.5))


def test_per_dimension_values_become_tuples():
    s = st.summary(nn.Conv2d(1, 1, (3, 5), stride=(1, 2), padding=(0, 1)), (1, 10, 10))
    row = s.rows[0]
    assert (row.receptive_field, row.jump, row.start) == ((3, 5), (1, 2), (1, 1))
    line = str(s).splitlines()[4]
    assert "(3, 5)" in line and "(1, 2)" in line


def _constant_weights(model, value=0.05):
    for p in model.parameters():
        p.data[...] = value
    return model


def measured_field(model, size, unit):
    """Extent and centre, per spatial dimension, of the input positions whose gradient is non-zero when
    backpropagating from output ``unit`` of channel 0 (positive weights and input: nothing cancels)."""
    x = st.tensor(numpy.ones((1,) + size), requires_grad=True)
    y = model.eval()(x)   # batch norm with running statistics: position-wise
    y[(0, 0) + tuple(unit)].backward()
    touched = numpy.abs(x.grad.numpy()[0]).sum(axis=0) > 0             # (*D)
    extents, centres = [], []
    for d in range(touched.ndim):
        axis = touched.any(axis=tuple(a for a in range(touched.ndim) if a != d))
        where = numpy.flatnonzero(axis)
        extents.append(int(where[-1] - where[0] + 1))
        centres.append((where[0] + where[-1]) / 2)
    return tuple(extents), tuple(centres)


def assert_field_measured(model, size):
    """The table's last row must describe the field of an interior unit exactly."""
    model = _constant_weights(model).double()
    s = st.summary(model, size, dtype=st.float64)
    last = s.rows[0]
    rf, jump, start = last.receptive_field, last.jump, last.start
    unit = []
    for r, j, c, d, o in zip(rf, jump, start, size[1:], last.output_shape[2:]):
        first = max(0, math.ceil(((r - 1) / 2 - c) / j))               # first unit whose field is inside
        assert first < o and c + first * j + (r - 1) / 2 <= d - 1, "test input too small for the field"
        unit.append(first)
    extents, centres = measured_field(model, size, unit)
    assert extents == rf
    assert centres == tuple(c + u * j for c, u, j in zip(start, unit, jump))
    return s


def test_receptive_field_of_random_stacks_equals_the_measured_one():
    rng = numpy.random.default_rng(7)
    for _ in range(12):
        layers, channels = [], 1
        for _ in range(rng.integers(1, 5)):
            kernel = tuple(int(k) for k in rng.integers(1, 5, size=2))
            stride = tuple(int(s) for s in rng.integers(1, 3, size=2))
            if rng.random() < 0.7:
                dilation = tuple(int(d) for d in rng.integers(1, 3, size=2))
                padding = tuple(int(rng.integers(0, k)) for k in kernel)
                layers.append(nn.Conv2d(channels, 2, kernel, stride=stride, padding=padding, dilation=dilation))
                channels = 2
            else:
                padding = tuple(int(rng.integers(0, k // 2 + 1)) for k in kernel)
                layers.append(nn.AvgPool2d(kernel, stride=stride, padding=padding))
            if rng.random() < 0.5:
                layers.append(nn.ReLU())
        assert_field_measured(nn.Sequential(*layers), (1, 72, 72))


@pytest.mark.parametrize("build, size", [
    (lambda: nn.Sequential(nn.Conv1d(1, 2, 4, stride=2, padding=3), nn.Conv1d(2, 2, 3, dilation=3),
                           nn.AvgPool1d(2)), (1, 60)),
    (lambda: nn.Sequential(nn.Conv3d(1, 2, (3, 1, 2), stride=(1, 2, 1)), nn.Conv3d(2, 2, 2, padding="same"),
                           nn.AvgPool3d((1, 2, 2))), (1, 12, 14, 16)),
    (lambda: nn.Sequential(nn.Conv2d(1, 2, 4, padding="same"), nn.Conv2d(2, 2, 3, stride=2, padding="same"),
                           nn.Conv2d(2, 2, 2, padding=1, padding_mode="reflect")), (1, 30, 30)),
    (lambda: resnet(nn, F, blocks=(1, 1), widths=(2, 2), num_classes=2, stem=False).layer2, (2, 20, 20)),
], ids=["1d", "3d", "same-even-kernels-and-reflect", "residual-block"])
def test_receptive_field_matches_measurement_in_every_rank(build, size):
    assert_field_measured(build(), size)


def test_merge_of_branches_with_different_centres_is_their_union():
    class TwoBranches(nn.Module):
        def __init__(self):
            super().__init__()
            self.wide = nn.Conv1d(1, 1, 5)                       # unit o sees o … o+4
            self.narrow = nn.Conv1d(1, 1, 3)                     # after the crop: o+3 … o+5

        def forward(self, x):
            return self.wide(F.pad(x, (0, -1))) + self.narrow(F.pad(x, (-3, 0)))

    s = assert_field_measured(TwoBranches(), (1, 20))
    rows = {row.kind: row for row in s.rows}
    assert rows["add"].receptive_field == (6,)                   # o … o+5: more than either branch
    assert rows["add"].start == (2.5,)
    assert [row.kind for row in s.rows] == ["TwoBranches", "F.pad", "Conv1d", "F.pad", "Conv1d", "add"]


def test_residual_merge_takes_the_larger_branch():
    block = resnet(nn, F, blocks=(1, 1), widths=(4, 8), num_classes=2, stem=False).layer2[0]
    s = st.summary(block, (4, 16, 16))
    rows = {row.name: row for row in s.rows}
    assert rows["conv1"].receptive_field == (3, 3) and rows["conv1"].jump == (2, 2)
    assert rows["conv2"].receptive_field == (7, 7)
    assert rows["downsample"].receptive_field == (1, 1)
    assert rows["add"].receptive_field == (7, 7) and rows["add"].jump == (2, 2)
    assert rows["add"].input_shape == (1, 8, 8, 8)
    assert s.total_params == count(block)


def test_max_and_adaptive_pooling_fields():
    # Functional and module pooling agree; max pooling has the windows' geometry (as average pooling).
    class Functional(nn.Module):
        def forward(self, x):
            x = F.max_pool2d(x, 3, stride=2, padding=1)
            x = F.avg_pool2d(x, 2, ceil_mode=True)
            return F.adaptive_max_pool2d(x, 2)

    modules = nn.Sequential(nn.MaxPool2d(3, stride=2, padding=1), nn.AvgPool2d(2, ceil_mode=True),
                            nn.AdaptiveMaxPool2d(2))
    functional = st.summary(Functional(), (1, 16, 16)).rows[1:]
    by_module = st.summary(modules, (1, 16, 16)).rows[1:]
    assert [row.kind for row in functional] == ["F.max_pool2d", "F.avg_pool2d", "F.adaptive_max_pool2d"]
    for a, b in zip(functional, by_module):
        assert (a.receptive_field, a.jump, a.start, a.output_shape) == (b.receptive_field, b.jump, b.start,
                                                                         b.output_shape)
    # 3×3/2 pad 1: rf 3, jump 2, start 0; 2×2/2: rf 5, jump 4, start 1; adaptive 4 → 2: window 2 of jump 4.
    assert [row.receptive_field[0] for row in functional] == [3, 5, 9]
    assert [row.jump[0] for row in functional] == [2, 4, 8]
    assert [row.start[0] for row in functional] == [0, 1, 3]
    # Global average pooling: every position, rf + (D − 1)·jump.
    s = st.summary(nn.Sequential(nn.Conv2d(1, 1, 3, stride=2), nn.AdaptiveAvgPool2d(1), nn.Flatten()), (1, 9, 9))
    assert s.rows[2].receptive_field == (3 + 3 * 2,) * 2 and s.rows[2].start == (4, 4)
    assert s.rows[3].jump is None and s.rows[3].receptive_field == (9, 9)
    # Uneven adaptive bins (5 → 3: [0, 2), [1, 4), [3, 5)): the longest bin, the mean step.
    row = st.summary(nn.AdaptiveAvgPool1d(3), (1, 5)).rows[0]
    assert (row.receptive_field, row.jump, row.start) == ((3,), (1.5,), (0.5,))


def test_flatten_gathers_the_whole_field_and_unknown_layouts_say_so():
    s = st.summary(models.lenet5(), (1, 28, 28))
    rows = {row.name: row for row in s.rows}
    assert rows["features.s4"].receptive_field == (16, 16) and rows["features.s4"].jump == (4, 4)
    assert rows["classifier.flatten"].receptive_field == (16 + 4 * 4,) * 2
    assert rows["classifier.flatten"].jump is None

    class Transposed(nn.Module):
        def forward(self, x):
            return F.relu(x.permute(0, 1, 3, 2))

    s = st.summary(Transposed(), (1, 4, 4))
    assert s.rows[1].receptive_field is None and "?" in str(s).splitlines()[4]
    assert st.summary(models.mlp(), (784,)).rows[-1].receptive_field is None   # no spatial dimensions


# ----- rows: functional calls, branches, sharing ----------------------------------------------------------

def test_functional_calls_are_rows_under_the_module_that_made_them():
    model = resnet(nn, F, blocks=(1, 1), widths=(4, 8), num_classes=10)
    s = st.summary(model, (3, 32, 32))
    kinds = [(row.depth, row.kind) for row in s.rows]
    assert kinds[:5] == [(0, "ResNet"), (1, "Conv2d"), (1, "BatchNorm2d"), (1, "F.relu"), (1, "F.max_pool2d")]
    block = [row for row in s.rows if row.name.startswith("layer2.0")]
    assert [row.kind for row in block] == ["BasicBlock", "Conv2d", "BatchNorm2d", "F.relu", "Conv2d", "BatchNorm2d",
                                           "Sequential", "Conv2d", "BatchNorm2d", "add", "F.relu"]
    assert [row.depth for row in block] == [2, 3, 3, 3, 3, 3, 3, 4, 4, 3, 3]
    assert block[-2].name == "layer2.0.add" and block[-2].output_shape == (1, 8, 4, 4)
    assert block[0].container and block[0].nested_params == sum(row.params for row in block[1:])
    assert s.rows[-1].kind == "Linear" and s.rows[-3].kind == "F.adaptive_avg_pool2d"
    assert s.total_params == count(model)
    text = str(s)
    assert "      add" in text and "  F.max_pool2d" in text


def test_a_module_called_twice_gets_two_rows_and_its_parameters_once():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 3, padding=1)

        def forward(self, x):
            return self.conv(self.conv(x))

    s = st.summary(Twice(), (2, 8, 8))
    assert [(row.kind, row.params, row.shared) for row in s.rows[1:]] == [("Conv2d", 38, False), ("Conv2d", 0, True)]
    assert s.total_params == 38
    assert s.total_mult_adds == 2 * 2 * 8 * 8 * (2 * 9 + 1)
    assert [row.receptive_field for row in s.rows[1:]] == [(3, 3), (5, 5)]


def test_uncalled_modules_are_counted_in_the_totals_and_mentioned():
    class Spare(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.unused = nn.Linear(4, 4), nn.Linear(4, 3)

        def forward(self, x):
            return self.used(x)

    s = st.summary(Spare(), (4,))
    assert s.total_params == 20 + 15
    assert "15 in modules the forward pass did not call" in str(s)


# ----- running the model ----------------------------------------------------------------------------------

def test_modes_are_restored_and_nothing_is_left_behind():
    model = resnet(nn, F, blocks=(1,), widths=(4,), num_classes=3, stem=False)
    model.train()
    model.layer1.eval()
    before = {name: m.training for name, m in model.named_modules()}
    state = {k: numpy.array(v) for k, v in model.state_dict().items()}
    st.summary(model, (3, 8, 8))
    assert {name: m.training for name, m in model.named_modules()} == before
    # Evaluation mode: batch norm's running statistics were not updated.
    assert all(numpy.array_equal(state[k], numpy.asarray(v)) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert autograd_function._tracers == []
    assert st.is_grad_enabled()
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_a_failing_forward_says_which_input_and_cleans_up():
    model = models.lenet5(input_size=32)
    model.train()
    with pytest.raises(ValueError, match=r"summary: running LeNet5 on an input of shape \(1, 1, 28, 28\) failed"):
        st.summary(model, (1, 28, 28))
    assert autograd_function._tracers == []
    assert all(m.training for m in model.modules())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"input_size": ()}, ValueError, r"summary: input_size must be a tuple of positive ints"),
    ({"input_size": (1, 0, 28)}, ValueError, r"got \(1, 0, 28\)"),
    ({"input_size": "1x28x28"}, ValueError, r"input_size must be a tuple"),
    ({"input_size": (1, 28.0, 28)}, ValueError, r"input_size must be a tuple"),
    ({"input_size": (1, 28, 28), "batch_size": 0}, ValueError, r"batch_size must be a positive int, got 0"),
    ({"input_size": (1, 28, 28), "dtype": st.int64}, TypeError, r"dtype must be a floating-point dtype"),
])
def test_bad_arguments(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        st.summary(models.lenet5(), **kwargs)


def test_model_must_be_a_module():
    with pytest.raises(TypeError, match="summary: model must be an nn.Module, got function"):
        st.summary(lambda x: x, (1, 2))


def test_summary_is_loaded_lazily():
    code = ("import sys, striate; assert 'striate.tools.summary' not in sys.modules; "
            "f = striate.summary; assert 'striate.tools.summary' in sys.modules; "
            "assert f is sys.modules['striate.tools.summary'].summary; "
            "import pytest; pytest.raises(AttributeError, lambda: striate.no_such_thing)")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert st.summary is summary


# ----- the command ----------------------------------------------------------------------------------------

def test_cli_prints_the_table(capsys):
    status, out, err = run_cli(capsys, "summary", "lenet5", "--input", "1x32x32")
    assert status == 0 and err == ""
    assert "LeNet5 on input [1, 1, 32, 32]" in out
    assert "Total parameters: 61,706" in out and "Total mult-adds: 423,038" in out
    status, out, _ = run_cli(capsys, "summary", "lenet5", "--batch-size", "2")
    assert status == 0 and "[2, 1, 28, 28]" in out


@pytest.mark.parametrize("name, header, total", [
    ("resnet20", "CifarResNet on input [1, 3, 32, 32]", "269,722"),   # He et al.'s CIFAR input
    ("cnn1d", "CNN1d on input [1, 1, 256]", "36,778"),                 # a signal
    ("cnn3d", "CNN3d on input [1, 1, 8, 16, 16]", "70,426"),           # a volume
])
def test_cli_uses_the_models_usual_input_without_input(capsys, name, header, total):
    status, out, err = run_cli(capsys, "summary", name)
    assert status == 0 and err == "" and header in out and f"Total parameters: {total}" in out


@pytest.mark.parametrize("value, pattern", [
    ("1x0x28", "argument --input: expected the input's shape"),
    ("abc", "argument --input: expected the input's shape"),
    ("", "argument --input: expected the input's shape"),
    ("1x64x64", "lenet5 cannot take --input 1x64x64: LeNet5: input_size must be 28"),
    ("1x20x20", "lenet5 cannot take --input 1x20x20"),
])
def test_cli_bad_input_is_one_line_exit_2(capsys, value, pattern):
    status, out, err = run_cli(capsys, "summary", "lenet5", "--input", value)
    assert status == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and pattern in lines[0], err
