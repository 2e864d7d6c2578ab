"""The combined score (issue 27): the column tails and the code neighbours each win on the
data they are for, the combined score keeps that, models keep it in their file, and an ONNX
runtime gives the same score."""

from dataclasses import replace

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from aecli.estimators.evidence import Evidence
from aecli.pipeline.modelfile import read_model, write_model
from aecli.pipeline.train import train_bundle

FAST = dict(epochs=40, hidden=(16,), seed=0)


def _names(d):
    return [f"c{j}" for j in range(d)]


def _parts(bundle, X):
    """The autoencoder's score (error + code term), the tail statistic, the neighbour
    distance and the combined score of raw rows ``X``."""
    ae = bundle.autoencoder
    xs = bundle.prepare(X).X
    parts = ae.score_parts(xs)
    ev = ae.evidence_
    return {"autoencoder": parts.errors + parts.code_term, "t2": parts.code_term,
            "tails": ev.tail_statistic(xs),
            "neighbours": ev.neighbour_distance(ae.network_.encode(xs)),
            "combined": parts.scores}


def _correlated(rng, n, extra):
    """``n`` rows of 4 columns driven by 2 factors, and ``extra`` (n, m) columns after."""
    f = rng.normal(size=(n, 2))
    X = f @ np.array([[1.0, 0.5, -0.7, 0.2], [0.3, -1.0, 0.4, 0.9]]) + 0.2 * rng.normal(
        size=(n, 4))
    return np.c_[X, extra]


def _one_cell_out(rng, X, rows, sd=4.0):
    """Each of ``rows`` gets one of the first four columns set ``sd`` standard deviations
    from its mean: extreme in that column alone."""
    X = X.copy()
    for i in rows:
        j = rng.integers(4)
        X[i, j] = X[:, j].mean() + sd * X[:, j].std() * rng.choice([-1, 1])
    return X


@pytest.fixture(scope="module")
def sparse_counts():
    """Four correlated columns and twelve sparse counts (Poisson 0.03: a count of 1 is 5.6 sd
    out once standardised, and a third of the rows hold one); anomalies: one correlated cell
    4 sd out."""
    rng = np.random.default_rng(3)
    n = 900
    X = _correlated(rng, n, rng.poisson(0.03, size=(n, 12)))
    train, test = X[:600], X[600:]
    bad = rng.choice(len(test), 15, replace=False)
    test = _one_cell_out(rng, test, bad)
    labels = np.zeros(len(test), bool)
    labels[bad] = True
    return train, test, labels


def test_column_tails_find_a_cell_that_sparse_counts_hide(sparse_counts):
    train, test, labels = sparse_counts
    bundle = train_bundle(train, _names(train.shape[1]), FAST)
    parts = _parts(bundle, test)
    auc = {k: roc_auc_score(labels, v) for k, v in parts.items()}
    # the counts' non-zero cells give normal rows errors larger than the cell 4 sd out
    assert auc["tails"] > auc["autoencoder"] + 0.05, auc
    assert auc["combined"] > auc["autoencoder"], auc


@pytest.fixture(scope="module")
def skewed():
    """Three long-tailed columns (lognormal, like incomes) beside four correlated ones;
    anomalies: one skewed cell below every training value (a third of the smallest), which
    standardising puts less than 1 sd from the mean while the long tail's normal rows lie
    several sd out. The anomalies' rows and columns."""
    rng = np.random.default_rng(3)
    n = 900
    X = _correlated(rng, n, np.exp(rng.normal(0.0, 1.0, size=(n, 3))))
    train, test = X[:600], X[600:].copy()
    bad = rng.choice(len(test), 15, replace=False)
    columns = 4 + rng.integers(3, size=len(bad))
    test[bad, columns] = train[:, columns].min(axis=0) / 3
    return train, test, bad, columns, train_bundle(train, _names(X.shape[1]), FAST)


def test_column_tails_find_the_low_end_of_a_skewed_column(skewed):
    train, test, bad, _, bundle = skewed
    labels = np.zeros(len(test), bool)
    labels[bad] = True
    parts = _parts(bundle, test)
    auc = {k: roc_auc_score(labels, v) for k, v in parts.items()}
    assert auc["tails"] > 0.75 and auc["tails"] > auc["autoencoder"] + 0.2, auc
    assert auc["combined"] > auc["autoencoder"] + 0.1, auc


def test_code_neighbours_find_a_row_between_two_clusters():
    """Two clusters on a plane in 6 columns; anomalies lie on the plane, halfway between
    them: reconstructed well, and at the centre of the codes, where T² is smallest."""
    rng = np.random.default_rng(5)
    basis = rng.normal(size=(2, 6))
    centres = np.array([[-3.0, 0.0], [3.0, 0.0]])

    def rows(n, where):
        return (where + 0.4 * rng.normal(size=(n, 2))) @ basis + 0.05 * rng.normal(size=(n, 6))

    train = np.r_[rows(300, centres[0]), rows(300, centres[1])]
    test = np.r_[rows(100, centres[0]), rows(100, centres[1]), rows(10, np.zeros(2))]
    labels = np.r_[np.zeros(200, bool), np.ones(10, bool)]
    parts = _parts(train_bundle(train, _names(6), FAST), test)
    auc = {k: roc_auc_score(labels, v) for k, v in parts.items()}
    assert auc["t2"] < 0.5 < 0.9 < auc["neighbours"], auc
    assert auc["combined"] > auc["autoencoder"] + 0.1, auc


