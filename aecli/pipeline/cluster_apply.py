"""Encode, reconstruct and score a partitioned data set on a Dask cluster.

The data set is a list of files (a directory or glob of Parquet files, a glob of CSV files);
each file is one partition, read by one worker only. The model goes to every worker once
(scattered as the bytes of its model file, read there with the same checks as any model
file). Each partition goes through the same functions as a single-machine run
(:mod:`aecli.pipeline.apply`, :mod:`aecli.pipeline.score`), its rows numbered from where the
partition starts in the whole data set, and is written as one part file of a temporary
directory beside the output, ``part-00000.parquet`` and so on. A part file is written whole
or not at all and under a fixed name, so a task that Dask runs again cannot duplicate rows.
Only when every part is written does the directory take the output's name: a job that fails
leaves nothing that looks complete. Only small results come back to the client: row counts,
the error totals and the worst rows of ``score``, merged here exactly as one machine keeps
them.
"""

from __future__ import annotations

import glob
import hashlib
import heapq
import os
import shutil
import stat
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError, OutputError
from ..io import Format, TableWriter, TextRead, iter_batches
from ..io.formats import format_from_path, is_glob, is_url, open_url
from . import apply, modelfile, score
from .bundle import ModelBundle
from .sources import DataOptions, read_for_model, with_policy


def _remote(url: str):
    """The fsspec file system of a URL, and the URL's path within it."""
    import fsspec

    return fsspec.core.url_to_fs(url)


def partitions(source: str) -> list[str]:
    """The files of a partitioned data set: a directory of Parquet (or CSV) files, a glob,
    or a comma-separated list, local or fsspec URLs (``s3://bucket/data/``), in sorted order
    (the order of the output's parts)."""
    if is_url(source) and "," not in source:
        fs, root = _remote(source)
        scheme = source.split("://", 1)[0]
        if is_glob(root):
            found = fs.glob(root)
        elif fs.isdir(root):
            found = [p for p in fs.ls(root, detail=False)
                     if not Path(p).name.startswith((".", "_"))]
        else:
            found = [root] if fs.exists(root) else []
        files = sorted(f"{scheme}://{p}" for p in found)
        if not files:
            raise DataError(f"{source}: no such objects", hint="check the URL and the "
                            "credentials in the environment")
        return files
    if "," in source and not os.path.exists(source):
        files = [p.strip() for p in source.split(",") if p.strip()]
    elif os.path.isdir(source):
        files = sorted(str(p) for p in Path(source).iterdir()
                       if p.is_file() and not p.name.startswith((".", "_")))
    elif is_glob(source):
        files = sorted(glob.glob(source))
    else:
        files = [source]
    missing = [f for f in files if not is_url(f) and not os.path.isfile(f)]
    if not files or missing:
        raise DataError(f"{source}: no such file{'s' if len(missing) > 1 else ''}"
                        + (f" ({', '.join(missing[:3])})" if missing else ""),
                        hint="give a directory of Parquet files, a glob (data/*.csv) or a "
                        "list of files")
    return files


@dataclass(frozen=True)
class Job:
    """What to do with each partition: the command and its options."""

    command: str  # "encode", "reconstruct" or "score"
    keep: tuple[str, ...] = ()
    # how each partition is read; missing and bad values None: the model's
    data: DataOptions = DataOptions(missing=None, bad_values=None)
    fmt: Format = Format.parquet
    error_column: bool = False
    probabilities: bool = False
    threshold: float | None = None
    top: int = 10


@dataclass
class PartResult:
    """What one partition sends back: small."""

    index: int
    rows: int
    totals: apply.ErrorTotals
    summary: score.ScoreSummary | None = None
    notes: list[str] = field(default_factory=list)


_MODELS: dict[str, ModelBundle] = {}  # per worker process: each model read once


def forget_models() -> None:
    """Drop the models a worker read (a cluster outlives the command)."""
    _MODELS.clear()


def _model(blob: bytes, job: Job) -> ModelBundle:
    key = hashlib.sha256(blob).hexdigest()
    if key not in _MODELS:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "model.npz"
            path.write_bytes(blob)
            _MODELS[key] = modelfile.read_model(path)
    return with_policy(_MODELS[key], job.data)


