"""Hostile numbers and option values (issue 25 items 3, 4, 6 and 11; issue 24 item 9).

Grouped by threat: JSON that a strict parser refuses; numbers that scaling or the network
cannot hold; option values that would size memory; and the smaller messages and warnings.
Every case ends in valid output or a clear message with the documented exit code, never a traceback,
an internal error or a numpy warning on stderr.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import run

from aecli.cli.compare import rerun_command
from aecli.pipeline.compare import larger_sweep, suggest_k
from aecli.preprocessing import StandardScaler, scaler_from_moments
from aecli.preprocessing.missing import MissingPolicy, missing_warnings
from aecli.report.jsondoc import json_text
from aecli.report.tables import feature_error_table
from aecli.report.text import format_explanation

FAST = ["--epochs", "3", "--hidden", "8", "-q"]




def clean_failure(result, code: int, *needles: str) -> str:
    text = result.output
    assert result.exit_code == code, text
    assert "Traceback" not in text and "internal error" not in text, text
    for needle in needles:
        assert needle in text, f"{needle!r} not in:\n{text}"
    return text


def strict_json(text: str):
    """Parse as JavaScript's JSON.parse would: NaN and Infinity are not JSON."""
    def refuse(name):
        raise ValueError(f"{name} is not JSON")
    return json.loads(text, parse_constant=refuse)


def table(path: Path, rows: np.ndarray, names=("a", "b", "c")) -> Path:
    np.savetxt(path, rows, delimiter=",", header=",".join(names), comments="", fmt="%.17g")
    return path


@pytest.fixture(scope="module")
def normal(tmp_path_factory):
    """A float32 model of three normal columns, and the directory it is in."""
    d = tmp_path_factory.mktemp("numbers")
    data = table(d / "train.csv", np.random.default_rng(0).normal(size=(400, 3)))
    r = run("train", data, "-o", d / "m.npz", *FAST)
    assert r.exit_code == 0, r.output
    return d, d / "m.npz"


def batch(d: Path, name: str, cells: dict) -> Path:
    """20 ordinary rows with some cells (row index, column) set to hostile values."""
    X = np.random.default_rng(1).normal(size=(20, 3))
    for (i, j), value in cells.items():
        X[i, j] = value
    return table(d / name, X)


# -- JSON that a strict parser refuses -------------------------------------------------------
def test_json_text_writes_null_for_every_non_finite_number():
    doc = {"a": float("nan"), "b": [np.float32("inf"), -math.inf, 1.5], "c": np.int64(3),
           "d": (np.bool_(True), np.array([np.nan, 2.0]))}
    assert strict_json(json_text(doc)) == {"a": None, "b": [None, None, 1.5], "c": 3,
                                           "d": [True, [None, 2.0]]}


def test_score_json_stays_json_when_a_cell_overflows_float32(normal):
    d, model = normal
    r = run("score", model, batch(d, "e20.csv", {(3, 0): 1e20}), "--json", "-q")
    assert r.exit_code == 0, r.output
    report = strict_json(r.stdout)  # was "score": Infinity, "share": NaN
    row = next(x for x in report["worst"] if x["row"] == 4)
    assert row["score"] is None and row["flagged"] is True
    assert "column 'a'" in row["score_note"] and "--dtype float64" in row["score_note"]
    assert report["scores_not_finite"] == 1
    assert all(t["share"] is None and t["overflow"] for t in row["top_features"])


# -- numbers that scaling or the network cannot hold -----------------------------------------
BIG = 2.0**53 + np.arange(1001.0)  # ids past 2^53: float64 keeps every other one


def test_standard_scaling_is_exact_for_a_large_offset():
    scaler = StandardScaler().fit(BIG[:, None])
    assert scaler.scale_[0] == pytest.approx(BIG.std(), rel=1e-9)  # was 1: "constant"
    assert scaler.center_[0] == pytest.approx(2.0**53 + 500, abs=1)
    # a constant column, or one that differs only by rounding, still gets scale 1
    assert StandardScaler().fit(np.full((9, 1), 0.1 * 3)).scale_[0] == 1.0
    assert StandardScaler().fit(np.array([[0.1 + 0.2], [0.3], [0.3]])).scale_[0] == 1.0


