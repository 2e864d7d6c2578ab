"""What the partitions of a data set hold, surveyed on the workers for cluster training:
the columns' roles decided from every partition's column survey, then each partition's rows
checked, split and summed up in figures that merge exactly into the preparation one machine
would fit on all the training rows.

Each partition checks its rows (infinity, the missing-value policy), splits them between
training and validation by their row numbers in the whole data set (the rule of every
training path, :func:`aecli.estimators.rows.held_out`), and returns small figures: row
counts, and per numeric column the count, mean, sum of squared deviations, minimum and
maximum of its training values, and the categorical levels it holds. These merge exactly
(Chan, Golub and LeVeque's pairwise update) into the scaler, the imputation means and the
levels.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pyarrow as pa

from ..errors import DataError, naming_input
from ..estimators.rows import held_out
from ..io import BadValues, iter_batches
from ..io.surveyed import Surveyed, survey_input
from ..preprocessing import (
    Categorical,
    Imputer,
    MissingPolicy,
    Preparation,
    RawRows,
    Roles,
    ScalerKind,
    scaler_from_moments,
    screen,
)
from ..preprocessing.categorical import as_text, check_levels
from ..preprocessing.scalers import column_moments
from .reference import Reference
from .sampled_evidence import RowSample
from .sources import DataOptions, raw_rows, roles_from


def partition_rows(path: str, reading: DataOptions, roles: Roles) -> RawRows:
    """A partition's rows, read as ``reading.text`` says: the numeric features' values and
    the categorical columns."""
    with iter_batches(path, reading.input_format, text=reading.text) as stream:
        table = pa.Table.from_batches([b for b in stream], schema=stream.schema)
    return raw_rows(table, roles, reading, path)


def survey_part(path: str, reading: DataOptions) -> Surveyed:
    """What every column of one partition holds, over all its rows (on a worker); a
    partition may be empty (the rows of the whole are counted by the client)."""
    return survey_input(path, reading.input_format, reading.delimiter, reading.decimal,
                        empty=True)


def roles_of(parts: list[Surveyed], reading: DataOptions, name: str = ""
             ) -> tuple[Roles, list[DataOptions]]:
    """The roles decided from the partitions' surveys merged in order (a column constant in
    one partition and varying in another is a feature, as on one machine), and how each
    partition is then read: the numeric features as numbers, in the types of the whole."""
    whole = parts[0].survey
    for part in parts[1:]:
        whole = whole.merge(part.survey)
    decimal = next((p.dialect.decimal for p in parts if p.dialect is not None), ".")
    with naming_input(name or parts[0].name):
        roles = roles_from(whole, reading, decimal)
    return roles, [replace(reading, text=Surveyed(whole, p.format, p.name, p.dialect).reading(
        roles.numeric, bad_values=reading.bad_values)) for p in parts]


@dataclass
class Moments:
    """Per-column figures of training values that merge exactly across partitions.

    ``m2`` is in units of ``unit`` squared: 1, or, for a column whose squares overflow
    (|x| > ~1e154), a power of two near its largest value, as one machine's scaler takes it
    (dividing by a power of two is exact, so the figures are those of the values
    themselves)."""

    n: np.ndarray
    mean: np.ndarray
    m2: np.ndarray
    low: np.ndarray
    high: np.ndarray
    unit: np.ndarray | None = None  # (d,); None: every 1

    def __post_init__(self):
        if self.unit is None:
            self.unit = np.ones_like(self.mean)

    @classmethod
    def of(cls, X: np.ndarray) -> Moments:
        """The figures of one partition's rows X (n, d), NaN ignored; exact for large
        offsets (see :func:`aecli.preprocessing.scalers.column_moments`)."""
        moments = cls(*column_moments(X))
        big = ~(np.isfinite(moments.mean) & np.isfinite(moments.m2)) & (moments.n > 0)
        if big.any():
            top = np.maximum(np.abs(moments.low[big]), np.abs(moments.high[big]))
            unit = np.exp2(np.frexp(top)[1] - 1)  # (b,)
            _, mean, m2, _, _ = column_moments(X[:, big] / unit)
            moments.mean[big], moments.m2[big], moments.unit[big] = mean * unit, m2, unit
        return moments

    def merge(self, other: Moments) -> Moments:
        n = self.n + other.n
        unit = np.maximum(self.unit, other.unit)
        delta = (other.mean - self.mean) / unit  # in units; unit 1: the plain update
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            share = np.where(n > 0, other.n / np.maximum(n, 1), 0.0)
            mean = self.mean + (other.mean - self.mean) * share
        return Moments(n, mean,
                       self.m2 * (self.unit / unit) ** 2 + other.m2 * (other.unit / unit) ** 2
                       + delta * delta * self.n * share,
                       np.minimum(self.low, other.low), np.maximum(self.high, other.high),
                       unit)


@dataclass
class PartSurvey:
    """What one partition's survey sends back."""

    index: int
    rows: int
    rows_train: int
    rows_validation: int
    dropped: int
    imputed: int
    moments: Moments
    levels: dict = field(default_factory=dict)
    reference: Reference | None = None  # every row's, for drift (see .reference)
    sample: RowSample = field(default_factory=RowSample)  # for the combined score


