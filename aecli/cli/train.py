"""``aecli train``: fit the scaler and the autoencoder, save the model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .. import report
from ..errors import naming_input
from ..estimators.hyperparameters import check_latent_below
from ..io import AtomicFile, BadValues, atomic_open
from ..pipeline import modelfile, train_streamed
from ..pipeline import train as training
from ..preprocessing import MAX_LEVELS, MissingPolicy, Roles, ScalerKind
from ..report.jsondoc import json_text
from ..report.plots import loss_plot, require_matplotlib
from . import cluster
from . import options as o
from .data import Reading, load_features, say_roles, stream_features, write_columns
from .outputs import refuse_collisions
from .progress import TrainingProgress
from .runtime import Run, guarded, stderr_console, write_stdout
from .training_options import training_options


@guarded
@training_options(patience=20)
def train(
    data: o.DataArg = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to save the model "
                                         "(.npz).", rich_help_panel=o.OUTPUT)] = ...,
    params: dict = None,  # every training option: see training_options
    input_format: o.InputFormat = None,
    columns: o.Columns = None,
    exclude: o.Exclude = None,
    categorical: o.Categorical = None,
    max_levels: o.MaxLevels = MAX_LEVELS,
    missing: o.Missing = MissingPolicy.ERROR,
    bad_values: o.BadValuesOption = BadValues.ERROR,
    scale: o.Scale = ScalerKind.STANDARD,
    delimiter: o.Delimiter = None,
    decimal: o.Decimal = None,
    history: Annotated[Path | None, typer.Option("--history", help="Write per-epoch losses "
                                                 "here (CSV, Parquet, ...).",
                                                 rich_help_panel=o.OUTPUT)] = None,
    plot: o.Plot = None,
    stream: Annotated[bool, typer.Option("--stream", help="Read the file anew every epoch "
                                         "instead of loading it: for data larger than memory "
                                         "(rows are shuffled within chunks).",
                                         rich_help_panel=o.DATA)] = False,
    json_out: o.Json = False,
    threads: o.Threads = None,
    scheduler: cluster.Scheduler = None,
    run: Run = None,
):
    """Train an autoencoder on a table and save it as a model file.

    Example:

      aecli train sample_data/digits.csv --exclude label -k 2 -o digits.npz
    """
    refuse_collisions({"the input DATA": data},
                      {"-o": output, "--history": history, "--plot": plot})
    if plot is not None:
        require_matplotlib()
    err = stderr_console()
    for path in (output, history, plot):
        if path is not None:
            AtomicFile(path).abort()  # an unwritable path fails now, not after training
    if scheduler:
        bundle = cluster.train(data, params, run, err, input_format=input_format,
                               columns=o.split_list(columns), exclude=o.split_list(exclude),
                               categorical=categorical, max_levels=max_levels, missing=missing,
                               scale=scale, bad_values=bad_values, scheduler=scheduler,
                               stream=stream)
        roles = Roles(**{k: v for k, v in bundle.info["roles"].items()})
    else:
        load, fit = ((stream_features, train_streamed.train_bundle_streaming) if stream
                     else (load_features, training.train_bundle))
        rows, roles, surveyed = load(data, Reading(
            input_format, o.split_list(columns), o.split_list(exclude), categorical,
            max_levels, bad_values, delimiter, decimal))
        if not run.quiet:
            say_roles(err, roles, surveyed)
        check_latent_below(params["latent"], len(roles.features))  # as compare-pca does
        info = {"source": "<stdin>" if data in (None, "-") else str(data),
                "unused_columns": roles.unused, "roles": roles.to_dict(),
                "reading": surveyed.record()}
        with naming_input(info["source"]), TrainingProgress(err, run.quiet,
                                                            run.verbose) as progress:
            bundle = fit(rows, roles.numeric, params, missing=missing, scale=scale,
                         callback=progress, info=info, bad_values=bad_values)
    summary = bundle.summary
    for warning in [] if run.quiet else bundle.missing_warnings():
        err.print(f"warning: {warning}", markup=False)
    with atomic_open(output) as f:
        modelfile.write_model(bundle, f)
    if history is not None:
        val = summary["val_loss_history"]
        write_columns(history, {
            "epoch": list(range(1, summary["epochs_run"] + 1)),
            "train_loss": summary["loss_history"],
            "validation_loss": val if val is not None else [None] * summary["epochs_run"],
        })
    if plot is not None:
        loss_plot(plot, summary)
    if not run.quiet:
        err.print(report.train_summary(summary))
        if summary.get("calibration_warning"):
            err.print(f"warning: {summary['calibration_warning']}", markup=False)
        err.print(f"model saved to {output}", markup=False)
    if json_out:
        write_stdout(json_text({**summary, "roles": roles.to_dict(), "model": str(output)})
                     + "\n")

