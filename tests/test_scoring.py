"""Anomaly scoring (issue 6): corrupted rows rank at the top, the threshold is calibrated,
and errors come per feature in scaled and original units."""

import json

import numpy as np
import pytest
from sklearn.datasets import load_digits
from typer.testing import CliRunner

from aecli.cli import app
from aecli.pipeline.score import top_contributors
from aecli.pipeline.train import train_bundle

N_CORRUPT = 20


@pytest.fixture(scope="module")
def digits_split():
    X = load_digits().data.astype(np.float64)
    rng = np.random.default_rng(7)
    order = rng.permutation(len(X))
    train, test = X[order[:1400]], X[order[1400:]].copy()
    bad = rng.choice(len(test), N_CORRUPT, replace=False)
    # Scribbles: 8 random pixels of each corrupted image flipped to the other extreme.
    for i in bad:
        cols = rng.choice(64, 8, replace=False)
        test[i, cols] = np.where(test[i, cols] > 8, 0.0, 16.0)
    return train, test, set(bad.tolist())


@pytest.fixture(scope="module")
def bundle(digits_split):
    train, _, _ = digits_split
    names = [f"p{j:02d}" for j in range(64)]
    params = dict(latent=8, hidden=(64, 32), epochs=100, patience=15, seed=0)
    # Pixels share one range, so min-max scaling keeps rarely-inked pixels from dominating the
    # error the way unit-variance scaling would.
    return train_bundle(train, names, params, scale="minmax")


def test_corrupted_rows_rank_at_the_top(digits_split, bundle):
    _, test, bad = digits_split
    errors, _ = bundle.errors(test)
    top = set(np.argsort(-errors)[:N_CORRUPT].tolist())
    assert len(top & bad) >= 0.9 * N_CORRUPT


def test_threshold_is_the_calibrated_quantile(bundle):
    ae = bundle.autoencoder
    assert ae.error_quantiles_[0] <= ae.threshold_ <= ae.error_quantiles_[-1]
    # The threshold sits at the 99th percentile of calibration errors (contamination 0.01).
    assert bundle.percentile(np.array([ae.threshold_]))[0] == pytest.approx(99.0, abs=0.5)


def test_original_units_scale_by_the_column_scale(bundle, digits_split):
    _, test, _ = digits_split
    _, sq = bundle.errors(test[:5])
    orig = bundle.original_units(sq)
    np.testing.assert_allclose(orig, sq * bundle.preparation.scaler.scale_**2, rtol=1e-6)


def test_top_contributors_name_the_largest_cells():
    sq = np.array([[0.0, 3.0, 1.0, 6.0], [4.0, 0.0, 0.0, 0.0]])
    out = top_contributors(sq, ["a", "b", "c", "d"], n=2)
    assert [n for n, _ in out[0]] == ["d", "b"]
    assert out[0][0][1] == pytest.approx(0.6)
    assert out[1][0] == ("a", pytest.approx(1.0))


def _write_csv(path, X):
    header = ",".join(f"p{j:02d}" for j in range(X.shape[1]))
    np.savetxt(path, X, delimiter=",", header=header, comments="", fmt="%g")


def test_score_cli_ranks_corrupted_rows_and_fails_on_anomaly(tmp_path, digits_split):
    train, test, bad = digits_split
    _write_csv(tmp_path / "train.csv", train)
    _write_csv(tmp_path / "test.csv", test)
    runner = CliRunner()
    model = tmp_path / "m.npz"
    r = runner.invoke(app, ["train", str(tmp_path / "train.csv"), "-o", str(model), "-k", "8",
                            "--epochs", "100", "--patience", "15", "--scale", "minmax", "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["score", str(model), str(tmp_path / "test.csv"), "--json",
                            "--top", str(N_CORRUPT), "-q"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    rows = {w["row"] - 1 for w in report["worst"]}  # rows are 1-based
    assert len(rows) == N_CORRUPT
    assert len(rows & bad) >= 0.9 * N_CORRUPT
    assert report["flagged"] >= 1
    assert all(len(w["top_features"]) == 3 for w in report["worst"])
    assert set(report["feature_mse_original_units"]) == {f"p{j:02d}" for j in range(64)}
    r = runner.invoke(app, ["score", str(model), str(tmp_path / "test.csv"), "--json", "-q",
                            "--fail-on-anomaly"])
    assert r.exit_code == 1
    r = runner.invoke(app, ["score", str(model), str(tmp_path / "test.csv"), "-q",
                            "--fail-on-anomaly", "--threshold", "1e9", "-o",
                            str(tmp_path / "s.csv")])
    assert r.exit_code == 0, r.output
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[0].split(",")[:4] == ["row", "error", "percentile", "anomaly"]
    assert len(lines) == len(test) + 1
