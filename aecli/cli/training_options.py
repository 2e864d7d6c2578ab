"""The training options of ``train`` and ``compare-pca``, derived from the hyperparameters.

Each :class:`aecli.hyperparameters.Hyperparameters` field becomes one option, with its help
text and range; a command names where they go with a ``params`` parameter and receives them
there as one dict of estimator keyword arguments.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Annotated, Any

import typer

from ..errors import InvalidParameterError
from ..pipeline import Hyperparameters
from .options import TRAINING, finite, parse_sizes
from .signatures import expand, option

_KINDS = {f.name: f.type for f in fields(Hyperparameters)}


def _flags(name: str) -> list[str]:
    short = Hyperparameters.allowed(name).short
    return [f"--{name.replace('_', '-')}"] + ([short] if short else [])


def _option(name: str, default) -> tuple[Any, Any]:
    """The annotation and command-line default of the option for hyperparameter ``name``."""
    allowed, kind = Hyperparameters.allowed(name), _KINDS[name]
    help_text = allowed.help

    def option(cli_type, **extra):
        return Annotated[cli_type, typer.Option(*_flags(name), help=help_text,
                                                rich_help_panel=TRAINING, **extra)]

    if name == "hidden":  # a comma-separated list on the command line
        help_text = ("Encoder layer sizes, comma-separated; the decoder mirrors them. '' for "
                     "none (a linear autoencoder with --activation linear equals PCA). "
                     "'auto': 64,32, or 128,64,64,32 with --neighbors.")
        return option(str), default if isinstance(default, str) else ",".join(
            map(str, default or ()))
    if allowed.cli_none is not None:  # a number, or a word for None
        help_text += f" '{allowed.cli_none}' or a number."
        return option(str), allowed.cli_none if default is None else str(default)
    if allowed.choices is not None:
        return option(allowed.choices), allowed.choices(default)
    if kind == "bool":
        return option(bool), default
    bounds = {}
    if allowed.optional and allowed.cli_off is not None:  # --patience 0: off
        bounds["min"] = allowed.cli_off
        default = allowed.cli_off if default is None else default
    elif allowed.low is not None:
        bounds["min"] = allowed.low  # an open end is refused by the estimator's check
    if allowed.high is not None and math.isfinite(allowed.high) and not allowed.high_open:
        bounds["max"] = allowed.high
    if kind.startswith("int"):
        return option(int, **{k: int(v) for k, v in bounds.items()}), default
    return option(float, callback=finite, **bounds), default


def _estimator_value(name: str, value):
    """A command-line value as the estimator takes it."""
    allowed = Hyperparameters.allowed(name)
    if name == "hidden":
        return value if value == "auto" else parse_sizes(value, "--hidden")
    if allowed.cli_none is not None:
        if value == allowed.cli_none:
            return None
        whole = _KINDS[name].startswith("int")
        try:
            number = int(value) if whole else float(value)
        except ValueError:
            raise typer.BadParameter(f"{value!r} is not a {'whole ' if whole else ''}number "
                                     f"or '{allowed.cli_none}'",
                                     param_hint=_flags(name)[0]) from None
        return number
    if allowed.cli_off is not None and value == allowed.cli_off:
        return None
    return value


def training_options(*, skip: tuple[str, ...] = (), **defaults):
    """Give a command an option for every hyperparameter but those in ``skip``, in place of
    its ``params`` parameter, which then receives them as estimator keyword arguments.

    ``defaults`` override the estimator's defaults on the command line (``patience=20``).
    """
    base = {f.name: f.default for f in fields(Hyperparameters)}
    names = [name for name in base if name not in skip]
    options = [option(name, *_option(name, defaults.get(name, base[name]))) for name in names]

    def collect(values: dict) -> dict:
        params = {name: _estimator_value(name, value) for name, value in values.items()}
        for name, value in params.items():  # a bad setting fails before data is read
            try:
                Hyperparameters(**{name: value}).checked()
            except InvalidParameterError as e:
                raise typer.BadParameter(e.message, param_hint=_flags(name)[0]) from None
        return params

    return lambda command: expand(command, "params", options, collect)
