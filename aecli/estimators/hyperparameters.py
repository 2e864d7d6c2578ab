"""The autoencoder's hyperparameters, declared once.

:class:`Hyperparameters` is the one list of training settings: each field's name, default,
help text and allowed values. The estimator's signature and docstring, its argument checks,
the training loop's settings and the command line's training options are all derived from it
(``estimators.autoencoder``, ``nn.training``, ``cli.training_options``). What is left open
here, ``optimizer="auto"``, ``validation=None`` and ``epochs=None``, is decided for the data
by :meth:`Hyperparameters.resolved`.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import Any

from ..errors import InvalidParameterError
from ..nn import ActivationKind, OptimizerKind
from ..nn.schedules import ScheduleKind
from .checks import check_choice, check_float, check_int
from .scoring import ScoreBy


class DType(StrEnum):
    """Float precision of the network."""

    FLOAT32 = "float32"
    FLOAT64 = "float64"


# The training budget when epochs is None (see Hyperparameters.resolved).
STEP_BUDGET = 2500  # mini-batch steps: the sample tables converge within it (docs/training.md)
MIN_EPOCHS, MAX_EPOCHS = 10, 1000  # the budget's bounds, for large and tiny tables
# With neighbours (bench/README.md, neighbours): the codes keep neighbours better up to about
# 10,000 steps, and a tiny table may run more epochs to reach them.
NEIGHBOR_STEPS, NEIGHBOR_EPOCHS = 10_000, 1000
# The encoder's layers that hidden="auto" (the default) stands for: without and with neighbours
# (bench/README.md, neighbours: the deeper, wider encoder places new rows among their
# neighbours' codes as UMAP does, where (64, 32) fits the training rows' only).
DEFAULT_HIDDEN = (64, 32)
NEIGHBOR_HIDDEN = (128, 64, 64, 32)
LBFGS_ITERATIONS = 1000  # full-batch iterations; most fits converge well before
VALIDATION = 0.1  # the fraction held out when validation is None and the optimizer is not lbfgs

# Bounds on the settings that size memory, checked before anything is allocated: a mistyped
# --hidden 99999999 or -k 1-99999999999 is a usage error, not a MemoryError minutes later.
# Far above any useful setting for tabular data, yet each fits in a laptop's memory.
MAX_WIDTH = 65_536  # units in one layer: -k and each --hidden size
MAX_BATCH = 1_048_576  # rows per update (--batch-size)
MAX_NEIGHBORS = 1000  # neighbours per row (--neighbors): UMAP's useful range is 5 to 200
MAX_WEIGHTS = 100_000_000  # weights of the whole network: 400 MB in float32, before the
# optimizer's state (Adam keeps two more copies)


@dataclass(frozen=True)
class Allowed:
    """What a hyperparameter accepts, and how to describe it.

    ``low``/``high`` bound a number (``*_open`` excludes the bound itself); ``choices`` is the
    enum of a named choice; ``optional`` admits None; ``cli_off`` is the command-line number
    that stands for None (``--patience 0``), ``cli_none`` the word (``--epochs auto``);
    ``short`` is an extra short flag (``-k``).
    """

    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: type[StrEnum] | None = None
    optional: bool = False
    cli_off: Any = None
    cli_none: str | None = None
    short: str | None = None


def _param(default, help: str, **allowed):
    return field(default=default, metadata={"allowed": Allowed(help, **allowed)})


@dataclass(frozen=True)
class Hyperparameters:
    """Every setting of an autoencoder and its training, with its default."""

    latent: int = _param(2, "Size k of the code.", low=1, high=MAX_WIDTH, short="-k")
    hidden: tuple[int, ...] | str = _param(
        "auto", "Encoder layer sizes between input and code; the decoder mirrors "
        "them. None for a network without hidden layers (with linear activations, PCA's "
        f"equal). 'auto' stands for {DEFAULT_HIDDEN}, or {NEIGHBOR_HIDDEN} with neighbors.")
    activation: str = _param("elu", "Activation of the hidden layers.", choices=ActivationKind)
    latent_activation: str = _param("linear", "Activation of the code layer.",
                                    choices=ActivationKind)
    output_activation: str = _param("linear", "Activation of the output layer.",
                                    choices=ActivationKind)
    tied: bool = _param(False, "Decoder weights are the encoder's transposed (half the "
                        "weights).")
    epochs: int | None = _param(None, "Passes over the data (for lbfgs, iterations). None: "
                                "a budget that adapts to the data, about "
                                f"{STEP_BUDGET:,} optimizer steps, {MIN_EPOCHS} to "
                                f"{MAX_EPOCHS} epochs; {LBFGS_ITERATIONS} for lbfgs.",
                                low=1, optional=True, cli_none="auto")
    batch_size: int = _param(64, "Rows per update.", low=1, high=MAX_BATCH)
    lr: float = _param(3e-3, "Learning rate (the peak, under a schedule).", low=0.0,
                       high=math.inf, low_open=True)
    schedule: str = _param("cosine", "How the learning rate changes over the epochs: none "
                           "(constant), cosine or linear decay to zero by the last epoch, or "
                           "onecycle (warm-up, then decay).", choices=ScheduleKind)
    optimizer: str = _param("auto", "Optimizer; auto is full-batch lbfgs for a linear network "
                            "(it reaches PCA's error where Adam stops short) and adam "
                            "otherwise.", choices=OptimizerKind)
    nesterov: bool = _param(False, "Nesterov's look-ahead, with the momentum optimizer.")
    weight_decay: float = _param(0.0, "L2 penalty weight_decay/2 * sum W**2 on the weights "
                                 "(not the biases).", low=0.0, high=1e3)
    dropout: float = _param(0.0, "Inverted-dropout rate on the hidden layers.", low=0.0,
                            high=1.0, high_open=True)
    noise: float = _param(0.0, "Standard deviation of Gaussian noise added to the input "
                          "while training (a denoising autoencoder; the target stays clean).",
                          low=0.0, high=1e3)
    sparsity: float = _param(0.0, "L1 penalty on the code: sparsity * mean over rows of "
                             "sum |z|.", low=0.0, high=1e3)
    trim: float = _param(0.0, "Share of each mini-batch's worst-reconstructed rows left out of "
                         "the gradient from the second epoch on (a trimmed loss: rows that "
                         "fit badly, anomalies among them, do not bend the model to them).",
                         low=0.0, high=0.5, high_open=True)
    neighbors: int = _param(0, "Also train the encoder to keep each row's this many nearest "
                            "training rows near in the code, as parametric UMAP does (UMAP's "
                            "fuzzy-set cross-entropy on the rows' kNN graph, beside the "
                            "reconstruction); 0: off. Encoding stays a function of the row. "
                            "With neighbours, epochs=None (auto) is about 10,000 steps and "
                            "patience does not apply.",
                            low=0, high=MAX_NEIGHBORS)
    validation: float | None = _param(
        None, "Fraction of rows held out to monitor training and stop it on a plateau (0 for "
        f"none). None: {VALIDATION} with a mini-batch optimizer, none for lbfgs, which stops "
        "when it converges.", low=0.0, high=0.9, optional=True, cli_none="auto")
    patience: int | None = _param(20, "Stop after this many epochs without improvement (by "
                                  "more than tol) and restore the best weights (None, or 0 on "
                                  "the command line: train every epoch).", low=1,
                                  optional=True, cli_off=0)
    tol: float = _param(1e-4, "Improvements of the monitored loss smaller than this "
                        "fraction count as none for patience.", low=0.0, high=1.0)
    contamination: float = _param(0.01, "Expected fraction of anomalies: the score threshold "
                                  "is this upper quantile of the calibration scores.",
                                  low=0.0, high=0.5, low_open=True)
    score_by: str = _param("auto", "What a row's anomaly score is made of: error+code, "
                           "its reconstruction error plus its code's distance from the "
                           "training rows' codes (Hotelling's T², weighted so that a row at "
                           "the 99th percentile of the training rows' T² adds their 99th "
                           "percentile error; it also finds rows the network learned to "
                           "reconstruct); error, the error alone; auto, error otherwise and "
                           "when every column is numeric error+code combined with the "
                           "column tails and the row and code neighbours (from a sample of "
                           "the rows when streamed or on a cluster), each a p-value, by "
                           "Fisher's method (docs/scores.md).", choices=ScoreBy)
    seed: int | None = _param(0, "Seed of the one random generator used for the split, "
                              "initialisation, shuffling, dropout and noise.", low=0,
                              optional=True)
    dtype: str = _param("float32", "Float precision of the network.", choices=DType)

    def checked(self, n_features: int | None = None) -> Hyperparameters:
        """These settings validated, with choices as enums, ``hidden`` as a tuple of Python
        ints (``"auto"`` decided by whether there are neighbours) and ``latent`` at most
        ``n_features`` (when given).

        Raises
        ------
        InvalidParameterError
            The message quotes the value and what is allowed.
        """
        values = {f.name: _check(f.name, getattr(self, f.name), f.metadata["allowed"])
                  for f in fields(self) if f.name != "hidden"}
        # sizes given are kept as given, even (64, 32) with neighbours
        values["hidden"] = (_check_hidden(self.hidden) if not _is_auto(self.hidden) else
                            NEIGHBOR_HIDDEN if values["neighbors"] else DEFAULT_HIDDEN)
        if n_features is not None and values["latent"] > n_features:
            raise InvalidParameterError(
                f"latent={values['latent']} is larger than the number of features "
                f"(n_features = {n_features}); choose latent <= {n_features}"
            )
        if n_features is not None:
            _check_weights(n_features, values["hidden"], values["latent"], values["tied"])
        return replace(self, **values)

    def is_linear(self) -> bool:
        """Whether the network is linear: every activation it uses is the identity."""
        used = [self.latent_activation, self.output_activation]
        if self.hidden:
            used.append(self.activation)
        return all(ActivationKind(a) is ActivationKind.LINEAR for a in used)

    def resolved(self, n_rows: int, streamed: bool = False) -> Hyperparameters:
        """Checked settings with ``optimizer="auto"``, ``validation=None`` and
        ``epochs=None`` decided for ``n_rows`` rows, validation rows included (``streamed``:
        read anew each epoch, so no full-batch optimizer).

        Raises
        ------
        InvalidParameterError
            lbfgs asked for where it cannot run: with dropout or noise (its objective must be
            deterministic) or on streamed rows.
        """
        p = self.checked()
        optimizer = p.optimizer
        if optimizer is OptimizerKind.AUTO:
            full_batch = p.is_linear() and not (p.dropout or p.noise or p.neighbors
                                                or streamed)
            optimizer = OptimizerKind.LBFGS if full_batch else OptimizerKind.ADAM
        elif optimizer is OptimizerKind.LBFGS and (p.dropout or p.noise or p.neighbors
                                                   or streamed):
            why = "rows streamed from a file" if streamed else \
                "dropout, input noise or sampled neighbours"
            raise InvalidParameterError(
                f"optimizer='lbfgs' needs a deterministic objective over rows in memory, not "
                f"{why}", hint="use optimizer='adam' (--optimizer adam)")
        validation = p.validation
        if validation is None:
            validation = 0.0 if optimizer is OptimizerKind.LBFGS else VALIDATION
        epochs = p.epochs
        if epochs is None and optimizer is OptimizerKind.LBFGS:
            epochs = LBFGS_ITERATIONS
        elif epochs is None:
            n_train = n_rows - int(round(n_rows * validation))
            steps_per_epoch = -(-max(n_train, 1) // p.batch_size)
            budget, most = (NEIGHBOR_STEPS, NEIGHBOR_EPOCHS) if p.neighbors else \
                (STEP_BUDGET, MAX_EPOCHS)
            epochs = min(max(-(-budget // steps_per_epoch), MIN_EPOCHS), most)
        # With neighbours the held-out rows measure the reconstruction only, not the
        # neighbour term: stopping on them, and restoring their best epoch's weights, would
        # undo the neighbour training, so the budget runs whole.
        patience = None if p.neighbors else p.patience
        return replace(p, optimizer=optimizer, validation=validation, epochs=epochs,
                       patience=patience)

    @classmethod
    def allowed(cls, name: str) -> Allowed:
        """What the hyperparameter ``name`` accepts."""
        return _FIELDS[name].metadata["allowed"]

    @classmethod
    def signature(cls) -> inspect.Signature:
        """Keyword-only parameters with their defaults: the estimator's ``__init__``."""
        return inspect.Signature(
            [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
            + [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default)
               for f in fields(cls)])

    @classmethod
    def numpydoc(cls) -> str:
        """The numpydoc ``Parameters`` entries, from each field's help."""
        lines = []
        for f in fields(cls):
            allowed = f.metadata["allowed"]
            kind = "str" if allowed.choices else f.type
            lines.append(f"{f.name} : {kind}, default={f.default!r}")
            text = allowed.help
            if allowed.choices:
                text += " One of: " + ", ".join(m.value for m in allowed.choices) + "."
            lines.append(f"    {text}")
        return "\n".join(lines)


