"""From a table's columns to the matrix an estimator sees: columns, missing values, scaling.

- :mod:`.columns` picks the feature columns by name and finds them again at encode time.
- :mod:`.missing` reports missing values and applies ``--missing error|drop|impute``.
- :mod:`.scalers` holds the ``--scale standard|minmax|none`` scalers.
- :mod:`.prepare` is the one path from a table chunk to the network's matrix.
"""

from .columns import absent_column, choose_feature_columns, empty_columns, match_model_columns
from .missing import (
    ColumnMissing,
    Imputer,
    MissingPolicy,
    MissingReport,
    find_missing,
    missing_error,
    reject_infinite,
)
from .prepare import BatchBuffers, Preparation, Prepared, screen
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
    "BatchBuffers",
    "Prepared",
    "Preparation",
    "ScalerKind",
    "StandardScaler",
    "absent_column",
    "choose_feature_columns",
    "empty_columns",
    "find_missing",
    "make_scaler",
    "match_model_columns",
    "missing_error",
    "reject_infinite",
    "scaler_from_arrays",
    "screen",
]
