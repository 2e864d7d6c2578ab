"""One extreme row among the validation rows: does it steer early stopping?

``sample_data/curve.csv``'s ten numeric columns, standardised on clean rows. 400 rows are a
clean test set; of the other 1,600, each seed holds out its own random tenth plus one extreme
row (a clean row with one column 200 standard deviations out, as a 1,048 mph wind reading
among ordinary ones) for validation and trains on the rest. The figure is each seed's mean
reconstruction error on the clean test rows, with the extreme row among the validation rows
and without it, and the spread over the seeds (largest over smallest, minus one).

    .venv/bin/python bench/extreme_row.py [--seeds 5] [--epochs 10]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from aecli import Autoencoder

DATA = Path(__file__).resolve().parent.parent / "sample_data" / "curve.csv"
SIGMAS = 200.0  # how far out the extreme row's one bad cell lies


def table(rows: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(training pool, clean test rows, the extreme row (1, d)), standardised on the pool;
    ``rows``: the first rows of curve.csv only (a smaller table, for tests)."""
    X = pd.read_csv(DATA).filter(regex=r"^x\d+$").to_numpy(np.float64)
    X = X if rows is None else X[:rows]
    test = len(X) // 5
    pool, clean = X[test:], X[:test]
    mean, std = pool.mean(axis=0), pool.std(axis=0)
    pool, clean = (pool - mean) / std, (clean - mean) / std
    extreme = pool[:1].copy()
    extreme[0, 3] = SIGMAS  # one wild cell, as a mistyped reading
    return pool, clean, extreme


def fit(pool: np.ndarray, extreme: np.ndarray | None, seed: int, epochs: int,
        **params) -> Autoencoder:
    """A model on the pool less a tenth drawn with ``seed``, which is held out for validation
    with ``extreme`` (when given) among it."""
    order = np.random.default_rng(seed).permutation(len(pool))
    held, train = order[: len(pool) // 10], order[len(pool) // 10 :]
    val = pool[held] if extreme is None else np.concatenate([pool[held], extreme])
    ae = Autoencoder(epochs=epochs, seed=seed, **params)
    return ae.fit(pool[train], validation_data=val)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    pool, clean, extreme = table()
    print("seed  best epoch (extreme / clean val)  test MSE (extreme / clean val)")
    with_x, without = [], []
    for seed in range(args.seeds):
        a, b = fit(pool, extreme, seed, args.epochs), fit(pool, None, seed, args.epochs)
        ea = float(a.reconstruction_error(clean).mean())
        eb = float(b.reconstruction_error(clean).mean())
        with_x.append(ea)
        without.append(eb)
        print(f"{seed:4d}  {a.best_epoch_:6d} / {b.best_epoch_:<6d}{'':20s}"
              f"{ea:.4f} / {eb:.4f}")
    for label, errs in (("extreme row in validation", with_x), ("clean validation", without)):
        errs = np.array(errs)
        print(f"{label}: test MSE {errs.min():.4f}-{errs.max():.4f}, "
              f"spread {errs.max() / errs.min() - 1:.1%}")
    ratio = np.array(with_x) / np.array(without)
    print(f"extreme / clean, per seed: {ratio.min():.3f}-{ratio.max():.3f}")


if __name__ == "__main__":
    main()
