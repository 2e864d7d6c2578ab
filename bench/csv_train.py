"""``aecli train`` on a large CSV: what typing every column from all of its rows costs.

aecli surveys every row of a delimited file before it reads it typed (a column empty for
30,000 rows and then text is text), so training on a CSV reads the file twice. The
reference is the same training from the same file read once, its types taken from the first
block as pyarrow infers them (what aecli did before the survey): ``csv_train_reference.py``.
Both are fresh child processes, one epoch, pinned to the same threads; the figures are their
wall time and peak RSS.
"""

from __future__ import annotations

import sys
from pathlib import Path

from encode_speed import DATA, table_path
from figures import Figure
from measure import drop_into_page_cache, run_child

HERE = Path(__file__).resolve().parent
ARGS = ["--epochs", "1", "--hidden", "32", "-k", "8", "--threads", "2", "-q"]


def figures(rows: int) -> list[Figure]:
    """Time and peak RSS of ``aecli train`` on ``rows`` rows of CSV vs the one-pass read."""
    src = table_path(rows, "csv")
    drop_into_page_cache(src)
    out = DATA / "csv_train.npz"
    ours = run_child([sys.executable, "-m", "aecli", "train", str(src), "-o", str(out), *ARGS])
    ref = run_child([sys.executable, str(HERE / "csv_train_reference.py"), str(src), str(out),
                     *ARGS])
    out.unlink(missing_ok=True)
    mib = 2**20
    return [
        Figure(f"train on a {rows:,}-row CSV (surveyed, then read typed) vs one typed read: "
               "time", ours.seconds, ref.seconds, "s", ours.seconds / ref.seconds, None,
               at_least=False, note="the survey reads the file a second time"),
        Figure("the same: peak RSS", ours.max_rss / mib, ref.max_rss / mib, "MiB",
               ours.max_rss / ref.max_rss, 1.2, at_least=False),
    ]
