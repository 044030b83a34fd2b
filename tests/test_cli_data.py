"""``striate train --data cifar10:DIR | cifar100:DIR | folder:DIR`` end to end on tiny files, and its errors."""
import json
import os
import pickle

import numpy
import pytest

from cifar_files import write_cifar
from cli_run import assert_one_line_error, run_cli
from striate.tools.cli import parse_data_spec

Image = pytest.importorskip("PIL.Image")

TINY = ["--epochs", "1", "--batch-size", "8", "--seed", "0"]


def test_parse_data_spec_knows_the_new_data_sets(tmp_path):
    for name in ("cifar10", "cifar100", "folder"):
        spec = parse_data_spec(f"{name.upper()}:{tmp_path}")
        assert spec.name == name and spec.root == str(tmp_path)
    assert parse_data_spec("folder:a:b").root.endswith("a:b")   # only the first colon separates
    with pytest.raises(ValueError, match=r"'cifar10': give the directory of the CIFAR-10 files, e\.g\. 'cifar10:"):
        parse_data_spec("cifar10")
    with pytest.raises(ValueError, match=r"give the directory of the image folder"):
        parse_data_spec("folder:")
    with pytest.raises(ValueError, match=r"expected 'sample' .*'cifar10:DIR' or 'cifar100:DIR'.*'folder:DIR'"):
        parse_data_spec("cifar:data")


@pytest.mark.parametrize("kind,fmt,classes", [("cifar10", "binary", 10), ("cifar100", "python", 100)])
def test_train_evaluate_predict_on_cifar(tmp_path, rng, capsys, kind, fmt, classes):
    write_cifar(tmp_path / "data", kind, fmt, rng, n=8 if kind == "cifar10" else 16, protocol=2)
    run = tmp_path / "run"
    status, out, err = run_cli(capsys, "train", "--data", f"{kind}:{tmp_path / 'data'}", *TINY, "--out", run)
    assert status == 0, err
    assert f"on {kind}:" in out
    meta = json.loads((run / "checkpoint.json").read_text())
    assert meta["model"]["kwargs"] == {"num_classes": classes, "in_channels": 3, "input_size": 32}
    mean = [0.4914, 0.4822, 0.4465] if kind == "cifar10" else [0.5071, 0.4865, 0.4409]
    assert meta["normalize"]["mean"] == mean and len(meta["normalize"]["std"]) == 3
    assert meta["input"] == {"channels": 3, "height": 32, "width": 32, "foreground": None}
    assert len(meta["classes"]) == classes
    status, out, err = run_cli(capsys, "evaluate", run, "--json")
    assert status == 0, err
    assert json.loads(out)["count"] == (8 if kind == "cifar10" else 16)
    # predict prepares a photo as the training images were: RGB 32x32, never inverted
    white = tmp_path / "white.png"
    Image.fromarray(numpy.full((40, 50, 3), 250, numpy.uint8)).save(white)
    status, out, err = run_cli(capsys, "predict", run, white, "--json", "--top-k", "1")
    assert status == 0, err
    assert json.loads(out)["predictions"][0]["top_k"][0]["name"] in meta["classes"]


def test_predict_on_cifar_does_not_invert_images(tmp_path, rng, capsys, monkeypatch):
    write_cifar(tmp_path / "data", "cifar10", "binary", rng, n=4)
    run = tmp_path / "run"
    assert run_cli(capsys, "train", "--data", f"cifar10:{tmp_path / 'data'}", *TINY, "--out", run)[0] == 0
    seen = []
    import striate.tools.cli as cli
    original = cli.read_image
    monkeypatch.setattr(cli, "read_image", lambda *a: seen.append(a[-1]) or original(*a))
    white = tmp_path / "white.png"
    Image.fromarray(numpy.full((32, 32, 3), 250, numpy.uint8)).save(white)
    run_cli(capsys, "predict", run, white)
    run_cli(capsys, "predict", run, white, "--invert", "yes")
    assert seen == ["no", "yes"]


