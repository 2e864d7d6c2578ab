"""The one exception family aecli raises for expected failures.

The library raises these; the CLI catches ``AecliError`` in one place and turns it into a
message and an exit code (``exit_code``). Anything else escaping is a bug and keeps its
traceback (shown to users only with ``--debug``).

Parameter and data errors also subclass ``ValueError`` so that scikit-learn's tooling, which
expects ``ValueError`` for bad input, treats them as it treats its own.
"""

from __future__ import annotations

from contextlib import contextmanager

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class AecliError(Exception):
    """Base class of every expected aecli failure.

    Parameters
    ----------
    message : str
        What went wrong and where.
    hint : str, optional
        What the user can do about it.
    """

    exit_code = EXIT_USAGE

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


class InvalidParameterError(AecliError, ValueError):
    """A parameter has a value outside its allowed range or set."""


class DataError(AecliError, ValueError):
    """Input data cannot be used: unreadable, empty, non-numeric, missing values, wrong columns."""


class ModelFileError(AecliError, ValueError):
    """A model file is missing, damaged, of a newer format, or not an aecli model at all."""


class NotFittedError(AecliError, ValueError, AttributeError):
    """An estimator was used before ``fit``."""


class OutputError(AecliError, OSError):
    """An output could not be written (unwritable directory, full disk)."""


class TrainingError(AecliError):
    """Training failed, e.g. the loss became NaN or infinite."""

    exit_code = EXIT_FAILED


class AnomalyFound(AecliError):
    """Rows over the anomaly threshold were found and the caller asked to fail on them."""

    exit_code = EXIT_FAILED


class DriftFound(AecliError):
    """A batch differs from the training data and the caller asked to fail on it
    (``aecli drift --fail-on-drift``)."""

    exit_code = EXIT_FAILED


@contextmanager
def naming_input(name: str):
    """Prefix the ``DataError``s raised inside with the input's name (``data.csv: ...``),
    unless they already carry it."""
    try:
        yield
    except DataError as e:
        if e.message.startswith(f"{name}: "):
            raise
        raise DataError(f"{name}: {e.message}", e.hint) from None
