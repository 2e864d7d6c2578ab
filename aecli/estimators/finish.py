"""The finish step of every fit: the fitted state set once training has succeeded.

In memory, streamed and on a cluster, a fit ends the same way: the training and held-out
rows' scores give the calibration quantiles and the threshold (:mod:`.calibration`), and the
estimator's fitted attributes are set by :func:`finish`, the one place that assigns them;
:class:`FittedState` names the figures among them that the training summary and a model file
record, and :class:`FittedModel` holds the whole fitted state as one typed object: what a model
file writes, and what comes back from it through :func:`restore`. A table too small to
hold out enough rows is calibrated out of fold by :func:`calibrate_out_of_fold`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace

import numpy as np

from ..errors import InvalidParameterError
from ..nn import Network
from ..nn.training import EpochReport, TrainingResult, reconstruction_mse_rows
from ..nn.trimmed import TrimmedMean, trimmed_mean
from .calibration import calibrate
from .ensemble import FoldScores, Member, calibration_scores, in_sample, mean_scores
from .evidence import Evidence
from .hyperparameters import Hyperparameters
from .rows import take
from .scoring import (
    CodeDistance,
    CodeMoments,
    ScoreBy,
    errors_and_scores,
    observed_errors,
    with_code_term,
)

# Levels at which the calibration scores are kept (``score_quantiles_``), for p-values.
QUANTILE_LEVELS = np.linspace(0.0, 1.0, 101)
# Most rows whose scores a fit keeps to weight the code term and place the threshold and its
# floor, when its rows are read in passes (a stream, a cluster's partitions) rather than held.
KEPT_SCORES = 100_000
FOLDS = 5  # models whose out-of-fold scores calibrate a table too small to hold out enough
DTYPES = {"float32": np.float32, "float64": np.float64}


@dataclass(frozen=True, kw_only=True)
class FittedState:
    """The figures a fit leaves besides its networks and calibration, under the one set of
    names the training summary, ``--json`` and the model file use. Each is the estimator's
    attribute of the same name with a trailing ``_`` (``epochs_budget``: ``epochs_``)."""

    train_mse: float
    validation_mse: float | None
    epochs_budget: int
    best_epoch: int
    stopped_early: bool
    stop_reason: str
    optimizer: str
    loss_history: list[float]
    val_loss_history: list[float] | None
    threshold: float
    calibration_rows: int | None  # None in files of format 1

    @staticmethod
    def attribute(name: str) -> str:
        """The estimator's attribute that holds the field ``name``."""
        return "epochs_" if name == "epochs_budget" else name + "_"

    @classmethod
    def of(cls, ae) -> FittedState:
        """The state of a fitted estimator."""
        return cls(**{f.name: getattr(ae, cls.attribute(f.name)) for f in fields(cls)})

    def summary(self) -> dict:
        """The fields as the training summary holds them (no copies)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_summary(cls, summary: dict) -> FittedState:
        """The state a model file's training summary records (:data:`STATE_KEYS` present;
        an older format's summary brought to this one's terms when read, see
        :mod:`aecli.pipeline.model_archive`)."""
        val, val_mse = summary["val_loss_history"], summary["validation_mse"]
        rows = summary["calibration_rows"]
        return cls(
            train_mse=float(summary["train_mse"]),
            validation_mse=None if val_mse is None else float(val_mse),
            epochs_budget=int(summary["epochs_budget"]), best_epoch=int(summary["best_epoch"]),
            stopped_early=bool(summary["stopped_early"]),
            stop_reason=str(summary["stop_reason"]), optimizer=str(summary["optimizer"]),
            loss_history=[float(x) for x in summary["loss_history"]],
            val_loss_history=None if val is None else [float(x) for x in val],
            threshold=float(summary["threshold"]),
            calibration_rows=None if rows is None else int(rows))

    def set_on(self, ae) -> None:
        """Assign the state to the estimator ``ae``'s attributes."""
        for f in fields(self):
            setattr(ae, self.attribute(f.name), getattr(self, f.name))


# What a model file's training summary must hold to rebuild the fitted state.
STATE_KEYS = tuple(f.name for f in fields(FittedState))


