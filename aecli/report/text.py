"""Numbers, lists and loss curves as short strings, for the tables in :mod:`aecli.report`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any

MISSING = "—"
BARS = "▁▂▃▄▅▆▇█"
LOG_SPAN = 100.0  # auto log scale when max / min exceeds two decades


def as_number(x: Any) -> float | None:
    """``x`` as a finite-or-infinite float, or None when it is missing (None, NaN, not a number)."""
    if x is None or isinstance(x, bool) or not isinstance(x, Real):
        return None
    x = float(x)
    return None if math.isnan(x) else x


def fmt(x: Any, digits: int = 4) -> str:
    """Format a number for a table: integers exactly, other reals to ``digits`` significant digits.

    ``None`` and NaN give ``"—"``; infinities give ``"inf"``/``"-inf"``; a value that is not a
    number (a string, say) is returned as ``str(x)``.

    Examples
    --------
    >>> fmt(0.000123456), fmt(1234.5678), fmt(1500), fmt(None), fmt(float("nan"))
    ('0.0001235', '1235', '1,500', '—', '—')
    """
    if x is None:
        return MISSING
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, Integral):
        return f"{int(x):,}"
    if not isinstance(x, Real):
        return str(x)
    x = float(x)
    if math.isnan(x):
        return MISSING
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{digits}g}"


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


def format_architecture(layers: Sequence[Mapping[str, Any]]) -> str:
    """``"64 → 32 → 2 → 32 → 64"`` from layer dicts with ``in`` and ``out`` sizes."""
    if not layers:
        return MISSING
    sizes = [layers[0]["in"], *(layer["out"] for layer in layers)]
    return " → ".join(str(s) for s in sizes)


def format_explanation(top: Sequence[Mapping[str, Any]]) -> str:
    """``p48=16 (expected 0.3, 86%); code 3.1 sd from training (9%)``: a row's largest
    contributions to its score, each a feature with its value and the model's reconstruction
    in original units, or the code's distance from the training rows' codes, with its share
    of the row's score."""
    return "; ".join(_contribution(t) for t in top)


def _contribution(t: Mapping[str, Any]) -> str:
    share = _share(t)
    if t.get("code"):
        return f"code {fmt(t['distance'], 2)} sd from training ({share})"
    return (f"{t['feature']}={fmt(t['value'])} ("
            + ("a level unseen at training; " if t.get("unseen") else "")
            + f"expected {fmt(t['expected'])}, {share})")


def _share(t: Mapping[str, Any]) -> str:
    """A contribution's share of the score as a percentage; ``overflow`` for a part that
    overflowed (it has no share: the score is infinite or not a number), never ``nan%``."""
    share = as_number(t.get("share"))
    if t.get("overflow") or share is None or not math.isfinite(share):
        return "overflow" if t.get("overflow") else MISSING
    return f"{share:.0%}"
