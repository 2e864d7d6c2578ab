"""The Autoencoder estimator: the seed idea ``model.fit(X, X)`` with scikit-learn's contract."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

import numpy as np

from ..blas_threads import scope
from ..errors import DataError, InvalidParameterError, TrainingError
from ..nn import Network, OptimizerKind, SoftmaxGroups, autoencoder_specs, make_optimizer
from ..nn.training import (
    EpochReport,
    chunked_batches,
    reconstruction_mse_rows,
    train,
    train_full_batch,
)
from ..nn.trimmed import trimmed_mean
from . import checks as v
from .base import ParamsMixin
from .calibration import quantile_rows
from .ensemble import Member, ScoreParts, mean_scores, score_parts
from .evidence import add_evidence, combined
from .finish import DTYPES, FOLDS, calibrate_out_of_fold, finish, own_and_held_out, stream_pass
from .hyperparameters import Hyperparameters
from .neighbors import in_memory_source, streamed_source
from .rows import chunked, sample_index, split, split_seed, stacked, take
from .scoring import CodeDistance, cell_errors, has_categorical, observed_errors

# Most training rows (a random sample of them) whose errors and codes give the training MSE,
# the code term's statistics and the threshold's floor: a forward pass over every row cost a
# fifth of a two-epoch fit of 131,072 rows, and a mean, a 16-D covariance or a 1% quantile
# are as good from 16,384 rows.
OWN_ROWS = 16_384


class Autoencoder(ParamsMixin):
    # The docstring is assembled below the class: its Parameters come from Hyperparameters.

    def __init__(self, **params):  # keyword-only, as Hyperparameters.signature() declares
        unknown = sorted(set(params) - set(_NAMES))
        if unknown:
            raise TypeError(f"Autoencoder() got an unexpected keyword argument {unknown[0]!r}")
        for name in _NAMES:
            setattr(self, name, params.get(name, _DEFAULTS[name]))

    __init__.__signature__ = Hyperparameters.signature()

    # -- validation -----------------------------------------------------------------------
    def _preserved_dtypes(self) -> list[str]:
        return [self.dtype] if self.dtype in DTYPES else ["float32"]

    def _checked(self, n_features: int | None = None) -> Hyperparameters:
        """The parameters validated (see :meth:`Hyperparameters.checked`)."""
        return Hyperparameters(**self.get_params()).checked(n_features)

    # -- fitting --------------------------------------------------------------------------
    @scope()  # BLAS threads: the tuned passes' latest choice holds between them
    def fit(
        self,
        X,
        y=None,
        callback: Callable[[EpochReport], None] | None = None,
        validation_data=None,
        groups: SoftmaxGroups | None = None,
        out_of_fold: bool = True,
        imputed=None,
        validation_imputed=None,
    ):
        """Train the autoencoder to reconstruct ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
            Present for scikit-learn compatibility; the target is ``X`` itself.
        callback : callable, optional
            Called after every epoch with an :class:`aecli.nn.training.EpochReport`, also
            after those of the out-of-fold calibration fits, whose ``phase`` names them.
        validation_data : array-like of shape (n_val, n_features), optional
            Held-out rows to monitor instead of splitting off ``validation`` of ``X``.
        groups : aecli.nn.SoftmaxGroups, optional
            Which last columns of ``X`` one-hot encode categorical columns: the network
            outputs a softmax over each block, trained with cross-entropy.
        out_of_fold : bool, default True
            When the held-out rows are too few for an empirical quantile at
            ``contamination``, calibrate the threshold on every row's out-of-fold score
            (``FOLDS`` more fits, see :mod:`aecli.estimators.calibration`). False keeps one
            fit, for a model whose threshold will not be used (``compare-pca``'s sweep).
        imputed, validation_imputed : ndarray of bool, shape (n, table columns), optional
            The filled-in cells of ``X``, ``validation_data``: calibration leaves them out.

        Returns
        -------
        self : Autoencoder

        Raises
        ------
        aecli.errors.TrainingError
            If the loss becomes NaN or infinite; the estimator is then left unfitted.
        """
        dtype = DTYPES[self._checked().dtype]
        arr = v.check_array(X, dtype, min_samples=2)
        X_val = None
        if validation_data is not None:
            X_val = v.check_array(validation_data, dtype, name="validation_data")
            if X_val.shape[1] != arr.shape[1]:
                raise InvalidParameterError(
                    f"validation_data has {X_val.shape[1]} features, X has {arr.shape[1]}")
        self._fit_rows(arr, X_val, v.feature_names_of(X), callback, groups, out_of_fold,
                       v.check_mask(imputed, arr, groups), v.check_mask(
                           validation_imputed, X_val, groups, "validation_imputed"))
        return self

    def _fit_rows(self, arr: np.ndarray, X_val, names, callback=None, groups=None,
                  out_of_fold: bool = True, imputed=None, val_imputed=None) -> None:
        """:meth:`fit` on checked rows (``val_imputed``: ``validation_imputed``); ``out_of_fold``:
        calibrate on out-of-fold scores when the held-out rows are too few for an empirical
        quantile at ``contamination``."""
        p = self._checked(arr.shape[1])
        rng = np.random.default_rng(p.seed)
        given = X_val is not None
        if X_val is None:
            p = p.resolved(len(arr))
            seed = split_seed(p.seed)
            (X_train, X_val), (m_train, val_imputed) = (split(arr, p.validation, seed),
                                                        split(imputed, p.validation, seed))
        else:
            p = replace(p, validation=0.0).resolved(len(arr))  # the held-out rows are given
            X_train, m_train = arr, imputed
        source = in_memory_source(X_train, p.neighbors, p.batch_size, rng)
        network, result = self._train(arr.shape[1], p, source, X_val, rng, callback, groups)
        pick = sample_index(len(X_train), max(OWN_ROWS, quantile_rows(p.contamination)), rng)
        sample, own_imputed = take(X_train, pick), take(m_train, pick)
        codes = np.empty((len(sample), p.latent), dtype=network.dtype)
        train_errors = reconstruction_mse_rows(network, sample, codes=codes)
        own_errors = observed_errors(network, sample, train_errors, own_imputed)  # as scored
        distance = CodeDistance.from_codes(codes, own_errors) \
            if p.score_by.with_code(has_categorical(groups)) else None
        # the model's own rows (in sample), and the held-out rows
        own, val_errors, val_scores = own_and_held_out(network, distance, own_errors, codes,
                                                       X_val, val_imputed)
        calibrating = len(own if val_scores is None else val_scores)
        rows = len(arr) + (len(X_val) if given else 0)
        folds = None
        if out_of_fold and calibrating < quantile_rows(p.contamination) and rows >= 2 * FOLDS:
            X_all = np.concatenate([arr, X_val]) if given else arr
            m_all = stacked(imputed, len(arr), val_imputed, len(X_val)) if given else imputed
            folds = calibrate_out_of_fold(self, X_all, groups, network, distance,
                                          float(np.median(own)), callback, m_all)
        finish(self, network, result, p, train_mse=trimmed_mean(train_errors), own=own,
               val_errors=val_errors, val_scores=val_scores, distance=distance, names=names,
               folds=folds)
        if out_of_fold and p.score_by.with_evidence(has_categorical(groups)):
            add_evidence(self, X_train, sample, (X_all, folds.calibration) if folds else
                         (sample, own) if val_scores is None else (X_val, val_scores),
                         own_imputed)

    @scope()
    def fit_chunks(
        self,
        chunks: Callable[[], Iterable[np.ndarray]],
        validation_data=None,
        callback: Callable[[EpochReport], None] | None = None,
        n_rows: int | None = None,
        groups: SoftmaxGroups | None = None,
        validation_imputed=None,
    ):
        """Train on rows read anew each epoch, for data larger than memory.

        Parameters
        ----------
        chunks : callable
            ``chunks()`` returns an iterable of arrays of shape (m_i, n_features): finite,
            already scaled, read afresh on every call, in the same order. Rows are mixed
            across chunks by a shuffle buffer (:func:`aecli.nn.training.chunked_batches`).
            An item may also be a pair (array, its imputed cells or None), as in :meth:`fit`.
        validation_data : array-like of shape (n_val, n_features), optional
            Held-out rows (in memory) for early stopping and the score calibration; without
            them, the first rows of the training data calibrate the threshold.
        callback : callable, optional
            Called after every epoch with an :class:`aecli.nn.training.EpochReport`.
        n_rows : int, optional
            How many rows the chunks hold, for the training budget when ``epochs`` is None;
            counted with one more pass when not given.
        groups, validation_imputed : optional
            As in :meth:`fit`.

        Returns
        -------
        self : Autoencoder
        """
        dtype = DTYPES[self._checked().dtype]

        def pairs() -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
            for chunk in chunks():
                x, imputed = chunk if isinstance(chunk, tuple) else (chunk, None)
                if len(x):
                    yield np.ascontiguousarray(x, dtype=dtype), imputed

        def checked() -> Iterator[np.ndarray]:
            return (x for x, _ in pairs())

        first = next(checked(), None)
        if first is None:
            raise DataError("no rows to train on", hint="give a table with rows")
        d = v.check_array(first, dtype).shape[1]
        p = self._checked(d)
        if p.epochs is None and n_rows is None:
            n_rows = sum(len(chunk) for chunk in checked())
        p = replace(p, validation=0.0).resolved(n_rows or 0, streamed=True)
        X_val = None
        if validation_data is not None:
            X_val = v.check_array(validation_data, dtype, name="validation_data")
        rng = np.random.default_rng(p.seed)
        source = chunked_batches(checked, p.batch_size)
        network, result = self._train(d, p, streamed_source(source, checked, p.neighbors, rng),
                                      X_val, rng, callback, groups)
        train_mse, distance, prefix_errors, prefix_codes = stream_pass(
            network, pairs, p, n_rows or source.rows, has_categorical(groups))
        own, val_errors, val_scores = own_and_held_out(  # own: a prefix
            network, distance, prefix_errors, prefix_codes, X_val, validation_imputed)
        finish(self, network, result, p, train_mse=train_mse, own=own,
               val_errors=val_errors, val_scores=val_scores, distance=distance)
        return self

    def _train(self, d: int, p: Hyperparameters, source, X_val, rng, callback, groups=None):
        """Build the network and run the training loop; unfit ``self`` on divergence."""
        self.evidence_ = None  # set after a fit that holds its rows (add_evidence)
        specs = autoencoder_specs(d, p.hidden, p.latent, p.activation, p.latent_activation,
                                  p.output_activation, p.tied)
        if groups is not None and groups.width != d:
            raise InvalidParameterError(f"groups describe {groups.width} columns, X has {d}")
        network = Network(specs, dtype=DTYPES[p.dtype], rng=rng, dropout=p.dropout,
                          groups=groups)
        try:
            if p.optimizer is OptimizerKind.LBFGS:
                return network, train_full_batch(network, source, X_val, p, callback)
            optimizer = make_optimizer(p.optimizer, network.theta.size, network.dtype, p.lr,
                                       p.nesterov)
            return network, train(network, optimizer, source, X_val, p, rng, callback)
        except TrainingError:
            # Unfitted, as documented: an earlier fit's model would pass for this one's.
            for name in [a for a in vars(self) if a.endswith("_") and not a.startswith("_")]:
                delattr(self, name)
            raise

    # -- inference ------------------------------------------------------------------------
    def _input(self, X) -> np.ndarray:
        v.check_is_fitted(self, "network_")
        arr = v.check_array(X, self.network_.dtype)
        v.check_features(self, X, arr)
        return arr

    def _code_size(self) -> int:
        return self.network_.specs[self.network_.code_index].n_out

    def transform(self, X) -> np.ndarray:
        """Codes of ``X``: array of shape (n_samples, latent)."""
        arr = self._input(X)
        return chunked(self.network_.encode, arr, self._code_size())

    encode = transform

    def inverse_transform(self, Z) -> np.ndarray:
        """Decode codes ``Z`` (n_samples, latent) to shape (n_samples, n_features)."""
        v.check_is_fitted(self, "network_")
        arr = v.check_array(Z, self.network_.dtype, name="Z")
        if arr.shape[1] != self._code_size():
            raise InvalidParameterError(
                f"Z has {arr.shape[1]} columns, but the code of this model has "
                f"{self._code_size()}"
            )
        return chunked(self.network_.decode, arr, self.n_features_in_)

    decode = inverse_transform

    def reconstruct(self, X) -> np.ndarray:
        """``decode(encode(X))``: shape (n_samples, n_features)."""
        arr = self._input(X)
        net = self.network_
        return chunked(lambda x: net.decode(net.encode(x)), arr, self.n_features_in_)

    def fit_transform(self, X, y=None, callback=None) -> np.ndarray:
        """Fit to ``X`` and return its codes."""
        return self.fit(X, callback=callback).transform(X)

    def reconstruction_error(self, X) -> np.ndarray:
        """Per-row mean squared reconstruction error, shape (n_samples,)."""
        return reconstruction_mse_rows(self.network_, self._input(X))

    def anomaly_score(self, X) -> np.ndarray:
        """Per-row anomaly score (n_samples,): the reconstruction error plus, with
        ``score_by="error+code"``, the code's distance from the training codes (see
        :mod:`aecli.estimators.scoring`), averaged over the models of ``members_`` too when
        there are any, and combined with ``evidence_`` when the model has it (see
        :mod:`aecli.estimators.evidence`); rows over ``threshold_`` are anomalies."""
        arr = self._input(X)
        return combined(self, mean_scores(self.score_models(), arr), arr)

    def score_parts(self, xs: np.ndarray, workspace=None, imputed: np.ndarray | None = None
                    ) -> ScoreParts:
        """Rows (n, n_features) scored as :meth:`anomaly_score` scores them, with the parts
        ``aecli score`` reports: the reconstruction, each cell's error (the ``imputed``
        cells, (n, n_features) bool, left out), the code term and its distance (see
        :func:`aecli.estimators.ensemble.score_parts`). ``xs``: the network's dtype,
        unchecked; ``workspace``: an :class:`aecli.nn.Workspace` reused between calls."""
        parts = score_parts(self.score_models(), xs, workspace, imputed)
        return replace(parts, scores=combined(self, parts.scores, xs, workspace))

    def cell_errors(self, xs: np.ndarray, workspace=None, imputed: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
        """This model's reconstruction (n, n_features) of rows ``xs`` and each cell's error
        (see :func:`aecli.estimators.scoring.cell_errors`); arguments as in
        :meth:`score_parts`."""
        v.check_is_fitted(self, "network_")
        with np.errstate(over="ignore", invalid="ignore"):  # found from the results
            codes = self.network_.encode(xs, workspace)
        return cell_errors(self.network_, xs, codes, workspace, imputed)

    def score_models(self) -> tuple[Member, ...]:
        """The models whose scores a row's anomaly score is the mean of: this one (at scale
        1), then the fold models of ``members_``."""
        v.check_is_fitted(self, "network_")
        return (Member(self.network_, self.code_distance_, 1.0), *self.members_)

    def score_samples(self, X) -> np.ndarray:
        """Negative anomaly score per row: higher is more normal."""
        return -self.anomaly_score(X)

    def score(self, X, y=None) -> float:
        """Negative mean reconstruction error (higher is better), for model selection."""
        return float(-self.reconstruction_error(X).mean())


_NAMES = list(Hyperparameters.signature().parameters)[1:]
_DEFAULTS = {name: p.default for name, p in Hyperparameters.signature().parameters.items()}

Autoencoder.__doc__ = f"""A dense autoencoder trained to reproduce its input, written in NumPy.

