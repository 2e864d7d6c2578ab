"""The work on each partition's prepared rows during cluster training, on the workers: the
rows through the one preparation path, held in worker memory or read anew each time; their
Gram matrix for PCA; one epoch of a replica of the model over its partitions, from the
averaged weights; the rows' errors and codes, of which only small figures travel back to the
client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from ..blas_threads import ThreadTuner
from ..errors import naming_input
from ..estimators import Hyperparameters
from ..estimators.finish import DTYPES
from ..estimators.neighbors import WEIGHT, with_pairs
from ..estimators.rows import held_out, take
from ..estimators.scoring import CodeMoments, observed_errors
from ..nn import Network, make_optimizer
from ..nn.batches import cut_batches
from ..nn.neighbors import NeighborTerm
from ..nn.schedules import ScheduleKind
from ..nn.training import minibatch_epoch, reconstruction_mse_rows
from ..preprocessing import Preparation, Roles
from .cluster_survey import partition_rows
from .sources import DataOptions


@dataclass
class Held:
    """A partition's prepared rows, kept in a worker's memory."""

    train: np.ndarray
    validation: np.ndarray
    # their cells filled in (rows, columns) bool, None when none: left out of the scores
    # that calibrate the threshold, as `score` leaves them
    train_imputed: np.ndarray | None = None
    validation_imputed: np.ndarray | None = None


def prepare_partition(path: str, reading: DataOptions, roles: Roles, prep: Preparation,
                      fraction: float, seed: int, first_row: int) -> Held:
    """A partition through the one preparation path, split as the survey split it."""
    raw = partition_rows(path, reading, roles)
    with naming_input(path):
        prepared = prep.transform(raw, first_row)
    val = held_out(seed, fraction, first_row, len(raw))
    val = val if prepared.keep is None else val[prepared.keep]
    return Held(np.ascontiguousarray(prepared.X[~val]), np.ascontiguousarray(prepared.X[val]),
                take(prepared.imputed, ~val), take(prepared.imputed, val))


@dataclass(frozen=True)
class Reread:
    """A partition read and prepared anew each time it is used: for data sets larger than
    the workers' memory. Small: only what :func:`prepare_partition` needs."""

    path: str
    reading: DataOptions
    roles: Roles
    preparation: Preparation
    fraction: float
    seed: int
    first_row: int

    def load(self) -> Held:
        return prepare_partition(self.path, self.reading, self.roles, self.preparation,
                                 self.fraction, self.seed, self.first_row)


def loaded(held: Held | Reread) -> Held:
    """A partition's prepared rows, read again where they were not kept in memory."""
    return held if isinstance(held, Held) else held.load()


# Prepared rows are kept in worker memory while they take at most this share of it.
MEMORY_SHARE = 0.5


def gram(held: Held | Reread) -> tuple[int, np.ndarray, np.ndarray]:
    """Rows, column sums and Gram matrix of a partition's training rows (float64)."""
    X = loaded(held).train.astype(np.float64)
    return len(X), X.sum(axis=0), X.T @ X


_NETWORKS: dict = {}  # per worker process: a network per (job, architecture)


def _network(key: str, specs, dtype, groups, dropout: float) -> Network:
    if key not in _NETWORKS:
        _NETWORKS[key] = Network(specs, dtype=dtype, rng=None, dropout=dropout, groups=groups)
    return _NETWORKS[key]


@dataclass(frozen=True)
class Setup:
    """What a worker needs to run the network: its layout and the training settings."""

    key: str
    specs: tuple
    dtype: str
    groups: object
    params: Hyperparameters


def forget(key: str) -> None:
    """Drop a finished fit's network from a worker's memory (a cluster that outlives the
    command would otherwise keep every fit's)."""
    _NETWORKS.pop(key, None)


WINDOW_ROWS = 16384  # rows a replica's epoch draws from its partitions at a time, mixed


@dataclass(frozen=True)
class Round:
    """The part of an epoch a replica's task trains: round ``index`` (from 0) of ``count``,
    at learning rate ``lr``, in batches of ``batch`` rows. ``seed`` draws the epoch's order
    of rows, the same in every round of the epoch, so that the rounds share the epoch's rows
    out once each."""

    epoch: int
    index: int
    count: int
    lr: float
    seed: int
    batch: int


