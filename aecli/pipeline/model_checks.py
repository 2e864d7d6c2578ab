"""What a model file's metadata and arrays must say, checked before the model is built.

Three passes, each before the next reads anything:

1. :func:`check_fields`: every metadata field the reader or ``inspect`` uses has its JSON type
   (model text is never trusted to be what it claims: a nested list in ``info.roles`` is
   refused here, not met by the renderer).
2. :func:`layout`: from the features, categorical columns and layer sizes alone, the arrays
   the model uses and their shapes. The metadata's ``arrays`` must list exactly those, so an
   array no part of the model uses is refused, and their declared sizes are bounded before any
   member is inflated.
3. :func:`check_values`: the arrays' values. Every value is finite; the network's weights and
   biases lie within :data:`MAX_WEIGHT` (a weight of 3e38 overflows float32 on the first row
   and leaves NaN scores that no threshold flags); the ensemble's factors lie within
   :data:`ENSEMBLE_SCALE_RANGE`; the summary's ``score_models`` counts the models that score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real

import numpy as np

from ..estimators.evidence import COLUMN_LEVELS, LEVELS, REFERENCE_ROWS
from ..nn import ActivationKind, LayerSpec, SoftmaxGroups
from ..preprocessing import Categorical, MissingPolicy
from .model_archive import ALTERED_HINT, bad, is_int
from .reference import SAMPLE_VALUES

MAX_MEMBERS = 16  # fold models of a score's ensemble (aecli trains 5)
MAX_LAYERS = 1_000
MAX_QUANTILES = 10_001  # aecli writes 101 (every percentile)
# A trained weight or bias beyond ±1e6 means a diverged or altered model: training stops with
# an error long before (the loss overflows), and inputs are scaled to about unit size.
MAX_WEIGHT = 1e6
# A fold model's factor brings its scores to the main model's: the ratio of two models' median
# scores of the same table, near 1 (0.3-3 on bench/detection.py). Outside 1e-6..1e6 the fold
# model would decide every row's score alone (1e308 flags every row, 5e-324 none).
ENSEMBLE_SCALE_RANGE = (1e-6, 1e6)

# Metadata fields the reader relies on, with their JSON types (bool is excluded from numbers).
_FIELDS = {
    "aecli_version": str, "created": str, "features": list, "dtype": str, "scaler": str,
    "missing": str, "params": dict, "architecture": list, "summary": dict,
    "categorical": list, "bad_values": str,  # filled in for older versions when read
}
_OPTIONAL_FIELDS = {"info": dict}
# Summary entries inspect and scoring read, with their types (each may be absent or null).
_SUMMARY_FIELDS = {"calibration_rows": int, "calibration_warning": str,
                   "calibration_method": str, "calibration_source": str,
                   "calibration_imputed": str, "score": str,
                   "score_models": int, "stop_reason": str}
_LAYER_KEYS = {"n_in", "n_out", "activation", "tied_to"}
_SCORE_ARRAYS = ("score.code_center", "score.code_whitening", "score.code_weight")


def _type_name(kind) -> str:
    return {str: "text", list: "a list", dict: "an object", int: "an integer"}[kind]


def check_fields(meta: dict, path) -> None:
    """Refuse metadata whose fields are not of the JSON types the reader and ``inspect``
    expect, naming the field."""
    for key, kind in {**_FIELDS, **_OPTIONAL_FIELDS}.items():
        if key not in meta and key in _OPTIONAL_FIELDS:
            continue
        value = meta.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise bad(path, f"its metadata has no valid {key!r} (it should be "
                      f"{_type_name(kind)})", ALTERED_HINT)
    for key, kind in _SUMMARY_FIELDS.items():
        value = meta["summary"].get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise bad(path, f"its metadata's 'summary.{key}' is {type(value).__name__}, not "
                      f"{_type_name(kind)}", ALTERED_HINT)
    info = meta.get("info", {})
    for key, kind in (("source", str), ("unused_columns", list), ("roles", dict),
                      ("reading", dict)):
        if key in info and not isinstance(info[key], kind):
            raise bad(path, f"its metadata's 'info.{key}' is not {_type_name(kind)}",
                      ALTERED_HINT)
    if not all(isinstance(c, str) for c in info.get("unused_columns", [])):
        raise bad(path, "its metadata's 'info.unused_columns' is not a list of column names",
                  ALTERED_HINT)
    for role, names in info.get("roles", {}).items():
        # a role lists column names, or maps each to why it is unused ("other")
        pairs = names.items() if isinstance(names, dict) else [(n, "") for n in names] \
            if isinstance(names, list) else [(None, None)]
        if not all(isinstance(a, str) and isinstance(b, str) for a, b in pairs):
            raise bad(path, f"its metadata's 'info.roles.{role}' is not a list of column "
                      "names", ALTERED_HINT)


@dataclass(frozen=True)
class Layout:
    """The model the metadata describes, before any array is read: its columns, layers, and
    every array it uses with its shape."""

    numeric: list[str]
    categorical: list[Categorical]
    groups: SoftmaxGroups
    specs: list[LayerSpec]
    members: int  # fold models in the score's ensemble
    shapes: dict[str, tuple[int, ...]]  # every array the model uses


def layout(meta: dict, path) -> Layout:
    """The arrays the model needs, from its columns and layer sizes; the metadata's ``arrays``
    must list exactly these, in these shapes, within the size aecli reads."""
    try:
        numeric, categorical, groups = _columns(meta)
        specs = layer_specs(meta["architecture"], groups.width)
        MissingPolicy(meta["missing"])
    except (KeyError, TypeError, ValueError) as e:
        raise bad(path, f"its metadata is inconsistent ({e})", ALTERED_HINT) from None
    listed = meta["arrays"]
    net = {}
    for i, spec in enumerate(specs):
        if spec.tied_to is None:
            net[f"layer{i}.W"] = (spec.n_in, spec.n_out)
        net[f"layer{i}.b"] = (spec.n_out,)
    k = specs[len(specs) // 2 - 1].n_out
    score = {}
    if any(n in listed for n in _SCORE_ARRAYS):
        score = {"score.code_center": (k,), "score.code_whitening": (k, k),
                 "score.code_weight": (1,)}
    shapes = {**net, **score, "scaler.center": (len(numeric),),
              "scaler.scale": (len(numeric),),
              "calibration.quantiles": _free_length(listed, "calibration.quantiles",
                                                    2, MAX_QUANTILES, path)}
    if meta["missing"] == MissingPolicy.IMPUTE or "imputer.fill" in listed:
        shapes["imputer.fill"] = (len(numeric),)
    if "reference.counts" in listed:  # the drift reference (see aecli.pipeline.reference)
        shapes.update({"reference.counts": (len(numeric),), "reference.missing": (len(numeric),),
                       "reference.values": _free_length(listed, "reference.values", 0,
                                                        SAMPLE_VALUES * len(numeric), path)})
    if "evidence.columns" in listed:  # the combined score (aecli.estimators.evidence)
        shapes.update({"evidence.columns": _free_rows(listed, "evidence.columns",
                                                      len(numeric), COLUMN_LEVELS, path),
                       "evidence.rows": _free_rows(listed, "evidence.rows", len(numeric),
                                                   REFERENCE_ROWS, path),
                       "evidence.quantiles": (4, len(LEVELS)), "evidence.counts": (4,),
                       "evidence.left": (len(numeric),)})
        shapes["evidence.codes"] = (shapes["evidence.rows"][0], k)
        if "evidence.settings" in listed:  # neighbours and weights; older files: none
            shapes["evidence.settings"] = (5,)
    members = 0
    if "ensemble.scale" in listed:
        shapes["ensemble.scale"] = _free_length(listed, "ensemble.scale", 1, MAX_MEMBERS, path)
        members = shapes["ensemble.scale"][0]
        for i in range(1, members + 1):
            shapes.update({f"member{i}.{name}": s for name, s in {**net, **score}.items()})
    unused = sorted(set(listed) - set(shapes))
    if unused:
        raise bad(path, f"array {unused[0]!r} is listed in the metadata, but no part of the "
                  "model uses it", ALTERED_HINT)
    for name, shape in shapes.items():
        if name not in listed:
            raise bad(path, f"array {name!r} is missing from the metadata's 'arrays'",
                      ALTERED_HINT)
        if tuple(listed[name]["shape"]) != shape:
            raise bad(path, f"array {name!r} is {listed[name]['shape']} in the metadata, but "
                      f"the model's columns and layers need {list(shape)}", ALTERED_HINT)
    return Layout(numeric, categorical, groups, specs, members, shapes)


def _free_length(listed: dict, name: str, low: int, high: int, path) -> tuple[int]:
    """The shape of a 1-D array whose length the layers do not fix, within ``low..high``."""
    shape = listed.get(name, {}).get("shape", [])
    if len(shape) != 1 or not low <= shape[0] <= high:
        raise bad(path, f"array {name!r} should list {low} to {high} values, the metadata "
                  f"says shape {shape}", ALTERED_HINT)
    return (shape[0],)


def _free_rows(listed: dict, name: str, width: int, high: int, path) -> tuple[int, int]:
    """The shape of a 2-D array of ``width`` columns and 2 to ``high`` rows."""
    shape = listed.get(name, {}).get("shape", [])
    if len(shape) != 2 or not 2 <= shape[0] <= high or shape[1] != width:
        raise bad(path, f"array {name!r} should be 2 to {high} rows of {width} values, the "
                  f"metadata says shape {shape}", ALTERED_HINT)
    return (shape[0], shape[1])


def _columns(meta: dict) -> tuple[list[str], list[Categorical], SoftmaxGroups]:
    features = meta["features"]
    if not features or not all(isinstance(f, str) and f for f in features) or len(
            set(features)) != len(features):
        raise ValueError("the feature list is not a list of distinct column names")
    stored = meta["categorical"]
    if not all(isinstance(c, dict) for c in stored):
        raise ValueError("'categorical' is not a list of columns")
    categorical = [Categorical.from_dict(c) for c in stored]
    numeric = features[: len(features) - len(categorical)]
    if [c.name for c in categorical] != features[len(numeric):] or not numeric:
        raise ValueError("the categorical columns are not the last of the features")
    return numeric, categorical, SoftmaxGroups(len(numeric), [c.size for c in categorical])


def layer_specs(architecture: list, d: int) -> list[LayerSpec]:
    """The layers the metadata describes, checked to chain from ``d`` features back to ``d``
    before anything is allocated."""
    if not architecture or len(architecture) % 2 or len(architecture) > MAX_LAYERS:
        raise ValueError("the architecture needs an encoder and a mirrored decoder, at most "
                         f"{MAX_LAYERS} layers")
    specs: list[LayerSpec] = []
    for i, s in enumerate(architecture):
        if not isinstance(s, dict) or not {"n_in", "n_out", "activation"} <= set(s) <= _LAYER_KEYS:
            raise ValueError(f"layer {i} is not a layer description")
        n_in, n_out, tied = s["n_in"], s["n_out"], s.get("tied_to")
        if not (is_int(n_in) and is_int(n_out) and n_in >= 1 and n_out >= 1):
            raise ValueError(f"layer {i} has sizes {n_in!r} → {n_out!r}")
        if n_in != (specs[-1].n_out if specs else d):
            raise ValueError(f"layer {i} takes {n_in} inputs but gets "
                             f"{specs[-1].n_out if specs else d}")
        if tied is not None:
            owner = specs[tied] if is_int(tied) and 0 <= tied < i else None
            if owner is None or owner.tied_to is not None or (owner.n_in, owner.n_out) != (
                    n_out, n_in):
                raise ValueError(f"layer {i} is tied to a layer {tied!r} it cannot mirror")
        specs.append(LayerSpec(n_in, n_out, ActivationKind(s["activation"]).value, tied))
    if specs[-1].n_out != d:
        raise ValueError("the architecture does not end with one output per feature")
    return specs


def check_values(meta: dict, arrays: dict[str, np.ndarray], plan: Layout, path) -> None:
    """Refuse arrays whose values no trained aecli model holds, and a summary that miscounts
    the models that score."""
    for name, a in arrays.items():
        if not np.isfinite(a).all():
            raise bad(path, f"array {name!r} contains NaN or infinite values", ALTERED_HINT)
        layer = name.rsplit(".", 1)[-1] in ("W", "b") and ".layer" in f".{name}"
        if layer and a.size and float(np.abs(a).max()) > MAX_WEIGHT:
            raise bad(path, f"array {name!r} holds a weight of {float(np.abs(a).max()):.3g}; "
                      f"a trained model's weights lie within ±{MAX_WEIGHT:g}", ALTERED_HINT)
    if plan.members:
        low, high = ENSEMBLE_SCALE_RANGE
        factors = arrays["ensemble.scale"]
        wrong = np.flatnonzero(~((factors >= low) & (factors <= high)))
        if len(wrong):
            raise bad(path, f"array 'ensemble.scale' gives fold model {wrong[0] + 1} the "
                      f"factor {float(factors[wrong[0]]):.3g}, outside {low:g} to {high:g}",
                      ALTERED_HINT)
    stated = meta["summary"].get("score_models")
    if stated is not None and stated != 1 + plan.members:
        raise bad(path, f"its metadata's 'summary.score_models' says {stated} models score, "
                  f"but the file holds {1 + plan.members} (this one and {plan.members} fold "
                  "models in 'ensemble.scale')", ALTERED_HINT)


def finite_number(x) -> bool:
    """Whether a JSON value is a finite number (``true`` is not)."""
    return isinstance(x, Real) and not isinstance(x, bool) and math.isfinite(x)
