"""Where the rows come from: a table, a stream or a model's input, read with the data
options, its columns' roles decided, and turned into the raw rows training takes.

:class:`DataOptions` is the one declaration of the data options (columns, roles, how text is
read, missing and bad values, scaling); the command line's option group is generated from it
(``aecli.cli.data_options``), and every path that reads a table takes it: in memory
(:func:`load_features`), streamed (:func:`stream_features`), on a cluster
(:mod:`aecli.pipeline.train_cluster`, :mod:`aecli.pipeline.cluster_apply`), and through a
trained model (:func:`open_for_model`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..errors import DataError, naming_input
from ..io import (
    BadValues,
    BatchStream,
    Format,
    TextRead,
    format_from_path,
    iter_batches,
    read_table,
    to_matrix,
)
from ..io.background import ReadAhead
from ..io.formats import is_url
from ..io.parquet import row_group_sizes
from ..io.readers import BATCH_ROWS
from ..io.surveyed import Surveyed, rereadable, survey_input
from ..preprocessing import (
    DEFAULT_MAX_LEVELS,
    MissingPolicy,
    RawRows,
    Roles,
    ScalerKind,
    absent_column,
    decide_roles,
)
from . import apply, modelfile
from .bundle import ModelBundle
from .train_streamed import ChunkSource


@dataclass(frozen=True)
class DataOptions:
    """How a table is read, which columns are features and what each is, and what a gap or
    a bad cell becomes: ``--input-format``, ``--columns``, ``--exclude``, ``--categorical``,
    ``--max-levels``, ``--missing``, ``--bad-values``, ``--scale``, ``--delimiter`` and
    ``--decimal``.

    ``categorical`` holds the columns forced categorical; ``auto_categorical`` whether a
    text column with few levels is categorical without being named (``--categorical none``
    turns it off). ``missing`` and ``bad_values`` None (encode, reconstruct, score) keep the
    model's. ``text`` is set once the roles are known: how one table's cells are read.
    """

    input_format: Format | None = None
    columns: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    auto_categorical: bool = True
    max_levels: int = DEFAULT_MAX_LEVELS
    missing: MissingPolicy | None = MissingPolicy.ERROR
    bad_values: BadValues | None = BadValues.ERROR
    scale: ScalerKind = ScalerKind.STANDARD
    delimiter: str | None = None  # of delimited text: detected when None
    decimal: str | None = None
    text: TextRead | None = None


def check_stdin(data) -> None:
    """Refuse to wait for a table typed at the terminal when DATA was left out: a person who
    forgot the file name gets told so instead of a silent pause. ``-`` still reads it."""
    if data is None and sys.stdin is not None and sys.stdin.isatty():
        raise DataError("no input: DATA was not given and stdin is a terminal",
                        hint="name a file, or pipe a table in (e.g. cat data.csv | aecli ...)")


def input_name(data) -> str:
    """How messages name the input: its path, or ``<stdin>``."""
    return "<stdin>" if data in (None, "-") else str(data)


def roles_from(survey, options: DataOptions, decimal: str = ".") -> Roles:
    """The columns' roles decided from a survey of every row (of a table, or of the merged
    partitions of a data set), as the data options say (see
    :func:`aecli.preprocessing.decide_roles`)."""
    return decide_roles(survey, columns=options.columns, exclude=options.exclude,
                        categorical=options.categorical,
                        auto_categorical=options.auto_categorical,
                        max_levels=options.max_levels, decimal=decimal)


def surveyed_roles(source, options: DataOptions) -> tuple[Surveyed, Roles]:
    """Survey every row of ``source`` and decide its columns' roles."""
    surveyed = survey_input(source, options.input_format, options.delimiter, options.decimal)
    with naming_input(surveyed.name):
        roles = roles_from(surveyed.survey, options,
                           surveyed.dialect.decimal if surveyed.dialect else ".")
    return surveyed, roles


