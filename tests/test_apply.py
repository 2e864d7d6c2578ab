"""Applying a model to a stream of batches: the quick way and the careful way agree.

Blocks whose values are all present and finite are scaled straight from the Arrow buffers
(``Preparation._quick``); any other block goes through ``to_matrix`` and the model's
missing-value policy. These tests pin that both give the same numbers, that each way is taken
when it should be, and that the network's reusable workspace changes nothing but speed.
"""

import numpy as np
import pyarrow as pa
import pytest

from aecli.errors import DataError
from aecli.io import to_matrix
from aecli.nn import Workspace
from aecli.pipeline import apply, score
from aecli.pipeline.train import train_bundle
from aecli.preprocessing import BatchBuffers

NAMES = ["a", "b", "c", "d"]


def _bundle(scale="standard", dtype="float32", missing="error", offset=0.0):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4)) * [1.0, 10.0, 0.01, 3.0] + offset
    params = dict(latent=2, hidden=(8,), epochs=3, seed=0, dtype=dtype, validation=0.2)
    return train_bundle(X, NAMES, params, scale=scale, missing=missing)


def _batch(X, types=None):
    types = types or [pa.float64()] * X.shape[1]
    arrays = [pa.array(X[:, j], type=t) if t != pa.float64() else pa.array(X[:, j])
              for j, t in enumerate(types)]
    return pa.RecordBatch.from_arrays(arrays, names=NAMES)


def _careful(bundle, batch):
    return bundle.prepare(to_matrix(batch, bundle.features, dtype=np.float64)).X


def _quick(bundle, batch):
    return bundle.preparation._quick(batch, BatchBuffers())


