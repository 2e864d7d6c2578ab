"""Training on a Dask cluster: the rows stay on the workers that read them.

1. **Roles** come from a survey of every row: each partition is surveyed on a worker (what
   each column holds, its range, its distinct values up to a cap), the surveys are merged in
   partition order, and the roles are decided from the whole, as on one machine.
2. **Survey.** Each partition checks its rows (infinity, the missing-value policy), splits
   them between training and validation by their row numbers in the whole data set (the
   rule of every training path, :func:`aecli.estimators.rows.held_out`), and returns
   small figures: row counts, and per numeric column the count, mean, sum of squared
   deviations, minimum and maximum of its training values, and the categorical levels it
   holds. These merge exactly (Chan, Golub and LeVeque's pairwise
   update) into the scaler, the imputation means and the levels one machine fits.
3. **Preparation.** Each partition's rows go through the one preparation path and stay in
   worker memory, as futures the client never gathers; each returns its Gram matrix and
   column sums, whose exact sum gives PCA's reference at the same k.
4. **Training**, by periodic parameter averaging (local SGD; McMahan et al. 2017 call it
   federated averaging): every epoch, each partition runs one epoch of Adam over its own
   rows from the current weights, its Adam moments carried from its last epoch, and the
   client averages the weights, each partition weighted by its rows. The learning rate
   follows the schedule over the budget; the validation error after each epoch drives
   patience and the best weights, through the epoch monitor of every training path.
5. **Calibration**: the errors and codes of up to ``KEPT_SCORES`` (100,000) training and
   validation rows come back, and the estimator's finish step (:mod:`aecli.estimators.finish`)
   weights the code term and places the threshold, as on one machine.

The model file is the same as one machine's.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pyarrow as pa

from ..errors import DataError, naming_input
from ..estimators import Autoencoder, Hyperparameters
from ..estimators.finish import DTYPES, KEPT_SCORES, finish
from ..estimators.hyperparameters import check_latent_below
from ..estimators.rows import held_out, split_seed
from ..estimators.scoring import CodeMoments, with_code_term
from ..io import BadValues, iter_batches
from ..io.surveyed import Surveyed, survey_input
from ..nn import Network, autoencoder_specs, make_optimizer
from ..nn.schedules import ScheduleKind, lr_factor
from ..nn.training import (
    EpochReport,
    Monitor,
    TrainingResult,
    diverged,
    reconstruction_mse_rows,
    train,
)
from ..nn.trimmed import trimmed_mean
from ..preprocessing import (
    Categorical,
    Imputer,
    MissingPolicy,
    Preparation,
    RawRows,
    Roles,
    ScalerKind,
    scaler_from_moments,
    screen,
)
from ..preprocessing.categorical import as_text, check_levels
from ..preprocessing.scalers import column_moments
from .bundle import ModelBundle
from .cluster_apply import partitions
from .compare import comparison_row, default_ks
from .sources import DataOptions, raw_rows, roles_from
from .train import training_summary


def _raw(path: str, reading: DataOptions, roles: Roles) -> RawRows:
    """A partition's rows, read as ``reading.text`` says: the numeric features' values and
    the categorical columns."""
    with iter_batches(path, reading.input_format, text=reading.text) as stream:
        table = pa.Table.from_batches([b for b in stream], schema=stream.schema)
    return raw_rows(table, roles, reading, path)


def survey_part(path: str, reading: DataOptions) -> Surveyed:
    """What every column of one partition holds, over all its rows (on a worker)."""
    return survey_input(path, reading.input_format, reading.delimiter, reading.decimal)


def roles_of(parts: list[Surveyed], reading: DataOptions, name: str = ""
             ) -> tuple[Roles, list[DataOptions]]:
    """The roles decided from the partitions' surveys merged in order (a column constant in
    one partition and varying in another is a feature, as on one machine), and how each
    partition is then read: the numeric features as numbers, in the types of the whole."""
    whole = parts[0].survey
    for part in parts[1:]:
        whole = whole.merge(part.survey)
    decimal = next((p.dialect.decimal for p in parts if p.dialect is not None), ".")
    with naming_input(name or parts[0].name):
        roles = roles_from(whole, reading, decimal)
    return roles, [replace(reading, text=Surveyed(whole, p.format, p.name, p.dialect).reading(
        roles.numeric, bad_values=reading.bad_values)) for p in parts]


@dataclass
class Moments:
    """Per-column figures of training values that merge exactly across partitions."""

    n: np.ndarray
    mean: np.ndarray
    m2: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def of(cls, X: np.ndarray) -> Moments:
        """The figures of one partition's rows X (n, d), NaN ignored; exact for large
        offsets (see :func:`aecli.preprocessing.scalers.column_moments`)."""
        return cls(*column_moments(X))

    def merge(self, other: Moments) -> Moments:
        n = self.n + other.n
        delta = other.mean - self.mean
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(n > 0, other.n / np.maximum(n, 1), 0.0)
        return Moments(n, self.mean + delta * share,
                       self.m2 + other.m2 + delta * delta * self.n * share,
                       np.minimum(self.low, other.low), np.maximum(self.high, other.high))


@dataclass
class PartSurvey:
    """What one partition's survey sends back."""

    index: int
    rows: int
    rows_train: int
    rows_validation: int
    dropped: int
    imputed: int
    moments: Moments
    levels: dict = field(default_factory=dict)


