"""How cluster training averages, chosen by figures: replicas of the model simulated in one
process (no Dask), each training on its share of the rows with Adam, averaged by rows
``rounds`` times an epoch, against one machine at the same epochs; held-out MSE on 20,000
other rows. Options: ``K`` replicas, ``rounds`` averages per epoch, ``lrm`` the replicas'
learning-rate factor, ``beta`` an outer (SlowMo) momentum and ``alpha`` an outer step on the
averaged update. Not part of ``make bench``: a study, run by hand.

    .venv/bin/python bench/cluster_choice.py tanh 400000 1,3 "[dict(K=2), dict(K=2, rounds=4)]"

``check ROWS`` runs the commands instead, on the second set: ``aecli train --stream`` on one
machine against ``aecli train --scheduler`` on a LocalCluster of 2 workers over 8 partitions
of uneven sizes, at 1, 3 and 10 epochs; then the digits at 30 epochs (3 seeds), as
``bench/cluster.py`` splits them.

    .venv/bin/python bench/cluster_choice.py check 400000
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from aecli.estimators import Hyperparameters  # noqa: E402
from aecli.nn import Network, autoencoder_specs, make_optimizer  # noqa: E402
from aecli.nn.schedules import ScheduleKind, lr_factor  # noqa: E402
from aecli.nn.training import reconstruction_mse_rows, train  # noqa: E402


def data(kind: str, n: int) -> np.ndarray:
    """tanh: 16 columns mixed from 4 factors (bench/cluster.py's); b: 8 columns of products,
    squares, sines and exponentials of 3 factors. Standardised, float32."""
    rng = np.random.default_rng(0 if kind == "tanh" else 1)
    if kind == "tanh":
        X = np.tanh(rng.normal(size=(n, 4)) @ rng.normal(size=(4, 16)))
        X += 0.05 * rng.normal(size=X.shape)
    else:
        z = rng.normal(size=(n, 3))
        X = np.c_[z[:, 0] * z[:, 1], np.sin(z[:, 2]), z[:, 0] ** 2, np.exp(0.5 * z[:, 1]), z,
                  z[:, 0] + z[:, 2]] + 0.05 * rng.normal(size=(n, 8))
    return ((X - X.mean(0)) / X.std(0)).astype(np.float32)


def network(hp, d: int) -> Network:
    specs = autoencoder_specs(d, hp.hidden, hp.latent, hp.activation, hp.latent_activation,
                              hp.output_activation, hp.tied)
    return Network(specs, dtype=np.float32, rng=np.random.default_rng(hp.seed))


def one_machine(hp, X: np.ndarray, test: np.ndarray) -> float:
    net = network(hp, X.shape[1])
    train(net, make_optimizer("adam", net.theta.size, net.dtype, hp.lr), X, None,
          replace(hp, patience=None), np.random.default_rng(hp.seed))
    return float(np.mean(reconstruction_mse_rows(net, test)))


def replicas(hp, X: np.ndarray, test: np.ndarray, K=8, rounds=1, beta=0.0, alpha=1.0,
             lrm=1.0) -> float:
    hp = replace(hp, lr=hp.lr * lrm)
    net = network(hp, X.shape[1])
    parts = np.array_split(X, K)
    nets = [network(hp, X.shape[1]) for _ in range(K)]
    opts = [make_optimizer("adam", net.theta.size, net.dtype, hp.lr) for _ in range(K)]
    momentum = np.zeros(net.theta.size)
    rngs = [np.random.default_rng(100 + i) for i in range(K)]
    for epoch in range(hp.epochs):
        orders = [r.permutation(len(p)) for r, p in zip(rngs, parts, strict=True)]
        for r in range(rounds):
            lr = hp.lr * lr_factor(hp.schedule, (epoch + r / rounds) / hp.epochs)
            start = net.theta.astype(np.float64).copy()
            total, rows = np.zeros(net.theta.size), 0
            for i, p in enumerate(parts):
                rows_i = p[np.sort(orders[i][r * len(p) // rounds:(r + 1) * len(p) // rounds])]
                nets[i].theta[...] = net.theta
                train(nets[i], opts[i], rows_i, None,
                      replace(hp, epochs=1, lr=lr, schedule=ScheduleKind.NONE, patience=None),
                      rngs[i])
                total += nets[i].theta.astype(np.float64) * len(rows_i)
                rows += len(rows_i)
            momentum = beta * momentum + (start - total / rows)
            net.theta[...] = start - alpha * momentum
    return float(np.mean(reconstruction_mse_rows(net, test)))


def check(n: int) -> None:
    """The commands on the second set and on the digits (see the module's docstring)."""
    import subprocess
    import tempfile

    import pandas as pd
    from cluster import AECLI, _score
    from distributed import LocalCluster

    d = Path(tempfile.mkdtemp(prefix="aecli-choice-"))
    frame = pd.DataFrame(data("b", n + 20_000), columns=[f"c{i}" for i in range(8)])
    (d / "parts").mkdir()
    cuts = (np.array([0, 0.025, 0.225, 0.25, 0.45, 0.575, 0.75, 0.8333, 1]) * n).astype(int)
    for i in range(8):
        frame.iloc[cuts[i]:cuts[i + 1]].to_parquet(d / "parts" / f"p{i}.parquet", index=False)
    frame.iloc[:n].to_parquet(d / "train.parquet", index=False)
    frame.iloc[n:].to_parquet(d / "test.parquet", index=False)
    digits = pd.read_csv(Path(__file__).parent.parent / "sample_data" / "digits.csv")
    digits = digits.sample(frac=1, random_state=0)
    (d / "digits").mkdir()
    for i in range(4):
        digits.iloc[i * 375:(i + 1) * 375].to_parquet(d / "digits" / f"p{i}.parquet",
                                                      index=False)
    digits.iloc[:1500].to_csv(d / "digits.csv", index=False)
    digits.iloc[1500:].to_csv(d / "digits-test.csv", index=False)
    columns = ",".join(c for c in digits.columns if c not in ("label", "p00", "p32", "p39"))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster:
        runs = [(d / "train.parquet", d / "parts", d / "test.parquet",
                 ["-k", "3", "--seed", "0", "--epochs", str(e)], f"{n:,} rows, {e} epochs")
                for e in (1, 3, 10)]
        runs += [(d / "digits.csv", d / "digits", d / "digits-test.csv",
                  ["--columns", columns, "--epochs", "30", "--seed", str(seed)],
                  f"digits, 30 epochs, seed {seed}") for seed in (0, 1, 2)]
        for whole, parts, test, args, name in runs:
            one = ["--stream"] if whole.suffix == ".parquet" else []
            subprocess.run([AECLI, "train", str(whole), *one, "-o", str(d / "s.npz"), *args,
                            "-q"], check=True)
            subprocess.run([AECLI, "train", str(parts), "--scheduler",
                            cluster.scheduler_address, "-o", str(d / "c.npz"), *args, "-q"],
                           check=True)
            single, two = _score(d / "s.npz", test), _score(d / "c.npz", test)
            print(f"{name}: one machine {single:.5f}, 2 workers {two:.5f} "
                  f"({two / single:.3f}x)", flush=True)


def main() -> None:
    if sys.argv[1] == "check":
        return check(int(sys.argv[2]))
    kind, n = sys.argv[1], int(sys.argv[2])
    X = data(kind, n + 20_000)
    X, test = X[:n], X[n:]
    for epochs in map(int, sys.argv[3].split(",")):
        hp = replace(Hyperparameters(latent=4 if kind == "tanh" else 3, seed=0).resolved(n),
                     epochs=epochs)
        single = one_machine(hp, X, test)
        print(f"{kind} {n:,} rows, {epochs} epochs: one machine {single:.5f}", flush=True)
        for options in eval(sys.argv[4]):  # a study's own command line
            started = time.perf_counter()
            error = replicas(hp, X, test, **options)
            print(f"  {options}: {error:.5f} ({error / single:.3f}x, "
                  f"{time.perf_counter() - started:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
