"""``aecli compare-pca``: the autoencoder against PCA on the same held-out rows, over k."""

from __future__ import annotations

import shlex
import sys
from typing import Annotated

import typer

from .. import report
from ..errors import naming_input
from ..pipeline import MAX_WIDTH, compare
from ..pipeline.sinks import write_columns
from ..pipeline.sources import DataOptions, input_name, load_features
from ..report.jsondoc import json_text
from ..report.plots import compare_plot, require_matplotlib
from . import cluster
from . import options as o
from .data import say_roles
from .data_options import data_options
from .outputs import refuse_collisions
from .progress import TrainingProgress
from .runtime import Run, guarded, stderr_console, stdout_console, write_stdout
from .training_options import training_options


def parse_ks(text: str) -> list[int]:
    """``"1,2,4"`` or ``"1-8"`` (every k) or ``"2-16:2"`` (a step) → sorted unique ks.

    Each part is checked before a range is expanded, so a mistyped ``1-99999999999`` is a
    usage error, not a set of 10^11 numbers."""
    top = MAX_WIDTH

    def bad(message: str) -> typer.BadParameter:
        return typer.BadParameter(message, param_hint="--latent")

    ks: set[int] = set()
    for part in o.split_list(text) or []:
        try:
            if "-" in part:
                span, _, step_text = part.partition(":")
                lo, hi = (int(x) for x in span.split("-", 1))
                step = int(step_text) if step_text else 1
            else:
                lo = hi = int(part)
                step = 1
        except ValueError:
            raise bad(f"{part!r} is not a k, a list (1,2,4) or a range (1-8)") from None
        if lo < 1:
            raise bad(f"{part!r}: give k values >= 1, e.g. 1,2,4,8")
        if hi < lo:
            raise bad(f"{part!r} is reversed: a range runs from the smaller k to the larger, "
                      f"e.g. {hi}-{lo}")
        if step < 1:
            raise bad(f"{part!r}: the step after ':' must be at least 1, e.g. {lo}-{hi}:2")
        if hi > top:
            raise bad(f"{part!r}: k={hi:,} is more than {top:,}, the largest code aecli "
                      "builds; k must also be below the number of features")
        ks.update(range(lo, hi + 1, step))
    if not ks:
        raise bad("give k values >= 1, e.g. 1,2,4,8")
    return sorted(ks)


def rerun_command(data, ks: str, argv: list[str] | None = None) -> str:
    """This command line again with ``-k ks`` in place of its own ``-k``: the same data and
    options, ready to paste. Outside a real command line (``argv`` without
    ``compare-pca``), the data and ``-k`` alone."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "compare-pca" not in args:
        return shlex.join(["aecli", "compare-pca", data or "-", "-k", ks])
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("-k", "--latent"):
            skip = True
        elif not (arg.startswith("--latent=") or (arg.startswith("-k") and arg != "-k")):
            out.append(arg)
    return shlex.join(["aecli", *out, "-k", ks])


@guarded
@training_options(skip=("latent", "contamination"), patience=20, validation=0.2)
@data_options
def compare_pca(
    data: o.DataArg = None,
    latent: Annotated[str | None, typer.Option(
        "-k", "--latent", help="k values: 2, or 1,2,4,8, or a range 1-8 (default: 1,2,4,8, "
        "those below the number of features).", rich_help_panel=o.TRAINING)] = None,
    params: dict = None,  # the other training options: see training_options
    data_opts: DataOptions = None,  # every data option: see data_options
    json_out: o.Json = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="The sweep as CSV on stdout.",
                                          rich_help_panel=o.OUTPUT)] = False,
    plot: o.Plot = None,
    threads: o.Threads = None,
    scheduler: cluster.Scheduler = None,
    run: Run = None,
):
    """Compare the autoencoder with PCA on the same held-out rows, for one k or a sweep.

    Example:

      aecli compare-pca sample_data/curve.csv -k 1,2,3,4 --epochs 60
    """
    refuse_collisions({"the input DATA": data}, {"--plot": plot})
    if plot is not None:
        require_matplotlib()
    ks = parse_ks(latent) if latent is not None else None
    err = stderr_console()

    def on_k(row):
        if not run.quiet:
            trust = "" if row.get("ae_trustworthiness") is None else (
                f"; trustworthiness PCA {row['pca_trustworthiness']:.3f}, autoencoder "
                f"{row['ae_trustworthiness']:.3f}")
            err.print(f"k={row['k']}: held-out MSE PCA {row['pca_mse']:.4g}, autoencoder "
                      f"{row['ae_mse']:.4g} ({row['epochs_run']} epochs){trust}", markup=False)

    # Off a terminal, one line per k says enough; -v adds the epochs.
    epochs_quiet = run.quiet or not (err.is_terminal or run.verbose)
    if scheduler:
        rows, suggestion, roles = cluster.compare(data, ks, params, data_opts, run, err, on_k,
                                                  scheduler=scheduler)
        features = roles.features
    else:
        X, roles, surveyed = load_features(data, data_opts)
        features = roles.features
        if ks is None:
            ks = compare.default_ks(len(features)) or [1]  # one feature: refused as k >= 1
        if not run.quiet:
            say_roles(err, roles, surveyed)
        with naming_input(input_name(data)), TrainingProgress(err, epochs_quiet, run.verbose,
                                                              label="sweep") as progress:
            rows, suggestion = compare.compare_with_pca(
                X, roles.numeric, ks, params, missing=data_opts.missing, scale=data_opts.scale,
                bad_values=data_opts.bad_values, on_k=on_k, before_k=progress.relabel,
                callback=progress,
            )
    if suggestion and suggestion.get("larger_sweep"):
        suggestion["command"] = rerun_command(data, suggestion["larger_sweep"])
    if plot is not None:
        compare_plot(plot, rows, suggestion)
    if json_out:
        write_stdout(json_text({"rows": rows, "suggestion": suggestion,
                                "features": features}) + "\n")
    elif csv_out:
        write_columns(None, {key: [r[key] for r in rows] for key in rows[0]})
    table = report.compare_table(rows, suggestion)
    if json_out or csv_out:
        if not run.quiet:
            err.print(table)  # stdout carries the machine-readable sweep
    elif run.quiet:
        stdout_console().print(table)  # the table is the result: -q silences only the rest
    else:
        # People at a terminal get the table on stdout; scripts get it on stderr.
        out = stdout_console()
        (out if out.is_terminal else err).print(table)
    if suggestion and suggestion.get("command") and not run.quiet:
        # on a line of its own, never wrapped: it pastes as printed
        err.print(f"a larger sweep: {suggestion['command']}", markup=False, soft_wrap=True)