def survey_partition(path: str, index: int, reading: DataOptions, roles: Roles,
                     missing: MissingPolicy, fraction: float, seed: int,
                     first_row: int) -> PartSurvey:
    """Check a partition's rows and sum up its training rows (on a worker)."""
    raw = _raw(path, reading, roles)
    rows = np.arange(first_row + 1, first_row + len(raw) + 1)  # in the whole data set
    with naming_input(path):
        keep = screen(raw.numeric, roles.numeric, missing, rows=rows)
    kept = raw if keep is None else raw.take(keep)
    val = held_out(seed, fraction, first_row, len(raw))  # by row number in the whole data set
    val = val if keep is None else val[keep]
    train_rows = kept.take(~val)
    levels = {}
    if train_rows.categorical is not None:
        import pyarrow.compute as pc

        for name in roles.categorical:
            levels[name] = set(pc.unique(as_text(train_rows.categorical.column(name)))
                               .to_pylist())
    imputed = int(np.isnan(kept.numeric).sum()) if missing is MissingPolicy.IMPUTE else 0
    return PartSurvey(index, len(raw), len(train_rows), int(val.sum()),
                      0 if keep is None else int((~keep).sum()), imputed,
                      Moments.of(train_rows.numeric), levels)


def preparation_from(parts: list[PartSurvey], roles: Roles, missing: MissingPolicy,
                     scale: ScalerKind, dtype, bad_values: BadValues) -> Preparation:
    """The preparation one machine would fit on all the training rows, from the surveys."""
    moments = parts[0].moments
    for p in parts[1:]:
        moments = moments.merge(p.moments)
    empty = [roles.numeric[j] for j in np.flatnonzero(moments.n == 0)]
    if empty:
        raise DataError(f"column {empty[0]!r} has no values to fit the scaler on",
                        hint="leave the column out with --exclude")
    imputer = Imputer.from_fill(moments.mean, roles.numeric)
    n, m2 = moments.n, moments.m2
    if missing is MissingPolicy.IMPUTE:  # filled cells sit at the mean: more rows, same m2
        n = np.full_like(n, sum(p.rows_train for p in parts))
        imputer.missing_share_ = 1 - moments.n / np.maximum(n, 1)  # as Imputer.fit has it
    scaler = scaler_from_moments(scale, n, moments.mean, m2, moments.low, moments.high)
    categorical = []
    for name in roles.categorical:
        seen = set().union(*(p.levels.get(name, set()) for p in parts))
        check_levels(name, len(seen))
        categorical.append(Categorical(name, tuple(sorted(v for v in seen if v is not None))
                                       + ((None,) if None in seen else ())))
    return Preparation(roles.numeric, missing, scaler, imputer, dtype, categorical, bad_values)


@dataclass
class Held:
    """A partition's prepared rows, kept in a worker's memory."""

    train: np.ndarray
    validation: np.ndarray


