"""``aecli drift`` and the drift reference on a Dask cluster: a model trained on partitions
stores the reference one machine stores for the same rows, and drift counted on the workers
reports what one machine reports."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import ok

from aecli.pipeline.modelfile import read_members

distributed = pytest.importorskip("distributed")


def test_the_cluster_stores_one_machines_reference_and_drift_merges_to_it(cluster,
                                                                          tmp_path):
    rng = np.random.default_rng(0)
    n = 4500
    a = rng.normal(size=n)
    t = pd.DataFrame({"a": a, "b": a + 0.2 * rng.normal(size=n), "c": rng.exponential(size=n),
                      "shop": rng.choice(["x", "y", "z"], n)})
    t.loc[::17, "c"] = np.nan
    train, batch = t.iloc[:3000], t.iloc[3000:].copy()
    batch["a"] += 0.3  # drift in one column, to be found alike
    for name, rows, parts in (("train", train, 3), ("batch", batch, 2)):
        (tmp_path / name).mkdir()
        for i, part in enumerate(np.array_split(np.arange(len(rows)), parts)):
            rows.iloc[part].to_parquet(tmp_path / name / f"p{i}.parquet", index=False)
    train.to_csv(tmp_path / "train.csv", index=False)
    batch.to_csv(tmp_path / "batch.csv", index=False)
    common = ["--missing", "impute", "--epochs", "2", "-q"]
    ok("train", tmp_path / "train", "--scheduler", cluster, "-o", tmp_path / "c.npz", *common)
    ok("train", tmp_path / "train.csv", "-o", tmp_path / "s.npz", *common)
    cluster_meta, cluster_arrays = read_members(tmp_path / "c.npz")
    one_meta, one_arrays = read_members(tmp_path / "s.npz")
    assert cluster_meta["reference"] == one_meta["reference"]
    for name in ("reference.values", "reference.counts", "reference.missing"):
        assert np.array_equal(cluster_arrays[name], one_arrays[name])

    model = tmp_path / "s.npz"
    here = json.loads(ok("drift", model, tmp_path / "batch.csv", "--json", "-q").stdout)
    there = json.loads(ok("drift", model, tmp_path / "batch", "--scheduler", cluster,
                          "--json", "-q").stdout)
    assert there["drifted"] == here["drifted"] and "a" in here["drifted"]
    for mine, theirs in zip(here["tests"], there["tests"], strict=True):
        for key in ("column", "kind", "test", "statistic", "p_value", "p_adjusted", "drift"):
            assert mine[key] == theirs[key], (mine, theirs)
