"""The training rows' k-nearest-neighbour graph, as UMAP builds it (McInnes, Healy, Melville
2018, section 3): each row's k nearest rows, their distances turned into memberships of a
fuzzy set, the sets joined into one symmetric weighted graph.

The neighbours are exact up to ``EXACT_ROWS`` rows: every distance, a block of rows at a time
as matrix products, so memory stays at ``BLOCK_BYTES`` whatever the table. Beyond that the
cost of every distance grows with the square of the rows, and :func:`approximate_knn` finds
them instead: a forest of random-projection trees (Dasgupta and Freund 2008; Annoy's and
pynndescent's start) whose leaves are searched exactly, then a round of neighbours of
neighbours (NN-descent, Dong, Moses, Li 2011). Memory is the (n, k) lists plus one block.
Rows are Euclidean, in the scaled units the network sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..blas_threads import pinned

EXACT_ROWS = 20_000  # exact neighbours up to this many rows (bench/README.md, neighbours)
# The largest block of distances (or gathered rows) held at once. Below glibc's largest
# mmap threshold (32 MB), so that each block's memory is reused, not mapped and faulted in
# anew, which made 64 MB blocks far slower (bench/README.md, neighbours).
BLOCK_BYTES = 16 << 20
TREES = 8  # random-projection trees of the approximate search
REFINE_ROUNDS = 2  # rounds of neighbours of neighbours after the trees
FAN = 12  # the neighbours whose neighbours a round looks at
SIGMA_STEPS = 64  # bisection steps for each row's bandwidth (UMAP's smooth_knn_dist)


def knn(X: np.ndarray, k: int, rng: np.random.Generator, exact_rows: int = EXACT_ROWS
        ) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` nearest other rows of ``X`` (n, d), nearest first: indices (n, k)
    int64 and Euclidean distances (n, k) float32; exact up to ``exact_rows`` rows,
    approximate beyond (see the module's docstring). ``k`` must be below n."""
    if len(X) <= exact_rows:
        return exact_knn(X, k)
    return approximate_knn(X, k, rng)


