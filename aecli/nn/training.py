"""The training loops: epochs of shuffled mini-batches (Adam and the other first-order
optimizers), or full-batch L-BFGS iterations; validation, early stopping, the stop reason.

Arrays only. Progress leaves through ``callback``; the loops never print.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import numpy as np

from ..blas_threads import ThreadTuner
from ..errors import TrainingError
from .lbfgs import LBFGS
from .network import Network
from .schedules import ScheduleKind, lr_factor
from .trimmed import trimmed_mean

EVAL_CHUNK = 16384  # rows per forward pass when evaluating, to bound memory


@dataclass(frozen=True)
class EpochReport:
    """What the callback receives after each epoch (``epoch`` counts from 1); ``phase`` says
    which model trains: "" for the model itself, "calibration 1/5" and so on for the models
    whose out-of-fold scores calibrate its threshold."""

    epoch: int
    epochs: int
    train_loss: float
    val_loss: float | None
    best_epoch: int
    seconds: float
    phase: str = ""


class StopReason(StrEnum):
    """Why training ended."""

    BUDGET = "budget"  # every epoch of the budget ran
    PLATEAU = "plateau"  # the monitored loss stopped improving for `patience` epochs
    CONVERGED = "converged"  # L-BFGS: no step decreases the objective any more


@dataclass
class TrainingResult:
    """Per-epoch losses and where and why training stopped."""

    loss_history: list[float] = field(default_factory=list)
    val_loss_history: list[float] | None = None
    best_epoch: int = 0
    stop_reason: StopReason = StopReason.BUDGET

    @property
    def stopped_early(self) -> bool:
        """Whether training ended before its budget."""
        return self.stop_reason is not StopReason.BUDGET


class LoopSettings(Protocol):
    """What the loop reads of the hyperparameters (``aecli.hyperparameters``, validated)."""

    epochs: int
    batch_size: int
    lr: float
    schedule: ScheduleKind
    noise: float
    sparsity: float
    weight_decay: float
    trim: float
    patience: int | None
    tol: float


def reconstruction_mse_rows(network: Network, X: np.ndarray, row_exact: bool = True,
                            tuner: ThreadTuner | None = None,
                            codes: np.ndarray | None = None) -> np.ndarray:
    """Per-row mean squared reconstruction error of ``X`` (n, d) (``row_exact``: see
    :meth:`Network.encode`), with BLAS threads chosen by ``tuner`` or, without one, by a
    tuner of its own; ``codes`` (n, latent), when given, receives the rows' codes."""
    if tuner is not None:
        return network.reconstruction_errors(X, row_exact=row_exact, tuner=tuner, codes=codes)
    with ThreadTuner("inference") as own:
        return network.reconstruction_errors(X, row_exact=row_exact, tuner=own, codes=codes)


