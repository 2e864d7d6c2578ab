"""Streaming reader for delimited text (CSV, TSV, ``;`` or ``|`` separated).

Types come from the first rows and are then fixed: a numeric-looking column is float64 (an
integer column that later holds ``2.5`` does not break the stream), an integer column beyond
2**53 and every other column is text, passed through as written (``--keep`` ids, dates).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.csv as pcsv

from aecli.errors import DataError
from aecli.io.formats import NULL_VALUES, detect_delimiter, empty_batch
from aecli.io.matrix import BadValues, numbers_only
from aecli.io.streams import Opened
from aecli.io.text import (
    MAX_EXACT_INT,
    MAX_HEAD_BYTES,
    block_size,
    check_names,
    check_text,
    chunk_size,
    chunks,
    largest,
    line_of,
    record_end,
    split,
)

_ROW = re.compile(r"Row #(\d+): ")
_CONVERSION = re.compile(
    r"In CSV column #(\d+): (?:Row #\d+: )?CSV conversion error to \w+: invalid value '(.*)'"
)
_RAGGED = re.compile(r"Expected (\d+) columns, got (\d+): (.*)", re.DOTALL)


def _csv_error(e: Exception, name: str, part: bytes, lines: int, names: list[str]) -> DataError:
    text = str(e)
    m = _ROW.search(text)
    where = f"line {lines + line_of(part, int(m.group(1)))}" if m else f"after line {lines}"
    conversion = _CONVERSION.search(text)
    if conversion is not None:
        i, value = int(conversion.group(1)), conversion.group(2)
        column = names[i] if i < len(names) else f"#{i + 1}"
        return DataError(
            f"{name}: {where}: column {column!r} holds {value!r}, not a number, though its "
            "first rows were numbers (or empty)",
            hint="treat such cells as missing with --bad-values missing, fix the value, or "
            "leave the column out (--exclude/--columns)",
        )
    if "UTF8" in text or "UTF-8" in text:
        return DataError(
            f"{name}: {where}: text is not valid UTF-8",
            hint="convert the file to UTF-8 first (iconv -f latin1 -t utf-8)",
        )
    ragged = _RAGGED.search(text)
    if ragged is not None:
        expected, found, row = ragged.groups()
        return DataError(
            f"{name}: {where}: expected {expected} fields like the header, found {found}: "
            f"{row[:80]!r}",
            hint="every row needs as many fields as the header; check the quoting and the "
            "delimiter, or pass --input-format",
        )
    text = _ROW.sub("", text).removeprefix("CSV parse error: ")
    return DataError(f"{name}: {where}: cannot read: {text}")


_PLAIN_INTEGER = r"^-?(0|[1-9][0-9]*)$"
KEEP_ALL = "*"  # --keep '*': every input column passes through


def _as_written(head: bytes, parse, convert, columns: list[str]) -> dict[str, bool]:
    """For each of ``columns``: whether every value the head shows is an integer written
    plainly (no leading zeros, no sign but a minus), so reading it as one changes no text."""
    if not columns:
        return {}
    import pyarrow.compute as pc  # imported when needed: 40 ms that most runs never use

    options = pcsv.ConvertOptions(
        null_values=convert.null_values, strings_can_be_null=True,
        quoted_strings_can_be_null=True, column_types=dict.fromkeys(columns, pa.string()),
        include_columns=columns)
    table = pcsv.read_csv(pa.BufferReader(head), parse_options=parse, convert_options=options)
    return {c: bool(pc.all(pc.match_substring_regex(table.column(c), _PLAIN_INTEGER),
                           skip_nulls=True).as_py() is not False) for c in columns}


def _typed_again(table: pa.Table, columns: list[str], types: dict, name: str, lines: int,
                 notes: list[str]) -> pa.Table:
    """``table`` with ``columns`` (read as text) back in their ``types``: float64 with cells
    that spell no number missing (``--bad-values missing``), or a pass-through int64 column
    with cells that are no plain integer missing, each such column noted in ``notes``."""
    import pyarrow.compute as pc

    for c in columns:
        i = table.schema.get_field_index(c)
        text = table.column(c).combine_chunks()
        if types[c] == pa.float64():
            values = numbers_only(text).cast(pa.float64())
        else:
            plain = pc.match_substring_regex(pc.utf8_trim_whitespace(text), _PLAIN_INTEGER)
            lost = pc.and_(pc.invert(plain), pc.is_valid(text))
            first = text.filter(lost)[0].as_py()
            notes.append(f"{name}: pass-through column {c!r} held integers in its first rows, "
                         f"but {pc.sum(lost).as_py()} cell(s) after line {lines} do not "
                         f"(first {first!r}): written as missing")
            values = pc.if_else(plain, text, pa.scalar(None, pa.string())).cast(pa.int64())
        table = table.set_column(i, c, values)
    return table


def read_csv(
    opened: Opened, name: str, delimiter: str | None, batch_rows: int,
    text_columns: frozenset[str] = frozenset(), numbers: frozenset[str] | None = None,
    bad_values: BadValues = BadValues.ERROR, text_only: frozenset[str] = frozenset(),
    notes: list[str] | None = None,
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """Open delimited text for streaming; check it and fix its schema from the first rows.

    Parameters
    ----------
    opened : Opened
        The decompressed input with its head.
    name : str
        The input's name for messages.
    delimiter : str or None
        The delimiter; ``None`` detects it from the head.
    batch_rows : int
        Most rows per batch.
    text_columns : frozenset of str
        Columns read as the text they are, whatever they look like (integers written
        plainly stay integers); ``"*"`` stands for every column but ``numbers``.
    numbers : frozenset of str, optional
        The only columns that may be read as numbers: every other one is text, so that a
        stray value in a column no one uses stops nothing.
    text_only : frozenset of str
        Columns always read as text (left out by name: nothing in them can stop a read).
    notes : list of str, optional
        Where to say what became of cells that did not fit their column's type.
    bad_values : BadValues
        ``missing``: a later cell of a numeric column that spells no number is missing,
        rather than an error.

    Returns
    -------
    schema : pyarrow.Schema
        The schema of every batch.
    batches : iterator of pyarrow.RecordBatch
        Lazily read batches; closes ``opened`` when done.
    """
    if not opened.head.strip():
        raise DataError(f"{name}: file is empty", hint="give a file with a header and rows")
    check_text(opened.head, name, opened.eof)
    delimiter = delimiter or detect_delimiter(opened.head)
    parse = pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True)
    convert = pcsv.ConvertOptions(
        null_values=list(NULL_VALUES), strings_can_be_null=True, quoted_strings_can_be_null=True
    )

    known_names: list[str] = []
    kept_ints: set[str] = set()  # pass-through columns read as integers
    notes = notes if notes is not None else []
    block = block_size(opened.head)

    def parse_part(part: bytes, lines: int, **read) -> pa.Table:
        def parse_with(threads: bool, size: int = block) -> pa.Table:
            return pcsv.read_csv(
                pa.BufferReader(part),
                read_options=pcsv.ReadOptions(use_threads=threads, block_size=size, **read),
                parse_options=parse,
                convert_options=convert,
            )

        try:
            return parse_with(threads=True)
        except (pa.ArrowException, OSError) as e:
            # A row longer than the blocks sized from the head straddles two of them; the
            # whole part as one block always holds it.
            if "straddl" in str(e):
                try:
                    return parse_with(threads=False, size=len(part) + 1)
                except (pa.ArrowException, OSError):
                    pass
        # Only serial parsing numbers the rows (across blocks too): parse again for the line.
        try:
            return parse_with(threads=False)
        except (pa.ArrowException, OSError) as e:
            error = e
        if convert.column_types:
            # Read the columns that fail as text, then back in their type with gaps: a number
            # column under --bad-values missing, and always a pass-through integer column
            # (a stray value there must stop nothing; the note says what became of it).
            types, relaxed = dict(convert.column_types), []
            while (m := _CONVERSION.search(str(error))) and int(m.group(1)) < len(known_names):
                column = known_names[int(m.group(1))]
                passed = column in kept_ints
                if column in relaxed or not (passed or bad_values is BadValues.MISSING):
                    break
                relaxed.append(column)
                types[column] = pa.string()
                options = pcsv.ConvertOptions(
                    null_values=convert.null_values, strings_can_be_null=True,
                    quoted_strings_can_be_null=True, column_types=types)
                try:
                    table = pcsv.read_csv(
                        pa.BufferReader(part),
                        read_options=pcsv.ReadOptions(use_threads=False, block_size=block,
                                                      **read),
                        parse_options=parse, convert_options=options)
                    return _typed_again(table, relaxed, convert.column_types, name, lines,
                                        notes)
                except (pa.ArrowException, OSError) as e:
                    error = e
        raise _csv_error(error, name, part, lines, known_names) from None

    while True:
        cut = opened.head if opened.eof else opened.head[: record_end(opened.head)]
        first = parse_part(cut, 0)
        if first.num_rows or opened.eof or len(opened.head) >= MAX_HEAD_BYTES:
            break
        opened.read_more(len(opened.head))
    names = first.column_names
    known_names.extend(names)
    check_names(names, name)
    if first.num_rows == 0:  # a header and no rows: one empty batch carries the names
        opened.close()
        return first.schema, iter(first.to_batches() or [empty_batch(first.schema)])
    types = {}
    # "*" keeps every column that is not one of the numbers
    kept = [n for n in names if n in text_columns or (
        KEEP_ALL in text_columns and (numbers is None or n not in numbers))]
    as_text = _as_written(cut, parse, convert, kept)
    for field, column in zip(first.schema, first.columns, strict=True):
        t = field.type
        if field.name in as_text:
            # passed through: integers written plainly stay integers, anything else (a code
            # with leading zeros, a date) stays the text it is
            plain = pa.types.is_integer(t) and as_text[field.name]
            types[field.name] = pa.int64() if plain else pa.string()
            if plain:
                kept_ints.add(field.name)
        elif field.name in text_only or (numbers is not None and field.name not in numbers):
            types[field.name] = pa.string()
        elif pa.types.is_integer(t) and largest(column) > MAX_EXACT_INT:
            types[field.name] = pa.string()
        elif pa.types.is_null(t) or pa.types.is_integer(t) or pa.types.is_floating(t):
            types[field.name] = pa.float64()
        else:
            types[field.name] = pa.string()
    convert.column_types = types
    schema = pa.schema([(n, types[n]) for n in names])
    size = chunk_size(cut, first.num_rows, batch_rows)

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            for part, lines in chunks(opened, size, record_end, name):
                # The first part starts with the header (maybe after blank lines): let pyarrow
                # find it there; later parts are all rows.
                later = {"column_names": names} if lines else {}
                table = parse_part(part, lines, **later)
                yield from split(table, batch_rows)
        finally:
            opened.close()

    return schema, batches()
