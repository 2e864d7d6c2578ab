"""What the text readers share: checks on the first bytes, names, chunking, type stability.

Delimited text and JSON lines are read in chunks cut at record boundaries, each parsed on its
own, so memory holds one chunk at a time (pyarrow's own streaming CSV reader reads dozens of
blocks ahead) and an error can name its line. Column types are inferred once, from the first
``HEAD_BYTES``, and then fixed for the whole stream, so that every batch has the same schema.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pyarrow as pa

from aecli.errors import DataError
from aecli.io.formats import PARQUET_MAGIC
from aecli.io.matrix import int_view
from aecli.io.streams import Opened, read_up_to

#: Integers beyond 2**53 cannot be float64 exactly.
MAX_EXACT_INT = 2**53
#: A first look never grows past this (a few rows of a very wide table must fit).
MAX_HEAD_BYTES = 64 << 20
_MIN_CHUNK = 256 << 10
_MAX_CHUNK = 16 << 20
_PARSE_BLOCK = 1 << 20


def check_text(head: bytes, name: str, eof: bool) -> None:
    """Raise ``DataError`` unless ``head`` looks like UTF-8 text (not binary, not Parquet)."""
    if head.startswith(PARQUET_MAGIC):
        raise DataError(
            f"{name}: looks like a Parquet file, not text",
            hint="name it .parquet or pass --input-format parquet",
        )
    try:
        head.decode("utf-8")
        bad = b"\x00" in head
    except UnicodeDecodeError as e:
        # A multi-byte character cut by the end of the first look is fine.
        bad = eof or e.start < len(head) - 3
    if bad:
        raise DataError(
            f"{name}: does not look like UTF-8 text (binary data?)",
            hint="aecli reads CSV, TSV, JSON lines (UTF-8) and Parquet; convert other "
            "encodings first (iconv -f latin1 -t utf-8), or name the format with --input-format",
        )


def check_names(names: list[str], name: str) -> None:
    """Raise ``DataError`` naming any empty or duplicate column names."""
    empty = [i + 1 for i, n in enumerate(names) if not n.strip()]
    if empty:
        raise DataError(
            f"{name}: column {empty[0]} has no name"
            + (f" (nor do columns {empty[1:]})" if len(empty) > 1 else ""),
            hint="give every column a name in the header line",
        )
    seen: set[str] = set()
    dups = sorted({n for n in names if n in seen or seen.add(n)})
    if dups:
        raise DataError(
            f"{name}: duplicate column names: {', '.join(map(repr, dups))}",
            hint="give every column a distinct name",
        )


def largest(column: pa.Array | pa.ChunkedArray) -> int:
    """Return the largest absolute value of an integer column (0 when all null)."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    if any(c.null_count for c in chunks):
        import pyarrow.compute as pc  # imported when needed: 40 ms that most runs never use

        mm = pc.min_max(column).as_py()
        return max(abs(mm["min"] or 0), abs(mm["max"] or 0))
    # Without nulls NumPy reads the values from the data buffer; Python ints cannot overflow.
    best = 0
    for c in chunks:
        if len(c):
            v = int_view(c)
            best = max(best, abs(int(v.min())), abs(int(v.max())))
    return best


def record_end(data: bytes) -> int:
    """Return the end of the last complete CSV record in ``data`` (a newline outside quotes)."""
    end = len(data)
    for _ in range(1000):
        nl = data.rfind(b"\n", 0, end)
        if nl < 0:
            return 0
        if data.count(b'"', 0, nl) % 2 == 0:
            return nl + 1
        end = nl
    return data.rfind(b"\n") + 1


def line_end(data: bytes) -> int:
    """Return the end of the last complete line in ``data``."""
    return data.rfind(b"\n") + 1


def line_of(part: bytes, record: int) -> int:
    """Return the 1-based line in ``part`` of its ``record``-th (1-based) non-blank line."""
    seen = 0
    for i, line in enumerate(part.split(b"\n")):
        if line.strip():
            seen += 1
            if seen == record:
                return i + 1
    return part.count(b"\n") + 1


def _longest_line(head: bytes) -> int:
    lines = head.split(b"\n", 1000)
    return max(map(len, lines[:-1] or lines))  # the last piece is the unsplit rest


def block_size(head: bytes) -> int:
    """Bytes pyarrow should parse at a time: 1 MiB, or several of the longest line."""
    return max(_PARSE_BLOCK, 8 * _longest_line(head))


def chunk_size(head: bytes, rows: int, batch_rows: int) -> int:
    """Bytes to read per chunk: about ``batch_rows`` rows, and several of the longest line."""
    longest = _longest_line(head)
    per_row = len(head) / max(rows, 1)
    size = max(per_row * batch_rows, 8 * longest, _MIN_CHUNK)
    return int(min(size, max(_MAX_CHUNK, 8 * longest)))


def chunks(
    opened: Opened, size: int, boundary: Callable[[bytes], int], name: str
) -> Iterator[tuple[bytes, int]]:
    """Yield (part, lines before it): the input cut into parts that end at a record boundary."""
    stream = opened.stream
    carry, lines = b"", 0
    while True:
        try:
            block = read_up_to(stream, size)
        except (pa.ArrowException, OSError, EOFError) as e:
            raise DataError(
                f"{name}: cannot read after line {lines}: {e}",
                hint="the file may be truncated or damaged",
            ) from None
        data = carry + block
        last = len(block) < size
        cut = len(data) if last else boundary(data)
        if cut:
            part, carry = data[:cut], data[cut:]
            yield part, lines
            lines += part.count(b"\n")
        else:
            carry = data  # one record longer than a chunk: read on
        if last:
            return


def parsed(opened: Opened, size: int, boundary: Callable[[bytes], int], name: str,
           parse: Callable[[bytes, int], pa.Table | None], batch_rows: int
           ) -> Iterator[pa.RecordBatch]:
    """The batches of an input cut into parts (see :func:`chunks`), each parsed by
    ``parse(part, lines before it)`` (None: nothing in it); closes ``opened`` when done."""
    try:
        for part, lines in chunks(opened, size, boundary, name):
            table = parse(part, lines)
            if table is not None:
                yield from split(table, batch_rows)
    finally:
        opened.close()


def split(table: pa.Table, batch_rows: int) -> Iterator[pa.RecordBatch]:
    """Yield the non-empty batches of ``table``, at most ``batch_rows`` rows each (no copy)."""
    for batch in table.to_batches(max_chunksize=batch_rows):
        if batch.num_rows:
            yield batch


__all__ = [
    "MAX_EXACT_INT",
    "MAX_HEAD_BYTES",
    "block_size",
    "check_names",
    "check_text",
    "chunk_size",
    "chunks",
    "largest",
    "line_end",
    "line_of",
    "parsed",
    "record_end",
    "split",
]
