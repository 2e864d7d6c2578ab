"""The data options of every command, generated from one declaration.

:class:`aecli.pipeline.sources.DataOptions` declares the data options and their defaults, as
:class:`aecli.pipeline.Hyperparameters` declares the training ones; here each field gets its
command-line option (flags, help text, checks), and a command names where they go with a
``data_opts`` parameter, which receives them as one ``DataOptions``.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Annotated

import typer

from ..pipeline import BadValues, MissingPolicy
from ..pipeline.sources import DataOptions
from . import options as o
from .signatures import expand, option

_DEFAULTS = {f.name: f.default for f in fields(DataOptions)}

# The option of each field, in the order --help lists them.
_OPTIONS = {
    "input_format": o.InputFormat,
    "columns": o.Columns,
    "exclude": o.Exclude,
    "categorical": o.Categorical,
    "max_levels": o.MaxLevels,
    "missing": o.Missing,
    "bad_values": o.BadValuesOption,
    "scale": o.Scale,
    "delimiter": o.Delimiter,
    "decimal": o.Decimal,
}

# encode, reconstruct and score apply a model: what they do not say, the model decides.
_FROM_MODEL = {
    "missing": Annotated[MissingPolicy | None, typer.Option(
        "--missing", help="Missing values: error, drop the rows, or impute the training means "
        "(default: the model's policy).", rich_help_panel=o.DATA)],
    "bad_values": Annotated[BadValues | None, typer.Option(
        "--bad-values", help="A cell of a numeric column that is not a number: error, or read "
        "it as missing (default: the model's setting).", rich_help_panel=o.DATA)],
}


def _cli_default(name: str):
    """The command line's default of field ``name``: its text where the option is text."""
    default = _DEFAULTS[name]
    return None if name in ("columns", "exclude", "categorical") and not default else default


def data_option(name: str, from_model: bool = False):
    """The option of field ``name`` for :func:`aecli.cli.signatures.expand`; ``from_model``:
    of a command that applies a model, whose missing and bad values default to the model's."""
    if from_model and name in _FROM_MODEL:
        return option(name, _FROM_MODEL[name], None)
    return option(name, _OPTIONS[name], _cli_default(name))


def to_data_options(values: dict) -> DataOptions:
    """The options' values, as given on the command line, as :class:`DataOptions`."""
    values = dict(values)
    if "columns" in values:
        columns = o.split_list(values["columns"])
        values["columns"] = None if columns is None else tuple(columns)
    if "exclude" in values:
        values["exclude"] = tuple(o.split_list(values["exclude"]) or ())
    if "categorical" in values:
        forced, auto = o.categorical_option(values["categorical"])
        values["categorical"], values["auto_categorical"] = tuple(forced), auto
    return DataOptions(**values)


def data_options(command):
    """Give a command every data option in place of its ``data_opts`` parameter, which then
    receives them as one :class:`DataOptions`."""
    return expand(command, "data_opts", [data_option(name) for name in _OPTIONS],
                  to_data_options)
