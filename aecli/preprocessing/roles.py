"""Column roles, decided once at training from a survey of every training row, and stored in
the model.

Each column of the input is a numeric feature, a categorical feature, an identifier, a date,
constant, empty, or of another type; only features are used. Booleans are numeric (0/1). An
identifier is a column named as one (``id``, ``customer_id``, ``uuid``, ``index``), a row
number (consecutive integers), or text whose values are all distinct: it says where a row
sits, not what it holds. All-distinct numbers are measurements, and so features. Codes
(digit strings with a leading zero: ZIP ``07114``) are text, never numbers. Text columns with
at most ``max_levels`` distinct values are categorical. ``--columns`` names the features
outright, ``--exclude`` leaves columns out, ``--categorical`` forces columns to be
categorical (or, as ``none``, turns the automatic choice off).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from ..errors import DataError
from ..io.survey import (
    BOOLEAN,
    LEVELS_CAP,
    NULL,
    NUMBER,
    OTHER,
    TEMPORAL,
    TEXT,
    ColumnSurvey,
    Survey,
)
from .categorical import check_levels
from .columns import absent_column, choose_feature_columns

__all__ = ["DEFAULT_MAX_LEVELS", "ID_MIN_ROWS", "Roles", "decide_roles"]

# The default of --max-levels: a text column of at most this many distinct values is
# categorical (one-hot encoded) without being named; categorical.ONE_HOT_LIMIT is the limit
# of any categorical column, named or not.
DEFAULT_MAX_LEVELS = 50
ID_MIN_ROWS = 10  # fewer rows than this say too little to call a column an identifier


@dataclass
class Roles:
    """What each column of the training table is (names in table order)."""

    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    identifiers: list[str] = field(default_factory=list)
    constant: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    dates: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)  # categorical ones that are codes (01, 07114)
    other: dict[str, str] = field(default_factory=dict)  # name → why it is not used
    excluded: list[str] = field(default_factory=list)

    @property
    def features(self) -> list[str]:
        """The columns the model uses: numeric ones first (the network's order)."""
        return self.numeric + self.categorical

    @property
    def unused(self) -> list[str]:
        """Every column that is not a feature."""
        return (self.identifiers + self.constant + self.empty + self.dates + list(self.other)
                + self.excluded)

    def to_dict(self) -> dict:
        """Plain JSON, for the model file and ``--json``."""
        return {"numeric": self.numeric, "categorical": self.categorical,
                "identifiers": self.identifiers, "constant": self.constant,
                "empty": self.empty, "dates": self.dates, "codes": self.codes,
                "other": self.other, "excluded": self.excluded}

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
        if self.codes:
            out.append(f"codes, read as text (digits with leading zeros): "
                       f"{_names(self.codes)}")
        if self.identifiers:
            out.append(f"identifiers, not used: {_names(self.identifiers)} (ids by name, row "
                       "numbers or all-distinct text; name one in --columns to use it)")
        if self.dates:
            out.append(f"dates, not used: {_names(self.dates)} (--exclude to silence this)")
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


# A text column whose values are numbers but for a few (a stray "n/a", "foo" at row 200,002)
# is a numeric column with bad values, never a categorical one.
NUMBERS_SHARE = 0.9

# Names that say a column identifies rows rather than measures them: id, key, uuid, index,
# rownames, pandas' "Unnamed: 0", and names ending in _id or Id (customer_id, orderId).
_ID_NAME = re.compile(
    r"^(id|key|uuid|guid|index|idx|rownames?|row[ _.]?(id|num|number|names?)|unnamed: ?\d+)$"
    r"|[ _.-](id|key|uuid|guid)$", re.IGNORECASE)


def is_id_name(name: str) -> bool:
    """Whether a column's name says it identifies rows (``id``, ``customer_id``, ``uuid``)."""
    return bool(_ID_NAME.search(name.strip())) or bool(re.search(r"[a-z](Id|ID)$", name))


def _numbers_share(s: ColumnSurvey, decimal: str) -> float:
    return s.numbers(decimal) / s.present if s.present else 0.0


def _is_code(s: ColumnSurvey) -> bool:
    """Digit strings with a leading zero (ZIP 07114, FIPS 01001, precinct 01): a code."""
    return s.kind != NUMBER and s.codes > 0 and s.integers == s.present


def _is_numeric(s: ColumnSurvey, decimal: str) -> bool:
    """Numbers, or text that spells numbers but for a few stray values; never a code."""
    if s.kind in (NUMBER, BOOLEAN):
        return True
    return not _is_code(s) and _numbers_share(s, decimal) >= NUMBERS_SHARE


def _is_date(s: ColumnSurvey) -> bool:
    return s.kind == TEMPORAL or (s.kind != NUMBER and s.present > 0
                                  and s.dates >= NUMBERS_SHARE * s.present)


def _example(s: ColumnSurvey) -> str:
    return f"it holds {s.example!r}" if s.example is not None else "it is text"


def check_decimal(name: str, s: ColumnSurvey, decimal: str) -> None:
    """Refuse a text column that would be numbers under the other decimal separator: it must
    never be read silently as text."""
    other = "," if decimal == "." else "."
    if s.kind != NUMBER and not _is_code(s) and _numbers_share(s, decimal) < NUMBERS_SHARE \
            <= _numbers_share(s, other):
        if other == ",":
            raise DataError(
                f"column {name!r} holds numbers written with a comma ({_example(s)}), a "
                "decimal comma or a thousands separator, but the input is read with a "
                "decimal point",
                hint=f"if the comma is the decimal separator, pass --decimal ,; if it groups "
                f"thousands, remove the separators first (aecli does not read them), or "
                f"leave the column out with --exclude {name}")
        raise DataError(
            f"column {name!r} holds numbers written with a decimal point ({_example(s)}), "
            "but the input is read with a decimal comma",
            hint=f"pass --decimal . (or leave the column out with --exclude {name})")


def _mark(decimal: str) -> str:
    return "comma" if decimal == "," else "point"


def decide_roles(data: pa.Table | Survey, *, columns: Sequence[str] | None = None,
                 exclude: Sequence[str] | None = None,
                 categorical: Sequence[str] | None = None, auto_categorical: bool = True,
                 max_levels: int = DEFAULT_MAX_LEVELS, decimal: str = ".") -> Roles:
    """Decide each column's role from a survey of every training row (or a table, surveyed
    whole).

    Parameters
    ----------
    data : pyarrow.Table or Survey
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
    decimal : str
        The input's decimal separator, ``.`` or ``,`` (delimited text).

    Raises
    ------
    DataError
        A named column is absent, repeated, or cannot be a feature; no feature is left; a
        text column would be numbers under the other decimal separator.
    """
    survey = data if isinstance(data, Survey) else Survey.of([data])
    names = survey.names
    forced = list(categorical or ())
    for option, chosen in (("--columns", columns), ("--exclude", exclude),
                           ("--categorical", forced)):
        for name in chosen or ():
            if name not in names:
                raise absent_column(name, names, f"{option} names column {name!r}, which")
    roles = Roles()
    dropped = set(exclude or ())
    if columns is not None:
        choose_feature_columns(names, [True] * len(names), columns=columns)  # repeats
        for name in columns:
            if name in dropped:
                continue
            s = survey.columns[name]
            if name in forced:
                _check_forced(name, s)
                roles.categorical.append(name)
            elif s.kind == NULL or s.present == 0 or _is_numeric(s, decimal):
                roles.numeric.append(name)  # an empty one is refused where it is used
            elif s.kind in (TEXT, "mixed"):
                check_decimal(name, s, decimal)
                count = s.level_count
                if count is None or count > max_levels:
                    many = f"{count:,}" if count is not None else f"more than {LEVELS_CAP:,}"
                    raise DataError(
                        f"column {name!r} is not numeric ({_example(s)}), and as text it has "
                        f"{many} distinct values, more than --max-levels {max_levels} allows "
                        "for a categorical column",
                        hint=f"leave it out of --columns (or --exclude {name}), raise "
                        f"--max-levels, or force it with --categorical {name}")
                roles.categorical.append(name)
            else:
                raise DataError(
                    f"column {name!r} holds {s.kind} values, which are neither numeric nor "
                    "categorical",
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
            s = survey.columns[name]
            if s.kind == NULL or s.present == 0:
                roles.empty.append(name)
            elif name in forced:
                _check_forced(name, s)
                roles.categorical.append(name)
            else:
                _role_by_values(roles, name, s, survey.rows, max_levels, auto_categorical,
                                decimal)
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


def _row_number(s: ColumnSurvey, n: int) -> bool:
    """Consecutive whole numbers in every row: a row number."""
    return s.counting and s.integers == s.present == n >= ID_MIN_ROWS


def _check_forced(name: str, s: ColumnSurvey) -> None:
    count = s.level_count
    check_levels(name, count if count is not None else LEVELS_CAP)


def _role_by_values(roles: Roles, name: str, s: ColumnSurvey, n: int, max_levels: int,
                    auto_categorical: bool, decimal: str) -> None:
    """The role of a column not named anywhere, from its survey."""
    if _is_date(s):
        roles.dates.append(name)
    elif s.kind == OTHER:
        roles.other[name] = "neither numeric nor text"
    elif _is_numeric(s, decimal):
        if n >= 2 and s.lo == s.hi and s.present == s.numbers(decimal):
            roles.constant.append(name)
        elif is_id_name(name) or s.huge_integers or _row_number(s, n):
            # a row number (consecutive integers) says where a row sits, not what it holds,
            # and integers beyond 2**53 (64-bit keys) cannot be floats exactly; other
            # all-distinct numbers are measurements, and so features
            roles.identifiers.append(name)
        else:
            roles.numeric.append(name)
        return
    else:
        check_decimal(name, s, decimal)
        count = s.level_count
        code = _is_code(s)
        if count is not None and count <= 1 and n >= 2:
            roles.constant.append(name)
        elif is_id_name(name) or (s.present == n >= ID_MIN_ROWS and s.all_distinct):
            roles.identifiers.append(name)
        elif not auto_categorical:
            roles.other[name] = f"text; --categorical {name} would one-hot encode it"
        elif count is not None and count <= max_levels:
            roles.categorical.append(name)
            if code:
                roles.codes.append(name)
        else:
            many = f"{count:,}" if count is not None else f"more than {LEVELS_CAP - 1:,}"
            what = "a code (digits with leading zeros)" if code else "text"
            roles.other[name] = (f"{what} with {many} distinct values, more than "
                                 f"--max-levels {max_levels}")