def prepare_partition(path: str, reading: DataOptions, roles: Roles, prep: Preparation,
                      fraction: float, seed: int, first_row: int) -> Held:
    """A partition through the one preparation path, split as the survey split it."""
    raw = _raw(path, reading, roles)
    with naming_input(path):
        prepared = prep.transform(raw, first_row)
    val = held_out(seed, fraction, first_row, len(raw))
    val = val if prepared.keep is None else val[prepared.keep]
    return Held(np.ascontiguousarray(prepared.X[~val]), np.ascontiguousarray(prepared.X[val]))


@dataclass(frozen=True)
class Reread:
    """A partition read and prepared anew each time it is used: for data sets larger than
    the workers' memory. Small: only what :func:`prepare_partition` needs."""

    path: str
    reading: DataOptions
    roles: Roles
    preparation: Preparation
    fraction: float
    seed: int
    first_row: int

    def load(self) -> Held:
        return prepare_partition(self.path, self.reading, self.roles, self.preparation,
                                 self.fraction, self.seed, self.first_row)


def _rows(held: Held | Reread) -> Held:
    return held if isinstance(held, Held) else held.load()


# Prepared rows are kept in worker memory while they take at most this share of it.
MEMORY_SHARE = 0.5


def gram(held: Held | Reread) -> tuple[int, np.ndarray, np.ndarray]:
    """Rows, column sums and Gram matrix of a partition's training rows (float64)."""
    X = _rows(held).train.astype(np.float64)
    return len(X), X.sum(axis=0), X.T @ X


_NETWORKS: dict = {}  # per worker process: a network per (job, architecture)


def _network(key: str, specs, dtype, groups, dropout: float) -> Network:
    if key not in _NETWORKS:
        _NETWORKS[key] = Network(specs, dtype=dtype, rng=None, dropout=dropout, groups=groups)
    return _NETWORKS[key]


@dataclass(frozen=True)
class Setup:
    """What a worker needs to run the network: its layout and the training settings."""

    key: str
    specs: tuple
    dtype: str
    groups: object
    params: Hyperparameters


def forget(key: str) -> None:
    """Drop a finished fit's network from a worker's memory (a cluster that outlives the
    command would otherwise keep every fit's)."""
    _NETWORKS.pop(key, None)


def local_epoch(held: Held, theta: np.ndarray, setup: Setup, lr: float, seed: int,
                state: dict | None) -> tuple[np.ndarray, float, int, dict | None]:
    """One epoch of the optimizer over a partition's training rows from ``theta``: the
    weights it ends at, its summed training error, its rows, and the optimizer's state (its
    moments), which the client keeps for the partition's next epoch. The state travels with
    the task rather than staying on a worker, so the result does not depend on which worker
    runs which partition."""
    p = setup.params
    held = _rows(held)
    net = _network(setup.key, setup.specs, DTYPES[setup.dtype], setup.groups, p.dropout)
    if len(held.train) == 0:
        return theta, 0.0, 0, state
    net.theta[...] = theta
    optimizer = make_optimizer(p.optimizer, net.theta.size, net.dtype, lr, p.nesterov)
    if state is not None:
        vars(optimizer).update(state)
    settings = replace(p, epochs=1, lr=lr, schedule=ScheduleKind.NONE, patience=None)
    result = train(net, optimizer, held.train, None, settings, np.random.default_rng(seed))
    kept = {k: v for k, v in vars(optimizer).items() if k != "scratch"}  # scratch: rebuilt
    return net.theta.copy(), result.loss_history[0] * len(held.train), len(held.train), kept


def errors(held: Held, theta: np.ndarray, setup: Setup, which: str, keep: int = 0
           ) -> tuple[np.ndarray, np.ndarray, CodeMoments]:
    """Each row's reconstruction error (n,), of the training or validation rows, with the
    first ``keep`` rows' codes and the moments of all their codes (on a worker: only these
    travel back)."""
    net = _network(setup.key, setup.specs, DTYPES[setup.dtype], setup.groups,
                   setup.params.dropout)
    net.theta[...] = theta
    held = _rows(held)
    X = held.train if which == "train" else held.validation
    codes = np.empty((len(X), setup.params.latent), dtype=net.dtype)
    errs = reconstruction_mse_rows(net, X, codes=codes) if len(X) else np.zeros(0)
    moments = CodeMoments(setup.params.latent)
    moments.add(codes)
    return errs, codes[:keep].copy(), moments


