"""to_fully_convolutional: the rewritten model equals the original on its size and slides it over larger inputs."""
import numpy
import pytest

import striate as st
from striate import nn
from striate.models import LeNet5, lenet5
from striate.tools import to_fully_convolutional


def run(model, x):
    with st.no_grad():
        return model(st.tensor(x)).data


def random_input(rng, shape, dtype="float32"):
    return rng.standard_normal(shape).astype(dtype)


def cnn1d():
    # 2×40 → conv k3 → 38 → pool 2 → 19 → conv k3 s2 → 9: a 5×9 map, total stride 2·2 = 4.
    return nn.Sequential(
        nn.Conv1d(2, 4, 3), nn.ReLU(), nn.MaxPool1d(2), nn.Conv1d(4, 5, 3, stride=2), nn.Tanh(),
        nn.Flatten(), nn.Dropout(0.5), nn.Linear(5 * 9, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))


def cnn3d():
    # 1×8×10×12 → conv k3 → 6×8×10 → avg pool 2 → 3×4×5: a 3×3×4×5 map.
    return nn.Sequential(
        nn.Sequential(nn.Conv3d(1, 3, 3), nn.ELU(), nn.AvgPool3d(2)),
        nn.Sequential(nn.Flatten(), nn.Linear(3 * 3 * 4 * 5, 7), nn.Sigmoid(), nn.Dropout(), nn.Linear(7, 4)))


# ----- equal on the original size ---------------------------------------------------------------

@pytest.mark.parametrize("size", [28, 32])
def test_lenet5_equal_on_its_input_size(rng, size):
    model = lenet5(input_size=size).eval()
    fcn = to_fully_convolutional(model, (1, size, size))
    x = random_input(rng, (4, 1, size, size))
    got = run(fcn, x)
    assert got.shape == (4, 10, 1, 1)
    numpy.testing.assert_allclose(got[:, :, 0, 0], run(model, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("build, input_size", [(cnn1d, (2, 40)), (cnn3d, (1, 8, 10, 12))], ids=["1d", "3d"])
def test_1d_and_3d_cnns_equal_with_dropout_in_eval(rng, build, input_size):
    model = build().eval()
    fcn = to_fully_convolutional(model, input_size)
    x = random_input(rng, (3,) + input_size)
    got = run(fcn, x)
    rank = len(input_size) - 1
    assert got.shape == (3, run(model, x).shape[1]) + (1,) * rank
    numpy.testing.assert_allclose(got.reshape(3, -1), run(model, x), rtol=1e-5, atol=1e-5)
    convs = [m for m in fcn.modules() if isinstance(m, (nn.Conv1d, nn.Conv3d))]
    assert not any(isinstance(m, (nn.Linear, nn.Flatten)) for m in fcn.modules())
    assert convs[-2].kernel_size == tuple(run(model[:5] if rank == 1 else model[0], x).shape[2:])
    assert convs[-1].kernel_size == (1,) * rank


def test_flatten_output_gives_the_original_shape(rng):
    model = lenet5().eval()
    fcn = to_fully_convolutional(model, (1, 28, 28), flatten_output=True)
    x = random_input(rng, (2, 1, 28, 28))
    numpy.testing.assert_allclose(run(fcn, x), run(model, x), rtol=1e-5, atol=1e-5)
    assert isinstance(list(fcn.children())[-1], nn.Flatten)


def test_float64_stays_float64(rng):
    model = cnn1d().double().eval()
    fcn = to_fully_convolutional(model, (2, 40))
    assert all(p.dtype == numpy.float64 for p in fcn.parameters())
    x = random_input(rng, (2, 2, 40), "float64")
    got = run(fcn, x)
    assert got.dtype == numpy.float64
    numpy.testing.assert_allclose(got[..., 0], run(model, x), rtol=1e-12, atol=1e-12)


def test_batch_norm_and_softmax_after_a_linear(rng):
    norm = nn.BatchNorm1d(6)
    norm.running_mean.data[...] = rng.standard_normal(6)
    norm.running_var.data[...] = rng.uniform(0.5, 2.0, 6)
    norm.weight.data[...] = rng.standard_normal(6)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(3 * 4 * 4, 6), norm, nn.GELU(),
                          nn.Linear(6, 5), nn.LogSoftmax(dim=-1)).eval()
    fcn = to_fully_convolutional(model, (2, 6, 6))
    assert isinstance(fcn.get_submodule("3"), nn.BatchNorm2d) and fcn[-1].dim == 1   # names kept
    x = random_input(rng, (3, 2, 6, 6))
    numpy.testing.assert_allclose(run(fcn, x)[:, :, 0, 0], run(model, x), rtol=1e-5, atol=1e-5)
    # On a larger input the softmax normalises the classes at every position.
    scores = numpy.exp(run(fcn, random_input(rng, (1, 2, 9, 9))))
    numpy.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)


# ----- weights moved, original untouched ----------------------------------------------------------

