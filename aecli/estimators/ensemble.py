"""On small tables the score is an ensemble's: the model and the fold models that calibrate it.

A table too small to hold out enough rows for the threshold is calibrated out of fold
(:mod:`aecli.estimators.finish`): five more models are trained, each on four fifths of the
rows. They are kept, and a row's score is the mean of the six models' scores, each brought to
the main model's scale. One small model's scores carry the luck of its initialisation and of
the rows it fitted; averaging reduces a bagged detector's variance (Aggarwal & Sathe 2015,
"Theoretical foundations and algorithms for outlier ensembles"). Larger tables, calibrated on
their validation rows, keep one model: there one model's variance is small.

The threshold then needs the ensemble's scores of rows none of its models has seen, and every
training row has been seen by five of the six. Each model's scores of the rows it trained on
are mapped, by their rank among them, onto that model's scores of the rows it did not see
(its fold; the main model's: all fold models' out-of-fold scores), which restores the tail an
in-sample score lacks; a row's calibration score is the mean of its six mapped scores.

:func:`mean_scores` and :func:`score_parts` are the ensemble's scores, which
:class:`aecli.Autoencoder` and every command call. The measurements behind these choices are
in ``bench/README.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..nn import Network, Workspace
from .scoring import CodeDistance, cell_errors, errors_and_scores, row_errors


@dataclass(frozen=True)
class Member:
    """A fold model of the score's ensemble."""

    network: Network
    code_distance: CodeDistance | None  # its code term; None when scoring by the error
    scale: float  # brings its scores to the main model's scale (the ratio of median scores)


@dataclass(frozen=True)
class ScoreParts:
    """Rows through the models that score: what ``score`` reports of them. With an ensemble
    every part is the mean of its models' parts, each at the main model's scale."""

    xs_hat: np.ndarray  # (n, width) the reconstruction, scaled (probabilities per category)
    sq: np.ndarray  # (n, d) each cell's error, 0 where imputed
    errors: np.ndarray  # (n,) the mean error over the observed cells
    code_term: np.ndarray  # (n,) the code's distance in error units (zeros: score by error)
    scores: np.ndarray  # (n,) errors + code_term: what the threshold is compared with
    sigmas: np.ndarray | None  # (n,) the code's Mahalanobis distance; None: score by error


def mean_scores(models: tuple[Member, ...], X: np.ndarray,
                imputed: np.ndarray | None = None) -> np.ndarray:
    """The anomaly scores (n,) of rows ``X`` (n, width), the ``imputed`` cells (n, d) left
    out: the mean of the ``models``' scores, each at its scale, in one pass per model (see
    :func:`aecli.estimators.scoring.errors_and_scores`)."""
    return sum(m.scale * errors_and_scores(m.network, X, m.code_distance, imputed)[1]
               for m in models) / len(models)


def score_parts(models: tuple[Member, ...], xs: np.ndarray,
                workspace: Workspace | None = None, imputed: np.ndarray | None = None
                ) -> ScoreParts:
    """Scaled rows ``xs`` (n, width) through the ``models`` and scored, each cell's error
    kept and the ``imputed`` cells (n, d) left out (see :class:`ScoreParts`); ``workspace``
    reused from call to call saves allocating intermediates."""
    xs_hat = sq = None
    code_term, t2 = np.zeros(len(xs)), np.zeros(len(xs))
    # as in cell_errors: an overflow is found from the scores, row by row
    with np.errstate(over="ignore", invalid="ignore"):
        for m in models:
            codes = m.network.encode(xs, workspace)
            part_hat, part_sq = cell_errors(m.network, xs, codes, workspace, imputed)
            if m.scale != 1.0:  # the main model's: spare a pass over every cell
                part_sq *= m.scale
            xs_hat = part_hat if xs_hat is None else xs_hat + part_hat
            sq = part_sq if sq is None else sq + part_sq
            if m.code_distance is not None:
                part_t2 = m.code_distance.t2(codes)
                t2 += part_t2
                code_term += part_t2 * (m.code_distance.per_t2 * m.scale)
        if len(models) > 1:
            xs_hat /= len(models)
            sq /= len(models)
            code_term /= len(models)
            t2 /= len(models)
        errors = row_errors(sq, imputed)
        sigmas = None if models[0].code_distance is None else np.sqrt(t2)
        return ScoreParts(xs_hat, sq, errors, code_term, errors + code_term, sigmas)


@dataclass(frozen=True)
class FoldScores:
    """A fold model's scores (scaled) of every row of the table, and which rows it did not
    train on."""

    scores: np.ndarray  # (n,)
    fold: np.ndarray  # (n,) bool: the rows held out of its training


def out_of_fold(folds: list[FoldScores]) -> np.ndarray:
    """Each row's score by the model that did not train on it (n,)."""
    scores = np.empty(len(folds[0].scores), dtype=np.float64)
    for f in folds:
        scores[f.fold] = f.scores[f.fold]
    return scores


def calibration_scores(main: np.ndarray, folds: list[FoldScores]) -> np.ndarray:
    """Scores (n,) like the ensemble's of rows it has not seen, from the main model's scores
    of every row (``main``, mostly in sample) and the fold models' (see the module
    docstring)."""
    unseen = out_of_fold(folds)
    total = _mapped(main, main, unseen)
    for f in folds:
        seen = ~f.fold
        mapped = f.scores.copy()
        mapped[seen] = _mapped(f.scores[seen], f.scores[seen], f.scores[f.fold])
        total += mapped
    return total / (len(folds) + 1)


def in_sample(main: np.ndarray, folds: list[FoldScores]) -> np.ndarray:
    """The ensemble's scores of the table's own rows (n,), as it scores any row."""
    return (main + sum(f.scores for f in folds)) / (len(folds) + 1)


def _mapped(values: np.ndarray, among: np.ndarray, onto: np.ndarray) -> np.ndarray:
    """``values`` moved from the distribution of ``among`` to that of ``onto``: each to the
    quantile of ``onto`` at its rank among ``among``."""
    rank = np.searchsorted(np.sort(among), values, side="right") / len(among)
    return np.quantile(np.asarray(onto, dtype=np.float64), np.clip(rank, 0.0, 1.0))
