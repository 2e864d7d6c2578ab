"""The neighbour-preserving objective on the codes: UMAP's fuzzy-set cross-entropy with
negative sampling, as parametric UMAP trains a network with it (Sainburg, McInnes, Gentner
2021, "Parametric UMAP embeddings for representation and semisupervised learning").

A batch's codes come in pairs: rows ``heads`` and, for each, a neighbour ``tails`` drawn
from the kNN graph. In the code space two codes at squared distance ``D`` are neighbours with
probability ``q = 1 / (1 + a D^b)``; a pair of neighbours costs ``-log q`` (attraction), and
each head against ``negatives`` other tails of the batch (rows drawn at random, nearly
always not neighbours) costs ``-log(1 - q)`` (repulsion). The value is the mean over the
pairs of the attraction plus the repulsion of its negatives.

Arrays only; the graph is built in :mod:`aecli.estimators.graph`.
"""

from __future__ import annotations

import numpy as np

# UMAP's curve for min_dist=0.1, spread=1 (umap-learn's find_ab_params): how near a
# neighbour's code sits.
A, B = 1.5769434603113077, 0.8950608781227859
NEGATIVES = 5  # repelled codes per pair, umap-learn's negative_sample_rate
EPS = 1e-3  # added to a repelled pair's squared distance, as umap-learn does: no pole at 0


def _attraction(D: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``-log q`` at squared distances ``D`` and its derivative in ``D``."""
    Db = np.power(D + 1e-12, B)
    value = np.log1p(A * Db)
    grad = A * B * Db / ((D + 1e-12) * (1 + A * Db))
    return value, grad


def _repulsion(D: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``-log(1 - q)`` at squared distances ``D`` (moved by ``EPS``) and its derivative."""
    De = D + EPS
    ADb = A * np.power(De, B)
    value = np.log1p(ADb) - np.log(ADb)  # = -log(aD^b / (1 + aD^b))
    grad = B * ADb / (De * (1 + ADb)) - B / De
    return value, grad


def umap_loss(heads: np.ndarray, tails: np.ndarray, negatives: int = NEGATIVES
              ) -> tuple[float, np.ndarray, np.ndarray]:
    """The cross-entropy of the pairs ``heads[i]``, ``tails[i]`` (codes, (m, k) each) and
    its gradient with respect to both.

    The ``negatives`` repelled partners of head i are the tails ``i + 1 ... i + negatives``
    (cyclically): the batch's rows are drawn at random, so these are random rows.

    Returns
    -------
    value : float
        Mean over the m pairs of attraction plus repulsion.
    d_heads, d_tails : ndarray of shape (m, k)
    """
    m = len(heads)
    dh = np.zeros_like(heads)
    dt = np.zeros_like(tails)
    diff = heads - tails  # (m, k)
    value, g = _attraction(np.einsum("ij,ij->i", diff, diff))
    total = float(value.sum())
    step = (2 * g / m)[:, None].astype(heads.dtype) * diff  # (m, k)
    dh += step
    dt -= step
    for r in range(1, min(negatives, m - 1) + 1):
        other = np.roll(tails, -r, axis=0)  # (m, k) tail i + r
        diff = heads - other
        value, g = _repulsion(np.einsum("ij,ij->i", diff, diff))
        total += float(value.sum())
        step = (2 * g / m)[:, None].astype(heads.dtype) * diff
        dh += step
        dt -= np.roll(step, r, axis=0)
    return total / m, dh, dt


class NeighborTerm:
    """The objective's term on a training batch's codes: the batch's last ``2 * pairs`` rows
    are heads then their tails, and ``weight`` times their :func:`umap_loss` is added to
    the reconstruction loss. A batch source sets ``pairs`` before it yields each batch."""

    def __init__(self, weight: float, negatives: int = NEGATIVES):
        self.weight, self.negatives, self.pairs = weight, negatives, 0

    def __call__(self, code: np.ndarray) -> tuple[float, np.ndarray | None]:
        """The term's value on the batch's codes ``code`` (n, k) and its gradient (n, k)."""
        m = self.pairs
        if m < 2:
            return 0.0, None
        n = len(code)
        value, dh, dt = umap_loss(code[n - 2 * m : n - m], code[n - m :], self.negatives)
        d_code = np.zeros_like(code)
        w = code.dtype.type(self.weight)
        d_code[n - 2 * m : n - m] = w * dh
        d_code[n - m :] = w * dt
        return self.weight * value, d_code
