"""Column roles, decided once at training from the training table and stored in the model.

Each column of the input is a numeric feature, a categorical feature, an identifier, constant,
empty, or of another type; only features are used. Booleans are numeric (0/1). An identifier
is an integer or text column whose values are all distinct: a row number or a key says
nothing about the row, and a model that learns it explains rows by it. Text columns with at
most ``max_levels`` distinct values are categorical. ``--columns`` names the features
outright, ``--exclude`` leaves columns out, ``--categorical`` forces columns to be
categorical (or, as ``none``, turns the automatic choice off).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from ..errors import DataError
from ..io.matrix import to_matrix
from .categorical import as_text, check_levels, distinct_count
from .columns import absent_column, choose_feature_columns

__all__ = ["MAX_LEVELS", "ID_MIN_ROWS", "Roles", "decide_roles"]

MAX_LEVELS = 50  # --max-levels: most distinct values of a text column one-hot encoded
ID_MIN_ROWS = 10  # fewer rows than this say too little to call a column an identifier


@dataclass
class Roles:
    """What each column of the training table is (names in table order)."""

    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    identifiers: list[str] = field(default_factory=list)
    constant: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    other: dict[str, str] = field(default_factory=dict)  # name → why it is not used
    excluded: list[str] = field(default_factory=list)

    @property
    def features(self) -> list[str]:
        """The columns the model uses: numeric ones first (the network's order)."""
        return self.numeric + self.categorical

    @property
    def unused(self) -> list[str]:
        """Every column that is not a feature."""
        return self.identifiers + self.constant + self.empty + list(self.other) + self.excluded

    def to_dict(self) -> dict:
        """Plain JSON, for the model file and ``--json``."""
        return {"numeric": self.numeric, "categorical": self.categorical,
                "identifiers": self.identifiers, "constant": self.constant,
                "empty": self.empty, "other": self.other, "excluded": self.excluded}

    def lines(self, levels: dict[str, int] | None = None) -> list[str]:
        """One line per role that has columns, each saying how to override it (for stderr
        at training); ``levels`` gives each categorical column's level count."""
        levels = levels or {}
        out = []
        if self.numeric:
            out.append(f"numeric features ({len(self.numeric)}): {_names(self.numeric)}")
        if self.categorical:
            shown = [f"{c} ({levels[c]} levels)" if c in levels else c
                     for c in self.categorical]
            out.append(f"categorical features ({len(self.categorical)}, one-hot): "
                       f"{_names(shown)} (--categorical none to leave text columns out)")
        if self.identifiers:
            out.append(f"identifiers, not used (every value distinct): "
                       f"{_names(self.identifiers)} (name one in --columns to use it)")
        if self.constant:
            out.append(f"constant, not used: {_names(self.constant)}")
        if self.empty:
            out.append(f"empty in every row, so not used: {_names(self.empty)} (name a "
                       "column in --columns to use it all the same)")
        by_reason: dict[str, list[str]] = {}
        for name, why in self.other.items():
            by_reason.setdefault(why, []).append(name)
        for why, names in by_reason.items():
            if len(names) == 1:
                out.append(f"not used: {names[0]} ({why})")
            else:
                out.append(f"not used ({why}): {_names(names)}")
        if self.excluded:
            out.append(f"excluded: {_names(self.excluded)}")
        return out


def _names(names: Sequence[str], most: int = 12) -> str:
    shown = ", ".join(names[:most])
    return shown + (f", ... ({len(names) - most} more)" if len(names) > most else "")


def _kind(t: pa.DataType) -> str:
    """``numeric``, ``integer``, ``text``, ``null`` or ``other``."""
    if pa.types.is_dictionary(t):
        return "text" if _kind(t.value_type) == "text" else _kind(t.value_type)
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_boolean(t):
        return "numeric"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "text"
    if pa.types.is_null(t):
        return "null"
    return "other"


# A text column whose values are numbers but for a few (a stray "n/a", "foo" at row 200,002)
# is a numeric column with bad values, never a categorical one.
NUMBERS_SHARE = 0.9


def _share_of_numbers(column) -> float:
    """The share of a text column's present values that spell a number."""
    import pyarrow.compute as pc

    text = as_text(column)
    present = len(text) - text.null_count
    if present == 0:
        return 0.0
    trimmed = pc.utf8_trim_whitespace(text)
    numbers = pc.match_substring_regex(
        trimmed, r"^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|infinity|nan)$",
        ignore_case=True)
    return pc.sum(numbers).as_py() / present if pc.sum(numbers).as_py() else 0.0


def _numbers_as_text(column) -> bool:
    """Whether a text column is numbers (bar a few stray values, which the conversion then
    reports or, with ``--bad-values missing``, turns into gaps)."""
    return _share_of_numbers(column) >= NUMBERS_SHARE


def _example(column) -> str:
    """``row 1 holds 'x0'``: the first present value of a text column."""
    for i, value in enumerate(as_text(column).to_pylist()):
        if value is not None:
            return f"row {i + 1} holds {value!r}"
    return "it is empty"


def decide_roles(table: pa.Table, *, columns: Sequence[str] | None = None,
                 exclude: Sequence[str] | None = None,
                 categorical: Sequence[str] | None = None, auto_categorical: bool = True,
                 max_levels: int = MAX_LEVELS) -> Roles:
    """Decide each column's role from the training table (or its first rows, when
    streamed).

    Parameters
    ----------
    table : pyarrow.Table
    columns : sequence of str, optional
        Use exactly these (``--columns``): numeric ones as numbers, text ones (or those in
        ``categorical``) one-hot.
    exclude : sequence of str, optional
        Leave these out (``--exclude``).
    categorical : sequence of str, optional
        Columns one-hot encoded whatever their type or number of levels.
    auto_categorical : bool
        Whether text columns with few levels are categorical without being named
        (``--categorical none`` turns it off).
    max_levels : int
        Most distinct values of an automatic categorical column.

    Raises
    ------
    DataError
        A named column is absent, repeated, or cannot be a feature; no feature is left.
    """
    names = list(table.schema.names)
    forced = list(categorical or ())
    for option, chosen in (("--columns", columns), ("--exclude", exclude),
                           ("--categorical", forced)):
        for name in chosen or ():
            if name not in names:
                raise absent_column(name, names, f"{option} names column {name!r}, which")
    roles = Roles()
    dropped = set(exclude or ())
    kinds = {f.name: _kind(f.type) for f in table.schema}
    n = table.num_rows
    if columns is not None:
        choose_feature_columns(names, [True] * len(names), columns=columns)  # repeats
        for name in columns:
            if name in dropped:
                continue
            if name in forced:
                check_levels(name, distinct_count(table.column(name)))
                roles.categorical.append(name)
            elif kinds[name] in ("numeric", "integer", "null"):
                roles.numeric.append(name)
            elif kinds[name] == "text" and _numbers_as_text(table.column(name)):
                roles.numeric.append(name)
            elif kinds[name] == "text":
                count = distinct_count(table.column(name))
                if count > max_levels:
                    raise DataError(
                        f"column {name!r} is not numeric ({_example(table.column(name))}), "
                        f"and as text it has {count:,} distinct values, more than "
                        f"--max-levels {max_levels} allows for a categorical column",
                        hint=f"leave it out of --columns (or --exclude {name}), raise "
                        f"--max-levels, or force it with --categorical {name}")
                roles.categorical.append(name)
            else:
                raise DataError(
                    f"column {name!r} is {table.schema.field(name).type}, which is neither "
                    "numeric nor categorical",
                    hint=f"leave it out of --columns, or force it with --categorical {name}")
        chosen = set(roles.features)
        roles.excluded = [c for c in names if c not in chosen and c in dropped]
        roles.other = {c: "not in --columns" for c in names
                       if c not in chosen and c not in dropped}
    else:
        for name in names:
            if name in dropped:
                roles.excluded.append(name)
                continue
            column, kind = table.column(name), kinds[name]
            if kind == "null" or (n and column.null_count == n):
                roles.empty.append(name)
            elif name in forced:
                check_levels(name, distinct_count(column))
                roles.categorical.append(name)
            elif kind == "other":
                roles.other[name] = f"{table.schema.field(name).type}: neither numeric nor text"
            elif kind == "text" and not auto_categorical and not _numbers_as_text(column):
                roles.other[name] = (f"text; --categorical {name} would one-hot encode it")
            else:
                _role_by_values(roles, name, column, kind, n, max_levels)
    if not roles.features:
        unused = "; ".join(roles.lines()) or "the input has no columns"
        raise DataError(f"no column can be a feature ({unused})",
                        hint="check the delimiter and the header, name columns with "
                        "--columns, or force text columns with --categorical")
    if not roles.numeric:
        raise DataError(
            f"no numeric column to use beside the categorical ones "
            f"({_names(roles.categorical)}): aecli needs at least one numeric feature",
            hint="name a numeric column in --columns, or add one (a count, an amount) to the data")
    twice = [c for c in roles.features if names.count(c) > 1]
    if twice:
        raise DataError(
            f"column {twice[0]!r} appears more than once in the input, so it is unclear "
            "which to use", hint="rename the duplicate columns, or leave them out with --exclude")
    return roles


def _role_by_values(roles: Roles, name: str, column, kind: str, n: int,
                    max_levels: int) -> None:
    """The role of a numeric or text column not named anywhere, from its values."""
    if kind in ("numeric", "integer"):
        # Numbers: their range says whether they are constant, and only whole numbers with
        # no repeat in their first rows can be an identifier; counting distinct values of
        # every float column cost 5 s on 1M x 64 rows, this 0.1 s.
        values = to_matrix(pa.table({"c": column}), ["c"], dtype=np.float64)[:, 0]
        present = values[~np.isnan(values)]
        if n >= 2 and present.min() == present.max():
            roles.constant.append(name)
        elif (len(present) == n >= ID_MIN_ROWS and np.all(np.isfinite(present))
              and np.all(present == np.round(present)) and _all_distinct(present)):
            roles.identifiers.append(name)
        else:
            roles.numeric.append(name)
        return
    if _numbers_as_text(column):
        roles.numeric.append(name)  # numbers bar a few: the conversion names the others
        return
    count = distinct_count(column)
    if count <= 1 and n >= 2:  # one row is "constant" in every column: let it say so
        roles.constant.append(name)
    elif column.null_count == 0 and count == n and n >= ID_MIN_ROWS:
        roles.identifiers.append(name)
    elif count <= max_levels:
        roles.categorical.append(name)
    else:
        roles.other[name] = (f"text with {count:,} distinct values, more than --max-levels "
                             f"{max_levels}; --categorical {name} forces it")


def _all_distinct(values: np.ndarray, head: int = 1000) -> bool:
    """Whether no value repeats; the first ``head`` values settle most columns."""
    if len(np.unique(values[:head])) < min(head, len(values)):
        return False
    return len(np.unique(values)) == len(values)