@dataclass(frozen=True)
class FittedModel:
    """Everything a fit leaves on the estimator, as one typed object: the network, the
    figures (:class:`FittedState`), the calibration scores' quantiles, the code term, the
    fold models that score beside the network and the evidence the score is combined with.
    The model file writes it and rebuilds the estimator from it (:func:`restore`)."""

    network: Network
    state: FittedState
    score_quantiles: np.ndarray  # (101,) at QUANTILE_LEVELS
    code_distance: CodeDistance | None = None  # None: the score has no code term
    members: tuple[Member, ...] = ()
    evidence: Evidence | None = None  # None: the autoencoder's score alone

    @classmethod
    def of(cls, ae) -> FittedModel:
        """The fitted state of the fitted estimator ``ae``."""
        return cls(ae.network_, FittedState.of(ae), ae.score_quantiles_, ae.code_distance_,
                   tuple(ae.members_), getattr(ae, "evidence_", None))


@dataclass(frozen=True)
class OutOfFold:
    """An out-of-fold calibration: the calibration scores of every row, the ensemble's
    scores of its own rows (the threshold's floor), and the fold models that score."""

    calibration: np.ndarray  # (n,)
    own: np.ndarray  # (n,)
    members: tuple[Member, ...]


def finish(ae, network: Network, result: TrainingResult, p: Hyperparameters, *,
           train_mse: float, own: np.ndarray, val_errors: np.ndarray | None = None,
           val_scores: np.ndarray | None = None, distance: CodeDistance | None = None,
           names=None, folds: OutOfFold | None = None) -> None:
    """Set ``ae``'s fitted state from a trained ``network``, only once training has
    succeeded.

    Parameters
    ----------
    ae : Autoencoder
    network, result : the trained network and its loop's record.
    p : Hyperparameters
        The settings as resolved for the fit.
    train_mse : float
        The training rows' trimmed mean error.
    own : ndarray of shape (m,)
        The model's scores of (some of) its training rows: their ``1 - contamination``
        quantile is the threshold's floor, and without held-out rows they calibrate it.
    val_errors, val_scores : ndarray, optional
        The held-out rows' errors (for ``validation_mse_``) and scores (which calibrate
        the threshold; at most :data:`KEPT_SCORES` of them where the rows are not held).
    distance : CodeDistance, optional
        The code term of the score; None when scoring by the error alone.
    names : ndarray of str, optional
        The feature names of the rows fitted.
    folds : OutOfFold, optional
        An out-of-fold calibration, which replaces the calibration and floor scores.
    """
    calibration = own if val_scores is None else val_scores
    source = "training rows" if val_scores is None else "validation rows"
    members: tuple[Member, ...] = ()
    if folds is not None:
        calibration, own, members, source = (folds.calibration, folds.own, folds.members,
                                              "out-of-fold")
    ae.network_ = network
    ae.members_ = members
    ae.n_features_in_ = network.specs[0].n_in
    if names is not None:
        ae.feature_names_in_ = names
    elif hasattr(ae, "feature_names_in_"):
        del ae.feature_names_in_
    ae.code_distance_ = distance
    ae.score_quantiles_ = np.quantile(calibration, QUANTILE_LEVELS)
    ae.calibration_ = calibrate(calibration, ae.contamination, source, own)
    FittedState(
        train_mse=float(train_mse),
        validation_mse=None if val_errors is None else trimmed_mean(val_errors),
        epochs_budget=p.epochs, best_epoch=result.best_epoch,
        stopped_early=result.stopped_early, stop_reason=result.stop_reason.value,
        optimizer=p.optimizer.value, loss_history=result.loss_history,
        val_loss_history=result.val_loss_history, threshold=ae.calibration_.threshold,
        calibration_rows=len(calibration)).set_on(ae)


