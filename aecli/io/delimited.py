"""Streaming reader for delimited text (CSV, TSV, ``;`` or ``|`` separated).

The caller says which columns are numbers (from a survey of the whole training input, or from
the model); those are float64, and every other column is text exactly as written (no cell
is made missing, so a pass-through column keeps ``NA`` and ``08111``). Only a reader told
nothing types columns from its first rows. The delimiter and the decimal separator (a
decimal comma with ``;``, as spreadsheets in most of Europe write) are detected from the
first rows unless given, and the stream says what it detected (:class:`Dialect`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.csv as pcsv

from aecli.errors import DataError
from aecli.io.formats import NULL_VALUES, detect_delimiter, empty_batch
from aecli.io.matrix import DECIMAL_KEY, BadValues, numbers_only
from aecli.io.streams import Opened
from aecli.io.survey import COMMA_NUMBER, DOT_NUMBER, Survey
from aecli.io.text import (
    MAX_HEAD_BYTES,
    block_size,
    check_names,
    check_text,
    chunk_size,
    line_of,
    parsed,
    record_end,
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
    if m and b'"' not in part and b"\n\n" not in part:  # one line per row: the row is exact
        where += f" (row {lines + line_of(part, int(m.group(1))) - 1})"
    conversion = _CONVERSION.search(text)
    if conversion is not None:
        i, value = int(conversion.group(1)), conversion.group(2)
        column = names[i] if i < len(names) else f"#{i + 1}"
        if re.fullmatch(COMMA_NUMBER, value.strip()):  # the first rows held whole numbers
            return DataError(
                f"{name}: {where}: column {column!r} holds {value!r}, a number written with a "
                "decimal comma, but the file is read with a decimal point (its first rows "
                "showed none)",
                hint="pass --decimal , (and --delimiter if the fields are not comma-separated)")
        return DataError(
            f"{name}: {where}: column {column!r} holds {value!r}, not a number, in a column "
            "of numbers",
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


KEEP_ALL = "*"  # --keep '*': every input column passes through
_THOUSANDS = r"^[+-]?\d{1,3}(,\d{3})+$"  # 1,234 or 12,345,678: a grouping, not a decimal


@dataclass(frozen=True)
class Dialect:
    """How delimited text is written: its delimiter and decimal separator, and whether each
    was detected (rather than given)."""

    delimiter: str = ","
    decimal: str = "."
    delimiter_detected: bool = True
    decimal_detected: bool = True

    def describe(self) -> str:
        """``';'-separated, decimal comma``, for the note a person sees."""
        shown = {"\t": "tab", ",": "','", ";": "';'", "|": "'|'"}.get(self.delimiter,
                                                                    repr(self.delimiter))
        mark = "decimal comma" if self.decimal == "," else "decimal point"
        return f"{shown}-separated, {mark}"

    def unusual(self) -> bool:
        """Whether a person should be told (anything but plain CSV or TSV was detected)."""
        return (self.delimiter_detected and self.delimiter not in (",", "\t")) or (
            self.decimal_detected and self.decimal != ".")


def detect_decimal(table: pa.Table, delimiter: str,
                   columns: frozenset[str] | None = None) -> str:
    """``,`` when the text's numbers are written with a decimal comma (only possible when
    the delimiter is not a comma): some cell of ``columns`` (default every column) spells a
    number only with a comma, and none only with a point."""
    if delimiter == ",":
        return "."
    import pyarrow.compute as pc

    comma = point = 0
    for name in table.column_names:
        if columns is not None and name not in columns:
            continue
        text = pc.utf8_trim_whitespace(table.column(name).cast(pa.string()))
        # 1,234 and 12,500 may be thousands: only a comma that cannot be one decides
        commas = pc.and_(pc.match_substring_regex(text, COMMA_NUMBER), pc.invert(
            pc.match_substring_regex(text, _THOUSANDS)))
        points = pc.match_substring_regex(text, DOT_NUMBER, ignore_case=True)
        comma += int(pc.sum(pc.and_(commas, pc.invert(points))).as_py() or 0)
        point += int(pc.sum(pc.and_(points, pc.invert(commas))).as_py() or 0)
    return "," if comma and not point else "."


def _integer_columns(head: pa.Table, columns: set[str]) -> set[str]:
    """Of ``columns``, those whose cells in ``head`` are all plain integers (no leading
    zeros, within 2**53) or empty, with at least one integer."""
    import pyarrow.compute as pc

    whole = set()
    for c in columns:
        text = head.column(c)
        present = text.filter(pc.not_equal(text, ""))
        if len(present) and pc.all(pc.match_substring_regex(
                present, r"^-?(0|[1-9][0-9]{0,14})$")).as_py():
            whole.add(c)
    return whole


def _empty_as_missing(table: pa.Table, columns: list[str]) -> pa.Table:
    """``table`` with the empty cells of the text ``columns`` missing (an empty CSV cell is
    a missing value in every tool that reads one)."""
    if not columns:
        return table
    import pyarrow.compute as pc

    for c in columns:
        i = table.schema.get_field_index(c)
        col = table.column(i)
        table = table.set_column(i, table.schema.field(i), pc.if_else(
            pc.equal(col, ""), pa.scalar(None, col.type), col))
    return table


def _typed_again(table: pa.Table, columns: list[str], decimal: str) -> pa.Table:
    """``table`` with ``columns`` (read as text) back as numbers, with cells that spell no
    number missing (``--bad-values missing``)."""
    for c in columns:
        i = table.schema.get_field_index(c)
        text = table.column(c).combine_chunks()
        table = table.set_column(i, c, numbers_only(text, decimal).cast(pa.float64()))
    return table


def read_csv(
    opened: Opened, name: str, batch_rows: int, *, numbers: frozenset[str] | None = None,
    keep: frozenset[str] = frozenset(), bad_values: BadValues = BadValues.ERROR,
    delimiter: str | None = None, decimal: str | None = None, notes: list[str] | None = None,
    keep_integers: bool = False,
) -> tuple[pa.Schema, Iterator[pa.RecordBatch], Dialect]:
    """Open delimited text for streaming; check it and fix its schema.

    Parameters
    ----------
    opened : Opened
        The decompressed input with its head.
    name : str
        The input's name for messages.
    batch_rows : int
        Most rows per batch.
    numbers : frozenset of str, optional
        The columns read as numbers (float64); every other column is text exactly as
        written. ``None``: the columns whose first rows are all numbers (and no codes).
    keep : frozenset of str
        Pass-through columns: read as the text they are, numbers too (``"*"``: every
        column). A kept number column's field carries the decimal separator in its metadata
        (``aecli.decimal``), for the conversion to a feature.
    bad_values : BadValues
        ``missing``: a cell of a number column that spells no number is missing, rather
        than an error.
    delimiter, decimal : str, optional
        The delimiter and the decimal separator; ``None`` detects each from the head.
    notes : list of str, optional
        Where to say what became of cells that did not fit their column's type.
    keep_integers : bool
        Pass-through columns whose first rows are plain integers are int64 (for a typed
        output); a later cell that is not one is an error, never a changed value. Otherwise
        every pass-through column is the text it is, an empty cell missing.

    Returns
    -------
    schema : pyarrow.Schema
        The schema of every batch.
    batches : iterator of pyarrow.RecordBatch
        Lazily read batches; closes ``opened`` when done.
    dialect : Dialect
        The delimiter and decimal separator used, and whether each was detected.
    """
    if not opened.head.strip():
        raise DataError(f"{name}: file is empty", hint="give a file with a header and rows")
    check_text(opened.head, name, opened.eof)
    given_delimiter = delimiter
    delimiter = delimiter or detect_delimiter(opened.head)
    parse = pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True)
    # Only number columns have missing cells: text stays as written, and the one set of
    # missing-value tokens (NULL_VALUES) is applied where text is used, in every format.
    convert = pcsv.ConvertOptions(null_values=list(NULL_VALUES), strings_can_be_null=False,
                                  quoted_strings_can_be_null=False)

    known_names: list[str] = []
    integer_columns: set[str] = set()  # pass-through columns read as integers
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
        if convert.column_types and bad_values is BadValues.MISSING:
            # Read the number columns that fail as text, then back as numbers with gaps
            types, relaxed = dict(convert.column_types), []
            while (m := _CONVERSION.search(str(error))) and int(m.group(1)) < len(known_names):
                column = known_names[int(m.group(1))]
                if column in relaxed:
                    break
                relaxed.append(column)
                types[column] = pa.string()
                options = pcsv.ConvertOptions(
                    null_values=convert.null_values, strings_can_be_null=True,
                    quoted_strings_can_be_null=True, column_types=types,
                    decimal_point=convert.decimal_point)
                try:
                    table = pcsv.read_csv(
                        pa.BufferReader(part),
                        read_options=pcsv.ReadOptions(use_threads=False, block_size=block,
                                                      **read),
                        parse_options=parse, convert_options=options)
                    return _typed_again(table, relaxed, convert.decimal_point)
                except (pa.ArrowException, OSError) as e:
                    error = e
        m = _CONVERSION.search(str(error))
        if m and int(m.group(1)) < len(known_names) and \
                known_names[int(m.group(1))] in integer_columns:
            raise DataError(
                f"{name}: after line {lines}: pass-through column "
                f"{known_names[int(m.group(1))]!r} held whole numbers in its first rows, but "
                f"holds {m.group(2)!r}: a typed output (Parquet, JSON lines) needs one type "
                "per column, and aecli never changes a kept value",
                hint="write CSV or TSV (-o out.csv), where kept columns are the text they "
                "are") from None
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
    text = dict.fromkeys(names, pa.string())
    convert.column_types = text
    first = parse_part(cut, 0)  # every column as the text it is
    dialect = Dialect(delimiter, decimal or detect_decimal(first, delimiter, numbers or None),
                      given_delimiter is None, decimal is None)
    convert.decimal_point = dialect.decimal
    if numbers is None:  # told nothing: the columns whose first rows are numbers
        survey = Survey.of([first])
        numbers = frozenset(n for n, c in survey.columns.items()
                            if c.present and c.numbers(dialect.decimal) == c.present
                            and not c.codes and not c.huge_integers)
    kept = set(names) if KEEP_ALL in keep else set(keep)
    whole = _integer_columns(first, kept) if keep_integers else set()
    fields = []
    for n in names:
        if n in numbers and n not in kept:
            fields.append(pa.field(n, pa.float64()))
        elif n in whole:  # a typed output gets the integers they are
            fields.append(pa.field(n, pa.int64(), metadata={DECIMAL_KEY: dialect.decimal}))
        elif n in numbers:  # passed through as written, made a number where it is a feature
            fields.append(pa.field(n, pa.string(), metadata={DECIMAL_KEY: dialect.decimal}))
        else:
            fields.append(pa.field(n, pa.string()))
    schema = pa.schema(fields)
    convert.column_types = {f.name: f.type for f in fields}
    blank_is_missing = [n for n in names if n in kept and n not in whole]
    integer_columns.update(whole)
    if first.num_rows == 0:  # a header and no rows: one empty batch carries the names
        opened.close()
        return schema, iter([empty_batch(schema)]), dialect
    size = chunk_size(cut, first.num_rows, batch_rows)

    def typed(part: bytes, lines: int) -> pa.Table:
        # The first part starts with the header (maybe after blank lines): let pyarrow find
        # it there; later parts are all rows.
        later = {"column_names": names} if lines else {}
        table = _empty_as_missing(parse_part(part, lines, **later), blank_is_missing)
        return pa.Table.from_arrays(table.columns, schema=schema)

    return schema, parsed(opened, size, record_end, name, typed, batch_rows), dialect
