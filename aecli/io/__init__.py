"""Tables in and out: CSV, TSV (also compressed), Parquet (file, directory, glob), JSON lines.

Readers take a path, ``"-"`` or ``None`` (stdin) and give Arrow tables or batches; ``to_matrix``
turns chosen columns into a NumPy matrix. Writers stream Arrow batches to a file, atomically, or
to stdout. Expected failures raise ``DataError`` (input) or ``OutputError`` (output); nothing
here prints.
"""

from aecli.io.atomic import AtomicFile, atomic_open, atomic_write
from aecli.io.formats import (
    Format,
    compression_from_path,
    detect_delimiter,
    format_from_path,
    sniff,
)
from aecli.io.matrix import BadValues, float_columns, numeric_columns, to_matrix
from aecli.io.readers import BatchStream, TextRead, iter_batches, read_table
from aecli.io.streams import Source
from aecli.io.writers import TableWriter

__all__ = [
    "BadValues",
    "AtomicFile",
    "BatchStream",
    "Format",
    "Source",
    "TableWriter",
    "TextRead",
    "atomic_open",
    "atomic_write",
    "compression_from_path",
    "detect_delimiter",
    "float_columns",
    "format_from_path",
    "iter_batches",
    "numeric_columns",
    "read_table",
    "sniff",
    "to_matrix",
]
