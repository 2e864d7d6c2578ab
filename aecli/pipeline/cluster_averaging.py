"""The averaged epochs of cluster training, on the client: the partitions dealt to replicas
of the model (one per worker), each replica's rounds of the one mini-batch step on its
workers, and their weights averaged by rows; an epoch of them is a step of the one epoch
loop (:func:`aecli.nn.training.run_epochs`). See :mod:`aecli.pipeline.train_cluster`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..errors import TrainingError
from ..estimators import Hyperparameters
from ..nn import Network
from ..nn.training import EpochOutcome, Monitor, TrainingResult, learning_rate, run_epochs
from ..nn.trimmed import trimmed_mean
from .cluster_workers import Round, Setup, errors, replica_round

if TYPE_CHECKING:
    from .train_cluster import OnCluster


def on_worker(worker: str | None) -> dict:
    """Where to run a task: preferably on ``worker``, elsewhere when it is gone."""
    return {"workers": [worker], "allow_other_workers": True} if worker else {}


def deal(rows: list[int], most: int) -> list[list[int]]:
    """The partitions with rows (``rows`` each) dealt to at most ``most`` replicas: largest
    first, each to the replica with the fewest rows so far; each replica's partitions in
    order. Empty partitions train nowhere."""
    given = [i for i in range(len(rows)) if rows[i] > 0]
    count = max(min(most, len(given)), 1)
    replicas, load = [[] for _ in range(count)], [0] * count
    for i in sorted(given, key=lambda i: (-rows[i], i)):
        j = min(range(count), key=lambda j: (load[j], j))
        replicas[j].append(i)
        load[j] += rows[i]
    return [sorted(r) for r in replicas if r]


# Optimizer steps of a replica between two averages (rows held in memory). Each average
# costs a round trip through the scheduler, worth about a hundred steps: averaging every
# ROUND_STEPS keeps it a small share of an epoch. Replicas averaged only once in an epoch
# drift apart, which one epoch on its own does not recover from: a replica of 128 steps or
# more is averaged at least FEWEST_ROUNDS times an epoch (bench/README.md, cluster, has the
# figures for both).
ROUND_STEPS = 2048
FEWEST_ROUNDS = 4
# One machine's steps over the whole budget below which steps are scarce: M replicas then
# take batches of batch_size / M rows, as a data-parallel step splits one batch, and so take
# as many steps as one machine; above it, whole batches, for speed (smaller batches take
# more time per row). bench/README.md, cluster, has the figures.
SCARCE_STEPS = 50_000


def replica_batch(data: OnCluster, hp: Hyperparameters) -> int:
    """Rows per batch of each replica: ``batch_size`` split among the replicas when one
    machine's budget is under ``SCARCE_STEPS`` steps, else ``batch_size``."""
    budget = hp.epochs * -(-data.rows_train // hp.batch_size)
    if budget >= SCARCE_STEPS:
        return hp.batch_size
    return max(1, hp.batch_size // len(data.replicas))


def rounds_of(data: OnCluster, batch_size: int) -> int:
    """Averages per epoch: for rows held in memory, every ``ROUND_STEPS`` steps of the
    largest replica, at least ``FEWEST_ROUNDS`` for 128 steps or more; for partitions read
    anew, after each partition a replica reads; one for a single replica, which has nothing
    to be averaged with."""
    if len(data.replicas) == 1:
        return 1
    if data.in_memory:
        most = max(sum(data.surveys[i].rows_train for i in parts) for parts in data.replicas)
        steps = -(-most // batch_size)
        return max(1, min(FEWEST_ROUNDS, steps // 128), round(steps / ROUND_STEPS))
    return max(len(parts) for parts in data.replicas)


def averaged_epochs(data: OnCluster, network: Network, setup: Setup, hp: Hyperparameters,
             callback, job: str, pairs=None) -> TrainingResult:
    """The averaged epochs of the replicas, a step of the one epoch loop
    (:func:`aecli.nn.training.run_epochs`); the best weights are left in ``network``.
    ``pairs``: the future of the sampled rows and their neighbour graph, each replica's
    batches followed by pairs from it (see :func:`.cluster_workers.replica_round`)."""
    client, held, replicas = data.client, data.held, data.replicas
    rows = [sum(data.surveys[i].rows_train for i in parts) for parts in replicas]
    states = [None] * len(replicas)  # each replica's optimizer state, from round to round
    scale = math.sqrt(len(replicas))  # M replicas take M times fewer steps: see the module
    batch = replica_batch(data, hp)
    count = rounds_of(data, batch)
    base = hp.seed if hp.seed is not None else int(np.random.SeedSequence().entropy % 2**31)
    each = [[i] for i in range(len(held))]
    now = [0]

    def validation_loss() -> float:  # the trimmed mean of every partition's rows, as in memory
        return trimmed_mean(np.concatenate([r.errors for r in data.collect([
            client.submit(errors, h, network.theta, setup, "validation",
                          key=f"aecli-v-{job}-{now[0]}-{i}") for i, h in enumerate(held)],
            each)]))

    def averaged_epoch(epoch: int) -> EpochOutcome:
        now[0] = epoch
        got, loss = [0] * len(replicas), 0.0
        for r in range(count):
            lr = learning_rate(hp, epoch, r / count) * scale
            theta = network.theta.copy()
            outs = data.collect([
                client.submit(replica_round, [held[i] for i in parts], rows[j], theta, setup,
                              Round(epoch, r, count, lr, base * 100_003 + epoch * 1009 + j,
                                    batch),
                              states[j], pairs, key=f"aecli-round-{job}-{epoch}-{r}-{j}",
                              **on_worker(data.workers[j]))
                for j, parts in enumerate(replicas)], replicas)
            states[:] = [o[3] for o in outs]
            done = sum(o[2] for o in outs)
            if done:
                network.theta[...] = sum(o[0].astype(np.float64) * o[2] for o in outs) / done
            got = [g + o[2] for g, o in zip(got, outs, strict=True)]
            loss += sum(o[1] for o in outs)
        for have, want, parts in zip(got, rows, replicas, strict=True):
            if have != want:  # never a model trained on a partition silently missing
                raise TrainingError(
                    f"a replica trained on {have:,} rows of partitions "
                    f"{', '.join(data.files[i] for i in parts)} instead of the {want:,} the "
                    "survey counted: a partition changed or went missing during training; "
                    "no model was written", hint="leave the data set alone while it trains, "
                    "then run the command again")
        train_loss = float(loss / sum(rows))
        finite = np.isfinite(network.theta).all()
        return EpochOutcome(train_loss, sum(rows), train_loss if finite else math.nan)

    monitor = Monitor(network, hp, callback, hp.patience,
                      validation_loss if data.rows_validation > 0 else None)
    return run_epochs(averaged_epoch, monitor, hp)
