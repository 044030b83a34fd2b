"""striate.tools.train: evaluate, the fit loop (learning, determinism, schedulers, progress), divergence."""
import io
import math
import sys
import time

import numpy
import pytest
import torch

import striate as st
from striate import models, nn
from striate.data import DataLoader, TensorDataset
from striate.data.datasets import MNIST_MEAN, MNIST_STD, Digits
from striate.tools.checkpoint import CheckpointWriter, load_checkpoint
from striate.tools.train import Evaluation, TrainingDiverged, evaluate, fit
from tests.tampered_loader import TamperedLoader

RECORD_KEYS = {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "images_per_s"}


def normalised(images):
    return ((images.astype(numpy.float32) / 255 - MNIST_MEAN) / MNIST_STD)[:, None]   # (N, 1, 28, 28)


def digits_loaders(n_train, seed, batch_size=32, n_test=None):
    train, test = Digits(), Digits(train=False)
    keep = numpy.random.default_rng(seed).permutation(len(train))[:n_train]
    test_keep = slice(None) if n_test is None else numpy.random.default_rng(seed).permutation(len(test))[:n_test]
    train_loader = DataLoader(TensorDataset(normalised(train.data[keep]), train.targets[keep]),
                              batch_size=batch_size, shuffle=True, seed=seed)
    test_loader = DataLoader(TensorDataset(normalised(test.data[test_keep]), test.targets[test_keep]), batch_size=500)
    return train_loader, test_loader


def random_loaders(seed=0, n=96, batch_size=16, classes=4):
    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal((n, 1, 8, 8)).astype(numpy.float32)
    y = rng.integers(0, classes, n)
    return (DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True, seed=seed),
            DataLoader(TensorDataset(x[:32], y[:32]), batch_size=32))


def small_net(classes=4):
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 6 * 6, classes))


