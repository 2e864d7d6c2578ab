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
one model. Reading never unpickles: each
member's ``.npy`` header is parsed and checked (no object dtype, declared size equal to the
stored size, dtype and shape as the metadata says) before its bytes are read.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import lzma
import math
import os
import zipfile
import zlib

import numpy as np

from .. import __version__
from ..errors import ModelFileError
from ..estimators import Autoencoder
from ..estimators.ensemble import Member
from ..estimators.scoring import CodeDistance
from ..io import BadValues
from ..nn import ActivationKind, LayerSpec, Network, SoftmaxGroups
from ..preprocessing import (
    Categorical,
    Imputer,
    MissingPolicy,
    Preparation,
    scaler_from_arrays,
)
from .bundle import ModelBundle

FORMAT_NAME = "aecli-model"
FORMAT_VERSION = 5
MAX_MEMBERS = 16  # fold models of a score's ensemble (aecli trains 5)
MAX_META_BYTES = 16 << 20
MAX_ARRAY_BYTES = 4 << 30
ALLOWED_DTYPES = {"float32", "float64"}

_NOT_MODEL_HINT = "Pass a model file written by 'aecli train -o MODEL.npz'."


# -- writing ------------------------------------------------------------------------------
def bundle_arrays(bundle: ModelBundle) -> dict[str, np.ndarray]:
    """Every array of the model file except ``meta``."""
    ae, prep = bundle.autoencoder, bundle.preparation
    arrays = dict(ae.network_.arrays())
    arrays["scaler.center"] = np.asarray(prep.scaler.center_, dtype=np.float64)
    arrays["scaler.scale"] = np.asarray(prep.scaler.scale_, dtype=np.float64)
    arrays["calibration.quantiles"] = np.asarray(ae.error_quantiles_, dtype=np.float64)
    arrays.update(_score_arrays(ae.code_distance_))
    if ae.members_:
        arrays["ensemble.scale"] = np.array([m.scale for m in ae.members_], dtype=np.float64)
    for i, member in enumerate(ae.members_, start=1):
        prefix = f"member{i}."
        arrays.update({prefix + k: a for k, a in member.network.arrays().items()})
        arrays.update({prefix + k: a for k, a in _score_arrays(member.code_distance).items()})
    if prep.fill is not None:
        arrays["imputer.fill"] = np.asarray(prep.fill, dtype=np.float64)
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
# What zipfile and its decompressors raise on damaged or hostile archives (besides OSError).
_ARCHIVE_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError,
                   RuntimeError, zlib.error, lzma.LZMAError)
# Metadata fields the reader relies on, with their JSON types (bool is excluded from numbers).
_FIELDS = {
    "aecli_version": str, "created": str, "features": list, "dtype": str, "scaler": str,
    "missing": str, "params": dict, "architecture": list, "summary": dict,
}
# What the estimator's fitted state needs from the summary.
_STATE_KEYS = ("loss_history", "val_loss_history", "best_epoch", "stopped_early", "train_mse",
               "validation_mse", "threshold")
_LAYER_KEYS = {"n_in", "n_out", "activation", "tied_to"}
_REQUIRED_ARRAYS = ("scaler.center", "scaler.scale", "calibration.quantiles")


