"""Training on a Dask cluster: the rows stay on the workers that read them; the client
runs the steps and merges what comes back.

1. **Roles** come from a survey of every row: each partition is surveyed on a worker (what
   each column holds, its range, its distinct values up to a cap), the surveys are merged in
   partition order, and the roles are decided from the whole, as on one machine.
2. **Survey** of each partition's rows, split by row number, into figures that merge into
   the preparation one machine fits (:mod:`aecli.pipeline.cluster_survey`).
3. **Preparation.** Each partition's rows go through the one preparation path and stay in
   worker memory, as futures the client never gathers; each returns its Gram matrix and
   column sums, whose exact sum gives PCA's reference at the same k
   (:mod:`aecli.pipeline.cluster_workers`).
4. **Training**, by parameter averaging of replicas (local SGD; McMahan et al. 2017 call it
   federated averaging; :mod:`aecli.pipeline.cluster_averaging`): the partitions are dealt
   to one replica of the model per worker (at most one per partition with rows), balanced
   by rows, and each partition is held on its replica's worker. In rounds of an epoch,
   each replica runs the one mini-batch step over its share of its partitions' rows from
   the averaged weights, its optimizer's moments carried from round to round, and the
   client averages the replicas' weights, each weighted by its rows. The number of
   replicas, not of partitions, is what costs quality at few epochs: M replicas take M
   times fewer steps, so where steps are scarce each takes batches of batch_size / M rows
   (as a data-parallel step splits one batch), and each steps at sqrt(M) times the
   learning rate; replicas averaged only at the end of an epoch drift apart, so an epoch
   has several rounds. The epochs run in the one epoch loop of
   every training path (:func:`aecli.nn.training.run_epochs`): its monitor takes the
   validation error after each epoch for patience and the best weights. With
   ``neighbors``, each replica's batches are followed by pairs from the graph of a sample
   of the training rows, as ``--stream``'s are (:mod:`aecli.pipeline.cluster_neighbors`).
5. **Calibration**: the errors and codes of up to ``KEPT_SCORES`` (100,000) training and
   validation rows come back, and the estimator's finish step (:mod:`aecli.estimators.finish`)
   weights the code term and places the threshold, as on one machine; the neighbour
   figures are measured on a sample of the held-out rows gathered from the workers.

A worker that dies is replaced by Dask, which computes its partitions anew elsewhere (the
result is the same: every task's inputs travel with it); a task whose workers die too often
ends the job with an error naming its partitions, and no model is written. Each replica's
rows are checked against the survey's count, so no model is trained on a partition
silently missing. The model file is the same as one machine's.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError, TrainingError
from ..estimators import Autoencoder, Hyperparameters
from ..estimators.finish import DTYPES, KEPT_SCORES, finish
from ..estimators.hyperparameters import check_latent_below
from ..estimators.rows import split_seed
from ..estimators.scoring import CodeMoments, with_code_term
from ..nn import Network, autoencoder_specs
from ..nn.training import EpochReport
from ..nn.trimmed import trimmed_mean
from ..preprocessing import MissingPolicy, Preparation, Roles, ScalerKind
from .bundle import ModelBundle
from .cluster_apply import partitions
from .cluster_averaging import averaged_epochs, deal, on_worker
from .cluster_neighbors import neighbor_pairs, preservation_on_cluster
from .cluster_survey import PartSurvey, preparation_from, roles_of, survey_part, survey_partition
from .cluster_workers import (
    MEMORY_SHARE,
    Reread,
    Setup,
    errors,
    forget,
    gram,
    pca_errors,
    prepare_partition,
)
from .compare import comparison_row, default_ks
from .sampled_evidence import RowSample, add_cluster_evidence, gather_surveys
from .sources import DataOptions
from .train import training_summary


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
    replicas: list[list[int]]  # the partitions each replica of the model trains on
    workers: list[str]  # where each replica's partitions are held
    sample: RowSample = field(default_factory=RowSample)  # training rows' (.sampled_evidence)

    def collect(self, futures: list, parts: list[list[int]]) -> list:
        """Gather ``futures``, each the work on the partitions ``parts[k]``. A task whose
        workers died too often (Dask's ``KilledWorker``) ends the job with an error naming
        its partitions."""
        try:
            return self.client.gather(futures)
        except Exception as e:
            if type(e).__name__ != "KilledWorker":
                raise
            key = str(getattr(e, "task", None) or (e.args[0] if e.args else ""))
            named = {str(f.key): p for f, p in zip(futures, parts, strict=True)}
            if self.in_memory:
                named.update({str(h.key): [i] for i, h in enumerate(self.held)})
            lost = named.get(key) or sorted({i for p in parts for i in p})
            files = ", ".join(self.files[i] for i in lost[:4]) + (" ..." if len(lost) > 4
                                                                   else "")
            raise TrainingError(
                f"training stopped: the workers working on partition"
                f"{'s' if len(lost) > 1 else ''} {files} died (Dask gives a task up after "
                "its workers die a few times); no model was written",
                hint="a worker that dies at work is often out of memory: give the workers "
                "more memory, or train with --stream (each partition read anew), then run "
                "the command again") from None

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
    surveys, sample = gather_surveys([
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
    workers = sorted(client.scheduler_info()["workers"]) or [None]  # None: wherever Dask likes
    replicas = deal([s.rows_train for s in surveys], len(workers))
    home = {i: workers[j] for j, parts in enumerate(replicas) for i in parts}
    if in_memory:  # each on its replica's worker, which may pass it on if it dies
        held = [client.submit(prepare_partition, f, readings[i], roles, prep, fraction, seed,
                              offsets[i], key=f"aecli-held-{job}-{i}", **on_worker(home.get(i)))
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
                     np.maximum(values[order], 0.0), vectors[:, order], replicas,
                     [home[parts[0]] for parts in replicas], sample)


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
    each = [[i] for i in range(len(held))]
    pairs = None
    try:
        pairs = neighbor_pairs(data, hp, job)  # a sample's graph, as --stream's
        result = averaged_epochs(data, network, setup, hp, callback, job, pairs)
        theta = network.theta
        val = data.collect([client.submit(errors, h, theta, setup, "validation",
                                          KEPT_SCORES, key=f"aecli-val-{job}-{i}")
                            for i, h in enumerate(held)], each)
        trained = data.collect([
            client.submit(errors, h, theta, setup, "train", KEPT_SCORES,
                          key=f"aecli-trainerr-{job}-{i}")
            for i, h in enumerate(held)], each)
    finally:
        client.run(forget, setup.key)
        if pairs is not None:
            client.cancel(pairs)
    train_errors = np.concatenate([r.errors for r in trained])
    held_out = np.concatenate([r.errors for r in val])
    validated = len(held_out) > 0
    distance = None
    if hp.score_by.with_code(bool(prep.categorical)):
        moments = CodeMoments(hp.latent)
        for r in trained:
            moments.merge(r.moments)
        codes = np.concatenate([r.codes for r in trained])[:KEPT_SCORES]
        distance = moments.distance(
            np.concatenate([r.observed for r in trained])[:KEPT_SCORES], codes)

    def scores(parts) -> np.ndarray:  # the first KEPT_SCORES rows' scores, as score gives
        errs = np.concatenate([r.observed for r in parts])[:KEPT_SCORES]  # (imputed out)
        return with_code_term(errs, distance, None if distance is None else np.concatenate(
            [r.codes for r in parts])[:KEPT_SCORES])

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
        add_cluster_evidence(data, fitted)
        summary = training_summary(fitted, data.rows_train, data.rows_validation,
                                   sum(s.dropped for s in data.surveys),
                                   data.pca(fitted.latent), time.perf_counter() - started,
                                   streamed=True,
                                   cells_imputed=sum(s.imputed for s in data.surveys),
                                   neighbors=preservation_on_cluster(data, fitted, data.job))
    finally:
        data.release()
    summary["partitions"] = len(data.files)
    summary["held_in_memory"] = data.in_memory
    reference = data.surveys[0].reference
    for part in data.surveys[1:]:  # merged in order, as the rows of one machine
        reference = reference.merge(part.reference)
    return ModelBundle(fitted, data.preparation,
                       {**(info or {}), "roles": data.roles.to_dict(),
                        "unused_columns": data.roles.unused}, summary, reference)


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
                                 len(fitted.loss_history_),
                                 preservation_on_cluster(data, fitted, data.job))
            row["neighbors"] = int(fitted.neighbors)
            rows.append(row)
            if on_k is not None:
                on_k(row)
        baseline = data.pca(0)[0]
    finally:
        data.release()
    return rows, baseline, data.roles