def pca_errors(held: Held, mean: np.ndarray, components: np.ndarray, groups) -> np.ndarray:
    """PCA's reconstruction error of a partition's validation rows (or training rows when it
    has none), measured as the autoencoder's (on a worker)."""
    held = _rows(held)
    X = (held.validation if len(held.validation) else held.train).astype(np.float64)
    if not len(X):
        return np.zeros(0)
    centred = X - mean
    rebuilt = centred @ components.T @ components + mean
    if groups is None:
        return np.mean((rebuilt - X) ** 2, axis=1)
    return groups.row_errors(groups.normalised_(rebuilt), X)


@dataclass
class OnCluster:
    """A data set surveyed and prepared on the cluster: its rows held by the workers."""

    client: object
    job: str
    files: list[str]
    roles: Roles
    surveys: list[PartSurvey]
    preparation: Preparation
    held: list  # one per partition: futures of Held, or Reread when they do not fit
    in_memory: bool
    mean: np.ndarray  # (width,) of the training rows
    eigenvalues: np.ndarray  # of their covariance, largest first
    eigenvectors: np.ndarray  # (width, width), columns in the same order

    def release(self) -> None:
        """Free the rows the workers hold."""
        if self.in_memory:
            self.client.cancel(self.held)

    @property
    def rows_train(self) -> int:
        return sum(s.rows_train for s in self.surveys)

    @property
    def rows_validation(self) -> int:
        return sum(s.rows_validation for s in self.surveys)

    def pca(self, k: int) -> tuple[float, float]:
        """PCA at ``k`` from the exact Gram sum: (held-out error, explained variance)."""
        components = self.eigenvectors[:, :k].T  # (k, width)
        errors = np.concatenate(self.client.gather([
            self.client.submit(pca_errors, h, self.mean, components, self.preparation.groups,
                               key=f"aecli-pca-{self.job}-{k}-{i}")
            for i, h in enumerate(self.held)]))
        total = max(float(self.eigenvalues.sum()), 1e-300)
        return trimmed_mean(errors), float(self.eigenvalues[:k].sum() / total)


def prepare_on_cluster(client, source: str, reading: DataOptions, params: dict,
                       missing: MissingPolicy, scale: ScalerKind,
                       on_roles: Callable[[Roles], None] | None = None,
                       reread: bool = False) -> OnCluster:
    """Roles, survey, preparation and the exact PCA reference, on the workers. The prepared
    rows stay in worker memory when they take at most ``MEMORY_SHARE`` of it (and
    ``reread`` is not asked); otherwise each partition is read anew every time it is used."""
    files = partitions(source)
    job = uuid.uuid4().hex[:8]
    columns = client.gather([client.submit(survey_part, f, reading,
                                           key=f"aecli-columns-{job}-{i}")
                             for i, f in enumerate(files)])
    roles, readings = roles_of(columns, reading, source)
    if on_roles is not None:
        on_roles(roles)
    missing = MissingPolicy(missing)
    hp = Hyperparameters(**params).resolved(0, streamed=True)  # the optimizer's kind, no lbfgs
    fraction, seed = hp.validation, split_seed(hp.seed)  # one split for every use
    counts = [c.survey.rows for c in columns]
    offsets = [sum(counts[:i]) for i in range(len(files))]
    surveys = client.gather([
        client.submit(survey_partition, f, i, readings[i], roles, missing, fraction, seed,
                      offsets[i], key=f"aecli-survey-{job}-{i}")
        for i, f in enumerate(files)])
    rows_train = sum(s.rows_train for s in surveys)
    if rows_train < 2:
        raise DataError(f"{rows_train} row(s) to train on; training needs at least 2",
                        hint="give more rows, or a smaller --validation")
    prep = preparation_from(surveys, roles, missing, scale, hp.dtype, reading.bad_values)
    size = sum(s.rows for s in surveys) * prep.width * np.dtype(DTYPES[hp.dtype]).itemsize
    memory = sum(w.get("memory_limit") or 0
                 for w in client.scheduler_info()["workers"].values())
    in_memory = not reread and (memory == 0 or size <= MEMORY_SHARE * memory)
    if in_memory:
        held = [client.submit(prepare_partition, f, readings[i], roles, prep, fraction, seed,
                              offsets[i], key=f"aecli-held-{job}-{i}")
                for i, f in enumerate(files)]
    else:
        held = [Reread(f, readings[i], roles, prep, fraction, seed, offsets[i])
                for i, f in enumerate(files)]
    grams = client.gather([client.submit(gram, h, key=f"aecli-gram-{job}-{i}")
                           for i, h in enumerate(held)])
    n = sum(g[0] for g in grams)
    mean = sum(g[1] for g in grams) / n
    values, vectors = np.linalg.eigh(sum(g[2] for g in grams) / n - np.outer(mean, mean))
    order = np.argsort(values)[::-1]
    return OnCluster(client, job, files, roles, surveys, prep, held, in_memory, mean,
                     np.maximum(values[order], 0.0), vectors[:, order])


