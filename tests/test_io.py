"""Reading tables: formats, sniffing, stdin, streaming, and every way input goes wrong."""

from __future__ import annotations

import bz2
import gzip
import io
import math
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

import aecli.io.streams as streams
from aecli.errors import DataError
from aecli.io import (
    Format,
    TableWriter,
    compression_from_path,
    detect_delimiter,
    format_from_path,
    iter_batches,
    read_table,
    sniff,
    to_matrix,
)
from aecli.io.text import largest

TABLE = pa.table(
    {
        "id": ["r1", "r2", "r3", "r4"],
        "x": [0.1, -2.5, 1e-300, 1.7976931348623157e308],
        "y": [1.0, 2.0, None, 4.0],
    }
)


def write_bytes(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def stdin(data: bytes) -> io.BytesIO:
    return io.BytesIO(data)


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.csv", Format.csv),
        ("A.CSV.GZ", Format.csv),
        ("a.csv.bz2", Format.csv),
        ("a.csv.zst", Format.csv),
        ("a.tsv", Format.tsv),
        ("a.tsv.gz", Format.tsv),
        ("a.parquet", Format.parquet),
        ("a.pq", Format.parquet),
        ("a.jsonl", Format.jsonl),
        ("a.ndjson", Format.jsonl),
        ("parts/*.parquet", Format.parquet),
    ],
)
def test_format_from_path(name, fmt):
    assert format_from_path(name) is fmt


def test_format_from_path_directory_is_parquet(tmp_path):
    assert format_from_path(tmp_path) is Format.parquet


def test_format_from_path_unknown_extension_suggests_the_flag():
    with pytest.raises(DataError, match="data.txt") as e:
        format_from_path("data.txt")
    assert "--input-format" in e.value.hint


def test_compression_from_path():
    assert compression_from_path("a.csv.gz") == "gzip"
    assert compression_from_path("a.csv.bz2") == "bz2"
    assert compression_from_path("a.tsv.zst") == "zstd"
    assert compression_from_path("a.csv") is None


def test_format_parse():
    assert Format.parse("NDJSON") is Format.jsonl
    assert Format.parse(".parquet") is Format.parquet
    with pytest.raises(DataError, match="'xlsx'"):
        Format.parse("xlsx")


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b"PAR1\x15\x04", Format.parquet),
        (b'{"a": 1}\n', Format.jsonl),
        (b'\xef\xbb\xbf  {"a": 1}\n', Format.jsonl),
        (b"a\tb\n1\t2\n", Format.tsv),
        (b"a;b\n1;2\n", Format.csv),
        (b"a,b\n1,2\n", Format.csv),
    ],
)
def test_sniff(head, fmt):
    assert sniff(head) is fmt


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ("a,b,c\n1,2,3\n", ","),
        ("a;b;c\n1,5;2,5;3\n", ";"),  # decimal commas do not fool it
        ("a|b\n1|2\n", "|"),
        ("a\tb\n1\t2\n", "\t"),
        ('name,v\n"x;y;z",1\n"p;q",2\n', ","),  # quoted delimiters do not count
        ("only\n1\n2\n", ","),
        ("\ufeffa;b\n1;2\n", ";"),
    ],
)
def test_detect_delimiter(text, delimiter):
    assert detect_delimiter(text.encode()) == delimiter


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize(
    "name",
    [
        "t.csv",
        "t.csv.gz",
        "t.csv.bz2",
        "t.csv.zst",
        "t.tsv",
        "t.tsv.gz",
        "t.parquet",
        "t.jsonl",
        "t.ndjson",
        "t.jsonl.gz",
    ],
)
def test_round_trip_every_format(tmp_path, name):
    path = tmp_path / name
    with TableWriter(path) as out:
        out.write(TABLE.slice(0, 2))
        out.write(TABLE.slice(2))
    got = read_table(path)
    assert got.column_names == TABLE.column_names
    assert got["id"].to_pylist() == TABLE["id"].to_pylist()
    assert got["x"].to_pylist() == TABLE["x"].to_pylist()  # exact: floats round-trip
    assert got["y"].to_pylist() == TABLE["y"].to_pylist()


