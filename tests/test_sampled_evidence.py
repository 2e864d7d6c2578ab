"""The combined score of fits that read their rows in passes (issue 27): a stream's and a
cluster's evidence from a sample of rows keyed by row number, the same whatever the chunks
or partitions; the score finite, a planted anomaly first, the model file and the ONNX graph
scoring as the fit does."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import ok

from aecli.pipeline.modelfile import read_model
from aecli.pipeline.sampled_evidence import RowSample, sample_rows
from aecli.pipeline.train_streamed import train_bundle_streaming
from aecli.preprocessing import RawRows

FIT = dict(epochs=4, hidden=(16,), seed=0, batch_size=32)


def _table(n=2400, seed=0):
    """Six columns driven by two factors and four sparse counts; rows 0..9 of the last
    ``n // 4`` (the test rows) get three correlated cells 8 sd out."""
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(n, 2))
    X = np.c_[f @ rng.normal(size=(2, 6)) + 0.1 * rng.normal(size=(n, 6)),
              rng.poisson(0.05, size=(n, 4))]
    train, test = X[:-n // 4], X[-n // 4:].copy()
    test[:10, 1:4] = X[:, 1:4].mean(axis=0) + 8 * X[:, 1:4].std(axis=0) * np.sign(
        rng.normal(size=(10, 3)))
    return train, test


def _names(d):
    return [f"c{j}" for j in range(d)]


def _chunks(X, cuts):
    return lambda: (RawRows(part) for part in np.split(X, cuts))


def test_the_sample_is_the_same_whatever_the_chunks_and_changes_with_the_seed():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30_000, 40))
    numbers = np.arange(len(X))
    whole = RowSample.of(RawRows(X), numbers, 7)
    assert len(whole.keys) == sample_rows(RawRows(X)) < len(X)  # bounded by its cells
    for cuts in ([5, 17_000], sorted(rng.choice(len(X), 9, replace=False))):
        parts = [RowSample.of(RawRows(X[a:b]), numbers[a:b], 7)
                 for a, b in zip([0, *cuts], [*cuts, len(X)], strict=True)]
        merged = RowSample()
        for part in reversed(parts):  # in any order
            merged = merged.merge(part)
        np.testing.assert_array_equal(merged.keys, whole.keys)
        np.testing.assert_array_equal(merged.rows.numeric, whole.rows.numeric)
    other = RowSample.of(RawRows(X), numbers, 8)  # about k * k / n rows shared, not k
    shared = len(np.intersect1d(other.rows.numeric[:, 0], whole.rows.numeric[:, 0]))
    assert shared < 0.7 * len(whole.keys)


@pytest.fixture(scope="module")
def streamed():
    train, test = _table()
    bundle = train_bundle_streaming(_chunks(train, [400, 1000, 1700]), _names(10), FIT)
    return train, test, bundle


def test_a_streamed_fit_has_the_combined_score_and_finds_the_planted_rows(streamed, tmp_path):
    from aecli.pipeline.modelfile import write_model
    from aecli.pipeline.train import train_bundle

    train, test, bundle = streamed
    ae = bundle.autoencoder
    assert bundle.summary["score"] == "combined" and ae.evidence_ is not None
    scores = bundle.scores(test)
    assert np.isfinite(scores).all()
    assert set(np.argsort(-scores)[:10]) == set(range(10))
    assert ae.calibration_rows_ == bundle.summary["rows_validation"]  # its validation rows
    # the model file scores as the fit does
    path = tmp_path / "s.npz"
    with open(path, "wb") as f:
        write_model(bundle, f)
    np.testing.assert_array_equal(read_model(path).scores(test), scores)
    # in memory with the same seed: the same training rows, so the same column quantiles
    memory = train_bundle(train, _names(10), {**FIT, "batch_size": 32})
    np.testing.assert_allclose(ae.evidence_.columns, memory.autoencoder.evidence_.columns,
                               rtol=1e-6, atol=1e-6)


def test_a_streamed_model_exports_the_combined_score_to_onnx(streamed):
    ort = pytest.importorskip("onnxruntime")
    from aecli.pipeline.onnx_export import export_onnx

    _, test, bundle = streamed
    session = ort.InferenceSession(export_onnx(bundle, "score", single_input=True),
                                   providers=["CPUExecutionProvider"])
    score, flagged = session.run(["score", "flagged"], {"X": test})
    expected = bundle.scores(test)
    np.testing.assert_allclose(score, expected, rtol=1e-4, atol=1e-4)
    away = np.abs(expected - bundle.autoencoder.threshold_) > 1e-3
    np.testing.assert_array_equal(flagged[away], (expected > bundle.autoencoder.threshold_)[away])


def test_without_validation_rows_the_sample_calibrates():
    train, test = _table(900)
    bundle = train_bundle_streaming(_chunks(train, [300]), _names(10),
                                    {**FIT, "validation": 0.0})
    ae = bundle.autoencoder
    assert bundle.summary["score"] == "combined"
    assert ae.calibration_.source == "training rows" and ae.calibration_rows_ == len(train)
    assert np.isfinite(bundle.scores(test)).all()


def test_a_cluster_fit_samples_and_calibrates_as_a_stream(cluster, tmp_path):
    """The same rows in 4 uneven partitions on 2 workers, and in one file streamed: the same
    sample, so the same column quantiles and reference rows, and as many calibration rows;
    ``inspect`` says the score is combined and why."""
    train, test = _table()
    frame = pd.DataFrame(train, columns=_names(10))
    (tmp_path / "parts").mkdir()
    for i, (a, b) in enumerate([(0, 100), (100, 1000), (1000, 1010), (1010, len(train))]):
        frame.iloc[a:b].to_parquet(tmp_path / "parts" / f"p{i}.parquet", index=False)
    frame.to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame(test, columns=_names(10)).to_csv(tmp_path / "test.csv", index=False)
    common = ["--epochs", "4", "--hidden", "16", "--seed", "0", "-q"]
    ok("train", tmp_path / "parts", "--scheduler", cluster, "-o", tmp_path / "c.npz", *common)
    ok("train", tmp_path / "train.csv", "--stream", "--batch-size", "32",
       "-o", tmp_path / "s.npz", *common)
    c, s = read_model(tmp_path / "c.npz"), read_model(tmp_path / "s.npz")
    ec, es = c.autoencoder.evidence_, s.autoencoder.evidence_
    np.testing.assert_allclose(ec.columns, es.columns, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ec.rows, es.rows, rtol=1e-6, atol=1e-6)
    assert [d.rows for d in ec.dists] == [d.rows for d in es.dists]
    r = ok("score", tmp_path / "c.npz", tmp_path / "test.csv", "--json", "-q")
    worst = [w["row"] for w in json.loads(r.stdout)["worst"]][:10]
    assert set(worst) == set(range(1, 11))  # rows numbered from 1
    # aecli score, reading in batches, gives the stream's model's scores of a fit in memory
    ok("score", tmp_path / "s.npz", tmp_path / "test.csv", "-o", tmp_path / "out.csv", "-q")
    np.testing.assert_allclose(pd.read_csv(tmp_path / "out.csv")["score"], s.scores(test),
                               rtol=1e-9)
    words = " ".join(ok("inspect", tmp_path / "c.npz").stdout.replace("│", " ").split())
    assert "anomaly score combined" in words and "from a sample of the training rows" in words
