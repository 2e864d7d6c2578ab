"""The layers import only downward: cli -> pipeline -> preprocessing -> estimators -> nn, io
below preprocessing, report beside the CLI, and the CLI talks to pipeline, report and errors
only. Read from the source, so a new import that breaks an arrow fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "aecli"

# What each layer may import from the rest of aecli (besides itself). The leaves beside
# every layer: errors (the one exception family), formatting (the text of numbers shared by
# outputs and reports), blas_threads (the BLAS thread tuner).
LEAVES = {"errors", "formatting", "blas_threads", "__version__"}
ALLOWED = {
    "cli": {"pipeline", "report", "errors", "__version__"},
    "pipeline": LEAVES | {"preprocessing", "estimators", "io", "nn"},
    "report": LEAVES | {"io"},
    "preprocessing": LEAVES | {"estimators", "io", "nn"},
    "estimators": LEAVES | {"nn"},
    "io": LEAVES,
    "nn": LEAVES,
}


def _imported(path: Path, root: Path = ROOT) -> set[str]:
    """The top-level aecli names ``path`` (a file under ``root``) imports: packages and
    modules of aecli."""
    rel = path.relative_to(root)
    here = list(rel.parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            base = here[:len(here) - (node.level - 1)]
            target = base + (node.module.split(".") if node.module else [])
            found |= {target[0]} if target else {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("aecli."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("aecli.")}
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_a_layer_imports_only_below_it(layer):
    wrong = {}
    for path in sorted((ROOT / layer).rglob("*.py")):
        outside = _imported(path) - ALLOWED[layer] - {layer}
        if outside:
            wrong[str(path.relative_to(ROOT))] = sorted(outside)
    assert not wrong, f"imports against the layering: {wrong}"


def test_the_leaves_import_no_layer():
    for leaf in ("errors", "formatting", "blas_threads"):
        assert not _imported(ROOT / f"{leaf}.py") - LEAVES, leaf


def test_the_check_sees_each_form_of_import(tmp_path):
    # the tests above would pass vacuously if the walk missed a form of import
    fake = tmp_path / "aecli"
    (fake / "pipeline").mkdir(parents=True)
    module = fake / "pipeline" / "m.py"
    module.write_text("from ..report.text import fmt\nfrom .. import errors\n"
                      "from .bundle import ModelBundle\nimport aecli.cli.app\n"
                      "from aecli.io import Format\n")
    assert _imported(module, fake) == {"report", "errors", "pipeline", "cli", "io"}