def test_compressed_files_written_by_other_tools(tmp_path):
    text = b"a,b\n1,2\n3,4\n"
    for name, data in [
        ("g.csv.gz", gzip.compress(text)),
        ("b.csv.bz2", bz2.compress(text)),
        ("z.csv.zst", zstandard.ZstdCompressor().compress(text)),
    ]:
        path = write_bytes(tmp_path, name, data)
        assert read_table(path).to_pydict() == {"a": [1.0, 3.0], "b": [2.0, 4.0]}


def test_truncated_gzip_is_a_data_error(tmp_path):
    data = gzip.compress(b"a,b\n" + b"1,2\n" * 50_000)
    path = write_bytes(tmp_path, "t.csv.gz", data[: len(data) // 2])
    with pytest.raises(DataError, match="t.csv.gz"):
        read_table(path)


# --------------------------------------------------------------------------- delimited text


def test_semicolon_csv_by_extension_is_detected(tmp_path):
    path = write_bytes(tmp_path, "s.csv", b"a;b\n1;2\n3;4\n")
    assert read_table(path).to_pydict() == {"a": [1.0, 3.0], "b": [2.0, 4.0]}


def test_tsv_file_keeps_commas_in_values(tmp_path):
    path = write_bytes(tmp_path, "t.tsv", b"name\tv\nx,y\t1\n")
    assert read_table(path).to_pydict() == {"name": ["x,y"], "v": [1.0]}


def test_bom_quoted_numbers_missing_values_and_infinities(tmp_path):
    data = (
        b"\xef\xbb\xbfa,b,c,d\n"
        b'1,"1.5",inf,NA\n'
        b"2,,-inf,NaN\n"
        b"3,null,Infinity,\n"
        b'4," 2 ",-Infinity,N/A\n'
    )
    table = read_table(write_bytes(tmp_path, "m.csv", data))
    assert table.column_names == ["a", "b", "c", "d"]  # the BOM is not part of the name
    assert table.schema.field("b").type == pa.float64()
    assert table["b"].to_pylist() == [1.5, None, None, 2.0]
    assert table["c"].to_pylist() == [math.inf, -math.inf, math.inf, -math.inf]
    # a column of nothing but missing-value tokens is text as written: the tokens are
    # missing where the text is used (to_matrix, categorical levels), in every format
    assert table["d"].to_pylist() == ["NA", "NaN", "", "N/A"]
    X = to_matrix(table, ["b", "d"], dtype=np.float64)
    assert np.isnan(X[1:3, 0]).all() and np.isnan(X[:, 1]).all()


def test_integer_columns_are_read_as_float64(tmp_path):
    table = read_table(write_bytes(tmp_path, "i.csv", b"a,b\n1,x\n2,y\n"))
    assert table.schema.field("a").type == pa.float64()
    assert table.schema.field("b").type == pa.string()


def test_huge_integers_stay_text_to_keep_every_digit(tmp_path):
    table = read_table(write_bytes(tmp_path, "h.csv", b"id,v\n1234567890123456789,1\n"))
    assert table["id"].to_pylist() == ["1234567890123456789"]


def test_dates_and_text_pass_through_as_written(tmp_path):
    table = read_table(write_bytes(tmp_path, "d.csv", b"day,ok\n2024-01-05,true\n"))
    assert table.to_pydict() == {"day": ["2024-01-05"], "ok": ["true"]}


def test_types_are_stable_when_later_rows_differ(tmp_path, monkeypatch):
    monkeypatch.setattr(streams, "HEAD_BYTES", 64)  # the first look sees integers only
    rows = [f"{i},{i}" for i in range(200)] + ["2.5,7"] + [f"{i},{i}" for i in range(100)]
    path = write_bytes(tmp_path, "s.csv", ("a,b\n" + "\n".join(rows) + "\n").encode())
    stream = iter_batches(path, batch_rows=50)
    batches = list(stream)
    assert len(batches) > 3
    assert all(b.schema == stream.schema for b in batches)
    a = pa.Table.from_batches(batches)["a"].to_pylist()
    assert a[200] == 2.5 and len(a) == 301


def test_text_after_numbers_names_the_column(tmp_path, monkeypatch):
    monkeypatch.setattr(streams, "HEAD_BYTES", 64)
    rows = "\n".join(f"{i},{i}" for i in range(100))
    path = write_bytes(tmp_path, "s.csv", f"a,b\n{rows}\n5,oops\n".encode())
    with pytest.raises(DataError, match=r"column 'b'.*'oops'"):
        read_table(path)


@pytest.mark.parametrize("bad", [b"3\n", b"3,4,5\n"])
def test_ragged_row_names_the_line(tmp_path, bad):
    path = write_bytes(tmp_path, "r.csv", b"a,b\n1,2\n" + bad + b"4,5\n")
    with pytest.raises(DataError, match=r"r\.csv: line 3 \(row 2\): expected 2 fields"):
        read_table(path)


def test_ragged_row_far_down_names_the_line(tmp_path, monkeypatch):
    monkeypatch.setattr(streams, "HEAD_BYTES", 64)
    rows = "".join(f"{i},{i}\n" for i in range(1000))
    path = write_bytes(tmp_path, "r.csv", f"a,b\n{rows}1,2,3\n".encode())
    stream = iter_batches(path, batch_rows=100)
    with pytest.raises(DataError, match="line 1002"):
        list(stream)


@pytest.mark.parametrize(
    "data", [b"\n\na,b\n1,2\n3,4\n", b"a,b\r\n1,2\r\n3,4\r\n", b"a,b\n1,2\n\n3,4"]
)
def test_blank_lines_crlf_and_no_final_newline(tmp_path, data):
    table = read_table(write_bytes(tmp_path, "b.csv", data))
    assert table.to_pydict() == {"a": [1.0, 3.0], "b": [2.0, 4.0]}


def test_quoted_newlines_in_values(tmp_path):
    path = write_bytes(tmp_path, "q.csv", b'note,v\n"two\nlines",1\nplain,2\n')
    assert read_table(path).to_pydict() == {"note": ["two\nlines", "plain"], "v": [1.0, 2.0]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "file is empty"),
        (b"  \n\n", "file is empty"),
        (b"a,b\n", "no data rows"),
        (b"a,b,a\n1,2,3\n", "duplicate column names: 'a'"),
        (b"a,,c\n1,2,3\n", "column 2 has no name"),
        (bytes(range(256)) * 20, "does not look like UTF-8 text"),
        (b"name,v\ncaf\xe9,1\n", "UTF-8"),
    ],
)
def test_unusable_text_input(tmp_path, data, message):
    path = write_bytes(tmp_path, "bad.csv", data)
    with pytest.raises(DataError, match=message) as e:
        read_table(path)
    assert "bad.csv" in str(e.value)


