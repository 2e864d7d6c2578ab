"""Codes that keep neighbours (``neighbors``): the objective's gradient, the kNN graph against
brute force, the figures against scikit-learn's, determinism, streaming and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import ok

from aecli import Autoencoder
from aecli.estimators import graph as g
from aecli.estimators import neighbors as neighbors_module
from aecli.estimators.neighbor_metrics import neighbor_preservation
from aecli.estimators.neighbors import sample_rows
from aecli.nn import Network, autoencoder_specs
from aecli.nn.neighbors import NeighborTerm, umap_loss


def _blobs(n=600, d=8, centres=4, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, centres, size=n)
    X = rng.normal(scale=4.0, size=(centres, d))[labels] + rng.normal(size=(n, d))
    return X.astype(np.float32), labels


def _brute(X, k):
    from scipy.spatial.distance import cdist  # scikit-learn's dependency

    D = cdist(X.astype(np.float64), X.astype(np.float64), "sqeuclidean")  # (n, n)
    np.fill_diagonal(D, np.inf)
    idx = np.argsort(D, axis=1, kind="stable")[:, :k]
    return idx, np.sqrt(np.take_along_axis(D, idx, axis=1))


# -- the objective ------------------------------------------------------------------------
def test_umap_loss_gradient_matches_central_differences(numerical_grad, assert_grad_close):
    rng = np.random.default_rng(0)
    heads, tails = rng.normal(size=(9, 2)), rng.normal(size=(9, 2))
    _, dh, dt = umap_loss(heads, tails)
    assert_grad_close(dh, numerical_grad(lambda: umap_loss(heads, tails)[0], heads), 1e-5)
    assert_grad_close(dt, numerical_grad(lambda: umap_loss(heads, tails)[0], tails), 1e-5)


def test_attraction_pulls_neighbours_and_repulsion_pushes_others():
    near = umap_loss(np.zeros((6, 2)), np.full((6, 2), 0.1), negatives=0)[0]
    far = umap_loss(np.zeros((6, 2)), np.full((6, 2), 3.0), negatives=0)[0]
    assert near < far  # a neighbour's code is wanted near
    spread = np.arange(12.0).reshape(6, 2) * 3
    assert umap_loss(spread, spread)[0] < umap_loss(spread / 30, spread / 30)[0]


@pytest.mark.parametrize("before", [0, 4])
def test_network_gradient_with_the_neighbour_term(numerical_grad, assert_grad_close, before):
    """The term's gradient reaches the encoder's weights through the code: the whole
    objective (reconstruction + weighted cross-entropy of the pairs) against central
    differences; rows before the pairs (rows between neighbours) are reconstructed only."""
    net = Network(autoencoder_specs(5, (4,), 2, "tanh", "linear", "linear", False),
                  dtype=np.float64, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).normal(size=(before + 8, 5))  # ..., 4 heads, their 4 tails
    term = NeighborTerm(0.7, negatives=2)
    term.pairs = 4

    def objective():
        return net.loss_and_grad(x, x, code_term=term)[1]

    objective()
    analytic = net.grad.copy()
    without = net.loss_and_grad(x, x)[1]
    assert objective() > without  # the term counts
    assert_grad_close(analytic, numerical_grad(objective, net.theta), rtol=1e-5)


def test_rows_between_neighbours_lie_along_the_pair_with_noise_in_its_scale(monkeypatch):
    xh, xt = np.random.default_rng(0).normal(size=(2, 200, 6))
    monkeypatch.setattr(neighbors_module, "BETWEEN_NOISE", 0.0)
    on = neighbors_module.between(xh, xt, np.random.default_rng(1), 1.0)
    gap = xt - xh
    t = np.einsum("ij,ij->i", on - xh, gap) / np.einsum("ij,ij->i", gap, gap)
    assert on.shape == xh.shape and (t >= 0).all() and (t <= 1).all() and t.std() > 0.2
    np.testing.assert_allclose(on, xh + t[:, None] * gap, atol=1e-12)  # on the segment
    monkeypatch.setattr(neighbors_module, "BETWEEN_NOISE", 0.5)
    noisy = neighbors_module.between(xh, xt, np.random.default_rng(1), 1.0)
    off = np.linalg.norm(noisy - on, axis=1) / np.linalg.norm(gap, axis=1)
    assert 0.4 < np.median(off) < 0.6  # 0.5 of the pair's distance


def test_a_batch_is_rows_between_neighbours_then_heads_then_their_tails():
    X, _ = _blobs(120)
    graph = g.neighbor_graph(X, 5, np.random.default_rng(0))
    term = NeighborTerm(0.5)
    batch = next(iter(neighbors_module.graph_batches(X, graph, 16, term)(
        np.random.default_rng(2))))
    assert batch.shape == (48, X.shape[1]) and term.pairs == 16
    at = {row.tobytes(): i for i, row in enumerate(X)}
    heads = [at[row.tobytes()] for row in batch[16:32]]
    tails = [at[row.tobytes()] for row in batch[32:]]
    for h, t in zip(heads, tails, strict=True):
        assert t in graph.tails[graph.starts[h] : graph.starts[h + 1]]
    assert not any(row.tobytes() in at for row in batch[:16])  # new rows, not training rows


def test_a_large_tables_batches_have_no_rows_between(monkeypatch):
    X, _ = _blobs(120)
    graph = g.neighbor_graph(X, 5, np.random.default_rng(0))
    monkeypatch.setattr(neighbors_module, "BETWEEN_ROWS", 120)  # 120 rows: "large"
    batch = next(iter(neighbors_module.graph_batches(X, graph, 16, NeighborTerm(0.5))(
        np.random.default_rng(2))))
    assert batch.shape == (32, X.shape[1])  # heads and tails only


def test_neighbours_deepen_the_default_encoder_only():
    from aecli.estimators import Hyperparameters
    from aecli.estimators.hyperparameters import DEFAULT_HIDDEN, NEIGHBOR_HIDDEN

    assert Hyperparameters(neighbors=15).checked().hidden == NEIGHBOR_HIDDEN
    assert Hyperparameters().checked().hidden == DEFAULT_HIDDEN != NEIGHBOR_HIDDEN
    assert Hyperparameters(neighbors=15, hidden=(8,)).checked().hidden == (8,)
    # sizes given are kept, even the ones "auto" stands for without neighbours
    assert Hyperparameters(neighbors=15, hidden=DEFAULT_HIDDEN).checked().hidden == DEFAULT_HIDDEN
    X, _ = _blobs(60)
    ae = Autoencoder(latent=2, neighbors=5, epochs=1).fit(X, out_of_fold=False)
    net = ae.network_
    assert tuple(net.specs[i].n_out for i in range(net.code_index)) == NEIGHBOR_HIDDEN


# -- the graph ----------------------------------------------------------------------------
def test_exact_knn_is_brute_force():
    X, _ = _blobs(300)
    idx, dist = g.exact_knn(X, 7)
    want_idx, want_dist = _brute(X, 7)
    np.testing.assert_allclose(dist, want_dist, rtol=1e-3, atol=1e-3)
    assert (idx == want_idx).mean() > 0.99  # equal but for ties in float32


def test_exact_knn_in_blocks_is_the_same(monkeypatch):
    X, _ = _blobs(200)
    whole = g.exact_knn(X, 5)[0]
    monkeypatch.setattr(g, "BLOCK_BYTES", 4 * 200 * 7)  # blocks of 7 rows
    np.testing.assert_array_equal(g.exact_knn(X, 5)[0], whole)


def test_approximate_knn_finds_most_true_neighbours():
    X, _ = _blobs(2000, d=10)
    idx, dist = g.knn(X, 10, np.random.default_rng(0), exact_rows=1000)  # approximate
    want, _ = _brute(X, 10)
    recall = (idx[:, :, None] == want[:, None, :]).any(-1).mean()
    assert recall > 0.9
    assert (idx != np.arange(2000)[:, None]).all()  # never a row itself
    assert (np.diff(dist, axis=1) >= 0).all()  # nearest first
    real = np.sqrt(((X[:, None, :] - X[idx]) ** 2).sum(-1))  # (n, k)
    np.testing.assert_allclose(dist, real, rtol=1e-3, atol=1e-3)  # distances are the rows'


def test_fuzzy_graph_is_symmetric_and_draws_only_neighbours():
    X, _ = _blobs(200)
    idx, dist = g.exact_knn(X, 6)
    graph = g.fuzzy_graph(idx, dist)
    edges = {(h, int(t)) for h in range(graph.n)
             for t in graph.tails[graph.starts[h] : graph.starts[h + 1]]}
    assert all((t, h) in edges for h, t in edges)  # symmetric
    assert {(h, int(t)) for h in range(200) for t in idx[h]} <= edges  # every kNN edge
    heads = np.repeat(np.arange(200), 20)
    tails = graph.draw_tails(heads, np.random.default_rng(0))
    assert all((int(h), int(t)) in edges for h, t in zip(heads, tails, strict=True))
    weights = np.diff(graph.cumulative)  # memberships of a fuzzy set
    assert (weights > 0).all() and (weights <= 1 + 1e-9).all()
    # a head's neighbours are drawn in proportion to their weights
    edges0 = slice(graph.starts[0], graph.starts[1])
    drawn = graph.draw_tails(np.zeros(20_000, dtype=np.int64), np.random.default_rng(1))
    share = [(drawn == t).mean() for t in graph.tails[edges0]]
    np.testing.assert_allclose(share, weights[edges0] / weights[edges0].sum(), atol=0.015)


# -- the figures --------------------------------------------------------------------------
def test_preservation_figures_match_scikit_learn():
    from sklearn.manifold import trustworthiness

    X, _ = _blobs(300)
    Z = X[:, :2] + np.random.default_rng(3).normal(size=(300, 2))
    got = neighbor_preservation(X, Z, k=10)
    assert got["trustworthiness"] == pytest.approx(trustworthiness(X, Z, n_neighbors=10),
                                                   abs=1e-9)
    assert neighbor_preservation(X, X[:, :7], k=10)["knn_recall"] > \
        neighbor_preservation(X, Z, k=10)["knn_recall"]
    assert neighbor_preservation(X, X.copy(), k=10)["knn_recall"] == pytest.approx(1.0)


def test_sample_rows_is_uniform_and_bounded():
    chunks = [np.arange(i, i + 100)[:, None].astype(float) for i in range(0, 1000, 100)]
    S = sample_rows(iter(chunks), 300, np.random.default_rng(0))
    assert S.shape == (300, 1) and len(np.unique(S)) == 300
    assert 350 < S.mean() < 650  # from the whole file, not a prefix


# -- the estimator ------------------------------------------------------------------------
def test_neighbours_keep_clusters_apart_and_are_deterministic():
    X, labels = _blobs(400)
    fit = dict(latent=2, hidden=(16,), neighbors=10, epochs=40, seed=3)
    a = Autoencoder(**fit).fit(X, out_of_fold=False)
    b = Autoencoder(**fit).fit(X, out_of_fold=False)
    np.testing.assert_array_equal(a.network_.theta, b.network_.theta)  # bit-identical
    plain = Autoencoder(**{**fit, "neighbors": 0}).fit(X, out_of_fold=False)
    assert not np.array_equal(a.network_.theta, plain.network_.theta)
    ours = neighbor_preservation(X, a.transform(X))
    assert ours["trustworthiness"] > 0.85
    # encoding is the network alone: a row's code does not depend on the rows beside it
    np.testing.assert_array_equal(a.transform(X[:5]), a.transform(X)[:5])


def test_neighbours_turn_off_lbfgs_and_patience():
    from aecli.estimators import Hyperparameters

    p = Hyperparameters(hidden=(), activation="linear", neighbors=5).resolved(100)
    assert p.optimizer == "adam" and p.patience is None
    assert Hyperparameters(hidden=(), activation="linear").resolved(100).optimizer == "lbfgs"


def test_streamed_training_with_neighbours():
    X, _ = _blobs(500)

    def chunks():
        return (X[i : i + 128] for i in range(0, 500, 128))

    ae = Autoencoder(latent=2, hidden=(8,), neighbors=5, epochs=5, seed=0)
    ae.fit_chunks(chunks, n_rows=500)
    assert ae.transform(X).shape == (500, 2) and np.isfinite(ae.threshold_)


# -- the CLI ------------------------------------------------------------------------------
def test_cli_train_encode_and_compare_with_neighbours(tmp_path):
    data = tmp_path / "blobs.csv"
    X, labels = _blobs(300, d=5)
    header = ",".join([f"x{i}" for i in range(5)] + ["label"])
    np.savetxt(data, np.column_stack([X, labels]), delimiter=",", header=header,
               comments="", fmt="%.5g")
    model = tmp_path / "m.npz"
    r = ok("train", data, "--exclude", "label", "-k", "2", "--neighbors", "8", "--epochs", "8",
           "--hidden", "8", "-o", model, "--json")
    summary = json.loads(r.stdout)
    summary = summary.get("summary", summary)
    assert 0.5 < summary["trustworthiness"] <= 1 and 0 <= summary["knn_recall"] <= 1
    assert summary["pca_trustworthiness"] is not None
    codes = tmp_path / "codes.csv"
    ok("encode", model, data, "--keep", "label", "-o", codes)
    assert codes.read_text().splitlines()[0] == "label,z1,z2"
    r = ok("compare-pca", data, "--exclude", "label", "-k", "1,2", "--epochs", "4",
           "--neighbors", "8", "--hidden", "8", "--json")
    rows = json.loads(r.stdout)
    rows = rows.get("rows", rows) if isinstance(rows, dict) else rows
    assert all(0 < row["ae_trustworthiness"] <= 1 and 0 < row["pca_trustworthiness"] <= 1
               for row in rows)


def test_the_deeper_default_encoder_is_saved_and_loaded_as_trained(tmp_path):
    """The model file records the encoder trained (128,64,64,32 for the default with
    neighbours); the loaded model encodes as the trained one."""
    from aecli.estimators.hyperparameters import NEIGHBOR_HIDDEN
    from aecli.pipeline.modelfile import read_model

    data = tmp_path / "blobs.csv"
    X, _ = _blobs(120, d=5)
    np.savetxt(data, X, delimiter=",", header=",".join(f"x{i}" for i in range(5)),
               comments="", fmt="%.5g")
    model = tmp_path / "m.npz"
    ok("train", data, "-k", "2", "--neighbors", "5", "--epochs", "2", "-o", model, "-q")
    loaded = read_model(model).autoencoder
    net = loaded.network_
    assert tuple(net.specs[i].n_out for i in range(net.code_index)) == NEIGHBOR_HIDDEN
    assert loaded._checked().hidden == NEIGHBOR_HIDDEN  # as loaded, not replaced again
    codes = tmp_path / "codes.csv"
    ok("encode", model, data, "-o", codes)
    assert len(codes.read_text().splitlines()) == 121


def test_a_model_trained_with_neighbours_exports_to_onnx_as_any_other():
    """Nothing new to encode: the export of a neighbours-trained model gives its codes."""
    ort = pytest.importorskip("onnxruntime")
    from aecli.pipeline.onnx_export import export_onnx
    from aecli.pipeline.train import train_bundle
    from aecli.preprocessing import RawRows

    X, _ = _blobs(300, d=5)
    X = X.astype(np.float64)
    names = [f"x{i}" for i in range(5)]
    bundle = train_bundle(X, names, dict(latent=2, hidden=(6,), neighbors=5, epochs=3))
    session = ort.InferenceSession(export_onnx(bundle, "encode"),
                                   providers=["CPUExecutionProvider"])
    got = np.column_stack(session.run(None, {n: X[:, [j]] for j, n in enumerate(names)}))
    codes = bundle.autoencoder.transform(bundle.preparation.transform(RawRows(X)).X)
    np.testing.assert_allclose(got, codes, atol=1e-5)
