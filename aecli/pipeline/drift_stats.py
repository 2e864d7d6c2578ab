"""The tests behind ``aecli drift``, in NumPy and :mod:`math` (aecli does not need SciPy at
run time; the tests check each against SciPy's).

- :func:`ks_statistic` and :func:`ks_p_value`: the two-sample Kolmogorov-Smirnov test, its
  statistic from counts (so a batch larger than memory is counted as it streams by), its
  p-value from the Kolmogorov distribution at Stephens' corrected argument
  ``(sqrt(ne) + 0.12 + 0.11 / sqrt(ne)) * D``, ``ne = n m / (n + m)`` (Stephens 1970;
  Numerical Recipes 14.3), which is close to the exact distribution from ten rows on; and
  :func:`ks_p_value_greater`, the one-sided test's;
- :func:`chi2_sf` (the regularized upper incomplete gamma function) and
  :func:`chi2_homogeneity`: Pearson's chi-squared test that two samples share their level
  frequencies, levels expected fewer than five times pooled (the test's usual condition);
- :func:`fisher_exact`: the two-sided exact test of a 2 x 2 table, for a missing rate too
  rare for chi-squared (one missing cell in a batch when training had none is no evidence);
- :func:`holm`: Holm's step-down correction of p-values for the number of tests, which
  controls the chance of any false alarm as Bonferroni does and is never less powerful.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["chi2_homogeneity", "chi2_sf", "fisher_exact", "holm", "kolmogorov_sf",
           "ks_p_value", "ks_p_value_greater", "ks_statistic", "proportions_test"]

MIN_EXPECTED = 5.0  # the expected count below which a chi-squared cell is pooled


def kolmogorov_sf(x: float) -> float:
    """``P(K > x)`` of the Kolmogorov distribution: ``2 sum (-1)^(k-1) exp(-2 k^2 x^2)``,
    and for small ``x``, where that series converges slowly, the equivalent
    ``1 - sqrt(2 pi) / x sum exp(-(2k-1)^2 pi^2 / (8 x^2))``."""
    if not x > 0:
        return 1.0
    if x < 1.0:
        s = sum(math.exp(-((2 * k - 1) ** 2) * math.pi ** 2 / (8 * x * x)) for k in range(1, 8))
        return min(1.0, max(0.0, 1.0 - math.sqrt(2 * math.pi) / x * s))
    s = sum((-1) ** (k - 1) * math.exp(-2.0 * k * k * x * x) for k in range(1, 101))
    return min(1.0, max(0.0, 2.0 * s))


def ks_p_value(d: float, n: int, m: int) -> float:
    """The p-value of the two-sample statistic ``d`` of samples of ``n`` and ``m`` values."""
    if n <= 0 or m <= 0:
        return 1.0
    ne = n * m / (n + m)
    root = math.sqrt(ne)
    return kolmogorov_sf((root + 0.12 + 0.11 / root) * d)


def ks_p_value_greater(d: float, n: int, m: int) -> float:
    """The p-value of the one-sided two-sample statistic ``d = sup (F_ref - F_batch)`` (the
    batch's values larger), of samples of ``n`` batch and ``m`` reference values, by Hodges'
    approximation (Hodges 1958, eq. 5.3; SciPy's asymptotic one-sided p-value)."""
    if n <= 0 or m <= 0 or not d > 0:
        return 1.0
    big, small = max(n, m), min(n, m)
    z = math.sqrt(n * m / (n + m)) * d
    return min(1.0, math.exp(-2 * z * z - 2 * z * (big + 2 * small)
                             / math.sqrt(big * small * (big + small)) / 3.0))


def ks_statistic(ref_le: np.ndarray, ref_lt: np.ndarray, m: int, batch_le: np.ndarray,
                 batch_lt: np.ndarray, n: int) -> float:
    """The two-sample statistic ``sup |F_ref - F_batch|`` from counts at the reference's
    distinct values ``u`` (sorted): how many of the ``m`` reference and ``n`` batch values
    are ``<= u_i`` (``*_le``) and ``< u_i`` (``*_lt``). Exact: between two reference values
    the reference's ECDF is flat and the batch's rises, so the supremum is reached at one of
    the two ends, which these counts give."""
    if n == 0 or m == 0 or len(ref_le) == 0:
        return 0.0
    at = np.abs(ref_le / m - batch_le / n)
    before = np.abs(ref_lt / m - batch_lt / n)
    return float(max(at.max(), before.max()))


def _gamma_series(a: float, x: float) -> float:
    """The regularized lower incomplete gamma P(a, x) by its series (x < a + 1)."""
    term = total = 1.0 / a
    ap = a
    for _ in range(10_000):
        ap += 1.0
        term *= x / ap
        total += term
        if abs(term) < abs(total) * 1e-16:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _gamma_fraction(a: float, x: float) -> float:
    """The regularized upper incomplete gamma Q(a, x) by its continued fraction (modified
    Lentz; x >= a + 1)."""
    tiny = 1e-300
    b = x + 1.0 - a
    c, d = 1.0 / tiny, 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def chi2_sf(x: float, df: int) -> float:
    """``P(X > x)`` for X chi-squared with ``df`` degrees of freedom: ``Q(df/2, x/2)``."""
    if df <= 0 or not x > 0:
        return 1.0
    if math.isinf(x):
        return 0.0
    a, h = df / 2.0, x / 2.0
    if h < a + 1.0:
        return min(1.0, max(0.0, 1.0 - _gamma_series(a, h)))
    return min(1.0, max(0.0, _gamma_fraction(a, h)))


def chi2_homogeneity(ref: np.ndarray, batch: np.ndarray) -> tuple[float, int, float]:
    """Pearson's test that two samples' counts per level (``ref``, ``batch``: (L,)) come from
    the same frequencies: ``(statistic, degrees of freedom, p-value)``. Levels expected fewer
    than :data:`MIN_EXPECTED` times in either sample are pooled into one; with fewer than
    two levels left there is nothing to test (statistic 0, p-value 1)."""
    table = np.vstack([np.asarray(ref, dtype=np.float64), np.asarray(batch, dtype=np.float64)])
    table = table[:, table.sum(axis=0) > 0]
    total = table.sum()
    if total == 0 or (table.sum(axis=1) == 0).any():
        return 0.0, 0, 1.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / total
    rare = expected.min(axis=0) < MIN_EXPECTED
    if rare.any():
        table = np.c_[table[:, ~rare], table[:, rare].sum(axis=1)]
        expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / total
    if table.shape[1] < 2:
        return 0.0, 0, 1.0
    stat = float(((table - expected) ** 2 / expected).sum())
    df = table.shape[1] - 1
    return stat, df, chi2_sf(stat, df)


def fisher_exact(a: int, b: int, c: int, d: int) -> float:
    """The two-sided p-value of Fisher's exact test of the 2 x 2 table ``[[a, b], [c, d]]``:
    the probability, given the margins, of a table at most as likely as this one (within a
    relative 1e-7, as SciPy counts ties)."""
    n, k, total = a + b, a + c, a + b + c + d  # first row, first column, all
    lo, hi = max(0, n + k - total), min(n, k)
    if lo == hi:
        return 1.0
    x = np.arange(lo, hi)  # log p(x + 1) - log p(x), the hypergeometric's ratio
    steps = np.log((k - x) * (n - x)) - np.log((x + 1.0) * (total - k - n + x + 1.0))
    logp = np.concatenate([[0.0], np.cumsum(steps)])  # (hi - lo + 1,), up to a constant
    logp -= logp.max()
    p = np.exp(logp)
    observed = p[a - lo]
    return float(min(1.0, p[p <= observed * (1 + 1e-7)].sum() / p.sum()))


def proportions_test(ref_hits: int, ref_rows: int, hits: int, rows: int
                     ) -> tuple[str, float, float]:
    """Whether a share (a missing rate) differs between two samples: ``(test, statistic,
    p-value)``; chi-squared on the 2 x 2 table when every cell is expected at least
    :data:`MIN_EXPECTED` times, else Fisher's exact test (statistic: the batch's share)."""
    table = np.array([[ref_hits, ref_rows - ref_hits], [hits, rows - hits]], dtype=np.float64)
    if ref_rows == 0 or rows == 0 or table.sum(axis=0).min() == 0:
        return "chi2", 0.0, 1.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    if expected.min() >= MIN_EXPECTED:
        stat = float(((table - expected) ** 2 / expected).sum())
        return "chi2", stat, chi2_sf(stat, 1)
    return "fisher", hits / rows, fisher_exact(ref_hits, ref_rows - ref_hits, hits, rows - hits)


def holm(p_values) -> np.ndarray:
    """Holm's adjusted p-values (same order): the i-th smallest times ``m - i + 1``, made
    non-decreasing in that order, at most 1. A test is significant at level ``alpha``
    when its adjusted p-value is at most ``alpha``."""
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    out = np.empty(m)
    out[order] = adjusted
    return out
