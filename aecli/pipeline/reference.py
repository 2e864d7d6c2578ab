"""The training data's reference for ``aecli drift``: bounded, mergeable per-column sketches.

Every training path (in memory, ``--stream``, a cluster's partitions) reads the same rows
under the same row numbers, and each adds them here before any is dropped or split:

- per numeric column, the count of missing cells and a sample of at most
  :data:`SAMPLE_VALUES` present values: those whose rows have the smallest keys, a key being
  a hash of the row's number in the whole input (splitmix64). A bottom-k sample keyed by the
  row number is uniform and does not depend on the order in which parts arrive or how the
  input is cut, so two sketches merge exactly into the sketch of their rows together, and
  the three paths store the same reference, bit for bit;
- per categorical column, the count of every value, a missing value being the level
  ``None`` (categorical columns hold at most ``--max-levels`` levels).

The calibration scores, the other half of the reference, are the model's own
(:class:`aecli.estimators.calibration.ScoreDistribution`). The model file stores the sketch
as three arrays and one metadata record (:meth:`Reference.arrays`, :meth:`Reference.meta`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..preprocessing import RawRows

__all__ = ["SAMPLE_VALUES", "Reference", "row_keys"]

#: Present values sampled per numeric column: the most any column stores, whatever the rows.
SAMPLE_VALUES = 2048


def row_keys(first_row: int, n: int) -> np.ndarray:
    """The sampling keys (n,) uint64 of rows ``first_row .. first_row + n - 1`` (0-based in
    the whole input): splitmix64 of the row number, a bijection, so no two rows tie."""
    with np.errstate(over="ignore"):
        z = np.arange(first_row, first_row + n, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _smallest(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``SAMPLE_VALUES`` pairs with the smallest keys, ordered by key."""
    if len(keys) > SAMPLE_VALUES:
        best = np.argpartition(keys, SAMPLE_VALUES - 1)[:SAMPLE_VALUES]
        keys, values = keys[best], values[best]
    order = np.argsort(keys, kind="stable")
    return keys[order], values[order]


@dataclass
class Reference:
    """What the training rows held, per column (see the module)."""

    numeric: tuple[str, ...]
    rows: int = 0
    missing: np.ndarray | None = None  # (d,) int64: missing cells per numeric column
    keys: list = field(default_factory=list)  # per numeric column: its sample's keys
    values: list = field(default_factory=list)  # per numeric column: its sample's values
    levels: dict = field(default_factory=dict)  # categorical column -> {level: count}

    def __post_init__(self):
        d = len(self.numeric)
        if self.missing is None:
            self.missing = np.zeros(d, dtype=np.int64)
        if not self.keys:
            self.keys = [np.zeros(0, dtype=np.uint64) for _ in range(d)]
            self.values = [np.zeros(0) for _ in range(d)]

    @classmethod
    def of(cls, raw: RawRows, numeric, categorical=(), first_row: int = 0) -> Reference:
        """The sketch of ``raw``'s rows, the first of them ``first_row`` (0-based) of the
        whole input; ``numeric`` names the matrix's columns, ``categorical`` the columns of
        ``raw.categorical`` to count."""
        X = np.asarray(raw.numeric, dtype=np.float64)  # (n, d)
        keys = row_keys(first_row, len(X))
        present = ~np.isnan(X)
        ref = cls(tuple(numeric), len(X), (~present).sum(axis=0).astype(np.int64))
        for j in range(X.shape[1]):
            ref.keys[j], ref.values[j] = _smallest(keys[present[:, j]], X[present[:, j], j])
        for name in categorical:
            ref.levels[name] = _counts(raw.categorical.column(name))
        return ref

    def merge(self, other: Reference) -> Reference:
        """The sketch of both sketches' rows (in any order: the result is the same)."""
        keys, values = [], []
        for j in range(len(self.numeric)):
            k, v = _smallest(np.concatenate([self.keys[j], other.keys[j]]),
                             np.concatenate([self.values[j], other.values[j]]))
            keys.append(k)
            values.append(v)
        levels = {}
        for name in dict.fromkeys([*self.levels, *other.levels]):
            mine, theirs = self.levels.get(name, {}), other.levels.get(name, {})
            levels[name] = {v: mine.get(v, 0) + theirs.get(v, 0)
                            for v in dict.fromkeys([*mine, *theirs])}
        return Reference(self.numeric, self.rows + other.rows, self.missing + other.missing,
                         keys, values, levels)

    def sample(self, j: int) -> np.ndarray:
        """The sampled present values of numeric column ``j``, sorted."""
        return np.sort(self.values[j])

    # -- the model file ----------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        """The model file's arrays: each column's sorted sample, one after another, and the
        sample sizes and missing counts per numeric column."""
        return {"reference.values": np.concatenate(
                    [self.sample(j) for j in range(len(self.numeric))] or [np.zeros(0)]),
                "reference.counts": np.array([len(v) for v in self.values], dtype=np.float64),
                "reference.missing": self.missing.astype(np.float64)}

    def meta(self) -> dict:
        """The model file's metadata record: rows, the sample's bound, level counts."""
        out = {}
        for name, counts in self.levels.items():  # most common first, then by name
            ranked = sorted(counts.items(), key=lambda vc: (-vc[1], vc[0] is None, vc[0] or ""))
            out[name] = {"levels": [v for v, _ in ranked], "counts": [int(c) for _, c in ranked]}
        return {"rows": int(self.rows), "sample_values": SAMPLE_VALUES, "categorical": out}

    @classmethod
    def from_file(cls, record: dict, arrays: dict[str, np.ndarray], numeric, categorical
                  ) -> Reference:
        """The reference a model file stores (``record``: :meth:`meta`'s; ``arrays``: the
        three of :meth:`arrays`). Raises ValueError when they do not fit together."""
        counts = arrays["reference.counts"]
        values, missing = arrays["reference.values"], arrays["reference.missing"]
        rows = record["rows"]
        if not isinstance(rows, int) or rows < 0 or np.any(counts < 0) or np.any(
                counts > SAMPLE_VALUES) or np.any(counts != np.round(counts)) or \
                int(counts.sum()) != len(values) or np.any(missing + counts > rows):
            raise ValueError("the drift reference's sample sizes do not fit its arrays")
        ends = np.cumsum(counts.astype(np.int64))
        parts = np.split(values, ends[:-1]) if len(counts) else []
        levels = {}
        for name in categorical:
            entry = record["categorical"][name]
            if len(entry["levels"]) != len(entry["counts"]) or not all(
                    isinstance(c, int) and c >= 0 for c in entry["counts"]):
                raise ValueError(f"the drift reference of column {name!r} is inconsistent")
            levels[name] = dict(zip(entry["levels"], entry["counts"], strict=True))
        keys = [np.zeros(len(p), dtype=np.uint64) for p in parts]  # not stored: no merging
        return cls(tuple(numeric), rows, missing.astype(np.int64), keys,
                   [np.asarray(p, dtype=np.float64) for p in parts], levels)


def _counts(column) -> dict:
    """Each value's count in a categorical column read as the model reads it (text; a
    missing value is ``None``), most common first."""
    import pyarrow.compute as pc

    from ..preprocessing.categorical import as_text

    counted = pc.value_counts(as_text(column))
    values = counted.field("values").to_pylist()
    counts = counted.field("counts").to_pylist()
    return dict(zip(values, counts, strict=True))
