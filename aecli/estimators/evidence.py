"""The default score of a numeric table fitted in memory: four kinds of evidence, each as a
p-value, combined by Fisher's method.

The autoencoder's score (the reconstruction error plus the code's T², :mod:`.scoring`)
sees a row whose columns disagree with one another, or that lies far from the centre of the
codes. It misses kinds of strange row that real tables hold:

- a row extreme in one column that the network reconstructs anyway, or whose cell drowns
  among the large errors a sparse or skewed column gives every row, or that sits below the
  dense low end of a skewed column: the *column tails*, each cell's empirical tail
  probabilities among the training rows' values of its column, as COPOD sums them (Li et
  al. 2020): ``-ln p`` of the left tails over the columns, of the right tails, and of each
  column's long tail (by its skewness), the largest of the three;
- a row between clusters, which one Gaussian T² calls central: the *neighbours*, the mean
  distance to the ``NEIGHBOURS`` nearest of up to ``REFERENCE_ROWS`` training rows, after
  the nearest (so that a training row scored again is measured as one left out of the
  reference, as the calibration rows are), in the scaled columns (a kNN detector's
  evidence) and among the codes (the clusters the network found).

Each statistic is turned into a p-value among calibration rows (the autoencoder's score
among the out-of-fold or validation scores that calibrate it, :mod:`.calibration`; the
others among the same rows' values), so that no term drowns another whatever its units, and
the row's score is Fisher's statistic, ``-sum w ln p`` over the four, weighted by
``WEIGHTS`` (the code neighbours at half weight, see there). Its threshold and p-value
come from the calibration rows' statistics, as every score's do. The measurements behind the
choice are in ``bench/README.md`` (wide detection).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .calibration import ScoreDistribution
from .ensemble import mean_scores

NEIGHBOURS = 10  # neighbours whose mean distance is the evidence (models before: 5)
# Fisher's weights of the four parts (autoencoder, column tails, row and code neighbours):
# the code neighbours at half weight, as they largely repeat the row neighbours (the codes
# are the rows compressed). Models fitted before weights were kept: equal weights, 5
# neighbours (``from_arrays``).
WEIGHTS = (1.0, 1.0, 1.0, 0.5)
REFERENCE_ROWS = 1000  # training rows whose codes the neighbours are sought among
COLUMN_LEVELS = 1000  # most quantiles kept per column for the tail probabilities
LEVELS = np.linspace(0.0, 1.0, 101)  # quantiles kept of each evidence's calibration values
CHUNK = 4096  # rows whose distances to the reference codes are held at once


@dataclass(frozen=True)
class Evidence:
    """What a model with the combined score keeps to score a row (see the module)."""

    columns: np.ndarray  # (m, d) each column's training values' quantiles (scaled units)
    left: np.ndarray  # (d,) 1 where a column's training values skew left (a long low tail)
    rows: np.ndarray  # (r, d) reference training rows (scaled)
    codes: np.ndarray  # (r, k) their codes (the main model's)
    # the calibration rows' autoencoder scores, column tails, row and code neighbours
    dists: tuple[ScoreDistribution, ...]
    neighbours: int = NEIGHBOURS  # whose mean distance is the row and code neighbours'
    weights: tuple[float, ...] = WEIGHTS  # of the four parts' -ln p in Fisher's sum

    def tail_statistic(self, xs: np.ndarray) -> np.ndarray:
        """Each row's column-tail evidence (n,), as COPOD sums it: ``-ln`` each cell's
        left-tail probability among its column's training values, summed over the columns;
        the same of the right tails; and of each column's long tail (left where it skews
        left): the largest of the three sums."""
        q, m = self.columns, len(self.columns)
        # -ln max(c / m, 1 / m) for every count c of quantiles: looked up, not computed per cell
        minus_log = -np.log(np.maximum(np.arange(m + 1), 1) / m)
        sums = np.zeros((3, len(xs)))
        low, high = np.empty(len(xs)), np.empty(len(xs))
        for j, x in _columns(xs):
            order = np.argsort(x)  # sorted keys: searchsorted is then a few times faster
            ordered = x[order]
            low[order] = minus_log[np.searchsorted(q[:, j], ordered, side="right")]
            high[order] = minus_log[m - np.searchsorted(q[:, j], ordered, side="left")]
            sums += (low, high, low if self.left[j] else high)
        return sums.max(axis=0)

    def explained(self, scores: np.ndarray, xs: np.ndarray, codes: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """What explains rows' combined scores (arguments as :meth:`statistics`): the
        autoencoder's, the column tails' and the code neighbours' shares of each (n,), and
        each cell's tail evidence (n, d), ``-ln`` its two-sided tail probability among its
        column's values."""
        stats = self.statistics(scores, xs, codes)
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.array([-w * np.log(d.p_value(v)) for d, v, w in
                             zip(self.dists, stats, self.weights, strict=True)])  # (4, n)
            total = logs.sum(axis=0)
            share = np.where(total > 0, logs / np.where(total > 0, total, 1.0), 0.0)
        q, m = self.columns, len(self.columns)
        cells = np.empty(xs.shape)
        for j in range(q.shape[1]):
            x = np.asarray(xs[:, j], dtype=np.float64)
            below = np.searchsorted(q[:, j], x, side="right") / m
            above = (m - np.searchsorted(q[:, j], x, side="left")) / m
            cells[:, j] = -np.log(np.maximum(np.minimum(below, above), 1.0 / m))
        return share[0], share[1], share[3], cells

    def neighbour_distance(self, codes: np.ndarray) -> np.ndarray:
        """Each code's mean distance (n,) to its ``neighbours`` nearest reference codes
        after the nearest."""
        return neighbour_distance(self.codes, codes, self.neighbours)

    def statistics(self, scores: np.ndarray, xs: np.ndarray, codes: np.ndarray) -> tuple:
        """The four statistics of rows ``xs`` (n, d), scaled, whose autoencoder ``scores``
        (n,) and main-model ``codes`` (n, k) are given."""
        return (scores, self.tail_statistic(xs),
                neighbour_distance(self.rows, xs, self.neighbours),
                self.neighbour_distance(codes))

    def combine(self, scores: np.ndarray, xs: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """The combined scores (n,) of rows (arguments as :meth:`statistics`); a score that
        is not finite stays as it is (an overflow is reported from it)."""
        stats = self.statistics(scores, xs, codes)
        return fisher([d.p_value(v) for d, v in zip(self.dists, stats, strict=True)],
                      scores, self.weights)

    @classmethod
    def fit(cls, xs_train: np.ndarray, reference: np.ndarray, codes: np.ndarray,
            scores_cal: np.ndarray, xs_cal: np.ndarray, codes_cal: np.ndarray
            ) -> tuple[Evidence, np.ndarray]:
        """The evidence of training rows ``xs_train`` (n, d), some of which (``reference``)
        with their ``codes`` are the neighbours sought, and the calibration rows' combined
        scores (c,): the calibration rows ``xs_cal`` with their codes and autoencoder scores
        ``scores_cal``."""
        bare = cls.uncalibrated(xs_train, reference, codes)
        return bare.calibrated(bare.statistics(scores_cal, xs_cal, codes_cal))

    @classmethod
    def uncalibrated(cls, xs_train: np.ndarray, reference: np.ndarray, codes: np.ndarray
                     ) -> Evidence:
        """The evidence of :meth:`fit` before calibration (no ``dists``): a fit whose
        calibration rows are scored elsewhere (a cluster's workers) computes their
        :meth:`statistics` from it, then :meth:`calibrated`."""
        xs_train = np.asarray(xs_train, dtype=np.float64)
        levels = np.linspace(0.0, 1.0, min(len(xs_train), COLUMN_LEVELS))
        columns = _quantiles(xs_train, levels)
        centred = xs_train - xs_train.mean(axis=0)
        left = (np.einsum("ij,ij,ij->j", centred, centred, centred) < 0).astype(np.float64)
        return cls(columns, left, np.asarray(reference, dtype=np.float64),
                   np.asarray(codes, dtype=np.float64), ())

    def calibrated(self, stats: tuple) -> tuple[Evidence, np.ndarray]:
        """This evidence calibrated on the calibration rows' four ``stats`` (as
        :meth:`statistics` gives them, the autoencoder's scores first), and those rows'
        combined scores (c,)."""
        dists = tuple(_distribution(v) for v in stats)
        evidence = replace(self, dists=dists)
        return evidence, fisher([d.p_value(v) for d, v in zip(dists, stats, strict=True)],
                                stats[0], self.weights)

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays a model file keeps (see :func:`from_arrays`)."""
        return {"evidence.columns": self.columns, "evidence.left": self.left,
                "evidence.rows": self.rows,
                "evidence.codes": self.codes,
                "evidence.quantiles": np.stack([d.quantiles for d in self.dists]),
                "evidence.counts": np.array([float(d.rows) for d in self.dists]),
                "evidence.settings": np.array([float(self.neighbours), *self.weights])}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Evidence | None:
        """The evidence a model file keeps; None for a file without (another score rule)."""
        if "evidence.columns" not in arrays:
            return None
        quantiles, counts = arrays["evidence.quantiles"], arrays["evidence.counts"]
        if np.any(np.diff(quantiles, axis=1) < 0) or np.any(np.diff(
                arrays["evidence.columns"], axis=0) < 0) or np.any(counts < 1):
            raise ValueError("the score's evidence arrays are not sorted quantiles")
        # a file without settings was fitted when the neighbours were 5 and weights equal
        settings = np.asarray(arrays.get("evidence.settings", [5.0, 1.0, 1.0, 1.0, 1.0]),
                              dtype=np.float64)
        if settings.shape != (5,) or not np.all(np.isfinite(settings)) or np.any(
                settings < 0) or settings[0] < 1 or settings[0] != np.round(settings[0]):
            raise ValueError("the score's evidence settings are not a neighbour count and "
                             "4 weights")
        return cls(*(arrays[f"evidence.{n}"].astype(np.float64)
                     for n in ("columns", "left", "rows", "codes")),
                   tuple(ScoreDistribution.from_quantiles(q, int(n))
                         for q, n in zip(quantiles, counts, strict=True)),
                   neighbours=int(settings[0]),
                   weights=tuple(float(w) for w in settings[1:]))


def _columns(X: np.ndarray, block: int = 64):
    """Each column of ``X`` (n, d) in turn, as contiguous float64 (j, column): transposed a
    block of columns at a time, which keeps the copy in cache on a wide table."""
    for start in range(0, X.shape[1], block):
        part = np.ascontiguousarray(X[:, start:start + block].T, dtype=np.float64)
        yield from enumerate(part, start=start)


def _quantiles(X: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Each column's quantiles (len(levels), d) at ``levels``, interpolated linearly as
    ``np.quantile`` does, from one sort of the columns (``np.quantile`` partitions once per
    level: seconds on a wide table)."""
    ordered = np.sort(X, axis=0)
    position = levels * (len(X) - 1)
    below = np.floor(position).astype(np.intp)
    above = np.minimum(below + 1, len(X) - 1)
    t = (position - below)[:, None]
    a, b = ordered[below], ordered[above]
    return np.where(t < 0.5, a + (b - a) * t, b - (b - a) * (1 - t))


def neighbour_distance(ref: np.ndarray, points: np.ndarray, neighbours: int = NEIGHBOURS
                       ) -> np.ndarray:
    """Each point's mean distance (n,) to its ``neighbours`` nearest among ``ref`` (r, w),
    after the nearest."""
    k = max(1, min(neighbours, len(ref) - 1))
    ref_sq = np.einsum("ij,ij->i", ref, ref)
    out = np.empty(len(points))
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, len(points), CHUNK):
            z = np.asarray(points[start:start + CHUNK], dtype=np.float64)
            d2 = np.einsum("ij,ij->i", z, z)[:, None] - 2.0 * z @ ref.T + ref_sq
            d2 = np.sort(np.partition(np.maximum(d2, 0.0), min(k, len(ref) - 1),
                                      axis=1)[:, :k + 1], axis=1)
            out[start:start + CHUNK] = np.sqrt(d2[:, 1:k + 1]).mean(axis=1)
    return out


