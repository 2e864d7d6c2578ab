"""Tests for aecli.report: render each renderable to plain text and read the figures back."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from aecli import report
from aecli.report import (
    BARS,
    compare_table,
    feature_error_table,
    fmt,
    format_architecture,
    inspect_panel,
    score_summary,
    score_table,
    sparkline,
    train_summary,
    truncate_list,
)

NAN = float("nan")


def render(renderable) -> str:
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(renderable)
    return console.file.getvalue()


def line_with(text: str, needle: str) -> str:
    """The one rendered line containing ``needle``."""
    lines = [line for line in text.splitlines() if needle in line]
    assert len(lines) == 1, (needle, lines)
    return lines[0]


def levels(line: str) -> list[int]:
    return [BARS.index(c) for c in line]


# fmt ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "—"),
        (NAN, "—"),
        (np.float32("nan"), "—"),
        (0.000123456, "0.0001235"),
        (1234.5678, "1235"),
        (0.1, "0.1"),
        (-2.5e-7, "-2.5e-07"),
        (1500, "1,500"),
        (np.int64(42), "42"),
        (np.float64(3.14159), "3.142"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
        (True, "yes"),
        ("adam", "adam"),
    ],
)
def test_fmt(value, expected):
    assert fmt(value) == expected


def test_fmt_digits():
    assert fmt(math.pi, 2) == "3.1"


# sparkline ------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 7, 40, 41, 1000])
@pytest.mark.parametrize("width", [1, 10, 40])
def test_sparkline_length_is_width(n, width):
    line = sparkline([math.sin(i) for i in range(n)], width=width)
    assert len(line) == width
    assert set(line) <= set(BARS)


@pytest.mark.parametrize("n", [3, 40, 997])
def test_sparkline_monotone_input_gives_nondecreasing_bars(n):
    line = sparkline([i * i for i in range(n)], width=40)
    got = levels(line)
    assert got == sorted(got)
    assert got[0] == 0 and got[-1] == len(BARS) - 1


def test_sparkline_decreasing_loss_over_decades_uses_log_scale():
    loss = [10.0 ** (-i / 10) for i in range(60)]  # 1 down to ~1e-6
    auto = levels(sparkline(loss, width=30))
    assert auto == sorted(auto, reverse=True)
    # On a log scale a geometric decay is a straight line, so every level is used;
    # on a linear scale almost everything sits on the floor.
    assert set(auto) == set(range(len(BARS)))
    linear = levels(sparkline(loss, width=30, log=False))
    assert linear.count(0) > 20


def test_sparkline_log_ignored_for_nonpositive_values():
    line = sparkline([-1.0, 0.0, 1.0, 1000.0], width=4, log=True)
    assert levels(line) == sorted(levels(line))


def test_sparkline_constant_input_is_a_flat_line():
    line = sparkline([0.25] * 17, width=12)
    assert len(line) == 12 and len(set(line)) == 1 and line[0] in BARS


def test_sparkline_nan_and_inf_are_gaps():
    line = sparkline([1.0, NAN, 3.0, math.inf, None, 2.0], width=6)
    assert line == "▁ █  " + BARS[4]


def test_sparkline_nan_averaged_out_of_a_bucket():
    line = sparkline([0.0, NAN, 1.0, 1.0], width=2)
    assert line == BARS[0] + BARS[-1]


def test_sparkline_all_nan_and_empty():
    assert sparkline([NAN, NAN], width=5) == " " * 5
    assert sparkline([], width=5) == ""


def test_sparkline_accepts_numpy_and_rejects_bad_width():
    assert len(sparkline(np.linspace(0, 1, 100), width=8)) == 8
    with pytest.raises(ValueError, match="width"):
        sparkline([1.0], width=0)


# helpers --------------------------------------------------------------------------------------

def test_truncate_list():
    assert truncate_list(["a", "b", "c"]) == "a, b, c"
    names = [f"p{i:02d}" for i in range(64)]
    assert truncate_list(names) == "p00, p01, p02, p03, …, p62, p63 (64)"


def test_format_architecture():
    layers = [{"in": 64, "out": 32}, {"in": 32, "out": 2}, {"in": 2, "out": 32},
              {"in": 32, "out": 64}]
    assert format_architecture(layers) == "64 → 32 → 2 → 32 → 64"
    assert format_architecture([]) == "—"


# train_summary --------------------------------------------------------------------------------

SUMMARY = {
    "rows_train": 1500,
    "rows_validation": 500,
    "features": 10,
    "latent": 2,
    "architecture": "10 → 32 → 2 → 32 → 10",
    "train_mse": 0.01712,
    "validation_mse": 0.01771,
    "pca_mse": 0.1915,
    "epochs_run": 120,
    "best_epoch": 98,
    "stopped_early": True,
    "seconds": 12.3456,
    "loss_history": [0.9 ** i for i in range(120)],
    "val_loss_history": [1.1 * 0.9 ** i for i in range(120)],
}


def test_train_summary_with_validation_and_pca():
    table = train_summary(SUMMARY)
    assert isinstance(table, Table)
    out = render(table)
    assert "Training summary" in out
    assert "1,500" in line_with(out, "train, 500 validation")
    assert "10 → 32 → 2 → 32 → 10" in out
    assert "0.01712" in line_with(out, "train MSE")
    assert "0.01771" in line_with(out, "validation MSE")
    assert "0.1915" in line_with(out, "PCA MSE") and "validation rows" in out
    # The ratio uses the validation error, the one PCA was measured against.
    versus = line_with(out, "vs PCA")
    assert fmt(0.01771 / 0.1915) in versus and "10.8× lower" in versus
    epochs = line_with(out, "epochs")
    assert "120" in epochs and "best 98" in epochs and "stopped on a plateau" in epochs
    assert "12.3" in line_with(out, "time")
    train_loss = line_with(out, "train loss")
    assert "1 → " + fmt(0.9 ** 119) in train_loss
    bars = "".join(c for c in train_loss if c in BARS)
    assert len(bars) == 30 and levels(bars) == sorted(levels(bars), reverse=True)
    assert "log scale" in train_loss
    assert "validation loss" in out


def test_train_summary_says_which_optimizer_and_schedule_ran_and_why_it_stopped():
    summary = {**SUMMARY, "epochs_budget": 300, "stop_reason": "plateau", "optimizer": "adam",
               "schedule": "cosine"}
    out = render(train_summary(summary))
    assert "of 300" in line_with(out, "epochs") and "plateau" in line_with(out, "epochs")
    assert "adam" in line_with(out, "optimizer") and "cosine" in line_with(out, "optimizer")
    converged = {**summary, "stop_reason": "converged", "optimizer": "lbfgs", "schedule": "none",
                 "stopped_early": True}
    out = render(train_summary(converged))
    assert "converged" in line_with(out, "epochs") and "plateau" not in out
    assert "lbfgs" in line_with(out, "optimizer") and "none" not in line_with(out, "optimizer")


def test_train_summary_without_validation_or_pca():
    summary = {**SUMMARY, "rows_validation": 0, "validation_mse": None, "val_loss_history": None,
               "pca_mse": None, "stopped_early": False, "loss_history": [1.0, 0.5]}
    out = render(train_summary(summary))
    assert "validation" not in out
    assert "PCA" not in out
    assert "none held out" in out
    assert "plateau" not in out
    assert "log scale" not in out


def test_train_summary_ratio_against_train_error_when_no_validation():
    summary = {**SUMMARY, "rows_validation": 0, "validation_mse": None, "val_loss_history": None,
               "train_mse": 0.3, "pca_mse": 0.2}
    out = render(train_summary(summary))
    assert "train rows" in line_with(out, "PCA MSE")
    assert "1.5" in line_with(out, "vs PCA") and "higher" in line_with(out, "vs PCA")


def test_train_summary_tolerates_missing_keys():
    out = render(train_summary({"train_mse": 0.5}))
    assert "0.5" in line_with(out, "train MSE")
    assert "—" in line_with(out, "features")


# feature_error_table --------------------------------------------------------------------------

def test_feature_error_table_worst_first_with_mean():
    names = ["a", "b", "c", "d"]
    scaled = [0.2, 0.8, NAN, 0.5]
    original = [4.0, 100.0, NAN, 0.25]
    out = render(feature_error_table(names, scaled, original))
    body = [line for line in out.splitlines() if line.startswith("│ ")]
    assert [line.split()[1] for line in body] == ["b", "d", "a", "c", "mean"]
    assert "10" in line_with(out, "│ b ")  # RMSE of 100 original units²
    assert "0.5" in line_with(out, "│ d ")
    assert "0.5" in line_with(out, "mean of 4")  # mean of the finite scaled errors
    assert "worst" not in out


def test_feature_error_table_top_n():
    names = [f"x{i:02d}" for i in range(12)]
    scaled = np.arange(12) / 100
    out = render(feature_error_table(names, scaled, scaled * 10, top=3))
    assert "x11" in out and "x09" in out and "x08" not in out
    assert "the 3 worst of 12 features" in out
    assert "0.055" in line_with(out, "mean of 12")


def test_feature_error_table_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="length"):
        feature_error_table(["a", "b"], [0.1], [0.1, 0.2])


# compare_table --------------------------------------------------------------------------------

def test_compare_table_marks_suggestion_and_computes_missing_ratio():
    rows = [
        {"k": 1, "pca_explained_variance": 0.5331, "pca_mse": 0.4584, "ae_mse": 0.0881,
         "ratio": 0.1922},
        {"k": 2, "pca_explained_variance": 0.8091, "pca_mse": 0.2, "ae_mse": 0.02},
        {"k": 8, "pca_explained_variance": 0.99, "pca_mse": 0.01, "ae_mse": None},
    ]
    table = compare_table(rows, {"k": 2, "rule": "smallest k within 10% of the best AE MSE"})
    out = render(table)
    assert "0.5331" in line_with(out, "│ 1 ") and "0.1922" in line_with(out, "│ 1 ")
    k2 = line_with(out, "│ 2 ")
    assert "0.1" in k2 and "suggested" in k2
    assert "suggested" not in line_with(out, "│ 1 ")
    assert "—" in line_with(out, "│ 8 ")
    assert "suggested k = 2: smallest k within 10% of the best AE MSE" in out


def test_compare_table_without_suggestion():
    out = render(compare_table([{"k": 3, "pca_explained_variance": 0.9, "pca_mse": 0.1,
                                 "ae_mse": 0.05, "ratio": 0.5}], None))
    assert "no k suggested" in out
    assert "◀" not in out


# inspect_panel --------------------------------------------------------------------------------

INFO = {
    "format_version": 1,
    "aecli_version": "0.1.0",
    "created": "2024-06-01T12:00:00+00:00",
    "features": [f"p{i:02d}" for i in range(64)],
    "architecture": [
        {"in": 64, "out": 32, "activation": "relu"},
        {"in": 32, "out": 2, "activation": "linear"},
        {"in": 2, "out": 32, "activation": "relu"},
        {"in": 32, "out": 64, "activation": "sigmoid"},
    ],
    "scaler": "minmax",
    "missing": "impute",
    "settings": {"hidden": [32], "optimizer": "adam", "lr": 0.001, "seed": 7, "tied": False},
    "metrics": {"train_mse": 0.71234567, "error_quantiles": {"0.99": 2.5}},
    "threshold": 2.5,
}


def test_inspect_panel():
    panel = inspect_panel(INFO)
    assert isinstance(panel, Panel)
    out = render(panel)
    assert "written by aecli 0.1.0" in line_with(out, "format")
    assert "2024-06-01T12:00:00+00:00" in out
    features = line_with(out, "features")
    assert "64" in features and "p00" in features and "p63" in features
    assert "p30" not in out  # the middle of a long list is elided
    assert "64 → 32 → 2 → 32 → 64" in out
    assert "sigmoid" in out and "linear" in out
    assert "minmax" in out and "impute" in out
    assert "0.001" in line_with(out, "lr") and "adam" in out and "tied" in out
    assert "0.7123" in line_with(out, "train_mse")
    assert "0.99=2.5" in out
    assert "2.5" in line_with(out, "score threshold")


def test_inspect_panel_uncalibrated_and_path_title():
    out = render(inspect_panel({**INFO, "threshold": None, "settings": {}, "path": "m.npz"}))
    assert "not calibrated" in line_with(out, "score threshold")
    assert "aecli model m.npz" in out
    assert "Training settings" not in out


# score_table / score_summary ------------------------------------------------------------------

def test_score_table_shows_flag_in_words():
    def top(name, share, value, expected):
        return {"feature": name, "share": share, "value": value, "expected": expected}

    rows = [
        {"row": 1, "error": 0.1234567, "percentile": 50.0, "flagged": False,
         "top_features": [top("x01", 0.5, 1.0, 1.5), top("x02", 0.25, 2.0, 2.5)]},
        {"row": 1234, "error": 5.2, "percentile": 99.97, "flagged": True,
         "top_features": [top("y", 0.81234, 58.9, 5.7)]},
    ]
    out = render(score_table(rows, threshold=2.1, of=5))
    assert "threshold 2.1" in out
    first = line_with(out, "0.1235")
    assert "x01=1 (expected 1.5, 50%); x02=2 (expected 2.5, 25%)" in first
    assert "yes" not in first
    flagged = line_with(out, "1,234")
    assert "5.2" in flagged and "99.97" in flagged and "yes" in flagged
    assert "y=58.9 (expected 5.7, 81%)" in flagged
    assert "the 2 worst of 5 rows over the threshold" in out
    assert "worst of" not in render(score_table(rows, threshold=2.1, of=2))


def test_score_summary():
    text = score_summary(2000, 3, 2.1)
    assert isinstance(text, Text)
    assert text.plain == "3 of 2,000 rows (0.15%) over the threshold 2.1."
    assert "No rows over the threshold 2.1" in score_summary(10, 0, 2.1).plain
    assert "1 of 1 row (100%)" in score_summary(1, 1, 2.1).plain


def test_nothing_is_printed(capsys):
    train_summary(SUMMARY)
    feature_error_table(["a"], [0.1], [0.1])
    compare_table([], None)
    inspect_panel(INFO)
    score_table([], 1.0)
    score_summary(1, 0, 1.0)
    assert capsys.readouterr() == ("", "")
    assert "Console" not in vars(report)
