"""Option declarations shared by several commands, each with its help text written once."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from ..pipeline import BadValues, Format, MissingPolicy, ScalerKind

TRAINING = "Training"
DATA = "Data"
OUTPUT = "Output"


def finite(value: float | None) -> float | None:
    """Option callback: refuse NaN and infinity, which pass every range check."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter("must be a finite number")
    return value


DataArg = Annotated[
    str | None,
    typer.Argument(metavar="DATA", help="Input table: a file, a directory or glob of Parquet "
                   "files, or '-' for stdin (the default).", show_default=False),
]
ModelArg = Annotated[
    Path, typer.Argument(metavar="MODEL", help="A model file written by 'aecli train'.",
                         show_default=False)
]


def _in(panel: str, kind, *flags: str, help: str, **extra):
    """An option of type ``kind`` shown in the help panel ``panel``."""
    return Annotated[kind, typer.Option(*flags, help=help, rich_help_panel=panel, **extra)]


def _columns_given(ctx: typer.Context, value: str | None) -> str | None:
    """``--columns``: at least one name, and every ``--categorical`` column among them."""
    if value is not None and not split_list(value):
        raise typer.BadParameter("names no column: give the feature columns (--columns a,b), "
                                 "or leave the option out to use every numeric and "
                                 "categorical column")
    _forced_chosen(value, ctx.params.get("categorical"))
    return value


def _categorical_given(ctx: typer.Context, value: str | None) -> str | None:
    """``--categorical``: with ``--columns``, only columns named there too."""
    _forced_chosen(ctx.params.get("columns"), value)
    return value


def _forced_chosen(columns: str | None, categorical: str | None) -> None:
    # A column forced categorical but left out of --columns would be dropped without a word;
    # whichever of the two options comes second on the command line checks the pair.
    if columns is None or categorical is None:
        return
    forced, _ = categorical_option(categorical)
    outside = [c for c in forced if c not in (split_list(columns) or [])]
    if outside:
        raise typer.BadParameter(
            f"{outside[0]!r} is not among --columns, so it would not be used: add it there "
            f"(--columns {columns},{outside[0]}), or leave it out of --categorical",
            param_hint="--categorical")


InputFormat = _in(DATA, Format | None, "--input-format",
                  help="Input format (default: from the extension, or sniffed on stdin).")
OutputFormat = _in(OUTPUT, Format | None, "--format",
                   help="Output format (default: from the -o extension; CSV on stdout).")
OutFile = _in(OUTPUT, str | None, "-o", "--output",
              help="Write the table here (default: stdout).")
Columns = _in(DATA, str | None, "--columns",
              help="Comma-separated feature columns (default: the numeric and categorical "
              "columns, not identifiers or constant ones).", callback=_columns_given)
Exclude = _in(DATA, str | None, "--exclude",
              help="Comma-separated columns not to use as features.")
Categorical = _in(DATA, str | None, "--categorical",
                  help="Comma-separated columns to one-hot encode whatever their type; "
                  "'none' leaves text columns out unless named here (with --columns, "
                  "name them there too).", callback=_categorical_given)
MaxLevels = Annotated[int, typer.Option(
    "--max-levels", min=2, help="Most distinct values of a text column one-hot encoded "
    "without being named in --categorical.", rich_help_panel=DATA)]
BadValuesOption = _in(DATA, BadValues, "--bad-values",
                      help="A cell of a numeric column that is not a number: stop with an "
                      "error, or read it as missing (then --missing applies).")


def _delimiter(value: str | None) -> str | None:
    """``--delimiter``: one character; ``tab`` or ``\\t`` for a tab."""
    if value is None:
        return None
    value = {"tab": "\t", "\\t": "\t"}.get(value.lower(), value)
    if len(value) != 1 or value in "\"\r\n":
        raise typer.BadParameter(f"{value!r} is not one character (e.g. ';', '|' or tab)")
    return value


def _decimal(value: str | None) -> str | None:
    if value is not None and value not in (".", ","):
        raise typer.BadParameter(f"{value!r} is not a decimal separator: use . or ,")
    return value


Delimiter = Annotated[str | None, typer.Option(
    "--delimiter", callback=_delimiter, help="The delimiter of delimited text (default: "
    "detected among , tab ; |; 'tab' for a tab).", rich_help_panel=DATA)]
Decimal = Annotated[str | None, typer.Option(
    "--decimal", callback=_decimal, help="The decimal separator of delimited text: . or , "
    "(default: detected; a comma only with another delimiter).", rich_help_panel=DATA)]
Keep = _in(OUTPUT, str | None, "--keep",
           help="Comma-separated columns to pass through to the output (e.g. id,date); '*' "
           "for every input column.")
Missing = _in(DATA, MissingPolicy, "--missing", help="Missing values (NaN, empty, NA): error, "
              "drop the rows, or impute training means.")
Scale = _in(DATA, ScalerKind, "--scale", help="Column scaling, stored in the model.")
Threads = Annotated[int | None, typer.Option(
    "--threads", min=1, help="Pin BLAS threads (default: chosen by timing the work as it runs).")]
Quiet = Annotated[bool, typer.Option("-q", "--quiet", help="Only errors on stderr.")]
Verbose = Annotated[bool, typer.Option("-v", "--verbose", help="More detail on stderr.")]
Debug = Annotated[bool, typer.Option("--debug", help="Show full tracebacks.")]
Json = _in(OUTPUT, bool, "--json", help="Machine-readable JSON on stdout.")
Plot = _in(OUTPUT, Path | None, "--plot",
           help="Write a PNG picture here (needs 'pip install aecli\\[plot]').")


def categorical_option(text: str | None) -> tuple[list[str], bool]:
    """``--categorical``: (columns forced to be categorical, whether text columns with few
    levels are categorical without being named)."""
    names = split_list(text) or []
    if [n.casefold() for n in names] == ["none"]:
        return [], False
    return names, True


def split_list(text: str | None) -> list[str] | None:
    """``"a, b"`` → ``["a", "b"]``; None stays None."""
    if text is None:
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_sizes(text: str, option: str) -> tuple[int, ...]:
    """``"64,32"`` → ``(64, 32)``, with a usage error naming the option otherwise."""
    sizes = []
    for part in split_list(text) or []:
        if not part.isdigit() or int(part) < 1:
            raise typer.BadParameter(f"{part!r} is not a positive whole number "
                                     "(e.g. --hidden 64,32)", param_hint=option)
        sizes.append(int(part))
    return tuple(sizes)