def test_first_linear_weight_lands_on_the_pixel_it_multiplied():
    model = lenet5()
    fcn = to_fully_convolutional(model, (1, 28, 28))
    flat = model.classifier.f5.weight.data          # (120, 16·5·5), flattened channel-major
    conv = fcn.classifier.f5.weight.data            # (120, 16, 5, 5)
    assert conv.shape == (120, 16, 5, 5)
    for o, c, h, w in [(0, 0, 0, 0), (7, 3, 1, 4), (119, 15, 4, 4), (64, 9, 2, 0)]:
        assert conv[o, c, h, w] == flat[o, c * 25 + h * 5 + w]
    assert fcn.classifier.output.weight.shape == (10, 84, 1, 1)
    numpy.testing.assert_array_equal(fcn.classifier.output.bias.data, model.classifier.output.bias.data)


def test_original_is_not_changed_and_nothing_is_shared():
    model = lenet5()
    before = {key: value.copy() for key, value in model.state_dict().items()}
    fcn = to_fully_convolutional(model, (1, 28, 28))
    assert isinstance(model.classifier.f5, nn.Linear) and isinstance(model.classifier.flatten, nn.Flatten)
    assert list(fcn.state_dict()) == list(before)        # same names, only the Linear weights reshaped
    for p in fcn.parameters():
        p.data[...] = 0
    for key, value in model.state_dict().items():
        numpy.testing.assert_array_equal(value, before[key])
    originals = {id(p.data) for p in model.parameters()}
    assert not any(id(p.data) in originals or numpy.shares_memory(p.data, q.data)
                   for p in fcn.parameters() for q in model.parameters())


def test_training_mode_and_requires_grad_carry_over():
    model = cnn1d().train()
    model[7].weight.requires_grad_(False)
    fcn = to_fully_convolutional(model, (2, 40))
    assert fcn.training and all(m.training for m in fcn.modules())
    assert model.training and all(m.training for m in model.modules())   # restored after the probe
    assert fcn.get_submodule("7").weight.requires_grad is False and fcn.get_submodule("7").bias.requires_grad
    assert not to_fully_convolutional(model.eval(), (2, 40)).training


def test_gradients_match_the_linear_ones(rng):
    model = lenet5().eval()
    fcn = to_fully_convolutional(model, (1, 28, 28))
    x = random_input(rng, (2, 1, 28, 28))
    y, z = model(st.tensor(x)), fcn(st.tensor(x))
    (y * y).sum().backward()
    (z * z).sum().backward()
    numpy.testing.assert_allclose(fcn.classifier.f5.weight.grad.data.reshape(120, 400),
                                  model.classifier.f5.weight.grad.data, rtol=1e-4, atol=1e-5)
    numpy.testing.assert_allclose(fcn.features.c1.weight.grad.data, model.features.c1.weight.grad.data,
                                  rtol=1e-4, atol=1e-5)


# ----- larger inputs: a map of class scores, each position a crop ---------------------------------

def total_stride(layers):
    stride = 1
    for layer in layers:
        if isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool3d)):
            s = layer.stride
            stride *= s[0] if isinstance(s, tuple) else s
    return stride


