"""Files that appear whole or not at all: write a temporary file beside the target, then rename.

The temporary file lives in the target's directory (a rename across file systems is not
atomic), is hidden and named so that it is recognisably aecli's
(``.model.npz.aecli-<host>-<pid>.<random>.tmp.npz``: ``host`` a hash of the host name, ``pid``
the writing process), keeps the target's extension (tools that choose a format by extension,
like ``np.savez``, keep working), is flushed to disk before the rename, and is removed on any
exception, ``KeyboardInterrupt`` included. An existing target keeps its permissions; a new one
gets the usual ``0o666 & ~umask``.

A run killed with SIGKILL cannot remove its temporary file. The first write of a later run to
the same directory removes such leftovers: aecli's temporary files from this host whose process
is gone and which are older than the current run (see :func:`sweep_leftovers`).

Inside :func:`commit_group`, renames wait: each file is renamed into place when the group
commits, and removed if it is aborted, so that a command which fails after writing one output
(the model) and before finishing another (its JSON on stdout, its history) leaves none.

A target that exists and is no regular file (``/dev/null``, a named pipe, a terminal) is
written in place: a rename would replace the device itself with a regular file.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import re
import secrets
import socket
import stat
import threading
import time
import zlib
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


# Who writes a temporary file: the host (a hash of its name, so that a directory shared over
# the network never has a file of another host's live process removed) and the process.
_HOST = f"{zlib.crc32(socket.gethostname().encode()):08x}"
_STARTED = time.time()  # a leftover is older than this run when its mtime is before this
_LEFTOVER = re.compile(r"^\..*\.aecli-(?P<host>[0-9a-f]{8})-(?P<pid>[0-9]+)\.[0-9a-f]{8}\.tmp"
                       r"(\.[^.]+)*$", re.DOTALL)
_swept: set[str] = set()  # directories already swept by this process


def _temp_name(path: Path) -> Path:
    ext = path.suffix
    if ext.lower() in _COMPRESSED:
        ext = Path(path.stem).suffix + ext
    name = path.name
    if len(name.encode()) > 160:  # keep the temporary name under the usual 255-byte limit
        name = name.encode()[:120].decode(errors="ignore")
    tag = f"aecli-{_HOST}-{os.getpid()}.{secrets.token_hex(4)}"
    return path.with_name(f".{name}.{tag}.tmp{ext}")


def _alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill would end the process there: take every writer as alive
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, someone else's
        return True
    return True


def sweep_leftovers(directory: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that killed aecli runs left in ``directory``.

    A file is removed only when its name is an aecli temporary name from this host, its
    process is no longer running, and it was last written before the current process started;
    anything else (another host's files, a live writer's, any file of another name) is left
    alone. Each directory is swept once per process; errors are ignored (the sweep only
    tidies).

    Returns
    -------
    list of pathlib.Path
        The files removed.
    """
    key = os.path.abspath(directory)
    if key in _swept:
        return []
    _swept.add(key)
    removed = []
    try:
        entries = list(os.scandir(key))
    except OSError:
        return removed
    for entry in entries:
        if ".aecli-" not in entry.name or not entry.name.startswith("."):
            continue
        m = _LEFTOVER.match(entry.name)
        if m is None or m["host"] != _HOST:
            continue
        pid = int(m["pid"])
        try:
            st = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode) or st.st_mtime >= _STARTED:
                continue
            if pid != os.getpid() and _alive(pid):
                continue
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed


class CommitGroup:
    """Files whose rename waits for :meth:`commit` (see :func:`commit_group`)."""

    def __init__(self):
        self.pending: list[AtomicFile] = []
        self.thread = threading.get_ident()

    def commit(self) -> None:
        """Rename every waiting file into place, in the order they were finished."""
        pending, self.pending = self.pending, []
        for i, f in enumerate(pending):
            try:
                f._rename()
            except BaseException:
                for rest in pending[i + 1:]:
                    rest.abort()
                raise

    def abort(self) -> None:
        """Remove every waiting file; their targets are left as they were."""
        pending, self.pending = self.pending, []
        for f in pending:
            f.abort()


_group: contextvars.ContextVar[CommitGroup | None] = contextvars.ContextVar(
    "aecli_commit_group", default=None)


@contextlib.contextmanager
def commit_group() -> Iterator[CommitGroup]:
    """Hold back the renames of the files finished inside the block.

    Call the group's ``commit`` to put them in place once the whole command has succeeded;
    whatever is not committed when the block ends is removed. Files finished on other
    threads (a Dask worker's, say) are renamed at once, as outside a group.

    Yields
    ------
    CommitGroup
    """
    group = CommitGroup()
    token = _group.set(group)
    try:
        yield group
    finally:
        _group.reset(token)
        group.abort()


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
        sweep_leftovers(parent)
        self.tmp = _temp_name(self.path)
        try:
            fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except OSError as e:
            raise output_error(self.path, e) from None
        os.close(fd)

    def commit(self) -> None:
        """Flush the temporary file to disk and rename it onto ``path`` (inside a
        :func:`commit_group`, when the group commits)."""
        if self.in_place:
            self.done = True
            return
        try:
            fd = os.open(self.tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            self.abort()
            raise output_error(self.path, e) from None
        group = _group.get()
        if group is not None and group.thread == threading.get_ident():
            group.pending.append(self)
            return
        self._rename()

    def _rename(self) -> None:
        try:
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
