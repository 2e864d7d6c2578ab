"""The finish step of every fit: the fitted state set once training has succeeded.

In memory, streamed and on a cluster, a fit ends the same way: the training and held-out
rows' scores give the calibration quantiles and the threshold (:mod:`.calibration`), and the
estimator's fitted attributes are set by :func:`finish`, the one place that assigns them. A
model file's copy of that state comes back through :func:`restore`, whose keys
(:data:`STATE_KEYS`) are the training summary's. A table too small to hold out enough rows
is calibrated out of fold by :func:`calibrate_out_of_fold`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from ..errors import InvalidParameterError
from ..nn import Network
from ..nn.training import EpochReport, TrainingResult
from ..nn.trimmed import trimmed_mean
from .calibration import calibrate
from .ensemble import FoldScores, Member, calibration_scores, in_sample
from .hyperparameters import Hyperparameters
from .scoring import CodeDistance, ScoreBy, errors_and_scores

# Levels at which the calibration scores are kept (``score_quantiles_``), for p-values.
QUANTILE_LEVELS = np.linspace(0.0, 1.0, 101)
# Most rows whose scores a fit keeps to weight the code term and place the threshold and its
# floor, when its rows are read in passes (a stream, a cluster's partitions) rather than held.
KEPT_SCORES = 100_000
FOLDS = 5  # models whose out-of-fold scores calibrate a table too small to hold out enough
DTYPES = {"float32": np.float32, "float64": np.float64}
# The fitted state a model file keeps in its training summary, under these names (besides
# the optional "optimizer", "epochs_budget", "stop_reason" and "calibration_rows").
STATE_KEYS = ("loss_history", "val_loss_history", "best_epoch", "stopped_early", "train_mse",
              "validation_mse", "threshold")


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
    ae.optimizer_, ae.epochs_ = p.optimizer.value, p.epochs
    ae.stop_reason_ = result.stop_reason.value
    ae.n_features_in_ = network.specs[0].n_in
    if names is not None:
        ae.feature_names_in_ = names
    elif hasattr(ae, "feature_names_in_"):
        del ae.feature_names_in_
    ae.loss_history_ = result.loss_history
    ae.val_loss_history_ = result.val_loss_history
    ae.best_epoch_ = result.best_epoch
    ae.stopped_early_ = result.stopped_early
    ae.train_mse_ = float(train_mse)
    ae.validation_mse_ = None if val_errors is None else trimmed_mean(val_errors)
    ae.code_distance_ = distance
    ae.score_quantiles_ = np.quantile(calibration, QUANTILE_LEVELS)
    ae.calibration_ = calibrate(calibration, ae.contamination, source, own)
    ae.threshold_ = ae.calibration_.threshold
    ae.calibration_rows_ = len(calibration)


def restore(ae, network: Network, state: dict, score_quantiles: np.ndarray,
            feature_names=None, code_distance: CodeDistance | None = None,
            members: tuple[Member, ...] = ()):
    """``ae`` (unfitted, with the model's parameters) fitted from a trained ``network`` and
    the state :func:`finish` assigned, as a model file stores it: ``state`` holds
    :data:`STATE_KEYS`, ``score_quantiles`` the calibration scores' quantiles, and
    ``code_distance`` and ``members`` the code term (needed with ``score_by="error+code"``)
    and the fold models that score with it (see :mod:`aecli.estimators.ensemble`)."""
    d = network.specs[0].n_in
    p = ae._checked(d)
    if p.score_by is not ScoreBy.AUTO and (
            p.score_by is ScoreBy.ERROR_CODE) != (code_distance is not None):
        raise InvalidParameterError(
            f"score_by={str(p.score_by)!r} does not match the code statistics given")
    ae.code_distance_ = code_distance
    ae.members_ = tuple(members)
    if any(m.network.specs != network.specs or m.network.dtype != network.dtype
           or (m.code_distance is None) != (code_distance is None) for m in members):
        raise InvalidParameterError("the ensemble's models do not match the network")
    if ae.latent != network.specs[network.code_index].n_out or np.dtype(
            DTYPES[ae.dtype]) != network.dtype:
        raise InvalidParameterError("the training settings do not match the network")
    ae.network_ = network
    ae.n_features_in_ = d
    if feature_names is not None:
        ae.feature_names_in_ = np.asarray(feature_names, dtype=object)
    ae.loss_history_ = [float(x) for x in state["loss_history"]]
    val = state["val_loss_history"]
    ae.val_loss_history_ = None if val is None else [float(x) for x in val]
    ae.best_epoch_ = int(state["best_epoch"])
    ae.stopped_early_ = bool(state["stopped_early"])
    # Files before aecli 0.2 recorded neither: Adam ran, for the epochs it says.
    ae.optimizer_ = str(state.get("optimizer", "adam"))
    ae.epochs_ = int(state.get("epochs_budget", len(ae.loss_history_)))
    ae.stop_reason_ = str(state.get("stop_reason",
                                    "plateau" if ae.stopped_early_ else "budget"))
    ae.train_mse_ = float(state["train_mse"])
    val_mse = state["validation_mse"]
    ae.validation_mse_ = None if val_mse is None else float(val_mse)
    ae.score_quantiles_ = np.array(score_quantiles, dtype=np.float64)
    rows = state.get("calibration_rows")  # not recorded before aecli 0.2
    ae.calibration_rows_ = None if rows is None else int(rows)
    ae.threshold_ = float(state["threshold"])
    return ae


def calibrate_out_of_fold(ae, X: np.ndarray, groups, network: Network,
                          distance: CodeDistance | None, own_median: float,
                          callback: Callable[[EpochReport], None] | None = None
                          ) -> OutOfFold:
    """Calibrate a fit of ``ae`` (its ``network`` and code term ``distance``, not yet set)
    out of fold: ``FOLDS`` models trained as it is, each on the rows of the other folds,
    score every row of ``X`` (cross-conformal calibration; see
    :mod:`aecli.estimators.ensemble`). Each fold model's scores are brought to the fit's
    scale: times the ratio of the medians of the two models' scores of their own training
    rows (``own_median``: the fit's)."""
    folds = np.array_split(np.random.default_rng(ae.seed).permutation(len(X)), FOLDS)
    members, scored = [], []
    for i, fold in enumerate(folds):
        held_out = np.zeros(len(X), dtype=bool)
        held_out[fold] = True
        member = type(ae)(**ae.get_params())
        phase = f"calibration {i + 1}/{FOLDS}"
        member._fit_rows(X[~held_out], None, None, groups=groups, out_of_fold=False,
                         callback=None if callback is None else
                         lambda r, phase=phase: callback(replace(r, phase=phase)))
        every = member.anomaly_score(X)  # one pass: its own rows' and the fold's
        scale = own_median / max(float(np.median(every[~held_out])), 1e-300)
        members.append(Member(member.network_, member.code_distance_, scale))
        scored.append(FoldScores(every * scale, held_out))
    main = errors_and_scores(network, X, distance)[1]
    return OutOfFold(calibration_scores(main, scored), in_sample(main, scored), tuple(members))
