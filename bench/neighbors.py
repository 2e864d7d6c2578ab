"""2-D codes that keep neighbours: aecli with ``neighbors`` against UMAP and the plain
autoencoder, on labelled tables.

Each table is split 80/20 (seeded, the same split for every method) and standardised on its
training rows; every method sees the same scaled rows. For 2-D codes of the training rows:

- kNN accuracy: 5-NN classifier of the labels, 5-fold cross-validated on the training codes;
- trustworthiness at 10 (scikit-learn's) of the training codes against the training rows;
- new-row accuracy: the held-out rows' codes (``transform``) classified by 5-NN fitted on
  the training rows' codes;

and, for the two autoencoders, the held-out reconstruction MSE (mean over rows). UMAP is
umap-learn with its defaults (15 neighbours, min_dist 0.1) and ``random_state`` = the seed.
Each figure is the mean over ``SEEDS``. The fit time is measured on a 70,000 x 784 table
(sklearn's 8 x 8 digits, each drawn at random, scaled to 28 x 28, shifted by up to 2 pixels
and given pixel noise: a real-ish MNIST-sized table), UMAP without ``random_state`` (its
parallel, fastest path), both in this process.

    .venv/bin/python bench/neighbors.py            # the tables and the fit time
    .venv/bin/python bench/neighbors.py --quick    # one seed, smaller fit-time table

umap-learn is a bench-only dependency (``pip install umap-learn``); without it, the UMAP
figures are skipped.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from figures import Figure, table  # noqa: E402

from aecli import Autoencoder  # noqa: E402

SEEDS = (0, 1, 2)
NEIGHBORS = 15  # aecli's --neighbors in the comparison (UMAP's default n_neighbors)
SPEED_ROWS = 70_000


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    """A labelled table: features (n, d) float64 and labels (n,)."""
    from sklearn import datasets

    if name == "penguins":  # palmerpenguins' bundled table (344 penguins, 3 species)
        from palmerpenguins import load_penguins

        df = load_penguins().dropna(subset=["bill_length_mm", "bill_depth_mm",
                                            "flipper_length_mm", "body_mass_g"])
        X = df[["bill_length_mm", "bill_depth_mm", "flipper_length_mm",
                "body_mass_g"]].to_numpy(np.float64)
        return X, df["species"].astype("category").cat.codes.to_numpy()
    loader = {"digits": datasets.load_digits, "wine": datasets.load_wine,
              "breast cancer": datasets.load_breast_cancer}[name]
    data = loader()
    return data.data.astype(np.float64), data.target


TABLES = ("digits", "wine", "breast cancer", "penguins")


def digits_784(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows of 28 x 28 pixels made from sklearn's 8 x 8 digits: each a random digit,
    scaled up (nearest pixel, 3x to 24 x 24), placed at a random offset of up to 2 pixels
    from the centre, plus noise of 1/16 of the ink's range; labels the digits'."""
    from sklearn.datasets import load_digits

    d = load_digits()
    pick = rng.integers(0, len(d.images), size=n)
    big = np.repeat(np.repeat(d.images, 3, axis=1), 3, axis=2).astype(np.float32)  # 24x24
    out = np.zeros((n, 28, 28), dtype=np.float32)
    dx, dy = rng.integers(0, 5, size=n), rng.integers(0, 5, size=n)
    for ox in range(5):
        for oy in range(5):
            rows = np.flatnonzero((dx == ox) & (dy == oy))
            out[rows, oy : oy + 24, ox : ox + 24] = big[pick[rows]]
    out += rng.normal(scale=1.0, size=out.shape).astype(np.float32)
    return out.reshape(n, 784), d.target[pick]


def split(X: np.ndarray, y: np.ndarray, seed: int):
    """80/20, standardised on the training rows (constant columns keep scale 1)."""
    order = np.random.default_rng(seed).permutation(len(X))
    cut = int(0.8 * len(X))
    tr, te = order[:cut], order[cut:]
    mean, std = X[tr].mean(axis=0), X[tr].std(axis=0)
    std[std == 0] = 1.0
    return (X[tr] - mean) / std, y[tr], (X[te] - mean) / std, y[te]


def code_figures(Z: np.ndarray, y: np.ndarray, X: np.ndarray, Z_new: np.ndarray,
                 y_new: np.ndarray, seed: int) -> dict:
    """kNN accuracy, trustworthiness at 10 and new-row accuracy of codes (see above)."""
    from sklearn.manifold import trustworthiness
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    knn = KNeighborsClassifier(5)
    return {
        "knn": float(cross_val_score(knn, Z, y, cv=folds).mean()),
        "trust": float(trustworthiness(X, Z, n_neighbors=10)),
        "new": float(knn.fit(Z, y).score(Z_new, y_new)),
    }


