"""Column roles and categorical columns: what each column is used as, one-hot blocks, levels
unseen or missing, and the commands end to end on a mixed-type table."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import FAST_TRAIN, ok, run

from aecli.errors import DataError
from aecli.nn.losses import UNSEEN_ERROR
from aecli.pipeline.modelfile import read_model
from aecli.preprocessing import Categorical, MissingPolicy, Preparation, RawRows, decide_roles

# The orders model must learn the table well enough for its planted rows to stand out.
LEARNED = ["--epochs", "40", "--hidden", "16"]






# -- roles ---------------------------------------------------------------------------------
def _table(n=40):
    rng = np.random.default_rng(0)
    return pa.table({
        "id": pa.array(np.arange(n) + 100),  # integers, every one distinct
        "key": [f"k{i}" for i in range(n)],  # text, every one distinct
        "x": rng.normal(size=n),  # floats, all distinct: a measurement, not an identifier
        "count": pa.array(rng.integers(0, 5, n)),
        "whole": np.arange(n, dtype=np.float64) * 3,  # all-distinct numbers: a measurement
        "flag": pa.array(rng.random(n) < 0.5),  # a boolean: numeric 0/1
        "colour": rng.choice(["red", "green", "blue"], n).tolist(),
        "same": ["EUR"] * n,
        "gap": pa.nulls(n, pa.float64()),
        "when": pa.array(np.arange(n).astype("datetime64[D]")),
        "wide": [f"w{i % 30}" for i in range(n)],  # 30 levels
    })


def test_each_column_gets_a_role():
    roles = decide_roles(_table(), max_levels=20)
    assert roles.numeric == ["x", "count", "whole", "flag"]
    assert roles.categorical == ["colour"]
    assert roles.identifiers == ["id", "key"]  # named as one (and a row number); distinct text
    assert roles.constant == ["same"] and roles.empty == ["gap"]
    assert roles.dates == ["when"]
    assert set(roles.other) == {"wide"} and "--max-levels 20" in roles.other["wide"]
    assert roles.features == ["x", "count", "whole", "flag", "colour"]


def test_categorical_forces_and_none_turns_text_off_and_columns_overrides():
    t = _table()
    forced = decide_roles(t, categorical=["count", "wide"], max_levels=20)
    assert forced.categorical == ["count", "colour", "wide"]
    assert "count" not in forced.numeric
    off = decide_roles(t, auto_categorical=False)
    assert off.categorical == [] and "--categorical colour" in off.other["colour"]
    named = decide_roles(t, columns=["id", "x", "colour"])
    assert named.numeric == ["id", "x"] and named.categorical == ["colour"]
    with pytest.raises(DataError, match="more than --max-levels 20") as e:
        decide_roles(t, columns=["x", "wide"], max_levels=20)
    assert "it holds 'w0'" in str(e.value)


def test_text_that_is_numbers_bar_a_stray_value_is_numeric_not_categorical():
    values = [str(i % 7) for i in range(99)] + ["oops"]
    roles = decide_roles(pa.table({"a": values, "b": np.arange(100) % 3}))
    assert roles.numeric == ["a", "b"] and roles.categorical == []


def test_a_table_of_categories_alone_is_refused_with_advice():
    with pytest.raises(DataError, match="at least one numeric feature"):
        decide_roles(pa.table({"a": ["x", "y"] * 10, "b": ["u", "v", "w", "u"] * 5}))


# -- levels and one-hot blocks ---------------------------------------------------------------
def test_levels_are_sorted_text_with_missing_as_a_level_of_its_own():
    c = Categorical.fit("c", pa.array(["b", None, "a", "b"]))
    assert c.levels == ("a", "b", None)
    np.testing.assert_array_equal(c.codes(pa.array(["a", None, "zz", "b"])), [0, 2, -1, 1])
    assert Categorical.fit("n", pa.array([2, 1, 2])).levels == ("1", "2")  # numbers as text
    d = pa.array(["b", "a"]).dictionary_encode()
    np.testing.assert_array_equal(c.codes(d), [1, 0])  # dictionaries compare by value
    without = Categorical.fit("c", pa.array(["a", "b"]))
    assert without.codes(pa.array([None])).tolist() == [-1]  # a gap training never saw


def test_the_preparation_puts_one_hot_blocks_after_the_numeric_columns():
    t = pa.table({"x": [1.0, 2.0, 3.0, 4.0], "c": ["u", "v", "u", None]})
    prep = Preparation.fit(RawRows(np.array([[1.0], [2.0], [3.0], [4.0]]), t.select(["c"])),
                           ["x"], missing=MissingPolicy.ERROR, scale="standard",
                           dtype=np.float64)
    assert prep.features == ["x", "c"] and prep.width == 4
    X = prep.transform(pa.table({"x": [2.5, 2.5], "c": ["v", "new"]})).X
    np.testing.assert_array_equal(X[:, 1:], [[0, 1, 0], [0, 0, 0]])  # unseen: all zeros
    assert X[0, 0] == 0.0
    with pytest.raises(Exception, match="pass a table"):
        prep.transform(np.zeros((1, 1)))


# -- end to end ------------------------------------------------------------------------------
def _orders(n, seed, planted=()):
    """Shops that each lie in one region; ``planted`` rows put a shop in another region."""
    rng = np.random.default_rng(seed)
    shops = {"s1": "north", "s2": "north", "s3": "south", "s4": "south", "s5": "east",
             "s6": "west"}
    shop = rng.choice(list(shops), n)
    region = np.array([shops[s] for s in shop], dtype=object)
    for i in planted:
        region[i] = "west" if shops[shop[i]] != "west" else "north"
    items = rng.integers(1, 6, n)
    return pd.DataFrame({"id": np.arange(n), "shop": shop, "region": region,
                         "paid": np.where(rng.random(n) < 0.5, "yes", "no"),
                         "items": items, "amount": items * 10 + rng.normal(size=n),
                         # a boolean, written to CSV as True/False: boolean-like text
                         "express": rng.random(n) < 0.2,
                         "day": pd.Timestamp("2024-01-01") + pd.to_timedelta(
                             rng.integers(0, 90, n), unit="D"),  # dates: not used
                         "note": [None] * n})


@pytest.fixture(scope="module")
def orders(tmp_path_factory):
    d = tmp_path_factory.mktemp("orders")
    _orders(1500, 0).to_csv(d / "train.csv", index=False)
    planted = list(range(20, 400, 40))  # 10 of 400
    _orders(400, 1, planted).to_csv(d / "test.csv", index=False)
    model = d / "m.npz"
    r = run("train", d / "train.csv", "-o", model, *LEARNED)
    assert r.exit_code == 0, r.output
    return {"dir": d, "model": model, "planted": planted, "stderr": r.stderr}


def test_train_names_each_role_and_the_model_keeps_them(orders):
    stderr = " ".join(orders["stderr"].split())
    assert "numeric features (2): items, amount" in stderr
    assert "categorical features (4, one-hot): shop, region, paid, express" in stderr
    assert "identifiers, not used: id" in stderr
    assert "empty in every row, so not used: note" in stderr
    assert "dates, not used: day" in stderr  # ISO dates in CSV: never "force it categorical"
    assert "--categorical day" not in stderr
    bundle = read_model(orders["model"])
    assert bundle.features == ["items", "amount", "shop", "region", "paid", "express"]
    assert bundle.preparation.categorical[3].levels == ("False", "True")
    assert [c.levels for c in bundle.preparation.categorical][1] == (
        "east", "north", "south", "west")
    assert bundle.info["roles"]["identifiers"] == ["id"]


def test_score_ranks_impossible_category_combinations_first(orders):
    r = ok("score", orders["model"], orders["dir"] / "test.csv", "--json", "--top", "10", "-q")
    report = json.loads(r.stdout)
    top = {w["row"] - 1 for w in report["worst"]}
    assert len(top & set(orders["planted"])) >= 8, report["worst"]
    named = {t["feature"] for w in report["worst"] for t in w["top_features"][:2]}
    assert named & {"shop", "region"}
    assert set(report["feature_mse"]) == {"items", "amount", "shop", "region", "paid",
                                          "express"}


def test_an_unseen_level_scores_as_its_columns_largest_error_and_is_named(orders, tmp_path):
    data = _orders(30, 2)
    data.loc[5, "paid"] = "maybe"
    data.loc[6, "paid"] = None  # a gap training never saw: unseen too
    data.to_csv(tmp_path / "new.csv", index=False)
    r = ok("score", orders["model"], tmp_path / "new.csv", "--json", "--top", "2", "-q")
    report = json.loads(r.stdout)
    assert {w["row"] for w in report["worst"]} == {6, 7}
    # each model scores the unseen cell UNSEEN_ERROR, at its scale (an ensemble's fold models
    # bring their scores to the main model's): the row's error is at least a sixth of that
    models = read_model(orders["model"]).autoencoder.score_models()
    unseen = UNSEEN_ERROR * sum(m.scale for m in models) / len(models)
    for w in report["worst"]:
        first = w["top_features"][0]
        assert first["feature"] == "paid" and first.get("unseen") is True
        assert w["error"] >= unseen / 6 * (1 - 1e-12)  # one of six columns at its largest
    r = ok("score", orders["model"], tmp_path / "new.csv", "-q")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert "paid=maybe (a level unseen at training; expected" in rows[5]["top_features"]


def test_reconstruct_writes_the_most_probable_level_and_its_probability(orders):
    r = ok("reconstruct", orders["model"], orders["dir"] / "test.csv", "--keep", "shop",
           "--probabilities", "-q")
    out = pd.read_csv(io.StringIO(r.stdout))
    assert list(out.columns) == ["shop", "items", "amount", "shop_reconstructed",
                                 "shop_probability", "region", "region_probability", "paid",
                                 "paid_probability", "express", "express_probability"]
    assert set(out["region"]) <= {"north", "south", "east", "west"}
    assert out["shop_probability"].between(0, 1).all()
    assert (out["shop_reconstructed"] == out["shop"]).mean() > 0.8  # a 2-D code holds shops
    plain = pd.read_csv(io.StringIO(ok("reconstruct", orders["model"],
                                       orders["dir"] / "test.csv", "-q").stdout))
    assert "paid_probability" not in plain.columns


def test_missing_categories_are_a_level_and_compare_pca_measures_both_alike(tmp_path):
    data = _orders(600, 3)
    data.loc[data.index % 7 == 0, "paid"] = None
    data.to_csv(tmp_path / "gaps.csv", index=False)
    model = tmp_path / "g.npz"
    ok("train", tmp_path / "gaps.csv", "-o", model, *FAST_TRAIN, "-q")
    assert read_model(model).preparation.categorical[2].levels == ("no", "yes", None)
    r = ok("compare-pca", tmp_path / "gaps.csv", "-k", "1,2", "--json", *FAST_TRAIN, "-q")
    doc = json.loads(r.stdout)
    assert doc["features"] == ["items", "amount", "shop", "region", "paid", "express"]
    assert all(row["pca_mse"] > 0 and row["ae_mse"] > 0 for row in doc["rows"])


def test_max_levels_and_categorical_none_change_what_is_used(orders):
    path = orders["dir"] / "train.csv"
    few = orders["dir"] / "few.npz"
    r = ok("train", path, "-o", few, "--max-levels", "4", *FAST_TRAIN)
    assert read_model(few).features == ["items", "amount", "region", "paid", "express"]
    assert "not used: shop (text with 6 distinct values, more than --max-levels 4" in " ".join(
        r.stderr.split())
    none = orders["dir"] / "none.npz"
    ok("train", path, "-o", none, "--categorical", "none", "-k", "1",  # k < 2 features
       *FAST_TRAIN, "-q")
    assert read_model(none).features == ["items", "amount"]
    forced = orders["dir"] / "forced.npz"
    ok("train", path, "-o", forced, "--categorical", "items", "--max-levels", "4",
       *FAST_TRAIN, "-q")
    bundle = read_model(forced)
    assert bundle.features == ["amount", "region", "paid", "items", "express"]  # table order
    assert bundle.preparation.categorical[2].levels == ("1", "2", "3", "4", "5")


def test_streamed_training_learns_the_levels_of_the_whole_file(tmp_path):
    data = _orders(3000, 4)
    data.loc[2500, "paid"] = "later"  # a level past the first chunk
    data.to_parquet(tmp_path / "o.parquet", index=False)
    model = tmp_path / "s.npz"
    ok("train", tmp_path / "o.parquet", "--stream", "-o", model, *FAST_TRAIN, "-q")
    bundle = read_model(model)
    assert bundle.preparation.categorical[2].levels == ("later", "no", "yes")
    # Parquet keeps the booleans' type: a number, 0 or 1; the timestamps are not used
    assert bundle.features == ["items", "amount", "express", "shop", "region", "paid"]
    assert "day" in bundle.info["roles"]["dates"]
    r = ok("encode", model, tmp_path / "o.parquet", "-q")
    assert len(r.stdout.splitlines()) == 3001


def test_export_refuses_a_model_with_categorical_columns(orders, tmp_path):
    pytest.importorskip("onnx")
    r = run("export", orders["model"], "-o", tmp_path / "m.onnx")
    assert r.exit_code == 2 and "categorical columns (shop, region, paid, express)" in r.stderr
    assert "--categorical none" in r.stderr and not (tmp_path / "m.onnx").exists()


def test_a_forced_column_of_too_many_levels_is_refused_with_advice():
    t = pa.table({"x": np.arange(3000) % 7 * 1.0, "code": [f"c{i}" for i in range(3000)]})
    with pytest.raises(DataError, match="1,001 distinct values") as e:
        decide_roles(t, categorical=["code"])
    assert "--exclude code" in e.value.hint


def test_columns_left_out_for_one_reason_share_one_line():
    t = pa.table({c: np.arange(40) % 5 * 1.0 for c in "abcdef"})
    lines = decide_roles(t, columns=["a", "b"]).lines()
    assert lines == ["numeric features (2): a, b", "not used (not in --columns): c, d, e, f"]
