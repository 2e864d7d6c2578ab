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

from ..errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, AecliError
from ..nn.threads import pinned, scope
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


def stderr_console() -> Console:
    """Console for everything meant for people: progress, tables, warnings, errors."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


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
    return _pipe_console_class()(highlight=False)




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


def _guard(fn):
    @functools.wraps(fn)
    def wrapper(*args, run: Run, **kwargs):
        debug = run.debug
        previous = None
        if hasattr(signal, "SIGTERM"):
            try:
                previous = signal.signal(signal.SIGTERM, _on_sigterm)
            except ValueError:  # not the main thread (e.g. some test runners)
                previous = None
        try:
            with pinned(kwargs.get("threads")), scope():
                return fn(*args, run=run, **kwargs)
        except (typer.Exit, typer.BadParameter, typer.Abort):
            raise
        except AecliError as e:
            err = stderr_console()
            if debug:
                err.print(traceback.format_exc(), markup=False)
            err.print(_labelled("error:", e.message), soft_wrap=True)
            if e.hint:
                err.print(e.hint, markup=False, soft_wrap=True)
            raise typer.Exit(e.exit_code) from None
        except BrokenPipeError:
            _quiet_stdout()
            raise typer.Exit(EXIT_OK) from None
        except (KeyboardInterrupt, Terminated):
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception:
            if debug:
                raise
            exc = sys.exc_info()[1]
            err = stderr_console()
            err.print(_labelled("internal error:", f"{type(exc).__name__}: {exc}"),
                      soft_wrap=True)
            err.print("This is a bug in aecli. Run again with --debug for the traceback and "
                      "report it.", markup=False)
            raise typer.Exit(EXIT_FAILED) from None
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    return wrapper