def count_rows(path: str, input_format: Format | None = None) -> int:
    """Rows of one partition (a Parquet file's footer; a text file is read through)."""
    fmt = Format.parse(input_format) if input_format else format_from_path(path)
    if fmt is Format.parquet:
        import pyarrow.parquet as pq

        if is_url(path):
            with open_url(path) as f:
                return pq.ParquetFile(f).metadata.num_rows
        return pq.ParquetFile(path).metadata.num_rows
    with iter_batches(path, fmt, text=TextRead.of(numbers=())) as stream:  # all as text
        return sum(b.num_rows for b in stream)


def run_partition(blob: bytes, path: str, index: int, offset: int, job: Job,
                  parts_dir: str) -> PartResult:
    """Apply ``job`` to one partition and write its part file into ``parts_dir``. A task is
    not retried on an error: a worker that dies is replaced by the scheduler, which runs its
    tasks again elsewhere, and the fixed part names make that harmless."""
    bundle = _model(blob, job)
    keep = list(job.keep)
    stream = read_for_model(bundle, path, job.data, keep,  # as one machine reads
                            typed=job.fmt in (Format.parquet, Format.jsonl))
    totals = apply.ErrorTotals()
    summary = None
    with stream:
        if job.command == "encode":
            batches = apply.encode_stream(bundle, stream, keep, stream.name, totals,
                                          first_row=offset)
        elif job.command == "reconstruct":
            batches = apply.reconstruct_stream(bundle, stream, keep, stream.name, totals,
                                               job.error_column, job.probabilities,
                                               first_row=offset)
        else:
            limit = job.threshold if job.threshold is not None else bundle.autoencoder.threshold_
            summary = score.ScoreSummary(limit)
            batches = score.score_stream(bundle, stream, keep, stream.name, totals, summary,
                                         job.top, first_row=offset)
        name = f"part-{index:05d}.{job.fmt.value}"
        local = tempfile.mkdtemp(prefix="aecli-part-") if is_url(parts_dir) else parts_dir
        try:
            with TableWriter(str(Path(local) / name), job.fmt) as out:
                for batch in batches:
                    out.write(batch)
            if is_url(parts_dir):  # one PUT: the object appears whole, under a fixed name
                fs, root = _remote(parts_dir)
                fs.put_file(str(Path(local) / name), f"{root.rstrip('/')}/{name}")
        finally:
            if local != parts_dir:
                shutil.rmtree(local, ignore_errors=True)
    return PartResult(index, totals.rows, totals, summary, list(stream.notes))


def merge_totals(parts: list[PartResult]) -> apply.ErrorTotals:
    """The error totals of every partition, summed (as one stream would have summed them)."""
    merged = apply.ErrorTotals()
    for p in sorted(parts, key=lambda p: p.index):
        t = p.totals
        merged.rows += t.rows
        merged.dropped += t.dropped
        merged.imputed += t.imputed
        for name in ("scaled", "original", "observed"):
            value = getattr(t, name)
            if value is not None:
                mine = getattr(merged, name)
                setattr(merged, name, value.copy() if mine is None else mine + value)
    return merged


def merge_summaries(parts: list[PartResult], top: int) -> score.ScoreSummary:
    """The score summaries of every partition as one: counts summed, and the worst rows and
    worst flagged rows kept from all of them, as one machine's bounded heaps keep them."""
    first = next(p.summary for p in parts if p.summary is not None)
    merged = score.ScoreSummary(first.threshold, keep_flagged=first.keep_flagged)
    for p in parts:
        s = p.summary
        merged.rows += s.rows
        merged.flagged += s.flagged
        merged.not_finite += s.not_finite
        merged.imputed = merged.imputed or s.imputed
        merged.worst.extend(s.worst)
        merged.flagged_worst.extend(s.flagged_worst)
    merged.worst = heapq.nlargest(top, merged.worst, key=lambda t: t[:2])
    merged.flagged_worst = heapq.nlargest(merged.keep_flagged, merged.flagged_worst,
                                          key=lambda t: t[:2])
    heapq.heapify(merged.worst)
    heapq.heapify(merged.flagged_worst)
    return merged


@dataclass
class ClusterRun:
    """What a cluster run found, merged from its partitions."""

    parts: int
    rows: int
    totals: apply.ErrorTotals
    summary: score.ScoreSummary | None
    notes: list[str]


