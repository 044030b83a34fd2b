"""The ``striate`` command: train / evaluate / predict end to end on tiny runs, help texts, one-line errors."""
import json
import subprocess
import sys

import numpy
import pytest

import striate as st
from striate.data.datasets import Digits
from striate.tools.checkpoint import load_checkpoint
from striate.tools.cli import main, parse_data_spec, read_image, to_model_input

from cli_run import assert_one_line_error, run_cli

PIL = pytest.importorskip("PIL.Image")

TINY = ["--subset", "400", "--epochs", "1", "--batch-size", "20", "--seed", "0"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny training run, shared by the evaluate and predict tests."""
    out = tmp_path_factory.mktemp("run")
    status = main(["train", *TINY, "--out", str(out)])
    assert status == 0
    return out


def test_train_writes_metrics_and_checkpoint(trained, capsys):
    metrics = json.loads((trained / "metrics.json").read_text())
    assert len(metrics) == 1
    assert {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "images_per_s"} <= set(metrics[0])
    meta = json.loads((trained / "checkpoint.json").read_text())
    assert meta["model"] == {"name": "lenet5", "kwargs": {"num_classes": 10, "in_channels": 1, "input_size": 28}}
    assert meta["normalize"] == {"mean": [0.1307], "std": [0.3081]}
    assert meta["data"]["spec"] == "sample" and meta["args"]["subset"] == 400
    assert meta["optimizer"]["class"] == "Adam" and meta["epoch"] == 1


def test_train_prints_a_summary(tmp_path, capsys):
    status, out, err = run_cli(capsys, "train", "--subset", "100", "--epochs", "1", "--batch-size", "50",
                               "--model", "mlp", "--optimizer", "sgd", "--lr", "0.01", "--schedule", "constant",
                               "--out", tmp_path)
    assert status == 0, err
    assert out.startswith("mlp (535,818 parameters) on sample: 100 training / 2,000 held-out images")
    assert "epoch 1/1  loss" in out and "held-out accuracy" in out
    assert load_checkpoint(tmp_path).meta["optimizer"]["class"] == "SGD"


def test_evaluate_json_prints_one_object(trained, capsys):
    status, out, err = run_cli(capsys, "evaluate", trained, "--json")
    assert status == 0, err
    assert len(out.strip().splitlines()) == 1
    report = json.loads(out)
    assert 0.3 < report["accuracy"] <= 1      # 20 steps on 400 images already beat chance (0.1) well
    assert report["accuracy"] == pytest.approx(json.loads((trained / "metrics.json").read_text())[0]["val_accuracy"])
    matrix = numpy.array(report["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == report["count"] == 2000
    assert len(report["per_class_accuracy"]) == 10


def test_evaluate_prints_tables(trained, capsys):
    status, out, err = run_cli(capsys, "evaluate", trained / "checkpoint.json")
    assert status == 0, err
    assert "accuracy" in out and "per-class accuracy" in out and "confusion matrix" in out
    assert "7 - seven" in out and "true 9" in out


def write_digit_pngs(directory):
    test = Digits(train=False)
    paths = []
    for i in range(3):
        path = directory / f"digit{i}.png"
        PIL.fromarray(test.data[i]).save(path)                              # white on black, 28×28
        paths.append(path)
    big = directory / "paper.png"                                            # dark ink on white paper, RGB, 112×112
    PIL.fromarray(255 - test.data[0]).convert("RGB").resize((112, 112), PIL.Resampling.NEAREST).save(big)
    clear = directory / "transparent.png"                                   # black ink on a transparent background
    rgba = numpy.zeros((28, 28, 4), numpy.uint8)
    rgba[..., 3] = test.data[0]
    PIL.fromarray(rgba, "RGBA").resize((112, 112), PIL.Resampling.NEAREST).save(clear)
    return paths + [big, clear]


def test_read_image_turns_other_conventions_into_training_digits(tmp_path):
    original = Digits(train=False).data[0].astype(float)
    for path in write_digit_pngs(tmp_path)[-2:]:
        image = read_image(path, channels=1, height=28, width=28)
        assert image.shape == (28, 28) and image.dtype == numpy.uint8
        assert numpy.abs(image - original).mean() < 8, path.name     # inverted back, scaled back
        assert numpy.abs(read_image(path, 1, 28, 28, invert="no") - original).mean() > 100


def test_predict_top_k(trained, tmp_path, capsys):
    images = write_digit_pngs(tmp_path)
    status, out, err = run_cli(capsys, "predict", trained, *images, "--top-k", "3", "--json")
    assert status == 0, err
    predictions = json.loads(out)["predictions"]
    assert [p["image"] for p in predictions] == [str(path) for path in images]
    for prediction in predictions:
        probabilities = [guess["probability"] for guess in prediction["top_k"]]
        assert len(probabilities) == 3
        assert probabilities == sorted(probabilities, reverse=True)
        assert 0 < sum(probabilities) <= 1 + 1e-6
    status, out, err = run_cli(capsys, "predict", trained, images[0], "--top-k", "2")
    assert status == 0 and out.startswith(f"{images[0]}: ") and out.count("%") == 2


def test_predict_prepares_images_exactly_as_training(trained, tmp_path, capsys):
    """A 28×28 PNG of a test digit gets the same probabilities as the test image fed to the model directly."""
    digit = Digits(train=False).data[5]
    path = tmp_path / "d.png"
    PIL.fromarray(digit).save(path)
    status, out, _ = run_cli(capsys, "predict", trained, path, "--top-k", "10", "--json")
    assert status == 0
    got = {g["class"]: g["probability"] for g in json.loads(out)["predictions"][0]["top_k"]}
    model = load_checkpoint(trained).build_model()
    with st.no_grad():
        logits = model(st.tensor(to_model_input(digit[None], 0.1307, 0.3081))).numpy()[0]
    expected = numpy.exp(logits - logits.max())
    expected /= expected.sum()
    numpy.testing.assert_allclose([got[c] for c in range(10)], expected, rtol=1e-5, atol=1e-7)


def test_resume_from_the_command_line_equals_a_straight_run(tmp_path, capsys):
    common = ["--subset", "200", "--batch-size", "50", "--schedule", "constant"]
    assert main(["train", *common, "--epochs", "2", "--out", str(tmp_path / "straight")]) == 0
    assert main(["train", *common, "--epochs", "1", "--out", str(tmp_path / "resumed")]) == 0
    assert main(["train", "--resume", str(tmp_path / "resumed"), "--epochs", "2"]) == 0
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "resumed")
    assert a.epoch == b.epoch == 2
    for key, value in a.tensors.items():
        assert numpy.array_equal(value, b.tensors[key]), key
    capsys.readouterr()
    status, _, err = run_cli(capsys, "train", "--resume", tmp_path / "resumed", "--model", "mlp")
    assert_one_line_error(status, err, 1, "cannot change --model when resuming")
    status, _, err = run_cli(capsys, "train", "--resume", tmp_path / "resumed")
    assert_one_line_error(status, err, 1, "has already trained 2 epochs")


# Bad arguments (exit status 2, one line): the CLI table in tests/error_cases.py.


def test_missing_and_corrupt_files_exit_1_with_one_line(trained, tmp_path, capsys):
    status, _, err = run_cli(capsys, "evaluate", tmp_path / "nothing")
    assert_one_line_error(status, err, 1, "no checkpoint at")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "checkpoint.json").write_text("{oops")
    status, _, err = run_cli(capsys, "evaluate", bad)
    assert_one_line_error(status, err, 1, "not valid JSON")
    status, _, err = run_cli(capsys, "train", "--data", f"mnist:{tmp_path}", "--epochs", "1")
    assert_one_line_error(status, err, 1, "not found in directory")
    status, _, err = run_cli(capsys, "predict", trained, tmp_path / "missing.png")
    assert_one_line_error(status, err, 1, "missing.png")
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("hello")
    status, _, err = run_cli(capsys, "predict", trained, not_an_image)
    assert_one_line_error(status, err, 1, "cannot read image")


def test_help_texts(capsys):
    for argv in (["--help"], ["train", "--help"], ["evaluate", "--help"], ["predict", "--help"]):
        status, out, _ = run_cli(capsys, *argv)
        assert status == 0 and "examples:" in out
    _, out, _ = run_cli(capsys, "train", "--help")
    assert "lenet5" in out and "61,706" in out and "--resume" in out
    status, _, err = run_cli(capsys)
    assert status == 2 and "commands" in err


def test_python_dash_m_striate():
    result = subprocess.run([sys.executable, "-m", "striate", "evaluate", "/nonexistent/run"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == "striate evaluate: error: no checkpoint at /nonexistent/run/checkpoint.json" \
        or result.stderr.strip().startswith("striate evaluate: error: no checkpoint at")


def test_parse_data_spec():
    assert parse_data_spec("sample").text == "sample"
    spec = parse_data_spec("Fashion-MNIST:some/dir")
    assert spec.name == "fashion-mnist" and spec.root.endswith("some/dir")
    with pytest.raises(ValueError, match="expected .sample."):
        parse_data_spec("sample:dir")
