"""``aecli encode`` end to end: time against the I/O floor, and peak memory as rows grow.

The inputs are 64 float columns (values with four decimals, as exported tables often hold)
generated once into ``bench/data/`` with a model trained quickly on a sample of them. Every run
is a fresh child process of the same Python: the real CLI (``python -m aecli encode``) on one
side, ``bench/io_floor.py`` (pyarrow reading the same file and writing 8 float columns of the
same row count in the same format, no model) on the other. The input is read once beforehand
so that both find it in the page cache; the figure is each side's fastest run.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
from figures import Figure
from measure import drop_into_page_cache, run_child

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
FEATURES = 64
LATENT = 8
CHUNK = 100_000  # rows generated (and one Parquet row group) at a time
GENERATOR_VERSION = 1  # bump when the data below changes, to regenerate old files
SAMPLE_ROWS = 20_000


def _chunk(index: int, rows: int) -> pa.Table:
    """Rows ``index*CHUNK ...`` of the benchmark's endless table: any prefix is the same data."""
    mix = np.random.default_rng(12345).standard_normal((LATENT, FEATURES))
    scale = np.random.default_rng(54321).uniform(0.5, 20.0, FEATURES)
    rng = np.random.default_rng([12345, index])
    z = rng.standard_normal((rows, LATENT))
    X = np.tanh(z @ mix / np.sqrt(LATENT)) + 0.05 * rng.standard_normal((rows, FEATURES))
    X = np.round(X * scale + 10.0, 4)  # (rows, 64)
    return pa.table({f"f{j + 1:02d}": X[:, j] for j in range(FEATURES)})


