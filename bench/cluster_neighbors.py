"""--neighbors on a cluster against one machine's --stream (bench/README.md, codes that keep
neighbours, on a cluster): a labelled table in 8 uneven Parquet partitions, trained with
-k 2 and --seed 0 on a local cluster of 2 workers and on one machine with --stream, with and
without --neighbors 10 (defaults otherwise); every row's code measured: trustworthiness at 10
and 5-NN accuracy (5-fold) of the labels.

    .venv/bin/python bench/cluster_neighbors.py digits   # or cancer, wine
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

AECLI = str(Path(sys.executable).parent / "aecli")


def main(name: str) -> None:
    import distributed
    from sklearn.datasets import load_breast_cancer, load_digits, load_wine
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    from aecli.estimators.neighbor_metrics import neighbor_preservation
    from aecli.pipeline.modelfile import read_model

    loader = {"digits": load_digits, "cancer": load_breast_cancer, "wine": load_wine}[name]
    X, y = loader(return_X_y=True)
    X = X[:, X.std(axis=0) > 0]  # constant columns are left out by train, so here too
    work = Path(tempfile.mkdtemp())
    data = work / "parts"
    data.mkdir()
    frame = pd.DataFrame(X, columns=[f"c{i}" for i in range(X.shape[1])])
    cuts = np.sort(np.random.default_rng(0).choice(np.arange(1, len(X)), 7, replace=False))
    for i, part in enumerate(np.split(np.arange(len(X)), cuts)):  # 8 uneven partitions
        frame.iloc[part].to_parquet(data / f"p{i}.parquet", index=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        for neighbors in (0, 10):
            for where in (["--stream"], ["--scheduler", cluster.scheduler_address]):
                out = work / f"m{neighbors}{where[0]}.npz"
                started = time.perf_counter()
                subprocess.run([AECLI, "train", str(data), "-k", "2", "--neighbors",
                                str(neighbors), "--seed", "0", "-q", "-o", str(out), *where],
                               check=True)
                seconds = time.perf_counter() - started
                bundle = read_model(out)
                Xs = bundle.preparation.transform(X).X
                Z = bundle.autoencoder.transform(Xs)
                trust = neighbor_preservation(Xs, Z, most=len(X))["trustworthiness"]
                accuracy = cross_val_score(KNeighborsClassifier(5), Z, y, cv=5).mean()
                print(f"{name} --neighbors {neighbors} {where[0]}: trustworthiness "
                      f"{trust:.3f}, 5-NN accuracy {accuracy:.3f}, held-out MSE "
                      f"{bundle.summary['validation_mse']:.4f}, epochs "
                      f"{bundle.summary['epochs_run']}, {seconds:.1f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "digits")
