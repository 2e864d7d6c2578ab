"""Files that appear whole or not at all: write a temporary file beside the target, then rename.

The temporary file lives in the target's directory (a rename across file systems is not
atomic), is hidden (``.model.npz.<random>.tmp.npz``), keeps the target's extension (tools that
choose a format by extension, like ``np.savez``, keep working), is flushed to disk before the
rename, and is removed on any exception, ``KeyboardInterrupt`` included. An existing target
keeps its permissions; a new one gets the usual ``0o666 & ~umask``.

A target that exists and is no regular file (``/dev/null``, a named pipe, a terminal) is
written in place: a rename would replace the device itself with a regular file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from aecli.errors import OutputError

_COMPRESSED = {".gz", ".bz2", ".zst", ".zstd", ".xz"}
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def output_error(path: str | os.PathLike, e: OSError) -> OutputError:
    """Translate an ``OSError`` met while writing ``path`` into an ``OutputError``."""
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    code = getattr(e, "errno", None)
    if code in _FULL or "No space left" in str(e):
        return OutputError(f"{path}: the disk is full", hint="free some space or write elsewhere")
    if code == errno.EROFS:
        return OutputError(f"{path}: the file system is read-only", hint="write elsewhere (-o)")
    if isinstance(e, PermissionError) or code == errno.EACCES:
        return OutputError(
            f"{path}: permission denied (directory {parent})",
            hint="check the directory's permissions, or write elsewhere (-o)",
        )
    return OutputError(f"{path}: cannot write: {e.strerror or e}")


def _temp_name(path: Path) -> Path:
    ext = path.suffix
    if ext.lower() in _COMPRESSED:
        ext = Path(path.stem).suffix + ext
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp{ext}")


class AtomicFile:
    """A temporary file beside ``path`` that becomes ``path`` on ``commit``.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.

    Attributes
    ----------
    path : pathlib.Path
        The target.
    tmp : pathlib.Path
        The temporary file (created empty).

    Raises
    ------
    OutputError
        The directory does not exist or is not writable, or ``path`` is a directory.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(os.fspath(path))
        parent = self.path.parent
        if self.path.is_dir():
            raise OutputError(f"{self.path}: is a directory", hint="give a file name")
        self.done = False
        self.in_place = is_special(self.path)
        if self.in_place:  # /dev/null, a pipe: nothing to rename, and nothing to remove
            self.tmp = self.path
            if not os.access(self.path, os.W_OK):
                raise output_error(self.path, PermissionError(errno.EACCES, "not writable"))
            return
        if not parent.is_dir():
            raise OutputError(
                f"{self.path}: directory {str(parent)!r} does not exist",
                hint=f"create it first (mkdir -p {parent}) or write elsewhere",
            )
        self.tmp = _temp_name(self.path)
        try:
            fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except OSError as e:
            raise output_error(self.path, e) from None
        os.close(fd)

    def commit(self) -> None:
        """Flush the temporary file to disk and rename it onto ``path``."""
        if self.in_place:
            self.done = True
            return
        try:
            fd = os.open(self.tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.chmod(self.tmp, stat.S_IMODE(os.stat(self.path).st_mode))
            os.replace(self.tmp, self.path)
        except OSError as e:
            self.abort()
            raise output_error(self.path, e) from None
        self.done = True
        # Make the rename itself durable; not every file system can fsync a directory.
        with contextlib.suppress(OSError):
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def abort(self) -> None:
        """Remove the temporary file; ``path`` is left as it was."""
        self.done = True
        if self.in_place:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)


def is_special(path: str | os.PathLike) -> bool:
    """Whether ``path`` exists and is neither a regular file nor a directory (a device such as
    ``/dev/null``, a named pipe, a socket): written in place, never replaced."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _translated(path: Path, e: BaseException) -> BaseException:
    if isinstance(e, OSError) and not isinstance(e, OutputError):
        code = getattr(e, "errno", None)
        if code in _FULL or code == errno.EROFS or "No space left" in str(e):
            return output_error(path, e)
    return e


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Give a temporary path to write; on success it replaces ``path``, else it is removed.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.

    Yields
    ------
    pathlib.Path
        A path in the same directory with the same extension; write the whole file there.

    Raises
    ------
    OutputError
        The directory does not exist or is unwritable, or the disk is full.

    Examples
    --------
    >>> with atomic_write("model.npz") as tmp:  # doctest: +SKIP
    ...     np.savez(tmp, W=W)
    """
    target = AtomicFile(path)
    try:
        yield target.tmp
    except BaseException as e:
        target.abort()
        err = _translated(target.path, e)
        if err is e:
            raise
        raise err from None
    target.commit()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Like ``atomic_write``, but give an open binary file to write to.

    Yields
    ------
    binary file
        Open for writing; closed, synced and renamed onto ``path`` on success.
    """
    with atomic_write(path) as tmp:
        try:
            f = open(tmp, "wb")  # noqa: SIM115 - closed below, before the rename
        except OSError as e:
            raise output_error(path, e) from None
        with f:
            yield f
