"""From Arrow tables to NumPy matrices: which columns are numeric, and the conversion itself."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from enum import StrEnum

import numpy as np
import pyarrow as pa

from aecli.errors import DataError, InvalidParameterError
from aecli.io.formats import NULL_VALUES

_F32_MAX = float(np.finfo(np.float32).max)

# What spells a number, as float() reads it (surrounding blanks trimmed first).
NUMBER_PATTERN = (r"^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|infinity|nan)$")


#: Field metadata of a text column of numbers: its decimal separator (b"." or b",").
DECIMAL_KEY = "aecli.decimal"
# A number with a decimal comma (1,5), for text whose field says so.
_COMMA_PATTERN = r"^[+-]?(\d+(,\d*)?|,\d+)([eE][+-]?\d+)?$"


class BadValues(StrEnum):
    """``--bad-values``: what a cell of a numeric column that is not a number becomes."""

    ERROR = "error"  # stop, naming the column, the row and the value
    MISSING = "missing"  # a missing value, handled by --missing


def numbers_only(text: pa.Array, decimal: str = ".") -> pa.Array:
    """Text with every value that does not spell a number (with ``decimal`` as the decimal
    separator) made missing, and decimal commas made points, ready for a cast."""
    import pyarrow.compute as pc

    text = pc.utf8_trim_whitespace(text)
    if decimal == ",":
        ok = pc.match_substring_regex(text, _COMMA_PATTERN)
        text = pc.replace_substring(text, ",", ".")
    else:
        ok = pc.match_substring_regex(text, NUMBER_PATTERN, ignore_case=True)
    return pc.if_else(ok, text, pa.scalar(None, text.type))


@functools.cache
def _null_text() -> pa.Array:
    # Built on first use: pa.array on Python values imports pandas, a fifth of a second
    # that every command would otherwise pay at start-up.
    return pa.array(NULL_VALUES)


def _is_numeric(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        return _is_numeric(t.value_type)
    return (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_decimal(t)
        or pa.types.is_null(t)
    )


def numeric_columns(schema: pa.Schema) -> list[bool]:
    """Tell, for each column of ``schema``, whether it is numeric (a default feature).

    Integers, floats, decimals, and all-missing (null-typed) columns are numeric; booleans,
    text, dates and nested values are not.

    Parameters
    ----------
    schema : pyarrow.Schema

    Returns
    -------
    list of bool
        One flag per column, in schema order.
    """
    return [_is_numeric(field.type) for field in schema]


def _not_numeric(column: str, chunk: pa.Array, first_row: int, where: str) -> DataError:
    """The error for a column that holds a value that is not a number, with an example."""
    for i, value in enumerate(chunk.to_pylist()):
        if value is None:
            continue
        if isinstance(value, str):
            try:
                float(value)
                continue
            except ValueError:
                pass
        # text quoted, as it is; other values (a timestamp, a list) as they print
        shown = repr(value) if isinstance(value, str) else str(value)
        return DataError(
            f"{where}column {column!r} is not numeric: row {first_row + i} holds {shown}",
            hint=f"treat such cells as missing with --bad-values missing, choose numeric "
            f"columns with --columns, or leave this one out with --exclude {column}",
        )
    return DataError(
        f"{where}column {column!r} ({chunk.type}) is not numeric",
        hint=f"leave it out with --exclude {column}",
    )


def _float_view(chunk: pa.Array) -> np.ndarray:
    """A float32/float64 Arrow array as NumPy, nulls as NaN; a view when there are no nulls.

    Read from the data buffer directly: ``to_numpy`` first imports pandas, a fifth of a second
    for every command.
    """
    if chunk.null_count:
        import pyarrow.compute as pc  # imported when needed: 40 ms that most runs never use

        chunk = pc.fill_null(chunk, pa.scalar(float("nan"), chunk.type))
    dtype = np.dtype(np.float32 if pa.types.is_float32(chunk.type) else np.float64)
    return np.frombuffer(chunk.buffers()[1], dtype=dtype, count=len(chunk),
                         offset=chunk.offset * dtype.itemsize)


def int_view(chunk: pa.Array) -> np.ndarray:
    """An integer Arrow array without nulls as a NumPy view of its data buffer (no copy, and
    no ``to_numpy``, which imports pandas)."""
    dtype = np.dtype(str(chunk.type))  # "int64", "uint8", ...
    return np.frombuffer(chunk.buffers()[1], dtype=dtype, count=len(chunk),
                         offset=chunk.offset * dtype.itemsize)


def _as_float(chunk: pa.Array, column: str, first_row: int, where: str,
              bad_values: BadValues = BadValues.ERROR, decimal: str = ".") -> np.ndarray:
    """Return ``chunk`` as a float NumPy array, nulls as NaN (zero-copy for plain floats)."""
    t = chunk.type
    if pa.types.is_dictionary(t):
        chunk = chunk.dictionary_decode()
        t = chunk.type
    if pa.types.is_float32(t) or pa.types.is_float64(t):
        return _float_view(chunk)
    if pa.types.is_integer(t) and not chunk.null_count:
        # NumPy converts from the data buffer; Arrow's cast would import pyarrow.compute
        return int_view(chunk).astype(np.float64)
    if (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_decimal(t)
        or pa.types.is_boolean(t)
        or pa.types.is_null(t)
    ):
        return _float_view(chunk.cast(pa.float64(), safe=False))
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        import pyarrow.compute as pc  # imported when needed: 40 ms that most runs never use

        text = pc.utf8_trim_whitespace(chunk)
        text = pc.if_else(pc.is_in(text, value_set=_null_text()), pa.scalar(None, t), text)
        if bad_values is BadValues.MISSING:
            text = numbers_only(text, decimal)
        elif decimal == ",":
            text = pc.replace_substring(text, ",", ".")
        try:
            return _float_view(text.cast(pa.float64()))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise _not_numeric(column, text, first_row, where) from None
    raise _not_numeric(column, chunk, first_row, where)


def _check_float32(values: np.ndarray, column: str, first_row: int, where: str) -> None:
    """Raise when a finite value would overflow float32 (and silently become inf)."""
    if values.size == 0:
        return
    hi, lo = np.fmax.reduce(values), np.fmin.reduce(values)
    if hi <= _F32_MAX and lo >= -_F32_MAX:
        return
    bad = np.isfinite(values) & (np.abs(values) > _F32_MAX)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(
            f"{where}column {column!r}, row {first_row + i}: {values[i]!r} is too large "
            "for float32",
            hint="use --dtype float64, or rescale the column",
        )


def _missing_columns(data, columns: Sequence[str], where: str) -> None:
    names = set(data.schema.names)
    missing = [c for c in columns if c not in names]
    if missing:
        raise DataError(
            f"{where}no column {missing[0]!r}"
            + (f" (nor {', '.join(map(repr, missing[1:]))})" if len(missing) > 1 else ""),
            hint=f"the columns are: {', '.join(data.schema.names)}",
        )


def float_columns(
    data: pa.Table | pa.RecordBatch,
    columns: Sequence[str],
    *,
    row_offset: int = 0,
    name: str | None = None,
    bad_values: BadValues = BadValues.ERROR,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """The values of ``columns`` as float arrays, one Arrow chunk at a time.

    Plain float columns are viewed without a copy; integers, decimals and text that spells a
    number are converted; missing values are NaN. This is the conversion :func:`to_matrix`
    makes, for a caller that transforms each column on its way into a matrix of its own.

    Yields
    ------
    (j, start, values)
        ``values`` (float32 or float64, 1-D) are rows ``start:start + len(values)`` of
        ``columns[j]``.

    Raises
    ------
    DataError
        As :func:`to_matrix`, except that float32 overflow is not checked here.
    """
    where = f"{name}: " if name else ""
    _missing_columns(data, columns, where)
    for j, column in enumerate(columns):
        values = data.column(column)
        meta = data.schema.field(column).metadata or {}
        decimal = meta.get(DECIMAL_KEY.encode(), b".").decode()  # text numbers' separator
        chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
        start = 0
        for chunk in chunks:
            yield j, start, _as_float(chunk, column, row_offset + start + 1, where, bad_values,
                                      decimal)
            start += len(chunk)


def to_matrix(
    data: pa.Table | pa.RecordBatch,
    columns: Sequence[str],
    dtype=np.float32,
    *,
    row_offset: int = 0,
    name: str | None = None,
    bad_values: BadValues = BadValues.ERROR,
) -> np.ndarray:
    """Gather columns of a table or batch into one float matrix; missing values become NaN.

    One ``(n, k)`` array is allocated; plain float columns are read without a copy. Text that
    spells a number (``" 1.5"``) is converted; ``NA``/``null``/empty text is missing.

    Parameters
    ----------
    data : pyarrow.Table or pyarrow.RecordBatch
        n rows.
    columns : sequence of str
        k column names, in the order wanted.
    dtype : {numpy.float32, numpy.float64}
        The matrix's dtype.
    row_offset : int, default 0
        Rows before ``data`` in its input, so that messages give the row in the input.
    name : str, optional
        The input's name, for messages.
    bad_values : BadValues
        What text that spells no number becomes: an error, or a missing value.

    Returns
    -------
    numpy.ndarray
        Shape (n, k), Fortran order: each column's values lie side by side, as Arrow keeps
        them, so filling it is a plain copy per column (about 3x faster than a strided one).

    Raises
    ------
    DataError
        A column is missing or not numeric (the message gives an example value and its row,
        counted from 1 = first data row), or a value overflows float32.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise InvalidParameterError(f"dtype must be float32 or float64, got {dtype}")
    out = np.empty((len(columns), data.num_rows), dtype=dtype)  # (k, n)
    for j, start, x in float_columns(data, columns, row_offset=row_offset, name=name,
                                     bad_values=bad_values):
        if dtype == np.float32 and x.dtype == np.float64:
            where = f"{name}: " if name else ""
            _check_float32(x, columns[j], row_offset + start + 1, where)
        out[j, start : start + len(x)] = x
    return out.T  # (n, k)
