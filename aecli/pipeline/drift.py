"""``aecli drift``: whether a batch differs from the data a model was trained on, per column
and jointly, in one pass over the batch with bounded memory.

The reference is the model's (:mod:`.reference`: per numeric column a sample of its values
and its missing count, per categorical column its level counts; and the calibration scores,
:class:`aecli.estimators.calibration.ScoreDistribution`, the same that give ``score``'s
p-values). A batch is counted as it streams by (:class:`DriftCounts`: counts at the
reference's values, level counts, missing counts, a histogram of the scores' places among
the calibration scores), counts merge exactly, so a cluster's partitions give the counts of
one machine, and the tests are read from the counts (:func:`drift_report`):

- per numeric column, the two-sample Kolmogorov-Smirnov test of its present values;
- per categorical column, chi-squared on its level frequencies, a level training never saw
  counted as one more level ("unseen");
- per column, its missing rate (chi-squared, or Fisher's exact test when rare);
- jointly, Kolmogorov-Smirnov on the anomaly scores against the calibration scores, which
  are out-of-fold or held-out scores: a clean batch is scored like them, so the model's own
  generalisation gap is no drift, while a change in how the columns go together, which no
  single column shows, raises the scores (one-sided: see :func:`_joint`). The model keeps
  the calibration scores as their quantiles at 101 levels, so their distribution function
  is known within 1/100, and the statistic is the distance less that step.

The p-values are corrected for the number of tests by Holm's method
(:func:`aecli.pipeline.drift_stats.holm`); drift is a corrected p-value at most ``alpha``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from ..blas_threads import tuned
from ..errors import ModelFileError
from ..io import BadValues, to_matrix
from ..preprocessing import MissingPolicy
from . import drift_stats as st
from . import modelfile
from .apply import BatchPreparer, ErrorTotals
from .bundle import ModelBundle
from .sources import DataOptions, check_stdin, read_ahead, read_for_model

SCORE_BINS = 1 << 14  # the scores' places among the calibration scores, counted per 1/16384
UNSEEN_NAMES = 5  # unseen levels named per column in a description
# With out-of-fold calibration, the joint test asks whether the batch scores higher than the
# calibration scores by more than this share of each score. Those scores are the six
# models' scores each mapped by rank onto out-of-fold scores, then averaged, and where it is
# dominated by an unpredictable categorical column (clusters of scores, one per level) they
# sit up to 2.5% off the ensemble's scores of new rows within each cluster: enough for a
# clean batch to read as drift (a synthetic table with such a column: p 0.01 after Holm's
# correction; with 2%: p 1). A relation the test is there for raises the scores of the rows
# it touches many times over (bench/README.md, drift); a wider margin costs small tables
# power (RAND health on 2,000 rows, its most related column permuted: caught in 20 of 20
# batches without a margin, 17 with 2%, 14 with 5%). A model calibrated on its held-out rows scored
# them itself, as it scores the batch: no margin there, where it would hide weaker relations
# (flights: dep_delay permuted, p 0.004 without, 1 with).
SCORE_MARGIN = 0.02
CORRECTION = "holm"


def checked_reference(bundle: ModelBundle, path) -> ModelBundle:
    """``bundle``, refused when its model file holds no drift reference (written before
    aecli stored one), with what to do: retrain."""
    if bundle.reference is None:
        raise ModelFileError(
            f"{path}: holds no drift reference: it was written by an aecli that did not "
            "store one at training",
            "retrain the model (aecli train DATA -o MODEL.npz) to store the reference "
            "'aecli drift' compares a batch with")
    return bundle


def scoring_policy(bundle: ModelBundle, missing: MissingPolicy | None,
                   bad_values: BadValues | None = None) -> ModelBundle:
    """The model as drift scores with it: a row with a missing cell that the model's policy
    would refuse is left out of the joint test instead (its cells still count in the
    per-column tests); ``missing`` and ``bad_values`` given override the model's."""
    from dataclasses import replace

    if missing is None:
        missing = MissingPolicy.DROP if bundle.preparation.missing is MissingPolicy.ERROR \
            else None
    return replace(bundle, preparation=bundle.preparation.with_policy(missing, bad_values))


