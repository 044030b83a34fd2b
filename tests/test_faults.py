"""Faults in training: a process killed mid-save, a run resumed in a new process, a loss that goes NaN or Inf.

Exceptions raised in the middle of a save (disk full, Ctrl-C, a crash between the weights and
the JSON) are covered in test_serialization.py, test_io.py and test_checkpoint.py; here the
process really dies (SIGKILL, which no ``finally`` can intercept) or really restarts.
"""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy
import pytest

import striate as st
from striate import nn
from striate.data import DataLoader, TensorDataset
from striate.tools import train
from striate.tools.checkpoint import CheckpointWriter, load_checkpoint
from striate.tools.train import TrainingDiverged, fit
from tests.tampered_loader import TamperedLoader

posix_only = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals (SIGKILL)")


def start(script, *args):
    """Run ``script`` (Python source) in a fresh interpreter; its stdout is a pipe we can wait on."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_line(process, expected, timeout=60):
    line = process.stdout.readline().strip()
    if line != expected:
        process.kill()
        raise AssertionError(f"child said {line!r}, expected {expected!r}; stderr: {process.stderr.read()}")


def kill(process):
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    process.stdout.close()
    process.stderr.close()


# ----- killed in the middle of a save ------------------------------------------------------------------------
PAUSE_MID_SAVE = """
    import sys, time, numpy, striate as st, striate.serialization as serialization
    real_write = serialization._write_array
    written = []
    def write_then_pause(file, array):
        real_write(file, array)
        written.append(array)
        if len(written) == 2:            # two of four tensors are in the temporary file
            file.flush()
            print("MID-SAVE", flush=True)
            time.sleep(120)
    serialization._write_array = write_then_pause
    st.save({f"w{i}": numpy.full(1 << 18, 10 + i, numpy.float32) for i in range(4)}, sys.argv[1])
"""


@posix_only
def test_sigkill_mid_save_leaves_the_previous_file_whole(tmp_path):
    path = tmp_path / "model.safetensors"
    old = {"w0": numpy.arange(5, dtype=numpy.float32)}
    st.save(old, path)
    before = path.read_bytes()
    child = start(PAUSE_MID_SAVE, path)
    wait_for_line(child, "MID-SAVE")
    kill(child)
    assert path.read_bytes() == before
    numpy.testing.assert_array_equal(st.load(path)["w0"], old["w0"])
    # The only other file is the dead writer's hidden temporary file: never at the target's name.
    others = [p for p in tmp_path.iterdir() if p != path]
    assert len(others) == 1 and others[0].name.startswith(".model.safetensors.") and others[0].name.endswith(".tmp")
    assert others[0].stat().st_size > 2 << 20   # the kill really came with half the new data on disk


SAVE_FOREVER = """
    import sys, numpy, striate as st
    for i in range(1_000_000):
        st.save({"values": numpy.full(1 << 21, i, numpy.float32), "i": numpy.array(i)}, sys.argv[1])
        if i == 0:
            print("SAVED", flush=True)
"""


@posix_only
@pytest.mark.parametrize("delay", [0.0, 0.05, 0.13, 0.31])
def test_sigkill_at_a_random_moment_of_repeated_saves_never_leaves_a_partial_file(tmp_path, delay):
    path = tmp_path / "model.safetensors"
    child = start(SAVE_FOREVER, path)
    wait_for_line(child, "SAVED")
    time.sleep(delay)
    kill(child)
    loaded = st.load(path)     # complete and valid, whichever save it is
    assert loaded["values"].shape == (1 << 21,)
    assert (loaded["values"] == loaded["i"]).all()   # all of one save, none of the next
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == ["model.safetensors"]


PAUSE_BETWEEN_WEIGHTS_AND_JSON = """
    import sys, time, striate as st
    from striate import nn
    from striate.tools import checkpoint
    model = nn.Linear(3, 2)
    optimizer = st.optim.Adam(model.parameters())
    writer = checkpoint.CheckpointWriter(sys.argv[1])
    writer.save(model=model, optimizer=optimizer, epoch=1)
    real_atomic_write = checkpoint.atomic_write
    def pause_before_json(path, data):
        if path.name == "checkpoint.json":
            print("WEIGHTS-WRITTEN", flush=True)
            time.sleep(120)
        real_atomic_write(path, data)
    checkpoint.atomic_write = pause_before_json
    with st.no_grad():
        model.weight.data[...] = 7
    writer.save(model=model, optimizer=optimizer, epoch=2)
