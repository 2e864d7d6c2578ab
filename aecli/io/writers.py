"""Write tables: CSV, TSV, Parquet or JSON lines, streamed batch by batch, to a file or stdout.

A file is written atomically (see ``aecli.io.atomic``): it appears whole on a successful close,
and nothing is left behind on an error. Floats are written in their shortest round-trip form
(``0.1``, not ``0.10000000000000001``; float32 as float32). In CSV, text is quoted only when a
value needs it, so ``z1,z2`` headers stay plain. In JSON lines, NaN and infinities are ``null``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from aecli.errors import DataError, OutputError
from aecli.io.atomic import AtomicFile, is_special, output_error
from aecli.io.formats import Format, compression_from_path, format_from_path

_DELIMITER = {Format.csv: ",", Format.tsv: "\t"}


class _Stream:
    """A write-only view of stdout that counts bytes (Parquet needs ``tell``), never closed."""

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self._pos = 0
        self.closed = False

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._raw.write(data)
        n = memoryview(data).nbytes
        self._pos += n
        return n

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
        self._raw.flush()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._raw.flush()


def stdout_buffer() -> BinaryIO:
    """``sys.stdout.buffer``, or an ``OutputError`` when the process has no stdout
    (started with it closed, ``>&-``)."""
    if sys.stdout is None:
        raise OutputError("<stdout>: standard output is closed",
                          hint="send it somewhere (> FILE), or write a file with -o FILE")
    return sys.stdout.buffer


def _dictionary_columns(schema: pa.Schema) -> list[str]:
    """The columns worth dictionary-encoding in Parquet: all but the floats.

    Codes, reconstructions and errors hardly ever repeat a value, so a dictionary only adds
    a hash per value and index pages on top of the values (a 65536-row column chunk of codes
    came out 49% larger than plain, and took 4x as long to write).
    """
    return [f.name for f in schema if not pa.types.is_floating(f.type)]


def _quote(name: str, delimiter: str) -> str:
    if any(c in name for c in (delimiter, '"', "\n", "\r")) or name != name.strip():
        return '"' + name.replace('"', '""') + '"'
    return name


def _needs_quotes(batch: pa.RecordBatch, delimiter: str) -> bool:
    """Whether any text value in ``batch`` holds the delimiter, a quote or a line break."""
    pattern = "[" + ("\\t" if delimiter == "\t" else delimiter) + '"\r\n]'
    for column in batch.columns:
        t = column.type
        if pa.types.is_dictionary(t):
            column = column.dictionary_decode()
            t = column.type
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            import pyarrow.compute as pc  # imported when needed: 40 ms most runs never use

            if pc.any(pc.match_substring_regex(column, pattern)).as_py():
                return True
        elif not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
            return True
    return False


def _json_values(column: pa.Array) -> pa.Array:
    """Each value of ``column`` as JSON text (a string array without nulls)."""
    import pyarrow.compute as pc  # imported when needed: 40 ms that most runs never use

    t = column.type
    if pa.types.is_dictionary(t):
        column = column.dictionary_decode()
        t = column.type
    if pa.types.is_floating(t):
        text = pc.if_else(pc.is_finite(column), pc.cast(column, pa.string()), pa.scalar("null"))
    elif pa.types.is_integer(t) or pa.types.is_boolean(t) or pa.types.is_decimal(t):
        text = pc.cast(column, pa.string())
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        text = pa.array(
            [None if v is None else json.dumps(v, ensure_ascii=False) for v in column.to_pylist()],
            pa.string(),
        )
    else:
        text = pa.array(
            [_json_text(v) for v in column.to_pylist()],
            pa.string(),
        )
    return pc.fill_null(text, "null")


def _json_text(value) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))


def _flat(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` with nested values (structs, lists, maps) as JSON text, which CSV can hold."""
    nested = [pa.types.is_nested(c.type) for c in batch.columns]
    if not any(nested):
        return batch
    columns = [
        pa.array([None if v is None else _json_text(v) for v in c.to_pylist()], pa.string())
        if flat
        else c
        for c, flat in zip(batch.columns, nested, strict=True)
    ]
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def _jsonl_bytes(batch: pa.RecordBatch) -> pa.Buffer:
    """The JSON lines of ``batch``: one object per row, built column-wise in Arrow."""
    parts: list = []
    for i, (name, column) in enumerate(zip(batch.schema.names, batch.columns, strict=True)):
        parts += [("{" if i == 0 else ",") + json.dumps(name, ensure_ascii=False) + ":"]
        parts += [_json_values(column)]
    parts += ["}\n" if parts else "{}\n"]
    if not any(isinstance(p, pa.Array) for p in parts):
        return pa.py_buffer(parts[0].encode() * batch.num_rows)
    import pyarrow.compute as pc  # imported when needed: 40 ms that most runs never use

    rows = pc.binary_join_element_wise(*parts, "")  # (n,) one line each
    # The lines lie back to back in the array's data buffer: write that buffer, no join.
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32)
    start, end = int(offsets[rows.offset]), int(offsets[rows.offset + len(rows)])
    return rows.buffers()[2].slice(start, end - start)


