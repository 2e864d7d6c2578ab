"""The work on each partition's prepared rows during cluster training, on the workers: the
rows through the one preparation path, held in worker memory or read anew each time; their
Gram matrix for PCA; one local epoch of the optimizer from the averaged weights; the rows'
errors and codes, of which only small figures travel back to the client.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..errors import naming_input
from ..estimators import Hyperparameters
from ..estimators.finish import DTYPES
from ..estimators.rows import held_out
from ..estimators.scoring import CodeMoments
from ..nn import Network, make_optimizer
from ..nn.schedules import ScheduleKind
from ..nn.training import reconstruction_mse_rows, train
from ..preprocessing import Preparation, Roles
from .cluster_survey import partition_rows
from .sources import DataOptions


@dataclass
class Held:
    """A partition's prepared rows, kept in a worker's memory."""

    train: np.ndarray
    validation: np.ndarray


def prepare_partition(path: str, reading: DataOptions, roles: Roles, prep: Preparation,
                      fraction: float, seed: int, first_row: int) -> Held:
    """A partition through the one preparation path, split as the survey split it."""
    raw = partition_rows(path, reading, roles)
    with naming_input(path):
        prepared = prep.transform(raw, first_row)
    val = held_out(seed, fraction, first_row, len(raw))
    val = val if prepared.keep is None else val[prepared.keep]
    return Held(np.ascontiguousarray(prepared.X[~val]), np.ascontiguousarray(prepared.X[val]))


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


def _rows(held: Held | Reread) -> Held:
    return held if isinstance(held, Held) else held.load()


# Prepared rows are kept in worker memory while they take at most this share of it.
MEMORY_SHARE = 0.5


def gram(held: Held | Reread) -> tuple[int, np.ndarray, np.ndarray]:
    """Rows, column sums and Gram matrix of a partition's training rows (float64)."""
    X = _rows(held).train.astype(np.float64)
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


def local_epoch(held: Held, theta: np.ndarray, setup: Setup, lr: float, seed: int,
                state: dict | None) -> tuple[np.ndarray, float, int, dict | None]:
    """One epoch of the optimizer over a partition's training rows from ``theta``: the
    weights it ends at, its summed training error, its rows, and the optimizer's state (its
    moments), which the client keeps for the partition's next epoch. The state travels with
    the task rather than staying on a worker, so the result does not depend on which worker
    runs which partition."""
    p = setup.params
    held = _rows(held)
    net = _network(setup.key, setup.specs, DTYPES[setup.dtype], setup.groups, p.dropout)
    if len(held.train) == 0:
        return theta, 0.0, 0, state
    net.theta[...] = theta
    optimizer = make_optimizer(p.optimizer, net.theta.size, net.dtype, lr, p.nesterov)
    if state is not None:
        vars(optimizer).update(state)
    settings = replace(p, epochs=1, lr=lr, schedule=ScheduleKind.NONE, patience=None)
    result = train(net, optimizer, held.train, None, settings, np.random.default_rng(seed))
    kept = {k: v for k, v in vars(optimizer).items() if k != "scratch"}  # scratch: rebuilt
    return net.theta.copy(), result.loss_history[0] * len(held.train), len(held.train), kept


def errors(held: Held, theta: np.ndarray, setup: Setup, which: str, keep: int = 0
           ) -> tuple[np.ndarray, np.ndarray, CodeMoments]:
    """Each row's reconstruction error (n,), of the training or validation rows, with the
    first ``keep`` rows' codes and the moments of all their codes (on a worker: only these
    travel back)."""
    net = _network(setup.key, setup.specs, DTYPES[setup.dtype], setup.groups,
                   setup.params.dropout)
    net.theta[...] = theta
    held = _rows(held)
    X = held.train if which == "train" else held.validation
    codes = np.empty((len(X), setup.params.latent), dtype=net.dtype)
    errs = reconstruction_mse_rows(net, X, codes=codes) if len(X) else np.zeros(0)
    moments = CodeMoments(setup.params.latent)
    moments.add(codes)
    return errs, codes[:keep].copy(), moments


def pca_errors(held: Held, mean: np.ndarray, components: np.ndarray, groups) -> np.ndarray:
    """PCA's reconstruction error of a partition's validation rows (or training rows when it
    has none), measured as the autoencoder's (on a worker)."""
    held = _rows(held)
    X = (held.validation if len(held.validation) else held.train).astype(np.float64)
    if not len(X):
        return np.zeros(0)
    centred = X - mean
    rebuilt = centred @ components.T @ components + mean
    if groups is None:
        return np.mean((rebuilt - X) ** 2, axis=1)
    return groups.row_errors(groups.normalised_(rebuilt), X)
