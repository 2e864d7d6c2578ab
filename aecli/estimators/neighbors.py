"""Training with neighbours (``neighbors``): the batch sources that pair each row with a
neighbour drawn from the kNN graph, for the objective of :mod:`aecli.nn.neighbors`.

In memory, the graph is over every training row and each epoch's batches are the rows in a
fresh order (every row once, as without neighbours), each followed by one of its neighbours,
and on a small table each pair also gives a row between the two (:func:`between`),
reconstructed only. Rows
streamed from a file are not all at hand: the graph is built over a uniform sample of
at most ``GRAPH_ROWS`` of them, drawn in one more pass (exact neighbours: the sample is no
larger than ``graph.EXACT_ROWS``), and each streamed batch is followed by as many pairs
drawn from the sample. A cluster's partitions are sampled the same way, each in
proportion to its rows (:mod:`aecli.pipeline.cluster_neighbors`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from ..nn.neighbors import NeighborTerm
from .graph import EXACT_ROWS, Graph, neighbor_graph

# The weight of the neighbour term against the reconstruction MSE (bench/README.md,
# neighbours: the codes' kNN accuracy rises up to about this weight, and the held-out
# reconstruction error stays within 1.15x the plain autoencoder's).
WEIGHT = 0.5
GRAPH_ROWS = EXACT_ROWS  # rows of a stream's graph sample
# Rows between neighbours, reconstructed beside the pairs: per pair, this many (rounded) at a
# random share of the way from head to tail, with Gaussian noise of ``BETWEEN_NOISE`` times
# the pair's distance. They stand for new rows among the training rows' neighbours, so the
# reconstruction does not fit only the training rows: without them, the deeper network of
# neighbours (hyperparameters.NEIGHBOR_HIDDEN) reconstructs a small table's held-out rows
# far worse than the plain autoencoder (bench/README.md, neighbours). Only where the graph's
# rows are fewer than ``BETWEEN_ROWS``: on a large table they add nothing to the held-out
# reconstruction and cost most of the training's time.
BETWEEN_SHARE = 1.0
BETWEEN_NOISE = 0.5
BETWEEN_ROWS = GRAPH_ROWS  # a stream's full sample: the table is no smaller


def between_share(graph_rows: int) -> float:
    """The share of pairs that give a row between them, for a graph over ``graph_rows``."""
    return BETWEEN_SHARE if graph_rows < BETWEEN_ROWS else 0.0


def between(xh: np.ndarray, xt: np.ndarray, rng: np.random.Generator, share: float
            ) -> np.ndarray:
    """Rows between the first heads ``xh`` and their tails ``xt`` (b, d each), at a random
    share of the way, with noise in proportion to their distance: (share * b, d). Their
    codes are in no term: they only widen what the reconstruction is trained on."""
    m = int(round(share * len(xh)))
    a, gap = xh[:m], xt[:m] - xh[:m]
    t = rng.random((m, 1)).astype(xh.dtype)
    scale = BETWEEN_NOISE * np.sqrt(np.einsum("ij,ij->i", gap, gap) / xh.shape[1])  # (m,)
    noise = rng.standard_normal(a.shape, dtype=xh.dtype) * scale[:, None].astype(xh.dtype)
    return a + t * gap + noise


def graph_batches(X: np.ndarray, graph: Graph, batch_size: int, term: NeighborTerm
                  ) -> Callable:
    """Epoch source over rows ``X`` (n, d) in memory: each batch is rows between the pairs
    (:func:`between`), then ``batch_size`` rows in a fresh order (the heads), then one
    neighbour of each (the tails), (3b, d); (2b, d) on ``BETWEEN_ROWS`` rows or more."""
    n = len(X)
    bs = min(batch_size, n)
    share = between_share(n)

    def epoch(rng: np.random.Generator):
        order = rng.permutation(n)
        for start in range(0, n, bs):
            heads = order[start : start + bs]
            tails = graph.draw_tails(heads, rng)
            term.pairs = len(heads)
            xh, xt = X[heads], X[tails]
            yield np.concatenate([between(xh, xt, rng, share), xh, xt])  # the pairs last

    epoch.batches = -(-n // bs)
    epoch.code_term = term
    return epoch


def with_pairs(source: Callable, S: np.ndarray, graph: Graph, term: NeighborTerm
               ) -> Callable:
    """Epoch source: each batch of ``source`` (rows read anew each epoch) followed by rows
    between the pairs (:func:`between`) and as many pairs of a sampled row of ``S`` (m, d)
    and its neighbour in ``graph``."""
    share = between_share(len(S))

    def epoch(rng: np.random.Generator):
        for xb in source(rng):
            heads = rng.integers(0, len(S), size=len(xb))
            tails = graph.draw_tails(heads, rng)
            term.pairs = len(heads)
            xh, xt = S[heads], S[tails]
            yield np.concatenate([xb, between(xh, xt, rng, share), xh, xt])

    epoch.batches = getattr(source, "batches", None)
    epoch.code_term = term
    return epoch


def sample_rows(chunks: Iterable[np.ndarray], most: int, rng: np.random.Generator
                ) -> np.ndarray:
    """A uniform sample of at most ``most`` rows of ``chunks`` in one pass (each row keyed
    by a random number, the smallest keys kept: bottom-k sampling), memory ``most`` rows."""
    kept, keys = None, None
    for chunk in chunks:
        k = rng.random(len(chunk))
        if kept is None:
            kept, keys = chunk[:0].copy(), k[:0]
        kept, keys = np.concatenate([kept, chunk]), np.concatenate([keys, k])
        if len(kept) > most:
            best = np.argpartition(keys, most - 1)[:most]
            kept, keys = kept[best], keys[best]
    return kept


def in_memory_source(X: np.ndarray, neighbors: int, batch_size: int,
                     rng: np.random.Generator) -> Callable | np.ndarray:
    """What the training loop trains on for rows ``X`` in memory: ``X`` itself without
    neighbours, else a :func:`graph_batches` source over their graph."""
    if not neighbors or len(X) < 3:
        return X
    graph = neighbor_graph(X, neighbors, rng)
    return graph_batches(X, graph, batch_size, NeighborTerm(WEIGHT))


def streamed_source(source: Callable, chunks: Callable[[], Iterable[np.ndarray]],
                    neighbors: int, rng: np.random.Generator) -> Callable:
    """What the training loop trains on for rows read anew each epoch by ``chunks()``:
    ``source`` without neighbours, else :func:`with_pairs` over a sample's graph (one more
    pass to draw the sample)."""
    if not neighbors:
        return source
    S = sample_rows(chunks(), GRAPH_ROWS, rng)
    if len(S) < 3:
        return source
    return with_pairs(source, S, neighbor_graph(S, neighbors, rng), NeighborTerm(WEIGHT))
