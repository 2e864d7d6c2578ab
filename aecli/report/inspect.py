"""The panel ``aecli inspect`` shows: a model's format, columns, roles, scaler, threshold,
score, layers, settings and metrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .tables import key_value_table
from .text import MISSING, as_number, fmt, format_architecture, truncate_list


def _value(v: Any) -> str:
    """Compact text for a setting or metric of any plain type."""
    if isinstance(v, Mapping):
        return ", ".join(f"{k}={_value(x)}" for k, x in v.items()) or MISSING
    if isinstance(v, (list, tuple)):
        return truncate_list([_value(x) for x in v]) if v else MISSING
    return fmt(v)


def _grid(mapping: Mapping[str, Any]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, v in mapping.items():
        grid.add_row(Text(str(key)), Text(_value(v)))
    return grid


def inspect_panel(info: Mapping[str, Any]) -> Panel:
    """The panel ``aecli inspect`` shows: format, columns, layers, scaler, settings, metrics.

    Parameters
    ----------
    info : mapping
        ``format_version``, ``aecli_version``, ``created``, ``features`` (names),
        ``architecture`` (layer dicts with ``in``, ``out``, ``activation``), ``scaler`` (kind),
        ``missing`` (policy), ``settings`` (dict), ``metrics`` (dict), ``threshold`` (float or
        None), optionally ``calibration_rows``, ``calibration_warning``,
        ``calibration_method``, ``calibration_source``, ``score``, ``score_models``,
        ``categorical``
        (dicts with ``name`` and ``levels``), ``roles`` (the unused columns by role) and
        ``bad_values``. An optional
        ``path`` becomes the panel's title. Every text, the model's included, is shown as
        it is: never read as rich markup (a version of ``"[/]"`` is four characters).

    Returns
    -------
    rich.panel.Panel
    """
    features = list(info.get("features") or [])
    layers = list(info.get("architecture") or [])

    head = key_value_table()
    head.add_row("format", fmt(info.get("format_version")),
                 Text(f"written by aecli {info.get('aecli_version') or MISSING}"))
    head.add_row("created", Text(str(info.get("created") or MISSING)), "")
    head.add_row("features", fmt(len(features)), Text(truncate_list(features) or MISSING))
    categorical = list(info.get("categorical") or [])
    if categorical:
        head.add_row("categorical", fmt(len(categorical)), Text(truncate_list(
            [f"{c['name']} ({len(c['levels'])} levels)" for c in categorical])))
    roles = info.get("roles") or {}
    if roles.get("codes"):
        head.add_row("codes (as text)", fmt(len(roles["codes"])),
                     Text(truncate_list(list(roles["codes"]))))
    for key, label in (("identifiers", "identifiers"), ("dates", "dates"),
                       ("constant", "constant"), ("empty", "empty"),
                       ("other", "other types")):
        if roles.get(key):
            head.add_row(Text(f"not used: {label}"), fmt(len(roles[key])),
                         Text(truncate_list(list(roles[key]))))
    reading = info.get("reading") or {}
    if isinstance(reading, dict) and (reading.get("decimal") == "," or reading.get(
            "delimiter") not in (None, ",", "\t")):  # a dialect other than plain CSV, TSV
        mark = "decimal comma" if reading.get("decimal") == "," else "decimal point"
        head.add_row("read as", Text(f"{reading.get('format', '')}"),
                     Text(f"delimiter {reading['delimiter']!r}, {mark}"))
    head.add_row("scaler", Text(str(info.get("scaler") or MISSING)), "")
    head.add_row("missing values", Text(str(info.get("missing") or MISSING)),
                 Text(f"bad values: {info['bad_values']}") if info.get("bad_values") else "")
    calibrated = "not calibrated"
    if as_number(info.get("threshold")) is not None:
        rows = info.get("calibration_rows")
        source = {"out-of-fold": " out-of-fold"}.get(info.get("calibration_source"), "")
        calibrated = f"on {fmt(rows)} rows'{source} scores" if rows is not None else ""
        if info.get("calibration_method") == "tail fit":
            calibrated += ", its tail fitted"
        elif info.get("calibration_method") == "own rows":
            calibrated += ", raised to its own training rows' quantile"
        if info.get("calibration_warning"):
            calibrated += ": too few for a stable threshold"
    head.add_row("score threshold", fmt(info.get("threshold")), Text(calibrated))
    if info.get("score"):
        models = int(info.get("score_models") or 1)
        why = f"the mean of {models} models': this one and its fold models" * (models > 1)
        if info["score"] == "combined":  # what the default chose and why (docs/scores.md)
            why = ("error + code distance, column tails, row and code neighbours, each a "
                   "p-value, by Fisher's method: the default on a numeric table "
                   "(--score-by error+code: the first alone)"
                   + "; the tails and neighbours from a sample of the training rows, as "
                   "they were read in passes" * bool((info.get("metrics") or {}).get("streamed"))
                   + f"; the first is {why}" * bool(why))
        head.add_row("anomaly score", Text({"error+code": "error + code distance"}.get(
            info["score"], info["score"])), Text(why))

    arch = Table(title=Text(f"Layers: {format_architecture(layers)}"), title_justify="left")
    arch.add_column("layer", justify="right")
    arch.add_column("in", justify="right")
    arch.add_column("out", justify="right")
    arch.add_column("activation")
    for i, layer in enumerate(layers, start=1):
        arch.add_row(fmt(i), fmt(layer.get("in")), fmt(layer.get("out")),
                     Text(str(layer.get("activation") or MISSING)))

    parts: list[Any] = [head, Text(""), arch]
    for label, key in (("Training settings", "settings"), ("Metrics", "metrics")):
        if info.get(key):
            parts += [Text(""), Text(label, style="bold underline"), _grid(info[key])]
    title = Text(f"aecli model {info['path']}" if info.get("path") else "aecli model")
    return Panel(Group(*parts), title=title, title_align="left", expand=False)
