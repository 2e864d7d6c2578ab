"""Streaming readers for a Parquet file, a Parquet byte buffer (stdin), or a Parquet dataset.

A dataset is a directory (read recursively, with hive partitions such as ``year=2024/``) or a
glob of files. Files whose schemas differ are read under one schema unified from all of them
(an ``int64`` column in one file and ``double`` in another is read as ``double``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from aecli.errors import DataError
from aecli.io.formats import empty_batch, expand_glob, is_glob
from aecli.io.text import check_names

# pandas stores a non-default index as a column with this name; pandas hides it, so do we.
_PANDAS_INDEX = re.compile(r"__index_level_\d+__")
_DAMAGED_HINT = "the file may be truncated or damaged, or not Parquet; check how it was written"


def _keep(schema: pa.Schema, name: str) -> list[str]:
    check_names(schema.names, name)
    return [n for n in schema.names if not _PANDAS_INDEX.fullmatch(n)]


def _plain(schema: pa.Schema, keep: list[str]) -> pa.Schema:
    return pa.schema([schema.field(n) for n in keep]).remove_metadata()


def _rebatch(batches, schema: pa.Schema, name: str) -> Iterator[pa.RecordBatch]:
    """Yield the non-empty batches of ``batches()`` under ``schema``, errors translated."""
    rows = 0
    try:
        for batch in batches():
            if batch.num_rows:
                yield pa.RecordBatch.from_arrays(batch.columns, schema=schema)
                rows += batch.num_rows
    except (pa.ArrowException, OSError) as e:
        raise DataError(
            f"{name}: damaged Parquet data after row {rows}: {e}", _DAMAGED_HINT
        ) from None


def _batch_rows(metadata: pq.FileMetaData, batch_rows: int) -> int:
    """At most ``batch_rows``, cut so that batches tile the file's row groups.

    A batch that straddles two row groups is glued from both; a row group cut into equal
    parts is not. The bench's 100k-row groups read in 50k-row batches took a quarter less CPU
    than in 65536-row ones, and less memory.
    """
    largest = max((metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)),
                  default=0)
    if largest <= batch_rows:
        return batch_rows
    parts = -(-largest // batch_rows)  # ceil
    return -(-largest // parts)


def row_group_sizes(path: str) -> list[int]:
    """The rows of each row group of the Parquet file at ``path``."""
    with pq.ParquetFile(path) as pf:
        return [pf.metadata.row_group(i).num_rows for i in range(pf.metadata.num_row_groups)]


def spare_cores() -> bool:
    """Whether this process has cores beyond the two a stream keeps busy: the thread that
    reads ahead and the one that works on the batches. Only then does pyarrow's own pool
    speed up decoding; on two cores it takes them from the work: ``aecli encode`` of 1M x 64
    Parquet rows took 1.58 s with it and 1.36 s without (median of 8 runs each; bench)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (cores or 1) > 2


def read_parquet_file(
    file, name: str, batch_rows: int, decode_threads: bool = True,
    row_groups: list[int] | None = None,
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """Open one Parquet file (a path, its bytes, or a readable file object such as a remote
    object's) for streaming by row groups; ``decode_threads``: decode on pyarrow's thread pool
    (see :func:`spare_cores`); ``row_groups``: only these, in this order.

    Returns
    -------
    schema : pyarrow.Schema
    batches : iterator of pyarrow.RecordBatch
    """
    if isinstance(file, str) and os.path.isfile(file) and os.path.getsize(file) == 0:
        raise DataError(f"{name}: file is empty", hint="give a Parquet file with rows")
    try:
        # pre_buffer=False: pyarrow's default buffers row groups ahead, so memory would grow
        # with the file (bench: 1.2 GB peak at 2M rows against 0.5 GB without it).
        # buffer_size: each column chunk is read through a 1 MiB buffer rather than whole, so
        # the peak follows the batch, not the row group: 2M rows x 64 columns in 1M-row
        # groups peak at 457 MiB against 815 MiB unbuffered (128k-row groups: 414 MiB), at the
        # same speed.
        pf = pq.ParquetFile(pa.BufferReader(file) if isinstance(file, pa.Buffer) else file,
                            pre_buffer=False, buffer_size=1 << 20)
    except FileNotFoundError:
        raise DataError(f"{name}: no such file", hint="check the path") from None
    except PermissionError:
        raise DataError(f"{name}: permission denied", hint="check the file's permissions") from None
    except (pa.ArrowException, OSError) as e:
        if isinstance(file, pa.Buffer) and file.size == 0:
            raise DataError(f"{name}: is empty", hint="pipe a Parquet file with rows") from None
        raise DataError(f"{name}: not a readable Parquet file ({e})", _DAMAGED_HINT) from None
    try:
        keep = _keep(pf.schema_arrow, name)
    except BaseException:
        pf.close()
        raise
    schema = _plain(pf.schema_arrow, keep)
    if pf.metadata.num_rows == 0:  # no rows: one empty batch carries the columns
        pf.close()
        return schema, iter([empty_batch(schema)])
    rows = _batch_rows(pf.metadata, batch_rows)

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from _rebatch(
                lambda: pf.iter_batches(batch_size=rows, row_groups=row_groups, columns=keep,
                                        use_threads=decode_threads),
                schema,
                name,
            )
        finally:
            pf.close()

    return schema, batches()


def read_parquet_dataset(path: str, batch_rows: int) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """Open a directory or glob of Parquet files as one dataset, for streaming.

    Returns
    -------
    schema : pyarrow.Schema
    batches : iterator of pyarrow.RecordBatch
    """
    # Imported here: pyarrow.dataset imports pandas, a fifth of a second that every other
    # command would pay at start-up.
    import pyarrow.dataset as ds

    if is_glob(path) and not os.path.exists(path):
        files = expand_glob(path)
        if not files:
            raise DataError(f"{path}: no files match", hint="check the pattern (quote it)")
        where, partitioning = files, None
    elif os.path.isdir(path):
        where, partitioning = path, "hive"
    else:
        raise DataError(f"{path}: no such directory", hint="check the path")
    try:
        dataset = ds.dataset(where, format="parquet", partitioning=partitioning)
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{path}: cannot read as a Parquet dataset: {e}", _DAMAGED_HINT) from None
    if not dataset.files:
        raise DataError(f"{path}: no Parquet files in the directory", hint="check the path")
    schemas = [dataset.schema]
    for fragment in dataset.get_fragments():
        try:
            schemas.append(fragment.physical_schema)
        except (pa.ArrowException, OSError) as e:
            raise DataError(
                f"{fragment.path}: not a readable Parquet file ({e})", _DAMAGED_HINT
            ) from None
    if any(not s.equals(schemas[0]) for s in schemas[1:]):
        try:
            unified = pa.unify_schemas(
                [s.remove_metadata() for s in schemas], promote_options="permissive"
            )
        except (pa.ArrowException, TypeError) as e:
            raise DataError(
                f"{path}: the files' columns have incompatible types: {e}",
                hint="read the files one at a time, or rewrite them with one schema",
            ) from None
        dataset = ds.dataset(where, format="parquet", partitioning=partitioning, schema=unified)
    keep = _keep(dataset.schema, path)
    schema = _plain(dataset.schema, keep)
    try:
        rows = dataset.count_rows()
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{path}: cannot read the Parquet dataset: {e}", _DAMAGED_HINT) from None
    if rows == 0:
        return schema, iter([empty_batch(schema)])

    def scan():
        return dataset.to_batches(
            columns=keep, batch_size=batch_rows, batch_readahead=2, fragment_readahead=1,
            fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=False),
        )

    return schema, _rebatch(scan, schema, path)