def write_folder(root, rng, counts, size=None, gray=False):
    """``counts`` images per class, of random sizes (or ``size``×``size``), RGB or grayscale."""
    for name, count in counts.items():
        os.makedirs(root / name, exist_ok=True)
        for i in range(count):
            h, w = (size, size) if size else rng.integers(20, 60, size=2)
            shape = (h, w) if gray else (h, w, 3)
            Image.fromarray(rng.integers(0, 256, size=shape, dtype=numpy.uint8)).save(root / name / f"{i:03d}.png")


def test_train_on_an_image_folder_holds_out_every_tenth_image(tmp_path, rng, capsys):
    write_folder(tmp_path / "photos", rng, {"cat": 20, "dog": 12})
    run = tmp_path / "run"
    status, out, err = run_cli(capsys, "train", "--data", f"folder:{tmp_path / 'photos'}", *TINY, "--out", run)
    assert status == 0, err
    assert "29 training / 3 held-out images" in out   # cat: 2 of 20, dog: 1 of 12
    meta = json.loads((run / "checkpoint.json").read_text())
    assert meta["classes"] == ["cat", "dog"]
    assert meta["model"]["kwargs"] == {"num_classes": 2, "in_channels": 3, "input_size": 32}   # mixed sizes: 32
    assert len(meta["normalize"]["mean"]) == 3 and all(0.3 < m < 0.7 for m in meta["normalize"]["mean"])
    status, out, err = run_cli(capsys, "evaluate", run, "--json")
    assert status == 0 and json.loads(out)["count"] == 3


def test_train_and_val_folders_and_a_shared_square_size_are_kept(tmp_path, rng, capsys):
    write_folder(tmp_path / "digits" / "train", rng, {"0": 6, "1": 6}, size=28, gray=True)
    write_folder(tmp_path / "digits" / "val", rng, {"0": 2, "1": 3}, size=28, gray=True)
    run = tmp_path / "run"
    status, out, err = run_cli(capsys, "train", "--data", f"folder:{tmp_path / 'digits'}", *TINY, "--out", run)
    assert status == 0, err
    assert "12 training / 5 held-out images" in out
    meta = json.loads((run / "checkpoint.json").read_text())
    assert meta["model"]["kwargs"] == {"num_classes": 2, "in_channels": 1, "input_size": 28}


@pytest.mark.parametrize("problem,pattern", [
    ("few images", "no held-out images: give each class at least 10 images"),
    ("class mismatch", "has classes ['a', 'c'] but"),
    ("truncated image", "cannot decode the image"),
    ("empty", "no class folders in"),
])
def test_folder_problems_exit_1_with_one_line(tmp_path, rng, capsys, problem, pattern):
    root = tmp_path / "data"
    root.mkdir()
    if problem == "few images":
        write_folder(root, rng, {"a": 3, "b": 4})
    elif problem == "class mismatch":
        write_folder(root / "train", rng, {"a": 2, "b": 2})
        write_folder(root / "val", rng, {"a": 1, "c": 1})
    elif problem == "truncated image":
        write_folder(root, rng, {"a": 10, "b": 10}, size=40)
        path = root / "a" / "003.png"
        path.write_bytes(path.read_bytes()[:200])
    status, _, err = run_cli(capsys, "train", "--data", f"folder:{root}", *TINY, "--out", tmp_path / "run")
    assert_one_line_error(status, err, 1, pattern)


class RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_corrupt_and_hostile_cifar_files_exit_1_with_one_line(tmp_path, rng, capsys):
    folder, _ = write_cifar(tmp_path, "cifar10", "binary", rng)
    with open(os.path.join(folder, "data_batch_2.bin"), "ab") as f:
        f.write(b"\x00")
    status, _, err = run_cli(capsys, "train", "--data", f"cifar10:{tmp_path}", *TINY, "--out", tmp_path / "r1")
    assert_one_line_error(status, err, 1, "data_batch_2.bin: file size 9220 is not a positive multiple")
    hostile = tmp_path / "hostile"
    py_folder, _ = write_cifar(hostile, "cifar10", "python", rng)
    with open(os.path.join(py_folder, "data_batch_1"), "wb") as f:
        f.write(pickle.dumps({b"data": numpy.zeros((1, 3072), numpy.uint8), b"labels": [RunsACommand(tmp_path / "m")]},
                             protocol=2))
    status, _, err = run_cli(capsys, "train", "--data", f"cifar10:{hostile}", *TINY, "--out", tmp_path / "r2")
    assert_one_line_error(status, err, 1, "refused global")
    assert not (tmp_path / "m").exists()
    status, _, err = run_cli(capsys, "train", "--data", f"cifar100:{tmp_path / 'nothing'}", *TINY)
    assert_one_line_error(status, err, 1, "CIFAR100: expected the training files")


