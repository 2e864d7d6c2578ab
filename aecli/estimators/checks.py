"""Checks shared by the estimators: parameter ranges and input arrays.

Messages follow scikit-learn's wording where its tooling matches on it, and always quote the
offending value and what is allowed.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np

from ..errors import DataError, InvalidParameterError, NotFittedError


def check_int(name: str, value, low: int, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]`` (``high`` None: unbounded)."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InvalidParameterError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise InvalidParameterError(f"{name} must be >= {low}, got {value!r}")
    if high is not None and value > high:  # a bound on memory (see hyperparameters)
        raise InvalidParameterError(f"{name} must be <= {high}, got {value!r}")
    return int(value)


def check_float(name: str, value, low: float, high: float, *, low_open=False, high_open=False):
    """``value`` as a float in the interval from ``low`` to ``high`` (open ends as given)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value):
        raise InvalidParameterError(f"{name} must be a finite number, got {value!r}")
    below = value <= low if low_open else value < low
    above = value >= high if high_open else value > high
    if below or above:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise InvalidParameterError(f"{name} must be in {interval}, got {value!r}")
    return float(value)


def check_choice(name: str, value, enum_cls):
    """``value`` as a member of ``enum_cls``; the message lists the allowed names."""
    try:
        return enum_cls(value)
    except ValueError:
        allowed = ", ".join(m.value for m in enum_cls)
        raise InvalidParameterError(f"{name} must be one of {allowed}; got {value!r}") from None


def feature_names_of(X) -> np.ndarray | None:
    """Column names of a DataFrame-like ``X`` when they are all strings, else None."""
    columns = getattr(X, "columns", None)
    if columns is None:
        return None
    names = [str(c) for c in columns]
    if not all(isinstance(c, str) for c in columns):
        return None
    return np.asarray(names, dtype=object)


def as_real_2d(X, *, min_samples: int = 1, name: str = "X") -> np.ndarray:
    """``X`` as a 2-D float32 (kept) or float64 array, without copying when already one.

    Checks type and shape, with scikit-learn's wording where its tooling matches on it;
    NaN and infinity are left for the caller to judge.
    """
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(
            "sparse input is not supported: convert it to a dense array with X.toarray()"
        )
    arr = np.asarray(X)
    if np.iscomplexobj(arr):
        raise DataError("Complex data not supported; pass real numbers")
    if arr.dtype.kind in "OUS":
        try:
            arr = arr.astype(np.float64)
        except ValueError as err:  # a TypeError (e.g. a dict in a cell) passes as it is
            raise DataError(f"{name} must hold numbers: {err}") from None
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{name} must hold real numbers, got an array of dtype {arr.dtype}")
    if arr.ndim != 2:
        raise DataError(
            f"Expected 2D array, got {arr.ndim}D array instead. Reshape your data with "
            "X.reshape(-1, 1) for a single feature or X.reshape(1, -1) for a single sample"
        )
    n, d = arr.shape
    if n < min_samples:
        raise DataError(
            f"Found array with {n} sample(s) (shape={arr.shape}) while a minimum of "
            f"{min_samples} is required (n_samples = {n})"
        )
    if d < 1:
        raise DataError(
            f"Found array with 0 feature(s) (shape={arr.shape}) while a minimum of 1 is "
            "required. Pass at least one numeric column."
        )
    return arr.astype(np.float32 if arr.dtype == np.float32 else np.float64, copy=False)


def check_array(X, dtype, *, min_samples: int = 1, name: str = "X") -> np.ndarray:
    """Validate ``X`` as a finite 2-D array and return it as C-contiguous ``dtype``."""
    out = np.ascontiguousarray(as_real_2d(X, min_samples=min_samples, name=name), dtype=dtype)
    if not np.isfinite(out).all():
        bad = ~np.isfinite(out)
        row, col = np.argwhere(bad)[0]
        raise DataError(
            f"Input {name} contains NaN or infinity (first at row {row}, column {col}); "
            "remove or impute missing values first"
        )
    return out


def check_is_fitted(estimator, attribute: str) -> None:
    """Raise NotFittedError unless ``fit`` has set ``attribute``."""
    if not hasattr(estimator, attribute):
        raise NotFittedError(
            f"This {type(estimator).__name__} instance is not fitted yet; call 'fit' first"
        )


def check_features(estimator, X, arr: np.ndarray) -> None:
    """Check ``arr`` has the fitted number of features and ``X`` the fitted names."""
    names = feature_names_of(X)
    fitted = getattr(estimator, "feature_names_in_", None)
    cls = type(estimator).__name__
    if names is not None and fitted is not None and list(names) != list(fitted):
        raise DataError(
            "The feature names should match those that were passed during fit: "
            f"fitted with {list(fitted)[:5]}..., got {list(names)[:5]}..."
        )
    if names is None and fitted is not None:
        warnings.warn(f"X does not have valid feature names, but {cls} was fitted with "
                      "feature names", UserWarning, stacklevel=3)
    if names is not None and fitted is None:
        warnings.warn(f"X has feature names, but {cls} was fitted without feature names",
                      UserWarning, stacklevel=3)
    if arr.shape[1] != estimator.n_features_in_:
        raise DataError(
            f"X has {arr.shape[1]} features, but {cls} is expecting "
            f"{estimator.n_features_in_} features as input."
        )


def check_mask(mask, rows: np.ndarray | None, groups=None, name: str = "imputed"
               ) -> np.ndarray | None:
    """A mask of filled-in cells for ``rows`` (n, width): a boolean (n, table columns) array
    (``groups``' columns, or the width without categorical columns), or None when it marks
    no cell (or there are no rows), so that a fit without gaps takes the same path as one
    given no mask."""
    if mask is None or rows is None:
        return None
    m = np.asarray(mask, dtype=bool)
    columns = rows.shape[1] if groups is None else groups.columns
    if m.shape != (len(rows), columns):
        raise InvalidParameterError(f"{name} has shape {m.shape}, but its rows need "
                                    f"({len(rows)}, {columns}): a flag per table cell")
    return m if m.any() else None