def _bad(path, what: str) -> ModelFileError:
    return ModelFileError(f"{path}: not a valid aecli model file: {what}", _NOT_MODEL_HINT)


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _read_member(zf: zipfile.ZipFile, name: str, path, max_bytes: int,
                 spec: dict | None = None) -> np.ndarray:
    """Read one ``.npy`` member, checking its header (and ``spec``) before reading its data."""
    info = zf.getinfo(name + ".npy")
    with zf.open(info) as fp:
        try:
            version = np.lib.format.read_magic(fp)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        except (ValueError, TypeError, SyntaxError, RecursionError) as e:
            raise _bad(path, f"array {name!r} has a damaged header ({e})") from None
        if dtype.hasobject:
            raise _bad(path, f"array {name!r} holds Python objects, which aecli never loads")
        if any(n < 0 for n in shape):
            raise _bad(path, f"array {name!r} has a damaged header (shape {list(shape)})")
        if spec is not None and (dtype.name != spec["dtype"] or list(shape) != spec["shape"]):
            raise _bad(path, f"array {name!r} is {dtype.name} {list(shape)}, metadata says "
                       f"{spec['dtype']} {spec['shape']}")
        nbytes = math.prod(shape) * dtype.itemsize
        stored = info.file_size - fp.tell()
        if nbytes > max_bytes or nbytes != stored:
            raise _bad(path, f"array {name!r} declares {nbytes} bytes but stores {stored}")
        data = fp.read(nbytes)
    if len(data) != nbytes:
        raise _bad(path, f"array {name!r} is truncated")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def read_members(path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read and check the metadata and arrays of a model file, without building the model."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelFileError(f"{path}: model file not found", "Check the path, or train one "
                             "with 'aecli train DATA -o MODEL.npz'.")
    if os.path.isdir(path):
        raise ModelFileError(f"{path}: is a directory, not a model file", _NOT_MODEL_HINT)
    table = _looks_like_a_table(path)
    if table:
        raise ModelFileError(
            f"{path}: not a valid aecli model file: it is {table}",
            "The model comes first: aecli encode MODEL.npz DATA (and likewise reconstruct, "
            "score, inspect, export); 'aecli train DATA -o MODEL.npz' writes one.")
    try:
        with zipfile.ZipFile(path) as zf:
            names = {n[:-4] for n in zf.namelist() if n.endswith(".npy")}
            if "meta" not in names:
                raise _bad(path, "it has no aecli metadata")
            raw = _read_member(zf, "meta", path, MAX_META_BYTES)
            if raw.dtype != np.uint8 or raw.ndim != 1:
                raise _bad(path, "its metadata is not a byte string")
            meta = _parse_meta(raw, path)
            arrays = {}
            total = 0
            for name, spec in meta["arrays"].items():
                if name not in names:
                    raise _bad(path, f"array {name!r} is missing")
                arr = _read_member(zf, name, path, MAX_ARRAY_BYTES - total, spec)
                total += arr.nbytes
                if not np.isfinite(arr).all():
                    raise _bad(path, f"array {name!r} contains NaN or infinite values")
                arrays[name] = arr
    except _ARCHIVE_ERRORS as e:
        raise _bad(path, f"the archive is damaged or truncated ({e})") from None
    except OSError as e:
        raise ModelFileError(f"{path}: cannot read the model file ({e.strerror or e})") from None
    return meta, arrays


