"""One validation split by row number for every way of training: in memory, streamed, on a
Dask cluster and the estimator on arrays hold out the same rows for one table and seed."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd
import pytest
from conftest import run

from aecli.estimators import Autoencoder
from aecli.estimators.rows import held_out, split
from aecli.pipeline.train import prepare_training_rows
from aecli.pipeline.train_streamed import survey
from aecli.preprocessing import MissingPolicy, ScalerKind

SEED, FRACTION = 5, 0.3
CUTS = (0, 170, 420, 600)  # three partitions of unequal length




@pytest.fixture(scope="module")
def table():
    """600 rows whose column ``r`` holds the row number (0-based) plus a half, so a row's
    number can be read back from its values; row 250 has a gap, dropped with --missing
    drop, which must not renumber the rows after it."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"r": np.arange(600) + 0.5, "a": rng.normal(size=600),
                          "b": rng.normal(size=600)})
    frame.loc[250, "a"] = np.nan
    return frame


def expected(table) -> set[int]:
    val = held_out(SEED, FRACTION, 0, len(table))
    val[table["a"].isna().to_numpy()] = False  # the dropped row is in no split
    return set(np.flatnonzero(val).tolist())


def row_numbers(prep, X_scaled) -> set[int]:
    return set(np.rint(prep.unscale(X_scaled)[:, 0] - 0.5).astype(int).tolist())


def test_the_rule_depends_on_the_row_number_alone():
    whole = held_out(SEED, FRACTION, 0, 1000)
    cut = np.concatenate([held_out(SEED, FRACTION, a, b - a)
                          for a, b in ((0, 3), (3, 517), (517, 1000))])
    np.testing.assert_array_equal(whole, cut)
    assert 0.25 < whole.mean() < 0.35
    assert not np.array_equal(whole, held_out(SEED + 1, FRACTION, 0, 1000))


def test_in_memory_and_streamed_hold_out_the_same_rows(table):
    X, names = table.to_numpy(), list(table.columns)
    p = prepare_training_rows(X, names, missing=MissingPolicy.DROP, scale=ScalerKind.STANDARD,
                              validation=FRACTION, seed=SEED, dtype="float64")
    assert row_numbers(p.preparation, p.X_val) == expected(table)
    chunks = [X[a:b] for a, b in pairwise(CUTS)]
    s = survey(lambda: iter(chunks), names, MissingPolicy.DROP, FRACTION, SEED)
    assert set((np.concatenate(s.validation_rows) - 1).tolist()) == expected(table)


def test_the_estimator_holds_out_the_same_rows():
    X = np.random.default_rng(1).normal(size=(300, 5))
    train, val = split(X, FRACTION, SEED)
    mask = held_out(SEED, FRACTION, 0, len(X))
    np.testing.assert_array_equal(val, X[mask])
    settings = dict(latent=2, hidden=(8,), epochs=3, seed=SEED, dtype="float64")
    split_by_fit = Autoencoder(**settings, validation=FRACTION).fit(X, out_of_fold=False)
    given = Autoencoder(**settings).fit(X[~mask], validation_data=X[mask], out_of_fold=False)
    assert split_by_fit.val_loss_history_ == given.val_loss_history_


def test_a_cluster_holds_out_the_same_rows(table, cluster, tmp_path):
    import distributed

    from aecli.pipeline.sources import DataOptions
    from aecli.pipeline.train_cluster import prepare_on_cluster

    for i, (a, b) in enumerate(pairwise(CUTS)):
        table.iloc[a:b].to_parquet(tmp_path / f"p{i}.parquet", index=False)
    with distributed.Client(cluster) as client:
        options = DataOptions(missing=MissingPolicy.DROP)
        data = prepare_on_cluster(client, str(tmp_path), options,
                                  {"seed": SEED, "validation": FRACTION},
                                  MissingPolicy.DROP, ScalerKind.STANDARD)
        try:
            held = client.gather(data.held)
        finally:
            data.release()
    X_val = np.concatenate([h.validation for h in held])
    assert row_numbers(data.preparation, X_val) == expected(table)


@pytest.fixture(scope="module")
def huge(tmp_path_factory):
    """800 rows, with 1e300 at data row 401: too large once scaled, unless the scaler was
    fitted on it (it is then a training row); the table whole and in 3 CSV partitions."""
    d = tmp_path_factory.mktemp("huge")
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(800, 3)), columns=list("abc"))
    frame.loc[400, "b"] = 1e300
    frame.to_csv(d / "huge.csv", index=False)
    (d / "parts").mkdir()
    for i, (a, b) in enumerate(((0, 300), (300, 550), (550, 800))):
        frame.iloc[a:b].to_csv(d / "parts" / f"p{i}.csv", index=False)
    return d


@pytest.mark.parametrize("seed,held", [(2, False), (3, True)])
def test_a_value_too_large_gets_one_decision_in_memory_streamed_and_on_a_cluster(
        huge, cluster, tmp_path, seed, held):
    assert held_out(seed, 0.5, 400, 1)[0] == held
    common = ["--validation", "0.5", "--seed", seed, "--epochs", "1", "--hidden", "4", "-q"]
    runs = [run("train", huge / "huge.csv", "-o", tmp_path / "m.npz", *common),
            run("train", huge / "huge.csv", "-o", tmp_path / "s.npz", "--stream", *common),
            run("train", huge / "parts", "--scheduler", cluster, "-o", tmp_path / "c.npz",
                *common)]
    for r in runs:
        if held:  # a validation row, outside the scaler's range: refused, naming it
            assert r.exit_code == 2 and "row 401" in r.output and "too large" in r.output, \
                r.output
        else:  # a training row: the scaler spans it
            assert r.exit_code == 0, r.output
