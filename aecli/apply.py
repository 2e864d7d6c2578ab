"""Apply a trained model to a stream of record batches: encode, reconstruct, score.

Each function takes the batches of an input table and yields output batches (pass-through
columns first), so that memory does not grow with the number of rows. Totals for the
per-feature error table accumulate in an :class:`ErrorTotals` as the stream goes by.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from .bundle import ModelBundle
from .errors import DataError
from .io import float_columns, to_matrix
from .nn import Workspace
from .preprocessing import (
    MissingPolicy,
    find_missing,
    match_model_columns,
    missing_error,
    reject_infinite,
)
from .workflows import top_contributors


@dataclass
class ErrorTotals:
    """Running sums of squared reconstruction error per feature (scaled and original units)."""

    rows: int = 0
    dropped: int = 0
    scaled: np.ndarray | None = None
    original: np.ndarray | None = None

    def add(self, bundle: ModelBundle, sq_err: np.ndarray) -> None:
        """Add a batch's per-cell squared errors (m, d)."""
        s = sq_err.sum(axis=0, dtype=np.float64)
        o = bundle.original_units(s)  # a column's scale factors out of its sum
        self.scaled = s if self.scaled is None else self.scaled + s
        self.original = o if self.original is None else self.original + o
        self.rows += sq_err.shape[0]

    def means(self) -> tuple[list[float], list[float]]:
        """Mean squared error per feature: (scaled, original units)."""
        n = max(self.rows, 1)
        if self.scaled is None:
            return [], []
        return (self.scaled / n).tolist(), (self.original / n).tolist()


@dataclass
class ScoreSummary:
    """What a scoring pass found: row counts, flagged rows and the worst rows."""

    threshold: float
    rows: int = 0
    flagged: int = 0
    # heap of (error, row, percentile, top, keep); row numbers are unique, so tuples never
    # compare past them
    worst: list = field(default_factory=list)
    flagged_rows: list = field(default_factory=list)
    keep_flagged: int = 1000  # how many flagged rows to keep for reports

    def ranked(self) -> list[dict]:
        """The worst rows kept, worst first, as plain dicts; ``keep`` holds the row's values
        of the pass-through (``--keep``) columns."""
        out = []
        for error, row, pct, top, kept in sorted(self.worst, reverse=True):
            out.append({"row": row, "error": error, "percentile": pct,
                        "flagged": error > self.threshold, "top_features": top, "keep": kept})
        return out


# Batches are large so that reading and writing them is efficient; the model's arithmetic
# goes over slices of about this size, so that the float64 matrix and every temporary are
# reused from cache and the heap, instead of fresh tens-of-MiB allocations (a page fault per
# 4 KiB) for every batch.
BLOCK_BYTES = 4 << 20