def test_merged_moments_scale_a_large_offset_as_one_machine_does():
    from aecli.pipeline.cluster_survey import Moments

    X = BIG[:, None].copy()
    X[5] = np.nan
    merged = Moments.of(X[:400]).merge(Moments.of(X[400:]))
    scaler = scaler_from_moments("standard", merged.n, merged.mean, merged.m2, merged.low,
                                 merged.high)
    # partitions' means are rounded to float64's step of 2 there: exact to 1e-4, not 1e-9
    assert scaler.scale_[0] == pytest.approx(np.nanstd(X), rel=1e-4)  # was 1: "constant"


def test_merged_moments_of_values_whose_squares_overflow_scale_as_one_machine_does():
    # 1e300 in one partition: its squares overflow float64, and the merged spread was inf
    # ("scaler needs a finite ... scale") where one machine's scaler takes the moments in
    # units of a power of two.
    from aecli.pipeline.cluster_survey import Moments

    X = np.random.default_rng(0).normal(size=(600, 2))
    X[400, 1] = 1e300
    merged = Moments.of(X[:300]).merge(Moments.of(X[300:])).merge(Moments.of(X[:0]))
    scaler = scaler_from_moments("standard", merged.n, merged.mean, merged.m2, merged.low,
                                 merged.high, merged.unit)
    whole = StandardScaler().fit(X)
    np.testing.assert_allclose(scaler.center_, whole.center_, rtol=1e-12)
    np.testing.assert_allclose(scaler.scale_, whole.scale_, rtol=1e-12)


@pytest.mark.parametrize("stream", [False, True])
def test_a_column_of_ids_past_2_53_does_not_dominate_training(tmp_path, stream):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(1001, 3))
    big = 2**53 + 2 * rng.integers(0, 500, size=1001)  # std 289, as in the issue
    data = tmp_path / "big.csv"
    with open(data, "w") as f:
        f.write("a,b,c,big\n")
        for row, value in zip(X, big.tolist(), strict=True):
            f.write(f"{row[0]},{row[1]},{row[2]},{value}\n")
    # past 2^53 the column reads as ids unless named: --columns makes it a feature
    r = run("train", data, "-o", tmp_path / "m.npz", "--json", "--epochs", "5", "-q",
            "--columns", "a,b,c,big", *(["--stream"] if stream else []))
    assert r.exit_code == 0, r.output
    summary = strict_json(r.stdout)
    assert "big" in summary["roles"]["numeric"]
    assert summary["train_mse"] < 5  # was 1.2e4: the column kept scale 1


@pytest.mark.parametrize("command", ["encode", "reconstruct"])
def test_an_overflow_in_the_network_names_the_row_and_column_and_the_remedy(normal, command):
    d, model = normal
    data = batch(d, "all38.csv", {(5, 0): -3e38, (5, 1): -3e38, (5, 2): -3e38})
    r = run(command, model, data, "-q")
    # was exit 0 with NaN written (or "column 1 has 2 infinite values")
    clean_failure(r, 2, "all38.csv", "row 6, column", "-3e+38", "overflowed", "float32",
                  "--dtype float64", "rescale")


@pytest.mark.filterwarnings("error::RuntimeWarning")  # no overflow warning on the way
def test_a_nan_score_is_flagged_and_fails_fail_on_anomaly(normal):
    d, model = normal
    data = batch(d, "nan_score.csv", {**{(3, j): 3e38 for j in range(3)}})
    r = run("score", model, data, "--fail-on-anomaly", "--json")
    clean_failure(r, 1, "over the anomaly threshold", "no finite score")  # was exit 0
    report = strict_json(r.stdout)
    assert report["flagged"] >= 1 and report["flagged_rows"][0]["row"] == 4


def test_a_row_with_nothing_observed_is_flagged_and_says_why(tmp_path):
    X = np.random.default_rng(3).normal(size=(200, 3))
    train = table(tmp_path / "t.csv", X)
    model = tmp_path / "m.npz"
    assert run("train", train, "-o", model, "--missing", "impute", *FAST).exit_code == 0
    data = tmp_path / "gap.csv"
    data.write_text("a,b,c\n0.1,0.2,0.3\n,,\n0.3,0.1,0.2\n")
    r = run("score", model, data, "--json", "-q")
    assert r.exit_code == 0, r.output
    row = next(x for x in strict_json(r.stdout)["worst"] if x["row"] == 2)
    assert row["flagged"] is True and row["score"] is None  # was flagged false
    assert "no observed cell" in row["score_note"]


