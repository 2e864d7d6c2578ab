"""Where the results go: tables of rows, small tables, the model file and other files, each
written atomically, and the group commit that puts a command's files in place together."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa

from ..io import AtomicFile, TableWriter, atomic_open
from ..io.atomic import commit_group, output_error
from ..io.background import WriteBehind
from ..io.formats import is_glob, is_url
from ..io.writers import stdout_buffer
from . import modelfile
from .bundle import ModelBundle

# The output plumbing the commands' runner uses, from aecli.io: the group commit of a
# command's files, the error that names an output, stdout as bytes, and how a name is read
# (a URL, a glob).
__all__ = ["atomic_open", "check_writable", "commit_group", "is_glob", "is_url",
           "output_error", "save_model", "stdout_buffer", "write_batches", "write_columns"]


def write_batches(batches: Iterable[pa.RecordBatch], output: str | None, fmt=None) -> None:
    """Write every batch to ``output`` (a path, or stdout when None or ``-``) in ``fmt``
    (default: from the extension), on a thread of its own while the next batch is made."""
    with TableWriter(output, fmt) as table, WriteBehind(table) as out:
        for batch in batches:
            out.write(batch)


def write_columns(dest, columns: dict[str, list], fmt=None) -> None:
    """Write a small table given as named lists (e.g. the loss history)."""
    with TableWriter(dest, fmt) as out:
        out.write(pa.table(columns))


def check_writable(path: Path) -> None:
    """Fail now if ``path`` cannot be written, not after the work that would fill it."""
    AtomicFile(path).abort()


def save_model(bundle: ModelBundle, path: Path) -> None:
    """Write the model file, atomically."""
    with atomic_open(path) as f:
        modelfile.write_model(bundle, f)