def _write(path: Path, rows: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    writer = None
    for index, start in enumerate(range(0, rows, CHUNK)):
        table = _chunk(index, min(CHUNK, rows - start))
        if writer is None:
            writer = (pq.ParquetWriter(tmp, table.schema) if path.suffix == ".parquet"
                      else pcsv.CSVWriter(tmp, table.schema))
        writer.write_table(table)
    writer.close()
    os.replace(tmp, path)


def compile_aecli() -> None:
    """Write aecli's bytecode, as ``pip install`` does for an installed package.

    An editable install compiles nothing, and where PYTHONDONTWRITEBYTECODE is set (as on
    this project's machines) every run of ``aecli`` would compile its own source again: 50 ms
    a run that no installed copy pays and the floor, all compiled, does not pay either.
    """
    import compileall

    import aecli

    compileall.compile_dir(str(Path(aecli.__file__).parent), quiet=1)


def ensure_data(files: dict[str, int], log) -> None:
    """Write each file ``name -> rows`` into bench/data/ unless it is already there, and the
    model; a manifest remembers what was written."""
    DATA.mkdir(exist_ok=True)
    manifest_path = DATA / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    wanted = {**files, "sample.csv": SAMPLE_ROWS}
    for name, rows in wanted.items():
        entry = {"rows": rows, "version": GENERATOR_VERSION}
        if manifest.get(name) == entry and (DATA / name).exists():
            continue
        log(f"writing bench/data/{name} ({rows:,} rows)")
        _write(DATA / name, rows)
        manifest[name] = entry
        if name == "sample.csv":
            manifest.pop("model.npz", None)  # the model follows the sample
        manifest_path.write_text(json.dumps(manifest, indent=1))
    if "model.npz" not in manifest or not (DATA / "model.npz").exists():
        log("training bench/data/model.npz on the sample")
        run_child([sys.executable, "-m", "aecli", "train", str(DATA / "sample.csv"),
                   "-o", str(DATA / "model.npz"), "-k", str(LATENT), "--hidden", "128,32",
                   "--epochs", "5", "-q"])
        manifest["model.npz"] = {"version": GENERATOR_VERSION}
        manifest_path.write_text(json.dumps(manifest, indent=1))


def _rows_written(path: Path) -> int:
    if path.suffix == ".parquet":
        return pq.ParquetFile(path).metadata.num_rows
    with open(path, "rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 24), b"")) - 1


def _encode(src: Path, out: Path):
    return run_child([sys.executable, "-m", "aecli", "encode", str(DATA / "model.npz"),
                      str(src), "-o", str(out), "-q"])


def _floor(src: Path, out: Path):
    return run_child([sys.executable, str(HERE / "io_floor.py"), str(src), str(out)])


def _checked(run, src: Path, out: Path, rows: int):
    result = run(src, out)
    written = _rows_written(out)
    out.unlink()
    if written != rows:
        raise RuntimeError(f"{run.__name__} on {src.name} wrote {written} rows, not {rows}")
    return result


def encode_figures(rows: int, rounds: int) -> list[Figure]:
    """aecli encode time / I/O floor time, for CSV and Parquet inputs of ``rows`` rows."""
    figures = []
    for ext in ("csv", "parquet"):
        src = table_path(rows, ext)
        out = DATA / f"out.{ext}"
        drop_into_page_cache(str(src))
        ours, floor = [], []
        for _ in range(rounds):
            ours.append(_checked(_encode, src, out, rows).seconds)
            floor.append(_checked(_floor, src, out, rows).seconds)
        figures.append(Figure(
            f"encode {rows:,} x 64 {ext.upper()}: time vs I/O floor", min(ours), min(floor),
            "s", min(ours) / min(floor), 1.3, at_least=False,
        ))
    arithmetic = arithmetic_seconds(table_path(rows, "parquet"), rounds)
    figures.append(Figure(
        f"encode {rows:,} x 64: arithmetic alone (1 core) vs PARQUET floor", arithmetic,
        figures[-1].reference, "s", arithmetic / figures[-1].reference, None,
        note="the time encode adds to the I/O (scaling, checks, the network, the output "
        "columns), measured with no I/O at all",
    ))
    return figures


def arithmetic_seconds(src: Path, rounds: int) -> float:
    """Seconds that ``aecli encode`` spends on arithmetic for ``src``, with no I/O at all.

    The batches are read into memory first; then aecli's own streaming code (scaling, checks,
    the network, the output columns) runs over them on one BLAS thread, as in ``encode``.
    The best of ``rounds`` runs.
    """
    from threadpoolctl import threadpool_limits

    from aecli.io import iter_batches
    from aecli.pipeline import apply, modelfile

    bundle = modelfile.read_model(DATA / "model.npz")
    batches = list(iter_batches(str(src)))
    best = float("inf")
    with threadpool_limits(limits=1, user_api="blas"):
        for _ in range(rounds):
            started = time.perf_counter()
            for _ in apply.encode_stream(bundle, batches, [], src.name, apply.ErrorTotals()):
                pass
            best = min(best, time.perf_counter() - started)
    return best


def memory_figures(small: int, large: int, rounds: int = 3) -> list[Figure]:
    """Peak RSS of aecli encode on ``large`` rows over that on ``small`` rows.

    Each size's figure is the median of ``rounds`` runs: how far the allocators' caches have
    filled when a short run ends varies by tens of MiB from run to run.
    """
    figures = []
    for ext in ("csv", "parquet"):
        peaks = []
        for rows in (small, large):
            src = table_path(rows, ext)
            runs = [_checked(_encode, src, DATA / f"out.{ext}", rows).max_rss / 2**20
                    for _ in range(rounds)]
            peaks.append(statistics.median(runs))
        figures.append(Figure(
            f"encode peak RSS {ext.upper()}: {large:,} rows vs {small:,}", peaks[1], peaks[0],
            "MiB", peaks[1] / peaks[0], 1.2, at_least=False,
        ))
    return figures


def row_group_figure(rows: int, rounds: int = 3) -> Figure:
    """Peak RSS of aecli encode on ``rows`` rows of Parquet written in 1,048,576-row groups
    (pyarrow's default) over the same rows in 131,072-row groups."""
    peaks = []
    for group in (1 << 20, 1 << 17):
        src = DATA / f"rows_{rows}_rg{group}.parquet"
        if not src.exists():
            tmp = src.with_name(src.name + ".tmp")
            pq.write_table(pq.read_table(table_path(rows, "parquet")), tmp, row_group_size=group)
            os.replace(tmp, src)
        runs = [_checked(_encode, src, DATA / "out.parquet", rows).max_rss / 2**20
                for _ in range(rounds)]
        peaks.append(statistics.median(runs))
    return Figure(f"encode peak RSS PARQUET {rows:,} rows: 1M-row groups vs 128k-row groups",
                  peaks[0], peaks[1], "MiB", peaks[0] / peaks[1], 1.5, at_least=False)


def stream_training_figure(small: int, large: int) -> Figure:
    """Peak RSS of ``aecli train --stream`` (one epoch) on ``large`` rows over ``small`` rows.

    Both sizes are past the caps on what a streamed run keeps (a 200k-row sample for the
    scaler and the PCA reference, 100k validation rows), so the peak should not grow.
    """
    peaks = []
    for rows in (small, large):
        run = run_child([sys.executable, "-m", "aecli", "train", str(table_path(rows, "parquet")),
                         "--stream", "--epochs", "1", "--hidden", "32", "-k", str(LATENT),
                         "-o", str(DATA / "streamed.npz"), "-q"])
        peaks.append(run.max_rss / 2**20)
    (DATA / "streamed.npz").unlink()
    return Figure(f"train --stream peak RSS PARQUET: {large:,} rows vs {small:,}", peaks[1],
                  peaks[0], "MiB", peaks[1] / peaks[0], None,
                  note="one epoch streamed from the file; memory is bounded by caps, not rows")


def table_path(rows: int, ext: str) -> Path:
    """Where the input of ``rows`` rows in format ``ext`` lives."""
    return DATA / f"rows_{rows}.{ext}"


def files(*row_counts: int) -> dict[str, int]:
    """The input files (name -> rows) the figures above need for these row counts."""
    return {table_path(n, ext).name: n for n in row_counts for ext in ("csv", "parquet")}
