"""Hostile cases of ``--scheduler``, grouped by threat: addresses that are no scheduler's,
ports that answer as something else (servers started here on 127.0.0.1), a scheduler in the
environment, the modes of output directories, and roles that the first partition alone
would get wrong."""

from __future__ import annotations

import http.server
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from aecli.cli import app

distributed = pytest.importorskip("distributed")

BIN = Path(sys.executable).parent
DIGITS = Path(__file__).resolve().parent.parent / "sample_data" / "digits.csv"


def invoke(*args, env=None):
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def ok(*args, env=None):
    r = invoke(*args, env=env)
    assert r.exit_code == 0, r.output
    return r


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of one worker process for the module; its scheduler's address."""
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as c:
        yield c.scheduler_address


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The first 600 digits as 2 Parquet partitions and as one CSV, and a model of them."""
    d = tmp_path_factory.mktemp("hostile_cluster")
    digits = pd.read_csv(DIGITS).head(600)
    (d / "pq").mkdir()
    for i in range(2):
        digits.iloc[i * 300:(i + 1) * 300].to_parquet(d / "pq" / f"p{i}.parquet", index=False)
    digits.to_csv(d / "digits.csv", index=False)
    model = d / "m.npz"
    ok("train", d / "digits.csv", "--exclude", "label", "-o", model, "-q", "--epochs", "2",
       "--hidden", "8")
    return {"dir": d, "model": model}


# --- addresses that are no scheduler's ---------------------------------------------------

@pytest.mark.parametrize("address, said", [
    ("bogus://x", "bogus:// is not a transport"),
    ("local:0", "local:N takes a number"),
    ("local:abc", "local:N takes a number"),
    ("local:\u00b2", "local:N takes a number"),  # a digit to str.isdigit, not to int()
    ("local:100000", "local:N takes a number"),
    ("tcp://127.0.0.1", "no port"),
    ("127.0.0.1:99999", "not a number from 1 to 65535"),
    ("tcp://a b:8786", "not a host name"),
    ("", "not HOST:PORT"),
])
def test_a_malformed_address_is_a_usage_error_before_anything_runs(data, address, said,
                                                                   tmp_path):
    r = invoke("encode", data["model"], data["dir"] / "pq", "--scheduler", address,
               "-o", tmp_path / "out")
    assert r.exit_code == 2, r.output
    assert said in r.stderr and "tcp://HOST:8786" in r.stderr, r.stderr
    assert "internal error" not in r.output and not (tmp_path / "out").exists()


def test_the_documented_forms_are_accepted():
    from aecli.pipeline.scheduler import Address, parse_address

    assert parse_address("local:2") == Address("local", workers=2)
    assert parse_address("local").workers == (os.cpu_count() or 1)
    assert str(parse_address("tcp://10.0.0.5:8786")) == "tcp://10.0.0.5:8786"
    assert str(parse_address("scheduler.example:8786")) == "tcp://scheduler.example:8786"
    assert str(parse_address("TLS://host-1:8786/")) == "tls://host-1:8786"
    assert str(parse_address("[::1]:8786")) == "tcp://[::1]:8786"


def test_a_bad_address_from_the_environment_is_named_as_such(data, tmp_path):
    r = invoke("train", data["dir"] / "pq", "--exclude", "label", "-o", tmp_path / "m.npz",
               env={"DASK_SCHEDULER_ADDRESS": "bogus://x"})
    assert r.exit_code == 2 and "DASK_SCHEDULER_ADDRESS 'bogus://x'" in r.stderr, r.output


# --- ports that answer as something else -------------------------------------------------

@pytest.fixture
def http_port():
    """An HTTP server on 127.0.0.1: it waits for a request, as Dask waits for a greeting."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def banner_port():
    """A service on 127.0.0.1 that greets with a banner (as sshd or an SMTP server does)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held = []

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
            held.append(conn)  # kept open: the client must not wait for more

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()
    for conn in held:
        conn.close()


def _encode_at(data, address, tmp_path):
    """``aecli encode --scheduler address`` as a subprocess, bounded in time."""
    env = {**os.environ, "AECLI_CONNECT_TIMEOUT": "1"}
    env.pop("DASK_SCHEDULER_ADDRESS", None)
    started = time.monotonic()
    try:
        r = subprocess.run([str(BIN / "aecli"), "encode", str(data["model"]),
                            str(data["dir"] / "pq"), "--scheduler", address,
                            "-o", str(tmp_path / "out")],
                           capture_output=True, text=True, timeout=60, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"--scheduler {address} still hung after 60 s")
    return r, time.monotonic() - started


def test_an_http_server_on_the_port_is_a_clear_error_in_seconds(data, http_port, tmp_path):
    r, took = _encode_at(data, f"tcp://127.0.0.1:{http_port}", tmp_path)
    assert r.returncode == 2, r.stderr
    assert f"cannot reach the Dask scheduler at tcp://127.0.0.1:{http_port}" in r.stderr
    assert "no Dask greeting within 1 s" in r.stderr and "8786" in r.stderr
    assert "internal error" not in r.stderr and took < 30


def test_a_port_that_sends_a_banner_is_a_clear_error(data, banner_port, tmp_path):
    r, _ = _encode_at(data, f"127.0.0.1:{banner_port}", tmp_path)
    assert r.returncode == 2, r.stderr
    assert "not as a Dask scheduler" in r.stderr and "SSH-2.0-OpenSSH_9.6" in r.stderr
    assert "MemoryError" not in r.stderr and "internal error" not in r.stderr


def test_a_closed_port_is_a_clear_error(data, tmp_path):
    with socket.socket() as s:  # bound, never listening: connections are refused
        s.bind(("127.0.0.1", 0))
        r = invoke("encode", data["model"], data["dir"] / "pq", "--scheduler",
                   f"tcp://127.0.0.1:{s.getsockname()[1]}", "-o", tmp_path / "out")
    assert r.exit_code == 2 and "cannot reach the Dask scheduler" in r.stderr, r.output
    assert "refused" in r.stderr.lower()


def test_a_dask_handshake_that_never_ends_is_given_up_in_time():
    """The backstop behind the greeting check (a tls:// port that never completes Dask's
    handshake): Dask's client, which would wait without limit, is abandoned."""
    from aecli.errors import AecliError
    from aecli.pipeline import scheduler

    class Stuck:  # a distributed module whose Client never returns
        @staticmethod
        def Client(*args, **kwargs):
            threading.Event().wait(30)

    started = time.monotonic()
    with pytest.raises(AecliError, match="no Dask handshake within 1.4 s"):
        scheduler._client(Stuck, scheduler.parse_address("tls://127.0.0.1:8786"), 0.2)
    assert time.monotonic() - started < 5


