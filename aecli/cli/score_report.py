"""What ``aecli score`` says once every row is seen, on this machine or on a cluster."""

from __future__ import annotations

from .. import report
from ..errors import AnomalyFound
from ..pipeline import score as scoring
from ..report.jsondoc import json_text
from .runtime import Run, write_stdout


def json_report(result: dict) -> None:
    """``--json``: the report on stdout; ``default=str`` writes pass-through values such as
    dates as text."""
    write_stdout(json_text(result, default=str) + "\n")


def say_score(err, result: dict, summary: scoring.ScoreSummary, limit: float, run: Run,
              fail_on_anomaly: bool, details=None) -> None:
    """The flagged rows (else the worst), ``details`` (a renderable, e.g. ``-v``'s
    per-feature errors), the counts and a warning for rows without a score, on stderr unless
    ``-q``; then, with ``--fail-on-anomaly``, exit 1 when a row is flagged."""
    if not run.quiet:
        if result["flagged_rows"]:
            err.print(report.score_table(result["flagged_rows"][:20], limit, result["flagged"]))
        else:
            err.print(report.score_table(result["worst"][:10], limit))
        if details is not None:
            err.print(details)
        err.print(report.score_summary(summary.rows, summary.flagged, limit))
        if scoring.unscored_note(result):
            err.print(f"warning: {scoring.unscored_note(result)}", markup=False)
    if fail_on_anomaly and summary.flagged:
        raise AnomalyFound(f"{summary.flagged} of {summary.rows} row(s) are over the anomaly "
                           f"threshold {limit:.4g}")
