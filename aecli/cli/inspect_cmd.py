"""``aecli inspect``: what a model file holds."""

from __future__ import annotations

from .. import report
from ..pipeline import modelfile
from ..report.jsondoc import json_text
from . import options as o
from .runtime import Run, guarded, stdout_console, write_stdout


@guarded
def inspect(
    model: o.ModelArg,
    json_out: o.Json = False,
    run: Run = None,
):
    """Show a model's architecture, columns, scaler, training settings, metrics and format.

    Example:

      aecli inspect digits.npz --json
    """
    bundle, meta = modelfile.read_model_and_meta(model)  # checks every array, not only meta
    if json_out:
        write_stdout(json_text(meta) + "\n")
        return
    info = {
        "path": str(model),
        "format_version": meta["format_version"],
        "aecli_version": meta["aecli_version"],
        "created": meta["created"],
        "features": meta["features"],
        "categorical": meta.get("categorical", []),
        "roles": meta.get("info", {}).get("roles"),
        "reading": meta.get("info", {}).get("reading"),
        "bad_values": meta.get("bad_values", "error"),
        "architecture": [{"in": s["n_in"], "out": s["n_out"], "activation": s["activation"]}
                         for s in meta["architecture"]],
        "scaler": meta["scaler"],
        "missing": meta["missing"],
        "settings": meta["params"],
        "metrics": {k: v for k, v in meta["summary"].items()
                    if k not in ("loss_history", "val_loss_history", "threshold",
                                 "calibration_rows", "calibration_warning",
                                 "calibration_method", "calibration_source", "score",
                                 "score_models")},
        "threshold": meta["summary"]["threshold"],
        "calibration_rows": meta["summary"].get("calibration_rows"),
        "calibration_warning": meta["summary"].get("calibration_warning"),
        "calibration_method": meta["summary"].get("calibration_method"),
        "calibration_source": meta["summary"].get("calibration_source"),
        # files before format 4 scored by the error alone
        "score": meta["summary"].get("score", "error"),
        "score_models": len(bundle.autoencoder.score_models()),  # those that do score
    }
    stdout_console().print(report.inspect_panel(info))
