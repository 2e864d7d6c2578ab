"""Faults: diverging training, signals, closed pipes, unwritable and full disks.

The promise (README, "Exit codes and failures"): every file aecli writes appears whole or not
at all (temporary file, then rename), also when killed; an existing model is never left
damaged; a closed pipe ends aecli quietly with status 0; Ctrl-C is status 130; a failed
training run is status 1 and writes no model.

Some tests run aecli as a real subprocess to deliver real signals. SIGKILL cannot be caught, so
a run killed while writing may leave its hidden temporary file (``.model.npz.<hex>.tmp.npz``)
behind; the model itself is still either the old file or the complete new one.
"""

from __future__ import annotations

import errno
import os
import random
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import FAST_TRAIN, SLOW_WRITE, run

from aecli.pipeline import modelfile

TEMP = re.compile(r"^\..+\.[0-9a-f]+\.tmp(\.\w+)*$")  # aecli's hidden temporary files
AECLI = [sys.executable, "-m", "aecli"]




def temp_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if TEMP.match(p.name))


def make_csv(path: Path, rows: int, seed: int = 0, scale: float = 1.0) -> Path:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(rows, 2))
    X = np.c_[z, z @ rng.normal(size=(2, 3)) + 0.1 * rng.normal(size=(rows, 3))] * scale
    lines = ["a,b,c,d,e"] + [",".join(f"{v:.6g}" for v in row) for row in X]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def data(tmp_path) -> Path:
    return make_csv(tmp_path / "data.csv", 200)


@pytest.fixture
def good_model(tmp_path, data) -> tuple[Path, bytes]:
    """An existing good model, and its bytes."""
    path = tmp_path / "model.npz"
    result = run("train", data, "-o", path, *FAST_TRAIN, "-q")
    assert result.exit_code == 0, result.output
    return path, path.read_bytes()


# -- training that fails ------------------------------------------------------------------------
DIVERGE = ["--lr", "10", "--optimizer", "sgd", "--scale", "none", "--epochs", "5"]


def test_diverging_training_exits_1_with_a_hint_and_writes_no_model(tmp_path):
    data = make_csv(tmp_path / "big.csv", 200, scale=1e3)
    out = tmp_path / "new.npz"
    result = run("train", data, "-o", out, *DIVERGE)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "training diverged" in result.stderr
    assert "--lr" in result.stderr  # the hint: what to try
    assert not out.exists()
    assert temp_files(tmp_path) == []


def test_diverging_training_leaves_the_existing_model_alone(tmp_path, good_model):
    model, before = good_model
    data = make_csv(tmp_path / "big.csv", 200, scale=1e3)
    assert run("train", data, "-o", model, *DIVERGE).exit_code == 1
    assert model.read_bytes() == before
    assert temp_files(tmp_path) == []


def test_diverging_compare_pca_exits_1(tmp_path):
    data = make_csv(tmp_path / "big.csv", 200, scale=1e3)
    result = run("compare-pca", data, "-k", "1,2", *DIVERGE)
    assert result.exit_code == 1, result.output
    assert "training diverged" in result.stderr and "Traceback" not in result.output


def test_bad_data_leaves_the_existing_model_alone(tmp_path, good_model):
    model, before = good_model
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,c,d,e\n1,2,3,4,5\n")
    assert run("train", bad, "-o", model, *FAST_TRAIN, "-q").exit_code == 2
    assert model.read_bytes() == before


# -- writes go through a temporary file and a rename --------------------------------------------
def test_every_output_is_renamed_into_place(tmp_path, data, good_model, monkeypatch):
    model, _ = good_model
    renames: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def spy(src, dst, *args, **kwargs):
        renames.append((Path(src), Path(dst)))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", spy)
    outputs = {
        "model": (tmp_path / "m2.npz", ["train", data, "-o", tmp_path / "m2.npz", *FAST_TRAIN, "-q",
                                        "--history", tmp_path / "h.csv"]),
        "history": (tmp_path / "h.csv", None),
        "codes": (tmp_path / "z.parquet", ["encode", model, data, "-o", tmp_path / "z.parquet"]),
        "recon": (tmp_path / "r.csv", ["reconstruct", model, data, "-o", tmp_path / "r.csv",
                                       "-q"]),
        "scores": (tmp_path / "s.jsonl", ["score", model, data, "-o", tmp_path / "s.jsonl",
                                          "-q"]),
    }
    for _, argv in outputs.values():
        if argv is not None:
            result = run(*argv)
            assert result.exit_code == 0, result.output
    for target, _ in outputs.values():
        sources = [src for src, dst in renames if dst == target]
        assert len(sources) == 1, f"{target.name} was not renamed into place: {renames}"
        assert sources[0].parent == target.parent and TEMP.match(sources[0].name)
    assert temp_files(tmp_path) == []


