"""Score a stream of batches against the model's anomaly threshold, and report on it.

Each row gets its score (its error plus, by default, its code's distance: see
:mod:`aecli.estimators.scoring`), its error, its percentile and p-value among the calibration
scores (:class:`aecli.estimators.calibration.ScoreDistribution`), a flag and what contributes
most; the :class:`ScoreSummary` keeps the counts and the worst rows as the
stream goes by and builds the report the command renders.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from ..blas_threads import tuned
from ..formatting import format_explanation
from ..io import to_matrix
from ..preprocessing import MissingPolicy
from ..preprocessing.categorical import as_text
from .apply import BatchPreparer, ErrorTotals, output_batch, output_name
from .bundle import ModelBundle


@dataclass
class ScoreSummary:
    """What a scoring pass found: row counts, the worst rows, and the worst flagged rows.

    Both lists are bounded heaps of ``(score, row, item)``, so memory does not grow with the
    rows scored; row numbers are unique, so the tuples never compare past them.
    """

    threshold: float
    rows: int = 0
    flagged: int = 0
    not_finite: int = 0  # rows whose score is not a number (flagged, see score_note)
    imputed: bool = False  # whether the model fills gaps (the output says how many per row)
    worst: list = field(default_factory=list)  # the `top` worst rows
    flagged_worst: list = field(default_factory=list)  # the `keep_flagged` worst flagged rows
    keep_flagged: int = 1000  # how many flagged rows the report lists

    def ranked(self) -> list[dict]:
        """The worst rows kept, worst first, as plain dicts; ``keep`` holds the row's values
        of the pass-through (``--keep``) columns."""
        return [item for *_, item in sorted(self.worst, key=lambda t: t[:2], reverse=True)]

    def ranked_flagged(self) -> list[dict]:
        """The worst flagged rows kept (at most ``keep_flagged``), worst first."""
        return [item for *_, item in sorted(self.flagged_worst, key=lambda t: t[:2],
                                            reverse=True)]

    def ranked_columns(self, keep: list[str]) -> dict[str, list]:
        """The worst rows as the columns of the scores table (``score --top``): pass-through
        columns first, then the columns every row of the full output has."""
        ranked = self.ranked()
        table = {c: [r["keep"][c] for r in ranked] for c in keep}
        names = ["row", "score", "error", "percentile", "p_value", "flagged"] + (
            ["imputed"] if self.imputed else [])
        for k in names:
            table[output_name(k, keep, "_score")] = [r[k] for r in ranked]
        table[output_name("top_features", keep, "_score")] = [
            format_explanation(r["top_features"]) for r in ranked]
        return table

    def report(self, bundle: ModelBundle, totals: ErrorTotals) -> dict:
        """The whole report, plain JSON (``score --json``): counts, the threshold, the worst
        rows, the worst flagged rows (and whether that list was cut), and the mean squared
        error of each feature over its observed cells."""
        scaled, original = totals.means()
        flagged = self.ranked_flagged()
        return {
            "rows": self.rows, "flagged": self.flagged, "threshold": self.threshold,
            "scores_not_finite": self.not_finite,
            "rows_dropped": totals.dropped, "cells_imputed": totals.imputed,
            "worst": self.ranked(), "flagged_rows": flagged,
            "flagged_rows_cut": len(flagged) < self.flagged,
            "feature_mse": dict(zip(bundle.features, scaled, strict=True)),
            "feature_mse_original_units": dict(zip(bundle.features, original, strict=True)),
        }

    def add(self, heap: list, size: int, score: float, row: int, item) -> None:
        """Keep ``item`` in ``heap`` if it is among the ``size`` largest scores."""
        if len(heap) < size:
            heapq.heappush(heap, (score, row, item))
        elif (score, row) > heap[0][:2]:
            heapq.heapreplace(heap, (score, row, item))


def explain(sq_err: np.ndarray, X: list[list], X_hat: list[list], names: list[str],
            n: int = 3, unseen: np.ndarray | None = None,
            code: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
            tails: tuple[np.ndarray, ...] | None = None
            ) -> list[list[dict]]:
    """For each row of per-cell errors (m, d): its ``n`` largest contributions to the score,
    each with its share, and for a cell the row's value and the reconstruction (``X``,
    ``X_hat``: rows of values in original terms, see :func:`originals`); ``unseen`` (m, d)
    marks categorical values training never saw. ``code``: the rows' errors, code terms and
    code distances in standard deviations (each (m,)), when the score has a code term: it
    competes with the cells as one more contribution. ``tails``: for a combined score (see
    :meth:`aecli.estimators.evidence.Evidence.explained`), the autoencoder's and the column
    tails' and the code neighbours' shares of each row's score and each cell's tail evidence:
    the cells and code share the first, the row's most extreme cell in its column takes the
    second, the code the third (the row neighbours' part names no cell). Cells with no error
    (imputed ones) are never named."""
    sq_err = np.asarray(sq_err, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        total = sq_err.sum(axis=1, keepdims=True)
        share = np.divide(sq_err, total, out=np.zeros_like(sq_err), where=total > 0)
        parts = sq_err
        if code is not None:
            errors, term, sigmas = code
            score = errors + term
            of_score = np.divide(errors, score, out=np.zeros_like(score), where=score > 0)
            share = np.c_[share * of_score[:, None],
                          np.divide(term, score, out=np.zeros_like(score), where=score > 0)]
            parts = np.c_[sq_err, term]
        if tails is not None:  # a combined score: the cells and code share the autoencoder's
            # part, and the row's most extreme cell in its column takes the tails' part
            ours, tail, near, cells = tails
            cells = np.where(sq_err > 0, cells, -np.inf)  # an imputed cell is never named
            extreme, rows = np.argmax(cells, axis=1), np.arange(len(share))
            share = share * ours[:, None]
            share[rows, extreme] += np.where(np.isfinite(cells[rows, extreme]), tail, 0.0)
            if code is not None:  # the code's distance takes the code neighbours' part
                share[:, -1] += near
    # A part that overflowed has no share (inf / inf): it is named first, marked so, and
    # the finite parts of that row are left out; a share is never NaN.
    overflowed = ~np.isfinite(parts)  # (m, d) or (m, d + 1)
    share = np.where(overflowed.any(axis=1, keepdims=True),
                     np.where(overflowed, np.inf, 0.0), np.nan_to_num(share, nan=0.0))
    order = np.argsort(-share, axis=1)[:, :n]
    explained = []
    for i in range(len(order)):
        row = []
        for j in order[i]:
            if share[i, j] <= 0:
                continue
            part = ({"share": None, "overflow": True} if overflowed[i, j]
                    else {"share": float(share[i, j])})
            if j == len(names):
                row.append({"code": True, **part, "distance": float(code[2][i])})
                continue
            item = {"feature": names[j], **part, "value": X[i][j], "expected": X_hat[i][j]}
            if unseen is not None and unseen[i, j]:
                item["unseen"] = True
            row.append(item)
        explained.append(row)
    return explained


def unscored_note(report: dict) -> str | None:
    """A warning for stderr when rows of a score report (see :meth:`ScoreSummary.report`)
    have no finite score: how many, and why for the first listed; None when every score is
    a number."""
    n = report.get("scores_not_finite", 0)
    if not n:
        return None
    notes = [r["score_note"] for r in report["flagged_rows"] + report["worst"]
             if "score_note" in r]
    why = f": {notes[0]}" if notes else ""
    return (f"{n:,} row(s) have no finite score and are flagged as anomalies (score null in "
            f"--json, with a score_note){why}")


def _why_unscored(bundle: ModelBundle, scored, xs: np.ndarray, i: int, row: int) -> str:
    """Why row ``i`` of a batch (``scored``: its
    :class:`aecli.estimators.ensemble.ScoreParts`) has no finite score: none of its cells was
    observed (every one imputed), or it overflowed the network."""
    if np.isnan(scored.errors[i]) and np.isfinite(scored.sq[i]).all():
        return "no observed cell: every value of the row was missing and imputed"
    hint = bundle.overflow_hint()
    return f"{bundle.overflow_message(xs, i, row)}. {hint[0].upper()}{hint[1:]}"


def originals(bundle: ModelBundle, rows: pa.Table | pa.RecordBatch, xs_hat: np.ndarray
              ) -> tuple[list[list], list[list], np.ndarray | None]:
    """The values of ``rows`` as the input has them and their reconstructions ``xs_hat``
    (m, width) in original terms, one list per row over the model's columns (a number, or a
    categorical column's text), and which categorical values are unseen levels (None
    without categorical columns)."""
    prep = bundle.preparation
    X = to_matrix(rows, prep.numeric, dtype=np.float64).tolist()
    # a reconstruction that overflowed has no value to show (its cell says "overflow")
    X_hat = prep.unscale(np.where(np.isinf(xs_hat), np.nan, xs_hat)).tolist()
    if not prep.categorical:
        return X, X_hat, None
    decoded = prep.decoded(xs_hat)
    d = len(prep.numeric)
    unseen = np.zeros((len(X), d + len(prep.categorical)), dtype=bool)
    for j, c in enumerate(prep.categorical):
        values = as_text(rows.column(c.name)).to_pylist()
        expected = decoded[c.name].to_pylist()
        unseen[:, d + j] = [v not in c.levels for v in values]
        for i, (v, e) in enumerate(zip(values, expected, strict=True)):
            X[i].append(v)
            X_hat[i].append(e)
    return X, X_hat, unseen


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
                 name: str, totals: ErrorTotals, summary: ScoreSummary, top: int,
                 first_row: int = 0):
    """Per row: its 1-based row number, its score, its error over its observed cells, its
    percentile and p-value among the calibration scores, whether it is over the threshold,
    (when the model imputes) how many of its cells were imputed, and the three largest
    contributions to its score: features with their values and expected values in original
    units, or its code's distance from the training codes. Rows are numbered from
    ``first_row`` + 1 (a partition of a data set starts past 0)."""
    prepare = BatchPreparer(bundle, name, totals, first_row)
    summary.imputed = bundle.preparation.missing is MissingPolicy.IMPUTE
    calibrated = bundle.score_distribution()
    for batch in tuned(batches, lambda b: b.num_rows):
        (xs, mask, imputed), offset = prepare(batch)
        rows = np.arange(offset + 1, offset + batch.num_rows + 1)
        if mask is not None:
            rows = rows[mask]
        scored = bundle.autoencoder.score_parts(xs, prepare.workspace, imputed)  # the one score
        xs_hat, sq, errors, scores = scored.xs_hat, scored.sq, scored.errors, scored.scores
        totals.add(bundle, sq, imputed)
        p_value = calibrated.p_value(scores)  # NaN for a NaN score
        pct = 100.0 * (1.0 - p_value)
        # A score that is not a number (an overflow, or a row with nothing observed) is
        # flagged: it is never evidence that the row is normal.
        flagged = ~(scores <= summary.threshold)
        unscored = ~np.isfinite(scores)
        summary.not_finite += int(unscored.sum())
        n_imputed = (np.zeros(len(errors), dtype=np.int64) if imputed is None
                     else imputed.sum(axis=1))
        summary.rows += len(errors)
        summary.flagged += int(flagged.sum())
        ranked = np.where(np.isnan(scores), np.inf, scores)  # ranks first, as inf does
        worst = _largest(ranked, top)
        worst_flagged = _largest(np.where(flagged, ranked, -np.inf),
                                 min(int(flagged.sum()), summary.keep_flagged))
        interesting = np.union1d(np.flatnonzero(flagged), worst)
        # the values as the input has them, and the reconstructions: these rows only
        at = interesting if mask is None else np.flatnonzero(mask)[interesting]
        X, X_hat, unseen = originals(bundle, batch.take(pa.array(at, type=pa.int64())),
                                     xs_hat[interesting])
        code = None if scored.sigmas is None else (
            errors[interesting], scored.code_term[interesting], scored.sigmas[interesting])
        evidence = getattr(bundle.autoencoder, "evidence_", None)
        tails = None
        if evidence is not None:
            with np.errstate(over="ignore", invalid="ignore"):  # an overflow: its row's score
                codes = bundle.autoencoder.network_.encode(xs[interesting])
            tails = evidence.explained(errors[interesting] + scored.code_term[interesting],
                                       xs[interesting], codes)
        tops = dict(zip(interesting.tolist(),
                        explain(sq[interesting], X, X_hat, bundle.features, unseen=unseen,
                                code=code, tails=tails),
                        strict=True))
        kept = output_batch(batch, keep, mask, {})  # pass-through values of the rows scored
        for heap, size, chosen in ((summary.worst, top, worst),
                                   (summary.flagged_worst, summary.keep_flagged, worst_flagged)):
            for i in chosen.tolist():
                if len(heap) >= size and (float(ranked[i]), int(rows[i])) <= heap[0][:2]:
                    continue  # would not stay: build nothing for it
                item = {"row": int(rows[i]), "score": float(scores[i]),
                        "error": float(errors[i]),
                        "percentile": float(pct[i]), "p_value": float(p_value[i]),
                        "flagged": bool(flagged[i]),
                        "imputed": int(n_imputed[i]), "top_features": tops[i],
                        "keep": _values(kept, i)}
                if unscored[i]:  # why the JSON's score is null
                    item["score_note"] = _why_unscored(bundle, scored, xs, i, int(rows[i]))
                summary.add(heap, size, float(ranked[i]), int(rows[i]), item)
        top_text = [""] * len(errors)
        for i in np.flatnonzero(flagged).tolist():
            top_text[i] = format_explanation(tops[i])
        columns = {"row": rows, "score": scores, "error": errors, "percentile": pct,
                   "p_value": p_value, "flagged": flagged}
        if summary.imputed:
            columns["imputed"] = n_imputed
        columns["top_features"] = top_text
        yield output_batch(batch, keep, mask, columns, "_score")
