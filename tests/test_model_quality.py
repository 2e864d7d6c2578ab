"""Reconstruction quality on real data against PCA: a linear autoencoder equals PCA, and a
nonlinear one beats it clearly on digits. Uses scikit-learn's bundled data sets."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import datasets
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from aecli import Autoencoder


@pytest.fixture(autouse=True)
def one_blas_thread():
    # These matrices are small: a second BLAS thread gains little alone and, on a busy
    # two-core machine, makes a full-batch run many times slower while the threads wait.
    with threadpool_limits(1, user_api="blas"):
        yield


def _pca_mse(X_fit, X_eval, k):
    pca = PCA(n_components=k, svd_solver="full").fit(X_fit)
    return float(np.mean((pca.inverse_transform(pca.transform(X_eval)) - X_eval) ** 2))


def _ae_mse(ae, X):
    return float(np.mean((ae.reconstruct(X).astype(np.float64) - X) ** 2))


def _split(name):
    X = getattr(datasets, f"load_{name}")().data
    X_train, X_test = train_test_split(X, test_size=0.2, random_state=0)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("name", "k"), [("breast_cancer", 5), ("wine", 3), ("diabetes", 4),
                                         ("digits", 8)])
def test_linear_autoencoder_reaches_pca_with_default_settings(name, k, dtype):
    """The promise (README, "A tour"), with nothing tuned: no hidden layers and linear
    activations reach PCA's held-out error at the same k, within 1% (full-batch lbfgs, chosen
    automatically)."""
    X_train, X_test = _split(name)
    ae = Autoencoder(latent=k, hidden=(), activation="linear", dtype=dtype).fit(X_train)
    assert ae.optimizer_ == "lbfgs"
    ratio = _ae_mse(ae, X_test) / _pca_mse(X_train, X_test, k)
    assert ratio <= 1.01, ratio


def test_adam_with_its_defaults_stops_short_of_pca_on_a_linear_network():
    # Why lbfgs is chosen: the same network with mini-batch Adam ends clearly above PCA on a
    # small table (1.21x on wine; 1.02x on diabetes and digits).
    X_train, X_test = _split("wine")
    adam = Autoencoder(latent=3, hidden=(), activation="linear", optimizer="adam").fit(X_train)
    assert _ae_mse(adam, X_test) / _pca_mse(X_train, X_test, 3) > 1.05


@pytest.fixture(scope="module")
def digits_split():
    return _split("digits")


@pytest.mark.parametrize(("k", "params", "bound"), [
    # The ratio varies with the seed more than with anything else: measured 0.52-0.64 over
    # seeds 0-3 (0.49-0.70 under the split before the row-number rule), and 0.33-0.55 over
    # seeds 0-2 (0.30-0.51 before) at k=8; the bounds hold at seed 0 with a margin.
    (2, {}, 0.7),  # the defaults: 64,32 elu on the default budget (0.63 measured)
    (8, {"hidden": (128, 64), "activation": "relu"}, 0.5),  # 0.40 measured
])
def test_nonlinear_autoencoder_beats_pca_on_held_out_digits(digits_split, k, params, bound):
    X_train, X_test = digits_split
    ae = Autoencoder(latent=k, **params)
    ratio = _ae_mse(ae.fit(X_train), X_test) / _pca_mse(X_train, X_test, k)
    assert ratio <= bound, ratio
