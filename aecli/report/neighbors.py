"""How well codes keep neighbours, as rows and cells of the training and compare tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table

from .text import as_number, fmt

# (summary key of the autoencoder's figure, of PCA's, label)
FIGURES = (("trustworthiness", "pca_trustworthiness", "trustworthiness"),
           ("knn_recall", "pca_knn_recall", "kNN recall"))


def summary_rows(s: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """Rows (label, value, note) of the training summary for the codes' trustworthiness and
    kNN recall (see :func:`aecli.pipeline.train.preservation`); none when not measured."""
    rows = []
    for ours, pca, label in FIGURES:
        if as_number(s.get(ours)) is None:
            continue
        note = f"k={fmt(s.get('neighbors_k'))} on {fmt(s.get('neighbors_rows'))} rows"
        if as_number(s.get(pca)) is not None:
            note += f"; PCA {fmt(s.get(pca))}"
        rows.append((label, fmt(s.get(ours)), note))
    return rows


def compare_columns(table: Table, rows: Sequence[Mapping[str, Any]]) -> bool:
    """Add the compare table's trustworthiness columns (PCA, autoencoder) when the sweep
    trained with neighbours (``neighbors`` above 0) and measured them; whether it did. Without
    neighbours the figures are in the progress lines, ``--json`` and ``--csv``: two more
    columns would squeeze an 80-column table's errors."""
    if not any(as_number(r.get("ae_trustworthiness")) is not None and r.get("neighbors")
               for r in rows):
        return False
    table.add_column("PCA trust.", justify="right")
    table.add_column("AE trust.", justify="right")
    return True


def compare_cells(row: Mapping[str, Any], shown: bool) -> tuple[str, ...]:
    """A compare row's trustworthiness cells (none when the columns are not shown)."""
    if not shown:
        return ()
    return fmt(row.get("pca_trustworthiness")), fmt(row.get("ae_trustworthiness"))
