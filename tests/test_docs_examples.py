"""Every command the README and docs/ show runs, and prints what the page says it prints.

The pages are run in reading order (README first, then the docs pages in ``PAGES`` order), in
one scratch directory that holds a link to ``sample_data/``, so a page may use a model that an
earlier page trained, as a reader following them would.

- A ``text`` block of ``$ aecli ...`` lines is a session: each command runs in bash, and the
  lines after it are its output, compared with stdout followed by stderr. Numbers are
  compared as numbers-in-general (training moves the last digits from version to version);
  whitespace, table rules and loss sparklines by their presence, not their width or shape.
  A line ``...`` marks lines left out (within a line, words left out); without one at the
  start or end, the output must start or end as shown. A command whose output shows an
  ``error:`` line must exit 1 or 2; any other must exit 0.
- A ``sh`` block runs line by line: each line that calls aecli must exit 0 (or 1 where it
  asks for ``--fail-on-anomaly``). A block preceded by ``<!-- not run: REASON -->`` shows
  paths of a server or a cluster and is only checked for real options
  (tests/test_cli_docs.py).
- docs/cli.md is generated from the commands' help: regenerating it must give the file, and
  the example of each command's help runs like the other pages' commands.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["README.md", "docs/training.md", "docs/tables.md", "docs/scores.md",
         "docs/monitoring.md", "docs/model-file.md", "docs/scale.md", "docs/failures.md",
         "docs/python-api.md",
         "docs/cli.md"]
BIN = Path(sys.executable).parent
NUMBER = re.compile(r"[-+]?(?:\d[\d,]*(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?")
RULES = re.compile(r"([─━═┄┅])\1+")
SPARKLINE = re.compile(r"[▁▂▃▄▅▆▇█]+")
NOT_RUN = re.compile(r"<!-- not run: (.+?) -->\s*\Z", re.S)


@dataclass
class Example:
    page: str
    line: int  # where the command is in the page, for the failure message
    command: str
    expected: list[str] | None  # None: only its exit status is checked


def examples(page: str) -> list[Example]:
    """The commands a page shows, in order."""
    text = (ROOT / page).read_text(encoding="utf-8")
    found = []
    for m in re.finditer(r"^```(text|sh)\n(.*?)^```", text, flags=re.S | re.M):
        kind, body = m.group(1), m.group(2)
        first = text.count("\n", 0, m.start(2)) + 1
        if NOT_RUN.search(text[: m.start()]):
            continue
        lines = body.splitlines()
        if kind == "text":
            starts = [i for i, line in enumerate(lines) if line.startswith("$ aecli ")]
            for j, i in enumerate(starts):
                end = starts[j + 1] if j + 1 < len(starts) else len(lines)
                found.append(Example(page, first + i, lines[i][2:], lines[i + 1: end]))
        else:
            for i, line in enumerate(lines):
                command = line.split("  #", 1)[0].strip()
                if command.startswith(".venv/bin/aecli "):
                    command = command.removeprefix(".venv/bin/")
                if re.search(r"(?:^|[|&;]\s*)(?:\w+=\S+ )*aecli ", command):
                    found.append(Example(page, first + i, command, None))
    return found


def normalise(text: str) -> str:
    text = NUMBER.sub("#", text)
    text = RULES.sub(r"\1", text)
    text = SPARKLINE.sub("▁", text)
    return " ".join(text.split())


def matches(expected: list[str], actual: str) -> str | None:
    """None when ``actual`` reads as ``expected`` (with ``...`` for lines left out), else
    what is missing."""
    segments: list[list[str]] = [[]]
    for line in expected:
        if line.strip() == "...":
            segments.append([])
        else:
            segments[-1].append(line)
    anchored_start = bool(segments[0]) and not segments[0][0].lstrip().startswith("...")
    anchored_end = bool(segments[-1]) and not segments[-1][-1].rstrip().endswith("...")
    have = normalise(actual)
    at = 0
    for n, segment in enumerate(s for s in segments if s):
        # within a line, "..." stands for words left out
        pieces = [re.escape(p.strip()) for p in normalise("\n".join(segment)).split("...")]
        found = re.compile(r".*?".join(pieces), re.S).search(have, at)
        if found is None or (n == 0 and anchored_start and found.start() != 0):
            return "\n".join(segment)
        at = found.end()
    if anchored_end and at != len(have):
        return "(the output goes on after the last line shown; end the block with ...)"
    return None


class Runner:
    """Runs the pages' commands in one scratch directory, each command at most once."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        (workdir / "sample_data").symlink_to(ROOT / "sample_data")
        self.env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                    "COLUMNS": "80", "NO_COLOR": "1"}
        self.env.pop("DASK_SCHEDULER_ADDRESS", None)
        self.done: dict[str, subprocess.CompletedProcess] = {}
        self.pages_run: set[str] = set()

    def run(self, command: str) -> subprocess.CompletedProcess:
        if command not in self.done:
            self.done[command] = subprocess.run(
                ["bash", "-c", command], cwd=self.workdir, env=self.env, capture_output=True,
                text=True, timeout=300)
        return self.done[command]

    def page(self, page: str) -> list[tuple[Example, subprocess.CompletedProcess]]:
        for earlier in PAGES[: PAGES.index(page)]:  # what this page's models come from
            if earlier not in self.pages_run:
                self.page(earlier)
        self.pages_run.add(page)
        return [(ex, self.run(ex.command)) for ex in examples(page)]


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    return Runner(tmp_path_factory.mktemp("docs"))