# --- a scheduler in the environment ------------------------------------------------------

def test_the_environment_never_turns_an_output_file_into_a_directory(data, cluster, tmp_path):
    env = {"DASK_SCHEDULER_ADDRESS": cluster}
    for command in ("encode", "reconstruct", "score"):
        out = tmp_path / f"{command}.csv"
        r = ok(command, data["model"], data["dir"] / "digits.csv", "-o", out, env=env)
        assert out.is_file() and len(pd.read_csv(out)) == 600
        assert f"DASK_SCHEDULER_ADDRESS is set, but {command} runs on this machine" in r.stderr
    r = ok("encode", data["model"], data["dir"] / "digits.csv", "-o", tmp_path / "q.csv",
           "-q", env=env)
    assert r.stderr == ""
    # --scheduler still runs it on the cluster
    ok("encode", data["model"], data["dir"] / "pq", "--scheduler", cluster,
       "-o", tmp_path / "parts", "-q", env=env)
    assert sorted(p.name for p in (tmp_path / "parts").iterdir()) == [
        "part-00000.parquet", "part-00001.parquet"]


def test_training_on_the_scheduler_of_the_environment_says_so(data, cluster, tmp_path):
    r = ok("train", data["dir"] / "pq", "--exclude", "label", "-o", tmp_path / "m.npz",
           "--epochs", "1", "--hidden", "8", env={"DASK_SCHEDULER_ADDRESS": cluster})
    assert f"training on the Dask cluster at {cluster}, from DASK_SCHEDULER_ADDRESS" in r.stderr
    assert (tmp_path / "m.npz").is_file()
    r = CliRunner().invoke(app, ["train", "-o", str(tmp_path / "s.npz")], input="a,b\n1,2\n",
                           env={"DASK_SCHEDULER_ADDRESS": cluster})
    assert r.exit_code == 2 and "DASK_SCHEDULER_ADDRESS in the environment chose" in r.stderr


# --- output directories ------------------------------------------------------------------

@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_new_output_directory_follows_the_umask(data, cluster, tmp_path, umask_022):
    out = tmp_path / "codes"
    ok("encode", data["model"], data["dir"] / "pq", "--scheduler", cluster, "-o", out, "-q")
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "part-00000.parquet").stat().st_mode) == 0o644


def test_an_existing_empty_output_directory_keeps_its_mode(data, cluster, tmp_path,
                                                           umask_022):
    out = tmp_path / "codes"
    out.mkdir()
    out.chmod(0o751)
    ok("encode", data["model"], data["dir"] / "pq", "--scheduler", cluster, "-o", out, "-q")
    assert stat.S_IMODE(out.stat().st_mode) == 0o751
    assert len(list(out.iterdir())) == 2
# --- roles from every partition ----------------------------------------------------------

def test_a_column_constant_in_the_first_partition_only_is_a_feature(cluster, tmp_path):
    """On one machine the four columns are features; the cluster saw only the first
    partition's rows, where ``c`` and ``d`` are constant, and dropped them."""
    rng = np.random.default_rng(0)
    n = 200
    whole = pd.DataFrame({"a": rng.normal(size=2 * n), "b": rng.normal(size=2 * n),
                          "c": np.r_[np.zeros(n), rng.normal(size=n)],
                          "d": np.r_[np.full(n, 7.0), np.arange(n, dtype=float)]})
    (tmp_path / "parts").mkdir()
    whole.iloc[:n].to_parquet(tmp_path / "parts" / "p0.parquet", index=False)
    whole.iloc[n:].to_parquet(tmp_path / "parts" / "p1.parquet", index=False)
    whole.to_csv(tmp_path / "whole.csv", index=False)
    common = ["--epochs", "1", "--hidden", "4", "-q"]
    ok("train", tmp_path / "whole.csv", "-o", tmp_path / "one.npz", *common)
    ok("train", tmp_path / "parts", "--scheduler", cluster, "-o", tmp_path / "c.npz", *common)
    from aecli.pipeline.modelfile import read_model

    assert read_model(tmp_path / "one.npz").features == ["a", "b", "c", "d"]
    assert read_model(tmp_path / "c.npz").features == ["a", "b", "c", "d"]
