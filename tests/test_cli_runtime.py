"""The runner every command goes through (aecli.cli.runtime): here, the one place a
command's BLAS threads are chosen."""

from __future__ import annotations

import contextlib

import pytest
from typer.testing import CliRunner

from aecli.cli import app


@pytest.mark.parametrize("argv, expected", [
    (["encode"], 1),  # a stream command: one thread, reading and writing use the others
    (["encode", "--threads", "2"], 2),
    (["score", "--threads", "3"], 3),
    (["compare-pca", "-k", "1", "--epochs", "1", "--hidden", "", "--columns", "a,b"], None),
    (["compare-pca", "-k", "1", "--epochs", "1", "--hidden", "", "--columns", "a,b",
      "--threads", "2"], 2),
])
def test_a_command_is_pinned_once_to_its_threads(argv, expected, cli_files, monkeypatch):
    pins = []

    @contextlib.contextmanager
    def pinned(threads):
        pins.append(threads)
        yield

    monkeypatch.setattr("aecli.cli.runtime.pinned", pinned)
    data = cli_files["dir"] / "threads.csv"
    data.write_text("a,b\n" + "".join(f"{i},{i * i % 7}\n" for i in range(30)))
    if argv[0] in ("encode", "score"):
        argv = [argv[0], str(cli_files["model"]), str(cli_files["small_csv"]), *argv[1:],
                "-o", str(cli_files["dir"] / f"out-{len(pins)}-{argv[0]}.csv")]
    else:
        argv = [argv[0], str(data), *argv[1:], "-q"]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert pins == [expected]
