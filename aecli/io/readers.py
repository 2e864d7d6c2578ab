"""Read tables: the whole input (``read_table``, for training) or in batches (``iter_batches``).

Both take a path, ``"-"`` or ``None`` (stdin). The format comes from ``input_format``, else the
path's extension, else (stdin) from sniffing the first bytes. Every expected failure is a
``DataError`` naming the input, and where possible the line and column.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import pyarrow as pa

from aecli.errors import DataError, InvalidParameterError
from aecli.io.delimited import Dialect, read_csv
from aecli.io.formats import Format, format_from_path, is_glob, is_url, open_url, sniff
from aecli.io.jsonl import read_jsonl
from aecli.io.matrix import BadValues, numeric_columns, to_matrix
from aecli.io.parquet import read_parquet_dataset, read_parquet_file, spare_cores
from aecli.io.streams import Source, open_stream

#: Rows per batch for ``read_table``: few chunks, bounded peak while parsing.
_TABLE_BATCH_ROWS = 1 << 20
#: Rows per batch of a stream (``iter_batches``): the commands' and the workers' batches and
#: the chunks of streamed training, big enough for the BLAS, small enough to bound memory.
BATCH_ROWS = 65536

SourceLike = Source | str | os.PathLike | None


class BatchStream:
    """An iterator of ``pyarrow.RecordBatch`` that also knows its schema before the first batch.

    Every batch has exactly ``schema``; none is empty, except the one batch of an input that
    has columns and no rows (a CSV header alone), which carries them. Iterating to the end (or
    ``close``) releases the input. Raises ``DataError`` while iterating for input damaged
    further down.

    Attributes
    ----------
    schema : pyarrow.Schema
        The schema of every batch.
    name : str
        The input's name for messages (a path or ``<stdin>``).
    format : Format
        The format the input was read as.
    rows : int
        Rows given out so far.
    notes : list of str
        What the reader did that a person should know, filled in as the batches are read.
    dialect : Dialect or None
        Of delimited text: the delimiter and decimal separator, and whether each was
        detected.
    """

    def __init__(
        self,
        schema: pa.Schema,
        batches: Iterator[pa.RecordBatch],
        name: str,
        fmt: Format,
        release: Callable[[], None] | None = None,
    ):
        self.schema = schema
        self.notes: list[str] = []  # what became of cells that did not fit their type
        self.dialect: Dialect | None = None
        self.name = name
        self.format = fmt
        self.rows = 0
        self._batches = batches
        self._release = release

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> pa.RecordBatch:
        batch = next(self._batches)
        self.rows += batch.num_rows
        return batch

    def close(self) -> None:
        """Stop reading and release the input."""
        close = getattr(self._batches, "close", None)
        if close is not None:
            close()
        if self._release is not None:
            # A generator never started runs no ``finally``: release the input here too.
            self._release()

    def __enter__(self) -> BatchStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass(frozen=True)
class TextRead:
    """How delimited text is typed: only ``numbers`` are numbers (``None``: those whose
    first rows are), every other column is text as written; ``keep`` columns pass through
    as written (numbers too); ``bad_values`` says what a cell of a number column that spells
    no number becomes; ``delimiter`` and ``decimal`` are detected when ``None``."""

    keep: frozenset[str] = frozenset()
    numbers: frozenset[str] | None = None
    bad_values: BadValues = BadValues.ERROR
    delimiter: str | None = None
    decimal: str | None = None
    json_schema: pa.Schema | None = None  # JSON lines: every line read in this schema
    survey: bool = False  # read for a survey: text as text, JSON lines in each part's types
    keep_integers: bool = False  # pass-through integer columns of text stay integers

    @classmethod
    def of(cls, keep=(), numbers=None, bad_values=BadValues.ERROR, delimiter=None,
           decimal=None, json_schema=None, survey=False, keep_integers=False) -> TextRead:
        """From any iterables of names."""
        return cls(frozenset(keep), None if numbers is None else frozenset(numbers),
                   BadValues(bad_values), delimiter, decimal, json_schema, survey,
                   keep_integers)


def _open(source: SourceLike, input_format, batch_rows: int, stdin,
          text: TextRead = TextRead(), decode_threads: bool = True,
          row_groups: list[int] | None = None) -> BatchStream:
    if not isinstance(batch_rows, int) or batch_rows < 1:
        raise InvalidParameterError(f"batch_rows must be a positive integer, got {batch_rows!r}")
    src = Source.of(source, stdin)
    fmt = Format.parse(input_format) if input_format is not None else None
    if not src.is_stdin and is_url(src.path):
        fmt = fmt or format_from_path(src.path)
        if fmt is Format.parquet:  # read by its footer and row groups, as a local file
            remote = open_url(src.path)
            try:
                schema, batches = read_parquet_file(remote, src.name, batch_rows,
                                                    decode_threads)
            except BaseException:
                remote.close()
                raise
            return BatchStream(schema, batches, src.name, fmt, release=remote.close)
    elif not src.is_stdin:
        if not is_glob(src.path) and not os.path.exists(src.path):
            raise DataError(
                f"{src.path}: no such file", hint="check the path; use - (or nothing) for stdin"
            )
        fmt = fmt or format_from_path(src.path)
        if fmt is Format.parquet:
            path = src.path
            if os.path.isdir(path) or (is_glob(path) and not os.path.exists(path)):
                schema, batches = read_parquet_dataset(path, batch_rows)
            else:
                schema, batches = read_parquet_file(path, src.name, batch_rows,
                                                    decode_threads, row_groups)
            return BatchStream(schema, batches, src.name, fmt)
    opened = open_stream(src)
    notes: list[str] = []
    try:
        if fmt is None:
            fmt = sniff(opened.head)
        if fmt is Format.parquet:
            data = pa.py_buffer(opened.read_all())
            opened.close()
            schema, batches = read_parquet_file(data, src.name, batch_rows, decode_threads)
        elif fmt is Format.jsonl:
            schema, batches = read_jsonl(opened, src.name, batch_rows, text.keep,
                                         text.json_schema, text.survey)
        else:
            delimiter = text.delimiter or ("\t" if fmt is Format.tsv else None)
            schema, batches, dialect = read_csv(
                opened, src.name, batch_rows,
                numbers=frozenset() if text.survey else text.numbers, keep=text.keep,
                bad_values=text.bad_values, delimiter=delimiter, decimal=text.decimal,
                notes=notes, keep_integers=text.keep_integers)
    except BaseException:
        opened.close()
        raise
    stream = BatchStream(schema, batches, src.name, fmt, release=opened.close)
    stream.notes = notes  # the reader's own list, filled in as it reads
    if fmt in (Format.csv, Format.tsv):
        stream.dialect = dialect
    return stream


def iter_batches(
    source: SourceLike,
    input_format: Format | str | None = None,
    batch_rows: int = BATCH_ROWS,
    stdin: BinaryIO | None = None,
    text: TextRead = TextRead(),
    row_groups: list[int] | None = None,
) -> BatchStream:
    """Read a table in batches; memory does not grow with the number of rows.

    The input is opened and checked at once (a missing file, an empty input, bad column names
    fail here); damage further down fails while iterating. stdin is streamed, except Parquet,
    whose footer is at the end.

    Parameters
    ----------
    source : str, os.PathLike, Source or None
        A file, a directory or glob of Parquet files, ``"-"`` or ``None`` for stdin.
    input_format : Format or str, optional
        Overrides the extension / sniffing.
    batch_rows : int, default 65536
        Most rows per batch. A Parquet file whose row groups are larger is read in equal
        parts of each row group (100k-row groups as 50k-row batches), which is cheaper than
        batches glued across row groups.
    stdin : binary file-like, optional
        Read instead of ``sys.stdin.buffer`` when ``source`` is stdin.
    text : TextRead
        How delimited text is typed (which columns are numbers, which pass through, the
        dialect); JSON lines use only ``keep`` (integers of kept columns stay integers);
        Parquet carries its own types.
    row_groups : list of int, optional
        Of a local Parquet file, only these row groups, in this order.

    Returns
    -------
    BatchStream
        An iterator of ``pyarrow.RecordBatch`` with a ``schema`` attribute.

    Raises
    ------
    DataError
        When the input is missing, unreadable, empty, or not a table.
    """
    # the batches are worked on as they come, on a core of their own (see spare_cores)
    return _open(source, input_format, batch_rows, stdin, text, decode_threads=spare_cores(),
                 row_groups=row_groups)


def read_table(
    source: SourceLike,
    input_format: Format | str | None = None,
    stdin: BinaryIO | None = None,
    text: TextRead = TextRead(),
) -> pa.Table:
    """Read a whole table into memory, with the same schema :func:`iter_batches` would give
    for the same ``source``, ``input_format``, ``stdin`` and the rest (see there).

    Returns
    -------
    pyarrow.Table
        At least one row.

    Raises
    ------
    DataError
        When the input is missing, unreadable, empty, damaged, or not a table.
    """
    with _open(source, input_format, _TABLE_BATCH_ROWS, stdin, text) as stream:
        batches = [b for b in stream if b.num_rows]
    if not batches:
        raise DataError(f"{stream.name}: has a header but no data rows" if stream.format in (
            Format.csv, Format.tsv) else f"{stream.name}: no data rows",
            hint="give rows after the header")
    return pa.Table.from_batches(batches, schema=stream.schema)


__all__ = ["BatchStream", "Source", "TextRead", "iter_batches", "numeric_columns", "read_table",
           "to_matrix"]
