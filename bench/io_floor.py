"""The I/O floor of ``aecli encode``: read the 64 float columns, write 8 of the same row count.

Run as a child process (``python bench/io_floor.py IN OUT``), as ``aecli encode`` is, so that
both pay for starting Python. No model and no arithmetic: it streams the input with pyarrow's
own readers (default options and threads, but see ``parquet_floor``) and writes the first 8
columns as float32 (aecli's codes are float32, so both write the same kind of text or pages).
Wherever aecli reads or writes Parquet with other than pyarrow's defaults, because they are
cheaper, the floor does the same, so that it stays the least that the I/O can cost.
"""

from __future__ import annotations

import sys

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

OUT_COLUMNS = 8
BATCH_ROWS = 65536


def _codes(batch: pa.RecordBatch) -> pa.RecordBatch:
    cols = [batch.column(j).cast(pa.float32()) for j in range(OUT_COLUMNS)]
    return pa.RecordBatch.from_arrays(cols, names=[f"z{j + 1}" for j in range(OUT_COLUMNS)])


def csv_floor(src: str, dest: str) -> int:
    """Stream CSV to CSV; return the rows written."""
    with open(src, "rb") as f:
        header = f.readline().decode().rstrip("\r\n").split(",")
    convert = pcsv.ConvertOptions(column_types={c: pa.float64() for c in header})
    rows = 0
    with pcsv.open_csv(src, convert_options=convert) as reader:
        writer = None
        for batch in reader:
            out = _codes(batch)
            if writer is None:
                writer = pcsv.CSVWriter(dest, out.schema)
            writer.write_batch(out)
            rows += out.num_rows
        writer.close()
    return rows


def parquet_floor(src: str, dest: str) -> int:
    """Stream Parquet to Parquet; return the rows written."""
    rows = 0
    writer = None
    # pre_buffer=False: on a local file it reads faster than pyarrow's default, which buffers
    # the row groups ahead (and whose memory grows with the file), so the floor is the faster.
    pf = pq.ParquetFile(src, pre_buffer=False)
    # Batches of at most BATCH_ROWS that tile the row groups, as aecli reads them: a batch
    # glued from two row groups costs more CPU, for the floor as for aecli.
    largest = max(pf.metadata.row_group(i).num_rows for i in range(pf.metadata.num_row_groups))
    parts = -(-largest // BATCH_ROWS)  # ceil
    batch_rows = BATCH_ROWS if parts == 1 else -(-largest // parts)
    for batch in pf.iter_batches(batch_size=batch_rows):
        out = _codes(batch)
        if writer is None:
            # as aecli writes float columns: plain, not dictionary-encoded (see
            # aecli.io.writers), so both write the same kind of pages
            writer = pq.ParquetWriter(dest, out.schema, use_dictionary=False)
        writer.write_batch(out)
        rows += out.num_rows
    writer.close()
    return rows


def main(argv: list[str]) -> int:
    src, dest = argv
    floor = parquet_floor if src.endswith(".parquet") else csv_floor
    print(floor(src, dest))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
