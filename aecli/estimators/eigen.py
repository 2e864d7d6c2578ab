"""The decompositions behind PCA: the covariance's eigenvectors, with scikit-learn's signs."""

from __future__ import annotations

import numpy as np

from ..blas_threads import ThreadTuner, block_rows

# The uncentred Gram matrix X.T @ X minus n * outer(mean, mean) loses about log10(1 + m²/v)
# digits in a column with mean m and variance v: a relative error near eps * m²/v in the
# covariance. Up to this ratio that error stays under 1e-8, a hundred times finer than the
# 1e-6 aecli promises, and the shortcut saves a pass that centres the data (about 10% of a fit).
_MAX_MEAN_SQ_OVER_VAR = 1e7


def covariance_eigh(X: np.ndarray, mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending, >= 0) and eigenvectors (rows) of the covariance of X."""
    n, d = X.shape
    C = None
    if X.dtype == np.float64 and _mean_is_small(X[:: max(1, n // 1024)], mean):
        G = gram(X)  # (d, d)
        # The sample only guessed; the exact second moments on the diagonal decide.
        if _mean_is_small_exact(np.diag(G) / n, mean):
            C = G
            C -= n * np.outer(mean, mean)
    if C is None:
        C = gram(X, mean)
    C /= n - 1
    variances, vectors = np.linalg.eigh(C)
    variances = variances[::-1]
    # Eigenvalues within rounding of zero (tiny negatives included) are noise of size
    # eps * largest, whose square roots would pass for singular values near sqrt(eps) * the
    # largest; the SVD would give about zero for them, and so do we.
    variances[variances <= d * np.finfo(np.float64).eps * variances[0]] = 0.0
    return variances, vectors[:, ::-1].T


def _mean_is_small(sample: np.ndarray, mean: np.ndarray) -> bool:
    variance = sample.var(axis=0)
    # A margin under the exact limit because a sample of ~1000 rows misjudges the variance.
    return bool(np.all(mean**2 <= 0.25 * _MAX_MEAN_SQ_OVER_VAR * variance))


def _mean_is_small_exact(second_moment: np.ndarray, mean: np.ndarray) -> bool:
    # m² <= r·v with v = E[x²] - m², rearranged so that no cancellation decides the test.
    r = _MAX_MEAN_SQ_OVER_VAR
    return bool(np.all(mean**2 * (1 + r) <= r * second_moment))


def gram(X: np.ndarray, mean: np.ndarray | None = None) -> np.ndarray:
    """(X - mean).T @ (X - mean) (no centring without ``mean``) in float64, a block of rows
    at a time: memory does not grow with the rows, and each block is a unit of a
    :class:`ThreadTuner` (one product over every row would run on as many threads as a busy
    machine has no room for: 5x slower there)."""
    n, d = X.shape
    # Four tuner blocks' worth of rows: the product's inner dimension is the block's height,
    # and a taller one runs faster (100k x 256: 0.129 s against 0.137 s, best of 12), while a
    # pass still has a dozen units to tune on.
    rows = 4 * block_rows(8 * d)
    block = np.empty((min(rows, n), d)) if mean is not None else None  # (rows, d)
    G = np.zeros((d, d))
    with ThreadTuner("gram") as tuner:
        for start in range(0, n, rows):
            tuner.tick(min(rows, n - start))
            B = X[start : start + rows]
            if block is not None:
                B = np.subtract(B, mean, out=block[: len(B)])
            G += B.T @ B
        tuner.pause()
    return G


def flip_signs(U: np.ndarray | None, Vt: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """Make each row of Vt's largest-magnitude entry positive, as sklearn's svd_flip does."""
    largest = np.argmax(np.abs(Vt), axis=1)  # (k,)
    signs = np.sign(Vt[np.arange(Vt.shape[0]), largest])
    Vt = Vt * signs[:, None]
    if U is not None:
        U = U[:, : len(signs)] * signs
    return U, Vt
