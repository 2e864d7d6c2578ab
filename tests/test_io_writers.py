"""Writing: atomic files, every output format, stdout, and what other tools make of the output."""

from __future__ import annotations

import errno
import gzip
import io
import json
import os

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aecli.errors import OutputError
from aecli.io import TableWriter, atomic_open, atomic_write, read_table

rng = np.random.default_rng(7)
FLOATS = np.concatenate([rng.normal(size=200) * 10.0 ** rng.integers(-30, 30, 200), [0.1, -0.0]])
TABLE = pa.table(
    {
        "id": [f"r{i}" for i in range(len(FLOATS))],
        "z1": FLOATS,
        "z2": FLOATS.astype(np.float32),
    }
)


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


# --------------------------------------------------------------------------- atomic files


def test_atomic_write_replaces_on_success(tmp_path):
    target = tmp_path / "model.npz"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    with atomic_write(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".npz") and tmp != target
        np.savez(tmp, w=np.arange(3))  # np.savez keeps a name that ends in .npz
        assert target.read_bytes() == b"old"  # not yet
    assert np.load(target)["w"].tolist() == [0, 1, 2]
    assert os.stat(target).st_mode & 0o777 == 0o640  # permissions kept
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_atomic_write_keeps_the_old_file_when_interrupted(tmp_path, error):
    target = tmp_path / "model.npz"
    target.write_bytes(b"old")
    with pytest.raises(type(error)):
        with atomic_open(target) as f:
            f.write(b"half of a new fi")
            raise error
    assert target.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


def test_atomic_write_new_file_not_created_on_error(tmp_path):
    with pytest.raises(ValueError):
        with atomic_write(tmp_path / "new.csv"):
            raise ValueError
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_disk_full_is_an_output_error(tmp_path):
    target = tmp_path / "out.parquet"
    with pytest.raises(OutputError, match="disk is full"):
        with atomic_write(target):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_missing_directory(tmp_path):
    with pytest.raises(OutputError, match="does not exist") as e:
        with atomic_write(tmp_path / "no" / "such" / "m.npz"):
            pass
    assert "mkdir -p" in e.value.hint


def test_atomic_write_onto_a_directory(tmp_path):
    with pytest.raises(OutputError, match="is a directory"):
        with atomic_write(tmp_path):
            pass


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_atomic_write_unwritable_directory(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="permission denied"):
            with atomic_write(folder / "m.npz"):
                pass
    finally:
        folder.chmod(0o700)


# --------------------------------------------------------------------------- stdout


def write_to_bytes(table, fmt=None, **kwargs) -> bytes:
    out = io.BytesIO()
    with TableWriter(None, fmt, stdout=out, **kwargs) as w:
        for batch in table.to_batches(max_chunksize=50):
            w.write(batch)
    return out.getvalue()


def test_csv_to_stdout_by_default_header_once_minimal_quotes():
    data = write_to_bytes(TABLE)
    lines = data.decode().splitlines()
    assert lines[0] == "id,z1,z2"
    assert len(lines) == TABLE.num_rows + 1
    assert lines[-1] == "r201,-0,-0"
    text = write_to_bytes(pa.table({"s": ["a,b", 'say "hi"', None, ""], "v": [1.0, 2, 3, 4]}))
    assert pd.read_csv(io.BytesIO(text), keep_default_na=False)["s"].tolist() == [
        "a,b",
        'say "hi"',
        "",
        "",
    ]


def test_csv_floats_round_trip_exactly():
    back = pd.read_csv(io.BytesIO(write_to_bytes(TABLE)))
    assert back["z1"].tolist() == FLOATS.tolist()
    assert back["z2"].astype(np.float32).tolist() == FLOATS.astype(np.float32).tolist()


