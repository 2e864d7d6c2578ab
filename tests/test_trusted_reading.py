"""Exported tables are read right or refused: types from every training row, the model's
schema at apply time, one set of missing-value tokens, CSV dialects, codes, identifiers and
dates (issue "Trusted on real files")."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import FAST_TRAIN, ok, run

from aecli.pipeline.modelfile import read_model

TRAIN_K1 = [*FAST_TRAIN, "-k", "1", "--seed", "0"]






def roles_of(model) -> dict:
    return read_model(model).info["roles"]


# -- a text column that is empty for its first 30,000 rows ---------------------------------------
@pytest.fixture(scope="module")
def late(tmp_path_factory):
    d = tmp_path_factory.mktemp("late")
    n = 32_000
    rng = np.random.default_rng(0)
    a = rng.normal(size=n)
    frame = pd.DataFrame({
        "a": a, "b": a * 2 + rng.normal(scale=0.1, size=n),
        "flag": [""] * 30_000 + list(rng.choice(["NO", "YES"], n - 30_000)),
    })
    frame.to_csv(d / "late.csv", index=False)
    frame.assign(flag=frame["flag"].replace("", None)).to_parquet(d / "late.parquet",
                                                                    index=False)
    return d


@pytest.mark.parametrize("stream", [False, True], ids=["in memory", "--stream"])
def test_a_late_starting_text_column_is_categorical(late, stream, tmp_path):
    model = tmp_path / "m.npz"
    r = ok("train", late / "late.csv", "-o", model, *TRAIN_K1, *(["--stream"] if stream else []))
    assert "categorical features (1, one-hot): flag" in " ".join(r.stderr.split())
    assert roles_of(model)["categorical"] == ["flag"]
    assert read_model(model).preparation.categorical[0].levels == ("NO", "YES", None)


def test_forcing_the_late_column_and_encoding_it_from_another_format(late, tmp_path):
    forced = tmp_path / "forced.npz"
    ok("train", late / "late.csv", "-o", forced, "--categorical", "flag", *TRAIN_K1)
    assert roles_of(forced)["categorical"] == ["flag"]
    # a model trained on the Parquet copy reads the CSV copy with its own schema
    model = tmp_path / "pq.npz"
    ok("train", late / "late.parquet", "-o", model, *TRAIN_K1)
    from_csv = ok("encode", model, late / "late.csv", "-q").stdout
    from_parquet = ok("encode", model, late / "late.parquet", "-q").stdout
    assert from_csv == from_parquet and len(from_csv.splitlines()) == 32_001


# -- one table, four formats ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def formats(tmp_path_factory):
    d = tmp_path_factory.mktemp("formats")
    n = 400
    rng = np.random.default_rng(1)
    x = rng.normal(size=n)
    frame = pd.DataFrame({
        "row_id": np.arange(n),
        "zip": rng.choice(["07114", "11371", "01001", "94110"], n),
        "code": rng.choice(["01", "02", "03", "X9"], n),
        "status": rng.choice(["NA", "open", "closed"], n),  # NA: missing in every format
        "day": pd.date_range("2020-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
        "x": x, "y": x * 3 + rng.normal(scale=0.2, size=n), "count": rng.integers(0, 9, n),
    })
    frame.to_csv(d / "t.csv", index=False)
    frame.to_csv(d / "t.tsv", index=False, sep="\t")
    frame.to_json(d / "t.jsonl", orient="records", lines=True)
    frame.to_parquet(d / "t.parquet", index=False)
    return d


def test_one_table_in_any_format_gets_the_same_roles_and_codes(formats, tmp_path):
    roles, codes = {}, {}
    for fmt in ("csv", "tsv", "jsonl", "parquet"):
        model = tmp_path / f"{fmt}.npz"
        ok("train", formats / f"t.{fmt}", "-o", model, *TRAIN_K1)
        roles[fmt] = roles_of(model)
        codes[fmt] = ok("encode", tmp_path / "csv.npz", formats / f"t.{fmt}", "-q").stdout
    assert all(r == roles["csv"] for r in roles.values()), roles
    r = roles["csv"]
    assert r["numeric"] == ["x", "y", "count"]
    assert r["categorical"] == ["zip", "code", "status"] and r["codes"] == ["zip"]
    assert r["identifiers"] == ["row_id"] and r["dates"] == ["day"]
    assert len(set(codes.values())) == 1  # one model, identical codes from every format
    levels = {c.name: c.levels for c in read_model(tmp_path / "csv.npz").preparation.categorical}
    assert levels["zip"] == ("01001", "07114", "11371", "94110")
    assert levels["status"] == ("closed", "open", None)


def test_the_same_rows_score_the_same_from_a_file_without_a_level(formats, tmp_path):
    model = tmp_path / "m.npz"
    ok("train", formats / "t.csv", "-o", model, *TRAIN_K1)
    frame = pd.read_csv(formats / "t.csv", dtype=str, keep_default_na=False)
    some = frame[frame["code"] != "X9"]
    some.to_csv(tmp_path / "some.csv", index=False)  # 01 alone would read as the number 1
    all_rows = json.loads(ok("score", model, formats / "t.csv", "--json", "-q").stdout)
    part = json.loads(ok("score", model, tmp_path / "some.csv", "--json", "-q").stdout)
    assert part["rows"] == len(some)
    assert part["flagged"] <= all_rows["flagged"] < 0.1 * all_rows["rows"]
    for fmt in ("jsonl", "parquet"):
        other = json.loads(ok("score", model, formats / f"t.{fmt}", "--json", "-q").stdout)
        assert other["flagged"] == all_rows["flagged"]


# -- European CSVs -------------------------------------------------------------------------------
def _european(tmp_path, n=300):
    rng = np.random.default_rng(2)
    x = rng.normal(size=n) * 10
    frame = pd.DataFrame({"temp": x, "rain": x * 0.5 + rng.normal(size=n),
                          "wind": np.abs(rng.normal(size=n)) * 3 + 1,
                          "station": rng.choice(["A", "B", "C"], n)})
    path = tmp_path / "eu.csv"
    frame.to_csv(path, sep=";", decimal=",", index=False)
    return path, frame


def test_a_european_csv_is_detected_said_and_read_as_numbers(tmp_path):
    path, frame = _european(tmp_path)
    model = tmp_path / "m.npz"
    r = ok("train", path, "-o", model, *TRAIN_K1)
    assert "read as ';'-separated, decimal comma (detected" in r.stderr
    assert roles_of(model)["numeric"] == ["temp", "rain", "wind"]
    assert roles_of(model)["categorical"] == ["station"]
    reading = read_model(model).info["reading"]  # stored: the dialect and the missing tokens
    assert reading["delimiter"] == ";" and reading["decimal"] == ","
    assert {"", "NA", "null", "None"} <= set(reading["missing_tokens"])
    shown = " ".join(ok("inspect", model).output.split())  # inspect says how it was read
    assert "read as csv delimiter ';', decimal comma" in shown
    frame.to_csv(tmp_path / "plain.csv", index=False)  # the same numbers, written plainly
    ok("train", tmp_path / "plain.csv", "-o", tmp_path / "plain.npz", *TRAIN_K1)
    np.testing.assert_allclose(read_model(model).preparation.scaler.center_,
                               read_model(tmp_path / "plain.npz").preparation.scaler.center_)
    ok("encode", model, path, "-q")  # the apply commands detect it too
    same = tmp_path / "given.npz"
    ok("train", path, "-o", same, "--delimiter", ";", "--decimal", ",", *TRAIN_K1)
    assert roles_of(same) == roles_of(model)


def test_numbers_under_the_other_decimal_convention_are_refused_not_text(tmp_path):
    path, _ = _european(tmp_path)
    r = run("train", path, "-o", tmp_path / "m.npz", "--decimal", ".", *TRAIN_K1)
    assert r.exit_code == 2 and "decimal comma" in r.stderr and "--decimal ," in r.stderr
    assert not (tmp_path / "m.npz").exists()


# -- codes ---------------------------------------------------------------------------------------
def test_codes_are_categorical_and_kept_columns_are_written_as_read(tmp_path):
    n = 4000
    rng = np.random.default_rng(3)
    x = rng.normal(size=n)
    # a ZIP column whose first 3,000 rows have no leading zero, and a FIPS feature
    zips = ["11371"] * 3000 + list(rng.choice(["07114", "11371"], n - 3000))
    lines = ["zip,fips,year,x,y"] + [
        f"{z},{'01001' if i % 2 else '01003'},{2000 + i % 20},{x[i]:.6f},{2 * x[i]:.6f}"
        for i, z in enumerate(zips)]
    path = tmp_path / "c.csv"
    path.write_text("\n".join(lines) + "\n")
    model = tmp_path / "m.npz"
    r = ok("train", path, "-o", model, "-k", "1", "--epochs", "3", "--hidden", "8")
    roles = roles_of(model)
    assert roles["categorical"] == ["zip", "fips"] and "year" in roles["numeric"]
    assert "codes, read as text (digits with leading zeros): zip, fips" in r.stderr
    out = tmp_path / "codes.csv"
    ok("encode", model, path, "--keep", "zip,fips,year", "-o", out, "-q")
    got = pd.read_csv(out, dtype=str)
    assert got["zip"].tolist() == zips and got["fips"].iloc[0] == "01003"
    assert got["year"].iloc[:3].tolist() == ["2000", "2001", "2002"]  # no "2000.0"
    pq_out = tmp_path / "codes.parquet"
    ok("encode", model, path, "--keep", "zip,year", "-o", pq_out, "-q")
    kept = pq.read_table(pq_out)
    assert kept.schema.field("zip").type == pa.string()
    assert kept.schema.field("year").type == pa.int64()  # whole numbers stay integers


def test_a_parquet_text_column_of_codes_is_not_a_number(tmp_path):
    n = 200
    rng = np.random.default_rng(4)
    table = pa.table({"precinct": rng.choice(["01", "02", "10"], n).tolist(),
                      "x": rng.normal(size=n), "y": rng.normal(size=n)})
    pq.write_table(table, tmp_path / "p.parquet")
    ok("train", tmp_path / "p.parquet", "-o", tmp_path / "m.npz", *TRAIN_K1)
    assert roles_of(tmp_path / "m.npz")["categorical"] == ["precinct"]


# -- identifiers, measures and dates -------------------------------------------------------------
def test_a_small_table_of_all_distinct_measures_keeps_them_as_features(tmp_path):
    rng = np.random.default_rng(5)
    n = 50
    pop = rng.integers(500_000, 40_000_000, n)
    frame = pd.DataFrame({"State": [f"State {i}" for i in range(n)], "Population": pop,
                          "Income": rng.integers(30_000, 90_000, n),
                          "Area": rng.normal(60_000, 20_000, n).round(1),
                          "rownames": np.arange(1, n + 1)})
    frame.to_csv(tmp_path / "states.csv", index=False)
    model = tmp_path / "m.npz"
    r = ok("train", tmp_path / "states.csv", "-o", model, *TRAIN_K1)
    roles = roles_of(model)
    assert roles["numeric"] == ["Population", "Income", "Area"]
    assert roles["identifiers"] == ["State", "rownames"]
    assert "identifiers, not used: State, rownames" in " ".join(r.stderr.split())


def test_id_names_and_row_numbers_are_identifiers_shuffled_numbers_are_not(tmp_path):
    rng = np.random.default_rng(6)
    n = 100
    frame = pd.DataFrame({"customer_id": rng.permutation(n) + 1000,
                          "orderId": rng.permutation(n), "serial": np.arange(n) + 7,
                          "weight": rng.permutation(n) * 1.0, "x": rng.normal(size=n)})
    frame.to_csv(tmp_path / "ids.csv", index=False)
    model = tmp_path / "m.npz"
    ok("train", tmp_path / "ids.csv", "-o", model, *TRAIN_K1)
    roles = roles_of(model)
    assert roles["identifiers"] == ["customer_id", "orderId", "serial"]
    assert roles["numeric"] == ["weight", "x"]


def test_iso_dates_and_timestamps_in_text_are_dates_never_advised_categorical(tmp_path):
    rng = np.random.default_rng(7)
    n = 300
    frame = pd.DataFrame({
        "date": pd.date_range("1967-07-01", periods=n, freq="D").strftime("%Y-%m-%d"),
        "when": pd.date_range("2013-01-01 05:00:00", periods=n, freq="h").strftime(
            "%Y-%m-%d %H:%M:%S"),
        "x": rng.normal(size=n), "y": rng.normal(size=n)})
    frame.to_csv(tmp_path / "d.csv", index=False)
    model = tmp_path / "m.npz"
    r = ok("train", tmp_path / "d.csv", "-o", model, *TRAIN_K1)
    assert roles_of(model)["dates"] == ["date", "when"]
    assert "not used: dates 2 date, when" in " ".join(ok("inspect", model).output.split())
    assert "dates, not used: date, when" in r.stderr
    assert "--categorical" not in r.stderr.split("dates, not used")[1].splitlines()[0]


# -- stdin is typed from every row too ----------------------------------------------------------
def test_stdin_is_surveyed_whole_and_named_as_stdin(late, tmp_path):
    data = (late / "late.csv").read_text()
    model = tmp_path / "m.npz"
    ok("train", "-", "-o", model, *TRAIN_K1, input=data)
    assert roles_of(model)["categorical"] == ["flag"]
    r = run("train", "-o", tmp_path / "n.npz", "--columns", "a,zz", *TRAIN_K1, input=data)
    assert r.exit_code == 2 and "<stdin>" in r.stderr


def test_64_bit_ids_are_identifiers_from_csv_and_parquet_alike(tmp_path):
    rng = np.random.default_rng(8)
    n = 60
    ids = (2**60 + rng.permutation(n) * 7919).astype(np.int64)  # beyond 2**53: no float holds it
    frame = pd.DataFrame({"account": ids, "x": rng.normal(size=n), "y": rng.normal(size=n)})
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame.to_parquet(tmp_path / "a.parquet", index=False)
    for fmt in ("csv", "parquet"):
        model = tmp_path / f"{fmt}.npz"
        ok("train", tmp_path / f"a.{fmt}", "-o", model, *TRAIN_K1)
        assert roles_of(model)["identifiers"] == ["account"], fmt
    out = tmp_path / "kept.csv"
    ok("encode", tmp_path / "csv.npz", tmp_path / "a.csv", "--keep", "account", "-o", out, "-q")
    assert pd.read_csv(out, dtype=str)["account"].tolist() == [str(i) for i in ids]


def test_thousands_separators_are_not_taken_for_a_decimal_comma(tmp_path):
    rng = np.random.default_rng(9)
    n = 200
    lines = ["price\tx\ty"] + [f"{rng.integers(1, 99)},{rng.integers(0, 1000):03d}\t"
                               f"{rng.normal():.4f}\t{rng.normal():.4f}" for _ in range(n)]
    (tmp_path / "k.tsv").write_text("\n".join(lines) + "\n")
    r = run("train", tmp_path / "k.tsv", "-o", tmp_path / "m.npz", *TRAIN_K1)
    # 12,500 could be twelve and a half or twelve thousand five hundred: refused, not guessed
    assert r.exit_code == 2 and "thousands" in r.stderr and "--decimal ," in r.stderr
    assert "decimal comma (detected" not in r.stderr  # the dialect was not guessed


def test_dates_in_a_spreadsheets_locale_are_dates_too(tmp_path):
    rng = np.random.default_rng(10)
    n = 120
    days = pd.date_range("2024-01-01", periods=n, freq="D")
    frame = pd.DataFrame({"eu": days.strftime("%d.%m.%Y"), "us": days.strftime("%m/%d/%Y"),
                          "x": rng.normal(size=n), "y": rng.normal(size=n)})
    frame.to_csv(tmp_path / "d.csv", index=False)
    model = tmp_path / "m.npz"
    ok("train", tmp_path / "d.csv", "-o", model, *TRAIN_K1)
    assert roles_of(model)["dates"] == ["eu", "us"]


def test_json_lines_are_typed_from_every_line(tmp_path):
    rng = np.random.default_rng(11)
    n = 30_000
    x = rng.normal(size=n)
    lines = [json.dumps({"x": float(x[i]), "y": float(2 * x[i]), "meta": {"k": i % 3},
                         "flag": None if i < 25_000 else ("NO", "YES")[i % 2]})
             for i in range(n)]
    (tmp_path / "t.jsonl").write_text("\n".join(lines) + "\n")
    model = tmp_path / "m.npz"
    r = ok("train", tmp_path / "t.jsonl", "-o", model, *TRAIN_K1)
    roles = roles_of(model)
    assert roles["categorical"] == ["flag"] and roles["numeric"] == ["x", "y"]
    assert "meta" in roles["other"] and "not used: meta" in r.stderr


def test_decimal_commas_past_the_first_rows_are_named_with_the_option_that_reads_them(tmp_path):
    lines = ["a;b;c"] + [f"{i % 9};{i % 7};{i % 5}" for i in range(200_000)] + [
        f"{i % 9},5;{i % 7};{i % 5}" for i in range(50)]
    (tmp_path / "late.csv").write_text("\n".join(lines) + "\n")
    r = run("train", tmp_path / "late.csv", "-o", tmp_path / "m.npz", *TRAIN_K1)
    assert r.exit_code == 2 and "'0,5'" in r.stderr and "--decimal ," in r.stderr
    ok("train", tmp_path / "late.csv", "-o", tmp_path / "m.npz", "--decimal", ",", *TRAIN_K1)


def test_parts_of_json_lines_in_different_types_are_surveyed_part_by_part():
    # JSON lines are surveyed in each part's own types: a key null in one part of a large
    # file and text in the next must not be joined into one table
    from aecli.io.survey import Survey
    from aecli.io.surveyed import _in_parts

    first = pa.record_batch({"x": [1.0, 2.0], "flag": pa.nulls(2)})
    later = pa.record_batch({"x": [3.0], "flag": ["NO"]})
    parts = list(_in_parts([first, later], rows=1 << 18))
    assert [p.num_rows for p in parts] == [2, 1]
    survey = Survey.of(parts)
    assert survey.columns["flag"].kind == "text" and survey.columns["flag"].present == 1
