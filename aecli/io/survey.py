"""What every column of an input holds, counted over all of its rows in one bounded pass.

A :class:`ColumnSurvey` counts, for one column, the cells that are missing, that spell a
number (with a decimal point, or with a decimal comma), that are codes (digit strings with a
leading zero: ``07114``), dates (ISO 8601 text) or whole numbers, its range, whether it counts
rows (consecutive integers), and its distinct values up to a cap. Surveys of consecutive parts
merge (``merge``), so a file read in chunks, a stream and a cluster's partitions all reach the
same figures, and the roles decided from them do not depend on which rows came first.

Text is surveyed the same way in every format, so a column of ``"07114"`` is a code whether it
came from CSV, JSON lines or a Parquet string column.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from aecli.io.formats import NULL_VALUES

__all__ = ["LEVELS_CAP", "ColumnSurvey", "Survey", "missing_mask"]

#: Distinct values remembered per column; past this a column is "many-valued".
LEVELS_CAP = 1001

# A number with a decimal point, as float() reads it (blanks trimmed first).
DOT_NUMBER = r"^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|infinity|nan)$"
# A number with a decimal comma, as spreadsheets in most of Europe write it (1,5; -0,25).
COMMA_NUMBER = r"^[+-]?(\d+(,\d*)?|,\d+)([eE][+-]?\d+)?$"
_INTEGER = r"^[+-]?\d+$"
_LEADING_ZERO = r"^0\d"  # 01, 007, 07114: a code, never the number 7114
# ISO 8601 dates and timestamps, the common "YYYY-MM-DD HH:MM:SS", and the dates
# spreadsheets write in their locale (31/12/2024, 12/31/2024, 31.12.2024, 2024/12/31), with a
# time or without
_TIME = r"([T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?( ?[AaPp][Mm])?(Z|[+-]\d{2}(:?\d{2})?)?)?$"
_DATE = (r"^(\d{4}-\d{2}-\d{2}|\d{4}/\d{1,2}/\d{1,2}|\d{1,2}[/.]\d{1,2}[/.]\d{2,4}"
         r"|\d{1,2}-\d{1,2}-\d{4})" + _TIME)

TEXT, NUMBER, BOOLEAN, TEMPORAL, NULL, OTHER = (
    "text", "number", "boolean", "temporal", "null", "other")


def storage_kind(t: pa.DataType) -> str:
    """What an Arrow type stores: text, number, boolean, temporal, null or other."""
    if pa.types.is_dictionary(t):
        return storage_kind(t.value_type)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return TEXT
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return NUMBER
    if pa.types.is_boolean(t):
        return BOOLEAN
    if pa.types.is_temporal(t):
        return TEMPORAL
    if pa.types.is_null(t):
        return NULL
    return OTHER


@functools.cache
def _null_tokens() -> pa.Array:
    return pa.array(list(NULL_VALUES), type=pa.string())


def missing_mask(text: pa.Array) -> pa.Array:
    """Which cells of a text array are missing: null, or one of the missing-value tokens
    (``NULL_VALUES``, compared after trimming blanks), the same set in every format."""
    import pyarrow.compute as pc

    trimmed = pc.utf8_trim_whitespace(text)
    return pc.or_kleene(pc.is_null(text), pc.fill_null(
        pc.is_in(trimmed, value_set=_null_tokens()), True))


def _count(mask) -> int:
    import pyarrow.compute as pc

    return int(pc.sum(mask).as_py() or 0)


@dataclass
class ColumnSurvey:
    """Counts over every cell of one column (see the module's docstring)."""

    kind: str  # the storage kind; "mixed" when parts disagree (numbers in one, text in another)
    rows: int = 0
    present: int = 0  # cells not missing
    dot_numbers: int = 0  # present cells that spell a number with a decimal point
    comma_numbers: int = 0  # ... with a decimal comma (plain integers count in both)
    integers: int = 0  # present cells that are whole numbers written as such
    codes: int = 0  # digit strings with a leading zero
    dates: int = 0  # ISO dates and timestamps in text
    lo: float = np.inf  # range of the values that are numbers
    hi: float = -np.inf
    counting: bool = True  # every value so far is the one before plus 1 (a row number)
    last: float | None = None  # the last value, to continue ``counting`` across parts
    levels: set | None = field(default_factory=set)  # distinct present values, None past the cap
    repeats: bool = False  # a value seen twice within one part
    example: str | None = None  # the first present text cell that is no number

    @property
    def missing(self) -> int:
        """Cells that are missing."""
        return self.rows - self.present

    @property
    def level_count(self) -> int | None:
        """Distinct present values, or None when more than ``LEVELS_CAP``."""
        return None if self.levels is None else len(self.levels)

    @property
    def huge_integers(self) -> bool:
        """Whole numbers beyond 2**53 within 64 bits, which no float holds exactly: 64-bit
        ids, not measures (1e300 is a measure of something, written as a float)."""
        return self.present > 0 and self.integers == self.present and \
            2**53 < max(abs(self.lo), abs(self.hi)) < 2**64

    @property
    def all_distinct(self) -> bool:
        """Whether no present value repeats (exact up to ``LEVELS_CAP`` values; past that,
        no value repeats within a part)."""
        return len(self.levels) == self.present if self.levels is not None else \
            not self.repeats

    def add(self, column: pa.Array | pa.ChunkedArray) -> None:
        """Count the cells of the next part of the column."""
        if isinstance(column, pa.ChunkedArray):
            for chunk in column.chunks:
                self.add(chunk)
            return
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        kind = storage_kind(column.type)
        if kind != self.kind and kind != NULL and len(column) > column.null_count:
            self.kind = kind if self.kind == NULL else "mixed"
        n = len(column)
        self.rows += n
        if kind == TEXT:
            self._add_text(column)
        elif kind in (NUMBER, BOOLEAN) and n > column.null_count:
            self._add_numbers(column)
        elif kind in (TEMPORAL, OTHER):
            self.present += n - column.null_count
            self.counting = False
        elif kind == NULL:
            self.counting = False

    def _add_numbers(self, column: pa.Array) -> None:
        import pyarrow.compute as pc

        values = column.cast(pa.float64(), safe=False)
        n_present = len(values) - values.null_count
        self.present += n_present
        self.dot_numbers += n_present
        self.comma_numbers += n_present
        array = np.asarray(values.fill_null(np.nan).to_numpy(zero_copy_only=False),
                           dtype=np.float64)
        self._add_values(array)
        if pa.types.is_integer(column.type) or pa.types.is_boolean(column.type):
            self.integers += n_present
        else:
            finite = array[np.isfinite(array)]
            self.integers += int(np.count_nonzero(finite == np.round(finite)))
        self._add_levels(pc.drop_null(values), n_present)  # numbers: counted as numbers

    def _add_values(self, array: np.ndarray) -> None:
        """Range and counting of the numbers of a part (NaN where not a number)."""
        finite = array[np.isfinite(array)]
        if len(finite):
            self.lo = min(self.lo, float(finite.min()))
            self.hi = max(self.hi, float(finite.max()))
        if not self.counting:
            return
        if len(finite) != len(array):
            self.counting = False
            return
        if len(array):
            start = array[0] if self.last is None else self.last + 1
            if array[0] != start or (len(array) > 1 and not np.all(np.diff(array) == 1)):
                self.counting = False
            self.last = float(array[-1])

    def _add_levels(self, present: pa.Array, n_present: int) -> None:
        import pyarrow.compute as pc

        if not n_present or (self.levels is None and self.repeats):
            return  # nothing more to learn: past the cap, and known to repeat
        distinct = int(pc.count_distinct(present).as_py())
        if distinct < n_present:
            self.repeats = True
        if self.levels is None:
            return
        if distinct > LEVELS_CAP:
            self.levels = None
            return
        self.levels.update(pc.unique(present).to_pylist())
        if len(self.levels) > LEVELS_CAP:
            self.levels = None

    def _add_text(self, text: pa.Array) -> None:
        import pyarrow.compute as pc

        if not text.null_count:  # the common case, a column of numbers and nothing else
            try:
                numbers = text.cast(pa.float64())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                numbers = None
            if numbers is not None and not np.isnan(numbers.to_numpy()).any():
                self.present += len(text)
                self._add_number_text(text, numbers)
                return
        gone = missing_mask(text)
        present = pc.utf8_trim_whitespace(text.filter(pc.invert(gone)))
        n_present = len(present)
        self.present += n_present
        if not n_present:
            self.counting = False
            return
        if _count(gone):
            self.counting = False
        dots = np.asarray(pc.match_substring_regex(present, DOT_NUMBER, ignore_case=True)
                          .to_numpy(zero_copy_only=False), dtype=bool)
        n_dots = int(dots.sum())
        if n_dots == n_present:
            self._add_number_text(present, present.cast(pa.float64()))
            return
        numbers = pc.if_else(pa.array(dots), present, pa.scalar(None, pa.string())) \
            .cast(pa.float64())
        self.dot_numbers += n_dots
        self.comma_numbers += _count(pc.match_substring_regex(present, COMMA_NUMBER))
        integers = pc.match_substring_regex(present, _INTEGER)
        self.integers += _count(integers)
        self.codes += _count(pc.and_(integers, pc.match_substring_regex(present, _LEADING_ZERO)))
        self.dates += _count(pc.match_substring_regex(present, _DATE))
        if self.example is None:
            self.example = present[int(np.argmin(dots))].as_py()
        array = np.asarray(numbers.fill_null(np.nan).to_numpy(zero_copy_only=False),
                           dtype=np.float64)
        self._add_values(array)
        self._add_levels(present, n_present)

    def _add_number_text(self, present: pa.Array, numbers: pa.Array) -> None:
        """A part whose every present cell spells a number with a decimal point: counted
        from the numbers, with one look at the text for leading zeros (codes)."""
        import pyarrow.compute as pc

        n = len(present)
        array = np.asarray(numbers.to_numpy(zero_copy_only=False), dtype=np.float64)
        is_whole = np.isfinite(array) & (array == np.round(array))
        whole = int(np.count_nonzero(is_whole))
        self.dot_numbers += n
        self.integers += whole
        self.comma_numbers += whole  # a whole number is one under either separator
        if whole:  # only whole numbers can be written with a leading zero (07114)
            text = present.filter(pa.array(is_whole)) if whole < n else present
            self.codes += _count(pc.and_(pc.match_substring_regex(text, _INTEGER),
                                         pc.match_substring_regex(text, _LEADING_ZERO)))
        self._add_values(array)
        if self.levels is not None:  # a column of numbers needs its levels only while few
            self._add_levels(numbers, n)

    def merge(self, later: ColumnSurvey) -> ColumnSurvey:
        """This survey followed by ``later``'s, the survey of the rows that come after."""
        kind = self.kind if later.kind in (self.kind, NULL) else (
            later.kind if self.kind == NULL else "mixed")
        levels = None if self.levels is None or later.levels is None else \
            self.levels | later.levels
        if levels is not None and len(levels) > LEVELS_CAP:
            levels = None
        counting = self.counting and later.counting and (
            self.last is None or later.last is None or later.lo == self.last + 1
            or later.rows == 0)
        return ColumnSurvey(
            kind, self.rows + later.rows, self.present + later.present,
            self.dot_numbers + later.dot_numbers, self.comma_numbers + later.comma_numbers,
            self.integers + later.integers, self.codes + later.codes,
            self.dates + later.dates, min(self.lo, later.lo), max(self.hi, later.hi),
            counting, later.last if later.last is not None else self.last, levels,
            self.repeats or later.repeats or (levels is not None and self.levels is not None
                                              and later.levels is not None and
                                              len(levels) < len(self.levels) +
                                              len(later.levels)),
            self.example if self.example is not None else later.example)

    def numbers(self, decimal: str) -> int:
        """Present cells that spell a number with ``decimal`` as the decimal separator."""
        return self.dot_numbers if decimal == "." else self.comma_numbers


@dataclass
class Survey:
    """The surveys of every column of an input, in its column order."""

    columns: dict[str, ColumnSurvey] = field(default_factory=dict)
    rows: int = 0

    @classmethod
    def of(cls, batches: Iterable[pa.RecordBatch | pa.Table], schema: pa.Schema | None = None
           ) -> Survey:
        """Survey every batch of an input (a table counts as one batch)."""
        survey = cls()
        if schema is not None:
            survey._start(schema)
        for batch in batches:
            survey.add(batch)
        return survey

    def _start(self, schema: pa.Schema) -> None:
        for f in schema:
            if f.name not in self.columns:
                # a key first seen now was missing from every row before
                self.columns[f.name] = ColumnSurvey(storage_kind(f.type), rows=self.rows,
                                                    counting=self.rows == 0)

    def add(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Count the cells of the next rows."""
        self._start(batch.schema)
        for name, survey in self.columns.items():
            if name in batch.schema.names:
                survey.add(batch.column(name))
            else:  # a key a JSON line leaves out is missing there
                survey.rows += batch.num_rows
                survey.counting = False
        self.rows += batch.num_rows

    def merge(self, later: Survey) -> Survey:
        """This survey followed by ``later``'s (the next part of the same data set)."""
        out = Survey(dict(self.columns), self.rows + later.rows)
        for name, s in later.columns.items():
            mine = out.columns.get(name, ColumnSurvey(NULL, rows=self.rows,
                                                      counting=self.rows == 0))
            out.columns[name] = mine.merge(s)
        for name in set(out.columns) - set(later.columns):  # missing from the later rows
            out.columns[name] = out.columns[name].merge(ColumnSurvey(NULL, rows=later.rows,
                                                                     counting=False))
        return out

    @property
    def names(self) -> list[str]:
        """Column names, in input order."""
        return list(self.columns)
