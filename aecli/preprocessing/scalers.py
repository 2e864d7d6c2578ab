"""Feature scalers, each an affine map ``(X - center_) / scale_`` fitted on training data.

Every scaler stores the same two arrays, so the model file needs no per-kind format and
:func:`scaler_from_arrays` rebuilds any of them. NaN is ignored when fitting and passed
through when transforming (as scikit-learn's scalers do); infinity is an error.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

import numpy as np

from ..errors import DataError, InvalidParameterError
from ..estimators import checks as v
from ..estimators.base import ParamsMixin
from ._arrays import AllowsNaN, as_float_2d, column_label, reject_infinite

__all__ = [
    "IdentityScaler",
    "MinMaxScaler",
    "ScalerKind",
    "StandardScaler",
    "column_moments",
    "make_scaler",
    "scaler_from_arrays",
    "scaler_from_moments",
]

_EPS = np.finfo(np.float64).eps


class ScalerKind(StrEnum):
    """The scalers aecli knows, by their ``--scale`` names."""

    STANDARD = "standard"
    MINMAX = "minmax"
    NONE = "none"


class _AffineScaler(AllowsNaN, ParamsMixin):
    """Shared fit/transform of the scalers; subclasses compute ``center`` and ``scale``."""

    kind: ClassVar[ScalerKind]

    def __init__(self):
        pass

    def fit(self, X, y=None):
        """Fit ``center_`` and ``scale_`` on X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; NaN is ignored, infinity is an error.
        y : None
            Ignored.

        Returns
        -------
        self
        """
        names = v.feature_names_of(X)
        arr = as_float_2d(X, min_samples=1)
        reject_infinite(arr, names)
        arr64 = arr.astype(np.float64, copy=False)
        nan = np.isnan(arr64)
        has_nan = bool(nan.any())
        if has_nan:
            empty = np.flatnonzero(nan.all(axis=0))
            if len(empty):
                raise DataError(
                    f"{column_label(names, empty[0])} has no values to fit the scaler on "
                    f"(all {arr.shape[0]} rows are missing)",
                    hint="leave the column out with --exclude",
                )
        center, scale = self._fit_arrays(arr64, has_nan)
        self.center_ = np.asarray(center, dtype=np.float64)
        self.scale_ = np.asarray(scale, dtype=np.float64)
        self.n_features_in_ = arr.shape[1]
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return self

    def _fit_arrays(self, X: np.ndarray, has_nan: bool) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def transform(self, X) -> np.ndarray:
        """Scale X: ``(X - center_) / scale_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        X_scaled : ndarray of shape (n_samples, n_features)
            float32 for float32 input, else float64; NaN stays NaN.
        """
        arr = self._check(X)
        # Float64 arithmetic, then the caller's dtype: float32 data far from its centre
        # would otherwise lose digits in the subtraction, or overflow in it.
        out = np.subtract(arr, self.center_, dtype=np.float64)  # (n, d)
        out /= self.scale_
        return out.astype(arr.dtype, copy=False)

    def inverse_transform(self, X) -> np.ndarray:
        """Undo ``transform``: ``X * scale_ + center_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Scaled data.

        Returns
        -------
        X_orig : ndarray of shape (n_samples, n_features)
            In original units, float32 for float32 input, else float64.
        """
        arr = self._check(X)
        out = np.multiply(arr, self.scale_, dtype=np.float64)  # (n, d)
        out += self.center_
        return out.astype(arr.dtype, copy=False)

    def fit_transform(self, X, y=None) -> np.ndarray:
        """``fit(X).transform(X)``; shape (n_samples, n_features)."""
        return self.fit(X).transform(X)

    def _check(self, X) -> np.ndarray:
        v.check_is_fitted(self, "scale_")
        arr = as_float_2d(X)
        v.check_features(self, X, arr)
        reject_infinite(arr, getattr(self, "feature_names_in_", None))
        return arr

    def _preserved_dtypes(self) -> list[str]:
        return ["float64", "float32"]


class StandardScaler(_AffineScaler):
    """Centre each feature on its mean and divide by its standard deviation (ddof=0).

    A constant feature (variance indistinguishable from zero in float64) gets scale 1, so it
    maps to 0 rather than NaN.

    Attributes
    ----------
    center_ : ndarray of shape (n_features,)
        Feature means.
    scale_ : ndarray of shape (n_features,)
        Feature standard deviations, 1 for constant features.
    n_features_in_ : int
    """

    kind = ScalerKind.STANDARD

    def _fit_arrays(self, X, has_nan):
        with np.errstate(over="ignore", invalid="ignore"):
            mean, std, constant = _moments(X)
            big = ~(np.isfinite(mean) & np.isfinite(std))
            if big.any():
                # Values so large that their sum or squares overflow (|x| > ~1e154): take the
                # moments in units of a power of two near the largest value, which is exact.
                top = np.nanmax(np.abs(X[:, big]), axis=0)
                unit = np.exp2(np.frexp(top)[1] - 1)  # (b,)
                m, s, c = _moments(X[:, big] / unit)
                mean[big], std[big], constant[big] = m * unit, s * unit, c
        return mean, np.where(constant, 1.0, std)


def column_moments(X: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per column of X (n, d), NaN ignored: the count, mean, sum of squared deviations from
    the mean, minimum and maximum (each (d,); mean and spread 0 for an empty column).

    The mean is taken about the midpoint of the column's range and the deviations about the
    mean, so a large offset costs no digits: summing raw values near 2^53 rounds each partial
    sum by units, which is the whole spread of ids such as 2^53 + (0..1000).
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        nan = np.isnan(X)  # (n, d)
        has_nan = bool(nan.any())
        n = (X.shape[0] - nan.sum(axis=0)).astype(np.float64)  # (d,)
        if has_nan:
            low = np.min(np.where(nan, np.inf, X), axis=0, initial=np.inf)
            high = np.max(np.where(nan, -np.inf, X), axis=0, initial=-np.inf)
        else:
            low, high = X.min(axis=0, initial=np.inf), X.max(axis=0, initial=-np.inf)
        some = n > 0
        mid = np.where(some, low / 2 + high / 2, 0.0)  # halves first: no overflow
        shift = np.where(some, _deviations(X, mid, 1, has_nan) / np.maximum(n, 1), 0.0)
        mean = mid + shift
        m2 = _deviations(X, mean, 2, has_nan)
    return n, mean, m2, low, high


_BLOCK_ROWS = 65536  # deviations are summed a block of rows at a time: no copy of all of X


def _deviations(X: np.ndarray, center: np.ndarray, power: int, has_nan: bool) -> np.ndarray:
    """Per column, the sum of (x - center) ** power over the rows of X (NaN ignored)."""
    total = np.zeros(X.shape[1], dtype=np.float64)
    for start in range(0, X.shape[0], _BLOCK_ROWS):
        D = X[start:start + _BLOCK_ROWS] - center  # (b, d)
        if power == 2:
            np.square(D, out=D)
        total += np.nansum(D, axis=0) if has_nan else D.sum(axis=0)
    return total


def _moments(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column of X (n, d): mean, standard deviation, and whether it is constant."""
    n, mean, m2, low, high = column_moments(X)
    std = np.sqrt(m2 / n)
    return mean, std, _constant_spread(std, low, high)