def count_input(model, data, options: DataOptions) -> tuple[ModelBundle, DriftCounts]:
    """The model file ``model`` (refused without a drift reference) and the counts of the
    input ``data`` against it, read in one pass as the other commands read it (every
    format, stdin too; memory bounded by a batch and the counts)."""
    check_stdin(data)
    bundle = checked_reference(modelfile.read_model(model), model)
    bundle = scoring_policy(bundle, options.missing, options.bad_values)
    stream = read_for_model(bundle, data, options, [], False)
    with read_ahead(stream) as batches:
        return bundle, count_stream(bundle, batches, stream.name)


@dataclass
class DriftCounts:
    """A batch counted against the model's reference (see the module); ``merge`` adds
    the counts of more rows."""

    rows: int = 0
    missing: np.ndarray | None = None  # (d,) missing cells per numeric column
    # per numeric column, over its reference points p (distinct sampled values, sorted):
    # le[k] counts the values with exactly k points below them (x <= p_i iff k <= i), lt[k]
    # those with exactly k points at or below them (x < p_i iff k <= i)
    le: list = field(default_factory=list)
    lt: list = field(default_factory=list)
    sums: np.ndarray | None = None  # (d, 2) sum and sum of squares of the present values
    levels: dict = field(default_factory=dict)  # categorical column -> {level: count}
    scores: np.ndarray | None = None  # (SCORE_BINS + 1,) places of the scores; last: past all
    unscored: int = 0  # rows left out of the joint test (missing cells, no finite score)

    @classmethod
    def empty(cls, bundle: ModelBundle) -> DriftCounts:
        """No rows yet, shaped for ``bundle``'s reference."""
        ref = bundle.reference
        d = len(ref.numeric)
        points = [_points(ref, j) for j in range(d)]
        return cls(0, np.zeros(d, dtype=np.int64),
                   [np.zeros(len(p) + 1, dtype=np.int64) for p in points],
                   [np.zeros(len(p) + 1, dtype=np.int64) for p in points],
                   np.zeros((d, 2)), {name: {} for name in ref.levels},
                   np.zeros(SCORE_BINS + 1, dtype=np.int64))

    def add_columns(self, bundle: ModelBundle, batch: pa.RecordBatch, offset: int,
                    name: str) -> None:
        """Count the cells of ``batch`` (rows ``offset + 1 ..`` of input ``name``)."""
        ref, prep = bundle.reference, bundle.preparation
        X = to_matrix(batch, list(ref.numeric), dtype=np.float64, row_offset=offset, name=name,
                      bad_values=prep.bad_values)  # (n, d)
        self.rows += len(X)
        present = ~np.isnan(X)
        self.missing += (~present).sum(axis=0)
        for j in range(X.shape[1]):
            x = X[present[:, j], j]
            points = _points(ref, j)
            below = np.searchsorted(points, x, "left")  # (m,) points < x
            at = points[np.minimum(below, len(points) - 1)] == x if len(points) else below > 0
            self.le[j] += np.bincount(below, minlength=len(points) + 1)
            self.lt[j] += np.bincount(below + at, minlength=len(points) + 1)  # points <= x
            finite = x[np.isfinite(x)]
            self.sums[j] += (finite.sum(), (finite * finite).sum())
        if self.levels:
            import pyarrow.compute as pc

            from ..preprocessing.categorical import as_text

            for column, counts in self.levels.items():
                counted = pc.value_counts(as_text(batch.column(column)))
                for v, c in zip(counted.field("values").to_pylist(),
                                counted.field("counts").to_pylist(), strict=True):
                    counts[v] = counts.get(v, 0) + c

    def add_scores(self, places: np.ndarray) -> None:
        """Count the scores' places among the calibration scores (``below``; NaN: no score)."""
        finite = places[~np.isnan(places)]
        self.unscored += len(places) - len(finite)
        bins = np.where(finite >= 1.0, SCORE_BINS,
                        np.minimum((finite * SCORE_BINS).astype(np.int64), SCORE_BINS - 1))
        self.scores += np.bincount(bins, minlength=SCORE_BINS + 1)

    def merge(self, other: DriftCounts) -> DriftCounts:
        """The counts of both batches' rows."""
        levels = {}
        for column, mine in self.levels.items():
            theirs = other.levels[column]
            levels[column] = {v: mine.get(v, 0) + theirs.get(v, 0)
                              for v in dict.fromkeys([*mine, *theirs])}
        return DriftCounts(self.rows + other.rows, self.missing + other.missing,
                           [a + b for a, b in zip(self.le, other.le, strict=True)],
                           [a + b for a, b in zip(self.lt, other.lt, strict=True)],
                           self.sums + other.sums, levels, self.scores + other.scores,
                           self.unscored + other.unscored)


