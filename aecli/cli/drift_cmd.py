"""``aecli drift``: whether a batch differs from the data the model was trained on."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import DataError, DriftFound
from ..pipeline import Format
from ..pipeline import drift as drifting
from ..pipeline.sinks import write_columns
from ..pipeline.sources import DataOptions
from ..report.jsondoc import json_text
from . import options as o
from .data_options import data_option, to_data_options
from .outputs import STDOUT, refuse_collisions
from .runtime import Run, guarded, stderr_console, write_stdout
from .signatures import expand

Scheduler = Annotated[str | None, typer.Option(
    "--scheduler", help="Count on a Dask cluster: its address (tcp://HOST:8786, HOST:8786), or "
    "local:N for N worker processes here. DATA is then a directory, glob or list of files (one "
    "partition each); only the counts come back. Needs aecli[dask].", rich_help_panel=o.DATA)]
COLUMNS = ("column", "kind", "test", "statistic", "p_value", "p_adjusted", "drift",
           "description", "reference", "batch")


def _level(value: float) -> float:
    if not 0.0 < value < 1.0:  # NaN too
        raise typer.BadParameter(f"{value} is not a level between 0 and 1 (e.g. 0.05)")
    return value


def _data_options(command):
    names = ("input_format", "missing", "bad_values", "delimiter", "decimal")
    return expand(command, "data_opts",
                  [data_option(n, from_model=n in ("input_format", "missing", "bad_values"))
                   for n in names], to_data_options)


Alpha = Annotated[float, typer.Option(
    "--alpha", callback=lambda v: _level(v),
    help="Level of the tests after the correction for their number (Holm's).")]
FailOnDrift = Annotated[bool, typer.Option(
    "--fail-on-drift", help="Exit 1 when drift is found (for cron); 0 otherwise, 2 on errors.")]
JsonOut = Annotated[bool, typer.Option(
    "--json", help="The report (every test, the verdict) as JSON on stdout.",
    rich_help_panel=o.OUTPUT)]
TestsOut = Annotated[str | None, typer.Option(
    "-o", "--output", help="Write the tests, one row each, here (CSV or Parquet by the "
    "extension, or --format).", rich_help_panel=o.OUTPUT)]
Top = Annotated[int | None, typer.Option(
    "--top", min=1, help="Show the N most drifted tests in the table (default: every "
    "drifted test, and at least 10).")]


@guarded
@_data_options
def drift(model: o.ModelArg, data: o.DataArg = None, data_opts: DataOptions = None,
          alpha: Alpha = 0.05, fail_on_drift: FailOnDrift = False, json_out: JsonOut = False,
          output: TestsOut = None, fmt: o.OutputFormat = None, top: Top = None,
          plot: o.Plot = None, scheduler: Scheduler = None, run: Run = None):
    """Compare DATA with the training data: each column (values, levels, missing rate) and
    the anomaly scores (the columns' joint relation), p-values corrected for the number of
    tests.

    Example:

      aecli drift digits.npz sample_data/digits.csv --fail-on-drift
    """
    refuse_collisions({"the model MODEL": model, "the input DATA": data},
                      {"-o": output, "--plot": plot,
                       "stdout": STDOUT if json_out or output == "-" else None})
    if json_out and output == "-":
        raise DataError("--json and -o - both write to stdout",
                        hint="write the per-column results to a file with -o FILE")
    if scheduler is not None:
        from . import cluster

        cluster._files_only(data, scheduler)
        with cluster._connect(scheduler, run, stderr_console(), "counting") as client:
            from ..pipeline import cluster_drift

            bundle, counts = cluster_drift.count_on_cluster(client, model, data, data_opts)
    else:
        bundle, counts = drifting.count_input(model, data, data_opts)
    result = drifting.drift_report(bundle, counts, alpha)
    if output is not None:
        write_columns(output, {c: [t[c] for t in result["tests"]] for c in COLUMNS},
                      Format(fmt) if fmt is not None else None)
    if plot is not None:
        from ..report.drift import drift_plot

        drift_plot(plot, drifting.plot_panels(bundle, counts, result))
    if json_out:
        write_stdout(json_text(result) + "\n")
    if not run.quiet:
        from ..report.drift import drift_table

        stderr_console().print(drift_table(result, top))
        for note in result["notes"]:
            stderr_console().print(f"note: {note}", markup=False, soft_wrap=True)
    if fail_on_drift and result["drift"]:
        from ..report.drift import what_drifted

        raise DriftFound(f"drift in {what_drifted(result['drifted'])}",
                         hint="see the table (or --json) for what moved; retrain on recent "
                         "data if the change is expected to last")
