"""What the commands do, on arrays: train a bundle, sweep k against PCA, score rows.

This layer sits between the CLI and the estimators. It takes raw matrices (original units,
NaN for missing) and column names, and returns bundles, plain-JSON summaries and arrays. No
paths, no printing: the CLI reads, renders and writes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .bundle import ModelBundle
from .errors import DataError, InvalidParameterError
from .model import Autoencoder
from .pca import PCA
from .preprocessing import (
    Imputer,
    MissingPolicy,
    find_missing,
    make_scaler,
    missing_error,
    reject_infinite,
)
from .training import EpochReport

# A k counts as good enough when its error is within this fraction of the data's variance
# (the error of reconstructing every row by the mean) of the best k's error.
SUGGEST_TOLERANCE = 0.01


@dataclass
class Prepared:
    """Training rows after the missing-value policy: scaled train and validation splits."""

    X_train: np.ndarray
    X_val: np.ndarray | None
    scaler: object
    fill: np.ndarray | None
    rows_dropped: int


def prepare(X, names, *, missing: str, scale: str, validation: float, seed, dtype) -> Prepared:
    """Apply the missing-value policy, split off validation rows, fit the scaler on the
    training rows only (so validation error is honest), and scale both splits.

    Every check runs on the whole of ``X`` before the split, so that messages give the
    column's name and the row's number in the input (1-based data rows).
    """
    policy = MissingPolicy(missing)
    reject_infinite(X, names)
    fill, dropped = None, 0
    rows = np.arange(1, X.shape[0] + 1)  # the input row of each row of X
    nan = np.isnan(X)
    if nan.any():
        report = find_missing(X, names)
        if policy is MissingPolicy.ERROR:
            raise missing_error(report)
        if policy is MissingPolicy.DROP:
            keep = ~nan.any(axis=1)
            dropped = int((~keep).sum())
            X, rows = X[keep], rows[keep]
    if X.shape[0] < 2:
        after = f" after dropping {dropped} with missing values" if dropped else ""
        raise DataError(f"{X.shape[0]} row(s) to train on{after}; training needs at least 2",
                        hint="give more rows" + (", or use --missing impute" if dropped else ""))
    rng = np.random.default_rng(seed)
    n_val = int(round(X.shape[0] * validation))
    if n_val < 1 or X.shape[0] - n_val < 2:
        train_rows, val_rows = np.arange(X.shape[0]), None
    else:
        order = rng.permutation(X.shape[0])
        train_rows, val_rows = np.sort(order[n_val:]), np.sort(order[:n_val])
    X_train = X[train_rows]
    if policy is MissingPolicy.IMPUTE:
        imputer = Imputer().fit(X_train, names=names)  # training means, training rows only
        fill, X = imputer.fill_, imputer.transform(X)
        X_train = X[train_rows]
    scaler = make_scaler(scale).fit(X_train)
    _check_scaled_range(X, rows, names, scaler, dtype)
    X_val = None if val_rows is None else scaler.transform(X[val_rows]).astype(dtype)
    return Prepared(scaler.transform(X_train).astype(dtype), X_val, scaler, fill, dropped)


def _check_scaled_range(X, rows, names, scaler, dtype) -> None:
    """Raise DataError naming the first column whose values, once scaled, do not fit in
    ``dtype`` (they would become infinite and poison training)."""
    limit = np.finfo(dtype).max
    with np.errstate(over="ignore", invalid="ignore"):
        center, scale = scaler.center_, scaler.scale_  # (d,)
        lo = (X.min(axis=0) - center) / scale  # the affine map is monotonic: its extremes
        hi = (X.max(axis=0) - center) / scale  # come from the column's extremes
        ok = np.isfinite(center) & np.isfinite(scale) & (np.abs(lo) <= limit) & (
            np.abs(hi) <= limit)
    if ok.all():
        return
    j = int(np.flatnonzero(~ok)[0])
    i = int(np.argmax(np.abs(X[:, j])))
    raise DataError(
        f"column {names[j]!r}, row {rows[i]}: {X[i, j]:g} is too large to train on (scaled, "
        f"it overflows {np.dtype(dtype).name})",
        hint=f"rescale the column (change its units), use --dtype float64 or --scale standard, "
        f"or leave it out with --exclude {names[j]}",
    )


def pca_error(X_train: np.ndarray, X_eval: np.ndarray, k: int) -> tuple[float, float]:
    """PCA fitted on ``X_train`` at ``k``: (mean reconstruction MSE on ``X_eval``,
    cumulative explained variance ratio)."""
    pca = PCA(n_components=k).fit(X_train.astype(np.float64))
    err = pca.reconstruction_error(X_eval.astype(np.float64))
    return float(err.mean()), float(pca.explained_variance_ratio_.sum())


def architecture(ae: Autoencoder) -> str:
    """``"64 → 32 → 2 → 32 → 64"`` for a fitted autoencoder."""
    specs = ae.network_.specs
    return " → ".join(str(s) for s in [specs[0].n_in, *(s.n_out for s in specs)])


def train_bundle(
    X: np.ndarray,
    names: list[str],
    params: dict,
    *,
    missing: str = "error",
    scale: str = "standard",
    callback: Callable[[EpochReport], None] | None = None,
    info: dict | None = None,
) -> tuple[ModelBundle, dict]:
    """Fit scaler and autoencoder on raw rows ``X`` (n, d) with columns ``names``.

    Returns the bundle and a summary (see :func:`aecli.report.train_summary`) that also
    carries PCA's error at the same k on the same held-out rows.
    """
    started = time.perf_counter()
    ae = Autoencoder(**params)
    dtype = ae._dtype()
    p = prepare(X, names, missing=missing, scale=scale, validation=ae.validation,
                seed=ae.seed, dtype=dtype)
    ae.fit(p.X_train, callback=callback, validation_data=p.X_val)
    seconds = time.perf_counter() - started
    X_eval = p.X_val if p.X_val is not None else p.X_train
    summary = training_summary(ae, len(p.X_train), 0 if p.X_val is None else len(p.X_val),
                               p.rows_dropped, pca_error(p.X_train, X_eval, ae.latent), seconds)
    return bundle_of(ae, p.scaler, scale, names, missing, p.fill, summary, info), summary


def training_summary(ae: Autoencoder, rows_train: int, rows_validation: int, dropped: int,
                     pca: tuple[float, float], seconds: float) -> dict:
    """The figures of a training run (see :func:`aecli.report.train_summary`), with PCA's
    held-out error and explained variance at the same k as ``pca``."""
    return {
        "rows_train": int(rows_train),
        "rows_validation": int(rows_validation),
        "rows_dropped": int(dropped),
        "features": int(ae.n_features_in_),
        "latent": int(ae.latent),
        "architecture": architecture(ae),
        "train_mse": ae.train_mse_,
        "validation_mse": ae.validation_mse_,
        "pca_mse": pca[0],
        "pca_explained_variance": pca[1],
        "epochs_run": len(ae.loss_history_),
        "best_epoch": ae.best_epoch_,
        "early_stopped": ae.stopped_early_,
        "seconds": seconds,
        "loss_history": ae.loss_history_,
        "val_history": ae.val_loss_history_,
        "threshold": ae.threshold_,
    }


def bundle_of(ae, scaler, scale, names, missing, fill, summary, info) -> ModelBundle:
    """The bundle to save, its info carrying the summary without the per-epoch lists."""
    meta = dict(info or {})
    meta["summary"] = {k: v for k, v in summary.items() if k not in ("loss_history", "val_history")}
    return ModelBundle(ae, scaler, str(scale), list(names), str(missing), fill, meta)


def suggest_k(rows: list[dict], baseline: float, tolerance: float = SUGGEST_TOLERANCE):
    """The smallest k whose autoencoder error is within ``tolerance * baseline`` of the best
    k's, where ``baseline`` is the error of predicting every row by the mean (k = 0)."""
    scored = [r for r in rows if r.get("ae_mse") is not None]
    if not scored:
        return None
    best = min(r["ae_mse"] for r in scored)
    for r in sorted(scored, key=lambda r: r["k"]):
        if r["ae_mse"] - best <= tolerance * baseline:
            return {
                "k": r["k"],
                "rule": f"smallest k whose autoencoder held-out MSE is within {tolerance:.0%} "
                f"of the data's variance ({baseline:.4g}) of the best k's ({best:.4g})",
            }
    return None


