"""The autoencoder's hyperparameters, declared once.

:class:`Hyperparameters` is the one list of training settings: each field's name, default,
help text and allowed values. The estimator's signature and docstring, its argument checks,
the training loop's settings and the command line's training options are all derived from it
(``aecli.model``, ``aecli.training``, ``aecli.cli.training_options``).
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import Any

from ..errors import InvalidParameterError
from ..nn import ActivationKind, OptimizerKind
from .checks import check_choice, check_float, check_int


class DType(StrEnum):
    """Float precision of the network."""

    FLOAT32 = "float32"
    FLOAT64 = "float64"


@dataclass(frozen=True)
class Allowed:
    """What a hyperparameter accepts, and how to describe it.

    ``low``/``high`` bound a number (``*_open`` excludes the bound itself); ``choices`` is the
    enum of a named choice; ``optional`` admits None; ``cli_off`` is the command-line value
    that stands for None (``--patience 0``); ``short`` is an extra short flag (``-k``).
    """

    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: type[StrEnum] | None = None
    optional: bool = False
    cli_off: Any = None
    short: str | None = None


def _param(default, help: str, **allowed):
    return field(default=default, metadata={"allowed": Allowed(help, **allowed)})


@dataclass(frozen=True)
class Hyperparameters:
    """Every setting of an autoencoder and its training, with its default."""

    latent: int = _param(2, "Size k of the code.", low=1, short="-k")
    hidden: tuple[int, ...] = _param(
        (64, 32), "Encoder layer sizes between input and code; the decoder mirrors them. "
        "None for a network without hidden layers (with linear activations, PCA's equal).")
    activation: str = _param("elu", "Activation of the hidden layers.", choices=ActivationKind)
    latent_activation: str = _param("linear", "Activation of the code layer.",
                                    choices=ActivationKind)
    output_activation: str = _param("linear", "Activation of the output layer.",
                                    choices=ActivationKind)
    tied: bool = _param(False, "Decoder weights are the encoder's transposed (half the "
                        "weights).")
    epochs: int = _param(100, "Passes over the data.", low=1)
    batch_size: int = _param(64, "Rows per update.", low=1)
    lr: float = _param(1e-3, "Learning rate.", low=0.0, high=math.inf, low_open=True)
    optimizer: str = _param("adam", "Optimizer.", choices=OptimizerKind)
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
    validation: float = _param(0.1, "Fraction of rows held out to monitor training (0 for "
                               "none).", low=0.0, high=0.9)
    patience: int | None = _param(None, "Stop after this many epochs without improvement and "
                                  "restore the best weights (None, or 0 on the command line: "
                                  "train every epoch).", low=1, optional=True, cli_off=0)
    contamination: float = _param(0.01, "Expected fraction of anomalies: the score threshold "
                                  "is this upper quantile of the calibration errors.",
                                  low=0.0, high=0.5, low_open=True)
    seed: int | None = _param(0, "Seed of the one random generator used for the split, "
                              "initialisation, shuffling, dropout and noise.", low=0,
                              optional=True)
    dtype: str = _param("float32", "Float precision of the network.", choices=DType)

    def checked(self, n_features: int | None = None) -> Hyperparameters:
        """These settings validated, with choices as enums, ``hidden`` as a tuple of Python
        ints and ``latent`` at most ``n_features`` (when given).

        Raises
        ------
        InvalidParameterError
            The message quotes the value and what is allowed.
        """
        values = {f.name: _check(f.name, getattr(self, f.name), f.metadata["allowed"])
                  for f in fields(self) if f.name != "hidden"}
        values["hidden"] = _check_hidden(self.hidden)
        if n_features is not None and values["latent"] > n_features:
            raise InvalidParameterError(
                f"latent={values['latent']} is larger than the number of features "
                f"(n_features = {n_features}); choose latent <= {n_features}"
            )
        return replace(self, **values)

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


def _check_hidden(hidden) -> tuple[int, ...]:
    sizes = (hidden,) if isinstance(hidden, int) else tuple(hidden or ())
    # As Python ints: NumPy ints (a grid from np.arange) would reach the JSON in the model file.
    return tuple(check_int("each hidden layer size", size, 1) for size in sizes)
