"""Training in memory: screen and split the rows, fit the preparation and the autoencoder,
and summarise the run, PCA's error at the same k included.

Raw matrices (original units, NaN for missing) and column names in; a model bundle with its
summary out. No paths, no printing: the CLI reads, renders and writes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from ..estimators import PCA, Autoencoder, Hyperparameters
from ..estimators.finish import FittedState
from ..estimators.neighbor_metrics import SAMPLE_ROWS, neighbor_preservation
from ..estimators.rows import held_out, split_indices, split_seed, take
from ..estimators.rows import sample as _sample
from ..formatting import format_architecture
from ..io import BadValues
from ..nn import SoftmaxGroups
from ..nn.training import EpochReport
from ..nn.trimmed import trimmed_mean
from ..preprocessing import MissingPolicy, Preparation, RawRows, ScalerKind, screen
from .bundle import ModelBundle
from .reference import Reference

PCA_ROWS = 20_000  # rows the PCA of the neighbour figures is fitted on, at most


@dataclass
class TrainingRows:
    """Training rows prepared for the network: the fitted preparation and the scaled splits."""

    preparation: Preparation
    X_train: np.ndarray  # (n_train, d) scaled
    X_val: np.ndarray | None  # (n_val, d) scaled
    rows_dropped: int
    cells_imputed: int = 0
    # (n_train, columns), (n_val, columns) bool: the cells filled in (None: none), which the
    # scores that calibrate the threshold leave out as `score` does
    imputed_train: np.ndarray | None = None
    imputed_val: np.ndarray | None = None


def split_rows(n: int, validation: float, seed) -> tuple[np.ndarray, np.ndarray | None]:
    """Indices of the training and validation rows of ``n`` rows numbered from 0, held out
    by the one rule of every training path (:func:`aecli.estimators.rows.held_out`); no
    validation rows when they would leave fewer than 2 to train on."""
    return split_indices(held_out(split_seed(seed), validation, 0, n))


def prepare_training_rows(X: np.ndarray | RawRows, names, *, missing: MissingPolicy,
                          scale: ScalerKind, validation: float, seed, dtype,
                          bad_values: BadValues = BadValues.ERROR) -> TrainingRows:
    """Screen raw rows ``X`` (n, d) of the numeric columns ``names`` (with the categorical
    columns, a :class:`RawRows`), split off validation rows, fit the preparation (scaler,
    imputation values, levels) on the training rows only (so validation error is honest),
    and transform every row.

    Every check sees the rows with their input row numbers (1-based data rows).
    """
    raw = X if isinstance(X, RawRows) else RawRows(X)
    keep = screen(raw.numeric, names, missing)
    dropped = 0 if keep is None else int((~keep).sum())
    kept = raw if keep is None else raw.take(keep)
    if len(kept) < 2:
        after = f" after dropping {dropped} with missing values" if dropped else ""
        raise DataError(f"{len(kept)} row(s) to train on{after}; training needs at least 2",
                        hint="give more rows" + (", or use --missing impute" if dropped else ""))
    rows = np.arange(1, len(raw) + 1) if keep is None else np.flatnonzero(keep) + 1
    # held out by input row number, before rows are dropped: as streamed and cluster runs do
    val = held_out(split_seed(seed), validation, 0, len(raw))
    train_rows, val_rows = split_indices(val if keep is None else val[keep])
    prep = Preparation.fit(kept.take(train_rows), names, missing=missing, scale=scale,
                           dtype=dtype, rows=rows[train_rows], bad_values=bad_values)
    prepared = prep.transform(raw)
    Xs, gaps = prepared.X, prepared.imputed  # (n_kept, width), (n_kept, columns) or None
    imputed = int(np.isnan(kept.numeric).sum()) if prep.missing is MissingPolicy.IMPUTE else 0
    return TrainingRows(prep, Xs[train_rows], None if val_rows is None else Xs[val_rows],
                        dropped, imputed, take(gaps, train_rows),
                        None if val_rows is None else take(gaps, val_rows))


def pca_error(X_train: np.ndarray, X_eval: np.ndarray, k: int,
              groups: SoftmaxGroups | None = None) -> tuple[float, float]:
    """PCA fitted on ``X_train`` at ``k``: (mean reconstruction error on ``X_eval``, trimmed
    as the autoencoder's is (:mod:`aecli.nn.trimmed`), cumulative explained variance ratio).
    With categorical columns (``groups``), PCA sees the same one-hot matrix; each block of
    its reconstruction, clipped to [0, 1] and normalised, is read as probabilities and
    measured as the autoencoder's is."""
    pca = PCA(n_components=k).fit(X_train.astype(np.float64))
    X_eval = X_eval.astype(np.float64)
    if groups is None:
        err = pca.reconstruction_error(X_eval)
    else:
        # its one-hot blocks read as probabilities, to be measured as the autoencoder's are
        rebuilt = groups.normalised_(pca.inverse_transform(pca.transform(X_eval)))
        err = groups.row_errors(rebuilt, X_eval)
    return trimmed_mean(err), float(pca.explained_variance_ratio_.sum())


@dataclass(frozen=True)
class Fitting:
    """How a training run treats its rows, beside the rows and the hyperparameters: the data
    options that shape the preparation (``--missing``, ``--scale``, and ``--bad-values``, how
    the rows were read, kept for later runs), the epoch callback, and what the model file
    records about the input (``info``). Every training path takes these as keywords."""

    missing: MissingPolicy = MissingPolicy.ERROR
    scale: ScalerKind = ScalerKind.STANDARD
    bad_values: BadValues = BadValues.ERROR
    callback: Callable[[EpochReport], None] | None = None
    info: dict | None = None

    def __post_init__(self):
        object.__setattr__(self, "missing", MissingPolicy(self.missing))
        object.__setattr__(self, "scale", ScalerKind(self.scale))
        object.__setattr__(self, "bad_values", BadValues(self.bad_values))


def train_bundle(X: np.ndarray | RawRows, names: list[str], params: dict, **fitting
                 ) -> ModelBundle:
    """Fit the preparation and the autoencoder on raw rows ``X`` (n, d) with numeric columns
    ``names`` (a :class:`RawRows` with the categorical columns too); ``fitting`` holds the
    keywords of :class:`Fitting`.

    Returns the bundle; its ``summary`` (see :func:`training_summary`) also carries PCA's
    error at the same k on the same held-out rows.
    """
    f = Fitting(**fitting)
    started = time.perf_counter()
    hp = Hyperparameters(**params).resolved(len(X))
    p = prepare_training_rows(X, names, missing=f.missing, scale=f.scale,
                              validation=hp.validation, seed=hp.seed, dtype=hp.dtype,
                              bad_values=f.bad_values)
    groups = p.preparation.groups
    ae = Autoencoder(**params)
    ae.fit(p.X_train, callback=f.callback, validation_data=p.X_val, groups=groups,
           imputed=p.imputed_train, validation_imputed=p.imputed_val)
    seconds = time.perf_counter() - started
    X_eval = p.X_val if p.X_val is not None else p.X_train
    summary = training_summary(ae, len(p.X_train), 0 if p.X_val is None else len(p.X_val),
                               p.rows_dropped, pca_error(p.X_train, X_eval, ae.latent, groups),
                               seconds, cells_imputed=p.cells_imputed,
                               neighbors=preservation(ae, p.X_train, X_eval))
    return ModelBundle(ae, p.preparation, dict(f.info or {}), summary,
                       reference_of(X, names))


def reference_of(X: np.ndarray | RawRows, names: list[str]) -> Reference:
    """The drift reference of every input row (before any is dropped or held out)."""
    raw = X if isinstance(X, RawRows) else RawRows(np.asarray(X, dtype=np.float64))
    categorical = () if raw.categorical is None else raw.categorical.schema.names
    return Reference.of(raw, names, categorical)



def preservation(ae: Autoencoder, X_fit: np.ndarray | None, X_eval: np.ndarray,
                 pca_codes: Callable[[np.ndarray], np.ndarray] | None = None) -> dict:
    """How well the codes of ``ae`` and of PCA at the same k (fitted on ``X_fit``, a sample
    of its rows on a large table, or given as the projection ``pca_codes``) keep the
    neighbours of rows ``X_eval`` (see
    :func:`aecli.estimators.neighbor_metrics.neighbor_preservation`, on the same sample of
    rows for both): ``trustworthiness``, ``knn_recall``, ``pca_trustworthiness``,
    ``pca_knn_recall``, ``neighbors_k``, ``neighbors_rows``."""
    rng = np.random.default_rng(0)  # the same rows on every run
    rows = X_eval if len(X_eval) <= SAMPLE_ROWS else X_eval[
        np.sort(rng.choice(len(X_eval), size=SAMPLE_ROWS, replace=False))]
    if len(rows) == 0:  # no figures on no rows
        return {**neighbor_preservation(rows, rows), "pca_trustworthiness": None,
                "pca_knn_recall": None}
    ours = neighbor_preservation(rows, ae.transform(rows))
    if pca_codes is None:
        pca = PCA(n_components=ae.latent).fit(_sample(X_fit, PCA_ROWS, rng).astype(np.float64))
        pca_codes = pca.transform
    theirs = neighbor_preservation(rows, pca_codes(rows.astype(np.float64)))
    return {**ours, "pca_trustworthiness": theirs["trustworthiness"],
            "pca_knn_recall": theirs["knn_recall"]}


def training_summary(ae: Autoencoder, rows_train: int, rows_validation: int, dropped: int,
                     pca: tuple[float, float], seconds: float, streamed: bool = False,
                     cells_imputed: int = 0, neighbors: dict | None = None) -> dict:
    """The figures of a training run, under the names the model file, ``--json`` and the
    report all use; PCA's held-out error and explained variance at the same k as ``pca``;
    how the codes keep neighbours, ``neighbors`` (see :func:`preservation`), when
    measured."""
    return {
        **(neighbors or {}),
        "rows_train": int(rows_train),
        "rows_validation": int(rows_validation),
        "rows_dropped": int(dropped),
        "cells_imputed": int(cells_imputed),
        "features": int(ae.network_.groups.columns if ae.network_.groups is not None
                        else ae.n_features_in_),
        "latent": int(ae.latent),
        "architecture": format_architecture([{"in": s.n_in, "out": s.n_out}
                                             for s in ae.network_.specs]),
        **FittedState.of(ae).summary(),  # the figures a model file rebuilds the estimator from
        "pca_mse": pca[0],
        "pca_explained_variance": pca[1],
        "epochs_run": len(ae.loss_history_),
        "schedule": "none" if ae.optimizer_ == "lbfgs" else str(ae.schedule),
        "seconds": seconds,
        "calibration_method": ae.calibration_.method,
        "calibration_source": ae.calibration_.source,
        # the calibration scores leave the imputed cells out, as score does (drift reads it:
        # models written before counted them)
        "calibration_imputed": "left out",
        "calibration_warning": ae.calibration_.warning(ae.contamination),
        # "combined": with the column tails and neighbours (aecli.estimators.evidence)
        "score": "combined" if getattr(ae, "evidence_", None) is not None
        else "error" if ae.code_distance_ is None else "error+code",
        "score_models": 1 + len(ae.members_),
        "streamed": streamed,
    }
