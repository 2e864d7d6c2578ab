"""Glue between tables (``aecli.io``) and feature matrices, shared by the commands."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..errors import DataError
from ..io import TableWriter, numeric_columns, read_table, to_matrix
from ..preprocessing import choose_feature_columns


def load_features(data, input_format, columns, exclude, dtype=np.float64):
    """Read a whole table and pick its feature columns.

    Returns
    -------
    X : ndarray (n, d)
        Raw values, NaN where missing.
    features : list of str
    unused : list of str
        Columns present but not used as features.
    """
    table = read_table(data, input_format)
    features, unused = choose_feature_columns(
        table.schema.names, numeric_columns(table.schema), columns=columns, exclude=exclude
    )
    name = "<stdin>" if data in (None, "-") else str(data)
    return to_matrix(table, features, dtype=dtype, name=name), features, unused


def write_columns(dest, columns: dict[str, list], fmt=None) -> None:
    """Write a small table given as named lists (e.g. the loss history)."""
    with TableWriter(dest, fmt) as out:
        out.write(pa.table(columns))


def check_keep(schema: pa.Schema, keep: list[str] | None, name: str) -> list[str]:
    """The pass-through columns, each checked to exist in the input."""
    keep = keep or []
    absent = [c for c in keep if c not in schema.names]
    if absent:
        raise DataError(f"{name}: --keep names column(s) not in the input: {', '.join(absent)}",
                        hint=f"available columns: {', '.join(schema.names[:20])}")
    return keep
