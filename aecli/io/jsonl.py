"""Streaming reader for JSON lines: one JSON object per line.

Types come from the first lines and are then fixed: numbers are float64 (integers beyond 2**53
stay integers), text that pyarrow would take for a timestamp stays text; keys that first appear
after the first ``HEAD_BYTES`` are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.json as pjson

from aecli.errors import DataError
from aecli.io.streams import Opened
from aecli.io.text import (
    MAX_EXACT_INT,
    MAX_HEAD_BYTES,
    block_size,
    check_names,
    check_text,
    chunk_size,
    largest,
    line_end,
    line_of,
    parsed,
)

_JSON_ROW = re.compile(r" in row (\d+)")


def _parse_json(
    part: bytes, schema: pa.Schema | None, name: str, lines: int, block: int
) -> pa.Table:
    parse = pjson.ParseOptions(
        explicit_schema=schema, unexpected_field_behavior="ignore" if schema else "infer"
    )

    def read(block: int) -> pa.Table:
        return pjson.read_json(
            pa.BufferReader(part),
            read_options=pjson.ReadOptions(use_threads=False, block_size=block),
            parse_options=parse,
        )

    try:
        return read(block)
    except pa.ArrowException:
        pass
    # Parse again as one block: that reads a line longer than a block, and otherwise gives
    # the row of the error within the whole part (pyarrow numbers rows within a block).
    try:
        return read(len(part) + 1)
    except pa.ArrowException as e:
        text = str(e).removeprefix("JSON parse error: ")
    m = _JSON_ROW.search(text)
    where = f"line {lines + line_of(part, int(m.group(1)) + 1)}: " if m else ""
    text = _JSON_ROW.sub("", text).rstrip(" .")
    raise DataError(
        f"{name}: {where}not valid JSON lines: {text}",
        hint="each line must be one JSON object, with the same kind of value per key",
    )


def schema_from_survey(kinds: dict[str, str], keep: frozenset[str] = frozenset()
                       ) -> pa.Schema:
    """The schema of JSON lines whose every line was surveyed (``kinds``: each key's storage
    kind, see :mod:`aecli.io.survey`): a key that is null in its first lines and text later
    is text; numbers are float64 (int64 when passed through); keys holding nested values
    (objects, lists), which are never features, are left out."""
    fields = []
    for key, kind in kinds.items():
        if kind == "other":
            continue  # nested values are never features: left out of the read
        if kind == "number":
            t = pa.int64() if key in keep or "*" in keep else pa.float64()
        elif kind == "boolean":
            t = pa.bool_()
        elif kind == "null":
            t = pa.float64()
        else:
            t = pa.string()  # text, and text pyarrow took for a time: kept as written
        fields.append(pa.field(key, t))
    return pa.schema(fields)


def read_jsonl(
    opened: Opened, name: str, batch_rows: int, keep: frozenset[str] = frozenset(),
    schema: pa.Schema | None = None, survey: bool = False,
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """Open JSON lines for streaming; check it and fix its schema.

    With ``schema`` (from a survey of every line, :func:`schema_from_survey`) the lines are
    read in it. With ``survey``, each part is read in the types its own lines have (for a
    survey: the batches' schemas differ). Otherwise the schema comes from the first lines:
    numbers are float64 (integers beyond 2**53 stay integers, and so do the integers of the
    pass-through columns ``keep``: an id stays an id); keys that first appear after the first
    ``HEAD_BYTES`` are ignored, as the schema is fixed by then.

    Takes and returns what :func:`aecli.io.delimited.read_csv` does (without a dialect).
    """
    if not opened.head.strip():
        raise DataError(f"{name}: file is empty", hint="give one JSON object per line")
    check_text(opened.head, name, opened.eof)
    while not opened.eof and b"\n" not in opened.head and len(opened.head) < MAX_HEAD_BYTES:
        opened.read_more(len(opened.head))
    cut = opened.head if opened.eof else opened.head[: line_end(opened.head)]
    block = block_size(opened.head)
    first = _parse_json(cut, None, name, 0, block)
    names = first.column_names
    check_names(names, name)
    if survey:  # each part in its own types: the schema stays None
        out = first.schema
    elif schema is not None:
        out = schema
    else:
        schema = out = _head_schema(first, keep)
    size = chunk_size(cut, first.num_rows, batch_rows)

    def typed(part: bytes, lines: int) -> pa.Table | None:
        return _parse_json(part, schema, name, lines, block) if part.strip() else None

    return out, parsed(opened, size, line_end, name, typed, batch_rows)


def _head_schema(first: pa.Table, keep: frozenset[str]) -> pa.Schema:
    """The schema the first lines suggest: numbers are float64 (integers beyond 2**53 stay
    integers, and so do the integers of the pass-through columns ``keep``), text pyarrow
    took for a time stays text."""
    fields = []
    for f in first.schema:
        t = f.type
        if pa.types.is_null(t) or pa.types.is_floating(t):
            t = pa.float64()
        elif pa.types.is_integer(t):
            kept = f.name in keep or "*" in keep  # "*": every column (--keep '*')
            t = t if kept or largest(first[f.name]) > MAX_EXACT_INT else pa.float64()
        elif pa.types.is_temporal(t):
            t = pa.string()  # pyarrow guessed a time from text: keep the text as written
        fields.append(pa.field(f.name, t))
    return pa.schema(fields)
