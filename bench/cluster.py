"""Cluster runs: encode of a partitioned data set with 1 and 2 local worker processes against
one machine's ``aecli encode`` of the same rows; cluster training at scale (2M rows in 8
partitions: held-out error on 2 workers against one machine at 3 and at 10 epochs, and the
wall time of 2 workers against 1), and on the digits.

The data set: 8 Parquet partitions of 500,000 rows x 16 float32 columns (4M rows), written
once under ``bench/data/cluster``. The cluster times exclude starting the workers (a
LocalCluster of N processes, one thread each, started and warmed up first); the start-up is
reported beside them. One machine's time is ``aecli encode`` as a user runs it, a
subprocess reading the directory as one data set.

    .venv/bin/python bench/cluster.py
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATA = ROOT / "bench" / "data" / "cluster"
PARTS, ROWS, COLUMNS = 8, 500_000, 16
AECLI = str(Path(sys.executable).parent / "aecli")


def ensure_data(parts: int = PARTS, rows: int = ROWS, log=print) -> tuple[Path, Path]:
    """The partitions and a model of them (trained on 50,000 of their rows)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = DATA / f"{parts}x{rows}"
    model = folder.parent / f"model-{parts}x{rows}.npz"
    if not (folder / f"p{parts - 1}.parquet").exists():
        log(f"writing {parts} partitions of {rows:,} rows ...")
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        mix = rng.normal(size=(4, COLUMNS)).astype(np.float32)
        for i in range(parts):
            z = rng.normal(size=(rows, 4)).astype(np.float32)
            X = np.tanh(z @ mix) + 0.05 * rng.normal(size=(rows, COLUMNS)).astype(np.float32)
            pq.write_table(pa.table({f"x{j:02d}": X[:, j] for j in range(COLUMNS)}),
                           folder / f"p{i}.parquet")
    if not model.exists():
        import pyarrow.parquet as pq

        sample = folder.parent / "sample.parquet"
        pq.write_table(pq.read_table(folder / "p0.parquet").slice(0, 50_000), sample)
        subprocess.run([AECLI, "train", str(sample), "-o", str(model), "-k", "4", "-q",
                        "--epochs", "5"], check=True)
    return folder, model


TRAIN_ROWS = 250_000  # per partition, for the training figures: 2M rows in 8 partitions
TEST_ROWS = 50_000


