"""How every command runs: consoles, thread caps, and the one place errors become exit codes."""

from __future__ import annotations

import errno
import functools
import os
import signal
import sys
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer

from ..errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, AecliError, AnomalyFound, OutputError
from ..pipeline import pinned, scope
from ..pipeline.sinks import commit_group, output_error, stdout_buffer
from . import options as o
from .signatures import expand, option

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

# rich is imported where a console is made, not here: its 30 ms would fall on every run of
# every command, and a quiet encode in a pipe prints nothing to a person.


class Terminated(BaseException):
    """Raised from the SIGTERM handler so that ``finally`` blocks remove temporary files."""


def _on_sigterm(signum, frame):
    raise Terminated()


def _silence_stderr() -> None:
    # Point fd 2 at /dev/null: what was pending and everything after goes nowhere, without
    # another error (Python's own warnings included).
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stderr.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


class _Stderr:
    """``sys.stderr`` as the consoles write to it. What goes there is for people, and optional:
    a write that fails (a reader that closed the pipe, ``2>&1 | head -1``; a full disk) silences
    stderr for the rest of the run instead of stopping the work."""

    def write(self, text: str) -> int:
        try:
            if sys.stderr is not None:
                sys.stderr.write(text)
        except (OSError, ValueError):
            _silence_stderr()
        return len(text)

    def flush(self) -> None:
        try:
            if sys.stderr is not None:
                sys.stderr.flush()
        except (OSError, ValueError):
            _silence_stderr()

    def isatty(self) -> bool:
        try:
            return sys.stderr is not None and sys.stderr.isatty()
        except (OSError, ValueError):
            return False

    def __getattr__(self, name):
        # rich_proxied_file included: while a progress bar redirects sys.stderr, the console
        # writes to the file under the redirection, not back into it
        return getattr(sys.stderr, name)


def _stdout():
    if sys.stdout is None:  # started with stdout closed (>&-)
        stdout_buffer()  # raises the OutputError that says so
    return sys.stdout


def _stdout_failed(e: OSError) -> OSError:
    # A reader that closed the pipe stays a BrokenPipeError (a quiet success); a full disk or a
    # bad descriptor becomes an OutputError naming stdout.
    if isinstance(e, (BrokenPipeError, OutputError)):
        return e
    return output_error("<stdout>", e)


class _Stdout:
    """``sys.stdout`` as the stdout console writes to it: a failed write is an
    ``OutputError`` (exit 2), not an internal error."""

    def write(self, text: str) -> int:
        try:
            return _stdout().write(text)
        except OSError as e:
            raise _stdout_failed(e) from None

    def flush(self) -> None:
        try:
            _stdout().flush()
        except OSError as e:
            raise _stdout_failed(e) from None

    def isatty(self) -> bool:
        try:
            return sys.stdout is not None and sys.stdout.isatty()
        except (OSError, ValueError):
            return False

    def __getattr__(self, name):
        return getattr(sys.stdout, name)


def write_stdout(text: str | bytes) -> None:
    """Write ``text`` (or bytes) to stdout and flush it: the result a program reads.

    Raises
    ------
    OutputError
        stdout is closed, or the disk behind it is full.
    BrokenPipeError
        The reader closed the pipe (the command then ends quietly with status 0).
    """
    out = _stdout()
    try:
        if isinstance(text, bytes):
            out.flush()
            out.buffer.write(text)
            out.buffer.flush()
        else:
            out.write(text)
            out.flush()
    except OSError as e:
        raise _stdout_failed(e) from None


def _flush_stdout() -> None:
    # What a command left in stdout's buffer is written before its files are put in place:
    # a full disk there fails the command, and the files with it.
    if sys.stdout is None:
        return
    try:
        sys.stdout.flush()
    except ValueError:  # closed under us: nothing left to write
        pass
    except OSError as e:
        raise _stdout_failed(e) from None


def stderr_console() -> Console:
    """Console for everything meant for people: progress, tables, warnings, errors."""
    from rich.console import Console

    return Console(file=_Stderr(), highlight=False)


@functools.cache
def _pipe_console_class() -> type[Console]:
    from rich.console import Console

    class PipeConsole(Console):
        """A console whose closed pipe is left to :func:`guarded`, like any other write to
        stdout: rich's own handling exits with status 1, and a reader closing the pipe
        (``| head``) is a quiet success (status 0)."""

        def on_broken_pipe(self) -> None:
            raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))

    return PipeConsole


