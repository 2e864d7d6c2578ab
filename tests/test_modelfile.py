"""The model file across versions: files written by earlier aecli versions still load."""

from pathlib import Path

import numpy as np
import pandas as pd

from aecli.nn.layers import rows_alike
from aecli.pipeline import modelfile

DATA = Path(__file__).resolve().parent / "data"
CURVE = Path(__file__).resolve().parent.parent / "sample_data" / "curve.csv"



def _as_written(now, then) -> None:
    """Bit for bit, where this machine's BLAS multiplies float32 as the writer's did. Where
    aecli multiplies float32 inference in float64 instead (a BLAS whose float32 product
    depends on a row's place among the rows: see ``aecli.nn.layers.rows_alike``), the last
    bits of a float32 product differ from the writer's, so: to float32 rounding."""
    if rows_alike():
        np.testing.assert_array_equal(now, then)
    else:
        np.testing.assert_allclose(now, then, rtol=1e-6, atol=1e-7)

def test_a_format_1_model_loads_and_encodes_as_the_version_that_wrote_it():
    # Written by aecli 0.1.0 (format 1: metrics, threshold and info.summary apart) with
    # `aecli train sample_data/curve.csv --hidden 8 -k 2 --epochs 3 --missing impute`; the
    # codes are that version's `aecli encode` of the first rows.
    bundle = modelfile.read_model(DATA / "model-format-1.npz")
    expected = pd.read_csv(DATA / "model-format-1-codes.csv").to_numpy(np.float32)
    X = pd.read_csv(CURVE)[bundle.features].to_numpy(np.float64)[: len(expected)]
    _as_written(bundle.encode(X), expected)
    s = bundle.summary
    assert s["epochs_run"] == 3 and s["stopped_early"] is False and "early_stopped" not in s
    assert s["threshold"] == bundle.autoencoder.threshold_ > 0
    assert len(s["loss_history"]) == 3 and s["pca_mse"] > 0
    assert bundle.preparation.fill is not None and "summary" not in bundle.info
    meta = modelfile.describe(DATA / "model-format-1.npz")
    assert meta["format_version"] == 1 and "metrics" not in meta


def test_a_format_2_model_loads_and_encodes_as_the_version_that_wrote_it():
    # Written by aecli at commit 095829d (format 2: no categorical columns) with
    # `aecli train curve-60.csv --epochs 5 --hidden 8 -k 2 --missing impute`; the codes are
    # that version's `aecli encode` of the same rows. Its text column was unused then.
    bundle = modelfile.read_model(DATA / "model-format-2.npz")
    assert bundle.features == [f"x{j:02d}" for j in range(1, 11)]
    assert bundle.preparation.categorical == [] and bundle.preparation.groups is None
    expected = pd.read_csv(DATA / "model-format-2-codes.csv").to_numpy(np.float32)
    X = pd.read_csv(DATA / "curve-60.csv")[bundle.features].to_numpy(np.float64)
    _as_written(bundle.encode(X), expected)
    assert modelfile.describe(DATA / "model-format-2.npz")["format_version"] == 2


