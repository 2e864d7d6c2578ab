"""Pass-through columns (``--keep``) keep their values and types through every input and
output format, and DuckDB and pandas read every output."""

from __future__ import annotations

import csv
import json

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import ok

KEPT = ["fips", "n", "d", "ts", "grade"]
FORMATS = ["parquet", "csv", "tsv", "jsonl"]




@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A Parquet table of awkward pass-through columns, its model, and the same rows as the
    text formats aecli writes."""
    d = tmp_path_factory.mktemp("keep")
    n = 40
    rng = np.random.default_rng(0)
    hours = (np.datetime64("2024-03-30T22:00:00") + np.arange(n) * 3600).astype("datetime64[us]")
    table = pa.table({
        "fips": [f"{i * 1009 % 60000:05d}" for i in range(n)],  # leading zeros
        "n": pa.array([None if i % 5 == 0 else i * 10**12 for i in range(n)], pa.int64()),
        "d": pa.array((np.datetime64("2024-01-01") + np.arange(n)).astype("datetime64[D]"),
                      pa.date32()),
        "ts": pa.array(hours).cast(pa.timestamp("us", tz="Europe/Berlin")),  # across DST
        "grade": pa.DictionaryArray.from_arrays(pa.array(np.arange(n) % 3, pa.int8()),
                                                pa.array(["low", "mid", "high"]), ordered=True),
        "x": rng.normal(size=n), "y": rng.normal(size=n),
    })
    pq.write_table(table, d / "in.parquet")
    model = d / "m.npz"
    ok("train", d / "in.parquet", "--columns", "x,y", "-o", model, "-q", "--epochs", "2",
       "-k", "1")
    for fmt in FORMATS[1:]:
        ok("encode", model, d / "in.parquet", "--keep", "*", "-o", d / f"in.{fmt}", "-q")
    return {"dir": d, "model": model, "table": table}


def _text_rows(path, fmt):
    """The kept columns of a text output, as the strings it holds (None when empty)."""
    if fmt == "jsonl":
        with open(path) as f:
            rows = [json.loads(line) for line in f]
        return {c: [None if r[c] is None else str(r[c]) for r in rows] for c in KEPT}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t" if fmt == "tsv" else ","))
    return {c: [r[c] or None for r in rows] for c in KEPT}


@pytest.mark.parametrize("out_fmt", FORMATS)
@pytest.mark.parametrize("in_fmt", FORMATS)
def test_kept_columns_keep_their_values_and_types(source, in_fmt, out_fmt, tmp_path):
    src = source["dir"] / f"in.{in_fmt}"
    out = tmp_path / f"out.{out_fmt}"
    ok("encode", source["model"], src, "--keep", ",".join(KEPT), "-o", out, "-q")
    if out_fmt == "parquet":
        got = pq.read_table(out).select(KEPT)
        if in_fmt == "parquet":  # Arrow's own types, the ordered categories included
            assert got.equals(source["table"].select(KEPT))
            assert got.schema.field("grade").type.ordered
        else:  # text formats hold text: it stays the text it is; integers stay integers
            assert got.schema.field("n").type == pa.int64()
            assert got.column("fips").to_pylist() == source["table"].column("fips").to_pylist()
            assert got.column("n").to_pylist() == source["table"].column("n").to_pylist()
            expected = _text_rows(source["dir"] / f"in.{in_fmt}", in_fmt)
            for c in ("d", "ts", "grade"):
                assert got.column(c).to_pylist() == expected[c]
    else:
        got = _text_rows(out, out_fmt)
        expected = _text_rows(src, in_fmt) if in_fmt != "parquet" else None
        if expected is not None:
            assert got == expected  # text in, the same text out
        assert got["fips"] == source["table"].column("fips").to_pylist()
        assert got["n"] == [None if v is None else str(v)
                            for v in source["table"].column("n").to_pylist()]
    # every output is readable by the usual clients
    reader = {"parquet": "read_parquet", "csv": "read_csv", "tsv": "read_csv",
              "jsonl": "read_json"}[out_fmt]
    rows = duckdb.sql(f"select count(*) from {reader}('{out}')").fetchall()[0][0]
    assert rows == 40
    frame = (pd.read_parquet(out) if out_fmt == "parquet" else pd.read_json(out, lines=True)
             if out_fmt == "jsonl" else pd.read_csv(out, sep="\t" if out_fmt == "tsv" else ","))
    assert list(frame.columns) == [*KEPT, "z1"]


def test_keep_star_passes_every_input_column_through(source, tmp_path):
    out = tmp_path / "all.parquet"
    ok("reconstruct", source["model"], source["dir"] / "in.csv", "--keep", "*", "-o", out, "-q")
    names = pq.read_table(out).column_names
    assert names == [*source["table"].column_names, "z1", "x_reconstructed", "y_reconstructed"]
