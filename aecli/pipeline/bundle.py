"""A trained model as users see it: its preparation (columns, gaps, scaling) and autoencoder.

Raw rows go in — a table chunk or an array in original units — and codes, reconstructions in
original units, and errors come out. This is what ``aecli train`` saves and every other command
loads. Every way in goes through :meth:`aecli.preprocessing.Preparation.transform`; every
error and score is the estimator's (:meth:`aecli.Autoencoder.score_parts`), not computed here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError
from ..estimators import Autoencoder
from ..estimators.calibration import ScoreDistribution
from ..estimators.ensemble import ScoreParts
from ..estimators.scoring import row_errors
from ..nn import Workspace
from ..preprocessing import BatchBuffers, Preparation, Prepared, missing_warnings
from .reference import Reference


@dataclass
class ModelBundle:
    """An autoencoder with the preparation that feeds it.

    Parameters
    ----------
    autoencoder : Autoencoder
        Fitted on scaled data.
    preparation : Preparation
        The model's columns, missing-value policy, imputation values and scaler.
    info : dict
        Plain-JSON facts about training (source, unused columns) for ``inspect``.
    summary : dict
        The training summary (see :func:`aecli.pipeline.train.training_summary`), stored once.
    reference : Reference, optional
        What the training rows held per column, for ``aecli drift``; None in model files
        written before aecli stored it.
    """

    autoencoder: Autoencoder
    preparation: Preparation
    info: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    reference: Reference | None = None

    @property
    def features(self) -> list[str]:
        """The model's columns, in order."""
        return self.preparation.features

    @property
    def dtype(self) -> np.dtype:
        """The autoencoder's float dtype."""
        return self.autoencoder.network_.dtype

    def prepare(self, chunk, row_offset: int = 0, buffers: BatchBuffers | None = None
                ) -> Prepared:
        """Scaled rows of a table chunk or raw array (see :meth:`Preparation.transform`)."""
        return self.preparation.transform(chunk, row_offset, buffers=buffers)

    def encode(self, X) -> np.ndarray:
        """Codes (n, k) of raw rows X (n, d) without dropped rows."""
        return self.encode_scaled(self.prepare(X).X)

    def encode_scaled(self, xs: np.ndarray, workspace: Workspace | None = None) -> np.ndarray:
        """Codes (n, k) of rows already scaled; a ``workspace`` reused from call to call saves
        allocating intermediates (see :meth:`aecli.nn.Network.encode`). A row too large for
        the network's dtype gives non-finite codes (see :meth:`check_overflow`)."""
        with np.errstate(over="ignore", invalid="ignore"):
            return self.autoencoder.network_.encode(xs, workspace)

    def reconstruct(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Reconstruct raw rows X (n, d).

        Returns
        -------
        X_hat : ndarray (n, d)
            Reconstruction in original units.
        sq_err : ndarray (n, d)
            Squared error per cell in the scaled space; 0 for a cell that was imputed.
        """
        prepared = self.prepare(X)
        return self.reconstruct_scaled(prepared.X, imputed=prepared.imputed)

    def reconstruct_scaled(self, xs: np.ndarray, workspace: Workspace | None = None,
                           imputed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`reconstruct` for rows already scaled (``imputed``: their cells that were
        filled in); ``workspace`` as in :meth:`encode_scaled`. Of the numeric columns only:
        :meth:`through_scaled` and :meth:`Preparation.decoded` give the categorical ones."""
        xs_hat, sq = self.through_scaled(xs, workspace, imputed)
        return self.preparation.unscale(xs_hat), sq

    def through_scaled(self, xs: np.ndarray, workspace: Workspace | None = None,
                       imputed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Scaled rows (n, width) through the network: the reconstruction (n, width; each
        categorical column's block as probabilities) and each table cell's error (n, d)
        (see :meth:`aecli.Autoencoder.cell_errors`). Imputed cells get none."""
        return self.autoencoder.cell_errors(xs, workspace, imputed)

    def errors(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Per-row mean squared error over the observed cells (n,) and per-cell squared error
        (n, d), scaled space."""
        prepared = self.prepare(X)
        return self.errors_scaled(prepared.X, imputed=prepared.imputed)

    def scores(self, X) -> np.ndarray:
        """Per-row anomaly scores (n,) of raw rows X: compared with the threshold."""
        prepared = self.prepare(X)
        return self.scored_scaled(prepared.X, imputed=prepared.imputed).scores

    def scored_scaled(self, xs: np.ndarray, workspace: Workspace | None = None,
                      imputed: np.ndarray | None = None) -> ScoreParts:
        """Rows already scaled, scored by the estimator with the parts ``score`` reports
        (see :meth:`aecli.Autoencoder.score_parts`); ``workspace`` as in
        :meth:`encode_scaled`."""
        return self.autoencoder.score_parts(xs, workspace, imputed)

    def errors_scaled(self, xs: np.ndarray, workspace: Workspace | None = None,
                      imputed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`errors` for rows already scaled; ``workspace`` as in :meth:`encode_scaled`."""
        _, sq = self.through_scaled(xs, workspace, imputed)  # no need for original units here
        return row_errors(sq, imputed), sq

    def original_units(self, sq_err: np.ndarray) -> np.ndarray:
        """Convert squared errors in the scaled space to squared errors in original units
        (..., d); a categorical column's error has no units and stays as it is."""
        scale = np.asarray(self.preparation.scaler.scale_, dtype=np.float64)
        scale = np.concatenate([scale, np.ones(len(self.preparation.categorical))])
        return sq_err * scale * scale

    def missing_warnings(self) -> list[str]:
        """Warnings when training's ``--missing`` policy imputed most of a column or dropped
        a large share of the rows (see :func:`aecli.preprocessing.missing_warnings`); none
        for a model read from a file."""
        s = self.summary
        kept = s.get("rows_train", 0) + s.get("rows_validation", 0)
        dropped = s.get("rows_dropped", 0)
        return missing_warnings(self.preparation.missing, self.preparation.numeric,
                                getattr(self.preparation.imputer, "missing_share_", None),
                                dropped, kept + dropped)

    def overflow_message(self, xs: np.ndarray, i: int, row: int) -> str:
        """Why the scaled row ``xs[i]`` (input row ``row``) has no finite result: the numeric
        column farthest from its training centre, which overflowed the network's dtype."""
        d = len(self.preparation.numeric)
        where = f"row {row}"
        if d == 0:
            return f"{where}: the network's {self.dtype.name} arithmetic overflowed"
        z = np.abs(xs[i, :d].astype(np.float64))
        j = int(np.argmax(np.where(np.isnan(z), -1.0, z)))
        scaler = self.preparation.scaler
        value = float(scaler.center_[j] + float(xs[i, j]) * scaler.scale_[j])
        return (f"{where}, column {self.features[j]!r}: the value {value:g}, {z[j]:.3g} "
                f"training scales from the column's centre, overflowed the network's "
                f"{self.dtype.name} arithmetic")

    def overflow_hint(self) -> str:
        """What to do about an overflow in the network."""
        wider = ("train the model with --dtype float64 (values to about 1e308), or "
                 if self.dtype == np.float32 else "")
        return (f"{wider}rescale the column (change its units), or filter such rows out "
                "first")

    def check_overflow(self, xs: np.ndarray, out: np.ndarray, first_row: int = 0,
                       keep: np.ndarray | None = None) -> None:
        """Raise DataError naming the input row and the column when a row of ``out`` (codes or
        reconstructions of the scaled rows ``xs``) is not finite: the network overflowed.

        ``first_row``: input rows before these; ``keep``: which rows of the input batch
        ``xs`` holds (None: all).
        """
        with np.errstate(over="ignore", invalid="ignore"):
            if np.isfinite(np.add.reduce(out, axis=None)):
                return
            bad = np.flatnonzero(~np.isfinite(out).all(axis=1))
        if len(bad) == 0:  # only the sum was too large
            return
        i = int(bad[0])
        row = int(i if keep is None else np.flatnonzero(keep)[i]) + 1 + first_row
        more = f" ({len(bad)} rows of this batch overflowed)" if len(bad) > 1 else ""
        raise DataError(self.overflow_message(xs, i, row) + more, hint=self.overflow_hint())

    def score_distribution(self) -> ScoreDistribution:
        """The calibration scores stored at training, which give each score its p-value
        (see :class:`aecli.estimators.calibration.ScoreDistribution`)."""
        ae = self.autoencoder
        return ScoreDistribution.from_quantiles(ae.score_quantiles_, ae.calibration_rows_)

    def percentile(self, scores: np.ndarray) -> np.ndarray:
        """100 x (1 - p-value) of each score (see :meth:`score_distribution`)."""
        return self.score_distribution().percentile(scores)
