"""Start-up cost: every command pays it, in cron and in every stage of a pipe."""

import subprocess
import sys

CHECK = """
import sys
from aecli.cli.app import app
sys.argv = ["aecli"] + sys.argv[1:]
try:
    app()
except SystemExit as e:
    assert not e.code, e.code
assert "pandas" not in sys.modules, "pandas was imported"
"""


def test_encode_never_imports_pandas(cli_files, tmp_path):
    # pandas costs a fifth of a second to import; pyarrow pulls it in through pa.array on
    # NumPy values, to_numpy and pyarrow.dataset, which aecli avoids on this path.
    for data in (cli_files["small_csv"], cli_files["small_parquet"]):
        r = subprocess.run([sys.executable, "-c", CHECK, "encode", str(cli_files["model"]),
                            str(data), "-o", str(tmp_path / "codes.parquet"), "-q"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
