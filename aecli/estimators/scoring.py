"""A row's anomaly score, and the one place it is computed.

The score is the reconstruction error plus how far the row's code lies from the training
rows' codes. The error (the squared prediction error, SPE or Q) sees a row that leaves the
surface the autoencoder learned; it is blind to a row that lies on that surface where no
training row does, and on a table that holds its anomalies the network learns to reconstruct
them too. Process monitoring pairs Q with Hotelling's T² of the latent scores and sums the
two, each over its control limit (Yue & Qin 2001, "Reconstruction-based fault identification
using a combined index": ``phi = Q / delta² + T² / tau²``). aecli does the same, with both
limits the ``LIMIT`` quantiles of the training rows' own errors and T², and keeps the score
in the error's units:

    score = error + T² * (error limit / T² limit)

so a row at either term's limit scores as much as a training row at the error's limit. Each
term over its limit, rather than over its mean, keeps a light-tailed T² (a small code of a
wide table) from drowning the error.

T² models the codes as one Gaussian cloud. Categorical columns break that: their one-hot
blocks gather the codes in clusters, one per common combination of levels, and a row of a
rare but valid combination lies far from the centre. So ``auto``, the default, adds the code
term only when every column is numeric; a categorical column's error is already a likelihood
(nats), which ranks such tables well on its own. The measurements behind these choices are in
``bench/README.md``.

Two routes compute it, from the same definitions: :func:`errors_and_scores`, one pass
without an (n, d) reconstruction (fitting, calibration, :meth:`aecli.Autoencoder.
anomaly_score`), and :func:`cell_errors` with :func:`row_errors`, which keep each cell's error
and skip imputed cells (``aecli score``'s explanations, through
:func:`aecli.estimators.ensemble.score_parts`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np

from ..nn import Network, Workspace
from ..nn.training import reconstruction_mse_rows

RIDGE = 1e-9  # the narrowest code variance, relative to the widest (see _from_covariance)
LIMIT = 0.99  # the quantile of the training rows' errors and T² that is each term's limit


class ScoreBy(StrEnum):
    """What a row's anomaly score is made of."""

    AUTO = "auto"  # error+code when every column is numeric, error otherwise
    ERROR_CODE = "error+code"  # the reconstruction error plus the code's distance
    ERROR = "error"  # the reconstruction error alone

    def with_code(self, categorical: bool) -> bool:
        """Whether the score has the code term, for a table with (or without) categorical
        columns."""
        return self is ScoreBy.ERROR_CODE or (self is ScoreBy.AUTO and not categorical)

    def with_evidence(self, categorical: bool) -> bool:
        """Whether a fit that holds its rows combines the score with the column tails and
        code neighbours (:mod:`aecli.estimators.evidence`): the default on a numeric
        table."""
        return self is ScoreBy.AUTO and not categorical


def has_categorical(groups) -> bool:
    """Whether a fit's softmax ``groups`` (an :class:`aecli.nn.SoftmaxGroups` or None) hold
    any categorical column."""
    return groups is not None and len(groups.sizes) > 0


@dataclass(frozen=True)
class CodeDistance:
    """The code term of the score: ``weight * T² / latent`` with
    ``T² = |(z - center) @ whitening|²``."""

    center: np.ndarray  # (k,) the training codes' mean
    whitening: np.ndarray  # (k, k) maps a centred code to standard deviations (cov^-1/2)
    # latent * (error limit / T² limit) (see balanced); older model files hold the mean
    # training error, the rule of their time, and score as they did
    weight: float

    def t2(self, codes: np.ndarray) -> np.ndarray:
        """Hotelling's T² (n,) of codes (n, k): squared standard deviations from the training
        codes' mean, float64."""
        centred = np.asarray(codes, dtype=np.float64) - self.center
        white = centred @ self.whitening
        return np.einsum("ij,ij->i", white, white)

    @property
    def per_t2(self) -> float:
        """Error units per unit of T²: ``weight / latent``."""
        return self.weight / len(self.center)

    def of(self, codes: np.ndarray) -> np.ndarray:
        """The code term (n,) of codes (n, k), float64."""
        return self.t2(codes) * self.per_t2

    def balanced(self, errors: np.ndarray, codes: np.ndarray) -> CodeDistance:
        """This distance weighted from training rows' errors (n,) and codes (n, k): each term
        over its limit, the ``LIMIT`` quantile of its training values (see the module's
        docstring)."""
        k = len(self.center)
        t2_limit = float(np.quantile(self.t2(codes), LIMIT))
        # codes that do not vary at all have no T² limit: T²'s mean, k, stands in for it
        t2_limit = t2_limit if t2_limit > 0 else float(k)
        return replace(self, weight=k * float(np.quantile(errors, LIMIT)) / t2_limit)

    @classmethod
    def from_moments(cls, n: int, total: np.ndarray, outer: np.ndarray) -> CodeDistance:
        """From ``n`` codes' sum (k,) and sum of outer products (k, k); not yet weighted
        (see :meth:`balanced`)."""
        center = np.asarray(total, dtype=np.float64) / max(n, 1)
        cov = np.asarray(outer, dtype=np.float64) / max(n, 1) - np.outer(center, center)
        return cls._from_covariance(center, cov)

    @classmethod
    def from_codes(cls, codes: np.ndarray, errors: np.ndarray) -> CodeDistance:
        """From the training rows' codes (n, k), centred before their products are summed,
        and their reconstruction errors (n,)."""
        z = np.asarray(codes, dtype=np.float64)
        center = z.mean(axis=0)
        centred = z - center
        return cls._from_covariance(center, centred.T @ centred / max(len(z), 1)).balanced(
            errors, codes)

    @classmethod
    def _from_covariance(cls, center: np.ndarray, cov: np.ndarray) -> CodeDistance:
        values, vectors = np.linalg.eigh((cov + cov.T) / 2)
        # a direction the codes do not vary in (or barely) keeps a finite width: RIDGE of the
        # codes' largest variance, or of their size when they do not vary at all
        scale = max(float(values.max()), float(center @ center) / len(center), 1e-300)
        values = np.maximum(values, RIDGE * scale)
        return cls(center, vectors / np.sqrt(values), 1.0)


