"""striate.tools.checkpoint: exact resume, crash safety of the weights/JSON pair, and corrupt-file errors."""
import json

import numpy
import pytest

import striate as st
import striate.serialization
from striate import models, nn
from striate.data import DataLoader, TensorDataset
from striate.errors import FormatError
from striate.tools import checkpoint as checkpoints
from striate.tools.checkpoint import CheckpointWriter, load_checkpoint, restore
from striate.tools.train import fit

RECORD_KEYS = {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "images_per_s"}


def loaders(seed=0, n=80, batch_size=16):
    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal((n, 1, 28, 28)).astype(numpy.float32)
    y = rng.integers(0, 10, n)
    return (DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True, seed=seed),
            DataLoader(TensorDataset(x[:20], y[:20]), batch_size=20))


def dropout_net():
    # Dropout draws from striate's default generator, so resuming must restore the random state too.
    return nn.Sequential(nn.Conv2d(1, 4, 5, stride=3), nn.ReLU(), nn.Dropout(0.25), nn.Flatten(), nn.Linear(256, 10))


def run(directory, epochs, resume=None, seed=0, make_optimizer=None):
    """A fresh run: model, optimizer, cosine schedule planned for 4 epochs, loaders; trained to ``epochs``."""
    st.manual_seed(seed)
    model = dropout_net()
    optimizer = (make_optimizer or (lambda p: st.optim.Adam(p, lr=1e-2)))(model.parameters())
    scheduler = st.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=4)
    train_loader, val_loader = loaders()
    writer = CheckpointWriter(directory, metadata={"note": "test"})
    history = fit(model, train_loader, val_loader, optimizer, epochs, scheduler=scheduler, checkpoint=writer,
                  resume=resume, progress=False, stream=False)
    return model, optimizer, history


@pytest.mark.parametrize("make_optimizer", [
    lambda p: st.optim.Adam(p, lr=1e-2),
    lambda p: st.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
    lambda p: st.optim.AdamW(p, lr=1e-2, amsgrad=True),
], ids=["adam", "sgd-nesterov", "adamw-amsgrad"])
def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path, make_optimizer):
    straight, straight_optimizer, straight_history = run(tmp_path / "straight", 4, make_optimizer=make_optimizer)
    run(tmp_path / "resumed", 2, make_optimizer=make_optimizer)
    st.manual_seed(12345)   # disturb the global generator: resume must put it back
    resumed, resumed_optimizer, resumed_history = run(tmp_path / "resumed", 4, resume=tmp_path / "resumed",
                                                      seed=99, make_optimizer=make_optimizer)
    for (name, p), q in zip(straight.named_parameters(), resumed.parameters()):
        assert numpy.array_equal(p.data, q.data), name
    a, b = straight_optimizer.state_dict(), resumed_optimizer.state_dict()
    for index, entry in a["state"].items():
        for key, value in entry.items():
            numpy.testing.assert_array_equal(value, b["state"][index][key])
    assert a["param_groups"][0]["lr"] == b["param_groups"][0]["lr"]
    drop = {"seconds", "images_per_s"}
    assert ([{k: v for k, v in r.items() if k not in drop} for r in straight_history]
            == [{k: v for k, v in r.items() if k not in drop} for r in resumed_history])
    assert load_checkpoint(tmp_path / "resumed").epoch == 4