def _write_then(fault):
    """A stand-in for ``modelfile.write_model`` that writes half a model, then ``fault()``."""

    def write(bundle, f):
        f.write(b"PK\x03\x04 half a model")
        f.flush()
        fault()

    return write


def _enospc():
    raise OSError(errno.ENOSPC, "No space left on device")


def test_full_disk_while_saving_is_a_clear_error(tmp_path, data, good_model, monkeypatch):
    model, before = good_model
    monkeypatch.setattr(modelfile, "write_model", _write_then(_enospc))
    result = run("train", data, "-o", model, *FAST_TRAIN, "-q")
    assert result.exit_code == 2, result.output
    assert "disk is full" in result.stderr and "Traceback" not in result.output
    assert model.read_bytes() == before
    assert temp_files(tmp_path) == []


def test_sigterm_while_saving_removes_the_temporary_file(tmp_path, data, good_model,
                                                         monkeypatch):
    model, before = good_model
    monkeypatch.setattr(modelfile, "write_model",
                        _write_then(lambda: os.kill(os.getpid(), signal.SIGTERM)))
    result = run("train", data, "-o", model, *FAST_TRAIN, "-q")
    assert result.exit_code == 130, result.output
    assert "Traceback" not in result.output
    assert model.read_bytes() == before
    assert temp_files(tmp_path) == []


def test_ctrl_c_while_saving_removes_the_temporary_file(tmp_path, data, good_model, monkeypatch):
    model, before = good_model

    def interrupt():
        raise KeyboardInterrupt

    monkeypatch.setattr(modelfile, "write_model", _write_then(interrupt))
    result = run("train", data, "-o", model, *FAST_TRAIN, "-q")
    assert result.exit_code == 130
    assert result.output.strip() == ""  # quiet
    assert model.read_bytes() == before
    assert temp_files(tmp_path) == []


# -- unwritable outputs -------------------------------------------------------------------------
UNWRITABLE = {
    "nonexistent directory": lambda tmp: (tmp / "no" / "such" / "m.npz", "does not exist"),
    "directory under a file": lambda tmp: (tmp / "data.csv" / "m.npz", "does not exist"),
    "under /etc/hostname": lambda tmp: (Path("/etc/hostname/m.npz"), "/etc/hostname"),
    "a directory": lambda tmp: (tmp, "is a directory"),
}


@pytest.mark.parametrize("case", list(UNWRITABLE))
def test_unwritable_model_path_fails_before_training(tmp_path, data, case):
    out, needle = UNWRITABLE[case](tmp_path)
    result = run("train", data, "-o", out, "--epochs", "2", "--hidden", "4")
    assert result.exit_code == 2, result.output
    assert needle in result.stderr and "Traceback" not in result.output
    assert "epoch" not in result.stderr  # refused up front: no training time wasted
    assert temp_files(tmp_path) == []


def test_unwritable_history_fails_before_training_and_writes_no_model(tmp_path, data):
    out = tmp_path / "m.npz"
    result = run("train", data, "-o", out, "--epochs", "2", "--history",
                 tmp_path / "nodir" / "h.csv")
    assert result.exit_code == 2 and "does not exist" in result.stderr
    assert "epoch" not in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("command", ["encode", "reconstruct", "score"])
def test_unwritable_table_output(tmp_path, data, good_model, command):
    model, _ = good_model
    out = tmp_path / "nodir" / "out.csv"
    result = run(command, model, data, "-o", out)
    assert result.exit_code == 2, result.output
    assert "does not exist" in result.stderr and "mkdir -p" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_permission_denied_is_a_clear_error(tmp_path, data, monkeypatch):
    # root writes anywhere, so the file system's refusal is simulated for one directory
    locked = tmp_path / "locked"
    locked.mkdir()
    real_open = os.open

    def refusing_open(path, flags, *args, **kwargs):
        if Path(os.fspath(path)).parent == locked and flags & (os.O_WRONLY | os.O_RDWR):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing_open)
    result = run("train", data, "-o", locked / "m.npz", *FAST_TRAIN, "-q")
    assert result.exit_code == 2, result.output
    assert "permission denied" in result.stderr and str(locked) in result.stderr
    assert "Traceback" not in result.output
    assert list(locked.iterdir()) == []


