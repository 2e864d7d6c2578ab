"""Numbers and a row's explanation as short strings: the one text of each, shared by the
outputs the pipeline writes (a score's ``top_features`` column, the summary's
``architecture``) and the reports in :mod:`aecli.report`, which sit above it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any

MISSING = "—"


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
