"""aecli.preprocessing: scalers (against scikit-learn), missing values, column selection."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import datasets
from sklearn import preprocessing as skp
from sklearn.impute import SimpleImputer
from sklearn.utils.estimator_checks import check_estimator

from aecli.errors import DataError, InvalidParameterError, NotFittedError
from aecli.preprocessing import (
    SCALERS,
    IdentityScaler,
    Imputer,
    MinMaxScaler,
    MissingPolicy,
    Preparation,
    ScalerKind,
    StandardScaler,
    choose_feature_columns,
    find_missing,
    make_scaler,
    match_model_columns,
    missing_error,
    scaler_from_arrays,
    screen,
)

SKLEARN_SCALERS = {"standard": skp.StandardScaler, "minmax": skp.MinMaxScaler}


def wine() -> np.ndarray:
    return datasets.load_wine().data


def with_gaps(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(loc=[1.0, -5.0, 100.0], scale=[1.0, 3.0, 20.0], size=(200, 3))
    X[rng.random(X.shape) < 0.1] = np.nan
    return X


# -- scalers -----------------------------------------------------------------------------------


def test_scaler_kinds_and_registry():
    assert [k.value for k in ScalerKind] == ["standard", "minmax", "none"]
    assert SCALERS == {
        ScalerKind.STANDARD: StandardScaler,
        ScalerKind.MINMAX: MinMaxScaler,
        ScalerKind.NONE: IdentityScaler,
    }
    for kind, cls in SCALERS.items():
        assert type(make_scaler(kind)) is cls
        assert type(make_scaler(kind.value)) is cls
    with pytest.raises(InvalidParameterError, match="standard, minmax, none; got 'robust'"):
        make_scaler("robust")


@pytest.mark.parametrize("kind", ["standard", "minmax"])
def test_scalers_match_sklearn(kind):
    X = wine()
    ours = make_scaler(kind).fit(X)
    sk = SKLEARN_SCALERS[kind]().fit(X)
    assert_allclose(ours.transform(X), sk.transform(X), rtol=1e-12, atol=1e-12)
    assert_allclose(ours.inverse_transform(ours.transform(X)), X, rtol=1e-12)
    assert_allclose(ours.fit_transform(X), sk.transform(X), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["standard", "minmax"])
def test_scalers_ignore_nan_like_sklearn(kind):
    X = with_gaps()
    ours = make_scaler(kind).fit(X)
    sk = SKLEARN_SCALERS[kind]().fit(X)
    out = ours.transform(X)
    assert_array_equal(np.isnan(out), np.isnan(X))
    assert_allclose(out, sk.transform(X), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", list(ScalerKind))
def test_every_scaler_is_the_affine_map_it_stores(kind):
    X = wine()
    scaler = make_scaler(kind).fit(X)
    assert scaler.center_.shape == scaler.scale_.shape == (X.shape[1],)
    assert scaler.center_.dtype == scaler.scale_.dtype == np.float64
    assert_allclose(scaler.transform(X), (X - scaler.center_) / scaler.scale_, rtol=1e-14)
    Z = np.random.default_rng(0).normal(size=(5, X.shape[1]))
    assert_allclose(scaler.inverse_transform(Z), Z * scaler.scale_ + scaler.center_)
    rebuilt = scaler_from_arrays(kind, scaler.center_, scaler.scale_)
    assert type(rebuilt) is type(scaler)
    assert_array_equal(rebuilt.transform(X), scaler.transform(X))


def test_identity_scaler_changes_nothing():
    X = wine()
    scaler = IdentityScaler().fit(X)
    assert_array_equal(scaler.center_, 0.0)
    assert_array_equal(scaler.scale_, 1.0)
    assert_array_equal(scaler.transform(X), X)


@pytest.mark.parametrize("kind", list(ScalerKind))
def test_constant_column_maps_to_finite_values(kind):
    X = np.column_stack([np.full(6, 7.3), np.arange(6.0), np.zeros(6)])
    scaler = make_scaler(kind).fit(X)
    out = scaler.transform(X)
    assert np.all(np.isfinite(out))
    if kind != ScalerKind.NONE:
        assert_array_equal(scaler.scale_[[0, 2]], 1.0)
        assert_array_equal(out[:, 0], 0.0)
        assert_allclose(out, SKLEARN_SCALERS[kind]().fit_transform(X), atol=1e-15)
    assert_allclose(scaler.inverse_transform(out), X)


def test_single_row_fits():
    out = StandardScaler().fit_transform(np.array([[1.0, 2.0]]))
    assert_array_equal(out, [[0.0, 0.0]])


@pytest.mark.parametrize("kind", list(ScalerKind))
def test_scalers_keep_float32_and_compute_safely(kind):
    big = np.finfo(np.float32).max / 2
    X = np.array([[-big, 1.0], [big, 2.0], [0.0, 3.0]], dtype=np.float32)
    scaler = make_scaler(kind).fit(X)
    out = scaler.transform(X)
    assert out.dtype == np.float32
    assert scaler.inverse_transform(out).dtype == np.float32
    if kind == ScalerKind.MINMAX:
        # X - min overflows float32; computed in float64 it is exactly the range.
        assert_allclose(out[:, 0], [0.0, 1.0, 0.5], rtol=1e-6)
    assert np.all(np.isfinite(out))
    assert make_scaler(kind).fit_transform(np.arange(6).reshape(3, 2)).dtype == np.float64


def test_scaler_errors():
    with pytest.raises(NotFittedError):
        StandardScaler().transform(np.ones((2, 2)))
    scaler = StandardScaler().fit(np.ones((3, 4)))
    with pytest.raises(DataError, match="X has 3 features, but StandardScaler is expecting 4"):
        scaler.transform(np.ones((2, 3)))
    X = wine()
    X[[4, 9], 2] = [np.inf, -np.inf]
    for fit_or_transform in (MinMaxScaler().fit, StandardScaler().fit(wine()).transform):
        with pytest.raises(DataError, match=r"column 3 has 2 infinite values \(rows 5, 10\)"):
            fit_or_transform(X)
    gaps = with_gaps()
    gaps[:, 1] = np.nan
    with pytest.raises(DataError, match="column 2 has no values"):
        StandardScaler().fit(gaps)
    with pytest.raises(DataError, match="Expected 2D array"):
        StandardScaler().fit(np.arange(3.0))


@pytest.mark.parametrize(
    "center, scale, match",
    [
        ([0.0, 1.0], [1.0], "same non-zero length"),
        ([[0.0]], [[1.0]], "1-D"),
        ([], [], "non-zero length"),
        ([0.0, 1.0], [1.0, 0.0], "feature 2 has center 1.0 and scale 0.0"),
        ([0.0, np.nan], [1.0, 1.0], "feature 2"),
        ([0.0, 1.0], [-1.0, 1.0], "positive"),
    ],
)
def test_scaler_from_bad_arrays(center, scale, match):
    with pytest.raises(InvalidParameterError, match=match):
        scaler_from_arrays("standard", center, scale)


def test_scaler_from_arrays_checks_kind_and_identity():
    with pytest.raises(InvalidParameterError, match="'robust'"):
        scaler_from_arrays("robust", [0.0], [1.0])
    with pytest.raises(InvalidParameterError, match="center 0 and scale 1"):
        scaler_from_arrays(ScalerKind.NONE, [1.0], [1.0])


def test_scaler_arrays_are_copied():
    center, scale = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    scaler = scaler_from_arrays("minmax", center, scale)
    center[0] = 100.0
    assert scaler.center_[0] == 1.0


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(
    "estimator", [StandardScaler(), MinMaxScaler(), IdentityScaler(), Imputer()], ids=repr
)
def test_sklearn_estimator_checks(estimator):
    results = check_estimator(estimator, on_fail=None)
    failed = {r["check_name"] for r in results if r["status"] == "failed"}
    # scikit-learn's sparse checks call set_params(with_mean=False) on anything named
    # StandardScaler; ours takes no parameters.
    if isinstance(estimator, StandardScaler):
        failed -= {"check_estimator_sparse_array", "check_estimator_sparse_matrix"}
    assert not failed


# -- missing values ----------------------------------------------------------------------------


def gappy_table() -> np.ndarray:
    X = np.arange(60, dtype=np.float64).reshape(15, 4)
    X[[3, 8, 11], 0] = np.nan  # rows 4, 9, 12 of column 'a'
    X[[0, 1, 2, 4, 5, 6, 7], 2] = np.nan  # seven in column 'c'
    return X


NAMES = ["a", "b", "c", "d"]


def test_find_missing_reports_counts_and_first_rows():
    report = find_missing(gappy_table(), NAMES)
    assert report and report.total == 10 and report.n_rows == 15
    assert [(c.name, c.index, c.count, c.rows) for c in report.columns] == [
        ("a", 0, 3, (4, 9, 12)),
        ("c", 2, 7, (1, 2, 3, 5, 6)),
    ]
    shifted = find_missing(gappy_table(), NAMES, row_offset=1000)
    assert shifted.columns[0].rows == (1004, 1009, 1012)
    assert not find_missing(np.ones((3, 2)), ["x", "y"])
    assert not find_missing(np.ones((0, 2)), ["x", "y"])


def test_missing_error_names_column_count_rows_and_remedy():
    X = gappy_table()[:, :2]
    error = missing_error(find_missing(X, ["a", "b"]))
    assert isinstance(error, DataError)
    assert error.message == "column 'a' has 3 missing values (rows 4, 9, 12)"
    assert "--missing drop" in error.hint and "--missing impute" in error.hint
    several = str(missing_error(find_missing(gappy_table(), NAMES)))
    assert "missing values in 2 columns" in several
    assert "column 'a' has 3 (rows 4, 9, 12)" in several
    assert "column 'c' has 7 (rows 1, 2, 3, 5, 6, ...)" in several
    single = np.array([[1.0, np.nan], [2.0, 3.0]])
    assert str(missing_error(find_missing(single))).startswith(
        "column 2 has 1 missing value (row 1)"
    )


def test_missing_error_points_out_empty_columns():
    X = np.ones((4, 2))
    X[:, 1] = np.nan
    error = missing_error(find_missing(X, ["full", "empty"]))
    assert "column 'empty' has no values at all" in error.hint and "--exclude" in error.hint


def test_policy_error_raises_and_passes_clean_data():
    with pytest.raises(DataError, match=r"column 'a' has 3 missing values \(rows 4, 9, 12\)"):
        screen(gappy_table()[:, :2], ["a", "b"], MissingPolicy.ERROR)
    assert screen(np.ones((3, 2), dtype=np.float32), ["x", "y"], MissingPolicy.ERROR) is None


def test_policy_drop_keeps_complete_rows_and_returns_mask():
    X = gappy_table()
    ids = np.arange(100, 115)
    keep = screen(X, NAMES, MissingPolicy.DROP)
    assert_array_equal(keep, ~np.isnan(X).any(axis=1))
    assert_array_equal(ids[keep], [109, 110, 112, 113, 114])
    prep = Preparation.fit(X[keep], NAMES, missing="drop", scale="none", dtype=np.float64)
    prepared = prep.transform(X)
    assert_array_equal(prepared.keep, keep)
    assert_array_equal(prepared.X, X[keep])


def test_policy_impute_uses_training_means_like_sklearn():
    X = with_gaps()
    assert screen(X, ["p", "q", "r"], MissingPolicy.IMPUTE) is None  # filled once fitted
    prep = Preparation.fit(X, ["p", "q", "r"], missing="impute", scale="none",
                           dtype=np.float64)
    sk = SimpleImputer(strategy="mean").fit(X)
    assert_allclose(prep.fill, sk.statistics_, rtol=1e-14)
    prepared = prep.transform(X)
    assert_allclose(prepared.X, sk.transform(X), rtol=1e-14)
    assert prepared.keep is None
    # At encode time the model's imputer fills with training means, not the new data's.
    new = np.array([[np.nan, 0.0, np.nan]])
    assert_allclose(prep.transform(new).X, [[sk.statistics_[0], 0.0, sk.statistics_[2]]])


def test_policy_impute_fits_even_without_gaps():
    X = wine()
    prep = Preparation.fit(X, [f"c{j}" for j in range(X.shape[1])], missing="impute",
                           scale="standard", dtype=np.float32)
    assert_allclose(prep.fill, X.mean(axis=0))


def test_imputer_rejects_entirely_missing_column():
    X = with_gaps()
    X[:, 1] = np.nan
    with pytest.raises(DataError, match="column 'q' is missing in all 200 rows") as info:
        Imputer().fit(X, names=["p", "q", "r"])
    assert "--exclude" in str(info.value)


@pytest.mark.parametrize("policy", list(MissingPolicy))
def test_infinity_is_always_an_error(policy):
    X = gappy_table()
    X[[5, 13], 3] = [np.inf, -np.inf]
    with pytest.raises(DataError, match=r"column 'd' has 2 infinite values \(rows 56, 64\)"):
        screen(X, NAMES, policy, row_offset=50)


def test_imputer_keeps_float32_and_rebuilds_from_array():
    X = with_gaps().astype(np.float32)
    imputer = Imputer().fit(X)
    out = imputer.transform(X)
    assert out.dtype == np.float32 and not np.isnan(out).any()
    rebuilt = Imputer.from_fill(imputer.fill_)
    assert_array_equal(rebuilt.transform(X), out)
    with pytest.raises(DataError, match="X has 2 features, but Imputer is expecting 3"):
        rebuilt.transform(X[:, :2])
    for bad in ([], [[1.0]], [1.0, np.nan]):
        with pytest.raises(InvalidParameterError, match="fill values"):
            Imputer.from_fill(bad)


def test_unknown_policy():
    with pytest.raises(ValueError, match="'ignore'"):
        Preparation.fit(np.ones((2, 2)), ["a", "b"], missing="ignore", scale="none",
                        dtype=np.float64)


# -- columns -----------------------------------------------------------------------------------

TABLE = ["id", "height", "weight", "name", "age"]
NUMERIC = [True, True, True, False, True]


def test_default_features_are_numeric_columns():
    assert choose_feature_columns(TABLE, NUMERIC) == (
        ["id", "height", "weight", "age"],
        ["name"],
    )


def test_columns_pick_in_given_order_and_exclude_removes():
    assert choose_feature_columns(TABLE, NUMERIC, columns=["age", "height"]) == (
        ["age", "height"],
        ["id", "weight", "name"],
    )
    assert choose_feature_columns(TABLE, NUMERIC, exclude=["id"]) == (
        ["height", "weight", "age"],
        ["id", "name"],
    )
    assert choose_feature_columns(TABLE, NUMERIC, columns=["age", "id"], exclude=["id"]) == (
        ["age"],
        ["id", "height", "weight", "name"],
    )


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"columns": ["hieght"]}, "'hieght', which is not in the input.*did you mean 'height'"),
        ({"columns": ["Age"]}, "did you mean 'age'"),
        ({"exclude": ["zzz"]}, "--exclude names column 'zzz'.*available columns: id, height"),
        ({"columns": ["name", "age"]}, "column 'name' is not numeric"),
        ({"columns": ["age", "age"]}, "--columns names 'age' more than once"),
        ({"exclude": ["id", "height", "weight", "age"]}, "no feature columns are left"),
    ],
)
def test_column_choice_errors(kwargs, pattern):
    with pytest.raises(DataError, match=f"(?s){pattern}"):
        choose_feature_columns(TABLE, NUMERIC, **kwargs)


def test_no_numeric_columns_and_duplicate_names():
    with pytest.raises(DataError, match="no numeric columns.*a, b"):
        choose_feature_columns(["a", "b"], [False, False])
    with pytest.raises(DataError, match="'x' appears more than once"):
        choose_feature_columns(["x", "y", "x"], [True, True, True])
    # A duplicate that is not used does not matter.
    assert choose_feature_columns(["x", "y", "x"], [True, True, True], exclude=["x"]) == (
        ["y"],
        ["x", "x"],
    )
    with pytest.raises(InvalidParameterError, match="2 flags for 3 column names"):
        choose_feature_columns(["a", "b", "c"], [True, True])


def test_match_model_columns_finds_model_order():
    assert match_model_columns(["extra", "c", "a", "b"], ["a", "b", "c"]) == [2, 3, 1]
    X = np.array([[0.0, 3.0, 1.0, 2.0]])
    assert_array_equal(
        X[:, match_model_columns(["extra", "c", "a", "b"], ["a", "b", "c"])], [[1.0, 2.0, 3.0]]
    )


def test_match_model_columns_errors():
    with pytest.raises(
        DataError,
        match="(?s)the model's column 'weight' is not in the input.*did you mean 'weigth'",
    ):
        match_model_columns(["height", "weigth"], ["height", "weight"])
    with pytest.raises(DataError, match="columns 'b', 'c' are missing from the input"):
        match_model_columns(["a"], ["a", "b", "c"])
    with pytest.raises(DataError, match="'a' appears more than once"):
        match_model_columns(["a", "b", "a"], ["a", "b"])
