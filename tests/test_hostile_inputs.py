"""Hostile input: every bad file, table or option ends in a clear message and its exit code.

A clear message says what was wrong, where (file, column, row) and what to do; it never shows a
traceback unless ``--debug`` asks for one, and a failed ``train`` writes no model. Exit code 2 is
bad input or usage (README, "Exit codes and failures").
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from conftest import FAST_TRAIN, run
from typer.testing import CliRunner

from aecli.cli.app import app

ROWS = "".join(f"{i % 17},{i * 2 % 7},{i % 3}\n" for i in range(30))  # 30 rows of a, b, c
TRAIN_K1 = [*FAST_TRAIN, "-k", "1"]




def assert_clean_failure(result, code: int, *needles: str) -> str:
    """Exit ``code``, no traceback, no internal error, and every needle in the output."""
    text = result.output
    assert result.exit_code == code, text
    assert "Traceback" not in text, text
    assert "internal error" not in text, text
    assert result.exception is None or isinstance(result.exception, SystemExit), text
    for needle in needles:
        assert needle in text, f"{needle!r} not in:\n{text}"
    return text


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def features_of(model: Path) -> list[str]:
    result = run("inspect", model, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["features"]


@pytest.fixture
def model(tmp_path) -> Path:
    """A small model over columns a, b, c."""
    path = tmp_path / "model.npz"
    data = write(tmp_path, "train.csv", "a,b,c\n" + ROWS)
    result = run("train", data, "-o", path, "-q", *TRAIN_K1)
    assert result.exit_code == 0, result.output
    return path


# -- train: bad tables ------------------------------------------------------------------------
BAD_TABLES = {
    # id: (file name, content, extra args, needles: what / where / what to do)
    "empty file": ("empty.csv", "", [], ["empty.csv", "empty", "header"]),
    "blank lines only": ("blank.csv", "\n\n  \n", [], ["blank.csv", "empty"]),
    "header only": ("header.csv", "a,b,c\n", [], ["header.csv", "no data rows", "give rows"]),
    "one row": ("one.csv", "a,b,c\n1,2,3\n", [], ["one.csv", "1 row", "at least 2"]),
    "one column, k=2": ("col.csv", "a\n" + "".join(f"{i % 7}\n" for i in range(20)), ["-k", "2"],
                        ["k=2", "needs more than 1 feature column", "more columns"]),
    "non-numeric column named": (
        "text.csv", "a,b,s\n" + "".join(f"{i},{i % 5},x{i}\n" for i in range(20)),
        ["--columns", "a,s", "--max-levels", "5"],
        ["text.csv", "'s'", "not numeric", "holds", "'x0'", "--max-levels 5", "--exclude s"]),
    "mixed column named": (
        "mixed.csv", "a,b,c\n" + ROWS + "1,2,foo\n", ["--columns", "a,b,c"],
        ["mixed.csv", "'c'", "line 32 (row 31)", "'foo'"]),
    "missing values": (
        "nan.csv", "a,b,c\n" + ROWS + "1,NaN,\n4,NA,1\n", [],
        ["nan.csv", "column 'b' has 2", "rows 31, 32", "column 'c' has 1", "--missing drop"]),
    "infinity": ("inf.csv", "a,b,c\n" + ROWS + "1,inf,2\n", [],
                 ["inf.csv", "column 'b'", "infinite", "row 31"]),
    "-infinity": ("ninf.csv", "a,b,c\n" + ROWS + "1,2,-inf\n", [],
                  ["ninf.csv", "column 'c'", "infinite", "row 31"]),
    "overflows float32 unscaled": (
        "big.csv", "a,b,c\n" + ROWS + "1,1e39,2\n", ["--scale", "none"],
        ["big.csv", "column 'b'", "row 31", "float32", "--dtype float64"]),
    "overflows float64 when parsed": (
        "huge.csv", "a,b,c\n" + ROWS + "1,1e400,2\n", [], ["huge.csv", "column 'b'", "row 31"]),
    "duplicate column names": ("dup.csv", "a,a,c\n" + ROWS, [], ["dup.csv", "duplicate", "'a'"]),
    "empty column name": ("noname.csv", "a,,c\n" + ROWS, [], ["noname.csv", "column 2",
                                                              "no name"]),
    "ragged row": ("ragged.csv", "a,b,c\n" + ROWS + "1,2\n", [],
                   ["ragged.csv", "line 32", "expected 3 fields", "found 2"]),
    "binary garbage": ("garbage.csv", bytes(range(256)) * 8, [], ["garbage.csv", "UTF-8"]),
    "latin-1 text": ("latin1.csv", b"a,b,c\n" + "é,1,2\n".encode("latin-1") * 20, [],
                     ["latin1.csv", "UTF-8", "iconv"]),
    "no numeric column": ("words.csv", "a,b\n" + "x,y\n" * 10 + "z,w\n" * 10, [],
                          ["words.csv", "no numeric", "categorical", "a, b", "--columns"]),
    "constant columns only": ("same.csv", "a,b\n" + "x,1\n" * 10, [],
                              ["same.csv", "no column can be a feature", "constant"]),
    "latent > features": ("k.csv", "a,b,c\n" + ROWS, ["-k", "5"],
                          ["k=5", "number of features (3)"]),
    "--columns names absent column": (
        "abs.csv", "a,b,c\n" + ROWS, ["--columns", "a,zz"], ["abs.csv", "'zz'", "not in the input",
                                                             "a, b, c"]),
    "--columns near miss": ("near.csv", "a,b,price\n" + ROWS, ["--columns", "a,Price"],
                            ["'Price'", "did you mean 'price'"]),
    "--exclude absent column": ("exc.csv", "a,b,c\n" + ROWS, ["--exclude", "zz"], ["'zz'"]),
    "--exclude everything": ("all.csv", "a,b,c\n" + ROWS, ["--exclude", "a,b,c"],
                             ["no column can be a feature", "excluded: a, b, c"]),
    "all rows dropped": ("drop.csv", "a,b,c\n1,,2\n3,4,\n5,6,7\n", ["--missing", "drop"],
                         ["drop.csv", "1 row(s)", "after dropping 2", "--missing impute"]),
    "nothing to impute from": (
        "imp.csv", "a,b,c\n" + "".join(f"{i},,{i % 3}\n" for i in range(10)),
        ["--missing", "impute", "--columns", "a,b,c"],  # named: kept, and then refused
        ["imp.csv", "column 'b'", "no values to impute", "--exclude b"]),
    "unknown extension": ("data.xlsx", "a,b\n1,2\n", [], ["data.xlsx", "--input-format"]),
    "jsonl that is not JSON": ("bad.jsonl", '{"a": 1}\n{"a": \n', [], ["bad.jsonl", "JSON"]),
}


@pytest.mark.parametrize("case", BAD_TABLES.values(), ids=list(BAD_TABLES))
def test_train_on_a_bad_table_fails_clearly_and_writes_nothing(tmp_path, case):
    name, content, extra, needles = case
    data = write(tmp_path, name, content)
    out = tmp_path / "out.npz"
    result = run("train", data, "-o", out, *TRAIN_K1, *extra)
    assert_clean_failure(result, 2, *needles)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary files


def test_a_very_long_row_is_read(tmp_path):
    data = write(tmp_path, "long.csv", "a,b,note\n" + "".join(
        f"{i},{i % 7},x\n" for i in range(100)) + "5,6," + "y" * 5_000_000 + "\n7,8,z\n")
    out = tmp_path / "m.npz"
    result = run("train", data, "-o", out, "-q", *TRAIN_K1, "--categorical", "none")
    assert result.exit_code == 0, result.output
    assert features_of(out) == ["a", "b"]


def test_missing_input_file(tmp_path):
    out = tmp_path / "out.npz"
    result = run("train", tmp_path / "nope.csv", "-o", out)
    assert_clean_failure(result, 2, "nope.csv", "no such file", "check the path")
    assert not out.exists()


def test_directory_as_csv_input(tmp_path):
    (tmp_path / "dir.csv").mkdir()
    assert_clean_failure(run("train", tmp_path / "dir.csv", "-o", tmp_path / "m.npz"), 2,
                         "dir.csv")


def test_truncated_parquet(tmp_path):
    whole = tmp_path / "whole.parquet"
    pq.write_table(pa.table({"a": list(range(100)), "b": [float(i) for i in range(100)]}), whole)
    data = whole.read_bytes()
    for cut in (len(data) // 2, len(data) - 3, 8):
        part = write(tmp_path, "cut.parquet", data[:cut])
        result = run("train", part, "-o", tmp_path / "m.npz", *TRAIN_K1)
        assert_clean_failure(result, 2, "cut.parquet", "Parquet")
    assert not (tmp_path / "m.npz").exists()


def test_text_that_claims_to_be_parquet(tmp_path):
    data = write(tmp_path, "fake.parquet", "a,b\n1,2\n")
    assert_clean_failure(run("train", data, "-o", tmp_path / "m.npz"), 2, "fake.parquet",
                         "Parquet")


def test_empty_stdin(tmp_path):
    out = tmp_path / "never.npz"
    assert_clean_failure(run("train", "-", "-o", out, input=b""), 2, "<stdin>", "empty")
    assert not out.exists()


def test_garbage_on_stdin(tmp_path):
    result = run("train", "-o", tmp_path / "m.npz", input=b"\x00\xff\xfe" * 100)
    assert_clean_failure(result, 2, "<stdin>", "UTF-8")


# -- train: awkward tables that are fine --------------------------------------------------------
GOOD_TABLES = {
    "unicode names": ("uni.csv", "é,日本,c\n" + ROWS, ["é", "日本", "c"]),
    "markup-like names": ("mk.csv", "[/],[bold]x,c\n" + ROWS, ["[/]", "[bold]x", "c"]),
    "byte order mark": ("bom.csv", "\ufeffa,b,c\n" + ROWS, ["a", "b", "c"]),
    "semicolons": ("semi.csv", "a;b;c\n" + ROWS.replace(",", ";"), ["a", "b", "c"]),
    "tabs in .csv": ("tab.csv", "a\tb\tc\n" + ROWS.replace(",", "\t"), ["a", "b", "c"]),
    "quoted numbers": ("q.csv", '"a","b","c"\n' + "".join(
        f'"{i % 7}","{i % 5}",{i % 3}\n' for i in range(20)), ["a", "b", "c"]),
    "CRLF line ends": ("crlf.csv", ("a,b,c\n" + ROWS).replace("\n", "\r\n"), ["a", "b", "c"]),
}


@pytest.mark.parametrize("case", GOOD_TABLES.values(), ids=list(GOOD_TABLES))
def test_awkward_but_valid_tables_train(tmp_path, case):
    name, content, features = case
    data = write(tmp_path, name, content)
    out = tmp_path / "m.npz"
    result = run("train", data, "-o", out, "-q", *TRAIN_K1)
    assert result.exit_code == 0, result.output
    assert features_of(out) == features


def test_enormous_values_are_scaled_not_overflowed(tmp_path):
    # Squares of 1e300 overflow float64: the scaler must still find a finite mean and spread,
    # and codes must come out finite.
    data = write(tmp_path, "huge.csv", "a,b,c\n" + "".join(
        f"{i},{(i % 7) * 1e300:g},{i % 3}\n" for i in range(30)))
    out = tmp_path / "m.npz"
    result = run("train", data, "-o", out, "-q", *TRAIN_K1)
    assert result.exit_code == 0, result.output
    codes = run("encode", out, data)
    assert codes.exit_code == 0, codes.output
    values = [float(v) for line in codes.stdout.splitlines()[1:] for v in line.split(",")]
    assert len(values) == 30 and all(abs(v) < 1e6 for v in values)


def test_each_column_role_is_named_once_with_how_to_change_it(tmp_path):
    data = write(tmp_path, "t.csv", "id,a,b,kind,when\n" + "".join(
        f"r{i},{i % 6},{i % 4},{'xy'[i % 2]},2024-01-{i + 1:02d}\n" for i in range(20)))
    out = tmp_path / "m.npz"
    result = run("train", data, "-o", out, *TRAIN_K1)
    assert result.exit_code == 0, result.output
    assert result.stderr.count("numeric features (2): a, b") == 1, result.stderr
    assert result.stderr.count("categorical features (1, one-hot): kind") == 1
    assert "identifiers, not used: id" in result.stderr
    assert "dates, not used: when" in result.stderr
    assert "--columns" in result.stderr and "--categorical none" in result.stderr
    assert features_of(out) == ["a", "b", "kind"]


# -- encode / score / reconstruct: model and data disagree --------------------------------------
@pytest.mark.parametrize("command", ["encode", "reconstruct", "score"])
def test_data_missing_a_model_column_is_named(tmp_path, model, command):
    data = write(tmp_path, "other.csv", "a,b,x\n" + ROWS)
    result = run(command, model, data)
    assert_clean_failure(result, 2, "other.csv", "the model's column 'c'", "not in the input")
    assert result.stdout == ""


def test_data_missing_several_model_columns(tmp_path, model):
    data = write(tmp_path, "other.csv", "a,y,x\n" + ROWS)
    assert_clean_failure(run("encode", model, data), 2, "'b', 'c'", "aecli inspect")


def test_extra_and_reordered_columns_are_fine(tmp_path, model):
    data = write(tmp_path, "more.csv", "c,extra,a,b\n" + "".join(
        f"{i % 3},zz,{i},{i * 2 % 7}\n" for i in range(30)))
    result = run("encode", model, data)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "z1"


APPLY_CASES = {
    "missing value": ("1,,2\n", ["column 'b' has 1 missing value", "row 31", "--missing"]),
    "infinity": ("1,inf,2\n", ["column 'b'", "infinite", "row 31"]),
    "text in a number column": ("1,x,2\n", ["column 'b'", "row 31", "'x'"]),
    "too large for the model": ("1,1e300,2\n", ["column 'b'", "row 31", "too large"]),
}


@pytest.mark.parametrize("command", ["encode", "score"])
@pytest.mark.parametrize("case", APPLY_CASES.values(), ids=list(APPLY_CASES))
def test_bad_values_at_apply_time_name_file_column_row(tmp_path, model, command, case):
    tail, needles = case
    data = write(tmp_path, "new.csv", "a,b,c\n" + ROWS + tail)
    out = tmp_path / "out.csv"
    result = run(command, model, data, "-o", out)
    assert_clean_failure(result, 2, "new.csv", *needles)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_keep_names_absent_column(tmp_path, model):
    data = write(tmp_path, "d.csv", "a,b,c\n" + ROWS)
    assert_clean_failure(run("encode", model, data, "--keep", "nope"), 2, "--keep", "nope")


# -- every option given an out-of-range value ---------------------------------------------------
TRAIN_OPTIONS = [
    (["--epochs", "0"], "--epochs"),
    (["--epochs", "x"], "--epochs"),
    (["--lr", "-1"], "--lr"),
    (["--lr", "0"], "lr must be"),
    (["--lr", "nan"], "--lr"),
    (["--lr", "inf"], "--lr"),
    (["--noise", "inf"], "--noise"),
    (["--weight-decay", "nan"], "--weight-decay"),
    (["--contamination", "nan"], "--contamination"),
    (["--dropout", "1.5"], "--dropout"),
    (["--dropout", "-0.1"], "--dropout"),
    (["--validation", "2"], "--validation"),
    (["--batch-size", "0"], "--batch-size"),
    (["--hidden", "0,a"], "--hidden"),
    (["--hidden", "-3"], "--hidden"),
    (["--activation", "bogus"], "--activation"),
    (["--output-activation", "bogus"], "--output-activation"),
    (["--latent-activation", "bogus"], "--latent-activation"),
    (["--optimizer", "bogus"], "--optimizer"),
    (["--dtype", "float16"], "float16"),
    (["--threads", "0"], "--threads"),
    (["--contamination", "0.9"], "--contamination"),
    (["--contamination", "0"], "contamination"),
    (["-k", "0"], "--latent"),
    (["-k", "two"], "--latent"),
    (["--patience", "-1"], "--patience"),
    (["--noise", "-1"], "--noise"),
    (["--sparsity", "-1"], "--sparsity"),
    (["--weight-decay", "-1"], "--weight-decay"),
    (["--seed", "-1"], "--seed"),
    (["--missing", "bogus"], "--missing"),
    (["--scale", "bogus"], "--scale"),
    (["--input-format", "xls"], "--input-format"),
    (["--no-such-option"], "--no-such-option"),
]


@pytest.mark.parametrize("args,needle", TRAIN_OPTIONS, ids=[" ".join(a) for a, _ in TRAIN_OPTIONS])
def test_train_option_out_of_range(tmp_path, args, needle):
    data = write(tmp_path, "d.csv", "a,b,c\n" + ROWS)
    out = tmp_path / "m.npz"
    result = run("train", data, "-o", out, "--epochs", "2", *args)
    assert_clean_failure(result, 2, needle)
    assert not out.exists()


OTHER_OPTIONS = [
    (["compare-pca", "{data}", "-k", "0"], "--latent"),
    (["compare-pca", "{data}", "-k", "a,b"], "--latent"),
    (["compare-pca", "{data}", "-k", "9", "--epochs", "1"], "k=9"),
    (["compare-pca", "{data}", "--validation", "1.5"], "--validation"),
    (["encode", "{model}", "{data}", "--format", "xls"], "--format"),
    (["encode", "{model}", "{data}", "--threads", "0"], "--threads"),
    (["score", "{model}", "{data}", "--top", "0"], "--top"),
    (["score", "{model}", "{data}", "--threshold", "-1"], "--threshold"),
    (["score", "{model}", "{data}", "--threshold", "nan"], "--threshold"),
    (["reconstruct", "{model}", "{data}", "--top", "-2"], "--top"),
    (["inspect"], "MODEL"),
    (["encode"], "MODEL"),
]


@pytest.mark.parametrize("args,needle", OTHER_OPTIONS,
                         ids=[" ".join(a) for a, _ in OTHER_OPTIONS])
def test_other_commands_reject_bad_options(tmp_path, model, args, needle):
    data = write(tmp_path, "d.csv", "a,b,c\n" + ROWS)
    argv = [a.format(data=data, model=model) for a in args]
    assert_clean_failure(run(*argv), 2, needle)


def test_compare_pca_names_file_column_and_row(tmp_path):
    data = write(tmp_path, "gaps.csv", "a,b,c\n" + ROWS + "4,,6\n")
    assert_clean_failure(run("compare-pca", data, "-k", "1", "--epochs", "1"), 2,
                         "gaps.csv", "column 'b' has 1 missing value", "row 31", "--missing")


# -- --debug ------------------------------------------------------------------------------------
def test_debug_shows_the_traceback_and_keeps_the_exit_code(tmp_path):
    data = write(tmp_path, "one.csv", "a,b,c\n1,2,3\n")
    quiet = run("train", data, "-o", tmp_path / "m.npz")
    loud = run("train", data, "-o", tmp_path / "m.npz", "--debug")
    assert "Traceback" not in quiet.output
    assert "Traceback" in loud.output
    assert quiet.exit_code == loud.exit_code == 2


def test_messages_quoting_markup_are_printed_verbatim(tmp_path):
    data = write(tmp_path, "d.csv", "a,b,c\n" + ROWS)
    result = run("train", data, "-o", tmp_path / "m.npz", "--columns", "a,[/]x,[bold]")
    text = assert_clean_failure(result, 2, "'[/]x'")
    assert "MarkupError" not in text


def test_reports_render_markup_like_column_names(tmp_path):
    data = write(tmp_path, "mk.csv", "[/],[bold]x,c\n" + ROWS)
    model = tmp_path / "m.npz"
    assert run("train", data, "-o", model, "-q", *TRAIN_K1).exit_code == 0
    for argv in (["inspect", model], ["score", model, data], ["reconstruct", model, data]):
        result = run(*argv)
        assert result.exit_code == 0, result.output
        assert "[/]" in result.output


def test_cwd_is_untouched_by_failures(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "one.csv", "a,b,c\n1,2,3\n")
    run("train", "one.csv", "-o", "m.npz")
    run("encode", "missing.npz", "one.csv", "-o", "codes.csv")
    assert sorted(os.listdir(tmp_path)) == ["one.csv"]


@pytest.mark.parametrize("missing", ["error", "impute", "drop"])
def test_a_column_empty_in_every_row_is_left_out_with_a_notice(tmp_path, missing):
    data = tmp_path / "imp.csv"
    data.write_text("a,b,c\n" + "".join(f"{i % 9},,{i % 3}\n" for i in range(30)))
    r = CliRunner().invoke(app, ["train", str(data), "-o", str(tmp_path / "m.npz"), "-k", "1",
                                 "--epochs", "2", "--missing", missing])
    assert r.exit_code == 0, r.output
    assert "empty in every row, so not used: b" in r.stderr
    from aecli.pipeline.modelfile import read_model

    assert read_model(tmp_path / "m.npz").features == ["a", "c"]
    data.write_text("a,b\n" + "".join(",\n" for _ in range(5)))
    r = CliRunner().invoke(app, ["train", str(data), "-o", str(tmp_path / "n.npz")])
    assert r.exit_code == 2 and "no column can be a feature" in r.stderr
    assert "empty in every row, so not used: a, b" in r.stderr


@pytest.fixture(scope="module")
def stray(tmp_path_factory):
    """200,000 rows whose column c holds one word at row 150,001, far past the first rows
    that fix the column types."""
    path = tmp_path_factory.mktemp("stray") / "stray.csv"
    lines = [f"{i % 97},{i * 7 % 13}.5,{'oops' if i == 150_000 else i % 5}\n"
             for i in range(200_000)]
    path.write_text("a,b,c\n" + "".join(lines))
    return path


def test_a_stray_value_in_a_column_no_one_uses_stops_nothing(stray, tmp_path):
    model = tmp_path / "m.npz"
    result = run("train", stray, "-o", model, "--exclude", "c", *TRAIN_K1, "-q")
    assert result.exit_code == 0, result.output
    for command in ("encode", "score", "reconstruct"):
        result = run(command, model, stray, "-o", tmp_path / f"{command}.parquet", "--keep", "c")
        # kept, its first rows were whole numbers, so a typed output would make it an integer
        # column: the stray cannot be one, and aecli never changes a kept value
        assert result.exit_code == 2, result.output
        assert "pass-through column 'c'" in result.stderr and "'oops'" in result.stderr
        assert "-o out.csv" in result.stderr
        assert not (tmp_path / f"{command}.parquet").exists()
    result = run("encode", model, stray, "-o", tmp_path / "kept.csv", "--keep", "c")
    assert result.exit_code == 0, result.output  # as text, every kept cell is as written
    kept = pa_csv.read_csv(tmp_path / "kept.csv", convert_options=pa_csv.ConvertOptions(
        column_types={"c": pa.string()})).column("c")
    assert kept[150_000].as_py() == "oops" and kept[0].as_py() == "0" and kept.null_count == 0
    result = run("encode", model, stray, "-o", tmp_path / "plain.csv")  # not kept: untouched
    assert result.exit_code == 0 and "note" not in result.stderr


def test_a_stray_value_in_a_feature_says_how_to_read_it_as_missing(stray, tmp_path):
    model = tmp_path / "m.npz"
    result = run("train", stray, "-o", model, *TRAIN_K1)
    text = assert_clean_failure(result, 2, "line 150002", "column 'c'", "'oops'",
                                "--bad-values missing")
    assert not model.exists() and "--exclude" in text
    # the advice, as printed, then the next one
    result = run("train", stray, "-o", model, *TRAIN_K1, "--bad-values", "missing")
    assert_clean_failure(result, 2, "column 'c' has 1 missing value (row 150001)",
                         "--missing impute")
    result = run("train", stray, "-o", model, *TRAIN_K1, "--bad-values", "missing",
                 "--missing", "impute", "-q")
    assert result.exit_code == 0, result.output
    result = run("score", model, stray, "--json", "-q")  # the model keeps both settings
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["cells_imputed"] == 1
    result = run("score", model, stray, "--bad-values", "error", "-q")
    assert_clean_failure(result, 2, "'oops'")