def stdout_console() -> Console:
    """Console for rendering to stdout (tables when stdout is a terminal)."""
    return _pipe_console_class()(file=_Stdout(), highlight=False)




def _quiet_stdout() -> None:
    # The reader closed the pipe: point stdout at /dev/null so the interpreter's final flush
    # does not raise again, then leave quietly.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _labelled(label: str, message: str) -> Text:
    # The message quotes user data (column names, values, paths) that may look like rich
    # markup ("[/]", "[bold]"): it goes in as plain text, never parsed.
    from rich.text import Text

    return Text.assemble((label, "bold red"), " ", message)


@dataclass(frozen=True)
class Run:
    """The flags every command takes: ``-q/--quiet``, ``-v/--verbose``, ``--debug``."""

    quiet: bool = False
    verbose: bool = False
    debug: bool = False


_RUN_OPTIONS = [option("quiet", o.Quiet, False), option("verbose", o.Verbose, False),
                option("debug", o.Debug, False)]


def guarded(fn):
    """Wrap a command: give it the ``run`` flags, cap BLAS threads, turn expected failures
    into a message and exit code, leave quietly on a closed pipe, exit 130 on Ctrl-C, and hide
    tracebacks unless --debug.

    The command declares ``run: Run = None`` where ``-q``, ``-v`` and ``--debug`` belong in
    its help, and receives them there as one :class:`Run`.
    """
    return expand(_guard(fn), "run", _RUN_OPTIONS, lambda values: Run(**values))


def _catch_termination() -> dict:
    # SIGTERM (kill, a scheduler's timeout) and SIGHUP (the terminal or ssh session closed) end
    # the run through the same path as Ctrl-C, so that temporary files are removed. A signal
    # the caller ignores (nohup) stays ignored.
    previous = {}
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is None:
            continue
        try:
            if signal.getsignal(sig) is signal.SIG_IGN:
                continue
            previous[sig] = signal.signal(sig, _on_sigterm)
        except ValueError:  # not the main thread (e.g. some test runners)
            pass
    return previous


def _report(e: AecliError, debug: bool) -> None:
    err = stderr_console()
    if debug:
        err.print(traceback.format_exc(), markup=False)
    err.print(_labelled("error:", e.message), soft_wrap=True)
    if e.hint:
        err.print(e.hint, markup=False, soft_wrap=True)


def _unwritable(e: OSError) -> OutputError | None:
    """The ``OutputError`` for a full or read-only disk met outside aecli's writers."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS):
        return output_error(e.filename or "an output", e)
    return None


def _guard(fn):
    # The one place a command's BLAS threads are chosen: its --threads, else its own default
    # (one for the stream commands: see apply_cmds.STREAM_THREADS), else None, which lets
    # the tuner choose by timing the work.
    default_threads = getattr(fn, "default_threads", None)

    @functools.wraps(fn)
    def wrapper(*args, run: Run, **kwargs):
        debug = run.debug
        previous = _catch_termination()
        try:
            # The command's files are put in place together, and only once it has succeeded
            # (or found what --fail-on-anomaly looks for): a failure after the model is written
            # and before its JSON reaches stdout leaves no model.
            threads = kwargs.get("threads") or default_threads
            with pinned(threads), scope(), commit_group() as outputs:
                try:
                    result = fn(*args, run=run, **kwargs)
                    _flush_stdout()
                except AnomalyFound:
                    _flush_stdout()
                    outputs.commit()
                    raise
                except BrokenPipeError:  # the reader has what it wanted: a success
                    outputs.commit()
                    raise
                outputs.commit()
                return result
        except (typer.Exit, typer.BadParameter, typer.Abort):
            raise
        except AecliError as e:
            _report(e, debug)
            raise typer.Exit(e.exit_code) from None
        except BrokenPipeError:
            _quiet_stdout()
            raise typer.Exit(EXIT_OK) from None
        except (KeyboardInterrupt, Terminated):
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:
            translated = _unwritable(exc) if isinstance(exc, OSError) else None
            if translated is not None:
                _report(translated, debug)
                raise typer.Exit(translated.exit_code) from None
            if debug:
                raise
            err = stderr_console()
            err.print(_labelled("internal error:", f"{type(exc).__name__}: {exc}"),
                      soft_wrap=True)
            err.print("This is a bug in aecli. Run again with --debug for the traceback and "
                      "report it.", markup=False)
            raise typer.Exit(EXIT_FAILED) from None
        finally:
            for sig, handler in previous.items():
                if handler is not None:
                    signal.signal(sig, handler)

    return wrapper