def test_missing_file():
    with pytest.raises(DataError, match="nope.csv: no such file"):
        iter_batches("nope.csv")  # fails at once, before any iteration


def test_unknown_extension_can_be_overridden(tmp_path):
    path = write_bytes(tmp_path, "data.txt", b"a|b\n1|2\n")
    with pytest.raises(DataError, match="--input-format"):
        read_table(path)
    assert read_table(path, input_format="csv").to_pydict() == {"a": [1.0], "b": [2.0]}


def test_parquet_named_csv_says_so(tmp_path):
    path = tmp_path / "p.csv"
    pq.write_table(TABLE, path)
    with pytest.raises(DataError, match="Parquet") as e:
        read_table(path)
    assert "--input-format parquet" in e.value.hint
    assert read_table(path, input_format="parquet").num_rows == 4


# --------------------------------------------------------------------------- JSON lines


def test_jsonl_bom_blank_lines_and_missing_keys(tmp_path):
    data = b'\xef\xbb\xbf{"a": 1, "s": "x"}\n\n{"a": 2.5}\n{"a": null, "s": "z"}\n'
    table = read_table(write_bytes(tmp_path, "j.jsonl", data))
    assert table.to_pydict() == {"a": [1.0, 2.5, None], "s": ["x", None, "z"]}


def test_jsonl_bad_line_is_named(tmp_path):
    data = b'{"a": 1}\n\n{"a": 2}\n{"a": \n'
    with pytest.raises(DataError, match=r"j\.jsonl: line 4"):
        read_table(write_bytes(tmp_path, "j.jsonl", data))


def test_jsonl_empty(tmp_path):
    with pytest.raises(DataError, match="empty"):
        read_table(write_bytes(tmp_path, "j.jsonl", b"\n"))


# --------------------------------------------------------------------------- Parquet


def test_truncated_parquet(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(TABLE, path)
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DataError, match="t.parquet: not a readable Parquet file"):
        read_table(path)


