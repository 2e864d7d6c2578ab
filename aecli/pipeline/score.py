"""Score a stream of batches against the model's anomaly threshold, and report on it.

Each row gets its error, its percentile among the calibration errors, a flag and the features
that contribute most; the :class:`ScoreSummary` keeps the counts and the worst rows as the
stream goes by and builds the report the command renders.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from .apply import BatchPreparer, ErrorTotals, output_batch
from .bundle import ModelBundle


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


def top_contributors(sq_err: np.ndarray, names: list[str], n: int = 3) -> list[list[tuple]]:
    """For each row of per-cell squared errors (m, d): the ``n`` largest (name, share)."""
    total = sq_err.sum(axis=1, keepdims=True)
    share = np.divide(sq_err, total, out=np.zeros_like(sq_err, dtype=np.float64),
                      where=total > 0)
    order = np.argsort(-sq_err, axis=1)[:, :n]
    return [[(names[j], float(share[i, j])) for j in order[i]] for i in range(len(order))]


def _values(batch: pa.RecordBatch, i: int) -> dict:
    """Row ``i`` of ``batch`` as ``{column: Python value}``."""
    return {name: batch.column(j)[i].as_py() for j, name in enumerate(batch.schema.names)}


def _largest(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest values, largest first (a partition, not a full sort)."""
    k = min(k, len(values))
    if k <= 0:
        return np.array([], dtype=np.intp)
    part = np.argpartition(values, len(values) - k)[len(values) - k :]
    return part[np.argsort(-values[part])]


def score_stream(bundle: ModelBundle, batches: Iterable[pa.RecordBatch], keep: list[str],
                 name: str, totals: ErrorTotals, summary: ScoreSummary, top: int):
    """Per row: its 1-based row number, error, percentile among the calibration errors,
    whether it is over the threshold, and the three features contributing most."""
    prepare = BatchPreparer(bundle, name, totals)
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
        kept = output_batch(batch, keep, mask, {})  # pass-through values of the rows scored
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
        yield output_batch(batch, keep, mask, {
            "row": rows, "error": errors, "percentile": pct, "anomaly": flagged,
            "top_features": top_text,
        })
