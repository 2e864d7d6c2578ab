"""A fit on a table with gaps (``--missing impute``) calibrates on scores computed as ``aecli
score`` computes them: the filled-in cells left out of each row's error. Counted, a column
mostly filled in with its mean (which the network learns to reconstruct) lowered the
calibration scores below those of new rows, and the threshold with them."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from conftest import ok

from aecli.estimators import Hyperparameters
from aecli.pipeline import modelfile
from aecli.pipeline.train import split_rows

N_TRAIN, N_NEW, CONTAMINATION = 4000, 4000, 0.05
GAPS = {"c1": 0.8, "c3": 0.3}  # each column's share of missing cells


def _table(rows: int, rng, levels: bool) -> pd.DataFrame:
    """Six columns driven by two factors, with gaps; ``levels``: and a categorical column."""
    f = rng.normal(size=(rows, 2))
    load = np.array([[1, 0], [0.8, 0.6], [0, 1], [0.5, -0.9], [0.9, 0.3], [-0.4, 0.9]])
    t = pd.DataFrame(f @ load.T + 0.3 * rng.normal(size=(rows, 6)),
                     columns=[f"c{j}" for j in range(6)])
    for c, share in GAPS.items():
        t.loc[rng.random(rows) < share, c] = np.nan
    if levels:
        t["k"] = np.where(f[:, 0] > 0.5, "high", np.where(f[:, 0] < -0.5, "low", "mid"))
    return t


@pytest.mark.parametrize(("levels", "score_by", "score"), [
    (True, "auto", "error"), (False, "auto", "combined"), (False, "error+code", "error+code")])
def test_a_fit_with_gaps_calibrates_on_the_scores_score_gives(tmp_path, levels, score_by,
                                                              score):
    rng = np.random.default_rng(0)
    train, new = _table(N_TRAIN, rng, levels), _table(N_NEW, rng, levels)
    train.to_csv(tmp_path / "train.csv", index=False)
    new.to_csv(tmp_path / "new.csv", index=False)
    model = tmp_path / "m.npz"
    ok("train", tmp_path / "train.csv", "-o", model, "--missing", "impute", "--seed", "0",
       "--contamination", str(CONTAMINATION), "--score-by", score_by, "-q")
    bundle = modelfile.read_model(model)
    assert bundle.summary["score"] == score
    assert bundle.summary["calibration_source"] == "validation rows"

    # the fit's calibration scores are those `score` gives its validation rows (with the
    # filled-in cells counted, some of their quantiles were 14% to 69% off here)
    _, val = split_rows(N_TRAIN, Hyperparameters(seed=0).resolved(N_TRAIN).validation, 0)
    assert train.iloc[val].isna().any(axis=None)
    train.iloc[val].to_csv(tmp_path / "held.csv", index=False)
    scored = pd.read_csv(io.StringIO(ok("score", model, tmp_path / "held.csv", "-q").stdout))
    np.testing.assert_allclose(np.quantile(scored["score"], np.linspace(0, 1, 101)),
                               bundle.autoencoder.score_quantiles_, rtol=1e-6)

    # and clean new rows cross the threshold at about the rate it was set for: binomial
    # bounds on the new rows' share, widened by the threshold's own noise (the share of
    # validation rows over it is binomial too)
    flagged = pd.read_csv(io.StringIO(ok("score", model, tmp_path / "new.csv", "-q").stdout)
                          )["flagged"].astype(str).str.lower().eq("true")
    spread = CONTAMINATION * (1 - CONTAMINATION)
    bound = 3.5 * np.sqrt(spread / N_NEW + spread / len(val))
    assert abs(flagged.mean() - CONTAMINATION) < bound, (flagged.mean(), bound)


@pytest.mark.parametrize("where", ["stream", "cluster"])
@pytest.mark.parametrize("score_by", ["error+code", "auto"])
def test_a_fit_in_passes_with_gaps_calibrates_on_the_scores_score_gives(request, tmp_path,
                                                                        where, score_by):
    from aecli.estimators.rows import held_out

    n = 3000
    train = _table(n, np.random.default_rng(1), levels=False)
    if where == "cluster":
        pytest.importorskip("distributed")
        data, how = tmp_path / "parts", ["--scheduler", request.getfixturevalue("cluster")]
        data.mkdir()
        for i, part in enumerate(np.array_split(np.arange(n), 3)):
            train.iloc[part].to_parquet(data / f"p{i}.parquet", index=False)
    else:
        data, how = tmp_path / "train.parquet", ["--stream"]
        train.to_parquet(data, index=False)
    model = tmp_path / "m.npz"
    ok("train", data, *how, "-o", model, "--missing", "impute", "--seed", "0", "--epochs", "3",
       "--score-by", score_by, "-q")
    bundle = modelfile.read_model(model)
    assert bundle.summary["calibration_source"] == "validation rows"
    assert bundle.summary["score"] == {"auto": "combined"}.get(score_by, score_by)
    fraction = Hyperparameters(seed=0).resolved(n, streamed=True).validation
    val = held_out(0, fraction, 0, n)  # the rule every fit splits by
    train[val].to_csv(tmp_path / "held.csv", index=False)
    scored = pd.read_csv(io.StringIO(ok("score", model, tmp_path / "held.csv", "-q").stdout))
    assert len(scored) == bundle.summary["rows_validation"]
    np.testing.assert_allclose(np.quantile(scored["score"], np.linspace(0, 1, 101)),
                               bundle.autoencoder.score_quantiles_, rtol=1e-6)


def test_drift_places_a_batch_by_the_scores_score_gives_and_an_older_model_by_its_own(
        tmp_path):
    import dataclasses

    import pyarrow as pa

    from aecli.pipeline import drift

    rng = np.random.default_rng(2)
    train, new = _table(N_TRAIN, rng, False), _table(1500, rng, False)
    train.to_csv(tmp_path / "train.csv", index=False)
    new.to_csv(tmp_path / "new.csv", index=False)
    model = tmp_path / "m.npz"
    ok("train", tmp_path / "train.csv", "-o", model, "--missing", "impute", "--seed", "0",
       "--score-by", "error+code", "--contamination", str(CONTAMINATION), "-q")
    bundle = modelfile.read_model(model)
    assert bundle.summary["calibration_imputed"] == "left out"
    assert not bundle.autoencoder.members_  # calibrated on held-out rows: no margin
    batch = pa.Table.from_pandas(new, preserve_index=False).to_batches()

    def places(scores):
        return np.bincount(np.minimum((bundle.score_distribution().below(scores)
                                       * drift.SCORE_BINS).astype(int), drift.SCORE_BINS),
                           minlength=drift.SCORE_BINS + 1)

    scored = pd.read_csv(io.StringIO(ok("score", model, tmp_path / "new.csv", "-q").stdout))
    assert np.array_equal(drift.count_stream(bundle, batch, "new").scores,
                          places(scored["score"].to_numpy()))
    # a model written before counted the filled-in cells in its calibration: so are the
    # batch's, as it was calibrated
    older = dataclasses.replace(bundle, summary={k: v for k, v in bundle.summary.items()
                                                 if k != "calibration_imputed"})
    xs = bundle.prepare(pa.Table.from_pandas(new, preserve_index=False)).X
    counted = bundle.autoencoder.score_parts(xs).scores
    assert not np.allclose(counted, scored["score"])
    assert np.array_equal(drift.count_stream(older, batch, "new").scores, places(counted))
    report = json.loads(ok("drift", model, tmp_path / "new.csv", "--json", "-q").stdout)
    assert not report["drift"], report["tests"][0]


def test_a_mask_that_marks_no_cell_fits_as_none_and_a_wrong_one_is_refused():
    from aecli import Autoencoder
    from aecli.errors import InvalidParameterError

    X = np.random.default_rng(3).normal(size=(300, 4))
    params = dict(latent=2, hidden=(8,), epochs=3, seed=0, score_by="error+code")
    plain = Autoencoder(**params).fit(X)
    masked = Autoencoder(**params).fit(X, imputed=np.zeros(X.shape, bool))
    assert np.array_equal(plain.score_quantiles_, masked.score_quantiles_)
    gaps = np.zeros(X.shape, bool)
    gaps[::3, 1] = True  # those cells' errors leave the calibration scores
    assert not np.array_equal(Autoencoder(**params).fit(X, imputed=gaps).score_quantiles_,
                              plain.score_quantiles_)
    with pytest.raises(InvalidParameterError, match="imputed has shape"):
        Autoencoder(**params).fit(X, imputed=np.zeros((300, 3), bool))