@pytest.mark.parametrize(("data", "message"), [(b"", "empty"), (b"garbage!" * 10, "Parquet")])
def test_empty_or_garbage_parquet(tmp_path, data, message):
    with pytest.raises(DataError, match=message):
        read_table(write_bytes(tmp_path, "g.parquet", data))


def test_parquet_without_rows(tmp_path):
    path = tmp_path / "e.parquet"
    pq.write_table(TABLE.slice(0, 0), path)
    with pytest.raises(DataError, match="no data rows"):
        read_table(path)


def test_parquet_duplicate_names(tmp_path):
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table([[1.0], [2.0]], names=["a", "a"]), path)
    with pytest.raises(DataError, match="duplicate column names: 'a'"):
        read_table(path)


def test_pandas_index_column_is_left_out(tmp_path):
    import pandas as pd

    path = tmp_path / "pd.parquet"
    pd.DataFrame({"a": [1.0, 2.0]}, index=[10, 20]).to_parquet(path)
    table = read_table(path)
    assert table.column_names == ["a"]
    assert table.schema.metadata is None


@pytest.fixture
def parquet_dir(tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    ints = pa.table({"a": pa.array([1, 2], pa.int64()), "b": ["x", "y"]})
    pq.write_table(ints, folder / "p0.parquet")
    pq.write_table(pa.table({"a": [3.5], "b": ["z"]}), folder / "p1.parquet")
    pq.write_table(pa.table({"a": [4.0, 5.0], "b": ["u", "v"]}), folder / "p2.parquet")
    (folder / "_SUCCESS").write_bytes(b"")
    return folder


def test_parquet_directory_with_differing_types(parquet_dir):
    table = read_table(parquet_dir)
    assert table.schema.field("a").type == pa.float64()
    assert sorted(table["a"].to_pylist()) == [1.0, 2.0, 3.5, 4.0, 5.0]


def test_parquet_glob(parquet_dir):
    table = read_table(str(parquet_dir / "p[12].parquet"))
    assert sorted(table["b"].to_pylist()) == ["u", "v", "z"]


def test_parquet_glob_without_match(tmp_path):
    with pytest.raises(DataError, match="no files match"):
        read_table(str(tmp_path / "*.parquet"))


def test_empty_parquet_directory(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no Parquet files"):
        read_table(tmp_path / "empty")


def test_parquet_directory_with_a_damaged_file(parquet_dir):
    (parquet_dir / "p3.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="p3.parquet"):
        read_table(parquet_dir)


def test_hive_partitions(tmp_path):
    for year in (2023, 2024):
        folder = tmp_path / "ds" / f"year={year}"
        folder.mkdir(parents=True)
        pq.write_table(pa.table({"v": [1.0, 2.0]}), folder / "part.parquet")
    table = read_table(tmp_path / "ds")
    assert sorted(table.column_names) == ["v", "year"]
    assert sorted(table["year"].to_pylist()) == [2023, 2023, 2024, 2024]


# --------------------------------------------------------------------------- stdin


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (b"a,b\n1,2\n", Format.csv),
        (b"\xef\xbb\xbfa;b\n1;2\n", Format.csv),
        (b"a\tb\n1\t2\n", Format.tsv),
        (b'{"a": 1, "b": 2}\n', Format.jsonl),
        (gzip.compress(b"a,b\n1,2\n"), Format.csv),
        (zstandard.ZstdCompressor().compress(b'{"a": 1, "b": 2}\n'), Format.jsonl),
        (parquet_bytes(pa.table({"a": [1.0], "b": [2.0]})), Format.parquet),
    ],
)
def test_stdin_is_sniffed(data, fmt):
    stream = iter_batches("-", stdin=stdin(data))
    assert stream.format is fmt
    assert stream.name == "<stdin>"
    assert pa.Table.from_batches(list(stream)).to_pydict() == {"a": [1.0], "b": [2.0]}
    assert read_table(None, stdin=stdin(data)).to_pydict() == {"a": [1.0], "b": [2.0]}


def test_empty_stdin():
    with pytest.raises(DataError, match="<stdin>: file is empty"):
        read_table("-", stdin=stdin(b""))


class CountingStdin(io.RawIOBase):
    """A pipe-like stdin that records how much has been read from it."""

    def __init__(self, data: bytes):
        self._data = io.BytesIO(data)
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def read(self, n=-1) -> bytes:
        out = self._data.read(n)
        self.consumed += len(out)
        return out


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_stdin_is_streamed_not_slurped(kind):
    n = 200_000
    if kind == "csv":
        data = b"a,b\n" + b"".join(b"%d,%d\n" % (i, i) for i in range(n))
    else:
        data = b"".join(b'{"a": %d, "b": %d}\n' % (i, i) for i in range(n))
    source = CountingStdin(data)
    stream = iter_batches("-", stdin=source, batch_rows=1000)
    first = next(stream)
    assert first.num_rows == 1000
    assert source.consumed < len(data) // 2
    rows = first.num_rows + sum(b.num_rows for b in stream)
    assert rows == n and source.consumed == len(data)


# --------------------------------------------------------------------------- streaming


@pytest.mark.parametrize("name", ["s.csv", "s.csv.gz", "s.tsv", "s.jsonl", "s.parquet"])
def test_iter_batches_matches_read_table(tmp_path, name):
    rng = np.random.default_rng(0)
    table = pa.table({"k": [f"k{i}" for i in range(5000)], "v": rng.normal(size=5000)})
    path = tmp_path / name
    if name.endswith(".parquet"):
        pq.write_table(table, path, row_group_size=700)
    else:
        with TableWriter(path) as out:
            out.write(table)
    stream = iter_batches(path, batch_rows=512)
    assert stream.schema.names == ["k", "v"]  # known before the first batch
    batches = list(stream)
    assert len(batches) >= 10
    assert all(0 < b.num_rows <= 512 for b in batches)
    assert stream.rows == 5000
    assert pa.Table.from_batches(batches).equals(read_table(path))


def test_iter_batches_parquet_dataset(parquet_dir):
    batches = list(iter_batches(parquet_dir, batch_rows=1))
    assert len(batches) == 5
    assert pa.Table.from_batches(batches).equals(read_table(parquet_dir))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
@pytest.mark.parametrize("name", ["c.csv", "c.parquet"])
def test_closing_a_stream_releases_the_file(tmp_path, name):
    path = tmp_path / name
    with TableWriter(path) as out:
        out.write(TABLE)
    before = len(os.listdir("/proc/self/fd"))
    with iter_batches(path) as stream:
        assert len(os.listdir("/proc/self/fd")) > before
    assert len(os.listdir("/proc/self/fd")) == before
    stream = iter_batches(path)
    next(stream)
    stream.close()
    assert len(os.listdir("/proc/self/fd")) == before


def test_batch_rows_must_be_positive(tmp_path):
    path = write_bytes(tmp_path, "a.csv", b"a\n1\n")
    with pytest.raises(ValueError, match="batch_rows"):
        iter_batches(path, batch_rows=0)


@pytest.mark.parametrize("group,batch,expected", [(700, 512, 350), (1024, 512, 512),
                                                  (1025, 512, 342), (300, 512, 512)])
def test_parquet_batches_tile_the_row_groups(tmp_path, group, batch, expected):
    # equal parts of each row group, none larger than asked: no batch glued from two groups
    table = pa.table({"v": np.arange(3000, dtype=np.float64)})
    path = tmp_path / "g.parquet"
    pq.write_table(table, path, row_group_size=group)
    sizes = [b.num_rows for b in iter_batches(path, batch_rows=batch)]
    assert max(sizes) == expected and sum(sizes) == 3000
    assert pa.Table.from_batches(list(iter_batches(path, batch_rows=batch))).equals(table)


@pytest.mark.parametrize("column,expected", [
    (pa.array([3, -7, 5], pa.int64()), 7),
    (pa.array([3, None, -9], pa.int64()), 9),  # nulls: the pyarrow.compute way
    (pa.chunked_array([[1, 2], [], [-2**63]], pa.int64()), 2**63),
    (pa.array([2**64 - 1, 0], pa.uint64()), 2**64 - 1),
    (pa.array([7, 1, 2, 3], pa.int8()).slice(1), 3),  # an offset into the buffer
    (pa.array([None, None], pa.int32()), 0),
])
def test_largest_magnitude_of_an_integer_column(column, expected):
    assert largest(column) == expected
