"""Array checks shared by the preprocessing modules, which, unlike the estimators, accept NaN."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import DataError
from ..estimators.checks import as_real_2d

MAX_ROWS_SHOWN = 5


def as_float_2d(X, *, min_samples: int = 0, name: str = "X") -> np.ndarray:
    """``X`` as a 2-D float32 (kept) or float64 array, without copying when already one;
    NaN and infinity are left for the caller to judge (see ``validation.as_real_2d``)."""
    return as_real_2d(X, min_samples=min_samples, name=name)


class AllowsNaN:
    """Tells scikit-learn's checks that NaN is accepted (as a missing value)."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


def column_label(names: Sequence[str] | None, j: int) -> str:
    """How messages name column ``j``: ``'price'``, or ``column 3`` (1-based) without names."""
    return f"column {names[j]!r}" if names is not None else f"column {j + 1}"


def row_list(rows: Sequence[int], count: int) -> str:
    """``row 4`` / ``rows 4, 9, 12`` / ``rows 4, 9, 12, 15, 20, ...`` for messages."""
    shown = ", ".join(str(r) for r in rows)
    more = ", ..." if count > len(rows) else ""
    return f"row{'s' if count > 1 else ''} {shown}{more}"


def row_numbers(index: np.ndarray, row_offset: int = 0, rows: np.ndarray | None = None
                ) -> np.ndarray:
    """The input row numbers (1-based data rows) of the rows ``index`` of a chunk: ``rows``
    (each row's number, for a chunk gathered from across the input) or ``row_offset`` + 1..n."""
    return rows[index] if rows is not None else index + 1 + row_offset


def reject_infinite(X: np.ndarray, names: Sequence[str] | None = None, row_offset: int = 0,
                    rows: np.ndarray | None = None):
    """Raise DataError naming the columns and rows of any infinite value in ``X`` (n, d).

    Infinity is never treated as missing: it is most often an overflow or a bad export, and
    filling it in would hide that. Rows are numbered as :func:`row_numbers` says.
    """
    # NaN and infinity both make the sum non-finite, so clean data costs one fast reduction.
    with np.errstate(over="ignore", invalid="ignore"):
        if X.dtype.kind != "f" or np.isfinite(X.sum()):
            return
    inf = np.isinf(X)  # (n, d)
    counts = inf.sum(axis=0)
    bad = np.flatnonzero(counts)
    if len(bad) == 0:
        return
    parts = []
    for j in bad[:MAX_ROWS_SHOWN]:
        first = row_numbers(np.flatnonzero(inf[:, j])[:MAX_ROWS_SHOWN], row_offset, rows)
        parts.append(
            f"{column_label(names, j)} has {counts[j]} infinite "
            f"value{'s' if counts[j] > 1 else ''} ({row_list(first.tolist(), counts[j])})"
        )
    if len(bad) > MAX_ROWS_SHOWN:
        parts.append(f"and {len(bad) - MAX_ROWS_SHOWN} more columns")
    raise DataError(
        "; ".join(parts),
        hint="infinite values are never imputed or dropped: fix them in the data or filter "
        "those rows out first",
    )
