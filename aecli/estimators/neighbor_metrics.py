"""How well codes keep the rows' neighbours: trustworthiness and kNN recall, on a sample.

Both compare each sampled row's nearest rows in the input (the scaled rows the network
sees) with its nearest codes, among the sampled rows only, exactly (an (m, m) table of
distances for m sampled rows), so the figures cost the same on any table.

- Trustworthiness at k (Venna and Kaski 2001; scikit-learn's ``trustworthiness``): 1 less a
  penalty for every code-space neighbour that is not an input-space neighbour, by how far
  down the input ranking it sits; 1 is perfect, about 0.5 is random.
- kNN recall at k: the mean share of each row's k nearest input rows that are among its k
  nearest codes.
"""

from __future__ import annotations

import numpy as np

SAMPLE_ROWS = 2000  # rows the figures are measured on: (2000, 2000) distances, 16 MB
K = 10  # neighbours the figures look at
RANK_ROWS = 256  # rows whose ranks are counted at once: (256, k, m) comparisons


def _distances(A: np.ndarray) -> np.ndarray:
    A = A.astype(np.float64)
    sq = np.einsum("ij,ij->i", A, A)
    D = sq[:, None] - 2 * (A @ A.T) + sq[None, :]  # (m, m)
    np.fill_diagonal(D, np.inf)
    return D


def neighbor_preservation(X: np.ndarray, Z: np.ndarray, k: int = K,
                          rng: np.random.Generator | None = None,
                          most: int = SAMPLE_ROWS) -> dict:
    """Trustworthiness and kNN recall at ``k`` of codes ``Z`` (n, latent) of rows ``X``
    (n, d), on ``most`` rows drawn by ``rng`` (every row when there are no more).

    Returns
    -------
    dict
        ``trustworthiness`` and ``knn_recall`` (floats, None on fewer than ``2k + 2`` rows,
        where the figures are not defined), ``neighbors_k`` and ``neighbors_rows``.
    """
    n = len(X)
    rows = np.arange(n) if n <= most else np.sort(
        (rng or np.random.default_rng(0)).choice(n, size=most, replace=False))
    m = len(rows)
    out = {"trustworthiness": None, "knn_recall": None, "neighbors_k": k,
           "neighbors_rows": int(m)}
    if m < 2 * k + 2:
        return out
    Dx, Dz = _distances(X[rows]), _distances(Z[rows])
    near_z = np.argpartition(Dz, k - 1, axis=1)[:, :k]  # (m, k) code-space neighbours
    far = np.take_along_axis(Dx, near_z, axis=1)  # (m, k) their distances in the input
    # their input ranks: 1 + how many rows are nearer in the input (no (m, m) sort needed)
    r = np.empty((m, k), dtype=np.int64)
    for s in range(0, m, RANK_ROWS):
        r[s : s + RANK_ROWS] = 1 + (Dx[s : s + RANK_ROWS, None, :]
                                    < far[s : s + RANK_ROWS, :, None]).sum(axis=2)
    penalty = np.maximum(r - k, 0).sum()
    trust = 1.0 - 2.0 / (m * k * (2 * m - 3 * k - 1)) * penalty
    recall = float((r <= k).sum()) / (m * k)
    out.update(trustworthiness=float(trust), knn_recall=recall)
    return out
