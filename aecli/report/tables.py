"""The tables aecli shows: train summary, feature errors, PCA sweep and scores (a model's
description is in :mod:`.inspect`)."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

from .neighbors import compare_cells, compare_columns, summary_rows
from .text import (
    MISSING,
    as_number,
    fmt,
    format_explanation,
    sparkline,
    wants_log,
)


def _ratio(numerator: Any, denominator: Any) -> float | None:
    a, b = as_number(numerator), as_number(denominator)
    if a is None or b is None or b == 0:
        return None
    return a / b


def _versus_pca(ratio: float | None) -> str:
    """Words for an autoencoder/PCA MSE ratio, so the table reads without colour."""
    if ratio is None:
        return ""
    if abs(ratio - 1) < 0.01:
        return "within 1% of PCA"
    if ratio < 1:
        return f"autoencoder error {fmt(1 / ratio, 3)}× lower than PCA"
    if ratio > 1:
        return f"autoencoder error {fmt(ratio, 3)}× higher than PCA"
    return "same as PCA"


_STOPS = {"plateau": "stopped on a plateau, best weights restored",
          "converged": "converged", "budget": "the whole budget"}


def key_value_table(title: str | None = None) -> Table:
    table = Table(title=title, show_header=False, box=None, pad_edge=False, padding=(0, 2, 0, 0))
    table.add_column("what", style="bold", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)  # a wrapped figure misleads
    table.add_column("note", overflow="fold")
    return table


def train_summary(summary: Mapping[str, Any]) -> Table:
    """The table ``aecli train`` shows on stderr.

    Parameters
    ----------
    summary : mapping
        ``rows_train``, ``rows_validation``, ``features``, ``latent``, ``architecture`` (str),
        ``train_mse``, ``validation_mse`` (None without validation), ``pca_mse`` (PCA's MSE at
        the same k on the same rows as the headline MSE; None if not computed), ``epochs_run``,
        ``epochs_budget``, ``best_epoch``, ``stop_reason`` (budget, plateau or converged),
        ``optimizer``, ``schedule``, ``seconds``, ``loss_history`` and ``val_loss_history``
        (None without validation). Missing keys show as ``—``.

    Returns
    -------
    rich.table.Table
    """
    s = summary
    validation = as_number(s.get("validation_mse"))
    # PCA is compared on the same rows as the headline error: held out when there are any.
    headline, on = (validation, "validation") if validation is not None else (
        as_number(s.get("train_mse")), "train")
    ratio = _ratio(headline, s.get("pca_mse"))

    table = key_value_table("Training summary")
    held_out = s.get("rows_validation")
    table.add_row("rows", fmt(s.get("rows_train")),
                  f"train, {fmt(held_out)} validation" if held_out else "train, none held out")
    gaps = [f"{fmt(s['rows_dropped'])} rows with gaps dropped"] if s.get("rows_dropped") else []
    gaps += [f"{fmt(s['cells_imputed'])} cells imputed"] if s.get("cells_imputed") else []
    if gaps:
        table.add_row("missing values", "", ", ".join(gaps))
    table.add_row("features", fmt(s.get("features")), "")
    table.add_row("latent k", fmt(s.get("latent")), "")
    table.add_row("architecture", str(s.get("architecture") or MISSING), "")
    table.add_row("train MSE", fmt(s.get("train_mse")), "scaled units")
    if validation is not None:
        table.add_row("validation MSE", fmt(validation), "scaled units")
    if as_number(s.get("pca_mse")) is not None:
        table.add_row("PCA MSE", fmt(s.get("pca_mse")), f"same k, {on} rows")
        table.add_row("vs PCA", fmt(ratio), _versus_pca(ratio))
    for row in summary_rows(s):  # how the codes keep neighbours
        table.add_row(*row)
    if s.get("optimizer"):
        schedule = s.get("schedule")
        table.add_row("optimizer", str(s["optimizer"]),
                      f"learning rate: {schedule}" if schedule and schedule != "none" else "")
    best = s.get("best_epoch")
    epochs_note = [f"of {fmt(s['epochs_budget'])}"] if s.get("epochs_budget") else []
    epochs_note += [f"best {fmt(best)}"] if best is not None else []
    reason = s.get("stop_reason") or ("plateau" if s.get("stopped_early") else None)
    epochs_note += [_STOPS[reason]] if reason in _STOPS else []
    table.add_row("epochs", fmt(s.get("epochs_run")), ", ".join(epochs_note))
    table.add_row("time", fmt(s.get("seconds"), 3), "seconds")
    for label, history in (("train loss", s.get("loss_history")),
                           ("validation loss", s.get("val_loss_history"))):
        if history:
            scale = "  (log scale)" if wants_log(history) else ""
            table.add_row(label, f"{fmt(history[0])} → {fmt(history[-1])}",
                          sparkline(history, width=30) + scale)
    return table


def feature_error_table(
    names: Sequence[str],
    mse_scaled: Sequence[float],
    mse_original: Sequence[float],
    top: int | None = None,
    categorical: Collection[str] = (),
) -> Table:
    """Per-feature reconstruction error, worst first, with the mean over all features.

    Parameters
    ----------
    names : sequence of str, length d
    mse_scaled : sequence of float, length d
        MSE in scaled units; these are comparable across features, so they set the order.
    mse_original : sequence of float, length d
        MSE in each feature's own (squared) units; shown with its square root, the RMSE.
    top : int, optional
        Show only the ``top`` worst features (the mean row still covers all of them).
    categorical : collection of str
        The categorical features: their error is a cross-entropy (``-log p`` of the row's
        level), shown in nats, and has no original units.

    Returns
    -------
    rich.table.Table
    """
    if not len(names) == len(mse_scaled) == len(mse_original):
        raise ValueError(
            f"names, mse_scaled and mse_original differ in length: "
            f"{len(names)}, {len(mse_scaled)}, {len(mse_original)}")
    rows = list(zip(names, (as_number(v) for v in mse_scaled), (as_number(v) for v in mse_original),
                    strict=True))
    rows.sort(key=lambda r: (r[1] is None, -(r[1] or 0.0)))  # worst first, missing last
    shown = rows if top is None else rows[:max(top, 0)]

    categorical = set(categorical)
    table = Table(title="Reconstruction error by feature")
    table.add_column("feature", no_wrap=True)
    table.add_column("MSE (scaled) or nats" if categorical else "MSE (scaled)", justify="right")
    table.add_column("MSE (original units²)", justify="right")
    table.add_column("RMSE (original units)", justify="right")
    for name, scaled, original in shown:
        if name in categorical:  # a cross-entropy: no units to square or root
            table.add_row(Text(str(name)), f"{fmt(scaled)} nats", MISSING, MISSING)
            continue
        rmse = math.sqrt(original) if original is not None and original >= 0 else None
        table.add_row(Text(str(name)), fmt(scaled), fmt(original), fmt(rmse))
    scaled_values = [r[1] for r in rows if r[1] is not None]
    mean = sum(scaled_values) / len(scaled_values) if scaled_values else None
    table.add_section()
    # Original units differ between features, so only the scaled error has a meaningful mean.
    table.add_row(f"mean of {len(rows):,}", fmt(mean), MISSING, MISSING, style="bold")
    notes = []
    if len(shown) < len(rows):
        notes.append(f"the {len(shown):,} worst of {len(rows):,} features")
    if categorical:
        notes.append("a categorical column's error is its cross-entropy, -log p of the row's "
                     "level, in nats")
    if notes:
        table.caption = "; ".join(notes)
    return table


def compare_table(rows: Sequence[Mapping[str, Any]], suggestion: Mapping[str, Any] | None) -> Table:
    """Autoencoder vs PCA reconstruction error for each latent size k.

    Parameters
    ----------
    rows : sequence of mapping
        Each with ``k``, ``pca_explained_variance`` (cumulative fraction), ``pca_mse``,
        ``ae_mse`` and ``ratio`` (``ae_mse / pca_mse``; computed here when None or absent).
    suggestion : mapping or None
        ``k`` and ``rule`` (text saying how k was chosen); its row is marked and the caption
        states it. With ``largest_tried`` the caption says a larger k may do better and
        proposes ``-k larger_sweep``.

    Returns
    -------
    rich.table.Table
    """
    suggested = suggestion.get("k") if suggestion else None
    table = Table(title="Autoencoder vs PCA: reconstruction MSE", caption_justify="left")
    table.add_column("k", justify="right")
    table.add_column("PCA var. explained", justify="right")
    table.add_column("PCA MSE", justify="right")
    table.add_column("AE MSE", justify="right")
    table.add_column("AE / PCA", justify="right")
    shown = compare_columns(table, rows)  # trustworthiness, when measured
    table.add_column("", no_wrap=True)
    for row in rows:
        ratio = row.get("ratio")
        if as_number(ratio) is None:
            ratio = _ratio(row.get("ae_mse"), row.get("pca_mse"))
        mark = "◀ suggested" if suggested is not None and row.get("k") == suggested else ""
        table.add_row(fmt(row.get("k")), fmt(row.get("pca_explained_variance")),
                      fmt(row.get("pca_mse")), fmt(row.get("ae_mse")), fmt(ratio),
                      *compare_cells(row, shown), mark,
                      style="bold" if mark else None)
    if suggestion:
        table.caption = f"suggested k = {fmt(suggested)}: {suggestion.get('rule') or MISSING}"
        if suggestion.get("largest_tried"):
            wider = suggestion.get("larger_sweep")
            table.caption += (
                f"\nk = {fmt(suggested)} is the largest k tried, so a larger k may do better: "
                f"try -k {wider}" if wider else f"\nk = {fmt(suggested)} is the largest k "
                "tried, and the largest below the number of features")
    else:
        table.caption = "no k suggested"
    return table


def score_table(rows: Sequence[Mapping[str, Any]], threshold: float,
                of: int | None = None) -> Table:
    """Per-row anomaly scores, worst first.

    Parameters
    ----------
    rows : sequence of mapping
        Each with ``row`` (1-based row number in the input), ``score`` (what the threshold
        is compared with), ``error`` (reconstruction MSE over the observed cells),
        ``percentile`` (0-100, among the calibration scores), ``p_value`` (optional),
        ``flagged`` (bool), optionally
        ``imputed`` (cells filled in), and ``top_features`` (dicts with ``feature``,
        ``value``, ``expected`` and ``share``, or ``code``, ``distance`` and ``share``;
        largest first).
    threshold : float
        The threshold, shown in the title.
    of : int, optional
        How many rows the list was taken from: a caption says when it is cut.

    Returns
    -------
    rich.table.Table
    """
    table = Table(title=f"Anomaly scores (threshold {fmt(threshold)})")
    if of is not None and of > len(rows):
        table.caption = f"the {fmt(len(rows))} worst of {fmt(of)} rows over the threshold"
    table.add_column("row", justify="right")
    table.add_column("score", justify="right")
    table.add_column("error", justify="right")
    table.add_column("percentile", justify="right")
    table.add_column("p-value", justify="right")
    table.add_column("over", justify="center")
    imputed = any(r.get("imputed") for r in rows)
    if imputed:
        table.add_column("imputed", justify="right")
    table.add_column("top features: value (expected, share of the score)", overflow="fold")
    for r in rows:
        flagged = bool(r.get("flagged"))
        cells = [fmt(r.get("row")), fmt(r.get("score")), fmt(r.get("error")),
                 fmt(r.get("percentile")), fmt(r.get("p_value")),
                 "yes" if flagged else ""]
        if imputed:
            cells.append(fmt(r.get("imputed")))
        cells.append(Text(format_explanation(r.get("top_features") or [])))
        table.add_row(*cells, style="bold" if flagged else None)
    return table


def score_summary(n_rows: int, n_flagged: int, threshold: float) -> Text:
    """One line: how many of ``n_rows`` rows are over ``threshold``."""
    if n_flagged == 0:
        return Text(f"No rows over the threshold {fmt(threshold)} ({fmt(n_rows)} rows scored).")
    share = f" ({fmt(100 * n_flagged / n_rows, 3)}%)" if n_rows else ""
    noun = "row" if n_rows == 1 else "rows"
    return Text(f"{fmt(n_flagged)} of {fmt(n_rows)} {noun}{share} over the threshold "
                f"{fmt(threshold)}.", style="bold")