The encoder maps ``n_features -> hidden... -> latent``; the decoder mirrors it. With no hidden
layers and linear activations it minimises PCA's objective and reaches its error. Same data,
seed and thread count give bit-identical weights.

Parameters
----------
{Hyperparameters.numpydoc()}

Attributes
----------
network_ : aecli.nn.Network
n_features_in_ : int
feature_names_in_ : ndarray of str
    Only when fitted on a DataFrame with string column names.
loss_history_ : list of float
    Training reconstruction MSE per epoch.
val_loss_history_ : list of float or None
best_epoch_ : int
stopped_early_ : bool
stop_reason_ : str
    Why training ended: "budget" (every epoch ran), "plateau" (patience ran out) or
    "converged" (lbfgs could not improve further).
optimizer_ : str
    The optimizer that ran ("auto" resolved).
epochs_ : int
    The budget of epochs (``epochs=None`` resolved for the data).
train_mse_, validation_mse_ : float
    Final reconstruction MSE, its worst 1% of rows left out (:mod:`aecli.nn.trimmed`), on the
    training rows (16,384 of them, on larger tables) and the held-out rows (None if none).
score_quantiles_ : ndarray of shape (101,)
    Calibration scores (see :meth:`anomaly_score`) at percentiles 0..100.
threshold_ : float
    Rows whose anomaly score exceeds this are anomalies.
code_distance_ : aecli.estimators.scoring.CodeDistance or None
    The code term of the score (None when the score is the error alone).
evidence_ : aecli.estimators.evidence.Evidence or None
    The column tails and code neighbours the score is combined with (see ``score_by``).
calibration_ : aecli.estimators.calibration.Calibration
    How the threshold was placed: from which rows' scores (validation, training, or every
    row's out-of-fold score), the empirical quantile or an exponential tail fitted to the
    largest scores, and whether it was raised to the quantile of the model's own training
    rows (see :mod:`aecli.estimators.calibration`).
calibration_rows_ : int
    How many rows' scores the threshold and the quantiles rest on.
members_ : tuple of aecli.estimators.ensemble.Member
    When the threshold was calibrated out of fold, the fold models, which score with this
    one (see :mod:`aecli.estimators.ensemble`); empty otherwise.

Examples
--------
>>> import numpy as np
>>> from aecli import Autoencoder
>>> X = np.random.default_rng(0).normal(size=(200, 6))
>>> Z = Autoencoder(latent=2, hidden=(16,), epochs=5).fit(X).transform(X)
>>> Z.shape
(200, 2)
"""