# -- real processes: signals, pipes, a disk that fills ------------------------------------------
def spawn(*args, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([*AECLI, *map(str, args)], env=env, **kwargs)


def wait_for_training(proc: subprocess.Popen) -> str:
    """Read stderr until the first epoch is reported; return what was read."""
    seen = ""
    deadline = time.monotonic() + 30
    while "epoch" not in seen:
        line = proc.stderr.readline()
        assert line or proc.poll() is None, f"exited early: {seen}"
        seen += line
        assert time.monotonic() < deadline, seen
    return seen


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_during_training_exits_130_quietly(tmp_path, good_model, sig):
    model, before = good_model
    data = make_csv(tmp_path / "long.csv", 2000)
    proc = spawn("train", data, "-o", model, "--epochs", "100000", "--hidden", "8",
                 stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        wait_for_training(proc)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "error" not in err.lower()
    assert out == ""
    assert model.read_bytes() == before
    assert temp_files(tmp_path) == []


def test_closed_pipe_exits_0_quietly(tmp_path, good_model):
    model, _ = good_model
    data = make_csv(tmp_path / "many.csv", 20000)  # far more output than a pipe buffer
    command = (f"set -o pipefail; {' '.join(AECLI)} reconstruct {model} {data} --error "
               f"| head -1")
    proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "a,b,c,d,e,error\n"
    assert proc.stderr == ""


def _limit_file_size(limit: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # writes past it: EFBIG

    return apply


@pytest.mark.parametrize("what", ["model", "table"])
def test_a_full_disk_is_a_clear_error_and_leaves_nothing(tmp_path, data, good_model, what):
    model, before = good_model
    if what == "model":
        argv, target = ["train", data, "-o", model, *FAST_TRAIN, "-q"], model
    else:
        target = tmp_path / "codes.csv"
        argv = ["reconstruct", model, data, "-o", target, "-q"]
    # room for half of what the command writes
    limit = len(before) // 2 if what == "model" else Path(data).stat().st_size // 2
    proc = spawn(*argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                 preexec_fn=_limit_file_size(limit))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert "disk is full" in err and "Traceback" not in err
    assert model.read_bytes() == before
    assert what == "model" or not target.exists()
    assert temp_files(tmp_path) == []


def test_sigkill_never_damages_the_existing_model(tmp_path, good_model):
    """Kill ``train -o model.npz`` at random moments: the model is always the old file or a
    complete new one; at most aecli's temporary file is left (SIGKILL cannot be cleaned up)."""
    model, before = good_model
    data = make_csv(tmp_path / "k.csv", 3000, seed=1)
    argv = ["train", data, "-o", model, "--epochs", "6", "--hidden", "16", "--seed", "7", "-q"]
    started = time.monotonic()
    proc = spawn(*argv, stderr=subprocess.PIPE)
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    proc.stderr.close()
    full = time.monotonic() - started
    _, new = modelfile.read_members(model)  # the weights a complete run writes (same seed)
    assert model.read_bytes() != before
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    outcomes = []
    for _ in range(5):
        model.write_bytes(before)
        proc = spawn(*argv, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3 * full, 1.1 * full))
        proc.kill()
        proc.wait(timeout=30)
        now = model.read_bytes()
        modelfile.read_model(model)  # it loads: not damaged
        if now != before:  # then it is the complete new model (its timestamp differs)
            _, arrays = modelfile.read_members(model)
            assert arrays.keys() == new.keys(), f"seed {seed}"
            assert all(np.array_equal(arrays[k], new[k]) for k in new), f"seed {seed}"
        leftovers = sorted(p.name for p in tmp_path.iterdir()
                           if p.name not in ("model.npz", "k.csv", "data.csv"))
        assert all(TEMP.match(name) and name.startswith(".model.npz.") for name in leftovers), (
            f"unexpected files {leftovers} (seed {seed})")
        for name in leftovers:
            (tmp_path / name).unlink()
        outcomes.append("old" if now == before else "new")
    assert len(outcomes) == 5  # either outcome is fine; which occurs depends on timing




@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT],
                         ids=["SIGKILL", "SIGTERM", "SIGINT"])
def test_signal_while_writing_the_model(tmp_path, data, good_model, sig):
    model, before = good_model
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITE, "train", str(data), "-o", str(model), *FAST_TRAIN, "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stderr.readline()
        assert line == "writing\n", line + proc.stderr.read()
        assert len(temp_files(tmp_path)) == 1  # the half-written temporary file
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert model.read_bytes() == before  # never the half-written file
    if sig == signal.SIGKILL:  # cannot be caught: the temporary file stays, hidden
        assert proc.returncode == -signal.SIGKILL
        (left,) = temp_files(tmp_path)
        assert left.startswith(".model.npz.") and left.endswith(".tmp.npz")
    else:
        assert proc.returncode == 130, err
        assert "Traceback" not in err and out == ""
        assert temp_files(tmp_path) == []