@pytest.mark.parametrize("scale", ["standard", "minmax", "none"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_quick_scaling_is_bit_identical_to_the_careful_way(scale, dtype):
    bundle = _bundle(scale, dtype, offset=1e4)  # far from zero: the subtraction must be exact
    X = np.random.default_rng(1).normal(size=(1000, 4)) * 5 + 1e4
    batch = _batch(X)
    quick = _quick(bundle, batch)
    assert quick is not None, "clean data must take the quick way"
    assert quick.dtype == bundle.dtype
    np.testing.assert_array_equal(quick, _careful(bundle, batch))


def test_integer_and_float32_columns_take_the_quick_way_too():
    bundle = _bundle()
    X = np.random.default_rng(2).integers(0, 200, size=(200, 4)).astype(np.float64)
    batch = _batch(X, [pa.int64(), pa.uint8(), pa.float32(), pa.int16()])
    quick = _quick(bundle, batch)
    assert quick is not None
    np.testing.assert_array_equal(quick, _careful(bundle, batch))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_missing_or_infinite_value_sends_the_block_the_careful_way(bad):
    bundle = _bundle()
    X = np.random.default_rng(3).normal(size=(50, 4))
    X[17, 2] = bad
    assert _quick(bundle, _batch(X)) is None
    with pytest.raises(DataError, match=r"column 'c'.*row 18"):
        bundle.prepare(_batch(X))


def test_a_value_that_overflows_once_scaled_is_refused_by_name():
    bundle = _bundle()
    X = np.random.default_rng(4).normal(size=(30, 4))
    X[4, 2] = 1e38  # finite in float32 too, but column c's scale is 0.01
    clean = np.zeros((100, 4))
    batches = apply.encode_stream(bundle, [_batch(clean), _batch(X)], [], "data.csv",
                                  apply.ErrorTotals())
    with pytest.raises(DataError, match=r"data.csv: column 'c', row 105: .*too large"):
        list(batches)


def test_a_stream_mixing_clean_and_gappy_batches_encodes_as_one_matrix_would():
    bundle = _bundle(missing="impute")
    rng = np.random.default_rng(5)
    parts = [rng.normal(size=(n, 4)) for n in (700, 1, 2500, 64)]
    parts[1][0, 3] = np.nan  # a one-row batch that needs imputing
    parts[2][[5, 2000], [0, 1]] = np.nan
    totals = apply.ErrorTotals()
    out = list(apply.encode_stream(bundle, [_batch(p) for p in parts], [], "x", totals))
    codes = np.column_stack([pa.concat_arrays([b.column(j) for b in out]).to_numpy()
                             for j in range(out[0].num_columns)])
    expected = bundle.encode(np.vstack(parts))
    np.testing.assert_array_equal(codes, expected)
    assert totals.rows == sum(len(p) for p in parts)


def test_reconstruct_and_score_streams_agree_with_the_whole_matrix():
    bundle = _bundle()
    X = np.random.default_rng(6).normal(size=(3000, 4))
    batches = [_batch(X[:1000]), _batch(X[1000:])]
    recon = list(apply.reconstruct_stream(bundle, batches, [], "x", apply.ErrorTotals(), True))
    X_hat, sq = bundle.reconstruct(X)
    got = np.concatenate([b.column("a").to_numpy() for b in recon])
    np.testing.assert_array_equal(got, X_hat[:, 0])
    errors = np.concatenate([b.column("error").to_numpy() for b in recon])
    np.testing.assert_array_equal(errors, sq.mean(axis=1, dtype=np.float64))


def test_a_workspace_changes_no_result_and_is_never_returned():
    bundle = _bundle()
    net = bundle.autoencoder.network_
    rng = np.random.default_rng(7)
    big = rng.normal(size=(20000, 4)).astype(np.float32)  # several inference blocks
    small = rng.normal(size=(3, 4)).astype(np.float32)
    ws = Workspace()
    first = net.encode(big, ws)
    kept = first.copy()
    second = net.encode(small, ws)
    recon = net.decode(second, ws)
    np.testing.assert_array_equal(first, kept)  # later calls did not write into it
    np.testing.assert_array_equal(first, net.encode(big))
    np.testing.assert_array_equal(second, net.encode(small))
    np.testing.assert_array_equal(recon, net.decode(net.encode(small)))
    assert net.encode(big[:0], ws).shape == (0, 2)


@pytest.mark.parametrize("n,k", [(1000, 10), (5, 5), (5, 9), (1, 1), (0, 3), (100, 0)])
def test_the_worst_rows_are_found_by_partition_as_a_full_sort_would(n, k):
    errors = np.random.default_rng(n).exponential(size=n)
    np.testing.assert_array_equal(score._largest(errors, k), np.argsort(-errors)[:k])


def test_every_numeric_arrow_type_scales_as_the_careful_way_does():
    # dictionary-encoded floats, half floats or booleans, decimals, integers (with and
    # without nulls), in a batch that is a slice (an offset into every buffer)
    from decimal import Decimal

    bundle = _bundle(missing="impute")
    n = 300
    rng = np.random.default_rng(8)
    a = rng.normal(size=n)
    b = rng.integers(0, 5, size=n)
    ints = [int(x) for x in b]
    gappy = [None if i % 7 == 0 else x for i, x in enumerate(ints)]
    for second in (pa.array(b.astype(np.float16)), pa.array(b > 2)):
        for fourth, quick in ((pa.array(ints, pa.int32()), True),
                              (pa.array(gappy, pa.int32()), False)):
            part = pa.RecordBatch.from_arrays([
                pa.array(a).dictionary_encode(), second,
                pa.array([Decimal(x) / 4 for x in ints], pa.decimal128(10, 2)), fourth,
            ], names=NAMES).slice(17, 250)
            assert (_quick(bundle, part) is not None) is quick
            xs, mask, _ = bundle.prepare(part)
            assert mask is None
            np.testing.assert_array_equal(xs, _careful(bundle, part))


def test_a_rows_code_does_not_depend_on_the_rows_that_share_its_file(tmp_path):
    # The case: `aecli encode` of a file and of its first 7 rows differed by 3e-7.
    from typer.testing import CliRunner

    from aecli.cli import app

    rng = np.random.default_rng(9)
    X = rng.normal(size=(3000, 4))
    model = tmp_path / "m.npz"
    with open(model, "wb") as f:
        from aecli.pipeline import modelfile

        modelfile.write_model(_bundle(), f)
    runner = CliRunner()
    header = ",".join(NAMES) + "\n"

    def encode(rows) -> np.ndarray:
        path = tmp_path / "part.csv"
        path.write_text(header + "".join(",".join(repr(float(v)) for v in r) + "\n" for r in rows))
        r = runner.invoke(app, ["encode", str(model), str(path)])
        assert r.exit_code == 0, r.output
        return np.loadtxt(r.stdout.splitlines()[1:], delimiter=",", ndmin=2)

    whole = encode(X)
    for lo, hi in [(0, 7), (5, 6), (100, 2222), (2999, 3000), (1, 3000)]:
        np.testing.assert_array_equal(encode(X[lo:hi]), whole[lo:hi])
