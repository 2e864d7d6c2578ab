"""Regenerate aecli's sample data sets, deterministically.

Usage::

    .venv/bin/python sample_data/make_sample_data.py           # write the three CSV files
    .venv/bin/python sample_data/make_sample_data.py --check   # also compare PCA with a small MLP

``digits.csv`` is scikit-learn's bundled copy of the UCI optical recognition of handwritten
digits data set. ``curve.csv`` is synthetic: a 1-D helix pushed through a random nonlinear map
into ten columns, so that a nonlinear autoencoder reconstructs it far better than PCA at the
same small number of components. ``orders.csv`` is synthetic too: a mixed-type table of
shop orders (identifiers, dates, categories, yes/no, gaps) with a dozen planted impossible
store/region combinations. All are written with NumPy's PCG64 generator from a fixed
seed and rounded before writing, so reruns give byte-identical files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
SEED = 20240601

# curve.csv: shape of the data set
CURVE_ROWS = 2000
CURVE_FEATURES = 10
CURVE_TURNS = 1.5  # more turns make PCA worse, and the autoencoder's job harder too
CURVE_NOISE = 0.02  # on the tanh scale, where every column lies in (-1, 1)
SEGMENTS = ("low", "mid", "high")  # thirds of the position along the helix


def make_digits() -> pd.DataFrame:
    """Return scikit-learn's digits as a frame: ``p00``..``p63`` (0..16) then ``label``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = digits.data.astype(np.int64)  # (1797, 64), stored as floats, integer-valued
    frame = pd.DataFrame(pixels, columns=[f"p{j:02d}" for j in range(pixels.shape[1])])
    frame["label"] = digits.target.astype(np.int64)
    return frame


def make_curve(seed: int = SEED) -> pd.DataFrame:
    """Return the helix data set: ``id``, ``segment``, then ``x01``..``x10`` in mixed units.

    A position ``t`` along a helix is the one hidden variable. The helix's three coordinates
    go through ``tanh(P @ A + b)`` with a random ``A`` and ``b``, which bends the curve further
    and spreads it over ten columns; a little Gaussian noise is added, then each column gets its
    own unit and offset, so that scaling matters.
    """
    rng = np.random.default_rng(seed)
    n, d = CURVE_ROWS, CURVE_FEATURES

    t = rng.uniform(0.0, 2 * np.pi * CURVE_TURNS, n)  # (n,) the hidden position
    P = np.c_[np.cos(t), np.sin(t), t / np.pi]  # (n, 3) a helix
    P = (P - P.mean(axis=0)) / P.std(axis=0)  # (n, 3)
    A = rng.normal(size=(3, d)) * (1.5 / np.sqrt(3))  # (3, d) strong enough to saturate tanh
    b = rng.normal(size=d) * 0.3  # (d,)
    X = np.tanh(P @ A + b)  # (n, d)
    X += rng.normal(scale=CURVE_NOISE, size=X.shape)  # (n, d)

    # Mixed units: scales from 0.01 to 1000, so an unscaled autoencoder would see one column.
    scale = 10.0 ** rng.integers(-2, 4, size=d)  # (d,)
    offset = np.round(rng.normal(size=d) * 3) * scale  # (d,)
    X = X * scale + offset  # (n, d)

    frame = pd.DataFrame({"id": [f"r{i + 1:04d}" for i in range(n)]})
    third = np.minimum((t / t.max() * len(SEGMENTS)).astype(int), len(SEGMENTS) - 1)
    frame["segment"] = np.asarray(SEGMENTS)[third]
    for j in range(d):
        # About five significant digits of the column's unit: far finer than the noise.
        decimals = 4 - round(np.log10(scale[j]))
        frame[f"x{j + 1:02d}"] = np.round(X[:, j], decimals)
    return frame


# orders.csv: a mixed-type table (text, categories, dates, booleans, gaps) with planted oddities
ORDERS_ROWS = 3000
STORES = {"berlin": "east", "dresden": "east", "leipzig": "east", "hamburg": "north",
          "bremen": "north", "kiel": "north", "munich": "south", "stuttgart": "south",
          "nuremberg": "south", "cologne": "west", "essen": "west", "bonn": "west"}
CATEGORIES = {"grocery": 18.0, "drinks": 12.0, "household": 25.0, "garden": 60.0,
              "electronics": 240.0, "toys": 35.0}  # mean price of one item
PLANTED = 12  # orders whose store is in the wrong region: a combination never seen otherwise


