"""The combined score (:mod:`aecli.estimators.evidence`) of a fit that reads its rows in
passes: ``--stream`` on one machine, or a cluster's partitions on their workers.

In memory the evidence's column quantiles come from every training row and its reference
rows are drawn from them. A fit that reads its rows in passes holds a bounded sample
instead (:class:`RowSample`): the training rows with the smallest keys, a key being a hash
of the row's number in the whole input, salted by the seed (splitmix64, as the drift
reference's, :mod:`aecli.pipeline.reference`). A bottom-k sample keyed by row number is
uniform, and does not depend on the order rows arrive in or on how the input is cut into
chunks or partitions, so a stream and a cluster fitted with one seed hold the same rows,
bit for bit (each scales them with its own scaler). Its rows give the column quantiles (at
most ``COLUMN_LEVELS`` of them); its first ``REFERENCE_ROWS`` by key are the reference
rows, whose neighbours are sought.

The calibration rows are those the fit already calibrates its threshold on: the first
``KEPT_SCORES`` validation rows, which a stream holds and a cluster's workers score where
the rows are held, sending back four numbers a row (:func:`held_statistics`); without
validation rows, the sample's own rows, as a fit in memory calibrates on its own rows. The
threshold's floor is the sample's scores, training rows all.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..estimators.evidence import REFERENCE_ROWS, Evidence, use_evidence
from ..estimators.finish import KEPT_SCORES
from ..estimators.rows import CHUNK_ROWS
from ..estimators.scoring import ScoreBy
from ..preprocessing import Prepared, RawRows
from .reference import row_keys

# Cells (rows times columns) the sample holds at most, above its fewest rows: a few MB, as
# the drift reference's sample of every column does, in a stream and in each partition's
# survey.
SAMPLE_CELLS = 1 << 20
FEWEST_ROWS, MOST_ROWS = 2_048, 16_384  # rows the sample holds, by its width


def sample_keys(seed: int, numbers: np.ndarray) -> np.ndarray:
    """The sampling keys (n,) uint64 of rows numbered ``numbers`` (0-based in the whole
    input; a chunk's rows, so within a short range): splitmix64 of the number, salted by
    the seed, a bijection, so no two rows of one fit tie."""
    numbers = np.asarray(numbers, dtype=np.int64)
    if not len(numbers):
        return np.zeros(0, dtype=np.uint64)
    low = int(numbers.min())
    salt = (int(seed) % (1 << 30) + 1) << 33  # 2^33 rows apart: each seed its own keys
    return row_keys(salt + low, int(numbers.max()) - low + 1)[numbers - low]


def sample_rows(rows: RawRows) -> int:
    """How many rows the sample of rows as wide as ``rows`` holds."""
    width = rows.numeric.shape[1] + (0 if rows.categorical is None
                                     else rows.categorical.num_columns)
    return int(np.clip(SAMPLE_CELLS // max(width, 1), FEWEST_ROWS, MOST_ROWS))


@dataclass
class RowSample:
    """Training rows in original units, the :func:`sample_rows` with the smallest keys,
    ordered by key (see the module); merges exactly, in any order."""

    keys: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))  # (m,)
    rows: RawRows | None = None  # None: no rows yet

    @classmethod
    def of(cls, rows: RawRows, numbers: np.ndarray, seed: int) -> RowSample:
        """The sample of training ``rows`` numbered ``numbers`` (0-based in the input)."""
        return cls().merge(cls(sample_keys(seed, numbers), rows))

    def merge(self, other: RowSample) -> RowSample:
        """The sample of both samples' rows."""
        if other.rows is None or not len(other.keys):
            return self
        parts = [p for p in (self, other) if p.rows is not None and len(p.keys)]
        keys = np.concatenate([p.keys for p in parts])
        rows = RawRows.concatenate([p.rows for p in parts])
        order = np.argsort(keys, kind="stable")[:sample_rows(rows)]
        return RowSample(keys[order], rows.take(order))


def _chunks(xs: np.ndarray, imputed: np.ndarray | None):
    """``xs`` a ``CHUNK_ROWS`` rows at a time, each with its ``imputed`` cells (or None)."""
    for i in range(0, len(xs), CHUNK_ROWS):
        yield xs[i:i + CHUNK_ROWS], None if imputed is None else imputed[i:i + CHUNK_ROWS]


def statistics(ae, evidence: Evidence, xs: np.ndarray, imputed: np.ndarray | None = None
               ) -> tuple[np.ndarray, ...]:
    """The four statistics of scaled rows ``xs`` (n, width) under ``evidence`` (see
    :meth:`Evidence.statistics`), their autoencoder scores as ``aecli score`` gives them
    (the ``imputed`` cells left out), a chunk of rows at a time; ``ae`` has no evidence
    yet."""
    parts = []
    for x, gaps in _chunks(xs, imputed):
        scores = ae.score_parts(x, imputed=gaps).scores
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow shows in scores
            codes = ae.network_.encode(x)
        parts.append(evidence.statistics(scores, x, codes))
    if not parts:
        return tuple(np.zeros(0) for _ in range(4))
    return tuple(np.concatenate(p) for p in zip(*parts, strict=True))


def add_sampled_evidence(ae, sample: Prepared,
                         calibration: Callable[[Evidence], tuple | None]) -> None:
    """Give the fitted estimator ``ae`` the combined score from its ``sample`` (a
    :class:`RowSample`'s rows, by key, prepared) and its calibration rows' statistics, which
    ``calibration(evidence)`` returns (None: calibrate on the sample's own rows)."""
    xs = sample.X
    with np.errstate(over="ignore", invalid="ignore"):
        reference = ae.network_.encode(xs[:REFERENCE_ROWS])
    bare = Evidence.uncalibrated(xs, xs[:REFERENCE_ROWS], reference)
    stats = calibration(bare)
    if stats is None:  # calibrated on its own rows: their combined scores are known
        evidence, combined = bare.calibrated(statistics(ae, bare, xs, sample.imputed))
        own_combined = combined
    else:  # the sample's scores as aecli score gives them, the evidence in place
        evidence, combined = bare.calibrated(stats)
        ae.evidence_ = evidence
        own_combined = np.concatenate([ae.score_parts(x, imputed=gaps).scores
                                       for x, gaps in _chunks(xs, sample.imputed)])
    use_evidence(ae, evidence, combined, own_combined)


def held_statistics(held, ae, evidence: Evidence, keep: int) -> tuple[np.ndarray, ...]:
    """The four statistics of a partition's first ``keep`` validation rows (on a worker:
    only these travel back); ``held``: its rows (:class:`aecli.pipeline.cluster_workers.
    Held`, or a ``Reread`` that loads them)."""
    from .cluster_workers import loaded  # it imports this module (by cluster_survey)

    rows = loaded(held)
    imputed = rows.validation_imputed  # the cells score leaves out
    return statistics(ae, evidence, rows.validation[:keep],
                      None if imputed is None else imputed[:keep])


def _wanted(ae, preparation) -> bool:
    return ScoreBy(ae.score_by).with_evidence(bool(preparation.categorical))


def add_streamed_evidence(ae, preparation, sample: RowSample,
                          validation: Prepared | None) -> None:
    """Give a streamed fit ``ae`` the combined score where its ``score_by`` asks for it,
    from its ``sample`` and the ``validation`` rows it holds (None: it has none)."""
    if not _wanted(ae, preparation):
        return
    add_sampled_evidence(ae, preparation.transform(sample.rows), lambda bare: None
                         if validation is None or not len(validation.X) else
                         statistics(ae, bare, validation.X, validation.imputed))


def gather_surveys(futures: list) -> tuple[list, RowSample]:
    """The partitions' surveys (futures of :class:`aecli.pipeline.cluster_survey.PartSurvey`,
    gathered in their order) and their samples merged: each taken off its survey as it
    arrives, so that the client holds one sample, not one per partition."""
    from distributed import as_completed

    surveys, sample = [None] * len(futures), RowSample()
    where = {f.key: i for i, f in enumerate(futures)}
    for future in as_completed(futures):
        survey = future.result()
        sample, survey.sample = sample.merge(survey.sample), RowSample()
        surveys[where[future.key]] = survey
    return surveys, sample


def add_cluster_evidence(data, ae) -> None:
    """Give a cluster's fit ``ae`` the combined score where its ``score_by`` asks for it:
    the sample from the partitions' surveys (:func:`gather_surveys`); the statistics of the first
    ``KEPT_SCORES`` validation rows, as its threshold's, computed where they are held
    (``data``: an :class:`aecli.pipeline.train_cluster.OnCluster`)."""
    if not _wanted(ae, data.preparation):
        return
    counts = [s.rows_validation for s in data.surveys]
    keep = [min(c, max(0, KEPT_SCORES - sum(counts[:i]))) for i, c in enumerate(counts)]
    todo = [i for i, k in enumerate(keep) if k]

    def calibration(bare: Evidence) -> tuple | None:
        if not todo:
            return None
        job = f"{data.job}-{uuid.uuid4().hex[:6]}"
        parts = data.collect([data.client.submit(held_statistics, data.held[i], ae, bare,
                                                 keep[i], key=f"aecli-evidence-{job}-{i}")
                              for i in todo], [[i] for i in todo])
        return tuple(np.concatenate(p) for p in zip(*parts, strict=True))

    add_sampled_evidence(ae, data.preparation.transform(data.sample.rows), calibration)
