"""The estimator owns the score and the end of every fit: ``aecli score`` writes the scores
:meth:`aecli.Autoencoder.score_parts` computes, bit for bit; a fit's figures are one
:class:`aecli.estimators.finish.FittedState`, which the training summary and the model file
keep and a model file gives back unchanged, as it gives back the whole
:class:`aecli.estimators.finish.FittedModel`."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from typer.testing import CliRunner

from aecli.cli import app
from aecli.estimators import Autoencoder, Hyperparameters
from aecli.estimators.finish import STATE_KEYS, FittedModel, FittedState
from aecli.estimators.scoring import LIMIT
from aecli.pipeline import modelfile

DATA = Path(__file__).resolve().parent / "data"

NAMES = [f"x{i}" for i in range(6)]


def _table(n: int, seed: int, gaps: int = 0) -> pd.DataFrame:
    """Rows near a 2-D plane in 6-D, with ``gaps`` cells missing."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2)) @ rng.normal(size=(2, 6)) + 0.1 * rng.normal(size=(n, 6))
    for i, j in zip(rng.choice(n, gaps, replace=False), rng.integers(0, 6, gaps), strict=True):
        X[i, j] = np.nan
    return pd.DataFrame(X, columns=NAMES)


def _ok(*args):
    r = CliRunner().invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    return r


def test_the_cli_scores_are_the_estimators_bit_for_bit(tmp_path):
    """A small table's ensemble, with imputed cells: the score command's scores and errors
    are the estimator's score_parts, to the last bit, and anomaly_score agrees with them."""
    train, new = tmp_path / "train.csv", tmp_path / "new.csv"
    _table(300, 0, gaps=20).to_csv(train, index=False)
    frame = _table(200, 1, gaps=30)
    frame.to_csv(new, index=False)
    model, out = tmp_path / "m.npz", tmp_path / "scores.parquet"
    _ok("train", train, "-o", model, "--epochs", "3", "--missing", "impute", "-q")
    _ok("score", model, new, "-o", out, "-q")
    written = pq.read_table(out).to_pandas()

    bundle = modelfile.read_model(model)
    ae = bundle.autoencoder
    assert len(ae.members_) == 5  # 300 rows: calibrated out of fold, the folds score too
    prepared = bundle.prepare(frame[bundle.features].to_numpy(float))
    parts = ae.score_parts(prepared.X, imputed=prepared.imputed)
    np.testing.assert_array_equal(written["score"].to_numpy(), parts.scores)
    np.testing.assert_array_equal(written["error"].to_numpy(), parts.errors)
    whole = ~prepared.imputed.any(axis=1)  # anomaly_score knows no imputed cells
    rows = pd.DataFrame(prepared.X[whole], columns=bundle.features)  # named, as fitted
    np.testing.assert_allclose(ae.anomaly_score(rows), parts.scores[whole], rtol=1e-5)


def test_a_model_file_gives_back_the_fitted_state_and_score_quantiles(tmp_path):
    model = tmp_path / "m.npz"
    data = tmp_path / "d.csv"
    _table(2000, 2).to_csv(data, index=False)
    _ok("train", data, "-o", model, "--epochs", "2", "-q")
    again = tmp_path / "again.npz"
    bundle = modelfile.read_model(model)
    with open(again, "wb") as f:
        modelfile.write_model(bundle, f)
    first, second = bundle.autoencoder, modelfile.read_model(again).autoencoder
    assert FittedState.of(second) == FittedState.of(first)
    np.testing.assert_array_equal(second.score_quantiles_, first.score_quantiles_)
    assert set(STATE_KEYS) <= set(bundle.summary)
    assert FittedState.from_summary(bundle.summary) == FittedState.of(first)
    # the whole fitted model, one typed object, comes back: networks, code terms, evidence
    a, b = FittedModel.of(first), FittedModel.of(second)
    np.testing.assert_array_equal(b.network.theta, a.network.theta)
    assert len(b.members) == len(a.members) == 5
    for m, n in zip(a.members, b.members, strict=True):
        np.testing.assert_array_equal(n.network.theta, m.network.theta)
        assert n.scale == m.scale
    np.testing.assert_array_equal(b.code_distance.whitening, a.code_distance.whitening)
    assert a.evidence is not None  # a numeric table in memory: the combined score
    for name, array in a.evidence.arrays().items():
        np.testing.assert_array_equal(b.evidence.arrays()[name], array)


def test_in_memory_and_streamed_fits_end_in_the_same_state():
    """Both fits end in the one finish step: the same fitted attributes, and every field of
    the state filled (the streamed fit has no held-out rows here: its own rows calibrate)."""
    X = _table(400, 3).to_numpy(np.float32)
    settings = {"latent": 2, "hidden": (8,), "epochs": 2, "seed": 0}
    memory = Autoencoder(**settings).fit(X)
    streamed = Autoencoder(**settings).fit_chunks(lambda: [X[:150], X[150:]])
    assert {a for a in vars(memory) if a.endswith("_")} == {
        a for a in vars(streamed) if a.endswith("_")}
    for ae in (memory, streamed):
        state = FittedState.of(ae)
        assert all(getattr(state, f.name) is not None for f in fields(state)
                   if f.name not in ("validation_mse", "val_loss_history"))
        assert state.threshold == ae.calibration_.threshold
        assert state.calibration_rows == ae.calibration_.rows
    assert streamed.calibration_.source == "training rows"
    assert streamed.validation_mse_ is None


def test_the_help_states_the_score_rule_the_code_implements():
    """--score-by's help once described a rule the score no longer followed (the code term
    in units of the mean training error); it names the limits the code uses."""
    help_text = next(f.metadata["allowed"].help for f in fields(Hyperparameters)
                     if f.name == "score_by")
    assert LIMIT == 0.99 and "99th percentile" in help_text
    assert "mean training error" not in help_text


def test_a_format_1_summary_reads_in_todays_terms():
    """Format 1 (aecli 0.1) recorded no optimizer, budget, stop reason or calibration count:
    read by its format version, it ran Adam for the epochs it records and stopped at its
    budget, as the estimator read it before; the summary says so too."""
    bundle = modelfile.read_model(DATA / "model-format-1.npz")
    s, ae = bundle.summary, bundle.autoencoder
    assert (s["optimizer"], s["epochs_budget"], s["stop_reason"]) == ("adam", 3, "budget")
    assert s["calibration_rows"] is None and ae.calibration_rows_ is None
    assert FittedState.of(ae) == FittedState.from_summary(s)
    assert bundle.preparation.categorical == [] and bundle.preparation.bad_values.value == "error"
