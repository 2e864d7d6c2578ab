"""Anomaly scoring (issue 6): corrupted rows rank at the top, the threshold is calibrated,
and errors come per feature in scaled and original units."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits
from typer.testing import CliRunner

from aecli.cli import app
from aecli.pipeline.modelfile import read_model
from aecli.pipeline.score import explain
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
    assert ae.score_quantiles_[0] <= ae.threshold_
    # The threshold sits near the 99th percentile of calibration errors (contamination 0.01):
    # read from them when 10 lie above it, else from their fitted tail
    if ae.calibration_.method == "quantile":
        assert bundle.percentile(np.array([ae.threshold_]))[0] == pytest.approx(99.0, abs=0.5)
    else:
        assert ae.calibration_rows_ < 1000
        assert bundle.percentile(np.array([ae.threshold_]))[0] >= 95.0


def test_original_units_scale_by_the_column_scale(bundle, digits_split):
    _, test, _ = digits_split
    _, sq = bundle.errors(test[:5])
    orig = bundle.original_units(sq)
    np.testing.assert_allclose(orig, sq * bundle.preparation.scaler.scale_**2, rtol=1e-6)


def test_explanations_name_the_largest_cells_with_value_and_expected_value():
    sq = np.array([[0.0, 3.0, 1.0, 6.0], [4.0, 0.0, 0.0, 0.0]])
    X = np.array([[1.0, 2.0, 3.0, 58.9], [7.0, 8.0, 9.0, 10.0]])
    X_hat = np.array([[1.0, 1.5, 2.0, 5.7], [6.0, 8.0, 9.0, 10.0]])
    out = explain(sq, X, X_hat, ["a", "b", "c", "d"], n=2)
    assert [t["feature"] for t in out[0]] == ["d", "b"]
    assert out[0][0] == {"feature": "d", "share": pytest.approx(0.6), "value": 58.9,
                         "expected": 5.7}
    assert out[1] == [{"feature": "a", "share": 1.0, "value": 7.0, "expected": 6.0}]


def _write_csv(path, X):
    header = ",".join(f"p{j:02d}" for j in range(X.shape[1]))
    np.savetxt(path, X, delimiter=",", header=header, comments="", fmt="%g")


def test_score_cli_ranks_corrupted_rows_and_fails_on_anomaly(tmp_path, digits_split):
    train, test, bad = digits_split
    _write_csv(tmp_path / "train.csv", train)
    _write_csv(tmp_path / "test.csv", test)
    runner = CliRunner()
    model = tmp_path / "m.npz"
    # scribbled pixels take common values (0 or 16): a fault of the reconstruction alone,
    # which the column tails and neighbours of the default score dilute (17 of the 20 there)
    r = runner.invoke(app, ["train", str(tmp_path / "train.csv"), "-o", str(model), "-k", "8",
                            "--epochs", "100", "--patience", "15", "--scale", "minmax", "-q",
                            "--score-by", "error+code"])
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
    assert list(report["feature_mse_original_units"]) == read_model(model).features
    r = runner.invoke(app, ["score", str(model), str(tmp_path / "test.csv"), "--json", "-q",
                            "--fail-on-anomaly"])
    assert r.exit_code == 1
    r = runner.invoke(app, ["score", str(model), str(tmp_path / "test.csv"), "-q",
                            "--fail-on-anomaly", "--threshold", "1e9", "-o",
                            str(tmp_path / "s.csv")])
    assert r.exit_code == 0, r.output
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[0].split(",")[:6] == ["row", "score", "error", "percentile", "p_value",
                                       "flagged"]
    assert len(lines) == len(test) + 1


def _score(bundle, X, threshold, keep_flagged=1000, top=10, batch_rows=100):
    import pyarrow as pa

    from aecli.pipeline import apply, score

    names = bundle.features
    batches = [pa.RecordBatch.from_arrays([pa.array(X[s : s + batch_rows, j])
                                           for j in range(X.shape[1])], names)
               for s in range(0, len(X), batch_rows)]
    totals = apply.ErrorTotals()
    summary = score.ScoreSummary(threshold, keep_flagged=keep_flagged)
    out = pa.Table.from_batches(list(score.score_stream(bundle, batches, [], "x", totals,
                                                        summary, top)))
    return out.to_pydict(), summary.report(bundle, totals)


def test_when_more_rows_are_flagged_than_kept_the_report_holds_the_worst(digits_split, bundle):
    _, test, _ = digits_split
    scores = bundle.scores(test)
    assert not np.allclose(scores, bundle.errors(test)[0])  # the code term counts
    threshold = float(np.quantile(scores, 0.5))  # half the rows, in every batch
    rows, report = _score(bundle, test, threshold, keep_flagged=15)
    assert report["flagged"] == int((scores > threshold).sum()) > 15
    assert report["flagged_rows_cut"] is True and len(report["flagged_rows"]) == 15
    worst = np.argsort(-scores)[:15] + 1  # 1-based rows, worst first
    assert [r["row"] for r in report["flagged_rows"]] == worst.tolist()
    assert [r["row"] for r in report["worst"]] == worst[:10].tolist()
    assert rows["flagged"] == (scores > threshold).tolist()
    np.testing.assert_allclose(rows["score"], scores)
    _, all_kept = _score(bundle, test, threshold)
    assert all_kept["flagged_rows_cut"] is False


def test_imputed_cells_do_not_count_toward_a_rows_score(digits_split):
    train, test, _ = digits_split
    names = [f"p{j:02d}" for j in range(64)]
    bundle = train_bundle(train, names, dict(latent=8, hidden=(32,), epochs=20, seed=0),
                          scale="minmax", missing="impute")
    gappy = test[:50].copy()
    gappy[3, [20, 21, 22]] = np.nan
    gappy[7, 40] = np.nan
    rows, report = _score(bundle, gappy, threshold=0.0)
    assert rows["imputed"][:8] == [0, 0, 0, 3, 0, 0, 0, 1]
    assert report["cells_imputed"] == 4
    # The error is the mean over the observed cells of the imputed row's reconstruction.
    filled = np.where(np.isnan(gappy), bundle.preparation.fill, gappy)
    xs = bundle.preparation.transform(filled).X
    sq_filled = bundle.scored_scaled(xs).sq
    for i, gaps in ((3, [20, 21, 22]), (7, [40])):
        observed = np.setdiff1d(np.arange(64), gaps)
        assert rows["error"][i] == pytest.approx(sq_filled[i, observed].mean(), rel=1e-6)
        assert not any(f"p{j:02d}=" in rows["top_features"][i] for j in gaps)
    # Rows without gaps score exactly as they do alone.
    alone = bundle.scored_scaled(bundle.prepare(test[:50]).X).errors
    clean = [i for i in range(50) if i not in (3, 7)]
    np.testing.assert_array_equal(np.asarray(rows["error"])[clean], alone[clean])


def test_the_threshold_says_how_many_rows_it_rests_on_and_warns_when_too_few(tmp_path):
    from aecli.pipeline import modelfile

    rng = np.random.default_rng(3)
    X = rng.normal(size=(600, 5))
    names = list("abcde")
    settings = dict(latent=2, hidden=(8,), epochs=3)
    # about 60 validation rows are too few for 1%: every row's out-of-fold score calibrates
    oof = train_bundle(X, names, settings)
    assert oof.summary["calibration_rows"] == oof.autoencoder.calibration_rows_ == 600
    assert oof.summary["calibration_source"] == "out-of-fold"
    assert oof.summary["calibration_warning"] is None
    enough = train_bundle(X, names, {**settings, "contamination": 0.2})  # 10 / 0.2 = 50 rows
    assert enough.summary["calibration_source"] == "validation rows"
    # the split holds each row out by its number (about 10%): these are the rows held out
    assert enough.summary["calibration_rows"] == enough.summary["rows_validation"] >= 50
    assert enough.summary["calibration_method"] == "quantile"
    # 80 rows in all: fewer than the 100 needed. The autoencoder's score, whose threshold is
    # its tail fit; the combined score's may be raised to its own rows' quantile instead
    # (its floor), as it is here by 10 neighbours and the code neighbours at half weight
    few = train_bundle(X[:80], names, {**settings, "score_by": "error+code"})
    assert few.summary["calibration_rows"] == 80
    assert few.summary["calibration_method"] == "tail fit"
    assert "80 rows' scores, fewer than the 100" in few.summary["calibration_warning"]
    path = tmp_path / "m.npz"
    with open(path, "wb") as f:
        modelfile.write_model(few, f)
    assert modelfile.read_model(path).autoencoder.calibration_rows_ == 80
    runner = CliRunner()
    r = runner.invoke(app, ["inspect", str(path)])
    panel = " ".join(r.stdout.replace("│", " ").split())
    assert "on 80 rows' out-of-fold scores, its tail fitted: too few" in panel
    with open(path, "wb") as f:
        modelfile.write_model(oof, f)
    r = runner.invoke(app, ["inspect", str(path)])
    panel = " ".join(r.stdout.replace("│", " ").split())
    # what the default chose and why (issue 27)
    assert ("anomaly score combined error + code distance, column tails, row and code "
            "neighbours, each a p-value, by Fisher's method: the default on a numeric table "
            "(--score-by error+code: the first alone)") in panel
    assert "the first is the mean of 6 models'" in panel
    data = tmp_path / "d.csv"
    np.savetxt(data, X[:80], delimiter=",", header=",".join(names), comments="")
    r = runner.invoke(app, ["train", str(data), "-o", str(tmp_path / "n.npz"), "--epochs", "2"])
    assert r.exit_code == 0 and "warning: the anomaly threshold rests on 80" in r.stderr
    r = runner.invoke(app, ["train", str(data), "-o", str(tmp_path / "n.npz"), "--epochs", "2",
                            "-q"])
    assert r.exit_code == 0 and r.stderr == ""


def test_a_streamed_fit_scores_by_the_same_code_statistics_as_its_rows_give():
    from aecli import Autoencoder
    from aecli.estimators.scoring import CodeDistance

    rng = np.random.default_rng(5)
    X = rng.normal(size=(900, 6))
    X[:, 3] = X[:, 0] * 2 + 0.1 * X[:, 3]
    ae = Autoencoder(latent=2, hidden=(8,), epochs=2, dtype="float64").fit_chunks(
        lambda: [X[:400], X[400:800]], validation_data=X[800:])
    assert ae.calibration_.source == "validation rows" and ae.calibration_rows_ == 100
    expected = CodeDistance.from_codes(ae.transform(X[:800]), ae.reconstruction_error(X[:800]))
    np.testing.assert_allclose(ae.code_distance_.center, expected.center, rtol=1e-9)
    np.testing.assert_allclose(ae.anomaly_score(X[800:]),
                               ae.reconstruction_error(X[800:]) + expected.of(
                                   ae.transform(X[800:])), rtol=1e-7)
    np.testing.assert_allclose(np.quantile(ae.anomaly_score(X[800:]), 0.5),
                               np.interp(50, np.linspace(0, 100, 101), ae.score_quantiles_))


def test_score_by_chooses_what_the_score_is_made_of(tmp_path):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(400, 5))
    X[:, 4] = X[:, 0] + X[:, 1]
    _write_csv(tmp_path / "d.csv", X)
    runner = CliRunner()
    scores = {}
    for by in ("error", "error+code"):
        model = tmp_path / f"{by}.npz"
        r = runner.invoke(app, ["train", str(tmp_path / "d.csv"), "-o", str(model), "--epochs",
                                "5", "--hidden", "8", "--score-by", by, "-q"])
        assert r.exit_code == 0, r.output
        out = tmp_path / f"{by}.csv"
        r = runner.invoke(app, ["score", str(model), str(tmp_path / "d.csv"), "-o", str(out),
                                "-q"])
        assert r.exit_code == 0, r.output
        scores[by] = pd.read_csv(out)
        panel = " ".join(runner.invoke(app, ["inspect", str(model)]).stdout.split())
        assert f"anomaly score {'error + code distance' if by != 'error' else 'error'}" in panel
    alone, both = scores["error"], scores["error+code"]
    np.testing.assert_array_equal(alone["score"], alone["error"])
    assert (both["score"] > both["error"]).mean() > 0.99  # every code has some distance
    r = runner.invoke(app, ["score", str(tmp_path / "error+code.npz"), str(tmp_path / "d.csv"),
                            "--json", "--top", "20", "-q"])
    worst = json.loads(r.stdout)["worst"]
    codes = [t for w in worst for t in w["top_features"] if t.get("code")]
    assert codes and all(t["distance"] > 0 and 0 < t["share"] <= 1 for t in codes)
    for w in worst:  # the shares are of the score: the error's part and the code's
        assert sum(t["share"] for t in w["top_features"]) <= 1 + 1e-9


def test_the_calibration_fits_report_their_phase_and_can_be_left_out():
    from aecli import Autoencoder

    X = np.random.default_rng(6).normal(size=(300, 4))
    phases = []
    ae = Autoencoder(latent=2, hidden=(8,), epochs=2).fit(
        X, callback=lambda r: phases.append(r.phase))
    assert ae.calibration_.source == "out-of-fold"
    assert list(dict.fromkeys(phases)) == [""] + [f"calibration {i}/5" for i in range(1, 6)]
    phases.clear()
    one = Autoencoder(latent=2, hidden=(8,), epochs=2).fit(
        X, callback=lambda r: phases.append(r.phase), out_of_fold=False)
    assert set(phases) == {""} and one.calibration_.source == "validation rows"
    np.testing.assert_array_equal(one.network_.theta, ae.network_.theta)  # the same model


def test_a_large_tables_own_statistics_come_from_a_sample_of_its_training_rows(monkeypatch):
    from aecli import Autoencoder
    from aecli.estimators import autoencoder

    monkeypatch.setattr(autoencoder, "OWN_ROWS", 500)  # the sample, scaled down for speed
    rng = np.random.default_rng(7)
    X = rng.normal(size=(3000, 5))
    X[:, 4] = X[:, 0] - X[:, 1]
    ae = Autoencoder(latent=2, hidden=(8,), epochs=3, validation=0.0, dtype="float64",
                     score_by="error").fit(X)
    assert ae.calibration_.source == "training rows" and ae.calibration_rows_ == 1000
    # 1000: an empirical 1% quantile needs that many, so the sample never goes below it
    full = ae.reconstruction_error(X)
    assert ae.train_mse_ == pytest.approx(full.mean(), rel=0.1)
    assert ae.threshold_ == pytest.approx(np.quantile(full, 0.99), rel=0.25)
    again = Autoencoder(**ae.get_params()).fit(X)
    assert again.threshold_ == ae.threshold_  # the sample is drawn from the seed


# -- p-values (issue 24, item 6) ------------------------------------------------------------

@pytest.fixture(scope="module")
def small_bundle():
    rng = np.random.default_rng(5)
    z = rng.normal(size=(400, 2))
    X = np.tanh(z @ rng.normal(size=(2, 6))) + 0.1 * rng.normal(size=(400, 6))
    return train_bundle(X, [f"c{j}" for j in range(6)], {"epochs": 5, "seed": 0}), X


def test_p_values_keep_falling_far_past_the_threshold(small_bundle):
    # The percentile read 100 for every score past the largest calibration score, so a row
    # three or ten times the threshold looked like one at it.
    bundle, _ = small_bundle
    t = bundle.autoencoder.threshold_
    p = bundle.score_distribution().p_value(np.array([t, 3 * t, 10 * t]))
    assert 0 < p[2] < p[1] < p[0] <= 0.05, p
    pct = bundle.percentile(np.array([t, 3 * t]))
    assert pct[0] < pct[1] < 100  # and the percentile no longer stops at 100


def test_the_score_output_has_p_values_that_agree_with_the_percentile(small_bundle):
    bundle, X = small_bundle
    far = X[:4] + np.array([1.5, 2.0, 3.0, 5.0])[:, None]  # further and further out
    rows, report = _score(bundle, np.vstack([X, far]), bundle.autoencoder.threshold_,
                          top=4)
    p, pct = np.array(rows["p_value"]), np.array(rows["percentile"])
    assert list(rows)[:6] == ["row", "score", "error", "percentile", "p_value", "flagged"]
    np.testing.assert_allclose(pct, 100 * (1 - p), atol=1e-9)
    assert ((p > 0) & (p <= 1)).all()
    # monotone in the score, and the far rows' p-values fall one after another
    order = np.argsort(rows["score"])
    assert (np.diff(p[order]) <= 0).all()
    assert p[-4] > p[-3] > p[-2] > p[-1] > 0
    # a row over the threshold reads a p-value of about --contamination or less
    flagged = np.array(rows["flagged"])
    n = bundle.autoencoder.calibration_rows_
    assert flagged[-1] and (p[flagged] <= 0.01 + 1 / (n + 1) + 1e-9).all()
    assert [w["p_value"] for w in report["worst"]] == sorted(p)[:4]


def test_p_values_are_monotone_and_in_range_over_a_sweep():
    from aecli.estimators.calibration import ScoreDistribution, calibrate

    rng = np.random.default_rng(2)
    for rows in (30, 500, 5000):  # a tail fit, and quantiles
        cal = rng.exponential(size=rows) + rng.exponential(size=rows) ** 2
        dist = ScoreDistribution.from_quantiles(np.quantile(cal, np.linspace(0, 1, 101)), rows)
        t = calibrate(cal, 0.01).threshold
        s = np.linspace(0, 50 * t, 20_001)
        p = dist.p_value(s)
        assert (np.diff(p) <= 0).all() and (p > 0).all() and (p <= 1).all()
        assert p[0] == 1 and dist.p_value(np.array([cal.max()]))[0] == pytest.approx(
            1 / (rows + 1))
        # past the largest calibration score it still falls, strictly, for a long way
        past = s[(s > cal.max()) & (s < cal.max() + 100 * dist.tail.scale)]
        assert (np.diff(dist.p_value(past)) < 0).all()
        if rows >= 1000:  # an empirical threshold: its p-value is the contamination
            assert dist.p_value(np.array([t]))[0] == pytest.approx(0.01, abs=1 / (rows + 1))
    # never exactly 0 for a finite score, NaN for NaN, 0 for inf
    p = dist.p_value(np.array([1e300, np.nan, np.inf]))
    assert p[0] > 0 and np.isnan(p[1]) and p[2] == 0


def test_p_values_from_calibration_scores_that_are_all_alike():
    from aecli.estimators.calibration import ScoreDistribution

    for value in (0.0, 2.0):
        dist = ScoreDistribution.from_quantiles(np.full(101, value), 50)
        p = dist.p_value(np.array([value, value + 1e-6, value + 1.0, 1e9]))
        assert p[0] == pytest.approx(1 / 51) and (np.diff(p) <= 0).all() and (p > 0).all()


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_older_model_files_give_p_values_from_their_quantiles(version):
    # Every format stores the calibration quantiles; files before aecli 0.2 (format 1) do
    # not record on how many rows, and the quantiles' count stands in for it.
    from pathlib import Path

    bundle = read_model(Path(__file__).parent / "data" / f"model-format-{version}.npz")
    t = bundle.autoencoder.threshold_
    p = bundle.score_distribution().p_value(np.array([0.0, t, 3 * t, 10 * t]))
    assert p[0] == 1 and 0 < p[3] < p[2] < p[1] < 1


def test_the_stderr_table_shows_the_p_value():
    from rich.console import Console

    from aecli.report.tables import score_table

    console = Console(record=True, width=200, no_color=True)
    console.print(score_table([{"row": 7, "score": 9.0, "error": 9.0, "percentile": 99.9985,
                                "p_value": 1.517e-05, "flagged": True, "top_features": []}],
                              threshold=2.1))
    out = console.export_text()
    assert "p-value" in out and "1.517e-05" in out
