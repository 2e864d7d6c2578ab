"""Shared test helpers: central finite differences for the gradient checks; CLI fixtures."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest

# A suite started in the background (``make test &``, nohup) inherits Ctrl-C ignored, and so
# would every aecli it spawns: the tests that interrupt training with SIGINT would wait in
# vain. A handler, unlike "ignore", is reset to the default when a child starts.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _numerical_grad(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of the scalar ``f()`` in ``x``, which is perturbed in place."""
    g = np.zeros(x.shape, dtype=np.float64)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    assert np.shares_memory(flat, x), "x must be contiguous so that its flat view perturbs it"
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        up = f()
        flat[i] = old - h
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * h)
    return g


@pytest.fixture
def numerical_grad():
    """``numerical_grad(f, x)``: the central-difference gradient of ``f()`` in ``x``."""
    return _numerical_grad


@pytest.fixture
def assert_grad_close():
    """Compare an analytic gradient with a numerical one, relative to the gradient's scale."""

    def check(analytic, numeric, rtol=1e-6):
        analytic, numeric = np.asarray(analytic), np.asarray(numeric)
        assert analytic.shape == numeric.shape
        scale = np.abs(numeric).max()
        assert scale > 0, "degenerate check: the numerical gradient is zero"
        np.testing.assert_allclose(analytic, numeric, rtol=rtol, atol=rtol * scale)

    return check


# --- the CLI in-process: shared by the test modules (``from conftest import ok, run``) -------


def run(*args, input=None):
    """Invoke ``aecli args...`` in-process (arguments may be paths); ``input`` is stdin."""
    from typer.testing import CliRunner

    from aecli.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], input=input)


def ok(*args, input=None):
    """Invoke and insist on exit status 0, showing both streams otherwise."""
    r = run(*args, input=input)
    assert r.exit_code == 0, f"exit {r.exit_code}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    return r


# aecli as a script whose model writer stops halfway through the file (``python -c SLOW_WRITE
# train ...``), so that a signal lands while the temporary file is open and half written.
SLOW_WRITE = """
import sys, time
from aecli.pipeline import modelfile
from aecli.cli.app import main

def half_then_wait(bundle, f):
    f.write(b"PK\\x03\\x04 half a model")
    f.flush()
    sys.stderr.write("writing\\n")
    sys.stderr.flush()
    time.sleep(60)

modelfile.write_model = half_then_wait
sys.argv[0] = "aecli"
main()
"""


# --- CLI fixtures (tests/test_cli*.py) -------------------------------------------------------

SAMPLE_DATA = Path(__file__).resolve().parent.parent / "sample_data"
# Fast training, for the many tests that train only to have a model: one definition, for the
# estimator and for the command line. Tests add what they need (-k, -q, a seed).
FAST_FIT = dict(hidden=(4,), epochs=2, batch_size=16)
FAST_TRAIN = ["--epochs", "2", "--hidden", "4"]
CLI_TRAIN_ARGS = ["--exclude", "label", *FAST_TRAIN, "-k", "2", "-q"]


@pytest.fixture(scope="session")
def cli_files(tmp_path_factory):
    """A tiny digits model trained once per session by the CLI, and inputs in every format.

    Keys: ``model`` (.npz), ``digits`` (the full sample CSV), ``small_csv``/``small_tsv``/
    ``small_parquet``/``small_jsonl`` (its first 40 rows), ``curve`` (the helix sample) and
    ``dir`` (a scratch directory shared by the session).
    """
    import pandas as pd
    from typer.testing import CliRunner

    from aecli.cli import app

    d = tmp_path_factory.mktemp("cli")
    digits = SAMPLE_DATA / "digits.csv"
    model = d / "model.npz"
    r = CliRunner().invoke(app, ["train", str(digits), "-o", str(model), *CLI_TRAIN_ARGS])
    assert r.exit_code == 0, r.output
    small = pd.read_csv(digits).head(40)
    files = {"dir": d, "model": model, "digits": digits, "curve": SAMPLE_DATA / "curve.csv"}
    files["small_csv"] = d / "small.csv"
    small.to_csv(files["small_csv"], index=False)
    files["small_tsv"] = d / "small.tsv"
    small.to_csv(files["small_tsv"], sep="\t", index=False)
    files["small_parquet"] = d / "small.parquet"
    small.to_parquet(files["small_parquet"], index=False)
    files["small_jsonl"] = d / "small.jsonl"
    small.to_json(files["small_jsonl"], orient="records", lines=True)
    return files


# --- a Dask cluster, started once for the session's cluster tests ---------------------------
@pytest.fixture(scope="session")
def cluster():
    """A LocalCluster of 2 worker processes shared by the cluster test modules (starting one
    costs seconds); its scheduler's address. Tests that kill a worker start their own."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as c:
        yield c.scheduler_address