class CodeMoments:
    """Running sums of codes, for :meth:`CodeDistance.from_moments` over a stream."""

    def __init__(self, k: int):
        self.n, self.total, self.outer = 0, np.zeros(k), np.zeros((k, k))

    def add(self, codes: np.ndarray) -> None:
        """Count a chunk of codes (m, k)."""
        z = np.asarray(codes, dtype=np.float64)
        self.n += len(z)
        self.total += z.sum(axis=0)
        self.outer += z.T @ z

    def merge(self, other: CodeMoments) -> None:
        """Count another stream's codes (a partition's, on a cluster)."""
        self.n += other.n
        self.total += other.total
        self.outer += other.outer

    def distance(self, errors: np.ndarray, codes: np.ndarray) -> CodeDistance:
        """The code term from the codes counted, weighted from some training rows' errors
        (n,) and codes (n, k) (see :meth:`CodeDistance.balanced`)."""
        return CodeDistance.from_moments(self.n, self.total, self.outer).balanced(errors,
                                                                                  codes)


def with_code_term(errors: np.ndarray, distance: CodeDistance | None,
                   codes: np.ndarray | None) -> np.ndarray:
    """The anomaly scores (n,): the rows' errors (n,) plus the code term of their codes
    (n, k); the errors themselves when the score has no code term (``distance`` None)."""
    return errors if distance is None else errors + distance.of(codes)


def errors_and_scores(network: Network, X: np.ndarray, distance: CodeDistance | None,
                      imputed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rows' reconstruction errors and anomaly scores (n,) by one model, in one pass that
    allocates no (n, d) reconstruction; the scores leave the ``imputed`` cells (n, d) out, as
    ``aecli score`` does (see :func:`observed_errors`), the errors count every cell."""
    codes = None if distance is None else np.empty((len(X), len(distance.center)),
                                                   dtype=network.dtype)
    errors = reconstruction_mse_rows(network, X, codes=codes)
    return errors, with_code_term(observed_errors(network, X, errors, imputed), distance,
                                  codes)


def observed_errors(network: Network, X: np.ndarray, errors: np.ndarray,
                    imputed: np.ndarray | None) -> np.ndarray:
    """The errors (n,) of rows ``X`` over their observed cells: ``errors`` themselves for the
    rows without an ``imputed`` cell (n, d), and for the others their cells' errors without
    the filled-in ones (:func:`cell_errors`, :func:`row_errors`), as ``aecli score`` computes
    them. A fit calibrates with these: counted, a filled-in mean, which the network
    reconstructs well, lowers a row's error, and the threshold with it. A row with no
    observed cell, which ``score`` gives no score, keeps its error: a NaN would spoil the
    calibration's quantiles."""
    if imputed is None or not imputed.any():
        return errors
    rows = np.flatnonzero(imputed.any(axis=1))
    with np.errstate(over="ignore", invalid="ignore"):  # found from the results
        codes = network.encode(X[rows])
    _, sq = cell_errors(network, X[rows], codes, None, imputed[rows])
    out = np.array(errors, dtype=np.float64)
    observed = row_errors(sq, imputed[rows])
    out[rows] = np.where(np.isnan(observed), out[rows], observed)
    return out


def cell_errors(network: Network, xs: np.ndarray, codes: np.ndarray,
                workspace: Workspace | None = None, imputed: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Scaled rows ``xs`` (n, width), whose ``codes`` (n, k) ``network`` gave, decoded: the
    reconstruction (n, width; each categorical column's block as probabilities) and each table
    cell's error (n, d): squared error in the scaled space, and for a categorical column the
    error of its one-hot vector (see :class:`aecli.nn.SoftmaxGroups`). Imputed cells get
    none: a filled-in mean is no evidence about the row."""
    # An overflow (a value far beyond the training data, for float32) is found by the
    # callers from the non-finite results, row by row: numpy's warnings would only reach
    # stderr without saying which row or column.
    with np.errstate(over="ignore", invalid="ignore"):
        xs_hat = network.decode(codes, workspace)  # (n, width)
        if network.groups is not None:
            sq = network.groups.cell_errors(xs_hat, xs)  # (n, d)
        else:
            diff = xs_hat - xs
            sq = np.multiply(diff, diff, out=diff)
    if imputed is not None:
        sq[imputed] = 0
    return xs_hat, sq


def row_errors(sq: np.ndarray, imputed: np.ndarray | None) -> np.ndarray:
    """Each row's mean squared error (n,) over its observed cells: ``sq`` (n, d) holds 0 for
    the ``imputed`` cells. NaN for a row with no observed cell at all.

    Rows without imputed cells get exactly the plain mean, whatever rows they come with.
    """
    errors = sq.mean(axis=1, dtype=np.float64)  # (n,)
    if imputed is not None:
        partial = np.flatnonzero(imputed.any(axis=1))
        observed = sq.shape[1] - imputed[partial].sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            errors[partial] *= np.where(observed > 0, sq.shape[1] / observed, np.nan)
    return errors
