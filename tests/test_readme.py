"""The Python examples of the docs run as written and print what they claim.

(The shell commands of the README and docs/ are run by tests/test_docs_examples.py.)"""

import contextlib
import io
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON_API = ROOT / "docs" / "python-api.md"
MODEL_FILE = ROOT / "docs" / "model-file.md"


def test_python_api_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", PYTHON_API.read_text(), re.S)
    assert blocks, "docs/python-api.md has no Python example"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        api = next(b for b in blocks if "from aecli import Autoencoder" in b)
        exec(compile(api, str(PYTHON_API), "exec"), {})
    printed = out.getvalue()
    assert "(500, 3) (500, 10)" in printed
    ae, pca = (float(x) for x in re.findall(r"MSE (\d+\.\d+)", printed))
    assert ae < pca  # the curved columns are what the autoencoder is for


def test_onnx_example_runs_as_printed(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from aecli.cli import app

    text = MODEL_FILE.read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "onnxruntime" in b)
    command = re.search(r"^aecli (export .*)$", text, re.M).group(1).split()
    (tmp_path / "sample_data").symlink_to(ROOT / "sample_data")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    r = runner.invoke(app, ["train", "sample_data/digits.csv", "--exclude", "label", "-o",
                            "digits.npz", "--epochs", "3", "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, command)
    assert r.exit_code == 0, r.output
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, str(MODEL_FILE), "exec"), {})
    flagged, total = (int(x) for x in re.findall(r"(\d+) of (\d+) rows", out.getvalue())[0])
    assert total == 1797 and 0 < flagged < total


def test_the_estimator_parameters_listed_are_all_there_are():
    from dataclasses import fields

    from aecli.estimators import Hyperparameters

    text = PYTHON_API.read_text()
    start = text.index("Parameters (one declaration, `aecli.estimators.Hyperparameters`")
    listed = set(re.findall(r"`(\w+)`", text[start : text.index("Methods:", start)]))
    assert {f.name for f in fields(Hyperparameters)} <= listed
