"""Row helpers of the estimator: the random validation split, a bounded random sample, and
row-wise functions applied in chunks so that memory does not grow with the rows."""

from __future__ import annotations

import numpy as np

CHUNK_ROWS = 16384  # rows per call of a chunked row-wise function


def split(X: np.ndarray, fraction: float, rng) -> tuple[np.ndarray, np.ndarray | None]:
    """Hold out ``fraction`` of the rows at random; none when too few rows remain."""
    n_val = int(round(X.shape[0] * fraction))
    if n_val < 1 or X.shape[0] - n_val < 1:
        return X, None
    order = rng.permutation(X.shape[0])
    return X[np.sort(order[n_val:])], X[np.sort(order[:n_val])]


def sample(X: np.ndarray, most: int, rng) -> np.ndarray:
    """``X``, or ``most`` of its rows drawn at random (in their order) when it has more."""
    if len(X) <= most:
        return X
    return X[np.sort(rng.choice(len(X), size=most, replace=False))]


def chunked(fn, X: np.ndarray, width: int) -> np.ndarray:
    """Apply a row-wise ``fn`` (rows in, ``width`` columns out) in chunks."""
    if X.shape[0] <= CHUNK_ROWS:
        return fn(X)
    out = np.empty((X.shape[0], width), dtype=X.dtype)
    for start in range(0, X.shape[0], CHUNK_ROWS):
        out[start : start + CHUNK_ROWS] = fn(X[start : start + CHUNK_ROWS])
    return out
