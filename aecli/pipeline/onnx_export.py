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
          "Max": 8, "Identity": 1, "Less": 7, "Min": 8, "Unsqueeze": 1, "ReduceSum": 1,
          "ReduceMin": 1, "TopK": 1, "Sqrt": 6}


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


def _scored(g: _Graph, ae, xs: str, observed: str | None, d: int, name: str = "score"
            ) -> tuple[str, str, str]:
    """The rows' ``error`` and ``score`` (N,) as a graph of the arithmetic of
    :meth:`aecli.Autoencoder.score_parts` (its tests compare the two): with an ensemble,
    the means over the estimator's ``score_models()``, each at the main model's scale; and
    the main model's code."""
    models = ae.score_models()
    errors, scores, codes = [], [], []
    for i, m in enumerate(models):
        prefix = f"member{i}." if i else ""  # as the model file names them
        h, code = _network(g, m.network, xs, m.network.dtype, prefix)
        codes.append(code)
        error = _row_error(g, h, xs, observed, d)
        term = _code_term(g, code, m.code_distance, prefix)
        score = error if term is None else g.op("Add", error, term)
        weight = g.const(f"{prefix}weight", np.array(m.scale / len(models)))
        errors.append(g.op("Mul", error, weight))
        scores.append(g.op("Mul", score, weight))
    return _total(g, errors, "error"), _total(g, scores, name), codes[0]


def _combined(g: _Graph, evidence, score: str, xs: str, code: str) -> str:
    """The rows' combined score (N,) of :class:`aecli.estimators.evidence.Evidence`, from
    their autoencoder ``score`` (N,), scaled rows ``xs`` and main-model ``code``: Fisher's
    statistic of the four p-values (weighted as the evidence says), each as
    :meth:`ScoreDistribution.p_value` reads it."""
    xs64 = g.op("Cast", xs, to=11)
    m, d = evidence.columns.shape
    q = g.const("evidence.columns", evidence.columns[None])  # (1, m, d)
    x3 = g.op("Unsqueeze", xs64, axes=[1])  # (N, 1, d)
    count = float(m)

    def tail(cells: str, side: str) -> str:  # -ln max(count / m, 1 / m), (N, d)
        share = g.op("ReduceSum", g.op("Cast", cells, to=11), axes=[1], keepdims=0)
        return g.op("Neg", g.op("Log", g.op("Max", g.op("Div", share, g.const(
            f"m_{side}", np.array(count))), g.const(f"floor_{side}", np.array(1.0 / m)))))

    low = tail(g.op("Not", g.op("Less", x3, q)), "low")  # values <= x
    high = tail(g.op("Not", g.op("Less", q, x3)), "high")  # values >= x
    left = g.const("evidence.left", evidence.left[None])
    long = g.op("Add", g.op("Mul", low, left), g.op("Mul", high, g.op("Sub", g.const(
        "one_left", np.array(1.0)), left)))
    tails = g.op("Max", g.op("Max", _row_sums(g, low, d), _row_sums(g, high, d)),
                 _row_sums(g, long, d))
    k = evidence.neighbours
    stats = (score, tails,
             _neighbours(g, evidence.rows, xs64, "rows", k),
             _neighbours(g, evidence.codes, g.op("Cast", code, to=11), "codes", k))
    total = None
    for i, (dist, value, w) in enumerate(zip(evidence.dists, stats, evidence.weights,
                                             strict=True)):
        log_p = g.op("Log", _p_value(g, dist, value, f"evidence{i}"))
        if w != 1.0:  # Fisher's weight of the part
            log_p = g.op("Mul", log_p, g.const(f"evidence{i}.weight", np.array(float(w))))
        total = log_p if total is None else g.op("Add", total, log_p)
    return g.op("Where", g.op("IsNaN", score), score, g.op("Neg", total))