def compare_with_pca(
    X: np.ndarray,
    names: list[str],
    ks: list[int],
    params: dict,
    *,
    missing: str = "error",
    scale: str = "standard",
    on_k: Callable[[dict], None] | None = None,
    before_k: Callable[[int], None] | None = None,
    callback: Callable[[EpochReport], None] | None = None,
) -> tuple[list[dict], dict | None]:
    """For each k: PCA explained variance and held-out MSE, the autoencoder's held-out MSE,
    and their ratio, all on the same split. Returns the rows and a suggested k (see
    :func:`suggest_k`)."""
    too_big = [k for k in ks if k > X.shape[1]]
    if too_big:  # before any training, and in the terms of -k rather than of PCA
        raise InvalidParameterError(
            f"latent={too_big[0]} is larger than the number of features (n_features = "
            f"{X.shape[1]}); choose latent <= {X.shape[1]}"
        )
    validation = params.get("validation", 0.2) or 0.2  # a comparison needs held-out rows
    ae0 = Autoencoder(**{**params, "validation": validation})
    p = prepare(X, names, missing=missing, scale=scale, validation=validation,
                seed=ae0.seed, dtype=ae0._dtype())
    if p.X_val is None:
        p.X_val = p.X_train
    baseline = float(np.mean((p.X_val - p.X_train.mean(axis=0)) ** 2))
    rows = []
    for k in ks:
        if before_k is not None:
            before_k(k)
        pca_mse, pca_var = pca_error(p.X_train, p.X_val, k)
        ae = Autoencoder(**{**params, "latent": k, "validation": validation})
        ae.fit(p.X_train, callback=callback, validation_data=p.X_val)
        ae_mse = float(ae.reconstruction_error(p.X_val).mean())
        row = {"k": k, "pca_explained_variance": pca_var, "pca_mse": pca_mse,
               "ae_mse": ae_mse, "ratio": ae_mse / pca_mse if pca_mse > 0 else None,
               "epochs_run": len(ae.loss_history_)}
        rows.append(row)
        if on_k is not None:
            on_k(row)
    return rows, suggest_k(rows, baseline)


def top_contributors(sq_err: np.ndarray, names: list[str], n: int = 3) -> list[list[tuple]]:
    """For each row of per-cell squared errors (m, d): the ``n`` largest (name, share)."""
    total = sq_err.sum(axis=1, keepdims=True)
    share = np.divide(sq_err, total, out=np.zeros_like(sq_err, dtype=np.float64),
                      where=total > 0)
    order = np.argsort(-sq_err, axis=1)[:, :n]
    return [[(names[j], float(share[i, j])) for j in order[i]] for i in range(len(order))]