def fit_on_cluster(data: OnCluster, params: dict,
                   callback: Callable[[EpochReport], None] | None = None) -> Autoencoder:
    """An autoencoder trained on the held rows by parameter averaging, with its threshold
    calibrated on up to ``KEPT_SCORES`` validation scores (no out-of-fold
    calibration on a cluster: its tables are large)."""
    client, held, prep = data.client, data.held, data.preparation
    hp = Hyperparameters(**params).resolved(data.rows_train + data.rows_validation,
                                            streamed=True)
    ae = Autoencoder(**params)
    ae._checked(prep.width)
    check_latent_below(hp.latent, len(data.roles.features))  # as compare-pca does
    specs = autoencoder_specs(prep.width, hp.hidden, hp.latent, hp.activation,
                              hp.latent_activation, hp.output_activation, hp.tied)
    network = Network(specs, dtype=DTYPES[hp.dtype], rng=np.random.default_rng(hp.seed),
                      dropout=hp.dropout, groups=prep.groups)
    job = f"{data.job}-{uuid.uuid4().hex[:6]}"
    setup = Setup(job, tuple(specs), hp.dtype, prep.groups, hp)
    try:
        result = _average(client, held, network, setup, hp, callback, job,
                          data.rows_validation > 0)
        theta = network.theta
        val = client.gather([client.submit(errors, h, theta, setup, "validation",
                                           KEPT_SCORES, key=f"aecli-val-{job}-{i}")
                             for i, h in enumerate(held)])
        trained = client.gather([
            client.submit(errors, h, theta, setup, "train", KEPT_SCORES,
                          key=f"aecli-trainerr-{job}-{i}")
            for i, h in enumerate(held)])
    finally:
        client.run(forget, setup.key)
    train_errors = np.concatenate([e for e, _, _ in trained])
    held_out = np.concatenate([e for e, _, _ in val])
    validated = len(held_out) > 0
    distance = None
    if hp.score_by.with_code(bool(prep.categorical)):
        moments = CodeMoments(hp.latent)
        for _, _, part in trained:
            moments.merge(part)
        codes = np.concatenate([z for _, z, _ in trained])[:KEPT_SCORES]
        distance = moments.distance(train_errors[:KEPT_SCORES], codes)

    def scores(parts) -> np.ndarray:  # the first KEPT_SCORES rows' scores
        errs = np.concatenate([e for e, _, _ in parts])[:KEPT_SCORES]
        return with_code_term(errs, distance, None if distance is None else np.concatenate(
            [z for _, z, _ in parts])[:KEPT_SCORES])

    fitted = Autoencoder(**{**ae.get_params(), "hidden": tuple(hp.hidden)})
    finish(fitted, network, result, hp,
        train_mse=trimmed_mean(train_errors), own=scores(trained),
        val_errors=held_out if validated else None,
        val_scores=scores(val) if validated else None, distance=distance)
    return fitted


