"""Exact principal component analysis in NumPy.

`PCA` follows the scikit-learn estimator contract and matches
``sklearn.decomposition.PCA(svd_solver="full")``: same components (same sign convention),
explained variances, projections and reconstructions. It is the reference that an autoencoder's
reconstruction error is compared against at the same number of components.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..blas_threads import scope, tuned_matmul
from ..errors import DataError, InvalidParameterError
from . import checks as v
from .base import ParamsMixin
from .eigen import covariance_eigh, flip_signs

__all__ = ["PCA"]

class PCA(ParamsMixin):
    """Principal component analysis by exact eigen- or singular-value decomposition.

    The data are centred (not scaled) and projected on the directions of largest variance.
    Computation is in float64 whatever the input; outputs are float32 for float32 input and
    float64 otherwise.

    Parameters
    ----------
    n_components : int, float or None, default=None
        Number of components to keep. None keeps ``min(n_samples, n_features)``. An int must be
        in ``[1, min(n_samples, n_features)]``. A float in ``(0, 1)`` keeps the smallest number
        of components whose cumulative explained variance ratio reaches that fraction (``>=``;
        scikit-learn keeps one more when a cumulative ratio equals the fraction exactly).
    whiten : bool, default=False
        Divide the projections by the square root of their variance, so that every component
        of ``transform(X_train)`` has unit variance.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
        Per-feature mean of the training data.
    components_ : ndarray of shape (n_components_, n_features)
        Principal axes, orthonormal rows, by decreasing explained variance. The sign of each row
        makes its entry of largest absolute value positive (scikit-learn's convention).
    explained_variance_ : ndarray of shape (n_components_,)
        Variance of the training data along each component (ddof=1).
    explained_variance_ratio_ : ndarray of shape (n_components_,)
        Fraction of the total variance explained by each component.
    singular_values_ : ndarray of shape (n_components_,)
        Singular values of the centred training data.
    noise_variance_ : float
        Mean variance of the discarded components (0 when none are discarded).
    n_components_ : int
        Number of components kept.
    n_features_in_ : int
        Number of features seen during ``fit``.
    n_samples_ : int
        Number of samples seen during ``fit``.
    feature_names_in_ : ndarray of str
        Column names, when ``fit`` was given a DataFrame with string column names.

    Notes
    -----
    With at least twice as many samples as features, the components come from the
    eigendecomposition of the covariance matrix: one pass over the data, several times faster
    than an SVD of it. Closer to square, the smallest singular values of typical data approach
    zero, where the covariance route keeps only about half their digits, so the thin SVD of
    the centred data is used instead.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(100, 5))
    >>> pca = PCA(n_components=2).fit(X)
    >>> pca.transform(X).shape
    (100, 2)
    """

    def __init__(self, n_components=None, *, whiten=False):
        self.n_components = n_components
        self.whiten = whiten

    # -- fitting --------------------------------------------------------------------------------

    def fit(self, X, y=None) -> PCA:
        """Fit the principal axes on X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; at least 2 rows, all values finite.
        y : None
            Ignored; present for the scikit-learn API.

        Returns
        -------
        self : PCA
            The fitted estimator.
        """
        self._fit(X)
        return self

    def fit_transform(self, X, y=None) -> np.ndarray:
        """``fit(X).transform(X)``: projections (n_samples, n_components_) of the training
        data, computed from the decomposition itself where it holds them."""
        X, U = self._fit(X)
        if U is None:
            return self._project(X).astype(_out_dtype(X), copy=False)
        k = self.n_components_
        # The SVD already holds the projection: Xc @ V = U * S, and whitened U * sqrt(n - 1).
        if self.whiten:
            Z = U[:, :k] * np.sqrt(self.n_samples_ - 1)
        else:
            Z = U[:, :k] * self.singular_values_
        return Z.astype(_out_dtype(X), copy=False)

    @scope()  # the eigendecomposition between the tuned passes runs on their choice
    def _fit(self, X) -> tuple[np.ndarray, np.ndarray | None]:
        """Fit and return the validated X and, from the SVD path, U of shape (n, min(n, d))."""
        if not isinstance(self.whiten, bool | np.bool_):
            raise InvalidParameterError(f"whiten must be True or False, got {self.whiten!r}")
        X_in, X = X, v.as_real_2d(X, min_samples=2)
        n, d = X.shape
        k_max = min(n, d)
        _check_n_components(self.n_components, k_max)

        mean = X.mean(axis=0, dtype=np.float64)  # (d,)
        # A finite column mean proves the column finite, so clean data costs no extra pass.
        if not np.all(np.isfinite(mean)):
            v.check_array(X, X.dtype)  # raises, naming the first NaN or infinity
            raise DataError(
                "X has values too large in magnitude to compute with (column sums overflow)",
                hint="rescale the data, e.g. with --scale standard",
            )

        U = None
        if n >= 2 * d:
            variances, Vt = covariance_eigh(X, mean)
            singular_values = np.sqrt(variances * (n - 1))
        else:
            Xc = np.subtract(X, mean, dtype=np.float64)  # (n, d)
            U, singular_values, Vt = np.linalg.svd(Xc, full_matrices=False)
            variances = singular_values**2 / (n - 1)
        U, Vt = flip_signs(U, Vt)

        total_variance = variances.sum()
        if total_variance > 0:
            ratios = variances / total_variance
        else:  # constant data: no direction explains anything
            ratios = np.zeros_like(variances)
        k = _resolve_n_components(self.n_components, ratios)

        self.mean_ = mean
        self.components_ = np.ascontiguousarray(Vt[:k])  # (k, d)
        self.explained_variance_ = variances[:k].copy()
        self.explained_variance_ratio_ = ratios[:k].copy()
        self.singular_values_ = singular_values[:k].copy()
        self.noise_variance_ = float(variances[k:].mean()) if k < k_max else 0.0
        self.n_components_ = k
        self.n_features_in_ = d
        self.n_samples_ = n
        names = v.feature_names_of(X_in)
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return X, U

    # -- using a fitted model -------------------------------------------------------------------

    def transform(self, X) -> np.ndarray:
        """Projections (n_samples, n_components_) of X (n_samples, n_features) on the
        principal components, float32 for float32 input, else float64."""
        X = self._check_X(X)
        return self._project(X).astype(_out_dtype(X), copy=False)

    def inverse_transform(self, Z) -> np.ndarray:
        """Map projections back to the feature space.

        Parameters
        ----------
        Z : array-like of shape (n_samples, n_components_)
            Projections, as returned by ``transform``.

        Returns
        -------
        X_hat : ndarray of shape (n_samples, n_features_in_)
            Points in feature space, float32 for float32 input, else float64.
        """
        v.check_is_fitted(self, "components_")
        Z = v.as_real_2d(Z, name="Z")
        _check_finite(Z, name="Z")
        if Z.shape[1] != self.n_components_:
            raise DataError(
                f"Z has {Z.shape[1]} columns, but this PCA has {self.n_components_} components"
            )
        return self._unproject(Z).astype(_out_dtype(Z), copy=False)

    def reconstruct(self, X) -> np.ndarray:
        """``inverse_transform(transform(X))``: the reconstruction (n_samples, n_features_in_)
        of X, float32 for float32 input, else float64."""
        X = self._check_X(X)
        return self._unproject(self._project(X)).astype(_out_dtype(X), copy=False)

    def reconstruction_error(self, X) -> np.ndarray:
        """Mean squared reconstruction error of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data with the features seen in ``fit``.

        Returns
        -------
        errors : ndarray of shape (n_samples,)
            Mean over features of ``(X - reconstruct(X)) ** 2``, float32 for float32 input,
            else float64.
        """
        X = self._check_X(X)
        residual = self._unproject(self._project(X))  # (n, d)
        np.subtract(X, residual, out=residual)
        np.square(residual, out=residual)
        return residual.mean(axis=1).astype(_out_dtype(X), copy=False)

    def score_samples(self, X) -> np.ndarray:
        """``-reconstruction_error(X)``, shape (n_samples,): higher is more typical."""
        return -self.reconstruction_error(X)

    def _project(self, X: np.ndarray) -> np.ndarray:
        """Float64 projections of validated X, shape (n, k)."""
        W = self.components_.T  # (d, k)
        # Centring after the product avoids copying X: (X - mean) @ W = X @ W - mean @ W.
        Z = tuned_matmul(X, W, np.float64)  # (n, k)
        Z -= self.mean_ @ W
        if self.whiten:
            Z /= self._whitening_scale()
        return Z

    def _unproject(self, Z: np.ndarray) -> np.ndarray:
        """Float64 feature-space points from projections Z of shape (n, k)."""
        V = self.components_  # (k, d)
        if self.whiten:
            V = self._whitening_scale()[:, None] * V
        X_hat = tuned_matmul(Z, V, np.float64)  # (n, d)
        X_hat += self.mean_
        return X_hat

    def _whitening_scale(self) -> np.ndarray:
        # A zero-variance component would divide by zero; its projections are zero anyway.
        scale = np.sqrt(self.explained_variance_)
        return np.where(scale > 0, scale, 1.0)

    def _check_X(self, X) -> np.ndarray:
        v.check_is_fitted(self, "components_")
        arr = v.as_real_2d(X)
        v.check_features(self, X, arr)
        _check_finite(arr)
        return arr


# -- helpers ------------------------------------------------------------------------------------


def _check_finite(X: np.ndarray, name: str = "X") -> None:
    """Raise DataError naming the first NaN or infinity in X, if there is one."""
    # Any NaN or infinity makes the sum non-finite, so clean data costs one fast reduction
    # instead of validation.check_array's element-wise mask.
    with np.errstate(over="ignore", invalid="ignore"):
        if not np.isfinite(X.sum()):
            v.check_array(X, X.dtype, name=name)


def _out_dtype(X: np.ndarray) -> type:
    return np.float32 if X.dtype == np.float32 else np.float64


def _check_n_components(n_components, k_max: int) -> None:
    is_int = isinstance(n_components, numbers.Integral) and not isinstance(
        n_components, bool | np.bool_
    )
    is_fraction = isinstance(n_components, numbers.Real) and not is_int
    if (
        n_components is None
        or (is_int and 1 <= n_components <= k_max)
        or (is_fraction and 0 < n_components < 1)
    ):
        return
    raise InvalidParameterError(
        f"n_components={n_components!r} is out of range: use an int in [1, {k_max}] "
        "(min(n_samples, n_features)), a float in (0, 1) for a fraction of the variance, "
        "or None for all"
    )


def _resolve_n_components(n_components, ratios: np.ndarray) -> int:
    """Number of components to keep given the parameter and the explained variance ratios."""
    if n_components is None:
        return len(ratios)
    if isinstance(n_components, numbers.Integral):
        return int(n_components)
    if not ratios.any():  # constant data: one component is as good as all
        return 1
    # Smallest k whose cumulative ratio reaches the fraction; rounding can leave the total a
    # hair under 1, in which case all components are kept.
    k = int(np.searchsorted(np.cumsum(ratios), n_components, side="left")) + 1
    return min(k, len(ratios))
