"""Table formats: which one a path or a stream of bytes holds.

A format is chosen, in order, by an explicit ``--input-format``/``--format``, by the path's
extension, and for stdin by sniffing the first bytes. Compression (gzip, bzip2, zstd) is a
property of the bytes, not of the format: readers recognise it by its magic number, writers by
the extension (``.csv.gz``).
"""

from __future__ import annotations

import enum
import glob
import os
from pathlib import Path

import pyarrow as pa

from aecli.errors import DataError

UTF8_BOM = b"\xef\xbb\xbf"
PARQUET_MAGIC = b"PAR1"

#: Text that means a missing value (in delimited text, and in text columns made numbers).
NULL_VALUES = (
    "", "NA", "N/A", "n/a", "NaN", "nan", "NAN", "-NaN", "-nan", "null", "NULL", "Null",
    "None", "#N/A",
)  # fmt: skip

#: Candidate delimiters for delimited text, in order of preference on a tie.
DELIMITERS = (",", "\t", ";", "|")

# Magic numbers of the compressions pyarrow can undo while streaming.
_COMPRESSION_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
_COMPRESSION_EXT = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bz2", ".zst": "zstd", ".zstd": "zstd"}

_GLOB_CHARS = frozenset("*?[")

# How far the delimiter detector looks: enough records to see a pattern, bounded in time.
_SNIFF_RECORDS = 50
_SNIFF_CHARS = 64 * 1024


class Format(enum.StrEnum):
    """A table format aecli reads and writes."""

    csv = "csv"
    tsv = "tsv"
    parquet = "parquet"
    jsonl = "jsonl"

    @classmethod
    def parse(cls, value: Format | str) -> Format:
        """Return the ``Format`` named by ``value`` (case-insensitive; ``ndjson`` is jsonl).

        Raises
        ------
        DataError
            When ``value`` names no format.
        """
        if isinstance(value, Format):
            return value
        name = str(value).strip().lower().lstrip(".")
        name = {"ndjson": "jsonl", "pq": "parquet", "json": "jsonl"}.get(name, name)
        try:
            return cls(name)
        except ValueError:
            allowed = ", ".join(f.value for f in cls)
            raise DataError(f"unknown format {value!r}", hint=f"use one of: {allowed}") from None


_FORMAT_EXT = {
    ".csv": Format.csv,
    ".tsv": Format.tsv,
    ".tab": Format.tsv,
    ".parquet": Format.parquet,
    ".pq": Format.parquet,
    ".jsonl": Format.jsonl,
    ".ndjson": Format.jsonl,
}