def train_on_cluster(client, source: str, reading: DataOptions, params: dict, *,
                     missing: MissingPolicy = MissingPolicy.ERROR,
                     scale: ScalerKind = ScalerKind.STANDARD,
                     callback: Callable[[EpochReport], None] | None = None,
                     info: dict | None = None, on_roles: Callable[[Roles], None] | None = None,
                     reread: bool = False) -> ModelBundle:
    """Train a model on the partitions of ``source``, data-parallel on ``client``'s cluster
    (``reread``: read each partition anew every epoch, as ``--stream`` does on one machine).

    Returns the same bundle :func:`aecli.pipeline.train.train_bundle` does.
    """
    started = time.perf_counter()
    data = prepare_on_cluster(client, source, reading, params, missing, scale, on_roles,
                              reread)
    try:
        fitted = fit_on_cluster(data, params, callback)
        summary = training_summary(fitted, data.rows_train, data.rows_validation,
                                   sum(s.dropped for s in data.surveys),
                                   data.pca(fitted.latent), time.perf_counter() - started,
                                   streamed=True,
                                   cells_imputed=sum(s.imputed for s in data.surveys))
    finally:
        data.release()
    summary["partitions"] = len(data.files)
    summary["held_in_memory"] = data.in_memory
    return ModelBundle(fitted, data.preparation,
                       {**(info or {}), "roles": data.roles.to_dict(),
                        "unused_columns": data.roles.unused}, summary)


def compare_on_cluster(client, source: str, reading: DataOptions, ks: list[int] | None,
                       params: dict, *,
                       missing: MissingPolicy = MissingPolicy.ERROR,
                       scale: ScalerKind = ScalerKind.STANDARD,
                       on_k: Callable[[dict], None] | None = None,
                       callback: Callable[[EpochReport], None] | None = None,
                       on_roles: Callable[[Roles], None] | None = None
                       ) -> tuple[list[dict], float, Roles]:
    """compare-pca on the cluster: for each k, PCA from the exact Gram sum and an
    autoencoder trained by parameter averaging, both measured on the same held-out rows
    (``ks`` None: the default sweep, clipped to the columns). Returns the rows, the error
    of predicting every row by the mean (for :func:`aecli.pipeline.compare.suggest_k`) and
    the roles."""
    data = prepare_on_cluster(client, source, reading, params, missing, scale, on_roles)
    rows = []
    try:
        width = len(data.roles.features)
        ks = ks if ks is not None else default_ks(width) or [1]
        too_big = [k for k in ks if k >= width]
        if too_big:
            raise DataError(f"k={too_big[0]} is not smaller than the number of features "
                            f"({width})", hint=f"choose k below {width}")
        for k in ks:
            pca_mse, pca_var = data.pca(k)
            fitted = fit_on_cluster(data, {**params, "latent": k}, callback)
            row = comparison_row(k, pca_mse, pca_var, float(fitted.validation_mse_),
                                 len(fitted.loss_history_))
            rows.append(row)
            if on_k is not None:
                on_k(row)
        baseline = data.pca(0)[0]
    finally:
        data.release()
    return rows, baseline, data.roles


def _average(client, held, network: Network, setup: Setup, hp: Hyperparameters,
             callback, job: str, validated: bool) -> TrainingResult:
    """The epochs of parameter averaging, ended by the one epoch monitor of every training
    path (:class:`aecli.nn.training.Monitor`); the best weights are left in ``network``.
    ``validated``: whether the partitions hold validation rows."""
    states = [None] * len(held)  # each partition's optimizer state, from epoch to epoch
    epoch = 0

    def validation_loss() -> float:  # the trimmed mean of every partition's rows, as in memory
        return trimmed_mean(np.concatenate([e for e, _, _ in client.gather([
            client.submit(errors, h, network.theta, setup, "validation",
                          key=f"aecli-v-{job}-{epoch}-{i}") for i, h in enumerate(held)])]))

    monitor = Monitor(network, hp, callback, hp.patience,
                      validation_loss if validated else None)
    for epoch in range(1, hp.epochs + 1):
        lr = hp.lr * lr_factor(hp.schedule, (epoch - 1) / hp.epochs)
        theta = network.theta.copy()
        outs = client.gather([client.submit(local_epoch, h, theta, setup, lr,
                                            hp.seed * 100_003 + epoch * 1009 + i
                                            if hp.seed is not None else None, states[i],
                                            key=f"aecli-epoch-{job}-{epoch}-{i}")
                              for i, h in enumerate(held)])
        states = [o[3] for o in outs]
        rows = sum(o[2] for o in outs)
        network.theta[...] = sum(o[0].astype(np.float64) * o[2] for o in outs) / rows
        train_loss = float(sum(o[1] for o in outs) / rows)
        if not math.isfinite(train_loss) or not np.isfinite(network.theta).all():
            raise diverged(epoch, train_loss, hp.lr)
        if monitor.end_epoch(epoch, train_loss):
            break
    return monitor.finish()
