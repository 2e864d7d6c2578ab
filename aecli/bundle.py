"""A trained model as users see it: imputation, scaler and autoencoder over named columns.

Arrays in original units go in; codes, reconstructions in original units, and errors come out.
This is what ``aecli train`` saves and every other command loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .model import Autoencoder
from .nn import Workspace


@dataclass
class ModelBundle:
    """An autoencoder with the preprocessing that feeds it.

    Parameters
    ----------
    autoencoder : Autoencoder
        Fitted on scaled data.
    scaler : fitted scaler
        With ``center_``/``scale_`` (see :mod:`aecli.preprocessing`); its kind in ``scaler_kind``.
    scaler_kind : str
    features : list of str
        The model's columns, in order.
    missing : str
        The missing-value policy used at training ("error", "drop" or "impute").
    fill : ndarray of shape (n_features,) or None
        Training means used to impute missing values (policy "impute").
    info : dict
        Plain-JSON facts about training (settings, metrics, sizes, time) for ``inspect``.
    """

    autoencoder: Autoencoder
    scaler: object
    scaler_kind: str
    features: list[str]
    missing: str = "error"
    fill: np.ndarray | None = None
    info: dict = field(default_factory=dict)

    @property
    def dtype(self) -> np.dtype:
        """The autoencoder's float dtype."""
        return self.autoencoder.network_.dtype

    def impute(self, X: np.ndarray) -> np.ndarray:
        """Fill NaNs with the training means when the model imputes; otherwise unchanged."""
        if self.fill is None:
            return X
        nan = np.isnan(X)
        if nan.any():
            X = np.where(nan, self.fill.astype(X.dtype), X)
        return X

    def scale(self, X: np.ndarray) -> np.ndarray:
        """Raw (n, d) → the scaled space the autoencoder works in, in the model's dtype."""
        return np.asarray(self.scaler.transform(self.impute(X)), dtype=self.dtype)

    def scale_column(self, j: int, values: np.ndarray, out: np.ndarray,
                     scratch: np.ndarray | None = None) -> None:
        """Scale raw ``values`` of feature ``j`` into ``out`` (same length, the model's dtype),
        giving exactly what :meth:`scale` gives for that column; NaN stays NaN.

        ``scratch``, float64 and as long as ``values``, saves allocating the intermediate."""
        shifted = np.subtract(values, self.scaler.center_[j], out=scratch, dtype=np.float64)
        np.divide(shifted, self.scaler.scale_[j], out=out, casting="same_kind")

    def encode(self, X: np.ndarray) -> np.ndarray:
        """Codes (n, k) of raw rows X (n, d)."""
        return self.encode_scaled(self.scale(X))

    def encode_scaled(self, xs: np.ndarray, workspace: Workspace | None = None) -> np.ndarray:
        """Codes (n, k) of rows already scaled (see :meth:`scale`); a ``workspace`` reused
        from call to call saves allocating intermediates (see :meth:`Network.encode`)."""
        return self.autoencoder.network_.encode(xs, workspace)

    def reconstruct(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reconstruct raw rows X (n, d).

        Returns
        -------
        X_hat : ndarray (n, d)
            Reconstruction in original units.
        sq_err : ndarray (n, d)
            Squared error per cell in the scaled space.
        """
        return self.reconstruct_scaled(self.scale(X))

    def reconstruct_scaled(self, xs: np.ndarray, workspace: Workspace | None = None
                           ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`reconstruct` for rows already scaled; ``workspace`` as in
        :meth:`encode_scaled`."""
        xs_hat, sq = self._through(xs, workspace)
        return np.asarray(self.scaler.inverse_transform(xs_hat)), sq

    def _through(self, xs: np.ndarray, workspace: Workspace | None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Scaled rows through the network: the reconstruction and the squared error per cell,
        both (n, d) in the scaled space."""
        net = self.autoencoder.network_
        xs_hat = net.decode(net.encode(xs, workspace), workspace)  # (n, d)
        diff = xs_hat - xs
        return xs_hat, np.multiply(diff, diff, out=diff)

    def errors(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-row mean squared error (n,) and per-cell squared error (n, d), scaled space."""
        return self.errors_scaled(self.scale(X))

    def errors_scaled(self, xs: np.ndarray, workspace: Workspace | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`errors` for rows already scaled; ``workspace`` as in :meth:`encode_scaled`."""
        _, sq = self._through(xs, workspace)  # no need for original units here
        return sq.mean(axis=1, dtype=np.float64), sq

    def original_units(self, sq_err: np.ndarray) -> np.ndarray:
        """Convert squared errors in the scaled space to squared errors in original units."""
        scale = np.asarray(self.scaler.scale_, dtype=np.float64)
        return sq_err * scale * scale

    def percentile(self, errors: np.ndarray) -> np.ndarray:
        """Percentile (0..100) of each error among the calibration errors stored at training."""
        q = self.autoencoder.error_quantiles_
        levels = np.linspace(0.0, 100.0, len(q))
        return np.interp(errors, q, levels)