def test_unpadded_lenet5_map_positions_are_the_model_on_crops(rng):
    model = lenet5(input_size=32).eval()
    fcn = to_fully_convolutional(model, (1, 32, 32))
    stride = total_stride(model.features)
    assert stride == 4
    x = random_input(rng, (2, 1, 64, 72))
    scores = run(fcn, x)
    assert scores.shape == (2, 10, (64 - 32) // 4 + 1, (72 - 32) // 4 + 1)      # (2, 10, 9, 11)
    for i, j in [(0, 0), (8, 10), (3, 7), (5, 0)]:
        crop = x[:, :, stride * i:stride * i + 32, stride * j:stride * j + 32]
        numpy.testing.assert_allclose(scores[:, :, i, j], run(model, crop), rtol=1e-5, atol=1e-5)


def test_padded_lenet5_positions_are_crops_of_the_once_padded_image(rng):
    # LeNet-5 for 28×28 pads C1 by 2. The fully convolutional net pads the big image once, at its
    # outer border, so position (i, j) is the unpadded network (same weights) on a 32×32 crop of
    # the padded image, not the padded network on a 28×28 crop.
    model = lenet5(input_size=28).eval()
    unpadded = lenet5(input_size=32).eval()
    unpadded.load_state_dict(model.state_dict())
    fcn = to_fully_convolutional(model, (1, 28, 28))
    x = random_input(rng, (1, 1, 60, 60))
    scores = run(fcn, x)
    assert scores.shape == (1, 10, 9, 9)
    padded = numpy.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    for i, j in [(0, 0), (4, 4), (8, 8), (2, 6)]:
        crop = padded[:, :, 4 * i:4 * i + 32, 4 * j:4 * j + 32]
        numpy.testing.assert_allclose(scores[:, :, i, j], run(unpadded, crop), rtol=1e-5, atol=1e-5)
    # The top-left corner's crop is the original input's own padding only on two sides.
    assert not numpy.allclose(scores[:, :, 0, 0], run(model, x[:, :, :28, :28]), atol=1e-3)


def test_1d_map_positions_are_the_model_on_crops(rng):
    model = cnn1d().eval()
    fcn = to_fully_convolutional(model, (2, 40))
    stride = total_stride(model)
    assert stride == 4
    x = random_input(rng, (2, 2, 40 + 4 * 6))
    scores = run(fcn, x)
    assert scores.shape == (2, 3, 7)
    for i in range(7):
        numpy.testing.assert_allclose(scores[:, :, i], run(model, x[:, :, stride * i:stride * i + 40]),
                                      rtol=1e-5, atol=1e-5)


# ----- models that are not one Sequential ----------------------------------------------------------

class FlattenInForward(nn.Module):
    """torchvision style: features, pooling and a classifier, with the flatten written in forward."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.pool = nn.AvgPool2d(2)
        self.classifier = nn.Sequential(nn.Dropout(), nn.Linear(4 * 4 * 4, 8), nn.ReLU(), nn.Linear(8, 2))

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)).flatten(1))


class Residual(nn.Module):
    """Not a chain: the head's input is added back to its output."""

    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(2 * 3 * 3, 18)

    def forward(self, x):
        x = self.flatten(x)
        return self.fc(x) + x


def test_flatten_written_in_forward(rng):
    model = FlattenInForward().eval()
    fcn = to_fully_convolutional(model, (3, 16, 16))
    assert fcn.classifier[1].weight.shape == (8, 4, 4, 4)
    x = random_input(rng, (2, 3, 16, 16))
    numpy.testing.assert_allclose(run(fcn, x)[:, :, 0, 0], run(model, x), rtol=1e-5, atol=1e-5)


def test_lenet5_class_is_read_as_its_children():
    model = LeNet5(num_classes=4, in_channels=3).eval()
    fcn = to_fully_convolutional(model, (3, 28, 28))
    assert isinstance(fcn, nn.Sequential) and [name for name, _ in fcn.named_children()] == ["features", "classifier"]
    assert fcn(st.randn(1, 3, 40, 36)).shape == (1, 4, 4, 3)


# ----- errors ----------------------------------------------------------------------------------------

class Mean(nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3))


@pytest.mark.parametrize("model, input_size, error, match", [
    (lambda: lenet5(), (1, 32, 32), ValueError,
     r"'classifier.f5' \(Linear\) has in_features=400, but the feature map before it at input_size=\(1, 32, 32\) "
     r"is 16×6×6 = 576"),
    (lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), (1, 8, 8), ValueError,
     "Sequential holds no Flatten and no Linear"),
    (lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten()), (1, 8, 8), ValueError,
     "found a Flatten but no Linear"),
    (lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(2), nn.Linear(36, 3)), (1, 8, 8), ValueError,
     r"must flatten every dimension but the batch one .* start_dim=2"),
    (lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(72, 3), nn.MaxPool1d(1)), (1, 8, 8),
     ValueError, r"'3' \(MaxPool1d\) after the last Linear has no convolutional equivalent"),
    (lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.BatchNorm1d(72), nn.Linear(72, 3)), (1, 8, 8),
     ValueError, r"'2' \(BatchNorm1d\) between the Flatten and the first Linear"),
    (lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(72, 3), nn.Linear(4, 2)), (1, 8, 8),
     ValueError, r"'3' \(Linear\) has in_features=4, but the layer before it gives 3"),
    (lambda: nn.Sequential(nn.Conv2d(1, 2, 3), Mean(), nn.Flatten(), nn.Linear(2, 3)), (1, 8, 8), ValueError,
     r"features before layer '2' must be a map \(N, C, \*D\) .* shape \(1, 2\)"),
    (lambda: Residual(), (2, 3, 3), ValueError, "Residual's forward is not its layers applied in order"),
    (lambda: lenet5(), (28, 28), ValueError, r"input_size=\(28, 28\) is 5×5 = 25"),
    (lambda: lenet5(), (1, 28, 28, 28, 28), ValueError, "1 to 3 spatial dimensions"),
    (lambda: lenet5(), (1, 0, 28), ValueError, "all positive"),
    (lambda: lenet5(), 28, TypeError, "input_size must be a tuple of ints"),
    (lambda: lenet5().state_dict(), (1, 28, 28), TypeError, "expected an nn.Module, got OrderedDict"),
], ids=["in-features", "no-head", "no-linear", "partial-flatten", "pool-in-head", "norm-before-linear",
        "linear-chain", "not-a-map", "not-a-chain", "too-few-dims", "too-many-dims", "zero-size", "int-size",
        "not-a-module"])
def test_errors(model, input_size, error, match):
    with pytest.raises(error, match=match):
        to_fully_convolutional(model(), input_size)


def test_docstring_example():
    import doctest

    import striate
    import striate.models  # noqa: F401  (the example reaches it as striate.models)
    from striate.tools import fully_convolutional

    result = doctest.testmod(fully_convolutional, extraglobs={"st": st, "striate": striate},
                             optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False, report=False)
    assert result.attempted > 0 and result.failed == 0