def raw_rows(table: pa.Table | pa.RecordBatch, roles: Roles, options: DataOptions, name: str,
             row_offset: int = 0) -> RawRows:
    """The rows training takes from a table or a batch, however it was read (in memory,
    streamed, a partition): the numeric features' values as float64 (NaN where missing;
    a bad cell as ``options.bad_values`` says, named by ``name`` and its row number from
    ``row_offset``) and the categorical columns."""
    X = to_matrix(table, roles.numeric, dtype=np.float64, row_offset=row_offset, name=name,
                  bad_values=options.bad_values)  # (n, numeric features)
    if not roles.categorical:
        return RawRows(X, None)
    categorical = table.select(roles.categorical)
    if isinstance(categorical, pa.RecordBatch):
        categorical = pa.Table.from_batches([categorical])
    return RawRows(X, categorical)


def load_features(data, options: DataOptions) -> tuple[RawRows, Roles, Surveyed]:
    """Read a whole table, its columns' roles decided from a survey of every row first.

    Returns
    -------
    raw : RawRows
        The numeric features' raw values (NaN where missing) and the categorical columns.
    roles : Roles
    surveyed : Surveyed
        The survey, the format and the dialect found.
    """
    check_stdin(data)
    with rereadable(data, options.input_format) as (source, fmt):
        surveyed, roles = surveyed_roles(source, replace(options, input_format=fmt))
        table = read_table(source, fmt, text=surveyed.reading(roles.numeric,
                                                              bad_values=options.bad_values))
    return raw_rows(table, roles, options, input_name(data)), roles, surveyed


def stream_features(data, options: DataOptions, chunk_rows: int = BATCH_ROWS):
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
    name, input_format = input_name(data), options.input_format
    surveyed, roles = surveyed_roles(data, options)
    text = surveyed.reading(roles.numeric, bad_values=options.bad_values)

    def rows_of(batches, offset: int) -> Iterator[tuple[int, RawRows]]:
        for batch in batches:
            yield offset, raw_rows(batch, roles, options, name, offset)
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


def typed_output(output: str | None, fmt: Format | None) -> bool:
    """Whether rows go to a format with column types (Parquet, JSON lines), where a kept
    column of whole numbers is written as integers."""
    if fmt is None and output not in (None, "-"):
        try:
            fmt = format_from_path(output)
        except DataError:
            return False  # the writer says what is wrong with the name
    return fmt in (Format.parquet, Format.jsonl)


def with_policy(bundle: ModelBundle, options: DataOptions) -> ModelBundle:
    """The model with ``options``' missing-value and bad-value policies over its own (None
    keeps the model's)."""
    prep = bundle.preparation.with_policy(options.missing, options.bad_values)
    return replace(bundle, preparation=prep)


def read_for_model(bundle: ModelBundle, data, options: DataOptions, keep: list[str],
                   typed: bool) -> BatchStream:
    """The input's batches read as the model reads them, its columns checked against it.

    The numeric columns are read as numbers, every other column (categorical ones, codes,
    pass-through ones) as the text it is, so one table gives one result in any format, and
    a stray value in a column no one uses stops nothing. ``typed``: the output has column
    types (see :func:`typed_output`), where a kept column of whole numbers stays integers."""
    prep = bundle.preparation
    stream = iter_batches(data, options.input_format, batch_rows=BATCH_ROWS, text=TextRead.of(
        keep, prep.numeric, prep.bad_values, options.delimiter, options.decimal,
        keep_integers=typed))
    apply.check_columns(bundle, stream.schema, stream.name)
    return stream


def open_for_model(model: Path, data, options: DataOptions, keep: list[str],
                   typed: bool) -> tuple[ModelBundle, BatchStream, list[str]]:
    """The model file read, with ``options``' policies (:func:`with_policy`); the input's
    batches as it reads them (:func:`read_for_model`); the pass-through columns, checked."""
    check_stdin(data)
    bundle = with_policy(modelfile.read_model(model), options)
    stream = read_for_model(bundle, data, options, keep, typed)
    return bundle, stream, check_keep(stream.schema, keep, stream.name)


def read_ahead(stream) -> ReadAhead:
    """``stream`` read on a thread of its own, a batch ahead of the work on the last one; a
    context manager that stops the thread and closes the stream."""
    return ReadAhead(stream)


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
