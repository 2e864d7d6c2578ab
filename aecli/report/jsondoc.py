"""The one way aecli writes a JSON document (``--json``): always valid JSON.

Python's ``json.dumps`` writes ``NaN`` and ``Infinity`` by default. Neither is JSON (RFC 8259):
JavaScript's ``JSON.parse`` refuses them and jq 1.6 reads ``Infinity`` as 1.797e308, so a
cron job's report would break exactly when a number went wrong. Here every non-finite float
becomes ``null``; where the reason matters (a row's score) the producer adds a field that says
why, as ``score`` does with ``score_note``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = ["finite_json", "json_text"]


def finite_json(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by None, NumPy scalars and arrays as
    Python ones, tuples as lists; anything else is left for the encoder's ``default``."""
    if isinstance(value, float | np.floating):
        x = float(value)
        return x if math.isfinite(x) else None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, Mapping):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return finite_json(value.tolist())
    return value


def json_text(document: Any, default: Callable[[Any], Any] | None = None) -> str:
    """``document`` as one line of strict JSON (no ``NaN``/``Infinity``), without the
    newline; ``default`` as in :func:`json.dumps` for objects JSON has no type for."""
    return json.dumps(finite_json(document), allow_nan=False, default=default)
