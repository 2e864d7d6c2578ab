"""The documentation keeps up with the commands: every command has a section or an example in
the README or docs/ and a ``--help`` with an example, and every command line the README and
docs/ show uses real options. (docs/cli.md, generated from the help, is left out: it would
document every command by construction. tests/test_docs_examples.py runs the commands.)"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from aecli.cli import app

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "cli.md")
COMMANDS = get_command(app).commands
SHELL_STOPS = {"|", "||", "&&", ";", "&"}
REDIRECTS = {">", ">>", "<", "2>", "2>&1"}


def readme() -> str:
    """The README and the docs pages, as one text."""
    assert README.exists(), f"{README} is missing"
    assert DOCS, "docs/ has no pages"
    return "\n".join(p.read_text(encoding="utf-8") for p in [README, *DOCS])


def code_blocks(text: str) -> list[str]:
    return re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M)


def command_lines(text: str) -> list[str]:
    """Every ``aecli ...`` command line the README and docs show: in code blocks (``$ aecli ...``,
    ``aecli ...``, ``.venv/bin/aecli ...`` or a crontab line) and in inline code spans."""
    lines = []
    for block in code_blocks(text):
        for line in block.splitlines():
            # also a crontab line or a path to the venv's aecli: `0 6 * * * /opt/.../aecli ...`
            found = re.match(r"(?:(?:[\d*/,-]+ ){5})?(?:\w+=\S+ )*(?:\S*/)?(aecli \S.*)$",
                             line.strip().removeprefix("$ "))
            if found:
                lines.append(found.group(1))
    lines += re.findall(r"`(aecli [^`]+)`", text)
    return lines


def test_every_command_has_a_readme_section_or_example():
    text = readme()
    headings = [h for h in re.findall(r"^#+ (.*)$", text, flags=re.M)]
    examples = "\n".join(code_blocks(text))
    for name in COMMANDS:
        pattern = re.compile(rf"\baecli {re.escape(name)}(?![\w-])")
        in_heading = any(pattern.search(h) for h in headings)
        in_example = bool(pattern.search(examples))
        assert in_heading or in_example, f"neither README.md nor docs/ documents 'aecli {name}'"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_help_ends_with_an_example(name):
    r = CliRunner().invoke(app, [name, "--help"])
    assert r.exit_code == 0
    assert "Example" in r.stdout, f"'aecli {name} --help' has no example"
    assert f"aecli {name} " in r.stdout.split("Example", 1)[1]
    assert CliRunner().invoke(app, [name, "-h"]).stdout == r.stdout


def _options(command) -> set[str]:
    names = {"--help", "-h"}
    for param in command.params:
        names.update(getattr(param, "opts", []))
        names.update(getattr(param, "secondary_opts", []))
    return names


def test_readme_command_lines_use_real_commands_and_options():
    lines = command_lines(readme())
    assert len(lines) >= len(COMMANDS)
    problems = []
    for line in lines:
        lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;<>")
        lexer.whitespace_split = True
        tokens = list(lexer)
        if len(tokens) < 2 or tokens[1].startswith("-"):
            continue  # `aecli --help`, `aecli --version`
        name = tokens[1]
        if name not in COMMANDS:
            problems.append(f"{line!r}: no command {name!r}")
            continue
        known = _options(COMMANDS[name])
        skip = False
        for token in tokens[2:]:
            if token in SHELL_STOPS:
                break
            if skip or token in REDIRECTS:
                skip = token in REDIRECTS
                continue
            if token.startswith("-") and token != "-" and not re.fullmatch(r"-\d.*", token):
                option = token.split("=", 1)[0]
                if option not in known:
                    problems.append(f"{line!r}: 'aecli {name}' has no option {option}")
    assert not problems, "\n".join(problems)
