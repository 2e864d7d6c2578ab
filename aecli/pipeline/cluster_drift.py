"""``aecli drift --scheduler``: a partitioned data set counted against the model's reference on
a Dask cluster.

Each partition is read and counted on a worker exactly as one machine counts its input
(:func:`aecli.pipeline.drift.count_stream`; the model shipped once, as the other cluster
commands ship it); only the counts come back, and they merge exactly, so the report is the
one machine's for the same rows.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from . import drift, modelfile
from .bundle import ModelBundle
from .cluster_apply import Job, _model, forget_models, partitions
from .sources import DataOptions, read_for_model


def count_partition(blob: bytes, path: str, options: DataOptions) -> drift.DriftCounts:
    """Count one partition against the model (on a worker)."""
    bundle = drift.scoring_policy(_model(blob, Job("drift", data=options)), options.missing)
    with read_for_model(bundle, path, options, [], False) as stream:
        return drift.count_stream(bundle, stream, stream.name)


def count_on_cluster(client, model_path: str | os.PathLike, source: str,
                     options: DataOptions) -> tuple[ModelBundle, drift.DriftCounts]:
    """The model (checked here first: a bad model, or one without a reference, fails before
    the cluster does any work) and the counts of every partition of ``source``, merged."""
    bundle = drift.checked_reference(modelfile.read_model(model_path), model_path)
    files = partitions(source)
    blob = Path(model_path).read_bytes()
    job = uuid.uuid4().hex[:8]
    shipped = client.scatter(blob, broadcast=True, hash=False)
    futures = [client.submit(count_partition, shipped, path, options,
                             key=f"aecli-drift-{job}-{i}", pure=False)
               for i, path in enumerate(files)]
    try:
        parts = client.gather(futures)
    finally:
        client.cancel(futures)
        client.run(forget_models)
    counts = parts[0]
    for part in parts[1:]:
        counts = counts.merge(part)
    return drift.scoring_policy(bundle, options.missing), counts
