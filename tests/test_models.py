"""striate.models: LeNet-5's arithmetic and shapes, the MLP baseline, parity with the same nets in PyTorch, the registry."""
import numpy
import pytest
import torch

import striate as st
from striate import models, nn
from striate.models import registry


def conv_params(c_in, c_out, k):
    return c_out * c_in * k * k + c_out


def linear_params(n_in, n_out):
    return n_out * n_in + n_out


def count(model):
    return sum(p.numel() for p in model.parameters())


def lenet_arithmetic(in_channels=1, num_classes=10):
    # C1, C3 convolutions; F5 takes the 16 maps of 5×5 left after two 2×2 poolings of a 32×32 field.
    return (conv_params(in_channels, 6, 5) + conv_params(6, 16, 5) + linear_params(16 * 5 * 5, 120)
            + linear_params(120, 84) + linear_params(84, num_classes))


def test_lenet5_has_61706_parameters_from_layer_arithmetic():
    assert lenet_arithmetic() == 61_706
    assert count(models.lenet5()) == lenet_arithmetic()
    assert count(models.lenet5(input_size=32)) == lenet_arithmetic()


@pytest.mark.parametrize("in_channels, num_classes", [(3, 10), (1, 7), (2, 100)])
def test_lenet5_parameter_count_follows_channels_and_classes(in_channels, num_classes):
    model = models.lenet5(num_classes=num_classes, in_channels=in_channels)
    assert count(model) == lenet_arithmetic(in_channels, num_classes)


def test_lenet5_layer_names_and_shapes():
    shapes = {name: p.shape for name, p in models.lenet5().named_parameters()}
    assert shapes == {
        "features.c1.weight": (6, 1, 5, 5), "features.c1.bias": (6,),
        "features.c3.weight": (16, 6, 5, 5), "features.c3.bias": (16,),
        "classifier.f5.weight": (120, 400), "classifier.f5.bias": (120,),
        "classifier.f6.weight": (84, 120), "classifier.f6.bias": (84,),
        "classifier.output.weight": (10, 84), "classifier.output.bias": (10,),
    }


@pytest.mark.parametrize("input_size", [28, 32])
def test_lenet5_forward_shapes(input_size):
    model = models.lenet5(input_size=input_size)
    x = st.randn(3, 1, input_size, input_size)
    assert model.features(x).shape == (3, 16, 5, 5)   # the paper's S4 maps for both input sizes
    out = model(x)
    assert out.shape == (3, 10) and out.dtype == numpy.float32
    out.sum().backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())


def test_lenet5_rejects_other_input_sizes():
    with pytest.raises(ValueError, match=r"LeNet5: input_size must be 28 .* or 32 .*Received: input_size=30"):
        models.lenet5(input_size=30)
    with pytest.raises(ValueError, match="num_classes"):
        models.lenet5(num_classes=0)
    with pytest.raises(TypeError, match="in_channels"):
        models.lenet5(in_channels=1.5)


def torch_lenet5(input_size):
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 5, padding=(32 - input_size) // 2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(6, 16, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(400, 120), torch.nn.ReLU(), torch.nn.Linear(120, 84), torch.nn.ReLU(),
        torch.nn.Linear(84, 10))


@pytest.mark.parametrize("input_size", [28, 32])
def test_lenet5_matches_the_same_network_in_pytorch(input_size, rng):
    st.manual_seed(0)
    model = models.lenet5(input_size=input_size)
    reference = torch_lenet5(input_size)
    ours = [p.data for p in model.parameters()]
    with torch.no_grad():
        for target, value in zip(reference.parameters(), ours, strict=True):
            target.copy_(torch.from_numpy(value))
    x = rng.standard_normal((4, 1, input_size, input_size)).astype(numpy.float32)
    expected = reference(torch.from_numpy(x)).detach().numpy()
    numpy.testing.assert_allclose(model(st.tensor(x)).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_mlp_parameter_count_and_shapes():
    default = models.mlp()
    expected = linear_params(784, 512) + linear_params(512, 256) + linear_params(256, 10)
    assert count(default) == expected == 535_818
    assert count(default) > 8 * count(models.lenet5())   # the docstring's point: far more weights
    small = models.mlp(num_classes=3, in_features=12, hidden=(5,))
    assert count(small) == linear_params(12, 5) + linear_params(5, 3)
    assert small(st.randn(2, 3, 2, 2)).shape == (2, 3)
    assert count(models.mlp(hidden=())) == linear_params(784, 10)


def test_mlp_rejects_bad_hidden_sizes():
    with pytest.raises(ValueError, match=r"hidden\[1\]"):
        models.mlp(hidden=(10, 0))
    with pytest.raises(TypeError, match="hidden must be a sequence"):
        models.mlp(hidden=64)


def test_registry_lists_and_builds_models():
    assert {"lenet5", "mlp"} <= set(models.list_models())
    assert models.list_models() == sorted(models.list_models())
    model = models.get_model("lenet5", num_classes=5)
    assert isinstance(model, models.LeNet5) and model(st.randn(1, 1, 28, 28)).shape == (1, 5)
    for name in models.list_models():
        description = models.model_entry(name).description
        assert description and "\n" not in description


def test_registry_errors_name_what_is_known():
    with pytest.raises(ValueError, match=r"unknown model 'resnet9000'; known models: .*lenet5"):
        models.get_model("resnet9000")
    with pytest.raises(ValueError, match=r"model 'lenet5' takes no argument\(s\) \['depth'\]"):
        models.get_model("lenet5", depth=3)


def test_register_model_decorator(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    @models.register_model()
    def tiny_probe(num_classes=10):
        """A linear probe on raw pixels.

        More text that is not the description.
        """
        return nn.Sequential(nn.Flatten(), nn.Linear(784, num_classes))

    assert "tiny_probe" in models.list_models()
    assert models.model_entry("tiny_probe").description == "A linear probe on raw pixels."
    assert count(models.get_model("tiny_probe", num_classes=2)) == linear_params(784, 2)
    with pytest.raises(ValueError, match="already registered"):
        models.register_model(name="tiny_probe")(lambda: None)
