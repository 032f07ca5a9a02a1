"""The ONNX graph of bptrain.export.onnx against bptrain's own forward pass, piece by piece, in onnxruntime.

Each activation (with its options) and each layer type runs in a small synthetic network whose
ONNX output is compared with Sequential.forward at evaluation, in float32 and float64; the sets
of names covered are checked against the registries, so a new activation or layer fails here
until it is exported and tested.
"""

from __future__ import annotations

import sys

import numpy as np
import onnxruntime as ort
import pytest

from bptrain.data.columns import numeric_column
from bptrain.data.preprocess import Preprocessor
from bptrain.errors import ConfigError
from bptrain.export import onnx as to_onnx
from bptrain.nn.activations import ACTIVATIONS
from bptrain.nn.layers import LAYERS, Activation, BatchNorm, Dense, Dropout, Layer, LayerNorm
from bptrain.nn.losses import LOSSES
from bptrain.nn.model import Sequential


def session(proto) -> ort.InferenceSession:
    return ort.InferenceSession(to_onnx.serialize(proto), providers=["CPUExecutionProvider"])


def plain_regression(width: int, outputs: int) -> Preprocessor:
    """Numeric inputs x0.. taken as they are, and outputs in their own units: the graph's `value` is the logits."""
    columns = [numeric_column(f"x{i}", scale="none") for i in range(width)]
    return Preprocessor(
        targets=[f"y{i}" for i in range(outputs)], task="regression", columns=columns, center=np.zeros(width), scale=np.ones(width),
        target_center=np.zeros(outputs), target_scale=np.ones(outputs),
    )


def run_network(model: Sequential, x: np.ndarray, dtype: str) -> np.ndarray:
    prep = plain_regression(x.shape[1], model.out_features)
    proto = to_onnx.convert(model, LOSSES["mse"](), prep, dtype)
    (value,) = session(proto).run(None, {f"x{i}": x[:, i : i + 1].astype(dtype) for i in range(x.shape[1])})
    assert value.dtype == np.dtype(dtype)
    return value


# z from -30 to 30: both tails, softplus's linear region, the neighbourhood of 0
Z = np.concatenate([np.linspace(-30.0, 30.0, 241), [-1e-3, -1e-6, 0.0, 1e-6, 1e-3, 2.4, 2.6, 10.1, -0.05]]).astype(np.float32)

ACTIVATION_CASES = [
    ("identity", {}),
    ("relu", {}),
    ("leaky_relu", {}),
    ("leaky_relu", {"negative_slope": 0.2}),
    ("leaky_relu", {"negative_slope": 1.5}),
    ("elu", {}),
    ("elu", {"alpha": 0.5}),
    ("selu", {}),
    ("gelu", {}),
    ("gelu", {"approximate": "tanh"}),
    ("silu", {}),
    ("softplus", {}),
    ("softplus", {"beta": 2.0, "threshold": 5.0}),
    ("softplus", {"beta": 0.1}),
    ("sigmoid", {}),
    ("tanh", {}),
]


def test_every_activation_has_a_case_here():
    assert {name for name, _ in ACTIVATION_CASES} == set(ACTIVATIONS) == set(to_onnx.ACTIVATIONS)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name, options", ACTIVATION_CASES, ids=[f"{n}-{o}" if o else n for n, o in ACTIVATION_CASES])
def test_activation_matches_the_forward_pass(name, options, dtype):
    # the activation on the inputs themselves, then an identity dense layer: the output is f(z)
    width = 5
    model = Sequential([Activation(name, **options), Dense(width)]).build(width, 8, dtype, np.random.default_rng(0))
    model.layers[1].W.value[...] = np.eye(width)
    x = Z.reshape(-1, width)
    expected = model.forward(x.astype(dtype), train=False)
    got = run_network(model, x, dtype)
    assert np.isfinite(expected).all()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=3e-7)


def randomized(model: Sequential, seed: int = 1) -> Sequential:
    """Every parameter and batch-norm statistic drawn at random, so that none is a neutral 0 or 1."""
    rng = np.random.default_rng(seed)
    for p in model.params:
        p.value[...] = rng.normal(0.0, 0.8, p.value.shape)
    for layer in model.layers:
        if isinstance(layer, BatchNorm):
            layer.running_mean[...] = rng.normal(0.0, 2.0, layer.running_mean.shape)
            layer.running_var[...] = rng.uniform(0.1, 3.0, layer.running_var.shape)
    return model


