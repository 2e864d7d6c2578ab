"""aecli export: ONNX Runtime gives what aecli encode, reconstruct and score give, for every
activation, both dtypes, tied weights and each missing-value policy."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from aecli.cli import app
from aecli.nn import ActivationKind
from aecli.pipeline import apply, modelfile, score
from aecli.pipeline.onnx_export import ExportTarget, export_onnx
from aecli.pipeline.train import train_bundle

NAMES = ["a", "b", "c", "d", "e"]
# Absolute for values of order 1, relative beyond: float32's spacing at 160, an error far out,
# is 1.5e-5, so no float32 implementation agrees closer there.
TOLERANCE = {"float32": 1e-5, "float64": 1e-10}


def _data(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = rng.normal(size=(n, 2))
    X = np.column_stack([t[:, 0], t[:, 1], np.tanh(t[:, 0] * t[:, 1]), t[:, 0] ** 2 / 2,
                         rng.normal(size=n)])
    return X * [1.0, 3.0, 2.0, 0.5, 1.5] + [0.5, -2.0, 10.0, 0.0, 1.0]


def _bundle(activation="elu", dtype="float32", missing="error", tied=False, **more):
    params = dict(latent=2, hidden=(6,), activation=activation, epochs=3, dtype=dtype,
                  tied=tied, output_activation=activation if activation == "tanh" else "linear",
                  **more)
    return train_bundle(_data(300, 0), NAMES, params, missing=missing)


def _session(bundle, what, single_input=False) -> ort.InferenceSession:
    data = export_onnx(bundle, what, single_input=single_input)
    model = onnx.load_from_string(data)
    onnx.checker.check_model(model, full_check=True)
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"])


def _feeds(X: np.ndarray) -> dict:
    return {name: X[:, [j]] for j, name in enumerate(NAMES)}


def _aecli(bundle, X: np.ndarray, what: str) -> dict:
    """What aecli's own streams give for rows ``X``: the columns of its output."""
    batch = pa.RecordBatch.from_arrays([pa.array(X[:, j]) for j in range(X.shape[1])], NAMES)
    totals = apply.ErrorTotals()
    if what == "encode":
        out = apply.encode_stream(bundle, [batch], [], "x", totals)
    elif what == "reconstruct":
        out = apply.reconstruct_stream(bundle, [batch], [], "x", totals, True)
    else:
        out = score.score_stream(bundle, [batch], [], "x", totals,
                                 score.ScoreSummary(bundle.autoencoder.threshold_), 5)
    return pa.Table.from_batches(list(out)).to_pydict()


def _check(bundle, X, dtype):
    tol = TOLERANCE[dtype]
    codes = _session(bundle, "encode").run(["codes"], _feeds(X))[0]
    expected = _aecli(bundle, X, "encode")
    assert codes.dtype == np.dtype(dtype)
    np.testing.assert_allclose(codes, np.column_stack([expected["z1"], expected["z2"]]),
                               rtol=tol, atol=tol)

    recon, error = _session(bundle, "reconstruct").run(["reconstruction", "error"], _feeds(X))
    expected = _aecli(bundle, X, "reconstruct")
    np.testing.assert_allclose(recon, np.column_stack([expected[n] for n in NAMES]), rtol=tol,
                               atol=tol)
    np.testing.assert_allclose(error, expected["error"], rtol=tol, atol=tol)

    error, score, flagged = _session(bundle, "score").run(["error", "score", "flagged"],
                                                          _feeds(X))
    expected = _aecli(bundle, X, "score")
    np.testing.assert_allclose(error, expected["error"], rtol=tol, atol=tol)
    np.testing.assert_allclose(score, expected["score"], rtol=tol, atol=tol)
    assert (np.asarray(expected["score"]) > np.asarray(expected["error"])).any()
    threshold = bundle.autoencoder.threshold_
    away = np.abs(np.asarray(expected["score"]) - threshold) > 10 * tol
    assert away.sum() > 0.9 * len(X)
    np.testing.assert_array_equal(flagged[away], np.asarray(expected["flagged"])[away])
    assert flagged.any() and not flagged.all()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", [a.value for a in ActivationKind])
