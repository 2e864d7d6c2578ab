"""Every command driven in-process with Typer's ``CliRunner``: streams, formats, exit codes.

``CliRunner`` keeps stdout and stderr apart (``result.stdout``, ``result.stderr``), so each test
checks both: data on stdout only, everything for people on stderr. The model is trained once
per session (``cli_files`` in conftest.py) with a few epochs: these tests check the plumbing,
not the model's quality.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import FAST_TRAIN, ok, run
from typer.main import get_command

from aecli import __version__
from aecli.cli import app
from aecli.pipeline import modelfile

COMMANDS = ["train", "encode", "reconstruct", "score", "compare-pca", "inspect", "export",
            "drift"]
PIXELS = [f"p{j:02d}" for j in range(64)]


def _varying(frame: pd.DataFrame) -> list[str]:
    """The pixels that are not constant: the features a model of ``frame`` uses."""
    return [c for c in PIXELS if frame[c].nunique() > 1]


_DIGITS = pd.read_csv(Path(__file__).resolve().parent.parent / "sample_data" / "digits.csv")
FEATURES = _varying(_DIGITS)  # the session's model, trained on every digit
SMALL_FEATURES = _varying(_DIGITS.head(40))  # models trained on the first 40 rows
EPOCHS, HIDDEN = int(FAST_TRAIN[1]), int(FAST_TRAIN[3])  # what the session model trained with






def read_csv_text(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text))


@pytest.fixture(scope="module")
def bundle(cli_files):
    return modelfile.read_model(cli_files["model"])


@pytest.fixture(scope="module")
def small(cli_files):
    return pd.read_csv(cli_files["small_csv"])


# --- version and help (each command's help example: test_cli_docs.py) ------------------------


def test_version():
    r = ok("--version")
    assert r.stdout.strip() == f"aecli {__version__}"


def test_the_app_has_exactly_the_documented_commands():
    assert sorted(get_command(app).commands) == sorted(COMMANDS)


def test_no_arguments_shows_help_and_is_a_usage_error():
    r = run()
    assert r.exit_code == 2
    assert "train" in r.output and "compare-pca" in r.output


# --- train ----------------------------------------------------------------------------------


def test_train_puts_nothing_on_stdout_and_the_summary_on_stderr(cli_files):
    model = cli_files["dir"] / "train_plain.npz"
    r = ok("train", cli_files["small_csv"], "--exclude", "label", "-o", model, *FAST_TRAIN)
    assert r.stdout == ""
    assert "excluded: label" in r.stderr
    constant = [c for c in PIXELS if c not in SMALL_FEATURES]
    shown = ", ".join(constant[:12]) + (f", ... ({len(constant) - 12} more)"
                                        if len(constant) > 12 else "")
    assert f"constant, not used: {shown}" in " ".join(r.stderr.split())
    assert "Training summary" in r.stderr and "PCA" in r.stderr
    assert f"model saved to {model}" in r.stderr
    assert modelfile.read_model(model).features == SMALL_FEATURES


def test_train_json_is_one_document_on_stdout(cli_files):
    model = cli_files["dir"] / "train_json.npz"
    r = ok("train", cli_files["small_csv"], "--exclude", "label", "-o", model, *FAST_TRAIN,
           "--json")
    summary = json.loads(r.stdout)  # one document: json.loads rejects trailing data
    assert r.stdout.count("\n") == 1
    assert summary["model"] == str(model)
    assert summary["epochs_run"] == EPOCHS and summary["latent"] == 2
    assert summary["features"] == len(SMALL_FEATURES)
    assert summary["rows_train"] + summary["rows_validation"] == 40
    for key in ("train_mse", "validation_mse", "pca_mse", "seconds", "threshold"):
        assert isinstance(summary[key], float)
    assert "Training summary" in r.stderr  # the human table still goes to stderr


def test_train_reads_parquet_bytes_on_stdin(cli_files):
    model = cli_files["dir"] / "from_stdin.npz"
    data = cli_files["small_parquet"].read_bytes()
    r = ok("train", "-o", model, *FAST_TRAIN, "--exclude", "label", "--json", "-q", input=data)
    assert json.loads(r.stdout)["features"] == len(SMALL_FEATURES)
    assert modelfile.describe(model)["info"]["source"] == "<stdin>"


def test_train_columns_and_exclude_choose_the_features(cli_files):
    chosen = cli_files["dir"] / "columns.npz"
    ok("train", cli_files["small_csv"], "--columns", "p10,p20,p30", "-o", chosen, *FAST_TRAIN, "-q")
    assert modelfile.read_model(chosen).features == ["p10", "p20", "p30"]
    excluded = cli_files["dir"] / "exclude.npz"
    r = ok("train", cli_files["small_csv"], "--exclude", "label,p02,p01", "-o", excluded,
           *FAST_TRAIN)
    assert modelfile.read_model(excluded).features == [
        f for f in SMALL_FEATURES if f not in ("p01", "p02")]
    assert "excluded: p01, p02, label" in r.stderr  # in input order


@pytest.fixture(scope="module")
def curve_model(cli_files):
    """A model of the helix sample, and what training it printed on stderr."""
    model = cli_files["dir"] / "curve.npz"
    r = ok("train", cli_files["curve"], "-o", model, *FAST_TRAIN)
    return model, r.stderr


def test_train_picks_numeric_columns_of_the_curve_and_names_the_others(curve_model):
    model, stderr = curve_model
    assert "identifiers, not used: id" in stderr
    assert "categorical features (1, one-hot): segment" in stderr
    assert modelfile.read_model(model).features == [f"x{j:02d}" for j in range(1, 11)] + [
        "segment"]


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_text_keep_columns_pass_through_to_files(cli_files, curve_model, suffix):
    out = cli_files["dir"] / f"curve_codes.{suffix}"
    ok("encode", curve_model[0], cli_files["curve"], "--keep", "segment,id", "-o", out)
    curve = pd.read_csv(cli_files["curve"])
    if suffix == "csv":
        with open(out, newline="") as f:
            rows = list(csv.DictReader(f))
        assert list(rows[0]) == ["segment", "id", "z1", "z2"]
        assert [r["id"] for r in rows] == curve["id"].tolist()
    con = duckdb.connect()
    rel = con.sql(f"select * from '{out}'")
    assert rel.columns == ["segment", "id", "z1", "z2"]
    assert [str(t) for t in rel.types[:2]] == ["VARCHAR", "VARCHAR"]
    [(n, first)] = con.sql(f"select count(*), min(id) from '{out}'").fetchall()
    assert n == len(curve) and first == curve["id"].min()


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_train_history_has_one_row_per_epoch(cli_files, suffix):
    history = cli_files["dir"] / f"history.{suffix}"
    model = cli_files["dir"] / f"history_{suffix}.npz"
    r = ok("train", cli_files["small_csv"], "-o", model, *FAST_TRAIN, "-q", "--history", history)
    assert r.stdout == "" and r.stderr == ""
    df = pd.read_csv(history) if suffix == "csv" else pq.read_table(history).to_pandas()
    assert list(df.columns) == ["epoch", "train_loss", "validation_loss"]
    assert df["epoch"].tolist() == list(range(1, EPOCHS + 1))
    assert (df["train_loss"] > 0).all() and (df["validation_loss"] > 0).all()


def test_train_needs_an_output(cli_files):
    r = run("train", cli_files["small_csv"])
    assert r.exit_code == 2
    assert "--output" in r.stderr and r.stdout == ""


def test_a_failed_train_leaves_an_existing_model_untouched(cli_files):
    model = cli_files["dir"] / "precious.npz"
    model.write_bytes(cli_files["model"].read_bytes())
    before = model.read_bytes()
    r = run("train", cli_files["small_csv"], "--columns", "p00,nope", "-o", model, *FAST_TRAIN)
    assert r.exit_code == 2
    assert "nope" in r.stderr
    assert model.read_bytes() == before
    assert sorted(p.name for p in model.parent.glob("precious*")) == ["precious.npz"]


# --- encode ---------------------------------------------------------------------------------


def test_encode_writes_codes_as_csv_on_stdout(cli_files, bundle, small):
    r = ok("encode", cli_files["model"], cli_files["small_csv"])
    assert r.stderr == ""
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert rows[0] == ["z1", "z2"]
    assert len(rows) == 1 + len(small)
    Z = np.array(rows[1:], dtype=np.float64)
    expected = bundle.encode(small[FEATURES].to_numpy(np.float64))
    np.testing.assert_allclose(Z, expected, rtol=1e-5, atol=1e-6)


def test_encode_keep_columns_come_first_with_their_values(cli_files, small):
    r = ok("encode", cli_files["model"], cli_files["small_csv"], "--keep", "label,p05")
    df = read_csv_text(r.stdout)
    assert list(df.columns) == ["label", "p05", "z1", "z2"]
    assert df["label"].tolist() == small["label"].tolist()
    assert df["p05"].tolist() == small["p05"].tolist()


@pytest.mark.parametrize("kind", ["small_csv", "small_tsv", "small_parquet", "small_jsonl"])
def test_encode_sniffs_stdin_without_input_format(cli_files, kind):
    from_file = ok("encode", cli_files["model"], cli_files["small_csv"], "--keep", "label")
    piped = ok("encode", cli_files["model"], "--keep", "label",
               input=cli_files[kind].read_bytes())
    assert piped.stderr == ""
    pd.testing.assert_frame_equal(read_csv_text(piped.stdout), read_csv_text(from_file.stdout))
    dash = ok("encode", cli_files["model"], "-", "--keep", "label",
              input=cli_files[kind].read_bytes())
    assert dash.stdout == piped.stdout


def test_encode_parquet_file_is_readable_by_pyarrow_and_duckdb(cli_files, small):
    out = cli_files["dir"] / "codes.parquet"
    r = ok("encode", cli_files["model"], cli_files["small_parquet"], "--keep", "label", "-o", out)
    assert r.stdout == "" and r.stderr == ""
    table = pq.read_table(out)
    assert table.column_names == ["label", "z1", "z2"]
    assert table.column("label").to_pylist() == small["label"].tolist()
    con = duckdb.connect()
    [(n, labels)] = con.sql(f"select count(*), sum(label) from '{out}'").fetchall()
    assert n == len(small) and labels == small["label"].sum()
    cols = [c[0] for c in con.sql(f"select * from '{out}'").description]
    assert cols == ["label", "z1", "z2"]
    csv_codes = read_csv_text(ok("encode", cli_files["model"], cli_files["small_csv"]).stdout)
    np.testing.assert_allclose(table.to_pandas()[["z1", "z2"]].to_numpy(), csv_codes.to_numpy(),
                               rtol=1e-6)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "parquet", "jsonl"])
def test_encode_format_on_stdout(cli_files, small, fmt):
    r = ok("encode", cli_files["model"], cli_files["small_csv"], "--keep", "label",
           "--format", fmt)
    data = r.stdout_bytes
    if fmt == "parquet":
        assert data[:4] == b"PAR1" and data[-4:] == b"PAR1"
        df = pq.read_table(io.BytesIO(data)).to_pandas()
    elif fmt == "jsonl":
        records = [json.loads(line) for line in data.decode().splitlines()]
        assert all(list(rec) == ["label", "z1", "z2"] for rec in records)
        df = pd.DataFrame(records)
    else:
        df = pd.read_csv(io.BytesIO(data), sep="\t" if fmt == "tsv" else ",")
    assert list(df.columns) == ["label", "z1", "z2"]
    assert df["label"].tolist() == small["label"].tolist()


@pytest.mark.parametrize("name,fmt", [("codes.tsv", None), ("codes.csv.gz", None),
                                      ("codes.out", "jsonl")])
def test_encode_output_file_format_from_extension_or_option(cli_files, small, name, fmt):
    out = cli_files["dir"] / name
    args = ["--format", fmt] if fmt else []
    r = ok("encode", cli_files["model"], cli_files["small_csv"], "-o", out, *args)
    assert r.stdout == ""
    if fmt == "jsonl":
        df = pd.read_json(out, lines=True)
    else:
        df = pd.read_csv(out, sep="\t" if name.endswith(".tsv") else ",")
    assert list(df.columns) == ["z1", "z2"] and len(df) == len(small)


# --- reconstruct ----------------------------------------------------------------------------


def test_reconstruct_uses_original_names_and_units(cli_files, bundle, small):
    r = ok("reconstruct", cli_files["model"], cli_files["small_csv"], "--keep", "label",
           "--error")
    df = read_csv_text(r.stdout)
    assert list(df.columns) == ["label", *FEATURES, "error"]
    assert df["label"].tolist() == small["label"].tolist()
    X = small[FEATURES].to_numpy(np.float64)
    X_hat, sq = bundle.reconstruct(X)
    np.testing.assert_allclose(df[FEATURES].to_numpy(), X_hat, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(df["error"].to_numpy(), sq.mean(axis=1), rtol=1e-5)
    # the per-feature error table is for people: on stderr, never in the data
    assert "Reconstruction error by feature" in r.stderr
    assert "Reconstruction" not in r.stdout


def test_reconstruct_parquet_file_keeps_original_column_names(cli_files):
    out = cli_files["dir"] / "recon.parquet"
    r = ok("reconstruct", cli_files["model"], cli_files["small_csv"], "-o", out,
           "--top-features", "3")
    assert r.stdout == ""
    assert pq.read_table(out).column_names == FEATURES
    cols = [c[0] for c in duckdb.sql(f"select * from '{out}'").description]
    assert cols == FEATURES
    body = r.stderr.split("the 3 worst")[0]
    assert sum(f" {f} " in body for f in FEATURES) == 3  # --top 3 shows three features


def test_reconstruct_csv_file_reads_back_with_csv_and_pandas(cli_files, small):
    out = cli_files["dir"] / "recon.csv"
    ok("reconstruct", cli_files["model"], cli_files["small_parquet"], "--keep", "label", "-o",
       out, "-q")
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["label", *FEATURES]
    assert [int(r["label"]) for r in rows] == small["label"].tolist()
    df = pd.read_csv(out)
    assert list(df.columns) == ["label", *FEATURES] and len(df) == len(small)
    assert all(dt.kind == "f" for dt in df[FEATURES].dtypes)


# --- score ----------------------------------------------------------------------------------


def test_score_rows_on_stdout_table_on_stderr(cli_files, small):
    r = ok("score", cli_files["model"], cli_files["small_csv"], "--keep", "label")
    df = read_csv_text(r.stdout)
    assert list(df.columns) == ["label", "row", "score", "error", "percentile", "p_value",
                                "flagged", "top_features"]
    assert df["row"].tolist() == list(range(1, len(small) + 1))
    assert df["label"].tolist() == small["label"].tolist()
    assert (df["error"] >= 0).all() and df["percentile"].between(0, 100).all()
    # the combined score is Fisher's -sum ln p (docs/scores.md): never negative, and a
    # higher score has a smaller p-value
    assert (df["score"] >= 0).all()
    ranked = df.sort_values("score")
    assert (np.diff(ranked["p_value"].to_numpy()) <= 0).all()
    assert "Anomaly scores" in r.stderr and "over the threshold" in r.stderr


def test_score_json_report_parses(cli_files, small):
    r = ok("score", cli_files["model"], cli_files["small_csv"], "--json", "-q")
    report = json.loads(r.stdout)
    assert r.stderr == ""
    assert report["rows"] == len(small)
    assert set(report["feature_mse"]) == set(FEATURES)
    scores = [w["score"] for w in report["worst"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == 10


def test_score_top_writes_the_worst_rows_with_kept_columns(cli_files, small):
    out = cli_files["dir"] / "worst.csv"
    ok("score", cli_files["model"], cli_files["small_csv"], "--top", "5", "--keep", "label",
       "-o", out, "-q")
    worst = pd.read_csv(out)
    every = read_csv_text(ok("score", cli_files["model"], cli_files["small_csv"], "-q").stdout)
    expected = every.sort_values("score", ascending=False).head(5)
    assert list(worst.columns) == ["label", "row", "score", "error", "percentile", "p_value",
                                   "flagged", "top_features"]
    assert worst["row"].tolist() == expected["row"].tolist()
    assert worst["label"].tolist() == small["label"].iloc[expected["row"] - 1].tolist()


def test_score_fail_on_anomaly_exit_codes(cli_files):
    model, data = cli_files["model"], cli_files["small_csv"]
    r = run("score", model, data, "--fail-on-anomaly", "--threshold", "0", "-q")
    assert r.exit_code == 1
    assert "40 of 40 row(s) are over the anomaly threshold" in r.stderr
    assert r.stdout.count("\n") == 41  # the rows were still written
    r = run("score", model, data, "--fail-on-anomaly", "--threshold", "1e9", "-q")
    assert r.exit_code == 0 and r.stderr == ""


# --- compare-pca and inspect ----------------------------------------------------------------


def test_compare_pca_table_goes_to_stderr_when_stdout_is_not_a_terminal(cli_files):
    r = ok("compare-pca", cli_files["curve"], "-k", "1,2", *FAST_TRAIN)
    assert r.stdout == ""
    assert "Autoencoder vs PCA" in r.stderr and "suggested k" in r.stderr


def test_compare_pca_json_and_csv(cli_files):
    r = ok("compare-pca", cli_files["curve"], "-k", "1-3", *FAST_TRAIN, "--json", "-q")
    assert r.stderr == ""
    doc = json.loads(r.stdout)
    assert [row["k"] for row in doc["rows"]] == [1, 2, 3]
    assert doc["suggestion"]["k"] in (1, 2, 3)
    assert doc["features"] == [f"x{j:02d}" for j in range(1, 11)] + ["segment"]
    r = ok("compare-pca", cli_files["small_csv"], "--exclude", "label", "-k", "2", *FAST_TRAIN,
           "--csv")
    df = read_csv_text(r.stdout)
    assert df["k"].tolist() == [2]
    assert {"pca_mse", "ae_mse", "ratio"} <= set(df.columns)
    assert "Autoencoder vs PCA" in r.stderr


def test_inspect_panel_and_json(cli_files):
    r = ok("inspect", cli_files["model"])
    d = len(FEATURES)
    assert f"Layers: {d} → {HIDDEN} → 2 → {HIDDEN} → {d}" in r.stdout and "standard" in r.stdout
    doc = json.loads(ok("inspect", cli_files["model"], "--json").stdout)
    assert doc["features"] == FEATURES
    assert doc["format_version"] >= 1 and doc["aecli_version"] == __version__
    assert doc["params"]["epochs"] == EPOCHS and doc["params"]["hidden"] == [HIDDEN]


# --- quiet, usage and input errors ----------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["train", "{small_csv}", "-o", "{dir}/quiet.npz", *FAST_TRAIN,
     "--history", "{dir}/quiet_h.csv"],
    ["encode", "{model}", "{small_csv}"],
    ["reconstruct", "{model}", "{small_csv}", "--error"],
    ["score", "{model}", "{small_csv}", "--threshold", "1e9"],
    ["compare-pca", "{curve}", "-k", "1", *FAST_TRAIN],
    ["inspect", "{model}", "--json"],
    ["export", "{model}", "-o", "{dir}/quiet.onnx"],
    ["drift", "{model}", "{small_csv}"],
], ids=COMMANDS)
def test_quiet_success_prints_nothing_on_stderr(cli_files, args):
    r = ok(*[a.format(**cli_files) for a in args], "-q")
    assert r.stderr == ""


def _bad_model(cli_files):
    path = cli_files["dir"] / "garbage.npz"
    path.write_bytes(b"this is not a model")
    return path


@pytest.mark.parametrize("case,args,needles", [
    ("other columns", ["encode", "{model}", "{curve}"], ["curve.csv", "p01", "x01"]),
    ("bad model", ["encode", "{bad}", "{small_csv}"], ["garbage.npz", "not a valid aecli"]),
    ("no model", ["score", "{dir}/absent.npz", "{small_csv}"], ["absent.npz", "not found"]),
    ("no data", ["reconstruct", "{model}", "{dir}/absent.csv"], ["absent.csv", "no such file"]),
    ("bad keep", ["encode", "{model}", "{small_csv}", "--keep", "ident"], ["--keep", "ident"]),
    ("bad columns", ["train", "{small_csv}", "--columns", "p00,zz", "-o", "{dir}/x.npz"],
     ["zz"]),
    ("bad hidden", ["train", "{small_csv}", "--hidden", "8,x", "-o", "{dir}/x.npz"],
     ["--hidden", "'x'"]),
    ("bad k", ["compare-pca", "{curve}", "-k", "0"], ["--latent"]),
    ("bad format", ["encode", "{model}", "{small_csv}", "--format", "xml"], ["xml"]),
    ("unknown option", ["inspect", "{model}", "--bogus"], ["--bogus"]),
    ("inspect bad model", ["inspect", "{bad}"], ["garbage.npz"]),
    ("wrong input format", ["encode", "{model}", "{small_csv}", "--input-format", "parquet"],
     ["small.csv", "Parquet"]),
])
def test_bad_usage_and_bad_input_exit_2_with_a_message(cli_files, case, args, needles):
    files = {**cli_files, "bad": _bad_model(cli_files)}
    r = run(*[a.format(**files) for a in args])
    assert r.exit_code == 2, (case, r.stderr)
    assert r.stdout == ""
    for needle in needles:
        assert needle in r.stderr, (case, needle, r.stderr)
    assert "Traceback" not in r.stderr


def test_a_missing_model_column_is_named(cli_files, small):
    data = small.drop(columns=["p07"]).to_csv(index=False)
    for command in ("encode", "reconstruct", "score"):
        r = run(command, cli_files["model"], input=data)
        assert r.exit_code == 2
        assert "<stdin>" in r.stderr and "'p07'" in r.stderr and "not in the input" in r.stderr
        assert r.stdout == ""


def test_extra_columns_are_ignored(cli_files, small):
    data = small.assign(extra=1.5, note="x").to_csv(index=False)
    r = ok("encode", cli_files["model"], input=data)
    expected = ok("encode", cli_files["model"], cli_files["small_csv"]).stdout
    assert r.stdout == expected


def test_missing_values_name_column_and_row(cli_files):
    text = cli_files["small_csv"].read_text().splitlines()
    header = text[0].split(",")
    row = text[3].split(",")
    row[header.index("p07")] = ""
    text[3] = ",".join(row)
    r = run("encode", cli_files["model"], input="\n".join(text) + "\n")
    assert r.exit_code == 2
    assert "p07" in r.stderr and "3" in r.stderr
    assert r.stdout == ""


def test_debug_shows_the_traceback(cli_files):
    r = run("encode", cli_files["model"], cli_files["small_csv"], "--keep", "ident", "--debug")
    assert r.exit_code == 2
    assert "Traceback" in r.stderr and "ident" in r.stderr


def test_score_keeps_dates_in_json_and_top(cli_files, small):
    data = small.assign(day=pd.date_range("2024-01-01", periods=len(small)).date)
    path = cli_files["dir"] / "dated.parquet"
    data.to_parquet(path, index=False)
    r = ok("score", cli_files["model"], path, "--keep", "day", "--json", "-q")
    worst = json.loads(r.stdout)["worst"]
    assert all(w["keep"]["day"] == str(data["day"][w["row"] - 1]) for w in worst)
    out = cli_files["dir"] / "dated_worst.parquet"
    ok("score", cli_files["model"], path, "--keep", "day", "--top", "3", "-o", out, "-q")
    table = pq.read_table(out)
    assert str(table.schema.field("day").type) == "date32[day]"
    rows = table.column("row").to_pylist()
    assert table.column("day").to_pylist() == [data["day"][i - 1] for i in rows]


def test_score_top_keeps_values_aligned_when_rows_are_dropped(cli_files, small):
    model = cli_files["dir"] / "drop.npz"
    ok("train", cli_files["small_csv"], "--exclude", "label", "--missing", "drop", "-o", model,
       *FAST_TRAIN, "-q")
    holes = small.astype({"p10": float}).assign(ident=[f"r{i}" for i in range(len(small))])
    holes.loc[[0, 5, 6], "p10"] = np.nan
    data = holes.to_csv(index=False)
    r = ok("score", model, "--keep", "ident", "--top", "40", input=data)
    worst = read_csv_text(r.stdout)
    assert len(worst) == len(small) - 3
    assert set(worst["row"]) == set(range(1, 41)) - {1, 6, 7}
    assert (worst["ident"] == "r" + (worst["row"] - 1).astype(str)).all()
    assert "skipped 3 row(s) with missing values" in r.stderr
    every = read_csv_text(ok("score", model, "--keep", "ident", input=data).stdout)
    assert (every["ident"] == "r" + (every["row"] - 1).astype(str)).all()


@pytest.mark.parametrize("option", ["-o", "--history"])
def test_train_checks_its_outputs_before_training(cli_files, option):
    absent = cli_files["dir"] / "no" / "such" / "dir"
    paths = {"-o": cli_files["dir"] / "fine.npz", "--history": cli_files["dir"] / "fine.csv"}
    paths[option] = absent / "out.csv"
    r = run("train", cli_files["small_csv"], "-o", paths["-o"], "--history", paths["--history"],
            *FAST_TRAIN)
    assert r.exit_code == 2
    assert str(absent) in r.stderr and "mkdir -p" in r.stderr
    assert "training:" not in r.stderr  # it failed before spending time on training
    assert not paths["-o"].exists()


def test_score_json_with_an_output_file_writes_both(cli_files, small):
    rows = cli_files["dir"] / "scored.parquet"
    r = ok("score", cli_files["model"], cli_files["small_csv"], "--json", "-o", rows, "-q")
    assert json.loads(r.stdout)["rows"] == len(small)
    assert pq.read_table(rows).column("row").to_pylist() == list(range(1, len(small) + 1))
    r = ok("score", cli_files["model"], cli_files["small_csv"], "--json", "-o", "-", "-q")
    assert json.loads(r.stdout)["rows"] == len(small)  # stdout stays one JSON document


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet"])
@pytest.mark.parametrize("command", ["encode", "reconstruct", "score"])
def test_a_header_only_input_gives_a_header_only_output(cli_files, tmp_path, suffix, command):
    # A cron job on a day with no rows: an empty result and exit 0, not an error.
    empty = pd.read_csv(cli_files["small_csv"]).head(0)
    path = tmp_path / f"empty{suffix}"
    if suffix == ".parquet":
        empty.to_parquet(path, index=False)
    else:
        empty.to_csv(path, index=False, sep="\t" if suffix == ".tsv" else ",")
    out = tmp_path / "out.csv"
    r = run(command, str(cli_files["model"]), str(path), "--keep", "label", "-o", str(out), "-q")
    assert r.exit_code == 0, r.output
    header = out.read_text().splitlines()
    assert len(header) == 1 and header[0].startswith("label,")
    first = {"encode": "z1", "reconstruct": FEATURES[0], "score": "row"}[command]
    assert header[0].split(",")[1] == first
    # training still needs rows
    r = run("train", str(path), "-o", str(tmp_path / "m.npz"))
    assert r.exit_code == 2 and "no data rows" in r.stderr


def test_keep_suggests_the_column_meant(cli_files):
    r = run("encode", str(cli_files["model"]), str(cli_files["small_csv"]), "--keep", "Label")
    assert r.exit_code == 2
    assert "--keep names column 'Label'" in r.stderr and "did you mean 'label'?" in r.stderr


def test_encode_and_score_take_missing_to_override_the_models_policy(cli_files, tmp_path):
    gappy = pd.read_csv(cli_files["small_csv"])
    gappy.loc[[3, 7], "p10"] = np.nan
    path = tmp_path / "gappy.csv"
    gappy.to_csv(path, index=False)
    model = str(cli_files["model"])  # trained with the default --missing error
    r = run("encode", model, str(path))
    assert r.exit_code == 2 and "--missing drop" in r.stderr and "--missing impute" in r.stderr
    r = ok("encode", model, str(path), "--missing", "drop", "-q")
    assert len(r.stdout.splitlines()) == 1 + len(gappy) - 2
    r = ok("score", model, str(path), "--missing", "impute", "-q")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == len(gappy) and [rows[i]["imputed"] for i in (2, 3, 7)] == ["0", "1", "1"]


def test_no_output_has_two_columns_of_one_name(cli_files, tmp_path):
    out = tmp_path / "r.parquet"
    ok("reconstruct", str(cli_files["model"]), str(cli_files["small_csv"]), "--keep",
       "p01,label,p01", "-o", str(out), "-q")
    df = pd.read_parquet(out)  # pandas refuses duplicate names in Parquet
    assert list(df.columns[:3]) == ["p01", "label", "p01_reconstructed"]
    small = pd.read_csv(cli_files["small_csv"])
    assert df["p01"].tolist() == small["p01"].tolist()  # the kept one is the input's own
    pd.DataFrame({"row": range(40), "z1": 1.0}).join(small).to_csv(tmp_path / "odd.csv",
                                                                   index=False)
    r = ok("encode", str(cli_files["model"]), str(tmp_path / "odd.csv"), "--keep", "z1", "-q")
    assert r.stdout.splitlines()[0] == "z1,z1_code,z2"
    r = ok("score", str(cli_files["model"]), str(tmp_path / "odd.csv"), "--keep", "row",
           "--top", "2", "-q")
    assert r.stdout.splitlines()[0].startswith("row,row_score,score,error,")


@pytest.mark.parametrize("sep,suffix", [(",", ".csv"), ("\t", ".tsv")])
def test_kept_columns_from_text_keep_their_text(cli_files, tmp_path, sep, suffix):
    small = pd.read_csv(cli_files["small_csv"])
    text = small.astype(str)
    text.insert(0, "fips", [f"{i:05d}" for i in range(len(small))])  # leading zeros
    text.insert(1, "n", [str(i * 1000) for i in range(len(small))])  # integers, as written
    text.insert(2, "day", [f"2024-01-{i % 28 + 1:02d}" for i in range(len(small))])
    path = tmp_path / f"ids{suffix}"
    path.write_text("\n".join(sep.join(r) for r in [list(text.columns), *text.values]) + "\n")
    r = ok("encode", str(cli_files["model"]), str(path), "--keep", "fips,n,day", "-q")
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert rows[0][:3] == ["fips", "n", "day"]
    assert [row[:3] for row in rows[1:]] == text[["fips", "n", "day"]].values.tolist()
    out = tmp_path / "codes.parquet"
    ok("encode", str(cli_files["model"]), str(path), "--keep", "fips,n", "-o", str(out), "-q")
    table = pq.read_table(out)
    assert table.column("fips").to_pylist()[:3] == ["00000", "00001", "00002"]
    assert table.schema.field("n").type == pa.int64()  # plainly written integers stay so