def own_and_held_out(network: Network, distance: CodeDistance | None, errors: np.ndarray,
                     codes: np.ndarray, X_val: np.ndarray | None,
                     val_imputed: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """What :func:`finish` calibrates with: the model's scores of some of its training rows,
    from their ``errors`` (m,; over their observed cells) and ``codes`` (m, k), and its
    errors and scores of the held-out rows ``X_val`` (None, None without them), their
    ``val_imputed`` cells left out of the scores as ``aecli score`` leaves them."""
    own = with_code_term(errors, distance, codes)
    if X_val is None:
        return own, None, None
    return own, *errors_and_scores(network, X_val, distance, val_imputed)


def stream_pass(network: Network, pairs: Callable[[], Iterable[tuple]], p: Hyperparameters,
                rows: int, categorical: bool
                ) -> tuple[float, CodeDistance | None, np.ndarray, np.ndarray]:
    """One more pass over a streamed fit's training rows (``pairs()`` yields each chunk with
    its imputed cells, or None): their trimmed mean error, the code term from every row's
    code (None when the score has none, on a table with ``categorical`` columns or not),
    and the errors over the observed cells and codes of
    a prefix of at most about ``KEPT_SCORES`` rows, which weight the code term and, without
    validation rows, calibrate the threshold."""
    train_mse, kept = TrimmedMean(rows), []
    moments = CodeMoments(p.latent)
    for chunk, imputed in pairs():
        codes = np.empty((len(chunk), p.latent), dtype=network.dtype)
        errors = reconstruction_mse_rows(network, chunk, codes=codes)
        train_mse.add(errors)
        moments.add(codes)
        if sum(len(e) for e, _ in kept) < KEPT_SCORES:
            kept.append((observed_errors(network, chunk, errors, imputed), codes))
    errors = np.concatenate([e for e, _ in kept])
    codes = np.concatenate([z for _, z in kept])
    distance = moments.distance(errors, codes) if p.score_by.with_code(categorical) else None
    return train_mse.value, distance, errors, codes


def restore(ae, fitted: FittedModel, feature_names=None):
    """``ae`` (unfitted, with the model's parameters) fitted from the state ``fitted`` a
    model file stored, after checking that the two agree (the code term with ``score_by``,
    the fold models with the network, the network with the settings); ``feature_names``
    those the estimator was fitted with, if any."""
    network, code_distance = fitted.network, fitted.code_distance
    d = network.specs[0].n_in
    p = ae._checked(d)
    if p.score_by is not ScoreBy.AUTO and (
            p.score_by is ScoreBy.ERROR_CODE) != (code_distance is not None):
        raise InvalidParameterError(
            f"score_by={str(p.score_by)!r} does not match the code statistics given")
    if any(m.network.specs != network.specs or m.network.dtype != network.dtype
           or (m.code_distance is None) != (code_distance is None) for m in fitted.members):
        raise InvalidParameterError("the ensemble's models do not match the network")
    if ae.latent != network.specs[network.code_index].n_out or np.dtype(
            DTYPES[ae.dtype]) != network.dtype:
        raise InvalidParameterError("the training settings do not match the network")
    ae.network_, ae.code_distance_, ae.members_ = network, code_distance, fitted.members
    ae.evidence_ = fitted.evidence
    ae.n_features_in_ = d
    if feature_names is not None:
        ae.feature_names_in_ = np.asarray(feature_names, dtype=object)
    fitted.state.set_on(ae)
    ae.score_quantiles_ = np.array(fitted.score_quantiles, dtype=np.float64)
    return ae


def calibrate_out_of_fold(ae, X: np.ndarray, groups, network: Network,
                          distance: CodeDistance | None, own_median: float,
                          callback: Callable[[EpochReport], None] | None = None,
                          imputed: np.ndarray | None = None) -> OutOfFold:
    """Calibrate a fit of ``ae`` (its ``network`` and code term ``distance``, not yet set)
    out of fold: ``FOLDS`` models trained as it is, each on the rows of the other folds,
    score every row of ``X`` (cross-conformal calibration; see
    :mod:`aecli.estimators.ensemble`). Each fold model's scores are brought to the fit's
    scale: times the ratio of the medians of the two models' scores of their own training
    rows (``own_median``: the fit's). Every score leaves the ``imputed`` cells (n, d) of
    ``X`` out, as ``aecli score`` does."""
    folds = np.array_split(np.random.default_rng(ae.seed).permutation(len(X)), FOLDS)
    members, scored = [], []
    for i, fold in enumerate(folds):
        held_out = np.zeros(len(X), dtype=bool)
        held_out[fold] = True
        member = type(ae)(**ae.get_params())
        phase = f"calibration {i + 1}/{FOLDS}"
        member._fit_rows(X[~held_out], None, None, groups=groups, out_of_fold=False,
                         callback=None if callback is None else
                         lambda r, phase=phase: callback(replace(r, phase=phase)),
                         imputed=take(imputed, ~held_out))
        # one pass: its own rows' and the fold's (its anomaly_score, the imputed cells out)
        every = mean_scores(member.score_models(), X, imputed)
        scale = own_median / max(float(np.median(every[~held_out])), 1e-300)
        members.append(Member(member.network_, member.code_distance_, scale))
        scored.append(FoldScores(every * scale, held_out))
    main = errors_and_scores(network, X, distance, imputed)[1]
    return OutOfFold(calibration_scores(main, scored), in_sample(main, scored), tuple(members))
