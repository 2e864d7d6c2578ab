"""The data options are declared once (pipeline.sources.DataOptions): every command that reads
a table gets them from there, with one default each, and receives them as one object."""

from __future__ import annotations

from dataclasses import fields

import pytest
import typer
from typer.testing import CliRunner

from aecli.cli import app
from aecli.cli.data_options import to_data_options
from aecli.pipeline import BadValues, MissingPolicy, ScalerKind
from aecli.pipeline.sources import DataOptions

# fields that are not options: derived from --categorical, or set once roles are known
NOT_OPTIONS = {"auto_categorical", "text"}


def _params(command: str) -> dict:
    group = typer.main.get_command(app)
    return {p.name: p for p in group.commands[command].params}


@pytest.mark.parametrize("command", ["train", "compare-pca"])
def test_training_commands_take_every_data_option_with_its_declared_default(command):
    params = _params(command)
    for f in fields(DataOptions):
        if f.name in NOT_OPTIONS:
            continue
        assert f.name in params, f"{command} has no option for DataOptions.{f.name}"
        default = params[f.name].default
        expected = None if f.name in ("columns", "exclude", "categorical") else f.default
        assert default == expected, (command, f.name, default, f.default)


@pytest.mark.parametrize("command", ["encode", "reconstruct", "score"])
def test_stream_commands_leave_missing_and_bad_values_to_the_model(command):
    params = _params(command)
    assert params["missing"].default is None and params["bad_values"].default is None
    assert "input_format" in params
    assert "columns" not in params  # the model's columns, not a choice


def test_command_line_values_become_one_data_options():
    options = to_data_options({"columns": "a, b", "exclude": None, "categorical": "none",
                               "max_levels": 7, "missing": MissingPolicy.DROP,
                               "bad_values": BadValues.MISSING, "scale": ScalerKind.NONE})
    assert options == DataOptions(columns=("a", "b"), exclude=(), categorical=(),
                                  auto_categorical=False, max_levels=7,
                                  missing=MissingPolicy.DROP, bad_values=BadValues.MISSING,
                                  scale=ScalerKind.NONE)
    forced = to_data_options({"categorical": "c,d"})
    assert forced.categorical == ("c", "d") and forced.auto_categorical


@pytest.mark.parametrize("command", ["train", "compare-pca"])
def test_a_command_receives_its_data_options_as_one_object(command, tmp_path, monkeypatch):
    seen = []

    class Stop(Exception):
        pass

    def capture(data, options):
        seen.append(options)
        raise Stop

    monkeypatch.setattr(f"aecli.cli.{'train' if command == 'train' else 'compare'}"
                        ".load_features", capture)
    data = tmp_path / "t.csv"
    data.write_text("a;b;c\n1;2;x\n")
    argv = [command, str(data), "--columns", "a,c", "--categorical", "c", "--exclude", "b",
            "--max-levels", "9", "--missing", "impute", "--bad-values", "missing",
            "--scale", "minmax", "--delimiter", ";", "--decimal", ","]
    if command == "train":
        argv += ["-o", str(tmp_path / "m.npz")]
    result = CliRunner().invoke(app, argv)
    assert "Stop" in result.output, result.output  # stopped where the table is read
    assert seen == [DataOptions(columns=("a", "c"), exclude=("b",), categorical=("c",),
                                max_levels=9, missing=MissingPolicy.IMPUTE,
                                bad_values=BadValues.MISSING, scale=ScalerKind.MINMAX,
                                delimiter=";", decimal=",")]