def _scores_now_and_then(tmp_path, version: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """This aecli's `aecli score` of curve-60.csv with the fixture of format ``version``, and
    the scores the version that wrote the fixture gave."""
    from typer.testing import CliRunner

    from aecli.cli import app

    out = tmp_path / "s.csv"
    r = CliRunner().invoke(app, ["score", str(DATA / f"model-format-{version}.npz"),
                                 str(DATA / "curve-60.csv"), "-q", "-o", str(out)])
    assert r.exit_code == 0, r.output
    return pd.read_csv(out), pd.read_csv(DATA / f"model-format-{version}-scores.csv")


def test_a_format_3_model_scores_by_its_error_as_the_version_that_wrote_it(tmp_path):
    # Written by aecli at commit 7d9b54a (format 3: the score was the error alone) with
    # `aecli train curve-60.csv --epochs 5 --hidden 8 -k 2 --missing impute`; the scores are
    # that version's `aecli score` of the same rows.
    bundle = modelfile.read_model(DATA / "model-format-3.npz")
    assert bundle.autoencoder.code_distance_ is None
    assert bundle.autoencoder.get_params()["score_by"] == "error"
    now, then = _scores_now_and_then(tmp_path, 3)
    _as_written(now["error"], then["error"])
    _as_written(now["score"], then["error"])
    assert now["flagged"].tolist() == then["flagged"].tolist()


def test_a_format_4_model_scores_by_one_model_as_the_version_that_wrote_it(tmp_path):
    # Written by aecli at commit 5e8beea (format 4: no ensemble) with `aecli train
    # curve-60.csv --epochs 5 --hidden 8 -k 2 --missing impute --score-by error+code`; the
    # scores are that version's `aecli score` of the same rows.
    bundle = modelfile.read_model(DATA / "model-format-4.npz")
    assert bundle.autoencoder.members_ == () and bundle.autoencoder.code_distance_ is not None
    now, then = _scores_now_and_then(tmp_path, 4)
    _as_written(now["error"], then["error"])
    _as_written(now["score"], then["score"])
    assert now["flagged"].tolist() == then["flagged"].tolist()


def test_a_format_5_model_of_the_score_before_scores_as_the_version_that_wrote_it(tmp_path):
    # Written by aecli at commit e650d5e (format 5, before the combined score of issue 27:
    # error + code distance of a six-model ensemble) with `aecli train curve-60.csv --epochs
    # 5 --hidden 8 -k 2 --missing impute --categorical none --exclude segment`; the scores
    # are that version's `aecli score` of the same rows.
    bundle = modelfile.read_model(DATA / "model-format-5.npz")
    ae = bundle.autoencoder
    assert ae.evidence_ is None and len(ae.members_) == 5 and ae.code_distance_ is not None
    now, then = _scores_now_and_then(tmp_path, 5)
    for column in ("score", "error", "p_value", "flagged"):
        assert now[column].tolist() == then[column].tolist(), column


def test_a_small_tables_model_keeps_its_ensemble_and_scores_alike_after_a_round_trip(
        tmp_path):
    from aecli.pipeline.train import train_bundle

    X = np.random.default_rng(3).normal(size=(300, 5))
    X[:, 4] = X[:, 0] * X[:, 1]
    # the ensemble's own score: without the column tails and neighbours it is combined with
    bundle = train_bundle(X, [f"c{j}" for j in range(5)], {"epochs": 3, "seed": 1,
                                                           "score_by": "error+code"})
    ae = bundle.autoencoder
    assert len(ae.members_) == 5 and ae.calibration_.source == "out-of-fold"
    path = tmp_path / "m.npz"
    with open(path, "wb") as f:
        modelfile.write_model(bundle, f)
    again = modelfile.read_model(path)
    assert [m.scale for m in again.autoencoder.members_] == [m.scale for m in ae.members_]
    np.testing.assert_array_equal(again.scores(X), bundle.scores(X))
    # the library's score is the same ensemble's
    np.testing.assert_allclose(ae.anomaly_score(bundle.prepare(X).X), bundle.scores(X),
                               rtol=1e-6)
    # and the mean of its six models' scores, each at the main model's scale
    xs = bundle.prepare(X).X
    models = [(ae.network_, ae.code_distance_, 1.0)] + [
        (m.network, m.code_distance, m.scale) for m in ae.members_]
    by_hand = [scale * (net.reconstruction_errors(xs) + distance.of(net.encode(xs)))
               for net, distance, scale in models]
    assert len({round(float(p[0]), 9) for p in by_hand}) == 6  # six different models
    np.testing.assert_allclose(bundle.scores(X), np.mean(by_hand, axis=0), rtol=1e-6)


def test_a_model_written_now_is_format_5_with_one_summary(tmp_path):
    bundle = modelfile.read_model(DATA / "model-format-1.npz")
    path = tmp_path / "again.npz"
    with open(path, "wb") as f:
        modelfile.write_model(bundle, f)
    meta = modelfile.describe(path)
    assert meta["format_version"] == modelfile.FORMAT_VERSION == 5
    assert "metrics" not in meta and "threshold" not in meta and "summary" not in meta["info"]
    again = modelfile.read_model(path)
    assert again.summary == bundle.summary
    np.testing.assert_array_equal(again.autoencoder.network_.theta,
                                  bundle.autoencoder.network_.theta)


def test_a_table_where_the_model_goes_is_named_as_a_table(tmp_path):
    from typer.testing import CliRunner

    from aecli.cli import app

    pd.read_csv(CURVE).head(20).to_parquet(tmp_path / "t.parquet")
    for table, kind in ((CURVE, "a text file"), (tmp_path / "t.parquet", "a Parquet file")):
        r = CliRunner().invoke(app, ["encode", str(table), str(DATA / "model-format-1.npz")])
        assert r.exit_code == 2
        assert f"it is {kind}" in r.stderr and "The model comes first" in r.stderr
        assert "damaged" not in r.stderr


def test_every_older_format_passes_the_reader_s_checks_and_inspects(tmp_path):
    # The reader refuses arrays no part of the model uses, sizes the layers do not give and
    # mistyped fields; the files earlier versions wrote have none of these.
    from typer.testing import CliRunner

    from aecli.cli import app

    for version in (1, 2, 3, 4):
        path = DATA / f"model-format-{version}.npz"
        meta, arrays = modelfile.read_members(path)
        assert set(arrays) == set(meta["arrays"])
        r = CliRunner().invoke(app, ["inspect", str(path)])
        assert r.exit_code == 0, r.output
        assert "the mean of" not in r.stdout  # one model scores