def test_onnx_runtime_gives_what_aecli_gives(activation, dtype):
    bundle = _bundle(activation, dtype)
    held_out = _data(400, 1)
    held_out[:20] *= 4  # some rows far out, so that some are flagged
    _check(bundle, held_out, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tied_weights_export_once_and_agree(dtype):
    bundle = _bundle("tanh", dtype, tied=True)
    held_out = _data(200, 2)
    held_out[:10] *= 4
    _check(bundle, held_out, dtype)
    graph = onnx.load_from_string(export_onnx(bundle, "reconstruct")).graph
    assert "Transpose" in {n.op_type for n in graph.node}


def _gappy(n=200, seed=3):
    X = _data(n, seed)
    X[[3, 50, 51], [0, 2, 4]] = np.nan
    X[120, :] = np.nan
    return X


def test_imputation_in_the_graph_is_the_models():
    bundle = _bundle(missing="impute")
    X = _gappy()
    codes = _session(bundle, "encode").run(["codes"], _feeds(X))[0]
    expected = _aecli(bundle, X, "encode")
    np.testing.assert_allclose(codes, np.column_stack([expected["z1"], expected["z2"]]),
                               rtol=0, atol=1e-5)
    filled = np.where(np.isnan(X), bundle.preparation.fill, X)
    np.testing.assert_allclose(codes, bundle.encode(filled), rtol=0, atol=1e-5)
    # errors over the observed cells only, as aecli computes them
    error, flagged = _session(bundle, "score").run(["error", "flagged"], _feeds(X))
    expected = _aecli(bundle, X, "score")
    np.testing.assert_allclose(error, expected["error"], rtol=1e-5, atol=1e-5)
    assert np.isnan(error[120]) and np.isnan(expected["error"][120])  # nothing observed


def test_dropped_rows_are_left_out_and_named():
    bundle = _bundle(missing="drop")
    X = _gappy()
    error, flagged, kept = _session(bundle, "score").run(["error", "flagged", "kept"],
                                                         _feeds(X))
    complete = ~np.isnan(X).any(axis=1)
    np.testing.assert_array_equal(kept, complete)
    expected = _aecli(bundle, X, "score")
    assert len(error) == len(expected["error"]) == complete.sum()
    np.testing.assert_allclose(error, expected["error"], rtol=0, atol=1e-5)
    assert expected["row"] == (np.flatnonzero(complete) + 1).tolist()


def test_under_error_a_row_with_gaps_gives_nan_not_a_number_and_is_flagged():
    bundle = _bundle(missing="error")
    X = _gappy()
    error, flagged = _session(bundle, "score").run(["error", "flagged"], _feeds(X))
    gaps = np.isnan(X).any(axis=1)
    # a score that is not a number never passes as normal, as in aecli score
    assert np.isnan(error[gaps]).all() and flagged[gaps].all()
    assert np.isfinite(error[~gaps]).all()


def test_single_input_and_metadata():
    bundle = _bundle("gelu", "float64")
    X = _data(50, 4)
    session = _session(bundle, "encode", single_input=True)
    assert [i.name for i in session.get_inputs()] == ["X"]
    single = session.run(["codes"], {"X": X})[0]
    np.testing.assert_allclose(single, _session(bundle, "encode").run(["codes"], _feeds(X))[0],
                               rtol=0, atol=1e-12)
    model = onnx.load_from_string(export_onnx(bundle, "score"))
    props = {p.key: p.value for p in model.metadata_props}
    assert props["features"] == '["a", "b", "c", "d", "e"]' and props["what"] == "score"
    assert props["aecli_version"] and float(props["threshold"]) > 0
    # the combined score's p-values need Where and IsNaN (opset 9); the network alone 7
    assert model.opset_import[0].version == int(props["opset"]) == 9
    encode = onnx.load_from_string(export_onnx(bundle, "encode"))
    assert encode.opset_import[0].version == 7


@pytest.mark.parametrize("activation,missing,opset", [
    ("tanh", "error", 7), ("gelu", "error", 7), ("elu", "error", 8), ("leaky_relu", "error", 8),
    ("relu", "impute", 9), ("tanh", "drop", 9)])
def test_the_opset_is_the_lowest_that_holds_the_graph(activation, missing, opset):
    # the score without the column tails and code neighbours, whose p-values need opset 9
    data = export_onnx(_bundle(activation, missing=missing, score_by="error+code"),
                       ExportTarget.SCORE)
    model = onnx.load_from_string(data)
    assert model.opset_import[0].version == opset
    # every operator exists at that opset, and one of them first took its form there
    since = [onnx.defs.get_schema(n.op_type, opset).since_version for n in model.graph.node]
    assert max(since) == opset
    ort.InferenceSession(data, providers=["CPUExecutionProvider"])  # and the runtime takes it


def test_cli_export_writes_a_file_ort_runs(tmp_path):
    data = tmp_path / "d.csv"
    pd.DataFrame(_data(300, 0), columns=NAMES).to_csv(data, index=False)
    model, out = tmp_path / "m.npz", tmp_path / "m.onnx"
    runner = CliRunner()
    r = runner.invoke(app, ["train", str(data), "-o", str(model), "--epochs", "2", "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["export", str(model), "--what", "score", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "score graph" in r.stderr
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    error, score = session.run(["error", "score"], _feeds(_data(10, 5)))
    bundle = modelfile.read_model(model)
    assert len(bundle.autoencoder.members_) == 5  # 300 rows: the graph holds the ensemble
    expected = bundle.scored_scaled(bundle.prepare(_data(10, 5)).X)
    np.testing.assert_allclose(error, expected.errors, rtol=0, atol=1e-5)
    np.testing.assert_allclose(score, expected.scores, rtol=1e-5)


def test_a_model_that_cannot_be_exported_says_why_and_writes_nothing(tmp_path, monkeypatch):
    import builtins

    runner = CliRunner()
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a model")
    out = tmp_path / "x.onnx"
    r = runner.invoke(app, ["export", str(bad), "-o", str(out)])
    assert r.exit_code == 2 and "not a valid aecli model" in r.stderr
    assert not out.exists()

    model = tmp_path / "m.npz"
    with open(model, "wb") as f:
        modelfile.write_model(_bundle(), f)
    real_import = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name == "onnx" or name.startswith("onnx."):
            raise ImportError("No module named 'onnx'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    r = runner.invoke(app, ["export", str(model), "-o", str(out)])
    assert r.exit_code == 2
    assert "aecli[onnx]" in r.stderr and "Traceback" not in r.stderr
    assert set(tmp_path.iterdir()) == {bad, model}  # no output, no temporary file
