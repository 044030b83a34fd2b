"""The fuzzers themselves: a short bounded run of every target in CI, and proof that the harness catches bugs.

The long runs are documented in fuzz/README.md (``python fuzz/run.py --seconds 600``).
"""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "fuzz"))
import run as fuzz_run  # noqa: E402
import targets as fuzz_targets  # noqa: E402

TARGETS = sorted(fuzz_targets.TARGETS)
needs_atheris = pytest.mark.skipif(not fuzz_run.atheris_available(),
                                   reason="atheris is not installed (pip install atheris); the plain driver still runs")


@pytest.mark.parametrize("name", TARGETS)
def test_plain_driver_short_run_is_clean(name, tmp_path):
    assert fuzz_run.run_plain(name, runs=400, seed=1, artifacts=str(tmp_path)) == 400
    assert not list(tmp_path.iterdir())


@needs_atheris
@pytest.mark.parametrize("name", TARGETS)
def test_atheris_short_run_is_clean(name, tmp_path):
    result = fuzz_run.run_atheris(name, seconds=1, runs=1500, artifacts=str(tmp_path), quiet=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done" in result.stderr and not list(tmp_path.iterdir())


def selftest_env():
    return {**os.environ, "STRIATE_FUZZ_SELFTEST": "1"}


def test_plain_driver_reports_and_saves_a_failing_input(tmp_path, monkeypatch):
    monkeypatch.setitem(fuzz_targets.TARGETS, "planted", lambda data: {}[data[:1]] if data[:1] == b"x" else None)
    monkeypatch.setitem(fuzz_targets.SEEDS, "planted", [b"ok", b"x"])
    with pytest.raises(fuzz_run.Failure, match=r"planted: KeyError") as caught:
        fuzz_run.run_plain("planted", runs=10, artifacts=str(tmp_path))
    with open(caught.value.path, "rb") as saved:
        assert saved.read() == b"x"


def test_plain_driver_reports_a_slow_input(tmp_path, monkeypatch):
    import time
    monkeypatch.setitem(fuzz_targets.TARGETS, "slow", lambda data: time.sleep(0.05))
    monkeypatch.setitem(fuzz_targets.SEEDS, "slow", [b"a"])
    with pytest.raises(fuzz_run.Failure, match=r"slow: one input took .* s \(limit 0.01 s\)"):
        fuzz_run.run_plain("slow", runs=3, timeout=0.01, artifacts=str(tmp_path))


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="resident memory is read from /proc (Linux)")
def test_plain_driver_limits_growth_not_memory_held_before_it(tmp_path, monkeypatch):
    held = bytearray(64 << 20)   # held before the run (as an earlier test in the same worker might): not counted
    leak = []
    monkeypatch.setitem(fuzz_targets.TARGETS, "leaky", lambda data: leak.append(bytearray(8 << 20)))
    monkeypatch.setitem(fuzz_targets.SEEDS, "leaky", [b"a"])
    with pytest.raises(fuzz_run.Failure, match=r"leaky: the process grew by \d+ MB \(limit 32 MB\)"):
        fuzz_run.run_plain("leaky", runs=20, rss_limit_mb=32, artifacts=str(tmp_path))
    assert 4 <= len(leak) < 20 and len(held) == 64 << 20


def test_the_command_fails_on_a_planted_bug_with_either_engine(tmp_path):
    engines = ["plain"] + (["atheris"] if fuzz_run.atheris_available() else [])
    for engine in engines:
        result = subprocess.run([sys.executable, os.path.join(ROOT, "fuzz", "run.py"), "--engine", engine, "--runs",
                                 "50", "--artifacts", str(tmp_path / engine), "selftest"],
                                capture_output=True, text=True, env=selftest_env(), timeout=120)
        assert result.returncode == 1, (engine, result.stdout, result.stderr[-2000:])
        assert "selftest: FAILED" in result.stdout
        assert list((tmp_path / engine).iterdir()), "the failing input was not saved"


def test_the_command_rejects_unknown_targets(capsys):
    assert fuzz_run.main(["--runs", "1", "no-such-parser"]) == 2
    assert "unknown target(s) no-such-parser" in capsys.readouterr().err
    assert fuzz_run.main(["--list"]) == 0
    assert set(capsys.readouterr().out.split()) == set(TARGETS)
