"""The same small CNN, weights and data, trained 20 steps in striate and in PyTorch, ends equal."""
import numpy
import pytest

import striate as st
import striate.nn as nn
import striate.nn.functional as F
from oracle import assert_close, torch

tnn = torch.nn


def striate_net():
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=2), nn.ReLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 10),
    )


def torch_net():
    return tnn.Sequential(
        tnn.Conv2d(1, 4, 3, padding=1, bias=False), tnn.BatchNorm2d(4), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(4, 8, 3, stride=2, padding=1, groups=2), tnn.ReLU(),
        tnn.AdaptiveAvgPool2d(2), tnn.Flatten(), tnn.Linear(32, 10),
    )


OPTIMIZERS = {
    "sgd-momentum": (lambda p: st.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-4),
                     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-4)),
    "sgd-nesterov": (lambda p: st.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
                     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True)),
    "adam": (lambda p: st.optim.Adam(p, lr=3e-3), lambda p: torch.optim.Adam(p, lr=3e-3)),
}


@pytest.mark.parametrize("dtype, rtol, atol", [("float64", 1e-9, 1e-11), ("float32", 1e-4, 1e-5)])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_twenty_steps_end_with_the_same_parameters(name, dtype, rtol, atol):
    rng = numpy.random.default_rng(7)
    images = rng.standard_normal((20, 16, 1, 12, 12)).astype(dtype)
    labels = rng.integers(0, 10, size=(20, 16))

    reference = torch_net().to(getattr(torch, dtype))
    model = striate_net().to(getattr(st, dtype))
    model.load_state_dict({k: v.detach().numpy() for k, v in reference.state_dict().items()})
    initial = {k: v.copy() for k, v in model.state_dict().items()}
    make_striate_opt, make_torch_opt = OPTIMIZERS[name]
    optimizer, torch_optimizer = make_striate_opt(model.parameters()), make_torch_opt(reference.parameters())

    for x, y in zip(images, labels):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(st.tensor(x)), st.tensor(y))
        loss.backward()
        optimizer.step()

        torch_optimizer.zero_grad()
        torch_loss = tnn.functional.cross_entropy(reference(torch.from_numpy(x)), torch.from_numpy(y))
        torch_loss.backward()
        torch_optimizer.step()
        assert_close(loss, torch_loss, rtol, atol, "loss")

    expected = reference.state_dict()
    for key, value in model.state_dict().items():
        assert_close(value, expected[key], rtol, atol, key)
    # the comparison means something only if training really moved every parameter
    for key, value in model.named_parameters():
        assert numpy.abs(value.data - initial[key]).max() > 1e-4, f"{key} did not change"
