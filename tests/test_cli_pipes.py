"""``aecli`` as a real program in real shell pipelines: streams, sniffing, exit statuses.

Each test starts the installed console script through bash with ``set -o pipefail``, so a
failure anywhere in a pipeline fails the test. Starting aecli costs about a second, so these
tests are few and each checks a whole pipeline; the in-process tests (test_cli.py) cover the
options one by one.
"""

from __future__ import annotations

import json
import os
import pty
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from aecli import __version__

BIN = Path(sys.executable).parent
AECLI = BIN / "aecli" if (BIN / "aecli").exists() else shutil.which("aecli")
pytestmark = pytest.mark.skipif(AECLI is None, reason="the aecli console script is not installed")
PY = sys.executable


def sh(script: str, cwd: Path, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    """Run ``script`` in bash with pipefail, the venv first on PATH, no terminal anywhere."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "NO_COLOR": "1", "COLUMNS": "100"}
    return subprocess.run(["bash", "-c", "set -euo pipefail\n" + script], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, **kwargs)


@pytest.fixture(scope="module")
def work(cli_files, tmp_path_factory):
    """A directory holding the session's model and inputs, plus a big CSV (150 × digits,
    about 270,000 rows: several batches, so a closed pipe meets the read-ahead thread mid-file)."""
    d = tmp_path_factory.mktemp("pipes")
    for key in ("model", "small_csv", "small_parquet", "small_jsonl", "small_tsv"):
        (d / cli_files[key].name).symlink_to(cli_files[key])
    (d / "digits.csv").symlink_to(cli_files["digits"])
    (d / "curve.csv").symlink_to(cli_files["curve"])
    lines = cli_files["digits"].read_text().splitlines(keepends=True)
    (d / "big.csv").write_text(lines[0] + "".join(lines[1:]) * 150)
    return d


def test_version_from_the_script_and_from_python_m(work):
    r = sh(f"aecli --version; {PY} -m aecli --version", work)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"aecli {__version__}"] * 2
    assert r.stderr == ""


# Readers at the far end of the pipes. They leave with os._exit, as aecli does (see
# aecli.cli.app._leave): pyarrow's and duckdb's native thread pools can abort a process at
# interpreter teardown (status 134) after its work is done, which would fail the pipeline.
DUCKDB_READER = """
import os, sys, tempfile, duckdb
# DuckDB reads a file-like object only through fsspec, so the stream goes to a file first.
with tempfile.NamedTemporaryFile(suffix=".csv", delete=False) as f:
    f.write(sys.stdin.buffer.read())
codes = duckdb.read_csv(f.name)
print(*codes.columns, *duckdb.sql("select count(*), count(z2) from codes").fetchall()[0])
os.unlink(f.name)
sys.stdout.flush(); os._exit(0)
"""
PARQUET_READER = """
import io, os, sys, pyarrow.parquet as pq
t = pq.read_table(io.BytesIO(sys.stdin.buffer.read()))
print(t.num_rows, t.column_names[0], t.column_names[1], t.column_names[-1])
sys.stdout.flush(); os._exit(0)
"""


def test_csv_pipeline_into_python_csv_and_duckdb(work):
    # duckdb's read_csv('/dev/stdin') reads nothing from a pipe (duckdb 2.0), so it reads
    # aecli's output from a file; csv.reader reads the stream as it comes.
    (work / "duck.py").write_text(DUCKDB_READER)
    script = f"""
cat digits.csv | aecli encode model.npz --keep label 2>err.txt \\
  | {PY} -c 'import csv, sys; rows = list(csv.reader(sys.stdin)); print(len(rows), *rows[0])'
aecli encode model.npz small.csv --keep label | {PY} duck.py
"""
    r = sh(script, work)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["1798 label z1 z2", "label z1 z2 40 40"]
    assert (work / "err.txt").read_text() == "" and r.stderr == ""


def test_parquet_bytes_in_and_out_through_pipes(work):
    (work / "read_parquet.py").write_text(PARQUET_READER)
    script = f"""
cat small.parquet | aecli reconstruct model.npz --keep label --format parquet \\
  | {PY} read_parquet.py
"""
    r = sh(script, work)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["40", "label", "p01", "p63"]  # p00 is 0 in every row: unused
    assert "Reconstruction error by feature" in r.stderr  # for people, on stderr


@pytest.mark.parametrize("name", ["small.jsonl", "small.tsv"])
def test_sniffed_stdin_to_tsv_out(work, name):
    script = f"""
cat {name} | aecli score model.npz --keep label --format tsv -q \\
  | {PY} -c 'import csv, sys
