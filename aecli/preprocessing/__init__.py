"""From a table's columns to the matrix an estimator sees: columns, missing values, scaling.

- :mod:`.roles` decides what each column is (numeric, categorical, identifier, ...).
- :mod:`.columns` picks the feature columns by name and finds them again at encode time.
- :mod:`.categorical` holds a categorical column's levels and one-hot encodes it.
- :mod:`.missing` reports missing values and applies ``--missing error|drop|impute``.
- :mod:`.scalers` holds the ``--scale standard|minmax|none`` scalers.
- :mod:`.prepare` is the one path from a table chunk to the network's matrix.
"""

from .categorical import Categorical
from .columns import absent_column, choose_feature_columns, match_model_columns
from .missing import (
    ColumnMissing,
    Imputer,
    MissingPolicy,
    MissingReport,
    find_missing,
    missing_error,
    missing_warnings,
    reject_infinite,
)
from .prepare import BatchBuffers, Preparation, Prepared, RawRows, screen
from .roles import DEFAULT_MAX_LEVELS, Roles, decide_roles
from .scalers import (
    SCALERS,
    IdentityScaler,
    MinMaxScaler,
    ScalerKind,
    StandardScaler,
    make_scaler,
    scaler_from_arrays,
    scaler_from_moments,
)

__all__ = [
    "DEFAULT_MAX_LEVELS",
    "SCALERS",
    "Categorical",
    "RawRows",
    "Roles",
    "decide_roles",
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
    "find_missing",
    "make_scaler",
    "match_model_columns",
    "missing_error",
    "missing_warnings",
    "reject_infinite",
    "scaler_from_arrays",
    "scaler_from_moments",
    "screen",
]
