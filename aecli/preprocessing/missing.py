"""Missing values (NaN): find them, report them, and apply the ``--missing`` policy.

Infinity is not a missing value: it is always an error (see :func:`reject_infinite`).
Row numbers in messages are 1-based data rows (the header is not counted) plus ``row_offset``,
the number of rows before ``X`` when data arrive in batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from ..errors import DataError, InvalidParameterError
from ..estimators import checks as v
from ..estimators.base import ParamsMixin
from ._arrays import (
    MAX_ROWS_SHOWN,
    AllowsNaN,
    as_float_2d,
    column_label,
    reject_infinite,
    row_list,
    row_numbers,
)

__all__ = [
    "ColumnMissing",
    "Imputer",
    "MissingPolicy",
    "MissingReport",
    "find_missing",
    "missing_error",
    "missing_warnings",
    "reject_infinite",
]

# When a policy changes the data more than this, training says so on stderr (docs/tables.md,
# "Missing values"): a column mostly imputed is mostly its mean, a constant the model learns
# nothing from; rows dropped in bulk may leave a sample unlike the data scored later.
IMPUTE_WARN_SHARE = 0.5  # of a column's training values imputed
DROP_WARN_SHARE = 0.2  # of the input rows dropped

_POLICY_HINT = (
    "use --missing drop to skip those rows or --missing impute to fill them with training means"
)


class MissingPolicy(StrEnum):
    """What to do with missing values, by their ``--missing`` names."""

    ERROR = "error"
    DROP = "drop"
    IMPUTE = "impute"


@dataclass(frozen=True)
class ColumnMissing:
    """Missing values of one column: how many, and the first row numbers (at most 5)."""

    index: int
    name: str | None
    count: int
    rows: tuple[int, ...]


@dataclass(frozen=True)
class MissingReport:
    """Where the missing values of a batch are; ``columns`` lists only columns that have any."""

    n_rows: int
    columns: tuple[ColumnMissing, ...]

    def __bool__(self) -> bool:
        return bool(self.columns)

    @property
    def total(self) -> int:
        """Number of missing cells."""
        return sum(c.count for c in self.columns)


def find_missing(X, names: Sequence[str] | None = None, row_offset: int = 0,
                 rows: np.ndarray | None = None) -> MissingReport:
    """Count the missing values (NaN) of each column and note where the first ones are.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    names : sequence of str, optional
        Column names for messages; columns are numbered from 1 without them.
    row_offset : int, default=0
        Rows that came before X; added to the 1-based row numbers.
    rows : ndarray of int, optional
        The input row number of each row of X, for rows gathered from across the input.

    Returns
    -------
    report : MissingReport
        False when nothing is missing.
    """
    arr = as_float_2d(X)
    nan = np.isnan(arr)  # (n, d)
    counts = nan.sum(axis=0)
    columns = tuple(
        ColumnMissing(
            int(j),
            None if names is None else names[j],
            int(counts[j]),
            tuple(row_numbers(np.flatnonzero(nan[:, j])[:MAX_ROWS_SHOWN], row_offset,
                              rows).tolist()),
        )
        for j in np.flatnonzero(counts)
    )
    return MissingReport(arr.shape[0], columns)


def missing_error(report: MissingReport) -> DataError:
    """The error to raise for a report under ``--missing error``: columns, counts and rows.

    Parameters
    ----------
    report : MissingReport
        A non-empty report from :func:`find_missing`.

    Returns
    -------
    error : DataError
    """
    columns = report.columns
    if len(columns) == 1:
        c = columns[0]
        message = (
            f"{_label(c)} has {c.count} missing value{'s' if c.count > 1 else ''} "
            f"({row_list(c.rows, c.count)})"
        )
    else:
        parts = [
            f"{_label(c)} has {c.count} ({row_list(c.rows, c.count)})"
            for c in columns[:MAX_ROWS_SHOWN]
        ]
        if len(columns) > MAX_ROWS_SHOWN:
            parts.append(f"and {len(columns) - MAX_ROWS_SHOWN} more columns")
        message = f"missing values in {len(columns)} columns: " + "; ".join(parts)
    hint = _POLICY_HINT
    entire = [_label(c) for c in columns if c.count == report.n_rows]
    if entire:
        hint = (
            f"{', '.join(entire)} {'has' if len(entire) == 1 else 'have'} no values at all: "
            f"leave {'it' if len(entire) == 1 else 'them'} out with --exclude; otherwise " + hint
        )
    return DataError(message, hint=hint)


def missing_warnings(policy: MissingPolicy, names: Sequence[str], missing_share=None,
                     dropped: int = 0, rows: int = 0) -> list[str]:
    """Warnings for a training run whose ``--missing`` policy changed much of the data:
    columns whose share of training values imputed (``missing_share``, (d,)) is over
    ``IMPUTE_WARN_SHARE``, or ``dropped`` of ``rows`` input rows over ``DROP_WARN_SHARE``.
    Each names what and how much, and what to do."""
    policy = MissingPolicy(policy)
    out = []
    if policy is MissingPolicy.IMPUTE and missing_share is not None:
        share = np.asarray(missing_share, dtype=np.float64)
        for j in np.flatnonzero(share > IMPUTE_WARN_SHARE)[:MAX_ROWS_SHOWN]:
            out.append(f"--missing impute filled {share[j]:.0%} of column {names[j]!r}'s "
                       "training values with its mean, so the model learns little from it: "
                       f"consider --exclude {names[j]}, or filling it better before training")
        extra = int((share > IMPUTE_WARN_SHARE).sum()) - MAX_ROWS_SHOWN
        if extra > 0:
            out.append(f"... and {extra} more columns over {IMPUTE_WARN_SHARE:.0%} imputed")
    if policy is MissingPolicy.DROP and rows and dropped / rows > DROP_WARN_SHARE:
        out.append(f"--missing drop left out {dropped:,} of {rows:,} rows ({dropped / rows:.0%}"
                   "), so the model saw only what remained: consider --missing impute, or "
                   "--exclude the columns with most gaps")
    return out


def _label(c: ColumnMissing) -> str:
    return f"column {c.name!r}" if c.name is not None else f"column {c.index + 1}"


class Imputer(AllowsNaN, ParamsMixin):
    """Fill missing values with the training mean of their column.

    Attributes
    ----------
    fill_ : ndarray of shape (n_features,)
        Column means of the training data, missing values ignored (float64).
    n_features_in_ : int
    """

    def __init__(self):
        pass

    def fit(self, X, y=None, *, names: Sequence[str] | None = None) -> Imputer:
        """Learn the column means of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; NaN marks a missing value, infinity is an error.
        y : None
            Ignored.
        names : sequence of str, optional
            Column names for messages (a DataFrame's own names are used otherwise).

        Returns
        -------
        self : Imputer

        Raises
        ------
        DataError
            If a column is missing in every row: it has no mean to fill with.
        """
        if names is None:
            names = v.feature_names_of(X)
        names = None if names is None else list(names)
        arr = as_float_2d(X, min_samples=1)
        reject_infinite(arr, names)
        nan = np.isnan(arr)
        empty = np.flatnonzero(nan.all(axis=0))
        if len(empty):
            labels = ", ".join(column_label(names, j) for j in empty)
            excluded = ",".join(names[j] for j in empty) if names else None
            raise DataError(
                f"{labels} {'is' if len(empty) == 1 else 'are'} missing in all "
                f"{arr.shape[0]} rows: no values to impute from",
                hint="leave the column out with --exclude"
                + (f" {excluded}" if excluded else ""),
            )
        arr64 = arr.astype(np.float64, copy=False)
        self.fill_ = np.nanmean(arr64, axis=0) if nan.any() else arr64.mean(axis=0)
        self.missing_share_ = nan.mean(axis=0)  # (d,) for missing_warnings
        self.n_features_in_ = arr.shape[1]
        self.names_ = names
        return self

    def transform(self, X, row_offset: int = 0) -> np.ndarray:
        """Replace each NaN by its column's ``fill_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        row_offset : int, default=0
            Rows before X, for the row numbers in messages.

        Returns
        -------
        X_filled : ndarray of shape (n_samples, n_features)
            A new array, float32 for float32 input, else float64.
        """
        v.check_is_fitted(self, "fill_")
        arr = as_float_2d(X)
        if arr.shape[1] != self.n_features_in_:
            raise DataError(
                f"X has {arr.shape[1]} features, but Imputer is expecting "
                f"{self.n_features_in_} features as input."
            )
        reject_infinite(arr, getattr(self, "names_", None), row_offset)
        nan = np.isnan(arr)
        return np.where(nan, self.fill_.astype(arr.dtype), arr)

    def fit_transform(self, X, y=None, *, names: Sequence[str] | None = None) -> np.ndarray:
        """``fit(X).transform(X)``; shape (n_samples, n_features)."""
        return self.fit(X, names=names).transform(X)

    @classmethod
    def from_fill(cls, fill, names: Sequence[str] | None = None) -> Imputer:
        """A fitted Imputer from its stored ``fill_`` (finite, one value per feature)."""
        fill = np.array(fill, dtype=np.float64)
        if fill.ndim != 1 or fill.size == 0 or not np.all(np.isfinite(fill)):
            raise InvalidParameterError(
                "imputer fill values must be a non-empty 1-D array of finite numbers, got "
                f"shape {fill.shape}"
            )
        imputer = cls()
        imputer.fill_, imputer.n_features_in_ = fill, fill.size
        imputer.names_ = None if names is None else list(names)
        return imputer
