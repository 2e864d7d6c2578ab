"""Which columns are features: chosen by name at training, found by name afterwards.

Names only (no data), so the readers can decide before loading values; what a column holds
decides its role in :mod:`.roles`.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Sequence

from ..errors import DataError, InvalidParameterError

__all__ = ["absent_column", "choose_feature_columns", "match_model_columns"]

_MAX_NAMES_SHOWN = 20


def choose_feature_columns(
    names: Sequence[str],
    numeric: Sequence[bool],
    columns: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
) -> tuple[list[str], list[str]]:
    """Pick the feature columns of a table from its column names.

    Parameters
    ----------
    names : sequence of str
        The table's column names, in order.
    numeric : sequence of bool
        Parallel to ``names``: whether each column holds numbers.
    columns : sequence of str, optional
        Use exactly these columns, in this order (``--columns``). Default: every numeric column.
    exclude : sequence of str, optional
        Leave these columns out (``--exclude``).

    Returns
    -------
    features : list of str
        The feature columns, in the order of ``columns`` or else of the table.
    unused : list of str
        The table's other columns, in table order (shown to the user once at training).

    Raises
    ------
    DataError
        A named column is absent (with a suggestion) or not numeric, a name is repeated in
        ``columns``, a feature name appears twice in the table, or no feature is left.
    """
    names = list(names)
    if len(numeric) != len(names):
        raise InvalidParameterError(
            f"numeric has {len(numeric)} flags for {len(names)} column names; pass one per column"
        )
    is_numeric = dict(zip(names, numeric, strict=True))
    for option, chosen in (("--columns", columns), ("--exclude", exclude)):
        for name in chosen or ():
            if name not in is_numeric:
                raise absent_column(name, names, f"{option} names column {name!r}, which")

    if columns is not None:
        repeated = [name for name, count in Counter(columns).items() if count > 1]
        if repeated:
            raise DataError(
                f"--columns names {_quoted(repeated)} more than once",
                hint="list each column once",
            )
        non_numeric = [name for name in columns if not is_numeric[name]]
        if non_numeric:
            raise DataError(
                f"{_column_s(non_numeric)} {_quoted(non_numeric)} "
                f"{'is' if len(non_numeric) == 1 else 'are'} not numeric",
                hint="an autoencoder needs numbers: choose numeric columns with --columns, or "
                "convert the column in the data first",
            )
        features = list(columns)
    else:
        features = [name for name in names if is_numeric[name]]
        if not features:
            raise DataError(
                f"the input has no numeric columns (columns: {_listing(names)})",
                hint="check the delimiter and the header, or convert the columns to numbers",
            )

    dropped = set(exclude or ())
    features = [name for name in features if name not in dropped]
    if not features:
        raise DataError(
            "no feature columns are left: --exclude removes every column chosen",
            hint="exclude fewer columns",
        )
    twice = [name for name, count in Counter(names).items() if count > 1 and name in features]
    if twice:
        raise DataError(
            f"{_column_s(twice)} {_quoted(twice)} appear{'s' if len(twice) == 1 else ''} more "
            "than once in the input, so it is unclear which to use",
            hint="rename the duplicate columns, or leave them out with --exclude",
        )
    chosen = set(features)
    unused = [name for name in names if name not in chosen]
    return features, unused


def match_model_columns(available_names: Sequence[str], model_names: Sequence[str]) -> list[int]:
    """Find the model's feature columns in a new table, by name.

    Parameters
    ----------
    available_names : sequence of str
        The new table's column names, in order.
    model_names : sequence of str
        The model's feature names, in the model's order.

    Returns
    -------
    indices : list of int, length len(model_names)
        ``indices[i]`` is the position in ``available_names`` of ``model_names[i]``; columns
        the model does not use are ignored.

    Raises
    ------
    DataError
        A model column is absent from the table (with a suggestion), or appears twice in it.
    """
    available = list(available_names)
    position: dict[str, int] = {}
    repeated = set()
    for i, name in enumerate(available):
        if name in position:
            repeated.add(name)
        position.setdefault(name, i)
    missing = [name for name in model_names if name not in position]
    if len(missing) == 1:
        raise absent_column(missing[0], available, f"the model's column {missing[0]!r}")
    if missing:
        raise DataError(
            f"the model's columns {_quoted(missing)} are missing from the input "
            f"(input columns: {_listing(available)})",
            hint="pass data with the columns the model was trained on (see aecli inspect)",
        )
    ambiguous = [name for name in model_names if name in repeated]
    if ambiguous:
        raise DataError(
            f"the model's {_column_s(ambiguous)} {_quoted(ambiguous)} "
            f"appear{'s' if len(ambiguous) == 1 else ''} more than once in the input",
            hint="rename or remove the duplicate columns",
        )
    return [position[name] for name in model_names]


def absent_column(name: str, available: Sequence[str], subject: str) -> DataError:
    """The error for a column that is not in the table, suggesting the closest name
    (``subject`` begins the message: ``--keep names column 'x', which``)."""
    available = list(available)
    # A high cutoff: short names like p07 and p60 look alike to difflib at its default.
    close = difflib.get_close_matches(name, available, n=1, cutoff=0.75)
    folded = [a for a in available if a.casefold() == name.casefold()]
    suggestion = folded[0] if folded else close[0] if close else None
    hint = f"did you mean {suggestion!r}?" if suggestion else "check the spelling and the header"
    return DataError(
        f"{subject} is not in the input (available columns: {_listing(available)})",
        hint=hint,
    )


def _quoted(names: Sequence[str], most: int = 8) -> str:
    # A model of hundreds of columns would otherwise bury the message under their names.
    shown = ", ".join(repr(n) for n in names[:most])
    return shown if len(names) <= most else f"{shown}, ... ({len(names)} in all)"


def _column_s(names: Sequence[str]) -> str:
    return "column" if len(names) == 1 else "columns"


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_MAX_NAMES_SHOWN])
    more = len(names) - _MAX_NAMES_SHOWN
    return shown + (f", ... ({more} more)" if more > 0 else "") if names else "none"
