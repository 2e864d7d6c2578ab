"""A trained model as an ONNX graph: its whole pipeline, from the file's columns to the output.

The graph holds what ``aecli encode``/``reconstruct``/``score`` do between reading a row and
writing its result: the model's missing-value policy, scaling (in float64, as aecli scales),
every layer, and for ``score`` the per-row error, score and the flag against the calibrated
threshold. Any ONNX runtime (C, C++, C#, Java, JavaScript, Python) then gives aecli's results.

Inputs are float64, one ``[N, 1]`` tensor per feature named as the column (or one ``[N, d]``
matrix ``X`` with ``single_input``); the outputs are listed by :func:`export_onnx`. The opset is
the lowest that holds the graph: 7 for the bare network (8 with leaky ReLU or ELU, whose
maximum broadcasts), 9 with imputation or dropped rows.
"""

from __future__ import annotations

import json
from enum import StrEnum

import numpy as np

from .. import __version__
from ..errors import AecliError
from ..nn import ActivationKind
from ..preprocessing import MissingPolicy
from .bundle import ModelBundle

__all__ = ["ExportTarget", "export_onnx"]


class ExportTarget(StrEnum):
    """What the exported graph computes (``--what``)."""

    ENCODE = "encode"
    RECONSTRUCT = "reconstruct"
    SCORE = "score"


# The lowest opset at which each operator exists in the form used here (with float64 inputs
# and numpy-style broadcasting); the graph's opset is the highest of those it uses.
_SINCE = {"Concat": 4, "Cast": 6, "Sub": 7, "Div": 7, "Add": 7, "Mul": 7, "MatMul": 1,
          "Reshape": 5, "Transpose": 1, "IsNaN": 9, "Where": 9, "Compress": 9, "Greater": 7,
          "Not": 1, "Relu": 6, "Tanh": 6, "Sigmoid": 6, "Abs": 6, "Neg": 6, "Exp": 6, "Log": 6,
          "Max": 8, "Identity": 1, "Less": 7}


def _onnx():
    try:
        import onnx
    except ImportError:
        raise AecliError("exporting to ONNX needs the onnx package, which is not installed",
                         hint="Install it with: pip install 'aecli[onnx]'") from None
    return onnx


class _Graph:
    """Nodes and initializers, with fresh names, as the export builds them."""

    def __init__(self, onnx):
        self.onnx, self.nodes, self.initializers, self.count = onnx, [], [], 0

    def const(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, *inputs: str, output: str | None = None, **attrs) -> str:
        self.count += 1
        out = output or f"{op_type.lower()}_{self.count}"
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    def opset(self) -> int:
        return max(_SINCE[n.op_type] for n in self.nodes)


def _activation(g: _Graph, kind: str, h: str, dtype: np.dtype) -> str:
    """``h`` through aecli's activation ``kind``, by the formula :mod:`aecli.nn.activations`
    uses. Leaky ReLU, ELU, softplus and GELU are spelled out in elementary operators:
    ONNX Runtime has no float64 kernel for some of their ONNX operators, and ONNX's Softplus,
    log(e^z + 1), overflows where aecli's form does not."""
    from ..nn.activations import ELU_ALPHA, GELU_C, LEAKY_SLOPE

    def c(value: float) -> str:
        return g.const(f"c{g.count}_{len(g.initializers)}", np.array(value, dtype=dtype))

    kind = ActivationKind(kind)
    if kind is ActivationKind.LINEAR:
        return h
    if kind is ActivationKind.RELU:
        return g.op("Relu", h)
    if kind is ActivationKind.TANH:
        return g.op("Tanh", h)
    if kind is ActivationKind.SIGMOID:
        return g.op("Sigmoid", h)
    if kind is ActivationKind.LEAKY_RELU:  # max(z, slope z)
        return g.op("Max", h, g.op("Mul", h, c(LEAKY_SLOPE)))
    if kind is ActivationKind.ELU:  # max(z, alpha (e^-|z| - 1)), alpha = 1
        assert ELU_ALPHA == 1.0
        return g.op("Max", h, g.op("Sub", g.op("Exp", g.op("Neg", g.op("Abs", h))), c(1.0)))
    if kind is ActivationKind.SOFTPLUS:  # max(z, 0) + log(1 + e^-|z|)
        tail = g.op("Exp", g.op("Neg", g.op("Abs", h)))
        return g.op("Add", g.op("Relu", h), g.op("Log", g.op("Add", tail, c(1.0))))
    if kind is ActivationKind.GELU:  # z/2 (1 + tanh(c (z + 0.044715 z^3))), PyTorch's "tanh"
        cube = g.op("Mul", g.op("Mul", g.op("Mul", h, c(0.044715)), h), h)  # aecli's order
        inner = g.op("Mul", g.op("Add", cube, h), c(GELU_C))
        return g.op("Mul", g.op("Mul", g.op("Add", g.op("Tanh", inner), c(1.0)), h), c(0.5))
    raise AecliError(f"the activation {kind.value!r} has no ONNX form in this aecli",
                     hint="export a model trained with another --activation")