def test_every_page_is_listed():
    pages = {"README.md", *(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))}
    assert pages == set(PAGES)


@pytest.mark.parametrize("page", PAGES)
def test_page_commands_run_and_print_what_the_page_shows(page, runner):
    problems = []
    for ex, result in runner.page(page):
        where = f"{ex.page}:{ex.line}: {ex.command}"
        ok_codes = {0, 1} if "--fail-on-anomaly" in ex.command else {0}
        if ex.expected is None:
            if result.returncode not in ok_codes:
                problems.append(f"{where}\nexit {result.returncode}\n{result.stderr[-2000:]}")
            continue
        if any(line.startswith("error:") for line in ex.expected):
            ok_codes = {1, 2}
        if result.returncode not in ok_codes:
            problems.append(f"{where}\nexit {result.returncode}\n{result.stderr[-2000:]}")
            continue
        missing = matches(ex.expected, result.stdout + result.stderr)
        if missing is not None:
            problems.append(f"{where}\nthe page shows\n{missing}\nbut it printed\n"
                            f"{result.stdout[-3000:]}{result.stderr[-3000:]}")
    assert not problems, "\n\n".join(problems)


def test_the_pages_show_commands_with_output():
    """The matcher is not vacuous: the tour's train and score are compared line by line."""
    shown = [ex for page in PAGES for ex in examples(page) if ex.expected]
    assert len(shown) >= 10
    assert any(ex.command.startswith("aecli score ") for ex in examples("README.md"))
    assert matches(["a 1.5 b", "..."], "a 2.25 b\nc") is None
    assert matches(["a 1.5 b"], "a 2.25 b\nc") is not None  # not marked as abbreviated
    assert matches(["x", "...", "c"], "x\ny\nc") is None
    assert matches(["b"], "a\nb") is not None
    assert matches(["┏━━┳━┓"], "┏━━━━┳━┓") is None
    assert matches(["error: columns 'a', ... are missing ..."],
                   "error: columns 'a', 'b' are missing from x") is None


def test_cli_reference_is_generated_from_the_help():
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import gen_cli
    finally:
        sys.path.remove(str(ROOT / "docs"))
    assert (ROOT / "docs" / "cli.md").read_text(encoding="utf-8") == gen_cli.render(), (
        "docs/cli.md is out of date: run make docs (docs/gen_cli.py)")


def _anchors(path: Path) -> set[str]:
    """The heading anchors GitHub makes for a Markdown page."""
    headings = re.findall(r"^#+ (.*)$", path.read_text(encoding="utf-8"), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_links_between_pages_resolve():
    pages = [ROOT / p for p in PAGES] + [ROOT / "CHANGELOG.md", ROOT / "bench" / "README.md"]
    broken = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"\w+://", target):
                continue
            file, _, anchor = target.partition("#")
            path = (page.parent / file).resolve() if file else page
            if not path.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_python_names_the_pages_cite_exist():
    """`aecli.pipeline.modelfile.read_model` and the like still name something: a rename in
    the code must carry the docs with it."""
    import importlib

    missing = []
    for page in [*PAGES, "CHANGELOG.md", "bench/README.md"]:
        for name in sorted(set(re.findall(r"`(aecli(?:\.\w+)+)", (ROOT / page).read_text()))):
            parts = name.split(".")
            for cut in range(len(parts), 0, -1):
                try:
                    obj = importlib.import_module(".".join(parts[:cut]))
                except ImportError:
                    continue
                try:
                    for attr in parts[cut:]:
                        obj = getattr(obj, attr)
                except AttributeError:
                    missing.append(f"{page}: {name}")
                break
            else:
                missing.append(f"{page}: {name}")
    assert not missing, "\n".join(missing)


# names docs/model-file.md gives for what older formats held, or that are not fields
NOT_FIELDS = {"np.savez", "write_model", "metrics", "threshold", "info.summary"}


def test_model_file_fields_the_page_names_are_in_a_model(runner):
    """Every member and metadata field docs/model-file.md says a model holds is in the model
    the README trains (with its fold models) or the one docs/tables.md trains."""
    import json

    import numpy as np

    runner.page("docs/tables.md")  # digits.npz from the README, orders.npz from tables.md
    page = (ROOT / "docs" / "model-file.md").read_text(encoding="utf-8")
    section = page[page.index("## What it holds"): page.index("## `aecli export`")]
    names = {n.replace("{i}", "0") for n in re.findall(r"`([a-z_]+[\w{}]*(?:\.[\w{}]+)*\.?)`",
                                                      section)}
    names |= set(re.findall(r"`(info\.[\w.]+)`", (ROOT / "docs" / "tables.md").read_text()))
    members, metas = set(), []
    for model in ("digits.npz", "orders.npz"):
        with np.load(runner.workdir / model, allow_pickle=False) as z:
            members |= set(z.files)
            metas.append(json.loads(bytes(z["meta"]).decode("utf-8")))

    def in_meta(meta, path):
        for key in path.split("."):
            if not isinstance(meta, dict) or key not in meta:
                return False
            meta = meta[key]
        return True

    missing = [n for n in sorted(names - NOT_FIELDS)
               if "." in n or n in {"meta", "summary", "categorical", "score"}
               if not n.startswith("aecli.") and n not in members
               and not any(m.startswith(n if n.endswith(".") else n + ".") for m in members)
               and not any(in_meta(meta, n) for meta in metas)]
    assert not missing, f"docs/model-file.md names fields no model holds: {missing}"