class _Scaler:
    """Rows of input batches → the model's scaled matrix, in one buffer reused batch after batch.

    The common case (every value present and finite) takes one pass per column from the Arrow
    buffer straight to the scaled values in the model's dtype, and one read-only pass to check
    them. Otherwise the block goes the careful way, :func:`_matrix`, which applies the model's
    missing-value policy and names the column and row of any bad value; both ways give the
    same numbers.
    """

    def __init__(self, bundle: ModelBundle, name: str, totals: ErrorTotals):
        self.bundle, self.name, self.totals = bundle, name, totals
        self._buffer = np.empty((len(bundle.features), 0), dtype=bundle.dtype)  # (d, rows)
        self._scratch = np.empty(0, dtype=np.float64)  # one column's values, shifted
        self.workspace = Workspace()  # for the network's arithmetic on these rows

    def __call__(self, batch: pa.RecordBatch, offset: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Scaled rows (m, d) of ``batch`` and the mask of rows kept (None when all are).

        The matrix is only valid until the next call."""
        xs = self.quick(batch, offset)
        if xs is not None:
            return xs, None
        X, mask = _matrix(self.bundle, batch, offset, self.name, self.totals)
        return self.bundle.scale(X), mask

    def quick(self, batch: pa.RecordBatch, offset: int) -> np.ndarray | None:
        """The scaled rows (n, d) of ``batch`` when all its values are present and finite
        once scaled; None when it must go the careful way. Valid until the next call."""
        n = batch.num_rows
        if self._buffer.shape[1] < n:
            self._buffer = np.empty((self._buffer.shape[0], n), dtype=self._buffer.dtype)
            self._scratch = np.empty(n, dtype=np.float64)
        xs = self._buffer[:, :n].T  # (n, d), each column contiguous as Arrow keeps them
        columns = float_columns(batch, self.bundle.features, row_offset=offset, name=self.name)
        with np.errstate(over="ignore", invalid="ignore"):
            for j, start, values in columns:
                self.bundle.scale_column(j, values, xs[start : start + len(values), j],
                                         self._scratch[: len(values)])
            # NaN (missing) and infinity (bad, or too large once scaled) spread to the sums;
            # so does a sum too large for the dtype, which only costs the careful way
            if np.isfinite(np.add.reduce(xs, axis=0)).all():
                return xs
        return None


def _matrix(bundle: ModelBundle, batch: pa.RecordBatch, offset: int, name: str, totals):
    """Model columns of ``batch`` as raw floats, with the model's missing-value policy.

    Returns the matrix and the mask of rows kept (None when all are)."""
    X = to_matrix(batch, bundle.features, dtype=np.float64, row_offset=offset, name=name)
    _check_values(bundle, X, offset, name)
    nan = np.isnan(X)
    if not nan.any():
        return X, None
    policy = MissingPolicy(bundle.missing)
    if policy is MissingPolicy.IMPUTE:
        return X, None  # the bundle fills them with the training means
    if policy is MissingPolicy.DROP:
        keep = ~nan.any(axis=1)
        totals.dropped += int((~keep).sum())
        return X[keep], keep
    e = missing_error(find_missing(X, bundle.features, row_offset=offset))
    raise DataError(f"{name}: {e.message}", e.hint)


def _check_values(bundle: ModelBundle, X: np.ndarray, offset: int, name: str) -> None:
    """Raise DataError, naming the input, column and row, for a value that is infinite or that
    would overflow the model's dtype once scaled (it would silently give NaN outputs)."""
    try:
        reject_infinite(X, bundle.features, row_offset=offset)
    except DataError as e:
        raise DataError(f"{name}: {e.message}", e.hint) from None
    if X.shape[0] == 0:
        return
    limit = np.finfo(bundle.dtype).max
    center, scale = bundle.scaler.center_, bundle.scaler.scale_  # (d,)
    with np.errstate(over="ignore", invalid="ignore"):
        # The scaling is monotonic, so each column's extremes (NaN ignored) tell.
        lo = np.abs((np.fmin.reduce(X, axis=0) - center) / scale)
        hi = np.abs((np.fmax.reduce(X, axis=0) - center) / scale)
    if not ((lo > limit) | (hi > limit)).any():
        return
    with np.errstate(over="ignore", invalid="ignore"):
        i, j = np.argwhere(np.abs((X - center) / scale) > limit)[0]
    raise DataError(
        f"{name}: column {bundle.features[j]!r}, row {offset + i + 1}: {X[i, j]:g} is too "
        f"large for this model (scaled, it overflows {bundle.dtype.name})",
        hint="fix or filter out that row",
    )


def check_columns(bundle: ModelBundle, schema: pa.Schema, name: str) -> None:
    """Fail early, naming them, when the input lacks any of the model's columns."""
    try:
        match_model_columns(schema.names, bundle.features)
    except DataError as e:
        raise DataError(f"{name}: {e.message}", e.hint) from None


def _with_keep(batch: pa.RecordBatch, keep: list[str], mask, columns: dict) -> pa.RecordBatch:
    arrays, names = [], []
    for c in keep:
        col = batch.column(c)
        arrays.append(col if mask is None else col.filter(pa.array(mask)))
        names.append(c)
    for c, values in columns.items():
        arrays.append(_arrow(values))
        names.append(c)
    return pa.RecordBatch.from_arrays(arrays, names=names)


_ARROW_FLOATS = {np.dtype(np.float32): pa.float32(), np.dtype(np.float64): pa.float64()}


def _arrow(values) -> pa.Array:
    """An Arrow array of ``values``; a contiguous float column is wrapped without a copy.

    ``pa.array`` on a NumPy array first imports pandas (a fifth of a second for every run of
    a command); the codes and reconstructions, the bulk of the output, do not need it.
    """
    if isinstance(values, np.ndarray) and values.dtype in _ARROW_FLOATS and values.ndim == 1:
        values = np.ascontiguousarray(values)
        buffer = pa.py_buffer(values)  # keeps ``values`` alive as long as the array
        return pa.Array.from_buffers(_ARROW_FLOATS[values.dtype], len(values), [None, buffer])
    return pa.array(values)


def _values(batch: pa.RecordBatch, i: int) -> dict:
    """Row ``i`` of ``batch`` as ``{column: Python value}``."""
    return {name: batch.column(j)[i].as_py() for j, name in enumerate(batch.schema.names)}


def _blocks(batch: pa.RecordBatch, width: int) -> Iterator[pa.RecordBatch]:
    """Zero-copy row slices of ``batch`` whose float64 matrix of ``width`` columns takes
    about ``BLOCK_BYTES``."""
    rows = max(1024, BLOCK_BYTES // (8 * width))
    for start in range(0, batch.num_rows, rows):
        yield batch.slice(start, rows)


def _encode_batch(bundle: ModelBundle, scaler: _Scaler, batch: pa.RecordBatch,
                  offset: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Codes (m, k) of the rows of ``batch`` kept, and the mask of rows kept (None when all
    are): in one go when the batch is clean, else a block of rows at a time."""
    xs = scaler.quick(batch, offset)
    if xs is not None:
        return bundle.encode_scaled(xs, scaler.workspace), None
    codes, masks = [], []
    for part in _blocks(batch, len(bundle.features)):
        xs, mask = scaler(part, offset)
        codes.append(bundle.encode_scaled(xs, scaler.workspace))  # (m_part, k)
        masks.append(np.ones(part.num_rows, dtype=bool) if mask is None else mask)
        offset += part.num_rows
    Z = np.concatenate(codes)  # (m, k)
    return Z, None if len(Z) == batch.num_rows else np.concatenate(masks)


def _largest(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest values, largest first (a partition, not a full sort)."""
    k = min(k, len(values))
    if k <= 0:
        return np.array([], dtype=np.intp)
    part = np.argpartition(values, len(values) - k)[len(values) - k :]
    return part[np.argsort(-values[part])]


def encode_stream(bundle: ModelBundle, batches: Iterable[pa.RecordBatch], keep: list[str],
                  name: str, totals: ErrorTotals) -> Iterator[pa.RecordBatch]:
    """Codes ``z1..zk`` for each input batch."""
    offset, scaler = 0, _Scaler(bundle, name, totals)
    for batch in batches:
        Z, mask = _encode_batch(bundle, scaler, batch, offset)
        offset += batch.num_rows
        totals.rows += Z.shape[0]
        columns = np.ascontiguousarray(Z.T)  # (k, m): each code's values side by side for Arrow
        yield _with_keep(batch, keep, mask, {f"z{j + 1}": z for j, z in enumerate(columns)})


def reconstruct_stream(bundle: ModelBundle, batches: Iterable[pa.RecordBatch], keep: list[str],
                       name: str, totals: ErrorTotals, error_column: bool):
    """Reconstructions in original units under the model's column names; optionally each
    row's mean squared error (scaled space) in a column ``error``."""
    offset, scaler = 0, _Scaler(bundle, name, totals)
    for batch in batches:
        xs, mask = scaler(batch, offset)
        offset += batch.num_rows
        X_hat, sq = bundle.reconstruct_scaled(xs, scaler.workspace)
        totals.add(bundle, sq)
        cols = {f: X_hat[:, j] for j, f in enumerate(bundle.features)}
        if error_column:
            cols["error"] = sq.mean(axis=1, dtype=np.float64)
        yield _with_keep(batch, keep, mask, cols)


def score_stream(bundle: ModelBundle, batches: Iterable[pa.RecordBatch], keep: list[str],
                 name: str, totals: ErrorTotals, summary: ScoreSummary, top: int):
    """Per row: its 1-based row number, error, percentile among the calibration errors,
    whether it is over the threshold, and the three features contributing most."""
    offset, scaler = 0, _Scaler(bundle, name, totals)
    for batch in batches:
        xs, mask = scaler(batch, offset)
        rows = np.arange(offset + 1, offset + batch.num_rows + 1)
        if mask is not None:
            rows = rows[mask]
        offset += batch.num_rows
        errors, sq = bundle.errors_scaled(xs, scaler.workspace)
        totals.add(bundle, sq)
        pct = bundle.percentile(errors)
        flagged = errors > summary.threshold
        summary.rows += len(errors)
        summary.flagged += int(flagged.sum())
        worst = _largest(errors, top)
        interesting = np.union1d(np.flatnonzero(flagged), worst)
        tops = dict(zip(interesting.tolist(),
                        top_contributors(sq[interesting], bundle.features), strict=True))
        kept = _with_keep(batch, keep, mask, {})  # pass-through values of the rows scored
        for i in worst.tolist():
            item = (float(errors[i]), int(rows[i]), float(pct[i]), tops[i], _values(kept, i))
            if len(summary.worst) < top:
                heapq.heappush(summary.worst, item)
            else:
                heapq.heappushpop(summary.worst, item)
        for i in np.flatnonzero(flagged)[: summary.keep_flagged - len(summary.flagged_rows)]:
            summary.flagged_rows.append({"row": int(rows[i]), "error": float(errors[i]),
                                         "percentile": float(pct[i]), "flagged": True,
                                         "top_features": tops[int(i)],
                                         "keep": _values(kept, int(i))})
        top_text = [""] * len(errors)
        for i in np.flatnonzero(flagged).tolist():
            top_text[i] = "; ".join(f"{n} ({s:.0%})" for n, s in tops[i])
        yield _with_keep(batch, keep, mask, {
            "row": rows, "error": errors, "percentile": pct, "anomaly": flagged,
            "top_features": top_text,
        })