def fisher(p_values: list[np.ndarray], scores: np.ndarray,
           weights: tuple[float, ...] = WEIGHTS) -> np.ndarray:
    """Fisher's statistic ``-sum w ln p`` of the ``p_values`` (each (n,)), with their
    ``weights``; the autoencoder's ``scores`` pass through where they are not finite."""
    with np.errstate(divide="ignore", invalid="ignore"):
        # + 0.0: never -0.0 (all p = 1)
        total = -sum(w * np.log(p) for p, w in zip(p_values, weights, strict=True)) + 0.0
    return np.where(np.isfinite(scores), total, scores)


def combined(ae, scores: np.ndarray, xs: np.ndarray, workspace=None) -> np.ndarray:
    """The scores (n,) of an estimator ``ae`` whose autoencoder scores of rows ``xs`` (n, d)
    are ``scores``: combined with the evidence (see :class:`Evidence`) when ``ae`` has it,
    else ``scores`` themselves."""
    evidence = getattr(ae, "evidence_", None)
    if evidence is None:
        return scores
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is found from scores
        codes = np.concatenate([ae.network_.encode(xs[i:i + CHUNK], workspace)
                                for i in range(0, max(len(xs), 1), CHUNK)])
    return evidence.combine(scores, xs, codes)


def add_evidence(ae, X_train: np.ndarray, own_rows: np.ndarray,
                 calibration: tuple[np.ndarray, np.ndarray],
                 own_imputed: np.ndarray | None = None) -> None:
    """Give the fitted estimator ``ae`` the combined score: its evidence from its training
    rows ``X_train`` and its ``calibration`` rows (their scaled values and autoencoder
    scores), and its calibration moved to the combined scores, the threshold's floor from
    its scores of its own rows ``own_rows`` (see :func:`aecli.estimators.calibration.
    calibrate`), their ``own_imputed`` cells left out as ``aecli score`` leaves them."""
    network, (xs_cal, scores_cal) = ae.network_, calibration
    own = mean_scores(ae.score_models(), own_rows, own_imputed)
    pick = np.sort(np.random.default_rng(ae.seed).choice(
        len(X_train), min(len(X_train), REFERENCE_ROWS), replace=False))
    evidence, combined = Evidence.fit(X_train, X_train[pick], network.encode(X_train[pick]),
                                      scores_cal, xs_cal, network.encode(xs_cal))
    if xs_cal is own_rows and np.array_equal(own, scores_cal, equal_nan=True):
        own_combined = combined  # calibrated on its own rows: their combined scores are known
    else:
        own_combined = evidence.combine(own, own_rows, network.encode(own_rows))
    use_evidence(ae, evidence, combined, own_combined)


def use_evidence(ae, evidence: Evidence, combined: np.ndarray, own_combined: np.ndarray
                 ) -> None:
    """Give the fitted estimator ``ae`` the combined score of ``evidence``: its calibration
    moved to the calibration rows' ``combined`` scores, the threshold's floor from its own
    training rows' (``own_combined``)."""
    from .calibration import calibrate
    from .finish import QUANTILE_LEVELS

    ae.evidence_ = evidence
    ae.score_quantiles_ = np.quantile(combined, QUANTILE_LEVELS)
    ae.calibration_ = calibrate(combined, ae.contamination, ae.calibration_.source,
                                own_combined)
    ae.threshold_ = ae.calibration_.threshold
    ae.calibration_rows_ = len(combined)


def _distribution(values: np.ndarray) -> ScoreDistribution:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return ScoreDistribution.from_quantiles(np.quantile(v, LEVELS), len(v))