def _points(ref, j: int) -> np.ndarray:
    """The distinct sampled values of numeric column ``j``, sorted (cached per reference)."""
    cache = ref.__dict__.setdefault("_points", {})
    if j not in cache:
        cache[j] = np.unique(ref.sample(j))
    return cache[j]


def count_stream(bundle: ModelBundle, batches: Iterable[pa.RecordBatch], name: str,
                 first_row: int = 0) -> DriftCounts:
    """Count every batch of an input against the model's reference, scoring its rows with
    the model (the one score, :meth:`aecli.Autoencoder.score_parts`): one pass."""
    counts = DriftCounts.empty(bundle)
    distribution = bundle.score_distribution()
    prepare = BatchPreparer(bundle, name, ErrorTotals(), first_row)
    # out of fold (the score's ensemble, a small table): see SCORE_MARGIN; held-out rows
    # scored by the model itself need none
    margin = SCORE_MARGIN if bundle.autoencoder.members_ else 0.0
    # Scored as the calibration rows were: with the filled-in cells left out, as `score` and
    # every fit since "calibration_imputed" leave them; a model written before counted them,
    # and so are the batch's, or a clean batch of a table with gaps would score higher (weather:
    # 55% above the calibration median, not 50%).
    counted = bundle.summary.get("calibration_imputed") != "left out"
    for batch in tuned(batches, lambda b: b.num_rows):
        counts.add_columns(bundle, batch, prepare.offset, name)
        (xs, mask, imputed), _ = prepare(batch)
        scores = bundle.autoencoder.score_parts(xs, prepare.workspace,
                                                None if counted else imputed).scores
        counts.unscored += batch.num_rows - len(scores)  # rows the policy left out
        discounted = scores - margin * np.abs(scores)
        counts.add_scores(np.where(np.isnan(scores), np.nan, distribution.below(discounted)))
    return counts


@dataclass(frozen=True)
class DriftTest:
    """One test of the report."""

    column: str  # a column's name, or JOINT, "(scores)", for the joint test
    kind: str  # numeric, categorical, missing, joint
    test: str  # KS, chi2, fisher
    statistic: float
    p_value: float
    p_adjusted: float
    drift: bool
    description: str
    reference: float  # the figure the description compares: a mean, a share
    batch: float

    def to_dict(self) -> dict:
        """Plain JSON (NaN as None)."""
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                for k, v in self.__dict__.items()}


JOINT = "(scores)"