def make_orders(seed: int = SEED) -> pd.DataFrame:
    """Return the orders table: an identifier, a date, text categories (store, region,
    category, payment), a yes/no column, numbers with a few gaps, an empty column and a
    constant one. Each store lies in one region; ``PLANTED`` rows (every 250th, from row 100)
    put a store in another region, the kind of error a category-blind detector cannot see.
    """
    rng = np.random.default_rng(seed + 2)
    n = ORDERS_ROWS
    stores = np.array(list(STORES))
    store = stores[rng.integers(0, len(stores), n)]
    region = np.array([STORES[s] for s in store], dtype=object)
    category = rng.choice(list(CATEGORIES), n, p=[0.3, 0.2, 0.2, 0.1, 0.05, 0.15])
    items = rng.integers(1, 9, n)
    price = np.array([CATEGORIES[c] for c in category]) * rng.lognormal(0.0, 0.15, n)
    member = rng.random(n) < 0.4
    amount = np.round(items * price * np.where(member, 0.95, 1.0), 2)
    online = np.isin(category, ["electronics", "toys"]) & (rng.random(n) < 0.7)
    payment = np.where(online, "online", rng.choice(["card", "cash"], n, p=[0.7, 0.3]))
    weight = np.round(items * np.where(category == "drinks", 1.2, 0.4)
                      * rng.lognormal(0.0, 0.1, n), 2)
    day = np.datetime64("2024-01-01") + np.sort(rng.integers(0, 366, n)).astype("timedelta64[D]")
    planted = np.arange(100, 100 + 250 * PLANTED, 250)[:PLANTED]
    others = {s: sorted({r for r in STORES.values() if r != STORES[s]}) for s in STORES}
    for i in planted:
        region[i] = others[store[i]][int(rng.integers(0, 3))]
    frame = pd.DataFrame({
        "order_id": [f"A{i + 1:05d}" for i in range(n)],
        "date": day.astype(str),
        "store": store, "region": region, "category": category, "payment": payment,
        "member": np.where(member, "yes", "no"),
        "items": items, "amount": amount, "weight_kg": weight,
        "coupon": [""] * n,  # never filled in
        "currency": "EUR",
    })
    gaps = rng.choice(np.setdiff1d(np.arange(n), planted), 30, replace=False)
    frame["weight_kg"] = frame["weight_kg"].astype(object)
    frame.loc[gaps, "weight_kg"] = ""
    return frame


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` to ``path`` whole or not at all."""
    tmp = path.with_name(path.name + ".tmp")
    frame.to_csv(tmp, index=False, lineterminator="\n")
    tmp.replace(path)


def check(frame: pd.DataFrame, name: str, ks: tuple[int, ...] = (1, 2)) -> None:
    """Print held-out reconstruction MSE of PCA and of an MLP ``(32, k, 32)`` fitted X -> X.

    The features are the frame's numeric columns (``label`` excluded), standardised with the
    training split's mean and standard deviation; 25% of rows are held out.
    """
    import warnings

    from sklearn.decomposition import PCA
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    X = frame.select_dtypes("number").drop(columns=["label"], errors="ignore").to_numpy(float)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(X))
    n_test = len(X) // 4
    X_test, X_train = X[order[:n_test]], X[order[n_test:]]  # (n_test, d), (n_train, d)
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    std[std == 0] = 1.0  # constant pixels stay constant instead of becoming NaN
    X_train, X_test = (X_train - mean) / std, (X_test - mean) / std

    print(f"{name}: {X_train.shape[0]} train / {X_test.shape[0]} held-out rows, "
          f"{X.shape[1]} features, standardised; held-out MSE")
    for k in ks:
        pca = PCA(n_components=k).fit(X_train)
        pca_mse = np.mean((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2)
        mlp_mse = []
        for seed in (0, 1, 2):
            mlp = MLPRegressor(hidden_layer_sizes=(32, k, 32), max_iter=1000, random_state=seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                mlp.fit(X_train, X_train)
            mlp_mse.append(np.mean((mlp.predict(X_test) - X_test) ** 2))
        best = min(mlp_mse)
        runs = ", ".join(f"{m:.4f}" for m in mlp_mse)
        print(f"  k={k}: PCA {pca_mse:.4f} (explained {pca.explained_variance_ratio_.sum():.3f})"
              f"  MLP seeds 0-2 [{runs}]  best/PCA {best / pca_mse:.3f}")


def main() -> None:
    """Write the sample files next to this script; with ``--check``, compare PCA and an MLP."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="also print PCA vs MLP reconstruction error (takes about a minute)")
    args = parser.parse_args()

    digits, curve, orders = make_digits(), make_curve(), make_orders()
    write_csv(digits, HERE / "digits.csv")
    write_csv(curve, HERE / "curve.csv")
    write_csv(orders, HERE / "orders.csv")
    for name, frame in (("digits.csv", digits), ("curve.csv", curve), ("orders.csv", orders)):
        size = (HERE / name).stat().st_size
        print(f"wrote {name}: {frame.shape[0]} rows x {frame.shape[1]} columns, {size:,} bytes")
    if args.check:
        check(curve, "curve.csv")
        check(digits, "digits.csv")


if __name__ == "__main__":
    main()
