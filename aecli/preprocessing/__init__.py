"""From a table's columns to the matrix an estimator sees: columns, missing values, scaling.

- :mod:`.columns` picks the feature columns by name and finds them again at encode time.
- :mod:`.missing` reports missing values and applies ``--missing error|drop|impute``.
- :mod:`.scalers` holds the ``--scale standard|minmax|none`` scalers.
"""

from .columns import choose_feature_columns, match_model_columns
from .missing import (
    ColumnMissing,
    Imputer,
    MissingPolicy,
    MissingReport,
    MissingResult,
    apply_missing_policy,
    drop_missing,
    find_missing,
    imputer_from_array,
    missing_error,
    reject_infinite,
)
from .scalers import (
    SCALERS,
    IdentityScaler,
    MinMaxScaler,
    ScalerKind,
    StandardScaler,
    make_scaler,
    scaler_from_arrays,
)

__all__ = [
    "SCALERS",
    "ColumnMissing",
    "IdentityScaler",
    "Imputer",
    "MinMaxScaler",
    "MissingPolicy",
    "MissingReport",
    "MissingResult",
    "ScalerKind",
    "StandardScaler",
    "apply_missing_policy",
    "choose_feature_columns",
    "drop_missing",
    "find_missing",
    "imputer_from_array",
    "make_scaler",
    "match_model_columns",
    "missing_error",
    "reject_infinite",
    "scaler_from_arrays",
]
