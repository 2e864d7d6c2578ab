"""aecli.pca.PCA against scikit-learn's exact PCA, and its contract."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn import datasets
from sklearn.base import clone
from sklearn.decomposition import PCA as SkPCA
from sklearn.utils.estimator_checks import check_estimator
from threadpoolctl import threadpool_limits

from aecli.errors import DataError, InvalidParameterError, NotFittedError
from aecli.estimators import eigen
from aecli.pca import PCA

TOL = {"rtol": 1e-6, "atol": 1e-6}
DATASETS = ["digits", "iris", "diabetes", "wine"]


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    # These matrices are small: BLAS threads only add overhead, and on a busy machine they
    # make the run many times slower.
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@cache
def _load(name: str) -> np.ndarray:
    data = getattr(datasets, f"load_{name}")().data
    data.setflags(write=False)
    return data


def load(name: str) -> np.ndarray:
    return _load(name).copy()


def sk_reconstruction_error(sk: SkPCA, X: np.ndarray) -> np.ndarray:
    return ((X - sk.inverse_transform(sk.transform(X))) ** 2).mean(axis=1)


def assert_matches_sklearn(X: np.ndarray, n_components, whiten: bool = False) -> PCA:
    ours = PCA(n_components=n_components, whiten=whiten).fit(X)
    sk = SkPCA(n_components=n_components, whiten=whiten, svd_solver="full").fit(X)
    assert ours.n_components_ == sk.n_components_
    assert ours.n_features_in_ == sk.n_features_in_ and ours.n_samples_ == sk.n_samples_
    assert_allclose(ours.mean_, sk.mean_, **TOL)
    assert_allclose(ours.explained_variance_, sk.explained_variance_, **TOL)
    assert_allclose(ours.explained_variance_ratio_, sk.explained_variance_ratio_, **TOL)
    assert_allclose(ours.singular_values_, sk.singular_values_, **TOL)
    assert_allclose(ours.noise_variance_, sk.noise_variance_, **TOL)
    # Directions of (numerically) zero variance are any basis of the null space in both.
    determined = sk.explained_variance_ > 1e-8 * sk.explained_variance_[0]
    assert_allclose(ours.components_[determined], sk.components_[determined], **TOL)
    assert_allclose(ours.transform(X)[:, determined], sk.transform(X)[:, determined], **TOL)
    assert_allclose(ours.fit_transform(X)[:, determined], sk.transform(X)[:, determined], **TOL)
    assert_allclose(ours.reconstruction_error(X), sk_reconstruction_error(sk, X), **TOL)
    Z = sk.transform(X)
    assert_allclose(ours.inverse_transform(Z), sk.inverse_transform(Z), **TOL)
    return ours


@pytest.mark.parametrize("name", DATASETS)
@pytest.mark.parametrize("n_components", [None, 1, 2, 0.5, 0.8, 0.95, 0.999])
def test_matches_sklearn_on_bundled_datasets(name, n_components):
    assert_matches_sklearn(load(name), n_components)


@pytest.mark.parametrize("name", DATASETS)
def test_matches_sklearn_whitened(name):
    X = load(name)
    ours = assert_matches_sklearn(X, 3, whiten=True)
    assert_allclose(ours.transform(X).var(axis=0, ddof=1), 1.0, rtol=1e-9)


@pytest.mark.parametrize("shape", [(40, 64), (10, 30), (64, 64), (127, 64), (128, 64)])
def test_wide_and_square_data_match_sklearn(shape):
    # n < 2d takes the SVD path (and fit_transform uses U * S); n >= 2d the covariance path.
    X = load("digits")[: shape[0], : shape[1]]
    assert_matches_sklearn(X, None)
    assert_matches_sklearn(X, 5)
    assert_matches_sklearn(X, 5, whiten=True)


@pytest.mark.parametrize("offset", [0.0, 0.5, 3.0, 30.0, 1e4, 1e8])
def test_large_means_keep_their_precision(offset):
    # Columns with |mean| >> std are centred before the Gram matrix is formed; otherwise the
    # cancellation in X.T @ X - n * mean² would cost digits.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 12)) @ rng.normal(size=(12, 12)) + offset
    assert_matches_sklearn(X, 4)
    assert_allclose(
        PCA(n_components=4).fit(X).explained_variance_,
        PCA(n_components=4).fit(X - offset).explained_variance_,
        rtol=1e-9,
    )


def test_gram_shortcut_is_checked_against_the_exact_second_moments(monkeypatch):
    # The strided sample (every 8th row here) sees all the variance of column 0 and so
    # overestimates it eightfold: the exact check must reject the shortcut.
    rng = np.random.default_rng(1)
    n = 8 * 1024
    X = rng.normal(size=(n, 4))
    X[:, 0] = 0.0
    X[::8, 0] = rng.choice([-1.0, 1.0], size=n // 8)
    sample_var = X[::8, 0].var()
    # mean² = 0.2 × the limit × the sample's variance: the sample passes the shortcut's test
    # (with its 0.25 margin), but the true variance is 8 times smaller: 1.6 × the limit.
    X[:, 0] += np.sqrt(0.2 * eigen._MAX_MEAN_SQ_OVER_VAR * sample_var)
    centred = []
    real = eigen.gram
    monkeypatch.setattr(eigen, "gram",
                        lambda X, mean=None: centred.append(mean is not None) or real(X, mean))
    assert_matches_sklearn(X, 2)
    assert centred[-1], "the centred Gram matrix was not used"
    centred.clear()
    PCA(n_components=2).fit(X - X.mean(axis=0))
    assert centred == [False], "centred data should take the shortcut"


def test_fraction_keeps_smallest_k_reaching_it():
    X = load("wine")
    ratios = PCA().fit(X).explained_variance_ratio_
    cumulative = np.cumsum(ratios)
    for fraction in [0.1, 0.99, 0.999, 0.9999, 0.99999]:
        k = PCA(n_components=fraction).fit(X).n_components_
        assert cumulative[k - 1] >= fraction
        assert k == 1 or cumulative[k - 2] < fraction


def test_fraction_reached_exactly_stops_there():
    # Two uncorrelated columns of equal variance: one component already explains half.
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    pca = PCA(n_components=0.5).fit(X)
    assert pca.explained_variance_ratio_[0] == 0.5
    assert pca.n_components_ == 1


def test_components_signs_follow_sklearn_convention():
    pca = PCA().fit(load("wine"))
    largest = np.abs(pca.components_).argmax(axis=1)
    assert np.all(pca.components_[np.arange(pca.n_components_), largest] > 0)
    assert_allclose(pca.components_ @ pca.components_.T, np.eye(pca.n_components_), atol=1e-12)


def test_reconstruct_and_scores_are_consistent():
    X = load("diabetes")
    pca = PCA(n_components=3).fit(X)
    assert_allclose(pca.reconstruct(X), pca.inverse_transform(pca.transform(X)), rtol=1e-12)
    errors = pca.reconstruction_error(X)
    assert errors.shape == (X.shape[0],)
    assert_allclose(errors, ((X - pca.reconstruct(X)) ** 2).mean(axis=1), rtol=1e-12)
    assert_allclose(pca.score_samples(X), -errors)
    # All components: the reconstruction is exact.
    assert PCA().fit(X).reconstruction_error(X).max() < 1e-25


def test_float32_in_float32_out_computed_in_float64():
    X64 = load("digits")
    X32 = X64.astype(np.float32)
    ours = PCA(n_components=5).fit(X32)
    ref = PCA(n_components=5).fit(X32.astype(np.float64))
    assert ours.components_.dtype == np.float64
    assert_allclose(ours.components_, ref.components_, rtol=1e-12, atol=1e-12)
    outputs = {
        "transform": ours.transform(X32),
        "fit_transform": PCA(n_components=5).fit_transform(X32),
        "inverse_transform": ours.inverse_transform(ours.transform(X32)),
        "reconstruct": ours.reconstruct(X32),
        "reconstruction_error": ours.reconstruction_error(X32),
        "score_samples": ours.score_samples(X32),
    }
    for name, out in outputs.items():
        assert out.dtype == np.float32, name
    assert_allclose(outputs["transform"], ref.transform(X64), rtol=1e-5, atol=1e-4)
    wide = X32[:20]  # the SVD path
    assert PCA(n_components=3).fit_transform(wide).dtype == np.float32


def test_integer_and_list_input_become_float64():
    X = np.arange(40).reshape(10, 4) ** 2
    pca = PCA(n_components=2).fit(X)
    assert pca.transform(X).dtype == np.float64
    assert_allclose(pca.transform(X.tolist()), pca.transform(X.astype(float)))


def test_constant_data_gives_no_nan():
    X = np.ones((5, 3))
    pca = PCA(n_components=0.9).fit(X)
    assert pca.n_components_ == 1
    assert np.all(np.isfinite(pca.explained_variance_ratio_))
    assert_allclose(pca.reconstruct(X), X)
    assert np.all(np.isfinite(PCA(n_components=2, whiten=True).fit(X).transform(X)))


@pytest.mark.parametrize("bad", [0, 5, -1, 1.0, 1.5, -0.5, 0.0, float("nan"), "two", True])
def test_n_components_out_of_range_quotes_value_and_range(bad):
    with pytest.raises(InvalidParameterError) as info:
        PCA(n_components=bad).fit(load("iris"))
    message = str(info.value)
    assert repr(bad) in message and "[1, 4]" in message and "(0, 1)" in message


def test_whiten_must_be_boolean():
    with pytest.raises(InvalidParameterError, match="whiten"):
        PCA(whiten="yes").fit(load("iris"))


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_a_data_error(bad_value):
    X = load("iris").copy()
    X[7, 2] = bad_value
    with pytest.raises(DataError, match="NaN or infinity"):
        PCA().fit(X)
    pca = PCA(n_components=2).fit(load("iris"))
    for method in (pca.transform, pca.reconstruct, pca.reconstruction_error):
        with pytest.raises(DataError, match="NaN or infinity"):
            method(X)
    with pytest.raises(DataError, match="NaN or infinity"):
        pca.inverse_transform(np.array([[0.0, bad_value]]))


def test_shape_errors():
    with pytest.raises(DataError, match="Expected 2D array"):
        PCA().fit(np.arange(10.0))
    with pytest.raises(DataError, match="minimum of 2"):
        PCA().fit(np.ones((1, 4)))
    with pytest.raises(DataError, match="0 feature"):
        PCA().fit(np.ones((5, 0)))
    pca = PCA(n_components=2).fit(load("iris"))
    with pytest.raises(DataError) as info:
        pca.transform(np.ones((3, 3)))
    assert "X has 3 features, but PCA is expecting 4 features as input" in str(info.value)
    with pytest.raises(DataError, match="Z has 3 columns, but this PCA has 2 components"):
        pca.inverse_transform(np.ones((3, 3)))


def test_used_before_fit():
    for method in (
        "transform",
        "inverse_transform",
        "reconstruct",
        "reconstruction_error",
        "score_samples",
    ):
        with pytest.raises(NotFittedError, match="not fitted"):
            getattr(PCA(), method)(np.ones((3, 4)))


def test_estimator_contract():
    pca = PCA(n_components=3, whiten=True)
    assert pca.get_params() == {"n_components": 3, "whiten": True}
    assert pca.set_params(n_components=0.9) is pca and pca.n_components == 0.9
    assert repr(pca) == "PCA(n_components=0.9, whiten=True)"
    with pytest.raises(ValueError, match="solver"):
        pca.set_params(solver="full")
    twin = clone(pca)
    assert twin is not pca and twin.get_params() == pca.get_params()
    assert not hasattr(twin, "components_")
    fresh = PCA()
    assert fresh.fit(load("iris")) is fresh and fresh.components_.shape == (4, 4)  # fit: self


@pytest.mark.filterwarnings("ignore::UserWarning")  # "does not inherit from BaseEstimator"
def test_passes_sklearn_estimator_checks():
    for est in (PCA(), PCA(n_components=2, whiten=True)):
        results = check_estimator(est, on_fail=None)
        failed = [r["check_name"] for r in results if r["status"] == "failed"]
        assert not failed