def test_explanations_never_show_nan_percent(normal):
    d, model = normal
    r = run("score", model, batch(d, "e38.csv", {(3, 0): 3e38, (5, 1): -3e38}), "--top", "5",
            "-q")
    assert r.exit_code == 0, r.output
    assert "nan%" not in r.stdout and "overflow" in r.stdout
    assert format_explanation([{"feature": "a", "share": float("nan"), "value": 1.0,
                                "expected": 2.0}]) == "a=1 (expected 2, —)"


def test_no_numpy_warning_reaches_stderr(normal):
    d, model = normal
    data = batch(d, "warn.csv", {(3, 0): 1e20, (7, 1): 3e38})
    r = subprocess.run([sys.executable, "-m", "aecli", "score", str(model), str(data)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "RuntimeWarning" not in r.stderr and "overflow encountered" not in r.stderr
    assert "no finite score" in r.stderr  # the warning aecli gives instead


# -- option values that would size memory ----------------------------------------------------
def _bounded(*args: str) -> subprocess.CompletedProcess:
    """aecli in a process with 2 GB of address space and 60 s: the old code grew to 24 GB."""
    limit = "import resource; resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30));"
    code = limit + ("import sys; from aecli.cli.app import app; "
                    "sys.argv = ['aecli', *sys.argv[1:]]; app()")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=60)


def test_a_mistyped_k_range_is_refused_before_it_is_expanded(normal):
    d, _ = normal
    r = _bounded("compare-pca", str(d / "train.csv"), "-k", "1-99999999999")
    assert r.returncode == 2, r.stderr
    assert "--latent" in r.stderr and "65,536" in r.stderr and "MemoryError" not in r.stderr


@pytest.mark.parametrize("option,value,bound", [("--hidden", "99999999", "65536"),
                                                ("-k", "99999999", "65536"),
                                                ("--batch-size", "99999999999", "1048576")])
def test_an_option_that_sizes_memory_is_a_usage_error(normal, option, value, bound):
    d, _ = normal
    r = _bounded("train", str(d / "train.csv"), "-o", str(d / "never.npz"), option, value)
    assert r.returncode == 2, r.stderr
    assert bound in r.stderr.replace(",", "") and "MemoryError" not in r.stderr
    assert not (d / "never.npz").exists()


def test_a_network_with_too_many_weights_is_refused_before_it_is_built():
    from aecli.errors import InvalidParameterError
    from aecli.estimators import Autoencoder

    X = np.zeros((4, 3000), dtype=np.float32)
    with pytest.raises(InvalidParameterError, match="weights"):
        Autoencoder(hidden=(60000,), epochs=1).fit(X)


# -- smaller messages ------------------------------------------------------------------------
def test_empty_columns_blames_columns_not_exclude(normal):
    d, _ = normal
    text = clean_failure(run("train", d / "train.csv", "--columns", "", "-o", d / "x.npz"), 2,
                         "--columns", "names no column")
    assert "--exclude" not in text


def test_a_categorical_column_left_out_of_columns_is_refused(tmp_path):
    data = tmp_path / "cat.csv"
    data.write_text("a,b,c,cat\n" + "".join(f"{i % 7},{i % 5},{i % 3},{'xyz'[i % 3]}\n"
                                            for i in range(60)))
    for order in (["--columns", "a,b", "--categorical", "cat"],
                  ["--categorical", "cat", "--columns", "a,b"]):
        clean_failure(run("train", data, *order, "-k", "1", "-o", tmp_path / "m.npz"), 2,
                      "'cat'", "--columns a,b,cat")
    r = run("train", data, "--columns", "a,b,cat", "--categorical", "cat", "-k", "1",
            "-o", tmp_path / "m.npz", *FAST, "--json")
    assert r.exit_code == 0, r.output
    assert strict_json(r.stdout)["roles"]["categorical"] == ["cat"]


def test_compare_pca_on_five_rows_speaks_of_k(tmp_path):
    data = table(tmp_path / "five.csv", np.random.default_rng(4).normal(size=(5, 8)),
                 names=list("abcdefgh"))
    # rows 1 and 4 are held out at seed 0 (aecli.estimators.rows.held_out): 3 train
    text = clean_failure(run("compare-pca", data, "-k", "1-6", "--epochs", "2"), 2,
                         "k=6", "training rows", "-k at most 3")
    assert "n_components" not in text


def test_a_reversed_k_range_says_so(normal):
    d, _ = normal
    clean_failure(run("compare-pca", d / "train.csv", "-k", "3-1"), 2, "reversed", "1-3")


def test_train_refuses_k_as_wide_as_the_features(normal):
    d, _ = normal
    text = clean_failure(run("train", d / "train.csv", "-k", "3", "-o", d / "k3.npz"), 2,
                         "k=3 is not smaller than the number of features (3)", "-k 1")
    assert "higher than PCA" not in text and not (d / "k3.npz").exists()


def test_compare_pca_says_when_its_suggestion_is_the_largest_k_tried(normal):
    rows = [{"k": 1, "ae_mse": 0.5}, {"k": 2, "ae_mse": 0.1}]
    s = suggest_k(rows, baseline=1.0, n_features=20)
    assert s["k"] == 2 and s["largest_tried"] and s["larger_sweep"] == "2-4"
    assert larger_sweep(8, 40) == "8-16:2" and larger_sweep(2, 3) is None
    assert "larger_sweep" not in suggest_k(rows + [{"k": 4, "ae_mse": 0.1}], baseline=1.0)
    assert rerun_command("d.csv", "8-16:2", ["compare-pca", "d.csv", "-k", "1,2,4,8",
                                             "--exclude", "x"]) == \
        "aecli compare-pca d.csv --exclude x -k 8-16:2"
    d, _ = normal
    data = table(d / "wide.csv", np.random.default_rng(5).normal(size=(200, 10)),
                 names=[f"x{j}" for j in range(10)])
    r = run("compare-pca", data, "-k", "1,2", "--epochs", "2", "--json")
    assert r.exit_code == 0, r.output
    suggestion = strict_json(r.stdout)["suggestion"]
    if suggestion["k"] == 2:  # noise: the largest k tried is the best
        assert suggestion["largest_tried"] and suggestion["larger_sweep"] == "2-4"
        assert "the largest k tried" in r.stderr and "-k 2-4" in r.stderr


def test_categorical_errors_are_in_nats_not_squared_units():
    from rich.console import Console

    console = Console(width=120, record=True)
    console.print(feature_error_table(["a", "cat"], [0.5, 1.2], [4.0, 1.2],
                                      categorical=["cat"]))
    text = console.export_text()
    assert "1.2 nats" in text and "cross-entropy" in text
    line = next(x for x in text.splitlines() if "cat" in x and "nats" in x)
    assert "1.095" not in line  # no RMSE of a cross-entropy


def test_missing_policies_warn_when_they_change_much_of_the_data():
    warned = missing_warnings(MissingPolicy.IMPUTE, ["a", "b"], [0.91, 0.1])
    assert len(warned) == 1 and "91%" in warned[0] and "'a'" in warned[0]
    assert "--exclude a" in warned[0]
    warned = missing_warnings(MissingPolicy.DROP, ["a"], None, dropped=81, rows=100)
    assert len(warned) == 1 and "81 of 100" in warned[0] and "--missing impute" in warned[0]
    assert missing_warnings(MissingPolicy.DROP, ["a"], None, dropped=10, rows=100) == []


def test_training_warns_when_impute_fills_most_of_a_column(tmp_path):
    rng = np.random.default_rng(6)
    lines = ["a,b,c"] + [f"{rng.normal()},{rng.normal()},{rng.normal() if i % 10 == 0 else ''}"
                         for i in range(300)]
    data = tmp_path / "gappy.csv"
    data.write_text("\n".join(lines) + "\n")
    r = run("train", data, "--missing", "impute", "-k", "1", "--epochs", "2", "--hidden", "4",
            "-o", tmp_path / "m.npz")
    assert r.exit_code == 0, r.output
    assert "warning: --missing impute filled 9" in r.stderr and "'c'" in r.stderr
    r = run("train", data, "--missing", "drop", "-k", "1", "--epochs", "2", "--hidden", "4",
            "-o", tmp_path / "d.npz")
    assert r.exit_code == 0, r.output
    assert "warning: --missing drop left out 270 of 300 rows (90%)" in r.stderr


def test_a_reconstruction_that_overflowed_to_infinity_is_explained_not_refused(normal):
    import pyarrow as pa

    from aecli.pipeline.modelfile import read_model
    from aecli.pipeline.score import originals

    bundle = read_model(normal[1])
    xs_hat = np.array([[np.inf, 1.0, -np.inf]], dtype=np.float32)
    # was a DataError: "column 1 has 1 infinite value": the data has none
    X, X_hat, _ = originals(bundle, pa.table({"a": [1.0], "b": [2.0], "c": [3.0]}), xs_hat)
    assert X == [[1.0, 2.0, 3.0]] and math.isnan(X_hat[0][0]) and math.isnan(X_hat[0][2])