class TableWriter:
    """Write a table in batches to a file (atomically) or to stdout.

    Parameters
    ----------
    dest : str, os.PathLike or None
        A file path; ``None`` or ``"-"`` is stdout.
    fmt : Format or str, optional
        The format; by default the path's extension (``.csv.gz``, ``.csv.bz2``, ``.csv.zst``
        are compressed), and CSV on stdout.
    stdout : binary file-like, optional
        Written instead of ``sys.stdout.buffer`` (tests pass a ``BytesIO``); never closed.
    schema : pyarrow.Schema, optional
        Lets a header (or an empty Parquet file) be written even if no rows come.

    Raises
    ------
    OutputError
        The file cannot be created, the format is unknown, or writing fails (disk full).

    Examples
    --------
    >>> with TableWriter("codes.parquet") as out:  # doctest: +SKIP
    ...     for batch in batches:
    ...         out.write(batch)
    """

    def __init__(
        self,
        dest: str | os.PathLike | None = None,
        fmt: Format | str | None = None,
        stdout: BinaryIO | None = None,
        schema: pa.Schema | None = None,
    ):
        to_stdout = dest is None or os.fspath(dest) == "-"
        self.name = "<stdout>" if to_stdout else os.fspath(dest)
        try:
            if fmt is not None:
                self.format = Format.parse(fmt)
            else:
                # stdout, and a device or pipe named without an extension, get CSV
                plain = to_stdout or (is_special(self.name)
                                      and not os.path.splitext(self.name)[1])
                self.format = Format.csv if plain else format_from_path(self.name)
        except DataError as e:
            # Only --format names an output's format.
            hint = e.hint.replace("--input-format/--format", "--format")
            raise OutputError(e.message, hint=hint) from None
        codec = None if to_stdout or self.format is Format.parquet else compression_from_path(dest)
        self.schema = schema
        self._writer = None
        self._header_done = False
        self._atomic = None
        if to_stdout:
            self._sink = _Stream(stdout if stdout is not None else stdout_buffer())
        else:
            self._atomic = AtomicFile(dest)
            try:
                self._sink = pa.OSFile(str(self._atomic.tmp), "wb")
                if codec is not None:
                    self._sink = pa.CompressedOutputStream(self._sink, codec)
            except OSError as e:
                self._atomic.abort()
                raise output_error(self.name, e) from None
            except pa.ArrowException as e:
                self._atomic.abort()
                raise OutputError(f"{self.name}: cannot write {codec} data: {e}") from None

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _start(self, schema: pa.Schema) -> None:
        self.schema = schema
        if self.format is Format.parquet:
            self._writer = pq.ParquetWriter(self._sink, schema,
                                            use_dictionary=_dictionary_columns(schema))
        elif self.format in _DELIMITER and not self._header_done:
            delimiter = _DELIMITER[self.format]
            line = delimiter.join(_quote(n, delimiter) for n in schema.names) + "\n"
            self._sink.write(line.encode())
            self._header_done = True

    def write(self, data: pa.RecordBatch | pa.Table) -> None:
        """Append the rows of a batch or table (its columns must match the first one's)."""
        try:
            self._write(data)
        except OSError as e:
            if isinstance(e, (BrokenPipeError, OutputError)):
                raise
            raise output_error(self.name, e) from None
        except pa.ArrowException as e:
            raise OutputError(
                f"{self.name}: cannot write these columns as {self.format}: {e}",
                hint="choose another output format (--format parquet keeps every type)",
            ) from None

    def _write(self, data: pa.RecordBatch | pa.Table) -> None:
        if self.schema is None:
            self._start(data.schema)
        elif self._writer is None and not self._header_done:
            self._start(self.schema)
        if not data.schema.equals(self.schema):
            if data.schema.names != self.schema.names:
                raise ValueError(f"columns {data.schema.names} differ from {self.schema.names}")
            data = data.cast(self.schema)
        batches = data.to_batches() if isinstance(data, pa.Table) else [data]
        for batch in batches:
            if self.format is Format.parquet:
                self._writer.write_batch(batch)
            elif self.format is Format.jsonl:
                self._sink.write(_jsonl_bytes(batch))
            elif batch.num_rows:
                batch = _flat(batch)
                delimiter = _DELIMITER[self.format]
                style = "needed" if _needs_quotes(batch, delimiter) else "none"
                options = pcsv.WriteOptions(
                    include_header=False, delimiter=delimiter, quoting_style=style
                )
                pcsv.write_csv(batch, self._sink, options)

    def close(self) -> None:
        """Finish the output: write the Parquet footer, flush, and rename the file into place."""
        if self._sink is None:
            return
        try:
            if self._writer is None and self.schema is not None and not self._header_done:
                self._start(self.schema)
            if self._writer is None and self.format is Format.parquet:
                self._writer = pq.ParquetWriter(self._sink, pa.schema([]))
            if self._writer is not None:
                self._writer.close()
            if self._atomic is not None:
                self._sink.close()
            else:
                self._sink.flush()  # stdout stays open for the caller
        except OSError as e:
            self.abort()
            if isinstance(e, BrokenPipeError):
                raise
            raise output_error(self.name, e) from None
        except BaseException:
            self.abort()
            raise
        self._sink = None
        if self._atomic is not None:
            self._atomic.commit()

    def abort(self) -> None:
        """Stop writing; a file being written is removed (an existing one is left untouched)."""
        if self._sink is None:
            return
        sink, self._sink = self._sink, None
        try:
            if self._writer is not None:
                self._writer.close()
        except Exception:  # noqa: BLE001 - cleanup after a failure must not mask it
            pass
        try:
            if self._atomic is not None:
                sink.close()
            else:
                sink.flush()
        except Exception:  # noqa: BLE001
            pass
        if self._atomic is not None:
            self._atomic.abort()