def run_aecli(Xtr, ytr, Xte, yte, seed: int, neighbors: int, **params) -> dict:
    """One autoencoder's figures (2-D codes), its held-out MSE and fit seconds."""
    started = time.perf_counter()
    ae = Autoencoder(latent=2, seed=seed, neighbors=neighbors, **params).fit(Xtr)
    seconds = time.perf_counter() - started
    out = code_figures(ae.transform(Xtr), ytr, Xtr, ae.transform(Xte), yte, seed)
    out.update(mse=float(ae.reconstruction_error(Xte).mean()), seconds=seconds)
    return out


def run_umap(Xtr, ytr, Xte, yte, seed: int) -> dict | None:
    """UMAP's figures (2-D), or None without umap-learn."""
    try:
        import umap
    except ImportError:
        return None
    started = time.perf_counter()
    reducer = umap.UMAP(n_components=2, random_state=seed).fit(Xtr)
    seconds = time.perf_counter() - started
    out = code_figures(reducer.embedding_, ytr, Xtr, reducer.transform(Xte), yte, seed)
    out["seconds"] = seconds
    return out


def measure_tables(tables=TABLES, seeds=SEEDS, log=print, **params) -> dict:
    """Each table's mean figures per method: {table: {method: {figure: value}}}."""
    results = {}
    for name in tables:
        X, y = load(name)
        per = {"plain": [], "neighbors": [], "umap": []}
        for seed in seeds:
            Xtr, ytr, Xte, yte = split(X, y, seed)
            per["plain"].append(run_aecli(Xtr, ytr, Xte, yte, seed, 0, **params))
            per["neighbors"].append(run_aecli(Xtr, ytr, Xte, yte, seed, NEIGHBORS, **params))
            u = run_umap(Xtr, ytr, Xte, yte, seed)
            if u is not None:
                per["umap"].append(u)
        results[name] = {m: {f: float(np.mean([r[f] for r in runs])) for f in runs[0]}
                         for m, runs in per.items() if runs}
        log(f"  {name} ({len(X)} x {X.shape[1]}): " + "; ".join(
            f"{m} " + " ".join(f"{f}={v:.3f}" for f, v in figs.items())
            for m, figs in results[name].items()))
    return results


def fit_times(rows: int, log=print) -> tuple[float, float | None]:
    """Seconds to fit 2-D codes of a ``rows`` x 784 table: aecli with neighbours, UMAP."""
    X, _ = digits_784(rows, np.random.default_rng(0))
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    started = time.perf_counter()
    Autoencoder(latent=2, seed=0, neighbors=NEIGHBORS).fit(X)
    ours = time.perf_counter() - started
    log(f"  fit {rows:,} x 784: aecli {ours:.1f} s")
    try:
        import umap
    except ImportError:
        return ours, None
    started = time.perf_counter()
    umap.UMAP(n_components=2).fit(X)
    theirs = time.perf_counter() - started
    log(f"  fit {rows:,} x 784: UMAP {theirs:.1f} s")
    return ours, theirs


def figures(quick: bool = False, log=print) -> list[Figure]:
    """The section's figures: per table, each of the three code figures against UMAP's
    (target: within 0.02, as the ratio 1 + (ours - UMAP's)) and the held-out MSE against
    the plain autoencoder's (<= 1.15x); the means over tables (>= UMAP's); the fit time."""
    results = measure_tables(seeds=SEEDS[:1] if quick else SEEDS, log=log)
    out = []
    labels = {"knn": "kNN accuracy", "trust": "trustworthiness@10", "new": "new-row accuracy"}
    for name, r in results.items():
        for f, label in labels.items():
            u = r.get("umap", {}).get(f)
            out.append(Figure(f"neighbours {name}: {label}", r["neighbors"][f], u, "share",
                              None if u is None else 1 + r["neighbors"][f] - u, 0.98,
                              note=f"plain AE {r['plain'][f]:.3f}"))
        ratio = r["neighbors"]["mse"] / r["plain"]["mse"]
        out.append(Figure(f"neighbours {name}: held-out MSE vs plain AE", r["neighbors"]["mse"],
                          r["plain"]["mse"], "MSE", ratio, 1.15, at_least=False))
    for f, label in labels.items():
        ours = float(np.mean([r["neighbors"][f] for r in results.values()]))
        us = [r["umap"][f] for r in results.values() if "umap" in r]
        theirs = float(np.mean(us)) if len(us) == len(results) else None
        out.append(Figure(f"neighbours mean over tables: {label}", ours, theirs, "share",
                          None if theirs is None else 1 + ours - theirs, 1.0))
    rows = 10_000 if quick else SPEED_ROWS
    ours, theirs = fit_times(rows, log)
    out.append(Figure(f"neighbours fit time {rows:,} x 784 vs UMAP", ours, theirs, "s",
                      None if theirs is None else ours / theirs, 1.0, at_least=False))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(table(figures(quick=args.quick)))


if __name__ == "__main__":
    main()
