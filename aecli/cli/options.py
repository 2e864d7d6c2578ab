"""Option declarations shared by several commands, each with its help text written once."""

from __future__ import annotations

import math
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ..io import Format
from ..nn import ActivationKind, OptimizerKind
from ..preprocessing import MissingPolicy, ScalerKind

TRAINING = "Training"
DATA = "Data"
OUTPUT = "Output"


def finite(value: float | None) -> float | None:
    """Option callback: refuse NaN and infinity, which pass every range check."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter("must be a finite number")
    return value


DataArg = Annotated[
    str | None,
    typer.Argument(metavar="DATA", help="Input table: a file, a directory or glob of Parquet "
                   "files, or '-' for stdin (the default).", show_default=False),
]
ModelArg = Annotated[
    Path, typer.Argument(metavar="MODEL", help="A model file written by 'aecli train'.",
                         show_default=False)
]
InputFormat = Annotated[
    Format | None,
    typer.Option("--input-format", help="Input format (default: from the extension, or "
                 "sniffed on stdin).", rich_help_panel=DATA),
]
OutputFormat = Annotated[
    Format | None,
    typer.Option("--format", help="Output format (default: from the -o extension; CSV on "
                 "stdout).", rich_help_panel=OUTPUT),
]
OutFile = Annotated[
    str | None,
    typer.Option("-o", "--output", help="Write the table here (default: stdout).",
                 rich_help_panel=OUTPUT),
]
Columns = Annotated[
    str | None,
    typer.Option("--columns", help="Comma-separated feature columns (default: every numeric "
                 "column).", rich_help_panel=DATA),
]
Exclude = Annotated[
    str | None,
    typer.Option("--exclude", help="Comma-separated columns not to use as features.",
                 rich_help_panel=DATA),
]
Keep = Annotated[
    str | None,
    typer.Option("--keep", help="Comma-separated columns to pass through to the output "
                 "(e.g. id,date).", rich_help_panel=OUTPUT),
]
Missing = Annotated[
    MissingPolicy,
    typer.Option("--missing", help="Missing values (NaN, empty, NA): error, drop the rows, "
                 "or impute training means.", rich_help_panel=DATA),
]
Scale = Annotated[
    ScalerKind,
    typer.Option("--scale", help="Column scaling, stored in the model.", rich_help_panel=DATA),
]
Hidden = Annotated[
    str,
    typer.Option("--hidden", help="Encoder layer sizes, comma-separated; the decoder mirrors "
                 "them. '' for none (a linear autoencoder with --activation linear equals "
                 "PCA).", rich_help_panel=TRAINING),
]
Activation = Annotated[
    ActivationKind,
    typer.Option("--activation", help="Hidden-layer activation.", rich_help_panel=TRAINING),
]
OutputActivation = Annotated[
    ActivationKind,
    typer.Option("--output-activation", help="Output-layer activation.",
                 rich_help_panel=TRAINING),
]
LatentActivation = Annotated[
    ActivationKind,
    typer.Option("--latent-activation", help="Code-layer activation.",
                 rich_help_panel=TRAINING),
]
Tied = Annotated[
    bool, typer.Option("--tied", help="Tie decoder weights to the encoder's (transposed).",
                       rich_help_panel=TRAINING)
]
Epochs = Annotated[int, typer.Option("--epochs", min=1, help="Passes over the data.",
                                     rich_help_panel=TRAINING)]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Rows per update.",
                                        rich_help_panel=TRAINING)]
LearningRate = Annotated[float, typer.Option("--lr", min=0.0, callback=finite,
                                             help="Learning rate.", rich_help_panel=TRAINING)]
Optimizer = Annotated[OptimizerKind, typer.Option("--optimizer", help="Optimizer.",
                                                  rich_help_panel=TRAINING)]
Nesterov = Annotated[bool, typer.Option("--nesterov", help="Nesterov momentum (with "
                                        "--optimizer momentum).", rich_help_panel=TRAINING)]
WeightDecay = Annotated[float, typer.Option("--weight-decay", min=0.0, callback=finite,
                                            help="L2 penalty on the weights.",
                                            rich_help_panel=TRAINING)]
Dropout = Annotated[float, typer.Option("--dropout", min=0.0, max=0.95, callback=finite,
                                        help="Dropout rate on hidden layers.",
                                        rich_help_panel=TRAINING)]
Noise = Annotated[float, typer.Option("--noise", min=0.0, callback=finite,
                                      help="Gaussian input noise (std, scaled units): a "
                                      "denoising autoencoder.", rich_help_panel=TRAINING)]
Sparsity = Annotated[float, typer.Option("--sparsity", min=0.0, callback=finite,
                                         help="L1 penalty on the code.",
                                         rich_help_panel=TRAINING)]
Validation = Annotated[float, typer.Option("--validation", min=0.0, max=0.9, callback=finite,
                                           help="Fraction of rows held out.",
                                           rich_help_panel=TRAINING)]
Patience = Annotated[int, typer.Option("--patience", min=0, help="Stop after this many "
                                       "epochs without improvement and restore the best "
                                       "weights; 0 trains every epoch.",
                                       rich_help_panel=TRAINING)]
Seed = Annotated[int, typer.Option("--seed", min=0, help="Random seed.",
                                   rich_help_panel=TRAINING)]


class DtypeChoice(StrEnum):
    """Float precision of the network."""

    FLOAT32 = "float32"
    FLOAT64 = "float64"


Dtype = Annotated[DtypeChoice, typer.Option("--dtype", help="Float precision of the network.",
                                            rich_help_panel=TRAINING)]
Threads = Annotated[int | None, typer.Option("--threads", min=1, help="Cap BLAS threads.")]
Quiet = Annotated[bool, typer.Option("-q", "--quiet", help="Only errors on stderr.")]
Verbose = Annotated[bool, typer.Option("-v", "--verbose", help="More detail on stderr.")]
Debug = Annotated[bool, typer.Option("--debug", help="Show full tracebacks.")]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.",
                                    rich_help_panel=OUTPUT)]
Plot = Annotated[Path | None, typer.Option("--plot", help="Write a PNG picture here "
                                           "(needs 'pip install aecli\\[plot]').",
                                           rich_help_panel=OUTPUT)]


def split_list(text: str | None) -> list[str] | None:
    """``"a, b"`` → ``["a", "b"]``; None stays None."""
    if text is None:
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_sizes(text: str, option: str) -> tuple[int, ...]:
    """``"64,32"`` → ``(64, 32)``, with a usage error naming the option otherwise."""
    sizes = []
    for part in split_list(text) or []:
        if not part.isdigit() or int(part) < 1:
            raise typer.BadParameter(f"{part!r} is not a positive whole number "
                                     "(e.g. --hidden 64,32)", param_hint=option)
        sizes.append(int(part))
    return tuple(sizes)
