"""The training loop: epochs of shuffled mini-batches, validation, early stopping.

Arrays only. Progress leaves through ``callback``; the loop never prints.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..errors import TrainingError
from .network import Network

EVAL_CHUNK = 16384  # rows per forward pass when evaluating, to bound memory


@dataclass(frozen=True)
class EpochReport:
    """What the callback receives after each epoch (``epoch`` counts from 1)."""

    epoch: int
    epochs: int
    train_loss: float
    val_loss: float | None
    best_epoch: int
    seconds: float


@dataclass
class TrainingResult:
    """Per-epoch losses and where training stopped."""

    loss_history: list[float] = field(default_factory=list)
    val_loss_history: list[float] | None = None
    best_epoch: int = 0
    stopped_early: bool = False


class LoopSettings(Protocol):
    """What the loop reads of the hyperparameters (``aecli.hyperparameters``, validated)."""

    epochs: int
    batch_size: int
    noise: float
    sparsity: float
    weight_decay: float
    patience: int | None


def reconstruction_mse_rows(network: Network, X: np.ndarray) -> np.ndarray:
    """Per-row mean squared reconstruction error of ``X`` (n, d), in chunks."""
    out = np.empty(X.shape[0], dtype=np.float64)
    for start in range(0, X.shape[0], EVAL_CHUNK):
        x = X[start : start + EVAL_CHUNK]
        diff = network.decode(network.encode(x)) - x  # (c, d)
        out[start : start + len(x)] = np.einsum("ij,ij->i", diff, diff) / X.shape[1]
    return out


def _diverged(epoch: int, value: float, lr: float) -> TrainingError:
    return TrainingError(
        f"training diverged at epoch {epoch} with lr={lr:g}: the loss became {value}",
        hint="Try a lower learning rate (--lr), scaling the data (--scale standard), "
        "or --dtype float64.",
    )


def in_memory_batches(X: np.ndarray, batch_size: int) -> Callable:
    """Epoch source over rows held in memory: a fresh permutation each epoch, each batch
    gathered into one reused buffer, so no epoch copies the data set."""
    n, d = X.shape
    bs = min(batch_size, n)
    batch = np.empty((bs, d), dtype=X.dtype)

    def epoch(rng: np.random.Generator) -> Iterator[np.ndarray]:
        order = rng.permutation(n)
        for start in range(0, n, bs):
            rows = order[start : start + bs]
            yield np.take(X, rows, axis=0, out=batch[: len(rows)])  # (b, d)

    return epoch


def chunked_batches(chunks: Callable[[], Iterable[np.ndarray]], batch_size: int) -> Callable:
    """Epoch source over rows read anew each epoch, for data larger than memory.

    ``chunks()`` yields arrays of rows; each chunk is shuffled on its own (the chunks keep
    their order), so memory holds one chunk at a time.
    """

    def epoch(rng: np.random.Generator) -> Iterator[np.ndarray]:
        for chunk in chunks():
            order = rng.permutation(len(chunk))
            for start in range(0, len(chunk), batch_size):
                yield chunk[order[start : start + batch_size]]  # (b, d)

    return epoch


# Divergence is detected below and raised as TrainingError; NumPy's overflow warnings on the
# way there would only repeat it, unasked, on stderr.
@np.errstate(over="ignore", invalid="ignore")
def train(
    network: Network,
    optimizer,
    X_train: np.ndarray | Callable,
    X_val: np.ndarray | None,
    settings: LoopSettings,
    rng: np.random.Generator,
    callback: Callable[[EpochReport], None] | None = None,
) -> TrainingResult:
    """Train ``network`` in place on ``X_train``; ``X_val`` monitors early stopping.

    ``X_train`` is an array (n, d) or an epoch source (see :func:`chunked_batches`): a
    callable taking the generator and yielding the batches of one epoch. With
    ``settings.patience`` set, training stops after that many epochs without improvement of
    the monitored loss (validation if given, else training) and the best weights are
    restored. A non-finite loss raises :class:`TrainingError` at once.
    """
    if isinstance(X_train, np.ndarray):
        X_train = in_memory_batches(X_train, settings.batch_size)
    noise_scale = network.dtype.type(settings.noise)
    result = TrainingResult(val_loss_history=[] if X_val is not None else None)
    best, best_theta, waited = math.inf, network.theta.copy(), 0
    for epoch in range(1, settings.epochs + 1):
        started = time.perf_counter()
        total, n = 0.0, 0
        for xb in X_train(rng):
            x_in = xb
            if settings.noise > 0:
                x_in = xb + noise_scale * rng.standard_normal(xb.shape, dtype=network.dtype)
            rec, objective = network.loss_and_grad(
                x_in, xb, settings.sparsity, settings.weight_decay, rng
            )
            if not math.isfinite(objective):
                raise _diverged(epoch, objective, optimizer.lr)
            optimizer.step(network.theta, network.grad)
            total += rec * len(xb)
            n += len(xb)
        train_loss = total / max(n, 1)
        val_loss = None
        if X_val is not None:
            val_loss = float(reconstruction_mse_rows(network, X_val).mean())
            if not math.isfinite(val_loss):
                raise _diverged(epoch, val_loss, optimizer.lr)
            result.val_loss_history.append(val_loss)
        result.loss_history.append(train_loss)
        monitored = val_loss if val_loss is not None else train_loss
        if monitored < best:
            best, waited, result.best_epoch = monitored, 0, epoch
            np.copyto(best_theta, network.theta)
        else:
            waited += 1
        if callback is not None:
            callback(
                EpochReport(epoch, settings.epochs, train_loss, val_loss, result.best_epoch,
                            time.perf_counter() - started)
            )
        if settings.patience is not None and waited >= settings.patience:
            result.stopped_early = True
            break
    if settings.patience is not None:
        np.copyto(network.theta, best_theta)
    if not np.isfinite(network.theta).all():
        raise _diverged(len(result.loss_history), math.nan, optimizer.lr)
    return result
