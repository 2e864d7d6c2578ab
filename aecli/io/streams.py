"""Where input bytes come from: a file or stdin, decompressed, with their first bytes kept.

Readers need to look at the start of a stream (to sniff the format, detect the delimiter, infer
column types) and then read it from the beginning. stdin cannot be rewound, so the bytes looked
at are kept and replayed in front of the rest (``Prefixed``); files are treated the same way, so
there is one code path and nothing is read twice.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import BinaryIO

import pyarrow as pa

from aecli.errors import DataError
from aecli.io.formats import UTF8_BOM, compression_from_magic, is_url, open_url

#: How many (decompressed) bytes readers look at before choosing delimiter and column types.
HEAD_BYTES = 1 << 20

_MAGIC_BYTES = 4


@dataclass(frozen=True)
class Source:
    """Where a table comes from: a file, a directory or glob of Parquet files, or stdin.

    Parameters
    ----------
    path : str or None
        The path or glob as given; ``None`` means stdin.
    stdin : binary file-like, optional
        What stdin is; defaults to ``sys.stdin.buffer`` (tests pass a ``BytesIO``).
    """

    path: str | None
    stdin: BinaryIO | None = None
    label: str | None = None  # the name messages use, when not the path (a copy of stdin)

    @classmethod
    def of(cls, source: Source | str | os.PathLike | None, stdin: BinaryIO | None = None) -> Source:
        """Return the ``Source`` for a path, ``"-"`` or ``None`` (stdin), or ``source`` itself."""
        if isinstance(source, Source):
            return source if stdin is None else cls(source.path, stdin, source.label)
        if source is None or os.fspath(source) == "-":
            return cls(None, stdin)
        return cls(os.fspath(source), None)

    @property
    def is_stdin(self) -> bool:
        """Whether this source is stdin."""
        return self.path is None

    @property
    def name(self) -> str:
        """The name to use in messages: the path, or ``<stdin>``."""
        return self.label or ("<stdin>" if self.path is None else self.path)

    def open_binary(self) -> BinaryIO:
        """Open the raw bytes (a file, or stdin), translating OS errors into ``DataError``."""
        if self.path is None:
            return self.stdin if self.stdin is not None else sys.stdin.buffer
        if is_url(self.path):
            return open_url(self.path)
        try:
            return open(self.path, "rb")  # noqa: SIM115 - closed by the reader that owns it
        except FileNotFoundError:
            raise DataError(
                f"{self.path}: no such file", hint="check the path; use - (or nothing) for stdin"
            ) from None
        except IsADirectoryError:
            raise DataError(
                f"{self.path}: is a directory",
                hint="a directory is read as a Parquet dataset; use --input-format parquet "
                "or name a file",
            ) from None
        except PermissionError:
            raise DataError(
                f"{self.path}: permission denied", hint="check the file's permissions"
            ) from None
        except OSError as e:
            raise DataError(f"{self.path}: cannot read: {e.strerror or e}") from None


class Prefixed:
    """A readable binary stream: ``prefix`` first, then the rest of ``raw``.

    Parameters
    ----------
    prefix : bytes
        Bytes already read from ``raw``.
    raw : binary file-like
        Anything with ``read(n)`` returning bytes (a Python file or a pyarrow stream).
    """

    def __init__(self, prefix: bytes, raw):
        self._prefix = memoryview(prefix)
        self._raw = raw
        self.closed = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def writable(self) -> bool:
        return False

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            out = bytes(self._prefix) + self._raw.read()
            self._prefix = memoryview(b"")
            return out
        if self._prefix:
            out = bytes(self._prefix[:n])
            self._prefix = self._prefix[n:]
            return out
        return self._raw.read(n)

    def close(self) -> None:
        self.closed = True


def read_up_to(stream, n: int) -> bytes:
    """Read ``n`` bytes from ``stream``, fewer only at the end (pipes return short reads)."""
    parts = []
    got = 0
    while got < n:
        part = stream.read(n - got)
        if not part:
            break
        parts.append(bytes(part))
        got += len(part)
    return b"".join(parts)


@dataclass
class Opened:
    """An input opened for reading: its first bytes, and a stream that replays them first.

    Attributes
    ----------
    head : bytes
        Up to ``HEAD_BYTES`` decompressed bytes, without a UTF-8 byte order mark.
    eof : bool
        Whether ``head`` is the whole input.
    """

    head: bytes
    eof: bool
    name: str
    _inner: object
    _raw: BinaryIO
    _owned: bool

    @property
    def stream(self) -> Prefixed:
        """A new stream that reads ``head`` and then the rest of the input (use it once)."""
        return Prefixed(self.head, self._inner)

    def read_more(self, n: int) -> None:
        """Grow ``head`` by up to ``n`` bytes (for rows longer than the first look)."""
        more = _read_head(self._inner, n, self.name)
        self.head += more
        self.eof = len(more) < n

    def read_all(self) -> bytes:
        """Return the whole (decompressed) input, ``head`` included."""
        return self.head + self._inner.read()

    def close(self) -> None:
        """Close the file, unless it is stdin."""
        if self._owned:
            self._raw.close()


def _read_head(stream, n: int, name: str) -> bytes:
    try:
        return read_up_to(stream, n)
    except (pa.ArrowException, OSError, EOFError) as e:
        raise DataError(
            f"{name}: cannot read: {e}",
            hint="the file may be truncated or damaged (check it with gzip -t / zstd -t)",
        ) from None


def open_stream(source: Source, head_bytes: int | None = None) -> Opened:
    """Open ``source``, undo gzip/bzip2/zstd compression (by magic number), read its head.

    Raises
    ------
    DataError
        When the file cannot be opened or the compressed data is damaged.
    """
    head_bytes = head_bytes or HEAD_BYTES
    raw = source.open_binary()
    owned = not source.is_stdin
    try:
        magic = read_up_to(raw, _MAGIC_BYTES)
        stream = Prefixed(magic, raw)
        codec = compression_from_magic(magic)
        if codec is not None:
            stream = Prefixed(b"", pa.CompressedInputStream(pa.PythonFile(stream, mode="r"), codec))
        head = _read_head(stream, head_bytes, source.name)
        eof = len(head) < head_bytes
        head = head.removeprefix(UTF8_BOM)
        return Opened(head, eof, source.name, stream, raw, owned)
    except BaseException:
        if owned:
            raw.close()
        raise
