"""``aecli train``: fit the scaler and the autoencoder, save the model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .. import report
from ..errors import naming_input
from ..pipeline import Roles, check_latent_below, train_streamed
from ..pipeline import train as training
from ..pipeline.sinks import check_writable, save_model, write_columns
from ..pipeline.sources import DataOptions, input_name, load_features, stream_features
from ..report.jsondoc import json_text
from ..report.plots import loss_plot, require_matplotlib
from . import cluster
from . import options as o
from .data import say_roles
from .data_options import data_options
from .outputs import refuse_collisions
from .progress import TrainingProgress
from .runtime import Run, guarded, stderr_console, write_stdout
from .training_options import training_options


@guarded
@training_options(patience=20)
@data_options
def train(
    data: o.DataArg = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to save the model "
                                         "(.npz).", rich_help_panel=o.OUTPUT)] = ...,
    params: dict = None,  # every training option: see training_options
    data_opts: DataOptions = None,  # every data option: see data_options
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
            check_writable(path)  # an unwritable path fails now, not after training
    if scheduler:
        bundle = cluster.train(data, params, data_opts, run, err, scheduler=scheduler,
                               stream=stream)
        roles = Roles(**{k: v for k, v in bundle.info["roles"].items()})
    else:
        load, fit = ((stream_features, train_streamed.train_bundle_streaming) if stream
                     else (load_features, training.train_bundle))
        rows, roles, surveyed = load(data, data_opts)
        if not run.quiet:
            say_roles(err, roles, surveyed)
        check_latent_below(params["latent"], len(roles.features))  # as compare-pca does
        info = {"source": input_name(data),
                "unused_columns": roles.unused, "roles": roles.to_dict(),
                "reading": surveyed.record()}
        with naming_input(info["source"]), TrainingProgress(err, run.quiet,
                                                            run.verbose) as progress:
            bundle = fit(rows, roles.numeric, params, missing=data_opts.missing,
                         scale=data_opts.scale, callback=progress, info=info,
                         bad_values=data_opts.bad_values)
    summary = bundle.summary
    for warning in [] if run.quiet else bundle.missing_warnings():
        err.print(f"warning: {warning}", markup=False)
    save_model(bundle, output)
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