def _looks_like_a_table(path) -> str | None:
    """``"a Parquet file"`` or ``"a text file (a table?)"`` when ``path`` plainly holds data
    rather than a model archive, for a message that says so; None otherwise."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return None
    if head.startswith(b"PK"):
        return None  # a zip archive: checked as a model
    if head.startswith(b"PAR1"):
        return "a Parquet file"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text.strip() and all(c.isprintable() or c in "\r\n\t" for c in text):
        return "a text file (a table?)"
    return None


def _reject_constant(name: str):
    # JSON's NaN and Infinity: the writer never emits them (allow_nan=False).
    raise ValueError(f"{name} is not a JSON number")


def _parse_meta(raw: np.ndarray, path) -> dict:
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise _bad(path, f"its metadata is not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise _bad(path, "its metadata does not describe an aecli model")
    version = meta.get("format_version")
    if not _is_int(version) or version < 1:
        raise _bad(path, "its metadata has no valid format version")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: written in model format {version} (by aecli "
            f"{meta.get('aecli_version', '?')}), which is newer than this aecli "
            f"({__version__}) can read: it reads model format {FORMAT_VERSION} and older",
            "Upgrade aecli (pip install -U aecli) to read this model.",
        )
    if not isinstance(meta.get("arrays"), dict):
        raise _bad(path, "its metadata lists no arrays")
    if version == 1:
        meta = _from_version_1(meta, path)
    if version < 4 and isinstance(meta.get("params"), dict):
        meta["params"] = {**meta["params"], "score_by": "error"}  # as it scored when written
    for name, spec in meta["arrays"].items():
        if not isinstance(spec, dict) or spec.get("dtype") not in ALLOWED_DTYPES:
            raise _bad(path, f"array {name!r} has a dtype aecli does not use")
        shape = spec.get("shape")
        if not isinstance(shape, list) or not all(_is_int(n) and n >= 0 for n in shape):
            raise _bad(path, f"array {name!r} has no valid shape in the metadata")
    for key, kind in _FIELDS.items():
        if not isinstance(meta.get(key), kind) or isinstance(meta.get(key), bool):
            raise _bad(path, f"its metadata has no valid {key!r}")
    if not isinstance(meta.get("info", {}), dict):
        raise _bad(path, "its metadata has no valid 'info'")
    return meta


def _from_version_1(meta: dict, path) -> dict:
    """A version-1 document in version 2's terms: its ``metrics``, ``threshold`` and
    ``info.summary`` become the one ``summary`` record."""
    info = meta.get("info", {})
    if not isinstance(meta.get("metrics"), dict) or not isinstance(info, dict):
        raise _bad(path, "its metadata has no valid 'metrics'")
    old = info.get("summary", {})
    summary = {k: v for k, v in old.items() if k != "early_stopped"} if isinstance(
        old, dict) else {}
    summary.update(meta["metrics"], threshold=meta.get("threshold"))
    rest = {k: v for k, v in meta.items() if k not in ("metrics", "threshold")}
    return {**rest, "summary": summary, "info": {k: v for k, v in info.items()
                                                   if k != "summary"}}


def read_model(path) -> ModelBundle:
    """Load a model file written by :func:`write_model`.

    Raises
    ------
    aecli.errors.ModelFileError
        Missing, truncated or corrupted file, a newer format, arrays that do not match the
        metadata, or anything that is not an aecli model.
    """
    meta, arrays = read_members(path)
    try:
        return _build(meta, arrays)
    except (KeyError, TypeError, ValueError, IndexError, OverflowError) as e:
        if isinstance(e, ModelFileError):
            raise
        raise _bad(path, f"its metadata is inconsistent ({type(e).__name__}: {e})") from None


def _layer_specs(architecture: list, d: int) -> list[LayerSpec]:
    """The layers the metadata describes, checked to chain from ``d`` features back to ``d``
    before anything is allocated."""
    if not architecture or len(architecture) % 2:
        raise ValueError("the architecture needs an encoder and a mirrored decoder")
    specs: list[LayerSpec] = []
    for i, s in enumerate(architecture):
        if not isinstance(s, dict) or not {"n_in", "n_out", "activation"} <= set(s) <= _LAYER_KEYS:
            raise ValueError(f"layer {i} is not a layer description")
        n_in, n_out, tied = s["n_in"], s["n_out"], s.get("tied_to")
        if not (_is_int(n_in) and _is_int(n_out) and n_in >= 1 and n_out >= 1):
            raise ValueError(f"layer {i} has sizes {n_in!r} → {n_out!r}")
        if n_in != (specs[-1].n_out if specs else d):
            raise ValueError(f"layer {i} takes {n_in} inputs but gets "
                             f"{specs[-1].n_out if specs else d}")
        if tied is not None:
            owner = specs[tied] if _is_int(tied) and 0 <= tied < i else None
            if owner is None or owner.tied_to is not None or (owner.n_in, owner.n_out) != (
                    n_out, n_in):
                raise ValueError(f"layer {i} is tied to a layer {tied!r} it cannot mirror")
        specs.append(LayerSpec(n_in, n_out, ActivationKind(s["activation"]).value, tied))
    if specs[-1].n_out != d:
        raise ValueError("the architecture does not end with one output per feature")
    return specs


def _build(meta: dict, arrays: dict[str, np.ndarray]) -> ModelBundle:
    features = meta["features"]
    if not features or not all(isinstance(f, str) and f for f in features) or len(
            set(features)) != len(features):
        raise ValueError("the feature list is not a list of distinct column names")
    stored = meta.get("categorical", [])
    if not isinstance(stored, list) or not all(isinstance(c, dict) for c in stored):
        raise ValueError("'categorical' is not a list of columns")
    categorical = [Categorical.from_dict(c) for c in stored]
    numeric = features[: len(features) - len(categorical)]
    if [c.name for c in categorical] != features[len(numeric) :] or not numeric:
        raise ValueError("the categorical columns are not the last of the features")
    groups = SoftmaxGroups(len(numeric), [c.size for c in categorical])
    d = groups.width
    dtype = meta["dtype"]
    if dtype not in ALLOWED_DTYPES:
        raise ValueError(f"dtype {dtype!r} is not float32 or float64")
    missing = MissingPolicy(meta["missing"])
    specs = _layer_specs(meta["architecture"], d)
    expected = {}
    for i, spec in enumerate(specs):
        if spec.tied_to is None:
            expected[f"layer{i}.W"] = (spec.n_in, spec.n_out)
        expected[f"layer{i}.b"] = (spec.n_out,)
    expected.update({"scaler.center": (len(numeric),), "scaler.scale": (len(numeric),)})
    if meta["missing"] == MissingPolicy.IMPUTE or "imputer.fill" in arrays:
        expected["imputer.fill"] = (len(numeric),)
    _check_shapes(arrays, expected)
    quantiles = arrays.get("calibration.quantiles")
    if quantiles is None or quantiles.ndim != 1 or len(quantiles) < 2 or np.any(
            np.diff(quantiles) < 0):
        raise ValueError("array 'calibration.quantiles' is not an increasing list of errors")
    summary = meta["summary"]
    absent = [k for k in _STATE_KEYS if k not in summary]
    if absent:
        raise ValueError(f"the training summary has no {absent[0]!r}")
    threshold = summary["threshold"]
    if not isinstance(threshold, int | float) or isinstance(threshold, bool) or not (
            math.isfinite(threshold) and threshold >= 0):
        raise ValueError(f"threshold {threshold!r} is not a finite error")
    # sizes now match the stored arrays
    network = Network(specs, dtype=np.dtype(dtype), groups=groups)
    network.load_arrays(arrays)
    params = dict(meta["params"])
    params["hidden"] = tuple(params["hidden"])
    k = specs[len(specs) // 2 - 1].n_out
    ae = Autoencoder._from_state(params, network, {**summary, "error_quantiles": quantiles},
                                 None if categorical else features,
                                 _code_distance(arrays, k), _members(arrays, network, k))
    scaler = scaler_from_arrays(meta["scaler"], arrays["scaler.center"], arrays["scaler.scale"])
    fill = arrays.get("imputer.fill")
    imputer = None if fill is None else Imputer.from_fill(fill, numeric)
    prep = Preparation(numeric, missing, scaler, imputer, dtype, categorical,
                       BadValues(meta.get("bad_values", "error")))
    return ModelBundle(ae, prep, dict(meta.get("info", {})), dict(summary))


def _check_shapes(arrays: dict[str, np.ndarray], expected: dict[str, tuple[int, ...]],
                  prefix: str = "") -> None:
    """Every ``expected`` array is there, in its shape (``prefix``: how the file names
    them)."""
    for name, shape in expected.items():
        if name not in arrays:
            raise ValueError(f"array {prefix + name!r} is missing")
        if arrays[name].shape != shape:
            raise ValueError(f"array {prefix + name!r} has shape {arrays[name].shape}, "
                             f"expected {shape}")


def _code_distance(arrays: dict[str, np.ndarray], k: int) -> CodeDistance | None:
    """The code term of the score, checked against the code size ``k``; None when the file
    scores by the error alone."""
    names = ("score.code_center", "score.code_whitening", "score.code_weight")
    present = [n in arrays for n in names]
    if not any(present):
        return None
    if not all(present):
        raise ValueError(f"array {names[present.index(False)]!r} is missing")
    center, whitening, weight = (arrays[n] for n in names)
    if center.shape != (k,) or whitening.shape != (k, k) or weight.shape != (1,) \
            or weight[0] < 0:
        raise ValueError("the score's code statistics do not match the code size")
    return CodeDistance(center.astype(np.float64), whitening.astype(np.float64),
                        float(weight[0]))


def _members(arrays: dict[str, np.ndarray], network: Network, k: int) -> tuple[Member, ...]:
    """The fold models that score with the main one (format 5), each checked like it."""
    scales = arrays.get("ensemble.scale")
    if scales is None:
        return ()
    if scales.ndim != 1 or not 1 <= len(scales) <= MAX_MEMBERS or not np.all(
            np.isfinite(scales) & (scales > 0)):
        raise ValueError("array 'ensemble.scale' is not a list of positive factors")
    members = []
    for i, scale in enumerate(scales, start=1):
        prefix = f"member{i}."
        own = {name[len(prefix):]: a for name, a in arrays.items() if name.startswith(prefix)}
        _check_shapes(own, network.expected_shapes(), prefix)
        member = Network(network.specs, dtype=network.dtype, groups=network.groups)
        member.load_arrays(own)
        members.append(Member(member, _code_distance(own, k), float(scale)))
    return tuple(members)


def describe(path) -> dict:
    """The metadata of a model file (checked like :func:`read_model`), for ``inspect``."""
    meta, _ = read_members(path)
    return meta
