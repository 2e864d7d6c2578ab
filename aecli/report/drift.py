"""What ``aecli drift`` shows: the tests as a table, the verdict as a line, and a picture of
the most drifted distributions (reference against batch). Plain data in, renderables (or a
PNG file) out; nothing here prints."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from .text import fmt

TEST_NAMES = {"KS": "KS", "chi2": "chi²", "fisher": "Fisher"}


def _test(t: dict) -> str:
    """What a test looks at and how: "KS", "chi² levels", "missing chi²", "KS scores"."""
    name = TEST_NAMES.get(t["test"], t["test"])
    return {"categorical": f"{name} levels", "missing": f"missing {name}",
            "joint": f"{name} scores"}.get(t["kind"], name)


def _p(p) -> str:
    if p is None:
        return "—"
    return "<1e-300" if p < 1e-300 else f"{p:.2g}" if p < 0.01 else f"{p:.2f}"


def drift_table(result: dict, top: int | None = None) -> Group:
    """The tests, drifted first then by corrected p-value: column, the test, its statistic,
    its p-value corrected for the number of tests (the raw one is in ``--json`` and ``-o``),
    drift yes/no and what moved; then one line with the verdict. ``top`` cuts the list
    (default: every drifted test, and at least ten; a line says how many are left out)."""
    tests = result["tests"]
    if top is None:  # every drifted test, and the closest calls up to ten rows
        top = max(10, sum(t["drift"] for t in tests))
    shown = tests[:top]
    table = Table(title=f"Drift: {fmt(result['rows'])} rows against the training data")
    table.add_column("column", no_wrap=True, max_width=24)
    table.add_column("test", no_wrap=True)
    table.add_column("statistic", justify="right", no_wrap=True)
    table.add_column(f"p ({result['correction'].capitalize()})", justify="right",
                     no_wrap=True)
    table.add_column("drift", no_wrap=True)
    table.add_column("what moved", min_width=16)
    for t in shown:
        table.add_row(t["column"], _test(t), fmt(t["statistic"], 3), _p(t["p_adjusted"]),
                      Text("yes", style="bold red") if t["drift"] else Text("no"),
                      t["description"])
    parts = [table]
    if len(shown) < len(tests):
        parts.append(Text(f"{len(tests) - len(shown)} more test(s) not shown, none drifted "
                          "(all are in --json and -o)" if not any(
                              t["drift"] for t in tests[len(shown):]) else
                          f"{len(tests) - len(shown)} more test(s) not shown (--json, -o)"))
    parts.append(drift_verdict(result))
    return Group(*parts)


def drift_verdict(result: dict) -> Text:
    """One line: drift or not, at which level, after which correction."""
    level = (f"at alpha {result['alpha']:g} after {result['correction'].capitalize()}'s "
             f"correction for {result['tests_run']} tests")
    if not result["drift"]:
        return Text(f"No drift {level} ({fmt(result['rows_scored'])} rows scored).")
    return Text(f"Drift {level}: {what_drifted(result['drifted'])}.", style="bold")


def what_drifted(drifted: list[str]) -> str:
    """The drifted columns named, and the joint test (``(scores)``) said in words."""
    columns = [c for c in drifted if c != "(scores)"]
    parts = [f"{len(columns)} column(s): " + ", ".join(columns[:8])
             + (" ..." if len(columns) > 8 else "")] if columns else []
    if len(columns) < len(drifted):
        parts.append("the rows jointly (the anomaly scores run higher than the training data's)")
    return "; ".join(parts)


def drift_plot(path, panels: list[dict]) -> None:
    """One panel per distribution: the reference's and the batch's distribution functions
    (scores, numeric columns) or level shares (categorical columns)."""
    import numpy as np

    from .plots import _save, require_matplotlib

    plt = require_matplotlib()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        if panel["kind"] == "categorical":
            x = np.arange(len(panel["x"]))
            ax.bar(x - 0.2, panel["reference"], 0.4, label="training")
            ax.bar(x + 0.2, panel["batch"], 0.4, label="batch")
            ax.set_xticks(x, panel["x"], rotation=45, ha="right", fontsize=8)
            ax.set_ylabel("share of rows")
        else:
            ax.step(panel["x"], panel["reference"], where="post", label="training")
            ax.step(panel["x"], panel["batch"], where="post", label="batch")
            ax.set_ylabel("share at or below")
            ax.set_xlabel("anomaly score" if panel["kind"] == "joint" else "value")
        ax.set_title(panel["column"])
        ax.legend(fontsize=8)
    fig.suptitle("aecli drift: training against batch")
    _save(fig, path)
