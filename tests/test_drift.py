"""``aecli drift``: its statistics against SciPy's, the reference the model file stores (the
same in memory and streamed, bounded, refused when absent), the exit codes, and one result
whatever the input's format."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import ok, run

from aecli.pipeline import drift_stats as st
from aecli.pipeline.modelfile import read_members
from aecli.pipeline.reference import SAMPLE_VALUES, Reference
from aecli.preprocessing import RawRows

stats = pytest.importorskip("scipy.stats")
special = pytest.importorskip("scipy.special")

# -- the statistics against SciPy's -------------------------------------------------------


@pytest.mark.parametrize("x", [0.1, 0.4, 0.7, 0.95, 1.0, 1.3, 2.0, 3.5, 6.0])
def test_kolmogorov_survival_is_scipys(x):
    assert st.kolmogorov_sf(x) == pytest.approx(special.kolmogorov(x), rel=1e-12, abs=1e-300)


def _counts_at(points, values):
    values = np.sort(values)
    return np.searchsorted(values, points, "right"), np.searchsorted(values, points, "left")


@pytest.mark.parametrize("n,m,shift", [(40, 60, 0.5), (300, 2048, 0.1), (1500, 2048, 0.0),
                                       (1500, 900, 0.25)])
def test_ks_statistic_from_counts_and_its_p_value_are_scipys(n, m, shift):
    rng = np.random.default_rng(n + m)
    ref = np.round(rng.normal(size=m), 2)  # ties, as real columns have
    batch = np.round(rng.normal(shift, size=n), 2)
    points = np.unique(ref)
    d = st.ks_statistic(*_counts_at(points, ref), m, *_counts_at(points, batch), n)
    exact = stats.ks_2samp(ref, batch, method="exact")
    assert d == pytest.approx(exact.statistic, abs=1e-12)
    # Stephens' corrected asymptotic p-value: within a tenth of the exact one
    assert st.ks_p_value(d, n, m) == pytest.approx(exact.pvalue, rel=0.1, abs=1e-3)


@pytest.mark.parametrize("n,m,shift", [(1500, 2048, 0.05), (300, 800, 0.2), (50, 40, 0.3)])
def test_one_sided_ks_p_value_is_scipys(n, m, shift):
    rng = np.random.default_rng(n)
    ref, batch = rng.normal(size=m), rng.normal(shift, size=n)  # the batch's values larger
    points = np.unique(ref)
    le, lt = _counts_at(points, ref)
    b_le, b_lt = _counts_at(points, batch)
    d = max(float((le / m - b_le / n).max()), float((lt / m - b_lt / n).max()), 0.0)
    expected = stats.ks_2samp(ref, batch, alternative="greater", method="asymp")
    assert d == pytest.approx(expected.statistic, abs=1e-12)
    assert st.ks_p_value_greater(d, n, m) == pytest.approx(expected.pvalue, rel=1e-9)


@pytest.mark.parametrize("x,df", [(0.01, 1), (3.84, 1), (10.0, 3), (50.0, 7), (0.5, 10),
                                  (200.0, 20), (30.0, 30), (1e4, 4)])
def test_chi2_survival_is_scipys(x, df):
    assert st.chi2_sf(x, df) == pytest.approx(stats.chi2.sf(x, df), rel=1e-9, abs=1e-300)


def test_chi2_homogeneity_is_scipys_contingency_test():
    ref, batch = np.array([500, 300, 150, 50]), np.array([60, 50, 30, 10])
    stat, df, p = st.chi2_homogeneity(ref, batch)
    expected = stats.chi2_contingency(np.vstack([ref, batch]), correction=False)
    assert (stat, df) == (pytest.approx(expected.statistic, rel=1e-12), expected.dof)
    assert p == pytest.approx(expected.pvalue, rel=1e-9)


def test_chi2_homogeneity_pools_rare_levels_and_counts_unseen_ones():
    ref, batch = np.array([500, 300, 2, 1, 0]), np.array([60, 30, 0, 0, 40])  # last: unseen
    stat, df, p = st.chi2_homogeneity(ref, batch)
    # the two rare levels pooled into one; the unseen level, expected 5.6 times in the
    # batch, is a level of its own
    pooled = np.array([[500, 300, 0, 3], [60, 30, 40, 0]])
    expected = stats.chi2_contingency(pooled, correction=False)
    assert (stat, df) == (pytest.approx(expected.statistic), expected.dof)
    assert p < 1e-20


@pytest.mark.parametrize("table", [(0, 20000, 1, 1499), (3, 100, 10, 90), (50, 1000, 70, 930),
                                   (1, 1, 1, 1), (0, 10, 5, 5)])
def test_fisher_exact_is_scipys(table):
    a, b, c, d = table
    assert st.fisher_exact(a, b, c, d) == pytest.approx(
        stats.fisher_exact([[a, b], [c, d]]).pvalue, rel=1e-9)


def test_a_single_missing_cell_is_no_evidence_but_a_rise_is():
    test, _, p = st.proportions_test(0, 20_000, 1, 1500)  # chi-squared would say 3e-4
    assert test == "fisher" and p > 0.05
    test, _, p = st.proportions_test(400, 20_000, 300, 1500)  # 2% -> 20%
    assert test == "chi2" and p < 1e-50


def test_holm_is_its_definition():
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.5])
    m, order = len(p), np.argsort(p)
    brute = np.empty(m)
    for rank, i in enumerate(order):
        brute[i] = min(1.0, max((m - r) * p[order[r]] for r in range(rank + 1)))
    assert np.allclose(st.holm(p), brute)
    assert (st.holm(p) >= p).all()


# -- the reference ------------------------------------------------------------------------


def test_the_reference_merges_to_the_whole_whatever_the_parts_and_their_order():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(7000, 2))
    X[::9, 1] = np.nan
    cats = pa.table({"c": pa.array(rng.choice(["a", "b", "NA"], 7000))})
    whole = Reference.of(RawRows(X, cats), ["x", "y"], ["c"])
    cuts = [0, 1000, 4321, 7000]
    parts = [Reference.of(RawRows(X[a:b], cats.slice(a, b - a)), ["x", "y"], ["c"], a)
             for a, b in zip(cuts, cuts[1:], strict=False)]
    merged = parts[2].merge(parts[0]).merge(parts[1])
    assert merged.meta() == whole.meta()
    for name, array in whole.arrays().items():
        assert np.array_equal(merged.arrays()[name], array)
    assert whole.arrays()["reference.counts"].tolist() == [SAMPLE_VALUES, SAMPLE_VALUES]
    assert whole.arrays()["reference.missing"].tolist() == [0, 778]
    assert whole.meta()["categorical"]["c"]["levels"][-1] is None  # "NA" is missing


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A table whose columns go together (b = a, c = -a, with noise), a model of its first
    3,000 rows (in memory and streamed), held-out rows, and the held-out rows with b
    permuted: every column's distribution the same, the relation gone."""
    d = tmp_path_factory.mktemp("drift")
    rng = np.random.default_rng(0)
    n = 5000
    a = rng.normal(size=n)
    t = pd.DataFrame({"a": a, "b": a + 0.1 * rng.normal(size=n),
                      "c": -a + 0.1 * rng.normal(size=n), "d": rng.normal(size=n),
                      "shop": rng.choice(["x", "y", "z"], n, p=[0.5, 0.3, 0.2])})
    t.iloc[:3000].to_csv(d / "train.csv", index=False)
    held = t.iloc[3000:].reset_index(drop=True)
    held.to_csv(d / "held.csv", index=False)
    held.to_parquet(d / "held.parquet", index=False)
    (d / "held.jsonl").write_text("".join(json.dumps(r) + "\n"  # every digit, as CSV has
                                          for r in held.to_dict(orient="records")))
    permuted = held.copy()
    permuted["b"] = rng.permutation(permuted["b"].to_numpy())
    permuted.to_csv(d / "permuted.csv", index=False)
    ok("train", d / "train.csv", "-o", d / "m.npz", "-q", "--epochs", "8")
    ok("train", d / "train.csv", "-o", d / "s.npz", "-q", "--epochs", "1", "--stream")
    return d


