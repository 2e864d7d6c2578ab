"""``--scheduler``: ``encode``, ``reconstruct`` and ``score`` of a partitioned data set on a
Dask cluster (see :mod:`aecli.pipeline.cluster_apply`)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from ..errors import DataError
from ..pipeline import Format, cluster_apply, modelfile
from ..pipeline import scheduler as scheduling
from . import options as o
from .runtime import Run, stderr_console
from .score_report import json_report, say_score


class FromEnvironment(str):
    """A ``--scheduler`` value that came from ``DASK_SCHEDULER_ADDRESS``."""


def _mark_source(ctx: typer.Context, param: typer.CallbackParam, value: str | None):
    # The source is known only while the options are parsed (a command may run on another
    # thread, away from click's context): the value carries it from here. By name: Typer
    # brings a click of its own, whose enum is not click's.
    source = ctx.get_parameter_source(param.name)
    if value is not None and getattr(source, "name", None) == "ENVIRONMENT":
        return FromEnvironment(value)
    return value


Scheduler = Annotated[str | None, typer.Option(
    "--scheduler", envvar=scheduling.SCHEDULER_ENV, show_envvar=True, callback=_mark_source,
    help="Run on a Dask cluster: its address (tcp://HOST:8786, HOST:8786), or local:N for N "
    "worker processes here. DATA is then a directory, glob or list of files (one partition "
    "each). Taken from the environment, it is named on stderr. Needs aecli[dask].",
    rich_help_panel=o.DATA)]
# encode, reconstruct and score write -o DIR as part files on a cluster: the environment alone
# never turns their -o FILE into a directory (see wanted)
PartsScheduler = Annotated[str | None, typer.Option(
    "--scheduler", help="Run on a Dask cluster: its address (tcp://HOST:8786, HOST:8786), or "
    "local:N for N worker processes here. DATA is then a directory, glob or list of files "
    "(one partition each), and -o DIR gets one part file each. Only this option does it: "
    f"{scheduling.SCHEDULER_ENV} alone is not used here. Needs aecli[dask].",
    rich_help_panel=o.DATA)]


def wanted(command: str, scheduler: str | None, run: Run) -> bool:
    """Whether ``command`` (encode, reconstruct, score) runs on a cluster: only when
    ``--scheduler`` says so. A scheduler in the environment is named on stderr and left
    alone: honouring it would make -o FILE a directory of parts without a word."""
    if scheduler is not None:  # even empty: checked as an address, not silently ignored
        return True
    address = os.environ.get(scheduling.SCHEDULER_ENV, "").strip()
    if address and not run.quiet:
        stderr_console().print(
            f"note: {scheduling.SCHEDULER_ENV} is set, but {command} runs on this machine: a "
            "cluster run writes a directory of parts, so it needs --scheduler "
            f'(--scheduler "${scheduling.SCHEDULER_ENV}")', markup=False, soft_wrap=True)
    return False


def _files_only(data, scheduler: str) -> None:
    if data in (None, "-"):
        hint = "name a directory, a glob (data/*.parquet) or a list of files"
        if isinstance(scheduler, FromEnvironment):
            hint += (f"; {scheduling.SCHEDULER_ENV} in the environment chose the cluster: "
                     "unset it to run on this machine")
        raise DataError("a cluster run reads a data set of files, not stdin", hint=hint)


def _connect(scheduler: str, run: Run, err, what: str):
    """The client of ``scheduler``; when it came from the environment, stderr says so."""
    source = "--scheduler"
    if isinstance(scheduler, FromEnvironment):
        source = scheduling.SCHEDULER_ENV
        if not run.quiet:
            err.print(f"note: {what} on the Dask cluster at {scheduler}, from "
                      f"{scheduling.SCHEDULER_ENV} (unset it to run on this machine)",
                      markup=False, soft_wrap=True)
    verbose = (lambda line: err.print(line, markup=False)) if run.verbose else None
    return scheduling.connect(scheduler, verbose, source)


def train(data, params: dict, options, run: Run, err, *, scheduler: str,
          stream: bool = False):
    """``train --scheduler``: the model trained data-parallel on the cluster, the table read
    with the data ``options`` (:class:`aecli.pipeline.sources.DataOptions`)."""
    from ..pipeline import train_cluster
    from .data import say_roles
    from .progress import TrainingProgress

    _files_only(data, scheduler)
    info = {"source": str(data), "scheduler": scheduler}
    with _connect(scheduler, run, err, "training") as client, \
            TrainingProgress(err, run.quiet, run.verbose) as progress:
        return train_cluster.train_on_cluster(
            client, data, options, params, missing=options.missing, scale=options.scale,
            callback=progress, info=info,
            on_roles=None if run.quiet else (lambda roles: say_roles(err, roles)),
            reread=stream)


class _PartProgress:
    """Partitions written: a bar on a terminal, a line each otherwise, nothing with -q."""

    def __init__(self, err, command: str, quiet: bool):
        self.err, self.command, self.quiet = err, command, quiet
        self.bar = self.task = None

    def __enter__(self):
        if not self.quiet and self.err.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.bar = Progress(TextColumn(f"{self.command}: partitions"), BarColumn(),
                                MofNCompleteColumn(), console=self.err, transient=True)
            self.bar.start()
        return self

    def __call__(self, done: int, total: int) -> None:
        if self.quiet:
            return
        if self.bar is None:
            self.err.print(f"{self.command}: {done}/{total} partitions written", markup=False)
            return
        if self.task is None:
            self.task = self.bar.add_task(self.command, total=total)
        self.bar.update(self.task, completed=done)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def compare(data, ks: list[int] | None, params: dict, options, run: Run, err, on_k, *,
            scheduler: str):
    """``compare-pca --scheduler``: the sweep on the cluster (``ks`` None: the default one,
    clipped to the columns); (rows, suggestion, roles)."""
    from ..pipeline import compare as comparing
    from ..pipeline import train_cluster
    from .data import say_roles

    _files_only(data, scheduler)
    validation = params.get("validation", 0.2) or 0.2  # a comparison needs held-out rows

    def roles_seen(roles):
        if not run.quiet:
            say_roles(err, roles)

    with _connect(scheduler, run, err, "comparing") as client:
        rows, baseline, roles = train_cluster.compare_on_cluster(
            client, data, options, ks,
            {**params, "validation": validation}, missing=options.missing, scale=options.scale,
            on_k=on_k,
            on_roles=roles_seen)
    return rows, comparing.suggest_k(rows, baseline, n_features=len(roles.features)), roles


def run(command: str, model, data, io, run: Run, *, error_column: bool = False,
        probabilities: bool = False, top: int | None = None, threshold: float | None = None,
        json_out: bool = False, fail_on_anomaly: bool = False) -> None:
    """The cluster form of ``command``: parts on the workers, the summary here."""
    _files_only(data, io.scheduler)
    if io.output in (None, "-"):
        raise DataError("a cluster run writes a directory of part files: give -o DIR",
                        hint=f"e.g. aecli {command} MODEL DATA --scheduler "
                        f"{io.scheduler} -o out/")
    err = stderr_console()
    job = cluster_apply.Job(command, tuple(o.split_list(io.keep) or ()), io.data,
                            io.fmt or Format.parquet, error_column, probabilities, threshold,
                            top or 10)

    with _connect(io.scheduler, run, err, command) as client, \
            _PartProgress(err, command, run.quiet) as progress:
        result = cluster_apply.run_on_cluster(client, model, data, io.output, job, progress)
    for note in [] if run.quiet else result.notes:
        err.print(f"note: {note}", markup=False)
    if not run.quiet:
        err.print(f"{result.rows:,} row(s) in {result.parts} part(s) written to {io.output}",
                  markup=False)
    if command != "score":
        return
    bundle = modelfile.read_model(model)
    summary, limit = result.summary, result.summary.threshold
    outcome = summary.report(bundle, result.totals)
    if json_out:
        json_report(outcome)
    say_score(err, outcome, summary, limit, run, fail_on_anomaly)