"""


@posix_only
def test_sigkill_between_weights_and_json_keeps_the_previous_checkpoint(tmp_path):
    child = start(PAUSE_BETWEEN_WEIGHTS_AND_JSON, tmp_path)
    wait_for_line(child, "WEIGHTS-WRITTEN")
    kill(child)
    saved = load_checkpoint(tmp_path)              # the JSON still names epoch 1's weights, intact
    assert saved.epoch == 1 and (saved.model_state["weight"] != 7).all()
    assert (tmp_path / "checkpoint-epoch0002.safetensors").exists()   # the orphan of the killed save
    # The next save continues cleanly: the orphan and any temporary files go.
    (tmp_path / ".checkpoint.json.0123456789abcdef.tmp").write_bytes(b"{half")
    model = nn.Linear(3, 2)
    CheckpointWriter(tmp_path).save(model=model, optimizer=st.optim.Adam(model.parameters()), epoch=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-epoch0002-1.safetensors", "checkpoint.json",
                                                          "metrics.json"]
    assert load_checkpoint(tmp_path).epoch == 2


# ----- resume across a process restart ---------------------------------------------------------------------------
TRAIN = """
    import json, sys, numpy, striate as st
    from striate import nn
    from striate.data import DataLoader, Dataset
    from striate.tools.checkpoint import CheckpointWriter
    from striate.tools.train import fit

    directory, epochs, resume, log = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "resume", sys.argv[4]

    class Recorded(Dataset):
        # Remembers which samples were fetched, in order: the shuffle order the run really saw.
        def __init__(self, x, y):
            self.x, self.y, self.seen = x, y, []
        def __len__(self):
            return len(self.x)
        def __getitem__(self, i):
            self.seen.append(int(i))
            return self.x[i], int(self.y[i])

    rng = numpy.random.default_rng(0)
    data = Recorded(rng.standard_normal((40, 1, 10, 10)).astype(numpy.float32), rng.integers(0, 3, 40))
    # A resumed process starts from a different seed: everything must come back from the checkpoint.
    st.manual_seed(999 if resume else 0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.3), nn.Flatten(),
                          nn.Linear(256, 3))
    optimizer = st.optim.Adam(model.parameters(), lr=0.01, amsgrad=True)
    scheduler = st.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    loader = DataLoader(data, batch_size=8, shuffle=True)           # seed drawn from the generator
    fit(model, loader, None, optimizer, epochs, scheduler=scheduler, checkpoint=CheckpointWriter(directory),
        resume=directory if resume else None, progress=False, stream=False)
    with open(log, "w") as f:
        json.dump({"seen": data.seen, "rng_state": st.random.get_rng_state(), "next_draw": float(st.rand(1).item())}, f)
