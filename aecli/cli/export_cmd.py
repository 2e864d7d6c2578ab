"""``aecli export``: a model's whole pipeline as an ONNX file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..io import atomic_open
from ..pipeline import modelfile
from ..pipeline.onnx_export import ExportTarget, export_onnx
from . import options as o
from .runtime import Run, guarded, stderr_console


@guarded
def export(
    model: o.ModelArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the ONNX "
                                         "file.", rich_help_panel=o.OUTPUT)] = ...,
    what: Annotated[ExportTarget, typer.Option("--what", help="What the graph computes: the "
                                               "codes, the reconstruction (and each row's "
                                               "error), or the error, the score and the "
                                               "anomaly flag.")
                    ] = ExportTarget.ENCODE,
    single_input: Annotated[bool, typer.Option("--single-input", help="One float64 input 'X' "
                                               "(N, features) in the model's column order, "
                                               "instead of one (N, 1) input per column.")
                            ] = False,
    run: Run = None,
):
    """Export a model's pipeline (imputation, scaling, network, and for --what score the
    error and the flag) as ONNX, for ONNX Runtime in any language.

    Example:

      aecli export digits.npz --what score -o digits-score.onnx
    """
    bundle = modelfile.read_model(model)
    data = export_onnx(bundle, what, single_input=single_input)  # refuses before writing
    with atomic_open(output) as f:
        f.write(data)
    if not run.quiet:
        stderr_console().print(f"{what.value} graph of {model} written to {output}",
                               markup=False)
