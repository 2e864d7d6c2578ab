"""Training on data larger than memory: the table is read anew for every pass.

A first pass checks every row (infinity, the missing-value policy), splits rows between
training and validation, and keeps a uniform sample of the training rows. The scaler, the
imputation means and the PCA reference are fitted on that sample; validation rows are kept in
memory up to a cap. Every epoch then streams the training rows again, through the shuffle
buffer of :func:`aecli.nn.training.chunked_batches`, and, when the reader can (a Parquet file's
row groups), in a fresh random order of its parts, so that a file sorted by date mixes even
when it is larger than the buffer. Whether a row is held out is a function of its row number
alone, so any order of reading splits the same rows. Memory is bounded by the sample, the
validation rows, the shuffle buffer and one chunk, whatever the table's length.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError
from ..estimators import Autoencoder, Hyperparameters
from ..estimators.rows import held_out, split_seed, take
from ..preprocessing import Categorical, MissingPolicy, Preparation, RawRows, screen
from ..preprocessing.categorical import as_text, check_levels
from .bundle import ModelBundle
from .reference import Reference
from .sampled_evidence import RowSample, add_streamed_evidence
from .train import Fitting, pca_error, preservation, training_summary

SAMPLE_ROWS = 200_000  # training rows sampled to fit the scaler, the imputer and the PCA reference
VALIDATION_ROWS = 100_000  # most validation rows kept in memory; later ones are only left out

ReadChunks = Callable[[], Iterable[np.ndarray]]


@dataclass(frozen=True)
class ChunkSource:
    """A table read anew on every call, in the file's order (``read()``), and, when the
    format allows it, in a random order of its parts (``shuffled(rng)`` yields
    ``(first row number, RawRows)``, 0-based)."""

    read: Callable[[], Iterable[RawRows]]
    shuffled: Callable[[np.random.Generator], Iterable[tuple[int, RawRows]]] | None = None

    def __call__(self) -> Iterable[RawRows]:
        return self.read()


@dataclass
class Survey:
    """What the first pass found."""

    rows_train: int = 0
    rows_dropped: int = 0
    cells_imputed: int = 0
    sample: RawRows | None = None  # (<= SAMPLE_ROWS) raw training rows
    keys: np.ndarray | None = None  # their sampling keys: the smallest keys are kept
    validation: list = field(default_factory=list)  # raw validation chunks (RawRows)
    validation_rows: list = field(default_factory=list)  # their input row numbers
    levels: dict = field(default_factory=dict)  # categorical column → its values seen
    reference: Reference | None = None  # every row's, for drift (see .reference)
    evidence: RowSample = field(default_factory=RowSample)  # for the combined score

    def add_sample(self, rows: RawRows, keys: np.ndarray) -> None:
        """Keep the ``SAMPLE_ROWS`` rows with the smallest keys (a uniform sample)."""
        if self.sample is not None:
            rows = RawRows.concatenate([self.sample, rows])
            keys = np.concatenate([self.keys, keys])
        if len(keys) > SAMPLE_ROWS:
            best = np.argpartition(keys, SAMPLE_ROWS)[:SAMPLE_ROWS]
            rows, keys = rows.take(best), keys[best]
        self.sample, self.keys = rows, keys

    def add_levels(self, rows: RawRows) -> None:
        """Note the values of the categorical columns of training ``rows``."""
        if rows.categorical is None:
            return
        import pyarrow.compute as pc  # imported when needed: 40 ms that numeric runs never use

        for name in rows.categorical.schema.names:
            column = as_text(rows.categorical.column(name))
            seen = self.levels.setdefault(name, set())
            seen.update(pc.unique(column).to_pylist())

    def categorical(self) -> list[Categorical]:
        """The levels seen, as :meth:`Categorical.fit` orders them."""
        for name, seen in self.levels.items():
            check_levels(name, len(seen))
        return [Categorical(name, tuple(sorted(v for v in seen if v is not None))
                            + ((None,) if None in seen else ()))
                for name, seen in self.levels.items()]


def survey(read_chunks: ReadChunks, names, policy: MissingPolicy, fraction: float,
           seed: int) -> Survey:
    """The first pass: check every row, split, sample, and keep validation rows."""
    s, policy = Survey(), MissingPolicy(policy)
    keys_rng = np.random.default_rng([seed, 2])
    offset, kept_val = 0, 0
    for raw in read_chunks():
        raw = raw if isinstance(raw, RawRows) else RawRows(raw)
        part = Reference.of(raw, names, () if raw.categorical is None else
                            raw.categorical.schema.names, offset)
        s.reference = part if s.reference is None else s.reference.merge(part)
        keep = screen(raw.numeric, names, policy, row_offset=offset)
        val = held_out(seed, fraction, offset, len(raw))
        rows = np.arange(offset + 1, offset + len(raw) + 1)
        offset += len(raw)
        X = raw
        if keep is not None:
            s.rows_dropped += int((~keep).sum())
            X, val, rows = raw.take(keep), val[keep], rows[keep]
        elif policy is MissingPolicy.IMPUTE:
            s.cells_imputed += int(np.isnan(raw.numeric).sum())
        train_rows = X.take(~val)
        s.rows_train += len(train_rows)
        s.add_sample(train_rows, keys_rng.random(len(train_rows)))
        s.evidence = s.evidence.merge(RowSample.of(train_rows, rows[~val] - 1, seed))
        s.add_levels(train_rows)
        if kept_val < VALIDATION_ROWS and val.any():
            room = VALIDATION_ROWS - kept_val
            s.validation.append(X.take(np.flatnonzero(val)[:room]))
            s.validation_rows.append(rows[val][:room])
            kept_val += len(s.validation[-1])
    if s.rows_train < 2:
        raise DataError(f"{s.rows_train} row(s) to train on; training needs at least 2",
                        hint="give more rows, or a smaller --validation")
    return s


def train_bundle_streaming(read_chunks: ReadChunks, names: list[str], params: dict,
                           **fitting) -> ModelBundle:
    """Like :func:`aecli.pipeline.train.train_bundle`, but reading the rows anew for every pass.

    ``read_chunks()`` returns an iterable of :class:`RawRows` (numeric values NaN where
    missing, and the categorical columns), the same rows in the same order each time it is
    called; a :class:`ChunkSource` that can also read its parts in a random order is read so
    for every epoch. The levels of the categorical columns are every value the training rows
    hold. ``fitting`` holds the keywords of :class:`aecli.pipeline.train.Fitting`.
    """
    f = Fitting(**fitting)
    missing, scale, bad_values, callback, info = (f.missing, f.scale, f.bad_values,
                                                  f.callback, f.info)
    started = time.perf_counter()
    # the validation fraction: 0 rows of the count matter here, only the optimizer's kind
    hp = Hyperparameters(**params).resolved(0, streamed=True)
    split = split_seed(hp.seed)  # one split for every pass
    s = survey(read_chunks, names, missing, hp.validation, split)
    prep = Preparation.fit(s.sample, names, missing=missing, scale=scale, dtype=hp.dtype,
                           levels=s.categorical(), bad_values=bad_values)
    X_val = val_rows = None
    if s.validation:
        val_rows = prep.transform(RawRows.concatenate(s.validation),
                                  rows=np.concatenate(s.validation_rows))
        X_val = val_rows.X

    passes = iter(range(1 << 62))

    def in_file_order() -> Iterator[tuple[int, RawRows]]:
        offset = 0
        for raw in read_chunks():
            yield offset, raw
            offset += len(raw)

    def training_chunks() -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        shuffled = read_chunks.shuffled if isinstance(read_chunks, ChunkSource) else None
        parts = in_file_order() if shuffled is None else shuffled(
            np.random.default_rng([hp.seed or 0, 3, next(passes)]))
        for offset, raw in parts:
            val = held_out(split, hp.validation, offset, len(raw))
            X, keep, gaps = prep.transform(raw, offset)
            mine = ~(val if keep is None else val[keep])
            yield X[mine], take(gaps, mine)  # with the cells filled in (None: none)

    ae = Autoencoder(**params)
    ae.fit_chunks(training_chunks, validation_data=X_val, callback=callback,
                  n_rows=s.rows_train, groups=prep.groups,
                  validation_imputed=None if val_rows is None else val_rows.imputed)
    add_streamed_evidence(ae, prep, s.evidence, val_rows)
    seconds = time.perf_counter() - started
    scaled_sample = prep.transform(s.sample).X
    X_eval = X_val if X_val is not None else scaled_sample
    summary = training_summary(ae, s.rows_train, 0 if X_val is None else len(X_val),
                               s.rows_dropped,
                               pca_error(scaled_sample, X_eval, ae.latent, prep.groups),
                               seconds, streamed=True, cells_imputed=s.cells_imputed,
                               neighbors=preservation(ae, scaled_sample, X_eval))
    return ModelBundle(ae, prep, dict(info or {}), summary, s.reference)