_FIELDS = {f.name: f for f in fields(Hyperparameters)}


def _check(name: str, value, allowed: Allowed):
    if value is None and allowed.optional:
        return None
    if allowed.choices is not None:
        return check_choice(name, value, allowed.choices)
    kind = _FIELDS[name].type
    if kind == "bool":
        return bool(value)
    if kind.startswith("int"):
        high = None if allowed.high is None else int(allowed.high)
        return check_int(name, value, int(allowed.low), high)
    return check_float(name, value, allowed.low, allowed.high, low_open=allowed.low_open,
                       high_open=allowed.high_open)


def _is_auto(hidden) -> bool:
    return isinstance(hidden, str) and hidden == "auto"


def _check_hidden(hidden) -> tuple[int, ...]:
    sizes = (hidden,) if isinstance(hidden, int) else tuple(hidden or ())
    # As Python ints: NumPy ints (a grid from np.arange) would reach the JSON in the model file.
    return tuple(check_int("each hidden layer size", size, 1, MAX_WIDTH) for size in sizes)


def _check_weights(n_features: int, hidden: tuple[int, ...], latent: int, tied: bool) -> None:
    """Refuse a network with more than ``MAX_WEIGHTS`` weights before it is allocated."""
    sizes = [n_features, *hidden, latent]
    weights = sum(a * b for a, b in zip(sizes, sizes[1:], strict=False)) * (1 if tied else 2)
    if weights > MAX_WEIGHTS:
        raise InvalidParameterError(
            f"a network of {' -> '.join(map(str, sizes))} (and back) has {weights:,} weights, "
            f"more than the {MAX_WEIGHTS:,} aecli allows",
            hint="choose smaller --hidden sizes (e.g. 64,32)")


def check_latent_below(latent: int, n_features: int, why: str = "the model would learn "
                       "nothing, and its anomaly scores would mean nothing",
                       example: str | None = None) -> None:
    """Refuse a code ``latent`` (``-k``) at least as wide as the ``n_features`` columns it
    encodes: such a code can copy the row, so ``why``. ``example``: a ``-k`` value to
    suggest (default: half the features).

    Raises
    ------
    InvalidParameterError
        In the terms of ``-k``, with a k that works.
    """
    if latent < n_features:
        return
    if n_features < 2:
        raise InvalidParameterError(
            f"k={latent} needs more than {n_features} feature column: a code must be narrower "
            "than the row", hint="use more columns (see --columns and the roles printed)")
    raise InvalidParameterError(
        f"k={latent} is not smaller than the number of features ({n_features}): a code as "
        f"wide as the row can copy it, so {why}",
        hint=f"choose k below {n_features}, e.g. -k {example or max(n_features // 2, 1)}")