def drift_report(bundle: ModelBundle, counts: DriftCounts, alpha: float) -> dict:
    """The tests of a counted batch, corrected for their number, as plain JSON: ``rows``,
    ``rows_scored``, ``alpha``, ``correction``, ``drift`` (any test's), ``drifted`` (the
    columns that drifted, worst first), ``notes`` (what the user should know: a test left
    out) and ``tests`` (each :class:`DriftTest`, worst first)."""
    ref = bundle.reference
    raw = []  # (column, kind, test, statistic, p, description, reference, batch)
    for j, column in enumerate(ref.numeric):
        raw.append(_numeric(ref, counts, j, column))
        raw.append(_missing(column, int(ref.missing[j]), ref.rows, int(counts.missing[j]),
                            counts.rows))
    for column, ref_levels in ref.levels.items():
        batch = counts.levels[column]
        raw.append(_categorical(column, ref_levels, batch, ref.rows, counts.rows))
        raw.append(_missing(column, ref_levels.get(None, 0), ref.rows, batch.get(None, 0),
                            counts.rows))
    notes = []
    if bundle.summary.get("calibration_source") == "training rows":
        notes.append("the joint test of the anomaly scores is left out: the model's calibration "
                     "scores are of its own training rows (trained without held-out rows), "
                     "which score lower than new rows would; retrain with held-out rows "
                     "(--validation) for it")
    else:
        raw.append(_joint(bundle, counts))
    adjusted = st.holm([r[4] for r in raw])
    tests = [DriftTest(c, k, t, float(s), float(p), float(a), bool(a <= alpha), d, float(rv),
                       float(bv))
             for (c, k, t, s, p, d, rv, bv), a in zip(raw, adjusted, strict=True)]
    tests.sort(key=lambda t: (t.p_adjusted, t.p_value, -t.statistic))
    drifted = list(dict.fromkeys(t.column for t in tests if t.drift))
    scored = int(counts.scores.sum())
    return {"rows": counts.rows, "rows_scored": scored, "alpha": alpha,
            "correction": CORRECTION, "tests_run": len(tests), "drift": bool(drifted),
            "drifted": drifted, "reference_rows": ref.rows,
            "calibration_rows": bundle.score_distribution().rows, "notes": notes,
            "tests": [t.to_dict() for t in tests]}


def _numeric(ref, counts: DriftCounts, j: int, column: str) -> tuple:
    points = _points(ref, j)
    sample = ref.sample(j)
    m, n = len(sample), int(counts.le[j].sum())
    ref_le = np.searchsorted(sample, points, "right")  # (P,) sampled values <= p_i
    ref_lt = np.searchsorted(sample, points, "left")
    d = st.ks_statistic(ref_le, ref_lt, m, np.cumsum(counts.le[j])[:-1],
                        np.cumsum(counts.lt[j])[:-1], n)
    p = st.ks_p_value(d, n, m)
    finite = sample[np.isfinite(sample)]
    mean_r = float(finite.mean()) if len(finite) else np.nan
    sd_r = float(finite.std()) if len(finite) else np.nan
    s, ss = counts.sums[j]
    mean_b = s / n if n else np.nan
    sd_b = float(np.sqrt(max(ss / n - mean_b * mean_b, 0.0))) if n else np.nan
    spread = abs(np.log(sd_b / sd_r)) if n and sd_r > 0 and sd_b > 0 else 0.0
    if spread > 0.1 and spread > 2 * abs(mean_b - mean_r) / sd_r:  # the spread moved more
        return (column, "numeric", "KS", d, p, f"sd {_num(sd_r)} → {_num(sd_b)}", sd_r, sd_b)
    return (column, "numeric", "KS", d, p, f"mean {_num(mean_r)} → {_num(mean_b)}", mean_r,
            mean_b)


def _missing(column: str, ref_missing: int, ref_rows: int, missing: int, rows: int) -> tuple:
    test, stat, p = st.proportions_test(ref_missing, ref_rows, missing, rows)
    a, b = ref_missing / max(ref_rows, 1), missing / max(rows, 1)
    return (column, "missing", test, stat, p, f"missing {_pct(a)} → {_pct(b)}", a, b)


def _categorical(column: str, ref_levels: dict, batch: dict, ref_rows: int, rows: int
                 ) -> tuple:
    known = list(ref_levels)
    unseen = {v: c for v, c in batch.items() if v not in ref_levels}
    ref_counts = np.array([ref_levels[v] for v in known] + [0])
    counts = np.array([batch.get(v, 0) for v in known] + [sum(unseen.values())])
    stat, _, p = st.chi2_homogeneity(ref_counts, counts)
    ref_share = ref_counts / max(ref_rows, 1)
    share = counts / max(rows, 1)
    k = int(np.argmax(np.abs(share - ref_share)))
    if k == len(known):
        names = ", ".join(repr(v) for v in sorted(unseen, key=lambda v: -unseen[v])
                          [:UNSEEN_NAMES])
        what = f"unseen levels {_pct(0.0)} → {_pct(share[k])} ({names})"
    else:
        level = "missing" if known[k] is None else f"level {known[k]!r}"
        what = f"{level} {_pct(ref_share[k])} → {_pct(share[k])}"
    return (column, "categorical", "chi2", stat, p, what, ref_share[k], share[k])