def survey_partition(path: str, index: int, reading: DataOptions, roles: Roles,
                     missing: MissingPolicy, fraction: float, seed: int,
                     first_row: int) -> PartSurvey:
    """Check a partition's rows and sum up its training rows (on a worker)."""
    raw = partition_rows(path, reading, roles)
    rows = np.arange(first_row + 1, first_row + len(raw) + 1)  # in the whole data set
    with naming_input(path):
        keep = screen(raw.numeric, roles.numeric, missing, rows=rows)
    kept = raw if keep is None else raw.take(keep)
    val = held_out(seed, fraction, first_row, len(raw))  # by row number in the whole data set
    val = val if keep is None else val[keep]
    train_rows = kept.take(~val)
    numbers = (rows if keep is None else rows[keep])[~val] - 1  # 0-based, as a stream's
    levels = {}
    if train_rows.categorical is not None:
        import pyarrow.compute as pc

        for name in roles.categorical:
            levels[name] = set(pc.unique(as_text(train_rows.categorical.column(name)))
                               .to_pylist())
    imputed = int(np.isnan(kept.numeric).sum()) if missing is MissingPolicy.IMPUTE else 0
    return PartSurvey(index, len(raw), len(train_rows), int(val.sum()),
                      0 if keep is None else int((~keep).sum()), imputed,
                      Moments.of(train_rows.numeric), levels,
                      Reference.of(raw, roles.numeric, roles.categorical, first_row),
                      RowSample.of(train_rows, numbers, seed))


def preparation_from(parts: list[PartSurvey], roles: Roles, missing: MissingPolicy,
                     scale: ScalerKind, dtype, bad_values: BadValues) -> Preparation:
    """The preparation one machine would fit on all the training rows, from the surveys."""
    moments = parts[0].moments
    for p in parts[1:]:
        moments = moments.merge(p.moments)
    empty = [roles.numeric[j] for j in np.flatnonzero(moments.n == 0)]
    if empty:
        raise DataError(f"column {empty[0]!r} has no values to fit the scaler on",
                        hint="leave the column out with --exclude")
    imputer = Imputer.from_fill(moments.mean, roles.numeric)
    n, m2 = moments.n, moments.m2
    if missing is MissingPolicy.IMPUTE:  # filled cells sit at the mean: more rows, same m2
        n = np.full_like(n, sum(p.rows_train for p in parts))
        imputer.missing_share_ = 1 - moments.n / np.maximum(n, 1)  # as Imputer.fit has it
    scaler = scaler_from_moments(scale, n, moments.mean, m2, moments.low, moments.high,
                                 moments.unit)
    categorical = []
    for name in roles.categorical:
        seen = set().union(*(p.levels.get(name, set()) for p in parts))
        check_levels(name, len(seen))
        categorical.append(Categorical(name, tuple(sorted(v for v in seen if v is not None))
                                       + ((None,) if None in seen else ())))
    return Preparation(roles.numeric, missing, scaler, imputer, dtype, categorical, bad_values)