def run_on_cluster(client, model_path: str | os.PathLike, source: str, output: str, job: Job,
                   progress: Callable[[int, int], None] | None = None) -> ClusterRun:
    """Apply ``job`` to every partition of ``source`` on ``client``'s cluster and write the
    parts into the directory ``output``, which appears whole or not at all.

    Raises
    ------
    OutputError
        ``output`` exists and is not empty, or cannot be made.
    """
    files = partitions(source)
    blob = Path(model_path).read_bytes()
    modelfile.read_model(model_path)  # checked here first: a bad model fails before the cluster
    if is_url(output):
        return _run_to_url(client, blob, files, output, job, progress)
    out = Path(output)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputError(f"{out}: exists; a cluster run writes a directory of parts",
                          hint="remove it, or name a new directory with -o")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"{parent}: no such directory", hint="create it first")
    staging = _staging_dir(parent, out.name)
    try:
        results = _run_parts(client, blob, files, str(staging), job, progress)
        written = sorted(p.name for p in staging.iterdir())
        expected = sorted(f"part-{i:05d}.{job.fmt.value}" for i in range(len(files)))
        if written != expected:
            raise OutputError(f"{out}: the cluster wrote {len(written)} part files of "
                              f"{len(expected)}", hint="run the job again")
        if out.exists():  # empty, checked above: it keeps its mode
            os.chmod(staging, stat.S_IMODE(out.stat().st_mode))
            out.rmdir()
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return _merged(results, job)


def _staging_dir(parent: Path, name: str) -> Path:
    """A new hidden directory beside the output ``name``, whose mode follows the umask as
    any new directory's does (mkdtemp's 0700 became the output's)."""
    path = parent / f".{name}.aecli-{uuid.uuid4().hex[:12]}"
    try:
        path.mkdir(mode=0o777)
    except OSError as e:
        raise OutputError(f"{parent}: cannot create a directory there ({e.strerror or e})",
                          hint="check the permissions, or name another -o") from None
    return path


SUCCESS = "_SUCCESS"  # written last to an object store, which cannot rename: as Spark does


def _run_to_url(client, blob: bytes, files: list[str], output: str, job: Job,
                progress) -> ClusterRun:
    """:func:`run_on_cluster` into an object store: the parts under ``output``, then an
    empty ``_SUCCESS`` object once every one is there."""
    fs, root = _remote(output)
    root = root.rstrip("/")
    if fs.exists(root) and fs.ls(root, detail=False):
        raise OutputError(f"{output}: holds objects already; a cluster run writes a prefix "
                          "of parts", hint="remove them, or name a new prefix with -o")
    results = _run_parts(client, blob, files, output, job, progress)
    expected = {f"part-{i:05d}.{job.fmt.value}" for i in range(len(files))}
    written = {Path(p).name for p in fs.ls(root, detail=False, refresh=True)}
    if not expected <= written:
        raise OutputError(f"{output}: the cluster wrote {len(expected & written)} part "
                          f"objects of {len(expected)}", hint="run the job again")
    fs.pipe_file(f"{root}/{SUCCESS}", b"")
    return _merged(results, job)


def _run_parts(client, blob: bytes, files: list[str], parts_dir: str, job: Job,
               progress) -> list[PartResult]:
    """Count each partition's rows, then run every partition, the model shipped once."""
    job_id = uuid.uuid4().hex[:8]
    counts = client.gather(client.map(count_rows, files, [job.data.input_format] * len(files),
                                      key=[f"aecli-count-{job_id}-{i}"
                                           for i in range(len(files))]))
    offsets = [sum(counts[:i]) for i in range(len(files))]
    shipped = client.scatter(blob, broadcast=True, hash=False)
    futures = [client.submit(run_partition, shipped, path, i, offsets[i], job, parts_dir,
                             key=f"aecli-{job.command}-{job_id}-{i}", pure=False)
               for i, path in enumerate(files)]
    results = []
    try:
        for done in _as_completed(futures):
            results.append(done.result())
            if progress is not None:
                progress(len(results), len(files))
    finally:
        client.cancel(futures)
        client.run(forget_models)
    return sorted(results, key=lambda r: r.index)


def _merged(results: list[PartResult], job: Job) -> ClusterRun:
    totals = merge_totals(results)
    summary = merge_summaries(results, job.top) if job.command == "score" else None
    notes = [n for r in results for n in r.notes]
    return ClusterRun(len(results), totals.rows, totals, summary, notes)


def _as_completed(futures) -> Iterator:
    from distributed import as_completed

    return iter(as_completed(futures))

