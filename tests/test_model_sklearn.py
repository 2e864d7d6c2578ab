"""Tests that Autoencoder keeps scikit-learn's estimator contract: check_estimator, Pipeline,
GridSearchCV (through Autoencoder.score) and clone."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FAST_FIT
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

from aecli import Autoencoder

SMALL = dict(FAST_FIT, latent=1)
# Three small parameter sets: one that failed subset invariance before (an elu net, whose codes
# must not depend on which rows share a call), a linear network (full-batch lbfgs by default),
# and a denoising, tied, dropout net on the default epoch budget.
PARAMETER_SETS = {
    "elu": dict(latent=2, hidden=(4,), epochs=5),
    "linear": dict(latent=1, hidden=(), activation="linear"),
    "tied-dropout-noise": dict(latent=2, hidden=(6,), activation="tanh", tied=True,
                               dropout=0.1, noise=0.05, schedule="onecycle"),
}


# aecli does not depend on scikit-learn at run time, so Autoencoder implements the protocol
# (get_params, set_params, __sklearn_tags__) instead of inheriting BaseEstimator; the suite warns
# about that and then runs every check.
@pytest.mark.filterwarnings("ignore:Estimator Autoencoder does not inherit")
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.SkipTestWarning")
# The default-budget set runs in float64 only: each of its fits is six (out-of-fold
# calibration), and float32 is checked by the other two sets.
@pytest.mark.parametrize(("name", "dtype"), [
    (name, dtype) for name in PARAMETER_SETS for dtype in ("float32", "float64")
    if (name, dtype) != ("tied-dropout-noise", "float32")])
def test_check_estimator_passes(name, dtype):
    results = check_estimator(Autoencoder(**PARAMETER_SETS[name], dtype=dtype), on_fail=None)
    failed = {r["check_name"]: repr(r["exception"]) for r in results if r["status"] == "failed"}
    assert not failed
    assert sum(r["status"] == "passed" for r in results) >= 40


@pytest.fixture(scope="module")
def X():
    # Four independent directions spread over six columns of very different scales: a code of
    # four reconstructs far better than a code of one or two.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 4)) @ rng.normal(size=(4, 6)) + 0.01 * rng.normal(size=(240, 6))
    return X * np.array([1, 10, 100, 0.1, 1, 1000])


def test_pipeline_with_a_scaler(X):
    pipe = Pipeline([("scale", StandardScaler()), ("ae", Autoencoder(latent=3, hidden=(8,)))])
    Z = pipe.fit_transform(X)
    assert Z.shape == (240, 3) and Z.dtype == np.float32
    ae = pipe.named_steps["ae"]
    scaled = pipe.named_steps["scale"].transform(X)
    np.testing.assert_array_equal(Z, ae.transform(scaled))
    assert pipe.score(X) == pytest.approx(ae.score(scaled))
    # Better than the mean, which scores -1 on standardised data.
    assert pipe.score(X) > -0.5


def test_grid_search_over_latent_picks_the_best_and_refits(X):
    pipe = Pipeline([("scale", StandardScaler()),
                     ("ae", Autoencoder(hidden=(), activation="linear", epochs=60, lr=1e-2))])
    search = GridSearchCV(pipe, {"ae__latent": [1, 2, 4]}, cv=3).fit(X)
    scores = search.cv_results_["mean_test_score"]
    assert scores[0] < scores[1] < scores[2]  # a larger code reconstructs better
    assert search.best_params_ == {"ae__latent": 4}
    best = search.best_estimator_
    assert best.named_steps["ae"].latent == 4
    assert best.named_steps["ae"].n_features_in_ == 6  # refit on all rows
    assert best.transform(X).shape == (240, 4)
    assert search.score(X) == pytest.approx(best.score(X))


def test_clone_copies_parameters_not_fitted_state(X):
    ae = Autoencoder(**dict(SMALL, latent=2), seed=5, dtype="float64").fit(X)
    twin = clone(ae)
    assert twin is not ae
    assert twin.get_params() == ae.get_params()
    assert not hasattr(twin, "network_")
    np.testing.assert_array_equal(twin.fit(X).network_.theta, ae.network_.theta)
