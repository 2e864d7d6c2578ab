"""Glue between tables (``aecli.io``) and feature matrices, shared by the commands."""

from __future__ import annotations

import sys

import numpy as np
import pyarrow as pa

from ..errors import DataError, naming_input
from ..io import TableWriter, iter_batches, numeric_columns, read_table, to_matrix
from ..preprocessing import absent_column, choose_feature_columns, empty_columns


def check_stdin(data) -> None:
    """Refuse to wait for a table typed at the terminal when DATA was left out: a person who
    forgot the file name gets told so instead of a silent pause. ``-`` still reads it."""
    if data is None and sys.stdin is not None and sys.stdin.isatty():
        raise DataError("no input: DATA was not given and stdin is a terminal",
                        hint="name a file, or pipe a table in (e.g. cat data.csv | aecli ...)")


def load_features(data, input_format, columns, exclude, dtype=np.float64):
    """Read a whole table and pick its feature columns.

    Returns
    -------
    X : ndarray (n, d)
        Raw values, NaN where missing.
    features : list of str
    unused : list of str
        Columns present but not used as features, the empty ones included.
    empty : list of str
        Numeric columns left out because they are empty in every row (as scikit-learn's
        SimpleImputer drops them); one named in ``columns`` is kept, and the missing-value
        policy then speaks of it.
    """
    check_stdin(data)
    table = read_table(data, input_format)
    name = input_name(data)
    numeric = numeric_columns(table.schema)
    for column in columns or ():
        if column in table.schema.names and not numeric[table.schema.names.index(column)]:
            # Named on purpose but read as text: say which row holds what is not a number.
            to_matrix(table, [column], dtype=dtype, name=name)
    with naming_input(name):
        empty = [] if columns is not None else empty_columns(table, numeric, exclude or ())
        features, unused = choose_feature_columns(
            table.schema.names, numeric, columns=columns, exclude=[*(exclude or ()), *empty]
        )
    return to_matrix(table, features, dtype=dtype, name=name), features, unused, empty


def say_unused(err, unused: list[str], empty: list[str]) -> None:
    """Tell a person which columns are not features, and which of them are empty."""
    others = [c for c in unused if c not in empty]
    if others:
        err.print(f"not used as features: {', '.join(others)}", markup=False)
    if empty:
        err.print(f"empty in every row, so not used: {', '.join(empty)} (name a column in "
                  "--columns to use it all the same)", markup=False)


def stream_features(data, input_format, columns, exclude, chunk_rows: int = 65536):
    """Pick the feature columns from a table's schema, and return a reader that streams the
    table anew on every call, for training on data larger than memory.

    Returns
    -------
    read_chunks : callable
        ``read_chunks()`` yields raw float64 matrices (m, d), NaN where missing.
    features, unused : list of str
    """
    if data in (None, "-"):
        raise DataError("--stream reads the input once per epoch, so it needs a file, not stdin",
                        hint="save the table to a file (Parquet reads fastest) and name it")
    name = input_name(data)
    with iter_batches(data, input_format) as stream:
        schema = stream.schema
    with naming_input(name):
        features, unused = choose_feature_columns(
            schema.names, numeric_columns(schema), columns=columns, exclude=exclude
        )

    def read_chunks():
        offset = 0
        with iter_batches(data, input_format, batch_rows=chunk_rows) as batches:
            for batch in batches:
                yield to_matrix(batch, features, dtype=np.float64, row_offset=offset, name=name)
                offset += batch.num_rows

    return read_chunks, features, unused


def input_name(data) -> str:
    """How messages name the input: its path, or ``<stdin>``."""
    return "<stdin>" if data in (None, "-") else str(data)


def write_columns(dest, columns: dict[str, list], fmt=None) -> None:
    """Write a small table given as named lists (e.g. the loss history)."""
    with TableWriter(dest, fmt) as out:
        out.write(pa.table(columns))


def check_keep(schema: pa.Schema, keep: list[str] | None, name: str) -> list[str]:
    """The pass-through columns, each checked to exist in the input."""
    keep = list(dict.fromkeys(keep or []))  # a name given twice is kept once
    for column in keep:
        if column not in schema.names:
            with naming_input(name):
                raise absent_column(column, schema.names, f"--keep names column {column!r}, which")
    return keep


def check_color_by(color_by: str | None, schema: pa.Schema, keep: list[str]) -> None:
    """``--color-by`` must name an input column that is also passed through with ``--keep``."""
    if color_by is None:
        return
    if color_by not in schema.names:
        raise DataError(f"--color-by {color_by!r} is not a column of the input",
                        hint=f"available columns: {', '.join(schema.names[:20])}")
    if color_by not in keep:
        raise DataError(f"--color-by {color_by!r} must also be passed with --keep",
                        hint=f"add --keep {color_by}")
