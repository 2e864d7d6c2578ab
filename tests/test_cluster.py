"""``--scheduler``: encode, reconstruct and score of a partitioned data set on a Dask cluster,
with real parts: a LocalCluster of 2 worker processes, and a ``dask scheduler`` with two
``dask worker`` processes started here on 127.0.0.1, one of them killed mid-job."""

from __future__ import annotations

import glob
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import ok
from typer.testing import CliRunner

from aecli.cli import app

distributed = pytest.importorskip("distributed")

BIN = Path(sys.executable).parent
DIGITS = Path(__file__).resolve().parent.parent / "sample_data" / "digits.csv"




def parts_table(directory) -> pa.Table:
    files = sorted(glob.glob(str(Path(directory) / "part-*")))
    return pa.concat_tables([pq.read_table(f) for f in files])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The digits as 4 Parquet partitions and 3 CSV ones, and a model of them."""
    d = tmp_path_factory.mktemp("cluster")
    digits = pd.read_csv(DIGITS)
    (d / "pq").mkdir()
    for i in range(4):
        digits.iloc[i * 450:(i + 1) * 450].to_parquet(d / "pq" / f"p{i}.parquet", index=False)
    for i in range(3):
        digits.iloc[i * 600:(i + 1) * 600].to_csv(d / f"c{i}.csv", index=False)
    model = d / "m.npz"
    ok("train", DIGITS, "--exclude", "label", "-o", model, "-q", "--epochs", "5")
    return {"dir": d, "model": model}


def test_encode_on_the_cluster_equals_one_machine_row_for_row(data, cluster):
    out = data["dir"] / "codes"
    r = ok("encode", data["model"], data["dir"] / "pq", "--scheduler", cluster, "-o", out,
           "--keep", "label")
    assert "encode: 4/4 partitions written" in r.stderr
    assert sorted(p.name for p in out.iterdir()) == [f"part-{i:05d}.parquet" for i in range(4)]
    single = data["dir"] / "single.parquet"
    ok("encode", data["model"], DIGITS, "--keep", "label", "-o", single, "-q")
    assert parts_table(out).equals(pq.read_table(single))  # bit-identical, in order
    leftovers = [p.name for p in data["dir"].iterdir() if p.name.startswith(".codes")]
    assert leftovers == []  # the staging directory became the output


def test_score_on_the_cluster_merges_the_report_of_one_machine(data, cluster):
    out = data["dir"] / "scores"
    r = ok("score", data["model"], str(data["dir"] / "c*.csv"), "--scheduler", cluster,
           "-o", out, "--json", "-q", "--top", "5")
    merged = json.loads(r.stdout)
    single_rows = data["dir"] / "single_scores.parquet"
    r = ok("score", data["model"], DIGITS, "--json", "-q", "-o", single_rows, "--top", "5")
    single = json.loads(r.stdout)
    for key in ("rows", "flagged", "threshold", "worst", "flagged_rows", "flagged_rows_cut"):
        assert merged[key] == single[key], key
    for key in ("feature_mse", "feature_mse_original_units"):  # sums in another order
        np.testing.assert_allclose(list(merged[key].values()), list(single[key].values()),
                                   rtol=1e-12)
    rows = parts_table(out).to_pandas()
    assert rows["row"].tolist() == list(range(1, 1798))  # numbered across partitions


def test_local_n_starts_a_cluster_for_the_command(data):
    out = data["dir"] / "recon"
    ok("reconstruct", data["model"], data["dir"] / "pq", "--scheduler", "local:2", "-o", out,
       "--format", "csv", "-q")
    assert len(list(out.glob("part-*.csv"))) == 4
    frame = pd.concat(pd.read_csv(p) for p in sorted(out.glob("part-*.csv")))
    assert len(frame) == 1797


def test_a_cluster_run_refuses_what_it_cannot_do_cleanly(data, cluster):
    runner = CliRunner()
    r = runner.invoke(app, ["encode", str(data["model"]), str(data["dir"] / "pq"),
                            "--scheduler", cluster])
    assert r.exit_code == 2 and "give -o DIR" in r.stderr
    taken = data["dir"] / "taken"
    taken.mkdir()
    (taken / "x").write_text("keep me")
    r = runner.invoke(app, ["encode", str(data["model"]), str(data["dir"] / "pq"),
                            "--scheduler", cluster, "-o", str(taken)])
    assert r.exit_code == 2 and "exists" in r.stderr and (taken / "x").read_text() == "keep me"
    r = runner.invoke(app, ["encode", str(data["model"]), str(data["dir"] / "nope*.parquet"),
                            "--scheduler", cluster, "-o", str(data["dir"] / "n")])
    assert r.exit_code == 2 and "no such file" in r.stderr
    r = runner.invoke(app, ["encode", str(data["model"]), str(data["dir"] / "pq"),
                            "--scheduler", "tcp://127.0.0.1:9", "-o", str(data["dir"] / "n")])
    assert r.exit_code == 2 and "cannot reach the Dask scheduler" in r.stderr


def test_without_dask_the_option_names_the_extra(data, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails as if absent
    r = CliRunner().invoke(app, ["encode", str(data["model"]), str(data["dir"] / "pq"),
                                 "--scheduler", "local:2", "-o", str(data["dir"] / "n2")])
    assert r.exit_code == 2 and "pip install 'aecli[dask]'" in r.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def real_cluster(tmp_path):
    """``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1, stopped after."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port",
                               str(port), "--no-dashboard"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)]
    for _ in range(2):
        procs.append(subprocess.Popen(
            [str(BIN / "dask"), "worker", address, "--nthreads", "1", "--no-dashboard",
             "--no-nanny"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True))
    try:
        with distributed.Client(address, timeout="20s") as client:
            client.wait_for_workers(2, timeout=30)
        yield address, procs[1:]
    finally:
        for p in procs:  # test services: no need to wait for a graceful shutdown
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)