def test_a_model_file_keeps_the_combined_score(tmp_path, sparse_counts):
    train, test, _ = sparse_counts
    bundle = train_bundle(train, _names(train.shape[1]), {**FAST, "epochs": 5})
    assert isinstance(bundle.autoencoder.evidence_, Evidence)
    path = tmp_path / "m.npz"
    with open(path, "wb") as f:
        write_model(bundle, f)
    again = read_model(path)
    np.testing.assert_array_equal(again.scores(test), bundle.scores(test))
    assert again.autoencoder.threshold_ == bundle.autoencoder.threshold_


def test_a_model_without_settings_scores_as_it_was_fitted(sparse_counts):
    """Files written before the parts were weighted hold no ``evidence.settings``: they
    score as they were fitted, by 5 neighbours and Fisher's equal weights; a new one keeps
    its neighbours and weights."""
    from aecli.estimators.evidence import NEIGHBOURS, WEIGHTS, neighbour_distance

    train, test, _ = sparse_counts
    bundle = train_bundle(train, _names(train.shape[1]), {**FAST, "epochs": 5})
    ev = bundle.autoencoder.evidence_
    assert (ev.neighbours, ev.weights) == (NEIGHBOURS, WEIGHTS) != (5, (1.0,) * 4)
    again = Evidence.from_arrays(ev.arrays())
    assert (again.neighbours, again.weights) == (NEIGHBOURS, WEIGHTS)
    old = Evidence.from_arrays({k: v for k, v in ev.arrays().items()
                                if k != "evidence.settings"})
    assert (old.neighbours, old.weights) == (5, (1.0,) * 4)
    xs = bundle.prepare(test).X
    codes = bundle.autoencoder.network_.encode(xs)
    parts = bundle.autoencoder.score_parts(xs)
    scores = parts.errors + parts.code_term  # the autoencoder's, before the evidence
    stats = (scores, old.tail_statistic(xs), neighbour_distance(old.rows, xs, 5),
             neighbour_distance(old.codes, codes, 5))
    expected = -sum(np.log(d.p_value(v)) for d, v in zip(old.dists, stats, strict=True))
    np.testing.assert_allclose(old.combine(scores, xs, codes), expected, rtol=1e-12)
    assert not np.allclose(ev.combine(scores, xs, codes), expected)


def test_score_by_keeps_the_autoencoder_score(sparse_counts):
    train, test, _ = sparse_counts
    bundle = train_bundle(train, _names(train.shape[1]), {**FAST, "epochs": 3,
                                                          "score_by": "error+code"})
    assert bundle.autoencoder.evidence_ is None
    parts = bundle.autoencoder.score_parts(bundle.prepare(test).X)
    np.testing.assert_array_equal(parts.scores, parts.errors + parts.code_term)


def test_onnx_runtime_gives_the_combined_score(sparse_counts):
    ort = pytest.importorskip("onnxruntime")
    from aecli.pipeline.onnx_export import export_onnx

    train, test, _ = sparse_counts
    bundle = train_bundle(train, _names(train.shape[1]), {**FAST, "epochs": 5,
                                                          "dtype": "float64"})
    session = ort.InferenceSession(export_onnx(bundle, "score", single_input=True),
                                   providers=["CPUExecutionProvider"])
    far = np.r_[test, test[:3] * 50]  # past every calibration value: the fitted tails
    score, flagged = session.run(["score", "flagged"], {"X": far})
    expected = bundle.scores(far)
    np.testing.assert_allclose(score, expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(flagged, expected > bundle.autoencoder.threshold_)
    # a model file from before the weights: 5 neighbours, equal weights, in the graph too
    ae = bundle.autoencoder
    ae.evidence_ = replace(ae.evidence_, neighbours=5, weights=(1.0,) * 4)
    session = ort.InferenceSession(export_onnx(bundle, "score", single_input=True),
                                   providers=["CPUExecutionProvider"])
    old = bundle.scores(far)
    assert not np.allclose(old, expected)
    np.testing.assert_allclose(session.run(["score"], {"X": far})[0], old, rtol=1e-9,
                               atol=1e-9)


def test_fit_chunks_alone_keeps_the_autoencoder_score(sparse_counts):
    """The estimator's fit on chunks holds no sample of its rows, which the column quantiles
    and neighbours need: its score is the error + code distance, even after a fit in memory
    (``--stream`` adds the evidence from its sample, tests/test_sampled_evidence.py)."""
    from aecli import Autoencoder

    train, test, _ = sparse_counts
    ae = Autoencoder(epochs=2, hidden=(8,), seed=0).fit(train)
    assert ae.evidence_ is not None
    ae.fit_chunks(lambda: iter([train[:300], train[300:]]))
    assert ae.evidence_ is None
    parts = ae.score_parts(test.astype(np.float32))
    np.testing.assert_allclose(ae.anomaly_score(test), parts.errors + parts.code_term,
                               rtol=1e-5)


def test_the_explanation_names_the_column_a_row_is_extreme_in(skewed):
    from aecli.pipeline.score import explain

    _, test, bad, columns, bundle = skewed
    ae = bundle.autoencoder
    xs = bundle.prepare(test).X
    parts = ae.score_parts(xs[bad])
    tails = ae.evidence_.explained(parts.errors + parts.code_term, xs[bad],
                                   ae.network_.encode(xs[bad]))
    X_hat = bundle.preparation.unscale(parts.xs_hat).tolist()
    code = (parts.errors, parts.code_term, parts.sigmas)
    names = _names(test.shape[1])

    def first(**more):
        out = explain(parts.sq, test[bad].tolist(), X_hat, names, code=code, **more)
        return sum(row[0].get("feature") == f"c{j}" for row, j in zip(out, columns,
                                                                       strict=True))

    # the cell below every training value is named first, with its value
    assert first(tails=tails) >= 0.8 * len(bad) > first()
