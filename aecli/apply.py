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
from .errors import naming_input
from .nn import Workspace
from .preprocessing import BatchBuffers, match_model_columns
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

    def ranked_columns(self, keep: list[str]) -> dict[str, list]:
        """The worst rows as the columns of the scores table (``score --top``): pass-through
        columns first, then the columns every row of the full output has."""
        ranked = self.ranked()
        table = {c: [r["keep"][c] for r in ranked] for c in keep}
        table.update({k: [r[k] for r in ranked] for k in ("row", "error", "percentile")})
        table["anomaly"] = [r["flagged"] for r in ranked]
        table["top_features"] = [top_features_text(r["top_features"]) for r in ranked]
        return table

    def report(self, bundle: ModelBundle, totals: ErrorTotals) -> dict:
        """The whole report, plain JSON (``score --json``): counts, the threshold, the worst
        and the flagged rows, and the mean squared error of each feature."""
        scaled, original = totals.means()
        return {
            "rows": self.rows, "flagged": self.flagged, "threshold": self.threshold,
            "rows_dropped": totals.dropped, "worst": self.ranked(),
            "flagged_rows": sorted(self.flagged_rows, key=lambda r: -r["error"]),
            "feature_mse": dict(zip(bundle.features, scaled, strict=True)),
            "feature_mse_original_units": dict(zip(bundle.features, original, strict=True)),
        }


def top_features_text(top: list[tuple[str, float]]) -> str:
    """``p48 (86%); p31 (9%)``: a row's largest contributions to its error."""
    return "; ".join(f"{name} ({share:.0%})" for name, share in top)


def check_columns(bundle: ModelBundle, schema: pa.Schema, name: str) -> None:
    """Fail early, naming them, when the input lacks any of the model's columns."""
    with naming_input(name):
        match_model_columns(schema.names, bundle.features)


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


class _Preparer:
    """Input batches → the model's scaled rows, through the model's one preparation path,
    with the arrays of a stream reused from batch to batch."""

    def __init__(self, bundle: ModelBundle, name: str, totals: ErrorTotals):
        self.bundle, self.name, self.totals = bundle, name, totals
        self.buffers = BatchBuffers()
        self.workspace = Workspace()  # for the network's arithmetic on these rows
        self.offset = 0  # rows of the input before the next batch

    def __call__(self, batch: pa.RecordBatch) -> tuple[np.ndarray, np.ndarray | None, int]:
        """Scaled rows (m, d) of ``batch``, the mask of rows kept (None when all are), and the
        rows before the batch. The matrix is only valid until the next call."""
        offset = self.offset
        with naming_input(self.name):
            xs, keep = self.bundle.prepare(batch, offset, self.buffers)
        self.offset += batch.num_rows
        if keep is not None:
            self.totals.dropped += int((~keep).sum())
        return xs, keep, offset


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
    prepare = _Preparer(bundle, name, totals)
    for batch in batches:
        xs, mask, _ = prepare(batch)
        Z = bundle.encode_scaled(xs, prepare.workspace)  # (m, k)
        totals.rows += Z.shape[0]
        columns = np.ascontiguousarray(Z.T)  # (k, m): each code's values side by side for Arrow
        yield _with_keep(batch, keep, mask, {f"z{j + 1}": z for j, z in enumerate(columns)})


def reconstruct_stream(bundle: ModelBundle, batches: Iterable[pa.RecordBatch], keep: list[str],
                       name: str, totals: ErrorTotals, error_column: bool):
    """Reconstructions in original units under the model's column names; optionally each
    row's mean squared error (scaled space) in a column ``error``."""
    prepare = _Preparer(bundle, name, totals)
    for batch in batches:
        xs, mask, _ = prepare(batch)
        X_hat, sq = bundle.reconstruct_scaled(xs, prepare.workspace)
        totals.add(bundle, sq)
        cols = {f: X_hat[:, j] for j, f in enumerate(bundle.features)}
        if error_column:
            cols["error"] = sq.mean(axis=1, dtype=np.float64)
        yield _with_keep(batch, keep, mask, cols)


def score_stream(bundle: ModelBundle, batches: Iterable[pa.RecordBatch], keep: list[str],
                 name: str, totals: ErrorTotals, summary: ScoreSummary, top: int):
    """Per row: its 1-based row number, error, percentile among the calibration errors,
    whether it is over the threshold, and the three features contributing most."""
    prepare = _Preparer(bundle, name, totals)
    for batch in batches:
        xs, mask, offset = prepare(batch)
        rows = np.arange(offset + 1, offset + batch.num_rows + 1)
        if mask is not None:
            rows = rows[mask]
        errors, sq = bundle.errors_scaled(xs, prepare.workspace)
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
            top_text[i] = top_features_text(tops[i])
        yield _with_keep(batch, keep, mask, {
            "row": rows, "error": errors, "percentile": pct, "anomaly": flagged,
            "top_features": top_text,
        })
