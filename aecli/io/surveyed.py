"""Inputs typed from every row: a survey pass over the whole input, then reads in the types
it settles.

A column's type is what all of its rows hold, never what its first block suggests: a column
empty for 30,000 rows and then ``NO``/``YES`` is text. The survey reads delimited text as
text and JSON lines in each part's own types, so it never fails on a type, and its memory is
one part at a time. stdin, which cannot be read twice, is first copied to a temporary file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

import pyarrow as pa

from aecli.errors import DataError
from aecli.io.delimited import Dialect
from aecli.io.formats import NULL_VALUES, Format, sniff
from aecli.io.jsonl import schema_from_survey
from aecli.io.readers import SourceLike, TextRead, iter_batches
from aecli.io.streams import Source, open_stream
from aecli.io.survey import Survey

__all__ = ["Surveyed", "rereadable", "survey_input"]

_SURVEY_ROWS = 1 << 18  # rows surveyed at a time (a quarter of a million)


@dataclass
class Surveyed:
    """An input surveyed whole: its survey, format and (delimited text) dialect."""

    survey: Survey
    format: Format
    name: str
    dialect: Dialect | None = None

    def record(self) -> dict:
        """How the input was read, for the model file (``info.reading``): its format, the
        dialect of delimited text, and the missing-value tokens."""
        out = {"format": str(self.format), "missing_tokens": list(NULL_VALUES)}
        if self.dialect is not None:
            out.update(delimiter=self.dialect.delimiter, decimal=self.dialect.decimal)
        return out

    def reading(self, numbers, keep=(), bad_values="error") -> TextRead:
        """How to read the input again with ``numbers`` as its number columns, in the
        dialect the survey found (and, for JSON lines, every key's type)."""
        json_schema = None
        if self.format is Format.jsonl:
            kinds = {n: c.kind for n, c in self.survey.columns.items()}
            json_schema = schema_from_survey(kinds, frozenset(keep))
        dialect = self.dialect or Dialect()
        return TextRead.of(keep, numbers, bad_values, dialect.delimiter, dialect.decimal,
                           json_schema)


def survey_input(source: SourceLike, input_format=None, delimiter: str | None = None,
                 decimal: str | None = None, stdin: BinaryIO | None = None,
                 empty: bool = False) -> Surveyed:
    """Survey every row of ``source`` (a file, or stdin made rereadable first); ``empty``:
    a source without rows is surveyed too (one partition of many may have none).

    Raises
    ------
    DataError
        As the readers do, for an input that cannot be read.
    """
    text = TextRead.of(delimiter=delimiter, decimal=decimal, survey=True)
    with iter_batches(source, input_format, batch_rows=_SURVEY_ROWS, stdin=stdin,
                      text=text) as stream:
        survey = Survey.of(_in_parts(stream, _SURVEY_ROWS), stream.schema)
    if survey.rows == 0 and not empty:
        raise DataError(f"{stream.name}: has a header but no data rows" if stream.format in (
            Format.csv, Format.tsv) else f"{stream.name}: no data rows",
            hint="give rows after the header")
    return Surveyed(survey, stream.format, stream.name, stream.dialect)


def _in_parts(batches, rows: int) -> Iterator[pa.Table]:
    """Batches joined into tables of at least ``rows`` rows, each column one chunk: the
    survey's work per call is then large next to its cost per call. Only batches of one
    schema are joined (JSON lines are surveyed in each part's own types)."""
    group, held = [], 0
    for batch in batches:
        if group and not batch.schema.equals(group[0].schema):
            yield pa.Table.from_batches(group).combine_chunks()
            group, held = [], 0
        group.append(batch)
        held += batch.num_rows
        if held >= rows:
            yield pa.Table.from_batches(group).combine_chunks()
            group, held = [], 0
    if group:
        yield pa.Table.from_batches(group).combine_chunks()


@contextmanager
def rereadable(source: SourceLike, input_format=None, stdin: BinaryIO | None = None
               ) -> Iterator[tuple[SourceLike, Format | str | None]]:
    """``(source, input_format)`` themselves, or for stdin a temporary copy of it (removed
    afterwards, still named ``<stdin>``) and its sniffed format, so that it can be surveyed
    and then read."""
    src = Source.of(source, stdin)
    if not src.is_stdin:
        yield source, input_format
        return
    stream = src.open_binary()
    fd, path = tempfile.mkstemp(prefix="aecli-stdin-")
    try:
        with os.fdopen(fd, "wb") as copy:
            shutil.copyfileobj(stream, copy, 1 << 20)
        copy_source = Source(path, None, label="<stdin>")
        if input_format is None:
            opened = open_stream(copy_source, head_bytes=1 << 16)
            try:
                input_format = sniff(opened.head)
            finally:
                opened.close()
        yield copy_source, input_format
    finally:
        os.unlink(path)