def test_checkpoint_files_and_contents(tmp_path):
    model, optimizer, history = run(tmp_path, 3)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["checkpoint-epoch0003.safetensors", "checkpoint.json", "metrics.json"]  # old weights deleted
    meta = json.loads((tmp_path / "checkpoint.json").read_text())
    assert meta["epoch"] == 3 and meta["weights"] == "checkpoint-epoch0003.safetensors" and len(meta["sha256"]) == 64
    assert meta["optimizer"]["class"] == "Adam" and meta["scheduler"]["class"] == "CosineAnnealingLR"
    assert meta["loader"] == {"epoch": 3, "seed": 0} and meta["note"] == "test"
    assert meta["rng_state"]["bit_generator"] == "PCG64"
    tensors = st.load(tmp_path / meta["weights"])   # plain safetensors: model.* and optimizer.* arrays
    assert {k for k in tensors if k.startswith("model.")} == {"model." + k for k in model.state_dict()}
    assert "optimizer.state.0.exp_avg" in tensors and "optimizer.state.0.exp_avg_sq" in tensors
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert [r["epoch"] for r in metrics] == [1, 2, 3] and all(RECORD_KEYS <= set(r) for r in metrics)
    # The weights file alone carries the description too.
    alone = load_checkpoint(tmp_path / meta["weights"])
    assert alone.epoch == 3 and alone.meta["note"] == "test"
    for key, value in model.state_dict().items():
        numpy.testing.assert_array_equal(alone.model_state[key], value)


def test_build_model_from_a_registered_name(tmp_path):
    st.manual_seed(0)
    model = models.lenet5(num_classes=10)
    optimizer = st.optim.SGD(model.parameters(), lr=0.01)
    writer = CheckpointWriter(tmp_path, model_name="lenet5", model_kwargs={"num_classes": 10, "input_size": 28})
    writer.save(model=model, optimizer=optimizer, epoch=0)
    rebuilt = load_checkpoint(tmp_path).build_model()
    x = st.randn(2, 1, 28, 28)
    numpy.testing.assert_array_equal(rebuilt(x).numpy(), model.eval()(x).numpy())
    assert not rebuilt.training
    meta = json.loads((tmp_path / "checkpoint.json").read_text())
    (tmp_path / "checkpoint.json").write_text(json.dumps({**meta, "model": {"name": "lenet5", "kwargs": {"input_size": 30}}}))
    with pytest.raises(FormatError, match="cannot rebuild model 'lenet5' from the checkpoint: LeNet5: input_size"):
        load_checkpoint(tmp_path).build_model()
    (tmp_path / "checkpoint.json").write_text(json.dumps({**meta, "model": {"name": "lenet5", "kwargs": [1]}}))
    with pytest.raises(FormatError, match="malformed 'model' entry"):
        load_checkpoint(tmp_path)
    unnamed = CheckpointWriter(tmp_path / "b")
    unnamed.save(model=model, optimizer=optimizer, epoch=0)
    with pytest.raises(ValueError, match="does not name a registered model"):
        load_checkpoint(tmp_path / "b").build_model()


def test_build_model_refuses_arguments_the_weights_cannot_justify_before_building(tmp_path, monkeypatch):
    st.manual_seed(0)
    model = models.lenet5()
    CheckpointWriter(tmp_path, model_name="lenet5", model_kwargs={"num_classes": 10}).save(
        model=model, optimizer=st.optim.SGD(model.parameters(), lr=0.01), epoch=0)
    meta = json.loads((tmp_path / "checkpoint.json").read_text())
    built = []
    monkeypatch.setattr(models.lenet, "LeNet5", lambda *a, **k: built.append(k))   # nothing may be built
    for kwargs, shown in [({"num_classes": 10**9}, "num_classes=1,000,000,000"),
                          ({"num_classes": 10, "hidden": [8, 5000]}, "hidden=5,000")]:
        (tmp_path / "checkpoint.json").write_text(json.dumps({**meta, "model": {"name": "lenet5", "kwargs": kwargs}}))
        with pytest.raises(FormatError, match=rf"model argument {shown} is larger than the weights could justify "
                                              r"\(at most 4,096"):
            load_checkpoint(tmp_path).build_model()
    assert built == []


class Crash(Exception):
    pass