def diverged(epoch: int, value: float, lr: float) -> TrainingError:
    """The error of a training run whose loss became ``value`` (NaN or infinite)."""
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

    epoch.batches = -(-n // bs)  # known in advance, for the learning-rate schedule
    return epoch


SHUFFLE_BUFFER_BYTES = 128 << 20  # rows held to mix a streamed file's order


def chunked_batches(chunks: Callable[[], Iterable[np.ndarray]], batch_size: int,
                    buffer_bytes: int = SHUFFLE_BUFFER_BYTES) -> Callable:
    """Epoch source over rows read anew each epoch, for data larger than memory.

    ``chunks()`` yields arrays of rows in the file's order, which may be sorted (by date, by
    customer): shuffling each chunk alone would train on one part of the file after another.
    The rows pass through a shuffle buffer instead (as ``tf.data``'s): it holds up to
    ``buffer_bytes`` of rows (at least two chunks' worth); once full, each arriving row takes
    the place of one drawn at random, and the rows drawn go out in batches. A table that fits
    the buffer is shuffled whole, as in memory; a larger one is mixed across the buffer's
    span of the file. Memory holds the buffer and one chunk. After a whole epoch, the
    source's ``rows`` says how many rows it held.
    """

    def epoch(rng: np.random.Generator) -> Iterator[np.ndarray]:
        buffer, held, carry, seen = None, 0, None, 0
        for chunk in chunks():
            m = len(chunk)
            seen += m
            if buffer is None:
                rows = max(2 * m, buffer_bytes // max(chunk[0].nbytes, 1))
                buffer = np.empty((rows, chunk.shape[1]), dtype=chunk.dtype)  # (S, d)
            if m > len(buffer) - held:  # full: draw rows out to make room
                out = min(held + m - len(buffer), held)
                drawn = rng.choice(held, size=out, replace=False)
                carry = yield from _batches(buffer[drawn], carry, batch_size)
                buffer[drawn] = chunk[:out]
                chunk = chunk[out:]
                extra = len(chunk) - (len(buffer) - held)  # a chunk larger than the buffer
                if extra > 0:
                    carry = yield from _batches(chunk[rng.permutation(extra)], carry,
                                                batch_size)
                    chunk = chunk[extra:]
            buffer[held : held + len(chunk)] = chunk
            held += len(chunk)
        if buffer is not None:
            rest = buffer[:held][rng.permutation(held)]
            carry = yield from _batches(rest, carry, batch_size)
        if carry is not None and len(carry):
            yield carry
        epoch.rows = seen

    epoch.rows = None  # not known before the first epoch
    return epoch


def _batches(rows: np.ndarray, carry: np.ndarray | None, batch_size: int):
    """Yield full batches of ``carry`` then ``rows``; return the rows left over."""
    if carry is not None and len(carry):
        rows = np.concatenate([carry, rows])
    full = len(rows) // batch_size * batch_size
    for start in range(0, full, batch_size):
        yield rows[start : start + batch_size]  # (b, d)
    return rows[full:].copy()


def held_out_loss(network: Network, X_val: np.ndarray | None, tuner: ThreadTuner
                  ) -> Callable[[], float] | None:
    """The validation loss of ``network``'s current weights on rows in memory ``X_val``
    (None without them): the trimmed mean of the rows' errors, so that a few extreme
    validation rows do not pick the best epoch; BLAS threads from ``tuner``."""
    if X_val is None:
        return None
    return lambda: trimmed_mean(reconstruction_mse_rows(network, X_val, False, tuner))


class Monitor:
    """The end of every epoch, whatever the optimizer or wherever the rows are (in memory,
    streamed, on a cluster): the validation loss, the histories, the best weights, patience
    on a plateau, and the callback.

    ``validation_loss()`` gives the loss of the network's current weights on the held-out
    rows (None: no held-out rows; the training loss is monitored); ``patience`` None never
    stops early.
    """

    def __init__(self, network: Network, settings: LoopSettings,
                 callback: Callable[[EpochReport], None] | None = None,
                 patience: int | None = None,
                 validation_loss: Callable[[], float] | None = None):
        self.network, self.settings, self.callback = network, settings, callback
        self.validation_loss = validation_loss
        self.patience = patience
        self.result = TrainingResult(val_loss_history=[] if validation_loss is not None
                                     else None)
        self.best, self.best_theta, self.waited = math.inf, network.theta.copy(), 0
        self.started = time.perf_counter()

    def end_epoch(self, epoch: int, train_loss: float) -> bool:
        """Record an epoch; True when patience has run out."""
        s, result = self.settings, self.result
        val_loss = None
        if self.validation_loss is not None:
            val_loss = float(self.validation_loss())
            if not math.isfinite(val_loss):
                raise diverged(epoch, val_loss, s.lr)
            result.val_loss_history.append(val_loss)
        result.loss_history.append(train_loss)
        monitored = val_loss if val_loss is not None else train_loss
        # Patience runs out on a plateau: improvements smaller than tol (relative) count as
        # none, as in scikit-learn's MLP; the best weights are kept all the same.
        improved = not math.isfinite(self.best) or monitored < self.best - s.tol * abs(self.best)
        self.waited = 0 if improved else self.waited + 1
        if monitored < self.best:
            self.best, result.best_epoch = monitored, epoch
            np.copyto(self.best_theta, self.network.theta)
        if self.callback is not None:
            self.callback(EpochReport(epoch, s.epochs, train_loss, val_loss, result.best_epoch,
                                      time.perf_counter() - self.started))
        self.started = time.perf_counter()
        if self.patience is not None and self.waited >= self.patience:
            result.stop_reason = StopReason.PLATEAU
            return True
        return False

    def finish(self) -> TrainingResult:
        """Restore the best weights (with patience) and check the weights are finite."""
        if self.patience is not None:
            np.copyto(self.network.theta, self.best_theta)
        if not np.isfinite(self.network.theta).all():
            raise diverged(len(self.result.loss_history), math.nan, self.settings.lr)
        return self.result


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
    """Train ``network`` in place on mini-batches of ``X_train``; ``X_val`` monitors early
    stopping.

    ``X_train`` is an array (n, d) or an epoch source (see :func:`chunked_batches`): a
    callable taking the generator and yielding the batches of one epoch. The learning rate
    follows ``settings.schedule`` over the whole budget. With ``settings.patience`` set,
    training stops after that many epochs without improvement of the monitored loss
    (validation if given, its trimmed mean: :mod:`aecli.nn.trimmed`; else training) and the
    best weights are restored. A non-finite loss
    raises :class:`TrainingError` at once.
    """
    if isinstance(X_train, np.ndarray):
        X_train = in_memory_batches(X_train, settings.batch_size)
    with ThreadTuner("steps") as steps, ThreadTuner("inference") as checks:
        monitor = Monitor(network, settings, callback, settings.patience,
                          held_out_loss(network, X_val, checks))
        _epochs(network, optimizer, X_train, settings, rng, monitor, steps)
        return monitor.finish()


def _epochs(network: Network, optimizer, X_train: Callable, settings: LoopSettings,
            rng: np.random.Generator, monitor: Monitor, steps: ThreadTuner) -> None:
    """The mini-batch epochs of :func:`train`, each step a unit of ``steps``."""
    noise_scale = network.dtype.type(settings.noise)
    batches = getattr(X_train, "batches", None)  # per epoch; counted in the first when unknown
    for epoch in range(1, settings.epochs + 1):
        total, n, i = 0.0, 0, 0
        for i, xb in enumerate(X_train(rng)):
            steps.tick(len(xb))
            within = i / batches if batches else 0.0
            optimizer.lr = settings.lr * lr_factor(settings.schedule,
                                                   (epoch - 1 + within) / settings.epochs)
            x_in = xb
            if settings.noise > 0:
                x_in = xb + noise_scale * rng.standard_normal(xb.shape, dtype=network.dtype)
            rec, objective = network.loss_and_grad(
                x_in, xb, settings.sparsity, settings.weight_decay, rng,
                settings.trim if epoch > 1 else 0.0,  # from the second epoch: see trim_rows
            )
            if not math.isfinite(objective):
                raise diverged(epoch, objective, settings.lr)
            optimizer.step(network.theta, network.grad)
            total += rec * len(xb)
            n += len(xb)
        steps.pause()
        batches = batches or i + 1
        if monitor.end_epoch(epoch, total / max(n, 1)):
            return


@np.errstate(over="ignore", invalid="ignore")
def train_full_batch(
    network: Network,
    X_train: np.ndarray,
    X_val: np.ndarray | None,
    settings: LoopSettings,
    callback: Callable[[EpochReport], None] | None = None,
) -> TrainingResult:
    """Train ``network`` in place with full-batch L-BFGS (:mod:`aecli.nn.lbfgs`), one
    iteration per epoch, until it converges or the budget runs out (``patience`` does not
    apply: see below).

    The objective must be deterministic: no dropout, no input noise. It is summed over blocks
    of rows, so memory does not grow with the training set.
    """
    n = len(X_train)
    grad = np.zeros_like(network.theta)
    reconstruction = [0.0]

    def objective() -> tuple[float, np.ndarray]:
        grad[...] = 0
        total, rec_total = 0.0, 0.0
        for start in range(0, n, EVAL_CHUNK):
            x = X_train[start : start + EVAL_CHUNK]
            blocks.tick(len(x))
            rec, value = network.loss_and_grad(x, x, settings.sparsity, settings.weight_decay)
            weight = len(x) / n  # each block's mean, weighted: the mean over every row
            grad[...] += network.dtype.type(weight) * network.grad
            total, rec_total = total + weight * value, rec_total + weight * rec
        blocks.pause()
        reconstruction[0] = rec_total
        return total, grad

    with ThreadTuner("steps") as blocks, ThreadTuner("inference") as checks:
        solver = LBFGS(network.theta, objective)
        # No patience: the validation loss of a quasi-Newton fit can stall for many
        # iterations before the next gain, and a deterministic fit ends on its own when it
        # converges.
        monitor = Monitor(network, settings, callback, None,
                          held_out_loss(network, X_val, checks))
        # changes below this are rounding (float32), or too small to matter (float64)
        ftol = max(10 * float(np.finfo(network.dtype).eps), 1e-12)
        for epoch in range(1, settings.epochs + 1):
            before = solver.value
            moved = solver.step()
            if not math.isfinite(solver.value):
                raise diverged(epoch, solver.value, settings.lr)
            if monitor.end_epoch(epoch, reconstruction[0]):
                break
            if not moved or before - solver.value <= ftol * max(abs(before), 1e-30):
                monitor.result.stop_reason = StopReason.CONVERGED
                break
        return monitor.finish()
