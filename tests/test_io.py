"""striate.io: atomic writes leave either the old file or the complete new one, and never a temporary file."""
import errno
import os
import stat
import sys

import pytest

import striate.io as sio
from striate.io import atomic_open, atomic_write, atomic_write_text


def listing(directory):
    return sorted(os.listdir(directory))


@pytest.fixture
def old_file(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"old contents")
    return path


# ----- the normal path ----------------------------------------------------------------------------
def test_atomic_write_creates_and_replaces(tmp_path):
    path = tmp_path / "out.bin"
    atomic_write(path, b"first")
    assert path.read_bytes() == b"first"
    atomic_write(str(path), bytearray(b"second, longer"))
    assert path.read_bytes() == b"second, longer"
    atomic_write(path, memoryview(b"3"))
    assert path.read_bytes() == b"3"
    assert listing(tmp_path) == ["out.bin"]


def test_atomic_write_empty_and_binary_bytes(tmp_path):
    path = tmp_path / "out.bin"
    payload = bytes(range(256)) * 4 + b"\r\n\n\r"
    atomic_write(path, payload)
    assert path.read_bytes() == payload
    atomic_write(path, b"")
    assert path.read_bytes() == b""


def test_atomic_write_text_utf8(tmp_path):
    path = tmp_path / "metrics.json"
    atomic_write_text(path, '{"name": "réseau", "n": 1}\n')
    assert path.read_bytes() == '{"name": "réseau", "n": 1}\n'.encode("utf-8")
    atomic_write_text(path, "x", encoding="utf-16-le")
    assert path.read_bytes() == b"x\x00"


def test_atomic_open_streams_several_writes(tmp_path):
    path = tmp_path / "out.bin"
    with atomic_open(path) as file:
        for i in range(10):
            file.write(bytes([i]) * 3)
        assert not path.exists()  # nothing visible until the block ends
    assert path.read_bytes() == b"".join(bytes([i]) * 3 for i in range(10))


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_new_file_gets_umask_permissions_not_private_temp_ones(tmp_path):
    old_umask = os.umask(0o022)
    try:
        path = tmp_path / "out.bin"
        atomic_write(path, b"x")
        assert os.stat(path).st_mode & 0o777 == 0o644
    finally:
        os.umask(old_umask)


def test_protocol_order_write_flush_fsync_replace_then_directory_fsync(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append("fsync-dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync-file")
        real_fsync(fd)

    def replace(src, dst):
        # The temporary file is complete on disk when it is renamed.
        with open(src, "rb") as file:
            events.append(("replace", file.read()))
        real_replace(src, dst)

    if sys.platform == "win32":
        pytest.skip("directories cannot be fsynced on Windows")
    monkeypatch.setattr(sio.os, "fsync", fsync)
    monkeypatch.setattr(sio.os, "replace", replace)
    atomic_write(tmp_path / "out.bin", b"payload")
    assert events == ["fsync-file", ("replace", b"payload"), "fsync-dir"]


def test_temp_file_is_hidden_beside_target(tmp_path):
    seen = []
    with atomic_open(tmp_path / "out.bin") as file:
        file.write(b"x")
        seen = listing(tmp_path)
    assert len(seen) == 1 and seen[0].startswith(".out.bin.") and seen[0].endswith(".tmp")
    assert listing(tmp_path) == ["out.bin"]


def test_two_writers_at_once_do_not_clash(tmp_path):
    path = tmp_path / "out.bin"
    with atomic_open(path) as first:
        with atomic_open(path) as second:
            first.write(b"first")
            second.write(b"second")
            assert len(listing(tmp_path)) == 2
        assert path.read_bytes() == b"second"
    assert path.read_bytes() == b"first"  # the last one to finish wins, whole
    assert listing(tmp_path) == ["out.bin"]


def test_directory_fsync_skipped_where_unsupported(tmp_path, monkeypatch):
    real_open = os.open

    def open_refusing_directories(path, flags, *args):
        if os.path.isdir(path):
            raise PermissionError(13, "cannot open a directory", path)
        return real_open(path, flags, *args)

    monkeypatch.setattr(sio.os, "open", open_refusing_directories)
    atomic_write(tmp_path / "out.bin", b"ok")
    assert (tmp_path / "out.bin").read_bytes() == b"ok"


def test_directory_fsync_failure_is_ignored(tmp_path, monkeypatch):
    real_fsync = os.fsync

    def fsync(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "Invalid argument")  # what some file systems answer
        real_fsync(fd)

    monkeypatch.setattr(sio.os, "fsync", fsync)
    atomic_write(tmp_path / "out.bin", b"ok")
    assert (tmp_path / "out.bin").read_bytes() == b"ok"


# ----- failures leave the old file and no temporary file ------------------------------------------
@pytest.mark.parametrize("exception", [RuntimeError("disk on fire"), KeyboardInterrupt()])
def test_exception_mid_write_keeps_old_file(old_file, exception):
    with pytest.raises(type(exception)):
        with atomic_open(old_file) as file:
            file.write(b"half of the new con")
            raise exception
    assert old_file.read_bytes() == b"old contents"
    assert listing(old_file.parent) == ["weights.bin"]


@pytest.mark.parametrize("exception", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_failing_fsync_keeps_old_file(old_file, monkeypatch, exception):
    def fsync(fd):
        raise exception

    monkeypatch.setattr(sio.os, "fsync", fsync)
    with pytest.raises(type(exception)):
        atomic_write(old_file, b"new contents")
    assert old_file.read_bytes() == b"old contents"
    assert listing(old_file.parent) == ["weights.bin"]


def test_failing_rename_keeps_old_file(old_file, monkeypatch):
    def replace(src, dst):
        raise PermissionError(13, "target is locked", dst)

    monkeypatch.setattr(sio.os, "replace", replace)
    with pytest.raises(PermissionError, match="locked"):
        atomic_write(old_file, b"new contents")
    assert old_file.read_bytes() == b"old contents"
    assert listing(old_file.parent) == ["weights.bin"]


def test_failing_write_call_keeps_old_file(old_file):
    class Unwritable:
        """Not bytes-like: the file object's write raises TypeError after the temp file exists."""

    with pytest.raises(TypeError):
        atomic_write(old_file, Unwritable())
    assert old_file.read_bytes() == b"old contents"
    assert listing(old_file.parent) == ["weights.bin"]


def test_missing_directory_raises_and_creates_nothing(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "no" / "such" / "dir.bin", b"x")
    assert listing(tmp_path) == []


# ----- argument errors ----------------------------------------------------------------------------
def test_atomic_write_refuses_str(tmp_path):
    with pytest.raises(TypeError, match="atomic_write: expected bytes-like data, got str"):
        atomic_write(tmp_path / "x", "text")
    assert listing(tmp_path) == []


def test_atomic_write_text_refuses_bytes(tmp_path):
    with pytest.raises(TypeError, match="atomic_write_text: expected str text, got bytes"):
        atomic_write_text(tmp_path / "x", b"bytes")
    assert listing(tmp_path) == []


def test_a_missing_directory_is_named_not_the_temporary_file(tmp_path):
    target = tmp_path / "absent" / "weights.safetensors"
    with pytest.raises(FileNotFoundError, match=r"^cannot write .*weights\.safetensors: no directory .*absent$"):
        atomic_write(target, b"x")
    assert not (tmp_path / "absent").exists()
