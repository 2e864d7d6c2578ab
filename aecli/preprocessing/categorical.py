"""Categorical columns: their levels, learnt at training, and the one-hot blocks of a chunk.

A column's values are compared as text, whatever the input format stored them as (string,
dictionary, or numbers forced with ``--categorical``), so that a level read from CSV matches
the same level read from Parquet. A missing value is a level of its own when training saw
one. A value training never saw is no error: its block is all zeros, which the network's
loss counts as that column's largest error (:data:`aecli.nn.losses.UNSEEN_ERROR`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ..errors import DataError
from ..io.survey import missing_mask

__all__ = ["ONE_HOT_LIMIT", "Categorical", "as_text", "check_levels", "distinct_count"]

# Most levels one column may be one-hot encoded with, even when forced: its block takes one
# float per level per row (1M rows x 1,000 levels: 4 GB in float32).
ONE_HOT_LIMIT = 1000


def check_levels(name: str, count: int) -> None:
    """Refuse a categorical column of more than ``ONE_HOT_LIMIT`` levels.

    Raises
    ------
    DataError
        With the count, and what to do instead.
    """
    if count > ONE_HOT_LIMIT:
        raise DataError(
            f"column {name!r} has {count:,} distinct values: one-hot encoding more than "
            f"{ONE_HOT_LIMIT:,} levels is refused (each would be a column of the network)",
            hint=f"leave it out (--exclude {name}), or group its rare values into one before "
            "training")


def as_text(column: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    """A column's values as Arrow strings (dictionaries decoded, numbers and booleans as
    text); nulls, and text that is a missing-value token (``aecli.io.formats.NULL_VALUES``,
    the same set in every format), are missing."""
    import pyarrow.compute as pc  # imported when needed: 40 ms that numeric runs never use

    if isinstance(column, pa.Array):
        column = pa.chunked_array([column], type=column.type)
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return pc.cast(column, pa.string())
    # the missing-value tokens (empty, NA, null, ...) are missing in every format
    chunks = [pc.if_else(missing_mask(c), pa.scalar(None, c.type), c) for c in column.chunks]
    return pa.chunked_array(chunks, type=column.type)


def distinct_count(column: pa.Array | pa.ChunkedArray) -> int:
    """Distinct non-missing values of a column."""
    import pyarrow.compute as pc

    return int(pc.count_distinct(column, mode="only_valid").as_py())


@dataclass(frozen=True)
class Categorical:
    """One categorical column: its name and levels (text; None is the missing level)."""

    name: str
    levels: tuple[str | None, ...]

    @classmethod
    def fit(cls, name: str, column: pa.Array | pa.ChunkedArray) -> Categorical:
        """The levels of a training column: its distinct values in sorted order, then the
        missing level when it has gaps."""
        import pyarrow.compute as pc

        text = as_text(column)
        values = sorted(v for v in pc.unique(text).to_pylist() if v is not None)
        if text.null_count:
            values.append(None)
        check_levels(name, len(values))
        return cls(name, tuple(values))

    @property
    def size(self) -> int:
        """How many levels, hence one-hot columns."""
        return len(self.levels)

    def codes(self, column: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Each value's level index (n,), int64; -1 for a value training never saw (and for
        a missing value when training saw none)."""
        import pyarrow.compute as pc

        text = as_text(column)
        known = [v for v in self.levels if v is not None]
        index = pc.index_in(text, value_set=pa.array(known, type=pa.string()))
        codes = np.asarray(index.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
        if None in self.levels and text.null_count:
            nulls = np.asarray(text.is_null().to_numpy(zero_copy_only=False), dtype=bool)
            codes[nulls] = self.levels.index(None)
        return codes

    def one_hot(self, column: pa.Array | pa.ChunkedArray, out: np.ndarray) -> np.ndarray:
        """Write the one-hot block of ``column`` into ``out`` (n, size), zeroed first; returns
        the codes (see :meth:`codes`)."""
        codes = self.codes(column)
        out[...] = 0
        seen = np.flatnonzero(codes >= 0)
        out[seen, codes[seen]] = 1
        return codes

    def labels(self, probabilities: np.ndarray) -> tuple[list[str | None], np.ndarray]:
        """The most probable level of each row of ``probabilities`` (n, size), and its
        probability."""
        best = np.argmax(probabilities, axis=1)
        return [self.levels[i] for i in best.tolist()], probabilities[np.arange(len(best)),
                                                                       best]

    def to_dict(self) -> dict:
        """Plain JSON, for the model file."""
        return {"name": self.name, "levels": list(self.levels)}

    @classmethod
    def from_dict(cls, d: dict) -> Categorical:
        """Rebuild from :meth:`to_dict`'s form, checking it."""
        name, levels = d.get("name"), d.get("levels")
        if not isinstance(name, str) or not name or not isinstance(levels, list) or not levels:
            raise ValueError("a categorical column needs a name and a list of levels")
        if not all(v is None or isinstance(v, str) for v in levels) or len(set(levels)) != len(
                levels) or levels.count(None) > 1:
            raise ValueError(f"the levels of {name!r} are not distinct text values")
        return cls(name, tuple(levels))


def describe_levels(categorical: Sequence[Categorical]) -> str:
    """``cut (5 levels), color (7 levels)``."""
    return ", ".join(f"{c.name} ({c.size} levels)" for c in categorical)
