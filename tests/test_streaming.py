"""Training on data larger than memory (issue 5): the table is read anew every epoch."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import aecli.pipeline.train_streamed as streaming
from aecli import Autoencoder
from aecli.cli import app
from aecli.errors import DataError
from aecli.estimators.rows import held_out
from aecli.nn.trimmed import trimmed_mean
from aecli.pipeline.modelfile import read_model
from aecli.pipeline.train import train_bundle
from aecli.preprocessing import MissingPolicy

CURVE = "sample_data/curve.csv"
PARAMS = dict(latent=2, hidden=(32, 16), epochs=40, seed=0)


def chunks_of(X, size):
    """A reader that yields ``X`` in chunks and counts how often it was called."""
    calls = []

    def read():
        calls.append(1)
        for start in range(0, len(X), size):
            yield X[start : start + size]

    return read, calls


@pytest.fixture(scope="module")
def curve():
    df = pd.read_csv(CURVE)
    names = [c for c in df.columns if c.startswith("x")]
    return df[names].to_numpy(np.float64), names


def test_streamed_training_matches_in_memory_quality(curve):
    X, names = curve
    read, calls = chunks_of(X, 300)
    bundle = streaming.train_bundle_streaming(read, names, PARAMS)
    summary, in_memory = bundle.summary, train_bundle(X, names, PARAMS).summary
    # The survey, a look at the first chunk for the width, each epoch, the training error.
    assert len(calls) == 1 + 1 + PARAMS["epochs"] + 1
    assert summary["rows_train"] + summary["rows_validation"] == len(X)
    assert summary["validation_mse"] < 0.1 * summary["pca_mse"]
    assert summary["validation_mse"] < 3 * in_memory["validation_mse"]
    assert bundle.encode(X[:5]).shape == (5, 2)


def test_fit_chunks_is_deterministic_and_uses_every_chunk():
    X = np.random.default_rng(0).normal(size=(900, 6)).astype(np.float32)
    read, _ = chunks_of(X, 200)
    a = Autoencoder(latent=2, hidden=(8,), epochs=3).fit_chunks(read, validation_data=X[:100])
    b = Autoencoder(latent=2, hidden=(8,), epochs=3).fit_chunks(read, validation_data=X[:100])
    c = Autoencoder(latent=2, hidden=(8,), epochs=3, seed=1).fit_chunks(read)
    assert np.array_equal(a.network_.theta, b.network_.theta)
    assert not np.array_equal(a.network_.theta, c.network_.theta)
    # over every row, its worst 1% left out (aecli.nn.trimmed), as in memory
    expected = trimmed_mean(a.reconstruction_error(X))
    assert a.train_mse_ == pytest.approx(expected, rel=1e-5)


def test_the_sample_is_bounded_and_uniform(monkeypatch):
    monkeypatch.setattr(streaming, "SAMPLE_ROWS", 500)
    X = np.arange(20_000, dtype=np.float64).reshape(-1, 1) * np.ones((1, 3))
    read, _ = chunks_of(X, 1000)
    s = streaming.survey(read, ["a", "b", "c"], MissingPolicy.ERROR, 0.1, seed=0)
    assert s.sample.numeric.shape == (500, 3)
    # Drawn from the whole table, not its start: about half the sample is past the middle.
    assert 0.4 < np.mean(s.sample.numeric[:, 0] >= 10_000) < 0.6
    assert s.rows_train + sum(map(len, s.validation)) == 20_000


def test_missing_values_name_the_row_across_chunks():
    X = np.ones((1000, 2))
    X[:, 1] = np.arange(1000)
    X[733, 1] = np.nan
    read, _ = chunks_of(X, 100)
    with pytest.raises(DataError, match="734"):
        streaming.train_bundle_streaming(read, ["a", "b"], PARAMS)
    bundle = streaming.train_bundle_streaming(read, ["a", "b"], PARAMS, missing="drop")
    assert bundle.summary["rows_dropped"] == 1
    bundle = streaming.train_bundle_streaming(read, ["a", "b"], PARAMS, missing="impute")
    assert bundle.preparation.fill[1] == pytest.approx(np.nanmean(X[:, 1]), rel=0.05)


def test_cli_stream_trains_from_parquet_and_refuses_stdin(tmp_path):
    pd.read_csv(CURVE).to_parquet(tmp_path / "curve.parquet")
    model = tmp_path / "m.npz"
    runner = CliRunner()
    r = runner.invoke(app, ["train", str(tmp_path / "curve.parquet"), "--stream", "-o",
                            str(model), "--epochs", "5", "-q"])
    assert r.exit_code == 0, r.output
    assert read_model(model).features == [f"x{j:02d}" for j in range(1, 11)] + ["segment"]
    r = runner.invoke(app, ["train", "-", "--stream", "-o", str(tmp_path / "s.npz")],
                      input=open(CURVE).read())
    assert r.exit_code == 2
    assert "--stream" in r.stderr and "file" in r.stderr
    assert not (tmp_path / "s.npz").exists()


def test_the_summary_counts_the_rows_dropped_and_the_cells_imputed():
    X = np.ones((1000, 2))
    X[:, 1] = np.arange(1000)
    X[[3, 500, 733], 1] = np.nan
    X[[3, 900], 0] = np.nan  # row 3 has two gaps
    read, _ = chunks_of(X, 100)
    for fit in (lambda **kw: streaming.train_bundle_streaming(read, ["a", "b"], PARAMS, **kw),
                lambda **kw: train_bundle(X, ["a", "b"], PARAMS, **kw)):
        imputed = fit(missing="impute").summary
        assert (imputed["cells_imputed"], imputed["rows_dropped"]) == (5, 0)
        dropped = fit(missing="drop").summary
        assert (dropped["cells_imputed"], dropped["rows_dropped"]) == (0, 4)


def test_a_parquet_file_is_read_in_a_fresh_order_of_row_groups_splitting_the_same_rows(
        tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from aecli.pipeline.sources import DataOptions, stream_features

    n = 1000
    # t: not whole numbers, so a feature rather than an identifier
    table = pa.table({"t": np.arange(n) + 0.5, "x": np.sin(np.arange(n) / 50)})
    path = tmp_path / "sorted.parquet"
    pq.write_table(table, path, row_group_size=100)  # 10 row groups, in the order of t
    source, roles, _ = stream_features(str(path), DataOptions())
    assert roles.numeric == ["t", "x"] and source.shuffled is not None
    orders = []
    for seed in (1, 2):
        parts = list(source.shuffled(np.random.default_rng(seed)))
        firsts = [offset for offset, _ in parts]
        orders.append(firsts)
        assert sorted(firsts) == list(range(0, n, 100)) and firsts != sorted(firsts)
        for offset, rows in parts:  # each part holds the rows its row numbers say
            np.testing.assert_array_equal(rows.numeric[:, 0],
                                          np.arange(offset, offset + 100) + 0.5)
    assert orders[0] != orders[1]
    rows = np.concatenate([r.numeric[:, 0] for r in source()])  # the file's order, as before
    np.testing.assert_array_equal(rows, np.arange(n) + 0.5)
    # held out by row number alone: the same rows whatever the order of reading
    held = {o + i for o, rows in source.shuffled(np.random.default_rng(3))
            for i in np.flatnonzero(held_out(0, 0.1, o, len(rows)))}
    assert held == set(np.flatnonzero(held_out(0, 0.1, 0, n)).tolist())
    assert 60 < len(held) < 140
    # a CSV, or a Parquet file of one row group, is read in its own order only
    pq.write_table(table, tmp_path / "one.parquet")
    assert stream_features(str(tmp_path / "one.parquet"), DataOptions())[0].shuffled is None
    table.to_pandas().to_csv(tmp_path / "t.csv", index=False)
    assert stream_features(str(tmp_path / "t.csv"), DataOptions())[0].shuffled is None


def test_streamed_training_from_row_groups_is_deterministic(tmp_path):
    X = np.random.default_rng(0).normal(size=(2000, 4))
    pd.DataFrame(X, columns=list("abcd")).to_parquet(tmp_path / "d.parquet",
                                                     row_group_size=250)
    runner = CliRunner()
    models = []
    for name in ("m1.npz", "m2.npz"):
        r = runner.invoke(app, ["train", str(tmp_path / "d.parquet"), "--stream", "--epochs",
                                "3", "--hidden", "8", "-o", str(tmp_path / name), "-q"])
        assert r.exit_code == 0, r.output
        models.append(read_model(tmp_path / name))
    assert np.array_equal(models[0].autoencoder.network_.theta,
                          models[1].autoencoder.network_.theta)
    s = models[0].summary
    assert s["rows_train"] + s["rows_validation"] == 2000


def test_a_table_of_fewer_than_ten_rows_trains_streamed(tmp_path):
    # No training error is left out of the trimmed mean below 10 rows: the streamed pass
    # over the training rows' errors raised an internal error there.
    data = tmp_path / "nine.csv"
    data.write_text("a,b\n" + "".join(f"{i % 4 - 1.5},{(i * 7) % 5 - 2}\n" for i in range(9)))
    r = CliRunner().invoke(app, ["train", str(data), "-o", str(tmp_path / "m.npz"), "--stream",
                                 "--epochs", "1", "--hidden", "2", "-k", "1", "-q"])
    assert r.exit_code == 0, r.output
    assert read_model(tmp_path / "m.npz").summary["streamed"]