def _row_sums(g: _Graph, x: str, d: int) -> str:
    """Per-row sums of ``x`` (N, d), float64, as a flat (N,) tensor."""
    ones = g.const(f"ones_{g.count}", np.ones((d, 1)))
    flat = g.const(f"flat_{g.count}", np.array([-1], dtype=np.int64))
    return g.op("Reshape", g.op("MatMul", g.op("Cast", x, to=11), ones), flat)


def _code_term(g: _Graph, code: str, distance, prefix: str = "") -> str | None:
    """The code term (N,) of :class:`aecli.estimators.scoring.CodeDistance`; None when the
    model scores by the error alone."""
    if distance is None:
        return None
    k = len(distance.center)
    centred = g.op("Sub", g.op("Cast", code, to=11),
                   g.const(prefix + "code_center", distance.center))
    white = g.op("MatMul", centred, g.const(prefix + "code_whitening", distance.whitening))
    t2 = _row_sums(g, g.op("Mul", white, white), k)
    return g.op("Mul", t2, g.const(prefix + "code_weight", np.array(distance.per_t2)))


def _network(g: _Graph, net, xs: str, dtype, prefix: str = "", upto: int | None = None
             ) -> tuple[str, str | None]:
    """``xs`` through ``net``'s layers (up to layer ``upto``): the output and the code."""
    h, code = xs, None
    for i, (spec, layer) in enumerate(zip(net.specs, net.layers, strict=True)):
        if spec.tied_to is None:
            W = g.const(f"{prefix}layer{i}.W", np.ascontiguousarray(layer.W))
        else:  # the encoder layer's weights, transposed: stored once, as in the model file
            W = g.op("Transpose", f"{prefix}layer{spec.tied_to}.W", perm=[1, 0])
        h = g.op("Add", g.op("MatMul", h, W), g.const(f"{prefix}layer{i}.b", layer.b.copy()))
        h = _activation(g, spec.activation, h, dtype)
        if i == net.code_index:
            code = h
        if i == upto:
            break
    return h, code


def _row_error(g: _Graph, h: str, xs: str, observed: str | None, d: int) -> str:
    """Each row's mean squared error (N,) between ``h`` and ``xs``, float64, over its
    observed cells only (an imputed cell is no evidence about the row)."""
    diff = g.op("Sub", h, xs)
    sq = g.op("Mul", diff, diff)
    if observed is None:
        return g.op("Div", _row_sums(g, sq, d), g.const(f"width_{g.count}", np.array(float(d))))
    masked = g.op("Mul", g.op("Cast", sq, to=11), observed)
    return g.op("Div", _row_sums(g, masked, d), _row_sums(g, observed, d))


def _scored(g: _Graph, ae, xs: str, observed: str | None, d: int) -> tuple[str, str]:
    """The rows' ``error`` and ``score`` (N,) as a graph of the arithmetic of
    :meth:`aecli.Autoencoder.score_parts` (its tests compare the two): with an ensemble,
    the means over the estimator's ``score_models()``, each at the main model's scale."""
    models = ae.score_models()
    errors, scores = [], []
    for i, m in enumerate(models):
        prefix = f"member{i}." if i else ""  # as the model file names them
        h, code = _network(g, m.network, xs, m.network.dtype, prefix)
        error = _row_error(g, h, xs, observed, d)
        term = _code_term(g, code, m.code_distance, prefix)
        score = error if term is None else g.op("Add", error, term)
        weight = g.const(f"{prefix}weight", np.array(m.scale / len(models)))
        errors.append(g.op("Mul", error, weight))
        scores.append(g.op("Mul", score, weight))
    return _total(g, errors, "error"), _total(g, scores, "score")


def _total(g: _Graph, parts: list[str], output: str) -> str:
    """The sum of ``parts`` named ``output``, with Add (Sum would raise the opset to 8)."""
    total = parts[0]
    for part in parts[1:]:
        total = g.op("Add", total, part)
    return g.op("Identity", total, output=output)