def test_the_model_stores_a_bounded_reference_the_same_when_streamed(synthetic):
    meta, arrays = read_members(synthetic / "m.npz")
    s_meta, s_arrays = read_members(synthetic / "s.npz")
    assert meta["reference"] == s_meta["reference"]
    assert meta["reference"]["rows"] == 3000
    assert meta["reference"]["categorical"]["shop"]["levels"] == ["x", "y", "z"]
    for name in ("reference.values", "reference.counts", "reference.missing"):
        assert np.array_equal(arrays[name], s_arrays[name])
    assert arrays["reference.counts"].tolist() == [SAMPLE_VALUES] * 4  # of 3,000 rows
    assert arrays["reference.values"].nbytes == 4 * SAMPLE_VALUES * 8


def test_an_older_model_is_refused_with_retrain_as_the_fix(synthetic):
    r = run("drift", "tests/data/model-format-4.npz", synthetic / "held.csv")
    assert r.exit_code == 2
    assert "holds no drift reference" in r.stderr and "retrain" in r.stderr


# -- the command --------------------------------------------------------------------------


def _report(*args) -> dict:
    return json.loads(ok("drift", *args, "--json", "-q").stdout)


def test_a_clean_batch_passes_and_a_broken_relation_is_caught_jointly(synthetic):
    clean = run("drift", synthetic / "m.npz", synthetic / "held.csv", "--fail-on-drift")
    assert clean.exit_code == 0, clean.stderr
    assert "No drift at alpha 0.05 after Holm's correction" in clean.stderr
    broken = run("drift", synthetic / "m.npz", synthetic / "permuted.csv", "--fail-on-drift")
    assert broken.exit_code == 1
    report = _report(synthetic / "m.npz", synthetic / "permuted.csv")
    assert report["drifted"] == ["(scores)"]  # no single column moved
    assert [t["drift"] for t in report["tests"] if t["kind"] != "joint"] == [False] * 10


