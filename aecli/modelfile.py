"""The aecli model file: ``np.savez`` of plain arrays plus one JSON metadata document.

Format version 1. Member ``meta`` holds UTF-8 JSON as a uint8 array; every other member is a
numeric array that the metadata lists with its dtype and shape. Reading never unpickles: each
member's ``.npy`` header is parsed and checked (no object dtype, declared size equal to the
stored size, dtype and shape as the metadata says) before its bytes are read.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import zipfile

import numpy as np

from . import __version__
from .bundle import ModelBundle
from .errors import ModelFileError
from .model import Autoencoder
from .nn import LayerSpec, Network
from .preprocessing import scaler_from_arrays

FORMAT_NAME = "aecli-model"
FORMAT_VERSION = 1
MAX_META_BYTES = 16 << 20
MAX_ARRAY_BYTES = 4 << 30
ALLOWED_DTYPES = {"float32", "float64"}

_NOT_MODEL_HINT = "Pass a model file written by 'aecli train -o MODEL.npz'."


# -- writing ------------------------------------------------------------------------------
def bundle_arrays(bundle: ModelBundle) -> dict[str, np.ndarray]:
    """Every array of the model file except ``meta``."""
    ae = bundle.autoencoder
    arrays = dict(ae.network_.arrays())
    arrays["scaler.center"] = np.asarray(bundle.scaler.center_, dtype=np.float64)
    arrays["scaler.scale"] = np.asarray(bundle.scaler.scale_, dtype=np.float64)
    arrays["calibration.quantiles"] = np.asarray(ae.error_quantiles_, dtype=np.float64)
    if bundle.fill is not None:
        arrays["imputer.fill"] = np.asarray(bundle.fill, dtype=np.float64)
    return arrays


def bundle_meta(bundle: ModelBundle, arrays: dict[str, np.ndarray]) -> dict:
    """The JSON metadata document: enough to rebuild and check the whole model."""
    ae = bundle.autoencoder
    params = ae.get_params()
    params["hidden"] = list(ae.network_.specs[i].n_out for i in range(ae.network_.code_index))
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "aecli_version": __version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "features": list(bundle.features),
        "dtype": ae.network_.dtype.name,
        "scaler": bundle.scaler_kind,
        "missing": bundle.missing,
        "params": params,
        "architecture": [s.to_dict() for s in ae.network_.specs],
        "metrics": {
            "train_mse": ae.train_mse_,
            "validation_mse": ae.validation_mse_,
            "best_epoch": ae.best_epoch_,
            "epochs_run": len(ae.loss_history_),
            "stopped_early": ae.stopped_early_,
            "loss_history": ae.loss_history_,
            "val_loss_history": ae.val_loss_history_,
        },
        "threshold": ae.threshold_,
        "info": bundle.info,
        "arrays": {k: {"dtype": a.dtype.name, "shape": list(a.shape)} for k, a in arrays.items()},
    }


def write_model(bundle: ModelBundle, fileobj) -> None:
    """Write ``bundle`` in the model-file format to a binary file object."""
    arrays = bundle_arrays(bundle)
    meta = json.dumps(bundle_meta(bundle, arrays), allow_nan=False).encode()
    np.savez(fileobj, meta=np.frombuffer(meta, dtype=np.uint8), **arrays)


# -- reading ------------------------------------------------------------------------------
def _bad(path, what: str) -> ModelFileError:
    return ModelFileError(f"{path}: not a valid aecli model file: {what}", _NOT_MODEL_HINT)


def _read_member(zf: zipfile.ZipFile, name: str, path, max_bytes: int) -> np.ndarray:
    """Read one ``.npy`` member, checking its header before reading its data."""
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
        except ValueError as e:
            raise _bad(path, f"array {name!r} has a damaged header ({e})") from None
        if dtype.hasobject:
            raise _bad(path, f"array {name!r} holds Python objects, which aecli never loads")
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > max_bytes or nbytes != info.file_size - fp.tell():
            raise _bad(path, f"array {name!r} declares {nbytes} bytes but stores "
                       f"{info.file_size - fp.tell()}")
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
            for name, spec in meta["arrays"].items():
                if name not in names:
                    raise _bad(path, f"array {name!r} is missing")
                arr = _read_member(zf, name, path, MAX_ARRAY_BYTES)
                if arr.dtype.name != spec.get("dtype") or list(arr.shape) != spec.get("shape"):
                    raise _bad(path, f"array {name!r} is {arr.dtype.name} {list(arr.shape)}, "
                               f"metadata says {spec.get('dtype')} {spec.get('shape')}")
                if not np.isfinite(arr).all():
                    raise _bad(path, f"array {name!r} contains NaN or infinite values")
                arrays[name] = arr
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as e:
        raise _bad(path, f"the archive is damaged or truncated ({e})") from None
    except OSError as e:
        raise ModelFileError(f"{path}: cannot read the model file ({e.strerror or e})") from None
    return meta, arrays


def _parse_meta(raw: np.ndarray, path) -> dict:
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _bad(path, f"its metadata is not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise _bad(path, "its metadata does not describe an aecli model")
    version = meta.get("format_version")
    if not isinstance(version, int):
        raise _bad(path, "its metadata has no format version")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: written in model format {version} (by aecli "
            f"{meta.get('aecli_version', '?')}); this aecli ({__version__}) reads format "
            f"{FORMAT_VERSION} and older",
            "Upgrade aecli to read this model.",
        )
    if not isinstance(meta.get("arrays"), dict):
        raise _bad(path, "its metadata lists no arrays")
    for name, spec in meta["arrays"].items():
        if not isinstance(spec, dict) or spec.get("dtype") not in ALLOWED_DTYPES:
            raise _bad(path, f"array {name!r} has a dtype aecli does not use")
    return meta


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
    except (KeyError, TypeError, ValueError, IndexError) as e:
        if isinstance(e, ModelFileError):
            raise
        raise _bad(path, f"its metadata is inconsistent ({type(e).__name__}: {e})") from None


def _build(meta: dict, arrays: dict[str, np.ndarray]) -> ModelBundle:
    features = [str(f) for f in meta["features"]]
    d = len(features)
    specs = [LayerSpec(**s) for s in meta["architecture"]]
    if not specs or len(specs) % 2 or specs[0].n_in != d or specs[-1].n_out != d:
        raise ValueError("architecture does not match the feature list")
    network = Network(specs, dtype=np.dtype(meta["dtype"]))
    for name, shape in network.expected_shapes().items():
        if arrays[name].shape != shape:
            raise ValueError(f"array {name!r} has shape {arrays[name].shape}, expected {shape}")
    network.load_arrays(arrays)
    params = dict(meta["params"])
    params["hidden"] = tuple(params["hidden"])
    ae = Autoencoder(**params)
    m = meta["metrics"]
    ae.network_ = network
    ae.n_features_in_ = d
    ae.feature_names_in_ = np.asarray(features, dtype=object)
    ae.loss_history_ = list(m["loss_history"])
    ae.val_loss_history_ = m["val_loss_history"]
    ae.best_epoch_ = int(m["best_epoch"])
    ae.stopped_early_ = bool(m["stopped_early"])
    ae.train_mse_ = float(m["train_mse"])
    ae.validation_mse_ = m["validation_mse"]
    ae.error_quantiles_ = arrays["calibration.quantiles"].copy()
    ae.threshold_ = float(meta["threshold"])
    for name in ("scaler.center", "scaler.scale"):
        if arrays[name].shape != (d,):
            raise ValueError(f"array {name!r} does not have one value per feature")
    scaler = scaler_from_arrays(meta["scaler"], arrays["scaler.center"], arrays["scaler.scale"])
    fill = arrays.get("imputer.fill")
    if fill is not None and fill.shape != (d,):
        raise ValueError("array 'imputer.fill' does not have one value per feature")
    return ModelBundle(ae, scaler, str(meta["scaler"]), features, str(meta["missing"]),
                       None if fill is None else fill.copy(), dict(meta.get("info", {})))


def describe(path) -> dict:
    """The metadata of a model file (checked like :func:`read_model`), for ``inspect``."""
    meta, _ = read_members(path)
    return meta
