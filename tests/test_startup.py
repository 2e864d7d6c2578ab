"""Start-up cost: every command pays it, in cron and in every stage of a pipe."""

import subprocess
import sys

import pytest

CHECK = """
import sys
from aecli.cli.app import app
heavy = sys.argv[1].split(",")
sys.argv = ["aecli"] + sys.argv[2:]
try:
    app()
except SystemExit as e:
    assert not e.code, e.code
for name in heavy:
    assert name not in sys.modules, f"{name} was imported"
"""

# pandas costs a fifth of a second to import; pyarrow pulls it in through pa.array on NumPy
# values, to_numpy and pyarrow.dataset, which aecli avoids on this path. typer 0.29 and later
# validate options with pydantic (0.15 s more per run, hence the pin in pyproject.toml); rich
# (30 ms) is for people. pyarrow.compute (40 ms) is for missing values and text, and for the
# CSV reader's check of integer columns, so plain Parquet floats do without it.
NEVER = "pandas,pydantic,rich"


@pytest.mark.parametrize("kind,heavy", [("small_csv", NEVER),
                                        ("small_parquet", NEVER + ",pyarrow.compute")])
def test_quiet_encode_imports_nothing_it_does_not_use(cli_files, tmp_path, kind, heavy):
    r = subprocess.run([sys.executable, "-c", CHECK, heavy, "encode", str(cli_files["model"]),
                        str(cli_files[kind]), "-o", str(tmp_path / "codes.parquet"), "-q"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