def test_crash_while_writing_weights_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    run(tmp_path, 2)
    before = (tmp_path / "checkpoint.json").read_bytes()
    calls = []

    def write_half_then_crash(file, array):
        calls.append(1)
        if len(calls) > 3:        # some tensors are on disk (in the temporary file) when the crash comes
            raise Crash("power cut")
        file.write(array.reshape(-1).view(numpy.uint8))

    monkeypatch.setattr(striate.serialization, "_write_array", write_half_then_crash)
    with pytest.raises(Crash):
        run(tmp_path, 3, resume=tmp_path)
    monkeypatch.undo()
    assert (tmp_path / "checkpoint.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-epoch0002.safetensors", "checkpoint.json",
                                                          "metrics.json"]   # no temporary file left behind
    assert load_checkpoint(tmp_path).epoch == 2
    run(tmp_path, 4, resume=tmp_path)           # and the run continues from it
    assert load_checkpoint(tmp_path).epoch == 4


def test_crash_between_weights_and_json_keeps_a_consistent_pair(tmp_path, monkeypatch):
    run(tmp_path, 2)
    real_atomic_write = checkpoints.atomic_write

    def crash_on_json(path, data):
        if path.name == "checkpoint.json":
            raise Crash("killed before the JSON was replaced")
        real_atomic_write(path, data)

    monkeypatch.setattr(checkpoints, "atomic_write", crash_on_json)
    with pytest.raises(Crash):
        run(tmp_path, 3, resume=tmp_path)
    monkeypatch.undo()
    # The new weights file was written, but the JSON still names (and hashes) epoch 2's, which is still there.
    assert (tmp_path / "checkpoint-epoch0003.safetensors").exists()
    saved = load_checkpoint(tmp_path)
    assert saved.epoch == 2 and saved.weights_path.name == "checkpoint-epoch0002.safetensors"
    # Resuming rewrites epoch 3 under a fresh name and cleans up the orphan.
    run(tmp_path, 3, resume=tmp_path)
    assert load_checkpoint(tmp_path).epoch == 3
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".safetensors") == [
        load_checkpoint(tmp_path).weights_path.name]


def test_corrupt_or_missing_files_raise_clear_errors(tmp_path):
    run(tmp_path, 1)
    meta = json.loads((tmp_path / "checkpoint.json").read_text())
    weights = tmp_path / meta["weights"]

    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(FormatError, match=r"has SHA-256 .* but the checkpoint records"):
        load_checkpoint(tmp_path)

    weights.unlink()
    with pytest.raises(FileNotFoundError, match="names the weights file checkpoint-epoch0001.safetensors, which is missing"):
        load_checkpoint(tmp_path)

    (tmp_path / "checkpoint.json").write_text("{not json")
    with pytest.raises(FormatError, match="not valid JSON"):
        load_checkpoint(tmp_path / "checkpoint.json")
    (tmp_path / "checkpoint.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(FormatError, match="not a striate checkpoint"):
        load_checkpoint(tmp_path)
    (tmp_path / "checkpoint.json").write_text(json.dumps({**meta, "weights": "../elsewhere.safetensors"}))
    with pytest.raises(FormatError, match="'weights' must be a file name in the same directory"):
        load_checkpoint(tmp_path)
    (tmp_path / "checkpoint.json").write_text(json.dumps({**meta, "epoch": -1}))
    with pytest.raises(FormatError, match="'epoch' must be a non-negative int"):
        load_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "nowhere")

    plain = tmp_path / "plain.safetensors"
    st.save({"w": numpy.zeros(3, numpy.float32)}, plain)
    with pytest.raises(FormatError, match="without a striate checkpoint description"):
        load_checkpoint(plain)


def test_restore_refuses_a_different_optimizer_or_scheduler(tmp_path):
    run(tmp_path, 1)
    model = dropout_net()
    with pytest.raises(ValueError, match="holds Adam state, but the optimizer is SGD"):
        restore(tmp_path, model=model, optimizer=st.optim.SGD(model.parameters(), lr=0.1))
    optimizer = st.optim.Adam(model.parameters())
    with pytest.raises(ValueError, match="holds CosineAnnealingLR scheduler state, but the scheduler is StepLR"):
        restore(tmp_path, scheduler=st.optim.lr_scheduler.StepLR(optimizer, 1))
    with pytest.raises(RuntimeError, match="Missing key"):
        restore(tmp_path, model=models.lenet5())
