"""The one preparation path (aecli.preprocessing.prepare): every entry point gives the same
message for the same bad value, with the row number the input has."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

from aecli.cli import app
from aecli.estimators.rows import held_out
from aecli.pipeline.train import split_rows
from aecli.preprocessing import MissingPolicy, Preparation

N, SEED = 800, 2


def _validation_row() -> int:
    """A row (0-based) held out for validation both in memory and when streamed, so the
    scaler never sees it."""
    _, in_memory = split_rows(N, 0.5, SEED)
    streamed = np.flatnonzero(held_out(SEED, 0.5, 0, N))
    return int(np.intersect1d(in_memory, streamed)[len(streamed) // 3])


def _csv(path, bad_row: int | None, value: str) -> str:
    rng = np.random.default_rng(0)
    lines = ["a,b"]
    for i in range(N):
        a, b = rng.normal(size=2)
        lines.append(f"{value if i == bad_row else a},{b}")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _error(args) -> str:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = CliRunner().invoke(app, args)
    assert not caught, [str(w.message) for w in caught]
    assert r.exit_code == 2, r.output
    assert "Warning" not in r.stderr and "Traceback" not in r.stderr
    return r.stderr


@pytest.mark.parametrize("value,what", [("1e300", "too large"), ("inf", "infinite"),
                                        ("", "missing")])
def test_every_entry_path_gives_the_same_message(tmp_path, value, what):
    row = _validation_row()
    bad = _csv(tmp_path / "bad.csv", row, value)
    model = tmp_path / "m.npz"
    clean = _csv(tmp_path / "clean.csv", None, "0")
    r = CliRunner().invoke(app, ["train", clean, "-o", str(model), "--hidden", "4", "-k", "1",
                                 "--epochs", "2", "-q"])
    assert r.exit_code == 0, r.output
    train = ["train", bad, "-o", str(tmp_path / "x.npz"), "--validation", "0.5", "--seed",
             str(SEED), "--hidden", "4", "-k", "1", "--epochs", "2", "-q"]
    messages = {
        "in memory": _error(train),
        "streamed": _error([*train, "--stream"]),
        "encode": _error(["encode", str(model), bad]),
        "score": _error(["score", str(model), bad]),
    }
    first = {path: m.splitlines()[0] for path, m in messages.items()}
    assert len(set(first.values())) == 1, first
    assert "bad.csv: column 'a'" in first["encode"] and f"row {row + 1}" in first["encode"]
    assert what in first["encode"]
    assert not (tmp_path / "x.npz").exists()


def test_the_quick_and_careful_ways_refuse_an_overflow_at_the_same_cell():
    X = np.random.default_rng(1).normal(size=(50, 3))
    prep = Preparation.fit(X, ["a", "b", "c"], missing=MissingPolicy.ERROR,
                           scale="standard", dtype=np.float32)
    bad = X.copy()
    bad[[7, 30], [2, 1]] = 1e300
    with pytest.raises(Exception, match=r"column 'b', row 131: 1e\+300 is too large"):
        prep.transform(bad, 100)
    rows = np.arange(1000, 1050)
    with pytest.raises(Exception, match=r"column 'b', row 1030"):
        prep.transform(bad, rows=rows)


def test_a_range_wider_than_float64_is_refused_when_fitting():
    X = np.array([[1.0], [-1.7e308], [1.7e308]])
    with pytest.raises(Exception, match=r"column 'a', row \d: .*range overflows float64"):
        Preparation.fit(X, ["a"], missing="error", scale="minmax", dtype=np.float64)


def test_a_policy_can_be_swapped_but_not_to_impute_without_imputation_values():
    X = np.random.default_rng(2).normal(size=(40, 2))
    prep = Preparation.fit(X, ["a", "b"], missing="error", scale="standard", dtype=np.float64)
    assert prep.fill is not None  # fitted whatever the policy
    gappy = X.copy()
    gappy[5, 1] = np.nan
    assert prep.with_policy(None) is prep
    drop = prep.with_policy(MissingPolicy.DROP).transform(gappy)
    assert len(drop.X) == 39 and not drop.keep[5]
    filled = prep.with_policy(MissingPolicy.IMPUTE).transform(gappy)
    assert filled.imputed[5, 1] and filled.imputed.sum() == 1
    old = Preparation(["a", "b"], MissingPolicy.ERROR, prep.scaler, None, np.float64)
    with pytest.raises(Exception, match="holds no imputation values") as e:
        old.with_policy(MissingPolicy.IMPUTE)
    assert "--missing drop" in str(e.value)
