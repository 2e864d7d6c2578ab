"""The ``aecli`` Typer application."""

from __future__ import annotations

import os
import sys
from typing import Annotated, NoReturn

import typer

from .. import __version__
from .apply_cmds import encode, reconstruct, score
from .compare import compare_pca
from .drift_cmd import drift
from .export_cmd import export
from .inspect_cmd import inspect
from .train import train

app = typer.Typer(
    name="aecli",
    help="Dimensionality reduction with autoencoders: train, encode, reconstruct, score, "
    "compare with PCA and export to ONNX, on CSV, TSV, Parquet and JSON lines, from files or "
    "pipes.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

app.command("train")(train)
app.command("encode")(encode)
app.command("reconstruct")(reconstruct)
app.command("score")(score)
app.command("compare-pca")(compare_pca)
app.command("inspect")(inspect)
app.command("export")(export)
app.command("drift")(drift)


def _version(value: bool):
    if value:
        typer.echo(f"aecli {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
):
    """Dimensionality reduction with autoencoders."""


def main() -> NoReturn:
    """Console-script entry point."""
    try:
        app()
        code = 0
    except SystemExit as e:
        if isinstance(e.code, int) or e.code is None:
            code = e.code or 0
        else:
            print(e.code, file=sys.stderr)
            code = 1
        if code == 1 and type(sys.stdout).__name__ == "PacifyFlushWrapper":
            # Click met a closed pipe outside a command (`aecli --version | true`): it wraps
            # stdout in a PacifyFlushWrapper and exits 1, but a closed pipe is a quiet success.
            code = 0
    _leave(code)


def _leave(code: int) -> NoReturn:
    # By now every output is written and every file renamed into place. pyarrow's native
    # thread pools can still abort the process while the interpreter tears down ("terminate
    # called without an active exception", status 134; apache/arrow#34314), which would turn
    # a success into a failure for cron and `set -o pipefail`. So flush and leave without the
    # teardown, keeping the command's own exit status.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # a closed pipe, or none at all (>&-)
            pass
    os._exit(code)