# ----- evaluate ---------------------------------------------------------------------------------------------
class FixedLogits(nn.Module):
    """Returns logits given per example index (the input carries the index), and records its mode."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits
        self.modes = []

    def forward(self, index):
        self.modes.append((self.training, st.is_grad_enabled()))
        return st.tensor(self.logits[index.numpy().astype(int)])


def test_evaluate_matches_an_independent_count(rng):
    n, k = 50, 4
    logits = rng.standard_normal((n, k)).astype(numpy.float32)
    labels = rng.integers(0, k - 1, n)          # class k-1 never occurs: its accuracy is NaN
    loader = DataLoader(TensorDataset(numpy.arange(n), labels), batch_size=16)
    model = FixedLogits(logits)
    result = evaluate(model, loader, num_classes=k)

    predicted = logits.argmax(axis=1)
    expected_matrix = numpy.zeros((k, k), dtype=int)
    for true, guess in zip(labels, predicted):
        expected_matrix[true, guess] += 1
    numpy.testing.assert_array_equal(result.confusion_matrix, expected_matrix)
    assert result.accuracy == pytest.approx(numpy.mean(predicted == labels))
    for c in range(k - 1):
        assert result.per_class_accuracy[c] == pytest.approx(numpy.mean(predicted[labels == c] == c))
    assert math.isnan(result.per_class_accuracy[k - 1])
    expected_loss = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)).item()
    assert result.loss == pytest.approx(expected_loss, rel=1e-5)
    assert result.count == n
    assert result.to_dict()["per_class_accuracy"][k - 1] is None
    assert model.modes and all(mode == (False, False) for mode in model.modes)   # eval mode, no grad
    assert model.training   # the previous mode is restored


def test_evaluate_restores_eval_mode_and_rejects_empty_loaders():
    model = FixedLogits(numpy.zeros((1, 2), numpy.float32)).eval()
    evaluate(model, DataLoader(TensorDataset(numpy.zeros(1), numpy.zeros(1, numpy.int64))))
    assert not model.training
    with pytest.raises(ValueError, match="no examples"):
        evaluate(model, [])


# ----- fit ----------------------------------------------------------------------------------------------------
def test_short_run_on_embedded_digits_reaches_90_percent():
    start = time.perf_counter()
    st.manual_seed(0)
    train_loader, test_loader = digits_loaders(3000, seed=0)
    model = models.lenet5()
    optimizer = st.optim.Adam(model.parameters(), lr=2e-3)
    history = fit(model, train_loader, test_loader, optimizer, epochs=2, progress=False, stream=False)
    assert [r["epoch"] for r in history] == [1, 2]
    assert all(RECORD_KEYS <= set(r) for r in history)
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["val_accuracy"] >= 0.90
    assert evaluate(model, test_loader).accuracy == pytest.approx(history[-1]["val_accuracy"])
    assert time.perf_counter() - start < 60


def train_small(seed, epochs=2, **fit_kwargs):
    st.manual_seed(seed)
    train_loader, val_loader = random_loaders(seed)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Dropout(0.3), nn.Flatten(), nn.Linear(108, 4))
    optimizer = st.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    history = fit(model, train_loader, val_loader, optimizer, epochs, progress=False, stream=False, **fit_kwargs)
    return model, history


def test_fit_is_deterministic_for_a_seed():
    a, history_a = train_small(seed=3)
    b, history_b = train_small(seed=3)
    c, _ = train_small(seed=4)
    for p, q in zip(a.parameters(), b.parameters()):
        numpy.testing.assert_array_equal(p.data, q.data)
    assert [r["loss"] for r in history_a] == [r["loss"] for r in history_b]
    assert not all(numpy.array_equal(p.data, q.data) for p, q in zip(a.parameters(), c.parameters()))


def test_epoch_schedulers_step_per_epoch_and_onecycle_per_batch():
    st.manual_seed(0)
    train_loader, _ = random_loaders(n=64, batch_size=16)            # 4 batches per epoch
    model = small_net()
    optimizer = st.optim.SGD(model.parameters(), lr=0.1)
    scheduler = st.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    history = fit(model, train_loader, None, optimizer, 3, scheduler=scheduler, progress=False, stream=False)
    assert [r["lr"] for r in history] == pytest.approx([0.1, 0.05, 0.025])
    assert scheduler.last_epoch == 3
    assert history[0]["val_loss"] is None

    optimizer = st.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = st.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=3 * 4)
    fit(model, train_loader, None, optimizer, 3, scheduler=scheduler, progress=False, stream=False)
    assert scheduler.last_epoch == 12     # one step per batch, and not one too many

    with pytest.raises(ValueError, match="scheduler_interval"):
        fit(model, train_loader, None, optimizer, 1, scheduler=scheduler, scheduler_interval="step", progress=False)


def test_progress_lines_and_bar():
    st.manual_seed(0)
    train_loader, val_loader = random_loaders()
    model = small_net()
    optimizer = st.optim.Adam(model.parameters())
    stream = io.StringIO()
    fit(model, train_loader, val_loader, optimizer, 2, progress=False, stream=stream)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2  loss ") and "val_acc" in lines[0] and "img/s" in lines[0]

    pytest.importorskip("tqdm")
    stream = io.StringIO()
    fit(model, train_loader, val_loader, optimizer, 3, progress=True, stream=stream)   # the bar goes to stderr
    assert len(stream.getvalue().splitlines()) == 3


def test_progress_falls_back_without_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)       # makes 'import tqdm' fail
    st.manual_seed(0)
    train_loader, _ = random_loaders()
    model = small_net()
    optimizer = st.optim.Adam(model.parameters())
    stream = io.StringIO()
    fit(model, train_loader, None, optimizer, 1, progress="auto", stream=stream)
    assert stream.getvalue().startswith("epoch 1/1")
    with pytest.raises(ImportError, match="needs tqdm"):
        fit(model, train_loader, None, optimizer, 2, progress=True, stream=False)


def test_fit_rejects_bad_arguments():
    model = small_net()
    optimizer = st.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="epochs must be a non-negative int"):
        fit(model, [], None, optimizer, -1)
    with pytest.raises(ValueError, match="progress must be"):
        fit(model, [], None, optimizer, 1, progress="yes")
    with pytest.raises(ValueError, match=r"\(images, labels\) pairs"):
        fit(model, [st.randn(2, 1, 8, 8)], None, optimizer, 1, progress=False, stream=False)


# ----- divergence ---------------------------------------------------------------------------------------------
def test_nan_loss_raises_and_keeps_the_last_good_checkpoint(tmp_path):
    st.manual_seed(0)
    train_loader, val_loader = random_loaders()
    model = small_net()
    optimizer = st.optim.Adam(model.parameters())
    writer = CheckpointWriter(tmp_path)
    with pytest.raises(TrainingDiverged, match=r"epoch 2, step 3: loss is nan; the last good checkpoint is kept in "
                                               r".*checkpoint\.json") as caught:
        fit(model, TamperedLoader(train_loader, epoch=2, step=3, value=numpy.nan), val_loader, optimizer, 4,
            checkpoint=writer, progress=False, stream=False)
    error = caught.value
    assert (error.epoch, error.step) == (2, 3) and math.isnan(error.loss)
    saved = load_checkpoint(error.checkpoint)
    assert saved.epoch == 1
    assert all(numpy.isfinite(v).all() for v in saved.model_state.values())
    fresh = small_net()
    fresh.load_state_dict(saved.model_state)   # the kept checkpoint loads into a model
    assert [r["epoch"] for r in load_checkpoint(tmp_path).history] == [1]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_huge_learning_rate_diverges_with_a_clear_message():
    st.manual_seed(0)
    train_loader, _ = random_loaders()
    model = small_net()
    optimizer = st.optim.SGD(model.parameters(), lr=1e6)
    with pytest.raises(TrainingDiverged, match=r"training diverged at epoch \d+, step \d+: .* is (nan|inf|-inf); "
                                               r"no checkpoint was written before it\. Try a lower learning rate"):
        fit(model, train_loader, None, optimizer, 20, progress=False, stream=False)


def test_evaluation_is_a_dataclass_with_the_documented_fields():
    fields = set(Evaluation.__dataclass_fields__)
    assert fields == {"loss", "accuracy", "per_class_accuracy", "confusion_matrix", "count"}
