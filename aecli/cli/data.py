"""Glue between tables (``aecli.io``) and feature matrices, shared by the commands."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ..errors import DataError, naming_input
from ..io import BadValues, Format, TableWriter, iter_batches, read_table, to_matrix
from ..io.formats import format_from_path, is_url
from ..io.parquet import row_group_sizes
from ..io.surveyed import Surveyed, rereadable, survey_input
from ..pipeline.train_streamed import ChunkSource
from ..preprocessing import MAX_LEVELS, RawRows, Roles, absent_column, decide_roles
from .options import categorical_option


def check_stdin(data) -> None:
    """Refuse to wait for a table typed at the terminal when DATA was left out: a person who
    forgot the file name gets told so instead of a silent pause. ``-`` still reads it."""
    if data is None and sys.stdin is not None and sys.stdin.isatty():
        raise DataError("no input: DATA was not given and stdin is a terminal",
                        hint="name a file, or pipe a table in (e.g. cat data.csv | aecli ...)")


@dataclass(frozen=True)
class Reading:
    """The data options of training: which columns, how text is read, and what a bad cell
    becomes (``--columns``, ``--exclude``, ``--categorical``, ``--max-levels``,
    ``--bad-values``, ``--delimiter``, ``--decimal``, ``--input-format``)."""

    input_format: Format | None = None
    columns: list[str] | None = None
    exclude: list[str] | None = None
    categorical: str | None = None
    max_levels: int = MAX_LEVELS
    bad_values: BadValues = BadValues.ERROR
    delimiter: str | None = None
    decimal: str | None = None


def _surveyed_roles(source, input_format, reading: Reading) -> tuple[Surveyed, Roles]:
    forced, auto = categorical_option(reading.categorical)
    surveyed = survey_input(source, input_format, reading.delimiter, reading.decimal)
    with naming_input(surveyed.name):
        roles = decide_roles(surveyed.survey, columns=reading.columns, exclude=reading.exclude,
                             categorical=forced, auto_categorical=auto,
                             max_levels=reading.max_levels,
                             decimal=surveyed.dialect.decimal if surveyed.dialect else ".")
    return surveyed, roles


def load_features(data, reading: Reading) -> tuple[RawRows, Roles, Surveyed]:
    """Read a whole table, its columns' roles decided from a survey of every row first (see
    :func:`aecli.preprocessing.decide_roles`).

    Returns
    -------
    raw : RawRows
        The numeric features' raw values (NaN where missing) and the categorical columns.
    roles : Roles
    surveyed : Surveyed
        The survey, the format and the dialect found.
    """
    check_stdin(data)
    with rereadable(data, reading.input_format) as (source, fmt):
        surveyed, roles = _surveyed_roles(source, fmt, reading)
        table = read_table(source, fmt, text=surveyed.reading(roles.numeric,
                                                              bad_values=reading.bad_values))
    name = input_name(data)
    X = to_matrix(table, roles.numeric, dtype=np.float64, name=name,
                  bad_values=reading.bad_values)
    return RawRows(X, table.select(roles.categorical) if roles.categorical else None), roles, \
        surveyed


def say_roles(err, roles: Roles, surveyed: Surveyed | None = None) -> None:
    """Tell a person how the input was read and what each column is used as, and how to
    change it."""
    dialect = surveyed.dialect if surveyed is not None else None
    if dialect is not None and dialect.unusual():
        err.print(f"read as {dialect.describe()} (detected; --delimiter and --decimal "
                  "override)", markup=False)
    for line in roles.lines():
        err.print(line, markup=False)


def stream_features(data, reading: Reading, chunk_rows: int = 65536):
    """Decide the columns' roles from a survey of every row, and return a reader that
    streams the table anew on every call, for training on data larger than memory.

    Returns
    -------
    read_chunks : ChunkSource
        ``read_chunks()`` yields :class:`RawRows` chunks; of a local Parquet file of several
        row groups, ``read_chunks.shuffled(rng)`` reads them in a random order.
    roles : Roles
    surveyed : Surveyed
    """
    if data in (None, "-"):
        raise DataError("--stream reads the input once per epoch, so it needs a file, not stdin",
                        hint="save the table to a file (Parquet reads fastest) and name it")
    name = input_name(data)
    input_format, bad_values = reading.input_format, reading.bad_values
    surveyed, roles = _surveyed_roles(data, input_format, reading)
    text = surveyed.reading(roles.numeric, bad_values=bad_values)

    def rows_of(batches, offset: int) -> Iterator[tuple[int, RawRows]]:
        for batch in batches:
            X = to_matrix(batch, roles.numeric, dtype=np.float64, row_offset=offset,
                          name=name, bad_values=bad_values)
            cat = pa.Table.from_batches([batch.select(roles.categorical)]) \
                if roles.categorical else None
            yield offset, RawRows(X, cat)
            offset += batch.num_rows

    def read_chunks() -> Iterator[RawRows]:
        with iter_batches(data, input_format, batch_rows=chunk_rows, text=text) as batches:
            for _, rows in rows_of(batches, 0):
                yield rows

    sizes = _row_groups(data, input_format)
    if sizes is None:
        return ChunkSource(read_chunks), roles, surveyed
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)

    def shuffled(rng: np.random.Generator) -> Iterator[tuple[int, RawRows]]:
        for group in rng.permutation(len(sizes)).tolist():  # a fresh order every epoch
            with iter_batches(data, input_format, batch_rows=chunk_rows, row_groups=[group],
                              text=text) as batches:
                yield from rows_of(batches, int(starts[group]))

    return ChunkSource(shuffled=shuffled, read=read_chunks), roles, surveyed


def _row_groups(data, input_format) -> list[int] | None:
    """The sizes of the row groups of a local Parquet file of more than one; None for any
    other input, which is read in its own order."""
    path = str(data)
    fmt = Format.parse(input_format) if input_format is not None else None
    if is_url(path) or not os.path.isfile(path) or (fmt or format_from_path(path)) \
            is not Format.parquet:
        return None
    sizes = row_group_sizes(path)
    return sizes if len(sizes) > 1 else None


def input_name(data) -> str:
    """How messages name the input: its path, or ``<stdin>``."""
    return "<stdin>" if data in (None, "-") else str(data)


def write_columns(dest, columns: dict[str, list], fmt=None) -> None:
    """Write a small table given as named lists (e.g. the loss history)."""
    with TableWriter(dest, fmt) as out:
        out.write(pa.table(columns))


def check_keep(schema: pa.Schema, keep: list[str] | None, name: str) -> list[str]:
    """The pass-through columns, each checked to exist in the input; ``*`` stands for every
    column of the input."""
    keep = list(dict.fromkeys(keep or []))  # a name given twice is kept once
    if "*" in keep:
        keep = list(dict.fromkeys([*schema.names, *(c for c in keep if c != "*")]))
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
