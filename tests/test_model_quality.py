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


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("name", "k"), [("diabetes", 3), ("wine", 4), ("digits", 8)])
def test_linear_autoencoder_reaches_pca(name, k, dtype):
    """The SPEC's promise: with no hidden layers and linear activations the autoencoder
    reaches PCA's reconstruction error at the same k (within 1%)."""
    X = StandardScaler().fit_transform(getattr(datasets, f"load_{name}")().data)
    # Full batch: with mini-batches at a constant learning rate Adam stalls on a noise floor
    # (about 1.4% above PCA on digits at lr=1e-2, batch 64, 300 epochs).
    ae = Autoencoder(latent=k, hidden=(), activation="linear", epochs=300,
                     batch_size=len(X), lr=5e-2, validation=0.0, dtype=dtype).fit(X)
    ratio = _ae_mse(ae, X) / _pca_mse(X, X, k)
    # The optimum of the linear autoencoder is PCA's subspace, so it can't do much better.
    assert 1 - 1e-4 < ratio <= 1.01, ratio


@pytest.fixture(scope="module")
def digits_split():
    X = datasets.load_digits().data
    X_train, X_test = train_test_split(X, test_size=0.2, random_state=0)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test)


@pytest.mark.parametrize(("k", "bound"), [(2, 0.6), (8, 0.45)])
def test_nonlinear_autoencoder_beats_pca_on_held_out_digits(digits_split, k, bound):
    X_train, X_test = digits_split
    ae = Autoencoder(latent=k, hidden=(64, 32), epochs=300, patience=40, noise=0.1)
    ratio = _ae_mse(ae.fit(X_train), X_test) / _pca_mse(X_train, X_test, k)
    assert ratio <= bound, ratio
