"""From Arrow to NumPy: numeric columns, missing values, text numbers, float32 overflow."""

from __future__ import annotations

import decimal

import numpy as np
import pyarrow as pa
import pytest

from aecli.errors import DataError, InvalidParameterError
from aecli.io import numeric_columns, to_matrix


def test_numeric_columns():
    schema = pa.schema(
        [
            ("i", pa.int32()),
            ("f", pa.float32()),
            ("d", pa.decimal128(5, 2)),
            ("n", pa.null()),
            ("cat", pa.dictionary(pa.int8(), pa.string())),
            ("code", pa.dictionary(pa.int8(), pa.float64())),
            ("s", pa.string()),
            ("b", pa.bool_()),
            ("t", pa.timestamp("s")),
        ]
    )
    assert numeric_columns(schema) == [True, True, True, True, False, True, False, False, False]


def test_to_matrix_shape_order_dtype_and_missing_values():
    batch = pa.record_batch(
        {
            "a": pa.array([1, None, 3], pa.int64()),
            "b": [0.5, float("nan"), None],
            "c": pa.array([1.0, 2.0, 3.0], pa.float32()),
        }
    )
    X = to_matrix(batch, ["c", "a", "b"])
    assert X.shape == (3, 3) and X.dtype == np.float32 and X.flags.f_contiguous
    np.testing.assert_array_equal(X[:, 0], [1, 2, 3])
    np.testing.assert_array_equal(X[[0, 2], 1], [1, 3])
    assert np.isnan(X[1, 1]) and np.isnan(X[1, 2]) and np.isnan(X[2, 2])
    X64 = to_matrix(batch, ["b"], dtype=np.float64)
    assert X64.dtype == np.float64 and X64[0, 0] == 0.5


def test_to_matrix_float64_values_are_exact():
    values = [0.1, 1 / 3, 1e-300, -2.5e300]
    X = to_matrix(pa.table({"v": values}), ["v"], dtype=np.float64)
    assert X[:, 0].tolist() == values


def test_to_matrix_chunked_table():
    table = pa.concat_tables([pa.table({"v": [1.0, 2.0]}), pa.table({"v": [3.0]})])
    assert table["v"].num_chunks == 2
    np.testing.assert_array_equal(to_matrix(table, ["v"])[:, 0], [1, 2, 3])


def test_to_matrix_other_numeric_types():
    table = pa.table(
        {
            "d": pa.array([decimal.Decimal("1.25"), None], pa.decimal128(5, 2)),
            "b": [True, False],
            "n": pa.nulls(2),
            "k": pa.array([2.5, 2.5]).dictionary_encode(),
            "u": pa.array([7, 8], pa.uint8()),
        }
    )
    X = to_matrix(table, ["d", "b", "n", "k", "u"], dtype=np.float64)
    np.testing.assert_array_equal(X[0], [1.25, 1.0, np.nan, 2.5, 7.0])
    assert np.isnan(X[1, 0]) and X[1, 1] == 0.0


def test_to_matrix_text_that_spells_numbers():
    table = pa.table({"s": [" 1.5", "NA", None, "-2e3", "inf"]})
    X = to_matrix(table, ["s"], dtype=np.float64)[:, 0]
    assert X[0] == 1.5 and np.isnan(X[1]) and np.isnan(X[2]) and X[3] == -2000 and X[4] == np.inf


def test_to_matrix_non_numeric_column_names_column_value_and_row():
    table = pa.table({"id": ["1", "2", "r3"], "v": [1.0, 2.0, 3.0]})
    with pytest.raises(
        DataError, match=r"data.csv: column 'id' is not numeric: row 103 holds 'r3'"
    ):
        to_matrix(table, ["v", "id"], row_offset=100, name="data.csv")


def test_to_matrix_timestamp_column_is_not_numeric():
    table = pa.table({"t": pa.array([None, 5], pa.timestamp("s"))})
    with pytest.raises(DataError, match="column 't' is not numeric: row 2"):
        to_matrix(table, ["t"])


def test_to_matrix_missing_column_lists_the_columns():
    with pytest.raises(DataError, match="no column 'z'") as e:
        to_matrix(pa.table({"a": [1.0]}), ["a", "z"])
    assert "a" in e.value.hint


def test_to_matrix_float32_overflow_is_an_error_not_inf():
    table = pa.table({"big": [1.0, 1e39, 2.0]})
    with pytest.raises(DataError, match=r"column 'big', row 2") as e:
        to_matrix(table, ["big"])
    assert "--dtype float64" in e.value.hint
    assert to_matrix(table, ["big"], dtype=np.float64)[1, 0] == 1e39


def test_to_matrix_infinities_are_not_overflow():
    X = to_matrix(pa.table({"v": [np.inf, -np.inf, 3.0e38]}), ["v"])
    assert X[0, 0] == np.inf and X[1, 0] == -np.inf and np.isfinite(X[2, 0])


def test_to_matrix_rejects_other_dtypes():
    with pytest.raises(InvalidParameterError, match="int64"):
        to_matrix(pa.table({"v": [1.0]}), ["v"], dtype=np.int64)


def test_to_matrix_empty_batch():
    X = to_matrix(pa.table({"v": pa.array([], pa.float64())}), ["v"])
    assert X.shape == (0, 1)


def test_a_timestamp_in_a_numeric_check_prints_as_a_timestamp():
    import datetime
    import zoneinfo

    when = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=zoneinfo.ZoneInfo("UTC"))
    table = pa.table({"t": pa.array([when], pa.timestamp("s", tz="UTC"))})
    with pytest.raises(DataError, match=r"row 1 holds 2024-01-02 03:04:05\+00:00") as e:
        to_matrix(table, ["t"])
    assert "datetime.datetime" not in str(e.value) and "ZoneInfo" not in str(e.value)
