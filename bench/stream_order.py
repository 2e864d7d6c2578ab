"""Streamed training on a file sorted by date: validation error against training in memory.

A file written in date order is the common case (logs, transactions, daily exports), and its
rows drift with the date. In memory every epoch shuffles all rows; ``--stream`` reads the file
in order and must mix it itself (a shuffle buffer, :func:`aecli.nn.training.chunked_batches`).
Both runs train the same model for the same epochs with a random tenth of the rows held out
(each mode draws its own tenth); the figure is the streamed run's validation MSE over the
in-memory run's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from figures import Figure

FEATURES = 16


def write_sorted(path: Path, rows: int) -> None:
    """Rows in date order whose distribution drifts with the date."""
    rng = np.random.default_rng(7)
    t = np.sort(rng.uniform(0, 1, rows))  # the date, as a fraction of the span
    z = rng.standard_normal((rows, 4))
    mix = rng.standard_normal((4, FEATURES))
    drift = rng.standard_normal((1, FEATURES))
    X = np.tanh(z @ mix / 2 + 3 * t[:, None] * drift) + 0.05 * rng.standard_normal((rows,
                                                                                    FEATURES))
    table = pa.table({f"x{j}": X[:, j] for j in range(FEATURES)})
    pq.write_table(table, path, row_group_size=131072)


def validation_mse(data: Path, stream: bool, epochs: int, out: Path) -> float:
    argv = [sys.executable, "-m", "aecli", "train", str(data), "-o", str(out), "-q",
            "--epochs", str(epochs), "-k", "4", "--validation", "0.1", "--seed", "0"]
    subprocess.run(argv + (["--stream"] if stream else []), check=True)
    done = subprocess.run([sys.executable, "-m", "aecli", "inspect", str(out), "--json"],
                          check=True, capture_output=True, text=True)
    return json.loads(done.stdout)["summary"]["validation_mse"]


def measure(quick: bool) -> list[Figure]:
    rows, epochs = (50_000, 2) if quick else (600_000, 4)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "sorted.parquet"
        write_sorted(data, rows)
        memory = validation_mse(data, False, epochs, Path(tmp) / "memory.npz")
        streamed = validation_mse(data, True, epochs, Path(tmp) / "streamed.npz")
    return [Figure(f"train --stream on a date-sorted file ({rows:,} rows, {epochs} epochs): "
                   "validation MSE vs in memory", streamed, memory, "MSE", streamed / memory,
                   1.10, at_least=False)]