def _sq_norms(X: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", X, X, dtype=np.float64).astype(np.float32)  # (n,)


def exact_knn(X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``k`` nearest neighbours of every row of ``X`` (n, d) among the others, a block
    of rows at a time: ``|x|^2 - 2 x.y + |y|^2`` as one matrix product per block."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    n = len(X)
    sq = _sq_norms(X)
    rows = max(1, min(n, BLOCK_BYTES // (4 * n)))
    indices = np.empty((n, k), dtype=np.int64)
    distances = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, rows):
        xb = X[start : start + rows]  # (m, d)
        D = xb @ X.T  # (m, n)
        D *= -2
        D += sq[start : start + rows, None]
        D += sq[None, :]
        D[np.arange(len(xb)), np.arange(start, start + len(xb))] = np.inf  # not itself
        indices[start : start + len(xb)], distances[start : start + len(xb)] = _smallest(D, k)
    return indices, np.sqrt(np.maximum(distances, 0), out=distances)


def _smallest(D: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` smallest entries of each row of ``D`` (m, n), in order: columns, values."""
    part = np.argpartition(D, k - 1, axis=1)[:, :k]  # (m, k)
    vals = np.take_along_axis(D, part, axis=1)
    order = np.argsort(vals, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(vals, order, axis=1)


def approximate_knn(X: np.ndarray, k: int, rng: np.random.Generator, trees: int = TREES,
                    rounds: int = REFINE_ROUNDS) -> tuple[np.ndarray, np.ndarray]:
    """Approximate ``k`` nearest neighbours of every row of ``X`` (n, d): the leaves of
    ``trees`` random-projection trees searched exactly, then ``rounds`` of neighbours of
    neighbours. Squared distances are kept while searching; Euclidean ones are returned."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    n = len(X)
    sq = _sq_norms(X)
    indices = np.full((n, k), -1, dtype=np.int64)
    dist = np.full((n, k), np.inf, dtype=np.float32)
    leaf = max(2 * k, 32)
    for _ in range(trees):
        order, bounds = _rp_leaves(X, leaf, rng)
        for size in np.unique(np.diff(bounds)):
            starts = bounds[:-1][np.diff(bounds) == size]
            per = max(1, BLOCK_BYTES // (4 * size * (size + X.shape[1])))
            for g in range(0, len(starts), per):
                members = order[starts[g : g + per, None] + np.arange(size)]  # (G, s)
                xs = X[members]  # (G, s, d)
                # one leaf's product is small: OpenBLAS splits one of 30 x 784 x 30 over its
                # threads, which then wait for each other, about 200x slower than one thread
                with pinned(1):
                    D = np.matmul(xs, xs.transpose(0, 2, 1))  # (G, s, s)
                D *= -2
                D += sq[members][:, :, None]
                D += sq[members][:, None, :]
                D[:, np.arange(size), np.arange(size)] = np.inf
                kk = min(k, size - 1)
                cols, vals = _smallest(D.reshape(-1, size), kk)
                found = np.take_along_axis(np.repeat(members, size, axis=0), cols, axis=1)
                rows = members.reshape(-1)
                indices[rows], dist[rows] = _merge(indices[rows], dist[rows], found, vals, k)
    for _ in range(rounds):
        indices, dist = _refine(X, sq, indices, dist, k)
    return indices, np.sqrt(np.maximum(dist, 0))


def _rp_leaves(X: np.ndarray, leaf: int, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray]:
    """One random-projection tree, built a level at a time for every node at once: each
    node's rows split at the median of their projection on the line through two of them.
    Returns the rows in leaf order and the leaves' bounds in it (sizes differ by at most 1).
    """
    n = len(X)
    order = rng.permutation(n)
    bounds = np.array([0, n])
    while np.diff(bounds).max() > leaf:
        sizes = np.diff(bounds)
        node = np.repeat(np.arange(len(sizes)), sizes)  # (n,) each position's node
        a = order[bounds[:-1] + rng.integers(0, sizes)]  # two rows of each node
        b = order[bounds[:-1] + rng.integers(0, sizes)]
        normal = X[a] - X[b]  # (nodes, d)
        proj = np.empty(n, dtype=np.float64)
        step = max(1, BLOCK_BYTES // (4 * X.shape[1]))
        for s in range(0, n, step):
            proj[s : s + step] = np.einsum("ij,ij->i", X[order[s : s + step]],
                                           normal[node[s : s + step]])
        order = order[np.lexsort((proj, node))]
        bounds = np.unique(np.concatenate([bounds, (bounds[:-1] + bounds[1:]) // 2]))
    return order, bounds


def _merge(idx: np.ndarray, dist: np.ndarray, new_idx: np.ndarray, new_dist: np.ndarray,
           k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` nearest of two candidate lists (m, *), a row found twice once."""
    cand = np.concatenate([idx, new_idx], axis=1)
    d = np.concatenate([dist, new_dist], axis=1)
    by_index = np.argsort(cand, axis=1, kind="stable")
    cand = np.take_along_axis(cand, by_index, axis=1)
    d = np.take_along_axis(d, by_index, axis=1)
    d[:, 1:][cand[:, 1:] == cand[:, :-1]] = np.inf  # a repeat
    d[cand < 0] = np.inf
    cols, vals = _smallest(d, k)
    return np.take_along_axis(cand, cols, axis=1), vals


def _refine(X: np.ndarray, sq: np.ndarray, idx: np.ndarray, dist: np.ndarray, k: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """One round of NN-descent: each row's neighbours' neighbours as candidates."""
    n, d = X.shape
    fan = min(k, FAN)  # the nearest few neighbours' nearest few: most of the gain, a
    # fraction (fan/k)^2 of the cost
    step = max(1, BLOCK_BYTES // (4 * fan * fan * d))
    out_idx, out_dist = idx.copy(), dist.copy()
    for s in range(0, n, step):
        rows = np.arange(s, min(n, s + step))
        cand = idx[idx[rows, :fan], :fan].reshape(len(rows), -1)  # (m, fan^2)
        cand = np.where(cand == rows[:, None], -1, cand)
        dots = np.einsum("md,mcd->mc", X[rows], X[np.maximum(cand, 0)])
        cd = (sq[rows, None] + sq[np.maximum(cand, 0)] - 2 * dots).astype(np.float32)
        out_idx[rows], out_dist[rows] = _merge(idx[rows], dist[rows], cand, cd, k)
    return out_idx, out_dist


@dataclass(frozen=True)
class Graph:
    """A symmetric weighted graph over n rows in compressed rows: row i's neighbours are
    ``tails[starts[i]:starts[i+1]]``; ``cumulative`` is the running sum of the edges'
    weights over every row (edge e's weight is ``cumulative[e+1] - cumulative[e]``), for
    drawing a neighbour in proportion to its weight."""

    starts: np.ndarray  # (n + 1,) int64
    tails: np.ndarray  # (edges,) int64
    cumulative: np.ndarray  # (edges + 1,) float64, from 0

    @property
    def n(self) -> int:
        """Rows of the graph."""
        return len(self.starts) - 1

    def draw_tails(self, heads: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One neighbour of each of ``heads``, drawn in proportion to the edges' weights (a
        row without any edge draws itself)."""
        start, end = self.starts[heads], self.starts[heads + 1]  # (m,) each head's edges
        low, high = self.cumulative[start], self.cumulative[end]
        at = np.searchsorted(self.cumulative, low + rng.random(len(heads)) * (high - low),
                             side="right") - 1
        at = np.clip(at, start, np.maximum(end - 1, start))  # rounding at either end
        return np.where(end > start, self.tails[np.minimum(at, len(self.tails) - 1)], heads)


def fuzzy_graph(indices: np.ndarray, distances: np.ndarray) -> Graph:
    """UMAP's fuzzy simplicial set of a kNN graph (indices, distances: (n, k)): row i's
    membership of neighbour j is ``exp(-(d_ij - rho_i) / sigma_i)``, with ``rho_i`` its
    nearest distance and ``sigma_i`` chosen so that the memberships sum to ``log2(k)``; the
    directed sets are joined by the fuzzy union ``a + b - a*b``."""
    n, k = indices.shape
    d = distances.astype(np.float64)
    positive = np.where(d > 0, d, np.inf)
    rho = np.min(positive, axis=1)
    rho[~np.isfinite(rho)] = 0.0
    excess = np.maximum(d - rho[:, None], 0.0)  # (n, k)
    target = np.log2(k)
    low, high = np.zeros(n), np.full(n, np.inf)
    sigma = np.ones(n)
    for _ in range(SIGMA_STEPS):  # bisection on every row at once
        total = np.exp(-excess / sigma[:, None]).sum(axis=1)
        over = total > target
        high = np.where(over, sigma, high)
        low = np.where(over, low, sigma)
        sigma = np.where(np.isfinite(high), (low + high) / 2, sigma * 2)
    # UMAP's floor on sigma (MIN_K_DIST_SCALE of the mean distance), against a zero bandwidth
    sigma = np.maximum(sigma, 1e-3 * np.maximum(d.mean(axis=1), 1e-12))
    w = np.exp(-excess / sigma[:, None]).reshape(-1)
    heads = np.repeat(np.arange(n, dtype=np.int64), k)
    tails = indices.reshape(-1).astype(np.int64)
    keep = tails >= 0
    heads, tails, w = heads[keep], tails[keep], w[keep]
    keys = np.concatenate([heads * n + tails, tails * n + heads])
    vals = np.concatenate([w, w])
    order = np.argsort(keys, kind="stable")
    keys, vals = keys[order], vals[order]
    first = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    total = np.add.reduceat(vals, first)
    product = np.multiply.reduceat(vals, first)
    pairs = np.diff(np.r_[first, len(keys)])
    # a pair found from both ends counts once in each direction: a + b - ab; a directed
    # edge found from one end only appears there and once reversed, as a
    weight = np.where(pairs >= 2, total - product, total)
    edge_keys = keys[first]
    edge_heads, edge_tails = edge_keys // n, edge_keys % n
    starts = np.searchsorted(edge_heads, np.arange(n + 1))
    return Graph(starts.astype(np.int64), edge_tails, np.r_[0.0, np.cumsum(weight)])


def neighbor_graph(X: np.ndarray, k: int, rng: np.random.Generator) -> Graph:
    """The fuzzy kNN graph of rows ``X`` (n, d) at ``k`` neighbours (fewer on a table of
    k rows or fewer)."""
    k = min(k, len(X) - 1)
    return fuzzy_graph(*knn(X, k, rng))
