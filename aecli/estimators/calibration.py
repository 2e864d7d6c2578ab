"""The anomaly threshold, the ``1 - contamination`` quantile of the calibration scores, and
each score's p-value among them.

The calibration scores are the validation rows'. When these are too few for an empirical
quantile at ``contamination`` (``TAIL_ROWS`` above it: 1,000 rows at 1%), a table small
enough to afford five more fits is calibrated on every row's out-of-fold score instead
(:func:`aecli.estimators.finish.calibrate_out_of_fold`, :mod:`aecli.estimators.ensemble`),
so that the threshold rests on every row of the table. The fold models' scales and tails
differ from the main model's, so their scores are brought to its scale (the ratio of the
models' median scores of their own training rows), and the quantile of the model's scores of
its own training rows, in sample and so lower than new rows will give, is a floor the
threshold is raised to.

With ``TAIL_ROWS`` scores above the quantile it is their empirical quantile. With fewer, the
empirical quantile rests on one or two rows and moves from seed to seed, so the tail is
modelled instead, by peaks over a threshold (Pickands-Balkema-de Haan): the scores above a
lower quantile ``u``, which has enough rows beyond it, are taken as exponential with scale
``s``, and the quantile is extrapolated: ``u + s * ln(tail / contamination)``, ``tail`` being
the share of rows above ``u``. ``s`` is the median excess over ``u`` divided by ln 2, which one
anomaly among the calibration rows cannot inflate as it would a mean. Squared reconstruction
errors have about exponential tails (sums of squares).

The same tail gives each scored row its p-value (:class:`ScoreDistribution`): the share of
calibration scores at least as large, and past the largest, the fitted exponential's, so
that a row three times as far past the threshold reads a smaller p than one just past it.
The measurements behind these choices are in ``bench/README.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

TAIL_ROWS = 10  # errors above a quantile that an estimate of it needs
BASE_LEVEL = 0.9  # the tail fit starts no higher than this quantile...
LOWEST_BASE = 0.5  # ...and no lower than the median


@dataclass(frozen=True)
class Calibration:
    """A threshold and what it rests on."""

    threshold: float
    rows: int  # calibration scores
    # "quantile" (empirical), "tail fit" (exponential tail above `base`), or "own rows" (raised
    # to the quantile of the model's scores of its own training rows)
    method: str
    tail_rows: int  # scores the estimate rests on: above the quantile, or in the fitted tail
    source: str = "validation rows"  # or "training rows", "out-of-fold"

    def warning(self, contamination: float) -> str | None:
        """Why this threshold is unstable, or None when it is not."""
        needed = needed_rows(contamination)
        if self.rows >= needed:
            return None
        more = "" if self.source == "out-of-fold" else ", hold out more with --validation"
        return (f"the anomaly threshold rests on {self.rows:,} rows' scores, fewer than the "
                f"{needed:,} that --contamination {float(contamination):g} needs for a stable "
                f"threshold ({TAIL_ROWS} rows in the tail it is read from); train on more "
                f"rows{more} or raise --contamination")


def quantile_rows(contamination: float) -> int:
    """Calibration scores an empirical quantile needs: ``TAIL_ROWS`` above it."""
    return int(np.ceil(TAIL_ROWS / float(contamination)))


def needed_rows(contamination: float) -> int:
    """Calibration errors a stable threshold needs: ``TAIL_ROWS`` above the quantile itself,
    or above the base of the tail fit, whichever is fewer."""
    return int(min(np.ceil(TAIL_ROWS / float(contamination)),
                   round(TAIL_ROWS / (1.0 - BASE_LEVEL))))


def calibrate(errors: np.ndarray, contamination: float, source: str = "validation rows",
              own: np.ndarray | None = None) -> Calibration:
    """The threshold over which a ``contamination`` share of rows like ``errors`` (the scores
    of the ``source`` rows) lie, and at least the same quantile of ``own``, the model's scores
    of its own training rows."""
    estimate = _calibrate(errors, contamination, source)
    if own is None or not len(own):
        return estimate
    floor = float(np.quantile(np.asarray(own, dtype=np.float64), 1.0 - float(contamination)))
    return replace(estimate, threshold=floor, method="own rows") \
        if floor > estimate.threshold else estimate


def _calibrate(errors: np.ndarray, contamination: float, source: str) -> Calibration:
    errors = np.asarray(errors, dtype=np.float64)
    n, c = len(errors), float(contamination)
    above = int(np.floor(n * c))
    if above >= TAIL_ROWS or 1.0 - c <= tail_base(n) or n < 2:
        return Calibration(float(np.quantile(errors, 1.0 - c)), n, "quantile", above, source)
    tail = ExponentialTail.fit(lambda q: float(np.quantile(errors, q)), n)
    if tail is None:
        return Calibration(float(np.quantile(errors, 1.0 - c)), n, "quantile", above, source)
    return Calibration(tail.quantile(c), n, "tail fit", int(np.sum(errors > tail.start)),
                       source)


def tail_base(rows: int) -> float:
    """The quantile level above which the tail is fitted, for ``rows`` scores: the 90th
    percentile, lower for fewer than 100 rows (``TAIL_ROWS`` above it), never below the
    median."""
    return min(BASE_LEVEL, max(LOWEST_BASE, 1.0 - TAIL_ROWS / max(rows, 1)))


@dataclass(frozen=True)
class ExponentialTail:
    """Scores above ``start`` taken as exponential: ``P(score > s) = share * exp(-(s -
    start) / scale)`` for ``s >= start`` (peaks over a threshold; see the module)."""

    start: float  # u: the scores' quantile at 1 - share
    share: float  # of the scores above start
    scale: float

    @classmethod
    def fit(cls, quantile: Callable[[float], float], rows: int) -> ExponentialTail | None:
        """The tail of ``rows`` scores given by their ``quantile`` function (level -> score,
        interpolated linearly between the sorted scores, as ``np.quantile``: the scores
        themselves, or the quantiles a model file stores): above the :func:`tail_base`
        quantile, with the scale from the median of the scores above it, less the start,
        over ln 2. None when the scores do not spread above it (no tail to fit) or are not
        finite."""
        base = tail_base(rows)
        start = quantile(base)
        # The scale from the median excess, not the mean: the calibration rows of a table
        # that holds anomalies hold some too, and one of them would inflate a mean. The
        # scores above the start are the sorted ones from index k on; their median lies
        # halfway between k and the last.
        k = math.floor(base * (rows - 1)) + 1
        middle = (k + rows - 1) / 2 / (rows - 1) if rows > 1 else (1.0 + base) / 2
        scale = (quantile(middle) - start) / np.log(2.0)
        if not (np.isfinite(start) and np.isfinite(scale) and scale > 0):
            return None
        return cls(float(start), 1.0 - base, float(scale))

    def quantile(self, contamination: float) -> float:
        """The score a ``contamination`` share of rows lies above (below ``share``)."""
        return self.start + self.scale * float(np.log(self.share / float(contamination)))

    def survival(self, scores: np.ndarray, at: float, p_at: float) -> np.ndarray:
        """``P(score > s)`` for scores ``s >= at``, from ``p_at`` there (memoryless: the
        exponential past any point keeps the same scale)."""
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            return p_at * np.exp(-(np.asarray(scores, dtype=np.float64) - at) / self.scale)


@dataclass(frozen=True)
class ScoreDistribution:
    """The calibration scores as a model keeps them (their quantiles at evenly spaced
    levels 0..1, ``score_quantiles_``) and what each new score's p-value is among them.

    A score's p-value is the conformal one: (1 + the number of the ``rows`` calibration
    scores at least as large) / (rows + 1), read from the quantiles (interpolated between
    them), so 1 at or below the smallest and 1 / (rows + 1) at the largest. Past the largest
    it keeps falling along the exponential tail of :meth:`ExponentialTail.fit` (the one
    :func:`calibrate` reads a threshold from), never to 0 for a finite score: at least the
    smallest positive double. Non-increasing in the score; NaN for NaN, 0 for +inf. A row
    over the threshold, the (1 - contamination) quantile, has a p-value of about
    contamination or less (1 / (rows + 1) more, for the row itself).
    """

    quantiles: np.ndarray  # (m,) non-decreasing, at levels linspace(0, 1, m)
    rows: int  # calibration scores they summarise
    tail: ExponentialTail

    @classmethod
    def from_quantiles(cls, quantiles: np.ndarray, rows: int | None = None
                       ) -> ScoreDistribution:
        """From stored ``quantiles`` of ``rows`` calibration scores; model files older than
        aecli 0.2 do not record ``rows``: the quantiles' own count (101) stands in. A tail
        the quantiles cannot give (they do not spread above the base) spans the scores'
        range instead, or, when every score is the same, that score (or 1e-12)."""
        q = np.asarray(quantiles, dtype=np.float64)
        rows = int(rows) if rows else len(q)
        levels = np.linspace(0.0, 1.0, len(q))
        tail = ExponentialTail.fit(lambda level: float(np.interp(level, levels, q)), rows)
        if tail is None:
            spread = float(q[-1] - q[0]) / np.log(rows + 1.0)
            scale = spread if np.isfinite(spread) and spread > 0 else max(abs(float(q[-1])),
                                                                           1e-12)
            tail = ExponentialTail(float(q[-1]), 1.0 / (rows + 1.0), scale)
        return cls(q, rows, tail)

    def below(self, scores: np.ndarray) -> np.ndarray:
        """The share of calibration scores below each score (interpolated between the
        quantiles; 0 at or below the smallest, 1 at or past the largest): the calibration
        scores' distribution function, which the p-values and ``aecli drift``'s test of a
        batch's scores both read."""
        q = self.quantiles
        return np.interp(np.asarray(scores, dtype=np.float64), q, np.linspace(0.0, 1.0, len(q)))

    def p_value(self, scores: np.ndarray) -> np.ndarray:
        """Each score's p-value (float64, the shape of ``scores``; see the class)."""
        s = np.asarray(scores, dtype=np.float64)
        q, n = self.quantiles, self.rows
        share = 1.0 - self.below(s)  # at least as large
        p = (1.0 + n * share) / (n + 1.0)
        past = s > q[-1]
        if past.any():
            p = np.where(past, self.tail.survival(np.where(past, s, q[-1]), float(q[-1]),
                                                  1.0 / (n + 1.0)), p)
        p = np.maximum(p, np.finfo(np.float64).tiny)
        return np.where(np.isnan(s), np.nan, np.where(s == np.inf, 0.0, p))

    def percentile(self, scores: np.ndarray) -> np.ndarray:
        """100 × (1 − p-value): the share of calibration scores below, in percent, which
        keeps rising past the largest one instead of stopping at 100."""
        return 100.0 * (1.0 - self.p_value(scores))