rows = list(csv.DictReader(sys.stdin, delimiter="\\t"))
print(len(rows), rows[0]["label"], rows[-1]["row"], sorted(rows[0])[0])'
"""
    r = sh(script, work)
    assert r.returncode == 0, r.stderr
    first_label = str(pd.read_csv(work / "small.csv")["label"].iloc[0])
    assert r.stdout.split() == ["40", first_label, "40", "error"]  # the first column name
    assert r.stderr == ""


@pytest.mark.parametrize("producer,reader", [
    ("aecli encode model.npz big.csv", "head -1"),
    ("cat big.csv | aecli score model.npz --keep label", "head -1"),
    # `true` has closed the pipe before aecli (a second to start) writes anything
    ("aecli inspect model.npz", "true"),
    ("aecli --version", "true"),
])
def test_a_closed_pipe_ends_quietly_with_status_0(work, producer, reader):
    script = f"""
set +e
{producer} 2>err.txt | {reader}
echo "status ${{PIPESTATUS[*]}}"
"""
    r = sh(script, work)
    lines = r.stdout.splitlines()
    statuses = lines[-1].split()[1:]
    # aecli and the reader end with 0; a `cat` feeding aecli may itself be stopped by SIGPIPE
    # (141) once aecli has left, as it would be feeding `head`.
    assert statuses[-2:] == ["0", "0"], r.stdout
    assert all(s in ("0", "141") for s in statuses[:-2]), r.stdout
    if reader == "head -1":
        assert lines[0] in ("z1,z2",
                            "label,row,score,error,percentile,p_value,flagged,top_features")
    assert (work / "err.txt").read_text() == ""


def test_train_writes_data_only_to_stdout(work):
    r = sh("aecli train small.csv --exclude label --epochs 3 --hidden 8 -o plain.npz", work)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    assert "Training summary" in r.stderr and "model saved to plain.npz" in r.stderr
    assert "\x1b[" not in r.stderr  # not a terminal: no colour, no progress bar
    assert "training: epoch 3/3" in r.stderr  # plain progress lines instead

    r = sh("aecli train small.csv --exclude label --epochs 3 --hidden 8 -o j.npz --json", work)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["model"] == "j.npz" and doc["epochs_run"] == 3
    assert "Training summary" in r.stderr


def test_cron_style_score_report_and_alert(work):
    script = """
aecli score model.npz small.csv --json --threshold 0 --fail-on-anomaly > report.json \\
  || echo "alert $?"
aecli score model.npz small.csv --json --threshold 1e9 --fail-on-anomaly -q > ok.json \\
  && echo fine
"""
    r = sh(script, work)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["alert 1", "fine"]
    report = json.loads((work / "report.json").read_text())
    assert report["rows"] == 40 and report["flagged"] == 40
    assert json.loads((work / "ok.json").read_text())["flagged"] == 0
    assert "error: 40 of 40 row(s) are over the anomaly threshold" in r.stderr


def test_compare_pca_csv_on_stdout_and_table_on_stderr(work):
    script = f"""
aecli compare-pca curve.csv -k 1,2 --epochs 3 --hidden 8 --csv \\
  | {PY} -c 'import csv, sys; print(*[r["k"] for r in csv.DictReader(sys.stdin)])'
"""
    r = sh(script, work)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1", "2"]
    assert "Autoencoder vs PCA" in r.stderr
    assert "identifiers, not used: id" in r.stderr


def test_bad_input_exits_2_without_a_traceback(work):
    r = sh("aecli encode model.npz curve.csv", work)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.startswith("error: curve.csv: the model's columns")
    assert "Traceback" not in r.stderr


def test_missing_data_at_a_terminal_is_an_error_not_a_wait(work):
    controller, terminal = pty.openpty()
    try:
        r = subprocess.run([str(AECLI), "encode", "model.npz"], cwd=work, stdin=terminal,
                           capture_output=True, text=True, timeout=30)
    finally:
        os.close(controller)
        os.close(terminal)
    assert r.returncode == 2
    assert "no input" in r.stderr and "pipe" in r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_train_exits_130_and_leaves_the_old_model(work, sig):
    model = work / f"kept_{sig.name}.npz"
    model.write_bytes((work / "model.npz").read_bytes())
    before = model.read_bytes()
    p = subprocess.Popen([str(AECLI), "train", "digits.csv", "--exclude", "label", "-v",
                          "--epochs", "100000", "--patience", "0", "-o", model.name], cwd=work,
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        seen = p.stderr.readline()
        while seen and "epoch 1/" not in seen:  # wait until training is under way
            seen = p.stderr.readline()
        p.send_signal(sig)
        out, err = p.communicate(timeout=30)
    finally:
        p.kill()
    assert p.returncode == 130, err
    assert out == "" and "Traceback" not in err
    assert model.read_bytes() == before
    assert [f.name for f in work.glob(f".{model.name}*")] == []  # no temporary file left