def test_tsv_to_stdout():
    data = write_to_bytes(pa.table({"a": ["x\ty", "z"], "b": [1.5, 2.0]}), "tsv")
    assert data.decode().splitlines()[0] == "a\tb"
    back = pd.read_csv(io.BytesIO(data), sep="\t")
    assert back["a"].tolist() == ["x\ty", "z"]


def test_jsonl_to_stdout():
    table = pa.table(
        {"s": ['q"uote', None, "ünï"], "v": [0.1, float("nan"), float("inf")], "n": [1, 2, None]}
    )
    lines = write_to_bytes(table, "jsonl").decode().splitlines()
    rows = [json.loads(line) for line in lines]  # strict JSON: no NaN/Infinity tokens
    assert rows == [
        {"s": 'q"uote', "v": 0.1, "n": 1},
        {"s": None, "v": None, "n": 2},
        {"s": "ünï", "v": None, "n": None},
    ]
    back = [json.loads(line)["z1"] for line in write_to_bytes(TABLE, "jsonl").splitlines()]
    assert back == FLOATS.tolist()


def test_nested_values_become_json_text_in_csv():
    table = pa.table({"n": [{"x": 1}, None], "l": [[1, 2], [3]]})
    back = pd.read_csv(io.BytesIO(write_to_bytes(table)))
    assert back["n"].tolist()[0] == '{"x":1}' and pd.isna(back["n"].tolist()[1])
    assert back["l"].tolist() == ["[1,2]", "[3]"]


def test_parquet_to_stdout():
    data = write_to_bytes(TABLE, "parquet")
    assert pq.read_table(pa.BufferReader(data)).equals(TABLE)


def test_header_without_rows_when_the_schema_is_known():
    schema = pa.schema([("z1", pa.float64()), ("z2", pa.float64())])
    out = io.BytesIO()
    with TableWriter("-", stdout=out, schema=schema):
        pass
    assert out.getvalue() == b"z1,z2\n"


def test_closed_pipe_is_not_an_output_error():
    class Closed(io.RawIOBase):
        def writable(self):
            return True

        def write(self, b):
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    with pytest.raises(BrokenPipeError):
        with TableWriter(None, stdout=Closed()) as w:
            w.write(TABLE)


def test_full_disk_while_streaming_is_an_output_error():
    class Full(io.RawIOBase):
        def writable(self):
            return True

        def write(self, b):
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OutputError, match="disk is full"):
        with TableWriter(None, stdout=Full()) as w:
            w.write(TABLE)


# --------------------------------------------------------------------------- files


@pytest.mark.parametrize(
    "name", ["o.csv", "o.csv.gz", "o.csv.bz2", "o.csv.zst", "o.tsv", "o.parquet", "o.jsonl"]
)
def test_file_round_trip(tmp_path, name):
    path = tmp_path / name
    with TableWriter(path) as w:
        w.write(TABLE)
    back = read_table(path)
    assert back["id"].to_pylist() == TABLE["id"].to_pylist()
    assert back["z1"].to_pylist() == FLOATS.tolist()
    assert leftovers(tmp_path) == []


def test_gzip_output_is_real_gzip(tmp_path):
    path = tmp_path / "o.csv.gz"
    with TableWriter(path) as w:
        w.write(TABLE.slice(0, 2))
    assert gzip.decompress(path.read_bytes()).decode().startswith("id,z1,z2\n")


def test_explicit_format_beats_the_extension(tmp_path):
    path = tmp_path / "o.dat"
    with TableWriter(path, "jsonl") as w:
        w.write(TABLE.slice(0, 1))
    assert json.loads(path.read_text())["id"] == "r0"


def test_error_while_writing_leaves_nothing_and_keeps_the_old_file(tmp_path):
    old = tmp_path / "old.parquet"
    old.write_bytes(b"precious")
    with pytest.raises(RuntimeError):
        with TableWriter(old) as w:
            w.write(TABLE)
            raise RuntimeError("killed half way")
    assert old.read_bytes() == b"precious"
    with pytest.raises(RuntimeError):
        with TableWriter(tmp_path / "new.csv") as w:
            w.write(TABLE)
            raise RuntimeError
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.parquet"]