def test_what_moved_is_said_per_column(synthetic, tmp_path):
    held = pd.read_csv(synthetic / "held.csv")
    held["a"] += 0.5 * held["a"].std()
    held.loc[:799, "shop"] = "z"
    held.loc[:599, "d"] = np.nan
    held.to_parquet(tmp_path / "moved.parquet", index=False)
    report = _report(synthetic / "m.npz", tmp_path / "moved.parquet")
    said = {(t["column"], t["kind"]): t["description"] for t in report["tests"] if t["drift"]}
    assert said[("a", "numeric")].startswith("mean ")
    assert said[("shop", "categorical")].startswith("level 'z' 19% → ")  # 19.4% in training
    assert said[("d", "missing")] == "missing 0% → 30%"
    assert run("drift", synthetic / "m.npz", tmp_path / "moved.parquet", "-q",
               "--fail-on-drift").exit_code == 1


def test_every_format_and_stdin_give_one_result(synthetic):
    model = synthetic / "m.npz"
    first = _report(model, synthetic / "held.csv")
    assert first["rows"] == 2000 and first["tests_run"] == 11  # 2 per column + joint
    for name in ("held.parquet", "held.jsonl"):
        assert _report(model, synthetic / name) == first
    piped = json.loads(run("drift", model, "-", "--json", "-q",
                           input=(synthetic / "held.csv").read_bytes()).stdout)
    assert piped == first


def test_per_test_rows_are_written_and_outputs_never_collide(synthetic, tmp_path):
    out = tmp_path / "tests.parquet"
    ok("drift", synthetic / "m.npz", synthetic / "held.csv", "-o", out, "-q")
    rows = pd.read_parquet(out)
    assert len(rows) == 11 and {"column", "test", "p_value", "p_adjusted", "drift",
                                "description"} <= set(rows.columns)
    r = run("drift", synthetic / "m.npz", synthetic / "held.csv", "-o", synthetic / "held.csv")
    assert r.exit_code == 2 and "is also the input DATA" in r.stderr
    r = run("drift", synthetic / "m.npz", synthetic / "held.csv", "--alpha", "1.5")
    assert r.exit_code == 2
    r = run("drift", synthetic / "m.npz", synthetic / "train.csv", "--columns", "x")
    assert r.exit_code == 2  # not an option of drift


def test_the_streamed_counts_give_scipys_statistic_on_the_stored_sample(synthetic):
    """The command's KS statistic, from counts kept batch by batch, against SciPy's on the
    sample the model file stores and the batch's values."""
    _, arrays = read_members(synthetic / "m.npz")
    samples = np.split(arrays["reference.values"],
                       np.cumsum(arrays["reference.counts"].astype(int))[:-1])
    held = pd.read_csv(synthetic / "held.csv")
    report = _report(synthetic / "m.npz", synthetic / "held.csv")
    numeric = {t["column"]: t for t in report["tests"] if t["kind"] == "numeric"}
    for column, sample in zip("abcd", samples, strict=True):
        expected = stats.ks_2samp(sample, held[column].to_numpy())
        assert numeric[column]["statistic"] == pytest.approx(expected.statistic, abs=1e-12)
        assert numeric[column]["p_value"] == pytest.approx(expected.pvalue, rel=0.1, abs=1e-3)


def test_a_tampered_reference_is_refused_as_altered(synthetic, tmp_path):
    with np.load(synthetic / "m.npz", allow_pickle=False) as f:
        members = {k: f[k] for k in f.files}
    members["reference.counts"] = members["reference.counts"] + 1.0  # past its values
    np.savez(tmp_path / "t.npz", **members)
    r = run("drift", tmp_path / "t.npz", synthetic / "held.csv")
    assert r.exit_code == 2 and "not a valid aecli model file" in r.stderr
    assert "drift reference" in r.stderr


def test_a_header_only_batch_is_no_drift_and_says_it_scored_nothing(synthetic, tmp_path):
    (tmp_path / "empty.csv").write_text("a,b,c,d,shop\n")
    r = run("drift", synthetic / "m.npz", tmp_path / "empty.csv", "--fail-on-drift")
    assert r.exit_code == 0 and "(0 rows scored)" in r.stderr


def test_a_model_calibrated_on_its_own_rows_has_no_joint_test_and_says_why(synthetic):
    ok("train", synthetic / "train.csv", "-o", synthetic / "v0.npz", "-q", "--epochs", "1",
       "--validation", "0")
    r = run("drift", synthetic / "v0.npz", synthetic / "held.csv")
    assert r.exit_code == 0 and "note: the joint test of the anomaly scores is left out" in \
        r.stderr
    report = _report(synthetic / "v0.npz", synthetic / "held.csv")
    assert report["tests_run"] == 10 and report["notes"]
    assert all(t["kind"] != "joint" for t in report["tests"])
