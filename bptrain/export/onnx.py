"""A trained model as one ONNX graph: raw columns in, the preprocessing, the network, predictions out.

Inputs, one per feature column, named as the column, of shape (rows, 1): a numeric column in the
model's dtype, float32 unless it is float64 (NaN for a missing value), text for a categorical one
("" for a missing value; categories written as the model's schema writes them, whole numbers
without `.0`). The graph fills, one-hot encodes and scales them as Preprocessor.features_of does
(in float64, then cast to the model's dtype; a category the model never saw sets no input), runs
every layer in its evaluation form (dropout passes through, batch norm uses its running
statistics) and applies the loss's link.

Outputs, in the model's dtype: classification `label` (rows,) the class names and `probabilities`
(rows, classes) in the model's class order; multilabel `label` (rows, labels) 0/1 as int64 and
`probabilities`; regression `value` (rows, targets) in the targets' units. A row that predict
refuses (a missing value where the column's rule is error or drop, an infinite number, a value
that overflows once scaled) comes out as NaN, with the label "" (multilabel: -1).

The graph uses standard ops of opset 17 and ai.onnx.ml's LabelEncoder, each with float and double
kernels in onnxruntime (Erf, which has no double kernel, runs in float32; the sigmoid is built from
Exp, as onnxruntime's own loses small values), in a file of IR version 8: onnxruntime 1.17, the
`onnx` extra's oldest, and later run it. The onnx package is imported only here, when called.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

import bptrain
from bptrain.data.columns import Column
from bptrain.data.preprocess import Preprocessor
from bptrain.errors import ConfigError, extra_needed
from bptrain.nn.layers import Activation, BatchNorm, Dense, Dropout, LayerNorm

OPSET = 17
ML_DOMAIN, ML_OPSET = "ai.onnx.ml", 2
IR_VERSION = 8
MISSING = ""  # the text input of a missing category
ROWS = "rows"  # the symbolic first dimension of every input and output
OUTPUTS = {"classification": ("label", "probabilities"), "multilabel": ("label", "probabilities"), "regression": ("value",)}


def _onnx():
    try:
        import onnx
        import onnx.numpy_helper  # noqa: F401  (a submodule the package does not always load)
    except ImportError:
        raise extra_needed("--format onnx: exporting needs the onnx package", "onnx") from None
    return onnx


class Graph:
    """The nodes and constants of a graph being built; each op returns the name of its one output."""

    def __init__(self, onnx, taken: set[str]):
        self.onnx, self.nodes, self.constants, self.taken, self.count = onnx, [], [], set(taken), 0

    def fresh(self, hint: str) -> str:
        """A tensor name not used yet (the column names are the inputs', the output names the outputs')."""
        while True:
            self.count += 1
            name = f"{hint}_{self.count}"
            if name not in self.taken:
                self.taken.add(name)
                return name

    def const(self, value: Any, dtype: Any, hint: str = "const") -> str:
        name = self.fresh(hint)
        self.constants.append(self.onnx.numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, *inputs: str, hint: str | None = None, domain: str = "", **attributes: Any) -> str:
        out = self.fresh(hint or op_type.lower())
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [out], domain=domain, **attributes))
        return out

    def cast(self, x: str, dtype: Any) -> str:
        return self.op("Cast", x, to=self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))

    def name_output(self, x: str, name: str) -> None:
        self.nodes.append(self.onnx.helper.make_node("Identity", [x], [name]))


# --- preprocessing ------------------------------------------------------------------------------


def features(g: Graph, prep: Preprocessor, dtype: str) -> tuple[str, str]:
    """(the network's inputs (rows, inputs) in `dtype`, a (rows, 1) mask of the rows predict refuses)."""
    blocks, refused = [], []
    for column in prep.columns:
        parts, masks = (_numeric if column.kind == "numeric" else _categorical)(g, column)
        blocks += parts
        refused += masks
    raw = g.op("Concat", *blocks, axis=1) if len(blocks) > 1 else blocks[0]
    centred = g.op("Sub", raw, g.const(prep.center, np.float64, "center"))
    x = g.cast(g.op("Div", centred, g.const(prep.scale, np.float64, "scale")), dtype)
    # NaN or an infinity anywhere in a row makes the sum of the row's x·0 NaN, and only then
    products = g.op("Mul", x, g.const(0.0, dtype))
    mask = g.op("IsNaN", g.op("ReduceSum", products, g.const([1], np.int64), keepdims=1))
    for missing in refused:
        mask = g.op("Or", mask, missing)
    return x, mask


def _numeric(g: Graph, column: Column) -> tuple[list[str], list[str]]:
    """The column's inputs before scaling: the value, filled (or NaN where the rule has no fill), and
    its 0/1 was-missing indicator; no mask (NaN left in makes the row's inputs non-finite)."""
    x = g.cast(column.name, np.float64)
    missing = g.op("IsNaN", x)
    value = x if column.fill is None else g.op("Where", missing, g.const(column.fill, np.float64, "fill"), x)
    return [value] + ([g.cast(missing, np.float64)] if column.indicator else []), []


def _categorical(g: Graph, column: Column) -> tuple[list[str], list[str]]:
    """One-hot inputs (rare categories share the last, `(other)`; one never seen sets none), the
    was-missing indicator, and where the rule has no fill a mask of the rows missing a value."""
    index = {c: i for i, c in enumerate(column.categories)}
    index.update(dict.fromkeys(column.other, len(column.categories)))
    codes = dict(index)
    if column.fill is not None:
        codes.setdefault(MISSING, index.get(column.fill, -1))  # a fill never seen in training is unknown too
    code = g.op("LabelEncoder", column.name, domain=ML_DOMAIN, keys_strings=list(codes), values_int64s=list(codes.values()), default_int64=-1)
    width = len(column.categories) + bool(column.other)
    parts = [g.cast(g.op("Equal", code, g.const(np.arange(width), np.int64, "positions")), np.float64)]
    if not column.indicator and column.fill is not None:
        return parts, []
    flag = g.op("LabelEncoder", column.name, domain=ML_DOMAIN, keys_strings=[MISSING], values_int64s=[1], default_int64=0)
    missing = g.op("Equal", flag, g.const(1, np.int64))
    return parts + ([g.cast(missing, np.float64)] if column.indicator else []), ([missing] if column.fill is None else [])


# --- the network --------------------------------------------------------------------------------


def network(g: Graph, model, x: str, dtype: str) -> str:
    """The logits: every layer of `model` in evaluation form; ConfigError naming one that has no ONNX form here."""
    for i, layer in enumerate(model.layers):
        convert = LAYERS.get(type(layer))
        if convert is None:
            raise ConfigError(
                f"layer {i} of the model ({type(layer).__name__}) cannot be exported to ONNX; "
                f"export knows {', '.join(sorted(c.__name__ for c in LAYERS))}"
            )
        if isinstance(layer, Activation) and layer.activation not in ACTIVATIONS:
            raise ConfigError(
                f"layer {i} of the model: activation {layer.activation!r} cannot be exported to ONNX; "
                f"export knows {', '.join(sorted(ACTIVATIONS))}"
            )
        x = convert(g, layer, x, np.dtype(dtype))
    return x


def _dense(g: Graph, layer: Dense, x: str, dtype: np.dtype) -> str:
    return g.op("Add", g.op("MatMul", x, g.const(layer.W.value, dtype, "W")), g.const(layer.b.value, dtype, "b"))


def _batch_norm(g: Graph, layer: BatchNorm, x: str, dtype: np.dtype) -> str:
    """(x - running_mean)·invstd·gamma + beta, invstd = 1/sqrt(running_var + eps) computed as BatchNorm.forward does."""
    invstd = np.add(layer.running_var, layer.eps)
    np.sqrt(invstd, out=invstd)
    np.divide(1.0, invstd, out=invstd)
    xhat = g.op("Mul", g.op("Sub", x, g.const(layer.running_mean, dtype, "running_mean")), g.const(invstd, dtype, "invstd"))
    return _affine(g, layer, xhat, dtype)


def _layer_norm(g: Graph, layer: LayerNorm, x: str, dtype: np.dtype) -> str:
    """Each row less its mean, over the root of its biased variance plus eps; then gamma and beta."""
    centred = g.op("Sub", x, g.op("ReduceMean", x, axes=[1], keepdims=1))
    variance = g.op("ReduceMean", g.op("Mul", centred, centred), axes=[1], keepdims=1)
    invstd = g.op("Reciprocal", g.op("Sqrt", g.op("Add", variance, g.const(layer.eps, dtype, "eps"))))
    return _affine(g, layer, g.op("Mul", centred, invstd), dtype)


def _affine(g: Graph, layer, xhat: str, dtype: np.dtype) -> str:
    return g.op("Add", g.op("Mul", xhat, g.const(layer.gamma.value, dtype, "gamma")), g.const(layer.beta.value, dtype, "beta"))


def _activation(g: Graph, layer: Activation, x: str, dtype: np.dtype) -> str:
    return ACTIVATIONS[layer.activation](g, layer.fn, x, dtype)


def _leaky_relu(g: Graph, fn, x: str, dtype) -> str:
    """max(z, slope·z), or min for a slope above 1, as LeakyReLU.forward."""
    return g.op("Max" if fn.negative_slope <= 1.0 else "Min", x, g.op("Mul", x, g.const(fn.negative_slope, dtype)))


def _elu(g: Graph, fn, x: str, dtype) -> str:
    """scale·alpha·(exp(min(z, 0)) - 1) + scale·max(z, 0): ELU, and SELU with its constants."""
    zero = g.const(0.0, dtype)
    below = g.op("Sub", g.op("Exp", g.op("Min", x, zero)), g.const(1.0, dtype))
    below = g.op("Mul", below, g.const(fn.scale * fn.alpha, dtype))
    above = g.op("Max", x, zero)
    if fn.scale != 1.0:
        above = g.op("Mul", above, g.const(fn.scale, dtype))
    return g.op("Add", below, above)


def _gelu(g: Graph, fn, x: str, dtype) -> str:
    """z·P(z): P = (1 + erf(z/√2))/2, or for approximate tanh (1 + tanh(√(2/π)(z + 0.044715 z³)))/2."""
    if fn.approximate == "none":
        scaled = g.op("Mul", x, g.const(math.sqrt(0.5), dtype))
        if dtype == np.float32:
            erf = g.op("Erf", scaled)
        else:  # onnxruntime has Erf in float32 only
            erf = g.cast(g.op("Erf", g.cast(scaled, np.float32)), dtype)
        inner = erf
    else:
        cubic = g.op("Mul", g.op("Add", g.op("Mul", g.op("Mul", x, x), g.const(fn.C, dtype)), g.const(1.0, dtype)), x)
        inner = g.op("Tanh", g.op("Mul", cubic, g.const(fn.K, dtype)))
    p = g.op("Mul", g.op("Add", inner, g.const(1.0, dtype)), g.const(0.5, dtype))
    return g.op("Mul", x, p)


def _softplus(g: Graph, fn, x: str, dtype) -> str:
    """log(1 + exp(beta·z))/beta, taken as max(t, 0) + log1p(exp(-|t|)) for t = beta·z (NumPy's
    logaddexp(0, t)); z itself where t > threshold."""
    t = g.op("Mul", x, g.const(fn.beta, dtype))
    tail = g.op("Exp", g.op("Neg", g.op("Abs", t)))
    soft = g.op("Add", g.op("Max", t, g.const(0.0, dtype)), _log1p(g, tail, dtype))
    soft = g.op("Mul", soft, g.const(1.0 / fn.beta, dtype))
    return g.op("Where", g.op("Greater", t, g.const(fn.threshold, dtype)), x, soft)


def sigmoid(g: Graph, x: str, dtype) -> str:
    """1/(1 + e) for z >= 0 and e/(1 + e) below, e = exp(-|z|): accurate in both tails, as bptrain's
    sigmoid (onnxruntime's own Sigmoid rounds values below about 1e-7 to multiples of 6e-8, or 0)."""
    e = g.op("Exp", g.op("Neg", g.op("Abs", x)))
    total = g.op("Add", e, g.const(1.0, dtype))
    return g.op("Where", g.op("Less", x, g.const(0.0, dtype)), g.op("Div", e, total), g.op("Reciprocal", total))


def _log1p(g: Graph, u: str, dtype) -> str:
    """log(1 + u) accurate for small u, which ONNX lacks: log(w)·u/(w - 1) with w = 1 + u rounded,
    and u itself where w rounds to 1 (D. Goldberg, What every computer scientist should know about
    floating-point arithmetic, 1991, theorem 4)."""
    w = g.op("Add", u, g.const(1.0, dtype))
    step = g.op("Sub", w, g.const(1.0, dtype))
    ratio = g.op("Div", g.op("Mul", g.op("Log", w), u), step)
    return g.op("Where", g.op("Equal", step, g.const(0.0, dtype)), u, ratio)


ACTIVATIONS = {
    "identity": lambda g, fn, x, dtype: x,
    "relu": lambda g, fn, x, dtype: g.op("Relu", x),
    "leaky_relu": _leaky_relu,
    "elu": _elu,
    "selu": _elu,
    "gelu": _gelu,
    "silu": lambda g, fn, x, dtype: g.op("Mul", x, sigmoid(g, x, dtype)),
    "softplus": _softplus,
    "sigmoid": lambda g, fn, x, dtype: sigmoid(g, x, dtype),
    "tanh": lambda g, fn, x, dtype: g.op("Tanh", x),
}
LAYERS = {
    Dense: _dense,
    Activation: _activation,
    Dropout: lambda g, layer, x, dtype: x,  # inverted dropout is the identity at evaluation
    BatchNorm: _batch_norm,
    LayerNorm: _layer_norm,
}


# --- outputs ------------------------------------------------------------------------------------


def outputs(g: Graph, prep: Preprocessor, loss, logits: str, refused: str, dtype: str) -> dict[str, str]:
    """The graph's outputs by name, as predict computes them from the logits; NaN (and an empty or -1
    label) in the rows `refused` marks."""
    nan = g.const(np.nan, dtype, "nan")
    if prep.task == "regression":
        value = g.op("Mul", g.cast(logits, np.float64), g.const(prep.target_scale, np.float64, "target_scale"))
        value = g.cast(g.op("Add", value, g.const(prep.target_center, np.float64, "target_center")), dtype)
        return {"value": g.op("Where", refused, nan, value)}
    p = _link(g, loss, logits, dtype)
    if prep.task == "multilabel":
        chosen = g.cast(g.op("GreaterOrEqual", p, g.const(0.5, dtype)), np.int64)
        return {"label": g.op("Where", refused, g.const(-1, np.int64), chosen), "probabilities": g.op("Where", refused, nan, p)}
    if len(prep.classes) == 2 and type(loss).declaration.name == "binary_cross_entropy":  # one sigmoid unit: [1 - p, p]
        p = g.op("Concat", g.op("Sub", g.const(1.0, dtype), p), p, axis=1)
    chosen = g.op("Gather", g.const(np.array(prep.classes, dtype=object), object, "classes"), g.op("ArgMax", p, axis=1, keepdims=0), axis=0)
    per_row = g.op("Reshape", refused, g.const([-1], np.int64))
    label = g.op("Where", per_row, g.const(np.array(MISSING, dtype=object), object), chosen)
    return {"label": label, "probabilities": g.op("Where", refused, nan, p)}


def _link(g: Graph, loss, logits: str, dtype: str) -> str:
    name = type(loss).declaration.name
    if name == "cross_entropy":
        return g.op("Softmax", logits, axis=1)
    if name == "binary_cross_entropy":
        return sigmoid(g, logits, dtype)
    raise ConfigError(f"loss {name!r}: its outputs cannot be exported to ONNX; export knows cross_entropy, binary_cross_entropy and the regression losses")


# --- the model ----------------------------------------------------------------------------------


def convert(model, loss, prep: Preprocessor, dtype: str, run_name: str = ""):
    """The ONNX ModelProto of a trained model: `model` (nn.Sequential), `loss`, `prep`, in `dtype`."""
    onnx = _onnx()
    helper, tensor = onnx.helper, onnx.TensorProto
    names = OUTPUTS[prep.task]
    clash = [c for c in prep.features if c in names]
    if clash:
        raise ConfigError(f"column {clash[0]!r} has the name of an output of the ONNX graph ({', '.join(names)}); rename the column and train again to export")
    real = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    g = Graph(onnx, set(prep.features) | set(names))
    x, refused = features(g, prep, dtype)
    produced = outputs(g, prep, loss, network(g, model, x, dtype), refused, dtype)
    for name, value in produced.items():
        g.name_output(value, name)
    inputs = [
        helper.make_tensor_value_info(c.name, real if c.kind == "numeric" else tensor.STRING, [ROWS, 1]) for c in prep.columns
    ]
    graph = helper.make_graph(g.nodes, f"bptrain {run_name}".strip(), inputs, _output_infos(onnx, prep, real), initializer=g.constants)
    proto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(ML_DOMAIN, ML_OPSET)],
        producer_name="bptrain", producer_version=bptrain.__version__, ir_version=IR_VERSION,
        doc_string=f"bptrain model{' ' + run_name if run_name else ''}: {prep.task}; the preprocessing and the network in one graph",
    )
    props = {"task": prep.task, "targets": json.dumps(prep.targets), "classes": json.dumps(prep.classes), "run": run_name}
    helper.set_model_props(proto, props)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def _output_infos(onnx, prep: Preprocessor, real: int) -> list:
    """The graph's outputs, the numbers among them of the element type `real` (the model's float type)."""
    helper, tensor = onnx.helper, onnx.TensorProto
    if prep.task == "regression":
        return [helper.make_tensor_value_info("value", real, [ROWS, len(prep.targets)])]
    label = helper.make_tensor_value_info("label", tensor.STRING, [ROWS]) if prep.task == "classification" else (
        helper.make_tensor_value_info("label", tensor.INT64, [ROWS, len(prep.classes)])
    )
    return [label, helper.make_tensor_value_info("probabilities", real, [ROWS, len(prep.classes)])]


def serialize(proto) -> bytes:
    return proto.SerializeToString()


def signature(proto) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The graph's inputs and outputs as (name, element type), e.g. ("sepal_length", "float32")."""
    onnx = _onnx()

    def typed(info) -> tuple[str, str]:
        elem = info.type.tensor_type.elem_type
        kind = "string" if elem == onnx.TensorProto.STRING else np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem)).name
        return info.name, kind

    return [typed(i) for i in proto.graph.input], [typed(o) for o in proto.graph.output]