"""


def run_training(*args):
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(TRAIN), *map(str, args)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def test_n_plus_n_epochs_across_a_process_restart_equal_2n_in_one_run_bit_for_bit(tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    run_training(straight, 4, "fresh", tmp_path / "straight.json")
    run_training(resumed, 2, "fresh", tmp_path / "first-half.json")
    run_training(resumed, 4, "resume", tmp_path / "second-half.json")

    a, b = load_checkpoint(straight), load_checkpoint(resumed)
    assert a.epoch == b.epoch == 4
    assert sorted(a.tensors) == sorted(b.tensors)
    assert any(key.startswith("optimizer.state.") for key in a.tensors)       # Adam moments, amsgrad maxima
    for key, value in a.tensors.items():               # parameters, BatchNorm buffers, optimizer state
        assert value.dtype == b.tensors[key].dtype and value.tobytes() == b.tensors[key].tobytes(), key
    for key in ("rng_state", "loader", "scheduler", "optimizer"):
        assert a.meta[key] == b.meta[key], key
    timing = {"seconds", "images_per_s"}
    assert ([{k: v for k, v in r.items() if k not in timing} for r in a.history]
            == [{k: v for k, v in r.items() if k not in timing} for r in b.history])

    logs = {name: json.loads((tmp_path / f"{name}.json").read_text())
            for name in ("straight", "first-half", "second-half")}
    assert logs["first-half"]["seen"] + logs["second-half"]["seen"] == logs["straight"]["seen"]   # shuffle order
    assert logs["second-half"]["rng_state"] == logs["straight"]["rng_state"]
    assert logs["second-half"]["next_draw"] == logs["straight"]["next_draw"]


# ----- divergence: stop, name the op, keep the last good checkpoint -------------------------------------------------
class Exp(nn.Module):
    def forward(self, x):
        return x.exp()


def blow_up_run(tmp_path):
    st.manual_seed(0)
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((48, 4)).astype(numpy.float32)
    y = rng.integers(0, 4, 48)
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True, seed=0)
    model = nn.Sequential(nn.Linear(4, 4), Exp(), nn.BatchNorm1d(4), nn.Linear(4, 4))
    with st.no_grad():
        model[0].weight.data[...] = numpy.eye(4, dtype=numpy.float32)
    optimizer = st.optim.SGD(model.parameters(), lr=0.01)
    return model, optimizer, TamperedLoader(loader, epoch=2, step=4, value=1e4)   # exp() overflows on it


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_inf_loss_stops_at_that_step_names_the_op_and_keeps_the_last_good_checkpoint(tmp_path):
    model, optimizer, loader = blow_up_run(tmp_path)
    with pytest.raises(TrainingDiverged) as caught:
        fit(model, loader, None, optimizer, 3, checkpoint=tmp_path, progress=False, stream=False)
    error = caught.value
    assert (error.epoch, error.step) == (2, 4)
    assert error.op == "Tensor.exp" and error.module == "1"
    assert error.anomaly.kind == "Inf" and error.anomaly.inputs_finite
    assert ("Re-run under anomaly mode, Inf first appeared in the output of Tensor.exp (Function Exp) in module '1', "
            "from finite inputs.") in str(error)
    assert "the last good checkpoint is kept in" in str(error)
    saved = load_checkpoint(error.checkpoint)
    assert saved.epoch == 1 and all(numpy.isfinite(v).all() for v in saved.model_state.values())
    # The kept checkpoint is the state after epoch 1, exactly: a fresh 1-epoch run reproduces it.
    fresh_model, fresh_optimizer, fresh_loader = blow_up_run(tmp_path)
    fit(fresh_model, fresh_loader, None, fresh_optimizer, 1, progress=False, stream=False)
    for key, value in fresh_model.state_dict().items():
        assert value.tobytes() == saved.model_state[key].tobytes(), key


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_from_the_data_is_traced_to_the_op_that_received_it(tmp_path):
    st.manual_seed(0)
    rng = numpy.random.default_rng(1)
    x = rng.standard_normal((16, 1, 6, 6)).astype(numpy.float32)
    x[5, 0, 2, 2] = numpy.nan
    loader = DataLoader(TensorDataset(x, rng.integers(0, 2, 16)), batch_size=4)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(32, 2))
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step 2: loss is nan.* NaN first appeared in the output of "
                                               r"conv2d \(Function \w+\) in module '0', passing on non-finite values"):
        fit(model, loader, None, st.optim.SGD(model.parameters(), lr=0.1), 1, progress=False, stream=False)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_replaying_the_step_leaves_no_trace():
    """The re-run rewinds the random state for dropout, then restores it and BatchNorm's buffers."""
    st.manual_seed(3)
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), Exp(), nn.BatchNorm1d(4), nn.Linear(4, 2)).train()
    images = st.tensor(numpy.full((6, 4), 30.0, numpy.float32) * numpy.arange(6, dtype=numpy.float32)[:, None])
    labels = st.tensor(numpy.zeros(6, numpy.int64))
    rng_state = st.random.get_rng_state()
    loss = st.nn.functional.cross_entropy(model(images), labels)       # the step, as train_one_epoch runs it
    after_step_rng = st.random.get_rng_state()
    buffers = {name: b.numpy().copy() for name, b in model.named_buffers()}
    anomaly, module = train._locate_non_finite(model, images, labels, st.nn.functional.cross_entropy, rng_state)
    assert not numpy.isfinite(loss.item()) and anomaly is not None and module == "2"
    assert st.random.get_rng_state() == after_step_rng
    for name, b in model.named_buffers():
        numpy.testing.assert_array_equal(b.numpy(), buffers[name])
