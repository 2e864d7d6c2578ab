"""Rich renderables for aecli's human-facing output.

Every function here takes plain Python data (dicts, lists, floats) and *returns* a renderable;
none prints, none owns a ``Console``. The CLI decides where, and whether, to print them, so the
same tables serve a terminal, a pipe (no colour, plain width) and the tests.

Numbers are shown to four significant digits by :func:`fmt`; a missing value (``None`` or NaN)
shows as an em dash. Meaning never rides on colour alone, so ``NO_COLOR`` loses nothing.
"""

from .text import BARS, MISSING, fmt, format_architecture, sparkline, truncate_list

_TABLES = ("compare_table", "feature_error_table", "inspect_panel", "score_summary",
           "score_table", "train_summary")


def __getattr__(name: str):
    # The tables, and rich under them (30 ms), load on first use: a quiet run in a pipe
    # shows no table, and every command would pay for them at start-up.
    if name == "inspect_panel":
        from . import inspect

        return inspect.inspect_panel
    if name in _TABLES:
        from . import tables

        return getattr(tables, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "BARS",
    "MISSING",
    "compare_table",
    "feature_error_table",
    "fmt",
    "format_architecture",
    "inspect_panel",
    "score_summary",
    "score_table",
    "sparkline",
    "train_summary",
    "truncate_list",
]
