"""The ``aecli`` Typer application."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import __version__
from .apply_cmds import encode, reconstruct, score
from .compare import compare_pca
from .inspect_cmd import inspect
from .train import train

app = typer.Typer(
    name="aecli",
    help="Dimensionality reduction with autoencoders: train, encode, reconstruct, score, and "
    "compare with PCA, on CSV, TSV, Parquet and JSON lines, from files or pipes.",
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


def main() -> None:
    """Console-script entry point."""
    app()
