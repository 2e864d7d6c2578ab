"""The aecli model file: ``np.savez`` of plain arrays plus one JSON metadata document.

Format version 5. Member ``meta`` holds UTF-8 JSON as a uint8 array; every other member is a
numeric array that the metadata lists with its dtype and shape. The training summary is one
record, ``summary``; version 1 kept its figures in ``metrics``, ``threshold`` and
``info.summary``, and is still read. Version 3 adds ``categorical``, the categorical columns
with their levels (the last of ``features``, one-hot after the numeric ones); a version-2
file, which has none, is read as one whose columns are all numeric. Version 4 adds the code
term of the anomaly score (``score.code_center``, ``score.code_whitening``, and
``score.code_weight``; :mod:`aecli.estimators.scoring`) under ``params.score_by`` "error+code";
an older file scores by the error alone, as it did when written. Version 5 adds the fold
models of a small table's score ensemble (:mod:`aecli.estimators.ensemble`): their factors in
``ensemble.scale`` and their arrays under ``member1.``, ``member2.``, ... (each as the main
model's: ``member1.layer0.W``, ``member1.score.code_center``); a file without them scores by
one model. Models trained since then may add the evidence their score is combined with
(``evidence.columns``, ``evidence.left``, ``evidence.rows``, ``evidence.codes``,
``evidence.quantiles``, ``evidence.counts``, and since the weighted parts
``evidence.settings``: neighbours and weights; :mod:`aecli.estimators.evidence`); a file
without it scores as before.
An older file's metadata is brought to version 5's terms step by step, by its
``format_version`` alone (:mod:`.model_archive`), before anything reads it.

Reading never unpickles, and every size is checked before the bytes it sizes are read: the
archive, its directory and each member's ``.npy`` header in :mod:`.model_archive`; the
metadata's fields, the arrays the model uses and their values in :mod:`.model_checks`.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import os

import numpy as np

from .. import __version__
from ..errors import ModelFileError
from ..estimators import Autoencoder
from ..estimators.ensemble import Member
from ..estimators.evidence import Evidence
from ..estimators.finish import STATE_KEYS, FittedModel, FittedState, restore
from ..estimators.scoring import CodeDistance
from ..io import BadValues
from ..nn import Network
from ..preprocessing import Imputer, MissingPolicy, Preparation, scaler_from_arrays
from .bundle import ModelBundle
from .model_archive import (
    ALLOWED_DTYPES,
    ALTERED_HINT,
    FORMAT_NAME,
    FORMAT_VERSION,
    Archive,
    bad,
)
from .model_checks import Layout, check_fields, check_values, finite_number, layout
from .reference import Reference


# -- writing ------------------------------------------------------------------------------
def bundle_arrays(bundle: ModelBundle) -> dict[str, np.ndarray]:
    """Every array of the model file except ``meta``."""
    fitted, prep = FittedModel.of(bundle.autoencoder), bundle.preparation
    arrays = dict(fitted.network.arrays())
    arrays["scaler.center"] = np.asarray(prep.scaler.center_, dtype=np.float64)
    arrays["scaler.scale"] = np.asarray(prep.scaler.scale_, dtype=np.float64)
    arrays["calibration.quantiles"] = np.asarray(fitted.score_quantiles, dtype=np.float64)
    arrays.update(_score_arrays(fitted.code_distance))
    if fitted.members:
        arrays["ensemble.scale"] = np.array([m.scale for m in fitted.members],
                                            dtype=np.float64)
    for i, member in enumerate(fitted.members, start=1):
        prefix = f"member{i}."
        arrays.update({prefix + k: a for k, a in member.network.arrays().items()})
        arrays.update({prefix + k: a for k, a in _score_arrays(member.code_distance).items()})
    if fitted.evidence is not None:
        arrays.update(fitted.evidence.arrays())
    if prep.fill is not None:
        arrays["imputer.fill"] = np.asarray(prep.fill, dtype=np.float64)
    if bundle.reference is not None:
        arrays.update(bundle.reference.arrays())
    return arrays


def _score_arrays(distance: CodeDistance | None) -> dict[str, np.ndarray]:
    if distance is None:
        return {}
    return {"score.code_center": distance.center, "score.code_whitening": distance.whitening,
            "score.code_weight": np.array([distance.weight])}


def bundle_meta(bundle: ModelBundle, arrays: dict[str, np.ndarray]) -> dict:
    """The JSON metadata document: enough to rebuild and check the whole model."""
    ae, prep = bundle.autoencoder, bundle.preparation
    params = ae.get_params()
    params["hidden"] = list(ae.network_.specs[i].n_out for i in range(ae.network_.code_index))
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "aecli_version": __version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "features": list(prep.features),
        "categorical": [c.to_dict() for c in prep.categorical],
        "dtype": ae.network_.dtype.name,
        "scaler": prep.scale_kind.value,
        "missing": prep.missing.value,
        "bad_values": prep.bad_values.value,
        "params": params,
        "architecture": [s.to_dict() for s in ae.network_.specs],
        "summary": bundle.summary,
        "info": bundle.info,
        **({} if bundle.reference is None else {"reference": bundle.reference.meta()}),
        "arrays": {k: {"dtype": a.dtype.name, "shape": list(a.shape)} for k, a in arrays.items()},
    }


def write_model(bundle: ModelBundle, fileobj) -> None:
    """Write ``bundle`` in the model-file format to a binary file object.

    The archive is built in memory and written in one go: a zip file seeks back to its
    headers, which a pipe or ``/dev/null`` cannot do.
    """
    arrays = bundle_arrays(bundle)
    meta = json.dumps(bundle_meta(bundle, arrays), allow_nan=False).encode()
    archive = io.BytesIO()
    np.savez(archive, meta=np.frombuffer(meta, dtype=np.uint8), **arrays)
    fileobj.write(archive.getbuffer())


# -- reading ------------------------------------------------------------------------------


def _read(path) -> tuple[dict, dict[str, np.ndarray], Layout]:
    """The checked metadata, arrays and layout of a model file: every size is checked before
    the bytes it sizes are read (:mod:`.model_archive`), every field and array against the
    model the metadata describes (:mod:`.model_checks`)."""
    with Archive(path) as archive:
        meta = archive.meta()
        check_fields(meta, path)
        plan = layout(meta, path)
        arrays = archive.arrays(meta["arrays"])
    check_values(meta, arrays, plan, path)
    return meta, arrays, plan


def read_members(path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read and check the metadata and arrays of a model file, without building the model."""
    meta, arrays, _ = _read(os.fspath(path))
    return meta, arrays


