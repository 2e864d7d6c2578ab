"""The one training loop (:func:`run_epochs`) and its steps: an epoch of shuffled
mini-batches (Adam and the other first-order optimizers), or a full-batch L-BFGS iteration
(a cluster's averaged epoch is a third, in :mod:`aecli.pipeline.train_cluster`); validation,
early stopping, the stop reason.

Arrays only. Progress leaves through ``callback``; the loops never print.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import numpy as np

from ..blas_threads import ThreadTuner
from ..errors import TrainingError
from .batches import SHUFFLE_BUFFER_BYTES, chunked_batches, in_memory_batches  # noqa: F401
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
    rows: int = 0  # rows the epoch trained on (0: not counted), for a rate in rows per second


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

    def end_epoch(self, epoch: int, train_loss: float, rows: int = 0) -> bool:
        """Record an epoch (``rows``: how many it trained on); True when patience has run
        out."""
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
                                      time.perf_counter() - self.started, rows=rows))
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


@dataclass(frozen=True)
class EpochOutcome:
    """What one epoch's step hands the epoch loop: the training loss the monitor records,
    the rows it trained on, the objective checked for divergence (None: the training loss),
    and whether the optimizer has converged (L-BFGS: no step gains any more)."""

    train_loss: float
    rows: int = 0
    objective: float | None = None
    converged: bool = False


def learning_rate(settings: LoopSettings, epoch: int, within: float = 0.0) -> float:
    """The learning rate at ``within`` (0 to 1) of ``epoch``: ``settings.lr`` under
    ``settings.schedule`` over the whole budget of epochs."""
    return settings.lr * lr_factor(settings.schedule, (epoch - 1 + within) / settings.epochs)


def run_epochs(step: Callable[[int], EpochOutcome], monitor: Monitor,
               settings: LoopSettings) -> TrainingResult:
    """The one epoch loop of every way of training (as scikit-learn's MLP has one ``_fit``
    for its solvers): ``step(epoch)`` runs an epoch wherever the rows are (mini-batches in
    memory or streamed, an L-BFGS iteration, an averaged epoch on a cluster); the loop checks
    it for divergence, hands it to ``monitor`` (validation, best weights, patience, the
    callback) and stops at the budget, on a plateau, or when the optimizer has converged.
    Returns the monitor's result, the best weights restored."""
    for epoch in range(1, settings.epochs + 1):
        outcome = step(epoch)
        checked = outcome.train_loss if outcome.objective is None else outcome.objective
        if not math.isfinite(checked):
            raise diverged(epoch, checked, settings.lr)
        if monitor.end_epoch(epoch, outcome.train_loss, outcome.rows):
            break
        if outcome.converged:
            monitor.result.stop_reason = StopReason.CONVERGED
            break
    return monitor.finish()


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
        step = minibatch_epoch(network, optimizer, X_train, settings, rng, steps)
        return run_epochs(step, monitor, settings)


def minibatch_epoch(network: Network, optimizer, X_train: Callable, settings: LoopSettings,
                    rng: np.random.Generator, steps: ThreadTuner) -> Callable[[int], EpochOutcome]:
    """The step of :func:`run_epochs` for mini-batches: one epoch of ``optimizer`` over the
    batches of the epoch source ``X_train``, each batch a unit of ``steps``."""
    noise_scale = network.dtype.type(settings.noise)
    batches = getattr(X_train, "batches", None)  # per epoch; counted in the first when unknown

    def epoch_step(epoch: int) -> EpochOutcome:
        nonlocal batches
        total, n, i = 0.0, 0, 0
        for i, xb in enumerate(X_train(rng)):
            steps.tick(len(xb))
            within = i / batches if batches else 0.0
            optimizer.lr = learning_rate(settings, epoch, within)
            x_in = xb
            if settings.noise > 0:
                x_in = xb + noise_scale * rng.standard_normal(xb.shape, dtype=network.dtype)
            rec, objective = network.loss_and_grad(
                x_in, xb, settings.sparsity, settings.weight_decay, rng,
                settings.trim if epoch > 1 else 0.0,  # from the second epoch: see trim_rows
                getattr(X_train, "code_term", None),  # a term on the codes the source's
                # batches are made for (aecli.nn.neighbors)
            )
            if not math.isfinite(objective):
                raise diverged(epoch, objective, settings.lr)
            optimizer.step(network.theta, network.grad)
            total += rec * len(xb)
            n += len(xb)
        steps.pause()
        batches = batches or i + 1
        return EpochOutcome(total / max(n, 1), n)

    return epoch_step


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

        def iteration(epoch: int) -> EpochOutcome:  # one L-BFGS iteration is an epoch
            before = solver.value
            moved = solver.step()
            return EpochOutcome(reconstruction[0], n, solver.value, not moved or
                                before - solver.value <= ftol * max(abs(before), 1e-30))

        return run_epochs(iteration, monitor, settings)