def _constant_spread(std, low, high):
    # A spread within the rounding of the values themselves (a few units in the last place,
    # as 0.1 + 0.2 and 0.3 differ) is noise around a constant column; the bound is the one
    # min-max scaling uses. It is relative to the values, not to their count: a bound that
    # grows with n * |mean| (scikit-learn's) calls 2^53 + (0..1000), std 289, constant.
    return std <= 10 * _EPS * np.maximum(np.abs(low), np.abs(high))


def _constant_span(low, high):
    return (high - low) <= 10 * _EPS * np.maximum(np.abs(low), np.abs(high))


def scaler_from_moments(kind: str | ScalerKind, n, mean, m2, low, high,
                        unit=1.0) -> _AffineScaler:
    """A fitted scaler from per-column moments merged across partitions: counts ``n``,
    means, sums of squared deviations ``m2`` (in units of ``unit`` squared: a power of two
    for a column whose squares overflow), minimums and maximums (each (d,)), by the rules
    its ``fit`` uses, without the rows themselves."""
    kind = ScalerKind(kind)
    n, mean, m2 = (np.asarray(a, dtype=np.float64) for a in (n, mean, m2))
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    if kind is ScalerKind.STANDARD:
        with np.errstate(invalid="ignore", divide="ignore"):
            std = np.sqrt(m2 / n) * unit
        center, scale = mean, np.where(_constant_spread(std, low, high), 1.0, std)
    elif kind is ScalerKind.MINMAX:
        center, scale = low, np.where(_constant_span(low, high), 1.0, high - low)
    else:
        center, scale = np.zeros_like(mean), np.ones_like(mean)
    return scaler_from_arrays(kind, center, scale)


