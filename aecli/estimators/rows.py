"""Row helpers of the estimator: the validation split by row number, a bounded random
sample, and row-wise functions applied in chunks so that memory does not grow with the rows.

The split is the one rule every way of training uses (in memory, streamed, on a cluster):
whether a row is held out depends on the seed and its row number alone, so any reading
order, any cut into chunks or partitions, holds out the same rows.
"""

from __future__ import annotations

import numpy as np

CHUNK_ROWS = 16384  # rows per call of a chunked row-wise function


def held_out(seed: int, fraction: float, first: int, count: int) -> np.ndarray:
    """Which of the ``count`` rows from row number ``first`` (0-based, in the whole table)
    are validation rows: a boolean mask (count,). Each row draws a uniform number from the
    seed and its row number alone (a SplitMix64 hash), and is held out when it falls below
    ``fraction``."""
    z = np.arange(first, first + count, dtype=np.uint64) + np.uint64(
        (seed * 0x2545F491 % (1 << 32)) << 32)
    z = z * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53 < fraction


def split_seed(seed: int | None) -> int:
    """The seed :func:`held_out` draws with: ``seed``, or, unseeded (None), a fresh one,
    to be drawn once per fit and used for every pass."""
    return int(np.random.SeedSequence().entropy % (1 << 32)) if seed is None else int(seed)


def split_indices(val: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Indices of the training and validation rows from a :func:`held_out` mask ``val``;
    no validation rows when there are none, or when they would leave fewer than 2 rows to
    train on."""
    if not val.any() or (~val).sum() < 2:
        return np.arange(len(val)), None
    return np.flatnonzero(~val), np.flatnonzero(val)


def split(X: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """``X``'s training rows and validation rows (None when there are none), its rows
    numbered from 0 (see :func:`held_out`); ``X`` None (no mask): None, None."""
    if X is None:
        return None, None
    train, val = split_indices(held_out(seed, fraction, 0, len(X)))
    return (X, None) if val is None else (X[train], X[val])


def sample_index(n: int, most: int, rng) -> np.ndarray | None:
    """Which of ``n`` rows :func:`sample` keeps: None (all of them) or ``most`` drawn at
    random, in their order."""
    return None if n <= most else np.sort(rng.choice(n, size=most, replace=False))


def take(X: np.ndarray | None, index: np.ndarray | None) -> np.ndarray | None:
    """The rows ``index`` of ``X`` (all for None; None stays None: no mask)."""
    return X if X is None or index is None else X[index]


def stacked(a: np.ndarray | None, rows_a: int, b: np.ndarray | None, rows_b: int
            ) -> np.ndarray | None:
    """Masks of cells ``a`` (rows_a, d) and ``b`` (rows_b, d) one above the other, a None
    one (no cell) as False; None when both are."""
    if a is None and b is None:
        return None
    d = (a if a is not None else b).shape[1]
    return np.concatenate([np.zeros((rows_a, d), bool) if a is None else a,
                           np.zeros((rows_b, d), bool) if b is None else b])


def sample(X: np.ndarray, most: int, rng) -> np.ndarray:
    """``X``, or ``most`` of its rows drawn at random (in their order) when it has more."""
    return take(X, sample_index(len(X), most, rng))


def chunked(fn, X: np.ndarray, width: int) -> np.ndarray:
    """Apply a row-wise ``fn`` (rows in, ``width`` columns out) in chunks."""
    if X.shape[0] <= CHUNK_ROWS:
        return fn(X)
    out = np.empty((X.shape[0], width), dtype=X.dtype)
    for start in range(0, X.shape[0], CHUNK_ROWS):
        out[start : start + CHUNK_ROWS] = fn(X[start : start + CHUNK_ROWS])
    return out
