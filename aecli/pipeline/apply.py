"""Apply a trained model to a stream of record batches: encode and reconstruct (scores are in
:mod:`.score`).

Each function takes the batches of an input table and yields output batches (pass-through
columns first), so that memory does not grow with the number of rows. Totals for the
per-feature error table accumulate in an :class:`ErrorTotals` as the stream goes by.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ..blas_threads import tuned
from ..errors import naming_input
from ..estimators.scoring import row_errors
from ..nn import Workspace
from ..preprocessing import BatchBuffers, Prepared, match_model_columns
from .bundle import ModelBundle


@dataclass
class ErrorTotals:
    """Running sums of squared reconstruction error per feature (scaled and original units)."""

    rows: int = 0
    dropped: int = 0
    imputed: int = 0  # cells filled in, which count toward no error
    scaled: np.ndarray | None = None
    original: np.ndarray | None = None
    observed: np.ndarray | None = None  # (d,) cells observed per feature

    def add(self, bundle: ModelBundle, sq_err: np.ndarray, imputed: np.ndarray | None = None
            ) -> None:
        """Add a batch's per-cell squared errors (m, d), 0 for its ``imputed`` cells."""
        s = sq_err.sum(axis=0, dtype=np.float64)
        o = bundle.original_units(s)  # a column's scale factors out of its sum
        seen = np.full(sq_err.shape[1], sq_err.shape[0], dtype=np.int64)
        if imputed is not None:
            missed = imputed.sum(axis=0)
            seen -= missed
            self.imputed += int(missed.sum())
        self.scaled = s if self.scaled is None else self.scaled + s
        self.original = o if self.original is None else self.original + o
        self.observed = seen if self.observed is None else self.observed + seen
        self.rows += sq_err.shape[0]

    def means(self) -> tuple[list[float], list[float]]:
        """Mean squared error per feature over its observed cells: (scaled, original units)."""
        if self.scaled is None:
            return [], []
        n = np.maximum(self.observed, 1)
        return (self.scaled / n).tolist(), (self.original / n).tolist()


def check_columns(bundle: ModelBundle, schema: pa.Schema, name: str) -> None:
    """Fail early, naming them, when the input lacks any of the model's columns."""
    with naming_input(name):
        match_model_columns(schema.names, bundle.features)


def output_name(name: str, keep: list[str], suffix: str) -> str:
    """The name of a computed column: ``name``, or ``name + suffix`` when a pass-through
    column already has it (``--keep x`` on ``reconstruct`` gives ``x`` and
    ``x_reconstructed``), so that no output has two columns of one name."""
    while name in keep:
        name += suffix
    return name


def output_batch(batch: pa.RecordBatch, keep: list[str], mask, columns: dict,
                 suffix: str = "_aecli") -> pa.RecordBatch:
    """An output batch: the pass-through columns ``keep`` of the rows kept (``mask``), then
    ``columns`` (named by :func:`output_name` with ``suffix``)."""
    arrays, names = [], []
    for c in keep:
        col = batch.column(c)
        arrays.append(col if mask is None else col.filter(pa.array(mask)))
        names.append(c)
    for c, values in columns.items():
        arrays.append(_arrow(values))
        names.append(output_name(c, keep, suffix))
    return pa.RecordBatch.from_arrays(arrays, names=names)


_ARROW_FLOATS = {np.dtype(np.float32): pa.float32(), np.dtype(np.float64): pa.float64()}


def _arrow(values) -> pa.Array:
    """An Arrow array of ``values``; a contiguous float column is wrapped without a copy.

    ``pa.array`` on a NumPy array first imports pandas (a fifth of a second for every run of
    a command); the codes and reconstructions, the bulk of the output, do not need it.
    """
    if isinstance(values, pa.Array):
        return values
    if isinstance(values, np.ndarray) and values.dtype in _ARROW_FLOATS and values.ndim == 1:
        values = np.ascontiguousarray(values)
        buffer = pa.py_buffer(values)  # keeps ``values`` alive as long as the array
        return pa.Array.from_buffers(_ARROW_FLOATS[values.dtype], len(values), [None, buffer])
    return pa.array(values)


class BatchPreparer:
    """Input batches → the model's scaled rows, through the model's one preparation path,
    with the arrays of a stream reused from batch to batch."""

    def __init__(self, bundle: ModelBundle, name: str, totals: ErrorTotals, first_row: int = 0):
        self.bundle, self.name, self.totals = bundle, name, totals
        self.buffers = BatchBuffers()
        self.workspace = Workspace()  # for the network's arithmetic on these rows
        self.offset = first_row  # rows of the input before the next batch

    def __call__(self, batch: pa.RecordBatch) -> tuple[Prepared, int]:
        """The prepared rows of ``batch`` (see :class:`aecli.preprocessing.Prepared`) and the
        rows before it. The matrix is only valid until the next call."""
        offset = self.offset
        with naming_input(self.name):
            prepared = self.bundle.prepare(batch, offset, self.buffers)
        self.offset += batch.num_rows
        if prepared.keep is not None:
            self.totals.dropped += int((~prepared.keep).sum())
        return prepared, offset


def _rows(batch: pa.RecordBatch) -> int:
    return batch.num_rows


def encode_stream(bundle: ModelBundle, batches: Iterable[pa.RecordBatch], keep: list[str],
                  name: str, totals: ErrorTotals, first_row: int = 0
                  ) -> Iterator[pa.RecordBatch]:
    """Codes ``z1..zk`` for each input batch (``first_row``: rows of the whole input before
    these, for messages; a partition of a data set starts past 0)."""
    prepare = BatchPreparer(bundle, name, totals, first_row)
    for batch in tuned(batches, _rows):
        (xs, mask, _), offset = prepare(batch)
        Z = bundle.encode_scaled(xs, prepare.workspace)  # (m, k)
        with naming_input(name):
            bundle.check_overflow(xs, Z, offset, mask)
        totals.rows += Z.shape[0]
        columns = np.ascontiguousarray(Z.T)  # (k, m): each code's values side by side for Arrow
        yield output_batch(batch, keep, mask, {f"z{j + 1}": z for j, z in enumerate(columns)},
                           "_code")


def reconstruct_stream(bundle: ModelBundle, batches: Iterable[pa.RecordBatch], keep: list[str],
                       name: str, totals: ErrorTotals, error_column: bool,
                       probabilities: bool = False, first_row: int = 0):
    """Reconstructions in original units under the model's column names (a categorical
    column's most probable level, with ``probabilities`` also its probability); optionally
    each row's mean error (scaled space, over its observed cells) in a column ``error``;
    ``first_row`` as in :func:`encode_stream`."""
    prepare = BatchPreparer(bundle, name, totals, first_row)
    for batch in tuned(batches, _rows):
        (xs, mask, imputed), offset = prepare(batch)
        xs_hat, sq = bundle.through_scaled(xs, prepare.workspace, imputed)
        with naming_input(name):
            bundle.check_overflow(xs, xs_hat, offset, mask)
        totals.add(bundle, sq, imputed)
        cols = bundle.preparation.decoded(xs_hat, probabilities)
        if error_column:
            cols["error"] = row_errors(sq, imputed)
        yield output_batch(batch, keep, mask, cols, "_reconstructed")