def is_url(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an fsspec URL (``s3://bucket/key``, ``gs://...``), not a local
    path; such paths are opened through fsspec, with its credentials from the environment."""
    text = os.fspath(path)
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.isalnum() and scheme.lower() != "file"


def open_url(path: str):
    """A readable binary file of an fsspec URL.

    Raises
    ------
    DataError
        fsspec (or the protocol's package) is missing, or the object cannot be opened.
    """
    try:
        import fsspec
    except ImportError:
        raise DataError(f"{path}: reading a URL needs fsspec",
                        hint="pip install 'aecli[s3]' (or the fsspec package for the "
                        "protocol)") from None
    try:
        return fsspec.open(path, "rb").open()
    except ImportError as e:
        raise DataError(f"{path}: this protocol needs a package that is not installed ({e})",
                        hint="pip install 'aecli[s3]' for s3://") from None
    except FileNotFoundError:
        raise DataError(f"{path}: no such object", hint="check the URL") from None
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot open: {e}",
                        hint="check the URL and the credentials in the environment") from None


def is_glob(path: str | os.PathLike) -> bool:
    """Return whether ``path`` is a glob pattern (contains ``*``, ``?`` or ``[``)."""
    return any(c in _GLOB_CHARS for c in os.fspath(path))


def _suffixes(path: str | os.PathLike) -> tuple[str, str | None]:
    """Return (format suffix, compression codec) of ``path``, lower-cased."""
    name = Path(os.fspath(path)).name.lower()
    base, ext = os.path.splitext(name)
    codec = _COMPRESSION_EXT.get(ext)
    if codec is not None:
        ext = os.path.splitext(base)[1]
    return ext, codec


def compression_from_path(path: str | os.PathLike) -> str | None:
    """Return the compression codec named by the extension of ``path``, if any.

    Returns
    -------
    str or None
        ``"gzip"``, ``"bz2"``, ``"zstd"`` (pyarrow codec names) or ``None``.
    """
    return _suffixes(path)[1]


def format_from_path(path: str | os.PathLike) -> Format:
    """Return the format a path holds, judged by its extension.

    ``.csv``, ``.tsv`` (each also with ``.gz``, ``.bz2``, ``.zst``), ``.parquet``/``.pq``,
    ``.jsonl``/``.ndjson``. An existing directory, or a glob pattern, is a Parquet dataset.

    Parameters
    ----------
    path : str or os.PathLike
        A file path, a directory, or a glob pattern.

    Returns
    -------
    Format

    Raises
    ------
    DataError
        When the extension is unknown; the hint suggests ``--input-format``/``--format``.
    """
    text = os.fspath(path)
    if is_glob(text) and not os.path.exists(text):
        return Format.parquet
    if os.path.isdir(text):
        return Format.parquet
    ext, _ = _suffixes(text)
    try:
        return _FORMAT_EXT[ext]
    except KeyError:
        known = ", ".join(sorted(_FORMAT_EXT))
        raise DataError(
            f"{text}: cannot tell the format from the extension {ext or '(none)'!r}",
            hint=f"name the format with --input-format/--format (csv, tsv, parquet, jsonl); "
            f"known extensions: {known}, optionally compressed (.gz, .bz2, .zst)",
        ) from None


def expand_glob(pattern: str) -> list[str]:
    """Return the files matching ``pattern`` (recursive ``**`` allowed), sorted."""
    return sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))


def compression_from_magic(head: bytes) -> str | None:
    """Return the compression codec whose magic number starts ``head``, if any."""
    for magic, codec in _COMPRESSION_MAGIC:
        if head.startswith(magic):
            return codec
    return None


def sniff(head: bytes) -> Format:
    """Guess the format of a stream from its first bytes.

    Parquet magic ``PAR1`` means Parquet; a first non-blank character ``{`` means JSON lines;
    anything else is delimited text: TSV when the detected delimiter is a tab, else CSV (whose
    reader detects ``,``, ``;`` and ``|`` itself). A UTF-8 byte order mark is skipped.

    Parameters
    ----------
    head : bytes
        The first bytes of the (decompressed) stream; a few KiB are plenty.

    Returns
    -------
    Format
    """
    if head.startswith(PARQUET_MAGIC):
        return Format.parquet
    text = head.removeprefix(UTF8_BOM).lstrip()
    if text.startswith(b"{"):
        return Format.jsonl
    if detect_delimiter(text) == "\t":
        return Format.tsv
    return Format.csv


def _records(text: str) -> list[list[int]]:
    """Count each candidate delimiter outside double quotes, per record of ``text``.

    The last record is left out when ``text`` does not end it (it may be cut short).
    """
    records: list[list[int]] = []
    counts = [0] * len(DELIMITERS)
    in_quotes = False
    blank = True
    for ch in text:
        if ch == '"':
            in_quotes = not in_quotes
            blank = False
        elif in_quotes:
            continue
        elif ch == "\n":
            if not blank:
                records.append(counts)
                if len(records) >= _SNIFF_RECORDS:
                    break
            counts = [0] * len(DELIMITERS)
            blank = True
        elif ch in DELIMITERS:
            counts[DELIMITERS.index(ch)] += 1
            blank = False
        elif ch != "\r":
            blank = False
    else:
        if not blank and len(text) < _SNIFF_CHARS:
            # The whole input was given and its last line has no newline.
            records.append(counts)
    return records


def detect_delimiter(head: bytes | str) -> str:
    """Detect the delimiter of delimited text among ``,``, tab, ``;`` and ``|``.

    The winner occurs in the header and the same number of times in every record looked at
    (quoted text is skipped); among those, the most frequent wins. Without a consistent
    candidate, the most frequent in the header wins; without any, ``,`` (one column).

    Parameters
    ----------
    head : bytes or str
        The start of the text; a UTF-8 byte order mark is skipped.

    Returns
    -------
    str
        One character.
    """
    if isinstance(head, bytes):
        head = head.removeprefix(UTF8_BOM)[:_SNIFF_CHARS].decode("utf-8", errors="replace")
    records = _records(head[:_SNIFF_CHARS])
    if not records:
        return ","
    header = records[0]
    consistent = [i for i, n in enumerate(header) if n > 0 and all(r[i] == n for r in records[1:])]
    pool = consistent or [i for i, n in enumerate(header) if n > 0]
    if not pool:
        return ","
    best = max(pool, key=lambda i: (header[i], -i))
    return DELIMITERS[best]


def empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    """A batch of no rows with ``schema``: what a reader yields for an input that has columns
    and no rows (a CSV header alone), so that outputs can still name their columns."""
    return pa.RecordBatch.from_arrays([pa.array([], f.type) for f in schema], schema=schema)