def replica_batches(parts: list[Held | Reread], rows: int, batch_size: int, turn: Round
                    ) -> Callable:
    """Epoch source over a replica's share of one epoch (``rows`` training rows in all).

    Rows held in memory are drawn in windows of about ``WINDOW_ROWS``, each partition giving
    its share of every window in an order of its own, and each window shuffled: every part of
    the epoch mixes every partition, as one machine's shuffle does, although one may hold
    January and the next February; each round takes its share of the windows. Partitions
    read anew come one per round, in an order of the epoch, each shuffled whole, so a worker
    holds one partition's rows at most. After the round, the source's ``rows`` says how
    many of the replica's rows it yielded (pairs added by :func:`with_pairs` not counted)."""
    order = np.random.default_rng(turn.seed)

    def epoch(rng: np.random.Generator) -> Iterator[np.ndarray]:
        carry, epoch.rows = None, 0
        if all(isinstance(h, Held) for h in parts):
            arrays = [h.train for h in parts if len(h.train)]
            orders = [order.permutation(len(a)) for a in arrays]
            windows = max(turn.count, -(-rows // WINDOW_ROWS))
            for w in range(windows * turn.index // turn.count,
                           windows * (turn.index + 1) // turn.count) if arrays else ():
                window = np.concatenate([a[o[len(a) * w // windows:len(a) * (w + 1) // windows]]
                                         for a, o in zip(arrays, orders, strict=True)])
                epoch.rows += len(window)
                carry = yield from cut_batches(window[rng.permutation(len(window))], carry,
                                               batch_size)
        elif turn.index < len(parts):
            X = loaded(parts[order.permutation(len(parts))[turn.index]]).train
            epoch.rows += len(X)
            carry = yield from cut_batches(X[rng.permutation(len(X))], carry, batch_size)
        if carry is not None and len(carry):
            yield carry

    return epoch


def replica_round(parts: list[Held | Reread], rows: int, theta: np.ndarray, setup: Setup,
                  turn: Round, state: dict | None, pairs: tuple | None = None
                  ) -> tuple[np.ndarray, float, int, dict | None]:
    """A round of a replica (a copy of the model that trains on its share of the
    partitions) from ``theta``: the mini-batch step of every training path
    (:func:`aecli.nn.training.minibatch_epoch`) over the round's rows. Returns the weights
    it ends at, its summed training error, the rows it trained on, and the optimizer's state
    (its moments), which the client keeps for the replica's next round: the state travels
    with the task rather than staying on a worker, so the result does not depend on which
    worker runs it. With ``pairs`` (the sampled rows and their graph, see
    :mod:`aecli.pipeline.cluster_neighbors`), each batch is followed by as many sampled
    pairs of neighbours, as a streamed batch is on one machine."""
    p = setup.params
    net = _network(setup.key, setup.specs, DTYPES[setup.dtype], setup.groups, p.dropout)
    net.theta[...] = theta
    optimizer = make_optimizer(p.optimizer, net.theta.size, net.dtype, turn.lr, p.nesterov)
    if state is not None:
        vars(optimizer).update(state)
    settings = replace(p, lr=turn.lr, schedule=ScheduleKind.NONE, batch_size=turn.batch)
    batches = replica_batches(parts, rows, turn.batch, turn)
    source = batches if pairs is None else with_pairs(batches, *pairs, NeighborTerm(WEIGHT))
    rng = np.random.default_rng([turn.seed, turn.index])
    with np.errstate(over="ignore", invalid="ignore"), ThreadTuner("steps") as steps:
        outcome = minibatch_epoch(net, optimizer, source, settings, rng, steps)(turn.epoch)
    kept = {k: v for k, v in vars(optimizer).items() if k != "scratch"}  # scratch: rebuilt
    return net.theta.copy(), outcome.train_loss * batches.rows, batches.rows, kept


class RowErrors(NamedTuple):
    """What :func:`errors` sends back from a worker."""

    errors: np.ndarray  # (n,) every row's reconstruction error
    codes: np.ndarray  # (keep, k) the first rows' codes
    moments: CodeMoments  # of every row's code
    observed: np.ndarray  # (keep,) the first rows' errors over their observed cells


def errors(held: Held, theta: np.ndarray, setup: Setup, which: str, keep: int = 0
           ) -> RowErrors:
    """Each row's reconstruction error (n,), of the training or validation rows, with the
    first ``keep`` rows' codes, the moments of all their codes, and the first ``keep`` rows'
    errors over their observed cells, as ``score`` gives them (on a worker: only these
    travel back)."""
    net = _network(setup.key, setup.specs, DTYPES[setup.dtype], setup.groups,
                   setup.params.dropout)
    net.theta[...] = theta
    held = loaded(held)
    X, imputed = (held.train, held.train_imputed) if which == "train" else (
        held.validation, held.validation_imputed)
    codes = np.empty((len(X), setup.params.latent), dtype=net.dtype)
    errs = reconstruction_mse_rows(net, X, codes=codes) if len(X) else np.zeros(0)
    moments = CodeMoments(setup.params.latent)
    moments.add(codes)
    return RowErrors(errs, codes[:keep].copy(), moments,
                     observed_errors(net, X[:keep], errs[:keep], take(imputed, slice(keep))))


def pca_errors(held: Held, mean: np.ndarray, components: np.ndarray, groups) -> np.ndarray:
    """PCA's reconstruction error of a partition's validation rows (or training rows when it
    has none), measured as the autoencoder's (on a worker)."""
    held = loaded(held)
    X = (held.validation if len(held.validation) else held.train).astype(np.float64)
    if not len(X):
        return np.zeros(0)
    centred = X - mean
    rebuilt = centred @ components.T @ components + mean
    if groups is None:
        return np.mean((rebuilt - X) ** 2, axis=1)
    return groups.row_errors(groups.normalised_(rebuilt), X)


def sampled(held: Held | Reread, which: str, count: int, seed: tuple) -> np.ndarray:
    """A uniform sample of ``count`` of a partition's training or validation rows (all when
    it has no more), in their order, drawn by ``seed`` (on a worker: only these travel)."""
    held = loaded(held)
    X = held.train if which == "train" else held.validation
    count = min(count, len(X))
    return X[np.sort(np.random.default_rng(seed).choice(len(X), size=count, replace=False))]