def _joint(bundle: ModelBundle, counts: DriftCounts) -> tuple:
    """One-sided Kolmogorov-Smirnov: whether the batch scores higher than the calibration
    scores, from the scores' places among them (uniform when the batch scores like them).
    Higher only: a change in how the columns go together raises the scores, and rows the
    model was fitted on score lower than new ones, which is no drift (its own training
    table, checked as a batch, would be flagged). The histogram bounds the statistic within
    1/SCORE_BINS. The description: the share of the batch's scores above the calibration
    scores' median (50% for a batch like them)."""
    dist = bundle.score_distribution()
    n, m = int(counts.scores.sum()), dist.rows
    if n == 0:
        return (JOINT, "joint", "KS", 0.0, 1.0, "no row scored", np.nan, np.nan)
    cum = np.cumsum(counts.scores[:-1]) / n  # (B,) share of places < each bin's top
    edges = np.arange(SCORE_BINS + 1) / SCORE_BINS
    before = np.concatenate([[0.0], cum[:-1]])  # share of places below each bin
    d = float((edges[1:] - before).max())  # sup (F_ref - F_batch): the batch above
    # The calibration scores' distribution function is read from their quantiles at
    # evenly spaced levels, exact at each and monotone between, so within one level's step
    # of the truth (1/100): a distance within that step is no evidence against it.
    d = min(max(d - 1.0 / (len(dist.quantiles) - 1), 0.0), 1.0)
    over_median = 1.0 - cum[SCORE_BINS // 2 - 1]
    return (JOINT, "joint", "KS", d, st.ks_p_value_greater(d, n, m),
            f"above median {_pct(0.5)} → {_pct(over_median)}", 0.5, over_median)


def _pct(x: float) -> str:
    if not np.isfinite(x):
        return "-"
    x = 100.0 * x
    return "0%" if x == 0 else f"{x:.2g}%" if x < 1 else f"{x:.0f}%"


def _num(x: float) -> str:
    return "-" if not np.isfinite(x) else f"{x:.3g}"


def plot_panels(bundle: ModelBundle, counts: DriftCounts, report: dict, top: int = 3
                ) -> list[dict]:
    """What ``--plot`` draws, reference against batch: the anomaly scores' distribution
    functions, then the ``top`` most drifted columns' (a numeric column's distribution
    function at its sampled values, a categorical column's level shares)."""
    ref, n = bundle.reference, int(counts.scores.sum())
    dist = bundle.score_distribution()
    levels = np.linspace(0.0, 1.0, 201)
    cum = np.concatenate([[0], np.cumsum(counts.scores)]) / max(n, 1)
    panels = [{"column": JOINT, "kind": "joint",
               "x": np.interp(levels, np.linspace(0, 1, len(dist.quantiles)),
                              dist.quantiles).tolist(),
               "reference": levels.tolist(),
               "batch": cum[np.minimum((levels * SCORE_BINS).astype(int), SCORE_BINS)].tolist()}]
    shown = []
    for t in report["tests"]:
        if t["kind"] in ("numeric", "categorical") and t["column"] not in shown:
            shown.append(t["column"])
    for column in shown[:top]:
        if column in ref.numeric:
            j = ref.numeric.index(column)
            sample, points = ref.sample(j), _points(ref, j)
            m = max(int(counts.le[j].sum()), 1)
            panels.append({"column": column, "kind": "numeric", "x": points.tolist(),
                           "reference": (np.searchsorted(sample, points, "right")
                                         / max(len(sample), 1)).tolist(),
                           "batch": (np.cumsum(counts.le[j])[:-1] / m).tolist()})
        else:
            known, batch = ref.levels[column], counts.levels[column]
            names = list(known)[:12]
            unseen = sum(c for v, c in batch.items() if v not in known)
            panels.append({"column": column, "kind": "categorical",
                           "x": [("(missing)" if v is None else str(v)) for v in names]
                           + ["(unseen)"],
                           "reference": [known[v] / max(ref.rows, 1) for v in names] + [0.0],
                           "batch": [batch.get(v, 0) / max(counts.rows, 1) for v in names]
                           + [unseen / max(counts.rows, 1)]})
    return panels
