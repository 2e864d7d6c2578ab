"""What the commands say about the input they read, and the checks of their own options
(the reading itself is :mod:`aecli.pipeline.sources`)."""

from __future__ import annotations

from ..errors import DataError
from ..pipeline import Roles


def say_roles(err, roles: Roles, surveyed=None) -> None:
    """Tell a person how the input was read and what each column is used as, and how to
    change it."""
    dialect = surveyed.dialect if surveyed is not None else None
    if dialect is not None and dialect.unusual():
        err.print(f"read as {dialect.describe()} (detected; --delimiter and --decimal "
                  "override)", markup=False)
    for line in roles.lines():
        err.print(line, markup=False)


def check_color_by(color_by: str | None, schema, keep: list[str]) -> None:
    """``--color-by`` must name an input column that is also passed through with ``--keep``."""
    if color_by is None:
        return
    if color_by not in schema.names:
        raise DataError(f"--color-by {color_by!r} is not a column of the input",
                        hint=f"available columns: {', '.join(schema.names[:20])}")
    if color_by not in keep:
        raise DataError(f"--color-by {color_by!r} must also be passed with --keep",
                        hint=f"add --keep {color_by}")