def _neighbours(g: _Graph, ref: np.ndarray, points: str, name: str, neighbours: int) -> str:
    """Each point's mean distance (N,) to its ``neighbours`` nearest ``ref`` rows after the
    nearest, as :func:`aecli.estimators.evidence.neighbour_distance` measures it."""
    k = max(1, min(neighbours, len(ref) - 1))
    cross = g.op("MatMul", points, g.const(f"{name}.ref_t", np.ascontiguousarray(ref.T)))
    sq = g.op("Unsqueeze", _row_sums(g, g.op("Mul", points, points), ref.shape[1]), axes=[1])
    d2 = g.op("Add", g.op("Sub", sq, g.op("Mul", cross, g.const(f"{name}.two", np.array(
        2.0)))), g.const(f"{name}.ref_sq", np.einsum("ij,ij->i", ref, ref)[None]))
    values = f"{name}_nearest"
    g.nodes.append(g.onnx.helper.make_node("TopK", [g.op("Neg", g.op("Relu", d2))],
                                           [values, f"{name}_index"], k=k + 1, axis=1))
    dist = g.op("Sqrt", g.op("Neg", values))  # (N, k + 1), nearest first
    return g.op("Div", g.op("Sub", g.op("ReduceSum", dist, axes=[1], keepdims=0),
                            g.op("ReduceMin", dist, axes=[1], keepdims=0)),
                g.const(f"{name}.k", np.array(float(k))))


def _p_value(g: _Graph, dist, s: str, name: str) -> str:
    """The p-value (N,) of values ``s`` among a :class:`ScoreDistribution`: the share of
    calibration values at least as large (the quantiles interpolated: a ramp per segment,
    a step where two quantiles tie), and past the largest the exponential tail."""
    q, n = dist.quantiles, float(dist.rows)
    step = 1.0 / (len(q) - 1)
    lo, width = q[:-1], np.diff(q)
    s2 = g.op("Unsqueeze", s, axes=[1])  # (N, 1)
    ramp = g.op("Div", g.op("Sub", s2, g.const(f"{name}.lo", lo[None])),
                g.const(f"{name}.width", np.where(width > 0, width, 1.0)[None]))
    ramp = g.op("Sub", g.op("Relu", ramp), g.op("Relu", g.op("Sub", ramp, g.const(
        f"{name}.one", np.array(1.0)))))
    stepped = g.op("Cast", g.op("Not", g.op("Less", s2, g.const(f"{name}.lo2", lo[None]))),
                   to=11)
    part = g.op("Where", g.const(f"{name}.ramps", (width > 0)[None]), ramp, stepped)
    below = g.op("Reshape", g.op("MatMul", part, g.const(f"{name}.steps", np.full(
        (len(lo), 1), step))), g.const(f"{name}.flat", np.array([-1], dtype=np.int64)))
    inside = g.op("Div", g.op("Add", g.op("Mul", g.op("Sub", g.const(f"{name}.unit", np.array(
        1.0)), below), g.const(f"{name}.n", np.array(n))), g.const(f"{name}.unit2", np.array(
            1.0))), g.const(f"{name}.n1", np.array(n + 1.0)))
    last = g.const(f"{name}.last", np.array(float(q[-1])))
    past = g.op("Mul", g.const(f"{name}.p_at", np.array(1.0 / (n + 1.0))), g.op("Exp", g.op(
        "Neg", g.op("Div", g.op("Sub", s, last), g.const(f"{name}.scale", np.array(
            dist.tail.scale))))))
    p = g.op("Where", g.op("Greater", s, last), past, inside)
    return g.op("Max", p, g.const(f"{name}.tiny", np.array(np.finfo(np.float64).tiny)))


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
        ensemble, the means over its models, see :mod:`aecli.estimators.ensemble`;
        combined with the column tails and code neighbours when the model is, see
        :mod:`aecli.estimators.evidence`) and ``flagged`` (N,) bool.
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
        evidence = getattr(bundle.autoencoder, "evidence_", None)
        _, score, code = _scored(g, bundle.autoencoder, xs, observed, d,
                           "score" if evidence is None else "autoencoder_score")
        if evidence is not None:  # the combined score (see aecli.estimators.evidence)
            score = g.op("Identity", _combined(g, evidence, score, xs, code), output="score")
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