def held_out_set(log=print) -> Path:
    """Rows drawn as the partitions' are (the same mixing), but never trained on."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = DATA / f"test-{TEST_ROWS}.parquet"
    if not path.exists():
        log(f"writing {TEST_ROWS:,} held-out rows ...")
        DATA.mkdir(parents=True, exist_ok=True)
        mix = np.random.default_rng(0).normal(size=(4, COLUMNS)).astype(np.float32)
        rng = np.random.default_rng(99)
        z = rng.normal(size=(TEST_ROWS, 4)).astype(np.float32)
        X = np.tanh(z @ mix) + 0.05 * rng.normal(size=(TEST_ROWS, COLUMNS)).astype(np.float32)
        pq.write_table(pa.table({f"x{j:02d}": X[:, j] for j in range(COLUMNS)}), path)
    return path


def _score(model: Path, test: Path) -> float:
    r = subprocess.run([AECLI, "score", str(model), str(test), "--json", "-q"],
                       capture_output=True, text=True, check=True)
    return float(np.mean(list(json.loads(r.stdout)["feature_mse"].values())))


def _train(args: list[str], log) -> tuple[float, list[float]]:
    """Seconds of ``aecli train ARGS`` (-v: a progress line each epoch), and the rows per
    second each epoch reports."""
    started = time.perf_counter()
    r = subprocess.run([AECLI, "train", *args, "-v"], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if r.returncode:
        raise RuntimeError(r.stderr)
    rates = [float(line.rsplit("  ", 1)[1].split()[0].replace(",", ""))
             for line in r.stderr.splitlines() if line.endswith("rows/s")]
    return seconds, rates


def training_at_scale(parts: int = PARTS, rows: int = TRAIN_ROWS, epochs=(3, 10),
                      log=print) -> dict:
    """Held-out error of models trained on ``parts`` x ``rows`` rows by one machine (in
    memory) and by 2 local workers at each of ``epochs``, scored on TEST_ROWS other rows;
    and the wall time of ``aecli train --scheduler`` with 1 and with 2 workers at the first
    of ``epochs`` (the workers started before the clock starts)."""
    from distributed import LocalCluster

    folder, _ = ensure_data(parts, rows, log)
    test = held_out_set(log)
    out: dict = {}
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        common = ["-k", "4", "--seed", "0"]
        for e in epochs:
            out[f"single_s{e}"], _ = _train([str(folder), "-o", str(d / f"s{e}.npz"),
                                             "--epochs", str(e), *common], log)
            out[f"single{e}"] = _score(d / f"s{e}.npz", test)
            log(f"  one machine, {e} epochs: held-out {out[f'single{e}']:.5f} "
                f"({out[f'single_s{e}']:.1f} s)")
        for workers in (2, 1):
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                              dashboard_address=":0") as cluster:
                for e in epochs if workers == 2 else epochs[:1]:
                    model = d / f"w{workers}-{e}.npz"
                    seconds, rates = _train([str(folder), "--scheduler",
                                             cluster.scheduler_address, "-o", str(model),
                                             "--epochs", str(e), *common], log)
                    out[f"w{workers}_s{e}"], out[f"w{workers}_rate{e}"] = seconds, rates
                    out[f"w{workers}_{e}"] = _score(model, test)
                    log(f"  {workers} worker(s), {e} epochs: held-out "
                        f"{out[f'w{workers}_{e}']:.5f} ({seconds:.1f} s; epochs at "
                        f"{', '.join(f'{r:,.0f}' for r in rates)} rows/s)")
    return out


def encode_times(folder: Path, model: Path, rounds: int = 3, log=print) -> dict:
    """Seconds to encode the data set: one machine, and 1 and 2 workers (best of rounds)."""
    from distributed import Client, LocalCluster

    from aecli.pipeline.cluster_apply import Job, run_on_cluster

    out = {}
    scratch = Path(tempfile.mkdtemp(prefix="aecli-bench-cluster-"))
    try:
        times = []
        for r in range(rounds):
            target = scratch / f"single-{r}.parquet"
            started = time.perf_counter()
            subprocess.run([AECLI, "encode", str(model), str(folder), "-o", str(target), "-q"],
                           check=True)
            times.append(time.perf_counter() - started)
            target.unlink()
        out["single"] = min(times)
        for workers in (1, 2):
            started = time.perf_counter()
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                              dashboard_address=":0") as cluster, Client(cluster) as client:
                client.run(lambda: None)
                out[f"start{workers}"] = time.perf_counter() - started
                times = []
                for r in range(rounds):
                    target = scratch / f"w{workers}-{r}"
                    started = time.perf_counter()
                    run_on_cluster(client, model, str(folder), str(target), Job("encode"))
                    times.append(time.perf_counter() - started)
                    shutil.rmtree(target)
            out[f"workers{workers}"] = min(times)
            log(f"  {workers} worker(s): {out[f'workers{workers}']:.2f} s "
                f"(start-up {out[f'start{workers}']:.2f} s)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    log(f"  one machine: {out['single']:.2f} s")
    return out


def training_errors(log=print) -> dict:
    """Held-out error of one machine's model and of the cluster's (4 partitions, 2 workers),
    trained on the same 1,500 digits with the same columns and default epochs, measured on
    the same 297 held-out digits; median of 3 seeds."""
    import pandas as pd

    digits = pd.read_csv(ROOT / "sample_data" / "digits.csv").sample(frac=1, random_state=0)
    train, test = digits.iloc[:1500], digits.iloc[1500:]
    columns = ",".join(c for c in digits.columns if c not in ("label", "p00", "p32", "p39"))
    ratios = []
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        (d / "parts").mkdir()
        for i in range(4):
            train.iloc[i * 375:(i + 1) * 375].to_parquet(d / "parts" / f"p{i}.parquet",
                                                         index=False)
        train.to_csv(d / "train.csv", index=False)
        test.to_csv(d / "test.csv", index=False)

        def held_out(model):
            r = subprocess.run([AECLI, "score", str(model), str(d / "test.csv"), "--json", "-q"],
                               capture_output=True, text=True, check=True)
            return float(np.mean(list(json.loads(r.stdout)["feature_mse"].values())))

        for seed in (0, 1, 2):
            common = ["--columns", columns, "-q", "--seed", str(seed)]
            subprocess.run([AECLI, "train", str(d / "train.csv"), "-o", str(d / "s.npz"),
                            *common], check=True)
            subprocess.run([AECLI, "train", str(d / "parts"), "--scheduler", "local:2", "-o",
                            str(d / "c.npz"), *common], check=True)
            single, cluster = held_out(d / "s.npz"), held_out(d / "c.npz")
            ratios.append((cluster / single, single, cluster))
            log(f"  train seed {seed}: held-out error one machine {single:.4f}, "
                f"cluster {cluster:.4f} ({cluster / single:.2f}x)")
    ratio, single, cluster = sorted(ratios)[1]
    return {"ratio": ratio, "single": single, "cluster": cluster}


def figures(quick: bool = False, log=print) -> list:
    """The cluster figures for ``bench/run.py``."""
    from figures import Figure

    folder, model = ensure_data(2 if quick else PARTS, 50_000 if quick else ROWS, log)
    t = encode_times(folder, model, 1 if quick else 3, log)
    rows = (2 if quick else PARTS) * (50_000 if quick else ROWS)
    out = [
        Figure(f"cluster encode {rows:,} rows: 2 workers vs 1 worker (speed-up)",
               t["workers2"], t["workers1"], "s", t["workers1"] / t["workers2"], 1.6,
               note=f"start-up of the workers, not counted: {t['start1']:.1f} s (1), "
               f"{t['start2']:.1f} s (2)"),
        Figure(f"cluster encode {rows:,} rows, 2 workers: time vs one machine's aecli encode",
               t["workers2"], t["single"], "s", t["workers2"] / t["single"], None,
               at_least=False),
    ]
    e = (1, 3) if quick else (3, 10)
    parts, rows = (2, 20_000) if quick else (PARTS, TRAIN_ROWS)
    t = training_at_scale(parts, rows, e, log)
    total = parts * rows
    for epochs in e:
        out.append(Figure(
            f"cluster train {total:,} rows in {parts} partitions, {epochs} epochs: held-out "
            "error 2 workers vs one machine", t[f"w2_{epochs}"], t[f"single{epochs}"], "MSE",
            t[f"w2_{epochs}"] / t[f"single{epochs}"], 1.1, at_least=False,
            note=f"one machine in memory {t[f'single_s{epochs}']:.0f} s, 2 workers "
            f"{t[f'w2_s{epochs}']:.0f} s"))
    rate = {w: np.median(t[f"w{w}_rate{e[0]}"]) for w in (1, 2)}
    out.append(Figure(
        f"cluster train {total:,} rows, {e[0]} epochs: 2 workers vs 1 worker (speed-up)",
        t[f"w2_s{e[0]}"], t[f"w1_s{e[0]}"], "s", t[f"w1_s{e[0]}"] / t[f"w2_s{e[0]}"], 1.5,
        note=f"aecli train --scheduler, wall time; epochs at {rate[2]:,.0f} rows/s (2) vs "
        f"{rate[1]:,.0f} rows/s (1)"))
    q = training_errors(log)
    out.append(Figure("cluster train (4 partitions, 2 workers): held-out error vs one machine",
                      q["cluster"], q["single"], "MSE", q["ratio"], 1.1, at_least=False,
                      note="digits, same rows, columns and default epochs; median of 3 seeds"))
    return out


def main() -> None:
    for f in figures():
        print(f)


if __name__ == "__main__":
    main()
