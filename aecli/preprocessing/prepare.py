"""The one preparation path: a chunk of a table becomes the network's matrix here, and only here.

Training in memory, streamed training, compare-pca, encode, reconstruct and score all go
through it: :func:`screen` before anything is fitted (infinity, the missing-value policy),
:meth:`Preparation.fit` on the training rows, then :meth:`Preparation.transform` for every
chunk (the policy again, imputation, scaling, and the check that scaled values fit the
model's dtype). A bad value gets the same message, with its input row number, whichever way
it came in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from ..errors import DataError, InvalidParameterError
from ..io.matrix import BadValues, float_columns, to_matrix
from ..nn.losses import SoftmaxGroups
from ._arrays import reject_infinite, row_numbers
from .categorical import Categorical
from .missing import Imputer, MissingPolicy, find_missing, missing_error
from .scalers import ScalerKind, make_scaler

__all__ = ["BatchBuffers", "Prepared", "Preparation", "RawRows", "screen"]


class RawRows(NamedTuple):
    """Training rows in original units: the numeric columns as a matrix, the categorical
    ones as Arrow columns (a table of the same rows)."""

    numeric: np.ndarray  # (n, d) float64, NaN where missing
    categorical: pa.Table | None = None

    def __len__(self) -> int:
        return len(self.numeric)

    def take(self, rows: np.ndarray) -> RawRows:
        """These rows only (indices, or a boolean mask)."""
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        cat = None if self.categorical is None else self.categorical.take(
            pa.array(rows, type=pa.int64()))
        return RawRows(self.numeric[rows], cat)

    @staticmethod
    def concatenate(parts: Sequence[RawRows]) -> RawRows:
        """The rows of ``parts``, one after another."""
        numeric = np.concatenate([p.numeric for p in parts])
        if parts[0].categorical is None:
            return RawRows(numeric)
        return RawRows(numeric, pa.concat_tables([p.categorical for p in parts]))


class Prepared(NamedTuple):
    """What :meth:`Preparation.transform` returns."""

    X: np.ndarray  # (m, d) scaled rows, in the model's dtype
    keep: np.ndarray | None  # (n,) bool: the chunk's rows that are in X; None when all are
    # (m, columns) bool: the table cells filled in; None when none are
    imputed: np.ndarray | None = None


def screen(X: np.ndarray, features: Sequence[str], missing: MissingPolicy, *,
           row_offset: int = 0, rows: np.ndarray | None = None) -> np.ndarray | None:
    """Check raw rows before anything is fitted, and apply the missing-value policy.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Raw values, NaN where missing.
    features : sequence of str
        Column names, for messages.
    missing : MissingPolicy
    row_offset, rows
        How messages number the rows (see :func:`aecli.preprocessing._arrays.row_numbers`).

    Returns
    -------
    keep : ndarray of bool, shape (n,), or None
        The rows to keep under ``drop``; None when every row stays (under ``impute`` the
        gaps are filled once the means are known).

    Raises
    ------
    DataError
        An infinite value under any policy; a missing value under ``error``.
    """
    missing = MissingPolicy(missing)
    reject_infinite(X, features, row_offset, rows)
    nan = np.isnan(X)  # (n, d)
    if not nan.any():
        return None
    if missing is MissingPolicy.ERROR:
        raise missing_error(find_missing(X, features, row_offset, rows))
    if missing is MissingPolicy.DROP:
        return ~nan.any(axis=1)
    return None


class BatchBuffers:
    """Arrays reused from batch to batch by :meth:`Preparation.transform`, kept by one caller.

    The scaled matrix handed back lives in them: it is valid until the next call.
    """

    def __init__(self):
        self.matrix = np.empty((0, 0))  # (d, rows): each column contiguous, as Arrow keeps them
        self.shifted = np.empty(0, dtype=np.float64)  # one column's values, shifted

    def scaled(self, d: int, n: int, dtype: np.dtype) -> np.ndarray:
        """An (n, d) array of ``dtype`` whose columns are contiguous."""
        if self.matrix.shape[0] != d or self.matrix.shape[1] < n or self.matrix.dtype != dtype:
            self.matrix = np.empty((d, n), dtype=dtype)
        if len(self.shifted) < n:
            self.shifted = np.empty(n, dtype=np.float64)
        return self.matrix[:, :n].T


class Preparation:
    """The fitted column spec: which columns, how gaps are handled, how values are scaled,
    and the levels of the categorical columns.

    The network's matrix holds the numeric columns, scaled, then one one-hot block per
    categorical column (see :class:`aecli.nn.losses.SoftmaxGroups`).

    Parameters
    ----------
    features : list of str
        The model's numeric columns, in order.
    missing : MissingPolicy
    scaler : fitted scaler
        With ``center_`` and ``scale_`` (see :mod:`aecli.preprocessing.scalers`).
    imputer : Imputer or None
        Fitted on the training rows whatever the policy (so that a later run can impute with
        ``--missing impute``); None for models written before aecli 0.2 without one.
    dtype : numpy dtype
        The network's float dtype: what the scaled values must fit in.
    categorical : sequence of Categorical
        The categorical columns and their levels; a missing value is a level (never
        dropped or imputed), so ``missing`` speaks of the numeric columns only.
    bad_values : BadValues
        What a cell of a numeric column that spells no number becomes: an error, or a
        missing value (then handled by ``missing``).
    """

    def __init__(self, features: Sequence[str], missing: MissingPolicy, scaler,
                 imputer: Imputer | None, dtype, categorical: Sequence[Categorical] = (),
                 bad_values: BadValues = BadValues.ERROR):
        self.numeric = list(features)
        self.categorical = list(categorical)
        self.missing = MissingPolicy(missing)
        self.bad_values = BadValues(bad_values)
        self.scaler = scaler
        self.imputer = imputer
        self.dtype = np.dtype(dtype)

    @property
    def features(self) -> list[str]:
        """Every column the model uses: the numeric ones, then the categorical ones."""
        return self.numeric + [c.name for c in self.categorical]

    @property
    def groups(self) -> SoftmaxGroups | None:
        """The matrix's layout for the network; None when every column is numeric."""
        if not self.categorical:
            return None
        return SoftmaxGroups(len(self.numeric), [c.size for c in self.categorical])

    @property
    def width(self) -> int:
        """Columns of the network's matrix."""
        return len(self.numeric) + sum(c.size for c in self.categorical)

    @property
    def scale_kind(self) -> ScalerKind:
        """The scaler's kind (``--scale``)."""
        return self.scaler.kind

    @property
    def fill(self) -> np.ndarray | None:
        """The imputation values (training means), or None when the model has none."""
        return None if self.imputer is None else self.imputer.fill_

    def with_policy(self, missing: MissingPolicy | None,
                    bad_values: BadValues | None = None) -> Preparation:
        """This preparation under another missing-value policy and ``--bad-values`` (None:
        as it is).

        Raises
        ------
        DataError
            ``impute`` asked of a model that holds no imputation values.
        """
        bad_values = self.bad_values if bad_values is None else BadValues(bad_values)
        missing = self.missing if missing is None else MissingPolicy(missing)
        if missing is self.missing and bad_values is self.bad_values:
            return self
        if missing is MissingPolicy.IMPUTE and self.imputer is None:
            raise DataError(
                "this model holds no imputation values: it was trained by aecli 0.1 with "
                f"--missing {self.missing.value}",
                hint="use --missing drop to skip the rows with gaps, or retrain the model",
            )
        return Preparation(self.numeric, missing, self.scaler, self.imputer, self.dtype,
                           self.categorical, bad_values)

    @classmethod
    def fit(cls, X: np.ndarray | RawRows, features: Sequence[str], *, missing: MissingPolicy,
            scale: ScalerKind, dtype, rows: np.ndarray | None = None,
            levels: Sequence[Categorical] | None = None,
            bad_values: BadValues = BadValues.ERROR) -> Preparation:
        """Fit the imputer and the scaler on raw training rows ``X`` (n, d) of the numeric
        columns ``features``, already screened (see :func:`screen`), and the levels of the
        categorical columns of ``X`` (a :class:`RawRows`) unless given as ``levels``;
        ``rows`` numbers them for messages. The imputer is fitted under every policy, so
        that a later run can choose ``--missing impute``."""
        missing = MissingPolicy(missing)
        categorical = list(levels or ())
        if isinstance(X, RawRows):
            if levels is None and X.categorical is not None:
                categorical = [Categorical.fit(name, X.categorical.column(name))
                               for name in X.categorical.schema.names]
            X = X.numeric
        imputer = Imputer().fit(X, names=features)
        filled = imputer.transform(X) if missing is MissingPolicy.IMPUTE else X
        scaler = make_scaler(scale).fit(filled)
        prep = cls(features, missing, scaler, imputer, dtype, categorical, bad_values)
        spread = np.isfinite(scaler.center_) & np.isfinite(scaler.scale_)
        if not spread.all():  # e.g. a min-max range wider than float64 holds
            j = int(np.flatnonzero(~spread)[0])
            i = int(np.argmax(np.abs(filled[:, j])))
            raise prep._too_large(filled, i, j, rows, "its range overflows float64")
        return prep

    # -- the path every chunk takes --------------------------------------------------------
    def transform(self, chunk, row_offset: int = 0, *, rows: np.ndarray | None = None,
                  buffers: BatchBuffers | None = None) -> Prepared:
        """The network's matrix for a chunk of rows.

        Parameters
        ----------
        chunk : pyarrow.RecordBatch, pyarrow.Table, RawRows or ndarray of shape (n, d)
            A table chunk (the model's columns are picked by name), raw rows, or (for a
            model without categorical columns) raw values in the model's column order, NaN
            where missing.
        row_offset, rows
            How messages number the rows: ``row_offset`` rows came before the chunk, or
            ``rows`` gives each row's number.
        buffers : BatchBuffers, optional
            Reused arrays for a stream of table chunks; the result then lives in them.

        Returns
        -------
        Prepared
            The scaled rows kept, which rows those are, and which of their cells were imputed
            (so that errors can leave them out).

        Raises
        ------
        DataError
            A column that is not numeric, an infinite value, a missing value under
            ``error``, a value too large for the model's dtype once scaled: each named by
            column and input row.
        """
        source = None
        if isinstance(chunk, RawRows):
            chunk, source = chunk.numeric, chunk.categorical
        elif not isinstance(chunk, np.ndarray):
            source = chunk
        elif self.categorical:
            raise InvalidParameterError(
                "this model has categorical columns "
                f"({', '.join(c.name for c in self.categorical)}): pass a table, not an array")
        prepared = self._numeric(chunk, row_offset, rows, buffers)
        if not self.categorical:
            return prepared
        return self._one_hot(prepared, source)

    def _one_hot(self, prepared: Prepared, source) -> Prepared:
        """``prepared`` (the numeric columns) with the categorical columns' one-hot blocks
        of the same rows after them."""
        xs, keep, imputed = prepared
        out = np.empty((len(xs), self.width), dtype=self.dtype)  # (m, width)
        d = len(self.numeric)
        out[:, :d] = xs
        if imputed is not None:  # one flag per table cell: a category is never imputed
            imputed = np.hstack([imputed, np.zeros((len(xs), len(self.categorical)), bool)])
        mask = None if keep is None else pa.array(keep)
        at = d
        for c in self.categorical:
            column = source.column(c.name)
            c.one_hot(column if mask is None else column.filter(mask), out[:, at : at + c.size])
            at += c.size
        return Prepared(out, keep, imputed)

    def _numeric(self, chunk, row_offset: int, rows: np.ndarray | None,
                 buffers: BatchBuffers | None) -> Prepared:
        """:meth:`transform` of the numeric columns."""
        if not isinstance(chunk, np.ndarray):
            xs = self._quick(chunk, buffers or BatchBuffers())
            if xs is not None:
                return Prepared(xs, None)
            chunk = to_matrix(chunk, self.numeric, dtype=np.float64, row_offset=row_offset,
                              bad_values=self.bad_values)
        keep = screen(chunk, self.numeric, self.missing, row_offset=row_offset, rows=rows)
        X = chunk
        if keep is not None:
            X = chunk[keep]
            rows = row_numbers(np.flatnonzero(keep), row_offset, rows)
            row_offset = 0
        imputed = None
        if self.missing is MissingPolicy.IMPUTE:
            gaps = np.isnan(X)
            imputed = gaps if gaps.any() else None
            X = self.imputer.transform(X)
        xs = self.scale(X)
        with np.errstate(over="ignore", invalid="ignore"):
            finite = np.isfinite(np.add.reduce(xs, axis=0)).all()
        if not finite:
            bad = ~np.isfinite(xs)  # gaps are gone by now: what is left overflowed
            if bad.any():
                j = int(np.flatnonzero(bad.any(axis=0))[0])
                i = int(np.flatnonzero(bad[:, j])[0])
                where = rows if rows is not None else np.arange(len(X)) + 1 + row_offset
                raise self._too_large(X, i, j, where,
                                      f"once scaled it overflows {self.dtype.name}")
        return Prepared(xs, keep, imputed)

    def scale(self, X: np.ndarray) -> np.ndarray:
        """Raw rows (n, d) without gaps → the scaled space, in the model's dtype.

        The arithmetic is float64 whatever the dtype: float32 data far from its centre would
        otherwise lose digits in the subtraction.
        """
        with np.errstate(over="ignore", invalid="ignore"):
            out = np.subtract(X, self.scaler.center_, dtype=np.float64)  # (n, d)
            out /= self.scaler.scale_
            return out.astype(self.dtype, copy=False)

    def unscale(self, xs: np.ndarray) -> np.ndarray:
        """The numeric columns of scaled rows (n, d) or (n, width) back to original units
        (n, d)."""
        return np.asarray(self.scaler.inverse_transform(xs[:, : len(self.numeric)]))

    def decoded(self, xs_hat: np.ndarray, probabilities: bool = False) -> dict[str, object]:
        """Reconstructed rows (n, width) as output columns in original terms: each numeric
        column in its units, each categorical column's most probable level (and, with
        ``probabilities``, that level's probability as ``<name>_probability``)."""
        out: dict[str, object] = dict(zip(self.numeric, self.unscale(xs_hat).T, strict=True))
        at = len(self.numeric)
        for c in self.categorical:
            labels, p = c.labels(xs_hat[:, at : at + c.size])
            out[c.name] = pa.array(labels, type=pa.string())
            if probabilities:
                out[f"{c.name}_probability"] = p.astype(np.float64)
            at += c.size
        return out

    def _quick(self, batch: pa.RecordBatch | pa.Table, buffers: BatchBuffers
               ) -> np.ndarray | None:
        """The scaled rows of a table chunk whose values are all present and finite once
        scaled, one pass per column from the Arrow buffer; None when the chunk must go the
        careful way. Both ways give bit-identical numbers."""
        n = batch.num_rows
        xs = buffers.scaled(len(self.numeric), n, self.dtype)  # (n, d)
        center, scale = self.scaler.center_, self.scaler.scale_
        with np.errstate(over="ignore", invalid="ignore"):
            for j, start, values in float_columns(batch, self.numeric,
                                                  bad_values=self.bad_values):
                shifted = np.subtract(values, center[j], out=buffers.shifted[: len(values)],
                                      dtype=np.float64)
                np.divide(shifted, scale[j], out=xs[start : start + len(values), j],
                          casting="same_kind")
            # NaN (missing) and infinity (bad, or too large once scaled) spread to the sums;
            # so does a sum too large for the dtype, which only costs the careful way
            if np.isfinite(np.add.reduce(xs, axis=0)).all():
                return xs
        return None

    def _too_large(self, X: np.ndarray, i: int, j: int, rows: np.ndarray | None,
                   why: str) -> DataError:
        row = int(rows[i]) if rows is not None else i + 1
        return DataError(
            f"column {self.numeric[j]!r}, row {row}: {X[i, j]:g} is too large: {why}",
            hint="fix or filter out that row, or rescale the column (change its units); "
            "a model trained with --dtype float64 holds larger values",
        )
