"""``aecli train``: fit the scaler and the autoencoder, save the model."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from .. import modelfile, report, streaming, workflows
from ..io import AtomicFile, atomic_open
from ..nn import ActivationKind, OptimizerKind
from ..plots import loss_plot, require_matplotlib
from ..preprocessing import MissingPolicy, ScalerKind
from . import options as o
from .data import load_features, naming_errors, stream_features, write_columns
from .progress import TrainingProgress
from .runtime import guarded, stderr_console


def training_params(latent, hidden, activation, latent_activation, output_activation, tied,
                    epochs, batch_size, lr, optimizer, nesterov, weight_decay, dropout, noise,
                    sparsity, validation, patience, seed, dtype, contamination=0.01) -> dict:
    """Autoencoder keyword arguments from command-line values."""
    return dict(
        latent=latent, hidden=o.parse_sizes(hidden, "--hidden"), activation=activation.value,
        latent_activation=latent_activation.value, output_activation=output_activation.value,
        tied=tied, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer.value,
        nesterov=nesterov, weight_decay=weight_decay, dropout=dropout, noise=noise,
        sparsity=sparsity, validation=validation, patience=patience or None,
        contamination=contamination, seed=seed, dtype=str(dtype.value),
    )


@guarded
def train(
    data: o.DataArg = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to save the model "
                                         "(.npz).", rich_help_panel=o.OUTPUT)] = ...,
    latent: Annotated[int, typer.Option("-k", "--latent", min=1, help="Code size k.",
                                        rich_help_panel=o.TRAINING)] = 2,
    hidden: o.Hidden = "64,32",
    activation: o.Activation = ActivationKind.ELU,
    latent_activation: o.LatentActivation = ActivationKind.LINEAR,
    output_activation: o.OutputActivation = ActivationKind.LINEAR,
    tied: o.Tied = False,
    epochs: o.Epochs = 100,
    batch_size: o.BatchSize = 64,
    lr: o.LearningRate = 1e-3,
    optimizer: o.Optimizer = OptimizerKind.ADAM,
    nesterov: o.Nesterov = False,
    weight_decay: o.WeightDecay = 0.0,
    dropout: o.Dropout = 0.0,
    noise: o.Noise = 0.0,
    sparsity: o.Sparsity = 0.0,
    validation: o.Validation = 0.1,
    patience: o.Patience = 20,
    seed: o.Seed = 0,
    dtype: o.Dtype = o.DtypeChoice.FLOAT32,
    contamination: Annotated[float, typer.Option("--contamination", min=0.0, max=0.5,
                                                 callback=o.finite, help="Expected anomaly "
                                                 "fraction: sets the score threshold.",
                                                 rich_help_panel=o.TRAINING)] = 0.01,
    input_format: o.InputFormat = None,
    columns: o.Columns = None,
    exclude: o.Exclude = None,
    missing: o.Missing = MissingPolicy.ERROR,
    scale: o.Scale = ScalerKind.STANDARD,
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
    quiet: o.Quiet = False,
    verbose: o.Verbose = False,
    debug: o.Debug = False,
):
    """Train an autoencoder on a table and save it as a model file.

    Example:

      aecli train sample_data/digits.csv --exclude label -k 2 -o digits.npz
    """
    if plot is not None:
        require_matplotlib()
    err = stderr_console()
    params = training_params(latent, hidden, activation, latent_activation, output_activation,
                             tied, epochs, batch_size, lr, optimizer, nesterov, weight_decay,
                             dropout, noise, sparsity, validation, patience, seed, dtype,
                             contamination)
    for path in (output, history, plot):
        if path is not None:
            AtomicFile(path).abort()  # an unwritable path fails now, not after training
    if stream:
        rows, features, unused = stream_features(data, input_format, o.split_list(columns),
                                                 o.split_list(exclude))
        fit = streaming.train_bundle_streaming
    else:
        rows, features, unused = load_features(data, input_format, o.split_list(columns),
                                               o.split_list(exclude))
        fit = workflows.train_bundle
    if unused and not quiet:
        err.print(f"not used as features: {', '.join(unused)}", markup=False)
    info = {"source": "<stdin>" if data in (None, "-") else str(data), "unused_columns": unused}
    with naming_errors(info["source"]), TrainingProgress(err, quiet, verbose) as progress:
        bundle = fit(rows, features, params, missing=missing, scale=scale, callback=progress,
                     info=info)
    summary = bundle.summary
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
    if not quiet:
        err.print(report.train_summary(summary))
        err.print(f"model saved to {output}", markup=False)
    if json_out:
        sys.stdout.write(json.dumps({**summary, "model": str(output)}) + "\n")

