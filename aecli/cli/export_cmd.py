"""``aecli export``: a model's whole pipeline as an ONNX file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..errors import OutputError
from ..pipeline import modelfile
from ..pipeline.onnx_export import ExportTarget, export_onnx
from ..pipeline.sinks import atomic_open
from . import options as o
from .outputs import refuse_collisions
from .runtime import Run, guarded, stderr_console, write_stdout


@guarded
def export(
    model: o.ModelArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the ONNX "
                                         "file ('-': stdout, when it is no terminal).",
                                         rich_help_panel=o.OUTPUT)] = ...,
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
    to_stdout = str(output) == "-"
    refuse_collisions({"the model MODEL": model}, {"-o": output})
    if to_stdout and sys.stdout is not None and sys.stdout.isatty():
        raise OutputError("-o -: the ONNX graph is binary and stdout is a terminal",
                          hint="redirect it (-o - > model.onnx, or | a program), or give a "
                          "file name with -o")
    bundle = modelfile.read_model(model)
    data = export_onnx(bundle, what, single_input=single_input)  # refuses before writing
    if to_stdout:
        write_stdout(data)
    else:
        with atomic_open(output) as f:
            f.write(data)
    if not run.quiet:
        where = "stdout" if to_stdout else output
        stderr_console().print(f"{what.value} graph of {model} written to {where}",
                               markup=False)
