"""The trimmed mean of per-row errors: what early stopping monitors and what the training
summary reports as the train, validation and PCA errors.

A plain mean of the validation rows' errors belongs to the worst of them: one mistyped
reading 200 standard deviations out (a 1,048 mph wind among ordinary ones) weighs 40,000
times a typical row's error, so the epoch whose network happens to extrapolate furthest
toward that one cell wins the best weights. On ``sample_data/curve.csv`` with such a row among
the 161 validation rows (``bench/extreme_row.py``, 30 epochs), the best epochs of five seeds
were 4 to 30 and their errors on clean test rows spread 0.0050-0.0395, against 0.0036-0.0055
with the row left out. The largest errors are therefore left out of the mean: the top 1% of
the rows, at least ``FEW`` of them but no more than a tenth (none below ten rows). On clean
rows that moves the mean a few percent, the same for every epoch, so it changes which epoch
is best little; the PCA comparison takes the same statistic of PCA's errors (each model
trims its own worst rows), so ``vs PCA`` stays a like-for-like ratio.
"""

from __future__ import annotations

import math

import numpy as np

SHARE = 0.01  # of the rows, the largest errors left out...
FEW = 3  # ...and at least this many of them...
MOST = 0.1  # ...but never more than this share of the rows


def trimmed_rows(n: int) -> int:
    """How many of ``n`` errors :func:`trimmed_mean` leaves out (the largest ones)."""
    return min(max(math.ceil(SHARE * n), FEW), int(MOST * n))


def trimmed_mean(errors: np.ndarray) -> float:
    """The mean of per-row ``errors`` (n,) without their :func:`trimmed_rows` largest, in
    float64; NaN and infinite errors count as the largest (a network that diverged has more
    of them than are left out, and its mean stays non-finite). NaN for no rows."""
    e = np.asarray(errors, dtype=np.float64).ravel()
    n = len(e)
    if n == 0:
        return math.nan
    drop = trimmed_rows(n)
    if drop:
        # NaN and inf would not sort among the largest in a partition: make them +inf first
        e = np.where(np.isfinite(e), e, np.inf)
        e = np.partition(e, n - drop - 1)[: n - drop]
    with np.errstate(invalid="ignore", over="ignore"):
        return float(e.mean())


class TrimmedMean:
    """:func:`trimmed_mean` over errors that arrive in chunks (a streamed pass over the
    training rows): the largest errors seen, enough to leave out the largest
    :func:`trimmed_rows` of the final count, and the sum of the others.

    Memory holds the largest 1% of ``rows`` errors (the count expected, when known), or of
    the count so far, at most ``limit``. Exact when ``rows`` is right; otherwise an error
    passed over while the count was smaller may be missing from those left out at the end,
    which moves the mean by a fraction of a percent.
    """

    def __init__(self, rows: int | None = None, limit: int = 1 << 20):
        self.n, self.rest = 0, 0.0  # the count, and the sum of the errors not in `largest`
        self.rows, self.limit = rows or 0, limit
        self.largest = np.zeros(0)

    def add(self, errors: np.ndarray) -> None:
        """Count a chunk of errors (m,)."""
        e = np.asarray(errors, dtype=np.float64).ravel()
        self.n += len(e)
        keep = min(trimmed_rows(max(self.n, self.rows)), self.limit)
        both = np.concatenate([self.largest, np.where(np.isfinite(e), e, np.inf)])
        if len(both) > keep:
            if keep:  # none to keep (fewer than 10 rows): every error counts in `rest`
                both = np.partition(both, len(both) - keep)
            with np.errstate(invalid="ignore", over="ignore"):
                self.rest += float(both[: len(both) - keep].sum())
            both = both[len(both) - keep :]
        self.largest = both

    @property
    def value(self) -> float:
        """The trimmed mean of every error added (inf when more errors are infinite or NaN
        than are left out); NaN before any."""
        if self.n == 0:
            return math.nan
        drop = min(trimmed_rows(self.n), len(self.largest))
        kept = np.sort(self.largest)[: len(self.largest) - drop]
        with np.errstate(invalid="ignore", over="ignore"):
            return (self.rest + float(kept.sum())) / (self.n - drop)