def test_a_worker_killed_mid_job_leaves_the_right_rows_or_nothing(tmp_path, real_cluster):
    address, workers = real_cluster
    rng = np.random.default_rng(0)
    (tmp_path / "in").mkdir()
    for i in range(8):
        pq.write_table(pa.table({f"x{j}": rng.normal(size=20_000) for j in range(8)}),
                       tmp_path / "in" / f"p{i}.parquet")
    model = tmp_path / "wide.npz"
    # wide hidden layers: each partition takes a while, so the kill lands mid-job
    ok("train", tmp_path / "in" / "p0.parquet", "-o", model, "--hidden", "1024,1024",
       "--epochs", "1", "-q")
    out = tmp_path / "codes"
    job = subprocess.Popen([str(BIN / "aecli"), "encode", str(model), str(tmp_path / "in"),
                            "--scheduler", address, "-o", str(out)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and job.poll() is None:
        staged = glob.glob(str(tmp_path / ".codes.aecli-*" / "part-*"))
        if staged:
            os.killpg(workers[0].pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    _, stderr = job.communicate(timeout=120)
    assert staged, "the job ended before a worker could be killed"
    if job.returncode == 0:
        table = parts_table(out)
        assert table.num_rows == 8 * 20_000
        one = tmp_path / "one.parquet"
        ok("encode", model, tmp_path / "in" / "p3.parquet", "-o", one, "-q")
        assert pq.read_table(out / "part-00003.parquet").equals(pq.read_table(one))
    else:
        assert job.returncode in (1, 2) and "Traceback" not in stderr, stderr
        assert not out.exists()  # nothing that looks complete
    assert glob.glob(str(tmp_path / ".codes.aecli-*")) == []


@pytest.fixture
def s3(monkeypatch):
    """A local S3-compatible server (moto's) on 127.0.0.1, with a bucket; stopped after."""
    pytest.importorskip("s3fs")
    server_mod = pytest.importorskip("moto.server")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for key, value in {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "test",
                       "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"
                       }.items():
        monkeypatch.setenv(key, value)
    import fsspec

    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.mkdir("bkt")
    try:
        yield fs
    finally:
        server.stop()


def test_a_data_set_in_object_storage_in_and_out(data, s3, tmp_path):
    for p in sorted((data["dir"] / "pq").iterdir()):
        s3.put_file(str(p), f"bkt/in/{p.name}")
    r = ok("encode", data["model"], "s3://bkt/in/", "--scheduler", "local:2",
           "-o", "s3://bkt/out", "--keep", "label")
    assert "1,797 row(s) in 4 part(s) written to s3://bkt/out" in r.stderr
    names = sorted(p.rsplit("/", 1)[1] for p in s3.ls("bkt/out", refresh=True))
    assert names == ["_SUCCESS"] + [f"part-{i:05d}.parquet" for i in range(4)]
    got = pa.concat_tables(pq.read_table(s3.open(f"bkt/out/part-{i:05d}.parquet"))
                           for i in range(4))
    single = tmp_path / "single.parquet"
    ok("encode", data["model"], DIGITS, "--keep", "label", "-o", single, "-q")
    assert got.equals(pq.read_table(single))
    # one machine reads an object too
    one = tmp_path / "one.csv"
    ok("encode", data["model"], "s3://bkt/in/p1.parquet", "-o", one, "-q")
    assert len(pd.read_csv(one)) == 450
    r = CliRunner().invoke(app, ["encode", str(data["model"]), "s3://bkt/in/", "--scheduler",
                                 "local:2", "-o", "s3://bkt/out"])
    assert r.exit_code == 2 and "holds objects already" in r.stderr


def test_train_on_the_cluster_fits_as_one_machine_and_the_model_needs_no_dask(data, cluster,
                                                                             tmp_path):
    """Parameter averaging over 4 partitions on 2 workers against one machine on the same
    rows, columns and epochs, both measured on the same held-out rows."""
    digits = pd.read_csv(DIGITS).sample(frac=1, random_state=0)
    train, test = digits.iloc[:1500], digits.iloc[1500:]
    (tmp_path / "train").mkdir()
    for i in range(4):
        train.iloc[i * 375:(i + 1) * 375].to_parquet(tmp_path / "train" / f"p{i}.parquet",
                                                     index=False)
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    columns = ",".join(c for c in digits.columns if c not in ("label", "p00", "p32", "p39"))
    common = ["--columns", columns, "--epochs", "60", "-q"]
    ok("train", tmp_path / "train", "--scheduler", cluster, "-o", tmp_path / "c.npz", *common)
    ok("train", tmp_path / "train.csv", "-o", tmp_path / "s.npz", *common)

    def held_out(model):
        r = ok("score", model, tmp_path / "test.csv", "--json", "-q")
        return np.mean(list(json.loads(r.stdout)["feature_mse"].values()))

    assert held_out(tmp_path / "c.npz") < 1.3 * held_out(tmp_path / "s.npz")
    check = ("import sys; sys.modules['distributed'] = sys.modules['dask'] = None\n"
             "from aecli.pipeline.modelfile import read_model\n"
             "import pandas as pd\n"
             f"b = read_model({str(tmp_path / 'c.npz')!r})\n"
             f"X = pd.read_csv({str(tmp_path / 'test.csv')!r})\n"
             "print(b.encode(X[b.features].to_numpy(float)).shape)")
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "(297, 2)", out.stderr


def test_the_survey_merges_into_the_preparation_one_machine_fits():
    """Moments of partitions merged (Chan's update) give the scaler and imputation values of
    all the rows at once, under each policy and scaler."""
    from aecli.pipeline.cluster_survey import Moments, PartSurvey, preparation_from
    from aecli.preprocessing import MissingPolicy, Preparation, Roles

    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 3)) * [1.0, 1e3, 1e-3] + [5.0, -2e4, 0.0]
    X[rng.random(X.shape) < 0.05] = np.nan
    roles = Roles(numeric=["a", "b", "c"])
    for scale in ("standard", "minmax"):
        for policy in (MissingPolicy.IMPUTE, MissingPolicy.DROP):
            rows = X if policy is MissingPolicy.IMPUTE else X[~np.isnan(X).any(axis=1)]
            cuts = np.sort(rng.choice(np.arange(1, len(rows)), 4, replace=False))
            parts = [PartSurvey(i, len(p), len(p), 0, 0, 0, Moments.of(p))
                     for i, p in enumerate(np.split(rows, cuts))]
            merged = preparation_from(parts, roles, policy, scale, "float64", "error")
            whole = Preparation.fit(rows, roles.numeric, missing=policy, scale=scale,
                                    dtype="float64")
            np.testing.assert_allclose(merged.scaler.center_, whole.scaler.center_, rtol=1e-12)
            np.testing.assert_allclose(merged.scaler.scale_, whole.scaler.scale_, rtol=1e-10)
            np.testing.assert_allclose(merged.fill, whole.fill, rtol=1e-12)


def test_compare_pca_on_the_cluster(data, cluster):
    r = ok("compare-pca", data["dir"] / "pq", "--exclude", "label", "--scheduler", cluster,
           "-k", "1,2", "--epochs", "10", "--json", "-q")
    doc = json.loads(r.stdout)
    assert [row["k"] for row in doc["rows"]] == [1, 2]
    pca = [row["pca_mse"] for row in doc["rows"]]
    variance = [row["pca_explained_variance"] for row in doc["rows"]]
    assert pca[1] < pca[0] and 0 < variance[0] < variance[1] < 1
    assert all(row["ae_mse"] > 0 for row in doc["rows"]) and doc["suggestion"]["k"] in (1, 2)


def test_training_that_rereads_each_partition_fits_as_well(data, cluster):
    """Rows held in worker memory (drawn from every partition of a replica at once) or read
    anew every epoch (--stream, or data larger than the workers' memory: a partition at a
    time): the same rows, a model as good."""
    from aecli.pipeline.modelfile import read_model

    held, reread = data["dir"] / "held.npz", data["dir"] / "reread.npz"
    common = ["--exclude", "label", "--scheduler", cluster, "--epochs", "3", "-q"]
    ok("train", data["dir"] / "pq", "-o", held, *common)
    ok("train", data["dir"] / "pq", "-o", reread, "--stream", *common)
    a, b = read_model(held), read_model(reread)
    assert a.summary["held_in_memory"] and not b.summary["held_in_memory"]
    assert a.summary["rows_train"] == b.summary["rows_train"]
    assert b.autoencoder.validation_mse_ < 1.1 * a.autoencoder.validation_mse_


def test_bad_rows_on_a_worker_come_back_as_one_message_naming_the_partition(cluster, tmp_path):
    digits = pd.read_csv(DIGITS)
    (tmp_path / "gap").mkdir()
    first, second = digits.iloc[:900].copy(), digits.iloc[900:].copy()
    second.iloc[5, 3] = np.nan
    first.to_parquet(tmp_path / "gap" / "a.parquet", index=False)
    second.to_parquet(tmp_path / "gap" / "b.parquet", index=False)
    r = CliRunner().invoke(app, ["train", str(tmp_path / "gap"), "--exclude", "label",
                                 "--scheduler", cluster, "-o", str(tmp_path / "m.npz")])
    assert r.exit_code == 2, r.output
    assert "b.parquet: column 'p03' has 1 missing value (row 906)" in r.stderr  # global row
    assert "--missing drop" in r.stderr and "Traceback" not in r.output
    assert not (tmp_path / "m.npz").exists()
