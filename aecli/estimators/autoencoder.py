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
from ..nn.trimmed import TrimmedMean, trimmed_mean
from . import checks as v
from .base import ParamsMixin
from .calibration import calibrate, quantile_rows
from .ensemble import FoldScores, Member, calibration_scores, in_sample
from .hyperparameters import Hyperparameters
from .rows import chunked as _chunked
from .rows import sample as _sample
from .rows import split as _split
from .scoring import CodeDistance, CodeMoments, ScoreBy

# Percentile levels at which the calibration errors are stored, for score percentiles.
QUANTILE_LEVELS = np.linspace(0.0, 1.0, 101)
DTYPES = {"float32": np.float32, "float64": np.float64}
CALIBRATION_ROWS = 100_000  # most training rows whose errors calibrate a streamed fit
# Most training rows (a random sample of them) whose errors and codes give the training MSE,
# the code term's statistics and the threshold's floor: a forward pass over every row cost a
# fifth of a two-epoch fit of 131,072 rows, and a mean, a 16-D covariance or a 1% quantile
# are as good from 16,384 rows.
OWN_ROWS = 16_384
FOLDS = 5  # models whose out-of-fold scores calibrate a table too small to hold out enough


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
                    f"validation_data has {X_val.shape[1]} features, X has {arr.shape[1]}"
                )
        self._fit_rows(arr, X_val, v.feature_names_of(X), callback, groups, out_of_fold)
        return self

    def _fit_rows(self, arr: np.ndarray, X_val, names, callback=None, groups=None,
                  out_of_fold: bool = True) -> None:
        """:meth:`fit` on checked rows; ``out_of_fold``: calibrate on out-of-fold scores when
        the held-out rows are too few for an empirical quantile at ``contamination``."""
        p = self._checked(arr.shape[1])
        rng = np.random.default_rng(p.seed)
        given = X_val is not None
        if X_val is None:
            p = p.resolved(len(arr))
            X_train, X_val = _split(arr, p.validation, rng)
        else:
            p = replace(p, validation=0.0).resolved(len(arr))  # the held-out rows are given
            X_train = arr
        network, result = self._train(arr.shape[1], p, X_train, X_val, rng, callback, groups)
        sample = _sample(X_train, max(OWN_ROWS, quantile_rows(p.contamination)), rng)
        codes = np.empty((len(sample), p.latent), dtype=network.dtype)
        train_errors = reconstruction_mse_rows(network, sample, codes=codes)
        distance = _code_distance(p, codes, train_errors, groups)
        own = _plus(train_errors, distance, codes)  # the model's own rows, in sample
        if X_val is not None:
            val_errors, calibration = _scores(network, X_val, distance)
        else:
            val_errors, calibration = None, own
        source = "validation rows" if X_val is not None else "training rows"
        rows = len(arr) + (len(X_val) if given else 0)
        members: tuple[Member, ...] = ()
        if out_of_fold and len(calibration) < quantile_rows(p.contamination) \
                and rows >= 2 * FOLDS:
            X_all = np.concatenate([arr, X_val]) if given else arr
            members, folds = self._out_of_fold(X_all, groups, float(np.median(own)), callback)
            main = _scores(network, X_all, distance)[1]
            calibration, own = calibration_scores(main, folds), in_sample(main, folds)
            source = "out-of-fold"
        self._set_fitted(network, result, arr.shape[1], names, trimmed_mean(train_errors),
                         val_errors, calibration, source, distance, p, own, members)

    def _out_of_fold(self, X: np.ndarray, groups, own_median: float, callback=None
                     ) -> tuple[tuple[Member, ...], list[FoldScores]]:
        """``FOLDS`` models trained as this one is, each on the rows of the other folds, and
        their scores of every row (cross-conformal calibration; see
        :mod:`aecli.estimators.ensemble`). Each fold model's scores are brought to this
        model's scale: times the ratio of the medians of the two models' scores of their own
        training rows (``own_median``: this model's)."""
        folds = np.array_split(np.random.default_rng(self.seed).permutation(len(X)), FOLDS)
        members, scored = [], []
        for i, fold in enumerate(folds):
            held_out = np.zeros(len(X), dtype=bool)
            held_out[fold] = True
            member = type(self)(**self.get_params())
            phase = f"calibration {i + 1}/{FOLDS}"
            member._fit_rows(X[~held_out], None, None, groups=groups, out_of_fold=False,
                             callback=None if callback is None else
                             lambda r, phase=phase: callback(replace(r, phase=phase)))
            every = member.anomaly_score(X)  # one pass: its own rows' and the fold's
            scale = own_median / max(float(np.median(every[~held_out])), 1e-300)
            members.append(Member(member.network_, member.code_distance_, scale))
            scored.append(FoldScores(every * scale, held_out))
        return tuple(members), scored

    @scope()
    def fit_chunks(
        self,
        chunks: Callable[[], Iterable[np.ndarray]],
        validation_data=None,
        callback: Callable[[EpochReport], None] | None = None,
        n_rows: int | None = None,
        groups: SoftmaxGroups | None = None,
    ):
        """Train on rows read anew each epoch, for data larger than memory.

        Parameters
        ----------
        chunks : callable
            ``chunks()`` returns an iterable of arrays of shape (m_i, n_features): finite,
            already scaled, read afresh on every call, in the same order. Rows are mixed
            across chunks by a shuffle buffer (:func:`aecli.nn.training.chunked_batches`).
        validation_data : array-like of shape (n_val, n_features), optional
            Held-out rows (in memory) for early stopping and the score calibration; without
            them, the first rows of the training data calibrate the threshold.
        callback : callable, optional
            Called after every epoch with an :class:`aecli.nn.training.EpochReport`.
        n_rows : int, optional
            How many rows the chunks hold, for the training budget when ``epochs`` is None;
            counted with one more pass when not given.
        groups : aecli.nn.SoftmaxGroups, optional
            As in :meth:`fit`.

        Returns
        -------
        self : Autoencoder
        """
        dtype = DTYPES[self._checked().dtype]

        def checked() -> Iterator[np.ndarray]:
            for chunk in chunks():
                if len(chunk):
                    yield np.ascontiguousarray(chunk, dtype=dtype)

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
        network, result = self._train(d, p, source, X_val, rng, callback, groups)
        # One more pass for the training error and the codes' moments; only a bounded prefix
        # of the rows' errors and codes is kept, to calibrate the threshold when there are no
        # validation rows.
        train_mse, kept = TrimmedMean(n_rows or source.rows), []
        moments = CodeMoments(p.latent)
        for chunk in checked():
            codes = np.empty((len(chunk), p.latent), dtype=network.dtype)
            errors = reconstruction_mse_rows(network, chunk, codes=codes)
            train_mse.add(errors)
            moments.add(codes)
            if sum(len(e) for e, _ in kept) < CALIBRATION_ROWS:
                kept.append((errors, codes))
        prefix_errors = np.concatenate([e for e, _ in kept])
        prefix_codes = np.concatenate([z for _, z in kept])
        distance = None
        if p.score_by.with_code(_categorical(groups)):
            distance = CodeDistance.from_moments(moments.n, moments.total, moments.outer
                                                 ).balanced(prefix_errors, prefix_codes)
        own = _plus(prefix_errors, distance, prefix_codes)  # a prefix
        if X_val is not None:
            val_errors, calibration = _scores(network, X_val, distance)
        else:
            val_errors, calibration = None, own
        self._set_fitted(network, result, d, None, train_mse.value, val_errors, calibration,
                         "validation rows" if X_val is not None else "training rows",
                         distance, p, own)
        return self

    def _train(self, d: int, p: Hyperparameters, source, X_val, rng, callback, groups=None):
        """Build the network and run the training loop; unfit ``self`` on divergence."""
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

    def _set_fitted(self, network, result, d, names, train_mse: float, val_errors,
                    calibration: np.ndarray, source: str, distance: CodeDistance | None,
                    p: Hyperparameters, own: np.ndarray | None = None,
                    members: tuple[Member, ...] = ()):
        """Assign the fitted state, only once training has succeeded: ``calibration`` holds
        the scores the threshold is read from, of the ``source`` rows, ``own`` the model's
        scores of (some of) its training rows, whose quantile is the threshold's floor, and
        ``members`` the fold models that score with it."""
        self.network_ = network
        self.members_ = members
        self.optimizer_, self.epochs_ = p.optimizer.value, p.epochs
        self.stop_reason_ = result.stop_reason.value
        self.n_features_in_ = d
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.loss_history_ = result.loss_history
        self.val_loss_history_ = result.val_loss_history
        self.best_epoch_ = result.best_epoch
        self.stopped_early_ = result.stopped_early
        self.train_mse_ = float(train_mse)
        self.validation_mse_ = None if val_errors is None else trimmed_mean(val_errors)
        self.code_distance_ = distance
        self.error_quantiles_ = np.quantile(calibration, QUANTILE_LEVELS)
        self.calibration_ = calibrate(calibration, self.contamination, source, own)
        self.threshold_ = self.calibration_.threshold
        self.calibration_rows_ = len(calibration)

    @classmethod
    def _from_state(cls, params: dict, network: Network, state: dict,
                    feature_names=None, code_distance: CodeDistance | None = None,
                    members: tuple[Member, ...] = ()) -> Autoencoder:
        """A fitted estimator from a trained ``network`` and the state :meth:`_set_fitted`
        assigns, as a model file stores it (``state``: ``loss_history``,
        ``val_loss_history``, ``best_epoch``, ``stopped_early``, ``train_mse``,
        ``validation_mse``, ``error_quantiles``, ``threshold``), the code term of the
        score (needed with ``score_by="error+code"``), and the fold models that score with
        it (see :mod:`aecli.estimators.ensemble`)."""
        ae = cls(**params)
        d = network.specs[0].n_in
        p = ae._checked(d)
        if p.score_by is not ScoreBy.AUTO and (
                p.score_by is ScoreBy.ERROR_CODE) != (code_distance is not None):
            raise InvalidParameterError(
                f"score_by={str(p.score_by)!r} does not match the code statistics given")
        ae.code_distance_ = code_distance
        ae.members_ = tuple(members)
        if any(m.network.specs != network.specs or m.network.dtype != network.dtype
               or (m.code_distance is None) != (code_distance is None) for m in members):
            raise InvalidParameterError("the ensemble's models do not match the network")
        if ae.latent != network.specs[network.code_index].n_out or np.dtype(
                DTYPES[ae.dtype]) != network.dtype:
            raise InvalidParameterError("the training settings do not match the network")
        ae.network_ = network
        ae.n_features_in_ = d
        if feature_names is not None:
            ae.feature_names_in_ = np.asarray(feature_names, dtype=object)
        ae.loss_history_ = [float(x) for x in state["loss_history"]]
        val = state["val_loss_history"]
        ae.val_loss_history_ = None if val is None else [float(x) for x in val]
        ae.best_epoch_ = int(state["best_epoch"])
        ae.stopped_early_ = bool(state["stopped_early"])
        # Files before aecli 0.2 recorded neither: Adam ran, for the epochs it says.
        ae.optimizer_ = str(state.get("optimizer", "adam"))
        ae.epochs_ = int(state.get("epochs_budget", len(ae.loss_history_)))
        ae.stop_reason_ = str(state.get("stop_reason",
                                        "plateau" if ae.stopped_early_ else "budget"))
        ae.train_mse_ = float(state["train_mse"])
        val_mse = state["validation_mse"]
        ae.validation_mse_ = None if val_mse is None else float(val_mse)
        ae.error_quantiles_ = np.array(state["error_quantiles"], dtype=np.float64)
        rows = state.get("calibration_rows")  # not recorded before aecli 0.2
        ae.calibration_rows_ = None if rows is None else int(rows)
        ae.threshold_ = float(state["threshold"])
        return ae

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
        return _chunked(self.network_.encode, arr, self._code_size())

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
        return _chunked(self.network_.decode, arr, self.n_features_in_)

    decode = inverse_transform

    def reconstruct(self, X) -> np.ndarray:
        """``decode(encode(X))``: shape (n_samples, n_features)."""
        arr = self._input(X)
        net = self.network_
        return _chunked(lambda x: net.decode(net.encode(x)), arr, self.n_features_in_)

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
        there are any; rows over ``threshold_`` are anomalies."""
        arr = self._input(X)
        models = self.score_models()
        return sum(m.scale * _scores(m.network, arr, m.code_distance)[1]
                   for m in models) / len(models)

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


def _categorical(groups: SoftmaxGroups | None) -> bool:
    return groups is not None and len(groups.sizes) > 0


def _code_distance(p: Hyperparameters, codes: np.ndarray, errors: np.ndarray,
                   groups: SoftmaxGroups | None) -> CodeDistance | None:
    """The code term of the score, from training rows' codes and errors; None for errors
    alone."""
    return CodeDistance.from_codes(codes, errors) \
        if p.score_by.with_code(_categorical(groups)) else None


def _plus(errors: np.ndarray, distance: CodeDistance | None, codes: np.ndarray) -> np.ndarray:
    """Errors plus the code term: the anomaly scores."""
    return errors if distance is None else errors + distance.of(codes)


def _scores(network: Network, X: np.ndarray, distance: CodeDistance | None
            ) -> tuple[np.ndarray, np.ndarray]:
    """Rows' reconstruction errors and anomaly scores, in one pass."""
    codes = None if distance is None else np.empty((len(X), len(distance.center)),
                                                   dtype=network.dtype)
    errors = reconstruction_mse_rows(network, X, codes=codes)
    return errors, _plus(errors, distance, codes)


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
    training rows (a random 16,384 of them, on larger tables) and the held-out rows (None
    if none).
error_quantiles_ : ndarray of shape (101,)
    Calibration scores (see :meth:`anomaly_score`) at percentiles 0..100.
threshold_ : float
    Rows whose anomaly score exceeds this are anomalies.
code_distance_ : aecli.estimators.scoring.CodeDistance or None
    The code term of the score (None when the score is the error alone).
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
