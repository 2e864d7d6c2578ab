"""Tests for aecli.estimators.autoencoder.Autoencoder: determinism, dtypes, early stopping,
divergence, callbacks, feature names and parameter validation."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import FAST_FIT

from aecli import Autoencoder
from aecli.errors import DataError, InvalidParameterError, NotFittedError, TrainingError
from aecli.nn.training import EpochReport
from aecli.nn.trimmed import trimmed_mean

SMALL = dict(FAST_FIT, latent=2)


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(150, 2))
    return np.tanh(z @ rng.normal(size=(2, 6))) + 0.05 * rng.normal(size=(150, 6))


# -- determinism -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_seed_gives_bit_identical_weights(X, dtype):
    params = dict(SMALL, hidden=(8, 4), dropout=0.2, noise=0.1, dtype=dtype, seed=3)
    a = Autoencoder(**params).fit(X).network_.theta
    b = Autoencoder(**params).fit(X).network_.theta
    assert a.dtype == np.dtype(dtype)
    assert np.array_equal(a, b)
    c = Autoencoder(**dict(params, seed=4)).fit(X).network_.theta
    assert not np.array_equal(a, c)


def test_refit_is_identical_to_a_fresh_fit(X):
    ae = Autoencoder(**SMALL, noise=0.1)
    first = ae.fit(X).network_.theta.copy()
    np.testing.assert_array_equal(ae.fit(X).network_.theta, first)


# -- dtypes ------------------------------------------------------------------------------------
def test_float32_by_default_everywhere(X):
    ae = Autoencoder(**SMALL).fit(X)  # float64 input
    assert ae.network_.theta.dtype == np.float32
    Z = ae.transform(X)
    assert Z.dtype == np.float32 and Z.shape == (150, 2)
    assert ae.inverse_transform(Z).dtype == np.float32
    assert ae.reconstruct(X).dtype == np.float32
    assert ae.fit_transform(X.astype(np.float32)).dtype == np.float32


def test_float64_on_request(X):
    ae = Autoencoder(**SMALL, dtype="float64").fit(X.astype(np.float32))
    assert ae.network_.theta.dtype == np.float64
    assert ae.transform(X).dtype == np.float64
    assert ae.reconstruct(X).dtype == np.float64
    assert ae.inverse_transform(ae.transform(X)).dtype == np.float64


def test_methods_agree_with_each_other(X):
    ae = Autoencoder(**SMALL, dtype="float64").fit(X)
    R = ae.reconstruct(X)
    np.testing.assert_allclose(ae.inverse_transform(ae.transform(X)), R, rtol=1e-12)
    errors = ae.reconstruction_error(X)
    np.testing.assert_allclose(errors, np.mean((R - X) ** 2, axis=1), rtol=1e-10)
    assert ae.score(X) == pytest.approx(-errors.mean())
    np.testing.assert_array_equal(ae.score_samples(X), -ae.anomaly_score(X))
    # the anomaly score: the error plus the code's squared Mahalanobis distance from the
    # training codes (here every row), each over its limit, the 99th percentile of its
    # training values; of one model (without the fold models of a small table's ensemble:
    # see test_modelfile)
    ae = Autoencoder(**SMALL, dtype="float64", validation=0).fit(X, out_of_fold=False)
    errors = ae.reconstruction_error(X)
    Z = ae.transform(X)
    t2 = np.einsum("ij,jk,ik->i", Z - Z.mean(0), np.linalg.inv(np.cov(Z.T, bias=True)),
                   Z - Z.mean(0))
    expected = errors + t2 * np.quantile(errors, 0.99) / np.quantile(t2, 0.99)
    np.testing.assert_allclose(ae.anomaly_score(X), expected, rtol=1e-6)
    by_error = Autoencoder(**SMALL, dtype="float64", score_by="error").fit(
        X, out_of_fold=False)
    np.testing.assert_array_equal(by_error.anomaly_score(X), by_error.reconstruction_error(X))
    assert ae.encode == ae.transform and ae.decode == ae.inverse_transform


# -- training outcomes -------------------------------------------------------------------------
def test_fitted_attributes(X):
    # trained enough that the scores of its own rows do not set the threshold's floor
    ae = Autoencoder(**dict(SMALL, hidden=(8,), epochs=5), validation=0.2,
                     contamination=0.05).fit(X)
    assert ae.n_features_in_ == 6
    assert len(ae.loss_history_) == len(ae.val_loss_history_) == 5
    assert ae.train_mse_ > 0 and ae.validation_mse_ > 0
    assert ae.score_quantiles_.shape == (101,)
    assert np.all(np.diff(ae.score_quantiles_) >= 0)
    # few validation rows: the 95th percentile comes from a fitted tail, near the empirical one
    assert ae.calibration_.method == "tail fit" and ae.calibration_rows_ < 200
    empirical = np.interp(0.95, np.linspace(0, 1, 101), ae.score_quantiles_)
    assert ae.threshold_ == pytest.approx(empirical, rel=0.5)
    assert not hasattr(ae, "feature_names_in_")


def test_no_validation_split(X):
    ae = Autoencoder(**SMALL, validation=0.0).fit(X)
    assert ae.validation_mse_ is None and ae.val_loss_history_ is None
    # its worst 1% of rows left out, as the validation MSE's (see aecli.nn.trimmed)
    assert ae.train_mse_ == pytest.approx(trimmed_mean(ae.reconstruction_error(X)), rel=1e-5)


def test_early_stopping_restores_the_best_epoch(X):
    reports = []
    ae = Autoencoder(latent=2, hidden=(32,), epochs=400, batch_size=8, lr=0.02, patience=4,
                     validation=0.3, dtype="float64").fit(X[:60], callback=reports.append)
    assert ae.stopped_early_
    reports = [r for r in reports if not r.phase]  # not the calibration fits
    assert [r.epoch for r in reports] == list(range(1, len(ae.val_loss_history_) + 1))
    assert reports[-1].best_epoch == ae.best_epoch_
    assert len(ae.val_loss_history_) == ae.best_epoch_ + 4 < 400
    assert ae.val_loss_history_[ae.best_epoch_ - 1] == min(ae.val_loss_history_)
    assert ae.validation_mse_ == pytest.approx(ae.val_loss_history_[ae.best_epoch_ - 1],
                                               rel=1e-12)


def test_callback_gets_one_report_per_epoch(X):
    reports = []
    ae = Autoencoder(**dict(SMALL, epochs=7)).fit(X, callback=reports.append)
    assert all(isinstance(r, EpochReport) for r in reports)
    # the model's own epochs first, then those of the fits that calibrate its threshold
    assert {r.phase for r in reports[7:]} == {f"calibration {i}/5" for i in range(1, 6)}
    reports = reports[:7]
    assert {r.phase for r in reports} == {""}
    assert [r.epoch for r in reports] == list(range(1, 8))
    assert [r.train_loss for r in reports] == ae.loss_history_
    assert all(r.val_loss is not None and 1 <= r.best_epoch <= r.epoch for r in reports)


@pytest.mark.parametrize(
    ("scale", "params"),
    [(1e3, dict(optimizer="sgd", lr=10.0)), (1e30, {})],
    ids=["sgd-lr10", "data-1e30"],
)
def test_diverging_fit_raises_and_leaves_the_estimator_unfitted(X, scale, params):
    ae = Autoencoder(**SMALL, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TrainingError, match=r"epoch \d+") as info:
            ae.fit(X * scale)
    assert "lr=" in str(info.value)
    assert not hasattr(ae, "network_") and not hasattr(ae, "n_features_in_")
    with pytest.raises(NotFittedError, match="not fitted"):
        ae.transform(X)


def test_diverging_refit_leaves_no_earlier_model_behind(X):
    ae = Autoencoder(**SMALL).fit(X)
    with pytest.raises(TrainingError):
        ae.set_params(optimizer="sgd", lr=10.0).fit(X * 1e3)
    fitted = [a for a in vars(ae) if a.endswith("_")]
    assert not fitted
    assert ae.get_params()["lr"] == 10.0


def test_numpy_integer_sizes_give_a_json_ready_architecture(X):
    # A grid search over np.arange(...) passes NumPy integers; the model file stores JSON.
    ae = Autoencoder(**dict(SMALL, latent=np.int64(2), hidden=(np.int64(4),))).fit(X)
    specs = [s.to_dict() for s in ae.network_.specs]
    assert json.loads(json.dumps(specs)) == specs
    assert ae.transform(X).shape == (150, 2)


# -- DataFrames --------------------------------------------------------------------------------
def test_dataframe_input_sets_feature_names(X):
    df = pd.DataFrame(X, columns=[f"c{i}" for i in range(6)])
    ae = Autoencoder(**SMALL).fit(df)
    np.testing.assert_array_equal(ae.feature_names_in_, df.columns)
    with pytest.raises(DataError, match="feature names should match"):
        ae.transform(df.rename(columns={"c0": "other"}))
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        Z = ae.transform(X)
    np.testing.assert_array_equal(ae.transform(df), Z)
    ae.fit(X)  # refitting on an array forgets the names
    assert not hasattr(ae, "feature_names_in_")


def test_wrong_number_of_features(X):
    ae = Autoencoder(**SMALL).fit(X)
    with pytest.raises(DataError, match="X has 5 features, but Autoencoder is expecting 6"):
        ae.transform(X[:, :5])
    with pytest.raises(InvalidParameterError, match="Z has 3 columns"):
        ae.inverse_transform(np.zeros((2, 3)))


# -- parameter validation ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "pattern"),
    [
        (dict(latent=0), r"latent must be >= 1, got 0"),
        (dict(latent=7), r"latent=7 is larger than the number of features \(n_features = 6\)"),
        (dict(latent=2.5), r"latent must be an integer, got 2\.5"),
        (dict(hidden=(8, 0)), r"hidden layer size must be >= 1, got 0"),
        (dict(dropout=1.0), r"dropout must be in \[0\.0, 1\.0\), got 1\.0"),
        (dict(optimizer="bogus"), r"optimizer must be one of auto, adam, sgd, .*got 'bogus'"),
        (dict(activation="swish"), r"activation must be one of linear, .*got 'swish'"),
        (dict(lr=0.0), r"lr must be in \(0\.0, inf\], got 0\.0"),
        (dict(lr=float("nan")), r"lr must be a finite number, got nan"),
        (dict(epochs=True), r"epochs must be an integer, got True"),
        (dict(patience=0), r"patience must be >= 1, got 0"),
        (dict(contamination=0.0), r"contamination must be in \(0\.0, 0\.5\], got 0\.0"),
        (dict(dtype="float16"), r"dtype must be one of float32, float64; got 'float16'"),
    ],
)
def test_bad_parameters_are_named_with_their_value(X, params, pattern):
    ae = Autoencoder(**{**SMALL, **params})
    with pytest.raises(InvalidParameterError, match=pattern):
        ae.fit(X)
    assert not hasattr(ae, "network_")


def test_init_only_stores_parameters():
    ae = Autoencoder(latent=-5, optimizer="bogus")  # validated in fit, not here
    assert ae.get_params()["latent"] == -5
    assert ae.set_params(latent=3) is ae and ae.latent == 3
    assert repr(ae) == "Autoencoder(latent=3, optimizer='bogus')"
    with pytest.raises(ValueError, match="Invalid parameter 'bogus'"):
        ae.set_params(bogus=1)


def test_bad_input_data(X):
    with pytest.raises(DataError, match="NaN or infinity .*row 3, column 1"):
        bad = X.copy()
        bad[3, 1] = np.nan
        Autoencoder(**SMALL).fit(bad)
    with pytest.raises(DataError, match="Reshape your data"):
        Autoencoder(**SMALL).fit(X[:, 0])
    with pytest.raises(DataError, match="minimum of 2 is required"):
        Autoencoder(**SMALL).fit(X[:1])


def test_a_threshold_from_few_rows_is_read_from_a_fitted_tail():
    """Errors drawn from an exponential law: from 60 rows the empirical 99th percentile sits
    low (it is about the largest row) and flags too many new rows; the tail fit centres on the
    true quantile."""
    from aecli.estimators.calibration import calibrate

    rng = np.random.default_rng(0)
    true = -np.log(0.01)  # the 99th percentile of Exp(1)
    fitted, empirical = [], []
    for _ in range(400):
        errors = rng.exponential(size=60)
        c = calibrate(errors, 0.01)
        assert c.method == "tail fit" and c.tail_rows == 10
        fitted.append(c.threshold)
        empirical.append(np.quantile(errors, 0.99))
    assert abs(np.median(fitted) / true - 1) < 0.06
    assert np.median(empirical) / true < 0.9
    # the share of new rows over the threshold, exp(-t) for Exp(1), on average
    flagged_fit, flagged_emp = np.mean(np.exp(-np.array(fitted))), np.mean(
        np.exp(-np.array(empirical)))
    assert abs(flagged_fit - 0.01) < abs(flagged_emp - 0.01)
    many = calibrate(rng.exponential(size=5000), 0.01)
    assert many.method == "quantile" and many.tail_rows == 50


def test_the_threshold_is_never_below_the_quantile_of_the_models_own_rows():
    from aecli.estimators.calibration import calibrate

    rng = np.random.default_rng(2)
    folds = rng.exponential(size=2000)  # other models' out-of-fold scores
    heavier = 2.0 * rng.exponential(size=2000)  # this model's own, in sample, heavier-tailed
    raised = calibrate(folds, 0.01, "out-of-fold", own=heavier)
    assert raised.method == "own rows" and raised.source == "out-of-fold"
    assert raised.threshold == pytest.approx(np.quantile(heavier, 0.99))
    kept = calibrate(folds, 0.01, "out-of-fold", own=0.5 * rng.exponential(size=2000))
    assert kept.method == "quantile" and kept.threshold == np.quantile(folds, 0.99)