def export_onnx(bundle: ModelBundle, what: ExportTarget = ExportTarget.ENCODE, *,
                single_input: bool = False) -> bytes:
    """The model's pipeline as a serialized ONNX model.

    Parameters
    ----------
    bundle : ModelBundle
    what : ExportTarget
        ``encode``: output ``codes`` (N, k). ``reconstruct``: ``reconstruction`` (N, d) in
        original units and ``error`` (N,). ``score``: ``error`` (N,), ``score`` (N,: the
        error plus the code's distance, see :mod:`aecli.estimators.scoring`; with an
        ensemble, the means over its models, see :mod:`aecli.estimators.ensemble`) and
        ``flagged`` (N,) bool.
        Errors are over each row's observed cells, as aecli's are: imputed cells never count.
        Codes and reconstructions are in the model's dtype, errors float64. Under
        ``--missing drop`` the rows with gaps are left out, as aecli leaves them out, and a
        bool output ``kept`` (N,) says which input rows the outputs are; under ``error`` such
        rows give NaN (a graph cannot refuse a row).
    single_input : bool
        One float64 input ``X`` (N, d) in the model's column order, instead of one input per
        column.

    Returns
    -------
    bytes

    Raises
    ------
    AecliError
        onnx is not installed, or the model holds something ONNX cannot express here (an
        activation without an ONNX form, categorical columns).
    """
    onnx = _onnx()
    from onnx import TensorProto, helper

    what, prep = ExportTarget(what), bundle.preparation
    if prep.categorical:
        names = ", ".join(c.name for c in prep.categorical)
        raise AecliError(
            f"this model has categorical columns ({names}), which this aecli cannot yet "
            "export to ONNX (their text would need a lookup of levels inside the graph)",
            hint="retrain without them (--categorical none) to export, or run aecli itself "
            "where the model is used")
    net = bundle.autoencoder.network_
    dtype, d = net.dtype, len(prep.features)
    elem = TensorProto.FLOAT if dtype == np.float32 else TensorProto.DOUBLE
    g = _Graph(onnx)
    if single_input:
        inputs = [helper.make_tensor_value_info("X", TensorProto.DOUBLE, ["N", d])]
        X = "X"
    else:
        inputs = [helper.make_tensor_value_info(f, TensorProto.DOUBLE, ["N", 1])
                  for f in prep.features]
        X = g.op("Concat", *prep.features, axis=1)
    outputs, observed = [], None
    if prep.missing is MissingPolicy.IMPUTE:
        gaps = g.op("IsNaN", X)
        observed = g.op("Cast", g.op("Not", gaps), to=TensorProto.DOUBLE)  # (N, d) 1 or 0
        X = g.op("Where", gaps, g.const("fill", prep.fill), X)
    elif prep.missing is MissingPolicy.DROP:
        gaps = _row_sums(g, g.op("IsNaN", X), d)
        kept = g.op("Not", g.op("Greater", gaps, g.const("zero", np.zeros(()))), output="kept")
        X = g.op("Compress", X, kept, axis=0)
        outputs.append(helper.make_tensor_value_info("kept", TensorProto.BOOL, ["N"]))
    center = g.const("center", prep.scaler.center_.astype(np.float64))
    scale = g.const("scale", prep.scaler.scale_.astype(np.float64))
    xs = g.op("Cast", g.op("Div", g.op("Sub", X, center), scale), to=elem)  # (N, d)

    if what is ExportTarget.ENCODE:
        _, code = _network(g, net, xs, dtype, upto=net.code_index)
        g.op("Identity", code, output="codes")
        outputs.append(helper.make_tensor_value_info(
            "codes", elem, ["N", net.specs[net.code_index].n_out]))
    elif what is ExportTarget.RECONSTRUCT:
        h, _ = _network(g, net, xs, dtype)
        original = g.op("Add", g.op("Mul", g.op("Cast", h, to=TensorProto.DOUBLE), scale),
                        center)
        g.op("Cast", original, to=elem, output="reconstruction")
        outputs.append(helper.make_tensor_value_info("reconstruction", elem, ["N", d]))
        g.op("Identity", _row_error(g, h, xs, observed, d), output="error")
        outputs.append(helper.make_tensor_value_info("error", TensorProto.DOUBLE, ["N"]))
    else:
        _, score = _scored(g, bundle.autoencoder, xs, observed, d)
        outputs.append(helper.make_tensor_value_info("error", TensorProto.DOUBLE, ["N"]))
        outputs.append(helper.make_tensor_value_info("score", TensorProto.DOUBLE, ["N"]))
        # flagged = not (score <= threshold), so that a score that is not a number (an
        # overflow, a row with gaps under --missing error) is flagged, as aecli score flags
        # it; score <= t is score < the next double above t, and Less is in opset 7
        above = np.nextafter(float(bundle.autoencoder.threshold_), np.inf)
        threshold = g.const("threshold_next", np.array(above))
        g.op("Not", g.op("Less", score, threshold), output="flagged")
        outputs.append(helper.make_tensor_value_info("flagged", TensorProto.BOOL, ["N"]))

    opset = g.opset()
    graph = helper.make_graph(g.nodes, f"aecli-{what.value}", inputs, outputs, g.initializers)
    model = helper.make_model(graph, producer_name="aecli", producer_version=__version__,
                              opset_imports=[helper.make_opsetid("", opset)])
    # the oldest IR version that holds the opset (and initializers that are not inputs: 4),
    # so that older runtimes read the file too
    model.ir_version = max(4, helper.find_min_ir_version_for(list(model.opset_import)))
    helper.set_model_props(model, {
        "aecli_version": __version__, "what": what.value, "opset": str(opset),
        "features": json.dumps(prep.features), "inputs": "X" if single_input else "columns",
        "dtype": dtype.name, "missing": prep.missing.value, "scaler": prep.scale_kind.value,
        "threshold": repr(bundle.autoencoder.threshold_),
    })
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()
