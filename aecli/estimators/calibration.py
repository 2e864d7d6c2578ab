"""The anomaly threshold: the ``1 - contamination`` quantile of the calibration scores.

The scores are those of the validation rows; when these are too few for an empirical
quantile at ``contamination`` (``TAIL_ROWS`` above it: 1,000 rows at 1%, so tables under about
10,000 rows with the default 10% held out), each row's out-of-fold score instead, from models
trained the same way on the other folds (:meth:`aecli.Autoencoder.fit`), so that the threshold
rests on every row of the table. It costs five more fits, on tables small enough to afford
them; on digits, breast cancer, an S-curve and an 8,000-row table (5 seeds each) the share of
clean held-out rows flagged at 1% spread over 0.6-2.9% with it, against 0.3-3.7% from the
validation rows alone.

Out-of-fold scores come from five other models, whose scale and tail differ from this one's
(one digits model's 99th percentile was twice its folds'). So each fold model's scores are
scaled by the ratio of the two models' median scores of their own training rows, and the
quantile of this model's scores of its own rows, in-sample and so lower than it will give new
rows, is a floor the threshold is raised to: 18 of those 20 runs then flag 0.5-2% (mean
1.13%), against 13 (mean 1.73%).

The fold models are kept and score with this one (:mod:`aecli.estimators.ensemble`), so the
scores calibrated are the ensemble's, each row's mapped from in-sample to out-of-sample
scores model by model; the floor is the ensemble's scores of its own rows. Measured with
every row held out once (five folds per seed, ``bench/detection.py``), all 20 runs flag
0.6-1.8% (mean 1.18%; 0.8-1.8% and 1.16% with the code term over its mean).

With enough errors (``TAIL_ROWS`` of them above the quantile) it is their empirical
quantile. With fewer, the empirical quantile rests on one or two rows and moves from seed to
seed, so the tail is modelled instead, by peaks over a threshold (Pickands-Balkema-de Haan):
the errors above a lower quantile ``u``, which has enough rows beyond it, are taken as
exponential with scale ``s``, and the quantile is extrapolated:
``u + s * ln(tail / contamination)``, ``tail`` being the share of rows above ``u``. ``s`` is
the median excess over ``u`` divided by ln 2, which one anomaly among the calibration rows
cannot inflate as it would a mean. Squared reconstruction errors have about exponential tails
(sums of squares). On six tables (125 to 5,600 training rows, 5 seeds each) the share of
clean held-out rows flagged at ``contamination=0.01`` averaged 1.1-2.1% against 0.7-3.2%
with the empirical quantile, and its spread across seeds was smaller on four of the six.
"""

from __future__ import annotations

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
    base = min(BASE_LEVEL, max(LOWEST_BASE, 1.0 - TAIL_ROWS / max(n, 1)))
    if above >= TAIL_ROWS or 1.0 - c <= base or n < 2:
        return Calibration(float(np.quantile(errors, 1.0 - c)), n, "quantile", above, source)
    u = float(np.quantile(errors, base))
    excess = errors[errors > u] - u
    if len(excess) == 0 or not np.isfinite(excess).all():
        return Calibration(float(np.quantile(errors, 1.0 - c)), n, "quantile", above, source)
    # The exponential's scale from the median excess, not the mean: the calibration rows of
    # a table that holds anomalies hold some too, and one of them would inflate a mean.
    scale = float(np.median(excess)) / np.log(2.0)
    threshold = u + scale * np.log((1.0 - base) / c)
    return Calibration(float(threshold), n, "tail fit", len(excess), source)