class MinMaxScaler(_AffineScaler):
    """Map each feature's training range onto [0, 1].

    A constant feature (range indistinguishable from zero) gets scale 1 and maps to 0.

    Attributes
    ----------
    center_ : ndarray of shape (n_features,)
        Feature minimums.
    scale_ : ndarray of shape (n_features,)
        Feature ranges (max - min), 1 for constant features.
    n_features_in_ : int
    """

    kind = ScalerKind.MINMAX

    def _fit_arrays(self, X, has_nan):
        low = np.nanmin(X, axis=0) if has_nan else X.min(axis=0)  # (d,)
        high = np.nanmax(X, axis=0) if has_nan else X.max(axis=0)  # (d,)
        with np.errstate(over="ignore"):  # a range wider than float64: refused by the caller
            span = high - low
            return low, np.where(_constant_span(low, high), 1.0, span)


class IdentityScaler(_AffineScaler):
    """Leave features as they are (``--scale none``): ``center_`` 0 and ``scale_`` 1.

    Attributes
    ----------
    center_ : ndarray of shape (n_features,)
        Zeros.
    scale_ : ndarray of shape (n_features,)
        Ones.
    n_features_in_ : int
    """

    kind = ScalerKind.NONE

    def _fit_arrays(self, X, has_nan):
        d = X.shape[1]
        return np.zeros(d), np.ones(d)


SCALERS: dict[ScalerKind, type[_AffineScaler]] = {
    cls.kind: cls for cls in (StandardScaler, MinMaxScaler, IdentityScaler)
}


def make_scaler(kind: str | ScalerKind) -> _AffineScaler:
    """A new, unfitted scaler of the given kind.

    Parameters
    ----------
    kind : {"standard", "minmax", "none"} or ScalerKind

    Returns
    -------
    scaler : StandardScaler, MinMaxScaler or IdentityScaler
    """
    return SCALERS[v.check_choice("scale", kind, ScalerKind)]()


def scaler_from_arrays(kind: str | ScalerKind, center, scale) -> _AffineScaler:
    """Rebuild a fitted scaler from its stored ``center_`` and ``scale_``.

    Parameters
    ----------
    kind : {"standard", "minmax", "none"} or ScalerKind
    center : array-like of shape (n_features,)
    scale : array-like of shape (n_features,)
        Finite and positive.

    Returns
    -------
    scaler : StandardScaler, MinMaxScaler or IdentityScaler
        Fitted; ``transform`` works at once.
    """
    scaler = make_scaler(kind)
    center = np.array(center, dtype=np.float64)
    scale = np.array(scale, dtype=np.float64)
    if center.ndim != 1 or center.shape != scale.shape or center.size == 0:
        raise InvalidParameterError(
            f"scaler center and scale must be 1-D arrays of the same non-zero length, got "
            f"shapes {center.shape} and {scale.shape}"
        )
    bad = np.flatnonzero(~np.isfinite(center) | ~np.isfinite(scale) | ~(scale > 0))
    if len(bad):
        j = bad[0]
        raise InvalidParameterError(
            f"scaler needs a finite center and a finite positive scale for every feature; "
            f"feature {j + 1} has center {float(center[j])!r} and scale {float(scale[j])!r}"
        )
    if scaler.kind is ScalerKind.NONE and (np.any(center != 0) or np.any(scale != 1)):
        raise InvalidParameterError("scaler 'none' must have center 0 and scale 1")
    scaler.center_, scaler.scale_, scaler.n_features_in_ = center, scale, center.size
    return scaler