def test_unknown_output_extension_and_missing_directory(tmp_path):
    with pytest.raises(OutputError, match="--format"):
        TableWriter(tmp_path / "out.xlsx")
    with pytest.raises(OutputError, match="does not exist"):
        TableWriter(tmp_path / "nope" / "out.csv")


# --------------------------------------------------------------------------- other tools


@pytest.fixture
def written(tmp_path):
    paths = {}
    for fmt in ("csv", "parquet", "jsonl"):
        paths[fmt] = tmp_path / f"out.{fmt}"
        with TableWriter(paths[fmt]) as w:
            w.write(TABLE)
    return paths


def test_pandas_reads_the_output(written):
    frames = [
        pd.read_csv(written["csv"]),
        pd.read_parquet(written["parquet"]),
        pd.read_json(written["jsonl"], lines=True, precise_float=True),
    ]
    for frame in frames:
        assert frame.columns.tolist() == ["id", "z1", "z2"]
        assert frame["id"].tolist() == TABLE["id"].to_pylist()
        assert frame["z1"].tolist() == FLOATS.tolist()


def test_duckdb_reads_the_output(written):
    for fmt, path in written.items():
        reader = {"csv": "read_csv", "parquet": "read_parquet", "jsonl": "read_json"}[fmt]
        rel = duckdb.sql(f"select id, z1 from {reader}('{path}') order by id")
        assert len(rel.fetchall()) == TABLE.num_rows
    n, total = duckdb.sql(f"select count(*), sum(z1) from '{written['parquet']}'").fetchall()[0]
    assert n == TABLE.num_rows and total == pytest.approx(FLOATS.sum())


def test_parquet_floats_are_written_plain_and_text_with_a_dictionary(tmp_path):
    # Codes hardly ever repeat a value: a dictionary would only make the file bigger.
    n = 20000
    table = pa.table({"label": pa.array(["a", "b"] * (n // 2)),
                      "z1": np.random.default_rng(0).normal(size=n).astype(np.float32)})
    path = tmp_path / "codes.parquet"
    with TableWriter(path) as out:
        out.write(table)
    meta = pq.ParquetFile(path).metadata.row_group(0)
    encodings = {meta.column(j).path_in_schema: meta.column(j).encodings for j in range(2)}
    assert "RLE_DICTIONARY" in encodings["label"]
    assert "RLE_DICTIONARY" not in encodings["z1"]
    assert pq.read_table(path).equals(table)


def test_a_named_pipe_is_written_in_place_never_replaced(tmp_path):
    # `-o /dev/null` used to rename a temporary file onto the device, replacing /dev/null with
    # a regular file (as root). A FIFO stands in for it here: it must still be a FIFO after,
    # and have received the whole table, as CSV since it has no extension.
    import os
    import stat
    import threading

    from typer.testing import CliRunner

    from aecli.cli import app

    pipe = tmp_path / "out"
    os.mkfifo(pipe)
    received = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_bytes()), daemon=True)
    reader.start()
    data = tmp_path / "d.csv"
    rows = "".join(f"{i * 3 % 50},{i * 2 % 7}\n" for i in range(50))  # a: no row number
    data.write_text("a,b\n" + rows)
    model = tmp_path / "m.npz"
    r = CliRunner().invoke(app, ["train", str(data), "-o", str(model), "--epochs", "2", "-q",
                                 "-k", "1", "--hidden", "2"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["encode", str(model), str(data), "-o", str(pipe)])
    reader.join(timeout=30)
    assert r.exit_code == 0, r.output
    assert stat.S_ISFIFO(os.stat(pipe).st_mode)
    lines = received[0].decode().splitlines()
    assert lines[0] == "z1" and len(lines) == 51
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv", "m.npz", "out"]
