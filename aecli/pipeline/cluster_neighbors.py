"""Neighbours on a cluster (``--neighbors`` with ``--scheduler``): the graph of a sample of
the training rows, drawn on the workers, and neighbour preservation measured on a sample of
the held-out rows.

A cluster's rows are never in one place, so its graph is built as ``--stream`` builds one
(:mod:`aecli.estimators.neighbors`): on a uniform sample of at most ``GRAPH_ROWS`` training
rows (exact neighbours). Each partition gives its share of the sample in proportion to its
training rows, drawn on its worker by a seed of the run's and the partition's number, so the
sample depends on the seed alone, not on which worker holds what. The client builds the
graph and hands the sample and the graph once to every worker; each replica's batches are
then followed by as many pairs of sampled neighbours, as a streamed batch is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..estimators import Autoencoder, Hyperparameters
from ..estimators.graph import neighbor_graph
from ..estimators.neighbor_metrics import SAMPLE_ROWS
from ..estimators.neighbors import GRAPH_ROWS
from .cluster_workers import sampled
from .train import preservation

if TYPE_CHECKING:
    from .train_cluster import OnCluster


def quotas(rows: list[int], total: int) -> list[int]:
    """``total`` (at most ``sum(rows)``) shared in proportion to ``rows``: each part's
    floor, then one more to the parts with the largest remainders (the first on ties)."""
    whole = sum(rows)
    if whole == 0:
        return [0] * len(rows)
    exact = [total * r / whole for r in rows]
    share = [int(e) for e in exact]
    by_remainder = sorted(range(len(rows)), key=lambda i: (share[i] - exact[i], i))
    for i in by_remainder[: total - sum(share)]:
        share[i] += 1
    return share


def sample_on_cluster(data: OnCluster, which: str, most: int, seed: int, job: str
                      ) -> np.ndarray:
    """A sample of at most ``most`` of the training or validation rows (``which``), each
    partition's share in proportion to its rows, drawn on its worker; in partition order."""
    counts = [s.rows_train if which == "train" else s.rows_validation for s in data.surveys]
    share = quotas(counts, min(most, sum(counts)))
    drawn = [i for i in range(len(share)) if share[i]]
    parts = data.collect([data.client.submit(sampled, data.held[i], which, share[i],
                                             (seed, 7, i), key=f"aecli-sample-{which}-{job}-{i}")
                          for i in drawn], [[i] for i in drawn])
    if not parts:
        return np.zeros((0, data.preparation.width))
    return np.concatenate(parts)


def neighbor_pairs(data: OnCluster, hp: Hyperparameters, job: str):
    """The future of (sampled training rows, their fuzzy kNN graph), held by every worker,
    for :func:`aecli.pipeline.cluster_workers.replica_round`; None without neighbours or on
    fewer than 3 rows (as on one machine)."""
    if not hp.neighbors:
        return None
    seed = hp.seed if hp.seed is not None else int(np.random.SeedSequence().entropy % 2**31)
    S = sample_on_cluster(data, "train", GRAPH_ROWS, seed, job)  # (m, width)
    if len(S) < 3:
        return None
    graph = neighbor_graph(S, hp.neighbors, np.random.default_rng([seed, 6]))
    return data.client.scatter((S, graph), broadcast=True, hash=False)


def preservation_on_cluster(data: OnCluster, fitted: Autoencoder, job: str) -> dict:
    """How the codes of ``fitted`` and of PCA at the same k keep the neighbours of a sample
    of ``SAMPLE_ROWS`` held-out rows (training rows when none are held out), gathered from
    the workers: :func:`aecli.pipeline.train.preservation`, with PCA the cluster's exact
    one (from the Gram sum)."""
    which = "validation" if data.rows_validation else "train"
    rows = sample_on_cluster(data, which, SAMPLE_ROWS, 0, job)  # the same rows every run
    components = data.eigenvectors[:, : fitted.latent]  # (width, k)
    return preservation(fitted, None, rows,
                        pca_codes=lambda X: (X - data.mean) @ components)
