"""Numbers, lists and loss curves as short strings, for the tables in :mod:`aecli.report`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

# Numbers and a row's explanation are written into output columns too (the pipeline's
# score output, the model file's summary), so their text lives below both in
# aecli.formatting; they are re-exported here for the reports.
from ..formatting import MISSING, as_number, fmt, format_architecture, format_explanation

__all__ = ["BARS", "MISSING", "as_number", "fmt", "format_architecture", "format_explanation",
           "sparkline", "truncate_list", "wants_log"]

BARS = "▁▂▃▄▅▆▇█"
LOG_SPAN = 100.0  # auto log scale when max / min exceeds two decades


def sparkline(values: Sequence[float], width: int = 40, log: bool | None = None) -> str:
    """Draw ``values`` as a line of ``width`` block characters, ``▁`` lowest to ``█`` highest.

    Parameters
    ----------
    values : sequence of float, length n
        The series, e.g. a loss per epoch. NaN, infinities and None are gaps.
    width : int, default 40
        Length of the result. Longer series are averaged into ``width`` buckets; shorter ones
        are stretched (each value repeated).
    log : bool or None, default None
        Plot ``log10(values)``. None chooses it when every finite value is positive and they span
        more than two decades (typical of a loss curve). Ignored when a value is not positive.

    Returns
    -------
    str
        ``""`` for an empty series, else exactly ``width`` characters; a bucket with no finite
        value is a space, and a constant series is a flat line at mid height.
    """
    if width < 1:
        raise ValueError(f"sparkline width must be at least 1, got {width!r}")
    n = len(values)
    if n == 0:
        return ""
    points: list[float | None] = []
    for v in values:
        v = as_number(v)
        points.append(v if v is not None and math.isfinite(v) else None)

    if log is None:
        log = wants_log(points)
    if log and all(v > 0 for v in points if v is not None):
        points = [None if v is None else math.log10(v) for v in points]

    buckets: list[float | None] = []
    for i in range(width):
        lo = i * n // width
        hi = max((i + 1) * n // width, lo + 1)  # stretching: at least one value per bucket
        chunk = [v for v in points[lo:hi] if v is not None]
        buckets.append(sum(chunk) / len(chunk) if chunk else None)

    shown = [v for v in buckets if v is not None]
    if not shown:
        return " " * width
    low, span = min(shown), max(shown) - min(shown)
    top = len(BARS) - 1
    chars = []
    for v in buckets:
        if v is None:
            chars.append(" ")
        elif span == 0:
            chars.append(BARS[top // 2])
        else:
            chars.append(BARS[min(top, int((v - low) / span * top + 0.5))])
    return "".join(chars)


def wants_log(values: Sequence[Any]) -> bool:
    """True when the finite values are all positive and span more than two decades."""
    finite = [v for v in map(as_number, values) if v is not None and math.isfinite(v)]
    return bool(finite) and min(finite) > 0 and max(finite) / min(finite) > LOG_SPAN


def truncate_list(items: Sequence[Any], head: int = 4, tail: int = 2) -> str:
    """Join ``items`` with commas, eliding the middle of long lists: ``a, b, …, y, z (26)``."""
    names = [str(x) for x in items]
    if len(names) <= head + tail + 1:
        return ", ".join(names)
    return ", ".join([*names[:head], "…", *names[-tail:]]) + f" ({len(names):,})"