# ----- --augment ---------------------------------------------------------------------------------------------
def test_augmented_images_are_mirrored_or_shifted_windows_of_the_originals(rng):
    import striate as st
    from striate.tools.cli import _loader
    images = rng.integers(0, 256, (40, 8, 8, 3)).astype(numpy.uint8)
    labels = numpy.arange(40) % 10
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
    plain = next(iter(_loader(images, labels, mean, std, 40)))[0].numpy()           # (40, 3, 8, 8)
    st.manual_seed(0)
    flipped = next(iter(_loader(images, labels, mean, std, 40, augment="flip")))[0].numpy()
    mirrored = [numpy.array_equal(f, p[..., ::-1]) for f, p in zip(flipped, plain)]
    assert all(m or numpy.array_equal(f, p) for m, f, p in zip(mirrored, flipped, plain))
    assert 5 <= sum(mirrored) <= 35                                                 # about half, p = 1/2
    st.manual_seed(0)
    cropped = next(iter(_loader(images, labels, mean, std, 40, augment="crop")))[0].numpy()
    padded = numpy.pad(plain, ((0, 0), (0, 0), (1, 1), (1, 1)))                    # 8 // 8 = 1, zeros = the mean
    offsets = []
    for c, p in zip(cropped, padded):
        hits = [(t, l) for t in range(3) for l in range(3) if numpy.array_equal(c, p[:, t:t + 8, l:l + 8])]
        assert hits, "an augmented image is not a window of the padded original"
        offsets.append(hits[0])
    assert len(set(offsets)) > 3                                                    # the offsets vary


def test_resume_with_augmentation_equals_a_straight_run(tmp_path, rng):
    from striate.tools.checkpoint import load_checkpoint
    from striate.tools.cli import main
    root, _ = write_cifar(tmp_path, "cifar10", "binary", rng, n=30)
    common = ["--data", f"cifar10:{root}", "--batch-size", "16", "--schedule", "constant", "--augment", "crop+flip"]
    assert main(["train", *common, "--epochs", "2", "--out", str(tmp_path / "straight")]) == 0
    assert main(["train", *common, "--epochs", "1", "--out", str(tmp_path / "resumed")]) == 0
    assert main(["train", "--resume", str(tmp_path / "resumed"), "--epochs", "2"]) == 0
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "resumed")
    assert a.meta["args"]["augment"] == "crop+flip" and a.epoch == b.epoch == 2
    for key, value in a.tensors.items():
        assert numpy.array_equal(value, b.tensors[key]), key
    # Augmentation changes what is learned: the same run without it ends elsewhere.
    assert main(["train", *common[:-2], "--epochs", "2", "--out", str(tmp_path / "plain")]) == 0
    plain = load_checkpoint(tmp_path / "plain")
    assert not all(numpy.array_equal(v, plain.tensors[k]) for k, v in a.tensors.items())


def test_a_run_from_before_augment_existed_resumes_without_it(tmp_path, rng, capsys):
    from striate.tools.cli import main
    root, _ = write_cifar(tmp_path, "cifar10", "binary", rng, n=30)
    assert main(["train", "--data", f"cifar10:{root}", "--epochs", "1", "--schedule", "constant",
                 "--out", str(tmp_path / "old")]) == 0
    path = tmp_path / "old" / "checkpoint.json"
    meta = json.loads(path.read_text())
    del meta["args"]["augment"]
    path.write_text(json.dumps(meta))
    capsys.readouterr()
    status, out, err = run_cli(capsys, "train", "--resume", tmp_path / "old", "--epochs", "2")
    assert status == 0, err
    status, _, err = run_cli(capsys, "train", "--resume", tmp_path / "old", "--epochs", "3", "--augment", "flip")
    assert_one_line_error(status, err, 1, "cannot change --augment when resuming")
