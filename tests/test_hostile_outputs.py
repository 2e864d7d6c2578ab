"""Hostile outputs: collisions, full disks, closed stdout and stderr, killed runs, ``-o -``.

The promise (docs/failures.md): an output never overwrites an input, the model
being read, or another output of the same command, and such a command is refused (exit 2)
before any work; a full disk or a closed stdout is an error (exit 2) that leaves none of the
command's files; a reader that closes the pipe is a quiet success; a closed stderr never stops
the work; aecli's temporary files are removed on every exit it controls, and those a killed run
leaves are removed by the next write to the same directory.

The stream tests run aecli as a real subprocess, with real pipes, /dev/full and a pseudo
terminal.
"""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import FAST_TRAIN, SLOW_WRITE, run

from aecli.io import atomic
from aecli.pipeline import modelfile

AECLI = [sys.executable, "-m", "aecli"]
TRAIN_K2 = [*FAST_TRAIN, "-k", "2", "-q"]
FULL = Path("/dev/full")
needs_dev_full = pytest.mark.skipif(not FULL.exists(), reason="no /dev/full here")




def aecli(*args, cwd=None, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    return subprocess.run([*AECLI, *map(str, args)], cwd=cwd, timeout=120,
                          env={**os.environ, "NO_COLOR": "1"}, **kwargs)


def make_csv(path: Path, rows: int = 200, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(rows, 2))
    X = np.c_[z, z @ rng.normal(size=(2, 3)) + 0.1 * rng.normal(size=(rows, 3))]
    path.write_text("a,b,c,d,e\n" + "\n".join(",".join(f"{v:.6g}" for v in r) for r in X) + "\n")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[bytes, bytes]:
    """The bytes of a small table and of a model trained on it."""
    d = tmp_path_factory.mktemp("outputs")
    data = make_csv(d / "data.csv")
    result = run("train", data, "-o", d / "model.npz", *TRAIN_K2)
    assert result.exit_code == 0, result.output
    return data.read_bytes(), (d / "model.npz").read_bytes()


@pytest.fixture
def files(tmp_path, trained) -> dict[str, Path]:
    """A fresh copy of the table and the model in this test's directory."""
    data, model = tmp_path / "data.csv", tmp_path / "model.npz"
    data.write_bytes(trained[0])
    model.write_bytes(trained[1])
    return {"dir": tmp_path, "data": data, "model": model}


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


# -- an output never overwrites an input, the model, or another output -------------------------
# (argv with DATA, MODEL, DIR standing for the paths, the option refused, the role it names)
COLLISIONS = {
    "encode -o DATA": (["encode", "MODEL", "DATA", "-o", "DATA"], "-o", "the input DATA"),
    "train -o DATA": (["train", "DATA", "-o", "DATA", *TRAIN_K2], "-o", "the input DATA"),
    "encode -o MODEL --format csv": (["encode", "MODEL", "DATA", "-o", "MODEL", "--format",
                                      "csv"], "-o", "the model MODEL"),
    "score --plot MODEL": (["score", "MODEL", "DATA", "--plot", "MODEL"], "--plot",
                           "the model MODEL"),
    "encode --plot DATA": (["encode", "MODEL", "DATA", "--plot", "DATA"], "--plot",
                           "the input DATA"),
    "train -o x.npz --plot x.npz": (["train", "DATA", "-o", "DIR/x.npz", "--plot", "DIR/x.npz",
                                     *TRAIN_K2], "--plot", "the -o output"),
    "train -o h.csv --history h.csv": (["train", "DATA", "-o", "DIR/h.csv", "--history",
                                        "DIR/h.csv", *TRAIN_K2], "--history", "the -o output"),
    "export -o MODEL": (["export", "MODEL", "-o", "MODEL"], "-o", "the model MODEL"),
    "compare-pca --plot DATA": (["compare-pca", "DATA", "-k", "1", "--plot", "DATA"], "--plot",
                                "the input DATA"),
    "reconstruct -o a symbolic link to DATA": (["reconstruct", "MODEL", "DATA", "-o",
                                                "DIR/link.csv"], "-o", "the input DATA"),
    "score -o a hard link to DATA": (["score", "MODEL", "DATA", "-o", "DIR/hard.csv"], "-o",
                                     "the input DATA"),
    "encode -o MODEL by another path": (["encode", "MODEL", "DATA", "-o",
                                         "DIR/sub/../model.npz", "--format", "csv"], "-o",
                                        "the model MODEL"),
    "train -o the model through a linked directory": (["train", "DATA", "-o",
                                                       "DIR/alias/data.csv", *TRAIN_K2], "-o",
                                                      "the input DATA"),
}


@pytest.mark.parametrize("case", list(COLLISIONS))
def test_an_output_that_is_an_input_or_another_output_is_refused_before_any_work(
        files, monkeypatch, case):
    argv, option, role = COLLISIONS[case]
    d = files["dir"]
    (d / "sub").mkdir()
    (d / "alias").symlink_to(d, target_is_directory=True)
    (d / "link.csv").symlink_to(files["data"])
    os.link(files["data"], d / "hard.csv")
    before = snapshot(d)

    def no_work(*args, **kwargs):
        raise AssertionError("the command started its work before refusing its outputs")

    monkeypatch.setattr(modelfile, "read_model", no_work)
    monkeypatch.setattr("aecli.cli.train.load_features", no_work, raising=False)
    monkeypatch.setattr("aecli.cli.compare.load_features", no_work, raising=False)
    paths = {"DATA": str(files["data"]), "MODEL": str(files["model"]), "DIR": str(d)}
    args = [paths.get(a, a.replace("DIR/", f"{d}/")) for a in argv]
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert f"error: {option} " in result.stderr and f"is also {role}" in result.stderr, (
        result.stderr)
    assert "internal error" not in result.output
    assert snapshot(d) == before  # nothing replaced, nothing new


def test_a_file_inside_an_input_directory_is_refused(tmp_path, files):
    pytest.importorskip("pyarrow.parquet")
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    parts = tmp_path / "parts"
    parts.mkdir()
    pq.write_table(pcsv.read_csv(files["data"]), parts / "part-0.parquet")
    before = (parts / "part-0.parquet").read_bytes()
    result = run("encode", files["model"], parts, "-o", parts / "part-0.parquet")
    assert result.exit_code == 2, result.output
    assert "is also a file of the input DATA" in result.stderr
    assert (parts / "part-0.parquet").read_bytes() == before


def test_rows_appended_to_the_input_through_stdout_are_refused(files):
    # `>> data.csv` while reading data.csv: each batch written would be read again, without end
    before = files["data"].read_bytes()
    proc = subprocess.run(["bash", "-c", f"exec {' '.join(AECLI)} encode model.npz data.csv "
                           ">> data.csv"], cwd=files["dir"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "stdout is also the input DATA" in proc.stderr
    assert files["data"].read_bytes() == before


def test_stdin_stdout_and_devices_never_collide(files):
    data = files["data"].read_text()
    result = run("encode", files["model"], "-", "-o", "-", input=data)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "z1,z2"
    pytest.importorskip("matplotlib")
    result = run("score", files["model"], files["data"], "-o", os.devnull, "--plot",
                 os.devnull, "-q")
    assert result.exit_code == 0, result.output


# -- a full disk or a closed stdout: exit 2, no internal error, no file left --------------------
STDOUT_COMMANDS = {
    "score --json": ["score", "MODEL", "DATA", "--json", "-q"],
    "inspect": ["inspect", "MODEL"],
    "inspect --json": ["inspect", "MODEL", "--json"],
    "compare-pca --json": ["compare-pca", "DATA", "-k", "1", "--epochs", "2", "--json", "-q"],
    "train --json": ["train", "DATA", "-o", "DIR/new.npz", "--json", *TRAIN_K2],
}


def _argv(argv, files):
    d = files["dir"]
    paths = {"DATA": str(files["data"]), "MODEL": str(files["model"])}
    return [paths.get(a, a.replace("DIR/", f"{d}/")) for a in argv]


@needs_dev_full
@pytest.mark.parametrize("case", list(STDOUT_COMMANDS))
def test_a_full_disk_on_stdout_is_a_clear_error(files, case):
    before = snapshot(files["dir"])
    with open(FULL, "wb") as full:
        proc = aecli(*_argv(STDOUT_COMMANDS[case], files), stdout=full, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "error: <stdout>: the disk is full" in proc.stderr
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr
    assert snapshot(files["dir"]) == before  # train --json: no model


@needs_dev_full
def test_train_json_into_a_full_disk_never_replaces_the_existing_model(files):
    data, model = files["data"], files["model"]
    before = model.read_bytes()
    with open(FULL, "wb") as full:
        proc = aecli("train", data, "-o", model, "--json", "--seed", "3", *TRAIN_K2, stdout=full,
                     text=True)
    assert proc.returncode == 2, proc.stderr
    assert model.read_bytes() == before


@needs_dev_full
@pytest.mark.parametrize("existing", [False, True], ids=["new", "existing"])
def test_train_history_into_a_full_disk_leaves_no_model(files, existing):
    model = files["model"] if existing else files["dir"] / "new.npz"
    before = snapshot(files["dir"])
    proc = aecli("train", files["data"], "-o", model, "--history", FULL, *TRAIN_K2, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "/dev/full: the disk is full" in proc.stderr
    assert snapshot(files["dir"]) == before


@needs_dev_full
def test_score_rows_to_a_file_are_not_left_when_its_json_fails(files):
    out = files["dir"] / "scores.csv"
    with open(FULL, "wb") as full:
        proc = aecli("score", files["model"], files["data"], "-o", out, "--json", "-q",
                     stdout=full, text=True)
    assert proc.returncode == 2, proc.stderr
    assert not out.exists()


def _shell(command: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", f"set -o pipefail; {command}"], cwd=cwd, text=True,
                          capture_output=True, timeout=120, env={**os.environ, "NO_COLOR": "1"})


@pytest.mark.parametrize("command", ["inspect model.npz", "inspect model.npz --json",
                                     "score model.npz data.csv --json -q",
                                     "encode model.npz data.csv"])
def test_a_closed_stdout_is_a_clear_error(files, command):
    proc = _shell(f"{' '.join(AECLI)} {command} >&-", files["dir"])
    assert proc.returncode == 2, proc.stderr
    assert "standard output is closed" in proc.stderr
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr


def test_a_closed_stdout_does_not_matter_when_nothing_goes_there(files):
    proc = _shell(f"{' '.join(AECLI)} encode model.npz data.csv -o codes.csv >&-", files["dir"])
    assert proc.returncode == 0, proc.stderr
    assert (files["dir"] / "codes.csv").read_text().startswith("z1,z2\n")


def test_a_reader_that_closes_the_pipe_keeps_the_model(files):
    proc = _shell(f"{' '.join(AECLI)} train data.csv -o new.npz --json {' '.join(TRAIN_K2)} "
                  "| true", files["dir"])
    assert proc.returncode == 0, proc.stderr
    modelfile.read_model(files["dir"] / "new.npz")


# -- a closed stderr never stops the work --------------------------------------------------------
def _with_stderr_closed(*args, cwd: Path, together: bool) -> subprocess.Popen:
    """Run aecli with stderr (and stdout too when ``together``, as ``2>&1``) on a pipe whose
    reader has gone before aecli writes anything: every write there meets EPIPE."""
    proc = subprocess.Popen([*AECLI, *map(str, args)], cwd=cwd,
                            stdout=subprocess.PIPE if together else subprocess.DEVNULL,
                            stderr=subprocess.STDOUT if together else subprocess.PIPE,
                            env={**os.environ, "NO_COLOR": "1"})
    (proc.stdout if together else proc.stderr).close()
    proc.wait(timeout=120)
    return proc


@pytest.mark.parametrize("together", [True, False], ids=["2>&1", "stderr"])
def test_train_with_a_closed_stderr_writes_the_model(files, together):
    proc = _with_stderr_closed("train", "data.csv", "-o", "new.npz", "--epochs", "3",
                               "--hidden", "4", "-k", "2", "-v", cwd=files["dir"],
                               together=together)
    assert proc.returncode == 0
    modelfile.read_model(files["dir"] / "new.npz")


def test_score_with_a_closed_stderr_writes_the_file(files):
    proc = _with_stderr_closed("score", "model.npz", "data.csv", "-o", "s.csv", "-v",
                               cwd=files["dir"], together=True)
    assert proc.returncode == 0
    assert (files["dir"] / "s.csv").read_text().count("\n") == 201


def test_train_piped_into_head(files):
    proc = _shell(f"{' '.join(AECLI)} train data.csv -o new.npz --epochs 20 --hidden 4 -k 2 "
                  "-v 2>&1 | head -1", files["dir"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 1
    modelfile.read_model(files["dir"] / "new.npz")


# -- temporary files ------------------------------------------------------------------------------


def _kill_while_writing(files, sig) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITE, "train", files["data"], "-o",
                             files["model"], *TRAIN_K2], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert line == "writing\n", line + proc.stderr.read()
        proc.send_signal(sig)
        proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    return proc


def _temporaries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".aecli-" in p.name)


def test_leftovers_of_a_killed_run_are_removed_by_the_next_write(files):
    before = files["model"].read_bytes()
    proc = _kill_while_writing(files, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    (left,) = _temporaries(files["dir"])
    assert left.startswith(".model.npz.aecli-") and left.endswith(".tmp.npz")
    assert files["model"].read_bytes() == before
    proc = aecli("encode", files["model"], files["data"], "-o", files["dir"] / "codes.csv")
    assert proc.returncode == 0, proc.stderr
    assert _temporaries(files["dir"]) == []


def test_the_sweep_leaves_live_and_foreign_files_alone(files):
    d = files["dir"]
    dead = subprocess.Popen(["true"])
    dead.wait()
    old = time.time() - 3600
    names = {
        f".a.csv.aecli-{atomic._HOST}-{os.getpid()}.0123abcd.tmp.csv": True,  # alive: kept
        f".b.csv.aecli-{'0' * 8 if atomic._HOST != '0' * 8 else '1' * 8}-{dead.pid}"
        ".0123abcd.tmp.csv": True,  # another host's: kept
        f".c.csv.aecli-{atomic._HOST}-{dead.pid}.0123abcd.tmp.csv": False,  # dead: removed
        ".d.csv.0123abcd.tmp.csv": True,  # not aecli's naming: kept
    }
    for name in names:
        (d / name).write_text("x")
        os.utime(d / name, (old, old))
    proc = aecli("encode", files["model"], files["data"], "-o", d / "codes.csv")
    assert proc.returncode == 0, proc.stderr
    assert {name: (d / name).exists() for name in names} == names


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_termination_while_writing_removes_the_temporary_file(files, sig):
    before = files["model"].read_bytes()
    proc = _kill_while_writing(files, sig)
    assert proc.returncode == 130
    assert files["model"].read_bytes() == before
    assert _temporaries(files["dir"]) == []


# -- export -o - ----------------------------------------------------------------------------------
def test_export_to_stdout_writes_the_graph_there(files):
    pytest.importorskip("onnx")
    d = files["dir"]
    assert run("export", files["model"], "-o", d / "file.onnx", "-q").exit_code == 0
    proc = aecli("export", "model.npz", "-o", "-", "-q", cwd=d)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (d / "file.onnx").read_bytes()
    assert not (d / "-").exists()


def test_export_to_a_terminal_is_refused(files):
    pytest.importorskip("onnx")
    main, side = pty.openpty()
    try:
        proc = aecli("export", "model.npz", "-o", "-", cwd=files["dir"], stdout=side, text=True)
    finally:
        os.close(side)
        os.close(main)
    assert proc.returncode == 2, proc.stderr
    assert "stdout is a terminal" in proc.stderr
    assert not (files["dir"] / "-").exists()