LAYER_CASES = {
    "dense": [Dense(7), Activation("tanh")],
    "activation": [Activation("elu", alpha=0.7)],
    "dropout": [Dense(6), Dropout(0.4)],
    "batch_norm": [Dense(6), BatchNorm(eps=1e-3)],
    "layer_norm": [Dense(6), LayerNorm(eps=1e-4)],
}


def test_every_layer_type_has_a_case_here():
    assert set(LAYER_CASES) == set(LAYERS)
    assert set(to_onnx.LAYERS) == {Dense, Activation, Dropout, BatchNorm, LayerNorm}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", sorted(LAYER_CASES))
def test_layer_matches_the_forward_pass_at_evaluation(kind, dtype):
    import copy

    layers = copy.deepcopy(LAYER_CASES[kind])
    model = randomized(Sequential(layers + [Dense(3)]).build(4, 8, dtype, np.random.default_rng(0)))
    x = np.random.default_rng(2).normal(0.0, 3.0, (300, 4)).astype(np.float32)
    expected = model.forward(x.astype(dtype), train=False)
    np.testing.assert_allclose(run_network(model, x, dtype), expected, rtol=1e-5, atol=1e-6)


def test_a_network_of_every_layer_type_matches_at_once():
    layers = [Dense(8), Activation("gelu"), BatchNorm(), Dropout(0.2), Dense(6), Activation("softplus"), LayerNorm(), Activation("selu")]
    model = randomized(Sequential(layers + [Dense(2)]).build(3, 8, "float32", np.random.default_rng(0)))
    x = np.random.default_rng(3).normal(0.0, 2.0, (256, 3)).astype(np.float32)
    np.testing.assert_allclose(run_network(model, x, "float32"), model.forward(x, train=False), rtol=1e-5, atol=1e-6)


# --- refusals -------------------------------------------------------------------------------------


class Shuffle(Layer):
    """A layer type export does not know."""

    def build(self, in_features, batch_size, dtype, rng, name, noise_rng=None) -> int:
        return in_features


def test_a_layer_without_an_onnx_form_is_refused_by_name():
    model = Sequential([Dense(4), Shuffle(), Dense(1)]).build(2, 8, "float32", np.random.default_rng(0))
    with pytest.raises(ConfigError) as refused:
        to_onnx.convert(model, LOSSES["mse"](), plain_regression(2, 1), "float32")
    assert str(refused.value) == (
        "layer 1 of the model (Shuffle) cannot be exported to ONNX; export knows Activation, BatchNorm, Dense, Dropout, LayerNorm"
    )


def test_an_activation_without_an_onnx_form_is_refused_by_name(monkeypatch):
    model = Sequential([Dense(4), Activation("tanh"), Dense(1)]).build(2, 8, "float32", np.random.default_rng(0))
    monkeypatch.delitem(to_onnx.ACTIVATIONS, "tanh")
    with pytest.raises(ConfigError) as refused:
        to_onnx.convert(model, LOSSES["mse"](), plain_regression(2, 1), "float32")
    assert str(refused.value).startswith("layer 1 of the model: activation 'tanh' cannot be exported to ONNX; export knows elu, gelu, ")


def test_a_column_named_as_an_output_is_refused():
    model = Sequential([Dense(1)]).build(1, 8, "float32", np.random.default_rng(0))
    prep = plain_regression(1, 1)
    prep.columns[0].name = "value"
    with pytest.raises(ConfigError) as refused:
        to_onnx.convert(model, LOSSES["mse"](), prep, "float32")
    assert str(refused.value) == "column 'value' has the name of an output of the ONNX graph (value); rename the column and train again to export"


def test_without_the_onnx_package_the_message_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    model = Sequential([Dense(1)]).build(1, 8, "float32", np.random.default_rng(0))
    with pytest.raises(ConfigError) as refused:
        to_onnx.convert(model, LOSSES["mse"](), plain_regression(1, 1), "float32")
    assert str(refused.value) == "--format onnx: exporting needs the onnx package, the optional extra 'onnx': pip install 'bptrain[onnx]'"