def read_model(path) -> ModelBundle:
    """Load a model file written by :func:`write_model`.

    Raises
    ------
    aecli.errors.ModelFileError
        Missing, truncated or corrupted file, a newer format, arrays that do not match the
        metadata, or anything that is not an aecli model.
    """
    return read_model_and_meta(path)[0]


def read_model_and_meta(path) -> tuple[ModelBundle, dict]:
    """The model of a model file and its metadata (checked like :func:`read_model`)."""
    path = os.fspath(path)
    meta, arrays, plan = _read(path)
    try:
        return _build(meta, arrays, plan), meta
    except (KeyError, TypeError, ValueError, IndexError, OverflowError) as e:
        if isinstance(e, ModelFileError):
            raise
        raise bad(path, f"its metadata is inconsistent ({type(e).__name__}: {e})",
                  ALTERED_HINT) from None


def _build(meta: dict, arrays: dict[str, np.ndarray], plan: Layout) -> ModelBundle:
    dtype = meta["dtype"]
    if dtype not in ALLOWED_DTYPES:
        raise ValueError(f"dtype {dtype!r} is not float32 or float64")
    quantiles = arrays["calibration.quantiles"]
    if np.any(np.diff(quantiles) < 0):
        raise ValueError("array 'calibration.quantiles' is not an increasing list of errors")
    summary = meta["summary"]
    absent = [k for k in STATE_KEYS if k not in summary]
    if absent:
        raise ValueError(f"the training summary has no {absent[0]!r}")
    threshold = summary["threshold"]
    if not finite_number(threshold) or threshold < 0:
        raise ValueError(f"threshold {threshold!r} is not a finite error")
    # sizes now match the stored arrays
    network = Network(plan.specs, dtype=np.dtype(dtype), groups=plan.groups)
    network.load_arrays(arrays)
    params = dict(meta["params"])
    params["hidden"] = tuple(params["hidden"])
    features = meta["features"]
    fitted = FittedModel(network, FittedState.from_summary(summary), quantiles,
                         _code_distance(arrays), _members(arrays, network, plan),
                         Evidence.from_arrays(arrays))
    ae = restore(Autoencoder(**params), fitted, None if plan.categorical else features)
    scaler = scaler_from_arrays(meta["scaler"], arrays["scaler.center"], arrays["scaler.scale"])
    fill = arrays.get("imputer.fill")
    imputer = None if fill is None else Imputer.from_fill(fill, plan.numeric)
    prep = Preparation(plan.numeric, MissingPolicy(meta["missing"]), scaler, imputer, dtype,
                       plan.categorical, BadValues(meta["bad_values"]))
    reference = None
    if "reference.counts" in arrays:  # models trained since drift came: see .reference
        reference = Reference.from_file(meta["reference"], arrays, plan.numeric,
                                        [c.name for c in plan.categorical])
    return ModelBundle(ae, prep, dict(meta.get("info", {})), dict(summary), reference)


def _code_distance(arrays: dict[str, np.ndarray]) -> CodeDistance | None:
    """The code term of the score (shapes checked by the layout); None when the file scores
    by the error alone."""
    if "score.code_center" not in arrays:
        return None
    center, whitening, weight = (arrays[n] for n in (
        "score.code_center", "score.code_whitening", "score.code_weight"))
    if weight[0] < 0:
        raise ValueError("the score's code weight is negative")
    return CodeDistance(center.astype(np.float64), whitening.astype(np.float64),
                        float(weight[0]))


def _members(arrays: dict[str, np.ndarray], network: Network, plan: Layout
             ) -> tuple[Member, ...]:
    """The fold models that score with the main one (format 5), each checked like it."""
    members = []
    for i in range(1, plan.members + 1):
        prefix = f"member{i}."
        own = {name[len(prefix):]: a for name, a in arrays.items() if name.startswith(prefix)}
        member = Network(network.specs, dtype=network.dtype, groups=network.groups)
        member.load_arrays(own)
        members.append(Member(member, _code_distance(own),
                              float(arrays["ensemble.scale"][i - 1])))
    return tuple(members)


def describe(path) -> dict:
    """The metadata of a model file (checked like :func:`read_model`), for ``inspect``."""
    return read_model_and_meta(path)[1]
