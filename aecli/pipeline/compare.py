"""compare-pca: the autoencoder against PCA at each k, fitted and measured on the same rows."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import InvalidParameterError
from ..estimators import Autoencoder, Hyperparameters
from ..estimators.hyperparameters import check_latent_below
from ..io import BadValues
from ..nn.training import EpochReport
from ..nn.trimmed import trimmed_mean
from ..preprocessing import MissingPolicy, RawRows, ScalerKind
from .train import pca_error, prepare_training_rows, preservation

# A k counts as good enough when its error is within this fraction of the data's variance
# (the error of reconstructing every row by the mean) of the best k's error.
SUGGEST_TOLERANCE = 0.01


def suggest_k(rows: list[dict], baseline: float, tolerance: float = SUGGEST_TOLERANCE,
              n_features: int | None = None):
    """The smallest k whose autoencoder error is within ``tolerance * baseline`` of the best
    k's, where ``baseline`` is the error of predicting every row by the mean (k = 0).

    When that k is the largest tried, a larger one may do better still: the suggestion then
    says so (``largest_tried``) and, given ``n_features``, proposes a sweep beyond it that
    stays below the number of features (``larger_sweep``, a ``-k`` value)."""
    scored = [r for r in rows if r.get("ae_mse") is not None]
    if not scored:
        return None
    best = min(r["ae_mse"] for r in scored)
    for r in sorted(scored, key=lambda r: r["k"]):
        if r["ae_mse"] - best <= tolerance * baseline:
            suggestion = {
                "k": r["k"],
                "rule": f"smallest k whose autoencoder held-out MSE is within {tolerance:.0%} "
                f"of the data's variance ({baseline:.4g}) of the best k's ({best:.4g})",
            }
            if r["k"] == max(row["k"] for row in rows):
                suggestion["largest_tried"] = True
                suggestion["larger_sweep"] = larger_sweep(r["k"], n_features)
            return suggestion
    return None


def larger_sweep(k: int, n_features: int | None) -> str | None:
    """A ``-k`` sweep past ``k`` up to twice it, below ``n_features``, in about four steps:
    ``8-16:2``; None when no larger k fits (or the number of features is unknown)."""
    if n_features is None or k + 1 >= n_features:
        return None
    top = min(2 * k, n_features - 1)
    step = max(1, (top - k) // 4)
    return f"{k}-{top}" + (f":{step}" if step > 1 else "")


def comparison_row(k: int, pca_mse: float, pca_var: float, ae_mse: float,
                   epochs_run: int, neighbors: dict | None = None) -> dict:
    """One k of the sweep, under the names ``--json`` and ``--csv`` use; with ``neighbors``
    (see :func:`aecli.pipeline.train.preservation`), how the codes of each keep the held-out
    rows' neighbours."""
    row = {"k": k, "pca_explained_variance": pca_var, "pca_mse": pca_mse, "ae_mse": ae_mse,
           "ratio": ae_mse / pca_mse if pca_mse > 0 else None, "epochs_run": epochs_run}
    if neighbors is not None:
        row.update(ae_trustworthiness=neighbors["trustworthiness"],
                   pca_trustworthiness=neighbors["pca_trustworthiness"],
                   ae_knn_recall=neighbors["knn_recall"],
                   pca_knn_recall=neighbors["pca_knn_recall"])
    return row


DEFAULT_KS = (1, 2, 4, 8)


def default_ks(n_features: int) -> list[int]:
    """The default sweep, clipped to the data: the ks of ``DEFAULT_KS`` below ``n_features``."""
    return [k for k in DEFAULT_KS if k < n_features]


def compare_with_pca(
    X: np.ndarray,
    names: list[str],
    ks: list[int],
    params: dict,
    *,
    missing: MissingPolicy = MissingPolicy.ERROR,
    scale: ScalerKind = ScalerKind.STANDARD,
    bad_values: BadValues = BadValues.ERROR,
    on_k: Callable[[dict], None] | None = None,
    before_k: Callable[[int], None] | None = None,
    callback: Callable[[EpochReport], None] | None = None,
) -> tuple[list[dict], dict | None]:
    """``X``: raw rows of the numeric columns ``names`` (a :class:`RawRows` with the
    categorical columns too). For each k: PCA explained variance and held-out MSE, the
    autoencoder's held-out MSE, and their ratio, all on the same split. Returns the rows and
    a suggested k (see :func:`suggest_k`)."""
    raw = X if isinstance(X, RawRows) else RawRows(np.asarray(X))
    d = raw.numeric.shape[1] + (0 if raw.categorical is None else raw.categorical.num_columns)
    # before any training, and in the terms of -k rather than of PCA
    too_big = [k for k in ks if k >= d]
    if too_big:
        check_latent_below(too_big[0], d, "there is nothing to compare",
                           example=f"1-{d - 1}" if d > 2 else "1")
    validation = params.get("validation", 0.2) or 0.2  # a comparison needs held-out rows
    hp = Hyperparameters(**{**params, "validation": validation}).checked()
    p = prepare_training_rows(raw, names, missing=missing, scale=scale, bad_values=bad_values,
                              validation=validation, seed=hp.seed, dtype=hp.dtype)
    if p.X_val is None:
        p.X_val = p.X_train
    n_train = len(p.X_train)
    if max(ks) > n_train:  # PCA finds at most one direction per training row
        held = len(p.X_val) if p.X_val is not p.X_train else 0
        raise InvalidParameterError(
            f"k={max(ks)} needs at least {max(ks)} training rows, and the input gives "
            f"{n_train} ({held} more held out for validation)",
            hint=f"use -k at most {n_train}, or more rows")
    groups = p.preparation.groups
    mean = np.broadcast_to(p.X_train.mean(axis=0, dtype=np.float64), p.X_val.shape)
    # the error of predicting every row by the mean: a categorical column's level shares
    baseline = float(np.mean((p.X_val - mean) ** 2) if groups is None
                     else groups.row_errors(groups.normalised_(mean.copy()), p.X_val).mean())
    rows = []
    for k in ks:
        if before_k is not None:
            before_k(k)
        pca_mse, pca_var = pca_error(p.X_train, p.X_val, k, groups)
        ae = Autoencoder(**{**params, "latent": k, "validation": validation})
        # no out-of-fold calibration: the sweep compares errors and never uses a threshold
        ae.fit(p.X_train, callback=callback, validation_data=p.X_val, groups=groups,
               out_of_fold=False)
        ae_mse = trimmed_mean(ae.reconstruction_error(p.X_val))  # as PCA's
        row = comparison_row(k, pca_mse, pca_var, ae_mse, len(ae.loss_history_),
                             preservation(ae, p.X_train, p.X_val))
        row["neighbors"] = int(ae.neighbors)
        rows.append(row)
        if on_k is not None:
            on_k(row)
    return rows, suggest_k(rows, baseline, n_features=d)
