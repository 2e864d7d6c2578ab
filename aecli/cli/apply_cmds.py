"""``aecli encode``, ``reconstruct`` and ``score``: stream a table through a trained model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer

from .. import report
from ..pipeline import Format, apply
from ..pipeline import score as scoring
from ..pipeline.sinks import write_batches, write_columns
from ..pipeline.sources import DataOptions, open_for_model, read_ahead, typed_output
from . import cluster
from . import options as o
from .data import check_color_by
from .data_options import data_option, to_data_options
from .outputs import refusing_stream_collisions
from .runtime import Run, guarded, stderr_console
from .score_report import json_report, say_score
from .signatures import expand, option

StreamThreads = Annotated[int | None, typer.Option(
    "--threads", min=1, help="BLAS threads for the model's arithmetic (default 1: reading and "
    "writing use the other cores).")]
# One BLAS thread unless --threads says otherwise. A batch's products are small next to
# reading and writing it, which pyarrow does on threads of its own that need the other cores:
# encoding 1M rows of Parquet on 2 cores with threads chosen by timing took 1.49-1.98 s
# against 1.18-1.51 s on one thread (5 runs each), and one thread is also what a busy
# machine wants.
STREAM_THREADS = 1


@dataclass(frozen=True)
class StreamIO:
    """The options of every stream command: where the rows go and in what format, which
    columns pass through, how the input is read and its gaps handled (``data``: the model's
    policies where not given), and BLAS threads (the runner pins them: see
    :func:`aecli.cli.runtime.guarded`)."""

    output: str | None = None
    fmt: Format | None = None
    keep: str | None = None
    threads: int | None = None
    scheduler: str | None = None  # a Dask cluster runs it: see cluster.py
    data: DataOptions = field(default_factory=lambda: DataOptions(missing=None,
                                                                  bad_values=None))


_DATA = ("input_format", "missing", "bad_values")  # the data options a stream command takes


def _stream_io(values: dict) -> StreamIO:
    data = to_data_options({name: values.pop(name) for name in _DATA})
    return StreamIO(**values, data=data)


def stream_options(command):
    """Give a command the :class:`StreamIO` options in place of its ``io`` parameter."""
    options = [option("output", o.OutFile, None), option("fmt", o.OutputFormat, None),
               option("keep", o.Keep, None), data_option("input_format", from_model=True),
               data_option("missing", from_model=True), option("threads", StreamThreads, None),
               data_option("bad_values", from_model=True),
               option("scheduler", cluster.PartsScheduler, None)]
    command = expand(refusing_stream_collisions(command), "io", options, _stream_io)
    command.default_threads = STREAM_THREADS  # what the runner pins without --threads
    return command


def _open(model: Path, data, io: StreamIO):
    return open_for_model(model, data, io.data, o.split_list(io.keep) or [],
                          typed_output(io.output, io.fmt))


def _dropped_note(totals, quiet, stream=None):
    for note in [] if quiet or stream is None else stream.notes:
        stderr_console().print(f"note: {note}", markup=False)
    if totals.dropped and not quiet:
        stderr_console().print(f"skipped {totals.dropped} row(s) with missing values (model "
                               "trained with --missing drop)", markup=False)


@guarded
@stream_options
def encode(
    model: o.ModelArg,
    data: o.DataArg = None,
    io: StreamIO = None,
    plot: o.Plot = None,
    color_by: Annotated[str | None, typer.Option("--color-by", help="Colour the --plot "
                                                 "points by this column.",
                                                 rich_help_panel=o.OUTPUT)] = None,
    run: Run = None,
):
    """Encode rows to their latent codes z1..zk.

    Example:

      cat sample_data/digits.csv | aecli encode digits.npz --keep label > codes.csv
    """
    if cluster.wanted("encode", io.scheduler, run):
        return cluster.run("encode", model, data, io, run)
    bundle, stream, keep_cols = _open(model, data, io)
    totals = apply.ErrorTotals()
    reader = read_ahead(stream)
    batches = apply.encode_stream(bundle, reader, keep_cols, stream.name, totals)
    if plot is not None:
        from ..report.plots import CodeCollector

        check_color_by(color_by, stream.schema, keep_cols)
        batches = CodeCollector(batches, color_by)
    with reader:
        write_batches(batches, io.output, io.fmt)
    if plot is not None:
        batches.save(plot)
    _dropped_note(totals, run.quiet, stream)
    if run.verbose:
        stderr_console().print(f"encoded {totals.rows} row(s) from {stream.name}", markup=False)


@guarded
@stream_options
def reconstruct(
    model: o.ModelArg,
    data: o.DataArg = None,
    io: StreamIO = None,
    error: Annotated[bool, typer.Option("--error/--no-error", help="Add each row's mean "
                                        "squared error (scaled units) as column 'error'.",
                                        rich_help_panel=o.OUTPUT)] = False,
    top: Annotated[int | None, typer.Option("--top-features", "--top", min=1,
                                            help="Show only the N worst features in the "
                                            "error table (--top, as score's rows, is the "
                                            "old name).")] = None,
    probabilities: Annotated[bool, typer.Option(
        "--probabilities", help="With each categorical column's most probable level, add "
        "its probability as column '<name>_probability'.", rich_help_panel=o.OUTPUT)] = False,
    run: Run = None,
):
    """Reconstruct rows through the code, in original units and column names.

    Example:

      aecli reconstruct digits.npz sample_data/digits.csv --error -o recon.parquet
    """
    if cluster.wanted("reconstruct", io.scheduler, run):
        return cluster.run("reconstruct", model, data, io, run, error_column=error,
                           probabilities=probabilities)
    err = stderr_console()
    bundle, stream, keep_cols = _open(model, data, io)
    totals = apply.ErrorTotals()
    with read_ahead(stream) as reader:
        write_batches(apply.reconstruct_stream(bundle, reader, keep_cols, stream.name, totals,
                                               error, probabilities), io.output, io.fmt)
    _dropped_note(totals, run.quiet, stream)
    if not run.quiet and totals.rows:
        scaled, original = totals.means()
        categorical = [c.name for c in bundle.preparation.categorical]  # in nats
        err.print(report.feature_error_table(bundle.features, scaled, original, top=top,
                                             categorical=categorical))


@guarded
@stream_options
def score(
    model: o.ModelArg,
    data: o.DataArg = None,
    io: StreamIO = None,
    top: Annotated[int | None, typer.Option("--top", min=1, help="Output only the N worst "
                                            "rows, worst first.")] = None,
    threshold: Annotated[float | None, typer.Option("--threshold", min=0.0, callback=o.finite,
                                                    help="Flag rows whose score exceeds this "
                                                    "(default: the threshold calibrated at "
                                                    "training).")
                         ] = None,
    fail_on_anomaly: Annotated[bool, typer.Option("--fail-on-anomaly", help="Exit 1 when any "
                                                  "row is flagged (for cron).")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="The report (counts, worst and "
                                           "flagged rows, per-feature error) as JSON on "
                                           "stdout; the rows still go to -o FILE if given.",
                                           rich_help_panel=o.OUTPUT)] = False,
    plot: o.Plot = None,
    run: Run = None,
):
    """Score rows against the model's anomaly threshold: reconstruction error plus the
    code's distance from the training codes.

    Example:

      aecli score digits.npz sample_data/digits.csv --top 10 --fail-on-anomaly
    """
    if cluster.wanted("score", io.scheduler, run):
        return cluster.run("score", model, data, io, run, top=top, threshold=threshold,
                           json_out=json_out, fail_on_anomaly=fail_on_anomaly)
    err = stderr_console()
    bundle, stream, keep_cols = _open(model, data, io)
    limit = threshold if threshold is not None else bundle.autoencoder.threshold_
    totals, summary = apply.ErrorTotals(), scoring.ScoreSummary(limit)
    n_worst = top if top is not None else 10
    reader = read_ahead(stream)
    batches = scoring.score_stream(bundle, reader, keep_cols, stream.name, totals, summary,
                                 n_worst)
    collector = None
    if plot is not None:
        from ..report.plots import ErrorCollector

        batches = collector = ErrorCollector(batches)
    # stdout carries one thing: the JSON report with --json, else the rows; a file named
    # with -o gets the rows either way
    write_rows = not json_out or io.output not in (None, "-")
    with reader:
        if top is not None or not write_rows:
            for _ in batches:  # the report is built from the summary once all rows are seen
                pass
        else:
            write_batches(batches, io.output, io.fmt)
    if top is not None and write_rows:
        write_columns(io.output, summary.ranked_columns(keep_cols), io.fmt)
    if collector is not None:
        collector.save(plot, limit)
    result = summary.report(bundle, totals)
    if json_out:
        json_report(result)
    _dropped_note(totals, run.quiet, stream)
    details = report.feature_error_table(
        bundle.features, *totals.means(), top=10,
        categorical=[c.name for c in bundle.preparation.categorical]) \
        if run.verbose and not run.quiet else None
    say_score(err, result, summary, limit, run, fail_on_anomaly, details)
